package socketio

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"paystatus/realtime/realtimetest"
)

func TestJSONDepthWithin(t *testing.T) {
	for _, tc := range []struct {
		data string
		max  int
		ok   bool
	}{
		{`["a",1]`, 1, true},
		{`["a",[1]]`, 1, false},
		{`["a",{"k":[1]}]`, 3, true},
		{`["a",{"k":[1]}]`, 2, false},
		{`["[[[[[[", "{{{{"]`, 1, true}, // brackets inside strings do not count
		{`["\"[[[[", 1]`, 1, true},      // nor after an escaped quote
		{strings.Repeat("[", 100) + strings.Repeat("]", 100), 8, false},
		{``, 0, true},
	} {
		if got := jsonDepthWithin(tc.data, tc.max); got != tc.ok {
			t.Errorf("jsonDepthWithin(%q, %d) = %v, want %v", tc.data, tc.max, got, tc.ok)
		}
	}
}

func FuzzJSONDepthWithin(f *testing.F) {
	f.Add(`["a",{"k":[1,"]"]}]`, 2)
	f.Fuzz(func(t *testing.T, data string, max int) {
		if max < 0 || max > 64 {
			return
		}
		// Depth never exceeds the count of opening brackets.
		if strings.Count(data, "[")+strings.Count(data, "{") <= max && !jsonDepthWithin(data, max) {
			t.Fatalf("refused %q with fewer brackets than %d", data, max)
		}
	})
}

// TestOversizeAndDeepEventsCloseBeforeDecoding: an event beyond the size or
// nesting bound closes the connection and never reaches the handler.
func TestOversizeAndDeepEventsCloseBeforeDecoding(t *testing.T) {
	srv, ts := startIO(t, Config{MaxEventBytes: 1024, MaxEventDepth: 4})
	a := newApp(srv.Of("/"))
	for name, p := range map[string]string{
		"deep":     `2["echo",` + strings.Repeat("[", 50) + strings.Repeat("]", 50) + `]`,
		"large":    `2["echo","` + strings.Repeat("x", 2000) + `"]`,
		"deep ack": `31` + strings.Repeat("[", 50) + strings.Repeat("]", 50),
	} {
		t.Run(name, func(t *testing.T) {
			cl := realtimetest.DialSocketIO(t, ts.URL, 4)
			sid := cl.Connect("/", "")["sid"]
			a.socket(sid)
			cl.Send(p)
			cl.ExpectClosed()
		})
	}
	if log := a.eventLog(); len(log) != 0 {
		t.Fatalf("events reached the handler: %v", log)
	}
	// Within the bounds, events flow.
	cl := realtimetest.DialSocketIO(t, ts.URL, 4)
	a.socket(cl.Connect("/", "")["sid"])
	cl.Send(`21["echo",[[1]]]`)
	if got := cl.Recv(); got != `31[[[1]]]` {
		t.Fatalf("ack %q", got)
	}
}

// admitting is a handler whose AdmitEvent refuses everything after the
// first n events.
type admitting struct {
	HandlerFuncs
	left, events atomic.Int32
}

func (h *admitting) AdmitEvent() bool { return h.left.Add(-1) >= 0 }

// TestAdmitEventRunsBeforeDecoding: a refused event is dropped without
// being decoded, so even a malformed one does not reach the decoder (which
// would close the connection).
func TestAdmitEventRunsBeforeDecoding(t *testing.T) {
	srv, ts := startIO(t, Config{})
	h := &admitting{}
	h.left.Store(1)
	h.Event = func(string, []any, AckFunc) { h.events.Add(1) }
	ready := make(chan *Socket, 1)
	srv.Of("/").OnConnection = func(s *Socket) { s.Handler = h; ready <- s }
	cl := realtimetest.DialSocketIO(t, ts.URL, 4)
	cl.Connect("/", "")
	sock := <-ready
	cl.Send(`2["first"]`)
	realtimetest.Eventually(t, 5*time.Second, `h.events.Load() == 1`, func() bool { return h.events.Load() == 1 })
	cl.Send(`2["malformed"`) // refused by AdmitEvent, so never parsed
	cl.Send(`2["third"]`)
	realtimetest.Eventually(t, 5*time.Second, `h.left.Load() <= -2`, func() bool { return h.left.Load() <= -2 })
	if err := sock.Emit("still-open"); err != nil {
		t.Fatal(err)
	}
	if got := cl.Recv(); got != `2["still-open"]` {
		t.Fatalf("after refused events: %q, want the server's event", got)
	}
	if n := h.events.Load(); n != 1 {
		t.Fatalf("%d events reached the handler, want 1", n)
	}
}
