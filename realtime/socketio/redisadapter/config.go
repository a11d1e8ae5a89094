package redisadapter

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Mode picks the wire format.
type Mode string

const (
	// PubSub speaks @socket.io/redis-adapter 8.x: broadcasts and requests
	// on Redis pub/sub channels. It keeps no history.
	PubSub Mode = "pubsub"
	// Streams speaks @socket.io/redis-streams-adapter 0.3: broadcasts in a
	// Redis stream, whose entry ids are the recovery offsets, and sessions
	// in Redis keys, so a client recovers its session on any node.
	Streams Mode = "streams"
)

// DefaultPrefix is the channel prefix and stream name of Node's adapters.
const DefaultPrefix = "socket.io"

// Defaults of Config's limits.
const (
	// DefaultQueueSize is Config.QueueSize's default.
	DefaultQueueSize = 4096
	// DefaultMaxMessage is Config.MaxMessage's default, in bytes.
	DefaultMaxMessage = 1 << 20
)

// Config configures a Broker. Zero fields take the default named.
type Config struct {
	// Client publishes and runs commands; SubClient (Client when nil)
	// holds the subscriptions and blocking stream reads, so that they
	// never hold up a publish.
	Client    redis.UniversalClient
	SubClient redis.UniversalClient
	// Mode is PubSub (default) or Streams.
	Mode Mode
	// Prefix names the channels and, in Streams mode, the stream
	// (DefaultPrefix). Nodes share broadcasts only on one prefix.
	Prefix string
	// SessionKeyPrefix prefixes the keys of saved sessions in Streams mode
	// (Prefix + ":session:").
	SessionKeyPrefix string
	// SessionTTL is how long a dropped socket's session is kept in Streams
	// mode; zero or negative turns connection state recovery off.
	SessionTTL time.Duration
	// RequestTimeout bounds a request to the other nodes that has no
	// deadline of its own (2.5 s).
	RequestTimeout time.Duration
	// MaxLen caps the stream, approximately (10,000 entries).
	MaxLen int64
	// ReadCount is how many stream entries one read takes (100).
	ReadCount int64
	// QueueSize bounds the broadcasts waiting to be published
	// (DefaultQueueSize); beyond it they are dropped and counted.
	QueueSize int
	// MaxMessage bounds one message read from Redis in bytes
	// (DefaultMaxMessage); larger ones are dropped unread.
	MaxMessage int
	// Logger receives warnings (slog.Default()).
	Logger *slog.Logger
	// OnDropped is told of each cross-node publish that could not be made,
	// with a reason: "error" (Redis refused or is away) or "queue_full".
	OnDropped func(reason string)
	// OnRestored runs when reading from Redis works again after failing:
	// whatever the other nodes published meanwhile is lost, and the caller
	// may bring its sockets up to date. It runs on a goroutine of its own.
	OnRestored func()
}

func (c Config) withDefaults() (Config, error) {
	if c.Client == nil {
		return c, fmt.Errorf("%w: no Redis client", ErrConfig)
	}
	if c.SubClient == nil {
		c.SubClient = c.Client
	}
	switch c.Mode {
	case "":
		c.Mode = PubSub
	case PubSub, Streams:
	default:
		return c, fmt.Errorf("%w: mode %q is neither pubsub nor streams", ErrConfig, c.Mode)
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if len(c.Prefix) > 100 || strings.ContainsAny(c.Prefix, "*?[]\\ \t\r\n") {
		return c, fmt.Errorf("%w: prefix %q must be at most 100 characters without spaces or *?[]\\", ErrConfig, c.Prefix)
	}
	if c.SessionKeyPrefix == "" {
		c.SessionKeyPrefix = c.Prefix + ":session:"
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 2500 * time.Millisecond
	}
	if c.MaxLen == 0 {
		c.MaxLen = 10_000
	}
	if c.ReadCount == 0 {
		c.ReadCount = 100
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.MaxMessage == 0 {
		c.MaxMessage = DefaultMaxMessage
	}
	if c.RequestTimeout < 0 || c.MaxLen < 0 || c.ReadCount < 0 || c.QueueSize < 0 || c.MaxMessage < 0 {
		return c, fmt.Errorf("%w: negative limit", ErrConfig)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.OnDropped == nil {
		c.OnDropped = func(string) {}
	}
	if c.OnRestored == nil {
		c.OnRestored = func() {}
	}
	return c, nil
}
