package engineio

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrSessionClosed is returned when sending on a closed session.
var ErrSessionClosed = errors.New("engine.io: session closed")

// Message is one Engine.IO packet encoded once and shared by every session
// it is sent to: a broadcast builds its websocket frame one time. Frames
// are never written to once built.
type Message struct {
	packet string // type character and data, as a polling payload holds it
	binary bool   // packet is the raw data of a binary message, no type
	once   sync.Once
	frame  []byte
}

// NewBinaryMessage wraps the data of a binary message. The data is copied.
func NewBinaryMessage(data []byte) *Message { return &Message{packet: string(data), binary: true} }

// NewMessage wraps the data of a message packet.
func NewMessage(data string) *Message { return controlMessage(packetMessage, data) }

// MessageType is the type byte that begins a message packet.
const MessageType byte = packetMessage

// NewMessagePacket wraps a whole message packet: MessageType, then the
// data. A caller that builds the packet anyway saves the copy NewMessage
// makes to put the type in front.
func NewMessagePacket(packet string) *Message { return &Message{packet: packet} }

func controlMessage(kind byte, data string) *Message {
	return &Message{packet: string(kind) + data}
}

// pingMessage is shared: every idle session gets one every PingInterval.
var pingMessage = controlMessage(packetPing, "")

func (m *Message) websocketFrame() []byte {
	m.once.Do(func() { m.frame = textFrame(m.packet) })
	return m.frame
}

// frameFor is the websocket frame of m for a connection: a text message's
// shared frame, or a binary message in the connection's encoding.
func (m *Message) frameFor(c *wsConn) []byte {
	if !m.binary {
		return m.websocketFrame()
	}
	return binaryFrame(m.packet, c.sess.protocol, c.base64)
}

// pollEntry is m as a polling queue holds it for a session.
func (m *Message) pollEntry(s *Session) string {
	if !m.binary {
		return m.packet
	}
	return binaryPollEntry(m.packet, s.protocol, s.base64)
}

// Session is one Engine.IO connection, whichever transport carries it.
type Session struct {
	id       string
	protocol int
	srv      *Server
	remote   string
	// base64: a protocol 3 polling client without binary support (b64 in
	// its query) gets binary messages as base64 text packets.
	base64 bool

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
	closedByPost bool          // guarded by mu; see closeByClient
	// hbDue is the tick of the next heartbeat on the server's wheel, 0
	// when none is pending; written with mu held.
	hbDue atomic.Int64
}

// newSession builds a session whose first packet for the client is open.
func newSession(srv *Server, id string, protocol int, r *http.Request, open string) *Session {
	s := &Session{id: id, protocol: protocol, srv: srv, remote: r.RemoteAddr, pollQueue: []string{open}}
	s.pollBytes = queuedCost(open)
	s.base64 = protocol < 4 && wantsBase64(r)
	return s
}

// wantsBase64 reports whether a protocol 3 request asks for binary data as
// base64 text.
func wantsBase64(r *http.Request) bool {
	return strings.Contains(r.URL.RawQuery, "b64") && r.URL.Query().Has("b64")
}

// ID is the session id the client holds.
func (s *Session) ID() string { return s.id }

// Protocol is the Engine.IO protocol revision, 3 or 4.
func (s *Session) Protocol() int { return s.protocol }

// Query holds the handshake parameters the session keeps: the protocol
// revision. The rest of the handshake's
// query is not kept, so a long query costs nothing once it is answered.
func (s *Session) Query() url.Values {
	return url.Values{"EIO": {strconv.Itoa(s.protocol)}}
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
func (s *Session) Send(m *Message) error { return s.SendIn(nil, m) }

// SendIn queues m for the session as part of b (nil: on its own). Until b
// is flushed, the session's later frames wait behind this one, so order is
// kept.
func (s *Session) SendIn(b *Batch, m *Message) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrSessionClosed
	}
	if ws := s.ws; ws != nil {
		s.mu.Unlock()
		if b != nil && b.srv.ring.Load() == nil {
			b = nil // without io_uring a batch saves nothing: write at once
		}
		return ws.enqueueIn(b, m.frameFor(ws))
	}
	// Every packet counts, control packets included: a client that sends
	// pings and never polls must not grow the queue without bound.
	entry := m.pollEntry(s)
	if s.pollBytes+queuedCost(entry) > s.srv.cfg.MaxQueuedBytes {
		// A polling client that stopped polling is a slow consumer too.
		s.mu.Unlock()
		s.srv.cfg.Logger.Warn("engine.io: closing slow consumer", "session", s.id)
		go s.closeWith("slow consumer", false) // the sender may hold locks closing takes
		return ErrSessionClosed
	}
	s.queuePollLocked(entry)
	s.mu.Unlock()
	return nil
}

// SendGroup queues messages that must reach the client together, with no
// other message between them: a Socket.IO binary packet and its
// attachments. It never blocks on the network.
func (s *Session) SendGroup(ms ...*Message) error {
	if len(ms) == 1 {
		return s.Send(ms[0])
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrSessionClosed
	}
	if ws := s.ws; ws != nil {
		s.mu.Unlock()
		// One write of the frames back to back keeps them together.
		var frames []byte
		for _, m := range ms {
			frames = append(frames, m.frameFor(ws)...)
		}
		return ws.enqueue(frames)
	}
	entries := make([]string, len(ms))
	size := 0
	for i, m := range ms {
		entries[i] = m.pollEntry(s)
		size += queuedCost(entries[i])
	}
	if s.pollBytes+size > s.srv.cfg.MaxQueuedBytes {
		s.mu.Unlock()
		s.srv.cfg.Logger.Warn("engine.io: closing slow consumer", "session", s.id)
		go s.closeWith("slow consumer", false)
		return ErrSessionClosed
	}
	for _, e := range entries {
		s.queuePollLocked(e)
	}
	s.mu.Unlock()
	return nil
}

// SendText queues a message holding data.
func (s *Session) SendText(data string) error { return s.Send(NewMessage(data)) }

// queuePollLocked queues a packet for the next poll. s.mu must be held.
func (s *Session) queuePollLocked(p string) {
	s.pollQueue = append(s.pollQueue, p)
	s.pollBytes += queuedCost(p)
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
	s.srv.hb.cancel(s)
	ws, probe := s.ws, s.probe
	s.probe = nil
	// A polling client learns of the close from its next poll, so the
	// session stays findable until then (or a ping timeout at most).
	lingers := ws == nil && (sendClose || s.closedByPost) && !s.polling
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
		wait = s.silenceLimit()
	}
	s.srv.hb.schedule(s, wait)
}

// silenceLimit is how long a protocol 3 client may go without pinging:
// those clients ping, and the server only watches for silence.
func (s *Session) silenceLimit() time.Duration {
	return s.srv.cfg.PingInterval + s.srv.cfg.PingTimeout
}

// heartbeatAt runs the heartbeat that fell due at tick due, unless the
// session has been rescheduled or closed since.
func (s *Session) heartbeatAt(due int64) {
	s.mu.Lock()
	if s.closed || s.hbDue.Load() != due {
		s.mu.Unlock()
		return
	}
	s.hbDue.Store(0)
	if s.protocol < 4 || s.awaitingPong {
		s.mu.Unlock()
		s.closeWith("ping timeout", false)
		return
	}
	s.awaitingPong = true
	s.srv.hb.schedule(s, s.srv.cfg.PingTimeout)
	s.mu.Unlock()
	_ = s.Send(pingMessage)
}

// onPacket handles a packet from the session's current transport.
func (s *Session) onPacket(p packet) {
	switch p.kind {
	case packetMessage:
		if !p.binary {
			s.srv.handler.OnMessage(s, p.data)
			return
		}
		bh, ok := s.srv.handler.(BinaryHandler)
		if !ok {
			s.srv.cfg.Logger.Info("engine.io: closing on a binary message the handler does not take", "session", s.id)
			s.closeWith("parse error", false)
			return
		}
		bh.OnBinary(s, []byte(p.data))
	case packetPing:
		if s.protocol < 4 {
			s.mu.Lock()
			if s.hbDue.Load() != 0 && !s.closed {
				s.srv.hb.schedule(s, s.silenceLimit())
			}
			s.mu.Unlock()
			_ = s.Send(controlMessage(packetPong, pongData(p.data)))
		}
	case packetPong:
		s.mu.Lock()
		if s.awaitingPong && !s.closed {
			s.awaitingPong = false
			s.srv.hb.schedule(s, s.srv.cfg.PingInterval)
		}
		s.mu.Unlock()
	case packetClose:
		s.closeByClient()
	}
}

// closeByClient handles the client's close packet. A poll may be racing
// the POST that carried it: sent first, it can still be handled second.
// It gets the noop it would have had had it come first, and the session
// lingers for it as for a server close; later requests get 400.
func (s *Session) closeByClient() {
	s.mu.Lock()
	if s.ws == nil && !s.polling && !s.closed {
		s.closedByPost = true
		s.pollQueue, s.pollBytes = append(s.pollQueue[:0], string(packetNoop)), queuedCost(string(packetNoop))
	}
	s.mu.Unlock()
	s.closeWith("transport close", false)
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
		overlapping := s.ws == nil
		s.mu.Unlock()
		writeCode(w, codeBadRequest)
		if overlapping {
			// As Node does: the waiting poll gets the close packet, and
			// the session is gone for every later request.
			s.closeWith("transport error", true)
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
	if len(batch) == 0 && s.ws != nil && !s.closed {
		// Upgraded while waiting. A client sends the upgrade packet only
		// once its poll has returned (the probe releases it with a noop),
		// so this poll is not that client's: it gets what any poll after
		// the upgrade gets, as the Engine.IO suite expects.
		s.mu.Unlock()
		writeCode(w, codeBadRequest)
		return
	}
	if len(batch) == 0 {
		// Closed while waiting: a noop lets the poll finish.
		batch = []string{string(packetNoop)}
	}
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	if s.protocol < 4 && hasRawBinary(batch) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(appendBinaryPayload(nil, batch))
		return
	}
	body := appendPayload(make([]byte, 0, 256), batch, s.protocol)
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	_, _ = w.Write(body)
}

func (s *Session) isUpgraded() bool { return !s.isTransport(nil) }

// isTransport reports whether c is the websocket carrying the session (nil:
// none is, the session is on polling).
func (s *Session) isTransport(c *wsConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ws == c
}

// servePost reads a polling body and handles its packets in order.
func (s *Session) servePost(w http.ResponseWriter, r *http.Request) {
	if s.isUpgraded() {
		writeCode(w, codeBadRequest)
		return
	}
	limit := int64(s.srv.cfg.MaxPayload)
	if r.ContentLength > limit {
		// Refused from its header: nothing of it is read.
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
		s.closeWith("transport error", false)
		return
	}
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
	var packets []packet
	if s.protocol < 4 && isBinaryPayload(body) {
		packets, err = decodeBinaryPayload(body)
	} else {
		packets, err = decodePayload(string(body), s.protocol)
	}
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
		_ = c.enqueue(pollEntryFrame(p, s.protocol, c.base64))
	}
	s.pollQueue, s.pollBytes = nil, 0
	s.wakeLocked()
}

// upgrade accepts a websocket that probes, then takes over from polling.
func (s *Session) upgrade(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closed, busy := s.closed, s.ws != nil || s.probe != nil
	s.mu.Unlock()
	if closed {
		writeCode(w, codeBadRequest)
		return
	}
	if busy {
		// Node accepts the websocket and closes it at once, so a client
		// sees a close rather than a failed handshake.
		if conn, _, err := upgradeWebSocket(w, r); err == nil {
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = conn.Write(closeFrame(0))
			_ = conn.Close()
		} else if errors.Is(err, errNotWebSocket) {
			writeCode(w, codeBadRequest)
		}
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
	c.base64 = s.protocol < 4 && wantsBase64(r)
	s.mu.Lock()
	if s.ws != nil || s.probe != nil || s.closed {
		s.mu.Unlock()
		c.close()
		return
	}
	s.probe = c
	s.mu.Unlock()
	time.AfterFunc(s.srv.cfg.UpgradeTimeout, func() {
		if s.dropProbe(c) {
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
		s.dropProbe(c)
		c.writeCloseFrame(0)
		c.close()
	}
}

// dropProbe forgets c if it is the websocket being probed, and says so.
func (s *Session) dropProbe(c *wsConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.probe != c {
		return false
	}
	s.probe = nil
	return true
}

// probePollRelease is how often a poll held during an upgrade is released.
const probePollRelease = 100 * time.Millisecond

// releasePollsDuringProbe answers a waiting poll with a noop now and every
// probePollRelease until the upgrade ends: the client pauses polling only
// once its outstanding poll returns, and it may start one after the probe.
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
	time.AfterFunc(probePollRelease, func() { s.releasePollsDuringProbe(c) })
}

// onWebSocketGone is called when c fails or the peer closes it.
func (s *Session) onWebSocketGone(c *wsConn, reason string) {
	s.dropProbe(c)
	if s.isTransport(c) {
		s.closeWith(reason, false)
	}
}
