package redisadapter

import (
	"bytes"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"paystatus/realtime/socketio"
)

// offlineAdapter is an adapter whose namespace has no sockets and whose
// broker never runs, for feeding it messages directly.
func offlineAdapter(t testing.TB) (*adapter, *[]string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = c.Close() })
	b, err := New(Config{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	io, err := socketio.NewServer(socketio.Config{})
	if err != nil {
		t.Fatal(err)
	}
	nsp := io.Of("/")
	var got []string
	nsp.OnRemoteBroadcast = func(_ socketio.BroadcastOptions, event string, _ []any) bool {
		got = append(got, event)
		return true
	}
	return newAdapter(b, nsp), &got
}

func mustMsgpack(t testing.TB, v any) []byte {
	b, err := encodeMsgpack(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Malformed broadcasts are refused with ErrMalformed and deliver nothing.
func TestBroadcastMessageBadInput(t *testing.T) {
	a, got := offlineAdapter(t)
	good := func(p map[string]any) []byte {
		return mustMsgpack(t, []any{"other", p, map[string]any{"rooms": []string{"r"}, "except": []string{}}})
	}
	cases := []struct {
		name string
		msg  []byte
	}{
		{"empty", nil},
		{"not msgpack", []byte{0xc1}},
		{"bad json", []byte("{nope")},
		{"not a list", mustMsgpack(t, map[string]any{"a": 1})},
		{"short list", mustMsgpack(t, []any{"uid", 1})},
		{"packet not a map", mustMsgpack(t, []any{"uid", "x", map[string]any{}})},
		{"other namespace", good(map[string]any{"type": 2, "nsp": "/admin", "data": []any{"e"}})},
		{"not an event", good(map[string]any{"type": 3, "nsp": "/", "data": []any{"e"}})},
		{"no data", good(map[string]any{"type": 2, "nsp": "/"})},
		{"empty data", good(map[string]any{"type": 2, "nsp": "/", "data": []any{}})},
		{"event not a string", good(map[string]any{"type": 2, "nsp": "/", "data": []any{7}})},
		{"map32 declaring billions of entries", []byte("\xdf\xf3\xf3\xf3\xf3\x04")},
		{"array32 declaring billions of elements", []byte("\xdd\xff\xff\xff\xff\x01")},
		{"str32 longer than the message", []byte("\xdb\x7f\xff\xff\xffab")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := a.onBroadcastMessage(tc.msg); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if len(*got) != 0 {
				t.Fatalf("delivered %v", *got)
			}
		})
	}
	// Node leaves nsp out for the root namespace; that is delivered.
	if err := a.onBroadcastMessage(good(map[string]any{"type": 2, "data": []any{"ok", 1}})); err != nil || len(*got) != 1 || (*got)[0] != "ok" {
		t.Fatalf("root namespace packet: %v %v", err, *got)
	}
	// Its own broadcasts come back and are skipped.
	own := mustMsgpack(t, []any{a.uid, map[string]any{"type": 2, "nsp": "/", "data": []any{"mine"}}, map[string]any{}})
	if err := a.onBroadcastMessage(own); err != nil || len(*got) != 1 {
		t.Fatalf("own broadcast: %v %v", err, *got)
	}
}

func TestRequestBadInput(t *testing.T) {
	a, _ := offlineAdapter(t)
	for _, msg := range [][]byte{nil, []byte("{"), mustMsgpack(t, []any{1}), []byte(`{"type":6,"data":"x"}`), []byte(`{"type":6,"data":[1]}`), []byte(`{"type":7,"packet":{"type":2}}`)} {
		if err := a.onRequest(msg); !errors.Is(err, ErrMalformed) {
			t.Errorf("onRequest(%q) = %v, want ErrMalformed", msg, err)
		}
	}
	for _, data := range []string{"{", "!!not base64", "wQ=="} {
		if _, err := decodeStreamData(data); !errors.Is(err, ErrMalformed) {
			t.Errorf("decodeStreamData(%q) = %v, want ErrMalformed", data, err)
		}
	}
	if _, ok := decodeSession("bm9wZQ=="); ok {
		t.Error("decoded a session from garbage")
	}
}

func TestNextOffset(t *testing.T) {
	for in, want := range map[string]string{"1-0": "1-1", "1700000000000-41": "1700000000000-42"} {
		if got := nextOffset(in); got != want {
			t.Errorf("nextOffset(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzMessages(f *testing.F) {
	f.Add(mustMsgpack(f, []any{"u", map[string]any{"type": 2, "nsp": "/", "data": []any{"e", 1}}, map[string]any{"rooms": []string{"r"}}}))
	f.Add([]byte(`{"uid":"u","type":5,"requestId":"x","opts":{"rooms":["r"]}}`))
	f.Add([]byte(`{"requestId":"x","sockets":[{"id":"a","rooms":["a"]}]}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		a, _ := offlineAdapter(t)
		_ = a.onBroadcastMessage(msg)
		_ = a.onRequest(msg)
		_ = a.onResponse(msg)
		_, _ = decodeStreamData(string(msg))
		_, _ = decodeSession(string(msg))
	})
}

func BenchmarkPublishEncode(b *testing.B) {
	payload := map[string]any{"orderId": "ord_1", "status": "completed", "seq": 2, "amount": 49900}
	opts := encodeOpts(socketio.BroadcastOptions{Rooms: []string{"order-ord_1"}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeMsgpack([]any{"uid", eventPacket("/", "payment-status-update", []any{payload}), opts}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCheckMsgpack(t *testing.T) {
	deep := bytes.Repeat([]byte{0x91}, maxMsgpackDepth+1)
	deep = append(deep, 0x01)
	for _, tc := range []struct {
		name string
		msg  []byte
		ok   bool
	}{
		{"adapter message", mustMsgpack(t, []any{"u", map[string]any{"type": 2, "data": []any{"e", 1.5, nil, true, []byte{1, 2}}}, map[string]any{"rooms": []string{"r"}}}), true},
		{"empty map", []byte{0x80}, true},
		{"empty", nil, false},
		{"reserved code", []byte{0xc1}, false},
		{"map32 bomb", []byte("\xdf\xf3\xf3\xf3\xf3\x04"), false},
		{"array16 past the end", []byte{0xdc, 0x00, 0x05, 0x01}, false},
		{"bin8 past the end", []byte{0xc4, 0x09, 0x01}, false},
		{"ext32 length cut", []byte{0xc9, 0x00}, false},
		{"nested too deep", deep, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkMsgpack(tc.msg)
			if tc.ok && err != nil {
				t.Fatalf("checkMsgpack = %v, want nil", err)
			}
			if !tc.ok && !errors.Is(err, ErrMalformed) {
				t.Fatalf("checkMsgpack = %v, want ErrMalformed", err)
			}
		})
	}
}
