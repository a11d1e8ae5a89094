// Package socketio is a lean Socket.IO server on the engineio package: the
// protocol revisions of socket.io-client 2, 3 and 4, namespaces, rooms,
// acknowledgements in both directions, broadcasts encoded once, and
// connection state recovery on one node.
package socketio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"paystatus/realtime/engineio"
)

// Defaults of Config's limits on inbound events.
const (
	// DefaultMaxEventBytes is Config.MaxEventBytes's default.
	DefaultMaxEventBytes = 8 << 10
	// DefaultMaxEventDepth is Config.MaxEventDepth's default.
	DefaultMaxEventDepth = 8
)

// Config configures the server. Zero fields take the default named.
type Config struct {
	Engine engineio.Config
	// ConnectTimeout is how long a client may take to join a namespace
	// after its connection opens (45 s).
	ConnectTimeout time.Duration
	// RecoveryWindow keeps a dropped socket's rooms and missed broadcasts
	// this long for connection state recovery; zero disables recovery.
	RecoveryWindow time.Duration
	// MaxEventBytes bounds the JSON of one inbound event, ack or connect
	// payload; MaxEventDepth bounds its nesting. Both are checked before the
	// JSON is decoded; a packet beyond them closes the connection. Zero
	// means DefaultMaxEventBytes and DefaultMaxEventDepth.
	MaxEventBytes int
	MaxEventDepth int
	// MaxAttachments bounds the binary attachments of one binary event or
	// ack (10); their total size is bounded by Engine.MaxPayload.
	MaxAttachments int
	// Logger receives warnings (slog.Default()).
	Logger *slog.Logger
	// Adapter builds each namespace's adapter (NewMemoryAdapter: a node
	// alone).
	Adapter AdapterFactory
	// AdapterKeepsSessions says the adapter persists and restores sessions
	// and numbers broadcasts itself, so this node keeps no recovery record.
	AdapterKeepsSessions bool
}

// Server is a Socket.IO server; mount it as an http.Handler.
type Server struct {
	cfg      Config
	eng      *engineio.Server
	recovery *recoveryStore // nil when recovery is off

	maxAttachments int // Config.MaxAttachments with its default
	maxBinaryBytes int // the engine's MaxPayload with its default

	mu         sync.RWMutex
	namespaces map[string]*Namespace // guarded by mu
}

// NewServer builds a server with the root namespace "/".
func NewServer(cfg Config) (*Server, error) {
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 45 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxEventBytes == 0 {
		cfg.MaxEventBytes = DefaultMaxEventBytes
	}
	if cfg.MaxEventDepth == 0 {
		cfg.MaxEventDepth = DefaultMaxEventDepth
	}
	if cfg.MaxEventBytes < 0 || cfg.MaxEventDepth < 0 {
		return nil, errors.New("socket.io: negative event limit")
	}
	if cfg.Engine.Logger == nil {
		cfg.Engine.Logger = cfg.Logger
	}
	if cfg.MaxAttachments == 0 {
		cfg.MaxAttachments = 10
	}
	if cfg.MaxAttachments < 0 || cfg.Engine.MaxPayload < 0 {
		return nil, errors.New("socket.io: negative setting")
	}
	s := &Server{cfg: cfg, namespaces: make(map[string]*Namespace), maxAttachments: cfg.MaxAttachments, maxBinaryBytes: cfg.Engine.MaxPayload}
	if s.maxBinaryBytes == 0 {
		s.maxBinaryBytes = 1_000_000 // the engine's default
	}
	if cfg.Adapter == nil {
		cfg.Adapter = NewMemoryAdapter
		cfg.AdapterKeepsSessions = false
	}
	s.cfg = cfg
	if cfg.RecoveryWindow > 0 && !cfg.AdapterKeepsSessions {
		s.recovery = newRecoveryStore(cfg.RecoveryWindow)
	}
	eng, err := engineio.NewServer(cfg.Engine, engineHandler{s})
	if err != nil {
		return nil, err
	}
	s.eng = eng
	s.Of("/")
	return s, nil
}

// Of returns the namespace called name, creating it.
func (s *Server) Of(name string) *Namespace {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.namespaces[name]; ok {
		return n
	}
	n := &Namespace{name: name, server: s, sockets: make(map[string]*Socket), rooms: make(map[string]roomSet)}
	n.adapter = s.cfg.Adapter(n)
	s.namespaces[name] = n
	return n
}

func (s *Server) namespace(name string) *Namespace {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.namespaces[name]
}

// ServeHTTP serves the Engine.IO transports.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.eng.ServeHTTP(w, r) }

// Shutdown disconnects every client, then closes the adapters.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.eng.Shutdown(ctx)
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, n := range s.namespaces {
		err = errors.Join(err, n.adapter.Close())
	}
	return err
}

// recoveryOn reports whether connection state recovery is enabled.
func (s *Server) recoveryOn() bool { return s.cfg.RecoveryWindow > 0 }

// engineHandler adapts Engine.IO session events to Socket.IO clients.
type engineHandler struct{ s *Server }

func (h engineHandler) OnOpen(sess *engineio.Session) {
	c := &client{server: h.s, sess: sess}
	sess.Data = c
	if sess.Protocol() < 4 {
		// Socket.IO 2 clients are in the root namespace from the start.
		c.connect(h.s.namespace("/"), nil)
		return
	}
	c.connectTimer = time.AfterFunc(h.s.cfg.ConnectTimeout, func() {
		if !c.hasSockets() {
			sess.Close("connect timeout")
		}
	})
}

func (h engineHandler) OnMessage(sess *engineio.Session, data string) {
	if c, ok := sess.Data.(*client); ok {
		c.onPacket(data)
	}
}

func (h engineHandler) OnClose(sess *engineio.Session, reason string) {
	if c, ok := sess.Data.(*client); ok {
		c.onClose(reason)
	}
}

func (h engineHandler) OnUpgrade(sess *engineio.Session) {
	if c, ok := sess.Data.(*client); ok {
		for _, sock := range c.socketList() {
			if h := sock.Handler; h != nil {
				h.OnUpgrade()
			}
		}
	}
}

// client is one Engine.IO session and the sockets it has in namespaces.
type client struct {
	server       *Server
	sess         *engineio.Session
	connectTimer *time.Timer
	// binary is the binary packet whose attachments are arriving; only
	// message dispatch touches it, one message at a time per session.
	binary *pendingBinary

	mu      sync.Mutex
	sockets []*Socket // guarded by mu; one per namespace, usually one
}

func (c *client) hasSockets() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sockets) > 0
}

func (c *client) socketList() []*Socket {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Socket(nil), c.sockets...)
}

func (c *client) socketIn(nsp string) *Socket {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.sockets {
		if s.nsp.name == nsp {
			return s
		}
	}
	return nil
}

// modern reports whether the client speaks Socket.IO 5 (clients 3 and 4).
func (c *client) modern() bool { return c.sess.Protocol() >= 4 }

func (c *client) onPacket(data string) {
	if c.binary != nil {
		c.closeOnBadPacket(fmt.Errorf("%w: text packet while attachments are awaited", ErrUnexpectedBinary))
		return
	}
	p, err := decodePacket(data)
	if err != nil {
		c.closeOnBadPacket(err)
		return
	}
	if p.kind == packetBinaryEvent || p.kind == packetBinaryAck {
		if err := c.startBinary(p); err != nil {
			c.closeOnBadPacket(err)
		}
		return
	}
	if p.kind == packetConnect {
		n := c.server.namespace(p.nsp)
		if n == nil {
			c.connectError(p.nsp, "Invalid namespace")
			return
		}
		var auth map[string]any
		if p.data != "" {
			if !c.server.payloadAllowed(p.data) {
				c.connectError(p.nsp, "Invalid auth payload")
				return
			}
			if err := json.Unmarshal([]byte(p.data), &auth); err != nil {
				c.connectError(p.nsp, "Invalid auth payload")
				return
			}
		}
		if c.socketIn(p.nsp) == nil {
			c.connect(n, auth)
		}
		return
	}
	sock := c.socketIn(p.nsp)
	if sock == nil {
		return // not connected to that namespace: dropped, as Node does
	}
	sock.onPacket(p)
}

func (c *client) connectError(nsp, message string) {
	var data []byte
	if c.modern() {
		data, _ = json.Marshal(map[string]string{"message": message})
	} else {
		data, _ = json.Marshal(message)
	}
	_ = c.sess.SendText(encode(packetConnectError, nsp, -1, data))
}

// connect admits the client to a namespace, restoring a recovered session
// when its auth names one.
func (c *client) connect(n *Namespace, auth map[string]any) {
	sock := &Socket{nsp: n, client: c, sess: c.sess, auth: auth, handshaking: true}
	c.mu.Lock()
	c.sockets = append(c.sockets, sock)
	c.mu.Unlock()
	if c.connectTimer != nil {
		c.connectTimer.Stop()
	}
	// Restoring, replying, replaying what was missed and joining the rooms
	// happen under the namespace lock, so that no broadcast falls between
	// the missed packets and the live ones or overtakes the connect reply.
	// An adapter that keeps sessions in another process is asked before the
	// lock is taken: no broadcast should wait on its round trip.
	var restored Session
	var ok bool
	pid, offset := "", ""
	recovering := c.server.recoveryOn() && c.modern()
	if recovering {
		pid, _ = auth["pid"].(string)
		offset, _ = auth["offset"].(string)
		if auth != nil {
			delete(auth, "pid")
			delete(auth, "offset")
		}
		if pid != "" && offset != "" && c.server.cfg.AdapterKeepsSessions {
			ctx, cancel := context.WithTimeout(context.Background(), restoreTimeout)
			restored, ok = n.adapter.RestoreSession(ctx, pid, offset)
			cancel()
		}
	}
	n.mu.Lock()
	if recovering && !c.server.cfg.AdapterKeepsSessions {
		restored, ok = n.adapter.RestoreSession(context.Background(), pid, offset)
	}
	var missed []string
	if ok {
		sock.id, sock.pid, sock.recovered = restored.SID, pid, true
		sock.rooms = restored.Rooms
		missed = restored.Missed
	}
	if recovering && sock.pid == "" {
		sock.pid = randomID()
	}
	if sock.id == "" {
		sock.id = randomID()
	}
	if c.modern() {
		reply := map[string]string{"sid": sock.id}
		if sock.pid != "" {
			reply["pid"] = sock.pid
		}
		data, _ := json.Marshal(reply)
		_ = c.sess.SendText(encode(packetConnect, n.name, -1, data))
	} else if n.name != "/" {
		_ = c.sess.SendText(encode(packetConnect, n.name, -1, nil))
	} else {
		_ = c.sess.SendText(string(packetConnect))
	}
	for _, m := range missed {
		_ = c.sess.SendText(m)
	}
	created := n.addLocked(sock)
	n.mu.Unlock()
	if n.OnRoomCreated != nil {
		for _, r := range created {
			n.OnRoomCreated(r)
		}
	}
	sock.mu.Lock()
	early := sock.closedFor
	sock.closedFor = ""
	sock.mu.Unlock()
	if early != "" {
		sock.onClose(early) // the connection closed while it was registered
	}
	if f := n.OnConnection; f != nil {
		f(sock)
	}
	sock.finishHandshake()
}

func (c *client) remove(sock *Socket) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.sockets {
		if s == sock {
			c.sockets = append(c.sockets[:i], c.sockets[i+1:]...)
			return
		}
	}
}

func (c *client) onClose(reason string) {
	if c.connectTimer != nil {
		c.connectTimer.Stop()
	}
	for _, sock := range c.socketList() {
		sock.onClose(reason)
	}
}

// restoreTimeout bounds an adapter's session lookup during a connect.
const restoreTimeout = 2 * time.Second

func randomID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
