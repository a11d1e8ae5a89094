package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"paystatus/payment"

	goredis "github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"
)

func TestRedisConfigDefaults(t *testing.T) {
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:0"})
	t.Cleanup(func() { _ = client.Close() })
	cases := []struct {
		name       string
		in         RedisConfig
		wantErr    bool
		wantMode   RedisMode
		wantPrefix string
	}{
		{"defaults", RedisConfig{Client: client}, false, RedisPubSub, DefaultRedisPrefix},
		{"streams with prefix", RedisConfig{Client: client, Mode: RedisStreams, Prefix: "fleet-a"}, false, RedisStreams, "fleet-a"},
		{"no client", RedisConfig{}, true, "", ""},
		{"unknown mode", RedisConfig{Client: client, Mode: "kafka"}, true, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.in.withDefaults()
			if tc.wantErr {
				if !errors.Is(err, errConfig) {
					t.Fatalf("err = %v, want errConfig", err)
				}
				return
			}
			if err != nil || got.Mode != tc.wantMode || got.Prefix != tc.wantPrefix {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
}

func TestNewRefusesBadRedisConfig(t *testing.T) {
	_, err := New(Config{Redis: &RedisConfig{}}, nopAccess{})
	if !errors.Is(err, errConfig) {
		t.Fatalf("err = %v, want errConfig", err)
	}
}

// nopAccess is an OrderAccess that is never reached in these tests.
type nopAccess struct{}

func (nopAccess) Authorize(string, string) error { return nil }
func (nopAccess) Snapshot(context.Context, string) (payment.Snapshot, error) {
	return payment.Snapshot{}, payment.ErrOrderNotFound
}

// Payloads cross nodes msgpack-encoded; an order update's data must arrive
// as an object, not as bytes.
func TestOrderChangePayloadSurvivesMsgpack(t *testing.T) {
	p := orderChangePayload(payment.OrderChange{OrderID: "ord_1", Seq: 2, Type: "updated", Data: json.RawMessage(`{"description":"x","metadata":{"n":1}}`)})
	b, err := msgpack.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := msgpack.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	data, ok := back["data"].(map[string]any)
	if !ok || data["description"] != "x" {
		t.Fatalf("data crossed as %T %v", back["data"], back["data"])
	}
}
