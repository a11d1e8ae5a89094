package engineio

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Engine.IO packet types, as the first character of a text packet.
const (
	packetOpen    = '0'
	packetClose   = '1'
	packetPing    = '2'
	packetPong    = '3'
	packetMessage = '4'
	packetUpgrade = '5'
	packetNoop    = '6'
)

// Errors a peer's malformed input produces; the session is closed on them.
var (
	ErrEmptyPacket    = errors.New("engine.io: empty packet")
	ErrUnknownPacket  = errors.New("engine.io: unknown packet type")
	ErrBinaryPacket   = errors.New("engine.io: binary packets are not supported")
	ErrMalformedBatch = errors.New("engine.io: malformed payload")
	ErrPayloadTooBig  = errors.New("engine.io: payload too large")
)

// packet is one decoded Engine.IO packet.
type packet struct {
	kind byte
	data string
}

func decodePacket(s string) (packet, error) {
	if s == "" {
		return packet{}, ErrEmptyPacket
	}
	if s[0] == 'b' {
		return packet{}, ErrBinaryPacket
	}
	if s[0] < packetOpen || s[0] > packetNoop {
		return packet{}, fmt.Errorf("%w %q", ErrUnknownPacket, s[0])
	}
	return packet{kind: s[0], data: s[1:]}, nil
}

// recordSeparator joins packets in an Engine.IO v4 polling payload.
const recordSeparator = '\x1e'

// decodePayload splits a polling request body into packets. Version 4
// separates them with 0x1e; version 3 prefixes each with its length in
// UTF-16 code units and a colon.
func decodePayload(body string, protocol int) ([]packet, error) {
	var raw []string
	if protocol >= 4 {
		raw = strings.Split(body, string(rune(recordSeparator)))
	} else {
		var err error
		if raw, err = splitLengthPrefixed(body); err != nil {
			return nil, err
		}
	}
	out := make([]packet, 0, len(raw))
	for _, r := range raw {
		p, err := decodePacket(r)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func splitLengthPrefixed(body string) ([]string, error) {
	if body == "" {
		return nil, ErrMalformedBatch
	}
	var out []string
	for len(body) > 0 {
		colon := strings.IndexByte(body, ':')
		if colon <= 0 || colon > 10 {
			return nil, ErrMalformedBatch
		}
		n, err := strconv.Atoi(body[:colon])
		if err != nil || n <= 0 {
			return nil, ErrMalformedBatch
		}
		body = body[colon+1:]
		end, ok := utf16Offset(body, n)
		if !ok {
			return nil, ErrMalformedBatch
		}
		out = append(out, body[:end])
		body = body[end:]
	}
	return out, nil
}

// utf16Offset returns the byte offset in s after n UTF-16 code units, the
// unit JavaScript string lengths count in.
func utf16Offset(s string, n int) (int, bool) {
	units := 0
	for i, r := range s {
		if units == n {
			return i, true
		}
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return 0, false // not UTF-8: the lengths cannot be trusted
			}
		}
		units += utf16.RuneLen(r)
		if units > n {
			return 0, false
		}
	}
	return len(s), units == n
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// appendPayload appends encoded packets to a polling response body.
func appendPayload(dst []byte, packets []string, protocol int) []byte {
	for i, p := range packets {
		if protocol >= 4 {
			if i > 0 {
				dst = append(dst, recordSeparator)
			}
		} else {
			dst = strconv.AppendInt(dst, int64(utf16Len(p)), 10)
			dst = append(dst, ':')
		}
		dst = append(dst, p...)
	}
	return dst
}
