package engineio

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"paystatus/realtime/realtimetest"
)

// binRecorder is a recorder that also takes binary messages, recording
// each as "bin:" and its bytes in hex among the text ones.
type binRecorder struct{ *recorder }

func (r binRecorder) OnBinary(s *Session, data []byte) {
	r.OnMessage(s, "bin:"+hex.EncodeToString(data))
}

// rawPost sends a polling POST with a content type and raw body.
func rawPost(t *testing.T, url, contentType string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// rawGet performs one GET and returns the body and content type.
func rawGet(t *testing.T, url string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func TestBinaryOverPolling(t *testing.T) {
	tests := []struct {
		name     string
		eio      int
		query    string // added to the handshake and later requests
		body     []byte
		ctype    string
		wantPoll func(t *testing.T, ctype string, body []byte)
	}{
		{
			name: "v4 base64 packets", eio: 4,
			body: []byte("4hi\x1ebAQID"), ctype: "text/plain;charset=UTF-8",
			wantPoll: func(t *testing.T, ctype string, body []byte) {
				if string(body) != "bAQID" || !strings.HasPrefix(ctype, "text/plain") {
					t.Fatalf("poll %q (%s), want bAQID", body, ctype)
				}
			},
		},
		{
			name: "v3 base64 text payload", eio: 3, query: "&b64=1",
			body: []byte("3:4hi6:b4AQID"), ctype: "text/plain;charset=UTF-8",
			wantPoll: func(t *testing.T, ctype string, body []byte) {
				if string(body) != "6:b4AQID" {
					t.Fatalf("poll %q, want 6:b4AQID", body)
				}
			},
		},
		{
			// What socket.io-client 2 sends where XHR2 is available: flag,
			// length digits as byte values, 255, packet.
			name: "v3 XHR2 binary payload", eio: 3,
			body:  []byte{0, 3, 0xFF, '4', 'h', 'i', 1, 4, 0xFF, 4, 1, 2, 3},
			ctype: "application/octet-stream",
			wantPoll: func(t *testing.T, ctype string, body []byte) {
				want := []byte{1, 4, 0xFF, 4, 1, 2, 3}
				if !bytes.Equal(body, want) || ctype != "application/octet-stream" {
					t.Fatalf("poll %v (%s), want %v", body, ctype, want)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			var sess atomic.Pointer[Session]
			rec.onMessage = func(s *Session, data string) { sess.Store(s) }
			_, ts := startServer(t, Config{AllowEIO3: true, PingInterval: time.Minute}, binRecorder{rec})
			status, _, body := rawGet(t, eioURL(ts, tt.eio, "polling", "")+tt.query)
			if status != http.StatusOK {
				t.Fatalf("handshake %d %q", status, body)
			}
			packets, err := decodePayload(string(body), tt.eio)
			if err != nil {
				t.Fatal(err)
			}
			sid := realtimetest.ParseOpen(t, string(packets[0].kind)+packets[0].data).SID
			url := eioURL(ts, tt.eio, "polling", sid) + tt.query
			if status, got := rawPost(t, url, tt.ctype, tt.body); status != http.StatusOK {
				t.Fatalf("POST %d %q", status, got)
			}
			if got := rec.messagesOf(sid); fmt.Sprint(got) != "[hi bin:010203]" {
				t.Fatalf("handler saw %q", got)
			}
			if err := rec.session(sid).Send(NewBinaryMessage([]byte{1, 2, 3})); err != nil {
				t.Fatal(err)
			}
			_, ctype, got := rawGet(t, url)
			tt.wantPoll(t, ctype, got)
		})
	}
}

func TestBinaryOverWebSocket(t *testing.T) {
	for _, eio := range []int{3, 4} {
		t.Run(fmt.Sprintf("EIO%d", eio), func(t *testing.T) {
			rec := newRecorder()
			_, ts := startServer(t, Config{AllowEIO3: true, PingInterval: time.Minute}, binRecorder{rec})
			c := realtimetest.Dial(t, wsURL(ts, eio, ""), nil)
			sid := c.Open().SID
			frame := []byte{0, 1, 255}
			if eio == 3 {
				frame = append([]byte{4}, frame...) // the message type byte
			}
			c.WriteBinary(frame)
			realtimetest.Eventually(t, 5*time.Second, `len(rec.messagesOf(sid)) == 1`, func() bool { return len(rec.messagesOf(sid)) == 1 })
			if got := rec.messagesOf(sid)[0]; got != "bin:0001ff" {
				t.Fatalf("handler saw %q", got)
			}
			if err := rec.session(sid).SendGroup(NewMessage("header"), NewBinaryMessage([]byte{9, 8})); err != nil {
				t.Fatal(err)
			}
			if got := c.ReadText(); got != "4header" {
				t.Fatalf("first message %q", got)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			kind, b, err := c.ReadMessage()
			want := []byte{9, 8}
			if eio == 3 {
				want = []byte{4, 9, 8}
			}
			if err != nil || kind != websocket.BinaryMessage || !bytes.Equal(b, want) {
				t.Fatalf("binary message %d %v %v, want %v", kind, b, err, want)
			}
		})
	}
}

// A binary message queued while polling becomes a binary frame when the
// session upgrades.
func TestQueuedBinaryMovesToWebSocket(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{PingInterval: time.Minute}, binRecorder{rec})
	open, _ := pollOpen(t, ts, 4)
	c := realtimetest.Dial(t, wsURL(ts, 4, open.SID), nil)
	c.WriteText("2probe")
	if got := c.ReadText(); got != "3probe" {
		t.Fatalf("probe answer %q", got)
	}
	if err := rec.session(open.SID).Send(NewBinaryMessage([]byte{5, 6})); err != nil {
		t.Fatal(err)
	}
	c.WriteText("5")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	kind, b, err := c.ReadMessage()
	if err != nil || kind != websocket.BinaryMessage || !bytes.Equal(b, []byte{5, 6}) {
		t.Fatalf("after upgrade: %d %v %v", kind, b, err)
	}
}

// A handler that does not implement BinaryHandler gets no binary message:
// the session closes as on any packet it cannot take.
func TestBinaryWithoutBinaryHandlerCloses(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{PingInterval: time.Minute}, rec)
	c := realtimetest.Dial(t, wsURL(ts, 4, ""), nil)
	sid := c.Open().SID
	c.WriteBinary([]byte{1})
	realtimetest.Eventually(t, 5*time.Second, "the session's close", func() bool { _, ok := rec.closeReason(sid); return ok })
	if r, _ := rec.closeReason(sid); r != "parse error" {
		t.Fatalf("close reason %q", r)
	}
}

func TestBinaryPayloadMalformed(t *testing.T) {
	tests := []struct {
		name string
		body []byte
	}{
		{"flag 2", []byte{2, 1, 0xFF, '4'}},
		{"no length", []byte{0, 0xFF, '4'}},
		{"digit above 9", []byte{0, 12, 0xFF, '4'}},
		{"no 255", []byte{0, 1, 2}},
		{"length past end", []byte{0, 5, 0xFF, '4', 'a'}},
		{"zero length", []byte{0, 0, 0xFF}},
		{"too many digits", append(append([]byte{0}, bytes.Repeat([]byte{1}, 11)...), 0xFF, '4')},
		{"text not UTF-8", []byte{0, 2, 0xFF, '4', 0xFF}},
		{"text unknown type", []byte{0, 1, 0xFF, '9'}},
		{"binary not a message", []byte{1, 2, 0xFF, 2, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := decodeBinaryPayload(tt.body); err == nil {
				t.Fatalf("decodeBinaryPayload(%v) = %+v, want an error", tt.body, got)
			}
		})
	}
	// Over HTTP the session is closed and the handler sees nothing.
	rec := newRecorder()
	_, ts := startServer(t, Config{AllowEIO3: true}, binRecorder{rec})
	open, _ := pollOpen(t, ts, 3)
	if status, _ := rawPost(t, eioURL(ts, 3, "polling", open.SID), "application/octet-stream", []byte{1, 2, 0xFF, 2, 1}); status != http.StatusBadRequest {
		t.Fatalf("status %d", status)
	}
	if r, ok := rec.closeReason(open.SID); !ok || r != "parse error" {
		t.Fatalf("close reason %q", r)
	}
}

// A POST still being dispatched when the session upgrades must finish
// before any websocket message is handled: one message at a time.
func TestPostInFlightAfterUpgradeIsNotConcurrent(t *testing.T) {
	rec := newRecorder()
	entered := make(chan struct{})
	release := make(chan struct{})
	var inside, most atomic.Int32
	var order []string
	var orderMu sync.Mutex
	rec.onMessage = func(s *Session, data string) {
		n := inside.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		orderMu.Lock()
		order = append(order, data)
		orderMu.Unlock()
		if data == "slow" {
			close(entered)
			<-release
		}
		inside.Add(-1)
	}
	_, ts := startServer(t, Config{PingInterval: time.Minute}, rec)
	open, _ := pollOpen(t, ts, 4)
	posted := make(chan int, 1)
	go func() {
		resp, err := http.Post(eioURL(ts, 4, "polling", open.SID), "text/plain", strings.NewReader("4slow\x1e4after"))
		if err != nil {
			posted <- 0
			return
		}
		resp.Body.Close()
		posted <- resp.StatusCode
	}()
	<-entered
	c := realtimetest.Dial(t, wsURL(ts, 4, open.SID), nil)
	c.WriteText("2probe")
	if got := c.ReadText(); got != "3probe" {
		t.Fatalf("probe answer %q", got)
	}
	c.WriteText("5")
	realtimetest.Eventually(t, 5*time.Second, `rec.upgrades(open.SID) == 1`, func() bool { return rec.upgrades(open.SID) == 1 })
	c.WriteText("4ws")
	// The websocket message must wait for the POST; give it every chance
	// to run early before releasing the POST.
	time.Sleep(100 * time.Millisecond)
	close(release)
	if status := <-posted; status != http.StatusOK {
		t.Fatalf("POST status %d", status)
	}
	realtimetest.Eventually(t, 5*time.Second, `len(rec.messagesOf(open.SID)) == 3`, func() bool { return len(rec.messagesOf(open.SID)) == 3 })
	orderMu.Lock()
	defer orderMu.Unlock()
	if fmt.Sprint(order) != "[slow after ws]" {
		t.Fatalf("handled in order %q, want [slow after ws]", order)
	}
	if most.Load() != 1 {
		t.Fatalf("%d messages handled at once", most.Load())
	}
}

// FuzzDecodeBinaryPayload: the protocol 3 binary payload decoder never
// panics, and what it accepts encodes back to a payload that decodes the
// same.
func FuzzDecodeBinaryPayload(f *testing.F) {
	f.Add([]byte{0, 3, 0xFF, '4', 'h', 'i', 1, 4, 0xFF, 4, 1, 2, 3})
	f.Add([]byte{1, 1, 0xFF, 4})
	f.Add([]byte{0, 1, 0, 0xFF})
	f.Add([]byte{0, 0xFF})
	f.Fuzz(func(t *testing.T, body []byte) {
		packets, err := decodeBinaryPayload(body)
		if err != nil {
			return
		}
		entries := make([]string, len(packets))
		for i, p := range packets {
			entries[i] = string(p.kind) + p.data
			if p.binary {
				entries[i] = binaryPollEntry(p.data, 3, false)
			}
		}
		again, err := decodeBinaryPayload(appendBinaryPayload(nil, entries))
		if err != nil {
			t.Fatalf("re-encoded payload fails: %v", err)
		}
		if fmt.Sprint(again) != fmt.Sprint(packets) {
			t.Fatalf("round trip %+v, want %+v", again, packets)
		}
	})
}

// FuzzDecodeBinaryFrame: binary frames and base64 packets of either
// protocol never panic, and only messages come out.
func FuzzDecodeBinaryFrame(f *testing.F) {
	f.Add([]byte{4, 1, 2}, 3)
	f.Add([]byte{1, 2}, 4)
	f.Add([]byte("b4AQID"), 3)
	f.Add([]byte("bAQID"), 4)
	f.Fuzz(func(t *testing.T, b []byte, protocol int) {
		if protocol != 3 {
			protocol = 4
		}
		for _, decode := range []func() (packet, error){
			func() (packet, error) { return decodeBinaryFrame(b, protocol) },
			func() (packet, error) { return decodePacket(string(b), protocol) },
		} {
			p, err := decode()
			if err == nil && p.binary && p.kind != packetMessage {
				t.Fatalf("binary packet of type %q from %v", p.kind, b)
			}
		}
	})
}

// A poll still waiting when the upgrade completes is not the upgrading
// client's (it waits for its poll to return before sending the upgrade
// packet): it gets 400, as every poll after the upgrade does.
func TestPollWaitingWhenUpgradeCompletes(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{PingInterval: time.Minute}, rec)
	open, _ := pollOpen(t, ts, 4)
	sess := rec.session(open.SID)
	pending := pollAsync(ts, 4, open.SID)
	realtimetest.Eventually(t, 5*time.Second, `isPolling(sess)`, func() bool { return isPolling(sess) })
	a, b := net.Pipe()
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	c := newWSConn(sess, a, nil)
	sess.mu.Lock()
	sess.switchToWebSocketLocked(c)
	sess.mu.Unlock()
	select {
	case r := <-pending:
		if r.status != http.StatusBadRequest {
			t.Fatalf("waiting poll got %d %q, want 400", r.status, r.body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting poll was not released")
	}
	if _, closed := rec.closeReason(open.SID); closed {
		t.Fatal("the session was closed")
	}
}
