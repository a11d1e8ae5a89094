package realtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	sioredis "github.com/zishang520/socket.io/adapters/redis/v3"
	redisadapter "github.com/zishang520/socket.io/adapters/redis/v3/adapter"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// RedisMode picks the Redis adapter flavour.
type RedisMode string

const (
	// RedisPubSub speaks the protocol of Node's @socket.io/redis-adapter, so
	// Node and Go nodes can share one fleet. It keeps no history, so
	// connection state recovery is off.
	RedisPubSub RedisMode = "pubsub"
	// RedisStreams keeps broadcasts and sessions in a Redis stream, so a
	// client can recover its session on any node.
	RedisStreams RedisMode = "streams"
)

// DefaultRedisPrefix is the channel prefix (pubsub) and stream name
// (streams) that Node's adapters use by default.
const DefaultRedisPrefix = "socket.io"

// streams adapter timings: heartbeats tell the nodes how many peers to wait
// for when counting a room.
const (
	streamsHeartbeatInterval  = 5 * time.Second
	streamsHeartbeatTimeoutMS = 10_000
)

// RedisConfig shares rooms and broadcasts with other nodes through Redis.
type RedisConfig struct {
	// Client publishes and answers requests; SubClient, when set, holds the
	// subscriptions so a blocked read never starves publishing.
	Client    goredis.UniversalClient
	SubClient goredis.UniversalClient
	// Mode is pubsub (default) or streams.
	Mode RedisMode
	// Prefix names the channels (pubsub) or the stream (streams); nodes
	// share broadcasts only with nodes on the same prefix. Default
	// DefaultRedisPrefix.
	Prefix string
}

func (c *RedisConfig) withDefaults() (RedisConfig, error) {
	out := *c
	if out.Client == nil {
		return out, fmt.Errorf("%w: redis adapter without a client", errConfig)
	}
	if err := eitherOf(&out.Mode, "redis mode", RedisPubSub, RedisStreams); err != nil {
		return out, err
	}
	if out.Prefix == "" {
		out.Prefix = DefaultRedisPrefix
	}
	return out, nil
}

// redisAdapter builds the adapter constructor handed to the Socket.IO
// options. ctx bounds the adapter's subscriptions: cancelling it stops them.
func redisAdapter(ctx context.Context, cfg RedisConfig, log *slog.Logger) socket.AdapterConstructor {
	client := sioredis.NewRedisClientWithSub(ctx, cfg.Client, cfg.SubClient)
	errs := &errorThrottle{log: log, every: 10 * time.Second}
	_ = client.On("error", func(args ...any) { errs.report(first(args)) })
	if cfg.Mode == RedisStreams {
		return newStreamsBuilder(ctx, client, cfg.Prefix)
	}
	opts := redisadapter.DefaultRedisAdapterOptions()
	opts.SetKey(cfg.Prefix)
	// Room counts wait for every node; answer before the caller's deadline.
	opts.SetRequestsTimeout(fetchTimeout - 500*time.Millisecond)
	return &redisadapter.RedisAdapterBuilder{Redis: client, Opts: opts}
}

// errorThrottle logs adapter errors without flooding the log while Redis is
// away: the first at once, then a summary at most once per period.
type errorThrottle struct {
	log   *slog.Logger
	every time.Duration

	mu         sync.Mutex
	last       time.Time // guarded by mu
	suppressed int       // guarded by mu
}

func (t *errorThrottle) report(err any) {
	if e, ok := err.(error); ok && errors.Is(e, context.Canceled) {
		return // shutting down
	}
	t.mu.Lock()
	now := time.Now()
	if !t.last.IsZero() && now.Sub(t.last) < t.every {
		t.suppressed++
		t.mu.Unlock()
		return
	}
	n := t.suppressed
	t.last, t.suppressed = now, 0
	t.mu.Unlock()
	t.log.Warn("redis adapter error", "error", err, "suppressed", n)
}
