// Command paystatus serves real-time payment status to checkout pages over
// Socket.IO, with HTTP polling as the fallback.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"paystatus/server"
)

func main() {
	if err := reexecWithSysmonAwake(os.Getenv, syscall.Exec); err != nil {
		fmt.Fprintln(os.Stderr, "paystatus: warning:", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "paystatus:", err)
		os.Exit(1)
	}
}

// sysmonSetting keeps the runtime's monitor thread (sysmon) out of its deep
// sleep. With one P that idles between requests, sysmon otherwise parks
// whenever the P idles and is woken by the next system call, over and over,
// and competes for the CPU with the request being served. The runtime
// offers no API for this: any schedtrace period keeps sysmon polling, and
// at the largest period (in milliseconds) the scheduler line it prints
// comes at most once per 24.8 days of the machine's uptime.
const sysmonSetting = "schedtrace=2147483647"

// reexecWithSysmonAwake runs the program again in place, with sysmonSetting
// added to GODEBUG, which the runtime reads only at start-up. It does
// nothing off Linux or when GODEBUG already sets schedtrace (schedtrace=0
// opts out). On success it does not return. It must run before the
// program opens anything, since the new image inherits open descriptors.
func reexecWithSysmonAwake(getenv func(string) string, exec func(path string, argv, env []string) error) error {
	if runtime.GOOS != "linux" {
		return nil
	}
	current := getenv("GODEBUG")
	for _, kv := range strings.Split(current, ",") {
		if k, _, _ := strings.Cut(kv, "="); strings.TrimSpace(k) == "schedtrace" {
			return nil
		}
	}
	godebug := sysmonSetting
	if current != "" {
		godebug = current + "," + sysmonSetting
	}
	env := []string{"GODEBUG=" + godebug}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			env = append(env, kv)
		}
	}
	// The program's own path, not /proc/self/exe: the kernel names the
	// process after the file it executes, and ps, top and pkill show that.
	path, err := os.Executable()
	if err == nil {
		err = exec(path, os.Args, env)
	}
	if err != nil {
		return fmt.Errorf("could not restart with GODEBUG=%s, running without it: %w", godebug, err)
	}
	return nil
}

// run reads the configuration, builds the server and serves until ctx ends.
func run(ctx context.Context, getenv func(string) string) error {
	cfg, err := server.FromEnv(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: logLevel(getenv("LOG_LEVEL"))}))
	slog.SetDefault(log)
	if addr := getenv("PPROF_ADDR"); addr != "" {
		if err := servePprof(ctx, addr, log); err != nil {
			return err
		}
	}
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// servePprof exposes Go's profiler on its own listener, kept off the public
// port; it must be a loopback address.
func servePprof(ctx context.Context, addr string, log *slog.Logger) error {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%w: PPROF_ADDR must be a loopback host:port, not %q", server.ErrConfig, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pprof listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof listener stopped", "error", err)
		}
	}()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	log.Warn("profiler listening", "addr", ln.Addr().String())
	return nil
}

func logLevel(name string) slog.Level {
	var level slog.Level
	if err := level.UnmarshalText([]byte(name)); err != nil {
		return slog.LevelInfo
	}
	return level
}
