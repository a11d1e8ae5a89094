package main

// The client side of RFC 6455, just what the generator needs: the HTTP
// upgrade, a parser for the frames a server sends (never masked), and masked
// frames for what the client sends. Written for the generator so that a
// connection can be handed to the epoll reactor (reactor_linux.go) after the
// handshake without bytes hiding in some library's buffer.

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Websocket opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// maxMessage bounds a frame and a reassembled message. Socket.IO packets of
// this application are a few hundred bytes; the bound only keeps a broken
// stream from growing a buffer without limit.
const maxMessage = 16 << 20

// handshakeTimeout bounds the HTTP upgrade, as gorilla's dialer did.
const handshakeTimeout = 30 * time.Second

// errProtocol wraps every violation of RFC 6455 the parser finds.
var errProtocol = errors.New("websocket: protocol error")

func protoErr(what string) error { return fmt.Errorf("%w: %s", errProtocol, what) }

// frameSink receives what wsReader.feed parses: every complete data message
// (text or binary, fragments joined) and every control frame, in stream
// order. payload is only valid during the call. Returning false stops
// parsing: the connection is ending.
type frameSink interface {
	onFrame(op byte, payload []byte) bool
}

// wsReader turns the bytes of one connection, read in pieces of any size,
// into websocket messages. It keeps the start of a frame whose end has not
// arrived yet, and the fragments of an unfinished message.
type wsReader struct {
	pending []byte // an incomplete frame, header first
	msg     []byte // fragments of a message so far
	msgOp   byte   // opcode of that message; 0 when none is open
}

// smallBuf is the capacity a connection keeps for pending bytes between
// reads; larger buffers are dropped once used.
const smallBuf = 4 << 10

// frameNeed returns the length of the frame starting at b, or, while b is
// too short to tell, the number of bytes needed to learn more (always more
// than len(b)). A header that breaks the protocol is reported as soon as
// enough of it is there.
func frameNeed(b []byte) (int, error) {
	if len(b) < 2 {
		return 2, nil
	}
	b0, b1 := b[0], b[1]
	if b0&0x70 != 0 {
		return 0, protoErr("reserved bits set")
	}
	op := b0 & 0x0f
	switch op {
	case opContinuation, opText, opBinary:
	case opClose, opPing, opPong:
		if b0&0x80 == 0 {
			return 0, protoErr("fragmented control frame")
		}
		if b1&0x7f > 125 {
			return 0, protoErr("control frame longer than 125 bytes")
		}
	default:
		return 0, protoErr(fmt.Sprintf("unknown opcode %d", op))
	}
	if b1&0x80 != 0 {
		return 0, protoErr("masked frame from the server")
	}
	var hdr, n int
	switch l := int(b1 & 0x7f); l {
	case 126:
		hdr = 4
		if len(b) < hdr {
			return hdr, nil
		}
		n = int(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		hdr = 10
		if len(b) < hdr {
			return hdr, nil
		}
		v := binary.BigEndian.Uint64(b[2:10])
		if v > maxMessage {
			return 0, protoErr("frame too large")
		}
		n = int(v)
	default:
		hdr, n = 2, l
	}
	if n > maxMessage {
		return 0, protoErr("frame too large")
	}
	return hdr + n, nil
}

// feed parses data. It returns false when the sink asked to stop, and an
// error (wrapping errProtocol) when the stream breaks RFC 6455; in both cases
// the connection is finished and the rest of data is ignored.
func (r *wsReader) feed(data []byte, s frameSink) (bool, error) {
	// Complete a frame left over from earlier reads, taking from data only
	// the bytes that belong to it.
	for len(r.pending) > 0 {
		need, err := frameNeed(r.pending)
		if err != nil {
			return false, err
		}
		if len(r.pending) < need {
			if len(data) == 0 {
				return true, nil
			}
			take := min(need-len(r.pending), len(data))
			r.pending = append(r.pending, data[:take]...)
			data = data[take:]
			continue // the header may now reveal a longer frame
		}
		ok, err := r.frame(r.pending, s)
		if cap(r.pending) > smallBuf {
			r.pending = nil
		} else {
			r.pending = r.pending[:0]
		}
		if !ok || err != nil {
			return ok, err
		}
	}
	// Whole frames straight from data; keep a trailing partial one.
	for len(data) > 0 {
		need, err := frameNeed(data)
		if err != nil {
			return false, err
		}
		if len(data) < need {
			r.pending = append(r.pending[:0], data...)
			return true, nil
		}
		ok, err := r.frame(data[:need], s)
		if !ok || err != nil {
			return ok, err
		}
		data = data[need:]
	}
	return true, nil
}

// frame handles one complete frame whose header frameNeed accepted.
func (r *wsReader) frame(f []byte, s frameSink) (bool, error) {
	fin, op := f[0]&0x80 != 0, f[0]&0x0f
	hdr := 2
	switch f[1] & 0x7f {
	case 126:
		hdr = 4
	case 127:
		hdr = 10
	}
	payload := f[hdr:]
	switch op {
	case opText, opBinary:
		if r.msgOp != 0 {
			return false, protoErr("new message before the last fragment of the previous one")
		}
		if fin {
			return s.onFrame(op, payload), nil
		}
		r.msgOp = op
		r.msg = append(r.msg[:0], payload...)
		return true, nil
	case opContinuation:
		if r.msgOp == 0 {
			return false, protoErr("continuation frame outside a message")
		}
		if len(r.msg)+len(payload) > maxMessage {
			return false, protoErr("message too large")
		}
		r.msg = append(r.msg, payload...)
		if !fin {
			return true, nil
		}
		op := r.msgOp
		r.msgOp = 0
		ok := s.onFrame(op, r.msg)
		if cap(r.msg) > smallBuf {
			r.msg = nil
		} else {
			r.msg = r.msg[:0]
		}
		return ok, nil
	default: // control frames, possibly between the fragments of a message
		return s.onFrame(op, payload), nil
	}
}

// appendClientFrame appends one final, masked frame (a client must mask
// every frame it sends).
func appendClientFrame(dst []byte, op byte, payload []byte) []byte {
	dst = append(dst, 0x80|op)
	switch n := len(payload); {
	case n <= 125:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	key := mrand.Uint32()
	k := [4]byte{byte(key), byte(key >> 8), byte(key >> 16), byte(key >> 24)}
	dst = append(dst, k[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	for i := range payload {
		dst[start+i] ^= k[i&3]
	}
	return dst
}

// Close status codes the generator sends or checks.
const (
	closeNoStatus      = 1005
	closeProtocolError = 1002
)

// parseClose reads a close frame's payload: status code (1005 when absent)
// and reason. A payload RFC 6455 forbids is a protocol error.
func parseClose(p []byte) (int, string, error) {
	if len(p) == 0 {
		return closeNoStatus, "", nil
	}
	if len(p) == 1 {
		return 0, "", protoErr("close frame with a 1-byte payload")
	}
	code := int(binary.BigEndian.Uint16(p))
	valid := (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)
	if !valid {
		return 0, "", protoErr(fmt.Sprintf("close code %d", code))
	}
	if !utf8.Valid(p[2:]) {
		return 0, "", protoErr("close reason is not UTF-8")
	}
	return code, string(p[2:]), nil
}

// closePayload is what the client sends in a close frame: the code, unless
// it is 1005 (no status), and a reason cut to fit a control frame.
func closePayload(code int, reason string) []byte {
	if code == closeNoStatus {
		return nil
	}
	if len(reason) > 123 {
		reason = reason[:123]
	}
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// acceptKey is the Sec-WebSocket-Accept a server must answer for key.
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// errBadHandshake is returned, wrapped, for an upgrade the server refused or
// answered wrongly.
var errBadHandshake = errors.New("websocket: bad handshake")

// dialWS opens a TCP connection to a ws:// URL and performs the upgrade. It
// returns the connection, the bytes that followed the 101 response in the
// same reads (already websocket frames, to be parsed before anything read
// later), and the HTTP status when the server answered something else.
func dialWS(ctx context.Context, rawURL, userAgent string) (nc net.Conn, rest []byte, status int, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, 0, err
	}
	if u.Scheme != "ws" {
		return nil, nil, 0, fmt.Errorf("unsupported scheme %q (only ws://)", u.Scheme)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	deadline := time.Now().Add(handshakeTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var d net.Dialer
	nc, err = d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, nil, 0, err
	}
	// A cancelled context interrupts the exchange below.
	stop := context.AfterFunc(dctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	_ = nc.SetDeadline(deadline)
	fail := func(err error) (net.Conn, []byte, int, error) {
		_ = nc.Close()
		return nil, nil, status, err
	}

	var raw [16]byte
	_, _ = rand.Read(raw[:])
	key := base64.StdEncoding.EncodeToString(raw[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\n" +
		"Host: " + u.Host + "\r\n" +
		"User-Agent: " + userAgent + "\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"Upgrade: websocket\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		return fail(err)
	}
	br := bufio.NewReaderSize(nc, 1024)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fail(err)
	}
	status = resp.StatusCode
	if resp.StatusCode != http.StatusSwitchingProtocols ||
		!headerHasToken(resp.Header, "Upgrade", "websocket") ||
		!headerHasToken(resp.Header, "Connection", "upgrade") ||
		resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(key) {
		return fail(errBadHandshake)
	}
	if resp.Header.Get("Sec-WebSocket-Extensions") != "" || resp.Header.Get("Sec-WebSocket-Protocol") != "" {
		return fail(fmt.Errorf("%w: server chose an extension or subprotocol the client did not offer", errBadHandshake))
	}
	status = 0
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		rest = append([]byte(nil), b...)
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return fail(err)
	}
	return nc, rest, 0, nil
}

// headerHasToken reports whether a comma-separated header lists token
// (case-insensitive).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
