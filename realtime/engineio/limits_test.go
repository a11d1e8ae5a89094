package engineio

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"paystatus/realtime/realtimetest"
)

// TestEIO3PingsWithoutPollingAreBounded: a protocol 3 client that only POSTs
// pings and never polls has every echoed pong counted against
// MaxQueuedBytes, and is closed as a slow consumer instead of growing the
// queue for as long as it keeps pinging.
func TestEIO3PingsWithoutPollingAreBounded(t *testing.T) {
	rec := newRecorder()
	srv, ts := startServer(t, Config{AllowEIO3: true, MaxQueuedBytes: 4096, PingInterval: time.Minute, PingTimeout: time.Minute}, rec)
	open, _ := pollOpen(t, ts, 3)
	// Many small pings in one body each time, as a flooding client would.
	batch := strings.Repeat("1:2", 50)
	closed := false
	for i := 0; i < 40 && !closed; i++ {
		resp, _ := post(t, ts, 3, open.SID, batch)
		closed = resp.StatusCode != http.StatusOK
		if reason, ok := rec.closeReason(open.SID); ok {
			closed = true
			if reason != "slow consumer" {
				t.Fatalf("closed for %q, want slow consumer", reason)
			}
		}
	}
	if !closed {
		sess := srv.lookup(open.SID)
		sess.mu.Lock()
		n, bytes := len(sess.pollQueue), sess.pollBytes
		sess.mu.Unlock()
		t.Fatalf("2000 unpolled pings left the session open with %d queued packets (%d bytes counted)", n, bytes)
	}
}

// TestEIO3PongDataIsCapped: the pong echoes a short ping's data, never a
// long one's.
func TestEIO3PongDataIsCapped(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{AllowEIO3: true, PingInterval: time.Minute, PingTimeout: time.Minute}, rec)
	open, _ := pollOpen(t, ts, 3)
	long := strings.Repeat("x", 5000)
	body := "6:2probe" + strconv.Itoa(len(long)+1) + ":2" + long
	if resp, b := post(t, ts, 3, open.SID, body); resp.StatusCode != http.StatusOK {
		t.Fatalf("post: %d %q", resp.StatusCode, b)
	}
	got := poll(t, ts, 3, open.SID)
	if len(got) != 2 || got[0] != "3probe" || got[1] != "3" {
		short := got
		for i := range short {
			if len(short[i]) > 20 {
				short[i] = short[i][:20] + "…"
			}
		}
		t.Fatalf("pongs %q, want [3probe 3]", short)
	}
}

// TestHandshakeQueryIsNotKept: a long handshake query is not held by the
// session once the handshake is answered.
func TestHandshakeQueryIsNotKept(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{}, rec)
	pad := strings.Repeat("a", 8000)
	resp, body := doRequest(t, http.MethodGet, eioURL(ts, 4, "polling", "")+"&pad="+pad, "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("handshake: %d %q", resp.StatusCode, body)
	}
	sess := rec.session(realtimetest.ParseOpen(t, body).SID)
	if q := sess.Query(); q.Get("pad") != "" || q.Get("EIO") != "4" {
		t.Fatalf("session keeps %d bytes of pad, EIO %q", len(q.Get("pad")), q.Get("EIO"))
	}
}

// TestMaxSessionsAnswers503: handshakes beyond MaxSessions are refused with
// 503 and counted; once a session goes, a new one is admitted.
func TestMaxSessionsAnswers503(t *testing.T) {
	rec := newRecorder()
	refused := 0
	srv, ts := startServer(t, Config{MaxSessions: 2, OnSessionsFull: func() { refused++ }}, rec)
	first, _ := pollOpen(t, ts, 4)
	pollOpen(t, ts, 4)
	resp, body := doRequest(t, http.MethodGet, eioURL(ts, 4, "polling", ""), "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third handshake: %d %q, want 503", resp.StatusCode, body)
	}
	if refused != 1 || srv.Len() != 2 {
		t.Fatalf("refused %d, sessions %d; want 1 and 2", refused, srv.Len())
	}
	rec.session(first.SID).closeWith("test", false)
	realtimetest.Eventually(t, 5*time.Second, `srv.Len() == 1`, func() bool { return srv.Len() == 1 })
	pollOpen(t, ts, 4)
}
