//go:build !linux

package main

// serve takes over a client that connect joined: without the Linux
// reactor, it returns the client's blocking loop for the caller's
// goroutine to run.
func (c *client) serve() func() {
	return c.blockingLoop
}

// closeServed has nothing to do: closeAll closes each connection, and its
// blocking loop ends.
func closeServed(*clientSet) {}
