package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paystatus/payment"
)

func parseTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("not a time: %v", v)
	}
	return ts
}

func TestCreateOrderPaymentWindow(t *testing.T) {
	// A database of its own, so that counting orders before and after a
	// refusal sees no other package's tests writing to a shared Postgres.
	ts := newTestServer(t, func(c *Config) { c.DatabaseURL = filepath.Join(t.TempDir(), "window.db") })
	for _, tc := range []struct {
		name string
		body string
		want time.Duration
	}{
		{"default window", `{"amount": 100}`, 15 * time.Minute},
		{"explicit null is the default", `{"amount": 100, "ttlSeconds": null}`, 15 * time.Minute},
		{"shortest allowed", `{"amount": 100, "ttlSeconds": 60}`, time.Minute},
		{"longest allowed", `{"amount": 100, "ttlSeconds": 86400}`, 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := ts.do(t, newRequest(http.MethodPost, "/api/orders").raw([]byte(tc.body)))
			if res.Status != http.StatusCreated {
				t.Fatalf("%d %s", res.Status, res.Body)
			}
			created, expires := parseTime(t, res.JSON["createdAt"]), parseTime(t, res.JSON["expiresAt"])
			if got := expires.Sub(created); got != tc.want {
				t.Fatalf("window %s, want %s", got, tc.want)
			}
			// The same deadline reaches the status endpoint.
			id, token := res.JSON["id"].(string), res.JSON["token"].(string)
			st := ts.do(t, newRequest(http.MethodGet, "/api/payment/status/"+id+"?token="+token))
			if !parseTime(t, st.JSON["expiresAt"]).Equal(expires) {
				t.Fatalf("status endpoint expiresAt %v, order %v", st.JSON["expiresAt"], expires)
			}
		})
	}
	// Each kind of bad window is refused with a clear message and stores nothing.
	for _, tc := range []struct {
		name, body, msg string
	}{
		{"zero", `{"amount": 100, "ttlSeconds": 0}`, "ttlSeconds must be between 60 and 86400"},
		{"negative", `{"amount": 100, "ttlSeconds": -5}`, "ttlSeconds must be between 60 and 86400"},
		{"below the minimum", `{"amount": 100, "ttlSeconds": 59}`, "ttlSeconds must be between 60 and 86400"},
		{"above the maximum", `{"amount": 100, "ttlSeconds": 86401}`, "ttlSeconds must be between 60 and 86400"},
		{"huge", `{"amount": 100, "ttlSeconds": 9223372036854775807}`, "ttlSeconds must be between 60 and 86400"},
		{"beyond int64", `{"amount": 100, "ttlSeconds": 1e30}`, `field "ttlSeconds" has the wrong type`},
		{"fractional", `{"amount": 100, "ttlSeconds": 90.5}`, `field "ttlSeconds" has the wrong type`},
		{"a string", `{"amount": 100, "ttlSeconds": "90"}`, `field "ttlSeconds" has the wrong type`},
	} {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			before, err := ts.store.(payment.LifecycleStore).CountCreatedSince(context.Background(), time.Now().Add(-time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			res := ts.do(t, newRequest(http.MethodPost, "/api/orders").raw([]byte(tc.body)))
			if res.Status != http.StatusBadRequest || !strings.Contains(res.JSON["error"].(string), tc.msg) {
				t.Fatalf("%d %s, want 400 with %q", res.Status, res.Body, tc.msg)
			}
			after, _ := ts.store.(payment.LifecycleStore).CountCreatedSince(context.Background(), time.Now().Add(-time.Hour))
			if after != before {
				t.Fatalf("a refused order was stored (%d -> %d)", before, after)
			}
		})
	}
}

// sweep runs one expiry sweep. On a shared test database, orders that
// other packages' tests broke on purpose are reported as skipped; that is
// not this test's failure.
func sweep(t *testing.T, ts *testServer) {
	t.Helper()
	if _, err := ts.Sweeper().ExpireDue(context.Background()); err != nil && !errors.Is(err, payment.ErrExpirySkipped) {
		t.Fatalf("sweep: %v", err)
	}
}

// shortWindows lets tests create orders that end within seconds.
func shortWindows(c *Config) {
	c.OrderTTLMin = time.Second
	c.ExpirySweepEvery = 100 * time.Millisecond
}

// An order past its window is expired by the sweep that Run starts, and the
// long-poll of a page waiting on it answers with expired.
func TestRunExpiresOrdersAndWakesLongPolls(t *testing.T) {
	cfg := Config{
		Env: EnvDevelopment, DatabaseURL: testDatabaseURL(t), Addr: "127.0.0.1:0", OrderTokenSecret: "s",
		StaticDir: "../static", LogLevel: "warn",
	}
	shortWindows(&cfg)
	srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	ts := &testServer{Server: srv, URL: "http://" + srv.Addr().String()}
	res := ts.do(t, newRequest(http.MethodPost, "/api/orders").json(map[string]any{"amount": 100, "ttlSeconds": 1}))
	if res.Status != http.StatusCreated {
		t.Fatalf("%d %s", res.Status, res.Body)
	}
	id, token := res.JSON["id"].(string), res.JSON["token"].(string)
	deadline := parseTime(t, res.JSON["expiresAt"])
	poll := ts.do(t, newRequest(http.MethodGet, "/api/payment/status/"+id+"?token="+token+"&since=0&wait=10"))
	lag := time.Since(deadline)
	if poll.JSON["status"] != "expired" || poll.JSON["seq"] != float64(1) {
		t.Fatalf("long-poll answered %s", poll.Body)
	}
	if lag > 3*time.Second {
		t.Fatalf("expired %s after the deadline", lag)
	}
	t.Logf("long-poll heard of the expiry %s after the deadline", lag.Round(time.Millisecond))
	// At least: on a shared test database, orders other tests left behind
	// expire too.
	m := ts.scrape(t)
	if got := m["paystatus_orders_expired_total"]; got < 1 || m[`paystatus_status_transitions_total{from="pending",to="expired"}`] < 1 {
		t.Fatalf("paystatus_orders_expired_total = %v, pending to expired transitions = %v", got, m[`paystatus_status_transitions_total{from="pending",to="expired"}`])
	}
}

// A gateway's success after expiry is a late capture: the order completes,
// the reply and the metric say so, and a plain completion request without
// proof of payment (the dev simulation of a failure) changes nothing.
func TestLateCaptureThroughTheGateway(t *testing.T) {
	for _, g := range gwDrivers {
		t.Run(g.name, func(t *testing.T) {
			ts := newTestServer(t, shortWindows)
			res := ts.do(t, newRequest(http.MethodPost, "/api/orders").json(map[string]any{"amount": 2500, "currency": "INR", "ttlSeconds": 1}))
			id := res.JSON["id"].(string)
			time.Sleep(time.Until(parseTime(t, res.JSON["expiresAt"])))
			sweep(t, ts)
			if snap := gwSnapshot(t, ts, id); snap.Status != payment.StatusExpired {
				t.Fatalf("before the capture: %s", snap.Status)
			}
			failed := ts.do(t, g.request(gwDelivery{id: gwID("f"), orderID: id, to: payment.StatusFailed, amount: 2500, currency: "INR"}))
			if failed.Status != http.StatusOK || failed.JSON["ignored"] != true {
				t.Fatalf("failure after expiry: %d %s, want ignored", failed.Status, failed.Body)
			}
			paid := ts.do(t, g.request(gwDelivery{id: gwID("c"), orderID: id, to: payment.StatusCompleted, amount: 2500, currency: "INR"}))
			if paid.Status != http.StatusOK || paid.JSON["status"] != "completed" {
				t.Fatalf("capture after expiry: %d %s", paid.Status, paid.Body)
			}
			if snap := gwSnapshot(t, ts, id); snap.Status != payment.StatusCompleted || snap.Seq != 2 {
				t.Fatalf("after the capture: %+v", snap)
			}
			events := gwStatusEvents(t, ts, id)
			if last := events[len(events)-1]; last.PreviousStatus != payment.StatusExpired || !strings.Contains(last.Data, "lateCapture") {
				t.Fatalf("capture event %+v", last)
			}
			m := ts.scrape(t)
			if m["paystatus_late_captures_total"] != 1 || m[`paystatus_status_transitions_total{from="expired",to="completed"}`] != 1 {
				t.Fatalf("late capture metrics: %v, %v", m["paystatus_late_captures_total"], m[`paystatus_status_transitions_total{from="expired",to="completed"}`])
			}
		})
	}
}

func TestManualCompletionOfAnExpiredOrderIsALateCapture(t *testing.T) {
	ts := newTestServer(t, shortWindows)
	res := ts.do(t, newRequest(http.MethodPost, "/api/orders").json(map[string]any{"amount": 100, "ttlSeconds": 1}))
	id := res.JSON["id"].(string)
	time.Sleep(time.Until(parseTime(t, res.JSON["expiresAt"])))
	sweep(t, ts)
	// A failure reported by an operator cannot reopen an expired order.
	bad := ts.do(t, newRequest(http.MethodPost, "/api/payment/"+id+"/complete").admin().json(map[string]any{"status": "failed"}))
	if bad.Status != http.StatusConflict {
		t.Fatalf("manual failure after expiry: %d %s", bad.Status, bad.Body)
	}
	ok := ts.do(t, newRequest(http.MethodPost, "/api/payment/"+id+"/complete").admin().json(map[string]any{"paymentId": "pay_manual"}))
	if ok.Status != http.StatusOK || ok.JSON["status"] != "completed" || ok.JSON["lateCapture"] != true || ok.JSON["previousStatus"] != "expired" {
		t.Fatalf("manual completion after expiry: %d %s", ok.Status, ok.Body)
	}
}

func TestOrdersMaxPerHour(t *testing.T) {
	// A fresh database of its own: on the shared Postgres test database
	// other packages' tests create orders while this one runs, so the cap's
	// count would move under it. The store's count on Postgres is tested by
	// sqlstore's TestCreationQuotaCountsTheStore.
	const limit = 3
	ts := newTestServer(t, func(c *Config) {
		c.DatabaseURL = filepath.Join(t.TempDir(), "quota.db")
		c.OrdersMaxPerHour = limit
	})
	for i := range 3 {
		if res := ts.do(t, newRequest(http.MethodPost, "/api/orders").json(map[string]any{"amount": 100})); res.Status != http.StatusCreated {
			t.Fatalf("order %d: %d %s", i, res.Status, res.Body)
		}
	}
	res := ts.do(t, newRequest(http.MethodPost, "/api/orders").json(map[string]any{"amount": 100}))
	if res.Status != http.StatusTooManyRequests || !strings.Contains(res.JSON["error"].(string), fmt.Sprintf("at most %d orders may be created per hour", limit)) {
		t.Fatalf("fourth order: %d %s", res.Status, res.Body)
	}
	if res := ts.do(t, newRequest(http.MethodPost, "/api/orders").json(map[string]any{"amount": 100})); res.Status != http.StatusTooManyRequests {
		t.Fatalf("fifth order: %d", res.Status)
	}
	if n, _ := ts.store.(payment.LifecycleStore).CountCreatedSince(context.Background(), time.Now().Add(-time.Hour)); n != limit {
		t.Fatalf("%d orders stored, want %d", n, limit)
	}
	if got := ts.scrape(t)["paystatus_orders_refused_quota_total"]; got != 2 {
		t.Fatalf("paystatus_orders_refused_quota_total = %v", got)
	}
}

func TestLifecycleConfig(t *testing.T) {
	c, _, err := effectiveConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.OrderTTL != 15*time.Minute || c.OrderTTLMin != time.Minute || c.OrderTTLMax != 24*time.Hour ||
		c.ExpirySweepEvery != time.Second || c.ExpiryBatch != 50 || c.OrderRetention != 30*24*time.Hour || c.OrdersMaxPerHour != 0 {
		t.Fatalf("defaults: %+v", c)
	}
	good := []struct {
		env   map[string]string
		check func(Config) bool
	}{
		{map[string]string{"ORDER_TTL_SECONDS": "300"}, func(c Config) bool { return c.OrderTTL == 5*time.Minute }},
		{map[string]string{"ORDER_TTL_MIN_SECONDS": "1", "ORDER_TTL_SECONDS": "5"}, func(c Config) bool { return c.OrderTTLMin == time.Second && c.OrderTTL == 5*time.Second }},
		{map[string]string{"ORDER_TTL_MAX_SECONDS": "600"}, func(c Config) bool { return c.OrderTTL == 10*time.Minute && c.OrderTTLMax == 10*time.Minute }},
		{map[string]string{"ORDER_RETENTION": "0"}, func(c Config) bool { return c.OrderRetention == -1 }},
		{map[string]string{"ORDER_RETENTION": "7d"}, func(c Config) bool { return c.OrderRetention == 7*24*time.Hour }},
		{map[string]string{"ORDER_RETENTION": "48h"}, func(c Config) bool { return c.OrderRetention == 48*time.Hour }},
		{map[string]string{"ORDERS_MAX_PER_HOUR": "5000"}, func(c Config) bool { return c.OrdersMaxPerHour == 5000 }},
		{map[string]string{"ORDER_EXPIRY_BATCH": "50", "ORDER_EXPIRY_SWEEP_SECONDS": "0.5"}, func(c Config) bool {
			return c.ExpiryBatch == 50 && c.ExpirySweepEvery == 500*time.Millisecond
		}},
	}
	for _, g := range good {
		c, _, err := effectiveConfig(g.env)
		if err != nil || !g.check(c) {
			t.Errorf("%v: %+v, %v", g.env, c, err)
		}
	}
	for _, env := range []map[string]string{
		{"ORDER_TTL_SECONDS": "-1"},
		{"ORDER_TTL_SECONDS": "soon"},
		{"ORDER_TTL_MIN_SECONDS": "0.5"},
		{"ORDER_TTL_MIN_SECONDS": "600", "ORDER_TTL_MAX_SECONDS": "60"},
		{"ORDER_TTL_SECONDS": "30", "ORDER_TTL_MIN_SECONDS": "60"},
		{"ORDER_RETENTION": "-3d"},
		{"ORDER_RETENTION": "forever"},
		{"ORDER_RETENTION": "12h"}, // shorter than the longest window
		{"ORDERS_MAX_PER_HOUR": "-1"},
		{"ORDERS_MAX_PER_HOUR": "lots"},
		{"ORDER_EXPIRY_BATCH": "100000"},
	} {
		if _, _, err := effectiveConfig(env); !errors.Is(err, ErrConfig) {
			t.Errorf("%v accepted (%v)", env, err)
		}
	}
}

// FuzzRetentionEnv: any ORDER_RETENTION is an error, keep-forever (-1) or
// a positive duration; never a panic, zero or another negative.
func FuzzRetentionEnv(f *testing.F) {
	for _, seed := range []string{"", "0", "30d", "720h", "1.5h", "-1d", "d", "99999999999d", "1e400h", "0d", " 7d "} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, err := retentionEnv(envOf(map[string]string{"ORDER_RETENTION": v}), "ORDER_RETENTION")
		switch {
		case err != nil:
			if !errors.Is(err, ErrConfig) || d != 0 {
				t.Fatalf("%q: %v, %v", v, d, err)
			}
		case strings.TrimSpace(v) == "":
			if d != 0 {
				t.Fatalf("empty gave %v", d)
			}
		case d != -1 && d <= 0:
			t.Fatalf("%q gave %v", v, d)
		}
	})
}
