package engineio

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// pingFrame is shared by all sessions; frames are never written to after
// they are built.
var pingFrame = textFrame(string(packetPing))

// ErrSessionClosed is returned when sending on a closed session.
var ErrSessionClosed = errors.New("engine.io: session closed")

// Message is one Engine.IO message encoded once and shared by every
// session it is sent to: a broadcast builds its websocket frame one time.
type Message struct {
	text  string
	once  sync.Once
	frame []byte
}

// NewMessage wraps the data of a message packet.
func NewMessage(data string) *Message { return &Message{text: data} }

func (m *Message) websocketFrame() []byte {
	m.once.Do(func() { m.frame = textFrame(string(packetMessage) + m.text) })
	return m.frame
}

// Session is one Engine.IO connection, whichever transport carries it.
type Session struct {
	id       string
	protocol int
	srv      *Server
	rawQuery string // parsed on demand: a parsed map per idle session cost 300 B
	remote   string

	// Data belongs to the Handler, which sets it in OnOpen.
	Data any

	dispatch sync.Mutex // serialises incoming packets across POSTs

	mu           sync.Mutex
	closed       bool          // guarded by mu
	ws           *wsConn       // guarded by mu; set once upgraded or opened on websocket
	probe        *wsConn       // guarded by mu; a websocket being upgraded to
	pollQueue    []string      // guarded by mu; encoded packets for the next poll
	pollBytes    int           // guarded by mu; bytes in pollQueue
	pollWake     chan struct{} // guarded by mu
	polling      bool          // guarded by mu; a GET is waiting
	awaitingPong bool          // guarded by mu
	timer        *time.Timer   // guarded by mu
}

func newSession(srv *Server, id string, protocol int, r *http.Request) *Session {
	return &Session{id: id, protocol: protocol, srv: srv, rawQuery: r.URL.RawQuery, remote: r.RemoteAddr}
}

// ID is the session id the client holds.
func (s *Session) ID() string { return s.id }

// Protocol is the Engine.IO protocol revision, 3 or 4.
func (s *Session) Protocol() int { return s.protocol }

// Query is the handshake request's query string.
func (s *Session) Query() url.Values {
	q, _ := url.ParseQuery(s.rawQuery)
	return q
}

// RemoteAddr is the handshake request's peer address.
func (s *Session) RemoteAddr() string { return s.remote }

// Transport names the transport now carrying the session.
func (s *Session) Transport() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ws != nil {
		return "websocket"
	}
	return "polling"
}

// Send queues a message. It never blocks on the network.
func (s *Session) Send(m *Message) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrSessionClosed
	}
	if ws := s.ws; ws != nil {
		s.mu.Unlock()
		return ws.enqueue(m.websocketFrame())
	}
	if s.pollBytes+len(m.text) > s.srv.cfg.MaxQueuedBytes {
		// A polling client that stopped polling is a slow consumer too.
		s.mu.Unlock()
		s.srv.cfg.Logger.Warn("engine.io: closing slow consumer", "session", s.id)
		go s.closeWith("slow consumer", false) // the sender may hold locks closing takes
		return ErrSessionClosed
	}
	s.queuePollLocked(string(packetMessage) + m.text)
	s.mu.Unlock()
	return nil
}

// SendText queues a message holding data.
func (s *Session) SendText(data string) error { return s.Send(NewMessage(data)) }

func (s *Session) sendPacket(kind byte, data string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if ws := s.ws; ws != nil {
		s.mu.Unlock()
		frame := pingFrame // every idle session gets one every PingInterval
		if kind != packetPing || data != "" {
			frame = textFrame(string(kind) + data)
		}
		_ = ws.enqueue(frame)
		return
	}
	s.queuePollLocked(string(kind) + data)
	s.mu.Unlock()
}

// queueFirst queues the open packet ahead of anything else.
func (s *Session) queueFirst(p string) {
	s.mu.Lock()
	s.pollQueue = append([]string{p}, s.pollQueue...)
	s.mu.Unlock()
}

// queuePollLocked queues a packet for the next poll. s.mu must be held.
func (s *Session) queuePollLocked(p string) {
	s.pollQueue = append(s.pollQueue, p)
	s.pollBytes += len(p)
	s.wakeLocked()
}

// wakeLocked releases a waiting poll. s.mu must be held.
func (s *Session) wakeLocked() {
	if s.pollWake != nil {
		select {
		case s.pollWake <- struct{}{}:
		default:
		}
	}
}

// Close sends a close packet and closes the session.
func (s *Session) Close(reason string) { s.closeWith(reason, true) }

// closeWith closes the session once; sendClose tells the client first.
func (s *Session) closeWith(reason string, sendClose bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	ws, probe := s.ws, s.probe
	s.probe = nil
	// A polling client learns of the close from its next poll, so the
	// session stays findable until then (or a ping timeout at most).
	lingers := ws == nil && sendClose && !s.polling
	if ws == nil && sendClose {
		s.pollQueue = append(s.pollQueue, string(packetClose))
	}
	s.wakeLocked()
	s.mu.Unlock()
	if ws != nil {
		if sendClose {
			ws.closeAfter(textFrame(string(packetClose)))
		} else {
			ws.close()
		}
	}
	if probe != nil {
		probe.close()
	}
	if lingers {
		time.AfterFunc(s.srv.cfg.PingTimeout, func() { s.srv.forget(s) })
	} else {
		s.srv.forget(s)
	}
	s.srv.handler.OnClose(s, reason)
}

func (s *Session) startHeartbeat() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	wait := s.srv.cfg.PingInterval
	if s.protocol < 4 {
		// Protocol 3 clients ping; the server only watches for silence.
		wait += s.srv.cfg.PingTimeout
	}
	s.timer = time.AfterFunc(wait, s.heartbeat)
}

func (s *Session) heartbeat() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.protocol < 4 || s.awaitingPong {
		s.mu.Unlock()
		s.closeWith("ping timeout", false)
		return
	}
	s.awaitingPong = true
	s.timer.Reset(s.srv.cfg.PingTimeout)
	s.mu.Unlock()
	s.sendPacket(packetPing, "")
}

// onPacket handles a packet from the session's current transport.
func (s *Session) onPacket(p packet) {
	switch p.kind {
	case packetMessage:
		s.srv.handler.OnMessage(s, p.data)
	case packetPing:
		if s.protocol < 4 {
			s.mu.Lock()
			if s.timer != nil && !s.closed {
				s.timer.Reset(s.srv.cfg.PingInterval + s.srv.cfg.PingTimeout)
			}
			s.mu.Unlock()
			s.sendPacket(packetPong, p.data)
		}
	case packetPong:
		s.mu.Lock()
		if s.awaitingPong && !s.closed {
			s.awaitingPong = false
			s.timer.Reset(s.srv.cfg.PingInterval)
		}
		s.mu.Unlock()
	case packetClose:
		s.closeWith("transport close", false)
	}
}

// servePoll answers a long-poll GET with whatever is queued, waiting for
// something if nothing is.
func (s *Session) servePoll(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed && len(s.pollQueue) == 0 {
		s.mu.Unlock()
		writeCode(w, codeUnknownSession)
		return
	}
	if s.ws != nil || s.polling {
		s.mu.Unlock()
		writeCode(w, codeBadRequest)
		if !s.isUpgraded() {
			s.closeWith("transport error", false) // overlapping polls
		}
		return
	}
	s.polling = true
	for len(s.pollQueue) == 0 && !s.closed && s.ws == nil {
		if s.pollWake == nil {
			s.pollWake = make(chan struct{}, 1)
		}
		wake := s.pollWake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-r.Context().Done():
			s.mu.Lock()
			s.polling = false
			upgraded := s.ws != nil
			s.mu.Unlock()
			if !upgraded {
				s.closeWith("transport close", false)
			}
			return
		}
		s.mu.Lock()
	}
	batch := s.pollQueue
	s.pollQueue, s.pollBytes = nil, 0
	s.polling = false
	if s.closed {
		defer s.srv.forget(s) // the close packet is on its way
	}
	if len(batch) == 0 {
		// Upgraded while waiting: a noop lets the old poll finish.
		batch = []string{string(packetNoop)}
	}
	s.mu.Unlock()
	body := appendPayload(make([]byte, 0, 256), batch, s.protocol)
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

func (s *Session) isUpgraded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ws != nil
}

// servePost reads a polling body and handles its packets in order.
func (s *Session) servePost(w http.ResponseWriter, r *http.Request) {
	if s.isUpgraded() {
		writeCode(w, codeBadRequest)
		return
	}
	limit := int64(s.srv.cfg.MaxPayload)
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		writeCode(w, codeBadRequest)
		s.closeWith("transport error", false)
		return
	}
	if int64(len(body)) > limit {
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
		s.closeWith("transport error", false)
		return
	}
	packets, err := decodePayload(string(body), s.protocol)
	if err != nil {
		writeCode(w, codeBadRequest)
		s.closeWith("parse error", false)
		return
	}
	s.dispatch.Lock()
	for _, p := range packets {
		s.onPacket(p)
	}
	s.dispatch.Unlock()
	w.Header().Set("Content-Type", "text/html")
	_, _ = w.Write([]byte("ok"))
}

// attachWebSocket makes c the session's transport, moving queued packets
// onto it. The caller starts c reading.
func (s *Session) attachWebSocket(c *wsConn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.close()
		return
	}
	s.switchToWebSocketLocked(c)
	s.mu.Unlock()
}

// switchToWebSocketLocked makes c the transport and moves the queued
// packets onto it before any later Send can reach it, so order is kept.
// s.mu must be held (enqueue takes only c.mu, never s.mu).
func (s *Session) switchToWebSocketLocked(c *wsConn) {
	s.ws = c
	for _, p := range s.pollQueue {
		_ = c.enqueue(textFrame(p))
	}
	s.pollQueue, s.pollBytes = nil, 0
	s.wakeLocked()
}

// upgrade accepts a websocket that probes, then takes over from polling.
func (s *Session) upgrade(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	busy := s.ws != nil || s.probe != nil || s.closed
	s.mu.Unlock()
	if busy {
		writeCode(w, codeBadRequest)
		return
	}
	conn, early, err := upgradeWebSocket(w, r)
	if err != nil {
		if errors.Is(err, errNotWebSocket) {
			writeCode(w, codeBadRequest)
		}
		return
	}
	c := newWSConn(s, conn, early)
	c.probing = true
	s.mu.Lock()
	if s.ws != nil || s.probe != nil || s.closed {
		s.mu.Unlock()
		c.close()
		return
	}
	s.probe = c
	s.mu.Unlock()
	time.AfterFunc(s.srv.cfg.UpgradeTimeout, func() {
		s.mu.Lock()
		stale := s.probe == c
		if stale {
			s.probe = nil
		}
		s.mu.Unlock()
		if stale {
			c.close()
		}
	})
	c.start()
}

// onProbePacket handles a packet on a websocket that is still probing.
func (s *Session) onProbePacket(c *wsConn, p packet) {
	switch {
	case p.kind == packetPing && p.data == "probe":
		_ = c.enqueue(textFrame(string(packetPong) + "probe"))
		s.releasePollsDuringProbe(c)
	case p.kind == packetUpgrade:
		s.mu.Lock()
		if s.probe != c || s.closed {
			s.mu.Unlock()
			c.close()
			return
		}
		s.probe = nil
		c.probing = false
		s.switchToWebSocketLocked(c)
		s.mu.Unlock()
		s.srv.handler.OnUpgrade(s)
	default:
		s.mu.Lock()
		if s.probe == c {
			s.probe = nil
		}
		s.mu.Unlock()
		c.close()
	}
}

// releasePollsDuringProbe answers a waiting poll with a noop now and every
// 100 ms until the upgrade ends: the client pauses polling only once its
// outstanding poll returns, and it may start one after the probe.
func (s *Session) releasePollsDuringProbe(c *wsConn) {
	s.mu.Lock()
	if s.probe != c || s.closed {
		s.mu.Unlock()
		return
	}
	if s.polling && len(s.pollQueue) == 0 {
		s.queuePollLocked(string(packetNoop))
	}
	s.mu.Unlock()
	time.AfterFunc(100*time.Millisecond, func() { s.releasePollsDuringProbe(c) })
}

// onWebSocketGone is called when c fails or the peer closes it.
func (s *Session) onWebSocketGone(c *wsConn, reason string) {
	s.mu.Lock()
	active := s.ws == c
	if s.probe == c {
		s.probe = nil
	}
	s.mu.Unlock()
	if active {
		s.closeWith(reason, false)
	}
}
