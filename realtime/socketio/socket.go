package socketio

import (
	"encoding/json"
	"errors"
	"slices"
	"sync"

	"paystatus/realtime/engineio"
)

// AckFunc answers an event the client sent with an acknowledgement.
type AckFunc func(args ...any)

// ErrDisconnected is returned when emitting to a socket that has left.
var ErrDisconnected = errors.New("socket.io: socket disconnected")

// Socket is one client's connection to one namespace. Set its On* fields in
// the namespace's OnConnection; they run on the client's reading goroutine,
// one event at a time.
type Socket struct {
	id     string
	pid    string
	nsp    *Namespace
	client *client
	// sess is client.sess, which never changes; the socket uses it directly,
	// and a broadcast then reaches the session without loading the client:
	// one cache miss fewer per recipient.
	sess      *engineio.Session
	auth      map[string]any
	recovered bool

	// Handler receives the socket's events; OnConnection sets it.
	Handler Handler
	// Data belongs to the application.
	Data any

	mu          sync.Mutex
	handshaking bool         // guarded by mu; OnConnection has not returned yet
	closedFor   string       // guarded by mu; a close reason held back until it has
	rooms       []string     // guarded by mu; few per socket
	acks        []pendingAck // guarded by mu; nil when none is awaited
	nextAck     int          // guarded by mu
	connected   bool         // guarded by mu
}

// Handler receives one socket's events. One value per socket serves all
// three, where three closures were three heap objects per connection.
type Handler interface {
	// OnEvent receives each event; ack is nil unless the client asked for one.
	OnEvent(event string, args []any, ack AckFunc)
	// OnDisconnect runs once, with Node's reason names.
	OnDisconnect(reason string)
	// OnUpgrade runs when the connection moves from polling to websocket.
	OnUpgrade()
}

// HandlerFuncs is a Handler made of functions, any of which may be nil.
type HandlerFuncs struct {
	Event      func(event string, args []any, ack AckFunc)
	Disconnect func(reason string)
	Upgrade    func()
}

func (h *HandlerFuncs) OnEvent(event string, args []any, ack AckFunc) {
	if h.Event != nil {
		h.Event(event, args, ack)
	}
}

func (h *HandlerFuncs) OnDisconnect(reason string) {
	if h.Disconnect != nil {
		h.Disconnect(reason)
	}
}

func (h *HandlerFuncs) OnUpgrade() {
	if h.Upgrade != nil {
		h.Upgrade()
	}
}

// ID is the socket's id.
func (s *Socket) ID() string { return s.id }

// Auth is the auth object the client sent with its connect packet; empty,
// not nil, when it sent none.
func (s *Socket) Auth() map[string]any {
	if s.auth == nil {
		return map[string]any{}
	}
	return s.auth
}

// Query is the connection's handshake query string.
func (s *Socket) Query() map[string][]string { return s.sess.Query() }

// Recovered reports whether connection state recovery restored the socket.
func (s *Socket) Recovered() bool { return s.recovered }

// Transport names the transport now in use: polling or websocket.
func (s *Socket) Transport() string { return s.sess.Transport() }

// Protocol is the Engine.IO protocol revision: 3 for socket.io-client 2.
func (s *Socket) Protocol() int { return s.sess.Protocol() }

// Connected reports whether the socket is still in its namespace.
func (s *Socket) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected
}

// In reports whether the socket is in room.
func (s *Socket) In(room string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rooms {
		if r == room {
			return true
		}
	}
	return false
}

// Rooms lists the rooms the socket is in.
func (s *Socket) Rooms() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rooms...)
}

// Join adds the socket to room; false if it was already there or is gone.
func (s *Socket) Join(room string) bool {
	s.mu.Lock()
	if !s.connected {
		s.mu.Unlock()
		return false
	}
	for _, r := range s.rooms {
		if r == room {
			s.mu.Unlock()
			return false
		}
	}
	s.rooms = append(s.rooms, room)
	s.mu.Unlock()
	s.nsp.addToRoom(room, s)
	return true
}

// Leave removes the socket from room; false if it was not there.
func (s *Socket) Leave(room string) bool {
	s.mu.Lock()
	found := false
	for i, r := range s.rooms {
		if r == room {
			s.rooms = append(s.rooms[:i], s.rooms[i+1:]...)
			found = true
			break
		}
	}
	s.mu.Unlock()
	if found {
		s.nsp.removeFromRoom(room, s)
	}
	return found
}

// Emit sends an event to this socket.
func (s *Socket) Emit(event string, args ...any) error {
	return s.emit(event, args, pendingAck{})
}

// pendingAck waits for the client's answer to one emit. At most one of its
// functions is set; neither for an emit that asks for no answer.
//
// A socket awaits few answers at a time (the server asks one per terminal
// status), so they are a short list, dropped when it empties: a map stayed
// allocated on every socket that had ever been asked.
type pendingAck struct {
	id       int
	withArgs func(args []any) // gets the answer decoded
	signal   func()           // the answer is only checked to be a JSON array
}

// EmitWithAck sends an event and calls onAck with the client's answer.
func (s *Socket) EmitWithAck(event string, onAck func(args []any), args ...any) error {
	return s.emit(event, args, pendingAck{withArgs: onAck})
}

// EmitWithAckSignal sends an event and calls acked when the client
// acknowledges it, without decoding the answer, for a caller that only needs
// to know that it came (a checkout page sends an object back that nobody
// reads).
func (s *Socket) EmitWithAckSignal(event string, acked func(), args ...any) error {
	return s.emit(event, args, pendingAck{signal: acked})
}

func (s *Socket) emit(event string, args []any, ack pendingAck) error {
	id := -1
	s.mu.Lock()
	if !s.connected {
		s.mu.Unlock()
		return ErrDisconnected
	}
	if ack.withArgs != nil || ack.signal != nil {
		id = s.nextAck
		s.nextAck++
		ack.id = id
		s.acks = append(s.acks, ack)
	}
	s.mu.Unlock()
	if hasBinary(args) {
		msgs, err := binaryMessages(packetBinaryEvent, s.nsp.name, id, append([]any{event}, args...))
		if err != nil {
			return err
		}
		return s.sess.SendGroup(msgs...)
	}
	msg, _, err := eventMessage(s.nsp.name, id, event, args, "")
	if err != nil {
		return err
	}
	return s.sess.Send(msg)
}

// Disconnect removes the socket from its namespace, telling the client.
func (s *Socket) Disconnect() {
	_ = s.sess.SendText(encode(packetDisconnect, s.nsp.name, -1, nil))
	s.onClose("server namespace disconnect")
}

func (s *Socket) onPacket(p packet) {
	switch p.kind {
	case packetEvent:
		if !s.client.server.payloadAllowed(p.data) {
			s.sess.Close("parse error")
			return
		}
		if a, ok := s.Handler.(EventAdmitter); ok && !a.AdmitEvent() {
			return
		}
		event, args, err := decodeEvent(p.data)
		if err != nil {
			s.sess.Close("parse error")
			return
		}
		var ack AckFunc
		if p.ackID >= 0 {
			ack = s.ackSender(p.ackID)
		}
		if h := s.Handler; h != nil {
			h.OnEvent(event, args, ack)
		}
	case packetAck:
		s.mu.Lock()
		ack := s.takeAckLocked(p.ackID)
		s.mu.Unlock()
		if !s.client.server.payloadAllowed(p.data) {
			s.sess.Close("parse error")
			return
		}
		if ack.signal != nil {
			if !isJSONArray(p.data) {
				s.sess.Close("parse error")
				return
			}
			ack.signal()
			return
		}
		args, err := decodeArray(p.data)
		if err != nil {
			s.sess.Close("parse error")
			return
		}
		if ack.withArgs != nil {
			ack.withArgs(args)
		}
	case packetDisconnect:
		s.onClose("client namespace disconnect")
	}
}

// takeAckLocked removes and returns the pending answer with id, or a zero
// pendingAck if none waits. s.mu must be held.
func (s *Socket) takeAckLocked(id int) pendingAck {
	i := slices.IndexFunc(s.acks, func(a pendingAck) bool { return a.id == id })
	if i < 0 {
		return pendingAck{}
	}
	ack := s.acks[i]
	s.acks = slices.Delete(s.acks, i, i+1)
	if len(s.acks) == 0 {
		s.acks = nil
	}
	return ack
}

// ackSender answers ack id once.
func (s *Socket) ackSender(id int) AckFunc {
	var once sync.Once
	return func(args ...any) {
		once.Do(func() {
			if args == nil {
				args = []any{}
			}
			if hasBinary(args) {
				if msgs, err := binaryMessages(packetBinaryAck, s.nsp.name, id, args); err == nil {
					_ = s.sess.SendGroup(msgs...)
				}
				return
			}
			data, err := json.Marshal(args)
			if err != nil {
				return
			}
			_ = s.sess.SendText(encode(packetAck, s.nsp.name, id, data))
		})
	}
}

// onClose leaves the namespace once; a socket dropped for a reason
// recovery covers is kept for the recovery window.
func (s *Socket) onClose(reason string) {
	s.mu.Lock()
	if !s.connected {
		if s.handshaking && s.closedFor == "" {
			s.closedFor = reason // closed before connect registered it
		}
		s.mu.Unlock()
		return
	}
	s.connected = false
	rooms := s.rooms
	s.rooms = nil
	s.acks = nil
	s.mu.Unlock()
	for _, r := range rooms {
		s.nsp.removeFromRoom(r, s)
	}
	s.nsp.remove(s)
	s.client.remove(s)
	if s.nsp.server.recoveryOn() && s.pid != "" && recoverable[reason] {
		s.nsp.adapter.PersistSession(Session{SID: s.id, PID: s.pid, Rooms: rooms})
	}
	s.mu.Lock()
	if s.handshaking {
		// OnConnection is still setting the handlers; it reports this.
		s.closedFor = reason
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	if h := s.Handler; h != nil {
		h.OnDisconnect(reason)
	}
}

// finishHandshake runs after OnConnection and reports a close that came
// while it ran.
func (s *Socket) finishHandshake() {
	s.mu.Lock()
	s.handshaking = false
	reason := s.closedFor
	s.mu.Unlock()
	if reason != "" {
		if h := s.Handler; h != nil {
			h.OnDisconnect(reason)
		}
	}
}

// recoverable lists the disconnect reasons after which Node's server keeps
// a session for recovery.
var recoverable = map[string]bool{
	"transport error":      true,
	"transport close":      true,
	"forced close":         true,
	"ping timeout":         true,
	"server shutting down": true,
	"slow consumer":        true,
}
