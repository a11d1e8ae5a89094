package engineio

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"strings"
)

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

var (
	errNotWebSocket    = errors.New("not a websocket handshake")
	errFrameUnmasked   = errors.New("websocket: client frame not masked")
	errFrameReserved   = errors.New("websocket: reserved bits or opcode set")
	errFrameControl    = errors.New("websocket: malformed control frame")
	errFrameSequence   = errors.New("websocket: unexpected continuation")
	errFrameTooLarge   = errors.New("websocket: message too large")
	errWebSocketClosed = errors.New("websocket: closed by peer")
)

const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// upgradeWebSocket completes the RFC 6455 handshake and returns the raw
// connection with any bytes the client sent early. No extension is
// negotiated: socket.io clients work without permessage-deflate.
func upgradeWebSocket(w http.ResponseWriter, r *http.Request) (net.Conn, []byte, error) {
	key := r.Header.Get("Sec-Websocket-Key")
	if r.Method != http.MethodGet || key == "" ||
		!headerHasToken(r.Header, "Connection", "upgrade") ||
		!headerHasToken(r.Header, "Upgrade", "websocket") ||
		r.Header.Get("Sec-Websocket-Version") != "13" {
		return nil, nil, errNotWebSocket
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("websocket: response cannot be hijacked")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	sum := sha1.Sum([]byte(key + websocketGUID))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n"
	if _, err := conn.Write([]byte(resp)); err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return conn, bufferedBytes(rw.Reader), nil
}

func bufferedBytes(r *bufio.Reader) []byte {
	if r == nil || r.Buffered() == 0 {
		return nil
	}
	b, _ := r.Peek(r.Buffered())
	return append([]byte(nil), b...)
}

// appendFrame appends one unmasked server frame.
func appendFrame(dst []byte, opcode byte, payload []byte) []byte {
	dst = append(dst, 0x80|opcode)
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

// textFrame builds a text frame holding s.
func textFrame(s string) []byte {
	return appendFrame(make([]byte, 0, len(s)+10), opText, []byte(s))
}

// frameReader reassembles client frames from bytes as they arrive. It holds
// no buffer between messages unless a frame is split across reads.
type frameReader struct {
	maxMessage int
	pending    []byte // bytes of an incomplete frame
	fragments  []byte // payload of an unfinished fragmented message
	fragOp     byte
}

// frameHandler receives each complete message or control frame.
type frameHandler func(opcode byte, payload []byte) error

// feed parses as many frames as data completes. Payloads passed to handle
// are only valid during the call.
func (fr *frameReader) feed(data []byte, handle frameHandler) error {
	if len(fr.pending) > 0 {
		fr.pending = append(fr.pending, data...)
		data = fr.pending
	}
	for {
		n, err := fr.parseOne(data, handle)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		data = data[n:]
	}
	if len(data) == 0 {
		fr.pending = nil
	} else {
		fr.pending = append([]byte(nil), data...)
	}
	return nil
}

// parseOne parses one frame from data, returning the bytes it used, or 0
// when data holds no complete frame.
func (fr *frameReader) parseOne(data []byte, handle frameHandler) (int, error) {
	if len(data) < 2 {
		return 0, nil
	}
	fin := data[0]&0x80 != 0
	if data[0]&0x70 != 0 {
		return 0, errFrameReserved
	}
	opcode := data[0] & 0x0F
	if data[1]&0x80 == 0 {
		return 0, errFrameUnmasked
	}
	length := uint64(data[1] & 0x7F)
	pos := 2
	switch length {
	case 126:
		if len(data) < 4 {
			return 0, nil
		}
		length = uint64(binary.BigEndian.Uint16(data[2:4]))
		pos = 4
	case 127:
		if len(data) < 10 {
			return 0, nil
		}
		length = binary.BigEndian.Uint64(data[2:10])
		pos = 10
	}
	if length > uint64(fr.maxMessage) {
		return 0, errFrameTooLarge
	}
	if opcode < opClose && uint64(len(fr.fragments))+length > uint64(fr.maxMessage) {
		return 0, errFrameTooLarge // control frames may interleave and do not count
	}
	if len(data) < pos+4+int(length) {
		return 0, nil
	}
	var mask [4]byte
	copy(mask[:], data[pos:pos+4])
	pos += 4
	payload := data[pos : pos+int(length)]
	for i := range payload {
		payload[i] ^= mask[i&3]
	}
	used := pos + int(length)
	switch {
	case opcode >= opClose:
		if !fin || length > 125 || opcode > opPong {
			return 0, errFrameControl
		}
		return used, handle(opcode, payload)
	case opcode == opContinuation:
		if fr.fragOp == 0 {
			return 0, errFrameSequence
		}
		fr.fragments = append(fr.fragments, payload...)
		if fin {
			op, msg := fr.fragOp, fr.fragments
			fr.fragOp, fr.fragments = 0, nil
			return used, handle(op, msg)
		}
		return used, nil
	case opcode == opText || opcode == opBinary:
		if fr.fragOp != 0 {
			return 0, errFrameSequence
		}
		if fin {
			return used, handle(opcode, payload)
		}
		fr.fragOp = opcode
		fr.fragments = append([]byte(nil), payload...)
		return used, nil
	default:
		return 0, errFrameReserved
	}
}
