package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"paystatus/realtime/realtimetest"
)

const testRedisAddr = "127.0.0.1:6379"

// needRedis makes sure the shared test Redis answers, starting it when it
// is down, and returns its URL.
func needRedis(t *testing.T) string {
	t.Helper()
	up := func() bool {
		c, err := net.DialTimeout("tcp", testRedisAddr, 200*time.Millisecond)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}
	if !up() {
		out, err := exec.Command("redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no").CombinedOutput()
		if err != nil {
			t.Fatalf("start redis-server: %v\n%s", err, out)
		}
		realtimetest.Eventually(t, 5*time.Second, "redis to listen", up)
	}
	return "redis://" + testRedisAddr + "/0"
}

// withRedis puts a test server on Redis under a prefix of its own, so runs
// and tests do not hear each other.
func withRedis(url, prefix, adapter string) func(*Config) {
	return func(c *Config) {
		c.RedisURL, c.RedisPrefix, c.RedisAdapter = url, prefix, adapter
	}
}

func uniquePrefix(t *testing.T) string {
	return "paystatus-test-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + randomSecret()[:8]
}

func TestRedisConfigRejected(t *testing.T) {
	cases := []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"url scheme", func(c *Config) { c.RedisURL = "http://127.0.0.1:6379" }, "REDIS_URL"},
		{"url garbage", func(c *Config) { c.RedisURL = "::not a url" }, "REDIS_URL"},
		{"adapter", func(c *Config) { c.RedisURL, c.RedisAdapter = "redis://127.0.0.1:6379", "kafka" }, "REDIS_ADAPTER"},
		{"prefix glob", func(c *Config) { c.RedisURL, c.RedisPrefix = "redis://127.0.0.1:6379", "socket.*" }, "REDIS_PREFIX"},
		{"prefix space", func(c *Config) { c.RedisURL, c.RedisPrefix = "redis://127.0.0.1:6379", "a b" }, "REDIS_PREFIX"},
		{"prefix long", func(c *Config) { c.RedisURL, c.RedisPrefix = "redis://127.0.0.1:6379", strings.Repeat("p", 101) }, "REDIS_PREFIX"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{DatabaseURL: testDatabaseURL(t), OrderTokenSecret: "s", StaticDir: "../static"}
			tc.set(&cfg)
			srv, err := New(context.Background(), cfg, nil)
			if err == nil {
				_ = srv.Shutdown(context.Background())
				t.Fatal("New accepted a bad Redis setting")
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q: want ErrConfig naming %s", err, tc.want)
			}
		})
	}
}

func TestReadyzReportsRedis(t *testing.T) {
	url := needRedis(t)
	// A port nothing listens on stands in for a Redis that is down.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "redis://" + ln.Addr().String()
	_ = ln.Close()

	cases := []struct {
		name   string
		url    string
		status int
		redis  func(string) bool
	}{
		{"up", url, http.StatusOK, func(s string) bool { return s == "ok" }},
		{"down", deadURL, http.StatusServiceUnavailable, func(s string) bool { return strings.HasPrefix(s, "redis: ") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, withRedis(tc.url, uniquePrefix(t), ""))
			res := ts.do(t, newRequest(http.MethodGet, "/readyz"))
			got, _ := res.JSON["redis"].(string)
			if res.Status != tc.status || !tc.redis(got) {
				t.Fatalf("readyz = %d %s", res.Status, res.Body)
			}
		})
	}
}

func TestReadyzWithoutRedisHasNoRedisCheck(t *testing.T) {
	ts := newTestServer(t)
	res := ts.do(t, newRequest(http.MethodGet, "/readyz"))
	if _, present := res.JSON["redis"]; present || res.Status != http.StatusOK {
		t.Fatalf("readyz without REDIS_URL = %d %s", res.Status, res.Body)
	}
}

// A long-poll held on node B answers as soon as node A commits a change,
// not at its own timeout.
func TestLongPollWakesOnOtherNode(t *testing.T) {
	url := needRedis(t)
	for _, adapter := range []string{"pubsub", "streams"} {
		t.Run(adapter, func(t *testing.T) {
			db := testDatabaseURL(t)
			prefix := uniquePrefix(t)
			shared := func(c *Config) { c.DatabaseURL = db }
			a := newTestServer(t, shared, withRedis(url, prefix, adapter))
			b := newTestServer(t, shared, withRedis(url, prefix, adapter))
			id, token := a.createOrder(t, 1500, "INR")

			type result struct {
				res     response
				elapsed time.Duration
			}
			done := make(chan result, 1)
			started := time.Now()
			go func() {
				res := b.do(t, newRequest(http.MethodGet, "/api/payment/status/"+id+"?since=0&wait=20&token="+token))
				done <- result{res, time.Since(started)}
			}()
			// Complete only once B holds the poll, so the wake must come over Redis.
			realtimetest.Eventually(t, 5*time.Second, "long-poll held on B", func() bool { return b.svc.Waiters().Count() == 1 })
			res := a.do(t, newRequest(http.MethodPost, "/api/payment/"+id+"/complete").admin().json(map[string]any{"status": "completed", "paymentId": "pay_x"}))
			if res.Status != http.StatusOK {
				t.Fatalf("complete on A: %d %s", res.Status, res.Body)
			}
			select {
			case r := <-done:
				if r.res.Status != http.StatusOK || r.res.JSON["status"] != "completed" || r.res.JSON["seq"] != float64(1) {
					t.Fatalf("long-poll on B answered %d %s", r.res.Status, r.res.Body)
				}
				if r.elapsed > 10*time.Second {
					t.Fatalf("long-poll on B answered after %s: it was not woken", r.elapsed)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("long-poll on B never woke")
			}
		})
	}
}

// With Redis away a node reports it in paystatus_redis_up, still commits
// callbacks, and counts the cross-node publishes it could not make; with
// Redis up the gauge reads 1.
func TestRedisMetrics(t *testing.T) {
	url := needRedis(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "redis://" + ln.Addr().String()
	_ = ln.Close()

	for _, adapter := range []string{"pubsub", "streams"} {
		t.Run("down "+adapter, func(t *testing.T) {
			ts := newTestServer(t, withRedis(deadURL, uniquePrefix(t), adapter))
			id, _ := ts.createOrder(t, 1500, "INR")
			before := ts.scrape(t)
			res := ts.do(t, newRequest(http.MethodPost, "/api/orders/"+id+"/test-connection").admin())
			_ = res // the room count fails without Redis; the broadcast still goes out
			res = ts.do(t, newRequest(http.MethodPost, "/api/payment/"+id+"/complete").admin().json(map[string]any{"status": "completed", "paymentId": "pay_m"}))
			if res.Status != http.StatusOK {
				t.Fatalf("complete with Redis away: %d %s", res.Status, res.Body)
			}
			key := `paystatus_redis_publish_dropped_total{reason="error"}`
			realtimetest.Eventually(t, 5*time.Second, "dropped publishes counted", func() bool {
				return ts.scrape(t)[key]-before[key] >= 2
			})
			if up := ts.scrape(t)["paystatus_redis_up"]; up != 0 {
				t.Fatalf("paystatus_redis_up = %v with Redis away", up)
			}
		})
	}
	t.Run("up", func(t *testing.T) {
		ts := newTestServer(t, withRedis(url, uniquePrefix(t), ""))
		if up := ts.scrape(t)["paystatus_redis_up"]; up != 1 {
			t.Fatalf("paystatus_redis_up = %v with Redis up", up)
		}
	})
}
