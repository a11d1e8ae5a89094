package realtime

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"paystatus/realtime/engineio"
	"paystatus/realtime/socketio"
)

// RoomAuth says what a socket must show to join an order's room.
type RoomAuth string

const (
	// RoomAuthToken requires the order's access token (the default).
	RoomAuthToken RoomAuth = "token"
	// RoomAuthOrder admits joins to any existing order without a token, for
	// pages written for the original server during a migration.
	RoomAuthOrder RoomAuth = "order"
)

// Defaults of the Config limits that a zero value selects.
const (
	DefaultMaxPayload    = 64 << 10
	DefaultMaxEventBytes = socketio.DefaultMaxEventBytes
	DefaultMaxEventDepth = socketio.DefaultMaxEventDepth
)

// Config configures the Socket.IO server. The zero value of each field means
// its default, filled in by New.
type Config struct {
	// CORSOrigins lists the origins allowed to connect; empty allows any.
	CORSOrigins []string
	// RoomAuth is token (default) or order.
	RoomAuth RoomAuth
	// PingInterval and PingTimeout drive Engine.IO heartbeats (25 s, 20 s).
	PingInterval time.Duration
	PingTimeout  time.Duration
	// ConnectTimeout is how long a client may take to join a namespace (45 s).
	ConnectTimeout time.Duration
	// MaxPayload bounds one message in bytes; zero means DefaultMaxPayload.
	MaxPayload int64
	// AckTimeout is how long a terminal update waits for the client's
	// acknowledgement before it is sent again (5 s).
	AckTimeout time.Duration
	// AckRetries is how many times an unacknowledged terminal update is sent
	// again (3).
	AckRetries int
	// RecoveryWindow is how long a dropped connection's state is kept for
	// Socket.IO connection state recovery (2 min). Negative disables it.
	RecoveryWindow time.Duration
	// EventsPerSecond limits inbound events per socket (20, burst twice that);
	// beyond it events are dropped with a log line.
	EventsPerSecond int
	// MaxSessions caps Engine.IO sessions on this node; handshakes beyond
	// it are answered 503; zero means engineio.DefaultMaxSessions. The
	// library engine does not apply it.
	MaxSessions int
	// OnSessionsFull, when set, is told of each handshake refused so.
	OnSessionsFull func()
	// MaxEventBytes bounds one inbound event's JSON and MaxEventDepth its
	// nesting, both checked before decoding; zero means DefaultMaxEventBytes
	// and DefaultMaxEventDepth.
	MaxEventBytes int
	MaxEventDepth int
	// Logger receives structured logs (slog.Default()).
	Logger *slog.Logger
	// Observer is told about connections, joins and broadcasts (no-op).
	Observer Observer
	// ClientDir is the folder holding socket.io.js and socket.io.min.js
	// (node_modules/socket.io-client/dist). Empty serves no client file.
	ClientDir string
	// Redis, when set, shares rooms and broadcasts with other nodes; nil
	// runs this node alone.
	Redis *RedisConfig
	// OnRemoteChange is told of each order that another node announced a
	// change of, by the broadcast that carries it; it wakes this node's
	// long-polls. Nil ignores them.
	OnRemoteChange func(orderID string)
}

var errConfig = errors.New("invalid realtime configuration")

func (c *Config) withDefaults() (Config, error) {
	out := *c
	if err := eitherOf(&out.RoomAuth, "room auth", RoomAuthToken, RoomAuthOrder); err != nil {
		return out, err
	}
	setDuration(&out.PingInterval, 25*time.Second)
	setDuration(&out.PingTimeout, 20*time.Second)
	setDuration(&out.ConnectTimeout, 45*time.Second)
	setDuration(&out.AckTimeout, 5*time.Second)
	setDuration(&out.RecoveryWindow, 2*time.Minute)
	if out.MaxPayload == 0 {
		out.MaxPayload = DefaultMaxPayload
	}
	if out.AckRetries == 0 {
		out.AckRetries = 3
	}
	if out.EventsPerSecond == 0 {
		out.EventsPerSecond = 20
	}
	if out.MaxSessions == 0 {
		out.MaxSessions = engineio.DefaultMaxSessions
	}
	if out.MaxEventBytes == 0 {
		out.MaxEventBytes = DefaultMaxEventBytes
	}
	if out.MaxEventDepth == 0 {
		out.MaxEventDepth = DefaultMaxEventDepth
	}
	if out.MaxPayload < 0 || out.AckRetries < 0 || out.EventsPerSecond < 0 || out.MaxSessions < 0 || out.MaxEventBytes < 0 || out.MaxEventDepth < 0 {
		return out, fmt.Errorf("%w: negative limit", errConfig)
	}
	if out.PingInterval < 0 || out.PingTimeout < 0 || out.ConnectTimeout < 0 || out.AckTimeout < 0 {
		return out, fmt.Errorf("%w: negative duration", errConfig)
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	if out.Observer == nil {
		out.Observer = noopObserver{}
	}
	if out.Redis != nil {
		r, err := out.Redis.withDefaults()
		if err != nil {
			return out, err
		}
		out.Redis = &r
	}
	return out, nil
}

// eitherOf fills an empty *v with def and refuses anything but def or alt.
func eitherOf[T ~string](v *T, what string, def, alt T) error {
	if *v == "" {
		*v = def
	}
	if *v != def && *v != alt {
		return fmt.Errorf("%w: %s %q is neither %s nor %s", errConfig, what, string(*v), string(def), string(alt))
	}
	return nil
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}
