package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"paystatus/realtime/realtimetest"
)

// Regression tests for the hardening of issue 17, one finding each.

// runServer runs a server built from the test defaults, adjusted by
// options, on a real loopback listener (the connection-level settings only
// apply there), and returns its address.
func runServer(t *testing.T, options ...func(*Config)) (*Server, string) {
	t.Helper()
	cfg := Config{
		Addr:             "127.0.0.1:0",
		Env:              EnvDevelopment,
		DatabaseURL:      testDatabaseURL(t),
		AdminToken:       testAdminToken,
		MerchantAPIKey:   testMerchantKey,
		OrderTokenSecret: "test-order-secret",
		UPISecret:        "u", RazorpaySecret: "r", StripeSecret: "s",
		StaticDir:       "../static",
		ClientDir:       "../node_modules/socket.io-client/dist",
		ShutdownTimeout: 5 * time.Second,
	}
	for _, opt := range options {
		opt(&cfg)
	}
	srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})
	return srv, srv.Addr().String()
}

// rawRequest writes req as is on a new connection and returns the status
// line's code.
func rawRequest(t *testing.T, addr, req string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", strings.SplitN(req, "\r\n", 2)[0], err)
	}
	res.Body.Close()
	return res.StatusCode
}

// closedWithin reports whether the server closes c within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 512)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.APIOrigins = []string{"https://api.example.com"} })
	for _, path := range []string{"/payment.html", "/js/payment.js", "/api/config", "/api/payment/status/ord_nosuch", "/no/such/page", "/healthz", "/socket.io/?EIO=9"} {
		t.Run(path, func(t *testing.T) {
			res, err := http.Get(ts.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			h := res.Header
			csp := h.Get("Content-Security-Policy")
			for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'none'",
				"connect-src 'self' https://api.example.com wss://api.example.com"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("nosniff %q, referrer policy %q", h.Get("X-Content-Type-Options"), h.Get("Referrer-Policy"))
			}
		})
	}
	t.Run("frame-ancestors is configurable", func(t *testing.T) {
		ts := newTestServer(t, func(c *Config) { c.FrameAncestors = "https://shop.example.com" })
		res, err := http.Get(ts.URL + "/payment.html")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors https://shop.example.com") {
			t.Fatalf("CSP %q", csp)
		}
	})
}

func TestDevFilesNotServedInProductionAnySpelling(t *testing.T) {
	_, addr := runServer(t, func(c *Config) { c.Env = EnvProduction })
	_, devAddr := runServer(t)
	for _, path := range []string{
		"/websocket-test.html", "/websocket-test.html/", "//websocket-test.html", "/./websocket-test.html",
		"/css/../websocket-test.html", "/%77ebsocket-test.html", "/websocket%2Dtest.html", "/WEBSOCKET-TEST.HTML",
		"/js/websocket-test.js", "/js/websocket-test.js/", "/js//websocket-test.js", "/js/%77ebsocket-test.js",
		"/js/websocket-test.js%2F", "/js%2Fwebsocket-test.js",
	} {
		t.Run(path, func(t *testing.T) {
			req := "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
			if code := rawRequest(t, addr, req); code == http.StatusOK {
				t.Fatalf("production served %s", path)
			}
		})
	}
	for _, path := range []string{"/payment.html", "/js/payment.js", "/js/websocket-client.js", "/css/app.css"} {
		req := "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
		if code := rawRequest(t, addr, req); code != http.StatusOK {
			t.Errorf("production: %s answered %d", path, code)
		}
	}
	if code := rawRequest(t, devAddr, "GET /websocket-test.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); code != http.StatusOK {
		t.Errorf("development: debugging page answered %d", code)
	}
}

func TestOrderCreationNeedsMerchantKey(t *testing.T) {
	body := map[string]any{"amount": 100, "currency": "INR"}
	prod := newTestServer(t, func(c *Config) { c.Env = EnvProduction })
	noKey := newTestServer(t, func(c *Config) { c.Env = EnvProduction; c.MerchantAPIKey = "" })
	dev := newTestServer(t)
	devNoKey := newTestServer(t, func(c *Config) { c.MerchantAPIKey = "" })
	for _, tc := range []struct {
		name string
		ts   *testServer
		auth string
		want int
	}{
		{"production without a key", prod, "", http.StatusUnauthorized},
		{"production with a wrong key", prod, "Bearer nope", http.StatusUnauthorized},
		{"production with the admin token", prod, "Bearer " + testAdminToken, http.StatusUnauthorized},
		{"production with the merchant key", prod, "Bearer " + testMerchantKey, http.StatusCreated},
		{"production with no key configured", noKey, "Bearer anything", http.StatusForbidden},
		{"development without a key", dev, "", http.StatusCreated},
		{"development with a wrong key", dev, "Bearer nope", http.StatusUnauthorized},
		{"development without a key configured ignores the header", devNoKey, "Bearer stale", http.StatusCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRequest(http.MethodPost, "/api/orders").json(body)
			if tc.auth != "" {
				r.header("Authorization", tc.auth)
			}
			if res := tc.ts.do(t, r); res.Status != tc.want {
				t.Fatalf("%d %s, want %d", res.Status, res.Body, tc.want)
			}
		})
	}
}

func TestPerIPLimits(t *testing.T) {
	// Rate 1/s: a burst of BurstSeconds requests, then 429.
	ts := newTestServer(t, func(c *Config) { c.OrderRatePerIP, c.AnonRatePerIP, c.HandshakeRatePerIP = 1, 1, 1 })
	burst := int(BurstSeconds)
	for _, tc := range []struct {
		name string
		req  func() *request
	}{
		{"anonymous orders in development", func() *request {
			return newRequest(http.MethodPost, "/api/orders").json(map[string]any{"amount": 100, "currency": "INR"})
		}},
		{"anonymous API calls", func() *request { return newRequest(http.MethodGet, "/api/config") }},
		{"handshakes", func() *request { return newRequest(http.MethodGet, "/socket.io/?EIO=4&transport=polling") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := 0; i < burst; i++ {
				if res := ts.do(t, tc.req()); res.Status == http.StatusTooManyRequests {
					t.Fatalf("request %d of the burst refused", i+1)
				}
			}
			// A forged X-Forwarded-For does not make a new client: no proxy is trusted.
			if res := ts.do(t, tc.req().header("X-Forwarded-For", "203.0.113.9")); res.Status != http.StatusTooManyRequests {
				t.Fatalf("past the burst: %d %s, want 429", res.Status, res.Body)
			}
		})
	}
	t.Run("the merchant key is not limited", func(t *testing.T) {
		for i := 0; i < 2*burst; i++ {
			ts.createOrder(t, 100, "INR")
		}
	})
	t.Run("sessions keep polling past the handshake limit", func(t *testing.T) {
		// Handshakes are spent above; an existing session's requests pass.
		res := ts.do(t, newRequest(http.MethodGet, "/socket.io/?EIO=4&transport=polling&sid=nosuch"))
		if res.Status == http.StatusTooManyRequests {
			t.Fatal("a request with a session id was rate limited")
		}
	})
}

func TestClientIPFromTrustedProxiesOnly(t *testing.T) {
	trusted, err := parseCIDRs([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		trusted bool
		peer    string
		xff     string
		want    string
	}{
		{"no proxy configured: header ignored", false, "198.51.100.7:1234", "203.0.113.1", "198.51.100.7"},
		{"untrusted peer: header ignored", true, "198.51.100.7:1234", "203.0.113.1", "198.51.100.7"},
		{"trusted proxy: client from the header", true, "10.1.2.3:1234", "203.0.113.1", "203.0.113.1"},
		{"trusted proxy: forged first hop skipped", true, "10.1.2.3:1234", "1.1.1.1, 203.0.113.1", "203.0.113.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var nets []*net.IPNet
			if tc.trusted {
				nets = trusted
			}
			r, _ := http.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.peer
			r.Header.Set("X-Forwarded-For", tc.xff)
			if got := ipExtractor(nets)(r); got != tc.want {
				t.Fatalf("client IP %q, want %q", got, tc.want)
			}
		})
	}
	ts := newTestServer(t, func(c *Config) { c.AnonRatePerIP = 1; c.TrustedProxies = []string{"127.0.0.1"} })
	// Behind a trusted proxy, each forwarded client has its own bucket.
	for i := 0; i < 3*int(BurstSeconds); i++ {
		if res := ts.do(t, newRequest(http.MethodGet, "/api/config").header("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))); res.Status != http.StatusOK {
			t.Fatalf("client %d: %d", i, res.Status)
		}
	}
}

func TestReadinessAndMetricsOnInternalListener(t *testing.T) {
	srv, addr := runServer(t, func(c *Config) { c.MetricsAddr = "127.0.0.1:0" })
	internal := "http://" + srv.InternalAddr().String()
	if code, _, _ := httpGet("http://" + addr + "/metrics"); code != http.StatusNotFound {
		t.Errorf("public /metrics answered %d", code)
	}
	if code, body, _ := httpGet(internal + "/metrics"); code != http.StatusOK || !strings.Contains(string(body), "paystatus_requests_limited_total") && !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("internal /metrics: %d", code)
	}
	_ = srv.store.Close()
	code, body, _ := httpGet("http://" + addr + "/readyz")
	if code != http.StatusServiceUnavailable || strings.TrimSpace(string(body)) != `{"status":"not ready"}` {
		t.Errorf("public /readyz: %d %s", code, body)
	}
	code, body, _ = httpGet(internal + "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), `"database"`) || strings.Contains(string(body), `"database":"ok"`) {
		t.Errorf("internal /readyz: %d %s", code, body)
	}
	// Production hides the details on the public port even without METRICS_ADDR.
	prod := newTestServer(t, func(c *Config) { c.Env = EnvProduction })
	_ = prod.store.Close()
	if res := prod.do(t, newRequest(http.MethodGet, "/readyz")); res.Status != http.StatusServiceUnavailable || len(res.JSON) != 1 || res.JSON["status"] != "not ready" {
		t.Errorf("production /readyz: %d %s", res.Status, res.Body)
	}
}

func TestIdleConnectionsAreClosed(t *testing.T) {
	_, addr := runServer(t, func(c *Config) { c.IdleTimeout = 300 * time.Millisecond })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if !closedWithin(c, 5*time.Second) {
		t.Fatal("an idle keep-alive connection was still open after 5 s with a 300 ms idle timeout")
	}
}

func TestSlowBodiesAreCutOff(t *testing.T) {
	_, addr := runServer(t, func(c *Config) { c.BodyReadTimeout = 300 * time.Millisecond })
	for _, path := range []string{"/api/orders", "/socket.io/?EIO=4&transport=polling&sid=nosuch"} {
		t.Run(path, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// Headers promise a body; a few bytes come, then nothing.
			if _, err := io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{\"am"); err != nil {
				t.Fatal(err)
			}
			if !closedWithin(c, 5*time.Second) {
				t.Fatal("a stalled body held the connection for 5 s with a 300 ms body deadline")
			}
		})
	}
	t.Run("a prompt body is read whole", func(t *testing.T) {
		ts, _ := runServer(t, func(c *Config) { c.BodyReadTimeout = 200 * time.Millisecond })
		base := "http://" + ts.Addr().String()
		res, err := http.Post(base+"/api/orders", "application/json", strings.NewReader(`{"amount":100,"currency":"INR"}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("create order: %d", res.StatusCode)
		}
	})
}

func TestReadBodyDoesNotAllocateDeclaredLength(t *testing.T) {
	const limit = 1 << 20
	e := echo.New()
	measure := func() uint64 {
		req, _ := http.NewRequest(http.MethodPost, "/", io.MultiReader(strings.NewReader("{}"), errReader{}))
		req.ContentLength = limit
		c := e.NewContext(req, nil)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _ = readBody(c, limit)
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	measure()
	if got := measure(); got > limit/4 {
		t.Fatalf("reading 2 bytes of a body declared as %d allocated %d bytes", limit, got)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestConnectionCap(t *testing.T) {
	srv, addr := runServer(t, func(c *Config) { c.MaxConnections = 3 })
	var held []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// Each held connection is accepted before the next test connection.
	for _, c := range held {
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	if code := rawRequest(t, addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); code != http.StatusServiceUnavailable {
		t.Fatalf("fourth connection: %d, want 503", code)
	}
	held[0].Close()
	realtimetest.Eventually(t, 5*time.Second, "a slot to free up", func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	for _, c := range held[1:] {
		c.Close()
	}
	if srv.refusals == nil {
		t.Fatal("no refusal counter")
	}
}

func TestHeaderSizeAndSessionCaps(t *testing.T) {
	_, addr := runServer(t, func(c *Config) { c.MaxSessions = 2 })
	big := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("a", 64<<10) + "\r\nConnection: close\r\n\r\n"
	if code := rawRequest(t, addr, big); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB header: %d, want 431", code)
	}
	shake := "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	for i := 0; i < 2; i++ {
		if code := rawRequest(t, addr, shake); code != http.StatusOK {
			t.Fatalf("handshake %d: %d", i, code)
		}
	}
	if code := rawRequest(t, addr, shake); code != http.StatusServiceUnavailable {
		t.Fatalf("handshake past MaxSessions: %d, want 503", code)
	}
}
