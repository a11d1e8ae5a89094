package socketio

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecodePacket(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want packet
	}{
		{"connect", "0", packet{kind: packetConnect, nsp: "/", ackID: -1}},
		{"connect with auth", `0{"token":"abc"}`, packet{kind: packetConnect, nsp: "/", ackID: -1, data: `{"token":"abc"}`}},
		{"connect to namespace", "0/admin,", packet{kind: packetConnect, nsp: "/admin", ackID: -1}},
		{"connect to namespace no comma", "0/admin", packet{kind: packetConnect, nsp: "/admin", ackID: -1}},
		{"connect to namespace with auth", `0/admin,{"token":"abc"}`, packet{kind: packetConnect, nsp: "/admin", ackID: -1, data: `{"token":"abc"}`}},
		{"v2 connect with query", "0/custom?x=1", packet{kind: packetConnect, nsp: "/custom", ackID: -1}},
		{"v2 connect with query and comma", "0/custom?x=1&y=2,", packet{kind: packetConnect, nsp: "/custom", ackID: -1}},
		{"disconnect", "1", packet{kind: packetDisconnect, nsp: "/", ackID: -1}},
		{"disconnect namespace", "1/admin,", packet{kind: packetDisconnect, nsp: "/admin", ackID: -1}},
		{"event", `2["hello",1,{"a":[2]}]`, packet{kind: packetEvent, nsp: "/", ackID: -1, data: `["hello",1,{"a":[2]}]`}},
		{"event with ack id", `212["hello"]`, packet{kind: packetEvent, nsp: "/", ackID: 12, data: `["hello"]`}},
		{"event with ack id 0", `20["hello"]`, packet{kind: packetEvent, nsp: "/", ackID: 0, data: `["hello"]`}},
		{"event in namespace with ack id", `2/custom,12["hello","x"]`, packet{kind: packetEvent, nsp: "/custom", ackID: 12, data: `["hello","x"]`}},
		{"event with 10-digit ack id", `29999999999["e"]`, packet{kind: packetEvent, nsp: "/", ackID: 9999999999, data: `["e"]`}},
		{"ack", `31["ok",2]`, packet{kind: packetAck, nsp: "/", ackID: 1, data: `["ok",2]`}},
		{"ack empty args", `37[]`, packet{kind: packetAck, nsp: "/", ackID: 7, data: `[]`}},
		{"ack in namespace", `3/custom,5[null]`, packet{kind: packetAck, nsp: "/custom", ackID: 5, data: `[null]`}},
		{"connect error", `4{"message":"no"}`, packet{kind: packetConnectError, nsp: "/", ackID: -1, data: `{"message":"no"}`}},
		{"binary event", `52-["file",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
			packet{kind: packetBinaryEvent, nsp: "/", ackID: -1, attachments: 2, data: `["file",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`}},
		{"binary event with ack in namespace", `51-/custom,9["f",{"_placeholder":true,"num":0}]`,
			packet{kind: packetBinaryEvent, nsp: "/custom", ackID: 9, attachments: 1, data: `["f",{"_placeholder":true,"num":0}]`}},
		{"binary event without attachments", `50-["f"]`, packet{kind: packetBinaryEvent, nsp: "/", ackID: -1, data: `["f"]`}},
		{"binary ack", `61-789[{"_placeholder":true,"num":0}]`, packet{kind: packetBinaryAck, nsp: "/", ackID: 789, attachments: 1, data: `[{"_placeholder":true,"num":0}]`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodePacket(tt.in)
			if err != nil {
				t.Fatalf("decodePacket(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("decodePacket(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestDecodePacketErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr error
	}{
		{"empty", "", ErrMalformedPacket},
		{"binary event without count", `5["file"]`, ErrMalformedPacket},
		{"binary event count without dash", `51["file"]`, ErrMalformedPacket},
		{"binary event letter count", `5x-["file"]`, ErrMalformedPacket},
		{"binary event huge count", `51234567-["file"]`, ErrMalformedPacket},
		{"binary event without array", `51-{"a":1}`, ErrMalformedPacket},
		{"binary ack without id", `61-[{"_placeholder":true,"num":0}]`, ErrMalformedPacket},
		{"unknown type", "7", ErrMalformedPacket},
		{"letter", "hello", ErrMalformedPacket},
		{"space", " 2[\"a\"]", ErrMalformedPacket},
		{"event without data", "2", ErrMalformedPacket},
		{"event with object", `2{"a":1}`, ErrMalformedPacket},
		{"event in namespace without array", "2/custom,", ErrMalformedPacket},
		{"event in namespace no comma", `2/custom["a"]`, ErrMalformedPacket},
		{"event with 11-digit ack id", `212345678901["e"]`, ErrMalformedPacket},
		{"ack without id", `3["ok"]`, ErrMalformedPacket},
		{"ack without array", "31", ErrMalformedPacket},
		{"ack with string", `31"ok"`, ErrMalformedPacket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodePacket(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("decodePacket(%q) = %+v, %v; want error %v", tt.in, got, err, tt.wantErr)
			}
		})
	}
}

func TestDecodeEvent(t *testing.T) {
	t.Run("name and args", func(t *testing.T) {
		name, args, err := decodeEvent(`["ev",1,"a",{"k":true},null,[1,2]]`)
		if err != nil {
			t.Fatal(err)
		}
		want := []any{1.0, "a", map[string]any{"k": true}, nil, []any{1.0, 2.0}}
		if name != "ev" || !reflect.DeepEqual(args, want) {
			t.Fatalf("got %q %#v", name, args)
		}
	})
	t.Run("no args", func(t *testing.T) {
		name, args, err := decodeEvent(`["ev"]`)
		if err != nil || name != "ev" || len(args) != 0 {
			t.Fatalf("got %q %v %v", name, args, err)
		}
	})
	for _, bad := range []string{``, `[]`, `[1]`, `[true]`, `[{}]`, `["ev"`, `{"a":1}`, `["ev",}]`, `"ev"`} {
		t.Run("bad "+bad, func(t *testing.T) {
			if name, args, err := decodeEvent(bad); !errors.Is(err, ErrMalformedPacket) {
				t.Fatalf("decodeEvent(%q) = %q %v %v, want ErrMalformedPacket", bad, name, args, err)
			}
		})
	}
}

func TestDecodeEventNullName(t *testing.T) {
	if name, _, err := decodeEvent(`[null,1]`); !errors.Is(err, ErrMalformedPacket) {
		t.Fatalf("decodeEvent([null,1]) = event %q, %v; want ErrMalformedPacket", name, err)
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		kind  byte
		nsp   string
		ackID int
		data  string
		want  string
	}{
		{packetConnect, "/", -1, `{"sid":"x"}`, `0{"sid":"x"}`},
		{packetConnect, "/admin", -1, `{"sid":"x"}`, `0/admin,{"sid":"x"}`},
		{packetConnect, "/admin", -1, "", `0/admin,`},
		{packetDisconnect, "/", -1, "", `1`},
		{packetAck, "/", 0, `[]`, `30[]`},
		{packetAck, "/custom", 15, `[1]`, `3/custom,15[1]`},
		{packetConnectError, "/x", -1, `{"message":"Invalid namespace"}`, `4/x,{"message":"Invalid namespace"}`},
	}
	for _, tt := range tests {
		if got := encode(tt.kind, tt.nsp, tt.ackID, []byte(tt.data)); got != tt.want {
			t.Errorf("encode(%c, %q, %d, %q) = %q, want %q", tt.kind, tt.nsp, tt.ackID, tt.data, got, tt.want)
		}
	}
}

func TestEncodeEvent(t *testing.T) {
	tests := []struct {
		name  string
		nsp   string
		ackID int
		event string
		args  []any
		extra string
		want  string
	}{
		{"plain", "/", -1, "hello", []any{1, "a"}, "", `2["hello",1,"a"]`},
		{"no args", "/", -1, "ping", nil, "", `2["ping"]`},
		{"offset", "/", -1, "hello", []any{map[string]int{"n": 1}}, "abc-1", `2["hello",{"n":1},"abc-1"]`},
		{"ack id and namespace", "/custom", 3, "q", []any{true}, "", `2/custom,3["q",true]`},
		{"escaping", "/", -1, `a"b`, []any{"<é>"}, "", `2["a\"b","\u003cé\u003e"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeEvent(tt.nsp, tt.ackID, tt.event, tt.args, tt.extra)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
			// The form that is sent carries the same packet.
			msg, text, err := eventMessage(tt.nsp, tt.ackID, tt.event, tt.args, tt.extra)
			if err != nil || msg == nil || text != tt.want {
				t.Fatalf("eventMessage: %q %v %v, want %q", text, msg != nil, err, tt.want)
			}
			// What we encode, we decode.
			p, err := decodePacket(got)
			if err != nil {
				t.Fatalf("decodePacket(%q): %v", got, err)
			}
			if p.nsp != tt.nsp || p.ackID != tt.ackID || p.kind != packetEvent {
				t.Fatalf("decoded %+v", p)
			}
			name, args, err := decodeEvent(p.data)
			if err != nil || name != tt.event {
				t.Fatalf("decodeEvent: %q %v", name, err)
			}
			wantArgs := len(tt.args)
			if tt.extra != "" {
				wantArgs++
				if args[len(args)-1] != tt.extra {
					t.Fatalf("last arg %v, want the offset", args[len(args)-1])
				}
			}
			if len(args) != wantArgs {
				t.Fatalf("%d args, want %d", len(args), wantArgs)
			}
		})
	}
	t.Run("unencodable", func(t *testing.T) {
		if _, err := encodeEvent("/", -1, "e", []any{make(chan int)}, ""); err == nil {
			t.Fatal("a channel argument encoded")
		}
		if msg, _, err := eventMessage("/", -1, "e", []any{make(chan int)}, ""); err == nil || msg != nil {
			t.Fatal("a channel argument made a message")
		}
		// The failed encoding left nothing behind in the pooled buffer.
		if got, _ := encodeEvent("/", -1, "e", nil, ""); got != `2["e"]` {
			t.Fatalf("after a failure: %s", got)
		}
	})
}

func FuzzDecodePacket(f *testing.F) {
	for _, s := range []string{
		"0", `0{"token":"abc"}`, "0/admin,", "0/custom?x=1", `2["hello",1]`, `212["hello"]`,
		`2/custom,12["hello","x"]`, `31["ok"]`, `3/custom,5[null]`, "1/admin,", `51-["f",{"_placeholder":true,"num":0}]`,
		`212345678901["e"]`, "", "2", "/", "0/", "0/,", `2/,["a"]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := decodePacket(s)
		if err != nil {
			return
		}
		if p.kind < packetConnect || p.kind > packetBinaryAck {
			t.Fatalf("decodePacket(%q) accepted type %q", s, p.kind)
		}
		if p.attachments < 0 || p.attachments >= 1_000_000 || (p.attachments > 0 && p.kind < packetBinaryEvent) {
			t.Fatalf("decodePacket(%q) attachments %d", s, p.attachments)
		}
		if p.kind >= packetBinaryEvent {
			return // the count is not part of encode's output
		}
		if !strings.HasPrefix(p.nsp, "/") || strings.ContainsAny(p.nsp, ",?") {
			t.Fatalf("decodePacket(%q) namespace %q", s, p.nsp)
		}
		if p.ackID < -1 {
			t.Fatalf("decodePacket(%q) ack id %d", s, p.ackID)
		}
		if p.kind == packetEvent {
			_, _, _ = decodeEvent(p.data) // must not panic
		}
		// Re-encoding gives the same packet, except where the data itself
		// would be read as a namespace or an ack id.
		if p.data != "" && (p.data[0] == '/' || (p.data[0] >= '0' && p.data[0] <= '9')) {
			return
		}
		again := encode(p.kind, p.nsp, p.ackID, []byte(p.data))
		q, err := decodePacket(again)
		if err != nil {
			t.Fatalf("re-encoded %q (from %q) fails: %v", again, s, err)
		}
		if q != p {
			t.Fatalf("round trip of %q via %q: %+v, want %+v", s, again, q, p)
		}
	})
}

// isJSONArray, used for acknowledgements whose answer is not decoded, must
// accept exactly the answers that decodeArray turns into a list.
func FuzzIsJSONArrayAgreesWithDecodeArray(f *testing.F) {
	for _, s := range []string{
		`[]`, ` [1,"a",{"k":[true]}]`, `[{"seq":2,"orderId":"ord_1"}]`, "\t[null]\n", `null`, `{}`, `[`, `[1]x`, `"[]"`, ``, "\ufeff[]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		list, err := decodeArray(s)
		decoded := err == nil && list != nil
		if got := isJSONArray(s); got != decoded {
			t.Fatalf("isJSONArray(%q) = %v, decodeArray gives %v, %v", s, got, list, err)
		}
	})
}

// An acknowledgement as a checkout page answers payment-status-update:
// decoded for EmitWithAck, only checked for EmitWithAckSignal.
func BenchmarkAckAnswer(b *testing.B) {
	const answer = `[{"seq":2,"orderId":"ord_k3v6x2m9q1w8e7r5"}]`
	b.Run("decoded", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeArray(answer); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("checked", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !isJSONArray(answer) {
				b.Fatal("rejected")
			}
		}
	})
}

// BenchmarkEventMessage is one emitted payment update's encoding.
func BenchmarkEventMessage(b *testing.B) {
	payload := map[string]any{"orderId": "ord_0123456789abcdef", "status": "completed", "seq": 3, "amount": 49900, "currency": "INR", "paymentId": "txn_0123456789", "updatedAt": "2026-11-26T14:00:00.000Z", "previousStatus": "pending", "source": "upi"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := eventMessage("/", 7, "payment-status-update", []any{payload}, ""); err != nil {
			b.Fatal(err)
		}
	}
}

// encodeEvent is an event's Socket.IO packet on its own, as the server
// builds it inside an Engine.IO message.
func encodeEvent(nsp string, ackID int, event string, args []any, extra string) (string, error) {
	return buildEvent(0, nsp, ackID, event, args, extra)
}
