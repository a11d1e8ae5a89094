package realtime

import "time"

// Observer is told what the realtime server does, for metrics. Methods are
// called from many goroutines and must not block.
type Observer interface {
	SocketConnected(transport string, protocol int)
	SocketDisconnected(transport string, protocol int)
	Joined()
	JoinRefused(reason string)
	Left()
	RoomsChanged(delta int)
	Broadcast(event string)
	// Delivered reports the time from the triggering request's arrival to
	// the broadcast being handed to the sockets.
	Delivered(event string, sinceReceived time.Duration)
	// Resent reports that an update a socket had not acknowledged in time
	// was sent to it again.
	Resent(event string)
	EventDropped(reason string)
	// CrossNodeDropped reports a publish to the other nodes that could not
	// be made: Redis away ("error") or the publish queue full.
	CrossNodeDropped(reason string)
}

type noopObserver struct{}

func (noopObserver) SocketConnected(string, int)     {}
func (noopObserver) SocketDisconnected(string, int)  {}
func (noopObserver) Joined()                         {}
func (noopObserver) JoinRefused(string)              {}
func (noopObserver) Left()                           {}
func (noopObserver) RoomsChanged(int)                {}
func (noopObserver) Broadcast(string)                {}
func (noopObserver) Delivered(string, time.Duration) {}
func (noopObserver) Resent(string)                   {}
func (noopObserver) EventDropped(string)             {}
func (noopObserver) CrossNodeDropped(string)         {}
