// Package realtime is the Socket.IO side of the service: it accepts browser
// connections, admits sockets to order rooms and broadcasts changes. It is
// the only package that imports the Socket.IO library.
package realtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"paystatus/payment"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// OrderAccess is what the realtime server needs from the payment domain.
type OrderAccess interface {
	Authorize(orderID, token string) error
	Snapshot(ctx context.Context, orderID string) (payment.Snapshot, error)
}

// Server wraps a Socket.IO server with the order-room protocol.
type Server struct {
	cfg     Config
	log     *slog.Logger
	obs     Observer
	access  OrderAccess
	io      *socket.Server
	handler http.Handler
	client  http.Handler

	// ctx is cancelled by Shutdown; pending ack retries watch it.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool // guarded by mu
}

// New builds the Socket.IO server. It does not listen: mount Handler.
func New(cfg Config, access OrderAccess) (*Server, error) {
	if access == nil {
		return nil, fmt.Errorf("%w: no order access", errConfig)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
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
	ctx, cancel := context.WithCancel(context.Background())
	if cfg.Redis != nil {
		opts.SetAdapter(redisAdapter(ctx, *cfg.Redis, cfg.Logger))
	}
	s := &Server{cfg: cfg, log: cfg.Logger, obs: cfg.Observer, access: access, ctx: ctx, cancel: cancel}
	s.io = socket.NewServer(nil, opts)
	s.handler = s.io.ServeHandler(opts)
	if cfg.ClientDir != "" {
		s.client = newClientFiles(cfg.ClientDir)
	}
	if err := s.io.On("connection", func(args ...any) {
		if sock, ok := args[0].(*socket.Socket); ok {
			s.onConnection(sock)
		}
	}); err != nil {
		cancel()
		return nil, fmt.Errorf("register connection handler: %w", err)
	}
	s.watchRooms()
	return s, nil
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

// Handler serves /socket.io/: the browser client files and the protocol.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.client != nil && isClientFile(r.URL.Path) {
			s.client.ServeHTTP(w, r)
			return
		}
		s.handler.ServeHTTP(w, r)
	})
}

func isClientFile(path string) bool {
	name := path[strings.LastIndex(path, "/")+1:]
	return strings.HasPrefix(name, "socket.io") && (strings.HasSuffix(name, ".js") || strings.HasSuffix(name, ".js.map"))
}

// Shutdown disconnects every socket and stops the server. It is safe to
// call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	done := make(chan error, 1)
	s.io.Close(func(err error) { done <- err })
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("realtime shutdown: %w", ctx.Err())
	}
}

// Closed reports whether Shutdown has begun.
func (s *Server) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// ErrClosed is returned by operations after Shutdown.
var ErrClosed = errors.New("realtime server closed")

// watchRooms reports room creation and deletion to the observer.
func (s *Server) watchRooms() {
	adapter := s.io.Sockets().Adapter()
	_ = adapter.On("create-room", func(args ...any) {
		if room, ok := args[0].(socket.Room); ok && isOrderRoom(room) {
			s.obs.RoomsChanged(1)
		}
	})
	_ = adapter.On("delete-room", func(args ...any) {
		if room, ok := args[0].(socket.Room); ok && isOrderRoom(room) {
			s.obs.RoomsChanged(-1)
		}
	})
}

// RoomName is the Socket.IO room of an order.
func RoomName(orderID string) string { return "order-" + orderID }

func isOrderRoom(r socket.Room) bool { return strings.HasPrefix(string(r), "order-") }

// deadline bounds how long a remote lookup may take.
const fetchTimeout = 3 * time.Second
