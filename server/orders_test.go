package server

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"paystatus/payment"
	"paystatus/realtime/realtimetest"
)

// dialWire connects a Socket.IO client to the root namespace and hands it
// to Listen, enough to see exactly which events a room receives.
func dialWire(t *testing.T, ts *testServer) *realtimetest.Client {
	t.Helper()
	before := connectedSockets(t, ts)
	c := realtimetest.DialSocketIO(t, ts.URL, 4)
	c.Connect("/", "")
	c.Listen()
	// The CONNECT reply can reach the client before the connection handler
	// has finished (events sent meanwhile wait for it); wait for the
	// handler's gauge so that tests counting sockets start from a known state.
	realtimetest.Eventually(t, 10*time.Second, "the server's connection handler", func() bool { return connectedSockets(t, ts) > before })
	return c
}

// connectedSockets reads the server's connected-sockets gauge, which the
// connection handler raises.
func connectedSockets(t *testing.T, ts *testServer) float64 {
	t.Helper()
	families, err := ts.metrics.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range families {
		if f.GetName() == "paystatus_sockets_connected" {
			for _, m := range f.GetMetric() {
				n += m.GetGauge().GetValue()
			}
		}
	}
	return n
}

// joinOrder enters the order's room and checks the server said yes.
func joinOrder(t *testing.T, c *realtimetest.Client, orderID, token string) {
	t.Helper()
	c.Emit("join-order", map[string]any{"orderId": orderID, "token": token})
	ev := c.NextEvent("joined-order")
	if ev.Name != "joined-order" || ev.Data["success"] != true {
		t.Fatalf("join refused: %+v", ev)
	}
}

// orderState reads an order and its events straight from the store.
func (ts *testServer) orderState(t *testing.T, id string) (payment.Order, []payment.Event) {
	t.Helper()
	st := ts.Service().Store()
	o, err := st.Order(t.Context(), id)
	if err != nil {
		t.Fatalf("load order %s: %v", id, err)
	}
	events, err := st.Events(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o, events
}

func TestCreateOrderResponse(t *testing.T) {
	ts := newTestServer(t)
	tests := []struct {
		name     string
		body     map[string]any
		currency string
	}{
		{"currency defaults to INR", map[string]any{"amount": 1500}, "INR"},
		{"lowercase currency normalised", map[string]any{"amount": 250, "currency": "usd", "description": "coffee"}, "USD"},
		{"upper case kept", map[string]any{"amount": 1, "currency": "EUR"}, "EUR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now().Add(-time.Second)
			res := ts.do(t, newRequest(http.MethodPost, "/api/orders").json(tt.body))
			if res.Status != http.StatusCreated {
				t.Fatalf("status %d: %s", res.Status, res.Body)
			}
			for _, key := range []string{"id", "status", "amount", "currency", "token", "createdAt"} {
				if _, ok := res.JSON[key]; !ok {
					t.Fatalf("response lacks %q: %s", key, res.Body)
				}
			}
			id, _ := res.JSON["id"].(string)
			token, _ := res.JSON["token"].(string)
			if !payment.ValidOrderID(id) || token == "" {
				t.Fatalf("bad id or token: %s", res.Body)
			}
			if res.JSON["status"] != "pending" || res.JSON["amount"] != float64(tt.body["amount"].(int)) || res.JSON["currency"] != tt.currency {
				t.Fatalf("unexpected body %s", res.Body)
			}
			created, err := time.Parse(time.RFC3339Nano, res.JSON["createdAt"].(string))
			if err != nil || created.Before(before) || created.After(time.Now().Add(time.Second)) {
				t.Fatalf("createdAt %v, %v", res.JSON["createdAt"], err)
			}
			o, events := ts.orderState(t, id)
			if o.Status != payment.StatusPending || o.Seq != 0 || o.Currency != tt.currency || len(events) != 0 {
				t.Fatalf("stored %+v with %d events", o, len(events))
			}
			poll := ts.do(t, newRequest(http.MethodGet, "/api/payment/status/"+id+"?token="+token))
			if poll.Status != http.StatusOK || poll.JSON["orderId"] != id {
				t.Fatalf("polling the new order: %d %s", poll.Status, poll.Body)
			}
		})
	}
}

func TestPaymentStatusTokens(t *testing.T) {
	ts := newTestServer(t)
	id, token := ts.createOrder(t, 100, "INR")
	_, otherToken := ts.createOrder(t, 100, "INR")
	path := "/api/payment/status/" + id
	tests := []struct {
		name string
		req  *request
		want int
	}{
		{"query token", newRequest(http.MethodGet, path+"?token="+token), http.StatusOK},
		{"header token", newRequest(http.MethodGet, path).header("X-Order-Token", token), http.StatusOK},
		{"missing token", newRequest(http.MethodGet, path), http.StatusUnauthorized},
		{"wrong token", newRequest(http.MethodGet, path+"?token=deadbeef"), http.StatusUnauthorized},
		{"token with a changed character", newRequest(http.MethodGet, path+"?token="+flipLast(token)), http.StatusUnauthorized},
		{"other order's token", newRequest(http.MethodGet, path+"?token="+otherToken), http.StatusUnauthorized},
		{"other order's token in header", newRequest(http.MethodGet, path).header("X-Order-Token", otherToken), http.StatusUnauthorized},
		{"admin token is no order token", newRequest(http.MethodGet, path).admin(), http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := ts.do(t, tt.req)
			if res.Status != tt.want {
				t.Fatalf("status %d, want %d: %s", res.Status, tt.want, res.Body)
			}
			if tt.want == http.StatusOK {
				if res.JSON["orderId"] != id || res.JSON["status"] != "pending" {
					t.Fatalf("unexpected snapshot %s", res.Body)
				}
				return
			}
			if res.JSON["error"] != "invalid or missing order token" {
				t.Fatalf("unclear refusal %s", res.Body)
			}
			if _, leaked := res.JSON["status"]; leaked {
				t.Fatal("refusal carries the order's status")
			}
		})
	}
}

// With ROOM_AUTH=order old pages poll without a token; a wrong token is
// still refused.
func TestPaymentStatusLegacyRoomAuth(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.RoomAuth = "order" })
	id, _ := ts.createOrder(t, 100, "INR")
	if res := ts.do(t, newRequest(http.MethodGet, "/api/payment/status/"+id)); res.Status != http.StatusOK {
		t.Fatalf("tokenless poll: %d %s", res.Status, res.Body)
	}
	if res := ts.do(t, newRequest(http.MethodGet, "/api/payment/status/"+id+"?token=bad")); res.Status != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d %s", res.Status, res.Body)
	}
}

func flipLast(s string) string {
	if strings.HasSuffix(s, "0") {
		return s[:len(s)-1] + "1"
	}
	return s[:len(s)-1] + "0"
}

func TestPaymentStatusLongPoll(t *testing.T) {
	ts := newTestServer(t)
	id, token := ts.createOrder(t, 100, "INR")

	done := make(chan response, 1)
	go func() {
		done <- ts.do(t, newRequest(http.MethodGet, "/api/payment/status/"+id+"?since=0&wait=20&token="+token))
	}()
	realtimetest.Eventually(t, 10*time.Second, "the long-poll to wait", func() bool { return ts.Service().Waiters().Count() == 1 })
	if res := ts.do(t, newRequest(http.MethodPost, "/api/payment/"+id+"/complete").admin()); res.Status != http.StatusOK {
		t.Fatalf("complete: %d %s", res.Status, res.Body)
	}
	select {
	case res := <-done:
		if res.Status != http.StatusOK || res.JSON["status"] != "completed" || res.JSON["seq"] != 1.0 {
			t.Fatalf("long-poll answer %d %s", res.Status, res.Body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long-poll not answered after the change")
	}

	// Already past since: answered at once with the current status.
	res := ts.do(t, newRequest(http.MethodGet, "/api/payment/status/"+id+"?since=0&wait=20&token="+token))
	if res.Status != http.StatusOK || res.JSON["seq"] != 1.0 {
		t.Fatalf("poll past since: %d %s", res.Status, res.Body)
	}
}

func TestPaymentStatusWaitIsCapped(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.LongPollMax = 50 * time.Millisecond })
	id, token := ts.createOrder(t, 100, "INR")
	for _, wait := range []string{"3600", "1e300"} {
		start := time.Now()
		res := ts.do(t, newRequest(http.MethodGet, "/api/payment/status/"+id+"?since=0&wait="+wait+"&token="+token))
		if res.Status != http.StatusOK || res.JSON["seq"] != 0.0 {
			t.Fatalf("wait=%s: %d %s", wait, res.Status, res.Body)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("wait=%s held the request %v, cap is 50ms", wait, took)
		}
	}
}

func TestCompletePayment(t *testing.T) {
	tests := []struct {
		name   string
		body   any
		auth   string
		want   int
		status payment.Status // the order's status afterwards
	}{
		{"default is completed", nil, "Bearer " + testAdminToken, http.StatusOK, payment.StatusCompleted},
		{"explicit completed", map[string]any{"status": "completed", "paymentId": "pay_42"}, "Bearer " + testAdminToken, http.StatusOK, payment.StatusCompleted},
		{"failed", map[string]any{"status": "failed"}, "Bearer " + testAdminToken, http.StatusOK, payment.StatusFailed},
		{"refunded refused", map[string]any{"status": "refunded"}, "Bearer " + testAdminToken, http.StatusBadRequest, payment.StatusPending},
		{"processing refused", map[string]any{"status": "processing"}, "Bearer " + testAdminToken, http.StatusBadRequest, payment.StatusPending},
		{"upper case refused", map[string]any{"status": "COMPLETED"}, "Bearer " + testAdminToken, http.StatusBadRequest, payment.StatusPending},
		{"payment id too long", map[string]any{"paymentId": strings.Repeat("p", 129)}, "Bearer " + testAdminToken, http.StatusBadRequest, payment.StatusPending},
		{"no admin token", nil, "", http.StatusUnauthorized, payment.StatusPending},
		{"wrong admin token", nil, "Bearer nope", http.StatusUnauthorized, payment.StatusPending},
		{"admin token without Bearer", nil, testAdminToken, http.StatusUnauthorized, payment.StatusPending},
		{"basic scheme", nil, "Basic " + testAdminToken, http.StatusUnauthorized, payment.StatusPending},
	}
	ts := newTestServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, _ := ts.createOrder(t, 100, "INR")
			req := newRequest(http.MethodPost, "/api/payment/"+id+"/complete")
			if tt.body != nil {
				req.json(tt.body)
			}
			if tt.auth != "" {
				req.header("Authorization", tt.auth)
			}
			res := ts.do(t, req)
			if res.Status != tt.want {
				t.Fatalf("status %d, want %d: %s", res.Status, tt.want, res.Body)
			}
			o, events := ts.orderState(t, id)
			if o.Status != tt.status {
				t.Fatalf("order is %s, want %s", o.Status, tt.status)
			}
			if tt.want != http.StatusOK {
				if msg, _ := res.JSON["error"].(string); msg == "" {
					t.Fatalf("refusal without a message: %s", res.Body)
				}
				if o.Seq != 0 || len(events) != 0 {
					t.Fatalf("refused request changed the order: seq %d, %d events", o.Seq, len(events))
				}
				return
			}
			if res.JSON["status"] != string(tt.status) || res.JSON["previousStatus"] != "pending" || res.JSON["source"] != "manual" || res.JSON["seq"] != 1.0 {
				t.Fatalf("unexpected body %s", res.Body)
			}
			if len(events) != 1 || events[0].Seq != 1 || events[0].Status != tt.status || events[0].Source != "manual" {
				t.Fatalf("events %+v", events)
			}
		})
	}
}

func TestAdminEndpointsDisabledWithoutToken(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.AdminToken = "" })
	id, _ := ts.createOrder(t, 100, "INR")
	for _, req := range []*request{
		newRequest(http.MethodPost, "/api/payment/"+id+"/complete"),
		newRequest(http.MethodPost, "/api/payment/"+id+"/complete").header("Authorization", "Bearer "),
		newRequest(http.MethodPatch, "/api/orders/"+id).json(map[string]any{"description": "x"}).admin(),
		newRequest(http.MethodPost, "/api/orders/"+id+"/test-connection").admin(),
	} {
		res := ts.do(t, req)
		if res.Status != http.StatusForbidden || !strings.Contains(res.JSON["error"].(string), "ADMIN_TOKEN") {
			t.Fatalf("%s %s: %d %s", req.method, req.path, res.Status, res.Body)
		}
	}
	if o, events := ts.orderState(t, id); o.Seq != 0 || len(events) != 0 {
		t.Fatal("a disabled admin endpoint changed the order")
	}
}

// TestInvalidTransitionIsRefusedAndNotBroadcast completes an order twice
// with a socket in its room. The second attempt must be a 409 that sends
// nothing: the next event the socket sees is the order-update that follows.
func TestInvalidTransitionIsRefusedAndNotBroadcast(t *testing.T) {
	ts := newTestServer(t)
	id, token := ts.createOrder(t, 100, "INR")
	sock := dialWire(t, ts)
	joinOrder(t, sock, id, token)

	if res := ts.do(t, newRequest(http.MethodPost, "/api/payment/"+id+"/complete").admin()); res.Status != http.StatusOK {
		t.Fatalf("first complete: %d %s", res.Status, res.Body)
	}
	ev := sock.NextEvent("payment-status-update")
	if ev.Name != "payment-status-update" || ev.Data["status"] != "completed" || ev.Data["seq"] != 1.0 || ev.Data["previousStatus"] != "pending" {
		t.Fatalf("first broadcast %+v", ev)
	}

	for _, body := range []map[string]any{{"status": "completed"}, {"status": "failed"}} {
		res := ts.do(t, newRequest(http.MethodPost, "/api/payment/"+id+"/complete").admin().json(body))
		if res.Status != http.StatusConflict {
			t.Fatalf("second complete (%v): %d %s", body, res.Status, res.Body)
		}
		if msg, _ := res.JSON["error"].(string); !strings.Contains(msg, "invalid status transition") || !strings.Contains(msg, "completed to") {
			t.Fatalf("unclear conflict message %s", res.Body)
		}
	}
	if o, events := ts.orderState(t, id); o.Seq != 1 || len(events) != 1 {
		t.Fatalf("refused transitions changed the order: seq %d, %d events", o.Seq, len(events))
	}

	if res := ts.do(t, newRequest(http.MethodPatch, "/api/orders/"+id).admin().json(map[string]any{"description": "marker"})); res.Status != http.StatusOK {
		t.Fatalf("patch: %d %s", res.Status, res.Body)
	}
	if ev := sock.NextEvent("order-update"); ev.Name != "order-update" || ev.Data["seq"] != 2.0 {
		t.Fatalf("after a refused transition the socket got %+v, want the order-update with seq 2", ev)
	}
}

// TestConcurrentCompletes fires 50 completions at one order: exactly one
// wins, the rest get 409, and one event is stored.
func TestConcurrentCompletes(t *testing.T) {
	ts := newTestServer(t)
	id, _ := ts.createOrder(t, 100, "INR")
	const n = 50
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res := ts.do(t, newRequest(http.MethodPost, "/api/payment/"+id+"/complete").admin())
			codes[i] = res.Status
		}()
	}
	close(start)
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	if count[http.StatusOK] != 1 || count[http.StatusConflict] != n-1 {
		t.Fatalf("status codes %v, want one 200 and %d 409", count, n-1)
	}
	o, events := ts.orderState(t, id)
	if o.Status != payment.StatusCompleted || o.Seq != 1 || len(events) != 1 {
		t.Fatalf("after the race: %+v with %d events", o, len(events))
	}
}

func TestPatchOrder(t *testing.T) {
	ts := newTestServer(t)
	id, token := ts.createOrder(t, 100, "INR")
	sock := dialWire(t, ts)
	joinOrder(t, sock, id, token)

	res := ts.do(t, newRequest(http.MethodPatch, "/api/orders/"+id).admin().
		raw([]byte(`{"description":"new text","metadata":{ "cart" : 3, "tags":["a"] }}`)))
	if res.Status != http.StatusOK || res.JSON["seq"] != 1.0 || res.JSON["orderId"] != id {
		t.Fatalf("patch: %d %s", res.Status, res.Body)
	}
	o, events := ts.orderState(t, id)
	if o.Description != "new text" || o.Metadata != `{"cart":3,"tags":["a"]}` || o.Seq != 1 || o.Status != payment.StatusPending {
		t.Fatalf("stored %+v", o)
	}
	if len(events) != 1 || events[0].Type != "order-update" || events[0].Seq != 1 {
		t.Fatalf("events %+v", events)
	}
	ev := sock.NextEvent("order-update")
	data, _ := ev.Data["data"].(map[string]any)
	meta, _ := data["metadata"].(map[string]any)
	if ev.Name != "order-update" || ev.Data["seq"] != 1.0 || ev.Data["orderId"] != id || data["description"] != "new text" || meta["cart"] != 3.0 {
		t.Fatalf("broadcast %+v", ev)
	}

	// A second patch moves seq on; metadata alone is enough.
	res = ts.do(t, newRequest(http.MethodPatch, "/api/orders/"+id).admin().json(map[string]any{"metadata": map[string]any{}}))
	if res.Status != http.StatusOK || res.JSON["seq"] != 2.0 {
		t.Fatalf("second patch: %d %s", res.Status, res.Body)
	}
	if ev := sock.NextEvent("second order-update"); ev.Name != "order-update" || ev.Data["seq"] != 2.0 {
		t.Fatalf("second broadcast %+v", ev)
	}
	// The polling endpoint reports the same seq.
	poll := ts.do(t, newRequest(http.MethodGet, "/api/payment/status/"+id+"?token="+token))
	if poll.JSON["seq"] != 2.0 {
		t.Fatalf("poll after patches: %s", poll.Body)
	}
	if res := ts.do(t, newRequest(http.MethodPatch, "/api/orders/"+id).json(map[string]any{"description": "x"})); res.Status != http.StatusUnauthorized {
		t.Fatalf("patch without admin token: %d", res.Status)
	}
}

func TestTestConnection(t *testing.T) {
	ts := newTestServer(t)
	id, token := ts.createOrder(t, 100, "INR")
	sock := dialWire(t, ts)
	joinOrder(t, sock, id, token)

	res := ts.do(t, newRequest(http.MethodPost, "/api/orders/"+id+"/test-connection").admin())
	if res.Status != http.StatusOK || res.JSON["roomSize"] != 1.0 || res.JSON["room"] != "order-"+id {
		t.Fatalf("test-connection: %d %s", res.Status, res.Body)
	}
	if ev := sock.NextEvent("connection-test"); ev.Name != "connection-test" || ev.Data["orderId"] != id {
		t.Fatalf("socket got %+v", ev)
	}
	for _, bad := range []string{"ord_doesnotexist", strings.Repeat("x", 65), "bad%20id"} {
		res := ts.do(t, newRequest(http.MethodPost, "/api/orders/"+bad+"/test-connection").admin())
		if res.Status != http.StatusNotFound || res.JSON["error"] != "order not found" {
			t.Fatalf("test-connection on %q: %d %s", bad, res.Status, res.Body)
		}
	}
	if res := ts.do(t, newRequest(http.MethodPost, "/api/orders/"+id+"/test-connection")); res.Status != http.StatusUnauthorized {
		t.Fatalf("test-connection without admin token: %d", res.Status)
	}
}

func TestClientConfigRollout(t *testing.T) {
	share := func(ts *testServer, n int) (int, map[string]bool) {
		in := 0
		got := map[string]bool{}
		for i := range n {
			session := "session-" + strconv.Itoa(i)
			res := ts.do(t, newRequest(http.MethodGet, "/api/config?session="+session))
			if res.Status != http.StatusOK {
				t.Fatalf("config: %d %s", res.Status, res.Body)
			}
			on := res.JSON["realtime"] == true
			got[session] = on
			if on {
				in++
			}
		}
		return in, got
	}
	tests := []struct {
		name     string
		percent  int // Config value; -1 is an explicit 0
		reported float64
		min, max int // sessions of 200 in the rollout
	}{
		{"zero", -1, 0, 0, 0},
		{"all", 100, 100, 200, 200},
		{"default is all", 0, 100, 200, 200},
		{"thirty percent", 30, 30, 40, 80},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, func(c *Config) { c.RolloutPercent = tt.percent })
			res := ts.do(t, newRequest(http.MethodGet, "/api/config?session=x"))
			if res.JSON["rolloutPercent"] != tt.reported || res.JSON["environment"] != "development" {
				t.Fatalf("config body %s", res.Body)
			}
			in, first := share(ts, 200)
			if in < tt.min || in > tt.max {
				t.Fatalf("%d of 200 sessions in the rollout, want %d to %d", in, tt.min, tt.max)
			}
			// The same session always gets the same answer.
			_, again := share(ts, 200)
			if fmt.Sprint(first) != fmt.Sprint(again) {
				t.Fatal("a session changed sides between requests")
			}
		})
	}
	ts := newTestServer(t)
	if res := ts.do(t, newRequest(http.MethodGet, "/api/config?session="+strings.Repeat("s", 129))); res.Status != http.StatusBadRequest {
		t.Fatalf("oversized session id: %d %s", res.Status, res.Body)
	}
}

// TestRolloutIsNested checks that raising the percentage only adds
// sessions, so nobody flips back to polling during a ramp-up.
func TestRolloutIsNested(t *testing.T) {
	for i := range 500 {
		session := fmt.Sprintf("s%d", i)
		was := false
		for p := 0; p <= 100; p += 10 {
			now := inRollout(session, p)
			if was && !now {
				t.Fatalf("session %s left the rollout going up to %d%%", session, p)
			}
			was = now
		}
		if !was {
			t.Fatalf("session %s not in a 100%% rollout", session)
		}
	}
}

func TestDevSimulateOnlyInDevelopment(t *testing.T) {
	dev := newTestServer(t)
	id, _ := dev.createOrder(t, 100, "INR")
	res := dev.do(t, newRequest(http.MethodPost, "/api/dev/orders/"+id+"/simulate").json(map[string]any{"status": "processing"}))
	if res.Status != http.StatusOK || res.JSON["status"] != "processing" || res.JSON["source"] != "simulation" {
		t.Fatalf("simulate in development: %d %s", res.Status, res.Body)
	}
	for _, tt := range []struct {
		body map[string]any
		want int
	}{
		{map[string]any{"status": "bogus"}, http.StatusBadRequest},
		{map[string]any{}, http.StatusBadRequest},
		{map[string]any{"status": "pending"}, http.StatusConflict},
	} {
		res := dev.do(t, newRequest(http.MethodPost, "/api/dev/orders/"+id+"/simulate").json(tt.body))
		if res.Status != tt.want {
			t.Fatalf("simulate %v: %d %s", tt.body, res.Status, res.Body)
		}
	}
	if o, _ := dev.orderState(t, id); o.Seq != 1 || o.Status != payment.StatusProcessing {
		t.Fatalf("refused simulations changed the order: %+v", o)
	}

	prod := newTestServer(t, func(c *Config) { c.Env = EnvProduction })
	pid, _ := prod.createOrder(t, 100, "INR")
	res = prod.do(t, newRequest(http.MethodPost, "/api/dev/orders/"+pid+"/simulate").json(map[string]any{"status": "completed"}))
	if res.Status != http.StatusNotFound {
		t.Fatalf("simulate in production: %d %s", res.Status, res.Body)
	}
	if o, events := prod.orderState(t, pid); o.Status != payment.StatusPending || len(events) != 0 {
		t.Fatalf("production simulate changed the order: %+v", o)
	}
}

func TestDevPagesHiddenInProduction(t *testing.T) {
	dev := newTestServer(t)
	prod := newTestServer(t, func(c *Config) { c.Env = EnvProduction })
	tests := []struct {
		path      string
		dev, prod int
	}{
		{"/websocket-test.html", http.StatusOK, http.StatusNotFound},
		{"/js/websocket-test.js", http.StatusOK, http.StatusNotFound},
		{"/payment.html", http.StatusOK, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if res := dev.do(t, newRequest(http.MethodGet, tt.path)); res.Status != tt.dev {
				t.Fatalf("development: %d", res.Status)
			}
			if res := prod.do(t, newRequest(http.MethodGet, tt.path)); res.Status != tt.prod {
				t.Fatalf("production: %d", res.Status)
			}
		})
	}
}
