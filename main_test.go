package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reexecChild makes the test binary stand in for the program in
// TestReexecWithSysmonAwake: it restarts as main does, then prints the
// GODEBUG its process image was started with and, on the next line, the
// process's name.
const reexecChild = "PAYSTATUS_TEST_REEXEC_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(reexecChild) == "1" {
		if err := reexecWithSysmonAwake(os.Getenv, syscall.Exec); err != nil {
			fmt.Println("error:", err)
			os.Exit(3)
		}
		// /proc/self/environ is the environment execve was given; os.Setenv
		// alone would not change it.
		raw, err := os.ReadFile("/proc/self/environ")
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(3)
		}
		for _, kv := range strings.Split(string(raw), "\x00") {
			if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
				fmt.Print(v)
			}
		}
		// The process's name, as ps shows it, after the restart.
		comm, err := os.ReadFile("/proc/self/comm")
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(3)
		}
		fmt.Print("\n", strings.TrimSpace(string(comm)))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestReexecWithSysmonAwake(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the restart is Linux-only; elsewhere it does nothing")
	}
	for _, tc := range []struct {
		name, godebug, want string
	}{
		{"unset", "", sysmonSetting},
		{"other settings kept", "gctrace=0", "gctrace=0," + sysmonSetting},
		{"schedtrace set by the operator", "schedtrace=0", "schedtrace=0"},
		{"schedtrace among others", "gctrace=0, schedtrace=5000", "gctrace=0, schedtrace=5000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), reexecChild+"=1", "GODEBUG="+tc.godebug)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v: %s", err, out)
			}
			godebug, comm, _ := strings.Cut(string(out), "\n")
			if godebug != tc.want {
				t.Fatalf("GODEBUG at start-up = %q, want %q", godebug, tc.want)
			}
			// The kernel keeps 15 bytes of the executed file's name.
			if name := filepath.Base(os.Args[0]); comm != name[:min(len(name), 15)] {
				t.Fatalf("process name after the restart = %q, want %q", comm, name)
			}
		})
	}
	t.Run("exec fails", func(t *testing.T) {
		failed := errors.New("exec refused")
		err := reexecWithSysmonAwake(func(string) string { return "" }, func(string, []string, []string) error { return failed })
		if !errors.Is(err, failed) || !strings.Contains(err.Error(), sysmonSetting) {
			t.Fatalf("err = %v, want it to wrap %v and name the setting", err, failed)
		}
	})
}

// errPanicked marks a panic inside run, which must never happen.
var errPanicked = errors.New("run panicked")

// runSafely calls run and turns a panic into an error, so it can be used
// from any goroutine.
func runSafely(ctx context.Context, env map[string]string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errPanicked, r)
		}
	}()
	return run(ctx, func(k string) string { return env[k] })
}

// keepDefaultLogger restores slog's default, which run replaces.
func keepDefaultLogger(t *testing.T) {
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) })
}

func TestRunRefusesInvalidConfig(t *testing.T) {
	keepDefaultLogger(t)
	dir := t.TempDir()
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "main.db")
	tests := []struct {
		name    string
		env     map[string]string
		message string
	}{
		{"port not a number", map[string]string{"PORT": "eighty"}, "PORT"},
		{"port out of range", map[string]string{"PORT": "99999"}, "PORT"},
		{"unknown environment", map[string]string{"APP_ENV": "qa"}, "APP_ENV"},
		{"production without order secret", map[string]string{"APP_ENV": "production"}, "ORDER_TOKEN_SECRET is required"},
		{"log level", map[string]string{"LOG_LEVEL": "chatty"}, "LOG_LEVEL"},
		{"room auth", map[string]string{"ROOM_AUTH": "open"}, "ROOM_AUTH"},
		{"rollout", map[string]string{"REALTIME_ROLLOUT_PERCENT": "150"}, "REALTIME_ROLLOUT_PERCENT"},
		{"half TLS", map[string]string{"TLS_CERT_FILE": "cert.pem"}, "TLS_KEY_FILE"},
		{"bad ack timeout", map[string]string{"ACK_TIMEOUT_SECONDS": "soon"}, "ACK_TIMEOUT_SECONDS"},
		{"profiler on a public address", map[string]string{"PPROF_ADDR": "0.0.0.0:6060"}, "PPROF_ADDR"},
		{"profiler address malformed", map[string]string{"PPROF_ADDR": "localhost"}, "PPROF_ADDR"},
		{"database folder is a file", map[string]string{"DATABASE_URL": filepath.Join(notADir, "x.db")}, "database"},
		{"database refuses connections", map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"}, "database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"DATABASE_URL": db, "LOG_LEVEL": "error"}
			for k, v := range tt.env {
				env[k] = v
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := runSafely(ctx, env)
			if errors.Is(err, errPanicked) {
				t.Fatal(err)
			}
			if err == nil {
				t.Fatal("run accepted an invalid configuration")
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("error %q does not mention %q", err, tt.message)
			}
		})
	}
}

// TestRunServesUntilCancelled starts the whole program on a free port and
// stops it through its context, as a signal would.
func TestRunServesUntilCancelled(t *testing.T) {
	keepDefaultLogger(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	env := map[string]string{
		"PORT":         fmt.Sprint(port),
		"DATABASE_URL": filepath.Join(t.TempDir(), "run.db"),
		"LOG_LEVEL":    "error",
		"STATIC_DIR":   "static",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runSafely(ctx, env) }()

	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("run ended before serving: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("server never answered /healthz")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v after cancel, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestLogLevel(t *testing.T) {
	tests := map[string]slog.Level{"": slog.LevelInfo, "debug": slog.LevelDebug, "WARN": slog.LevelWarn, "error": slog.LevelError, "nonsense": slog.LevelInfo}
	for in, want := range tests {
		if got := logLevel(in); got != want {
			t.Errorf("logLevel(%q) = %v, want %v", in, got, want)
		}
	}
}
