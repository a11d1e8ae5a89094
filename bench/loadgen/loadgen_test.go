package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseSIOEvent(t *testing.T) {
	cases := []struct {
		in    string
		ack   int64
		event string
		arg   string
	}{
		{`2["payment-status-update",{"orderId":"a","seq":1}]`, -1, "payment-status-update", `{"orderId":"a","seq":1}`},
		{`217["payment-status-update",{"orderId":"a","seq":2}]`, 17, "payment-status-update", `{"orderId":"a","seq":2}`},
		{`2/admin,5["x",1,2]`, 5, "x", `1`},
		{`2[ "connection-test" , {"timestamp":12} ]`, -1, "connection-test", `{"timestamp":12}`},
		{`2["no-args"]`, -1, "no-args", ``},
		{`2["q\"uote",true]`, -1, `q"uote`, `true`},
	}
	for _, c := range cases {
		p, err := parseSIO([]byte(c.in))
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if p.Type != sioEvent || p.AckID != c.ack || p.Event != c.event || string(p.Arg) != c.arg {
			t.Errorf("%s: got type %c ack %d event %q arg %q", c.in, p.Type, p.AckID, p.Event, p.Arg)
		}
	}
}

func TestParseSIOOther(t *testing.T) {
	p, err := parseSIO([]byte(`0{"sid":"abc"}`))
	if err != nil || p.Type != sioConnect || string(p.Data) != `{"sid":"abc"}` {
		t.Fatalf("connect: %+v %v", p, err)
	}
	p, err = parseSIO([]byte(`4{"message":"nope"}`))
	if err != nil || p.Type != sioConnectError {
		t.Fatalf("connect error: %+v %v", p, err)
	}
	for _, bad := range []string{``, `2`, `2{"a":1}`, `2[1,2]`, `2["open`, `2["a" 1]`, `2/ns`} {
		if _, err := parseSIO([]byte(bad)); err == nil {
			t.Errorf("%q: expected an error", bad)
		}
	}
}

func TestEncode(t *testing.T) {
	b, err := encodeEvent("join-order", map[string]string{"orderId": "o1", "token": "t"}, -1)
	if err != nil || string(b) != `42["join-order",{"orderId":"o1","token":"t"}]` {
		t.Fatalf("event: %s %v", b, err)
	}
	b, err = encodeEvent("x", 1, 3)
	if err != nil || string(b) != `423["x",1]` {
		t.Fatalf("event with ack: %s %v", b, err)
	}
	b, err = encodeAck(42, map[string]any{"received": true})
	if err != nil || string(b) != `4342[{"received":true}]` {
		t.Fatalf("ack: %s %v", b, err)
	}
}

func TestWSURL(t *testing.T) {
	got, err := wsURL("http://127.0.0.1:8080/")
	if err != nil || got != "ws://127.0.0.1:8080/socket.io/?EIO=4&transport=websocket" {
		t.Fatalf("%s %v", got, err)
	}
}

func TestParseGoroutines(t *testing.T) {
	in := "# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines_x 9\ngo_goroutines 1234\n"
	n, ok := parseGoroutines(strings.NewReader(in))
	if !ok || n != 1234 {
		t.Fatalf("got %d %v", n, ok)
	}
	if _, ok := parseGoroutines(strings.NewReader("process_open_fds 3\n")); ok {
		t.Fatal("found a gauge that is not there")
	}
}

func TestPercentile(t *testing.T) {
	v := []int64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	sortInt64(v)
	for _, c := range []struct {
		p    float64
		want int64
	}{{50, 5}, {99, 10}, {100, 10}, {0, 1}, {10, 1}, {11, 2}} {
		if got := percentile(v, c.p); got != c.want {
			t.Errorf("p%g = %d, want %d", c.p, got, c.want)
		}
	}
	if percentile(nil, 50) != 0 {
		t.Error("empty input")
	}
}

func TestProcReadings(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	rss, err := procRSS(os.Getpid())
	if err != nil || rss <= 0 {
		t.Fatalf("rss %d %v", rss, err)
	}
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/proc/self/task/" + strconv.Itoa(os.Getpid()) + "/schedstat"); err == nil {
		if _, err := procRunqueueWait(os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOnUpdateDedupes(t *testing.T) {
	set := &clientSet{sched: make([]atomic.Int64, 1), lat: make([]atomic.Int64, 1)}
	var sent []string
	failWrites := false
	c := &client{idx: 0, orderID: "o1", run: set, w: writerFunc(func(op byte, b []byte) error {
		if op != opText {
			t.Errorf("opcode %d, want a text frame", op)
		}
		if failWrites {
			return errors.New("write failed")
		}
		sent = append(sent, string(b))
		return nil
	})}
	set.sched[0].Store(1)

	c.onUpdate(statusUpdate{OrderID: "o1", Status: "processing", Seq: 1}, -1, 10)
	c.onUpdate(statusUpdate{OrderID: "o1", Status: "completed", Seq: 2}, 7, 20)
	c.onUpdate(statusUpdate{OrderID: "o1", Status: "completed", Seq: 2}, 8, 30)   // re-sent after our ack
	c.onUpdate(statusUpdate{OrderID: "o1", Status: "processing", Seq: 1}, -1, 40) // plain duplicate
	if got := set.updates.Load(); got != 2 {
		t.Errorf("updates = %d, want 2", got)
	}
	if got := set.terminal.Load(); got != 1 {
		t.Errorf("terminal = %d, want 1", got)
	}
	if got := set.lat[0].Load(); got != 19 {
		t.Errorf("latency = %d, want 19 (first receipt)", got)
	}
	if set.rawDups.Load() != 2 || set.dups.Load() != 2 {
		t.Errorf("raw %d dups %d, want 2 and 2", set.rawDups.Load(), set.dups.Load())
	}
	if len(sent) != 2 || !strings.HasPrefix(sent[0], "437[") || !strings.HasPrefix(sent[1], "438[") {
		t.Errorf("acks sent: %q", sent)
	}

	// A retry of an update whose ack could not be written is not a duplicate.
	failWrites = true
	c.onUpdate(statusUpdate{OrderID: "o1", Status: "failed", Seq: 3}, 9, 50)
	failWrites = false
	c.onUpdate(statusUpdate{OrderID: "o1", Status: "failed", Seq: 3}, 10, 60)
	if set.rawDups.Load() != 3 || set.dups.Load() != 2 {
		t.Errorf("after unacked retry: raw %d dups %d, want 3 and 2", set.rawDups.Load(), set.dups.Load())
	}
	c.onUpdate(statusUpdate{OrderID: "other", Status: "failed", Seq: 9}, -1, 70)
	if set.wrongOrder.Load() != 1 {
		t.Errorf("wrong order not noticed")
	}
}

func TestReportTable(t *testing.T) {
	a := &Result{Server: "Go"}
	b := &Result{Server: "Node"}
	a.add("e2e", "receipt latency p50", "ms", 2, true)
	b.add("e2e", "receipt latency p50", "ms", 4, true)
	a.add("fanout", "lost deliveries", "", 1, false)
	b.add("fanout", "lost deliveries", "", 0, true)
	a.addMissing("idle", "goroutines per connection", "")
	var out bytes.Buffer
	printTable(&out, a, b)
	s := out.String()
	for _, want := range []string{"receipt latency p50 (ms)", "0.50", "1*", "n/a", "does not count"} {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
}

// writerFunc records or fails the frames a client sends.
type writerFunc func(op byte, payload []byte) error

func (f writerFunc) writeFrame(op byte, payload []byte) error { return f(op, payload) }

func TestWriteCallbackLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "e2e.log")
	rows := []callbackTimes{{receipt: 250000, answered: 300000, written: 40000}, {}, {receipt: 7, answered: 8, written: 9}}
	start := time.Unix(1700000000, 5)
	if err := writeCallbackLog(path, start, rows); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "# first callback scheduled at 1700000000000000005 ns since the epoch\n# index receipt_ns http_ns written_ns\n0 250000 300000 40000\n1 0 0 0\n2 7 8 9\n"
	if string(got) != want {
		t.Fatalf("log:\n%s\nwant:\n%s", got, want)
	}
	if err := writeCallbackLog(filepath.Join(t.TempDir(), "no", "such", "dir"), start, rows); err == nil {
		t.Fatal("no error for a file that cannot be created")
	}
}

func TestSinceWritten(t *testing.T) {
	load := func(vals ...int64) []atomic.Int64 {
		out := make([]atomic.Int64, len(vals))
		for i, v := range vals {
			out[i].Store(v)
		}
		return out
	}
	cases := []struct {
		name    string
		lat     []int64 // by client
		targets []int   // callback k went to client targets[k]
		written []int64 // by callback
		want    []int64
	}{
		{"each receipt less its own write", []int64{900, 500}, []int{1, 0}, []int64{100, 300}, []int64{400, 600}},
		{"lost receipt or unwritten callback left out", []int64{0, 500, 700}, []int{0, 1, 2}, []int64{100, 0, 200}, []int64{500}},
		{"a receipt read before the write returned counts as zero", []int64{100}, []int{0}, []int64{150}, []int64{0}},
		{"clients without a callback ignored", []int64{800, 600}, []int{1}, []int64{100}, []int64{500}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := sinceWritten(load(c.lat...), c.targets, load(c.written...))
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("got %v, want %v", got, c.want)
				}
			}
		})
	}
}
