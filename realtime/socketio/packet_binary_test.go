package socketio

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"paystatus/realtime/engineio"
	"paystatus/realtime/realtimetest"
)

// joinedClient joins "/" on protocol eio.
func joinedClient(t *testing.T, cl *realtimetest.Client, eio int) {
	t.Helper()
	if eio < 4 {
		if got := cl.Recv(); got != "0" {
			t.Fatalf("first packet %q, want 0", got)
		}
		return
	}
	cl.Connect("/", "")
}

func TestBinaryEventAndAckRoundTrip(t *testing.T) {
	for _, eio := range []int{3, 4} {
		t.Run(fmt.Sprintf("EIO%d", eio), func(t *testing.T) {
			srv, ts := startIO(t, Config{Engine: engineio.Config{AllowEIO3: true}})
			a := newApp(srv.Of("/"))
			cl := realtimetest.DialSocketIO(t, ts.URL, eio)
			joinedClient(t, cl, eio)
			one, two := []byte{0, 1, 2, 255}, bytes.Repeat([]byte{7}, 300)
			cl.Send(`52-5["echo",{"_placeholder":true,"num":0},{"k":{"_placeholder":true,"num":1},"n":1}]`)
			cl.WriteBinaryMessage(eio, one)
			cl.WriteBinaryMessage(eio, two)
			if got := cl.Recv(); got != `62-5[{"_placeholder":true,"num":0},{"k":{"_placeholder":true,"num":1},"n":1}]` {
				t.Fatalf("binary ack header %q", got)
			}
			if got := cl.ReadBinaryMessage(eio); !bytes.Equal(got, one) {
				t.Fatalf("first attachment %v", got)
			}
			if got := cl.ReadBinaryMessage(eio); !bytes.Equal(got, two) {
				t.Fatalf("second attachment of %d bytes", len(got))
			}
			log := a.eventLog()
			if len(log) != 1 || !strings.Contains(log[0], fmt.Sprintf(":echo:[%v map[k:%v n:1]]:true", one, two)) {
				t.Fatalf("events %q", log)
			}
			// A text event afterwards is read as text again.
			cl.Send(`26["echo","t"]`)
			if got := cl.Recv(); got != `36["t"]` {
				t.Fatalf("text ack after binary %q", got)
			}
		})
	}
}

func TestServerEmitsBinary(t *testing.T) {
	_, cl, _, sock := connectedSocket(t)
	answered := make(chan []any, 1)
	payload := map[string]any{"file": []byte("abc"), "meta": []any{1, []byte{9}}}
	if err := sock.EmitWithAck("upload", func(args []any) { answered <- args }, payload); err != nil {
		t.Fatal(err)
	}
	got := cl.Recv()
	want := `52-0["upload",{"file":{"_placeholder":true,"num":0},"meta":[1,{"_placeholder":true,"num":1}]}]`
	if got != want {
		t.Fatalf("binary emit %q, want %q", got, want)
	}
	if b := cl.ReadBinaryMessage(4); string(b) != "abc" {
		t.Fatalf("attachment 0 %q", b)
	}
	if b := cl.ReadBinaryMessage(4); !bytes.Equal(b, []byte{9}) {
		t.Fatalf("attachment 1 %v", b)
	}
	// The client answers with a binary ack.
	cl.Send(`61-0[{"_placeholder":true,"num":0},"x"]`)
	cl.WriteBinaryMessage(4, []byte{1, 2})
	select {
	case args := <-answered:
		if !reflect.DeepEqual(args, []any{[]byte{1, 2}, "x"}) {
			t.Fatalf("ack args %#v", args)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("binary ack not delivered")
	}
	// The payload the application passed is left as it was.
	if _, ok := payload["file"].([]byte); !ok {
		t.Fatal("emit changed the caller's arguments")
	}
	// A binary emit without acknowledgement.
	if err := sock.Emit("blob", []byte{}); err != nil {
		t.Fatal(err)
	}
	if got := cl.Recv(); got != `51-["blob",{"_placeholder":true,"num":0}]` {
		t.Fatalf("emit %q", got)
	}
	if b := cl.ReadBinaryMessage(4); len(b) != 0 {
		t.Fatalf("empty attachment %v", b)
	}
}

// Every way a binary packet can be malformed or too big closes the
// connection with Node's "parse error" and reaches no handler.
func TestBinaryPacketBounds(t *testing.T) {
	tests := []struct {
		name  string
		steps func(cl *realtimetest.Client)
	}{
		{"more attachments than allowed", func(cl *realtimetest.Client) {
			cl.Send(`53-["echo",{"_placeholder":true,"num":0}]`)
		}},
		{"attachments larger than max payload", func(cl *realtimetest.Client) {
			cl.Send(`52-["echo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
			cl.WriteBinaryMessage(4, bytes.Repeat([]byte{1}, 600))
			cl.WriteBinaryMessage(4, bytes.Repeat([]byte{1}, 600))
		}},
		{"binary message nobody announced", func(cl *realtimetest.Client) {
			cl.WriteBinaryMessage(4, []byte{1})
		}},
		{"text packet while attachments are awaited", func(cl *realtimetest.Client) {
			cl.Send(`52-["echo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
			cl.WriteBinaryMessage(4, []byte{1})
			cl.Send(`2["echo"]`)
		}},
		{"placeholder number out of range", func(cl *realtimetest.Client) {
			cl.Send(`51-["echo",{"_placeholder":true,"num":1}]`)
			cl.WriteBinaryMessage(4, []byte{1})
		}},
		{"placeholder number not an integer", func(cl *realtimetest.Client) {
			cl.Send(`51-["echo",{"_placeholder":true,"num":0.5}]`)
			cl.WriteBinaryMessage(4, []byte{1})
		}},
		{"binary event without a name", func(cl *realtimetest.Client) {
			cl.Send(`51-[{"_placeholder":true,"num":0}]`)
			cl.WriteBinaryMessage(4, []byte{1})
		}},
		{"JSON nested deeper than MaxEventDepth", func(cl *realtimetest.Client) {
			cl.Send(`51-["echo",[[[[[[[[[{"_placeholder":true,"num":0}]]]]]]]]]]`)
		}},
		{"binary event with invalid JSON", func(cl *realtimetest.Client) {
			cl.Send(`51-["echo",{"_placeholder":true,"num":0}`)
			cl.WriteBinaryMessage(4, []byte{1})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, ts := startIO(t, Config{MaxAttachments: 2, Engine: engineio.Config{MaxPayload: 1000}})
			a := newApp(srv.Of("/"))
			cl := realtimetest.DialSocketIO(t, ts.URL, 4)
			sid := cl.Connect("/", "")["sid"]
			a.socket(sid)
			tt.steps(cl)
			cl.ExpectClosed()
			realtimetest.Eventually(t, 5*time.Second, "the socket's disconnect", func() bool { _, ok := a.disconnect(sid); return ok })
			if r, _ := a.disconnect(sid); r != "parse error" {
				t.Fatalf("disconnect reason %q", r)
			}
			if log := a.eventLog(); len(log) != 0 {
				t.Fatalf("a rejected packet reached OnEvent: %q", log)
			}
		})
	}
}

func TestMaxAttachmentsConfig(t *testing.T) {
	if _, err := NewServer(Config{MaxAttachments: -1}); err == nil {
		t.Fatal("a negative MaxAttachments was accepted")
	}
}

func TestHasBinary(t *testing.T) {
	tests := []struct {
		args []any
		want bool
	}{
		{nil, false},
		{[]any{"a", 1, map[string]any{"b": []any{true}}}, false},
		{[]any{[]byte{}}, true},
		{[]any{"a", []any{1, []byte("x")}}, true},
		{[]any{map[string]any{"deep": map[string]any{"x": []byte("x")}}}, true},
	}
	for i, tt := range tests {
		if got := hasBinary(tt.args); got != tt.want {
			t.Errorf("case %d: hasBinary = %v, want %v", i, got, tt.want)
		}
	}
}

// FuzzBinaryReassembly feeds a binary packet and its attachments through
// decoding and reassembly: nothing may panic, and an accepted packet holds
// no placeholder and only bytes that were sent.
func FuzzBinaryReassembly(f *testing.F) {
	f.Add(`52-["e",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, []byte{1, 2, 3})
	f.Add(`61-3[{"_placeholder":true,"num":0}]`, []byte{})
	f.Add(`51-["e",{"_placeholder":true,"num":7}]`, []byte{1})
	f.Add(`51-["e",{"_placeholder":"yes","num":0}]`, []byte{1})
	f.Add(`50-["e"]`, []byte(nil))
	f.Fuzz(func(t *testing.T, header string, attachment []byte) {
		p, err := decodePacket(header)
		if err != nil || p.kind < packetBinaryEvent || p.attachments > 10 {
			return
		}
		pb := &pendingBinary{p: p}
		for len(pb.parts) < p.attachments {
			pb.parts = append(pb.parts, attachment)
		}
		got, err := pb.assemble()
		if err != nil {
			return
		}
		var walk func(v any)
		walk = func(v any) {
			switch x := v.(type) {
			case map[string]any:
				if ph, _ := x["_placeholder"].(bool); ph {
					t.Fatalf("placeholder left in %v", got)
				}
				for _, e := range x {
					walk(e)
				}
			case []any:
				for _, e := range x {
					walk(e)
				}
			case []byte:
				if !bytes.Equal(x, attachment) {
					t.Fatalf("attachment %v was never sent", x)
				}
			}
		}
		walk(got)
	})
}

// BenchmarkHasBinary is the check every emit and ack now makes before
// encoding, on the payload BenchmarkEventMessage encodes; compare the two
// within one run.
func BenchmarkHasBinary(b *testing.B) {
	payload := map[string]any{"orderId": "ord_0123456789abcdef", "status": "completed", "seq": 3, "amount": 49900, "currency": "INR", "paymentId": "txn_0123456789", "updatedAt": "2026-11-26T14:00:00.000Z", "previousStatus": "pending", "source": "upi"}
	args := []any{payload}
	b.ReportAllocs()
	for b.Loop() {
		if hasBinary(args) {
			b.Fatal("binary found")
		}
	}
}
