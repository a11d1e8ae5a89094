//go:build linux

package main

// The steady state of every joined client runs here: a few event loops (one
// per GOMAXPROCS, so one when run.sh pins the generator to a CPU), each with
// an edge-triggered epoll set of client sockets, one read buffer, and
// non-blocking reads and writes made as raw system calls. Compared with a
// goroutine per client blocked in a read, a receipt costs one recvfrom and
// a share of an epoll_pwait, instead of a goroutine wake-up through the
// runtime's poller and two reads (the second returning EAGAIN), and nothing
// is allocated per message. During a burst the loop also batches its
// rounds (see run).
//
// Each loop's epoll descriptor is itself registered with the Go runtime's
// poller: the loop goroutine asks epoll for ready sockets without waiting,
// and when there are none it parks like any goroutine waiting on a socket,
// so no thread sits in a blocking system call and the runtime has no reason
// to hand the P to another thread.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	readBufSize = 64 << 10
	maxEvents   = 512
	// Socket events a loop waits for; EPOLLOUT only while a write is queued.
	// Edge-triggered, so epoll_wait does not poll again every socket it
	// reported last time. A stream socket is drained when a non-blocking
	// read returns less than it asked for, and whatever arrives after that
	// is a new edge: one read per event suffices unless the read filled the
	// buffer (the socket goes on the loop's "again" list) or the peer hung
	// up (read until EOF).
	evRead = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET
	evHup  = unix.EPOLLRDHUP | unix.EPOLLHUP | unix.EPOLLERR
)

// rconn is a client connection owned by a loop.
type rconn struct {
	fd     int
	c      *client
	l      *rloop
	out    []byte // frames a write could not take yet, sent on EPOLLOUT
	closed bool
	again  bool // on the loop's again list
}

type rloop struct {
	epfd int
	evfd int      // eventfd: wakes the loop for close requests
	file *os.File // epfd in the runtime's poller; nil: block in epoll_wait

	mu     sync.Mutex
	conns  []*rconn     // by descriptor
	closes []*clientSet // sets whose connections the loop must close

	pause *pacer // the pause between rounds in a burst

	buf    []byte // the read buffer, shared by the loop's connections
	oob    []byte // control messages of a read: the kernel's receive time
	wbuf   []byte // scratch for outgoing frames
	events []unix.EpollEvent
	ready  []*rconn
	again  []*rconn // sockets whose last read filled the buffer
	spare  []*rconn
}

type reactor struct {
	loops []*rloop
	next  atomic.Uint32
}

var (
	theReactor     atomic.Pointer[reactor]
	theReactorErr  error
	theReactorOnce sync.Once
)

// getReactor starts the loops on first use; they live as long as the
// process.
func getReactor() (*reactor, error) {
	theReactorOnce.Do(func() {
		r := &reactor{}
		for range max(runtime.GOMAXPROCS(0), 1) {
			l, err := newLoop()
			if err != nil {
				theReactorErr = err
				return
			}
			r.loops = append(r.loops, l)
		}
		for _, l := range r.loops {
			go l.run()
		}
		theReactor.Store(r)
	})
	return theReactor.Load(), theReactorErr
}

// serve takes over a client that connect joined. It hands the connection
// to the reactor and returns nil, or, if the reactor is unavailable,
// returns the client's blocking loop for the caller to run.
func (c *client) serve() func() {
	r, err := getReactor()
	if err == nil {
		err = r.add(c)
	}
	if err != nil {
		c.run.noteError(fmt.Errorf("reactor unavailable, blocking reads instead: %w", err))
		return c.blockingLoop
	}
	return nil
}

// closeServed asks the loops to close every connection of s; closeAll
// waits for them.
func closeServed(s *clientSet) {
	r := theReactor.Load()
	if r == nil {
		return
	}
	one := [8]byte{1} // an eventfd counter increment (little-endian 1)
	for _, l := range r.loops {
		l.mu.Lock()
		l.closes = append(l.closes, s)
		l.mu.Unlock()
		_, _ = unix.Write(l.evfd, one[:])
	}
}

func newLoop() (*rloop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, fmt.Errorf("epoll_ctl eventfd: %w", err)
	}
	l := &rloop{
		epfd:   epfd,
		evfd:   evfd,
		pause:  newPacer(),
		buf:    make([]byte, readBufSize),
		oob:    make([]byte, unix.CmsgSpace(16)*2),
		events: make([]unix.EpollEvent, maxEvents),
	}
	// A non-blocking descriptor given to os.NewFile joins the runtime's
	// poller if the kernel lets it (an epoll descriptor is pollable).
	if unix.SetNonblock(epfd, true) == nil {
		l.file = os.NewFile(uintptr(epfd), "loadgen-epoll")
	}
	return l, nil
}

// run is the loop: wait for ready sockets, serve them, repeat.
//
// While a broadcast is being delivered, frames arrive every few
// microseconds, and a loop that sleeps whenever it has caught up is woken
// for nearly every frame; on a virtual machine each wake-up costs more than
// the read. So in a burst the loop batches: after a round with events, it
// pauses coalesceWait and takes everything that arrived meanwhile in one
// round. A frame can then be read up to about 0.1 ms after it arrived,
// against fan-out latencies of tens of milliseconds. Sparse traffic (the
// end-to-end scenario's one update per millisecond, pings) is read as soon
// as it arrives, and as soon as a round finds nothing the loop waits for
// the next event in the runtime's poller.
//
// The pause is a nanosleep that keeps the P, which costs less than parking
// the goroutine. But while the loop keeps the P, the scheduler never polls
// for goroutines whose sockets or timers are ready, and during a wave of
// pings a pause after every round left the end-to-end sender waking up to
// 10 ms late (sysmon's fallback poll), counted as the server's latency. So
// once the loop has held the P for maxHold, the pause parks on a timer in
// the runtime's poller instead. (Parking every time doubled the generator's
// CPU per fan-out receipt.)
func (l *rloop) run() {
	var raw syscall.RawConn
	if l.file != nil {
		raw, _ = l.file.SyscallConn()
	}
	var n int
	var err error
	burst := false
	var lastEvents int64  // when a round last found events (ns, monotonic)
	lastPark := monoNow() // when the loop last gave the P up
	for {
		switch {
		case len(l.again) > 0 || n == len(l.events):
			n, err = l.poll() // more is waiting: no pause
		case burst:
			if monoNow()-lastPark > maxHold {
				l.pause.sleep(coalesceWait)
				lastPark = monoNow()
			} else {
				runtime.Gosched()
				rawSleep(coalesceWait)
			}
			n, err = l.poll()
		case raw != nil:
			calls := 0
			rerr := raw.Read(func(uintptr) bool {
				calls++
				n, err = l.poll()
				return n > 0 || err != nil
			})
			if calls > 1 { // it parked between the calls
				lastPark = monoNow()
			}
			if rerr != nil {
				// The descriptor is not in the runtime's poller after
				// all: wait in the kernel from now on.
				raw = nil
				continue
			}
		default:
			n, err = unix.EpollWait(l.epfd, l.events, -1)
		}
		if err == unix.EINTR {
			n, err = 0, nil
		}
		if err != nil {
			// Cannot happen with a valid epoll descriptor; do not spin.
			fmt.Fprintf(os.Stderr, "loadgen: epoll_wait: %v\n", err)
			time.Sleep(10 * time.Millisecond)
			n, err = 0, nil
			continue
		}
		if n == 0 {
			burst = false
			continue
		}
		now := monoNow()
		burst = n > 1 || now-lastEvents < burstGap
		lastEvents = now
		l.dispatch(l.events[:n])
	}
}

const (
	// coalesceWait is the pause between rounds during a burst.
	coalesceWait = 50 * time.Microsecond
	// maxHold bounds how long the loop keeps the P without parking.
	maxHold = int64(time.Millisecond)
	// burstGap: events closer together than this mean a burst.
	burstGap = int64(200 * time.Microsecond)
)

var monoStart = time.Now()

// monoNow is a monotonic clock reading in nanoseconds.
func monoNow() int64 { return int64(time.Since(monoStart)) }

func (l *rloop) dispatch(events []unix.EpollEvent) {
	wake := false
	l.mu.Lock()
	ready := l.ready[:0]
	for _, ev := range events {
		var rc *rconn // stays nil for the eventfd or a socket closed meanwhile
		if ev.Fd == int32(l.evfd) {
			wake = true
		} else if int(ev.Fd) < len(l.conns) {
			rc = l.conns[ev.Fd]
		}
		ready = append(ready, rc)
	}
	l.ready = ready
	var closes []*clientSet
	if wake {
		closes, l.closes = l.closes, nil
	}
	l.mu.Unlock()

	if wake {
		var b [8]byte
		_, _ = unix.Read(l.evfd, b[:])
		for _, s := range closes {
			l.closeSet(s)
		}
	}
	for i, rc := range ready {
		if rc == nil || rc.closed {
			continue
		}
		ev := events[i].Events
		if ev&unix.EPOLLOUT != 0 {
			rc.flush()
		}
		if ev&(unix.EPOLLIN|evHup) != 0 && !rc.closed && !rc.again {
			rc.read(ev&evHup != 0)
		}
	}
	clear(ready) // no stale pointers kept between rounds
	// Then one more read of each socket whose last read filled the buffer.
	again := l.again
	l.again = l.spare[:0]
	for _, rc := range again {
		rc.again = false
		if !rc.closed {
			rc.read(false)
		}
	}
	clear(again)
	l.spare = again[:0]
}

// read reads the socket once, or, after a hang-up, until the end, and
// parses what it got.
func (rc *rconn) read(hup bool) {
	l, c := rc.l, rc.c
	for {
		n, at, err := rawReadStamped(rc.fd, l.buf, l.oob)
		if n > 0 {
			c.recvAt = at
			ok, perr := c.ws.feed(l.buf[:n], c)
			switch {
			case perr != nil:
				c.protocolClose(perr)
				rc.end(perr)
				return
			case !ok:
				rc.end(c.stopErr)
				return
			}
			if n < len(l.buf) && !hup {
				return // drained
			}
			if !hup {
				rc.again = true
				l.again = append(l.again, rc)
				return
			}
			continue
		}
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return
		case 0:
			rc.end(io.EOF)
		default:
			rc.end(err)
		}
		return
	}
}

// writeFrame sends a frame without blocking: what the socket does not take
// now is queued and sent when epoll says it is writable.
func (rc *rconn) writeFrame(op byte, payload []byte) error {
	if rc.closed {
		return errors.New("connection closed")
	}
	l := rc.l
	l.wbuf = appendClientFrame(l.wbuf[:0], op, payload)
	f := l.wbuf
	if len(rc.out) > 0 {
		rc.out = append(rc.out, f...)
		return nil
	}
	n, err := rawWrite(rc.fd, f)
	if err == unix.EAGAIN || err == unix.EINTR {
		n, err = 0, 0
	}
	if err != 0 {
		return err
	}
	if n < len(f) {
		rc.out = append(rc.out, f[n:]...)
		return rc.watch(evRead | unix.EPOLLOUT)
	}
	return nil
}

// flush sends queued frames once the socket is writable.
func (rc *rconn) flush() {
	for len(rc.out) > 0 {
		n, err := rawWrite(rc.fd, rc.out)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return
		}
		if err != 0 {
			rc.c.run.noteError(err)
			rc.out = nil // the read side will see the connection end
			break
		}
		rc.out = rc.out[n:]
	}
	rc.out = nil
	if err := rc.watch(evRead); err != nil {
		rc.c.run.noteError(err)
	}
}

func (rc *rconn) watch(events uint32) error {
	return unix.EpollCtl(rc.l.epfd, unix.EPOLL_CTL_MOD, rc.fd, &unix.EpollEvent{Events: events, Fd: int32(rc.fd)})
}

// end closes the connection and accounts for it (err: why it ended; nil
// when the generator closed it).
func (rc *rconn) end(err error) {
	if rc.closed {
		return
	}
	rc.closed = true
	l := rc.l
	l.mu.Lock()
	l.conns[rc.fd] = nil
	l.mu.Unlock()
	// Closing the last descriptor of the socket also takes it out of the
	// epoll set.
	_ = unix.Close(rc.fd)
	rc.out = nil
	rc.c.finish(err)
}

// closeSet closes every connection of s the loop owns.
func (l *rloop) closeSet(s *clientSet) {
	var mine []*rconn
	l.mu.Lock()
	for _, rc := range l.conns {
		if rc != nil && rc.c.run == s {
			mine = append(mine, rc)
		}
	}
	l.mu.Unlock()
	for _, rc := range mine {
		rc.end(nil)
	}
}

// add hands a joined client's connection to a loop. The socket descriptor
// is duplicated and the net.Conn closed, so the runtime's poller no longer
// watches it; bytes the kernel holds stay there for the loop's first read.
func (r *reactor) add(c *client) error {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return errors.New("connection has no file descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var fd int
	var dupErr error
	if err := raw.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return err
	}
	if dupErr != nil {
		return fmt.Errorf("dup: %w", dupErr)
	}
	_ = c.nc.Close()
	c.nc = nil
	l := r.loops[int(r.next.Add(1))%len(r.loops)]
	rc := &rconn{fd: fd, c: c, l: l}
	c.w = rc

	l.mu.Lock()
	defer l.mu.Unlock()
	if c.run.closing.Load() {
		// closeAll has started: this one is closed like the others.
		_ = unix.Close(fd)
		rc.closed = true
		c.finish(nil)
		return nil
	}
	if c.ended {
		_ = unix.Close(fd)
		rc.closed = true
		c.finish(c.stopErr)
		return nil
	}
	// Receipts are timed by the kernel's receive timestamp, the moment the
	// bytes reached the socket, rather than by when this loop got round to
	// reading them (see rawReadStamped).
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		_ = unix.Close(fd)
		rc.closed = true
		c.finish(fmt.Errorf("SO_TIMESTAMPNS: %w", err))
		return nil
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: evRead, Fd: int32(fd)}); err != nil {
		_ = unix.Close(fd)
		rc.closed = true
		c.finish(fmt.Errorf("epoll_ctl: %w", err))
		return nil
	}
	for fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*rconn, max(1024, len(l.conns)))...)
	}
	l.conns[fd] = rc
	return nil
}

// The loop's system calls never block (non-blocking sockets, epoll_wait
// without a timeout), so they are made without telling the scheduler:
// entersyscall/exitsyscall would cost more than the call, and sysmon,
// seeing the P in system calls, would keep waking every 20 µs to take it
// away, on the generator's one CPU.

// rawReadStamped is recvmsg(2) on a socket with SO_TIMESTAMPNS set. at is
// the kernel's receive time of the data read (for TCP, of the last segment
// in it), or the time of the read where the kernel gave none. The loop reads
// a socket some time after its bytes arrive, more so while it works through
// a burst; that delay is the generator's, and with this stamp it no longer
// counts against the server measured.
func rawReadStamped(fd int, p, oob []byte) (n int, at int64, errno unix.Errno) {
	iov := unix.Iovec{Base: unsafe.SliceData(p)}
	iov.SetLen(len(p))
	msg := unix.Msghdr{Iov: &iov, Iovlen: 1, Control: unsafe.SliceData(oob)}
	msg.SetControllen(len(oob))
	r, _, e := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), 0)
	if e != 0 {
		return 0, 0, e
	}
	return int(r), receiveStamp(oob[:msg.Controllen]), 0
}

// receiveStamp finds the SCM_TIMESTAMPNS control message in oob and returns
// its time, or now where there is none.
func receiveStamp(oob []byte) int64 {
	for len(oob) >= unix.CmsgSpace(0) {
		h := (*unix.Cmsghdr)(unsafe.Pointer(unsafe.SliceData(oob)))
		size := int(h.Len)
		if size < unix.CmsgLen(0) || size > len(oob) {
			break
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && size >= unix.CmsgLen(int(unsafe.Sizeof(unix.Timespec{}))) {
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
			return ts.Nano()
		}
		oob = oob[min(len(oob), unix.CmsgSpace(size-unix.CmsgLen(0))):]
	}
	return time.Now().UnixNano()
}

func rawWrite(fd int, p []byte) (int, unix.Errno) {
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

// poll returns the ready events without waiting (epoll_pwait with a zero
// timeout and no signal mask: epoll_wait is missing on some architectures).
func (l *rloop) poll() (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// rawSleep sleeps without telling the scheduler (see the note on the
// loop's system calls above).
func rawSleep(d time.Duration) {
	if d <= 0 {
		return
	}
	ts := unix.NsecToTimespec(int64(d))
	unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
}
