package payment

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Gateway turns one delivery from a payment gateway into a GatewayEvent.
// Open checks the signature over the raw body before it parses anything,
// so an unsigned body never reaches the JSON decoder.
type Gateway interface {
	// Name is the gateway's short name; it is the Source of the transitions
	// it causes and the prefix of their deduplication keys.
	Name() string
	Open(body []byte, header http.Header, now time.Time) (GatewayEvent, error)
}

// GatewayEvent is a verified delivery in a gateway-independent shape.
type GatewayEvent struct {
	Gateway    string
	DeliveryID string // unique per delivery; repeats are duplicates
	Type       string // the gateway's own event or status name, for logs
	OrderID    string // empty when the payload names no order
	To         Status
	PaymentID  string
	Amount     *int64 // minor units, when the payload carries it
	Currency   string // upper case, when the payload carries it
}

// Transition is the status change the event asks for. Gateways are lenient:
// a delivery that arrives after a later one is stale, not an error.
func (e GatewayEvent) Transition() Transition {
	return Transition{
		OrderID:    e.OrderID,
		To:         e.To,
		PaymentID:  e.PaymentID,
		Source:     e.Gateway,
		DeliveryID: e.DeliveryID,
		Amount:     e.Amount,
		Currency:   e.Currency,
		Lenient:    true,
		Captured:   e.To == StatusCompleted,
	}
}

// Limits on identifiers taken from payloads; they end up in indexed
// columns (payment_id is 128, dedup_key 255 including the source prefix).
const (
	maxDeliveryIDLength = 200
	maxPaymentIDLength  = 128
)

// VerifyHexHMAC checks that sig is the hex HMAC-SHA256 of body under
// secret, in constant time. An empty secret never verifies, since anyone
// could compute a MAC under it.
func VerifyHexHMAC(secret, body []byte, sig string) error {
	sig = strings.TrimSpace(sig)
	if sig == "" {
		return ErrSignatureMissing
	}
	got, err := decodeHexMAC(sig)
	if err != nil {
		return err
	}
	if len(secret) == 0 {
		return ErrSignatureMismatch
	}
	if !hmac.Equal(got, hexMAC(secret, body)) {
		return ErrSignatureMismatch
	}
	return nil
}

func hexMAC(secret []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, secret)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// SignHex returns the hex HMAC-SHA256 of body under secret, the signature
// the UPI and Razorpay endpoints expect. Tests and tools use it.
func SignHex(secret, body []byte) string { return hex.EncodeToString(hexMAC(secret, body)) }

// decodeHexMAC accepts exactly 64 hex digits, either case.
func decodeHexMAC(s string) ([]byte, error) {
	if len(s) != 2*sha256.Size {
		return nil, fmt.Errorf("%w: expected %d hex digits, got %d characters", ErrSignatureMalformed, 2*sha256.Size, len(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not hexadecimal", ErrSignatureMalformed)
	}
	return b, nil
}

// decodeObject unmarshals a JSON object body; any decoding failure is
// ErrMalformedPayload with the decoder's reason.
func decodeObject(body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return fmt.Errorf("%w: body must be a JSON object", ErrMalformedPayload)
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedPayload, err)
	}
	return nil
}

// minorUnits reads an optional amount that must be a non-negative JSON
// integer: "12.50", "1e3" and "1250" (a string) are all refused, so that a
// gateway sending major units is caught instead of misread.
func minorUnits(field string, raw json.RawMessage) (*int64, error) {
	s := string(bytes.TrimSpace(raw))
	if s == "" || s == "null" {
		return nil, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > MaxAmount {
		return nil, fmt.Errorf("%w: %s must be a non-negative integer in minor units", ErrMalformedPayload, field)
	}
	return &n, nil
}

// currencyCode normalises an optional three-letter currency code.
func currencyCode(field, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	up := strings.ToUpper(s)
	if !currencyPattern.MatchString(up) {
		return "", fmt.Errorf("%w: %s must be a three-letter currency code", ErrMalformedPayload, field)
	}
	return up, nil
}

// checkID refuses identifiers that are missing, too long or contain
// control characters; they are stored and logged.
func checkID(field, s string, required bool, max int) error {
	if s == "" {
		if required {
			return fmt.Errorf("%w: %s is required", ErrMalformedPayload, field)
		}
		return nil
	}
	if len(s) > max {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrMalformedPayload, field, max)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %s contains control characters", ErrMalformedPayload, field)
		}
	}
	return nil
}

// unknownEvent builds the error for a well-formed delivery of a type this
// server does not act on; the event still carries its ids for the log.
func unknownEvent(ev GatewayEvent) (GatewayEvent, error) {
	return ev, fmt.Errorf("%w: %q", ErrUnknownEvent, ev.Type)
}

// requireMoney refuses a completed or refunded event that does not say how
// much and in which currency: the order's amount can only be checked against
// a figure that is there, and a signed event without one must not settle it.
func requireMoney(ev GatewayEvent, amountField, currencyField string) error {
	if ev.To != StatusCompleted && ev.To != StatusRefunded {
		return nil
	}
	if ev.Amount == nil {
		return errMissing(amountField)
	}
	if ev.Currency == "" {
		return errMissing(currencyField)
	}
	return nil
}

func errMissing(field string) error {
	return fmt.Errorf("%w: %s is required", ErrMalformedPayload, field)
}

func errShape(msg string) error {
	return fmt.Errorf("%w: %s", ErrMalformedPayload, msg)
}
