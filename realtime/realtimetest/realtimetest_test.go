package realtimetest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fatalTB records the first Fatalf and ends the goroutine, as testing does.
type fatalTB struct {
	testing.TB
	msg chan string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg <- fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fatalOf runs fn with a fatalTB and returns its Fatalf message, or "".
func fatalOf(t *testing.T, fn func(testing.TB)) string {
	t.Helper()
	f := &fatalTB{TB: t, msg: make(chan string, 1)}
	done := make(chan struct{})
	go func() { defer close(done); fn(f) }()
	<-done
	select {
	case m := <-f.msg:
		return m
	default:
		return ""
	}
}

func TestEventually(t *testing.T) {
	var polls atomic.Int32
	if msg := fatalOf(t, func(tb testing.TB) {
		Eventually(tb, time.Second, "the third poll", func() bool { return polls.Add(1) == 3 })
	}); msg != "" || polls.Load() != 3 {
		t.Fatalf("a condition met on the third poll: %q after %d polls", msg, polls.Load())
	}
	start := time.Now()
	msg := fatalOf(t, func(tb testing.TB) { Eventually(tb, 20*time.Millisecond, "never", func() bool { return false }) })
	if !strings.Contains(msg, "waiting for never") || time.Since(start) < 20*time.Millisecond {
		t.Fatalf("a condition never met: %q after %v", msg, time.Since(start))
	}
}

func TestParseOpen(t *testing.T) {
	o := ParseOpen(t, `0{"sid":"s1","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000}`)
	if o.SID != "s1" || fmt.Sprint(o.Upgrades) != "[websocket]" || o.PingInterval != 25000 || o.PingTimeout != 20000 || o.MaxPayload != nil {
		t.Fatalf("open packet %+v", o)
	}
	for _, bad := range []string{`40{"sid":"x"}`, `0{"sid":""}`, `0{`} {
		if msg := fatalOf(t, func(tb testing.TB) { ParseOpen(tb, bad) }); msg == "" {
			t.Errorf("ParseOpen(%q) passed", bad)
		}
	}
}

// TestSocketIOClient runs the client against a scripted server: it must
// connect, answer the ping it reads while waiting for the reply, and,
// listening, ack the event that asks.
func TestSocketIOClient(t *testing.T) {
	got := make(chan string, 8)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/socket.io/" || r.URL.Query().Get("EIO") != "4" {
			http.Error(w, "wrong endpoint", http.StatusBadRequest)
			return
		}
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for _, p := range []string{`0{"sid":"e1"}`, "2"} {
			_ = c.WriteMessage(websocket.TextMessage, []byte(p))
		}
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			got <- string(b)
			switch string(b) {
			case "40":
				_ = c.WriteMessage(websocket.TextMessage, []byte(`40{"sid":"s1"}`))
			case `42["go"]`:
				_ = c.WriteMessage(websocket.TextMessage, []byte(`427["news",{"n":1}]`))
			}
		}
	}))
	defer ts.Close()

	c := DialSocketIO(t, ts.URL, 4)
	if sid := c.Connect("/", "")["sid"]; sid != "s1" {
		t.Fatalf("connect sid %q", sid)
	}
	c.Listen()
	c.Emit("go")
	if ev := c.NextEvent("news"); ev.Name != "news" || ev.Data["n"] != 1.0 {
		t.Fatalf("event %+v", ev)
	}
	var seen []string
	Eventually(t, 5*time.Second, "the ack", func() bool {
		select {
		case p := <-got:
			seen = append(seen, p)
		default:
		}
		return len(seen) == 4
	})
	if fmt.Sprint(seen) != `[40 3 42["go"] 437[]]` {
		t.Fatalf("server read %q", seen)
	}
}
