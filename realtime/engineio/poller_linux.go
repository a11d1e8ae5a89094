//go:build linux

package engineio

import (
	"errors"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// poller watches idle websockets with one epoll loop, so that a waiting
// connection costs no goroutine. Each readiness is one-shot: the
// connection is re-armed after its bytes are handled, so one connection
// is never read by two goroutines at once.
type poller struct {
	epfd int
	wake int // an eventfd: closing an epoll descriptor does not end a wait

	workers *workers

	mu     sync.Mutex
	conns  map[int]*wsConn // guarded by mu; by file descriptor
	closed bool            // guarded by mu
}

const pollEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

func newPoller() (*poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}
	if err := unix.EpollCtl(fd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		_ = unix.Close(fd)
		_ = unix.Close(wake)
		return nil, err
	}
	p := &poller{epfd: fd, wake: wake, conns: make(map[int]*wsConn), workers: newWorkers(10 * time.Second)}
	go p.loop()
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

func (p *poller) loop() {
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		p.mu.Lock()
		for i := 0; i < n; i++ {
			if int(events[i].Fd) == p.wake {
				_ = unix.Close(p.epfd)
				_ = unix.Close(p.wake)
				p.mu.Unlock()
				return
			}
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
		_, _ = unix.Write(p.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}
}
