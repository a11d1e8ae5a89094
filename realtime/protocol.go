package realtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"paystatus/payment"
)

// Event names of the wire contract; existing pages depend on them.
const (
	EventJoinOrder     = "join-order"
	EventLeaveOrder    = "leave-order"
	EventPing          = "ping"
	EventJoinedOrder   = "joined-order"
	EventPaymentStatus = "payment-status-update"
	EventOrderUpdate   = "order-update"
	EventConnTest      = "connection-test"
	EventPong          = "pong"
)

// maxPingKeys bounds how much of a ping payload is echoed back.
const maxPingKeys = 32

var (
	errMalformedJoin = errors.New("malformed payload: expected an order id string or {orderId, token}")
	errBadOrderID    = errors.New("invalid order id")
)

// roomRequest is a parsed join-order or leave-order payload.
type roomRequest struct {
	OrderID string
	Token   string
}

// parseRoomRequest accepts {orderId, token} or, as pages written for the
// original send, a bare order id string.
func parseRoomRequest(payload any) (roomRequest, error) {
	switch p := payload.(type) {
	case string:
		return checkOrderID(roomRequest{OrderID: p})
	case map[string]any:
		id, ok := p["orderId"].(string)
		if !ok {
			return roomRequest{}, errMalformedJoin
		}
		req := roomRequest{OrderID: id}
		if tok, present := p["token"]; present && tok != nil {
			t, ok := tok.(string)
			if !ok {
				return roomRequest{}, fmt.Errorf("%w: token must be a string", errMalformedJoin)
			}
			req.Token = t
		}
		return checkOrderID(req)
	}
	return roomRequest{}, errMalformedJoin
}

func checkOrderID(r roomRequest) (roomRequest, error) {
	if !payment.ValidOrderID(r.OrderID) {
		return roomRequest{}, errBadOrderID
	}
	if len(r.Token) > 256 {
		return roomRequest{}, fmt.Errorf("%w: token too long", errMalformedJoin)
	}
	return r, nil
}

// orderIDOf returns the orderId a payload names, for echoing in refusals.
// Oversized or non-string values are not echoed.
func orderIDOf(payload any) any {
	var id any
	switch p := payload.(type) {
	case string:
		id = p
	case map[string]any:
		id = p["orderId"]
	}
	if s, ok := id.(string); ok && len(s) <= payment.MaxOrderIDLength {
		return s
	}
	return nil
}

// orderSnapshot is an order's status as sockets receive it, in joined-order
// and as part of payment-status-update. Payloads are structs rather than
// maps, which would cost a callback an allocation per field and a sort of
// the keys when encoded. The msgpack tags name the fields for the Redis
// adapter's encoding.
type orderSnapshot struct {
	OrderID   string `json:"orderId" msgpack:"orderId"`
	Status    string `json:"status" msgpack:"status"`
	Seq       int64  `json:"seq" msgpack:"seq"`
	Amount    int64  `json:"amount" msgpack:"amount"`
	Currency  string `json:"currency" msgpack:"currency"`
	PaymentID string `json:"paymentId" msgpack:"paymentId"`
	UpdatedAt string `json:"updatedAt" msgpack:"updatedAt"`
	// ExpiresAt is the end of the payment window, when the order has one.
	ExpiresAt string `json:"expiresAt,omitempty" msgpack:"expiresAt,omitempty"`
}

// statusUpdate is the payload of payment-status-update.
// Both encoders inline the embedded snapshot's fields.
type statusUpdate struct {
	orderSnapshot  `msgpack:",inline"`
	PreviousStatus string `json:"previousStatus" msgpack:"previousStatus"`
	Source         string `json:"source" msgpack:"source"`
	// LateCapture marks a completion of an order that had expired.
	LateCapture bool `json:"lateCapture,omitempty" msgpack:"lateCapture,omitempty"`
}

func snapshotPayload(s payment.Snapshot) orderSnapshot {
	var expires string
	if s.ExpiresAt != nil {
		expires = formatTime(*s.ExpiresAt)
	}
	return orderSnapshot{
		ExpiresAt: expires,
		OrderID:   s.OrderID,
		Status:    string(s.Status),
		Seq:       s.Seq,
		Amount:    s.Amount,
		Currency:  s.Currency,
		PaymentID: s.PaymentID,
		UpdatedAt: formatTime(s.UpdatedAt),
	}
}

func statusChangePayload(c payment.StatusChange) *statusUpdate {
	return &statusUpdate{
		orderSnapshot:  snapshotPayload(c.Snapshot),
		PreviousStatus: string(c.PreviousStatus),
		Source:         c.Source,
		LateCapture:    c.LateCapture,
	}
}

func orderChangePayload(c payment.OrderChange) map[string]any {
	// Decoded, not raw bytes: across nodes the Redis adapter msgpack-encodes
	// payloads, and raw JSON bytes would reach clients as a binary blob.
	var data any
	if len(c.Data) > 0 {
		_ = json.Unmarshal(c.Data, &data)
	}
	return map[string]any{
		"orderId":   c.OrderID,
		"seq":       c.Seq,
		"type":      c.Type,
		"data":      data,
		"updatedAt": formatTime(c.UpdatedAt),
	}
}

func pongPayload(ping any, now time.Time) map[string]any {
	out := map[string]any{"timestamp": now.UnixMilli()}
	switch p := ping.(type) {
	case nil:
	case map[string]any:
		n := 0
		for k, v := range p {
			if n == maxPingKeys {
				break
			}
			if len(k) <= maxPingString && echoable(v) {
				out[k] = v
				n++
			}
		}
	default:
		if echoable(p) {
			out["data"] = p
		}
	}
	return out
}

// maxPingString bounds a string echoed in a pong, key or value.
const maxPingString = 128

// echoable admits only small scalars into a pong, so that what the server
// sends back stays small whatever the ping carried.
func echoable(v any) bool {
	switch x := v.(type) {
	case nil, bool, float64, int, int64, json.Number:
		return true
	case string:
		return len(x) <= maxPingString
	}
	return false
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
