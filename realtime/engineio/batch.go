package engineio

import (
	"math"
	"slices"
	"sync"
	"syscall"
)

// resPending marks a batched send that has no result yet.
const resPending = math.MinInt32

type batchItem struct {
	conn  *wsConn
	fd    int // conn.fd, copied so that submitting does not load conn again
	frame []byte
	res   int // bytes written, a negative errno, or resPending
}

// Batch gathers one broadcast's direct websocket writes so that they reach
// the kernel together (through io_uring where the platform has it) instead
// of one system call each. Frames for connections with a backlog, for
// polling sessions and for connections read by a goroutine (TLS) are
// queued exactly as Send queues them.
type Batch struct {
	srv   *Server
	items []batchItem
	slots []int32 // orderByDescriptor's table, kept with the batch
}

var batchPool = sync.Pool{New: func() any { return &Batch{} }}

// NewBatch starts a batch; Flush sends it and releases it. The server keeps
// one released batch out of the pool, which a collection empties, so that a
// large room's buffers are not made again after every collection (which
// would bring the next collection sooner).
func (s *Server) NewBatch() *Batch {
	b := s.keptBatch.Swap(nil)
	if b == nil {
		b = batchPool.Get().(*Batch)
	}
	b.srv = s
	return b
}

// Grow makes room for n more sessions, so that a broadcast to a known
// number of them grows the batch once rather than step by step.
func (b *Batch) Grow(n int) {
	b.items = slices.Grow(b.items, n)
}

// Flush sends the batch and settles each connection: what the kernel did
// not take goes to the front of the connection's queue.
func (b *Batch) Flush() {
	if len(b.items) > 0 {
		b.orderByDescriptor()
		if ring := b.srv.ring.Load(); ring != nil {
			if err := ring.send(b.items); err != nil {
				// The ring is in an unknown state: stop using it. Sends it
				// did not report are written below.
				if b.srv.ring.CompareAndSwap(ring, nil) {
					b.srv.cfg.Logger.Warn("engine.io: io_uring failed, writing socket by socket", "error", err)
					ring.close()
				}
			}
		}
		for i := range b.items {
			it := &b.items[i]
			if it.res == resPending {
				n, err := writeNonblocking(uintptr(it.fd), it.frame)
				it.res = n
				if errno, ok := err.(syscall.Errno); ok {
					it.res = -int(errno)
				}
			}
			it.conn.finishBatched(it.frame, it.res)
		}
	}
	clear(b.items)
	b.items = b.items[:0]
	srv := b.srv
	b.srv = nil
	if !srv.keptBatch.CompareAndSwap(nil, b) {
		batchPool.Put(b)
	}
}

// orderByDescriptor puts the items in ascending descriptor order. The
// kernel allocated the sockets' structures in accept order, which is
// roughly descriptor order, so a broadcast that walks them in that order
// misses the cache less than one in the room's map order (measurements in
// docs/performance.md). A connection appears in a batch at most once, so
// descriptors are distinct; where they are dense (the usual case) a table
// indexed by descriptor orders them in linear time, in place.
func (b *Batch) orderByDescriptor() {
	if len(b.items) < 2 {
		return
	}
	lowest, highest := b.items[0].fd, b.items[0].fd
	for _, it := range b.items[1:] {
		lowest, highest = min(lowest, it.fd), max(highest, it.fd)
	}
	span := highest - lowest + 1
	if span > 4*len(b.items) {
		slices.SortFunc(b.items, byDescriptor)
		return
	}
	if cap(b.slots) < span {
		b.slots = make([]int32, span)
	}
	slots := b.slots[:span]
	for i := range slots {
		slots[i] = -1
	}
	for i, it := range b.items {
		if slots[it.fd-lowest] >= 0 {
			// Not expected (see above); a comparison sort keeps both.
			slices.SortFunc(b.items, byDescriptor)
			return
		}
		slots[it.fd-lowest] = int32(i)
	}
	// order[k] is the index of the item that goes to position k; it is
	// built in the table's own space, behind the entry being read.
	order := slots[:0]
	for _, i := range slots {
		if i >= 0 {
			order = append(order, i)
		}
	}
	// Apply the permutation cycle by cycle; a placed position is marked -1.
	for start := range order {
		if order[start] < 0 {
			continue
		}
		held := b.items[start]
		dst := start
		for {
			src := int(order[dst])
			order[dst] = -1
			if src == start {
				b.items[dst] = held
				break
			}
			b.items[dst] = b.items[src]
			dst = src
		}
	}
}

func byDescriptor(x, y batchItem) int { return x.fd - y.fd }

// finishBatched settles a batched send that wrote res bytes of frame (or
// failed with -res).
func (c *wsConn) finishBatched(frame []byte, res int) {
	var rest []byte
	failed := false
	switch {
	case res == len(frame):
	case res >= 0:
		rest = frame[res:]
	case res == -int(syscall.EAGAIN) || res == -int(syscall.EINTR):
		rest = frame
	default:
		failed = true
	}
	c.mu.Lock()
	c.inflight = false
	if c.closed || failed {
		c.writing = false
		closeFD := c.closeDeferred
		c.closeDeferred = false
		c.mu.Unlock()
		if closeFD {
			_ = c.conn.Close()
		}
		if failed {
			c.failAsync("transport error")
		}
		return
	}
	if rest != nil {
		c.out = append([][]byte{rest}, c.out...)
		c.queued += len(rest)
	}
	if len(c.out) > 0 {
		go c.flush() // writing stays true for the flusher
	} else {
		c.writing = false
	}
	c.mu.Unlock()
}
