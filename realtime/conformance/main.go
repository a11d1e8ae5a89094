// Command conformance runs the Socket.IO server alone, configured as
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

	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
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
func newServer() *socket.Server {
	opts := socket.DefaultServerOptions()
	opts.SetPingInterval(300 * time.Millisecond)
	opts.SetPingTimeout(200 * time.Millisecond)
	opts.SetMaxHttpBufferSize(1_000_000)
	opts.SetConnectTimeout(1000 * time.Millisecond)
	opts.SetCors(&types.Cors{Origin: "*"})
	io := socket.NewServer(nil, opts)

	emitAuth := func(args ...any) {
		sock := args[0].(*socket.Socket)
		_ = sock.Emit("auth", sock.Handshake().Auth)
	}
	_ = io.On("connection", func(args ...any) {
		emitAuth(args...)
		sock := args[0].(*socket.Socket)
		_ = sock.On("message", func(msg ...any) {
			_ = sock.Emit("message-back", msg...)
		})
		_ = sock.On("message-with-ack", func(msg ...any) {
			if n := len(msg); n > 0 {
				if ack, ok := msg[n-1].(socket.Ack); ok {
					ack(msg[:n-1], nil)
				}
			}
		})
	})
	_ = io.Of("/custom", nil).On("connection", emitAuth)
	return io
}

func run(ctx context.Context, addr string) error {
	io := newServer()
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", io.ServeHandler(nil))
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
	io.Close(nil)
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
