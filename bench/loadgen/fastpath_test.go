package main

import (
	"encoding/json"
	"testing"
)

// slowConnTest is what a connection-test event goes through without the
// fast path: parseSIO, then encoding/json.
func slowConnTest(b []byte) (ts, ackID int64, ok bool) {
	p, err := parseSIO(b)
	if err != nil || p.Type != sioEvent || p.Event != "connection-test" {
		return 0, 0, false
	}
	var t connTest
	if err := json.Unmarshal(p.Arg, &t); err != nil {
		return 0, 0, false
	}
	return t.Timestamp, p.AckID, true
}

var fastPathCases = []struct {
	in     string
	ts     int64
	ack    int64
	usable bool // the fast path takes it (otherwise the slow path decides)
}{
	// What the Go server sends (keys sorted) and what Node sends.
	{`2["connection-test",{"orderId":"ord_1","roomSize":10000,"timestamp":1764130000123}]`, 1764130000123, -1, true},
	{`2["connection-test",{"orderId":"ord_1","timestamp":1764130000123,"roomSize":10000}]`, 1764130000123, -1, true},
	{`217["connection-test",{"timestamp":5}]`, 5, 17, true},
	{`2["connection-test",{"timestamp":-0,"x":null,"y":true,"z":false,"w":"s"}]`, 0, -1, true},
	{`2["connection-test",{"timestamp":1,"timestamp":2}]`, 2, -1, true},
	{`2["connection-test",{"orderId":"` + "\xff\xfe" + `","timestamp":3}]`, 3, -1, true},
	// Valid, but left to encoding/json.
	{`2["connection-test",{}]`, 0, -1, false},
	{`2["connection-test",{"timestamp":12,"extra":{"a":1}}]`, 12, -1, false},
	{`2["connection-test",{"Timestamp":12}]`, 12, -1, false},
	{`2["connection-test",{"timeſtamp":12}]`, 12, -1, false},
	{`2["connection-test",{"orderId":"a\"b","timestamp":1}]`, 1, -1, false},
	{`2["connection-test", {"timestamp":1}]`, 1, -1, false},
	{`2["connection-test",{"orderId":"o","roomSize":3,"timestamp":7},"Xk3bQ2aa-17"]`, 7, -1, true},
	{`2["connection-test",{"timestamp":1},2]`, 1, -1, true},
	{`2["connection-test",{"timestamp":1},]`, 1, -1, true},
	{`2["connection-test",{"timestamp":1},{"a":[}]`, 1, -1, true},
	{`2["connection-test",{"timestamp":1} ]`, 1, -1, false},
	{`2["connection-test",{"timestamp":1}],`, 0, 0, false},
	{`2["connection-test",{"timestamp":1}]]`, 1, -1, false},
	{`2["connection-test",{"timestamp":1},"x"`, 0, 0, false},
	{`2["connection-test",{"timestamp":null}]`, 0, -1, false},
	{`2["connection-test",{"timestamp":1234567890123456789}]`, 1234567890123456789, -1, false},
	{`2/ns,["connection-test",{"timestamp":1}]`, 1, -1, false},
	// Malformed: counted as bad frames by the slow path.
	{`2["connection-test",{"timestamp":"1"}]`, 0, 0, false},
	{`2["connection-test",{"timestamp":1.5}]`, 0, 0, false},
	{`2["connection-test",{"timestamp":1.5e3}]`, 0, 0, false},
	{`2["connection-test",{"timestamp":1e3}]`, 0, 0, false},
	{`2["connection-test",{"orderId":7,"timestamp":1}]`, 0, 0, false},
	{`2["connection-test",{"timestamp":01}]`, 0, 0, false},
	{`2["connection-test",{"timestamp":1]`, 0, 0, false},
	{`2["connection-test",{"timestamp":1}`, 0, 0, false},
	{`2["connection-test",{"timestamp":1,}]`, 0, 0, false},
	{`2["connection-test",{"orderId":"a` + "\x01" + `","timestamp":1}]`, 0, 0, false},
	{`2["connection-test"]`, 0, 0, false},
	{`2["connection-test",{"timestamp":99999999999999999999}]`, 0, 0, false},
	{`299999999999999999999["connection-test",{"timestamp":1}]`, 0, 0, false},
}

func TestFastConnTest(t *testing.T) {
	for _, c := range fastPathCases {
		ts, ack, ok := fastConnTest([]byte(c.in))
		if ok != c.usable || (ok && (ts != c.ts || ack != c.ack)) {
			t.Errorf("%s: fast path %d %d %v", c.in, ts, ack, ok)
		}
		sts, sack, sok := slowConnTest([]byte(c.in))
		if ok && (!sok || sts != ts || sack != ack) {
			t.Errorf("%s: fast path took what the slow path reads as %d %d %v", c.in, sts, sack, sok)
		}
		// The table's non-fast cases say what the slow path makes of them.
		if !ok && c.ack != 0 && (!sok || sts != c.ts || sack != c.ack) {
			t.Errorf("%s: slow path %d %d %v, want %d %d", c.in, sts, sack, sok, c.ts, c.ack)
		}
		if !ok && c.ack == 0 && sok {
			t.Errorf("%s: slow path accepted a malformed event", c.in)
		}
	}
}

// FuzzConnTestFastPath: whatever the fast path accepts, the full decoding
// accepts with the same timestamp and ack id, so taking the shortcut never
// changes what is counted as a bad frame or recorded.
func FuzzConnTestFastPath(f *testing.F) {
	for _, c := range fastPathCases {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, ack, ok := fastConnTest(b)
		if !ok {
			return
		}
		sts, sack, sok := slowConnTest(b)
		if !sok || sts != ts || sack != ack {
			t.Fatalf("%q: fast %d %d, slow %d %d %v", b, ts, ack, sts, sack, sok)
		}
	})
}

func BenchmarkConnTest(b *testing.B) {
	msg := []byte(`2["connection-test",{"orderId":"0b7f6a0e-5d1c-4c1e-9a53-2a4f6c1d9e77","roomSize":10000,"timestamp":1764130000123},"a1b2c3d4-42"]`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, ok := fastConnTest(msg); !ok {
				b.Fatal("not taken")
			}
		}
	})
	b.Run("slow", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, ok := slowConnTest(msg); !ok {
				b.Fatal("rejected")
			}
		}
	})
}
