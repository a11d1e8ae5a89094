package socketio

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"paystatus/realtime/engineio"
)

// Binary events and acks (packet types 5 and 6). The packet's JSON holds a
// placeholder {"_placeholder":true,"num":n} where each binary value was,
// its header says how many attachments follow ("51-[...]"), and the
// attachments follow as that many Engine.IO binary messages, in order.
// In Go a binary value is a []byte, in both directions.

// maxAttachmentDigits bounds the attachment count field before it is
// parsed; Config.MaxAttachments bounds its value.
const maxAttachmentDigits = 6

// attachmentCount reads the "n-" that follows a binary packet's type.
func attachmentCount(rest string) (int, string, error) {
	dash := strings.IndexByte(rest, '-')
	if dash <= 0 || dash > maxAttachmentDigits {
		return 0, rest, fmt.Errorf("%w: binary packet without an attachment count", ErrMalformedPacket)
	}
	for i := 0; i < dash; i++ {
		if rest[i] < '0' || rest[i] > '9' {
			return 0, rest, fmt.Errorf("%w: attachment count %q", ErrMalformedPacket, rest[:dash])
		}
	}
	n, _ := strconv.Atoi(rest[:dash])
	return n, rest[dash+1:], nil
}

// pendingBinary is a binary packet whose attachments are still arriving.
type pendingBinary struct {
	p     packet
	parts [][]byte
	size  int
}

// startBinary begins reassembling p, or dispatches it at once when it has
// no attachments. The count is checked before anything is buffered.
func (c *client) startBinary(p packet) error {
	if p.attachments > c.server.maxAttachments {
		return fmt.Errorf("%w: %d, at most %d", ErrTooManyAttachments, p.attachments, c.server.maxAttachments)
	}
	if !c.server.payloadAllowed(p.data) {
		return fmt.Errorf("%w: JSON beyond MaxEventBytes or MaxEventDepth", ErrMalformedPacket)
	}
	pb := &pendingBinary{p: p, parts: make([][]byte, 0, p.attachments)}
	if p.attachments == 0 {
		return c.finishBinary(pb)
	}
	c.binary = pb
	return nil
}

// onAttachment adds one binary message to the packet being reassembled.
func (c *client) onAttachment(data []byte) error {
	pb := c.binary
	if pb == nil {
		return fmt.Errorf("%w: no binary packet announced it", ErrUnexpectedBinary)
	}
	pb.size += len(data)
	if pb.size > c.server.maxBinaryBytes {
		c.binary = nil
		return fmt.Errorf("%w: more than %d bytes", ErrAttachmentsTooLarge, c.server.maxBinaryBytes)
	}
	pb.parts = append(pb.parts, data)
	if len(pb.parts) < pb.p.attachments {
		return nil
	}
	c.binary = nil
	return c.finishBinary(pb)
}

// finishBinary puts the attachments in place of their placeholders and
// hands the packet to its socket.
func (c *client) finishBinary(pb *pendingBinary) error {
	list, err := pb.assemble()
	if err != nil {
		return err
	}
	sock := c.socketIn(pb.p.nsp)
	if sock == nil {
		return nil // not connected to that namespace: dropped, as Node does
	}
	return sock.onBinaryPacket(pb.p, list)
}

// assemble decodes the packet's array with its attachments in place.
func (pb *pendingBinary) assemble() ([]any, error) {
	list, err := decodeArray(pb.p.data)
	if err != nil {
		return nil, err
	}
	for i, v := range list {
		if list[i], err = reconstruct(v, pb.parts); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// reconstruct replaces the placeholders in v with their attachments.
func reconstruct(v any, parts [][]byte) (any, error) {
	switch x := v.(type) {
	case []any:
		for i, e := range x {
			r, err := reconstruct(e, parts)
			if err != nil {
				return nil, err
			}
			x[i] = r
		}
	case map[string]any:
		if ph, _ := x["_placeholder"].(bool); ph {
			num, ok := x["num"].(float64)
			if !ok || num < 0 || num >= float64(len(parts)) || num != float64(int(num)) {
				return nil, fmt.Errorf("%w: placeholder %v", ErrMalformedPacket, x["num"])
			}
			return parts[int(num)], nil
		}
		for k, e := range x {
			r, err := reconstruct(e, parts)
			if err != nil {
				return nil, err
			}
			x[k] = r
		}
	}
	return v, nil
}

// onBinaryPacket delivers a reassembled binary event or ack.
func (s *Socket) onBinaryPacket(p packet, list []any) error {
	if p.kind == packetBinaryAck {
		s.mu.Lock()
		ack := s.takeAckLocked(p.ackID)
		s.mu.Unlock()
		switch {
		case ack.signal != nil:
			ack.signal()
		case ack.withArgs != nil:
			ack.withArgs(list)
		}
		return nil
	}
	if len(list) == 0 {
		return fmt.Errorf("%w: event without a name", ErrMalformedPacket)
	}
	if a, ok := s.Handler.(EventAdmitter); ok && !a.AdmitEvent() {
		return nil // dropped as a text event would be
	}
	event, ok := list[0].(string)
	if !ok {
		return fmt.Errorf("%w: event name is not a string", ErrMalformedPacket)
	}
	var ack AckFunc
	if p.ackID >= 0 {
		ack = s.ackSender(p.ackID)
	}
	if h := s.Handler; h != nil {
		h.OnEvent(event, list[1:], ack)
	}
	return nil
}

// hasBinary reports whether args hold a []byte, looking into slices and
// maps of the types JSON decoding produces.
func hasBinary(args []any) bool {
	for _, a := range args {
		if isBinaryValue(a) {
			return true
		}
	}
	return false
}

func isBinaryValue(v any) bool {
	switch x := v.(type) {
	case []byte:
		return true
	case []any:
		return hasBinary(x)
	case map[string]any:
		for _, e := range x {
			if isBinaryValue(e) {
				return true
			}
		}
	}
	return false
}

// deconstruct copies v with each []byte replaced by a placeholder, the
// bytes appended to parts.
func deconstruct(v any, parts *[][]byte) any {
	switch x := v.(type) {
	case []byte:
		*parts = append(*parts, x)
		return map[string]any{"_placeholder": true, "num": len(*parts) - 1}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deconstruct(e, parts)
		}
		return out
	case map[string]any:
		// In key order, as encoding/json writes them, so that attachments
		// are numbered in the order their placeholders appear.
		out := make(map[string]any, len(x))
		for _, k := range slices.Sorted(maps.Keys(x)) {
			out[k] = deconstruct(x[k], parts)
		}
		return out
	}
	return v
}

// binaryMessages encodes a binary event (kind 5) or ack (kind 6) whose
// list holds []byte values: the packet, then one message per attachment.
func binaryMessages(kind byte, nsp string, ackID int, list []any) ([]*engineio.Message, error) {
	var parts [][]byte
	out := deconstruct(list, &parts).([]any)
	data, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.Grow(len(data) + len(nsp) + 24)
	b.WriteByte(engineio.MessageType)
	b.WriteByte(kind)
	b.WriteString(strconv.Itoa(len(parts)))
	b.WriteByte('-')
	if nsp != "/" {
		b.WriteString(nsp)
		b.WriteByte(',')
	}
	if ackID >= 0 {
		b.WriteString(strconv.Itoa(ackID))
	}
	b.Write(data)
	msgs := make([]*engineio.Message, 0, 1+len(parts))
	msgs = append(msgs, engineio.NewMessagePacket(b.String()))
	for _, p := range parts {
		msgs = append(msgs, engineio.NewBinaryMessage(p))
	}
	return msgs, nil
}

// OnBinary takes an Engine.IO binary message: the next attachment of the
// binary packet being reassembled.
func (h engineHandler) OnBinary(sess *engineio.Session, data []byte) {
	c, ok := sess.Data.(*client)
	if !ok {
		return
	}
	if err := c.onAttachment(data); err != nil {
		c.closeOnBadPacket(err)
	}
}

// closeOnBadPacket closes the connection on a malformed or excessive
// packet, logging why; the socket's disconnect reason is Node's "parse
// error".
func (c *client) closeOnBadPacket(err error) {
	c.binary = nil
	c.server.cfg.Logger.Info("socket.io: closing connection on a malformed packet", "session", c.sess.ID(), "error", err)
	c.sess.Close("parse error")
}
