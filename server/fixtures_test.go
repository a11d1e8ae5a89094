package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Test fixtures shared by the server package's tests.

const (
	testAdminToken  = "test-admin"
	testMerchantKey = "test-merchant-key"
)

// testDatabaseURL is the database the suite runs on: TEST_DATABASE_URL
// (for example a postgres:// URL) or, by default, a fresh SQLite file.
func testDatabaseURL(t testing.TB) string {
	if url := os.Getenv("TEST_DATABASE_URL"); url != "" {
		return url
	}
	return filepath.Join(t.TempDir(), "test.db")
}

// testServer is a real Server behind an httptest listener.
type testServer struct {
	*Server
	URL  string
	http *httptest.Server
}

// newTestServer builds a development server with fixed secrets; options
// adjust the Config before it is used.
func newTestServer(t testing.TB, options ...func(*Config)) *testServer {
	t.Helper()
	return newTestServerLogging(t, slog.New(slog.NewTextHandler(io.Discard, nil)), options...)
}

// newTestServerLogging is newTestServer with its logger; in verbose runs
// the logger is replaced by one that prints warnings and errors.
func newTestServerLogging(t testing.TB, log *slog.Logger, options ...func(*Config)) *testServer {
	t.Helper()
	cfg := Config{
		Env:              EnvDevelopment,
		DatabaseURL:      testDatabaseURL(t),
		AdminToken:       testAdminToken,
		MerchantAPIKey:   testMerchantKey,
		OrderTokenSecret: "test-order-secret",
		UPISecret:        "test-upi-secret",
		RazorpaySecret:   "test-razorpay-secret",
		StripeSecret:     "test-stripe-secret",
		StaticDir:        "../static",
		ClientDir:        "../node_modules/socket.io-client/dist",
		LogLevel:         "warn",
		// The suite sends many requests from one address; the per-address
		// limits have tests of their own.
		HandshakeRatePerIP: -1,
		AnonRatePerIP:      -1,
		OrderRatePerIP:     -1,
	}
	for _, opt := range options {
		opt(&cfg)
	}
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return startTestServer(t, cfg, log)
}

// startTestServer builds a server from exactly cfg, serves it on an
// httptest listener and shuts it down when the test ends.
func startTestServer(t testing.TB, cfg Config, log *slog.Logger) *testServer {
	t.Helper()
	srv, err := New(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &testServer{Server: srv, URL: hs.URL, http: hs}
}

// request is a builder for one HTTP call in a test.
type request struct {
	method  string
	path    string
	body    []byte
	headers map[string]string
}

func newRequest(method, path string) *request {
	return &request{method: method, path: path, headers: map[string]string{}}
}

func (r *request) json(v any) *request {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return r.raw(b)
}

func (r *request) raw(b []byte) *request {
	r.body = b
	r.headers["Content-Type"] = "application/json"
	return r
}

func (r *request) header(k, v string) *request { r.headers[k] = v; return r }

func (r *request) admin() *request { return r.header("Authorization", "Bearer "+testAdminToken) }

// response is a decoded reply.
type response struct {
	Status int
	Body   []byte
	JSON   map[string]any
}

func (ts *testServer) do(t testing.TB, r *request) response {
	t.Helper()
	req, err := http.NewRequest(r.method, ts.URL+r.path, bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	out := response{Status: res.StatusCode, Body: body}
	_ = json.Unmarshal(body, &out.JSON)
	return out
}

// createOrder makes an order through the API and returns its id and token.
func (ts *testServer) createOrder(t testing.TB, amount int64, currency string) (id, token string) {
	t.Helper()
	res := ts.do(t, newRequest(http.MethodPost, "/api/orders").header("Authorization", "Bearer "+testMerchantKey).json(map[string]any{"amount": amount, "currency": currency, "description": "test"}))
	if res.Status != http.StatusCreated {
		t.Fatalf("create order: %d %s", res.Status, res.Body)
	}
	return res.JSON["id"].(string), res.JSON["token"].(string)
}
