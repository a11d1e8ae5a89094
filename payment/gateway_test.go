package payment

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

const gwTestSecret = "whsec_test"

// gwHeader builds a request header from name/value pairs.
func gwHeader(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestVerifyHexHMAC(t *testing.T) {
	body := []byte(`{"orderId":"ord_1"}`)
	good := SignHex([]byte(gwTestSecret), body)
	cases := []struct {
		name   string
		secret string
		body   []byte
		sig    string
		want   error
	}{
		{"good", gwTestSecret, body, good, nil},
		{"good upper-case hex", gwTestSecret, body, strings.ToUpper(good), nil},
		{"missing", gwTestSecret, body, "", ErrSignatureMissing},
		{"blank", gwTestSecret, body, "   ", ErrSignatureMissing},
		{"too short", gwTestSecret, body, good[:62], ErrSignatureMalformed},
		{"not hex", gwTestSecret, body, strings.Repeat("zz", 32), ErrSignatureMalformed},
		{"sha256= prefix", gwTestSecret, body, "sha256=" + good, ErrSignatureMalformed},
		{"wrong secret", "other", body, good, ErrSignatureMismatch},
		{"body changed by one byte", gwTestSecret, []byte(`{"orderId":"ord_2"}`), good, ErrSignatureMismatch},
		{"body re-serialised", gwTestSecret, []byte(`{ "orderId": "ord_1" }`), good, ErrSignatureMismatch},
		{"empty secret never verifies", "", body, SignHex(nil, body), ErrSignatureMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyHexHMAC([]byte(tc.secret), tc.body, tc.sig)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseStripeSignature(t *testing.T) {
	mac := strings.Repeat("ab", 32)
	mac2 := strings.Repeat("cd", 32)
	cases := []struct {
		name    string
		header  string
		want    error
		wantT   int64
		wantSig int
	}{
		{"t and v1", "t=100,v1=" + mac, nil, 100, 1},
		{"two v1 and a v0", "t=100,v1=" + mac + ",v0=" + mac + ",v1=" + mac2, nil, 100, 2},
		{"spaces around items", " t=100 , v1=" + mac + " ", nil, 100, 1},
		{"v1 before t", "v1=" + mac + ",t=5", nil, 5, 1},
		{"empty", "", ErrSignatureMissing, 0, 0},
		{"no timestamp", "v1=" + mac, ErrSignatureMalformed, 0, 0},
		{"no v1", "t=100,v0=" + mac, ErrSignatureMalformed, 0, 0},
		{"timestamp not a number", "t=abc,v1=" + mac, ErrSignatureMalformed, 0, 0},
		{"negative timestamp", "t=-5,v1=" + mac, ErrSignatureMalformed, 0, 0},
		{"two timestamps", "t=1,t=2,v1=" + mac, ErrSignatureMalformed, 0, 0},
		{"v1 not hex", "t=1,v1=" + strings.Repeat("x", 64), ErrSignatureMalformed, 0, 0},
		{"v1 short", "t=1,v1=abcd", ErrSignatureMalformed, 0, 0},
		{"item without =", "t=1,v1", ErrSignatureMalformed, 0, 0},
		{"too many v1", "t=1" + strings.Repeat(",v1="+mac, maxStripeSignatures+1), ErrSignatureMalformed, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := ParseStripeSignature(tc.header)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err == nil && (sig.Timestamp != tc.wantT || len(sig.V1) != tc.wantSig) {
				t.Fatalf("parsed %+v", sig)
			}
		})
	}
}

func TestVerifyStripeSignature(t *testing.T) {
	secret := []byte(gwTestSecret)
	body := []byte(`{"id":"evt_1","type":"payment_intent.succeeded"}`)
	now := time.Unix(1_700_000_000, 0)
	tol := 300 * time.Second
	signAt := func(key []byte, at time.Time) string { return SignStripe(key, body, at) }
	v1Of := func(h string) string { _, v, _ := strings.Cut(h, "v1="); return v }
	ts := strconv.FormatInt(now.Unix(), 10)
	cases := []struct {
		name   string
		header string
		want   error
	}{
		{"good", signAt(secret, now), nil},
		{"good, 299 s old", signAt(secret, now.Add(-299*time.Second)), nil},
		{"rotation: old secret first, new second", "t=" + ts + ",v1=" + v1Of(signAt([]byte("old"), now)) + ",v1=" + v1Of(signAt(secret, now)), nil},
		{"rotation: only the old secret", signAt([]byte("old"), now), ErrSignatureMismatch},
		{"missing", "", ErrSignatureMissing},
		{"malformed", "garbage", ErrSignatureMalformed},
		{"expired: 301 s old", signAt(secret, now.Add(-301*time.Second)), ErrSignatureExpired},
		{"too far in the future", signAt(secret, now.Add(10*time.Minute)), ErrSignatureExpired},
		{"timestamp swapped after signing", "t=" + strconv.FormatInt(now.Unix()-1, 10) + ",v1=" + v1Of(signAt(secret, now)), ErrSignatureMismatch},
		{"expired and forged reports mismatch", signAt([]byte("forger"), now.Add(-time.Hour)), ErrSignatureMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyStripeSignature(secret, body, tc.header, now, tol)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("empty secret never verifies", func(t *testing.T) {
		if err := VerifyStripeSignature(nil, body, SignStripe(nil, body, now), now, tol); !errors.Is(err, ErrSignatureMismatch) {
			t.Fatalf("got %v", err)
		}
	})
}

// gwWant is the expected outcome of parsing one body.
type gwWant struct {
	err        error
	to         Status
	orderID    string
	deliveryID string
	paymentID  string
	amount     int64 // -1: absent
	currency   string
}

func checkGatewayEvent(t *testing.T, ev GatewayEvent, err error, want gwWant) {
	t.Helper()
	if !errors.Is(err, want.err) || (want.err == nil) != (err == nil) {
		t.Fatalf("error %v, want %v", err, want.err)
	}
	if err != nil {
		return
	}
	if ev.To != want.to || ev.OrderID != want.orderID || ev.DeliveryID != want.deliveryID || ev.PaymentID != want.paymentID || ev.Currency != want.currency {
		t.Fatalf("event %+v, want %+v", ev, want)
	}
	got := int64(-1)
	if ev.Amount != nil {
		got = *ev.Amount
	}
	if got != want.amount {
		t.Fatalf("amount %d, want %d", got, want.amount)
	}
	tr := ev.Transition()
	if !tr.Lenient || tr.Source != ev.Gateway || tr.DeliveryID != ev.DeliveryID || tr.To != ev.To {
		t.Fatalf("transition %+v", tr)
	}
}

func TestParseUPICallback(t *testing.T) {
	cases := []struct {
		name string
		body string
		want gwWant
	}{
		{"success", `{"orderId":"ord_1","txnId":"T1","status":"SUCCESS","amount":49900,"vpa":"a@upi"}`,
			gwWant{to: StatusCompleted, orderID: "ord_1", deliveryID: "T1:SUCCESS", paymentID: "T1", amount: 49900, currency: "INR"}},
		{"failure", `{"orderId":"ord_1","txnId":"T1","status":"FAILURE","amount":49900}`,
			gwWant{to: StatusFailed, orderID: "ord_1", deliveryID: "T1:FAILURE", paymentID: "T1", amount: 49900, currency: "INR"}},
		{"pending, lower case", `{"orderId":"ord_1","txnId":"T1","status":"pending","amount":1}`,
			gwWant{to: StatusProcessing, orderID: "ord_1", deliveryID: "T1:PENDING", paymentID: "T1", amount: 1, currency: "INR"}},
		{"unknown status", `{"orderId":"ord_1","txnId":"T1","status":"REVERSED","amount":1}`, gwWant{err: ErrUnknownEvent}},
		{"amount in major units", `{"orderId":"ord_1","txnId":"T1","status":"SUCCESS","amount":499.00}`, gwWant{err: ErrMalformedPayload}},
		{"amount as string", `{"orderId":"ord_1","txnId":"T1","status":"SUCCESS","amount":"49900"}`, gwWant{err: ErrMalformedPayload}},
		{"amount negative", `{"orderId":"ord_1","txnId":"T1","status":"SUCCESS","amount":-1}`, gwWant{err: ErrMalformedPayload}},
		{"amount missing", `{"orderId":"ord_1","txnId":"T1","status":"SUCCESS"}`, gwWant{err: ErrMalformedPayload}},
		{"txnId missing", `{"orderId":"ord_1","status":"SUCCESS","amount":1}`, gwWant{err: ErrMalformedPayload}},
		{"orderId missing", `{"txnId":"T1","status":"SUCCESS","amount":1}`, gwWant{err: ErrMalformedPayload}},
		{"status missing", `{"orderId":"ord_1","txnId":"T1","amount":1}`, gwWant{err: ErrMalformedPayload}},
		{"orderId a number", `{"orderId":5,"txnId":"T1","status":"SUCCESS","amount":1}`, gwWant{err: ErrMalformedPayload}},
		{"txnId with control characters", `{"orderId":"ord_1","txnId":"T\n1","status":"SUCCESS","amount":1}`, gwWant{err: ErrMalformedPayload}},
		{"txnId too long", `{"orderId":"ord_1","txnId":"` + strings.Repeat("x", 200) + `","status":"SUCCESS","amount":1}`, gwWant{err: ErrMalformedPayload}},
		{"not an object", `[1,2]`, gwWant{err: ErrMalformedPayload}},
		{"trailing data", `{"orderId":"ord_1","txnId":"T1","status":"SUCCESS","amount":1} {}`, gwWant{err: ErrMalformedPayload}},
		{"empty", ``, gwWant{err: ErrMalformedPayload}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := ParseUPICallback([]byte(tc.body))
			checkGatewayEvent(t, ev, err, tc.want)
		})
	}
}

// razorpayBody builds a webhook body around a payment entity.
func razorpayBody(event, entity string) string {
	return `{"entity":"event","event":"` + event + `","payload":{"payment":{"entity":` + entity + `}}}`
}

func TestParseRazorpayWebhook(t *testing.T) {
	entity := `{"id":"pay_1","amount":49900,"currency":"INR","notes":{"orderId":"ord_1"}}`
	ok := func(event string, to Status) gwWant {
		return gwWant{to: to, orderID: "ord_1", deliveryID: event + ":pay_1", paymentID: "pay_1", amount: 49900, currency: "INR"}
	}
	refund := `{"entity":"event","event":"refund.processed","payload":{"refund":{"entity":{"id":"rfnd_1"}},"payment":{"entity":` + entity + `}}}`
	cases := []struct {
		name string
		body string
		want gwWant
	}{
		{"authorized", razorpayBody("payment.authorized", entity), ok("payment.authorized", StatusProcessing)},
		{"captured", razorpayBody("payment.captured", entity), ok("payment.captured", StatusCompleted)},
		{"order.paid", razorpayBody("order.paid", entity), ok("order.paid", StatusCompleted)},
		{"failed", razorpayBody("payment.failed", entity), ok("payment.failed", StatusFailed)},
		{"refund.processed without refund entity", razorpayBody("refund.processed", entity), ok("refund.processed", StatusRefunded)},
		{"refund.processed keys on the refund id", refund,
			gwWant{to: StatusRefunded, orderID: "ord_1", deliveryID: "refund.processed:rfnd_1", paymentID: "pay_1", amount: 49900, currency: "INR"}},
		{"lower-case currency", razorpayBody("payment.captured", `{"id":"pay_1","amount":49900,"currency":"inr","notes":{"orderId":"ord_1"}}`), ok("payment.captured", StatusCompleted)},
		{"notes as empty array", razorpayBody("payment.captured", `{"id":"pay_1","amount":5,"currency":"INR","notes":[]}`),
			gwWant{to: StatusCompleted, deliveryID: "payment.captured:pay_1", paymentID: "pay_1", amount: 5, currency: "INR"}},
		{"failed without amount", razorpayBody("payment.failed", `{"id":"pay_1","notes":{"orderId":"ord_1"}}`),
			gwWant{to: StatusFailed, orderID: "ord_1", deliveryID: "payment.failed:pay_1", paymentID: "pay_1", amount: -1}},
		{"captured without amount", razorpayBody("payment.captured", `{"id":"pay_1","currency":"INR","notes":{"orderId":"ord_1"}}`), gwWant{err: ErrMalformedPayload}},
		{"captured without currency", razorpayBody("payment.captured", `{"id":"pay_1","amount":49900,"notes":{"orderId":"ord_1"}}`), gwWant{err: ErrMalformedPayload}},
		{"refund without amount", razorpayBody("refund.processed", `{"id":"pay_1","currency":"INR","notes":{"orderId":"ord_1"}}`), gwWant{err: ErrMalformedPayload}},
		{"payment id missing", razorpayBody("payment.captured", `{"amount":1,"currency":"INR","notes":{"orderId":"ord_1"}}`), gwWant{err: ErrMalformedPayload}},
		{"unknown event", razorpayBody("payment.dispute.created", entity), gwWant{err: ErrUnknownEvent}},
		{"no payment entity", `{"event":"payment.captured","payload":{}}`, gwWant{err: ErrMalformedPayload}},
		{"notes a non-empty array", razorpayBody("payment.captured", `{"id":"pay_1","notes":["ord_1"]}`), gwWant{err: ErrMalformedPayload}},
		{"notes a string", razorpayBody("payment.captured", `{"id":"pay_1","notes":"ord_1"}`), gwWant{err: ErrMalformedPayload}},
		{"amount fractional", razorpayBody("payment.captured", `{"id":"pay_1","amount":499.5,"notes":{"orderId":"ord_1"}}`), gwWant{err: ErrMalformedPayload}},
		{"currency not a code", razorpayBody("payment.captured", `{"id":"pay_1","amount":1,"currency":"RUPEES","notes":{"orderId":"ord_1"}}`), gwWant{err: ErrMalformedPayload}},
		{"event missing", `{"payload":{}}`, gwWant{err: ErrMalformedPayload}},
		{"malformed JSON", `{"event":`, gwWant{err: ErrMalformedPayload}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := ParseRazorpayWebhook([]byte(tc.body))
			checkGatewayEvent(t, ev, err, tc.want)
		})
	}
}

// TestRazorpayDedupIgnoresUnsignedHeader: two deliveries of one signed body
// with different X-Razorpay-Event-Id headers are the same delivery.
func TestRazorpayDedupIgnoresUnsignedHeader(t *testing.T) {
	gw := NewRazorpayGateway(gwTestSecret)
	body := []byte(razorpayBody("payment.captured", `{"id":"pay_1","amount":49900,"currency":"INR","notes":{"orderId":"ord_1"}}`))
	sig := SignHex([]byte(gwTestSecret), body)
	a, err := gw.Open(body, gwHeader(RazorpaySignatureHeader, sig, RazorpayEventIDHeader, "evt_a"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := gw.Open(body, gwHeader(RazorpaySignatureHeader, sig, RazorpayEventIDHeader, "evt_b"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if a.DeliveryID != b.DeliveryID || a.DeliveryID == "" {
		t.Fatalf("delivery ids %q and %q: a replay with a new header would be applied again", a.DeliveryID, b.DeliveryID)
	}
}

// stripeBody builds an event body around data.object.
func stripeBody(id, typ, object string) string {
	return `{"id":"` + id + `","object":"event","type":"` + typ + `","data":{"object":` + object + `}}`
}

func TestParseStripeWebhook(t *testing.T) {
	pi := `{"id":"pi_1","object":"payment_intent","amount":2000,"amount_received":0,"currency":"usd","metadata":{"orderId":"ord_1"}}`
	piPaid := `{"id":"pi_1","object":"payment_intent","amount":2000,"amount_received":2000,"currency":"usd","metadata":{"orderId":"ord_1"}}`
	ok := func(to Status) gwWant {
		return gwWant{to: to, orderID: "ord_1", deliveryID: "evt_1", paymentID: "pi_1", amount: 2000, currency: "USD"}
	}
	cases := []struct {
		name string
		body string
		want gwWant
	}{
		{"processing", stripeBody("evt_1", "payment_intent.processing", pi), ok(StatusProcessing)},
		{"succeeded", stripeBody("evt_1", "payment_intent.succeeded", piPaid), ok(StatusCompleted)},
		{"failed", stripeBody("evt_1", "payment_intent.payment_failed", pi), ok(StatusFailed)},
		{"charge refunded names its payment intent", stripeBody("evt_1", "charge.refunded",
			`{"id":"ch_1","object":"charge","payment_intent":"pi_1","amount":2000,"amount_refunded":2000,"currency":"usd","metadata":{"orderId":"ord_1"}}`), ok(StatusRefunded)},
		{"succeeded with partial amount_received compares what was received", stripeBody("evt_1", "payment_intent.succeeded",
			`{"id":"pi_1","amount":2000,"amount_received":1500,"currency":"usd","metadata":{"orderId":"ord_1"}}`),
			gwWant{to: StatusCompleted, orderID: "ord_1", deliveryID: "evt_1", paymentID: "pi_1", amount: 1500, currency: "USD"}},
		{"no metadata", stripeBody("evt_1", "payment_intent.succeeded", `{"id":"pi_1","amount":1,"currency":"usd"}`),
			gwWant{to: StatusCompleted, deliveryID: "evt_1", paymentID: "pi_1", amount: 1, currency: "USD"}},
		{"succeeded without amount", stripeBody("evt_1", "payment_intent.succeeded", `{"id":"pi_1","currency":"usd","metadata":{"orderId":"ord_1"}}`), gwWant{err: ErrMalformedPayload}},
		{"succeeded without currency", stripeBody("evt_1", "payment_intent.succeeded", `{"id":"pi_1","amount":2000,"amount_received":2000,"metadata":{"orderId":"ord_1"}}`), gwWant{err: ErrMalformedPayload}},
		{"refunded without amount", stripeBody("evt_1", "charge.refunded", `{"id":"ch_1","currency":"usd","metadata":{"orderId":"ord_1"}}`), gwWant{err: ErrMalformedPayload}},
		{"failed without amount", stripeBody("evt_1", "payment_intent.payment_failed", `{"id":"pi_1","metadata":{"orderId":"ord_1"}}`),
			gwWant{to: StatusFailed, orderID: "ord_1", deliveryID: "evt_1", paymentID: "pi_1", amount: -1}},
		{"unknown type", stripeBody("evt_1", "customer.created", `{"id":"cus_1"}`), gwWant{err: ErrUnknownEvent}},
		{"unknown type without data", `{"id":"evt_1","type":"ping"}`, gwWant{err: ErrUnknownEvent}},
		{"id missing", stripeBody("", "payment_intent.succeeded", piPaid), gwWant{err: ErrMalformedPayload}},
		{"type missing", `{"id":"evt_1","data":{"object":{}}}`, gwWant{err: ErrMalformedPayload}},
		{"data missing", `{"id":"evt_1","type":"payment_intent.succeeded"}`, gwWant{err: ErrMalformedPayload}},
		{"object null", `{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":null}}`, gwWant{err: ErrMalformedPayload}},
		{"metadata not an object", stripeBody("evt_1", "payment_intent.succeeded", `{"id":"pi_1","metadata":"ord_1"}`), gwWant{err: ErrMalformedPayload}},
		{"amount as float", stripeBody("evt_1", "payment_intent.succeeded", `{"id":"pi_1","amount":20.00,"metadata":{"orderId":"ord_1"}}`), gwWant{err: ErrMalformedPayload}},
		{"amount_received as exponent", stripeBody("evt_1", "payment_intent.succeeded", `{"id":"pi_1","amount":2000,"amount_received":2e3,"metadata":{"orderId":"ord_1"}}`), gwWant{err: ErrMalformedPayload}},
		{"orderId a number", stripeBody("evt_1", "payment_intent.succeeded", `{"id":"pi_1","metadata":{"orderId":7}}`), gwWant{err: ErrMalformedPayload}},
		{"body an array", `[]`, gwWant{err: ErrMalformedPayload}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := ParseStripeWebhook([]byte(tc.body))
			checkGatewayEvent(t, ev, err, tc.want)
		})
	}
}

// TestGatewayOpenChecksSignatureFirst feeds each gateway an unparseable
// body: without a valid signature the answer is a signature error, never a
// parse error, so nothing unsigned reaches the decoder.
func TestGatewayOpenChecksSignatureFirst(t *testing.T) {
	body := []byte(`not json at all`)
	now := time.Now()
	cases := []struct {
		name    string
		gw      Gateway
		signed  http.Header
		forged  http.Header
		missing http.Header
	}{
		{"upi", NewUPIGateway(gwTestSecret),
			gwHeader(UPISignatureHeader, SignHex([]byte(gwTestSecret), body)),
			gwHeader(UPISignatureHeader, SignHex([]byte("x"), body)), gwHeader()},
		{"razorpay", NewRazorpayGateway(gwTestSecret),
			gwHeader(RazorpaySignatureHeader, SignHex([]byte(gwTestSecret), body), RazorpayEventIDHeader, "evt_1"),
			gwHeader(RazorpaySignatureHeader, SignHex([]byte("x"), body), RazorpayEventIDHeader, "evt_1"), gwHeader(RazorpayEventIDHeader, "evt_1")},
		{"stripe", NewStripeGateway(gwTestSecret, 0),
			gwHeader(StripeSignatureHeader, SignStripe([]byte(gwTestSecret), body, now)),
			gwHeader(StripeSignatureHeader, SignStripe([]byte("x"), body, now)), gwHeader()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.gw.Open(body, tc.missing, now); !errors.Is(err, ErrSignatureMissing) {
				t.Fatalf("missing: %v", err)
			}
			if _, err := tc.gw.Open(body, tc.forged, now); !errors.Is(err, ErrSignatureMismatch) {
				t.Fatalf("forged: %v", err)
			}
			if _, err := tc.gw.Open(body, tc.signed, now); !errors.Is(err, ErrMalformedPayload) {
				t.Fatalf("signed: %v", err)
			}
			if tc.gw.Name() != tc.name {
				t.Fatalf("name %q", tc.gw.Name())
			}
		})
	}
}
