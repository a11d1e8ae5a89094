// Package engineio is a lean Engine.IO server (protocols 3 and 4, polling
// and websocket with upgrade) for the realtime package. An idle websocket
// session holds no goroutine and no buffer: on Linux a shared epoll loop
// watches the sockets and a goroutine runs only while bytes arrive or a
// write is pending.
package engineio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Config's limits.
const (
	// DefaultMaxPayload is Config.MaxPayload's default, Engine.IO's own.
	DefaultMaxPayload = 1_000_000
	// DefaultMaxQueuedBytes is Config.MaxQueuedBytes's default.
	DefaultMaxQueuedBytes = 1 << 20
	// DefaultMaxSessions is Config.MaxSessions's default.
	DefaultMaxSessions = 20_000
)

// Config configures the server. Zero fields take the default named.
type Config struct {
	// PingInterval and PingTimeout drive heartbeats (25 s, 20 s).
	PingInterval time.Duration
	PingTimeout  time.Duration
	// UpgradeTimeout bounds a polling-to-websocket upgrade (10 s).
	UpgradeTimeout time.Duration
	// MaxPayload bounds one message or polling body in bytes; zero means
	// DefaultMaxPayload.
	MaxPayload int
	// AllowEIO3 accepts Engine.IO protocol 3 (socket.io-client 2.x).
	AllowEIO3 bool
	// CORSOrigins lists the origins allowed for polling; empty allows any.
	CORSOrigins []string
	// MaxQueuedBytes bounds what may wait to be written to one session;
	// beyond it the session is closed as a slow consumer. Zero means
	// DefaultMaxQueuedBytes.
	MaxQueuedBytes int
	// MaxSessions caps the open sessions; a handshake beyond it is answered
	// 503. Zero means DefaultMaxSessions.
	MaxSessions int
	// OnSessionsFull, when set, is called for each handshake refused
	// because MaxSessions was reached.
	OnSessionsFull func()
	// WriteTimeout bounds one websocket write (10 s).
	WriteTimeout time.Duration
	// NoSendRing writes each websocket of a batch with a system call of its
	// own even where io_uring is available (for comparison, and to test
	// that path).
	NoSendRing bool
	// Logger receives warnings (slog.Default()).
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.PingInterval, 25*time.Second)
	def(&c.PingTimeout, 20*time.Second)
	def(&c.UpgradeTimeout, 10*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	if c.MaxPayload == 0 {
		c.MaxPayload = DefaultMaxPayload
	}
	if c.MaxQueuedBytes == 0 {
		c.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.PingInterval < 0 || c.PingTimeout < 0 || c.UpgradeTimeout < 0 || c.WriteTimeout < 0 || c.MaxPayload < 0 || c.MaxQueuedBytes < 0 || c.MaxSessions < 0 {
		return c, errors.New("engine.io: negative setting")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// Handler is told about sessions. OnOpen runs before the handshake reply is
// sent, so whatever it sends is queued behind the open packet.
type Handler interface {
	OnOpen(s *Session)
	// OnMessage runs for each message, one at a time per session.
	OnMessage(s *Session, data string)
	// OnClose runs once, after the session is gone.
	OnClose(s *Session, reason string)
	// OnUpgrade runs when a polling session moves to websocket.
	OnUpgrade(s *Session)
}

// BinaryHandler is implemented by a Handler that takes binary messages.
// Without it a binary message closes the session as a parse error.
type BinaryHandler interface {
	// OnBinary runs for each binary message, in order with OnMessage; the
	// handler owns data.
	OnBinary(s *Session, data []byte)
}

// Server serves Engine.IO under whatever path it is mounted at.
type Server struct {
	cfg     Config
	handler Handler
	poller  *poller                  // nil where the platform has none
	ring    atomic.Pointer[sendRing] // nil where io_uring is unavailable or failed
	hb      *heartbeats

	keptBatch atomic.Pointer[Batch] // see NewBatch

	mu       sync.Mutex
	sessions map[string]*Session // guarded by mu
	closed   bool                // guarded by mu
}

// NewServer builds a server; call Shutdown to close every session.
func NewServer(cfg Config, h Handler) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("engine.io: no handler")
	}
	s := &Server{cfg: cfg, handler: h, sessions: make(map[string]*Session)}
	s.hb = newHeartbeats(min(cfg.PingInterval, cfg.PingTimeout), cfg.PingInterval+cfg.PingTimeout)
	if s.poller, err = newPoller(); err != nil {
		cfg.Logger.Warn("engine.io: no epoll, one goroutine per websocket", "error", err)
		s.poller = nil
	}
	if s.poller != nil && !cfg.NoSendRing {
		if ring, err := newSendRing(); err == nil {
			s.ring.Store(ring)
		} else {
			cfg.Logger.Info("engine.io: no io_uring, one write per socket", "error", err)
		}
	}
	return s, nil
}

// Engine.IO error codes, sent as {"code":N,"message":"..."} with status 400.
const (
	codeUnknownTransport = 0
	codeUnknownSession   = 1
	codeBadHandshake     = 2
	codeBadRequest       = 3
	codeForbidden        = 4
	codeUnsupported      = 5
)

var codeMessages = map[int]string{
	codeUnknownTransport: "Transport unknown",
	codeUnknownSession:   "Session ID unknown",
	codeBadHandshake:     "Bad handshake method",
	codeBadRequest:       "Bad request",
	codeForbidden:        "Forbidden",
	codeUnsupported:      "Unsupported protocol version",
}

func writeCode(w http.ResponseWriter, code int) {
	status := http.StatusBadRequest
	if code == codeForbidden {
		status = http.StatusForbidden
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]any{"code": code, "message": codeMessages[code]})
	_, _ = w.Write(body)
}

// ServeHTTP handles handshakes, polling requests and websocket upgrades.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.cors(w, r) {
		writeCode(w, codeForbidden)
		return
	}
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	q := r.URL.Query()
	protocol := 0
	switch q.Get("EIO") {
	case "4":
		protocol = 4
	case "3":
		if s.cfg.AllowEIO3 {
			protocol = 3
		}
	}
	if protocol == 0 {
		writeCode(w, codeUnsupported)
		return
	}
	transport := q.Get("transport")
	if transport != "polling" && transport != "websocket" {
		writeCode(w, codeUnknownTransport)
		return
	}
	if transport == "polling" && q.Has("j") {
		writeCode(w, codeUnknownTransport) // JSONP is not offered
		return
	}
	isUpgrade := headerHasToken(r.Header, "Upgrade", "websocket")
	if transport == "websocket" && !isUpgrade {
		writeCode(w, codeBadRequest)
		return
	}
	sid := q.Get("sid")
	if sid == "" {
		if transport == "polling" && r.Method != http.MethodGet {
			writeCode(w, codeBadHandshake)
			return
		}
		s.handshake(w, r, protocol, transport)
		return
	}
	sess := s.lookup(sid)
	if sess == nil || sess.protocol != protocol {
		writeCode(w, codeUnknownSession)
		return
	}
	if transport == "websocket" {
		sess.upgrade(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet:
		sess.servePoll(w, r)
	case http.MethodPost:
		sess.servePost(w, r)
	default:
		writeCode(w, codeBadRequest)
	}
}

// cors sets the CORS headers polling needs; false refuses the origin.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if len(s.cfg.CORSOrigins) == 0 {
		w.Header().Set("Access-Control-Allow-Origin", "*")
	} else {
		allowed := false
		for _, o := range s.cfg.CORSOrigins {
			allowed = allowed || o == origin
		}
		if !allowed {
			return false
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Add("Vary", "Origin")
	}
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		if h := r.Header.Get("Access-Control-Request-Headers"); h != "" {
			w.Header().Set("Access-Control-Allow-Headers", h)
		}
	}
	return true
}

func (s *Server) handshake(w http.ResponseWriter, r *http.Request, protocol int, transport string) {
	id := newSessionID()
	open := map[string]any{
		"sid":          id,
		"upgrades":     []string{},
		"pingInterval": s.cfg.PingInterval.Milliseconds(),
		"pingTimeout":  s.cfg.PingTimeout.Milliseconds(),
	}
	if transport == "polling" {
		open["upgrades"] = []string{"websocket"}
	}
	if protocol >= 4 {
		open["maxPayload"] = s.cfg.MaxPayload
	}
	body, _ := json.Marshal(open)
	sess := newSession(s, id, protocol, r, string(packetOpen)+string(body))
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeCode(w, codeBadRequest)
		return
	}
	if len(s.sessions) >= s.cfg.MaxSessions {
		s.mu.Unlock()
		if s.cfg.OnSessionsFull != nil {
			s.cfg.OnSessionsFull()
		}
		writeFull(w)
		return
	}
	s.sessions[sess.id] = sess
	s.mu.Unlock()
	var ws *wsConn
	if transport == "websocket" {
		conn, early, err := upgradeWebSocket(w, r)
		if err != nil {
			s.forget(sess)
			if errors.Is(err, errNotWebSocket) {
				writeCode(w, codeBadRequest)
			}
			return
		}
		ws = newWSConn(sess, conn, early)
		ws.base64 = protocol < 4 && wantsBase64(r)
		sess.attachWebSocket(ws)
	}
	// The handler sees the session on its final transport, and what it
	// sends follows the open packet.
	s.handler.OnOpen(sess)
	sess.startHeartbeat()
	if ws != nil {
		ws.start()
		return
	}
	sess.servePoll(w, r)
}

func (s *Server) lookup(sid string) *Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[sid]
}

func (s *Server) forget(sess *Session) {
	s.mu.Lock()
	if s.sessions[sess.id] == sess {
		delete(s.sessions, sess.id)
	}
	s.mu.Unlock()
}

// Len reports the open sessions.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Shutdown closes every session, sending each a close packet, and stops
// the poller. New handshakes are refused from the first call.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	all := make([]*Session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	for i, sess := range all {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("engine.io shutdown: %d sessions left open: %w", len(all)-i, err)
		}
		sess.closeWith("server shutting down", true)
	}
	if s.poller != nil {
		s.poller.close()
	}
	if ring := s.ring.Swap(nil); ring != nil {
		ring.close()
	}
	return nil
}

func newSessionID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return strings.TrimRight(base64.URLEncoding.EncodeToString(b[:]), "=")
}
