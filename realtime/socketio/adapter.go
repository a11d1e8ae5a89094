package socketio

import (
	"context"
	"time"
)

// BroadcastOptions selects the sockets a broadcast reaches, as Socket.IO's
// adapters do: those in any of Rooms (every socket of the namespace when
// Rooms is empty), less those in any of Except. A socket's id counts as a
// room holding only that socket, on every node.
type BroadcastOptions struct {
	Rooms  []string
	Except []string
}

// RemoteSocket describes a socket on some node of the fleet.
type RemoteSocket struct {
	ID    string
	Rooms []string
}

// Session is what connection state recovery keeps of a dropped socket.
// Missed holds the encoded packets (see EventPacket) broadcast to it since
// the offset it came back with.
type Session struct {
	SID    string
	PID    string
	Rooms  []string
	Missed []string
}

// Adapter carries one namespace's broadcasts and queries to every node of
// a fleet, in the manner of Socket.IO's Adapter. Room membership itself is
// always this node's (the namespace keeps it); an adapter adds the other
// nodes. Methods are called from many goroutines.
type Adapter interface {
	// Broadcast delivers an event to the matching sockets on every node.
	Broadcast(opts BroadcastOptions, event string, args []any) error
	// Publish delivers an event to the matching sockets on the other nodes
	// only: this node's sockets got it some other way.
	Publish(opts BroadcastOptions, event string, args []any) error
	// BroadcastWithAck delivers an event to the matching sockets on every
	// node and asks each client for an acknowledgement. onCount runs once
	// per node that answers, with how many of its sockets were asked;
	// onAck runs once per answer. Answers after timeout are dropped.
	BroadcastWithAck(opts BroadcastOptions, event string, args []any, timeout time.Duration, onCount func(int), onAck func(args []any)) error
	// ServerSideEmit sends an event to the namespace's OnServerSideEmit on
	// the other nodes.
	ServerSideEmit(event string, args []any) error
	// FetchSockets lists the matching sockets on every node. It fails when
	// some node has not answered before ctx ends.
	FetchSockets(ctx context.Context, opts BroadcastOptions) ([]RemoteSocket, error)
	// SocketIDs lists, once each, the ids of the sockets in any of rooms (all
	// sockets when rooms is empty) on every node: Socket.IO's
	// adapter.sockets, cheaper than FetchSockets when only ids matter. It
	// fails as FetchSockets does.
	SocketIDs(ctx context.Context, rooms []string) ([]string, error)
	// PersistSession keeps a dropped socket's session for recovery.
	PersistSession(s Session)
	// RestoreSession takes back the session saved under pid with the
	// packets broadcast after offset; ok is false when either is unknown.
	RestoreSession(ctx context.Context, pid, offset string) (s Session, ok bool)
	// Close stops the adapter; it is idempotent.
	Close() error
}

// AdapterFactory builds the adapter of one namespace.
type AdapterFactory func(n *Namespace) Adapter

// memoryAdapter is the adapter of a node alone: every socket is local.
type memoryAdapter struct{ n *Namespace }

// NewMemoryAdapter is the AdapterFactory of a node alone.
func NewMemoryAdapter(n *Namespace) Adapter { return memoryAdapter{n} }

func (a memoryAdapter) Broadcast(opts BroadcastOptions, event string, args []any) error {
	return a.n.LocalBroadcast(opts, event, args, "")
}

func (memoryAdapter) Publish(BroadcastOptions, string, []any) error { return nil }

func (a memoryAdapter) BroadcastWithAck(opts BroadcastOptions, event string, args []any, _ time.Duration, onCount func(int), onAck func([]any)) error {
	return a.n.LocalBroadcastWithAck(opts, event, args, onCount, onAck)
}

func (memoryAdapter) ServerSideEmit(string, []any) error { return nil }

func (a memoryAdapter) FetchSockets(_ context.Context, opts BroadcastOptions) ([]RemoteSocket, error) {
	return a.n.LocalSockets(opts), nil
}

func (a memoryAdapter) SocketIDs(_ context.Context, rooms []string) ([]string, error) {
	return a.n.LocalSocketIDs(rooms), nil
}

func (a memoryAdapter) PersistSession(s Session) {
	if rs := a.n.server.recovery; rs != nil {
		rs.persist(s.PID, savedSession{sid: s.SID, nsp: a.n.name, rooms: s.Rooms})
	}
}

// RestoreSession is called with the namespace's lock held, so that no
// broadcast falls between the missed packets and the live ones.
func (a memoryAdapter) RestoreSession(_ context.Context, pid, offset string) (Session, bool) {
	rs := a.n.server.recovery
	if rs == nil {
		return Session{}, false
	}
	saved, missed, ok := rs.restore(pid, offset, a.n.name)
	if !ok {
		return Session{}, false
	}
	return Session{SID: saved.sid, PID: pid, Rooms: saved.rooms, Missed: missed}, true
}

func (memoryAdapter) Close() error { return nil }

// EventPacket encodes an event packet of namespace nsp as Socket.IO text
// without the Engine.IO type, as Session.Missed holds them; offset, when
// not empty, is appended to the arguments as recovery expects.
func EventPacket(nsp, event string, args []any, offset string) (string, error) {
	return buildEvent(0, nsp, -1, event, args, offset)
}
