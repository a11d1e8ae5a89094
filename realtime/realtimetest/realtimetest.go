// Package realtimetest is the test support shared by the realtime packages
// and the server, as net/http/httptest is for net/http: a wire client that
// speaks Engine.IO 3 and 4 and Socket.IO over a websocket, and Eventually.
//
// Only _test.go files import it. It must not import the engineio or
// socketio packages: their in-package tests import it, and an import of
// theirs here would be a cycle.
package realtimetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// ReadTimeout bounds every read the client makes on the test's behalf.
const ReadTimeout = 5 * time.Second

// Eventually polls cond until it holds, and fails the test naming what it
// waited for once timeout has passed.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// OpenPacket is an Engine.IO open packet's JSON. MaxPayload is nil when the
// packet has none, as in protocol 3.
type OpenPacket struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   *int     `json:"maxPayload"`
}

// ParseOpen decodes an open packet ("0{...}"), which must carry a sid.
func ParseOpen(t testing.TB, p string) OpenPacket {
	t.Helper()
	if !strings.HasPrefix(p, "0") {
		t.Fatalf("packet %q is not an open packet", p)
	}
	var o OpenPacket
	if err := json.Unmarshal([]byte(p[1:]), &o); err != nil {
		t.Fatalf("open packet %q: %v", p, err)
	}
	if o.SID == "" {
		t.Fatalf("open packet %q has no sid", p)
	}
	return o
}

// Client is one websocket connection. The embedded connection stays
// available for what a test does below the Engine.IO layer (control frames,
// binary frames, dropping the TCP connection); its reads and the client's
// must not overlap, nor may they run once Listen has started, after which
// the test writes only through the client.
type Client struct {
	*websocket.Conn
	t testing.TB

	// AnswerPings makes ReadText answer each Engine.IO ping ("2") with a
	// pong ("3") and read on, as a real client does; unset, a test sees
	// the pings itself.
	AnswerPings bool

	wmu    sync.Mutex // serialises writes: Listen's goroutine writes too
	events chan Event // set by Listen
	err    error      // why the connection ended; read once events is closed
}

// Dial opens a websocket to url with the request header and closes it
// when the test ends. A refused handshake fails the test with its status.
func Dial(t testing.TB, url string, header http.Header) *Client {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: ReadTimeout}
	c, resp, err := d.Dial(url, header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &Client{Conn: c, t: t}
}

// ReadText returns the next text message, failing the test on a binary
// message, an error or ReadTimeout without one.
func (c *Client) ReadText() string {
	c.t.Helper()
	typ, b := c.read(c.AnswerPings)
	if typ != websocket.TextMessage {
		c.t.Fatalf("message type %d (%q), want text", typ, b)
	}
	return string(b)
}

// read returns the next message's type and bytes, answering pings first
// when answerPings is set.
func (c *Client) read(answerPings bool) (int, []byte) {
	c.t.Helper()
	for {
		_ = c.SetReadDeadline(time.Now().Add(ReadTimeout))
		typ, b, err := c.ReadMessage()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if answerPings && typ == websocket.TextMessage && string(b) == "2" {
			c.WriteText("3")
			continue
		}
		return typ, b
	}
}

// Open reads the open packet a new websocket session starts with.
func (c *Client) Open() OpenPacket {
	c.t.Helper()
	return ParseOpen(c.t, c.ReadText())
}

// WriteText sends one text message.
func (c *Client) WriteText(s string) {
	c.t.Helper()
	if err := c.write(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// WriteBinary sends one binary message.
func (c *Client) WriteBinary(b []byte) {
	c.t.Helper()
	if err := c.write(websocket.BinaryMessage, b); err != nil {
		c.t.Fatalf("write %d binary bytes: %v", len(b), err)
	}
}

func (c *Client) write(kind int, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.WriteMessage(kind, b)
}

// ExpectClosed reads until the connection ends, requiring the Engine.IO
// close packet ("1") first and the end of the connection within
// ReadTimeout after it.
func (c *Client) ExpectClosed() {
	c.t.Helper()
	if p := c.ReadText(); p != "1" {
		c.t.Fatalf("got %q, want the close packet", p)
	}
	_ = c.SetReadDeadline(time.Now().Add(ReadTimeout))
	if _, b, err := c.ReadMessage(); err == nil {
		c.t.Fatalf("connection still open after the close packet: %q", b)
	} else if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
		c.t.Fatal("connection not closed after the close packet")
	}
}

// DialSocketIO opens a websocket to the Socket.IO endpoint (/socket.io/)
// of the server at serverURL (http://host:port) with Engine.IO protocol
// eio, reads the open packet and answers pings from then on.
func DialSocketIO(t testing.TB, serverURL string, eio int) *Client {
	t.Helper()
	url := fmt.Sprintf("ws%s/socket.io/?EIO=%d&transport=websocket", strings.TrimPrefix(serverURL, "http"), eio)
	c := Dial(t, url, nil)
	c.AnswerPings = true
	c.Open()
	return c
}

// WriteBinaryMessage sends data as an Engine.IO binary message: the bytes
// alone in protocol 4, after the message type byte (4) in protocol 3.
func (c *Client) WriteBinaryMessage(eio int, data []byte) {
	c.t.Helper()
	if eio < 4 {
		data = append([]byte{4}, data...)
	}
	c.WriteBinary(data)
}

// ReadBinaryMessage returns the data of the next message, which must be an
// Engine.IO binary message of protocol eio; pings are answered meanwhile.
func (c *Client) ReadBinaryMessage(eio int) []byte {
	c.t.Helper()
	typ, b := c.read(true)
	if typ != websocket.BinaryMessage {
		c.t.Fatalf("got text %q, want a binary message", b)
	}
	if eio < 4 {
		if len(b) == 0 || b[0] != 4 {
			c.t.Fatalf("protocol 3 binary message %v lacks the message type byte", b)
		}
		b = b[1:]
	}
	return b
}
