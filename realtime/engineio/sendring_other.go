//go:build !linux

package engineio

import "errors"

// sendRing is Linux-only; elsewhere a batch writes socket by socket.
type sendRing struct{}

func newSendRing() (*sendRing, error)            { return nil, errors.New("no io_uring on this platform") }
func (r *sendRing) send(items []batchItem) error { return errors.New("no io_uring") }
func (r *sendRing) close()                       {}
