package engineio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// clientFrame builds a masked client frame the way RFC 6455 section 5.2
// lays it out, choosing the shortest length encoding unless lenBytes
// forces one (2 for 16-bit, 8 for 64-bit).
func clientFrame(fin bool, opcode byte, payload []byte, mask [4]byte, lenBytes int) []byte {
	var b []byte
	first := opcode & 0x0F
	if fin {
		first |= 0x80
	}
	b = append(b, first)
	n := len(payload)
	if lenBytes == 0 {
		switch {
		case n < 126:
		case n <= 0xFFFF:
			lenBytes = 2
		default:
			lenBytes = 8
		}
	}
	switch lenBytes {
	case 2:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	case 8:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	default:
		b = append(b, 0x80|byte(n))
	}
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i&3])
	}
	return b
}

var testMask = [4]byte{0x37, 0xfa, 0x21, 0x3d}

func masked(opcode byte, payload string) []byte {
	return clientFrame(true, opcode, []byte(payload), testMask, 0)
}

type frameMsg struct {
	op   byte
	data string
}

// collect feeds chunks in order and returns the messages seen and the
// first error.
func collect(fr *frameReader, chunks ...[]byte) ([]frameMsg, error) {
	var got []frameMsg
	for _, c := range chunks {
		err := fr.feed(c, func(op byte, p []byte) error {
			got = append(got, frameMsg{op, string(p)})
			return nil
		})
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

func TestFrameReaderMaskedText(t *testing.T) {
	// The RFC's own example: a masked "Hello".
	rfc := []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
	fr := frameReader{maxMessage: 1024}
	got, err := collect(&fr, rfc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != (frameMsg{opText, "Hello"}) {
		t.Fatalf("got %+v, want one text frame Hello", got)
	}
	if fr.pending != nil || fr.fragments != nil {
		t.Fatalf("reader holds buffers after a whole frame: pending %d, fragments %d", len(fr.pending), len(fr.fragments))
	}
	if !bytes.Equal(masked(opText, "Hello"), []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}) {
		t.Fatal("clientFrame does not build the RFC example")
	}
}

func TestFrameReaderSeveralFramesInOneFeed(t *testing.T) {
	fr := frameReader{maxMessage: 1024}
	data := append(masked(opText, "4a"), masked(opText, "4bc")...)
	data = append(data, masked(opBinary, "\x00\x01")...)
	got, err := collect(&fr, data)
	if err != nil {
		t.Fatal(err)
	}
	want := []frameMsg{{opText, "4a"}, {opText, "4bc"}, {opBinary, "\x00\x01"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestFrameReaderByteByByte(t *testing.T) {
	sizes := []int{0, 5, 125, 126, 300, 70000}
	for _, size := range sizes {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			payload := strings.Repeat("x", size)
			frame := masked(opText, payload)
			frame = append(frame, masked(opText, "tail")...)
			fr := frameReader{maxMessage: 1 << 20}
			var chunks [][]byte
			for i := range frame {
				chunks = append(chunks, []byte{frame[i]})
			}
			got, err := collect(&fr, chunks...)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0] != (frameMsg{opText, payload}) || got[1] != (frameMsg{opText, "tail"}) {
				t.Fatalf("got %d messages (first %d bytes), want the payload and tail", len(got), len(first(got).data))
			}
			if len(fr.pending) != 0 {
				t.Fatalf("%d bytes left pending", len(fr.pending))
			}
		})
	}
}

func first(m []frameMsg) frameMsg {
	if len(m) == 0 {
		return frameMsg{}
	}
	return m[0]
}

func TestFrameReaderLengthEncodings(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		lenBytes int
	}{
		{"7-bit 125", 125, 0},
		{"16-bit 126", 126, 2},
		{"16-bit 65535", 65535, 2},
		{"64-bit 65536", 65536, 8},
		// Non-minimal encodings are legal enough to accept.
		{"16-bit holding 3", 3, 2},
		{"64-bit holding 200", 200, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := bytes.Repeat([]byte{'z'}, tt.size)
			payload[0], payload[len(payload)-1] = 'A', 'Z'
			frame := clientFrame(true, opText, payload, testMask, tt.lenBytes)
			fr := frameReader{maxMessage: 1 << 20}
			// Split inside the extended length to check partial headers.
			got, err := collect(&fr, frame[:3], frame[3:9], frame[9:])
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].data != string(payload) {
				t.Fatalf("got %d messages, want the %d-byte payload", len(got), tt.size)
			}
		})
	}
}

func TestFrameReaderFragmentedWithPing(t *testing.T) {
	data := clientFrame(false, opText, []byte("4hel"), testMask, 0)
	data = append(data, clientFrame(true, opPing, []byte("are you there"), [4]byte{1, 2, 3, 4}, 0)...)
	data = append(data, clientFrame(false, opContinuation, []byte("lo "), [4]byte{9, 8, 7, 6}, 0)...)
	data = append(data, clientFrame(true, opContinuation, []byte("world"), testMask, 0)...)
	data = append(data, masked(opText, "4next")...)
	want := []frameMsg{{opPing, "are you there"}, {opText, "4hello world"}, {opText, "4next"}}

	t.Run("one feed", func(t *testing.T) {
		fr := frameReader{maxMessage: 1024}
		got, err := collect(&fr, bytes.Clone(data))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		if fr.fragOp != 0 || fr.fragments != nil {
			t.Fatalf("fragment state left behind: op %d, %d bytes", fr.fragOp, len(fr.fragments))
		}
	})
	t.Run("byte by byte", func(t *testing.T) {
		fr := frameReader{maxMessage: 1024}
		var chunks [][]byte
		for _, c := range data {
			chunks = append(chunks, []byte{c})
		}
		got, err := collect(&fr, chunks...)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	})
}

func TestFrameReaderErrors(t *testing.T) {
	unmasked := []byte{0x81, 0x02, 'h', 'i'}
	withRSV1 := masked(opText, "hi")
	withRSV1[0] |= 0x40
	withRSV3 := masked(opText, "hi")
	withRSV3[0] |= 0x10
	tests := []struct {
		name    string
		max     int
		data    []byte
		wantErr error
	}{
		{"unmasked", 1024, unmasked, errFrameUnmasked},
		{"rsv1", 1024, withRSV1, errFrameReserved},
		{"rsv3", 1024, withRSV3, errFrameReserved},
		{"reserved data opcode", 1024, masked(0x3, "x"), errFrameReserved},
		{"reserved control opcode", 1024, masked(0xB, "x"), errFrameControl},
		{"oversize 7-bit", 10, masked(opText, "01234567890"), errFrameTooLarge},
		{"oversize 16-bit", 1000, masked(opText, strings.Repeat("a", 1001)), errFrameTooLarge},
		// A 64-bit length of 2^40 with nothing behind it: the header alone
		// must be enough to refuse.
		{"oversize 64-bit header only", 1 << 20, []byte{0x81, 0x80 | 127, 0, 0, 1, 0, 0, 0, 0, 0}, errFrameTooLarge},
		{"oversize fragments", 10, append(clientFrame(false, opText, []byte("012345"), testMask, 0),
			clientFrame(true, opContinuation, []byte("6789A"), testMask, 0)...), errFrameTooLarge},
		{"continuation without start", 1024, clientFrame(true, opContinuation, []byte("x"), testMask, 0), errFrameSequence},
		{"text inside fragmented message", 1024, append(clientFrame(false, opText, []byte("a"), testMask, 0),
			masked(opText, "b")...), errFrameSequence},
		{"fragmented ping", 1024, clientFrame(false, opPing, []byte("x"), testMask, 0), errFrameControl},
		{"long ping", 1024, masked(opPing, strings.Repeat("p", 126)), errFrameControl},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := frameReader{maxMessage: tt.max}
			got, err := collect(&fr, tt.data)
			if err == nil {
				t.Fatalf("no error; messages %+v", got)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if !isProtocolError(err) {
				t.Fatalf("error %v is not counted as a protocol error", err)
			}
		})
	}
}

func TestFrameReaderHandlerErrorStops(t *testing.T) {
	boom := errors.New("boom")
	fr := frameReader{maxMessage: 1024}
	calls := 0
	data := append(masked(opText, "a"), masked(opText, "b")...)
	err := fr.feed(data, func(byte, []byte) error { calls++; return boom })
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("err %v after %d calls, want boom after 1", err, calls)
	}
}

func TestFrameReaderExactLimit(t *testing.T) {
	fr := frameReader{maxMessage: 10}
	data := append(clientFrame(false, opText, []byte("01234"), testMask, 0),
		clientFrame(true, opContinuation, []byte("56789"), testMask, 0)...)
	got, err := collect(&fr, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].data != "0123456789" {
		t.Fatalf("got %+v", got)
	}
}

// RFC 6455 section 5.4 lets control frames arrive between the fragments of
// a message; their size has nothing to do with the message's.
func TestFrameReaderPingDuringLargeFragmentedMessage(t *testing.T) {
	fr := frameReader{maxMessage: 10}
	data := clientFrame(false, opText, []byte("01234567"), testMask, 0)
	data = append(data, clientFrame(true, opPing, []byte("ping!"), testMask, 0)...)
	data = append(data, clientFrame(true, opContinuation, []byte("89"), testMask, 0)...)
	got, err := collect(&fr, data)
	if err != nil {
		t.Fatalf("ping between fragments refused: %v", err)
	}
	want := []frameMsg{{opPing, "ping!"}, {opText, "0123456789"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestAppendFrame(t *testing.T) {
	tests := []struct {
		size   int
		header []byte
	}{
		{0, []byte{0x81, 0}},
		{1, []byte{0x81, 1}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xFF, 0xFF}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
		{70000, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.size), func(t *testing.T) {
			payload := bytes.Repeat([]byte{'q'}, tt.size)
			got := appendFrame([]byte("pre"), opText, payload)
			if !bytes.HasPrefix(got, []byte("pre")) {
				t.Fatal("appendFrame dropped dst")
			}
			got = got[3:]
			if !bytes.Equal(got[:len(tt.header)], tt.header) {
				t.Fatalf("header % x, want % x", got[:len(tt.header)], tt.header)
			}
			if !bytes.Equal(got[len(tt.header):], payload) {
				t.Fatalf("payload differs: %d bytes after the header, want %d", len(got)-len(tt.header), tt.size)
			}
		})
	}
	t.Run("opcodes", func(t *testing.T) {
		if got := appendFrame(nil, opPong, []byte("x")); !bytes.Equal(got, []byte{0x8A, 1, 'x'}) {
			t.Fatalf("pong frame % x", got)
		}
		if got := appendFrame(nil, opClose, []byte{0x03, 0xE8}); !bytes.Equal(got, []byte{0x88, 2, 0x03, 0xE8}) {
			t.Fatalf("close frame % x", got)
		}
		if got := textFrame("4hi"); !bytes.Equal(got, []byte{0x81, 3, '4', 'h', 'i'}) {
			t.Fatalf("text frame % x", got)
		}
	})
}

// serverFrameAsClient turns an unmasked server frame into the masked frame
// a client would send, so that appendFrame and the reader check each other.
func serverFrameAsClient(frame []byte, mask [4]byte) []byte {
	hdr := 2
	switch frame[1] & 0x7F {
	case 126:
		hdr = 4
	case 127:
		hdr = 10
	}
	out := append([]byte(nil), frame[:hdr]...)
	out[1] |= 0x80
	out = append(out, mask[:]...)
	for i, c := range frame[hdr:] {
		out = append(out, c^mask[i&3])
	}
	return out
}

func TestAppendFrameReadBack(t *testing.T) {
	for _, size := range []int{0, 125, 126, 65535, 65536, 200000} {
		payload := bytes.Repeat([]byte{'r'}, size)
		fr := frameReader{maxMessage: 1 << 20}
		got, err := collect(&fr, serverFrameAsClient(appendFrame(nil, opBinary, payload), testMask))
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if len(got) != 1 || got[0].op != opBinary || len(got[0].data) != size {
			t.Fatalf("size %d: read back %+v", size, len(got))
		}
	}
}

func FuzzFrameReader(f *testing.F) {
	f.Add(masked(opText, "4hello"), uint16(3))
	f.Add(append(masked(opText, "4a"), masked(opPing, "p")...), uint16(7))
	f.Add(clientFrame(true, opText, bytes.Repeat([]byte{'x'}, 300), testMask, 0), uint16(2))
	f.Add(clientFrame(true, opText, []byte("abc"), testMask, 8), uint16(5))
	f.Add(append(clientFrame(false, opText, []byte("4he"), testMask, 0),
		clientFrame(true, opContinuation, []byte("llo"), testMask, 0)...), uint16(9))
	f.Add([]byte{0x81, 0x02, 'h', 'i'}, uint16(1))
	f.Add([]byte{0x81, 0x80 | 127, 0xFF, 0, 0, 0, 0, 0, 0, 0}, uint16(4))
	f.Add(clientFrame(true, opContinuation, []byte("x"), testMask, 0), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		const limit = 4096
		run := func(chunks ...[]byte) ([]frameMsg, frameReader, error) {
			fr := frameReader{maxMessage: limit}
			var got []frameMsg
			var err error
			for _, c := range chunks {
				err = fr.feed(c, func(op byte, p []byte) error {
					if len(p) > limit {
						t.Fatalf("message of %d bytes passed a %d limit", len(p), limit)
					}
					got = append(got, frameMsg{op, string(p)})
					return nil
				})
				if err != nil {
					break
				}
			}
			return got, fr, err
		}
		whole, wfr, werr := run(bytes.Clone(data))
		cut := 0
		if len(data) > 0 {
			cut = int(split) % (len(data) + 1)
		}
		parts, pfr, perr := run(bytes.Clone(data[:cut]), bytes.Clone(data[cut:]))
		if (werr == nil) != (perr == nil) {
			t.Fatalf("cut at %d: whole error %v, in parts %v", cut, werr, perr)
		}
		if fmt.Sprint(whole) != fmt.Sprint(parts) {
			t.Fatalf("cut at %d: whole gave %q, parts gave %q", cut, whole, parts)
		}
		if werr == nil && !bytes.Equal(wfr.pending, pfr.pending) {
			t.Fatalf("cut at %d: pending %x vs %x", cut, wfr.pending, pfr.pending)
		}
		if werr == nil && len(wfr.pending) > limit+14 {
			t.Fatalf("%d bytes pending with a %d limit", len(wfr.pending), limit)
		}
	})
}
