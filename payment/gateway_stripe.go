package payment

import (
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Stripe-style webhooks: an event object in the body, signed with
// Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">.

// StripeGatewayName is the source recorded for Stripe webhooks.
const StripeGatewayName = "stripe"

// StripeSignatureHeader carries the timestamp and signatures.
const StripeSignatureHeader = "Stripe-Signature"

// DefaultStripeTolerance is how old (or how far ahead) a signature's
// timestamp may be when no tolerance is configured.
const DefaultStripeTolerance = 300 * time.Second

// maxStripeSignatures bounds the v1 values considered, so a huge header
// cannot make one request compute many MACs.
const maxStripeSignatures = 8

var stripeEvents = map[string]Status{
	"payment_intent.processing":     StatusProcessing,
	"payment_intent.succeeded":      StatusCompleted,
	"payment_intent.payment_failed": StatusFailed,
	"charge.refunded":               StatusRefunded,
}

// StripeSignature is a parsed Stripe-Signature header.
type StripeSignature struct {
	Timestamp int64
	V1        [][]byte // decoded signatures; more than one while a secret rotates
}

// ParseStripeSignature parses a Stripe-Signature header. Schemes other
// than t and v1 (such as v0) are ignored; t must appear exactly once and
// at least one v1 must be present, each 64 hex digits.
func ParseStripeSignature(header string) (StripeSignature, error) {
	var sig StripeSignature
	header = strings.TrimSpace(header)
	if header == "" {
		return sig, ErrSignatureMissing
	}
	seenT := false
	for item := range strings.SplitSeq(header, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return sig, fmt.Errorf("%w: item without '='", ErrSignatureMalformed)
		}
		switch strings.TrimSpace(key) {
		case "t":
			if seenT {
				return sig, fmt.Errorf("%w: more than one timestamp", ErrSignatureMalformed)
			}
			seenT = true
			ts, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
			if err != nil || ts <= 0 {
				return sig, fmt.Errorf("%w: timestamp is not a positive integer", ErrSignatureMalformed)
			}
			sig.Timestamp = ts
		case "v1":
			if len(sig.V1) == maxStripeSignatures {
				return sig, fmt.Errorf("%w: more than %d v1 signatures", ErrSignatureMalformed, maxStripeSignatures)
			}
			mac, err := decodeHexMAC(strings.TrimSpace(value))
			if err != nil {
				return sig, err
			}
			sig.V1 = append(sig.V1, mac)
		}
	}
	if !seenT {
		return sig, fmt.Errorf("%w: no timestamp", ErrSignatureMalformed)
	}
	if len(sig.V1) == 0 {
		return sig, fmt.Errorf("%w: no v1 signature", ErrSignatureMalformed)
	}
	return sig, nil
}

// VerifyStripeSignature checks a Stripe-Signature header against body: any
// v1 may match, and the timestamp must be within tolerance of now in
// either direction. The MAC is checked first, so a forger learns nothing
// from the timestamp check.
func VerifyStripeSignature(secret, body []byte, header string, now time.Time, tolerance time.Duration) error {
	sig, err := ParseStripeSignature(header)
	if err != nil {
		return err
	}
	if len(secret) == 0 {
		return ErrSignatureMismatch
	}
	want := hexMAC(secret, []byte(strconv.FormatInt(sig.Timestamp, 10)), []byte("."), body)
	matched := false
	for _, got := range sig.V1 {
		// Compare every candidate so timing does not reveal which matched.
		if hmac.Equal(got, want) {
			matched = true
		}
	}
	if !matched {
		return ErrSignatureMismatch
	}
	if tolerance <= 0 {
		tolerance = DefaultStripeTolerance
	}
	age := now.Unix() - sig.Timestamp
	if age > int64(tolerance/time.Second) || -age > int64(tolerance/time.Second) {
		return fmt.Errorf("%w: signed %d s from now, tolerance %s", ErrSignatureExpired, -age, tolerance)
	}
	return nil
}

// SignStripe builds a Stripe-Signature header for body at time t.
func SignStripe(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + SignHex(secret, append([]byte(ts+"."), body...))
}

type stripeGateway struct {
	secret    []byte
	tolerance time.Duration
}

// NewStripeGateway verifies and parses Stripe webhooks signed with secret;
// tolerance of zero means DefaultStripeTolerance.
func NewStripeGateway(secret string, tolerance time.Duration) Gateway {
	if tolerance <= 0 {
		tolerance = DefaultStripeTolerance
	}
	return stripeGateway{secret: []byte(secret), tolerance: tolerance}
}

func (stripeGateway) Name() string { return StripeGatewayName }

func (g stripeGateway) Open(body []byte, header http.Header, now time.Time) (GatewayEvent, error) {
	if err := VerifyStripeSignature(g.secret, body, header.Get(StripeSignatureHeader), now, g.tolerance); err != nil {
		return GatewayEvent{Gateway: StripeGatewayName}, err
	}
	return ParseStripeWebhook(body)
}

type stripeEvent struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data *struct {
		Object *struct {
			ID             string          `json:"id"`
			PaymentIntent  *string         `json:"payment_intent"`
			Amount         json.RawMessage `json:"amount"`
			AmountReceived json.RawMessage `json:"amount_received"`
			Currency       string          `json:"currency"`
			Metadata       json.RawMessage `json:"metadata"`
		} `json:"object"`
	} `json:"data"`
}

// ParseStripeWebhook parses a verified event body. The event id is the
// delivery id; the order comes from data.object.metadata.orderId. For a
// succeeded payment the amount compared is amount_received, so a partial
// capture cannot complete the order.
func ParseStripeWebhook(body []byte) (GatewayEvent, error) {
	ev := GatewayEvent{Gateway: StripeGatewayName}
	var se stripeEvent
	if err := decodeObject(body, &se); err != nil {
		return ev, err
	}
	if err := checkID("id", se.ID, true, maxDeliveryIDLength); err != nil {
		return ev, err
	}
	if err := checkID("type", se.Type, true, 64); err != nil {
		return ev, err
	}
	ev.DeliveryID, ev.Type = se.ID, se.Type
	to, known := stripeEvents[se.Type]
	if !known {
		return unknownEvent(ev)
	}
	if se.Data == nil || se.Data.Object == nil {
		return ev, errMissing("data.object")
	}
	obj := se.Data.Object
	paymentID := obj.ID
	if obj.PaymentIntent != nil && *obj.PaymentIntent != "" {
		paymentID = *obj.PaymentIntent // a charge names its payment intent
	}
	if err := checkID("data.object.id", paymentID, false, maxPaymentIDLength); err != nil {
		return ev, err
	}
	amount, err := minorUnits("data.object.amount", obj.Amount)
	if err != nil {
		return ev, err
	}
	if to == StatusCompleted {
		received, err := minorUnits("data.object.amount_received", obj.AmountReceived)
		if err != nil {
			return ev, err
		}
		if received != nil {
			amount = received
		}
	}
	currency, err := currencyCode("data.object.currency", obj.Currency)
	if err != nil {
		return ev, err
	}
	orderID, err := notesOrderID("data.object.metadata", obj.Metadata)
	if err != nil {
		return ev, err
	}
	ev.To, ev.OrderID, ev.PaymentID, ev.Amount, ev.Currency = to, orderID, paymentID, amount, currency
	if err := requireMoney(ev, "data.object.amount", "data.object.currency"); err != nil {
		return ev, err
	}
	return ev, nil
}
