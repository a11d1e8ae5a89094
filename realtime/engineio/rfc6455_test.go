package engineio

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"paystatus/realtime/realtimetest"
)

// rawWS is a websocket session spoken byte by byte over TCP, for checking
// what the server puts on the wire.
type rawWS struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	sid  string
}

func dialRaw(t *testing.T, ts *httptest.Server, key string) (*rawWS, *http.Response) {
	t.Helper()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &rawWS{t: t, conn: conn, br: br}, resp
}

// openRaw dials and reads the open packet.
func openRaw(t *testing.T, ts *httptest.Server) *rawWS {
	t.Helper()
	c, resp := dialRaw(t, ts, "dGhlIHNhbXBsZSBub25jZQ==")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d", resp.StatusCode)
	}
	op, p := c.readFrame()
	if op != opText {
		t.Fatalf("first frame opcode %d", op)
	}
	c.sid = realtimetest.ParseOpen(t, string(p)).SID
	return c
}

// readFrame reads one server frame, which must be final and unmasked.
func (c *rawWS) readFrame() (byte, []byte) {
	c.t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		c.t.Fatalf("frame header: %v", err)
	}
	if h[0]&0x80 == 0 || h[1]&0x80 != 0 {
		c.t.Fatalf("server frame header %#x %#x: not final or masked", h[0], h[1])
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var l [2]byte
		_, _ = io.ReadFull(c.br, l[:])
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		_, _ = io.ReadFull(c.br, l[:])
		n = binary.BigEndian.Uint64(l[:])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c.br, p); err != nil {
		c.t.Fatal(err)
	}
	return h[0] & 0x0F, p
}

func (c *rawWS) write(b []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// expectClose requires a close frame with the status code (0: none) and
// then the end of the connection.
func (c *rawWS) expectClose(code uint16) {
	c.t.Helper()
	for {
		op, p := c.readFrame()
		if op == opText && string(p) == "2" {
			continue // a ping that was already on its way
		}
		if op != opClose {
			c.t.Fatalf("frame opcode %d %q, want a close frame", op, p)
		}
		var got uint16
		if len(p) >= 2 {
			got = binary.BigEndian.Uint16(p)
		}
		if got != code || (code == 0 && len(p) != 0) {
			c.t.Fatalf("close frame %v, want status %d", p, code)
		}
		break
	}
	if b, err := io.ReadAll(c.br); err != nil && !strings.Contains(err.Error(), "reset") {
		c.t.Fatalf("connection not closed after the close frame: %v", err)
	} else if len(b) > 0 {
		c.t.Fatalf("%d bytes after the close frame", len(b))
	}
}

func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// TestRFC6455Rules checks, one raw exchange per rule, what the server sends
// back and how the session ends.
func TestRFC6455Rules(t *testing.T) {
	fragment := func(fin bool, op byte, p string) []byte { return clientFrame(fin, op, []byte(p), testMask, 0) }
	withRSV2 := masked(opText, "4x")
	withRSV2[0] |= 0x20
	tests := []struct {
		name      string
		send      []byte
		wantClose uint16 // status of the server's close frame
		reason    string // the session's close reason
	}{
		// 5.5.1: a close frame is answered with a close frame echoing its status.
		{"close echoed with its status", clientFrame(true, opClose, closePayload(1000, "bye"), testMask, 0), 1000, "transport close"},
		{"close with application status echoed", clientFrame(true, opClose, closePayload(4000, ""), testMask, 0), 4000, "transport close"},
		{"empty close echoed empty", masked(opClose, ""), 0, "transport close"},
		// 7.4: reserved and internal-only status codes are protocol errors.
		{"close with one byte", masked(opClose, "x"), closeProtocolError, "parse error"},
		{"close status 1005", clientFrame(true, opClose, closePayload(1005, ""), testMask, 0), closeProtocolError, "parse error"},
		{"close status 999", clientFrame(true, opClose, closePayload(999, ""), testMask, 0), closeProtocolError, "parse error"},
		{"close status 1016", clientFrame(true, opClose, closePayload(1016, ""), testMask, 0), closeProtocolError, "parse error"},
		{"close status 5000", clientFrame(true, opClose, closePayload(5000, ""), testMask, 0), closeProtocolError, "parse error"},
		// 5.5.1 and 8.1: a close reason is UTF-8.
		{"close reason not UTF-8", clientFrame(true, opClose, closePayload(1000, "\xff"), testMask, 0), closeInvalidPayload, "parse error"},
		// 8.1: a text message that is not UTF-8 fails the connection with 1007.
		{"text not UTF-8", masked(opText, "4\xc3\x28"), closeInvalidPayload, "parse error"},
		{"fragmented text not UTF-8", append(fragment(false, opText, "4\xe2\x82"), fragment(true, opContinuation, "x")...), closeInvalidPayload, "parse error"},
		// 5.2 and 5.1: protocol errors fail the connection with 1002.
		{"reserved bit", withRSV2, closeProtocolError, "parse error"},
		{"unmasked frame", []byte{0x81, 0x02, '4', 'x'}, closeProtocolError, "parse error"},
		{"reserved data opcode", masked(0x3, "x"), closeProtocolError, "parse error"},
		{"reserved control opcode", masked(0xB, "x"), closeProtocolError, "parse error"},
		{"continuation without a start", fragment(true, opContinuation, "x"), closeProtocolError, "parse error"},
		{"new message inside a fragmented one", append(fragment(false, opText, "4a"), fragment(true, opText, "4b")...), closeProtocolError, "parse error"},
		{"fragmented ping", fragment(false, opPing, "x"), closeProtocolError, "parse error"},
		// 5.5: a control frame longer than 125 bytes is refused from its
		// header: only the header is sent, and the close comes anyway.
		{"ping longer than 125, header alone", []byte{0x89, 0x80 | 126, 0x00, 0x7E}, closeProtocolError, "parse error"},
		{"close longer than 125, header alone", []byte{0x88, 0x80 | 126, 0x00, 0x80}, closeProtocolError, "parse error"},
		// 7.4.1: a message too big to process gets 1009, from its header.
		{"message larger than MaxPayload, header alone", []byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0x10, 0, 0}, closeTooBig, "parse error"},
		// Valid websocket, invalid Engine.IO: a policy close.
		{"text that is no Engine.IO packet", masked(opText, "abc"), closePolicy, "parse error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			_, ts := startServer(t, Config{PingInterval: time.Minute, MaxPayload: 1 << 16}, rec)
			c := openRaw(t, ts)
			c.write(tt.send)
			c.expectClose(tt.wantClose)
			realtimetest.Eventually(t, 5*time.Second, "the session's close", func() bool { _, ok := rec.closeReason(c.sid); return ok })
			if got, _ := rec.closeReason(c.sid); got != tt.reason {
				t.Fatalf("session close reason %q, want %q", got, tt.reason)
			}
			if msgs := rec.messagesOf(c.sid); len(msgs) != 0 {
				t.Fatalf("messages delivered: %q", msgs)
			}
		})
	}
}

// TestRFC6455Accepted covers what must be accepted: a ping is answered with
// a pong of the same payload, a UTF-8 character split across fragments is
// whole once joined, and a 125-byte ping is the largest allowed.
func TestRFC6455Accepted(t *testing.T) {
	rec := newRecorder()
	_, ts := startServer(t, Config{PingInterval: time.Minute}, rec)
	c := openRaw(t, ts)
	ping := strings.Repeat("p", 125)
	c.write(masked(opPing, ping))
	if op, p := c.readFrame(); op != opPong || string(p) != ping {
		t.Fatalf("answer to ping: opcode %d, %d bytes", op, len(p))
	}
	euro := "4€" // the euro sign is three bytes: split it across frames
	c.write(append(clientFrame(false, opText, []byte(euro[:2]), testMask, 0), clientFrame(true, opContinuation, []byte(euro[2:]), testMask, 0)...))
	realtimetest.Eventually(t, 5*time.Second, `len(rec.messagesOf(c.sid)) == 1`, func() bool { return len(rec.messagesOf(c.sid)) == 1 })
	if got := rec.messagesOf(c.sid)[0]; got != "€" {
		t.Fatalf("fragmented UTF-8 gave %q", got)
	}
}

func TestWebSocketKeyMustBe16BytesOfBase64(t *testing.T) {
	tests := []struct {
		name string
		key  string
		want int
	}{
		{"RFC example", "dGhlIHNhbXBsZSBub25jZQ==", http.StatusSwitchingProtocols},
		{"not base64", "!!!!!!!!!!!!!!!!!!!!!!==", http.StatusBadRequest},
		{"15 bytes", "MTIzNDU2Nzg5MDEyMzQ1", http.StatusBadRequest},
		{"17 bytes", "MTIzNDU2Nzg5MDEyMzQ1Njc=", http.StatusBadRequest},
		{"16 bytes without padding", "dGhlIHNhbXBsZSBub25jZQ", http.StatusBadRequest},
		{"plain text", "hello", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			srv, ts := startServer(t, Config{}, rec)
			_, resp := dialRaw(t, ts, tt.key)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want != http.StatusSwitchingProtocols && srv.Len() != 0 {
				t.Fatalf("%d sessions after a refused handshake", srv.Len())
			}
		})
	}
}

// TestFrameInSmallPiecesIsLinear feeds one large frame a few bytes at a
// time. Each piece used to copy everything received so far; now the
// buffer grows by appending, so allocations stay logarithmic in the size
// and the total work linear.
func TestFrameInSmallPiecesIsLinear(t *testing.T) {
	for _, size := range []int{16 << 10, 64 << 10, 256 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			frame := clientFrame(true, opBinary, bytes.Repeat([]byte{7}, size), testMask, 0)
			pieces := len(frame) / 8
			allocs := testing.AllocsPerRun(3, func() {
				fr := frameReader{maxMessage: 1 << 20}
				got := 0
				for i := 0; i < len(frame); i += 8 {
					if err := fr.feed(frame[i:min(i+8, len(frame))], func(_ byte, p []byte) error { got = len(p); return nil }); err != nil {
						t.Fatal(err)
					}
				}
				if got != size {
					t.Fatalf("got %d bytes, want %d", got, size)
				}
			})
			// A copy per piece would be one allocation per piece.
			if allocs > 64 {
				t.Fatalf("%v allocations for %d pieces", allocs, pieces)
			}
		})
	}
}

// BenchmarkFrameInSmallPieces shows the cost per byte staying flat as the
// frame grows (ns/op divided by the size).
func BenchmarkFrameInSmallPieces(b *testing.B) {
	for _, size := range []int{16 << 10, 64 << 10, 256 << 10} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			frame := clientFrame(true, opBinary, bytes.Repeat([]byte{7}, size), testMask, 0)
			buf := make([]byte, len(frame))
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for i := 0; i < b.N; i++ {
				copy(buf, frame)
				fr := frameReader{maxMessage: 1 << 20}
				for j := 0; j < len(buf); j += 8 {
					if err := fr.feed(buf[j:min(j+8, len(buf))], func(byte, []byte) error { return nil }); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
