package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// srvFrame builds a frame as a server sends it (unmasked).
func srvFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

type rec struct {
	op      byte
	payload string
}

func (r rec) String() string { return fmt.Sprintf("%d:%q", r.op, r.payload) }

// recSink records what the parser delivers; it asks to stop after stopAt
// frames when stopAt > 0.
type recSink struct {
	got    []rec
	stopAt int
}

func (s *recSink) onFrame(op byte, p []byte) bool {
	s.got = append(s.got, rec{op, string(p)})
	return s.stopAt == 0 || len(s.got) < s.stopAt
}

// parseChunks feeds data in the given pieces and returns what came out and
// how it ended (a protocol error, stopped, or still open with pending
// bytes).
func parseChunks(chunks [][]byte, stopAt int) (got []rec, stopped bool, err error, pending int) {
	var r wsReader
	s := &recSink{stopAt: stopAt}
	for _, ch := range chunks {
		ok, e := r.feed(ch, s)
		if e != nil {
			return s.got, false, e, 0
		}
		if !ok {
			return s.got, true, nil, 0
		}
	}
	return s.got, false, nil, len(r.pending) + len(r.msg)
}

func TestFrameParser(t *testing.T) {
	big := strings.Repeat("x", 70000)
	mid := strings.Repeat("y", 300)
	type want struct {
		frames  []rec
		errPart string // non-empty: a protocol error mentioning this
		pending bool   // bytes of an unfinished frame or message remain
	}
	cases := []struct {
		name string
		in   []byte
		want want
	}{
		{"text", srvFrame(true, opText, []byte("40")), want{frames: []rec{{opText, "40"}}}},
		{"empty text", srvFrame(true, opText, nil), want{frames: []rec{{opText, ""}}}},
		{"two frames", cat(srvFrame(true, opText, []byte("2")), srvFrame(true, opText, []byte("42[\"a\"]"))),
			want{frames: []rec{{opText, "2"}, {opText, `42["a"]`}}}},
		{"16-bit length", srvFrame(true, opText, []byte(mid)), want{frames: []rec{{opText, mid}}}},
		{"64-bit length", srvFrame(true, opText, []byte(big)), want{frames: []rec{{opText, big}}}},
		{"binary", srvFrame(true, opBinary, []byte{0, 1, 2}), want{frames: []rec{{opBinary, "\x00\x01\x02"}}}},
		{"fragments with control frames between",
			cat(srvFrame(false, opText, []byte("42[\"con")), srvFrame(true, opPing, []byte("p1")),
				srvFrame(false, opContinuation, []byte("nection-")), srvFrame(true, opPong, nil),
				srvFrame(true, opContinuation, []byte("test\"]")), srvFrame(true, opText, []byte("3"))),
			want{frames: []rec{{opPing, "p1"}, {opPong, ""}, {opText, `42["connection-test"]`}, {opText, "3"}}}},
		{"fragmented binary", cat(srvFrame(false, opBinary, []byte("a")), srvFrame(true, opContinuation, []byte("b"))),
			want{frames: []rec{{opBinary, "ab"}}}},
		{"empty fragments", cat(srvFrame(false, opText, nil), srvFrame(false, opContinuation, nil), srvFrame(true, opContinuation, nil)),
			want{frames: []rec{{opText, ""}}}},
		{"close", srvFrame(true, opClose, []byte{0x03, 0xe8, 'b', 'y', 'e'}), want{frames: []rec{{opClose, "\x03\xe8bye"}}}},
		{"max control payload", srvFrame(true, opPing, []byte(strings.Repeat("p", 125))), want{frames: []rec{{opPing, strings.Repeat("p", 125)}}}},
		{"partial header", []byte{0x81}, want{pending: true}},
		{"partial extended length", []byte{0x81, 127, 0, 0}, want{pending: true}},
		{"partial payload", srvFrame(true, opText, []byte("hello"))[:4], want{pending: true}},
		{"unfinished message", srvFrame(false, opText, []byte("he")), want{pending: true}},
		{"reserved bit", []byte{0x80 | 0x40 | opText, 0}, want{errPart: "reserved"}},
		{"masked from server", []byte{0x80 | opText, 0x80 | 1, 1, 2, 3, 4, 'x'}, want{errPart: "masked"}},
		{"unknown opcode", []byte{0x80 | 3, 0}, want{errPart: "opcode 3"}},
		{"unknown control opcode", []byte{0x80 | 0xB, 0}, want{errPart: "opcode 11"}},
		{"long control frame", []byte{0x80 | opPing, 126, 0, 126}, want{errPart: "125"}},
		{"fragmented control frame", []byte{opPing, 0}, want{errPart: "fragmented control"}},
		{"continuation first", srvFrame(true, opContinuation, []byte("x")), want{errPart: "continuation"}},
		{"new message inside a fragmented one",
			cat(srvFrame(false, opText, []byte("a")), srvFrame(true, opText, []byte("b"))), want{errPart: "new message"}},
		{"huge length", cat([]byte{0x82, 127}, binary.BigEndian.AppendUint64(nil, 1<<63)), want{errPart: "too large"}},
		{"too large", cat([]byte{0x82, 127}, binary.BigEndian.AppendUint64(nil, maxMessage+1)), want{errPart: "too large"}},
		{"frames before an error are delivered",
			cat(srvFrame(true, opText, []byte("ok")), []byte{0xF1, 0}), want{frames: []rec{{opText, "ok"}}, errPart: "reserved"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			check := func(how string, chunks [][]byte) {
				got, stopped, err, pending := parseChunks(chunks, 0)
				if stopped {
					t.Fatalf("%s: stopped without being asked", how)
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want.frames) {
					t.Errorf("%s: frames %v, want %v", how, got, tc.want.frames)
				}
				if tc.want.errPart != "" {
					if !errors.Is(err, errProtocol) || !strings.Contains(err.Error(), tc.want.errPart) {
						t.Errorf("%s: error %v, want a protocol error about %q", how, err, tc.want.errPart)
					}
				} else if err != nil {
					t.Errorf("%s: %v", how, err)
				}
				if (pending > 0) != tc.want.pending && err == nil {
					t.Errorf("%s: %d bytes pending, want pending=%v", how, pending, tc.want.pending)
				}
			}
			check("whole", [][]byte{tc.in})
			// Split in two at every position (in steps, for the big ones).
			step := max(1, len(tc.in)/300)
			for i := 0; i <= len(tc.in); i += step {
				check(fmt.Sprintf("split at %d", i), [][]byte{tc.in[:i], tc.in[i:]})
			}
			if len(tc.in) < 1000 {
				var bytewise [][]byte
				for i := range tc.in {
					bytewise = append(bytewise, tc.in[i:i+1])
				}
				check("byte by byte", bytewise)
			}
		})
	}
}

func TestFrameParserStops(t *testing.T) {
	in := cat(srvFrame(true, opText, []byte("a")), srvFrame(true, opClose, nil), srvFrame(true, opText, []byte("b")))
	for i := 0; i <= len(in); i++ {
		got, stopped, err, _ := parseChunks([][]byte{in[:i], in[i:]}, 2)
		if err != nil || !stopped || fmt.Sprint(got) != fmt.Sprint([]rec{{opText, "a"}, {opClose, ""}}) {
			t.Fatalf("split at %d: %v stopped=%v err=%v", i, got, stopped, err)
		}
	}
}

// TestFrameParserKeepsSmallBuffers: a connection does not keep a large
// buffer after a large frame went through its pending bytes.
func TestFrameParserKeepsSmallBuffers(t *testing.T) {
	f := srvFrame(true, opText, []byte(strings.Repeat("z", 100000)))
	var r wsReader
	s := &recSink{}
	for _, ch := range [][]byte{f[:10], f[10:50000], f[50000:]} {
		if ok, err := r.feed(ch, s); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if len(s.got) != 1 || len(s.got[0].payload) != 100000 {
		t.Fatalf("got %d frames", len(s.got))
	}
	if cap(r.pending) > smallBuf {
		t.Errorf("pending buffer of %d bytes kept", cap(r.pending))
	}
}

// unmaskClientFrame checks a client frame's header and returns its opcode
// and unmasked payload.
func unmaskClientFrame(t testing.TB, f []byte) (byte, []byte) {
	t.Helper()
	if len(f) < 6 || f[0]&0xf0 != 0x80 || f[1]&0x80 == 0 {
		t.Fatalf("not a final masked frame: % x", f[:min(len(f), 16)])
	}
	n, hdr := int(f[1]&0x7f), 2
	switch n {
	case 126:
		n, hdr = int(binary.BigEndian.Uint16(f[2:])), 4
	case 127:
		n, hdr = int(binary.BigEndian.Uint64(f[2:])), 10
	}
	key := f[hdr : hdr+4]
	p := append([]byte(nil), f[hdr+4:]...)
	if len(p) != n {
		t.Fatalf("payload %d bytes, header says %d", len(p), n)
	}
	for i := range p {
		p[i] ^= key[i&3]
	}
	return f[0] & 0x0f, p
}

func TestAppendClientFrame(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 65535, 65536} {
		payload := bytes.Repeat([]byte("ab"), n)[:n]
		f := appendClientFrame([]byte("junk"), opText, payload)
		if string(f[:4]) != "junk" {
			t.Fatal("prefix overwritten")
		}
		op, got := unmaskClientFrame(t, f[4:])
		if op != opText || !bytes.Equal(got, payload) {
			t.Errorf("n=%d: op %d, payload differs", n, op)
		}
	}
}

func TestParseClose(t *testing.T) {
	for _, c := range []struct {
		in     []byte
		code   int
		reason string
		bad    bool
	}{
		{nil, closeNoStatus, "", false},
		{[]byte{0x03, 0xe8}, 1000, "", false},
		{[]byte{0x0f, 0xa0, 'h', 'i'}, 4000, "hi", false},
		{[]byte{0x03}, 0, "", true},
		{[]byte{0x03, 0xed}, 0, "", true}, // 1005 is never sent
		{[]byte{0x03, 0xe8, 0xff}, 0, "", true},
	} {
		code, reason, err := parseClose(c.in)
		if (err != nil) != c.bad || (!c.bad && (code != c.code || reason != c.reason)) {
			t.Errorf("% x: %d %q %v", c.in, code, reason, err)
		}
	}
	if p := closePayload(closeNoStatus, ""); len(p) != 0 {
		t.Errorf("1005 echoed as % x", p)
	}
	if p := closePayload(closeProtocolError, strings.Repeat("r", 200)); len(p) != 125 || binary.BigEndian.Uint16(p) != 1002 {
		t.Errorf("protocol error close payload: %d bytes", len(p))
	}
}

func TestAcceptKey(t *testing.T) {
	// The example of RFC 6455, section 1.3.
	if got := acceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatal(got)
	}
}

// FuzzFrameParser feeds arbitrary bytes cut at arbitrary points: the
// parser must not panic, must deliver the same frames and end the same way
// however the stream is cut, and must never deliver more payload than it
// was given.
func FuzzFrameParser(f *testing.F) {
	f.Add(srvFrame(true, opText, []byte("42[\"connection-test\",{}]")), []byte{3})
	f.Add(cat(srvFrame(false, opText, []byte("a")), srvFrame(true, opPing, []byte("p")), srvFrame(true, opContinuation, []byte("b"))), []byte{1, 2, 5})
	f.Add(srvFrame(true, opBinary, bytes.Repeat([]byte{7}, 300)), []byte{2, 100})
	f.Add(srvFrame(true, opClose, []byte{3, 232}), []byte{})
	f.Add([]byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}, []byte{4})
	f.Add([]byte{0xF1, 0x80}, []byte{1})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		whole, wStop, wErr, wPend := parseChunks([][]byte{data}, 0)
		var chunks [][]byte
		rest := data
		for _, c := range cuts {
			n := min(int(c), len(rest))
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		chunks = append(chunks, rest)
		cut, cStop, cErr, cPend := parseChunks(chunks, 0)
		if fmt.Sprint(whole) != fmt.Sprint(cut) {
			t.Fatalf("frames differ: whole %v, cut %v", whole, cut)
		}
		if wStop || cStop || (wErr == nil) != (cErr == nil) || (wErr != nil && wErr.Error() != cErr.Error()) {
			t.Fatalf("endings differ: %v / %v", wErr, cErr)
		}
		if wErr != nil && !errors.Is(wErr, errProtocol) {
			t.Fatalf("error not a protocol error: %v", wErr)
		}
		if wErr == nil && wPend != cPend {
			t.Fatalf("pending %d whole, %d cut", wPend, cPend)
		}
		total := 0
		for _, r := range whole {
			total += len(r.payload)
			switch r.op {
			case opText, opBinary, opClose, opPing, opPong:
			default:
				t.Fatalf("delivered opcode %d", r.op)
			}
			if r.op >= opClose && len(r.payload) > 125 {
				t.Fatalf("control frame of %d bytes", len(r.payload))
			}
		}
		if total > len(data) {
			t.Fatalf("%d payload bytes out of %d input bytes", total, len(data))
		}
		// Re-encoding what came out, one frame per message, parses back
		// to the same.
		if wErr == nil {
			var again []byte
			for _, r := range whole {
				again = append(again, srvFrame(true, r.op, []byte(r.payload))...)
			}
			back, _, err, pend := parseChunks([][]byte{again}, 0)
			if err != nil || pend != 0 || fmt.Sprint(back) != fmt.Sprint(whole) {
				t.Fatalf("re-encoded frames parse as %v (%v), want %v", back, err, whole)
			}
		}
	})
}
