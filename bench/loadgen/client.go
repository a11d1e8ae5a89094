package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The dialer is shared by every client. Small read buffers and a pooled
// write buffer keep a connected, idle client at a few KiB so that 10,000 of
// them fit comfortably in one process next to the server under test.
var dialer = &websocket.Dialer{
	HandshakeTimeout: 30 * time.Second,
	ReadBufferSize:   1024,
	WriteBufferSize:  1024,
	WriteBufferPool:  &sync.Pool{},
}

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

// client is one simulated browser tab. Everything after the handshake runs
// on the client's own goroutine, which is the only writer of the connection.
type client struct {
	idx     int
	orderID string
	token   string
	run     *clientSet

	conn *websocket.Conn
	// writeHook replaces the connection as the destination of writes in
	// unit tests.
	writeHook func([]byte) error

	// Per-order bookkeeping. A real client dedupes by seq; so do we.
	seen []seqState

	fan []fanRecv
}

// clientSet holds the shared counters of a group of clients.
type clientSet struct {
	wsURL string

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

// connect performs the Engine.IO and Socket.IO handshakes and joins the
// client's order room. It returns once `joined-order` arrived.
func (c *client) connect(ctx context.Context) error {
	hdr := http.Header{}
	hdr.Set("User-Agent", "paystatus-loadgen")
	conn, resp, err := dialer.DialContext(ctx, c.run.wsURL, hdr)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("dial: %w (HTTP %d)", err, resp.StatusCode)
		}
		return fmt.Errorf("dial: %w", err)
	}
	c.conn = conn
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(dl)
	}
	fail := func(err error) error {
		_ = conn.Close()
		return err
	}

	// Engine.IO open packet.
	msg, err := c.read()
	if err != nil {
		return fail(fmt.Errorf("waiting for open packet: %w", err))
	}
	if len(msg) == 0 || msg[0] != eioOpen {
		return fail(fmt.Errorf("expected open packet, got %.60q", msg))
	}
	// Socket.IO connect to the default namespace.
	if err := conn.WriteMessage(websocket.TextMessage, []byte{eioMessage, sioConnect}); err != nil {
		return fail(err)
	}
	connected := false
	joinSent := false
	for {
		msg, err := c.read()
		if err != nil {
			return fail(fmt.Errorf("handshake: %w", err))
		}
		if len(msg) == 0 {
			continue
		}
		switch msg[0] {
		case eioPing:
			if err := c.write([]byte{eioPong}); err != nil {
				return fail(err)
			}
			continue
		case eioMessage:
		default:
			continue
		}
		p, err := parseSIO(msg[1:])
		if err != nil {
			return fail(fmt.Errorf("handshake: %w", err))
		}
		switch {
		case p.Type == sioConnect:
			connected = true
		case p.Type == sioConnectError:
			return fail(fmt.Errorf("connect refused: %s", p.Data))
		case p.Type == sioEvent && p.Event == "joined-order":
			var r joinReply
			if err := json.Unmarshal(p.Arg, &r); err != nil {
				return fail(fmt.Errorf("joined-order: %w", err))
			}
			if !r.Success {
				return fail(fmt.Errorf("join refused: %s", r.Error))
			}
			_ = conn.SetReadDeadline(time.Time{})
			return nil
		case p.Type == sioEvent:
			// Anything else before the join reply (e.g. an early broadcast
			// to a shared room) is handled like in the read loop.
			c.handleEvent(p)
		}
		if connected && !joinSent {
			join, _ := encodeEvent("join-order", map[string]string{"orderId": c.orderID, "token": c.token}, -1)
			if err := c.write(join); err != nil {
				return fail(err)
			}
			joinSent = true
		}
	}
}

func (c *client) read() ([]byte, error) {
	typ, msg, err := c.conn.ReadMessage()
	if err != nil {
		return nil, err
	}
	if typ != websocket.TextMessage {
		c.run.badFrames.Add(1)
		return nil, nil
	}
	return msg, nil
}

func (c *client) write(b []byte) error {
	if c.writeHook != nil {
		return c.writeHook(b)
	}
	return c.conn.WriteMessage(websocket.TextMessage, b)
}

// loop serves the connection until it closes: answers pings, acks what asks
// for an ack, and records updates and broadcasts.
func (c *client) loop() {
	defer c.run.wg.Done()
	defer c.conn.Close()
	for {
		msg, err := c.read()
		if err != nil {
			if !c.run.closing.Load() {
				c.run.unexpected.Add(1)
				c.run.noteError(fmt.Errorf("client %d: %w", c.idx, err))
			}
			return
		}
		if len(msg) == 0 {
			continue
		}
		switch msg[0] {
		case eioPing:
			if err := c.write([]byte{eioPong}); err != nil {
				c.run.noteError(err)
			}
		case eioClose:
			if !c.run.closing.Load() {
				c.run.unexpected.Add(1)
				c.run.noteError(fmt.Errorf("client %d: server sent close", c.idx))
			}
			return
		case eioMessage:
			p, err := parseSIO(msg[1:])
			if err != nil {
				c.run.badFrames.Add(1)
				c.run.noteError(err)
				continue
			}
			switch p.Type {
			case sioEvent:
				c.handleEvent(p)
			case sioDisconnect:
				if !c.run.closing.Load() {
					c.run.unexpected.Add(1)
					c.run.noteError(fmt.Errorf("client %d: server disconnected the socket", c.idx))
				}
				return
			}
		}
	}
}

func (c *client) handleEvent(p sioPacket) {
	now := time.Now().UnixNano()
	switch p.Event {
	case "payment-status-update":
		var u statusUpdate
		if err := json.Unmarshal(p.Arg, &u); err != nil {
			c.run.badFrames.Add(1)
			c.run.noteError(err)
			return
		}
		c.onUpdate(u, p.AckID, now)
	case "connection-test":
		var t connTest
		if err := json.Unmarshal(p.Arg, &t); err != nil {
			c.run.badFrames.Add(1)
			c.run.noteError(err)
			return
		}
		c.run.fanRecvs.Add(1)
		if c.fan == nil && c.run.fanCap > 0 {
			c.fan = make([]fanRecv, 0, c.run.fanCap)
		}
		c.fan = append(c.fan, fanRecv{ts: t.Timestamp, recv: now})
		if p.AckID >= 0 {
			c.ack(p.AckID, map[string]any{"received": true})
		}
	default:
		// Unknown events are still acknowledged if the server asks.
		if p.AckID >= 0 {
			c.ack(p.AckID, map[string]any{"received": true})
		}
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
// and waits for their goroutines.
func (s *clientSet) closeAll(clients []*client, wait time.Duration) {
	s.closing.Store(true)
	for _, c := range clients {
		if c != nil && c.conn != nil {
			_ = c.conn.Close()
		}
	}
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
