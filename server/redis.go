package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"paystatus/realtime"

	"github.com/redis/go-redis/v9"
)

// Redis link timings. Dials back off from redisBackoffMin to redisBackoffMax
// while Redis is away; publishing a change waits at most redisPublishTimeout
// so an outage never stalls a payment callback for long.
const (
	redisBackoffMin     = 100 * time.Millisecond
	redisBackoffMax     = 5 * time.Second
	redisPublishTimeout = time.Second
	redisStartupPing    = 2 * time.Second
)

// redisLink owns this node's Redis clients, which the Socket.IO adapter
// uses: one for commands and publishing, one for subscriptions and stream
// reads (blocking reads must not hold up publishing). Both
// dial through the same backoff, so an outage is logged once and retried
// with growing pauses rather than in a tight loop.
type redisLink struct {
	log    *slog.Logger
	prefix string
	pub    *redis.Client
	sub    *redis.Client

	// ctx is cancelled by close: failures after it are not an outage.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	failures int       // consecutive failed dials; guarded by mu
	next     time.Time // no dial before this while failing; guarded by mu
	lastErr  error     // guarded by mu
	downAt   time.Time // guarded by mu

}

// newRedisLink parses REDIS_URL and builds the clients. It does not need
// Redis to be up: a node that starts during an outage reports not ready and
// joins the fleet when Redis answers.
func newRedisLink(cfg Config, log *slog.Logger) (*redisLink, error) {
	prefix, err := redisPrefix(cfg.RedisPrefix)
	if err != nil {
		return nil, err
	}
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("%w: REDIS_URL: %v", ErrConfig, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &redisLink{log: log, prefix: prefix, ctx: ctx, cancel: cancel}
	l.pub = redis.NewClient(l.options(opt, false))
	l.sub = redis.NewClient(l.options(opt, true))
	return l, nil
}

// redisPrefix validates REDIS_PREFIX; it becomes part of channel names and a
// subscription pattern, so glob characters and spaces are refused.
func redisPrefix(p string) (string, error) {
	if p == "" {
		return realtime.DefaultRedisPrefix, nil
	}
	if len(p) > 100 || strings.ContainsAny(p, "*?[]\\ \t\r\n") {
		return "", fmt.Errorf("%w: REDIS_PREFIX must be at most 100 characters without spaces or *?[]\\, not %q", ErrConfig, p)
	}
	return p, nil
}

// options copies the parsed URL options with this link's dialer. The
// subscription client waits out the backoff, since its readers retry in a
// loop; the command client fails fast so callers are not held up.
func (l *redisLink) options(parsed *redis.Options, wait bool) *redis.Options {
	opt := *parsed
	dial := redis.NewDialer(&opt)
	opt.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return l.dial(ctx, dial, network, addr, wait)
	}
	opt.DialerRetries = 1
	opt.MaxRetries = 1
	return &opt
}

func (l *redisLink) dial(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), network, addr string, wait bool) (net.Conn, error) {
	l.mu.Lock()
	delay, lastErr := time.Until(l.next), l.lastErr
	l.mu.Unlock()
	if delay > 0 {
		if !wait {
			return nil, fmt.Errorf("redis unreachable, retrying in %s: %w", delay.Round(time.Millisecond), lastErr)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	conn, err := dial(ctx, network, addr)
	l.record(err)
	return conn, err
}

// record keeps the backoff state and logs each outage once at its start and
// once at its end.
func (l *redisLink) record(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		if l.failures > 0 {
			l.log.Info("redis connection restored", "down_for", time.Since(l.downAt).Round(time.Millisecond), "failed_dials", l.failures)
		}
		l.failures, l.next, l.lastErr = 0, time.Time{}, nil
		return
	}
	if l.ctx.Err() != nil {
		return // shutting down
	}
	if l.failures == 0 {
		l.downAt = time.Now()
		l.log.Warn("redis connection lost; retrying with backoff", "error", err)
	}
	l.failures++
	backoff := redisBackoffMin << min(l.failures-1, 10)
	l.next, l.lastErr = time.Now().Add(min(backoff, redisBackoffMax)), err
}

// check is the readiness check: Redis must answer a PING.
func (l *redisLink) check(ctx context.Context) error {
	if err := l.pub.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// realtimeConfig is the Socket.IO adapter configuration on this link.
func (l *redisLink) realtimeConfig(mode string) *realtime.RedisConfig {
	return &realtime.RedisConfig{Client: l.pub, SubClient: l.sub, Mode: realtime.RedisMode(mode), Prefix: l.prefix}
}

// up reports whether the last dial to Redis succeeded.
func (l *redisLink) up() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failures == 0
}

// close closes both clients; the realtime server, which reads through
// them, has shut down before.
func (l *redisLink) close() error {
	l.cancel()
	return errors.Join(l.pub.Close(), l.sub.Close())
}

// setupRedis wires Redis into a server being built: the readiness check,
// the metrics and the closer. It returns nil when REDIS_URL is unset: the
// node runs alone. The Socket.IO adapter carries every cross-node message,
// long-poll wake-ups included.
func (s *Server) setupRedis(cfg Config) (*redisLink, error) {
	if cfg.RedisURL == "" {
		return nil, nil
	}
	link, err := newRedisLink(cfg, s.log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisStartupPing)
	defer cancel()
	if err := link.check(ctx); err != nil {
		s.log.Warn("redis not reachable at start; the node reports not ready until it is", "error", err)
	} else {
		s.log.Info("redis connected", "adapter", cfg.RedisAdapter, "prefix", link.prefix)
	}
	s.metrics.watchRedis(link.up)
	s.checks = append(s.checks, readinessCheck{"redis", link.check})
	s.closers = append(s.closers, link.close)
	return link, nil
}
