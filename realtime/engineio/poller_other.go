//go:build !linux

package engineio

import "errors"

// poller is Linux-only; elsewhere each websocket reads on its own goroutine.
type poller struct{}

func newPoller() (*poller, error)   { return nil, errors.New("no epoll on this platform") }
func (p *poller) add(*wsConn) error { return errors.New("no poller") }
func (p *poller) rearm(*wsConn)     {}
func (p *poller) remove(*wsConn)    {}
func (p *poller) close()            {}
