package engineio

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"paystatus/realtime/realtimetest"
)

// recorder is a Handler that remembers what it was told.
type recorder struct {
	onOpen    func(*Session)
	onMessage func(*Session, string)

	mu       sync.Mutex
	sessions map[string]*Session
	messages map[string][]string
	closed   map[string]string
	upgraded map[string]int
	opens    int
}

func newRecorder() *recorder {
	return &recorder{
		sessions: make(map[string]*Session),
		messages: make(map[string][]string),
		closed:   make(map[string]string),
		upgraded: make(map[string]int),
	}
}

func (r *recorder) OnOpen(s *Session) {
	r.mu.Lock()
	r.sessions[s.ID()] = s
	r.opens++
	f := r.onOpen
	r.mu.Unlock()
	if f != nil {
		f(s)
	}
}

func (r *recorder) OnMessage(s *Session, data string) {
	r.mu.Lock()
	r.messages[s.ID()] = append(r.messages[s.ID()], data)
	f := r.onMessage
	r.mu.Unlock()
	if f != nil {
		f(s, data)
	}
}

func (r *recorder) OnClose(s *Session, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, dup := r.closed[s.ID()]; dup {
		r.closed[s.ID()] = prev + "|twice:" + reason
		return
	}
	r.closed[s.ID()] = reason
}

func (r *recorder) OnUpgrade(s *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.upgraded[s.ID()]++
}

// session returns the session OnOpen saw with sid. A websocket client can
// read its open packet a moment before OnOpen runs, so this waits a little.
func (r *recorder) session(sid string) *Session {
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		s := r.sessions[sid]
		r.mu.Unlock()
		if s != nil || time.Now().After(deadline) {
			return s
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *recorder) messagesOf(sid string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.messages[sid]...)
}

func (r *recorder) closeReason(sid string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	reason, ok := r.closed[sid]
	return reason, ok
}

func (r *recorder) upgrades(sid string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.upgraded[sid]
}

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

func startServer(t *testing.T, cfg Config, h Handler) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger
	}
	srv, err := NewServer(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		ts.CloseClientConnections()
		ts.Close()
	})
	return srv, ts
}

func eioURL(ts *httptest.Server, eio int, transport, sid string) string {
	u := fmt.Sprintf("%s/?EIO=%d&transport=%s", ts.URL, eio, transport)
	if sid != "" {
		u += "&sid=" + sid
	}
	return u
}

func wsURL(ts *httptest.Server, eio int, sid string) string {
	return "ws" + strings.TrimPrefix(eioURL(ts, eio, "websocket", sid), "http")
}

func doRequest(t *testing.T, method, url, body string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// errorCode checks an Engine.IO error reply and returns its code.
func errorCode(t *testing.T, resp *http.Response, body string) int {
	t.Helper()
	if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want an error status; body %q", resp.StatusCode, body)
	}
	var e struct {
		Code    *int   `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code == nil || e.Message == "" {
		t.Fatalf("error body %q is not {code, message}: %v", body, err)
	}
	return *e.Code
}

// pollOpen performs a polling handshake and returns the open packet and
// any packets that followed it in the same reply.
func pollOpen(t *testing.T, ts *httptest.Server, eio int) (realtimetest.OpenPacket, []string) {
	t.Helper()
	resp, body := doRequest(t, http.MethodGet, eioURL(ts, eio, "polling", ""), "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("handshake status %d: %q", resp.StatusCode, body)
	}
	packets, err := decodePayload(body, eio)
	if err != nil {
		t.Fatalf("handshake body %q: %v", body, err)
	}
	var rest []string
	for _, p := range packets[1:] {
		rest = append(rest, string(p.kind)+p.data)
	}
	return realtimetest.ParseOpen(t, string(packets[0].kind)+packets[0].data), rest
}

// poll performs one polling GET and returns the packets.
func poll(t *testing.T, ts *httptest.Server, eio int, sid string) []string {
	t.Helper()
	resp, body := doRequest(t, http.MethodGet, eioURL(ts, eio, "polling", sid), "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("poll status %d: %q", resp.StatusCode, body)
	}
	packets, err := decodePayload(body, eio)
	if err != nil {
		t.Fatalf("poll body %q: %v", body, err)
	}
	out := make([]string, len(packets))
	for i, p := range packets {
		out[i] = string(p.kind) + p.data
	}
	return out
}

type pollResult struct {
	packets []string
	status  int
	body    string
	err     error
}

// pollAsync starts a long-poll GET in the background.
func pollAsync(ts *httptest.Server, eio int, sid string) <-chan pollResult {
	ch := make(chan pollResult, 1)
	go func() {
		client := &http.Client{Timeout: 10 * time.Second}
		resp, err := client.Get(eioURL(ts, eio, "polling", sid))
		if err != nil {
			ch <- pollResult{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		res := pollResult{status: resp.StatusCode, body: string(b), err: err}
		if err == nil && resp.StatusCode == http.StatusOK {
			packets, derr := decodePayload(res.body, eio)
			res.err = derr
			for _, p := range packets {
				res.packets = append(res.packets, string(p.kind)+p.data)
			}
		}
		ch <- res
	}()
	return ch
}

func waitPoll(t *testing.T, ch <-chan pollResult) pollResult {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("poll: %v", r.err)
		}
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("poll did not return")
		return pollResult{}
	}
}

func isPolling(s *Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polling
}

func post(t *testing.T, ts *httptest.Server, eio int, sid, body string) (*http.Response, string) {
	t.Helper()
	return doRequest(t, http.MethodPost, eioURL(ts, eio, "polling", sid), body, http.Header{"Content-Type": {"text/plain;charset=UTF-8"}})
}

func TestPollingHandshakeV4(t *testing.T) {
	rec := newRecorder()
	srv, ts := startServer(t, Config{PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond, MaxPayload: 12345}, rec)
	resp, body := doRequest(t, http.MethodGet, eioURL(ts, 4, "polling", "")+"&foo=bar", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %q", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	if strings.ContainsRune(body, recordSeparator) {
		t.Fatalf("handshake body %q holds more than the open packet", body)
	}
	open := realtimetest.ParseOpen(t, body)
	if len(open.Upgrades) != 1 || open.Upgrades[0] != "websocket" {
		t.Errorf("upgrades %v, want [websocket]", open.Upgrades)
	}
	if open.PingInterval != 300 || open.PingTimeout != 200 {
		t.Errorf("pingInterval %d pingTimeout %d, want 300 and 200", open.PingInterval, open.PingTimeout)
	}
	if open.MaxPayload == nil || *open.MaxPayload != 12345 {
		t.Errorf("maxPayload %v, want 12345", open.MaxPayload)
	}
	sess := rec.session(open.SID)
	if sess == nil {
		t.Fatal("OnOpen did not see the session")
	}
	if sess.Protocol() != 4 || sess.Transport() != "polling" || sess.Query().Get("EIO") != "4" || sess.RemoteAddr() == "" {
		t.Errorf("session: protocol %d transport %s query %v remote %q", sess.Protocol(), sess.Transport(), sess.Query(), sess.RemoteAddr())
	}
	if srv.Len() != 1 {
		t.Errorf("Len %d, want 1", srv.Len())
	}
}

func TestPollingHandshakeV3(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{AllowEIO3: true, PingInterval: 1500 * time.Millisecond, PingTimeout: 700 * time.Millisecond}, rec)
	resp, body := doRequest(t, http.MethodGet, eioURL(ts, 3, "polling", ""), "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %q", resp.StatusCode, body)
	}
	// Version 3 prefixes the packet with its length.
	colon := strings.IndexByte(body, ':')
	if colon <= 0 || fmt.Sprint(utf16Len(body[colon+1:])) != body[:colon] {
		t.Fatalf("v3 handshake body %q is not one length-prefixed packet", body)
	}
	open := realtimetest.ParseOpen(t, body[colon+1:])
	if open.PingInterval != 1500 || open.PingTimeout != 700 || len(open.Upgrades) != 1 {
		t.Errorf("open %+v", open)
	}
	if open.MaxPayload != nil {
		t.Errorf("v3 open packet has maxPayload %d", *open.MaxPayload)
	}
	if s := rec.session(open.SID); s == nil || s.Protocol() != 3 {
		t.Fatalf("session %v not opened with protocol 3", s)
	}
}

func TestOpenPacketPrecedesWhatOnOpenSends(t *testing.T) {
	rec := newRecorder()
	rec.onOpen = func(s *Session) {
		_ = s.SendText("first")
		_ = s.SendText("second")
	}
	_, ts := startServer(t, Config{AllowEIO3: true}, rec)
	for _, eio := range []int{3, 4} {
		t.Run(fmt.Sprintf("polling v%d", eio), func(t *testing.T) {
			_, rest := pollOpen(t, ts, eio)
			if fmt.Sprint(rest) != "[4first 4second]" {
				t.Fatalf("after the open packet: %q", rest)
			}
		})
	}
	t.Run("websocket", func(t *testing.T) {
		c := realtimetest.Dial(t, wsURL(ts, 4, ""), nil)
		c.Open()
		if got := c.ReadText(); got != "4first" {
			t.Fatalf("got %q, want 4first", got)
		}
		if got := c.ReadText(); got != "4second" {
			t.Fatalf("got %q, want 4second", got)
		}
	})
}

func TestHandshakeErrors(t *testing.T) {
	_, strict := startServer(t, Config{}, newRecorder())
	_, lax := startServer(t, Config{AllowEIO3: true}, newRecorder())
	v4, _ := pollOpen(t, lax, 4) // a v4 session to misuse below
	tests := []struct {
		name   string
		ts     *httptest.Server
		method string
		query  string
		code   int
	}{
		{"EIO=3 refused", strict, "GET", "?EIO=3&transport=polling", codeUnsupported},
		{"EIO=3 websocket refused", strict, "GET", "?EIO=3&transport=websocket", codeUnsupported},
		{"EIO=5", lax, "GET", "?EIO=5&transport=polling", codeUnsupported},
		{"no EIO", lax, "GET", "?transport=polling", codeUnsupported},
		{"unknown transport", lax, "GET", "?EIO=4&transport=flashsocket", codeUnknownTransport},
		{"no transport", lax, "GET", "?EIO=4", codeUnknownTransport},
		{"JSONP", lax, "GET", "?EIO=4&transport=polling&j=0", codeUnknownTransport},
		{"unknown sid", lax, "GET", "?EIO=4&transport=polling&sid=nosuchsession", codeUnknownSession},
		{"unknown sid POST", lax, "POST", "?EIO=4&transport=polling&sid=nosuchsession", codeUnknownSession},
		{"sid with the wrong protocol", lax, "GET", "?EIO=3&transport=polling&sid=" + v4.SID, codeUnknownSession},
		{"POST handshake", lax, "POST", "?EIO=4&transport=polling", codeBadHandshake},
		{"websocket without upgrade", lax, "GET", "?EIO=4&transport=websocket", codeBadRequest},
		{"PUT on a session", lax, "PUT", "?EIO=4&transport=polling&sid=" + v4.SID, codeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := doRequest(t, tt.method, tt.ts.URL+"/"+tt.query, "", nil)
			if code := errorCode(t, resp, body); code != tt.code {
				t.Fatalf("code %d (%s), want %d", code, body, tt.code)
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
		})
	}
}

func TestPollingPostReachesOnMessageInOrder(t *testing.T) {
	tests := []struct {
		eio    int
		bodies []string
	}{
		{4, []string{"4one\x1e4two\x1e4thré😀", "4four", "2\x1e4five"}},
		{3, []string{"4:4one4:4two7:4thré😀", "5:4four", "1:25:4five"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("v%d", tt.eio), func(t *testing.T) {
			rec := newRecorder()
			_, ts := startServer(t, Config{AllowEIO3: true}, rec)
			open, _ := pollOpen(t, ts, tt.eio)
			for _, b := range tt.bodies {
				resp, body := post(t, ts, tt.eio, open.SID, b)
				if resp.StatusCode != http.StatusOK || body != "ok" {
					t.Fatalf("POST %q: %d %q", b, resp.StatusCode, body)
				}
			}
			got := rec.messagesOf(open.SID)
			want := []string{"one", "two", "thré😀", "four", "five"}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("OnMessage saw %q, want %q", got, want)
			}
			if tt.eio == 3 {
				// A v3 ping is answered with a pong on the next poll.
				if got := poll(t, ts, 3, open.SID); fmt.Sprint(got) != "[3]" {
					t.Fatalf("poll after v3 ping: %q, want [3]", got)
				}
			}
		})
	}
}

func TestPollingPostMalformedClosesSession(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{}, rec)
	open, _ := pollOpen(t, ts, 4)
	resp, body := post(t, ts, 4, open.SID, "4ok\x1e9x")
	if code := errorCode(t, resp, body); code != codeBadRequest {
		t.Fatalf("code %d", code)
	}
	if reason, ok := rec.closeReason(open.SID); !ok || reason != "parse error" {
		t.Fatalf("close reason %q (closed %v), want parse error", reason, ok)
	}
	if got := rec.messagesOf(open.SID); len(got) != 0 {
		t.Fatalf("a rejected batch delivered %q", got)
	}
}

func TestPollingPostTooLarge(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{MaxPayload: 100}, rec)
	open, _ := pollOpen(t, ts, 4)
	resp, _ := post(t, ts, 4, open.SID, "4"+strings.Repeat("x", 100))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	if _, ok := rec.closeReason(open.SID); !ok {
		t.Fatal("session not closed")
	}
}

func TestLongPollReturnsQueued(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{}, rec)
	open, _ := pollOpen(t, ts, 4)
	sess := rec.session(open.SID)

	// Nothing queued: the GET waits until something is sent.
	ch := pollAsync(ts, 4, open.SID)
	realtimetest.Eventually(t, 5*time.Second, `isPolling(sess)`, func() bool { return isPolling(sess) })
	select {
	case r := <-ch:
		t.Fatalf("poll returned %q with nothing queued", r.body)
	case <-time.After(20 * time.Millisecond):
	}
	if err := sess.SendText("late"); err != nil {
		t.Fatal(err)
	}
	if r := waitPoll(t, ch); fmt.Sprint(r.packets) != "[4late]" {
		t.Fatalf("waiting poll got %q", r.packets)
	}

	// Queued before the GET: all of it, in order, at once.
	for _, m := range []string{"a", "b", "é😀"} {
		if err := sess.SendText(m); err != nil {
			t.Fatal(err)
		}
	}
	if got := poll(t, ts, 4, open.SID); fmt.Sprint(got) != "[4a 4b 4é😀]" {
		t.Fatalf("poll got %q", got)
	}
}

func TestOverlappingPollsCloseSession(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{}, rec)
	open, _ := pollOpen(t, ts, 4)
	sess := rec.session(open.SID)
	ch := pollAsync(ts, 4, open.SID)
	realtimetest.Eventually(t, 5*time.Second, `isPolling(sess)`, func() bool { return isPolling(sess) })
	resp, body := doRequest(t, http.MethodGet, eioURL(ts, 4, "polling", open.SID), "", nil)
	if code := errorCode(t, resp, body); code != codeBadRequest {
		t.Fatalf("second poll code %d", code)
	}
	if reason, ok := rec.closeReason(open.SID); !ok || reason != "transport error" {
		t.Fatalf("close reason %q, want transport error", reason)
	}
	// As Node does: the waiting poll gets the close packet, and the sid is
	// gone for every later request.
	if r := waitPoll(t, ch); fmt.Sprint(r.packets) != "[1]" {
		t.Fatalf("first poll got %q (status %d), want the close packet", r.packets, r.status)
	}
	resp, body = doRequest(t, http.MethodGet, eioURL(ts, 4, "polling", open.SID), "", nil)
	if code := errorCode(t, resp, body); code != codeUnknownSession {
		t.Fatalf("poll after the close: code %d", code)
	}
}

func TestWebSocketSession(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{PingInterval: time.Minute}, rec)
	c := realtimetest.Dial(t, wsURL(ts, 4, ""), nil)
	open := c.Open()
	if len(open.Upgrades) != 0 {
		t.Errorf("websocket open packet offers upgrades %v", open.Upgrades)
	}
	if open.MaxPayload == nil {
		t.Error("v4 websocket open packet has no maxPayload")
	}
	sess := rec.session(open.SID)
	if sess == nil || sess.Transport() != "websocket" {
		t.Fatalf("session %v not on websocket", sess)
	}

	if err := sess.SendText("hello"); err != nil {
		t.Fatal(err)
	}
	if got := c.ReadText(); got != "4hello" {
		t.Fatalf("got %q", got)
	}
	big := strings.Repeat("é", 40000) // 80 kB: a 64-bit length frame
	if err := sess.SendText(big); err != nil {
		t.Fatal(err)
	}
	if got := c.ReadText(); got != "4"+big {
		t.Fatalf("big message: %d bytes", len(got))
	}

	for _, m := range []string{"4one", "4two", "4" + big} {
		c.WriteText(m)
	}
	realtimetest.Eventually(t, 5*time.Second, `len(rec.messagesOf(open.SID)) == 3`, func() bool { return len(rec.messagesOf(open.SID)) == 3 })
	if got := rec.messagesOf(open.SID); got[0] != "one" || got[1] != "two" || got[2] != big {
		t.Fatalf("OnMessage order: %.20q", got)
	}

	// A websocket ping is answered with a pong holding the same data.
	pong := make(chan string, 1)
	c.SetPongHandler(func(data string) error { pong <- data; return nil })
	if err := c.WriteControl(websocket.PingMessage, []byte("hb"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// Once the message after the ping is handled, the pong is queued; a
	// message sent after that follows it, and reading it runs the handler.
	c.WriteText("4after ping")
	realtimetest.Eventually(t, 5*time.Second, `len(rec.messagesOf(open.SID)) == 4`, func() bool { return len(rec.messagesOf(open.SID)) == 4 })
	_ = sess.SendText("after ping")
	if got := c.ReadText(); got != "4after ping" {
		t.Fatalf("got %q", got)
	}
	select {
	case d := <-pong:
		if d != "hb" {
			t.Fatalf("pong data %q", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong")
	}

	// The client's close packet ends the session.
	c.WriteText("1")
	realtimetest.Eventually(t, 5*time.Second, "the session's close", func() bool { _, ok := rec.closeReason(open.SID); return ok })
	if reason, _ := rec.closeReason(open.SID); reason != "transport close" {
		t.Fatalf("close reason %q", reason)
	}
	if err := sess.SendText("too late"); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("SendText on a closed session: %v", err)
	}
}

func TestWebSocketV3PingPong(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{AllowEIO3: true}, rec)
	c := realtimetest.Dial(t, wsURL(ts, 3, ""), nil)
	open := c.Open()
	if open.MaxPayload != nil {
		t.Error("v3 open packet has maxPayload")
	}
	c.WriteText("2x")
	if got := c.ReadText(); got != "3x" {
		t.Fatalf("v3 ping answered with %q", got)
	}
}

func TestWebSocketPeerCloseFrame(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{}, rec)
	c := realtimetest.Dial(t, wsURL(ts, 4, ""), nil)
	open := c.Open()
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	realtimetest.Eventually(t, 5*time.Second, "the session's close", func() bool { _, ok := rec.closeReason(open.SID); return ok })
	if reason, _ := rec.closeReason(open.SID); reason != "transport close" {
		t.Fatalf("reason %q", reason)
	}
}

// TestRawWebSocket speaks RFC 6455 by hand: the accept key, a first frame
// sent with the handshake (read by the server's buffered reader), a frame
// dribbled out in pieces, then an unmasked frame, which ends the session.
func TestRawWebSocket(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{PingInterval: time.Minute}, rec)
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	req := "GET /?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := conn.Write(append([]byte(req), masked(opText, "4early")...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum([]byte(key + websocketGUID))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Fatalf("handshake reply %d, accept %q", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	if resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatal("accept key differs from the RFC example")
	}
	readFrame := func() (byte, string) {
		t.Helper()
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			t.Fatalf("frame header: %v", err)
		}
		if h[1]&0x80 != 0 {
			t.Fatal("server frame is masked")
		}
		n := int(h[1] & 0x7F)
		switch n {
		case 126:
			var l [2]byte
			_, _ = io.ReadFull(br, l[:])
			n = int(l[0])<<8 | int(l[1])
		case 127:
			t.Fatal("unexpected 64-bit frame")
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			t.Fatal(err)
		}
		return h[0], string(p)
	}
	op, p := readFrame()
	if op != 0x80|opText {
		t.Fatalf("first frame opcode byte %#x", op)
	}
	open := realtimetest.ParseOpen(t, p)
	realtimetest.Eventually(t, 5*time.Second, `len(rec.messagesOf(open.SID)) == 1`, func() bool { return len(rec.messagesOf(open.SID)) == 1 })
	if got := rec.messagesOf(open.SID); got[0] != "early" {
		t.Fatalf("early frame gave %q", got)
	}

	for _, b := range clientFrame(true, opText, []byte("4"+strings.Repeat("d", 200)), testMask, 0) {
		if _, err := conn.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	realtimetest.Eventually(t, 5*time.Second, `len(rec.messagesOf(open.SID)) == 2`, func() bool { return len(rec.messagesOf(open.SID)) == 2 })
	if got := rec.messagesOf(open.SID); got[1] != strings.Repeat("d", 200) {
		t.Fatalf("dribbled frame gave %q", got[1])
	}

	if _, err := conn.Write([]byte{0x81, 0x02, '4', 'x'}); err != nil {
		t.Fatal(err)
	}
	realtimetest.Eventually(t, 5*time.Second, "the session's close", func() bool { _, ok := rec.closeReason(open.SID); return ok })
	if reason, _ := rec.closeReason(open.SID); reason != "parse error" {
		t.Fatalf("close reason %q, want parse error", reason)
	}
	if _, err := io.ReadAll(br); err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("connection not closed: %v", err)
	}
	if len(rec.messagesOf(open.SID)) != 2 {
		t.Fatal("the unmasked frame was delivered")
	}
}

func TestSendSharedMessage(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{AllowEIO3: true, PingInterval: time.Minute}, rec)
	type peer struct {
		c   *realtimetest.Client
		sid string
	}
	var peers []peer
	for i := 0; i < 8; i++ {
		c := realtimetest.Dial(t, wsURL(ts, 3+i%2, ""), nil)
		peers = append(peers, peer{c, c.Open().SID})
	}
	polled, _ := pollOpen(t, ts, 4)

	msg := NewMessage("shared é")
	for _, p := range peers {
		if err := rec.session(p.sid).Send(msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.session(polled.SID).Send(msg); err != nil {
		t.Fatal(err)
	}
	// Sent twice to the first: the shared frame must survive being written.
	if err := rec.session(peers[0].sid).Send(msg); err != nil {
		t.Fatal(err)
	}
	for i, p := range peers {
		if got := p.c.ReadText(); got != "4shared é" {
			t.Fatalf("peer %d got %q", i, got)
		}
	}
	if got := peers[0].c.ReadText(); got != "4shared é" {
		t.Fatalf("second copy: %q", got)
	}
	if got := poll(t, ts, 4, polled.SID); fmt.Sprint(got) != "[4shared é]" {
		t.Fatalf("polling peer got %q", got)
	}
}

func TestUpgradeFromPolling(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{PingInterval: time.Minute}, rec)
	open, _ := pollOpen(t, ts, 4)
	sess := rec.session(open.SID)

	// The client keeps a poll open while it probes.
	pending := pollAsync(ts, 4, open.SID)
	realtimetest.Eventually(t, 5*time.Second, `isPolling(sess)`, func() bool { return isPolling(sess) })

	c := realtimetest.Dial(t, wsURL(ts, 4, open.SID), nil)
	if sess.Transport() != "polling" {
		t.Fatal("transport switched before the probe")
	}
	c.WriteText("2probe")
	if got := c.ReadText(); got != "3probe" {
		t.Fatalf("probe answered with %q", got)
	}
	// The waiting poll is released with a noop so the client can pause.
	if r := waitPoll(t, pending); fmt.Sprint(r.packets) != "[6]" {
		t.Fatalf("pending poll during the probe got %q", r.packets)
	}
	// Still polling until the upgrade packet: this waits in the queue.
	if err := sess.SendText("queued"); err != nil {
		t.Fatal(err)
	}
	if rec.upgrades(open.SID) != 0 {
		t.Fatal("OnUpgrade before the upgrade packet")
	}
	c.WriteText("5")
	realtimetest.Eventually(t, 5*time.Second, `rec.upgrades(open.SID) == 1`, func() bool { return rec.upgrades(open.SID) == 1 })
	if sess.Transport() != "websocket" {
		t.Fatalf("transport %s after upgrade", sess.Transport())
	}
	if err := sess.SendText("over ws"); err != nil {
		t.Fatal(err)
	}
	if got := c.ReadText(); got != "4queued" {
		t.Fatalf("first websocket message %q, want 4queued", got)
	}
	if got := c.ReadText(); got != "4over ws" {
		t.Fatalf("second websocket message %q", got)
	}
	c.WriteText("4from ws")
	realtimetest.Eventually(t, 5*time.Second, `len(rec.messagesOf(open.SID)) == 1`, func() bool { return len(rec.messagesOf(open.SID)) == 1 })
	if got := rec.messagesOf(open.SID); got[0] != "from ws" {
		t.Fatalf("OnMessage %q", got)
	}
	// Polling is over for this session.
	resp, body := doRequest(t, http.MethodGet, eioURL(ts, 4, "polling", open.SID), "", nil)
	if code := errorCode(t, resp, body); code != codeBadRequest {
		t.Fatalf("poll after upgrade: code %d", code)
	}
	resp, body = post(t, ts, 4, open.SID, "4late")
	if code := errorCode(t, resp, body); code != codeBadRequest {
		t.Fatalf("post after upgrade: code %d", code)
	}
	if _, closed := rec.closeReason(open.SID); closed {
		t.Fatal("session closed by a stray poll after the upgrade")
	}
	// A second websocket for the sid is accepted and closed at once, as
	// Node does, and the session carries on.
	c2 := realtimetest.Dial(t, wsURL(ts, 4, open.SID), nil)
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c2.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNoStatusReceived) {
		t.Fatalf("second websocket: %v, want a close frame", err)
	}
	if _, closed := rec.closeReason(open.SID); closed {
		t.Fatal("session closed by a second websocket")
	}
	c.WriteText("4still here")
	realtimetest.Eventually(t, 5*time.Second, `len(rec.messagesOf(open.SID)) == 2`, func() bool { return len(rec.messagesOf(open.SID)) == 2 })
}

func TestUpgradeProbeWithoutPingIsDropped(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{PingInterval: time.Minute}, rec)
	open, _ := pollOpen(t, ts, 4)
	c := realtimetest.Dial(t, wsURL(ts, 4, open.SID), nil)
	c.WriteText("4not a probe")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Fatal("a probe that does not ping was kept")
	}
	// The polling session lives on.
	if _, closed := rec.closeReason(open.SID); closed {
		t.Fatal("session closed with its failed probe")
	}
	if err := rec.session(open.SID).SendText("still here"); err != nil {
		t.Fatal(err)
	}
	if got := poll(t, ts, 4, open.SID); fmt.Sprint(got) != "[4still here]" {
		t.Fatalf("poll %q", got)
	}
}

func TestHeartbeatTimeout(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{PingInterval: 50 * time.Millisecond, PingTimeout: 50 * time.Millisecond}, rec)
	c := realtimetest.Dial(t, wsURL(ts, 4, ""), nil)
	open := c.Open()
	start := time.Now()
	if got := c.ReadText(); got != "2" {
		t.Fatalf("expected a ping, got %q", got)
	}
	realtimetest.Eventually(t, 5*time.Second, "the session's close", func() bool { _, ok := rec.closeReason(open.SID); return ok })
	if reason, _ := rec.closeReason(open.SID); reason != "ping timeout" {
		t.Fatalf("close reason %q", reason)
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Fatalf("closed after %v, before interval and timeout passed", d)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Fatal("connection still open after the ping timeout")
	}
}

func TestHeartbeatAnswered(t *testing.T) {
	for _, transport := range []string{"websocket", "polling"} {
		t.Run(transport, func(t *testing.T) {
			rec := newRecorder()
			_, ts := startServer(t, Config{PingInterval: 50 * time.Millisecond, PingTimeout: 50 * time.Millisecond}, rec)
			var sid string
			var pings int
			if transport == "websocket" {
				c := realtimetest.Dial(t, wsURL(ts, 4, ""), nil)
				sid = c.Open().SID
				for pings < 8 {
					got := c.ReadText()
					if got != "2" {
						t.Fatalf("got %q, want ping", got)
					}
					pings++
					c.WriteText("3")
				}
			} else {
				open, _ := pollOpen(t, ts, 4)
				sid = open.SID
				for pings < 6 {
					for _, p := range poll(t, ts, 4, sid) {
						if p != "2" {
							t.Fatalf("got %q, want ping", p)
						}
						pings++
						if resp, body := post(t, ts, 4, sid, "3"); resp.StatusCode != http.StatusOK {
							t.Fatalf("pong POST: %d %q", resp.StatusCode, body)
						}
					}
				}
			}
			if reason, closed := rec.closeReason(sid); closed {
				t.Fatalf("closed (%s) after %d answered pings", reason, pings)
			}
		})
	}
}

func TestHeartbeatV3(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{AllowEIO3: true, PingInterval: 40 * time.Millisecond, PingTimeout: 40 * time.Millisecond}, rec)
	quiet := realtimetest.Dial(t, wsURL(ts, 3, ""), nil)
	quietSID := quiet.Open().SID
	chatty := realtimetest.Dial(t, wsURL(ts, 3, ""), nil)
	chattySID := chatty.Open().SID
	start := time.Now()
	for i := 0; i < 8; i++ {
		chatty.WriteText("2")
		if got := chatty.ReadText(); got != "3" {
			t.Fatalf("v3 ping answered with %q", got)
		}
		time.Sleep(20 * time.Millisecond) // the client's own ping pace
	}
	if reason, closed := rec.closeReason(chattySID); closed {
		t.Fatalf("pinging v3 client closed: %s", reason)
	}
	realtimetest.Eventually(t, 5*time.Second, "the session's close", func() bool { _, ok := rec.closeReason(quietSID); return ok })
	if reason, _ := rec.closeReason(quietSID); reason != "ping timeout" {
		t.Fatalf("silent v3 client closed with %q", reason)
	}
	if time.Since(start) < 80*time.Millisecond {
		t.Fatal("test ran too fast to mean anything")
	}
}

func TestCORS(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{CORSOrigins: []string{"https://good.example"}}, rec)
	t.Run("foreign origin", func(t *testing.T) {
		resp, body := doRequest(t, http.MethodGet, eioURL(ts, 4, "polling", ""), "", http.Header{"Origin": {"https://evil.example"}})
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.StatusCode)
		}
		if code := errorCode(t, resp, body); code != codeForbidden {
			t.Fatalf("code %d", code)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatal("a refused origin was granted CORS")
		}
	})
	t.Run("foreign origin websocket", func(t *testing.T) {
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
		c, resp, err := d.Dial(wsURL(ts, 4, ""), http.Header{"Origin": {"https://evil.example"}})
		if err == nil {
			_ = c.Close()
			t.Fatal("websocket from a foreign origin accepted")
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("websocket from a foreign origin: %v", err)
		}
	})
	t.Run("allowed origin", func(t *testing.T) {
		resp, body := doRequest(t, http.MethodGet, eioURL(ts, 4, "polling", ""), "", http.Header{"Origin": {"https://good.example"}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %q", resp.StatusCode, body)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "https://good.example" || resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Fatalf("CORS headers %v", resp.Header)
		}
		realtimetest.ParseOpen(t, body)
	})
	t.Run("preflight", func(t *testing.T) {
		resp, _ := doRequest(t, http.MethodOptions, eioURL(ts, 4, "polling", ""), "", http.Header{
			"Origin":                         {"https://good.example"},
			"Access-Control-Request-Headers": {"content-type"},
		})
		if resp.StatusCode != http.StatusNoContent || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") ||
			resp.Header.Get("Access-Control-Allow-Headers") != "content-type" {
			t.Fatalf("preflight %d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("no origin", func(t *testing.T) {
		resp, body := doRequest(t, http.MethodGet, eioURL(ts, 4, "polling", ""), "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %q", resp.StatusCode, body)
		}
	})
	t.Run("any origin when unset", func(t *testing.T) {
		_, open := startServer(t, Config{}, newRecorder())
		resp, _ := doRequest(t, http.MethodGet, eioURL(open, 4, "polling", ""), "", http.Header{"Origin": {"https://evil.example"}})
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("status %d, allow-origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	})
}

// fillSlowConsumer opens a websocket that never reads and sends 64 KiB
// messages to it until Send fails; it returns the session id.
func fillSlowConsumer(t *testing.T, rec *recorder, ts *httptest.Server) string {
	t.Helper()
	c := realtimetest.Dial(t, wsURL(ts, 4, ""), nil)
	open := c.Open()
	sess := rec.session(open.SID)
	// The client now stops reading. Kernel buffers take some megabytes;
	// after that the backlog must hit the limit.
	big := strings.Repeat("x", 64<<10)
	var err error
	sent := 0
	for ; sent < 4000 && err == nil; sent++ {
		err = sess.SendText(big)
	}
	if !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("%d sends of 64 KiB to a client that never reads: last error %v", sent, err)
	}
	realtimetest.Eventually(t, 5*time.Second, "the session's close", func() bool { _, ok := rec.closeReason(open.SID); return ok })
	return open.SID
}

func TestSlowConsumerIsClosed(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{MaxQueuedBytes: 256 << 10, WriteTimeout: time.Minute, PingInterval: time.Minute}, rec)
	sid := fillSlowConsumer(t, rec, ts)
	// The exact reason races (see TestSlowConsumerCloseReason); either
	// way the session must be gone.
	if reason, _ := rec.closeReason(sid); reason != "slow consumer" && reason != "transport error" {
		t.Fatalf("close reason %q", reason)
	}
	if isOpen(ts, sid) {
		t.Fatal("server still holds the slow consumer's session")
	}
}

func TestSlowConsumerCloseReason(t *testing.T) {
	for i := 0; i < 5; i++ {
		rec := newRecorder()
		_, ts := startServer(t, Config{MaxQueuedBytes: 256 << 10, WriteTimeout: time.Minute, PingInterval: time.Minute}, rec)
		sid := fillSlowConsumer(t, rec, ts)
		if reason, _ := rec.closeReason(sid); reason != "slow consumer" {
			t.Fatalf("run %d: close reason %q, want slow consumer", i, reason)
		}
	}
}

func TestSlowPollingConsumerIsClosed(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{MaxQueuedBytes: 1000, PingInterval: time.Minute}, rec)
	open, _ := pollOpen(t, ts, 4)
	sess := rec.session(open.SID)
	msg := strings.Repeat("p", 300)
	for i := 0; i < 3; i++ {
		if err := sess.SendText(msg); err != nil {
			t.Fatalf("send %d within the limit: %v", i, err)
		}
	}
	if err := sess.SendText(msg); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("send past the limit: %v", err)
	}
	// The close runs on its own goroutine: the sender may hold locks it takes.
	realtimetest.Eventually(t, 5*time.Second, "a slow consumer close", func() bool { reason, _ := rec.closeReason(open.SID); return reason == "slow consumer" })
	// A client that does poll is not a slow consumer.
	open2, _ := pollOpen(t, ts, 4)
	sess2 := rec.session(open2.SID)
	for i := 0; i < 10; i++ {
		if err := sess2.SendText(msg); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if got := poll(t, ts, 4, open2.SID); len(got) != 1 || got[0] != "4"+msg {
			t.Fatalf("poll %d: %q", i, got)
		}
	}
}

// isOpen reports whether the server still knows sid.
func isOpen(ts *httptest.Server, sid string) bool {
	srv := ts.Config.Handler.(*Server)
	return srv.lookup(sid) != nil
}

func TestShutdown(t *testing.T) {
	rec := newRecorder()
	srv, ts := startServer(t, Config{PingInterval: time.Minute}, rec)
	c := realtimetest.Dial(t, wsURL(ts, 4, ""), nil)
	wsSID := c.Open().SID
	polled, _ := pollOpen(t, ts, 4)
	pending := pollAsync(ts, 4, polled.SID)
	realtimetest.Eventually(t, 5*time.Second, `isPolling(rec.session(polled.SID))`, func() bool { return isPolling(rec.session(polled.SID)) })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := c.ReadText(); got != "1" {
		t.Fatalf("websocket got %q, want the close packet", got)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
		t.Fatalf("after the close packet: %v, want a normal close frame", err)
	}
	if r := waitPoll(t, pending); fmt.Sprint(r.packets) != "[1]" {
		t.Fatalf("waiting poll got %q, want the close packet", r.packets)
	}
	for _, sid := range []string{wsSID, polled.SID} {
		if reason, _ := rec.closeReason(sid); reason != "server shutting down" {
			t.Errorf("session %s closed with %q", sid, reason)
		}
	}
	if srv.Len() != 0 {
		t.Fatalf("Len %d after shutdown", srv.Len())
	}
	resp, body := doRequest(t, http.MethodGet, eioURL(ts, 4, "polling", ""), "", nil)
	if code := errorCode(t, resp, body); code != codeBadRequest {
		t.Fatalf("handshake after shutdown: code %d", code)
	}
}

func TestConfigValidation(t *testing.T) {
	if _, err := NewServer(Config{PingInterval: -1}, newRecorder()); err == nil {
		t.Error("negative PingInterval accepted")
	}
	if _, err := NewServer(Config{MaxQueuedBytes: -1}, newRecorder()); err == nil {
		t.Error("negative MaxQueuedBytes accepted")
	}
	if _, err := NewServer(Config{}, nil); err == nil {
		t.Error("nil handler accepted")
	}
}

func TestUpgradeTimeout(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{UpgradeTimeout: 50 * time.Millisecond, PingInterval: time.Minute}, rec)
	open, _ := pollOpen(t, ts, 4)
	c := realtimetest.Dial(t, wsURL(ts, 4, open.SID), nil)
	c.WriteText("2probe")
	if got := c.ReadText(); got != "3probe" {
		t.Fatalf("probe answered with %q", got)
	}
	// No upgrade packet follows: the probe is dropped, polling goes on.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("stale probe still open")
			}
			break
		}
		if string(b) != "6" && string(b) != "3probe" {
			t.Fatalf("stale probe got %q", b)
		}
	}
	if rec.upgrades(open.SID) != 0 || rec.session(open.SID).Transport() != "polling" {
		t.Fatal("session upgraded without the upgrade packet")
	}
	if err := rec.session(open.SID).SendText("still polling"); err != nil {
		t.Fatal(err)
	}
	if got := poll(t, ts, 4, open.SID); fmt.Sprint(got) != "[4still polling]" {
		t.Fatalf("poll %q", got)
	}
}

// Closing a polling session between polls must still hand the client its
// close packet on the next poll, as Node's server does; forgetting the
// session at once answers that poll with "Session ID unknown" instead.
func TestPollingCloseBetweenPolls(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{PingInterval: time.Minute}, rec)
	open, _ := pollOpen(t, ts, 4)
	rec.session(open.SID).Close("server decided")
	resp, body := doRequest(t, http.MethodGet, eioURL(ts, 4, "polling", open.SID), "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("poll after close: %d %s, want the close packet", resp.StatusCode, body)
	}
	if packets, err := decodePayload(body, 4); err != nil || len(packets) != 1 || packets[0].kind != packetClose {
		t.Fatalf("poll after close: %q", body)
	}
}

// A client's close packet in a POST that overtakes the client's poll: the
// poll, handled second, gets the noop it would have had had it come first,
// and every later request gets 400.
func TestPollingClientCloseOvertakesPoll(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{PingInterval: time.Minute}, rec)
	open, _ := pollOpen(t, ts, 4)
	if resp, body := post(t, ts, 4, open.SID, "1"); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST close: %d %s", resp.StatusCode, body)
	}
	if reason, ok := rec.closeReason(open.SID); !ok || reason != "transport close" {
		t.Fatalf("close reason %q", reason)
	}
	if got := poll(t, ts, 4, open.SID); fmt.Sprint(got) != "[6]" {
		t.Fatalf("poll after the close: %q, want [6]", got)
	}
	resp, body := doRequest(t, http.MethodGet, eioURL(ts, 4, "polling", open.SID), "", nil)
	if code := errorCode(t, resp, body); code != codeUnknownSession {
		t.Fatalf("second poll after the close: code %d", code)
	}
}
