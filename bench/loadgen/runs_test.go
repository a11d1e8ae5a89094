package main

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMedianAndSpread(t *testing.T) {
	tests := []struct {
		name           string
		in             []float64
		median, lo, hi float64
	}{
		{name: "one", in: []float64{0.4}, median: 0.4, lo: 0.4, hi: 0.4},
		{name: "odd, unsorted", in: []float64{0.9, 0.1, 0.5, 0.3, 0.7}, median: 0.5, lo: 0.1, hi: 0.9},
		{name: "even: mean of the middle two", in: []float64{4, 1, 3, 2}, median: 2.5, lo: 1, hi: 4},
		{name: "an outlier does not move it", in: []float64{0.2, 0.21, 0.22, 0.23, 9}, median: 0.22, lo: 0.2, hi: 9},
		{name: "negative values", in: []float64{-1, -3, -2}, median: -2, lo: -3, hi: -1},
		{name: "empty", in: nil, median: 0, lo: 0, hi: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi := spread(append([]float64(nil), tc.in...))
			m := median(append([]float64(nil), tc.in...))
			if m != tc.median || lo != tc.lo || hi != tc.hi {
				t.Fatalf("median %g spread %g-%g, want %g %g-%g", m, lo, hi, tc.median, tc.lo, tc.hi)
			}
		})
	}
}

func TestInterleave(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		sides   []string
		want    []step
		wantErr bool
	}{
		{name: "five runs of two sides alternate", n: 5, sides: []string{"go", "node"}, want: []step{
			{"go", 1}, {"node", 1}, {"go", 2}, {"node", 2}, {"go", 3}, {"node", 3}, {"go", 4}, {"node", 4}, {"go", 5}, {"node", 5},
		}},
		{name: "the given order is kept", n: 2, sides: []string{"expiry", "plain"}, want: []step{
			{"expiry", 1}, {"plain", 1}, {"expiry", 2}, {"plain", 2},
		}},
		{name: "one run", n: 1, sides: []string{"go", "node"}, want: []step{{"go", 1}, {"node", 1}}},
		{name: "one side", n: 3, sides: []string{"go"}, want: []step{{"go", 1}, {"go", 2}, {"go", 3}}},
		{name: "zero runs", n: 0, sides: []string{"go", "node"}, wantErr: true},
		{name: "negative runs", n: -2, sides: []string{"go"}, wantErr: true},
		{name: "no sides", n: 3, wantErr: true},
		{name: "repeated side", n: 2, sides: []string{"go", "go"}, wantErr: true},
		{name: "side with a space", n: 2, sides: []string{"go node"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := interleave(tc.n, tc.sides)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPairRuns(t *testing.T) {
	r := func(name string) *Result { return &Result{Server: name} }
	tests := []struct {
		name    string
		in      []*Result
		pairs   int
		wantErr bool
	}{
		{name: "alternating", in: []*Result{r("Go"), r("Node"), r("Go"), r("Node")}, pairs: 2},
		{name: "odd count", in: []*Result{r("Go"), r("Node"), r("Go")}, wantErr: true},
		{name: "none", in: nil, wantErr: true},
		{name: "out of order", in: []*Result{r("Go"), r("Node"), r("Node"), r("Go")}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pairRuns(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if len(got) != tc.pairs {
				t.Fatalf("%d pairs, want %d", len(got), tc.pairs)
			}
		})
	}
}

// seriesOf builds interleaved pairs whose named goal is at the given
// ratios, one per pair, and every other goal met.
func seriesOf(set []goal, goalName string, ratios ...float64) []runPair {
	pairs := make([]runPair, len(ratios))
	for i, r := range ratios {
		a, b := resultPairOf(set, map[string]float64{goalName: r})
		pairs[i] = runPair{a, b}
	}
	return pairs
}

func TestJudgeMedians(t *testing.T) {
	tests := []struct {
		name         string
		pairs        []runPair
		modify       func(p []runPair)
		goal         string
		wantMet      bool
		wantMeasured bool
		wantRatio    float64
		wantLo       float64
		wantHi       float64
	}{
		{
			name:  "median under the bound though one run is over",
			pairs: seriesOf(goals, "fan-out receipt p99", 0.3, 0.9, 0.4, 0.45, 0.2),
			goal:  "fan-out receipt p99", wantMet: true, wantMeasured: true, wantRatio: 0.4, wantLo: 0.2, wantHi: 0.9,
		},
		{
			name:  "median over the bound though two runs are under",
			pairs: seriesOf(goals, "end-to-end receipt p99", 0.2, 0.3, 0.26, 0.24, 0.5),
			goal:  "end-to-end receipt p99", wantMet: false, wantMeasured: true, wantRatio: 0.26, wantLo: 0.2, wantHi: 0.5,
		},
		{
			name:  "at least: median of throughput",
			pairs: seriesOf(goals, "concurrent gateways callbacks/s", 2.5, 3.5, 3.1),
			goal:  "concurrent gateways callbacks/s", wantMet: true, wantMeasured: true, wantRatio: 3.1, wantLo: 2.5, wantHi: 3.5,
		},
		{
			name:  "a run that did not measure leaves the goal unmet",
			pairs: seriesOf(goals, "fan-out receipt p99", 0.1, 0.1, 0.1),
			modify: func(p []runPair) {
				p[1].b.metric("fanout", "receipt latency p99").Valid = false
			},
			goal: "fan-out receipt p99", wantMet: false, wantMeasured: false,
		},
		{
			name:  "a problem in one run fails the loss check",
			pairs: seriesOf(goals, "fan-out receipt p99", 0.1, 0.1, 0.1),
			modify: func(p []runPair) {
				p[2].a.Problems = []string{"e2e: 1 of 10000 updates never arrived"}
			},
			goal: lossGoal, wantMet: false, wantMeasured: true,
		},
		{
			name:  "fleet goals: cross-node p99 at 0.5",
			pairs: seriesOf(fleetGoals, "cross-node end-to-end receipt p99", 0.6, 0.5, 0.4),
			modify: func(p []runPair) {
				for _, x := range p {
					x.a.Params = map[string]string{"nodes": "3"}
				}
			},
			goal: "cross-node end-to-end receipt p99", wantMet: true, wantMeasured: true, wantRatio: 0.5, wantLo: 0.4, wantHi: 0.6,
		},
		{
			name:  "expiry: within 10%",
			pairs: seriesOf(expiryGoals, expiryGoals[0].name, 1.05, 1.2, 1.08),
			modify: func(p []runPair) {
				for _, x := range p {
					x.a.Params = map[string]string{"expiryOrders": "100000", "expiryHonoured": "true"}
				}
			},
			goal: expiryGoals[0].name, wantMet: true, wantMeasured: true, wantRatio: 1.08, wantLo: 1.05, wantHi: 1.2,
		},
		{
			name:  "expiry: a server that ignored ttlSeconds measured nothing",
			pairs: seriesOf(expiryGoals, expiryGoals[0].name, 1, 1, 1),
			modify: func(p []runPair) {
				for _, x := range p {
					x.a.Params = map[string]string{"expiryOrders": "100000", "expiryHonoured": "false"}
				}
			},
			goal: expiryGoals[0].name, wantMet: false, wantMeasured: false,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.modify != nil {
				tc.modify(tc.pairs)
			}
			o := outcomeNamed(t, judge(tc.pairs), tc.goal)
			if o.met != tc.wantMet || o.measured != tc.wantMeasured {
				t.Fatalf("met=%v measured=%v (%s), want %v %v", o.met, o.measured, o.why, tc.wantMet, tc.wantMeasured)
			}
			if !tc.wantMeasured || o.scenario == "" {
				return
			}
			near := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
			if !near(o.ratio, tc.wantRatio) || !near(o.min, tc.wantLo) || !near(o.max, tc.wantHi) {
				t.Fatalf("ratio %g (%g-%g), want %g (%g-%g)", o.ratio, o.min, o.max, tc.wantRatio, tc.wantLo, tc.wantHi)
			}
		})
	}
}

func TestGoalsFor(t *testing.T) {
	tests := []struct {
		params map[string]string
		want   []goal
	}{
		{nil, goals},
		{map[string]string{"nodes": "1"}, goals},
		{map[string]string{"nodes": "3"}, fleetGoals},
		{map[string]string{"nodes": "1", "expiryOrders": "2000"}, expiryGoals},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.params), func(t *testing.T) {
			got := goalsFor(&Result{Params: tc.params})
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %d goals starting %q", len(got), got[0].name)
			}
		})
	}
}

func TestPrintMedians(t *testing.T) {
	pairs := seriesOf(goals, "fan-out receipt p99", 0.3, 0.9, 0.4, 0.45, 0.2)
	for i := range pairs {
		pairs[i].a.add("fanout", "server CPU time per delivery", "µs", float64(10+i), true)
		pairs[i].b.add("fanout", "server CPU time per delivery", "µs", 20, true)
	}
	var out bytes.Buffer
	if printMedians(&out, pairs) {
		t.Fatal("clean runs reported as having problems")
	}
	s := out.String()
	for _, want := range []string{
		"median ratio Go/Node over 5 interleaved runs",
		"0.400        (0.200-0.900)",
		"server CPU time per delivery (µs)",
		"12 (10-14)", // Go's median and spread
		"0.60 (0.50-0.70)",
		"9 of 9 goals met",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}

	pairs[3].b.Problems = []string{"fan-out: 2 of 10000 deliveries never arrived"}
	out.Reset()
	if !printMedians(&out, pairs) {
		t.Fatal("a run with a problem not reported")
	}
	if !strings.Contains(out.String(), "run 4, Node: fan-out: 2 of 10000") || !strings.Contains(out.String(), "not met: "+lossGoal) {
		t.Errorf("the problem is not shown or not judged:\n%s", out.String())
	}
}

func TestExpiryDeadlines(t *testing.T) {
	at := time.Unix(1000, 0)
	tests := []struct {
		name string
		j, n int
		want time.Duration // after at
	}{
		{name: "first, half a second in", j: 0, n: 5, want: 500 * time.Millisecond},
		{name: "last, at the end of the window", j: 4, n: 5, want: 10 * time.Second},
		{name: "middle", j: 2, n: 5, want: 5250 * time.Millisecond},
		{name: "a single order", j: 0, n: 1, want: 500 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := expiryDeadline(at, 10*time.Second, tc.j, tc.n).Sub(at); got != tc.want {
				t.Fatalf("deadline %s after the start, want %s", got, tc.want)
			}
		})
	}
	ttls := []struct {
		name     string
		ahead    time.Duration
		ttl      int
		wantLate bool
	}{
		{name: "rounds to whole seconds", ahead: 90400 * time.Millisecond, ttl: 90},
		{name: "rounds up past the half", ahead: 90600 * time.Millisecond, ttl: 91},
		{name: "too close", ahead: 300 * time.Millisecond, ttl: 1, wantLate: true},
		{name: "passed", ahead: -2 * time.Second, ttl: 1, wantLate: true},
	}
	for _, tc := range ttls {
		t.Run(tc.name, func(t *testing.T) {
			ttl, late := ttlFor(at.Add(tc.ahead), at)
			if ttl != tc.ttl || late != tc.wantLate {
				t.Fatalf("ttl %d late %v, want %d %v", ttl, late, tc.ttl, tc.wantLate)
			}
		})
	}
}

func TestFleetRouting(t *testing.T) {
	tests := []struct {
		i, n, home, callback int
	}{
		{0, 1, 0, 0},
		{5, 1, 0, 0},
		{0, 3, 0, 1},
		{1, 3, 1, 2},
		{2, 3, 2, 0},
		{7, 3, 1, 2},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("client %d of %d nodes", tc.i, tc.n), func(t *testing.T) {
			h, c := home(tc.i, tc.n), callbackNode(tc.i, tc.n)
			if h != tc.home || c != tc.callback {
				t.Fatalf("home %d callback %d, want %d %d", h, c, tc.home, tc.callback)
			}
			if tc.n > 1 && h == c {
				t.Fatal("on a fleet the callback must go to another node than the client's")
			}
		})
	}
}

func TestParseFleetFlags(t *testing.T) {
	tests := []struct {
		name    string
		urls    string
		pids    string
		nodes   int
		wantErr bool
	}{
		{name: "one node", urls: "http://127.0.0.1:1", pids: "42", nodes: 1},
		{name: "one node without pid", urls: "http://127.0.0.1:1", pids: "", nodes: 1},
		{name: "fleet", urls: "http://127.0.0.1:1, http://127.0.0.1:2,http://127.0.0.1:3", pids: "1,2,3", nodes: 3},
		{name: "pid count mismatch", urls: "http://127.0.0.1:1,http://127.0.0.1:2", pids: "1", wantErr: true},
		{name: "bad pid", urls: "http://127.0.0.1:1", pids: "x", wantErr: true},
		{name: "no url", urls: " , ", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := newFleet(config{url: tc.urls, pid: tc.pids})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && len(f.nodes) != tc.nodes {
				t.Fatalf("%d nodes, want %d", len(f.nodes), tc.nodes)
			}
		})
	}
}

func TestParseCounter(t *testing.T) {
	in := strings.Join([]string{
		"# HELP paystatus_ack_resends_total Re-sends.",
		"# TYPE paystatus_ack_resends_total counter",
		`paystatus_ack_resends_total{event="payment-status-update",why="a b"} 3`,
		`paystatus_ack_resends_total{event="other"} 2`,
		"paystatus_broadcasts_total 99",
		"",
	}, "\n")
	tests := []struct {
		part  string
		want  float64
		found bool
	}{
		{"resend", 5, true},
		{"broadcasts", 99, true},
		{"nothing", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.part, func(t *testing.T) {
			v, ok := parseCounter(strings.NewReader(in), tc.part)
			if v != tc.want || ok != tc.found {
				t.Fatalf("%g %v, want %g %v", v, ok, tc.want, tc.found)
			}
		})
	}
}

func TestPlanLead(t *testing.T) {
	tests := []struct {
		name     string
		expiring int
		clients  int
		rate     float64
		settle   time.Duration
		want     time.Duration
	}{
		// (100,000 + 4 × 10,000) / 1,000/s = 140 s, × 1.25 = 175 s; + 20 s storm + 6 s + 5 s.
		{name: "full size at 1,000/s", expiring: 100000, clients: 10000, rate: 1000, settle: 3 * time.Second, want: 206 * time.Second},
		{name: "full size at 4,000/s", expiring: 100000, clients: 10000, rate: 4000, settle: 3 * time.Second, want: 74750 * time.Millisecond},
		// (2,000 + 1,200) / 1,600/s = 2 s, × 1.25 = 2.5 s; + 0.6 s + 2 s + 5 s.
		{name: "smoke", expiring: 2000, clients: 300, rate: 1600, settle: time.Second, want: 10100 * time.Millisecond},
		{name: "a zero rate is taken as 1/s", expiring: 10, clients: 0, rate: 0, settle: 0, want: 17500 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := planLead(tc.expiring, tc.clients, tc.rate, tc.settle); got != tc.want {
				t.Fatalf("lead %s, want %s", got, tc.want)
			}
		})
	}
	for _, n := range []struct{ n, want int }{{2000, 100}, {100000, 2000}, {1000000, 2000}, {10, 100}} {
		if got := probeSize(n.n); got != n.want {
			t.Errorf("probeSize(%d) = %d, want %d", n.n, got, n.want)
		}
	}
}
