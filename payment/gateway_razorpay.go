package payment

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"
)

// Razorpay-style webhooks: the event in the body, signed with
// X-Razorpay-Signature (hex HMAC-SHA256 of the raw body). Deliveries are
// deduplicated on the event name and the entity id inside the signed body;
// the X-Razorpay-Event-Id header is not signed, so it is not trusted.

// RazorpayGatewayName is the source recorded for Razorpay webhooks.
const RazorpayGatewayName = "razorpay"

// Razorpay request headers.
const (
	RazorpaySignatureHeader = "X-Razorpay-Signature"
	RazorpayEventIDHeader   = "X-Razorpay-Event-Id"
)

var razorpayEvents = map[string]Status{
	"payment.authorized": StatusProcessing,
	"payment.captured":   StatusCompleted,
	"order.paid":         StatusCompleted,
	"payment.failed":     StatusFailed,
	"refund.processed":   StatusRefunded,
}

type razorpayGateway struct{ secret []byte }

// NewRazorpayGateway verifies and parses Razorpay webhooks signed with secret.
func NewRazorpayGateway(secret string) Gateway { return razorpayGateway{secret: []byte(secret)} }

func (razorpayGateway) Name() string { return RazorpayGatewayName }

func (g razorpayGateway) Open(body []byte, header http.Header, _ time.Time) (GatewayEvent, error) {
	if err := VerifyHexHMAC(g.secret, body, header.Get(RazorpaySignatureHeader)); err != nil {
		return GatewayEvent{Gateway: RazorpayGatewayName}, err
	}
	return ParseRazorpayWebhook(body)
}

type razorpayWebhook struct {
	Event   string `json:"event"`
	Payload struct {
		Payment *struct {
			Entity struct {
				ID       string          `json:"id"`
				Amount   json.RawMessage `json:"amount"`
				Currency string          `json:"currency"`
				// Notes is an object, but Razorpay sends [] when it is empty.
				Notes json.RawMessage `json:"notes"`
			} `json:"entity"`
		} `json:"payment"`
		Refund *struct {
			Entity struct {
				ID string `json:"id"`
			} `json:"entity"`
		} `json:"refund"`
	} `json:"payload"`
}

// ParseRazorpayWebhook parses a verified webhook body. The deduplication
// key is the event name with the payment's id (the refund's, for a refund),
// both signed. The order comes from payload.payment.entity.notes.orderId; an
// event without one is returned with an empty OrderID, for the caller to
// ignore.
func ParseRazorpayWebhook(body []byte) (GatewayEvent, error) {
	ev := GatewayEvent{Gateway: RazorpayGatewayName}
	var wh razorpayWebhook
	if err := decodeObject(body, &wh); err != nil {
		return ev, err
	}
	if err := checkID("event", wh.Event, true, 64); err != nil {
		return ev, err
	}
	ev.Type = wh.Event
	to, known := razorpayEvents[wh.Event]
	if !known {
		return unknownEvent(ev)
	}
	if wh.Payload.Payment == nil {
		return ev, errMissing("payload.payment.entity")
	}
	entity := wh.Payload.Payment.Entity
	if err := checkID("payload.payment.entity.id", entity.ID, true, maxPaymentIDLength); err != nil {
		return ev, err
	}
	ev.DeliveryID = wh.Event + ":" + entity.ID
	if wh.Payload.Refund != nil && to == StatusRefunded {
		refundID := wh.Payload.Refund.Entity.ID
		if err := checkID("payload.refund.entity.id", refundID, true, maxPaymentIDLength); err != nil {
			return ev, err
		}
		ev.DeliveryID = wh.Event + ":" + refundID
	}
	amount, err := minorUnits("payload.payment.entity.amount", entity.Amount)
	if err != nil {
		return ev, err
	}
	currency, err := currencyCode("payload.payment.entity.currency", entity.Currency)
	if err != nil {
		return ev, err
	}
	orderID, err := notesOrderID("payload.payment.entity.notes", entity.Notes)
	if err != nil {
		return ev, err
	}
	ev.To, ev.OrderID, ev.PaymentID, ev.Amount, ev.Currency = to, orderID, entity.ID, amount, currency
	if err := requireMoney(ev, "payload.payment.entity.amount", "payload.payment.entity.currency"); err != nil {
		return ev, err
	}
	return ev, nil
}

// notesOrderID reads orderId from a notes or metadata object. Absent,
// null and empty-array notes mean no order.
func notesOrderID(field string, raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	if raw[0] == '[' {
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) != nil || len(list) > 0 {
			return "", errShape(field + " must be an object")
		}
		return "", nil
	}
	var notes struct {
		OrderID *string `json:"orderId"`
	}
	if raw[0] != '{' || json.Unmarshal(raw, &notes) != nil {
		return "", errShape(field + " must be an object")
	}
	if notes.OrderID == nil {
		return "", nil
	}
	if err := checkID(field+".orderId", *notes.OrderID, false, maxPaymentIDLength); err != nil {
		return "", err
	}
	return *notes.OrderID, nil
}
