package engineio

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecodePacket(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    packet
		wantErr error
	}{
		{"message", "4hello", packet{kind: packetMessage, data: "hello"}, nil},
		{"empty message", "4", packet{kind: packetMessage}, nil},
		{"ping", "2", packet{kind: packetPing}, nil},
		{"ping probe", "2probe", packet{kind: packetPing, data: "probe"}, nil},
		{"pong probe", "3probe", packet{kind: packetPong, data: "probe"}, nil},
		{"open", "0{}", packet{kind: packetOpen, data: "{}"}, nil},
		{"close", "1", packet{kind: packetClose}, nil},
		{"upgrade", "5", packet{kind: packetUpgrade}, nil},
		{"noop", "6", packet{kind: packetNoop}, nil},
		{"non-ASCII data", "4é😀", packet{kind: packetMessage, data: "é😀"}, nil},
		{"empty", "", packet{}, ErrEmptyPacket},
		{"binary", "bAQID", packet{kind: packetMessage, data: "\x01\x02\x03", binary: true}, nil},
		{"binary empty", "b", packet{kind: packetMessage, binary: true}, nil},
		{"binary bad base64", "bA!==", packet{}, ErrBinaryPacket},
		{"type 7", "7x", packet{}, ErrUnknownPacket},
		{"type below 0", "/x", packet{}, ErrUnknownPacket},
		{"letter", "x", packet{}, ErrUnknownPacket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodePacket(tt.in, 4)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("decodePacket(%q) error = %v, want %v", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodePacket(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("decodePacket(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestDecodePayload(t *testing.T) {
	msg := func(s string) packet { return packet{kind: packetMessage, data: s} }
	tests := []struct {
		name     string
		protocol int
		body     string
		want     []packet
	}{
		{"v4 one", 4, "4hello", []packet{msg("hello")}},
		{"v4 several", 4, "4a\x1e2\x1e4é😀\x1e4", []packet{msg("a"), {kind: packetPing}, msg("é😀"), msg("")}},
		{"v4 colon in data", 4, "412:4ab", []packet{msg("12:4ab")}},
		{"v3 one", 3, "6:4hello", []packet{msg("hello")}},
		{"v3 several", 3, "2:4a1:26:2probe", []packet{msg("a"), {kind: packetPing}, {kind: packetPing, data: "probe"}}},
		// "é" is one UTF-16 unit but two bytes.
		{"v3 non-ASCII", 3, "3:4éé1:6", []packet{msg("éé"), {kind: packetNoop}}},
		// "😀" is two UTF-16 units (a surrogate pair) and four bytes.
		{"v3 emoji", 3, "3:4😀4:4a😀", []packet{msg("😀"), msg("a😀")}},
		{"v3 data looks like a prefix", 3, "5:44:4a", []packet{msg("4:4a")}},
		{"v3 separator in data", 3, "3:4\x1e\x1e", []packet{msg("\x1e\x1e")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodePayload(tt.body, tt.protocol)
			if err != nil {
				t.Fatalf("decodePayload(%q, %d): %v", tt.body, tt.protocol, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("decodePayload(%q, %d) = %+v, want %+v", tt.body, tt.protocol, got, tt.want)
			}
		})
	}
}

func TestDecodePayloadMalformed(t *testing.T) {
	tests := []struct {
		name     string
		protocol int
		body     string
		wantErr  error // nil: any error
	}{
		{"v4 empty", 4, "", ErrEmptyPacket},
		{"v4 trailing separator", 4, "4a\x1e", ErrEmptyPacket},
		{"v4 empty between", 4, "4a\x1e\x1e4b", ErrEmptyPacket},
		{"v4 bad base64", 4, "4a\x1eb%%%", ErrBinaryPacket},
		{"v4 unknown type", 4, "4a\x1e9", ErrUnknownPacket},
		{"v3 empty", 3, "", ErrMalformedBatch},
		{"v3 no colon", 3, "4hello", ErrMalformedBatch},
		{"v3 empty length", 3, ":4a", ErrMalformedBatch},
		{"v3 zero length", 3, "0:", ErrMalformedBatch},
		{"v3 negative length", 3, "-1:4", ErrMalformedBatch},
		{"v3 letters in length", 3, "1x:4", ErrMalformedBatch},
		{"v3 length too long", 3, "12345678901:4", ErrMalformedBatch},
		{"v3 length past end", 3, "6:4ab", ErrMalformedBatch},
		{"v3 second length past end", 3, "2:4a9:4b", ErrMalformedBatch},
		{"v3 trailing garbage", 3, "2:4ax", ErrMalformedBatch},
		// The length counts UTF-16 units, not bytes: 3 bytes of "é" plus
		// the type are only 2 units, so 3 runs past the end.
		{"v3 byte length of non-ASCII", 3, "3:4é", ErrMalformedBatch},
		{"v3 splits a surrogate pair", 3, "2:4😀", ErrMalformedBatch},
		{"v3 not UTF-8", 3, "2:4\xff", ErrMalformedBatch},
		{"v3 truncated UTF-8", 3, "2:4\xc3", ErrMalformedBatch},
		{"v3 base64 not a message", 3, "6:b2AQID", ErrBinaryPacket},
		{"v3 bad base64", 3, "4:b4A!", ErrBinaryPacket},
		{"v3 unknown type", 3, "2:9a", ErrUnknownPacket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodePayload(tt.body, tt.protocol)
			if err == nil {
				t.Fatalf("decodePayload(%q, %d) = %+v, want an error", tt.body, tt.protocol, got)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("decodePayload(%q, %d) error = %v, want %v", tt.body, tt.protocol, err, tt.wantErr)
			}
		})
	}
}

func TestAppendPayload(t *testing.T) {
	packets := []string{"4hello", "2probe", "4é😀", "6", "4a:b\x1f"}
	t.Run("v3 encoding", func(t *testing.T) {
		got := string(appendPayload([]byte("x"), packets[:3], 3))
		want := "x6:4hello6:2probe4:4é😀"
		if got != want {
			t.Fatalf("appendPayload = %q, want %q", got, want)
		}
	})
	t.Run("v4 encoding", func(t *testing.T) {
		got := string(appendPayload(nil, packets[:3], 4))
		want := "4hello\x1e2probe\x1e4é😀"
		if got != want {
			t.Fatalf("appendPayload = %q, want %q", got, want)
		}
	})
	t.Run("v4 single has no separator", func(t *testing.T) {
		if got := string(appendPayload(nil, []string{"4a"}, 4)); got != "4a" {
			t.Fatalf("appendPayload = %q, want %q", got, "4a")
		}
	})
	for _, protocol := range []int{3, 4} {
		t.Run("round trip v"+string(rune('0'+protocol)), func(t *testing.T) {
			body := appendPayload(nil, packets, protocol)
			got, err := decodePayload(string(body), protocol)
			if err != nil {
				t.Fatalf("decodePayload(%q): %v", body, err)
			}
			if len(got) != len(packets) {
				t.Fatalf("decoded %d packets from %q, want %d", len(got), body, len(packets))
			}
			for i, p := range got {
				if enc := string(p.kind) + p.data; enc != packets[i] {
					t.Errorf("packet %d = %q, want %q", i, enc, packets[i])
				}
			}
		})
	}
}

func TestUTF16Len(t *testing.T) {
	tests := map[string]int{"": 0, "abc": 3, "é": 1, "😀": 2, "a😀é": 4, "\u20ac": 1}
	for s, want := range tests {
		if got := utf16Len(s); got != want {
			t.Errorf("utf16Len(%q) = %d, want %d", s, got, want)
		}
	}
}

func FuzzDecodePayload(f *testing.F) {
	f.Add("4hello", 4)
	f.Add("4a\x1e2\x1e4é😀", 4)
	f.Add("", 4)
	f.Add("4a\x1e", 4)
	f.Add("bAQID", 4)
	f.Add("6:4hello", 3)
	f.Add("2:4a1:26:2probe", 3)
	f.Add("3:4😀4:4a😀", 3)
	f.Add("3:4éé", 3)
	f.Add("2:4\xff", 3)
	f.Add("2:4😀", 3)
	f.Add("12345678901:4", 3)
	f.Add("-1:4", 3)
	f.Add("+2:4a", 3)
	f.Fuzz(func(t *testing.T, body string, protocol int) {
		if protocol != 3 {
			protocol = 4
		}
		packets, err := decodePayload(body, protocol)
		if err != nil {
			return
		}
		if len(packets) == 0 {
			t.Fatalf("decodePayload(%q, %d) succeeded with no packets", body, protocol)
		}
		enc := make([]string, len(packets))
		for i, p := range packets {
			enc[i] = string(p.kind) + p.data
			if p.binary {
				enc[i] = binaryPollEntry(p.data, protocol, true)
			}
		}
		again := appendPayload(nil, enc, protocol)
		if protocol == 4 && string(again) != body && !strings.Contains(body, "b") {
			t.Fatalf("v4 re-encoding %q gave %q", body, again)
		}
		got, err := decodePayload(string(again), protocol)
		if err != nil {
			t.Fatalf("decoding re-encoded %q (from %q): %v", again, body, err)
		}
		if !reflect.DeepEqual(got, packets) {
			t.Fatalf("round trip of %q: %+v, want %+v", body, got, packets)
		}
		if protocol == 3 && strings.Count(string(again), ":") < len(packets) {
			t.Fatalf("v3 re-encoding %q has fewer prefixes than packets", again)
		}
	})
}
