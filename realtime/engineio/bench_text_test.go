package engineio

import (
	"strings"
	"testing"
)

// textPathFrame is a typical inbound Socket.IO event: an ack answer with a
// small JSON object, masked as a client sends it.
var textPathPayload = `43` + `12[{"orderId":"ord_8f3a2c","status":"paid","amount":129900,"currency":"INR"}]`

// BenchmarkTextFrameInbound measures the inbound text path: one masked
// frame parsed, unmasked and decoded into an Engine.IO packet.
func BenchmarkTextFrameInbound(b *testing.B) {
	frame := masked(opText, "4"+textPathPayload)
	buf := make([]byte, len(frame))
	fr := frameReader{maxMessage: 1 << 20}
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for i := 0; i < b.N; i++ {
		copy(buf, frame) // the reader unmasks in place
		err := fr.feed(buf, func(op byte, p []byte) error {
			_, err := decodePacket(string(p), 4)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTextPayloadPolling measures decoding a polling body of three
// text packets.
func BenchmarkTextPayloadPolling(b *testing.B) {
	body := strings.Repeat("4"+textPathPayload+"\x1e", 2) + "4" + textPathPayload
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := decodePayload(body, 4); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTextMessageFrame measures building the websocket frame of an
// outbound text message.
func BenchmarkTextMessageFrame(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m := NewMessagePacket("4" + textPathPayload)
		if len(m.websocketFrame()) == 0 {
			b.Fatal("empty frame")
		}
	}
}
