package socketio

import (
	"slices"
	"sync"
)

// Namespace holds sockets and their rooms.
type Namespace struct {
	name   string
	server *Server

	// OnConnection runs for each socket that joins, before its first event.
	OnConnection func(*Socket)
	// OnRoomCreated and OnRoomDeleted report a room's first member arriving
	// and its last leaving.
	OnRoomCreated func(room string)
	OnRoomDeleted func(room string)

	mu      sync.RWMutex
	sockets map[string]*Socket              // guarded by mu
	rooms   map[string]map[*Socket]struct{} // guarded by mu
}

// Name is the namespace's name, such as "/".
func (n *Namespace) Name() string { return n.name }

// addLocked registers a socket and its rooms, returning the rooms it
// created. n.mu must be held.
func (n *Namespace) addLocked(s *Socket) (created []string) {
	s.mu.Lock()
	s.connected = true
	rooms := s.rooms
	s.mu.Unlock()
	n.sockets[s.id] = s
	for _, r := range rooms {
		if n.addToRoomLocked(r, s) {
			created = append(created, r)
		}
	}
	return created
}

func (n *Namespace) remove(s *Socket) {
	n.mu.Lock()
	if n.sockets[s.id] == s {
		delete(n.sockets, s.id)
	}
	n.mu.Unlock()
}

func (n *Namespace) addToRoom(room string, s *Socket) {
	n.mu.Lock()
	created := n.addToRoomLocked(room, s)
	n.mu.Unlock()
	if created && n.OnRoomCreated != nil {
		n.OnRoomCreated(room)
	}
}

// addToRoomLocked adds s to room and reports whether the room is new. n.mu
// must be held.
func (n *Namespace) addToRoomLocked(room string, s *Socket) bool {
	members, ok := n.rooms[room]
	if !ok {
		members = make(map[*Socket]struct{}, 1)
		n.rooms[room] = members
	}
	members[s] = struct{}{}
	return !ok
}

func (n *Namespace) removeFromRoom(room string, s *Socket) {
	n.mu.Lock()
	members, ok := n.rooms[room]
	deleted := false
	if ok {
		delete(members, s)
		if len(members) == 0 {
			delete(n.rooms, room)
			deleted = true
		}
	}
	n.mu.Unlock()
	if deleted && n.OnRoomDeleted != nil {
		n.OnRoomDeleted(room)
	}
}

// Socket finds a connected socket by id.
func (n *Namespace) Socket(id string) (*Socket, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	s, ok := n.sockets[id]
	return s, ok
}

// Len counts the namespace's sockets.
func (n *Namespace) Len() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.sockets)
}

// RoomSize counts a room's sockets.
func (n *Namespace) RoomSize(room string) int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.rooms[room])
}

// Members lists a room's sockets.
func (n *Namespace) Members(room string) []*Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]*Socket, 0, len(n.rooms[room]))
	for s := range n.rooms[room] {
		out = append(out, s)
	}
	return out
}

// Broadcast sends an event to every socket in room except those whose ids
// are in except, which is searched for each socket: it is meant for a few
// ids (the room's members on this node that got the event another way), and
// it is kept with the packet while recovery is on. The packet is encoded
// once for all of them; with recovery on it carries an offset and is kept
// for sockets that return.
func (n *Namespace) Broadcast(room string, except []string, event string, args ...any) error {
	var seq uint64
	offset := ""
	rs := n.server.recovery
	if rs != nil {
		seq, offset = rs.nextOffset()
	}
	msg, text, err := eventMessage(n.name, -1, event, args, offset)
	if err != nil {
		return err
	}
	// Under the read lock, recording and queueing are one step as seen by a
	// socket being restored (which takes the write lock): each broadcast is
	// either among its missed packets or sent to it, never both or neither.
	// The batch's frames go to the kernel after the lock is released; they
	// were committed to under it, as a queued frame is.
	batch := n.server.eng.NewBatch()
	defer batch.Flush()
	n.mu.RLock()
	defer n.mu.RUnlock()
	if rs != nil {
		rs.record(storedPacket{seq: seq, nsp: n.name, room: room, except: except, text: text})
	}
	batch.Grow(len(n.rooms[room]))
	for s := range n.rooms[room] {
		if len(except) == 0 || !slices.Contains(except, s.id) {
			_ = s.sess.SendIn(batch, msg)
		}
	}
	return nil
}
