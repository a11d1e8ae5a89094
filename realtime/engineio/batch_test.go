package engineio

import (
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"paystatus/realtime/realtimetest"
)

// TestBatchedSends runs each case with the io_uring ring and with a system
// call per socket. The ring cases skip where io_uring cannot be set up, so a
// pass of them means the batches went through io_uring.
func TestBatchedSends(t *testing.T) {
	for _, mode := range []struct {
		name   string
		noRing bool
	}{{"ring", false}, {"one write per socket", true}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Run("every peer gets the frame, polling ones too", func(t *testing.T) {
				rec := newRecorder()
				srv, ts := startBatchServer(t, Config{AllowEIO3: true, PingInterval: time.Minute, NoSendRing: mode.noRing}, rec)
				var conns []*realtimetest.Client
				var sids []string
				for i := 0; i < 20; i++ {
					c := realtimetest.Dial(t, wsURL(ts, 3+i%2, ""), nil)
					conns = append(conns, c)
					sids = append(sids, c.Open().SID)
				}
				polled, _ := pollOpen(t, ts, 4)

				msg := NewMessage("batched")
				b := srv.NewBatch()
				for _, sid := range append(sids, polled.SID) {
					if err := rec.session(sid).SendIn(b, msg); err != nil {
						t.Fatal(err)
					}
				}
				b.Flush()
				for i, c := range conns {
					if got := c.ReadText(); got != "4batched" {
						t.Fatalf("peer %d got %q", i, got)
					}
				}
				if got := poll(t, ts, 4, polled.SID); fmt.Sprint(got) != "[4batched]" {
					t.Fatalf("polling peer got %q", got)
				}
			})

			t.Run("a frame sent before the flush waits behind the batched one", func(t *testing.T) {
				rec := newRecorder()
				srv, ts := startBatchServer(t, Config{PingInterval: time.Minute, NoSendRing: mode.noRing}, rec)
				c := realtimetest.Dial(t, wsURL(ts, 4, ""), nil)
				sess := rec.session(c.Open().SID)
				b := srv.NewBatch()
				if err := sess.SendIn(b, NewMessage("first")); err != nil {
					t.Fatal(err)
				}
				// Sent while the batch holds the connection: queued behind it.
				if err := sess.SendText("second"); err != nil {
					t.Fatal(err)
				}
				b.Flush()
				for _, want := range []string{"4first", "4second"} {
					if got := c.ReadText(); got != want {
						t.Fatalf("got %q, want %q", got, want)
					}
				}
			})

			t.Run("what a full socket does not take is queued and arrives in order", func(t *testing.T) {
				rec := newRecorder()
				srv, ts := startBatchServer(t, Config{PingInterval: time.Minute, NoSendRing: mode.noRing, MaxQueuedBytes: 64 << 20}, rec)
				c := realtimetest.Dial(t, wsURL(ts, 4, ""), nil)
				sess := rec.session(c.Open().SID)
				// Batches of 256 KiB frames, the client not reading: the socket
				// fills, so later batched sends are short or refused.
				const frames = 40
				for i := 0; i < frames; i++ {
					b := srv.NewBatch()
					if err := sess.SendIn(b, NewMessage(fmt.Sprintf("%03d", i)+strings.Repeat("x", 256<<10))); err != nil {
						t.Fatal(err)
					}
					b.Flush()
				}
				_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
				for i := 0; i < frames; i++ {
					_, data, err := c.ReadMessage()
					if err != nil {
						t.Fatalf("frame %d: %v", i, err)
					}
					if want := fmt.Sprintf("4%03d", i); !strings.HasPrefix(string(data), want) || len(data) != 4+256<<10 {
						t.Fatalf("frame %d: got %q… (%d bytes), want %s…", i, data[:min(len(data), 8)], len(data), want)
					}
				}
			})

			t.Run("the unsent rest of a batched frame goes before frames queued meanwhile", func(t *testing.T) {
				rec := newRecorder()
				srv, ts := startBatchServer(t, Config{PingInterval: time.Minute, NoSendRing: mode.noRing, MaxQueuedBytes: 64 << 20}, rec)
				c := realtimetest.Dial(t, wsURL(ts, 4, ""), nil)
				c.SetReadLimit(64 << 20)
				sess := rec.session(c.Open().SID)
				// 16 MiB is more than loopback's socket buffers take at once,
				// so the batched write is short and the rest is queued.
				big := "A" + strings.Repeat("a", 16<<20)
				b := srv.NewBatch()
				if err := sess.SendIn(b, NewMessage(big)); err != nil {
					t.Fatal(err)
				}
				if err := sess.SendText("B"); err != nil {
					t.Fatal(err)
				}
				b.Flush()
				_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
				_, first, err := c.ReadMessage()
				if err != nil {
					t.Fatal(err)
				}
				if string(first) != "4"+big {
					t.Fatalf("first frame: %d bytes starting %q, want the 16 MiB frame", len(first), first[:min(len(first), 8)])
				}
				if got := c.ReadText(); got != "4B" {
					t.Fatalf("second frame %q", got)
				}
			})

			t.Run("a session closed before the flush is closed, and the flush is harmless", func(t *testing.T) {
				rec := newRecorder()
				srv, ts := startBatchServer(t, Config{PingInterval: time.Minute, NoSendRing: mode.noRing}, rec)
				c := realtimetest.Dial(t, wsURL(ts, 4, ""), nil)
				sid := c.Open().SID
				sess := rec.session(sid)
				b := srv.NewBatch()
				if err := sess.SendIn(b, NewMessage("late")); err != nil {
					t.Fatal(err)
				}
				sess.Close("server closing")
				b.Flush()
				if _, ok := rec.closeReason(sid); !ok {
					realtimetest.Eventually(t, 5*time.Second, "the session's close", func() bool { _, ok := rec.closeReason(sid); return ok })
				}
				// The peer sees the connection end; whether "late" arrived
				// first does not matter, but nothing may hang.
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				for {
					if _, _, err := c.ReadMessage(); err != nil {
						if strings.Contains(err.Error(), "timeout") {
							t.Fatal("connection still open after close and flush")
						}
						break
					}
				}
				if err := sess.SendIn(srv.NewBatch(), NewMessage("after")); err == nil {
					t.Fatal("SendIn on a closed session succeeded")
				}
			})
		})
	}
}

// startBatchServer starts a server for one mode of TestBatchedSends. A ring
// case is skipped, with the reason, where io_uring cannot be set up, and
// fails if the server dropped its ring during the case (a ring send failed
// and the batch fell back to one write per socket): either way a ring case
// that passes has exercised io_uring.
func startBatchServer(t *testing.T, cfg Config, rec *recorder) (*Server, *httptest.Server) {
	t.Helper()
	if !cfg.NoSendRing {
		ring, err := newSendRing()
		if err != nil {
			t.Skipf("io_uring is not available here (%v): the ring case cannot run", err)
		}
		ring.close()
	}
	srv, ts := startServer(t, cfg, rec)
	hasRing := srv.ring.Load() != nil
	switch {
	case cfg.NoSendRing && hasRing:
		t.Fatal("NoSendRing set, yet the server has a ring")
	case !cfg.NoSendRing && !hasRing:
		t.Fatal("io_uring can be set up here, yet the server has no ring")
	}
	if !cfg.NoSendRing {
		// Registered after startServer's clean-up, so it runs before the
		// server's shutdown releases the ring.
		t.Cleanup(func() {
			if srv.ring.Load() == nil {
				t.Error("the server dropped its ring during the case: the batch fell back to one write per socket")
			}
		})
	}
	return srv, ts
}

func TestOrderByDescriptor(t *testing.T) {
	shuffled := func(fds ...int) []int {
		rand.New(rand.NewPCG(1, 2)).Shuffle(len(fds), func(i, j int) { fds[i], fds[j] = fds[j], fds[i] })
		return fds
	}
	dense := make([]int, 500)
	for i := range dense {
		dense[i] = 7 + i
	}
	for _, tc := range []struct {
		name string
		fds  []int
	}{
		{"none", nil},
		{"one", []int{9}},
		{"dense", shuffled(dense...)},
		{"dense with gaps", shuffled(10, 12, 13, 17, 11, 19, 14)},
		{"sparse", shuffled(5, 90000, 17, 40000, 6)},
		{"a descriptor twice keeps both", shuffled(8, 9, 8, 10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &Batch{}
			// Twice, as a pooled batch is reused with its scratch space.
			for round := 0; round < 2; round++ {
				for i, fd := range tc.fds {
					b.items = append(b.items, batchItem{fd: fd, frame: []byte(strconv.Itoa(i))})
				}
				b.orderByDescriptor()
				if len(b.items) != len(tc.fds) {
					t.Fatalf("round %d: %d items after ordering, want %d", round, len(b.items), len(tc.fds))
				}
				seen := map[string]bool{}
				for i, it := range b.items {
					if i > 0 && b.items[i-1].fd > it.fd {
						t.Fatalf("round %d: descriptor %d before %d", round, b.items[i-1].fd, it.fd)
					}
					idx, _ := strconv.Atoi(string(it.frame))
					if tc.fds[idx] != it.fd || seen[string(it.frame)] {
						t.Fatalf("round %d: item %q (fd %d) is not one of the originals", round, it.frame, it.fd)
					}
					seen[string(it.frame)] = true
				}
				clear(b.items)
				b.items = b.items[:0]
			}
		})
	}
}

func BenchmarkOrderByDescriptor(b *testing.B) {
	const sockets = 10000
	order := rand.New(rand.NewPCG(3, 4)).Perm(sockets)
	batch := &Batch{}
	b.ReportAllocs()
	for b.Loop() {
		for _, i := range order {
			batch.items = append(batch.items, batchItem{fd: 20 + i})
		}
		batch.orderByDescriptor()
		batch.items = batch.items[:0]
	}
}

// A collection empties sync.Pool; the server's kept batch, with the
// buffers a large room needed, is not made again after one.
func TestFlushedBatchOutlivesCollections(t *testing.T) {
	srv := &Server{}
	b := srv.NewBatch()
	b.Grow(1000)
	b.Flush()
	runtime.GC()
	runtime.GC()
	again := srv.NewBatch()
	defer again.Flush()
	if again != b || cap(again.items) < 1000 {
		t.Fatalf("after two collections NewBatch gave %p with room for %d, want the flushed %p with room for 1000", again, cap(again.items), b)
	}
}
