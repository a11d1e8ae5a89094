package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"paystatus/payment"
	"paystatus/realtime/realtimetest"
)

// newUnstartedServer builds a Server on a random local port without
// starting it, for tests that drive Run and Shutdown themselves.
func newUnstartedServer(t *testing.T) *Server {
	t.Helper()
	cfg := Config{
		Addr:             "127.0.0.1:0",
		Env:              EnvDevelopment,
		DatabaseURL:      testDatabaseURL(t),
		AdminToken:       testAdminToken,
		OrderTokenSecret: "test-order-secret",
		UPISecret:        "u", RazorpaySecret: "r", StripeSecret: "s",
		StaticDir:       "../static",
		ShutdownTimeout: 10 * time.Second,
	}
	srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func httpGet(url string) (int, []byte, error) {
	res, err := http.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, body, err
}

// TestRunShutsDownInOrder runs a real server, holds a long-poll, cancels
// the context and checks the order of shutdown: the listener and realtime
// layer are closed and in-flight requests finished before the extra
// resources close, and the database closes last.
func TestRunShutsDownInOrder(t *testing.T) {
	srv := newUnstartedServer(t)
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + srv.Addr().String()

	type closerView struct{ listenerOpen, realtimeOpen, dbOpen bool }
	seen := make(chan closerView, 1)
	srv.closers = append(srv.closers, func() error {
		conn, err := net.DialTimeout("tcp", srv.Addr().String(), time.Second)
		if err == nil {
			conn.Close()
		}
		seen <- closerView{listenerOpen: err == nil, realtimeOpen: !srv.rt.Closed(), dbOpen: srv.store.Ping(context.Background()) == nil}
		return nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- srv.Run(ctx) }()

	realtimetest.Eventually(t, 10*time.Second, "the server to answer", func() bool {
		code, _, err := httpGet(base + "/healthz")
		return err == nil && code == http.StatusOK
	})
	o, err := srv.Service().CreateOrder(context.Background(), payment.NewOrder{Amount: 100})
	if err != nil {
		t.Fatal(err)
	}

	type pollResult struct {
		code int
		err  error
		at   time.Time
	}
	polled := make(chan pollResult, 1)
	go func() {
		code, _, err := httpGet(base + "/api/payment/status/" + o.ID + "?since=0&wait=30&token=" + o.Token)
		polled <- pollResult{code, err, time.Now()}
	}()
	realtimetest.Eventually(t, 10*time.Second, "the long-poll to be held", func() bool { return srv.Service().Waiters().Count() == 1 })

	cancelled := time.Now()
	cancel()
	select {
	case r := <-polled:
		if r.err != nil || r.code != http.StatusOK {
			t.Fatalf("held long-poll at shutdown: %d, %v", r.code, r.err)
		}
		// The poll asked for 30 s; it must be answered by the drain, not the timer.
		if took := r.at.Sub(cancelled); took > 5*time.Second {
			t.Fatalf("held long-poll answered %v after shutdown began", took)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("held long-poll not answered at shutdown")
	}
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run returned %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}

	select {
	case v := <-seen:
		if v.listenerOpen || v.realtimeOpen || !v.dbOpen {
			t.Fatalf("when extra resources closed: listener open %v, realtime open %v, database open %v; want false, false, true", v.listenerOpen, v.realtimeOpen, v.dbOpen)
		}
	default:
		t.Fatal("extra resources were not closed")
	}
	if srv.store.Ping(context.Background()) == nil {
		t.Fatal("database still open after Run returned")
	}
	if _, _, err := httpGet(base + "/healthz"); err == nil {
		t.Fatal("server still answers after Run returned")
	}
	// A second shutdown after Run is harmless.
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown after Run: %v", err)
	}
}

func TestRunWithCancelledContextReturnsNil(t *testing.T) {
	srv := newUnstartedServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run with a cancelled context did not return")
	}
	if srv.store.Ping(context.Background()) == nil || !srv.rt.Closed() {
		t.Fatal("Run returned without closing the database and realtime layer")
	}
}

func TestRunReportsListenError(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	srv := newUnstartedServer(t)
	srv.cfg.Addr = taken.Addr().String()
	err = srv.Run(context.Background())
	if err == nil {
		t.Fatal("Run on a taken port returned nil")
	}
	if srv.store.Ping(context.Background()) == nil {
		t.Fatal("database left open after a failed start")
	}
	_ = srv.Shutdown(context.Background())
}

func TestShutdownTwiceIsSafe(t *testing.T) {
	t.Run("one after the other", func(t *testing.T) {
		srv := newUnstartedServer(t)
		if err := srv.Listen(); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if err := srv.Shutdown(context.Background()); err != nil {
				t.Fatalf("Shutdown #%d: %v", i+1, err)
			}
		}
	})
	t.Run("at the same time", func(t *testing.T) {
		srv := newUnstartedServer(t)
		ctx, cancel := context.WithCancel(context.Background())
		runErr := make(chan error, 1)
		if err := srv.Listen(); err != nil {
			t.Fatal(err)
		}
		go func() { runErr <- srv.Run(ctx) }()
		realtimetest.Eventually(t, 10*time.Second, "the server to answer", func() bool {
			code, _, err := httpGet("http://" + srv.Addr().String() + "/healthz")
			return err == nil && code == http.StatusOK
		})
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = srv.Shutdown(context.Background())
			}()
		}
		cancel()
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("concurrent Shutdown: %v", err)
		}
		select {
		case err := <-runErr:
			if err != nil {
				t.Fatalf("Run = %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("Run did not return")
		}
	})
}
