package payment

import "errors"

// Sentinel errors of the payment domain. Callers match them with errors.Is;
// the HTTP layer maps each to a status code in one place.
var (
	ErrOrderNotFound     = errors.New("order not found")
	ErrInvalidTransition = errors.New("invalid status transition")
	ErrInvalidStatus     = errors.New("invalid status")
	ErrInvalidOrder      = errors.New("invalid order")
	ErrInvalidToken      = errors.New("invalid order token")
	ErrDuplicateEvent    = errors.New("duplicate event")
	ErrStaleEvent        = errors.New("stale event")
	ErrAmountMismatch    = errors.New("amount or currency does not match the order")
	ErrConflict          = errors.New("concurrent change to the order")
	ErrInvalidWindow     = errors.New("invalid payment window")
	ErrQuotaExceeded     = errors.New("order creation quota reached")
	ErrExpirySkipped     = errors.New("orders left unexpired")

	ErrSignatureMissing   = errors.New("signature missing")
	ErrSignatureMalformed = errors.New("signature malformed")
	ErrSignatureMismatch  = errors.New("signature does not match")
	ErrSignatureExpired   = errors.New("signature timestamp outside tolerance")
	ErrMalformedPayload   = errors.New("malformed payload")
	ErrUnknownEvent       = errors.New("event type not handled")
)
