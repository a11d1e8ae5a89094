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
)

// OrderAccess is what the realtime server needs from the payment domain.
type OrderAccess interface {
	Authorize(orderID, token string) error
	Snapshot(ctx context.Context, orderID string) (payment.Snapshot, error)
}

// backend is a Socket.IO implementation carrying the order-room protocol.
type backend interface {
	httpHandler() http.Handler
	// broadcast emits to a room on every node, skipping the sockets whose
	// ids are listed.
	broadcast(room string, except []string, event string, payload any)
	// publish emits to a room's sockets on the other nodes only.
	publish(room string, event string, payload any)
	// alone reports whether this node has no other nodes to publish to.
	alone() bool
	// localBroadcast emits to a room's sockets on this node only.
	localBroadcast(room string, event string, payload any)
	// localOrderRooms lists the order rooms with a socket on this node.
	localOrderRooms() []string
	// members lists the ids of this node's sockets in a room.
	members(room string) []string
	// lookup finds one of this node's connected sockets.
	lookup(id string) (peer, bool)
	// roomSize counts a room on every node.
	roomSize(ctx context.Context, room string) (int, error)
	// localRoomSize counts a room's sockets on this node.
	localRoomSize(room string) int
	shutdown(ctx context.Context) error
}

// Server runs the order-room protocol over Socket.IO.
type Server struct {
	cfg    Config
	log    *slog.Logger
	obs    Observer
	access OrderAccess
	impl   backend
	client http.Handler

	// ctx is cancelled by Shutdown; pending ack retries watch it.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool // guarded by mu
}

// New builds the Socket.IO server. It does not listen: mount Handler. With
// Redis, its adapter shares rooms and broadcasts with the other nodes.
func New(cfg Config, access OrderAccess) (*Server, error) {
	if access == nil {
		return nil, fmt.Errorf("%w: no order access", errConfig)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, log: cfg.Logger, obs: cfg.Observer, access: access, ctx: ctx, cancel: cancel}
	if s.impl, err = newLeanBackend(s); err != nil {
		cancel()
		return nil, err
	}
	if cfg.ClientDir != "" {
		s.client = newClientFiles(cfg.ClientDir)
	}
	return s, nil
}

// Handler serves /socket.io/: the browser client files and the protocol.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.client != nil && isClientFile(r.URL.Path) {
			s.client.ServeHTTP(w, r)
			return
		}
		s.impl.httpHandler().ServeHTTP(w, r)
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
	return s.impl.shutdown(ctx)
}

// Closed reports whether Shutdown has begun.
func (s *Server) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// ErrClosed is returned by operations after Shutdown.
var ErrClosed = errors.New("realtime server closed")

// RoomName is the Socket.IO room of an order.
func RoomName(orderID string) string { return "order-" + orderID }

// deadline bounds how long a remote lookup may take.
const fetchTimeout = 3 * time.Second
