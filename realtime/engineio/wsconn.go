package engineio

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// wsConn is one websocket carrying (or probing for) a session. Reads are
// driven by the poller, or by a goroutine where there is none (TLS, other
// platforms); writes by a goroutine that exists only while frames wait.
type wsConn struct {
	sess    *Session
	conn    net.Conn
	raw     syscall.RawConn // nil when reads use a goroutine
	fd      int
	reader  frameReader
	probing bool // touched only by the reading goroutine and before start
	// base64: a protocol 3 client without binary support (b64 in its
	// query) gets binary messages as base64 text frames.
	base64 bool

	mu       sync.Mutex
	out      [][]byte // guarded by mu
	queued   int      // guarded by mu; bytes in out
	writing  bool     // guarded by mu; a flush goroutine runs
	closing  bool     // guarded by mu; close once out is written
	closed   bool     // guarded by mu
	reason   string   // guarded by mu; why it closed, first cause wins
	polled   bool     // guarded by mu; registered with the poller
	inflight bool     // guarded by mu; a batched send holds the descriptor
	// closeDeferred: closed while inflight; the batch closes the socket.
	closeDeferred bool   // guarded by mu
	earlyBuf      []byte // bytes read with the handshake, fed at start
}

func newWSConn(sess *Session, conn net.Conn, early []byte) *wsConn {
	c := &wsConn{sess: sess, conn: conn, fd: -1, earlyBuf: early}
	c.reader.maxMessage = sess.srv.cfg.MaxPayload
	if sc, ok := conn.(syscall.Conn); ok && sess.srv.poller != nil {
		if raw, err := sc.SyscallConn(); err == nil {
			_ = raw.Control(func(fd uintptr) { c.fd = int(fd) })
			c.raw = raw
		}
	}
	return c
}

// start begins reading.
func (c *wsConn) start() {
	if early := c.earlyBuf; early != nil {
		c.earlyBuf = nil
		if err := c.reader.feed(early, c.onFrame); err != nil {
			c.fail(err)
			return
		}
	}
	if c.raw == nil {
		go c.readLoop()
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.polled = true
	c.mu.Unlock()
	if err := c.sess.srv.poller.add(c); err != nil {
		c.mu.Lock()
		c.polled = false
		c.mu.Unlock()
		go c.readLoop()
	}
}

// readLoop reads with a goroutine of its own.
func (c *wsConn) readLoop() {
	buf := make([]byte, 4096)
	for {
		n, err := c.conn.Read(buf)
		if n > 0 {
			if ferr := c.reader.feed(buf[:n], c.onFrame); ferr != nil {
				c.fail(ferr)
				return
			}
		}
		if err != nil {
			c.fail(err)
			return
		}
	}
}

var readBuffers = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// onReadable reads what has arrived without blocking and handles it; the
// poller runs it on a worker, at most one at a time per conn.
func (c *wsConn) onReadable() {
	bufp := readBuffers.Get().(*[]byte)
	buf := *bufp
	var n int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		n, rerr = readNonblocking(fd, buf)
		return true
	})
	if err == nil {
		err = rerr
	}
	var ferr error
	if n > 0 {
		ferr = c.reader.feed(buf[:n], c.onFrame)
	}
	readBuffers.Put(bufp)
	if ferr != nil {
		c.fail(ferr)
		return
	}
	switch {
	case errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR):
	case err != nil:
		c.fail(err)
		return
	case n == 0:
		c.fail(io.EOF)
		return
	}
	c.mu.Lock()
	live := !c.closed
	c.mu.Unlock()
	if live {
		c.sess.srv.poller.rearm(c)
	}
}

// onFrame handles one complete frame on the reading goroutine.
func (c *wsConn) onFrame(opcode byte, payload []byte) error {
	var p packet
	var err error
	switch opcode {
	case opText:
		p, err = decodePacket(string(payload), c.sess.protocol)
	case opBinary:
		p, err = decodeBinaryFrame(payload, c.sess.protocol)
	case opPing:
		return c.enqueue(appendFrame(nil, opPong, payload))
	case opClose:
		if err := checkClosePayload(payload); err != nil {
			return err
		}
		// Echo the peer's status, as RFC 6455 section 5.5.1 asks.
		var code uint16
		if len(payload) >= 2 {
			code = binary.BigEndian.Uint16(payload)
		}
		c.writeCloseFrame(code)
		return errWebSocketClosed
	default:
		return nil // a pong
	}
	if err != nil {
		return err
	}
	if c.probing {
		c.sess.onProbePacket(c, p)
		return nil
	}
	c.sess.dispatch.Lock() // a polling POST may still be in flight
	c.sess.onPacket(p)
	c.sess.dispatch.Unlock()
	return nil
}

// writeCloseFrame sends a close frame before the connection is dropped.
// It is best effort: it is skipped while a flush or a batch is writing,
// since frames must not interleave, and when the connection is closed.
func (c *wsConn) writeCloseFrame(code uint16) {
	frame := closeFrame(code)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.writing {
		return
	}
	if c.raw != nil {
		_, _ = c.writeNow(frame)
		return
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.conn.Write(frame)
}

// failAsync closes the connection for reason and tells the session on
// another goroutine: senders may hold locks that closing the session takes.
func (c *wsConn) failAsync(reason string) {
	reason = c.closeWithReason(reason)
	go c.sess.onWebSocketGone(c, reason)
}

// closeWithReason closes the connection, recording reason unless an
// earlier cause was recorded, and returns the reason that stands.
func (c *wsConn) closeWithReason(reason string) string {
	c.mu.Lock()
	if c.reason == "" {
		c.reason = reason
	}
	reason = c.reason
	c.mu.Unlock()
	c.close()
	return reason
}

// fail closes the connection after a read error or a peer close, with a
// close frame giving the status when the error is the peer's fault.
func (c *wsConn) fail(err error) {
	if code := closeCodeFor(err); code != 0 {
		c.writeCloseFrame(code)
	}
	reason := "transport close"
	if !errors.Is(err, io.EOF) && !errors.Is(err, errWebSocketClosed) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.ECONNRESET) {
		reason = "transport error"
		if isProtocolError(err) {
			reason = "parse error"
		}
	}
	c.sess.onWebSocketGone(c, c.closeWithReason(reason))
}

func isProtocolError(err error) bool {
	for _, e := range []error{ErrEmptyPacket, ErrUnknownPacket, ErrBinaryPacket, errFrameUnmasked, errFrameReserved, errFrameControl, errFrameSequence, errFrameTooLarge, errInvalidUTF8, errCloseFrame} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// enqueue queues a frame; a connection whose backlog passes the limit is a
// slow consumer and is closed rather than allowed to grow.
func (c *wsConn) enqueue(frame []byte) error { return c.enqueueIn(nil, frame) }

// enqueueIn is enqueue as part of b (nil: on its own). A connection with
// nothing queued has its frame written at once, or put in b.
func (c *wsConn) enqueueIn(b *Batch, frame []byte) error {
	c.mu.Lock()
	if c.closed || c.closing {
		c.mu.Unlock()
		return ErrSessionClosed
	}
	if c.queued+len(frame) > c.sess.srv.cfg.MaxQueuedBytes {
		c.mu.Unlock()
		c.sess.srv.cfg.Logger.Warn("engine.io: closing slow consumer", "session", c.sess.id)
		c.failAsync("slow consumer")
		return ErrSessionClosed
	}
	if !c.writing && c.raw != nil && b != nil {
		// writing holds off direct writes and the flusher until the batch
		// has been sent; inflight keeps the descriptor open until then.
		c.writing = true
		c.inflight = true
		c.mu.Unlock()
		b.items = append(b.items, batchItem{conn: c, fd: c.fd, frame: frame, res: resPending})
		return nil
	}
	if !c.writing && c.raw != nil {
		// Nothing is queued: try the socket directly, which spares a
		// broadcast one goroutine per recipient. What does not fit now
		// goes to the queue.
		n, err := c.writeNow(frame)
		if err != nil {
			c.mu.Unlock()
			c.failAsync("transport error")
			return ErrSessionClosed
		}
		if n == len(frame) {
			c.mu.Unlock()
			return nil
		}
		frame = frame[n:]
	}
	c.out = append(c.out, frame)
	c.queued += len(frame)
	c.startFlushLocked()
	c.mu.Unlock()
	return nil
}

// startFlushLocked starts the flusher unless one runs. c.mu must be held.
func (c *wsConn) startFlushLocked() {
	if !c.writing {
		c.writing = true
		go c.flush()
	}
}

// writeNow writes what the socket takes without waiting. c.mu must be held,
// with no flush running, so that bytes never interleave. The descriptor is
// used directly: close marks c.closed under c.mu before it closes the
// socket, so while c.mu is held and c.closed is false the descriptor is
// still this connection's. The RawConn is bypassed on this path to spare
// a broadcast its locking and poller bookkeeping per socket.
func (c *wsConn) writeNow(frame []byte) (int, error) {
	n, err := writeNonblocking(uintptr(c.fd), frame)
	if n < 0 {
		n = 0
	}
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
		err = nil
	}
	return n, err
}

// closeAfter writes a last frame and a close frame, then closes.
func (c *wsConn) closeAfter(last []byte) {
	c.mu.Lock()
	if c.closed || c.closing {
		c.mu.Unlock()
		return
	}
	c.out = append(c.out, last, appendFrame(nil, opClose, []byte{0x03, 0xE8}))
	c.closing = true
	c.startFlushLocked()
	c.mu.Unlock()
}

func (c *wsConn) flush() {
	for {
		c.mu.Lock()
		if c.closed || len(c.out) == 0 {
			c.writing = false
			done := c.closing && !c.closed
			c.mu.Unlock()
			if done {
				c.close()
			}
			return
		}
		batch := net.Buffers(c.out)
		c.out, c.queued = nil, 0
		c.mu.Unlock()
		_ = c.conn.SetWriteDeadline(time.Now().Add(c.sess.srv.cfg.WriteTimeout))
		if _, err := batch.WriteTo(c.conn); err != nil {
			c.mu.Lock()
			c.writing = false
			c.mu.Unlock()
			c.failAsync("transport error")
			return
		}
	}
}

// close releases the connection; it is safe to call more than once.
func (c *wsConn) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	polled := c.polled
	c.out = nil
	// A batched send may still name the descriptor; closing it now could
	// let a new connection take its number before the send goes out.
	deferred := c.inflight
	c.closeDeferred = deferred
	c.mu.Unlock()
	if polled {
		c.sess.srv.poller.remove(c)
	}
	if !deferred {
		_ = c.conn.Close()
	}
}
