package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// wsURL turns the server's base URL into the Socket.IO websocket endpoint a
// browser client would open.
func wsURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	}
	u.Path = "/socket.io/"
	u.RawQuery = "EIO=4&transport=websocket"
	return u.String(), nil
}

// statusUpdate is the subset of `payment-status-update` the generator reads.
type statusUpdate struct {
	OrderID string `json:"orderId"`
	Status  string `json:"status"`
	Seq     int64  `json:"seq"`
}

type joinReply struct {
	OrderID string `json:"orderId"`
	Success bool   `json:"success"`
	Error   string `json:"error"`
}

type connTest struct {
	OrderID   string `json:"orderId"`
	Timestamp int64  `json:"timestamp"`
}

// seqState is what a client remembers per update it has seen.
type seqState struct {
	seq   int64
	first int64 // receipt time of the first copy (ns since epoch)
	acked bool  // the copy we got carried an ack id and our ack went out
	noAck bool  // the copy we got carried no ack id
}

// fanRecv is one `connection-test` receipt.
type fanRecv struct {
	ts   int64 // server timestamp (ms since epoch) from the payload
	recv int64 // local receipt time (ns since epoch)
}

// client is one simulated browser tab. Its handshake runs on the goroutine
// that calls connect; afterwards one goroutine serves it (the reactor loop
// that owns it on Linux, its own loop elsewhere), and that goroutine is the
// only one that touches the client's state or writes to its connection.
type client struct {
	idx     int
	orderID string
	token   string
	run     *clientSet
	// wsURL is the node this client opens its socket on ("": run.wsURL).
	wsURL string

	// w sends websocket frames: the TCP connection during the handshake,
	// the reactor after it (Linux), a recorder in unit tests.
	w  frameWriter
	nc net.Conn // the connection while a goroutine reads it with blocking reads
	ws wsReader // frames split across reads, fragments of a message

	state     clientState
	connected bool // Socket.IO connect acknowledged
	joinSent  bool
	// recvAt is the receipt time of the bytes being parsed: taken right
	// after the read that delivered them (ns since epoch).
	recvAt int64
	// stopErr says why frame handling stopped: a handshake failure, or why
	// the server ended a joined connection.
	stopErr error
	// ended: the connection ended (stopErr) while connect was still reading
	// the frames that followed joined-order.
	ended bool

	// Per-order bookkeeping. A real client dedupes by seq; so do we.
	seen []seqState

	fan []fanRecv
}

// clientState is how far a client got through the handshakes.
type clientState uint8

const (
	stateOpen    clientState = iota // waiting for the Engine.IO open packet
	stateJoining                    // Socket.IO connect and join-order under way
	stateJoined                     // joined-order arrived: steady state
)

// frameWriter sends one websocket frame (the implementation masks it).
type frameWriter interface {
	writeFrame(op byte, payload []byte) error
}

// connWriter writes frames to a connection with blocking writes.
type connWriter struct {
	nc  net.Conn
	buf []byte
}

func (w *connWriter) writeFrame(op byte, payload []byte) error {
	w.buf = appendClientFrame(w.buf[:0], op, payload)
	_, err := w.nc.Write(w.buf)
	return err
}

// clientSet holds the shared counters of a group of clients.
type clientSet struct {
	wsURL string // where a client without its own wsURL connects

	// Written by the E2E sender before the callback goes out: when the
	// callback for client i was scheduled (ns since epoch); 0 = none.
	sched []atomic.Int64
	// Receipt latency of the terminal update for client i (ns); 0 = none yet.
	lat []atomic.Int64

	terminal    atomic.Int64 // first receipts of a terminal status
	updates     atomic.Int64 // distinct (order, seq) updates received
	rawDups     atomic.Int64 // every repeated seq, whatever the reason
	dups        atomic.Int64 // repeats of a seq we had already acked (or that carried no ack)
	dupGapMin   atomic.Int64 // smallest and largest time between a first copy and a repeat (ns)
	dupGapMax   atomic.Int64
	acksSent    atomic.Int64
	ackRequests atomic.Int64
	wrongOrder  atomic.Int64 // an update for an order this client never joined
	fanRecvs    atomic.Int64
	badFrames   atomic.Int64
	unexpected  atomic.Int64 // connections that ended while we still wanted them
	lastError   atomic.Value // string

	closing atomic.Bool
	wg      sync.WaitGroup
	fanCap  int
}

func (s *clientSet) noteError(err error) {
	if err != nil {
		s.lastError.Store(err.Error())
	}
}

// userAgent is what the generator's clients send in the upgrade request.
const userAgent = "paystatus-loadgen"

// connect performs the websocket upgrade and the Engine.IO and Socket.IO
// handshakes and joins the client's order room. It returns once
// `joined-order` arrived; serve then takes the connection over, with any
// bytes read after joined-order kept in c.ws.
func (c *client) connect(ctx context.Context) error {
	target := c.wsURL
	if target == "" {
		target = c.run.wsURL
	}
	nc, rest, status, err := dialWS(ctx, target, userAgent)
	if err != nil {
		if status != 0 {
			return fmt.Errorf("dial: %w (HTTP %d)", err, status)
		}
		return fmt.Errorf("dial: %w", err)
	}
	c.nc = nc
	c.w = &connWriter{nc: nc}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetReadDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	fail := func(err error) error {
		_ = nc.Close()
		c.nc = nil
		return err
	}
	c.state = stateOpen
	buf := make([]byte, 1024)
	chunk := rest
	for {
		if len(chunk) > 0 {
			c.recvAt = time.Now().UnixNano()
			ok, perr := c.ws.feed(chunk, c)
			if c.state == stateJoined {
				// Frames after joined-order in the same read were handled
				// as in the steady state; one of them may have ended it.
				if perr != nil {
					c.protocolClose(perr)
					c.stopErr = perr
				}
				c.ended = perr != nil || !ok
				_ = nc.SetReadDeadline(time.Time{})
				return nil
			}
			if perr != nil {
				return fail(fmt.Errorf("%s: %w", c.stateWhat(), perr))
			}
			if !ok {
				return fail(c.stopErr)
			}
		}
		n, err := nc.Read(buf)
		chunk = buf[:n]
		if n == 0 && err != nil {
			return fail(fmt.Errorf("%s: %w", c.stateWhat(), err))
		}
	}
}

func (c *client) stateWhat() string {
	if c.state == stateOpen {
		return "waiting for open packet"
	}
	return "handshake"
}

func (c *client) write(b []byte) error {
	return c.w.writeFrame(opText, b)
}

// onFrame handles one websocket message or control frame of the connection
// (frameSink). It returns false when the connection is finished: c.stopErr
// says why.
func (c *client) onFrame(op byte, payload []byte) bool {
	switch op {
	case opText:
		switch c.state {
		case stateOpen:
			return c.onOpen(payload)
		case stateJoining:
			return c.onHandshake(payload)
		default:
			return c.onMessage(payload)
		}
	case opBinary:
		c.run.badFrames.Add(1)
		if c.state == stateOpen {
			return c.onOpen(nil)
		}
	case opPing:
		if err := c.w.writeFrame(opPong, payload); err != nil {
			c.run.noteError(err)
		}
	case opClose:
		code, reason, err := parseClose(payload)
		if err != nil {
			c.protocolClose(err)
			c.stopErr = c.handshakeErr(err)
			return false
		}
		// Answer with the same code, as a browser does, then give up.
		_ = c.w.writeFrame(opClose, closePayload(code, ""))
		err = fmt.Errorf("websocket: close %d %s", code, reason)
		c.stopErr = c.handshakeErr(err)
		return false
	}
	return true
}

// handshakeErr adds where the handshake was to an error that ends it.
func (c *client) handshakeErr(err error) error {
	if c.state == stateJoined {
		return err
	}
	return fmt.Errorf("%s: %w", c.stateWhat(), err)
}

// protocolClose tells the server why the client gives up on a stream that
// broke RFC 6455 (best effort).
func (c *client) protocolClose(err error) {
	_ = c.w.writeFrame(opClose, closePayload(closeProtocolError, err.Error()))
}

// onOpen expects the Engine.IO open packet and answers with a Socket.IO
// connect to the default namespace.
func (c *client) onOpen(msg []byte) bool {
	if len(msg) == 0 || msg[0] != eioOpen {
		c.stopErr = fmt.Errorf("expected open packet, got %.60q", msg)
		return false
	}
	if err := c.write([]byte{eioMessage, sioConnect}); err != nil {
		c.stopErr = err
		return false
	}
	c.state = stateJoining
	return true
}

// onHandshake handles a message before joined-order: the connect reply,
// pings, the join reply, and anything broadcast to the client early.
func (c *client) onHandshake(msg []byte) bool {
	if len(msg) == 0 {
		return true
	}
	switch msg[0] {
	case eioPing:
		if err := c.write(pongMsg); err != nil {
			c.stopErr = err
			return false
		}
		return true
	case eioMessage:
	default:
		return true
	}
	p, err := parseSIO(msg[1:])
	if err != nil {
		c.stopErr = fmt.Errorf("handshake: %w", err)
		return false
	}
	switch {
	case p.Type == sioConnect:
		c.connected = true
	case p.Type == sioConnectError:
		c.stopErr = fmt.Errorf("connect refused: %s", p.Data)
		return false
	case p.Type == sioEvent && p.Event == "joined-order":
		var r joinReply
		if err := json.Unmarshal(p.Arg, &r); err != nil {
			c.stopErr = fmt.Errorf("joined-order: %w", err)
			return false
		}
		if !r.Success {
			c.stopErr = fmt.Errorf("join refused: %s", r.Error)
			return false
		}
		c.state = stateJoined
		return true
	case p.Type == sioEvent:
		// Anything else before the join reply (e.g. an early broadcast
		// to a shared room) is handled like in the steady state.
		c.handleEvent(p)
	}
	if c.connected && !c.joinSent {
		join, _ := encodeEvent("join-order", map[string]string{"orderId": c.orderID, "token": c.token}, -1)
		if err := c.write(join); err != nil {
			c.stopErr = err
			return false
		}
		c.joinSent = true
	}
	return true
}

var (
	pongMsg = []byte{eioPong}

	errServerClose      = errors.New("server sent close")
	errServerDisconnect = errors.New("server disconnected the socket")
)

// onMessage handles a text message of a joined client: answers pings, acks
// what asks for an ack, records updates and broadcasts.
func (c *client) onMessage(msg []byte) bool {
	if len(msg) == 0 {
		return true
	}
	switch msg[0] {
	case eioPing:
		if err := c.write(pongMsg); err != nil {
			c.run.noteError(err)
		}
	case eioClose:
		c.stopErr = errServerClose
		return false
	case eioMessage:
		// The fan-out's broadcasts take a shortcut when they have the
		// plain shape the servers send; anything else gets the full
		// decoding below, which decides what is malformed.
		if ts, ackID, ok := fastConnTest(msg[1:]); ok {
			c.onConnTest(ts, ackID)
			return true
		}
		p, err := parseSIO(msg[1:])
		if err != nil {
			c.run.badFrames.Add(1)
			c.run.noteError(err)
			return true
		}
		switch p.Type {
		case sioEvent:
			c.handleEvent(p)
		case sioDisconnect:
			c.stopErr = errServerDisconnect
			return false
		}
	}
	return true
}

// finish accounts for the end of a served connection: unless the clients
// are being closed, the server (or the network) ended it.
func (c *client) finish(err error) {
	if !c.run.closing.Load() {
		c.run.noteError(fmt.Errorf("client %d: %w", c.idx, err))
		c.run.unexpected.Add(1)
	}
	c.run.wg.Done()
}

// blockingLoop serves the connection with blocking reads until it ends: the
// goroutine-per-client way, used where there is no reactor.
func (c *client) blockingLoop() {
	nc := c.nc
	defer nc.Close()
	if c.ended {
		c.finish(c.stopErr)
		return
	}
	buf := make([]byte, 1024)
	for {
		n, err := nc.Read(buf)
		if n > 0 {
			c.recvAt = time.Now().UnixNano()
			ok, perr := c.ws.feed(buf[:n], c)
			if perr != nil {
				c.protocolClose(perr)
				c.finish(perr)
				return
			}
			if !ok {
				c.finish(c.stopErr)
				return
			}
		}
		if err != nil {
			c.finish(err)
			return
		}
	}
}

// handleEvent handles a Socket.IO event; c.recvAt is its receipt time.
func (c *client) handleEvent(p sioPacket) {
	switch p.Event {
	case "payment-status-update":
		var u statusUpdate
		if err := json.Unmarshal(p.Arg, &u); err != nil {
			c.run.badFrames.Add(1)
			c.run.noteError(err)
			return
		}
		c.onUpdate(u, p.AckID, c.recvAt)
	case "connection-test":
		var t connTest
		if err := json.Unmarshal(p.Arg, &t); err != nil {
			c.run.badFrames.Add(1)
			c.run.noteError(err)
			return
		}
		c.onConnTest(t.Timestamp, p.AckID)
	default:
		// Unknown events are still acknowledged if the server asks.
		if p.AckID >= 0 {
			c.ack(p.AckID, map[string]any{"received": true})
		}
	}
}

// onConnTest records one `connection-test` receipt.
func (c *client) onConnTest(ts, ackID int64) {
	c.run.fanRecvs.Add(1)
	if c.fan == nil && c.run.fanCap > 0 {
		c.fan = make([]fanRecv, 0, c.run.fanCap)
	}
	c.fan = append(c.fan, fanRecv{ts: ts, recv: c.recvAt})
	if ackID >= 0 {
		c.ack(ackID, map[string]any{"received": true})
	}
}

func (c *client) onUpdate(u statusUpdate, ackID int64, now int64) {
	s := c.run
	if u.OrderID != c.orderID {
		s.wrongOrder.Add(1)
	}
	for i := range c.seen {
		if c.seen[i].seq != u.Seq {
			continue
		}
		// Seen before: never counted twice as an update.
		s.rawDups.Add(1)
		s.noteDupGap(now - c.seen[i].first)
		if c.seen[i].acked || c.seen[i].noAck {
			s.dups.Add(1)
		}
		if ackID >= 0 {
			// The server is still waiting: ack again so it stops retrying.
			if c.ack(ackID, ackBody(u)) {
				c.seen[i].acked = true
			}
		}
		return
	}
	st := seqState{seq: u.Seq, first: now, noAck: ackID < 0}
	s.updates.Add(1)
	if u.Status == "completed" || u.Status == "failed" {
		if sched := s.sched[c.idx].Load(); sched > 0 && s.lat[c.idx].Load() == 0 {
			d := now - sched
			if d <= 0 {
				d = 1
			}
			s.lat[c.idx].Store(d)
		}
		s.terminal.Add(1)
	}
	if ackID >= 0 {
		st.acked = c.ack(ackID, ackBody(u))
	}
	c.seen = append(c.seen, st)
}

func (s *clientSet) noteDupGap(gap int64) {
	for {
		cur := s.dupGapMin.Load()
		if (cur != 0 && cur <= gap) || s.dupGapMin.CompareAndSwap(cur, gap) {
			break
		}
	}
	for {
		cur := s.dupGapMax.Load()
		if cur >= gap || s.dupGapMax.CompareAndSwap(cur, gap) {
			break
		}
	}
}

func ackBody(u statusUpdate) map[string]any {
	return map[string]any{"received": true, "orderId": u.OrderID, "seq": u.Seq}
}

func (c *client) ack(id int64, body any) bool {
	c.run.ackRequests.Add(1)
	b, err := encodeAck(id, body)
	if err == nil {
		err = c.write(b)
	}
	if err != nil {
		c.run.noteError(err)
		return false
	}
	c.run.acksSent.Add(1)
	return true
}

// closeAll closes every client's connection the way a tab going away does
// and waits until they are all finished.
func (s *clientSet) closeAll(clients []*client, wait time.Duration) {
	s.closing.Store(true)
	for _, c := range clients {
		if c != nil && c.nc != nil {
			_ = c.nc.Close()
		}
	}
	closeServed(s)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
	}
}

// lastErr returns the last recorded error text, if any.
func (s *clientSet) lastErr() string {
	if v, ok := s.lastError.Load().(string); ok {
		return v
	}
	return ""
}
