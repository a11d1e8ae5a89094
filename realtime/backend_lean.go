package realtime

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"paystatus/realtime/engineio"
	"paystatus/realtime/socketio"
	"paystatus/realtime/socketio/redisadapter"
)

// leanBackend runs the protocol on this module's own Engine.IO and
// Socket.IO layers: an idle websocket costs no goroutine and a broadcast
// is encoded once. With Redis, its adapter shares rooms and broadcasts
// with the other nodes, Node ones included.
type leanBackend struct {
	srv    *Server
	io     *socketio.Server
	nsp    *socketio.Namespace
	broker *redisadapter.Broker // nil when the node runs alone
}

func newLeanBackend(s *Server) (*leanBackend, error) {
	cfg := s.cfg
	b := &leanBackend{srv: s}
	adapter := socketio.AdapterFactory(socketio.NewMemoryAdapter)
	keepsSessions := false
	if cfg.Redis != nil {
		broker, err := newBroker(cfg, s.restored)
		if err != nil {
			return nil, err
		}
		b.broker = broker
		adapter, keepsSessions = broker.Factory, broker.KeepsSessions()
	}
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
		MaxEventBytes:        cfg.MaxEventBytes,
		MaxEventDepth:        cfg.MaxEventDepth,
		ConnectTimeout:       cfg.ConnectTimeout,
		RecoveryWindow:       max(cfg.RecoveryWindow, 0),
		Logger:               cfg.Logger,
		Adapter:              adapter,
		AdapterKeepsSessions: keepsSessions,
	})
	if err != nil {
		if b.broker != nil {
			_ = b.broker.Close()
		}
		return nil, err
	}
	b.io, b.nsp = io, io.Of("/")
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
	b.nsp.OnRemoteBroadcast = s.onRemoteBroadcast
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

func (b *leanBackend) alone() bool { return b.broker == nil }

// publish sends to the room's sockets on the other nodes only.
func (b *leanBackend) publish(room string, event string, payload any) {
	if err := b.nsp.Adapter().Publish(socketio.BroadcastOptions{Rooms: []string{room}}, event, []any{payload}); err != nil {
		b.srv.log.Error("cross-node publish failed", "room", room, "event", event, "error", err)
	}
}

// localOrderRooms lists the order rooms with a socket on this node.
func (b *leanBackend) localOrderRooms() []string {
	rooms := b.nsp.LocalRooms()
	out := rooms[:0]
	for _, r := range rooms {
		if isOrderRoom(r) {
			out = append(out, r)
		}
	}
	return out
}

// localBroadcast emits to a room's sockets on this node only.
func (b *leanBackend) localBroadcast(room string, event string, payload any) {
	if err := b.nsp.LocalBroadcast(socketio.BroadcastOptions{Rooms: []string{room}}, event, []any{payload}, ""); err != nil {
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

func (b *leanBackend) localRoomSize(room string) int { return b.nsp.RoomSize(room) }

// roomSize counts a room on every node; on error it returns this node's
// count with the error.
func (b *leanBackend) roomSize(ctx context.Context, room string) (int, error) {
	if b.broker == nil {
		return b.nsp.RoomSize(room), nil
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	ids, err := b.nsp.SocketIDs(ctx, []string{room})
	if err != nil {
		return max(len(ids), b.nsp.RoomSize(room)), err
	}
	return len(ids), nil
}

// shutdown disconnects the sockets, then stops the Redis link.
func (b *leanBackend) shutdown(ctx context.Context) error {
	err := b.io.Shutdown(ctx)
	if b.broker != nil {
		err = errors.Join(err, b.broker.Close())
	}
	return err
}

func isOrderRoom(r string) bool { return strings.HasPrefix(r, "order-") }
