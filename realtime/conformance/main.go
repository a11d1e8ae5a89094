// Command conformance runs the lean Socket.IO layer alone, configured as
// Socket.IO's own protocol test suite expects, so the wire protocol can be
// checked against an independent suite:
//
//	go run ./realtime/conformance -addr :3000
//
// With -mode engineio it runs the bare Engine.IO layer at /engine.io/ as
// the Engine.IO protocol suite expects: every message, text or binary, is
// echoed back.
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
	mode := flag.String("mode", "socketio", "socketio: Socket.IO at /socket.io/; engineio: bare Engine.IO echo at /engine.io/")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *mode); err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(1)
	}
}

// suiteEngine is the engine configuration both suites ask for.
func suiteEngine() engineio.Config {
	return engineio.Config{
		PingInterval: 300 * time.Millisecond,
		PingTimeout:  200 * time.Millisecond,
		MaxPayload:   1_000_000,
		AllowEIO3:    true,
	}
}

// echo is the Engine.IO suite's application: it sends every message back.
type echo struct{}

func (echo) OnOpen(*engineio.Session)                   {}
func (echo) OnClose(*engineio.Session, string)          {}
func (echo) OnUpgrade(*engineio.Session)                {}
func (echo) OnMessage(s *engineio.Session, data string) { _ = s.SendText(data) }
func (echo) OnBinary(s *engineio.Session, data []byte)  { _ = s.Send(engineio.NewBinaryMessage(data)) }

// newEngineServer builds the bare Engine.IO echo server.
func newEngineServer() (*engineio.Server, error) { return engineio.NewServer(suiteEngine(), echo{}) }

// newServer builds the Socket.IO server with the suite's settings.
func newServer() (*socketio.Server, error) {
	io, err := socketio.NewServer(socketio.Config{
		Engine:         suiteEngine(),
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

// shutdowner is either server.
type shutdowner interface {
	http.Handler
	Shutdown(context.Context) error
}

func run(ctx context.Context, addr, mode string) error {
	var io shutdowner
	var path string
	var err error
	switch mode {
	case "socketio":
		io, err = newServer()
		path = "/socket.io/"
	case "engineio":
		io, err = newEngineServer()
		path = "/engine.io/"
	default:
		err = fmt.Errorf("unknown mode %q (socketio or engineio)", mode)
	}
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(path, io)
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
