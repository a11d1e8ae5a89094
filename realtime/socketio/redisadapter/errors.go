package redisadapter

import "errors"

// Sentinel errors of the Redis adapter.
var (
	// ErrConfig marks an invalid Config.
	ErrConfig = errors.New("redisadapter: invalid configuration")
	// ErrMalformed marks a message from Redis that is not in the wire
	// format; it is dropped.
	ErrMalformed = errors.New("redisadapter: malformed message")
	// ErrTooLarge marks a message from Redis over Config.MaxMessage; it is
	// dropped unread.
	ErrTooLarge = errors.New("redisadapter: message too large")
	// ErrTimeout is returned when some node does not answer a request in
	// time.
	ErrTimeout = errors.New("redisadapter: nodes did not answer in time")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("redisadapter: closed")
)
