// Command paystatus serves real-time payment status to checkout pages over
// Socket.IO, with HTTP polling as the fallback.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"paystatus/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "paystatus:", err)
		os.Exit(1)
	}
}

// run reads the configuration, builds the server and serves until ctx ends.
func run(ctx context.Context, getenv func(string) string) error {
	cfg, err := server.FromEnv(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: logLevel(getenv("LOG_LEVEL"))}))
	slog.SetDefault(log)
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

func logLevel(name string) slog.Level {
	var level slog.Level
	if err := level.UnmarshalText([]byte(name)); err != nil {
		return slog.LevelInfo
	}
	return level
}
