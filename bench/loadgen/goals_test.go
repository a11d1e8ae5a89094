package main

import (
	"bytes"
	"strings"
	"testing"
)

// resultPair builds a Go and a Node result whose goal figures (of a node
// alone) are at the given ratios (Node's figure is 100, Go's 100×ratio),
// all valid; a goal not given is met with room to spare.
func resultPair(ratios map[string]float64) (*Result, *Result) {
	return resultPairOf(goals, ratios)
}

func resultPairOf(set []goal, ratios map[string]float64) (*Result, *Result) {
	a, b := &Result{Server: "Go"}, &Result{Server: "Node"}
	for _, g := range set {
		r, ok := ratios[g.name]
		if !ok {
			r = g.bound / 5
			if g.atLeast {
				r = g.bound * 2
			}
		}
		a.add(g.scenario, g.figure, "", 100*r, true)
		b.add(g.scenario, g.figure, "", 100, true)
	}
	return a, b
}

func outcomeNamed(t *testing.T, outcomes []goalOutcome, name string) goalOutcome {
	t.Helper()
	for _, o := range outcomes {
		if o.name == name {
			return o
		}
	}
	t.Fatalf("no outcome %q", name)
	return goalOutcome{}
}

func TestCheckGoals(t *testing.T) {
	const lossCheck = "nothing lost, duplicated or failed"
	tests := []struct {
		name    string
		ratios  map[string]float64
		modify  func(a, b *Result)
		goal    string
		wantMet bool
	}{
		{name: "under the bound", goal: "fan-out receipt p99", ratios: map[string]float64{"fan-out receipt p99": 0.45}, wantMet: true},
		{name: "at the bound", goal: "fan-out receipt p99", ratios: map[string]float64{"fan-out receipt p99": 0.5}, wantMet: true},
		{name: "over the bound", goal: "fan-out receipt p99", ratios: map[string]float64{"fan-out receipt p99": 0.52}, wantMet: false},
		{name: "at least: above", goal: "fan-out deliveries/s in a burst", ratios: map[string]float64{"fan-out deliveries/s in a burst": 1.01}, wantMet: true},
		{name: "at least: below", goal: "fan-out deliveries/s in a burst", ratios: map[string]float64{"fan-out deliveries/s in a burst": 0.99}, wantMet: false},
		{name: "gateways throughput at 3x", goal: "concurrent gateways callbacks/s", ratios: map[string]float64{"concurrent gateways callbacks/s": 3}, wantMet: true},
		{name: "gateways throughput under 3x", goal: "concurrent gateways callbacks/s", ratios: map[string]float64{"concurrent gateways callbacks/s": 2.9}, wantMet: false},
		{name: "end-to-end p50 over 0.8", goal: "end-to-end receipt p50", ratios: map[string]float64{"end-to-end receipt p50": 0.81}, wantMet: false},
		{name: "gateways p99 at 0.5", goal: "concurrent gateways HTTP p99", ratios: map[string]float64{"concurrent gateways HTTP p99": 0.5}, wantMet: true},
		{name: "invalid figure does not count", goal: "end-to-end receipt p99", modify: func(a, b *Result) {
			a.metric("e2e", "receipt latency p99").Valid = false
		}, wantMet: false},
		{name: "missing figure does not count", goal: "memory per idle connection", modify: func(a, b *Result) {
			b.Metrics = b.Metrics[1:]
		}, wantMet: false},
		{name: "zero reference does not count", goal: "connect storm", modify: func(a, b *Result) {
			*b.metric("storm", "connect+join all clients").Value = 0
		}, wantMet: false},
		{name: "negative reference does not count", goal: "memory per idle connection", modify: func(a, b *Result) {
			*b.metric("idle", "RSS per connection").Value = -56.8
		}, wantMet: false},
		{name: "negative figure does not count", goal: "memory per idle connection", modify: func(a, b *Result) {
			*a.metric("idle", "RSS per connection").Value = -3
		}, wantMet: false},
		{name: "clean run", goal: lossCheck, wantMet: true},
		{name: "a problem is a loss", goal: lossCheck, modify: func(a, b *Result) {
			b.Problems = append(b.Problems, "fan-out: 3 of 200000 deliveries never arrived")
		}, wantMet: false},
		{name: "an invalid figure is a loss", goal: lossCheck, modify: func(a, b *Result) {
			a.add("e2e", "lost updates", "", 1, false)
		}, wantMet: false},
		{name: "no figures at all", goal: lossCheck, modify: func(a, b *Result) {
			a.Metrics = nil
		}, wantMet: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := resultPair(tc.ratios)
			if tc.modify != nil {
				tc.modify(a, b)
			}
			o := outcomeNamed(t, checkGoals(a, b), tc.goal)
			if o.met != tc.wantMet {
				t.Fatalf("%s: met=%v (ratio %.3f, measured %v), want %v", tc.goal, o.met, o.ratio, o.measured, tc.wantMet)
			}
		})
	}
}

func TestPrintGoals(t *testing.T) {
	a, b := resultPair(map[string]float64{"fan-out receipt p99": 0.56, "end-to-end receipt p99": 0.13})
	var out bytes.Buffer
	printGoals(&out, a, b)
	s := out.String()
	for _, want := range []string{"goals (ratio Go/Node)", "0.13", "0.56", "NOT MET", "8 of 9 goals met", "not met: fan-out receipt p99\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("goals lack %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "judge a full run") {
		t.Errorf("a run without its size in the parameters is flagged as small:\n%s", s)
	}

	a.Params = map[string]string{"clients": "300", "fanoutClients": "300"}
	out.Reset()
	printGoals(&out, a, b)
	if !strings.Contains(out.String(), "this run had clients=300, so judge a full run") {
		t.Errorf("a smoke-sized run is not flagged:\n%s", out.String())
	}
	a.Params = map[string]string{"clients": fullRunClients, "fanoutClients": fullRunClients}
	out.Reset()
	printGoals(&out, a, b)
	if strings.Contains(out.String(), "judge a full run") {
		t.Errorf("a full run is flagged as small:\n%s", out.String())
	}
	a.Params = map[string]string{"nodes": "3", "clients": fullFleetClients, "fanoutClients": fullFleetClients}
	out.Reset()
	printGoals(&out, a, b)
	if strings.Contains(out.String(), "judge a full run") {
		t.Errorf("a full fleet run is flagged as small:\n%s", out.String())
	}
	a.Params = map[string]string{"nodes": "3", "clients": fullRunClients, "fanoutClients": fullRunClients}
	out.Reset()
	printGoals(&out, a, b)
	if !strings.Contains(out.String(), "goals are set for 6000 clients") {
		t.Errorf("a fleet run of another size is not flagged:\n%s", out.String())
	}
}
