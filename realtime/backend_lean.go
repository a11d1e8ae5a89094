package realtime

import (
	"context"
	"net/http"

	"paystatus/realtime/engineio"
	"paystatus/realtime/socketio"
)

// leanBackend runs the protocol on this module's own Engine.IO and
// Socket.IO layers: an idle websocket costs no goroutine and a broadcast
// is encoded once. It serves a node that runs alone.
type leanBackend struct {
	srv *Server
	io  *socketio.Server
	nsp *socketio.Namespace
}

func newLeanBackend(s *Server) (*leanBackend, error) {
	cfg := s.cfg
	io, err := socketio.NewServer(socketio.Config{
		Engine: engineio.Config{
			PingInterval:   cfg.PingInterval,
			PingTimeout:    cfg.PingTimeout,
			MaxPayload:     int(cfg.MaxPayload),
			AllowEIO3:      true,
			CORSOrigins:    cfg.CORSOrigins,
			Logger:         cfg.Logger,
			MaxSessions:    cfg.MaxSessions,
			OnSessionsFull: cfg.OnSessionsFull,
		},
		MaxEventBytes:  cfg.MaxEventBytes,
		MaxEventDepth:  cfg.MaxEventDepth,
		ConnectTimeout: cfg.ConnectTimeout,
		RecoveryWindow: max(cfg.RecoveryWindow, 0),
		Logger:         cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	b := &leanBackend{srv: s, io: io, nsp: io.Of("/")}
	b.nsp.OnRoomCreated = func(room string) {
		if isOrderRoom(room) {
			s.obs.RoomsChanged(1)
		}
	}
	b.nsp.OnRoomDeleted = func(room string) {
		if isOrderRoom(room) {
			s.obs.RoomsChanged(-1)
		}
	}
	b.nsp.OnConnection = b.onConnection
	return b, nil
}

func (b *leanBackend) onConnection(sock *socketio.Socket) {
	h := &leanSocket{srv: b.srv, sock: sock}
	b.srv.socketOpened(&h.st, sock, sock.Transport(), sock.Protocol(), sock.Recovered())
	sock.Handler = h
}

// leanSocket handles one socket's events, and holds its state: one heap
// object per connection.
type leanSocket struct {
	srv  *Server
	sock *socketio.Socket
	st   socketState
}

// AdmitEvent applies the flood limit before the event is decoded.
func (h *leanSocket) AdmitEvent() bool { return h.srv.admitEvent(h.sock, &h.st) }

func (h *leanSocket) OnEvent(event string, args []any, ack socketio.AckFunc) {
	var reply func(any)
	if ack != nil {
		reply = func(v any) { ack(v) }
	}
	h.srv.handleEvent(h.sock, event, args, reply)
}

func (h *leanSocket) OnDisconnect(reason string) { h.srv.socketClosed(h.sock, &h.st, reason) }

func (h *leanSocket) OnUpgrade() { h.srv.socketUpgraded(h.sock, &h.st, "websocket") }

func (b *leanBackend) httpHandler() http.Handler { return b.io }

func (b *leanBackend) broadcast(room string, except []string, event string, payload any) {
	if err := b.nsp.Broadcast(room, except, event, payload); err != nil {
		b.srv.log.Error("broadcast failed", "room", room, "event", event, "error", err)
	}
}

func (b *leanBackend) members(room string) []string {
	socks := b.nsp.Members(room)
	ids := make([]string, len(socks))
	for i, sock := range socks {
		ids[i] = sock.ID()
	}
	return ids
}

func (b *leanBackend) lookup(id string) (peer, bool) {
	sock, ok := b.nsp.Socket(id)
	if !ok {
		return nil, false
	}
	return sock, true
}

func (b *leanBackend) roomSize(_ context.Context, room string) (int, error) {
	return b.nsp.RoomSize(room), nil
}

func (b *leanBackend) shutdown(ctx context.Context) error { return b.io.Shutdown(ctx) }
