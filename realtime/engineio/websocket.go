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
	"unicode/utf8"

	"github.com/gobwas/ws"
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
	errInvalidUTF8     = errors.New("websocket: text message is not valid UTF-8")
	errCloseFrame      = errors.New("websocket: malformed close frame")
	errWebSocketClosed = errors.New("websocket: closed by peer")
)

// Close status codes (RFC 6455 section 7.4.1).
const (
	closeNormal         = 1000
	closeProtocolError  = 1002
	closeInvalidPayload = 1007
	closePolicy         = 1008
	closeTooBig         = 1009
)

// closeCodeFor is the status a close frame reports for an error that ends
// the connection; 0 sends no close frame (the peer is gone or closed
// first, and its close has been answered).
func closeCodeFor(err error) uint16 {
	switch {
	case errors.Is(err, errFrameUnmasked), errors.Is(err, errFrameReserved), errors.Is(err, errFrameControl),
		errors.Is(err, errFrameSequence), errors.Is(err, errCloseFrame):
		return closeProtocolError
	case errors.Is(err, errInvalidUTF8):
		return closeInvalidPayload
	case errors.Is(err, errFrameTooLarge):
		return closeTooBig
	case errors.Is(err, ErrEmptyPacket), errors.Is(err, ErrUnknownPacket), errors.Is(err, ErrBinaryPacket):
		return closePolicy
	}
	return 0
}

// validCloseCode reports whether a peer may send code in a close frame:
// the codes RFC 6455 and the IANA registry define for use on the wire, and
// the ranges left to libraries and applications.
func validCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// checkClosePayload validates a peer's close frame: empty, or a valid code
// and a UTF-8 reason.
func checkClosePayload(p []byte) error {
	switch {
	case len(p) == 0:
		return nil
	case len(p) == 1 || !validCloseCode(binary.BigEndian.Uint16(p)):
		return errCloseFrame
	case !utf8.Valid(p[2:]):
		return errInvalidUTF8
	}
	return nil
}

// validKey reports whether a Sec-WebSocket-Key is base64 of 16 bytes.
func validKey(key string) bool {
	if len(key) != 24 {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(key)
	return err == nil && len(b) == 16
}

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
	if r.Method != http.MethodGet || !validKey(key) ||
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

// closeFrame builds a close frame reporting code (0: no status).
func closeFrame(code uint16) []byte {
	if code == 0 {
		return appendFrame(nil, opClose, nil)
	}
	return appendFrame(nil, opClose, binary.BigEndian.AppendUint16(nil, code))
}

// frameReader reassembles client frames from bytes as they arrive. It holds
// no buffer between messages unless a frame is split across reads. A frame
// that arrives in pieces is appended to one growing buffer, never copied
// again per piece, so its cost is linear in its size.
type frameReader struct {
	maxMessage int
	pending    []byte // bytes of an incomplete frame
	fragments  []byte // payload of an unfinished fragmented message
	fragOp     byte
}

// frameHandler receives each complete message or control frame. A text
// message has been checked to be UTF-8.
type frameHandler func(opcode byte, payload []byte) error

// feed parses as many frames as data completes. Payloads passed to handle
// are only valid during the call.
func (fr *frameReader) feed(data []byte, handle frameHandler) error {
	buffered := len(fr.pending) > 0
	if buffered {
		fr.pending = append(fr.pending, data...)
		data = fr.pending
	}
	consumed := 0
	for {
		n, err := fr.parseOne(data, handle)
		if err != nil {
			fr.pending = nil
			return err
		}
		if n == 0 {
			break
		}
		data = data[n:]
		consumed += n
	}
	switch {
	case len(data) == 0:
		fr.pending = nil
	case !buffered:
		fr.pending = append([]byte(nil), data...) // data is the caller's buffer
	case consumed > 0:
		// Keep the start of the next frame at the front; each byte is
		// moved at most once, when the frame before it completes.
		fr.pending = fr.pending[:copy(fr.pending, data)]
	}
	return nil
}

// parseOne parses one frame from data, returning the bytes it used, or 0
// when data holds no complete frame. Everything the header alone decides
// (reserved bits, masking, opcode, control-frame rules, size) is checked
// before any payload is waited for.
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
	switch {
	case opcode > opBinary && opcode < opClose:
		return 0, errFrameReserved
	case opcode >= opClose && (!fin || length > 125 || opcode > opPong):
		return 0, errFrameControl
	case opcode == opContinuation && fr.fragOp == 0:
		return 0, errFrameSequence
	case (opcode == opText || opcode == opBinary) && fr.fragOp != 0:
		return 0, errFrameSequence
	}
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
	ws.Cipher(payload, mask, 0)
	used := pos + int(length)
	switch {
	case opcode >= opClose:
		return used, handle(opcode, payload)
	case opcode == opContinuation:
		fr.fragments = append(fr.fragments, payload...)
		if fin {
			op, msg := fr.fragOp, fr.fragments
			fr.fragOp, fr.fragments = 0, nil
			return used, deliver(op, msg, handle)
		}
		return used, nil
	case fin:
		return used, deliver(opcode, payload, handle)
	default:
		fr.fragOp = opcode
		fr.fragments = append([]byte(nil), payload...)
		return used, nil
	}
}

// deliver hands a whole message to handle once a text one is known to be
// UTF-8.
func deliver(opcode byte, msg []byte, handle frameHandler) error {
	if opcode == opText && !utf8.Valid(msg) {
		return errInvalidUTF8
	}
	return handle(opcode, msg)
}
