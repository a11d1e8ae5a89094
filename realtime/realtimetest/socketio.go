package realtimetest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Socket.IO packets ride in Engine.IO messages ("4" + packet); the packets
// below are text packets of the root or a named namespace.

// Send sends one Socket.IO packet: "21[...]" goes out as "421[...]".
func (c *Client) Send(p string) { c.t.Helper(); c.WriteText("4" + p) }

// Recv returns the next Socket.IO packet, failing the test on any other
// Engine.IO packet.
func (c *Client) Recv() string {
	c.t.Helper()
	p := c.ReadText()
	if !strings.HasPrefix(p, "4") {
		c.t.Fatalf("engine packet %q, want a message", p)
	}
	return p[1:]
}

// Emit sends an event without an acknowledgement id to the root namespace.
func (c *Client) Emit(event string, args ...any) {
	c.t.Helper()
	b, err := json.Marshal(append([]any{event}, args...))
	if err != nil {
		c.t.Fatal(err)
	}
	c.Send("2" + string(b))
}

// Connect joins namespace nsp ("/" or "/name") with auth (a JSON object or
// "") and returns the connect reply's data, which must hold a sid.
func (c *Client) Connect(nsp, auth string) map[string]string {
	c.t.Helper()
	prefix := "0"
	if nsp != "/" {
		prefix += nsp + ","
	}
	c.Send(prefix + auth)
	reply := c.Recv()
	if !strings.HasPrefix(reply, prefix+"{") {
		c.t.Fatalf("connect reply %q, want %s{...}", reply, prefix)
	}
	var data map[string]string
	if err := json.Unmarshal([]byte(reply[len(prefix):]), &data); err != nil {
		c.t.Fatalf("connect reply %q: %v", reply, err)
	}
	if data["sid"] == "" {
		c.t.Fatalf("connect reply %q has no sid", reply)
	}
	return data
}

// EventArgs decodes the array of an event or ack packet p after its
// prefix (type, namespace and id, e.g. "2" or "3/custom,7").
func EventArgs(t testing.TB, p, prefix string) []any {
	t.Helper()
	if !strings.HasPrefix(p, prefix) {
		t.Fatalf("packet %q, want prefix %q", p, prefix)
	}
	var args []any
	if err := json.Unmarshal([]byte(p[len(prefix):]), &args); err != nil {
		t.Fatalf("packet %q: %v", p, err)
	}
	return args
}

// EventTimeout bounds NextEvent's wait: an event may follow a commit or a
// broadcast across the fleet, so it gets longer than a plain read.
const EventTimeout = 10 * time.Second

// Event is a root-namespace event as Listen queues it: its name and its
// first argument, when that is an object.
type Event struct {
	Name string
	Data map[string]any
}

// Listen hands the connection to a goroutine that answers pings,
// acknowledges (with no arguments) every event that asks for it and queues
// the root namespace's events for NextEvent; other packets are dropped.
// After Listen the test only writes.
func (c *Client) Listen() {
	c.events = make(chan Event, 64)
	_ = c.SetReadDeadline(time.Time{}) // events come when the server sends them
	go func() {
		defer close(c.events)
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				c.err = err
				return
			}
			p := string(msg)
			if p == "2" {
				_ = c.write(websocket.TextMessage, []byte("3"))
				continue
			}
			if !strings.HasPrefix(p, "42") {
				continue
			}
			body := p[2:]
			ackID := body[:len(body)-len(strings.TrimLeft(body, "0123456789"))]
			var arr []json.RawMessage
			if json.Unmarshal([]byte(body[len(ackID):]), &arr) != nil || len(arr) == 0 {
				continue
			}
			var ev Event
			_ = json.Unmarshal(arr[0], &ev.Name)
			if len(arr) > 1 {
				_ = json.Unmarshal(arr[1], &ev.Data)
			}
			if ackID != "" {
				_ = c.write(websocket.TextMessage, []byte("43"+ackID+"[]"))
			}
			c.events <- ev
		}
	}()
}

// NextEvent returns the next event Listen queued, failing the test, with
// what it waited for, when the connection ends or none comes within
// EventTimeout.
func (c *Client) NextEvent(what string) Event {
	c.t.Helper()
	select {
	case ev, ok := <-c.events:
		if !ok {
			c.t.Fatalf("connection closed while waiting for %s: %v", what, c.err)
		}
		return ev
	case <-time.After(EventTimeout):
		c.t.Fatalf("timed out waiting for %s", what)
	}
	return Event{}
}
