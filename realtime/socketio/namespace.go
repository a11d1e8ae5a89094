package socketio

import (
	"context"
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
	// OnRemoteBroadcast sees each broadcast from another node before this
	// node's sockets do; returning true means it delivered the event itself.
	OnRemoteBroadcast func(opts BroadcastOptions, event string, args []any) bool
	// OnServerSideEmit receives the events other nodes send with
	// Adapter.ServerSideEmit.
	OnServerSideEmit func(event string, args []any)

	adapter Adapter // set once by Server.Of

	mu      sync.RWMutex
	sockets map[string]*Socket // guarded by mu
	rooms   map[string]roomSet // guarded by mu
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
	n.rooms[room] = members.with(s)
	return !ok
}

func (n *Namespace) removeFromRoom(room string, s *Socket) {
	n.mu.Lock()
	members, ok := n.rooms[room]
	deleted := false
	if ok {
		members = members.without(s)
		if members.len() == 0 {
			delete(n.rooms, room)
			deleted = true
		} else {
			n.rooms[room] = members
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
	return n.rooms[room].len()
}

// Members lists a room's sockets.
func (n *Namespace) Members(room string) []*Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	members := n.rooms[room]
	out := make([]*Socket, 0, members.len())
	for s := range members.all {
		out = append(out, s)
	}
	return out
}

// Broadcast sends an event to every socket in room, on every node, except
// those whose ids are in except: it is meant for a few ids (the room's
// members on this node that got the event another way).
func (n *Namespace) Broadcast(room string, except []string, event string, args ...any) error {
	return n.adapter.Broadcast(BroadcastOptions{Rooms: []string{room}, Except: except}, event, args)
}

// Adapter is the namespace's adapter, which reaches the other nodes.
func (n *Namespace) Adapter() Adapter { return n.adapter }

// SocketIDs lists the ids of the sockets in any of rooms on every node.
func (n *Namespace) SocketIDs(ctx context.Context, rooms []string) ([]string, error) {
	return n.adapter.SocketIDs(ctx, rooms)
}

// FetchSockets lists the matching sockets on every node.
func (n *Namespace) FetchSockets(ctx context.Context, opts BroadcastOptions) ([]RemoteSocket, error) {
	return n.adapter.FetchSockets(ctx, opts)
}

// LocalBroadcast sends an event to this node's matching sockets. The packet
// is encoded once for all of them. With recovery kept on this node, an
// empty offset gets a local one and the packet is recorded for sockets that
// return; an adapter that keeps sessions itself passes its own offset.
func (n *Namespace) LocalBroadcast(opts BroadcastOptions, event string, args []any, offset string) error {
	var seq uint64
	rs := n.server.recovery
	if rs != nil && offset == "" {
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
	if rs != nil && seq != 0 {
		p := storedPacket{seq: seq, nsp: n.name, except: opts.Except, text: text}
		if len(opts.Rooms) == 1 {
			p.room = opts.Rooms[0]
		} else if len(opts.Rooms) > 1 {
			p.rooms = opts.Rooms
		}
		rs.record(p)
	}
	if len(opts.Rooms) == 1 && len(opts.Except) == 0 {
		// The common case: one room, nobody left out.
		members := n.rooms[opts.Rooms[0]]
		batch.Grow(members.len())
		for s := range members.all {
			_ = s.sess.SendIn(batch, msg)
		}
		if members.len() == 0 {
			if s, ok := n.sockets[opts.Rooms[0]]; ok {
				_ = s.sess.SendIn(batch, msg) // a socket's id is its own room
			}
		}
		return nil
	}
	n.eachLocked(opts, func(s *Socket) { _ = s.sess.SendIn(batch, msg) })
	return nil
}

// eachLocked calls f once for each local socket opts selects. n.mu must be
// held.
func (n *Namespace) eachLocked(opts BroadcastOptions, f func(*Socket)) {
	excluded := func(s *Socket) bool {
		for _, e := range opts.Except {
			if e == s.id {
				return true
			}
			if n.rooms[e].has(s) {
				return true
			}
		}
		return false
	}
	if len(opts.Rooms) == 0 {
		for _, s := range n.sockets {
			if !excluded(s) {
				f(s)
			}
		}
		return
	}
	var seen map[*Socket]struct{}
	if len(opts.Rooms) > 1 {
		seen = make(map[*Socket]struct{})
	}
	visit := func(s *Socket) {
		if seen != nil {
			if _, dup := seen[s]; dup {
				return
			}
			seen[s] = struct{}{}
		}
		if !excluded(s) {
			f(s)
		}
	}
	for _, r := range opts.Rooms {
		members, ok := n.rooms[r]
		if !ok {
			if s, isID := n.sockets[r]; isID {
				visit(s)
			}
			continue
		}
		for s := range members.all {
			visit(s)
		}
	}
}

// localMatches lists this node's sockets that opts selects.
func (n *Namespace) localMatches(opts BroadcastOptions) []*Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	var out []*Socket
	n.eachLocked(opts, func(s *Socket) { out = append(out, s) })
	return out
}

// LocalBroadcastWithAck sends an event to this node's matching sockets, each
// with its own acknowledgement id; onCount gets how many were asked, at
// once, and onAck each answer.
func (n *Namespace) LocalBroadcastWithAck(opts BroadcastOptions, event string, args []any, onCount func(int), onAck func([]any)) error {
	socks := n.localMatches(opts)
	count := 0
	for _, s := range socks {
		if s.EmitWithAck(event, onAck, args...) == nil {
			count++
		}
	}
	if onCount != nil {
		onCount(count)
	}
	return nil
}

// LocalSockets describes this node's matching sockets, their ids among
// their rooms as Socket.IO lists them.
func (n *Namespace) LocalSockets(opts BroadcastOptions) []RemoteSocket {
	socks := n.localMatches(opts)
	out := make([]RemoteSocket, len(socks))
	for i, s := range socks {
		out[i] = RemoteSocket{ID: s.id, Rooms: append([]string{s.id}, s.Rooms()...)}
	}
	return out
}

// LocalSocketIDs lists the ids of this node's sockets in any of rooms (all
// of them when rooms is empty).
func (n *Namespace) LocalSocketIDs(rooms []string) []string {
	socks := n.localMatches(BroadcastOptions{Rooms: rooms})
	ids := make([]string, len(socks))
	for i, s := range socks {
		ids[i] = s.id
	}
	return ids
}

// LocalJoin puts this node's matching sockets in rooms.
func (n *Namespace) LocalJoin(opts BroadcastOptions, rooms []string) {
	for _, s := range n.localMatches(opts) {
		for _, r := range rooms {
			s.Join(r)
		}
	}
}

// LocalLeave takes this node's matching sockets out of rooms.
func (n *Namespace) LocalLeave(opts BroadcastOptions, rooms []string) {
	for _, s := range n.localMatches(opts) {
		for _, r := range rooms {
			s.Leave(r)
		}
	}
}

// LocalDisconnect disconnects this node's matching sockets; close ends
// their whole connection.
func (n *Namespace) LocalDisconnect(opts BroadcastOptions, close bool) {
	for _, s := range n.localMatches(opts) {
		if close {
			s.sess.Close("server namespace disconnect")
			continue
		}
		s.Disconnect()
	}
}

// RemoteBroadcast delivers a broadcast that came from another node: to
// OnRemoteBroadcast first, and to the matching local sockets unless that
// handled it. An adapter calls it; offset is as for LocalBroadcast.
func (n *Namespace) RemoteBroadcast(opts BroadcastOptions, event string, args []any, offset string) error {
	if h := n.OnRemoteBroadcast; h != nil && h(opts, event, args) {
		return nil
	}
	return n.LocalBroadcast(opts, event, args, offset)
}

// RemoteServerSideEmit delivers an event another node sent with
// ServerSideEmit. An adapter calls it.
func (n *Namespace) RemoteServerSideEmit(event string, args []any) {
	if h := n.OnServerSideEmit; h != nil {
		h(event, args)
	}
}

// LocalRooms lists the rooms with a socket on this node.
func (n *Namespace) LocalRooms() []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]string, 0, len(n.rooms))
	for r := range n.rooms {
		out = append(out, r)
	}
	return out
}
