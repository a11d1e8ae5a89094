package main

// Minimal Engine.IO v4 / Socket.IO v5 framing, just what a browser client
// does over the websocket transport: one packet per text frame, no binary
// attachments, default namespace only.

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// Engine.IO packet types (first byte of a frame).
const (
	eioOpen    = '0'
	eioClose   = '1'
	eioPing    = '2'
	eioPong    = '3'
	eioMessage = '4'
)

// Socket.IO packet types (second byte, after the Engine.IO '4').
const (
	sioConnect      = '0'
	sioDisconnect   = '1'
	sioEvent        = '2'
	sioAck          = '3'
	sioConnectError = '4'
)

// sioPacket is a decoded Socket.IO packet carried in an Engine.IO message.
type sioPacket struct {
	Type  byte
	AckID int64 // -1 when the packet carries no ack id
	// For events: the event name and the raw JSON of the first argument.
	Event string
	Arg   []byte
	// For connect / connect_error: the raw JSON payload, if any.
	Data []byte
}

var errNotSocketIO = errors.New("not a socket.io message")

// parseSIO decodes the part of a frame after the Engine.IO message byte.
func parseSIO(b []byte) (sioPacket, error) {
	p := sioPacket{AckID: -1}
	if len(b) == 0 {
		return p, errNotSocketIO
	}
	p.Type = b[0]
	b = b[1:]
	// Namespaces other than "/" are written as "/name," before the id.
	if len(b) > 0 && b[0] == '/' {
		i := bytes.IndexByte(b, ',')
		if i < 0 {
			return p, errors.New("unterminated namespace")
		}
		b = b[i+1:]
	}
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	if n > 0 {
		id, err := strconv.ParseInt(string(b[:n]), 10, 64)
		if err != nil {
			return p, err
		}
		p.AckID = id
		b = b[n:]
	}
	switch p.Type {
	case sioEvent:
		name, arg, err := splitEvent(b)
		if err != nil {
			return p, err
		}
		p.Event, p.Arg = name, arg
	default:
		p.Data = b
	}
	return p, nil
}

// splitEvent takes `["name",arg,...]` and returns the name and the raw first
// argument without decoding it. Socket.IO encoders emit compact JSON, but
// surrounding whitespace is tolerated.
func splitEvent(b []byte) (string, []byte, error) {
	b = bytes.TrimSpace(b)
	if len(b) < 4 || b[0] != '[' || b[len(b)-1] != ']' {
		return "", nil, errors.New("event payload is not a JSON array")
	}
	inner := bytes.TrimSpace(b[1 : len(b)-1])
	if len(inner) == 0 || inner[0] != '"' {
		return "", nil, errors.New("event name missing")
	}
	// Find the closing quote, stepping over escapes.
	end, escaped := -1, false
	for i := 1; i < len(inner); i++ {
		if inner[i] == '\\' {
			escaped = true
			i++
			continue
		}
		if inner[i] == '"' {
			end = i
			break
		}
	}
	if end < 0 {
		return "", nil, errors.New("unterminated event name")
	}
	name := string(inner[1:end])
	if escaped {
		if err := json.Unmarshal(inner[:end+1], &name); err != nil {
			return "", nil, err
		}
	}
	rest := bytes.TrimSpace(inner[end+1:])
	if len(rest) == 0 {
		return name, nil, nil
	}
	if rest[0] != ',' {
		return "", nil, errors.New("malformed event arguments")
	}
	rest = bytes.TrimSpace(rest[1:])
	// Only the first argument matters to us; cut at its end if more follow.
	dec := json.NewDecoder(bytes.NewReader(rest))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return "", nil, err
	}
	return name, raw, nil
}

// encodeEvent builds `42[<ackid>]["name",arg]`.
func encodeEvent(name string, arg any, ackID int64) ([]byte, error) {
	payload, err := json.Marshal([]any{name, arg})
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 0, len(payload)+24)
	buf = append(buf, eioMessage, sioEvent)
	if ackID >= 0 {
		buf = strconv.AppendInt(buf, ackID, 10)
	}
	return append(buf, payload...), nil
}

// encodeAck builds `43<ackid>[arg]`.
func encodeAck(ackID int64, arg any) ([]byte, error) {
	payload, err := json.Marshal([]any{arg})
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 0, len(payload)+24)
	buf = append(buf, eioMessage, sioAck)
	buf = strconv.AppendInt(buf, ackID, 10)
	return append(buf, payload...), nil
}
