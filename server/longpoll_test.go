package server

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"paystatus/payment"
	"paystatus/realtime/realtimetest"
)

// Long-poll tests: GET /api/payment/status/:orderId?token=&since=&wait=.

const lpWaitingSeries = "paystatus_long_polls_waiting"

func lpPath(orderID, token, since, wait string) string {
	q := url.Values{"token": {token}}
	if since != "" {
		q.Set("since", since)
	}
	if wait != "" {
		q.Set("wait", wait)
	}
	return "/api/payment/status/" + orderID + "?" + q.Encode()
}

// lpCall runs one status request and reports how long it took.
func lpCall(t *testing.T, ts *testServer, path string) (response, time.Duration) {
	t.Helper()
	start := time.Now()
	res := ts.do(t, newRequest(http.MethodGet, path))
	return res, time.Since(start)
}

// lpComplete completes an order through a signed UPI callback.
func lpComplete(t *testing.T, ts *testServer, orderID string) {
	t.Helper()
	res := ts.do(t, gwDriverUPI.request(gwDelivery{id: gwID("lp"), orderID: orderID, to: payment.StatusCompleted, amount: 49900, currency: "INR"}))
	if res.Status != http.StatusOK || res.JSON["seq"] == nil {
		t.Fatalf("callback: %d %s", res.Status, res.Body)
	}
}

func TestLongPollReturnsAtOnceWhenAhead(t *testing.T) {
	ts := newTestServer(t)
	orderID, token := ts.createOrder(t, 49900, "INR")
	lpComplete(t, ts, orderID)
	res, took := lpCall(t, ts, lpPath(orderID, token, "0", "20"))
	if res.Status != http.StatusOK || res.JSON["status"] != "completed" || res.JSON["seq"] != 1.0 {
		t.Fatalf("long-poll: %d %s", res.Status, res.Body)
	}
	if took > 2*time.Second {
		t.Fatalf("seq was already past since, yet the request took %s", took)
	}
	if res.JSON["seq"] != 1.0 {
		t.Fatalf("seq %v", res.JSON["seq"])
	}
}

func TestLongPollHoldsForWait(t *testing.T) {
	cases := []struct {
		name string
		opt  func(*Config)
		wait string
		want time.Duration
	}{
		{"wait=1 holds about a second", nil, "1", time.Second},
		{"wait=0.5 holds about half a second", nil, "0.5", 500 * time.Millisecond},
		{"wait above the cap is cut to LongPollMax", func(c *Config) { c.LongPollMax = time.Second }, "30", time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var opts []func(*Config)
			if tc.opt != nil {
				opts = append(opts, tc.opt)
			}
			ts := newTestServer(t, opts...)
			orderID, token := ts.createOrder(t, 49900, "INR")
			res, took := lpCall(t, ts, lpPath(orderID, token, "0", tc.wait))
			if res.Status != http.StatusOK || res.JSON["status"] != "pending" || res.JSON["seq"] != 0.0 {
				t.Fatalf("long-poll: %d %s", res.Status, res.Body)
			}
			// Not early (it waited for a change that never came) and not
			// much late (it is woken by a timer, not a polling loop).
			if took < tc.want-50*time.Millisecond || took > tc.want+time.Second {
				t.Fatalf("held %s, want about %s", took, tc.want)
			}
			if got := gwMetric(t, ts, lpWaitingSeries); got != 0 {
				t.Fatalf("%v long-polls still counted as waiting", got)
			}
		})
	}
}

func TestLongPollWokenByGatewayCallback(t *testing.T) {
	ts := newTestServer(t)
	orderID, token := ts.createOrder(t, 49900, "INR")
	type result struct {
		res  response
		took time.Duration
		err  error
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		res := gwDo(ts, newRequest(http.MethodGet, lpPath(orderID, token, "0", "20")))
		var err error
		if res.Status == 0 {
			err = fmt.Errorf("request failed: %s", res.Body)
		}
		done <- result{res, time.Since(start), err}
	}()
	realtimetest.Eventually(t, 5*time.Second, "the long-poll to be held", func() bool { return gwMetric(t, ts, lpWaitingSeries) == 1 })
	select {
	case r := <-done:
		t.Fatalf("long-poll returned before any change: %d %s", r.res.Status, r.res.Body)
	default:
	}
	woken := time.Now()
	lpComplete(t, ts, orderID)
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("long-poll not woken by the callback")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.res.Status != http.StatusOK || r.res.JSON["status"] != "completed" || r.res.JSON["seq"] != 1.0 {
		t.Fatalf("long-poll: %d %s", r.res.Status, r.res.Body)
	}
	if lag := time.Since(woken); lag > 2*time.Second {
		t.Fatalf("answer came %s after the callback", lag)
	}
	if r.res.JSON["paymentId"] == "" {
		t.Fatalf("snapshot without the payment id: %s", r.res.Body)
	}
}

func TestLongPollBadInput(t *testing.T) {
	ts := newTestServer(t)
	orderID, token := ts.createOrder(t, 49900, "INR")
	cases := []struct {
		name, since, wait string
		token             string
		want              int
	}{
		{"since negative", "-1", "5", token, http.StatusBadRequest},
		{"since not a number", "abc", "5", token, http.StatusBadRequest},
		{"since fractional", "1.5", "5", token, http.StatusBadRequest},
		{"wait negative", "0", "-1", token, http.StatusBadRequest},
		{"wait not a number", "0", "soon", token, http.StatusBadRequest},
		{"wait NaN", "0", "NaN", token, http.StatusBadRequest},
		{"wait infinite", "0", "Inf", token, http.StatusBadRequest},
		{"wrong token", "0", "5", "f00", http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, took := lpCall(t, ts, lpPath(orderID, tc.token, tc.since, tc.wait))
			if res.Status != tc.want {
				t.Fatalf("status %d, want %d: %s", res.Status, tc.want, res.Body)
			}
			if res.JSON["error"] == nil {
				t.Fatalf("no error message: %s", res.Body)
			}
			if took > 2*time.Second {
				t.Fatalf("refusal took %s", took)
			}
		})
	}
	t.Run("unknown order", func(t *testing.T) {
		res, _ := lpCall(t, ts, lpPath("ord_doesnotexist", token, "0", "5"))
		if res.Status != http.StatusUnauthorized && res.Status != http.StatusNotFound {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
	})
}
