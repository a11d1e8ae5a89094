package server

import (
	"bufio"
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"paystatus/realtime/realtimetest"
)

// Socket-side metrics (connections by transport and EIO, joins, rooms) are
// checked with the real clients in e2e/metrics.test.js; these tests cover
// what the HTTP side reports.

// samples is one scrape of /metrics: "name{labels}" -> value, labels in the
// exposition's (sorted) order.
type samples map[string]float64

func (ts *testServer) scrape(t *testing.T) samples {
	t.Helper()
	res := ts.do(t, newRequest(http.MethodGet, "/metrics"))
	if res.Status != http.StatusOK {
		t.Fatalf("GET /metrics: %d", res.Status)
	}
	out := samples{}
	sc := bufio.NewScanner(bytes.NewReader(res.Body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("unparsable metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// delta is how much each watched sample grew between two scrapes.
func delta(before, after samples, keys ...string) map[string]float64 {
	d := map[string]float64{}
	for _, k := range keys {
		d[k] = after[k] - before[k]
	}
	return d
}

func TestMetricsExposition(t *testing.T) {
	ts := newTestServer(t)
	res := ts.do(t, newRequest(http.MethodGet, "/metrics"))
	expectStatus(t, res, http.StatusOK)
	// Families without labels are present from the start, at zero, so a
	// dashboard does not see gaps on a fresh node.
	for _, name := range []string{
		"paystatus_room_joins_total", "paystatus_room_leaves_total", "paystatus_rooms",
		"paystatus_callback_to_broadcast_seconds_count", "paystatus_long_polls_waiting",
	} {
		if v, ok := ts.scrape(t)[name]; !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0", name, v, ok)
		}
	}
	// Vectors appear once a label set is used; the histogram and the Go
	// runtime collectors are there from the start.
	for _, line := range []string{
		"# TYPE paystatus_callback_to_broadcast_seconds histogram",
		"# TYPE go_goroutines gauge",
		"# TYPE process_open_fds gauge",
	} {
		if !bytes.Contains(res.Body, []byte(line)) {
			t.Errorf("missing %q", line)
		}
	}
}

func TestMetricsCountTransitionsAndBroadcasts(t *testing.T) {
	const (
		pendingCompleted  = `paystatus_status_transitions_total{from="pending",to="completed"}`
		pendingProcessing = `paystatus_status_transitions_total{from="pending",to="processing"}`
		processingFailed  = `paystatus_status_transitions_total{from="processing",to="failed"}`
		statusBroadcasts  = `paystatus_broadcasts_total{event="payment-status-update"}`
		orderBroadcasts   = `paystatus_broadcasts_total{event="order-update"}`
		testBroadcasts    = `paystatus_broadcasts_total{event="connection-test"}`
		latencyCount      = `paystatus_callback_to_broadcast_seconds_count`
		latencyInf        = `paystatus_callback_to_broadcast_seconds_bucket{le="+Inf"}`
	)
	keys := []string{pendingCompleted, pendingProcessing, processingFailed, statusBroadcasts, orderBroadcasts, testBroadcasts, latencyCount, latencyInf}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, ts *testServer, id string)
		want map[string]float64
	}{
		{
			"admin completion",
			func(t *testing.T, ts *testServer, id string) {
				expectStatus(t, ts.do(t, newRequest(http.MethodPost, "/api/payment/"+id+"/complete").admin().json(map[string]string{})), http.StatusOK)
			},
			map[string]float64{pendingCompleted: 1, statusBroadcasts: 1, latencyCount: 1, latencyInf: 1},
		},
		{
			"simulated processing then failure",
			func(t *testing.T, ts *testServer, id string) {
				for _, st := range []string{"processing", "failed"} {
					expectStatus(t, ts.do(t, newRequest(http.MethodPost, "/api/dev/orders/"+id+"/simulate").json(map[string]string{"status": st})), http.StatusOK)
				}
			},
			map[string]float64{pendingProcessing: 1, processingFailed: 1, statusBroadcasts: 2, latencyCount: 2, latencyInf: 2},
		},
		{
			"refused transition counts nothing",
			func(t *testing.T, ts *testServer, id string) {
				expectStatus(t, ts.do(t, newRequest(http.MethodPost, "/api/dev/orders/"+id+"/simulate").json(map[string]string{"status": "pending"})), http.StatusConflict)
			},
			map[string]float64{},
		},
		{
			"order update and connection test",
			func(t *testing.T, ts *testServer, id string) {
				expectStatus(t, ts.do(t, newRequest(http.MethodPatch, "/api/orders/"+id).admin().json(map[string]string{"description": "x"})), http.StatusOK)
				expectStatus(t, ts.do(t, newRequest(http.MethodPost, "/api/orders/"+id+"/test-connection").admin()), http.StatusOK)
			},
			map[string]float64{orderBroadcasts: 1, testBroadcasts: 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t)
			id, _ := ts.createOrder(t, 1000, "INR")
			before := ts.scrape(t)
			tc.run(t, ts, id)
			got := delta(before, ts.scrape(t), keys...)
			for _, k := range keys {
				if got[k] != tc.want[k] {
					t.Errorf("%s grew by %v, want %v", k, got[k], tc.want[k])
				}
			}
		})
	}
}

func TestMetricsLongPollGauge(t *testing.T) {
	ts := newTestServer(t)
	id, token := ts.createOrder(t, 1000, "INR")
	const gauge = "paystatus_long_polls_waiting"
	done := make(chan response, 1)
	go func() {
		done <- ts.do(t, newRequest(http.MethodGet, "/api/payment/status/"+id+"?token="+token+"&since=0&wait=10"))
	}()
	realtimetest.Eventually(t, 5*time.Second, "long-poll gauge at 1", func() bool { return ts.scrape(t)[gauge] == 1 })
	expectStatus(t, ts.do(t, newRequest(http.MethodPost, "/api/payment/"+id+"/complete").admin().json(map[string]string{})), http.StatusOK)
	select {
	case res := <-done:
		if res.Status != http.StatusOK || res.JSON["status"] != "completed" {
			t.Fatalf("long-poll answered %d %s", res.Status, res.Body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("long-poll did not answer after the completion")
	}
	if v := ts.scrape(t)[gauge]; v != 0 {
		t.Fatalf("%s = %v after the poll answered", gauge, v)
	}
}

func expectStatus(t *testing.T, res response, want int) {
	t.Helper()
	if res.Status != want {
		t.Fatalf("status %d, want %d: %s", res.Status, want, res.Body)
	}
}
