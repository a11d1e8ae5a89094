package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"paystatus/payment"
)

// gwDelivery describes one gateway delivery in gateway-neutral terms; each
// gwDriver turns it into that gateway's signed request.
type gwDelivery struct {
	id       string // txnId, X-Razorpay-Event-Id or Stripe event id
	orderID  string
	to       payment.Status
	rawType  string // overrides the event type or UPI status, for unknown ones
	amount   int64
	currency string // upper case; each driver writes it its own way
	noOrder  bool   // leave the order reference out of the payload
}

type gwDriver struct {
	name    string // also the metric label and event source
	path    string
	refunds bool // the gateway can report refunds
	body    func(d gwDelivery) []byte
	sign    func(body []byte, d gwDelivery) map[string]string
}

func (g gwDriver) request(d gwDelivery) *request {
	body := g.body(d)
	r := newRequest(http.MethodPost, g.path).raw(body)
	for k, v := range g.sign(body, d) {
		r.header(k, v)
	}
	return r
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

var (
	upiStatusOf      = map[payment.Status]string{payment.StatusCompleted: "SUCCESS", payment.StatusFailed: "FAILURE", payment.StatusProcessing: "PENDING"}
	razorpayEventOf  = map[payment.Status]string{payment.StatusProcessing: "payment.authorized", payment.StatusCompleted: "payment.captured", payment.StatusFailed: "payment.failed", payment.StatusRefunded: "refund.processed"}
	stripeEventOf    = map[payment.Status]string{payment.StatusProcessing: "payment_intent.processing", payment.StatusCompleted: "payment_intent.succeeded", payment.StatusFailed: "payment_intent.payment_failed", payment.StatusRefunded: "charge.refunded"}
	gwTypeOr         = func(m map[payment.Status]string, d gwDelivery) string { return cmpOr(d.rawType, m[d.to]) }
	gwDriverUPI      = gwDriver{name: "upi", path: "/api/payment/upi/callback", body: upiBody, sign: hexSigner("X-Signature", "test-upi-secret")}
	gwDriverRazorpay = gwDriver{name: "razorpay", path: "/api/payment/webhook/razorpay", refunds: true, body: razorpayBody, sign: razorpaySigner("test-razorpay-secret")}
	gwDriverStripe   = gwDriver{name: "stripe", path: "/api/payment/webhook/stripe", refunds: true, body: stripeBody, sign: stripeSigner(time.Now, "test-stripe-secret")}
	gwDrivers        = []gwDriver{gwDriverUPI, gwDriverRazorpay, gwDriverStripe}
)

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func upiBody(d gwDelivery) []byte {
	m := map[string]any{"txnId": d.id, "status": gwTypeOr(upiStatusOf, d), "amount": d.amount, "vpa": "buyer@upi"}
	if !d.noOrder {
		m["orderId"] = d.orderID
	}
	return mustJSON(m)
}

func razorpayBody(d gwDelivery) []byte {
	notes := any([]any{}) // Razorpay sends [] for empty notes
	if !d.noOrder {
		notes = map[string]any{"orderId": d.orderID}
	}
	return mustJSON(map[string]any{
		"entity": "event", "event": gwTypeOr(razorpayEventOf, d), "contains": []string{"payment"},
		"payload": map[string]any{"payment": map[string]any{"entity": map[string]any{
			"id": "pay_" + d.id, "amount": d.amount, "currency": d.currency, "status": "captured", "notes": notes,
		}}},
	})
}

func stripeBody(d gwDelivery) []byte {
	obj := map[string]any{"id": "pi_" + d.id, "object": "payment_intent", "amount": d.amount, "currency": strings.ToLower(d.currency), "metadata": map[string]any{}}
	if d.to == payment.StatusCompleted {
		obj["amount_received"] = d.amount
	}
	if !d.noOrder {
		obj["metadata"] = map[string]any{"orderId": d.orderID}
	}
	return mustJSON(map[string]any{"id": d.id, "object": "event", "type": gwTypeOr(stripeEventOf, d), "data": map[string]any{"object": obj}})
}

func hexSigner(header, secret string) func([]byte, gwDelivery) map[string]string {
	return func(body []byte, _ gwDelivery) map[string]string {
		return map[string]string{header: payment.SignHex([]byte(secret), body)}
	}
}

func razorpaySigner(secret string) func([]byte, gwDelivery) map[string]string {
	return func(body []byte, d gwDelivery) map[string]string {
		return map[string]string{"X-Razorpay-Signature": payment.SignHex([]byte(secret), body), "X-Razorpay-Event-Id": d.id}
	}
}

func stripeSigner(now func() time.Time, secret string) func([]byte, gwDelivery) map[string]string {
	return func(body []byte, _ gwDelivery) map[string]string {
		return map[string]string{"Stripe-Signature": payment.SignStripe([]byte(secret), body, now())}
	}
}

// gwMetric reads one series from /metrics; absent series read as 0.
func gwMetric(t *testing.T, ts *testServer, series string) float64 {
	t.Helper()
	res := ts.do(t, newRequest(http.MethodGet, "/metrics"))
	sc := bufio.NewScanner(bytes.NewReader(res.Body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

const gwBroadcastSeries = `paystatus_broadcasts_total{event="payment-status-update"}`

func gwOutcomeSeries(endpoint, outcome string) string {
	return fmt.Sprintf(`paystatus_gateway_requests_total{endpoint=%q,outcome=%q}`, endpoint, outcome)
}

// gwStatusEvents returns the order's stored status events.
func gwStatusEvents(t *testing.T, ts *testServer, orderID string) []payment.Event {
	t.Helper()
	events, err := ts.Service().Store().Events(context.Background(), orderID)
	if err != nil {
		t.Fatal(err)
	}
	var out []payment.Event
	for _, e := range events {
		if e.Type == "status" {
			out = append(out, e)
		}
	}
	return out
}

func gwSnapshot(t *testing.T, ts *testServer, orderID string) payment.Snapshot {
	t.Helper()
	snap, err := ts.Service().Snapshot(context.Background(), orderID)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// gwUnique gives each delivery its own id across the whole test binary.
var gwUnique = struct {
	sync.Mutex
	n int
}{}

func gwID(prefix string) string {
	gwUnique.Lock()
	defer gwUnique.Unlock()
	gwUnique.n++
	return fmt.Sprintf("%s_%d_%d", prefix, time.Now().UnixNano(), gwUnique.n)
}

func TestGatewaySignatures(t *testing.T) {
	ts := newTestServer(t)
	type tamper func(r *request)
	setHeader := func(k, v string) tamper { return func(r *request) { r.header(k, v) } }
	dropHeader := func(k string) tamper { return func(r *request) { delete(r.headers, k) } }
	flipBody := func(r *request) {
		r.body = bytes.Replace(r.body, []byte(`"amount":49900`), []byte(`"amount":49901`), 1)
	}
	stripeAt := func(at time.Time, secrets ...string) tamper {
		return func(r *request) {
			var v1 []string
			for _, s := range secrets {
				_, mac, _ := strings.Cut(payment.SignStripe([]byte(s), r.body, at), ",v1=")
				v1 = append(v1, "v1="+mac)
			}
			r.header("Stripe-Signature", "t="+strconv.FormatInt(at.Unix(), 10)+","+strings.Join(v1, ","))
		}
	}
	type sigCase struct {
		name   string
		tamper tamper
		want   int
	}
	common := func(header string) []sigCase {
		return []sigCase{
			{"good", func(*request) {}, http.StatusOK},
			{"missing", dropHeader(header), http.StatusUnauthorized},
			{"malformed", setHeader(header, "not-a-signature"), http.StatusUnauthorized},
			{"body changed after signing", flipBody, http.StatusUnauthorized},
		}
	}
	perGateway := map[string][]sigCase{
		"upi":      append(common("X-Signature"), sigCase{"wrong secret", setHeader("X-Signature", strings.Repeat("0", 64)), http.StatusUnauthorized}),
		"razorpay": append(common("X-Razorpay-Signature"), sigCase{"wrong secret", setHeader("X-Razorpay-Signature", strings.Repeat("0", 64)), http.StatusUnauthorized}),
		"stripe": append(common("Stripe-Signature"),
			sigCase{"wrong secret", stripeAt(time.Now(), "not-the-secret"), http.StatusUnauthorized},
			sigCase{"expired timestamp", stripeAt(time.Now().Add(-301*time.Second), "test-stripe-secret"), http.StatusUnauthorized},
			sigCase{"timestamp too far ahead", stripeAt(time.Now().Add(10*time.Minute), "test-stripe-secret"), http.StatusUnauthorized},
			sigCase{"timestamp inside tolerance", stripeAt(time.Now().Add(-290*time.Second), "test-stripe-secret"), http.StatusOK},
			sigCase{"rotated: old and new secret", stripeAt(time.Now(), "old-stripe-secret", "test-stripe-secret"), http.StatusOK},
			sigCase{"rotated: new and old secret", stripeAt(time.Now(), "test-stripe-secret", "old-stripe-secret"), http.StatusOK},
			sigCase{"rotated: only the old secret", stripeAt(time.Now(), "old-stripe-secret"), http.StatusUnauthorized},
		),
	}
	for _, g := range gwDrivers {
		for _, tc := range perGateway[g.name] {
			t.Run(g.name+"/"+tc.name, func(t *testing.T) {
				orderID, _ := ts.createOrder(t, 49900, "INR")
				broadcasts := gwBroadcastSeries
				before := gwMetric(t, ts, broadcasts)
				badBefore := gwMetric(t, ts, gwOutcomeSeries(g.name, "bad_signature"))
				r := g.request(gwDelivery{id: gwID("sig"), orderID: orderID, to: payment.StatusCompleted, amount: 49900, currency: "INR"})
				tc.tamper(r)
				res := ts.do(t, r)
				if res.Status != tc.want {
					t.Fatalf("status %d, want %d: %s", res.Status, tc.want, res.Body)
				}
				snap := gwSnapshot(t, ts, orderID)
				if tc.want == http.StatusOK {
					if snap.Status != payment.StatusCompleted || snap.Seq != 1 {
						t.Fatalf("order after accepted callback: %+v", snap)
					}
					return
				}
				if !strings.HasPrefix(fmt.Sprint(res.JSON["error"]), "invalid signature") {
					t.Fatalf("error message %s", res.Body)
				}
				if snap.Status != payment.StatusPending || snap.Seq != 0 || len(gwStatusEvents(t, ts, orderID)) != 0 {
					t.Fatalf("refused callback changed the order: %+v", snap)
				}
				if got := gwMetric(t, ts, broadcasts); got != before {
					t.Fatalf("refused callback broadcast: %v -> %v", before, got)
				}
				if got := gwMetric(t, ts, gwOutcomeSeries(g.name, "bad_signature")); got != badBefore+1 {
					t.Fatalf("bad_signature metric %v -> %v", badBefore, got)
				}
			})
		}
	}
}

// gwAnomaly is one delivery scenario: setup brings the order to a state,
// then the delivery under test is sent and its effects checked.
type gwAnomaly struct {
	name          string
	orderCurrency string
	setup         []gwDelivery // sent first, each must get 200
	delivery      func(orderID string, setupIDs []string) gwDelivery
	raw           []byte // replaces the body (still signed) when set
	wantCode      int
	wantReply     map[string]any // fields the reply must contain
	wantStatus    payment.Status
	wantEvents    int
	wantBroadcast int // broadcasts caused by the delivery under test
	outcome       string
}

func TestGatewayDeliveryAnomalies(t *testing.T) {
	ts := newTestServer(t)
	const amount = 49900
	d := func(to payment.Status) gwDelivery {
		return gwDelivery{id: gwID("d"), to: to, amount: amount, currency: "INR"}
	}
	fresh := func(to payment.Status) func(string, []string) gwDelivery {
		return func(orderID string, _ []string) gwDelivery { x := d(to); x.orderID = orderID; return x }
	}
	cases := []gwAnomaly{
		{name: "first delivery", delivery: fresh(payment.StatusCompleted),
			wantCode: 200, wantReply: map[string]any{"received": true, "status": "completed", "seq": 1.0}, wantStatus: payment.StatusCompleted, wantEvents: 1, wantBroadcast: 1, outcome: "ok"},
		{name: "replay of the same delivery", setup: []gwDelivery{d(payment.StatusCompleted)},
			delivery: func(orderID string, ids []string) gwDelivery {
				x := d(payment.StatusCompleted)
				x.id, x.orderID = ids[0], orderID
				return x
			},
			wantCode: 200, wantReply: map[string]any{"received": true, "duplicate": true}, wantStatus: payment.StatusCompleted, wantEvents: 1, outcome: "duplicate"},
		{name: "processing after completed (late, out of order)", setup: []gwDelivery{d(payment.StatusCompleted)}, delivery: fresh(payment.StatusProcessing),
			wantCode: 200, wantReply: map[string]any{"received": true, "ignored": true}, wantStatus: payment.StatusCompleted, wantEvents: 1, outcome: "ignored"},
		{name: "failed after completed", setup: []gwDelivery{d(payment.StatusCompleted)}, delivery: fresh(payment.StatusFailed),
			wantCode: 200, wantReply: map[string]any{"ignored": true}, wantStatus: payment.StatusCompleted, wantEvents: 1, outcome: "ignored"},
		{name: "processing then completed", setup: []gwDelivery{d(payment.StatusProcessing)}, delivery: fresh(payment.StatusCompleted),
			wantCode: 200, wantReply: map[string]any{"status": "completed", "seq": 2.0}, wantStatus: payment.StatusCompleted, wantEvents: 2, wantBroadcast: 1, outcome: "ok"},
		{name: "amount mismatch", delivery: func(orderID string, _ []string) gwDelivery {
			x := fresh(payment.StatusCompleted)(orderID, nil)
			x.amount = amount - 1
			return x
		}, wantCode: 422, wantStatus: payment.StatusPending, outcome: "rejected"},
		{name: "currency mismatch", orderCurrency: "EUR", delivery: fresh(payment.StatusCompleted),
			wantCode: 422, wantStatus: payment.StatusPending, outcome: "rejected"},
		{name: "unknown order", delivery: func(string, []string) gwDelivery {
			x := d(payment.StatusCompleted)
			x.orderID = "ord_doesnotexist"
			return x
		}, wantCode: 200, wantReply: map[string]any{"ignored": true, "reason": "unknown order"}, wantStatus: payment.StatusPending, outcome: "ignored"},
		{name: "order id that could never exist", delivery: func(string, []string) gwDelivery {
			x := d(payment.StatusCompleted)
			x.orderID = "../../etc/passwd"
			return x
		}, wantCode: 200, wantReply: map[string]any{"ignored": true, "reason": "unknown order"}, wantStatus: payment.StatusPending, outcome: "ignored"},
		{name: "unknown event type", delivery: func(orderID string, _ []string) gwDelivery {
			x := fresh(payment.StatusCompleted)(orderID, nil)
			x.rawType = "something.new"
			return x
		}, wantCode: 200, wantReply: map[string]any{"ignored": true, "reason": "event type not handled"}, wantStatus: payment.StatusPending, outcome: "ignored"},
		{name: "signed but malformed body", delivery: fresh(payment.StatusCompleted), raw: []byte(`{"truncated":`),
			wantCode: 400, wantStatus: payment.StatusPending, outcome: "rejected"},
	}
	for _, g := range gwDrivers {
		for _, tc := range cases {
			t.Run(g.name+"/"+tc.name, func(t *testing.T) {
				runAnomaly(t, ts, g, tc)
			})
		}
	}

	// Refunds only exist for the card-style gateways.
	refundCases := []gwAnomaly{
		{name: "refund after completion", setup: []gwDelivery{d(payment.StatusCompleted)}, delivery: fresh(payment.StatusRefunded),
			wantCode: 200, wantReply: map[string]any{"status": "refunded", "seq": 2.0}, wantStatus: payment.StatusRefunded, wantEvents: 2, wantBroadcast: 1, outcome: "ok"},
		{name: "refund before the capture arrived", delivery: fresh(payment.StatusRefunded),
			wantCode: 409, wantStatus: payment.StatusPending, outcome: "rejected"},
		{name: "no order reference in payload", delivery: func(string, []string) gwDelivery {
			x := d(payment.StatusCompleted)
			x.noOrder = true
			return x
		}, wantCode: 200, wantReply: map[string]any{"ignored": true, "reason": "payload names no order"}, wantStatus: payment.StatusPending, outcome: "ignored"},
	}
	for _, g := range gwDrivers {
		if !g.refunds {
			continue
		}
		for _, tc := range refundCases {
			t.Run(g.name+"/"+tc.name, func(t *testing.T) {
				runAnomaly(t, ts, g, tc)
			})
		}
	}
}

func runAnomaly(t *testing.T, ts *testServer, g gwDriver, tc gwAnomaly) {
	t.Helper()
	orderID, _ := ts.createOrder(t, 49900, cmpOr(tc.orderCurrency, "INR"))
	var ids []string
	for _, s := range tc.setup {
		s.orderID = orderID
		ids = append(ids, s.id)
		if res := ts.do(t, g.request(s)); res.Status != http.StatusOK || res.JSON["seq"] == nil {
			t.Fatalf("setup delivery: %d %s", res.Status, res.Body)
		}
	}
	eventsBefore := len(gwStatusEvents(t, ts, orderID))
	seqBefore := gwSnapshot(t, ts, orderID).Seq
	broadcastsBefore := gwMetric(t, ts, gwBroadcastSeries)
	outcomeBefore := gwMetric(t, ts, gwOutcomeSeries(g.name, tc.outcome))

	dl := tc.delivery(orderID, ids)
	r := g.request(dl)
	if tc.raw != nil {
		r = newRequest(http.MethodPost, g.path).raw(tc.raw)
		for k, v := range g.sign(tc.raw, dl) {
			r.header(k, v)
		}
	}
	res := ts.do(t, r)
	if res.Status != tc.wantCode {
		t.Fatalf("status %d, want %d: %s", res.Status, tc.wantCode, res.Body)
	}
	for k, want := range tc.wantReply {
		if res.JSON[k] != want {
			t.Fatalf("reply %s: %s = %v, want %v", res.Body, k, res.JSON[k], want)
		}
	}
	if tc.wantCode >= 400 && res.JSON["error"] == nil {
		t.Fatalf("error reply without a message: %s", res.Body)
	}
	snap := gwSnapshot(t, ts, orderID)
	if snap.Status != tc.wantStatus {
		t.Fatalf("order status %s, want %s", snap.Status, tc.wantStatus)
	}
	events := gwStatusEvents(t, ts, orderID)
	if len(events) != tc.wantEvents {
		t.Fatalf("%d status events stored, want %d", len(events), tc.wantEvents)
	}
	if len(events) > eventsBefore && events[len(events)-1].Source != g.name {
		t.Fatalf("event source %q", events[len(events)-1].Source)
	}
	if tc.wantBroadcast == 0 && snap.Seq != seqBefore {
		t.Fatalf("seq moved from %d to %d", seqBefore, snap.Seq)
	}
	if got := gwMetric(t, ts, gwBroadcastSeries) - broadcastsBefore; got != float64(tc.wantBroadcast) {
		t.Fatalf("%v broadcasts, want %d", got, tc.wantBroadcast)
	}
	if got := gwMetric(t, ts, gwOutcomeSeries(g.name, tc.outcome)) - outcomeBefore; got != 1 {
		t.Fatalf("outcome %q counted %v times", tc.outcome, got)
	}
}

// TestGatewayConcurrentCallbacks fires 100 callbacks for one order at
// once: exactly one may change it, store an event and broadcast.
func TestGatewayConcurrentCallbacks(t *testing.T) {
	ts := newTestServer(t)
	const n = 100
	cases := []struct {
		name     string
		distinct bool // each callback a different delivery, rather than one delivery repeated
	}{
		{"same delivery repeated", false},
		{"distinct deliveries of the same outcome", true},
	}
	for _, g := range gwDrivers {
		for _, tc := range cases {
			t.Run(g.name+"/"+tc.name, func(t *testing.T) {
				orderID, _ := ts.createOrder(t, 49900, "INR")
				broadcastsBefore := gwMetric(t, ts, gwBroadcastSeries)
				shared := gwID("c")
				requests := make([]*request, n)
				for i := range requests {
					id := shared
					if tc.distinct {
						id = gwID("c")
					}
					requests[i] = g.request(gwDelivery{id: id, orderID: orderID, to: payment.StatusCompleted, amount: 49900, currency: "INR"})
				}
				start := make(chan struct{})
				results := make([]response, n)
				var wg sync.WaitGroup
				for i := range requests {
					wg.Go(func() {
						<-start
						results[i] = gwDo(ts, requests[i])
					})
				}
				close(start)
				wg.Wait()
				applied := 0
				for i, res := range results {
					if res.Status != http.StatusOK {
						t.Fatalf("callback %d: %d %s", i, res.Status, res.Body)
					}
					if res.JSON["seq"] != nil {
						applied++
					}
				}
				if applied != 1 {
					t.Fatalf("%d callbacks applied, want 1", applied)
				}
				if events := gwStatusEvents(t, ts, orderID); len(events) != 1 {
					t.Fatalf("%d status events stored, want 1", len(events))
				}
				if snap := gwSnapshot(t, ts, orderID); snap.Status != payment.StatusCompleted || snap.Seq != 1 {
					t.Fatalf("order %+v", snap)
				}
				if got := gwMetric(t, ts, gwBroadcastSeries) - broadcastsBefore; got != 1 {
					t.Fatalf("%v broadcasts, want 1", got)
				}
			})
		}
	}
}

// gwDo is ts.do without *testing.T, for use from many goroutines; failures
// come back as status 0.
func gwDo(ts *testServer, r *request) response {
	req, err := http.NewRequest(r.method, ts.URL+r.path, bytes.NewReader(r.body))
	if err != nil {
		return response{Body: []byte(err.Error())}
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{Body: []byte(err.Error())}
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	out := response{Status: res.StatusCode, Body: body}
	_ = json.Unmarshal(body, &out.JSON)
	return out
}

func TestGatewayBodyLimit(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.BodyLimit = 1024 })
	orderID, _ := ts.createOrder(t, 49900, "INR")
	for _, g := range gwDrivers {
		t.Run(g.name, func(t *testing.T) {
			body := g.body(gwDelivery{id: gwID("big"), orderID: orderID, to: payment.StatusCompleted, amount: 49900, currency: "INR"})
			// Pad inside the object so the body stays valid, signed JSON.
			body = append(body[:len(body)-1], []byte(`,"pad":"`+strings.Repeat("x", 2048)+`"}`)...)
			r := newRequest(http.MethodPost, g.path).raw(body)
			for k, v := range g.sign(body, gwDelivery{id: gwID("big")}) {
				r.header(k, v)
			}
			res := ts.do(t, r)
			if res.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d: %s", res.Status, res.Body)
			}
			if snap := gwSnapshot(t, ts, orderID); snap.Seq != 0 {
				t.Fatalf("oversized callback changed the order: %+v", snap)
			}
		})
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestGatewayDisabledWithoutSecret: in production no secret is generated,
// so an endpoint without one is switched off, says so once at start-up and
// answers 503 (which gateways retry) instead of accepting anything.
func TestGatewayDisabledWithoutSecret(t *testing.T) {
	var logs syncBuffer
	cfg := Config{
		Env: EnvProduction, DatabaseURL: testDatabaseURL(t), OrderTokenSecret: "prod-order-secret", MerchantAPIKey: testMerchantKey,
		RazorpaySecret: "test-razorpay-secret", StaticDir: "../static", ClientDir: "../node_modules/socket.io-client/dist",
	}
	ts := startTestServer(t, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	orderID, _ := ts.createOrder(t, 49900, "INR")

	for _, want := range []string{"UPI callbacks disabled: UPI_CALLBACK_SECRET is not set", "Stripe webhooks disabled: STRIPE_WEBHOOK_SECRET is not set"} {
		if n := strings.Count(logs.String(), want); n != 1 {
			t.Fatalf("start-up log has %q %d times:\n%s", want, n, logs.String())
		}
	}
	if strings.Contains(logs.String(), "Razorpay webhooks disabled") {
		t.Fatalf("configured endpoint logged as disabled:\n%s", logs.String())
	}
	cases := []struct {
		driver  gwDriver
		want    int
		message string
	}{
		{gwDriverUPI, http.StatusServiceUnavailable, "UPI_CALLBACK_SECRET is not set"},
		{gwDriverStripe, http.StatusServiceUnavailable, "STRIPE_WEBHOOK_SECRET is not set"},
		{gwDriverRazorpay, http.StatusOK, ""},
	}
	for _, tc := range cases {
		t.Run(tc.driver.name, func(t *testing.T) {
			// Even a request signed with an empty key must not get in.
			r := tc.driver.request(gwDelivery{id: gwID("p"), orderID: orderID, to: payment.StatusProcessing, amount: 49900, currency: "INR"})
			if tc.driver.name == "upi" {
				r.header("X-Signature", payment.SignHex(nil, r.body))
			}
			res := ts.do(t, r)
			if res.Status != tc.want {
				t.Fatalf("status %d, want %d: %s", res.Status, tc.want, res.Body)
			}
			if tc.message != "" && !strings.Contains(fmt.Sprint(res.JSON["error"]), tc.message) {
				t.Fatalf("error %s does not say %q", res.Body, tc.message)
			}
		})
	}
	if snap := gwSnapshot(t, ts, orderID); snap.Seq != 1 || snap.Status != payment.StatusProcessing {
		t.Fatalf("only the enabled endpoint should have changed the order: %+v", snap)
	}
}
