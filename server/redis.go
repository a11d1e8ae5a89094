package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"paystatus/payment"
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

// redisLink owns this node's Redis clients: one for commands and publishing,
// one for subscriptions (blocking reads must not hold up publishing). Both
// dial through the same backoff, so an outage is logged once and retried
// with growing pauses rather than in a tight loop.
type redisLink struct {
	log    *slog.Logger
	prefix string
	node   string // tells this node's own change messages apart
	pub    *redis.Client
	sub    *redis.Client

	// ctx ends the change subscriber; done is closed when it has stopped.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	failures int       // consecutive failed dials; guarded by mu
	next     time.Time // no dial before this while failing; guarded by mu
	lastErr  error     // guarded by mu
	downAt   time.Time // guarded by mu

	publishErrs time.Time // last logged publish failure; guarded by mu
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
	l := &redisLink{log: log, prefix: prefix, node: randomSecret()[:16], ctx: ctx, cancel: cancel, done: make(chan struct{})}
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

// changeChannel carries "order changed" notes between nodes. It sits
// outside the adapter's channel pattern (prefix#...), so Socket.IO nodes,
// Node ones included, never see it.
func (l *redisLink) changeChannel() string { return l.prefix + "-paystatus-changes" }

// changeNote is one cross-node change message.
type changeNote struct {
	Node    string `json:"node"`
	OrderID string `json:"orderId"`
	Seq     int64  `json:"seq"`
}

// PublishChange implements payment.ChangePublisher: it tells the other
// nodes an order changed so their held long-polls wake. A failure is
// logged; those long-polls then answer at their own timeout.
func (l *redisLink) PublishChange(ctx context.Context, orderID string, seq int64) {
	msg, err := json.Marshal(changeNote{Node: l.node, OrderID: orderID, Seq: seq})
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, redisPublishTimeout)
	defer cancel()
	if err := l.pub.Publish(ctx, l.changeChannel(), msg).Err(); err != nil {
		l.mu.Lock()
		quiet := time.Since(l.publishErrs) < 10*time.Second
		if !quiet {
			l.publishErrs = time.Now()
		}
		l.mu.Unlock()
		if !quiet {
			l.log.Warn("could not publish order change to other nodes", "orderId", orderID, "seq", seq, "error", err)
		}
	}
}

// relayChanges wakes this node's long-polls for changes committed on other
// nodes, until the link is closed.
func (l *redisLink) relayChanges(waiters *payment.Waiters) {
	defer close(l.done)
	ps := l.sub.Subscribe(l.ctx, l.changeChannel())
	// A blocked read ignores the context; closing the subscription ends it.
	stop := context.AfterFunc(l.ctx, func() { _ = ps.Close() })
	defer stop()
	for {
		msg, err := ps.ReceiveMessage(l.ctx)
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
				return
			}
			// The dialer's backoff paces reconnects; this pause only guards
			// against errors that need no dial.
			select {
			case <-l.ctx.Done():
				return
			case <-time.After(redisBackoffMin):
			}
			continue
		}
		var note changeNote
		if err := json.Unmarshal([]byte(msg.Payload), &note); err != nil || !payment.ValidOrderID(note.OrderID) {
			l.log.Warn("ignoring malformed order change note", "channel", msg.Channel)
			continue
		}
		if note.Node != l.node {
			waiters.Notify(note.OrderID)
		}
	}
}

// close stops the subscriber and closes both clients.
func (l *redisLink) close() error {
	l.cancel()
	<-l.done
	return errors.Join(l.pub.Close(), l.sub.Close())
}

// setupRedis wires Redis into a server being built: the cross-node change
// relay, the readiness check and the closer. It returns nil when REDIS_URL
// is unset: the node runs alone.
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
	s.svc.SetPublisher(link)
	go link.relayChanges(s.svc.Waiters())
	s.checks = append(s.checks, readinessCheck{"redis", link.check})
	s.closers = append(s.closers, link.close)
	return link, nil
}
