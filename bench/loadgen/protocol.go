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

// fastConnTest reads a `connection-test` event (the part of the frame after
// the Engine.IO '4') without encoding/json, when it has the plain shape both
// servers send: `2[<ackid>]["connection-test",{"key":value,...}]` with no
// whitespace, keys and strings without escapes, integers, booleans and
// nulls as the values of other keys; further arguments are skipped, as
// splitEvent skips them. It returns ok=false for anything
// else, which then goes through parseSIO and json.Unmarshal like every
// event: so whatever those reject is still counted as a bad frame, and what
// ok=true accepts, they accept with the same result (FuzzConnTestFastPath
// checks this).
func fastConnTest(b []byte) (ts, ackID int64, ok bool) {
	const prefix = `["connection-test",{`
	if len(b) < 2 || b[0] != sioEvent {
		return 0, 0, false
	}
	i := 1
	ackID = -1
	if b[i] >= '0' && b[i] <= '9' {
		ackID = 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if i > 18 { // keep clear of int64 overflow
				return 0, 0, false
			}
			ackID = ackID*10 + int64(b[i]-'0')
		}
	}
	if len(b)-i < len(prefix) || string(b[i:i+len(prefix)]) != prefix {
		return 0, 0, false
	}
	i += len(prefix)
	haveTS := false
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			// "key":
			if i >= len(b) || b[i] != '"' {
				return 0, 0, false
			}
			end := plainStringEnd(b, i)
			if end < 0 || end+1 >= len(b) || b[end+1] != ':' {
				return 0, 0, false
			}
			key := b[i+1 : end]
			i = end + 2
			switch {
			case string(key) == "timestamp":
				v, n, isInt := plainInt(b[i:])
				if !isInt {
					return 0, 0, false
				}
				ts, haveTS = v, true
				i += n
			case string(key) == "orderId":
				if i >= len(b) || b[i] != '"' {
					return 0, 0, false
				}
				end := plainStringEnd(b, i)
				if end < 0 {
					return 0, 0, false
				}
				i = end + 1
			case foldsToField(key):
				// encoding/json matches field names case-insensitively.
				return 0, 0, false
			default:
				n := plainValue(b[i:])
				if n <= 0 {
					return 0, 0, false
				}
				i += n
			}
			if i >= len(b) {
				return 0, 0, false
			}
			if b[i] == '}' {
				i++
				break
			}
			if b[i] != ',' {
				return 0, 0, false
			}
			i++
		}
	}
	// Like splitEvent, ignore further arguments (the Go server adds its
	// connection-state-recovery offset) up to the closing bracket.
	if !haveTS || i >= len(b) || b[len(b)-1] != ']' || (b[i] != ']' && b[i] != ',') || (b[i] == ']' && i != len(b)-1) {
		return 0, 0, false
	}
	return ts, ackID, true
}

// plainStringEnd returns the index of the quote closing the JSON string
// that starts at b[i], or -1 if it has escapes or control characters or no
// end.
func plainStringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j
		case c == '\\' || c < 0x20:
			return -1
		}
	}
	return -1
}

// plainInt reads a JSON integer that fits an int64 comfortably (at most 18
// digits) at the start of b, and reports its length. A fraction or
// exponent makes it not plain.
func plainInt(b []byte) (v int64, n int, ok bool) {
	neg := false
	if n < len(b) && b[n] == '-' {
		neg = true
		n++
	}
	start := n
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		if n-start >= 18 {
			return 0, 0, false
		}
		v = v*10 + int64(b[n]-'0')
		n++
	}
	digits := n - start
	if digits == 0 || (digits > 1 && b[start] == '0') {
		return 0, 0, false
	}
	if n < len(b) && (b[n] == '.' || b[n] == 'e' || b[n] == 'E') {
		return 0, 0, false
	}
	if neg {
		v = -v
	}
	return v, n, true
}

// plainValue returns the length of a plain JSON value (string without
// escapes, integer, true, false or null) at the start of b, or 0.
func plainValue(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	switch b[0] {
	case '"':
		return plainStringEnd(b, 0) + 1 // 0 when not plain
	case 't':
		if bytes.HasPrefix(b, []byte("true")) {
			return 4
		}
	case 'f':
		if bytes.HasPrefix(b, []byte("false")) {
			return 5
		}
	case 'n':
		if bytes.HasPrefix(b, []byte("null")) {
			return 4
		}
	default:
		if _, n, ok := plainInt(b); ok {
			return n
		}
	}
	return 0
}

// foldsToField reports whether encoding/json could match key to a field of
// connTest: a case-insensitive match, or any non-ASCII key (Unicode folding
// maps some letters onto ASCII ones).
func foldsToField(key []byte) bool {
	for _, c := range key {
		if c >= 0x80 {
			return true
		}
	}
	return bytes.EqualFold(key, []byte("orderId")) || bytes.EqualFold(key, []byte("timestamp"))
}
