// Command conformance runs the lean Socket.IO layer alone, configured as
// Socket.IO's own protocol test suite expects, so the wire protocol can be
// checked against an independent suite:
//
//	go run ./realtime/conformance -addr :3000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"paystatus/realtime/engineio"
	"paystatus/realtime/socketio"
)

func main() {
	addr := flag.String("addr", ":3000", "listen address")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(1)
	}
}

// newServer builds the Socket.IO server with the suite's settings.
func newServer() (*socketio.Server, error) {
	io, err := socketio.NewServer(socketio.Config{
		Engine: engineio.Config{
			PingInterval: 300 * time.Millisecond,
			PingTimeout:  200 * time.Millisecond,
			MaxPayload:   1_000_000,
			AllowEIO3:    true,
		},
		ConnectTimeout: 1000 * time.Millisecond,
	})
	if err != nil {
		return nil, err
	}
	onConnection := func(sock *socketio.Socket) {
		_ = sock.Emit("auth", sock.Auth())
		sock.Handler = &socketio.HandlerFuncs{Event: func(event string, args []any, ack socketio.AckFunc) {
			switch event {
			case "message":
				_ = sock.Emit("message-back", args...)
			case "message-with-ack":
				if ack != nil {
					ack(args...)
				}
			}
		}}
	}
	io.Of("/").OnConnection = onConnection
	io.Of("/custom").OnConnection = func(sock *socketio.Socket) { _ = sock.Emit("auth", sock.Auth()) }
	return io, nil
}

func run(ctx context.Context, addr string) error {
	io, err := newServer()
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", io)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("conformance server listening on %s", addr)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = io.Shutdown(shutdownCtx)
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
