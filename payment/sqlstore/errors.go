package sqlstore

import "errors"

// Sentinel errors of the store. Domain errors (payment.ErrOrderNotFound and
// the rest) are returned as they are.
var (
	// ErrConfig marks an invalid Config.
	ErrConfig = errors.New("invalid store configuration")
	// errStoreClosed is returned for changes submitted after Close.
	errStoreClosed = errors.New("store closed")
	// errRetryLater marks a change that lost a race and is worth applying
	// again in a later group.
	errRetryLater = errors.New("retry in a later group")
	// errUnsupportedScan marks a column value that a scan destination of
	// the driver-level statements cannot hold.
	errUnsupportedScan = errors.New("unsupported scan")
)
