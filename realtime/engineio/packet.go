package engineio

import (
	"encoding/base64"
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
	ErrBinaryPacket   = errors.New("engine.io: malformed binary packet")
	ErrMalformedBatch = errors.New("engine.io: malformed payload")
	ErrPayloadTooBig  = errors.New("engine.io: payload too large")
)

// packet is one decoded Engine.IO packet. A binary packet holds its raw
// bytes in data; only messages may be binary.
type packet struct {
	kind   byte
	binary bool // next to kind, so that the struct stays three words
	data   string
}

// decodePacket decodes a text packet, where binary data travels as base64
// after a 'b': "b<base64>" in protocol 4, "b4<base64>" in protocol 3.
func decodePacket(s string, protocol int) (packet, error) {
	if s == "" {
		return packet{}, ErrEmptyPacket
	}
	if s[0] == 'b' {
		return decodeBase64Packet(s[1:], protocol)
	}
	if s[0] < packetOpen || s[0] > packetNoop {
		return packet{}, fmt.Errorf("%w %q", ErrUnknownPacket, s[0])
	}
	return packet{kind: s[0], data: s[1:]}, nil
}

func decodeBase64Packet(s string, protocol int) (packet, error) {
	if protocol < 4 {
		if s == "" || s[0] != packetMessage {
			return packet{}, fmt.Errorf("%w: base64 packet that is not a message", ErrBinaryPacket)
		}
		s = s[1:]
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return packet{}, fmt.Errorf("%w: %v", ErrBinaryPacket, err)
	}
	return packet{kind: packetMessage, data: string(raw), binary: true}, nil
}

// decodeBinaryFrame decodes a binary websocket frame: the whole frame is a
// message's data in protocol 4; protocol 3 puts the packet type, as a byte
// value, first.
func decodeBinaryFrame(b []byte, protocol int) (packet, error) {
	if protocol < 4 {
		if len(b) == 0 || b[0] != packetMessage-'0' {
			return packet{}, fmt.Errorf("%w: binary frame that is not a message", ErrBinaryPacket)
		}
		b = b[1:]
	}
	return packet{kind: packetMessage, data: string(b), binary: true}, nil
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
		p, err := decodePacket(r, protocol)
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

// Binary messages on the way out. A polling queue holds each packet as a
// string: text packets begin with their type character ('0' to '6'); a
// binary message is "b"+base64 for protocol 4 and "b4"+base64 for a
// protocol 3 client that asked for base64, and for other protocol 3
// clients the raw packet of a binary payload: the type as a byte value
// (4), then the data. No text packet begins with a byte below '0'.

const rawMessageType = packetMessage - '0'

// binaryPollEntry encodes data as a polling queue entry.
func binaryPollEntry(data string, protocol int, base64Only bool) string {
	switch {
	case protocol >= 4:
		return "b" + base64.StdEncoding.EncodeToString([]byte(data))
	case base64Only:
		return "b4" + base64.StdEncoding.EncodeToString([]byte(data))
	default:
		return string(rune(rawMessageType)) + data
	}
}

// binaryFrame builds the websocket frame of a binary message: a binary
// frame of the data in protocol 4, of the type byte and the data in
// protocol 3, or a base64 text packet for a client that asked for one.
func binaryFrame(data string, protocol int, base64Only bool) []byte {
	switch {
	case protocol >= 4:
		return appendFrame(nil, opBinary, []byte(data))
	case base64Only:
		return textFrame("b4" + base64.StdEncoding.EncodeToString([]byte(data)))
	default:
		return appendFrame(nil, opBinary, append([]byte{rawMessageType}, data...))
	}
}

// pollEntryFrame turns a queued polling entry into a websocket frame when
// the session upgrades.
func pollEntryFrame(p string, protocol int, base64Only bool) []byte {
	switch {
	case p != "" && p[0] < packetOpen:
		return binaryFrame(p[1:], protocol, base64Only)
	case p != "" && p[0] == 'b' && !base64Only:
		if pk, err := decodePacket(p, protocol); err == nil {
			return binaryFrame(pk.data, protocol, false)
		}
	}
	return textFrame(p)
}

func hasRawBinary(entries []string) bool {
	for _, p := range entries {
		if p != "" && p[0] < packetOpen {
			return true
		}
	}
	return false
}

// Protocol 3 binary payloads, which socket.io-client 2 uses for polling
// where XHR2 is available: each packet is a flag byte (0 text, 1 binary),
// its length in bytes as decimal digits given as byte values 0 to 9, a
// 255 byte, then the packet. A text packet is its UTF-8 text; a binary
// one is the type as a byte value and the data.

// maxLengthDigits bounds a binary payload's length field; MaxPayload keeps
// real lengths far below it.
const maxLengthDigits = 10

// isBinaryPayload reports whether a protocol 3 polling body is a binary
// payload: a text payload begins with a length digit character.
func isBinaryPayload(body []byte) bool { return len(body) > 0 && body[0] <= 1 }

// decodeBinaryPayload splits a protocol 3 binary payload into packets.
func decodeBinaryPayload(body []byte) ([]packet, error) {
	var out []packet
	for len(body) > 0 {
		flag := body[0]
		if flag > 1 {
			return nil, fmt.Errorf("%w: binary payload flag %d", ErrMalformedBatch, flag)
		}
		n, i := 0, 1
		for ; i < len(body) && body[i] != 0xFF; i++ {
			if body[i] > 9 || i > maxLengthDigits {
				return nil, fmt.Errorf("%w: binary payload length", ErrMalformedBatch)
			}
			n = n*10 + int(body[i])
		}
		if i == 1 || i == len(body) || n == 0 || n > len(body)-i-1 {
			return nil, fmt.Errorf("%w: binary payload length", ErrMalformedBatch)
		}
		raw := body[i+1 : i+1+n]
		body = body[i+1+n:]
		var p packet
		var err error
		if flag == 0 {
			if !utf8.Valid(raw) {
				return nil, fmt.Errorf("%w: text packet is not UTF-8", ErrMalformedBatch)
			}
			p, err = decodePacket(string(raw), 3)
		} else {
			p, err = decodeBinaryFrame(raw, 3)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, ErrMalformedBatch
	}
	return out, nil
}

// appendBinaryPayload encodes queued entries as a protocol 3 binary payload.
func appendBinaryPayload(dst []byte, entries []string) []byte {
	var digits [20]byte
	for _, p := range entries {
		flag := byte(0)
		if p != "" && p[0] < packetOpen {
			flag = 1
		}
		dst = append(dst, flag)
		d := strconv.AppendInt(digits[:0], int64(len(p)), 10)
		for _, c := range d {
			dst = append(dst, c-'0')
		}
		dst = append(dst, 0xFF)
		dst = append(dst, p...)
	}
	return dst
}
