package redisadapter

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"paystatus/realtime/realtimetest"
	"paystatus/realtime/socketio"
)

const sharedRedis = "127.0.0.1:6379"

// needRedis returns a client of the shared test Redis, starting it when it
// is down.
func needRedis(t testing.TB) *redis.Client {
	t.Helper()
	up := func() bool {
		c, err := net.DialTimeout("tcp", sharedRedis, 200*time.Millisecond)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}
	if !up() {
		if out, err := exec.Command("redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no").CombinedOutput(); err != nil {
			t.Skipf("no Redis here and redis-server would not start: %v %s", err, out)
		}
		realtimetest.Eventually(t, 5*time.Second, "redis up", up)
	}
	c := redis.NewClient(&redis.Options{Addr: sharedRedis})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func prefix(t testing.TB) string {
	return "paystatus-test-" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()) + "-" + randomUID()[:8]
}

// node is one socketio server on a broker.
type node struct {
	b       *Broker
	io      *socketio.Server
	nsp     *socketio.Namespace
	dropped atomic.Int32

	mu      sync.Mutex
	remote  []seen // guarded by mu
	emitted []seen // guarded by mu
}

type seen struct {
	opts  socketio.BroadcastOptions
	event string
	args  []any
}

func (n *node) remotes() []seen {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]seen(nil), n.remote...)
}

func newNode(t testing.TB, client redis.UniversalClient, mode Mode, pfx string) *node {
	t.Helper()
	n := &node{}
	b, err := New(Config{Client: client, Mode: mode, Prefix: pfx, SessionTTL: time.Minute, OnDropped: func(string) { n.dropped.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	io, err := socketio.NewServer(socketio.Config{RecoveryWindow: time.Minute, Adapter: b.Factory, AdapterKeepsSessions: b.KeepsSessions()})
	if err != nil {
		t.Fatal(err)
	}
	n.b, n.io, n.nsp = b, io, io.Of("/")
	// The hook sees what crosses over without a client in the way.
	n.nsp.OnRemoteBroadcast = func(opts socketio.BroadcastOptions, event string, args []any) bool {
		n.mu.Lock()
		n.remote = append(n.remote, seen{opts, event, args})
		n.mu.Unlock()
		return true
	}
	n.nsp.OnServerSideEmit = func(event string, args []any) {
		n.mu.Lock()
		n.emitted = append(n.emitted, seen{event: event, args: args})
		n.mu.Unlock()
	}
	t.Cleanup(func() {
		_ = io.Shutdown(context.Background())
		_ = b.Close()
	})
	return n
}

// waitSubscribed waits until count nodes listen on the adapter's channel.
func waitSubscribed(t *testing.T, c *redis.Client, a socketio.Adapter, count int) {
	ad := a.(*adapter)
	ch := ad.requestChannel
	if ad.streams() {
		ch = ad.publicChannel
	}
	realtimetest.Eventually(t, 5*time.Second, "subscriptions", func() bool {
		m, err := c.PubSubNumSub(context.Background(), ch).Result()
		return err == nil && int(m[ch]) == count
	})
}

func TestConfigRejected(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = c.Close() })
	cases := []struct {
		name string
		cfg  Config
	}{
		{"no client", Config{}},
		{"unknown mode", Config{Client: c, Mode: "kafka"}},
		{"glob in prefix", Config{Client: c, Prefix: "a*"}},
		{"space in prefix", Config{Client: c, Prefix: "a b"}},
		{"negative queue", Config{Client: c, QueueSize: -1}},
		{"negative timeout", Config{Client: c, RequestTimeout: -time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
	b, err := New(Config{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.cfg.Mode != PubSub || b.cfg.Prefix != DefaultPrefix || b.cfg.SessionKeyPrefix != "socket.io:session:" || b.KeepsSessions() {
		t.Fatalf("defaults: %+v", b.cfg)
	}
}

// Broadcasts, server-side emits, fetches and acknowledged broadcasts cross
// between two nodes in both modes.
func TestTwoNodes(t *testing.T) {
	client := needRedis(t)
	for _, mode := range []Mode{PubSub, Streams} {
		t.Run(string(mode), func(t *testing.T) {
			pfx := prefix(t)
			t.Cleanup(func() { client.Del(context.Background(), pfx) })
			a, b := newNode(t, client, mode, pfx), newNode(t, client, mode, pfx)
			waitSubscribed(t, client, a.nsp.Adapter(), 2)

			payload := map[string]any{"orderId": "o1", "seq": 3, "nested": []any{"x", 1.5}}
			if err := a.nsp.Broadcast("order-o1", []string{"sid-x"}, "payment-status-update", payload); err != nil {
				t.Fatal(err)
			}
			realtimetest.Eventually(t, 5*time.Second, "broadcast on B", func() bool { return len(b.remotes()) == 1 })
			got := b.remotes()[0]
			if got.event != "payment-status-update" || len(got.opts.Rooms) != 1 || got.opts.Rooms[0] != "order-o1" || len(got.opts.Except) != 1 || got.opts.Except[0] != "sid-x" {
				t.Fatalf("B got %+v", got)
			}
			m, ok := got.args[0].(map[string]any)
			if !ok || m["orderId"] != "o1" {
				t.Fatalf("payload crossed as %#v", got.args[0])
			}
			if seq, _ := asInt(m["seq"]); seq != 3 {
				t.Fatalf("seq crossed as %#v", m["seq"])
			}
			if len(a.remotes()) != 0 {
				t.Fatalf("A heard its own broadcast: %+v", a.remotes())
			}

			if err := a.nsp.Adapter().ServerSideEmit("hello", []any{"fleet"}); err != nil {
				t.Fatal(err)
			}
			realtimetest.Eventually(t, 5*time.Second, "server-side emit on B", func() bool {
				b.mu.Lock()
				defer b.mu.Unlock()
				return len(b.emitted) == 1 && b.emitted[0].event == "hello" && b.emitted[0].args[0] == "fleet"
			})

			// B has no sockets, but it must answer: the fetch waits for it.
			socks, err := a.nsp.FetchSockets(context.Background(), socketio.BroadcastOptions{Rooms: []string{"order-o1"}})
			if err != nil || len(socks) != 0 {
				t.Fatalf("fetch = %v, %v", socks, err)
			}
			// The same for ids alone (SOCKETS in PubSub mode, a fetch in streams).
			ids, err := a.nsp.SocketIDs(context.Background(), []string{"order-o1"})
			if err != nil || len(ids) != 0 {
				t.Fatalf("socket ids = %v, %v", ids, err)
			}

			var counts atomic.Int32
			if err := a.nsp.Adapter().BroadcastWithAck(socketio.BroadcastOptions{Rooms: []string{"r"}}, "q", nil, 3*time.Second, func(n int) { counts.Add(1) }, func([]any) {}); err != nil {
				t.Fatal(err)
			}
			realtimetest.Eventually(t, 5*time.Second, "a count from each node", func() bool { return counts.Load() == 2 })
		})
	}
}

// A fetch fails with ErrTimeout when a node that counts as subscribed
// never answers, rather than hanging.
func TestFetchTimesOutOnSilentNode(t *testing.T) {
	client := needRedis(t)
	pfx := prefix(t)
	a := newNode(t, client, PubSub, pfx)
	silent := client.Subscribe(context.Background(), a.nsp.Adapter().(*adapter).requestChannel)
	defer silent.Close()
	waitSubscribed(t, client, a.nsp.Adapter(), 2)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := a.nsp.FetchSockets(ctx, socketio.BroadcastOptions{Rooms: []string{"r"}}); !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
}

// A session saved by one node is restored by another with the broadcasts
// it missed, once.
func TestStreamSessionAcrossNodes(t *testing.T) {
	client := needRedis(t)
	pfx := prefix(t)
	t.Cleanup(func() { client.Del(context.Background(), pfx) })
	a, b := newNode(t, client, Streams, pfx), newNode(t, client, Streams, pfx)
	aa, bb := a.nsp.Adapter().(*adapter), b.nsp.Adapter().(*adapter)
	offset := aa.xadd(socketio.BroadcastOptions{Rooms: []string{"r"}}, "seen", nil)
	if offset == "" {
		t.Fatal("xadd failed")
	}
	aa.PersistSession(socketio.Session{SID: "sid1", PID: "pid1", Rooms: []string{"r"}})
	aa.xadd(socketio.BroadcastOptions{Rooms: []string{"r"}}, "missed", []any{1})
	aa.xadd(socketio.BroadcastOptions{Rooms: []string{"other"}}, "not-for-it", nil)
	aa.xadd(socketio.BroadcastOptions{Rooms: []string{"r"}, Except: []string{"sid1"}}, "excepted", nil)
	aa.xadd(socketio.BroadcastOptions{}, "everyone", nil)

	cases := []struct {
		name, pid, offset string
	}{
		{"unknown pid", "nope", offset},
		{"malformed offset", "pid1", "0-0; DEL x"},
		{"unknown offset", "pid1", "1-1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := bb.RestoreSession(context.Background(), tc.pid, tc.offset); ok {
				t.Fatal("restored")
			}
		})
	}
	// The unknown-offset case took the session (GETDEL), as Node does; save
	// it again.
	aa.PersistSession(socketio.Session{SID: "sid1", PID: "pid1", Rooms: []string{"r"}})
	s, ok := bb.RestoreSession(context.Background(), "pid1", offset)
	if !ok {
		t.Fatal("not restored")
	}
	if s.SID != "sid1" || len(s.Rooms) != 1 || s.Rooms[0] != "r" || len(s.Missed) != 2 {
		t.Fatalf("session %+v", s)
	}
	if !strings.HasPrefix(s.Missed[0], `2["missed",1,"`) || !strings.HasPrefix(s.Missed[1], `2["everyone","`) {
		t.Fatalf("missed %q", s.Missed)
	}
	if _, ok := bb.RestoreSession(context.Background(), "pid1", offset); ok {
		t.Fatal("a session was restored twice")
	}
}

// With Redis away the node keeps serving its own sockets: broadcasts
// return without error and the lost publishes are counted.
func TestRedisAwayDropsAndCounts(t *testing.T) {
	for _, mode := range []Mode{PubSub, Streams} {
		t.Run(string(mode), func(t *testing.T) {
			dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
			t.Cleanup(func() { _ = dead.Close() })
			n := newNode(t, dead, mode, prefix(t))
			for i := range 3 {
				if err := n.nsp.Broadcast("r", nil, "e", i); err != nil {
					t.Fatal(err)
				}
			}
			realtimetest.Eventually(t, 5*time.Second, "drops counted", func() bool { return n.dropped.Load() >= 3 })
			if _, err := n.nsp.FetchSockets(context.Background(), socketio.BroadcastOptions{}); err == nil {
				t.Fatal("a fetch across nodes succeeded without Redis")
			}
		})
	}
}

// A full queue drops instead of blocking the broadcaster.
func TestFullQueueDrops(t *testing.T) {
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = dead.Close() })
	var full atomic.Int32
	b, err := New(Config{Client: dead, QueueSize: 1, OnDropped: func(r string) {
		if r == "queue_full" {
			full.Add(1)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	done := make(chan struct{})
	go func() {
		for range 1000 {
			b.enqueue("c", []byte("x"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("enqueue blocked")
	}
	if full.Load() == 0 {
		t.Fatal("no queue_full drop counted")
	}
}

// A node that starts while Redis is down joins the fleet once Redis
// answers: its subscriptions are made then, pattern included.
func TestNodeStartedBeforeRedis(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	for _, mode := range []Mode{PubSub, Streams} {
		t.Run(string(mode), func(t *testing.T) {
			client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
			t.Cleanup(func() { _ = client.Close() })
			pfx := prefix(t)
			a := newNode(t, client, mode, pfx)
			time.Sleep(300 * time.Millisecond) // let its first subscribe fail
			srv := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no")
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
			realtimetest.Eventually(t, 5*time.Second, "private redis up", func() bool { return client.Ping(context.Background()).Err() == nil })
			b := newNode(t, client, mode, pfx)
			waitSubscribed(t, client, a.nsp.Adapter(), 2)
			// Streams readers start at the stream's end: retry until B reads.
			realtimetest.Eventually(t, 10*time.Second, "B's broadcast to reach A", func() bool {
				_ = b.nsp.Broadcast("r", nil, "late", 1)
				return len(a.remotes()) > 0
			})
			if got := a.remotes()[0]; got.event != "late" {
				t.Fatalf("A got %+v", got)
			}
		})
	}
}
