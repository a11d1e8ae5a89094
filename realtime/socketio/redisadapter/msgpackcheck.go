package redisadapter

import (
	"encoding/binary"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// maxMsgpackDepth bounds the nesting of a message read from Redis; the
// adapters' messages nest a handful of levels.
const maxMsgpackDepth = 32

// unmarshalMsgpack decodes b into v after checkMsgpack has walked it, so a
// declared length larger than the message can never reach the decoder,
// which would size its allocation by it.
func unmarshalMsgpack(b []byte, v any) error {
	if err := checkMsgpack(b); err != nil {
		return err
	}
	if err := msgpack.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// checkMsgpack walks one msgpack value without decoding it. It fails when
// a string, binary or extension runs past the end of b, when a container
// declares more elements than bytes remain (each needs at least one), when
// nesting exceeds maxMsgpackDepth, or on the reserved code 0xc1.
func checkMsgpack(b []byte) error {
	// pending[d] counts the values still expected at depth d.
	pending := make([]uint64, 1, 8)
	pending[0] = 1
	i := 0
	for len(pending) > 0 {
		if pending[len(pending)-1] == 0 {
			pending = pending[:len(pending)-1]
			continue
		}
		pending[len(pending)-1]--
		if i >= len(b) {
			return fmt.Errorf("%w: msgpack value cut short", ErrMalformed)
		}
		c := b[i]
		i++
		var skip, items uint64 // bytes to skip; elements a container holds
		var lenBytes int       // width of a length field that follows c
		container := false
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		case c <= 0x8f:
			items, container = 2*uint64(c&0x0f), true
		case c <= 0x9f:
			items, container = uint64(c&0x0f), true
		case c <= 0xbf:
			skip = uint64(c & 0x1f)
		case c == 0xc4 || c == 0xd9:
			lenBytes = 1
		case c == 0xc5 || c == 0xda:
			lenBytes = 2
		case c == 0xc6 || c == 0xdb:
			lenBytes = 4
		case c == 0xc7:
			lenBytes, skip = 1, 1
		case c == 0xc8:
			lenBytes, skip = 2, 1
		case c == 0xc9:
			lenBytes, skip = 4, 1
		case c == 0xca || c == 0xce || c == 0xd2:
			skip = 4
		case c == 0xcb || c == 0xcf || c == 0xd3:
			skip = 8
		case c == 0xcc || c == 0xd0:
			skip = 1
		case c == 0xcd || c == 0xd1:
			skip = 2
		case c >= 0xd4 && c <= 0xd8:
			skip = 1 + 1<<(c-0xd4)
		case c == 0xdc || c == 0xde:
			lenBytes, container = 2, true
		case c == 0xdd || c == 0xdf:
			lenBytes, container = 4, true
		default:
			return fmt.Errorf("%w: reserved msgpack code %#x", ErrMalformed, c)
		}
		if lenBytes > 0 {
			if len(b)-i < lenBytes {
				return fmt.Errorf("%w: msgpack length cut short", ErrMalformed)
			}
			var n uint64
			switch lenBytes {
			case 1:
				n = uint64(b[i])
			case 2:
				n = uint64(binary.BigEndian.Uint16(b[i:]))
			default:
				n = uint64(binary.BigEndian.Uint32(b[i:]))
			}
			i += lenBytes
			if container {
				items = n
				if c == 0xde || c == 0xdf {
					items = 2 * n
				}
			} else {
				skip += n
			}
		}
		if skip > uint64(len(b)-i) {
			return fmt.Errorf("%w: msgpack value runs past the message", ErrMalformed)
		}
		i += int(skip)
		if container && items > 0 {
			if items > uint64(len(b)-i) {
				return fmt.Errorf("%w: msgpack container declares %d elements in %d bytes", ErrMalformed, items, len(b)-i)
			}
			if len(pending) >= maxMsgpackDepth {
				return fmt.Errorf("%w: msgpack nested deeper than %d", ErrMalformed, maxMsgpackDepth)
			}
			pending = append(pending, items)
		}
	}
	return nil
}
