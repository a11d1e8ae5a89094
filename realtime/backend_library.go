package realtime

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// libraryBackend runs the protocol on the zishang520 Socket.IO library. It
// is used with Redis, whose adapters (Node-compatible pub/sub, and streams
// with recovery across nodes) come from that library.
type libraryBackend struct {
	srv     *Server
	io      *socket.Server
	handler http.Handler
}

var errFlood = errors.New("too many events")

func newLibraryBackend(s *Server) (*libraryBackend, error) {
	cfg := s.cfg
	opts := socket.DefaultServerOptions()
	opts.SetAllowEIO3(true)
	opts.SetServeClient(false)
	opts.SetPingInterval(cfg.PingInterval)
	opts.SetPingTimeout(cfg.PingTimeout)
	opts.SetConnectTimeout(cfg.ConnectTimeout)
	opts.SetMaxHttpBufferSize(cfg.MaxPayload)
	opts.SetCors(corsFor(cfg.CORSOrigins))
	if cfg.RecoveryWindow > 0 {
		recovery := &socket.ConnectionStateRecovery{}
		recovery.SetMaxDisconnectionDuration(cfg.RecoveryWindow.Milliseconds())
		recovery.SetSkipMiddlewares(true)
		opts.SetConnectionStateRecovery(recovery)
	}
	if cfg.Redis != nil {
		opts.SetAdapter(redisAdapter(s.ctx, *cfg.Redis, cfg.Logger))
	}
	b := &libraryBackend{srv: s}
	b.io = socket.NewServer(nil, opts)
	b.handler = b.io.ServeHandler(opts)
	if err := b.io.On("connection", func(args ...any) {
		if sock, ok := args[0].(*socket.Socket); ok {
			b.onConnection(sock)
		}
	}); err != nil {
		return nil, fmt.Errorf("register connection handler: %w", err)
	}
	adapter := b.io.Sockets().Adapter()
	_ = adapter.On("create-room", func(args ...any) {
		if room, ok := args[0].(socket.Room); ok && isOrderRoom(string(room)) {
			s.obs.RoomsChanged(1)
		}
	})
	_ = adapter.On("delete-room", func(args ...any) {
		if room, ok := args[0].(socket.Room); ok && isOrderRoom(string(room)) {
			s.obs.RoomsChanged(-1)
		}
	})
	return b, nil
}

func corsFor(origins []string) *types.Cors {
	if len(origins) == 0 {
		return &types.Cors{Origin: "*"}
	}
	list := make([]any, len(origins))
	for i, o := range origins {
		list[i] = o
	}
	return &types.Cors{Origin: list, Credentials: true}
}

func (b *libraryBackend) onConnection(sock *socket.Socket) {
	s := b.srv
	p := libraryPeer{sock}
	initial, protocol := libraryTransport(sock)
	st := &socketState{}
	s.socketOpened(st, p, initial, protocol, sock.Recovered())
	_ = sock.Conn().On("upgrade", func(...any) {
		next, _ := libraryTransport(sock)
		s.socketUpgraded(p, st, next)
	})
	sock.Use(func(args []any, next func(error)) {
		if !s.admitEvent(p, st) {
			next(errFlood)
			return
		}
		next(nil)
	})
	_ = sock.On("error", func(args ...any) {
		if err, ok := first(args).(error); ok && errors.Is(err, errFlood) {
			return // already logged, at most once a second
		}
		s.log.Warn("socket error", "socket", sock.Id(), "error", first(args))
	})
	sock.OnAny(func(args ...any) {
		name, _ := first(args).(string)
		if name != EventJoinOrder && name != EventLeaveOrder && name != EventPing {
			s.handleEvent(p, name, nil, nil) // logs and counts it
		}
	})
	for _, event := range []string{EventJoinOrder, EventLeaveOrder, EventPing} {
		_ = sock.On(event, func(args ...any) {
			var reply func(any)
			if n := len(args); n > 0 {
				if ack, ok := args[n-1].(socket.Ack); ok {
					args = args[:n-1]
					reply = func(v any) { ack([]any{v}, nil) }
				}
			}
			s.handleEvent(p, event, args, reply)
		})
	}
	_ = sock.On("disconnect", func(args ...any) {
		reason, _ := first(args).(string)
		s.socketClosed(p, st, reason)
	})
}

func libraryTransport(sock *socket.Socket) (string, int) {
	conn := sock.Conn()
	if conn == nil {
		return "unknown", 0
	}
	name := "unknown"
	if t := conn.Transport(); t != nil {
		name = t.Name()
	}
	return name, conn.Protocol()
}

func (b *libraryBackend) httpHandler() http.Handler { return b.handler }

func (b *libraryBackend) broadcast(room string, except []string, event string, payload any) {
	op := b.io.To(socket.Room(room))
	if len(except) > 0 {
		rooms := make([]socket.Room, len(except))
		for i, id := range except {
			rooms[i] = socket.Room(id)
		}
		op = op.Except(rooms...)
	}
	_ = op.Emit(event, payload)
}

func (b *libraryBackend) members(room string) []string {
	members, ok := b.io.Sockets().Adapter().Rooms().Load(socket.Room(room))
	if !ok {
		return nil
	}
	ids := members.Keys()
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out
}

func (b *libraryBackend) lookup(id string) (peer, bool) {
	sock, ok := b.io.Sockets().Sockets().Load(socket.SocketId(id))
	if !ok {
		return nil, false
	}
	return libraryPeer{sock}, true
}

func (b *libraryBackend) roomSize(ctx context.Context, room string) (int, error) {
	if b.srv.cfg.Redis == nil {
		return len(b.members(room)), nil
	}
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	b.io.In(socket.Room(room)).FetchSockets()(func(sockets []*socket.RemoteSocket, err error) {
		done <- result{len(sockets), err}
	})
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	select {
	case r := <-done:
		return r.n, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (b *libraryBackend) shutdown(ctx context.Context) error {
	done := make(chan error, 1)
	b.io.Close(func(err error) { done <- err })
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("realtime shutdown: %w", ctx.Err())
	}
}

// libraryPeer adapts a library socket to the protocol handlers.
type libraryPeer struct{ sock *socket.Socket }

func (p libraryPeer) ID() string { return string(p.sock.Id()) }

func (p libraryPeer) Emit(event string, args ...any) error { return p.sock.Emit(event, args...) }

func (p libraryPeer) EmitWithAckSignal(event string, acked func(), args ...any) error {
	ack := socket.Ack(func(_ []any, err error) {
		if err == nil {
			acked()
		}
	})
	return p.sock.Emit(event, append(args, ack)...)
}

func (p libraryPeer) Join(room string) bool {
	if p.In(room) {
		return false
	}
	p.sock.Join(socket.Room(room))
	return true
}

func (p libraryPeer) Leave(room string) bool {
	if !p.In(room) {
		return false
	}
	p.sock.Leave(socket.Room(room))
	return true
}

func (p libraryPeer) In(room string) bool { return p.sock.Rooms().Has(socket.Room(room)) }

func (p libraryPeer) Auth() map[string]any {
	if hs := p.sock.Handshake(); hs != nil {
		return hs.Auth
	}
	return nil
}

func (p libraryPeer) Connected() bool { return p.sock.Connected() }

func isOrderRoom(r string) bool { return strings.HasPrefix(r, "order-") }
