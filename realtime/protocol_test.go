package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"paystatus/payment"
)

func TestParseRoomRequest(t *testing.T) {
	longToken := strings.Repeat("t", 257)
	tests := []struct {
		name    string
		payload any
		want    roomRequest
		err     error
	}{
		{"bare order id", "ord_abc", roomRequest{OrderID: "ord_abc"}, nil},
		{"object with token", map[string]any{"orderId": "ord_abc", "token": "tok"}, roomRequest{OrderID: "ord_abc", Token: "tok"}, nil},
		{"object without token", map[string]any{"orderId": "ord_abc"}, roomRequest{OrderID: "ord_abc"}, nil},
		{"null token", map[string]any{"orderId": "ord_abc", "token": nil}, roomRequest{OrderID: "ord_abc"}, nil},
		{"extra keys ignored", map[string]any{"orderId": "ord_abc", "x": 1}, roomRequest{OrderID: "ord_abc"}, nil},
		{"longest id", strings.Repeat("a", 64), roomRequest{OrderID: strings.Repeat("a", 64)}, nil},
		{"token of 256 bytes", map[string]any{"orderId": "o", "token": strings.Repeat("t", 256)}, roomRequest{OrderID: "o", Token: strings.Repeat("t", 256)}, nil},

		{"nil", nil, roomRequest{}, errMalformedJoin},
		{"number", 42.0, roomRequest{}, errMalformedJoin},
		{"bool", true, roomRequest{}, errMalformedJoin},
		{"array", []any{"ord_abc"}, roomRequest{}, errMalformedJoin},
		{"object without orderId", map[string]any{"token": "tok"}, roomRequest{}, errMalformedJoin},
		{"numeric orderId", map[string]any{"orderId": 12.0}, roomRequest{}, errMalformedJoin},
		{"numeric token", map[string]any{"orderId": "ord_abc", "token": 5.0}, roomRequest{}, errMalformedJoin},
		{"token too long", map[string]any{"orderId": "ord_abc", "token": longToken}, roomRequest{}, errMalformedJoin},
		{"empty id", "", roomRequest{}, errBadOrderID},
		{"id too long", strings.Repeat("a", 65), roomRequest{}, errBadOrderID},
		{"id with slash", "ord/../x", roomRequest{}, errBadOrderID},
		{"id with space", "ord abc", roomRequest{}, errBadOrderID},
		{"id with newline", "ord_abc\n", roomRequest{}, errBadOrderID},
		{"id with unicode", "ordé", roomRequest{}, errBadOrderID},
		{"object with bad id", map[string]any{"orderId": "a b", "token": "tok"}, roomRequest{}, errBadOrderID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRoomRequest(tt.payload)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error = %v, want %v", err, tt.err)
				}
				if got != (roomRequest{}) {
					t.Fatalf("refused payload still returned %+v", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestOrderIDOf(t *testing.T) {
	tests := []struct {
		payload any
		want    any
	}{
		{"ord_1", "ord_1"},
		{map[string]any{"orderId": "ord_1"}, "ord_1"},
		{map[string]any{"orderId": 5.0}, nil},
		{strings.Repeat("x", payment.MaxOrderIDLength+1), nil},
		{nil, nil},
		{[]any{"ord_1"}, nil},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if got := orderIDOf(tt.payload); got != tt.want {
				t.Fatalf("orderIDOf(%v) = %v, want %v", tt.payload, got, tt.want)
			}
		})
	}
}

func TestPongPayload(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_123)
	t.Run("no payload", func(t *testing.T) {
		got := pongPayload(nil, now)
		if len(got) != 1 || got["timestamp"] != now.UnixMilli() {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("object is echoed", func(t *testing.T) {
		got := pongPayload(map[string]any{"hello": "world", "n": 7.0}, now)
		if got["hello"] != "world" || got["n"] != 7.0 || got["timestamp"] != now.UnixMilli() {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("the ping's own timestamp wins", func(t *testing.T) {
		// The contract is {timestamp, ...payload}: a page measuring round
		// trips gets its own send time back.
		got := pongPayload(map[string]any{"timestamp": 5.0}, now)
		if got["timestamp"] != 5.0 {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("scalar goes under data", func(t *testing.T) {
		got := pongPayload("hi", now)
		if got["data"] != "hi" || got["timestamp"] != now.UnixMilli() || len(got) != 2 {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("nested and long values are not echoed", func(t *testing.T) {
		long := strings.Repeat("x", 10_000)
		got := pongPayload(map[string]any{"ok": "short", "nested": []any{[]any{1.0}}, "obj": map[string]any{"a": 1.0}, "long": long, long: 1.0}, now)
		if got["ok"] != "short" || len(got) != 2 {
			t.Fatalf("got %v, want only ok and timestamp", got)
		}
		if got := pongPayload(long, now); len(got) != 1 {
			t.Fatalf("a long scalar ping was echoed: %d keys", len(got))
		}
	})
	t.Run("large object is capped", func(t *testing.T) {
		big := map[string]any{}
		for i := range 1000 {
			big[fmt.Sprintf("k%d", i)] = i
		}
		got := pongPayload(big, now)
		if len(got) > maxPingKeys+1 {
			t.Fatalf("echoed %d keys, cap is %d plus timestamp", len(got), maxPingKeys)
		}
		if _, ok := got["timestamp"]; !ok {
			t.Fatal("timestamp missing")
		}
	})
}

func testChange() payment.StatusChange {
	return payment.StatusChange{
		Snapshot: payment.Snapshot{
			OrderID: "ord_abc", Status: payment.StatusCompleted, Seq: 3, Amount: 1500, Currency: "INR",
			PaymentID: "pay_1", UpdatedAt: time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("IST", 5*3600+1800)),
		},
		PreviousStatus: payment.StatusProcessing,
		Source:         "upi",
	}
}

func TestStatusChangePayload(t *testing.T) {
	got := statusChangePayload(testChange())
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"amount":1500,"currency":"INR","orderId":"ord_abc","paymentId":"pay_1","previousStatus":"processing","seq":3,"source":"upi","status":"completed","updatedAt":"2024-05-06T01:38:09.123456789Z"}`
	// Key order is not part of JSON: compare the objects.
	if !reflect.DeepEqual(jsonObject(t, b), jsonObject(t, []byte(want))) {
		t.Fatalf("payload\n got %s\nwant %s", b, want)
	}
}

func TestSnapshotPayloadMatchesSnapshotJSON(t *testing.T) {
	// Pages read the same fields from the socket and from the polling
	// endpoint, so both encodings must agree.
	snap := testChange().Snapshot
	snap.UpdatedAt = snap.UpdatedAt.UTC() // as Order.Snapshot returns it
	var fromSocket, fromHTTP map[string]any
	b1, _ := json.Marshal(snapshotPayload(snap))
	b2, _ := json.Marshal(snap)
	if err := json.Unmarshal(b1, &fromSocket); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b2, &fromHTTP); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(fromSocket) != fmt.Sprint(fromHTTP) {
		t.Fatalf("socket %s\n  http %s", b1, b2)
	}
}

func TestOrderChangePayload(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	with := orderChangePayload(payment.OrderChange{OrderID: "ord_1", Seq: 2, Type: "updated", Data: json.RawMessage(`{"description":"x"}`), UpdatedAt: at})
	b, _ := json.Marshal(with)
	if string(b) != `{"data":{"description":"x"},"orderId":"ord_1","seq":2,"type":"updated","updatedAt":"2024-01-02T03:04:05Z"}` {
		t.Fatalf("got %s", b)
	}
	without := orderChangePayload(payment.OrderChange{OrderID: "ord_1", Seq: 2, Type: "updated", UpdatedAt: at})
	if without["data"] != nil {
		t.Fatalf("empty data encoded as %v", without["data"])
	}
}

// FuzzParseRoomRequest feeds JSON-decoded payloads, as the Socket.IO
// parser would deliver them, and checks that anything accepted is safe to
// use as a room name and token.
func FuzzParseRoomRequest(f *testing.F) {
	for _, seed := range []string{
		`"ord_abc"`,
		`{"orderId":"ord_abc","token":"deadbeef"}`,
		`{"orderId":"ord_abc","token":null}`,
		`{"orderId":"ord_abc","token":7}`,
		`{"orderId":12}`,
		`{"token":"x"}`,
		`["ord_abc"]`,
		`null`,
		`""`,
		`"ord/../../etc"`,
		`"` + strings.Repeat("a", 65) + `"`,
		`{"orderId":"a","token":"` + strings.Repeat("t", 300) + `"}`,
		`{"orderId":"\u0000"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var payload any
		if json.Unmarshal(data, &payload) != nil {
			payload = string(data) // a raw string payload is also possible
		}
		req, err := parseRoomRequest(payload)
		if err != nil {
			if !errors.Is(err, errMalformedJoin) && !errors.Is(err, errBadOrderID) {
				t.Fatalf("unexpected error kind %v", err)
			}
			return
		}
		if !payment.ValidOrderID(req.OrderID) {
			t.Fatalf("accepted invalid order id %q", req.OrderID)
		}
		if len(req.Token) > 256 {
			t.Fatalf("accepted a %d-byte token", len(req.Token))
		}
		if got := orderIDOf(payload); got != req.OrderID {
			t.Fatalf("orderIDOf = %v, parse gave %q", got, req.OrderID)
		}
	})
}

func BenchmarkParseRoomRequest(b *testing.B) {
	payload := map[string]any{"orderId": "ord_k3v6x2m9q1w8e7r5", "token": strings.Repeat("ab", 32)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseRoomRequest(payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStatusChangePayload(b *testing.B) {
	c := testChange()
	b.ReportAllocs()
	for b.Loop() {
		_ = statusChangePayload(c)
	}
}

// BenchmarkExpiryBroadcast is the sweep's announcement of an expiry on a
// node alone, to a room nobody has joined (most expiries), with the log at
// warn as in production: it should build neither a payload nor log fields.
func BenchmarkExpiryBroadcast(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := New(Config{Logger: log}, nopAccess{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	c := testChange()
	c.Status, c.PreviousStatus, c.Source = payment.StatusExpired, payment.StatusPending, payment.SourceExpiry
	b.ReportAllocs()
	for b.Loop() {
		s.BroadcastPaymentUpdate(c)
	}
}

// Across nodes the Redis adapter encodes payloads with msgpack: the payload
// structs must carry the same field names there as in JSON.
func TestPayloadsEncodeAlikeInMsgpackAndJSON(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload any
	}{
		{"payment-status-update", statusChangePayload(testChange())},
		{"joined-order status", snapshotPayload(testChange().Snapshot)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js, err := json.Marshal(tc.payload)
			if err != nil {
				t.Fatal(err)
			}
			mp, err := msgpack.Marshal(tc.payload)
			if err != nil {
				t.Fatal(err)
			}
			var fromMsgpack map[string]any
			if err := msgpack.Unmarshal(mp, &fromMsgpack); err != nil {
				t.Fatal(err)
			}
			// Through JSON once more, so that msgpack's integer types become
			// the float64s that encoding/json decodes numbers to.
			again, err := json.Marshal(fromMsgpack)
			if err != nil {
				t.Fatal(err)
			}
			fromJSON := jsonObject(t, js)
			if len(fromJSON) < 7 || !reflect.DeepEqual(fromJSON, jsonObject(t, again)) {
				t.Fatalf("json %v\nmsgpack %v", fromJSON, fromMsgpack)
			}
		})
	}
}

// jsonObject decodes a JSON object.
func jsonObject(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
