//go:build linux

package engineio

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// poller watches idle websockets with one epoll set, so that a waiting
// connection costs no goroutine. Each readiness is one-shot: the
// connection is re-armed after its bytes are handled, so one connection
// is never read by two goroutines at once.
//
// The epoll descriptor itself waits in the runtime's network poller
// instead of in a blocking epoll_wait: sysmon keeps retaking the P of a
// thread parked in a system call, and on one CPU those context switches
// must not compete with the callbacks they serve.
type poller struct {
	epfd int
	file *os.File // epfd, registered with the runtime's poller

	workers *workers

	mu     sync.Mutex
	conns  map[int]*wsConn // guarded by mu; by file descriptor
	closed bool            // guarded by mu
}

// maxReadWorkers bounds the goroutines that handle read events at once;
// see workers.
const maxReadWorkers = 8

const pollEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

func newPoller() (*poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	// Non-blocking, so that os.NewFile hands it to the runtime's poller.
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	file := os.NewFile(uintptr(fd), "epoll")
	raw, err := file.SyscallConn()
	if err != nil {
		_ = file.Close()
		return nil, err
	}
	p := &poller{epfd: fd, file: file, conns: make(map[int]*wsConn), workers: newWorkers(10*time.Second, maxReadWorkers)}
	go p.loop(raw)
	return p, nil
}

func (p *poller) add(c *wsConn) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("poller closed")
	}
	p.conns[c.fd] = c
	ev := unix.EpollEvent{Events: pollEvents, Fd: int32(c.fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		delete(p.conns, c.fd)
		return err
	}
	return nil
}

func (p *poller) rearm(c *wsConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed && p.conns[c.fd] == c {
		ev := unix.EpollEvent{Events: pollEvents, Fd: int32(c.fd)}
		_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev)
	}
}

// remove must run before the connection's descriptor is closed, so that a
// reused descriptor never reaches the old connection.
func (p *poller) remove(c *wsConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns[c.fd] == c {
		delete(p.conns, c.fd)
		if !p.closed {
			_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
		}
	}
}

// loop takes ready connections in batches without blocking and lets the
// runtime wake it when the set has more; it ends when the file is closed.
func (p *poller) loop(raw syscall.RawConn) {
	events := make([]unix.EpollEvent, 256)
	for {
		var n int
		var werr error
		err := raw.Read(func(fd uintptr) bool {
			n, werr = unix.EpollWait(int(fd), events, 0)
			if errors.Is(werr, unix.EINTR) {
				// Try again rather than wait: events may be pending.
				n, werr = 0, nil
				return true
			}
			return n > 0 || werr != nil
		})
		if err != nil || werr != nil {
			return
		}
		p.mu.Lock()
		for i := 0; i < n; i++ {
			if c := p.conns[int(events[i].Fd)]; c != nil {
				p.workers.run(c.onReadable)
			}
		}
		p.mu.Unlock()
	}
}

func (p *poller) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		_ = p.file.Close()
	}
}
