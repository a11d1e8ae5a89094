package socketio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"paystatus/realtime/engineio"
)

// Socket.IO packet types.
const (
	packetConnect      = '0'
	packetDisconnect   = '1'
	packetEvent        = '2'
	packetAck          = '3'
	packetConnectError = '4'
	packetBinaryEvent  = '5'
	packetBinaryAck    = '6'
)

// packet is one decoded Socket.IO packet; data is raw JSON or empty.
type packet struct {
	kind        byte
	nsp         string
	ackID       int // -1 when absent
	data        string
	attachments int // binary event or ack: how many binary messages follow
}

func decodePacket(s string) (packet, error) {
	p := packet{nsp: "/", ackID: -1}
	if s == "" {
		return p, ErrMalformedPacket
	}
	p.kind = s[0]
	if p.kind < packetConnect || p.kind > packetBinaryAck {
		return p, fmt.Errorf("%w: type %q", ErrMalformedPacket, s[0])
	}
	rest := s[1:]
	if p.kind == packetBinaryEvent || p.kind == packetBinaryAck {
		n, after, err := attachmentCount(rest)
		if err != nil {
			return p, err
		}
		p.attachments, rest = n, after
	}
	if strings.HasPrefix(rest, "/") {
		end := strings.IndexByte(rest, ',')
		if end < 0 {
			end = len(rest)
		}
		p.nsp = rest[:end]
		if q := strings.IndexByte(p.nsp, '?'); q >= 0 {
			p.nsp = p.nsp[:q] // socket.io-client 2 sends the query here
		}
		rest = rest[min(end+1, len(rest)):]
	}
	digits := 0
	for digits < len(rest) && digits < 10 && rest[digits] >= '0' && rest[digits] <= '9' {
		digits++
	}
	if digits > 0 {
		id, err := strconv.Atoi(rest[:digits])
		if err != nil {
			return p, ErrMalformedPacket
		}
		p.ackID = id
		rest = rest[digits:]
	}
	p.data = rest
	switch p.kind {
	case packetEvent, packetBinaryEvent:
		if !strings.HasPrefix(rest, "[") {
			return p, fmt.Errorf("%w: event without an array", ErrMalformedPacket)
		}
	case packetAck, packetBinaryAck:
		if p.ackID < 0 || !strings.HasPrefix(rest, "[") {
			return p, fmt.Errorf("%w: ack without id or array", ErrMalformedPacket)
		}
	}
	return p, nil
}

// decodeEvent splits an event's JSON array into its name and arguments.
func decodeEvent(data string) (string, []any, error) {
	list, err := decodeArray(data)
	if err != nil {
		return "", nil, err
	}
	if len(list) == 0 {
		return "", nil, fmt.Errorf("%w: event without a name", ErrMalformedPacket)
	}
	name, ok := list[0].(string)
	if !ok {
		return "", nil, fmt.Errorf("%w: event name is not a string", ErrMalformedPacket)
	}
	return name, list[1:], nil
}

// isJSONArray reports whether data is one well-formed JSON array, as
// decodeArray would accept, without building its values.
func isJSONArray(data string) bool {
	trimmed := strings.TrimLeft(data, " \t\r\n")
	return strings.HasPrefix(trimmed, "[") && json.Valid([]byte(trimmed))
}

// decodeArray decodes the JSON array of an event or an ack.
func decodeArray(data string) ([]any, error) {
	var list []any
	if err := json.Unmarshal([]byte(data), &list); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedPacket, err)
	}
	return list, nil
}

// encode builds a packet's text: type, namespace unless root, ack id, data.
func encode(kind byte, nsp string, ackID int, data []byte) string {
	return encodeAfter(0, kind, nsp, ackID, data)
}

// encodeAfter is encode with prefix in front, unless it is 0.
func encodeAfter(prefix, kind byte, nsp string, ackID int, data []byte) string {
	var b strings.Builder
	b.Grow(1 + len(nsp) + len(data) + 12)
	if prefix != 0 {
		b.WriteByte(prefix)
	}
	b.WriteByte(kind)
	if nsp != "/" {
		b.WriteString(nsp)
		b.WriteByte(',')
	}
	if ackID >= 0 {
		b.WriteString(strconv.Itoa(ackID))
	}
	b.Write(data)
	return b.String()
}

// eventMessage builds an event packet as an Engine.IO message, and returns
// the Socket.IO packet too, which shares the message's bytes. Built
// separately, an emitted update's JSON was copied four times.
func eventMessage(nsp string, ackID int, event string, args []any, extra string) (*engineio.Message, string, error) {
	packet, err := buildEvent(engineio.MessageType, nsp, ackID, event, args, extra)
	if err != nil {
		return nil, "", err
	}
	return engineio.NewMessagePacket(packet), packet[1:], nil
}

// jsonBuffers hold an event's JSON until it is copied into the packet.
var jsonBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// buildEvent encodes an event packet, after prefix unless it is 0; extra is
// appended after args (the recovery offset) when not empty.
func buildEvent(prefix byte, nsp string, ackID int, event string, args []any, extra string) (string, error) {
	list := make([]any, 0, len(args)+2)
	list = append(list, event)
	list = append(list, args...)
	if extra != "" {
		list = append(list, extra)
	}
	buf := jsonBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 64<<10 { // one huge event should not pin its buffer
			buf.Reset()
			jsonBuffers.Put(buf)
		}
	}()
	// Encode escapes as Marshal does, and adds a newline.
	if err := json.NewEncoder(buf).Encode(list); err != nil {
		return "", err
	}
	return encodeAfter(prefix, packetEvent, nsp, ackID, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})), nil
}
