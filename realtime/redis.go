package realtime

import (
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"paystatus/realtime/socketio/redisadapter"
)

// RedisMode picks the Redis adapter's wire format.
type RedisMode string

const (
	// RedisPubSub speaks the protocol of Node's @socket.io/redis-adapter, so
	// Node and Go nodes can share one fleet. It keeps no history: a client
	// recovers its session only on the node it left.
	RedisPubSub RedisMode = "pubsub"
	// RedisStreams speaks @socket.io/redis-streams-adapter: broadcasts and
	// sessions live in Redis, so a client recovers its session on any node.
	RedisStreams RedisMode = "streams"
)

// DefaultRedisPrefix is the channel prefix (pubsub) and stream name
// (streams) that Node's adapters use by default.
const DefaultRedisPrefix = redisadapter.DefaultPrefix

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
	// DefaultRedisPrefix. Sessions are kept under Prefix + ":session:".
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

// newBroker builds the Redis adapter of a server: cross-node publishes it
// drops are counted by the observer, and after an outage resync brings the
// sockets up to date.
func newBroker(cfg Config, resync func()) (*redisadapter.Broker, error) {
	r := cfg.Redis
	b, err := redisadapter.New(redisadapter.Config{
		Client:         r.Client,
		SubClient:      r.SubClient,
		Mode:           redisadapter.Mode(r.Mode),
		Prefix:         r.Prefix,
		SessionTTL:     max(cfg.RecoveryWindow, 0),
		RequestTimeout: fetchTimeout - 500*time.Millisecond,
		Logger:         cfg.Logger,
		OnDropped:      cfg.Observer.CrossNodeDropped,
		OnRestored:     resync,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	return b, nil
}
