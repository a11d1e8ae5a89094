// Package redisadapter shares a socketio server's rooms and broadcasts with
// the other nodes of a fleet through Redis, in the wire formats of Node's
// @socket.io/redis-adapter 8.x (pub/sub) and
// @socket.io/redis-streams-adapter 0.3 (streams), so Go and Node nodes can
// serve one fleet.
package redisadapter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"paystatus/realtime/socketio"
)

// Timings of the Redis link.
const (
	publishTimeout = time.Second            // one pipelined round of publishes
	retryPause     = 100 * time.Millisecond // after a failed read, before the next
	logEvery       = 10 * time.Second       // at most one warning of a kind per period
	publishBatch   = 128                    // publishes sent in one round trip
)

// Broker is one node's link to the fleet: it publishes for every
// namespace's adapter from one bounded queue, and each adapter reads its
// own subscriptions. Build it with New, hand Factory to the socketio
// server, and Close it after the server has shut down.
type Broker struct {
	cfg   Config
	ctx   context.Context
	stop  context.CancelFunc
	queue chan publication
	wg    sync.WaitGroup
	warn  throttle

	closed atomic.Bool
}

// publication is one PUBLISH waiting in the queue.
type publication struct {
	channel string
	payload []byte
}

// New validates cfg and starts the publisher. Redis need not be up: the
// adapter keeps serving this node's sockets and publishes again once it
// answers.
func New(cfg Config) (*Broker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	b := &Broker{cfg: cfg, ctx: ctx, stop: stop, queue: make(chan publication, cfg.QueueSize)}
	b.warn.log = cfg.Logger
	b.wg.Add(1)
	go b.publishLoop()
	return b, nil
}

// KeepsSessions reports whether the adapters persist sessions in Redis
// (Streams mode), for socketio.Config.AdapterKeepsSessions.
func (b *Broker) KeepsSessions() bool { return b.cfg.Mode == Streams }

// Factory is the socketio.AdapterFactory of this broker.
func (b *Broker) Factory(n *socketio.Namespace) socketio.Adapter {
	a := newAdapter(b, n)
	if !b.closed.Load() {
		b.wg.Add(1)
		go a.run()
	}
	return a
}

// Close stops publishing and reading; it is idempotent.
func (b *Broker) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.stop()
	b.wg.Wait()
	return nil
}

// enqueue hands a publish to the publisher, or drops it when the queue is
// full: a broadcast never waits for Redis.
func (b *Broker) enqueue(channel string, payload []byte) {
	if b.closed.Load() {
		return
	}
	select {
	case b.queue <- publication{channel, payload}:
	default:
		b.cfg.OnDropped("queue_full")
		b.warn.report("queue", "cross-node publish queue full; dropping", nil)
	}
}

// publishLoop sends the queue in pipelined rounds, in order.
func (b *Broker) publishLoop() {
	defer b.wg.Done()
	batch := make([]publication, 0, publishBatch)
	for {
		select {
		case <-b.ctx.Done():
			return
		case p := <-b.queue:
			batch = append(batch[:0], p)
		}
	drain:
		for len(batch) < cap(batch) {
			select {
			case p := <-b.queue:
				batch = append(batch, p)
			default:
				break drain
			}
		}
		b.flush(batch)
		clear(batch)
	}
}

func (b *Broker) flush(batch []publication) {
	ctx, cancel := context.WithTimeout(b.ctx, publishTimeout)
	defer cancel()
	pipe := b.cfg.Client.Pipeline()
	cmds := make([]*redis.IntCmd, len(batch))
	for i, p := range batch {
		cmds[i] = pipe.Publish(ctx, p.channel, p.payload)
	}
	_, err := pipe.Exec(ctx)
	if err == nil {
		return
	}
	// A failed dial leaves the commands without an error of their own:
	// then none of them was sent.
	failed := 0
	for _, c := range cmds {
		if c.Err() != nil {
			failed++
		}
	}
	if failed == 0 {
		failed = len(cmds)
	}
	for range failed {
		b.cfg.OnDropped("error")
	}
	b.warn.report("publish", "cross-node publish failed", err)
}

// publishNow publishes at once, for requests whose caller waits anyway.
func (b *Broker) publishNow(ctx context.Context, channel string, payload []byte) error {
	if err := b.cfg.Client.Publish(ctx, channel, payload).Err(); err != nil {
		b.cfg.OnDropped("error")
		return err
	}
	return nil
}

// restored reports a read that works again after failing.
func (b *Broker) restored() {
	b.cfg.Logger.Info("redis adapter: reading from Redis again")
	go b.cfg.OnRestored()
}

// pause waits before a read is retried; false once the broker stops.
func (b *Broker) pause() bool {
	t := time.NewTimer(retryPause)
	defer t.Stop()
	select {
	case <-b.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func randomUID() string {
	var buf [8]byte
	_, _ = rand.Read(buf[:])
	return hex.EncodeToString(buf[:])
}

// throttle logs a kind of warning at most once per logEvery, with how many
// were held back.
type throttle struct {
	log interface {
		Warn(msg string, args ...any)
	}
	mu   sync.Mutex
	last map[string]time.Time // guarded by mu
	held map[string]int       // guarded by mu
}

func (t *throttle) report(kind, msg string, err error) {
	if err != nil && errors.Is(err, context.Canceled) {
		return // shutting down
	}
	t.mu.Lock()
	if t.last == nil {
		t.last, t.held = map[string]time.Time{}, map[string]int{}
	}
	now := time.Now()
	if now.Sub(t.last[kind]) < logEvery {
		t.held[kind]++
		t.mu.Unlock()
		return
	}
	held := t.held[kind]
	t.last[kind], t.held[kind] = now, 0
	t.mu.Unlock()
	t.log.Warn("redis adapter: "+msg, "error", err, "suppressed", held)
}
