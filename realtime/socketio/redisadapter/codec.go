package redisadapter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"

	"paystatus/realtime/socketio"
)

// Socket.IO packet types that cross nodes.
const packetEvent = 2

// encodeMsgpack encodes v as notepack.io and @msgpack/msgpack read it:
// integers in their smallest form, maps with string keys.
func encodeMsgpack(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeAny reads a message that is JSON when it starts with '{' and
// msgpack otherwise, as Node's adapters tell them apart.
func decodeAny(b []byte) (any, error) {
	var v any
	if len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return v, nil
	}
	if err := unmarshalMsgpack(b, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// eventPacket is a Socket.IO event packet as Node's adapters carry it.
func eventPacket(nsp, event string, args []any) map[string]any {
	data := make([]any, 0, len(args)+1)
	data = append(data, event)
	data = append(data, args...)
	return map[string]any{"type": packetEvent, "data": data, "nsp": nsp}
}

func encodeOpts(opts socketio.BroadcastOptions) map[string]any {
	return map[string]any{"rooms": nonNil(opts.Rooms), "except": nonNil(opts.Except), "flags": map[string]any{}}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// decodePacket reads an event packet of namespace nsp.
func decodePacket(v any, nsp string) (event string, args []any, err error) {
	p, ok := v.(map[string]any)
	if !ok {
		return "", nil, fmt.Errorf("%w: packet is not a map", ErrMalformed)
	}
	if pn, present := p["nsp"]; present && pn != nil && asString(pn) != nsp {
		return "", nil, fmt.Errorf("%w: packet of namespace %q", ErrMalformed, asString(pn))
	}
	if t, ok := asInt(p["type"]); !ok || t != packetEvent {
		return "", nil, fmt.Errorf("%w: packet type %v is not an event", ErrMalformed, p["type"])
	}
	data, ok := p["data"].([]any)
	if !ok || len(data) == 0 {
		return "", nil, fmt.Errorf("%w: event without data", ErrMalformed)
	}
	event, ok = data[0].(string)
	if !ok {
		return "", nil, fmt.Errorf("%w: event name is not a string", ErrMalformed)
	}
	return event, data[1:], nil
}

// decodeOpts reads broadcast options; absent lists are empty.
func decodeOpts(v any) socketio.BroadcastOptions {
	m, _ := v.(map[string]any)
	return socketio.BroadcastOptions{Rooms: asStrings(m["rooms"]), Except: asStrings(m["except"])}
}

func asString(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	}
	return ""
}

// asInt reads an integer from JSON (float64), msgpack (any int width) or
// a decimal string (stream fields).
func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int8:
		return int64(n), true
	case int16:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case int:
		return int64(n), true
	case uint8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint64:
		return int64(n), true
	case float64:
		return int64(n), float64(int64(n)) == n
	case float32:
		return int64(n), float32(int64(n)) == n
	case string:
		i, err := strconv.ParseInt(n, 10, 64)
		return i, err == nil
	}
	return 0, false
}

// asStrings reads a list of rooms; Node's rooms may be numbers.
func asStrings(v any) []string {
	list, _ := v.([]any)
	if len(list) == 0 {
		return nil
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		switch x := e.(type) {
		case string:
			out = append(out, x)
		default:
			if i, ok := asInt(x); ok {
				out = append(out, strconv.FormatInt(i, 10))
			}
		}
	}
	return out
}

// socketsPayload describes sockets as Node's fetchSockets answers do.
func socketsPayload(socks []socketio.RemoteSocket) []any {
	out := make([]any, len(socks))
	for i, s := range socks {
		out[i] = map[string]any{
			"id":        s.ID,
			"handshake": map[string]any{"headers": map[string]any{}, "query": map[string]any{}, "auth": map[string]any{}},
			"rooms":     nonNil(s.Rooms),
			"data":      map[string]any{},
		}
	}
	return out
}

// decodeSockets reads the sockets of a fetchSockets answer.
func decodeSockets(v any) []socketio.RemoteSocket {
	list, _ := v.([]any)
	out := make([]socketio.RemoteSocket, 0, len(list))
	for _, e := range list {
		switch e := e.(type) {
		case string: // an answer to SOCKETS: ids alone
			out = append(out, socketio.RemoteSocket{ID: e})
		case map[string]any:
			out = append(out, socketio.RemoteSocket{ID: asString(e["id"]), Rooms: asStrings(e["rooms"])})
		}
	}
	return out
}

// firstArg is what Node's adapters forward of a client's acknowledgement.
func firstArg(args []any) any {
	if len(args) == 0 {
		return nil
	}
	return args[0]
}
