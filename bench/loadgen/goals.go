package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// goal is one target of the comparison: the ratio of the first server's
// figure to the second's must be at most (or, with atLeast, at least)
// bound. These are the project's targets for the Go server against the
// Node.js reference.
type goal struct {
	name             string
	scenario, figure string
	bound            float64
	atLeast          bool
}

// fullRunClients is the size of run a node alone's goals are set for;
// fullFleetClients a fleet's (issue 14 measured its fleets with 6,000).
const (
	fullRunClients   = "10000"
	fullFleetClients = "6000"
)

// fullRunFor is the number of clients the goals of r's kind are set for.
func fullRunFor(r *Result) string {
	if r.Params["expiryOrders"] == "" && r.Params["nodes"] != "" && r.Params["nodes"] != "1" {
		return fullFleetClients
	}
	return fullRunClients
}

// lossGoal is the last goal of every set: every figure of every run valid
// and no problems.
const lossGoal = "nothing lost, duplicated or failed"

// goals are a node alone's targets (issues 14 and 16). The fan-out
// throughput is the per-burst figure: the whole-run rate is bounded by the
// offered rate, so it could not fail.
var goals = []goal{
	{name: "memory per idle connection", scenario: "idle", figure: "RSS per connection", bound: 0.5},
	{name: "connect storm", scenario: "storm", figure: "connect+join all clients", bound: 1},
	{name: "end-to-end receipt p99", scenario: "e2e", figure: "receipt latency p99", bound: 0.25},
	{name: "end-to-end receipt p50", scenario: "e2e", figure: "receipt latency p50", bound: 0.8},
	{name: "fan-out receipt p99", scenario: "fanout", figure: "receipt latency p99", bound: 0.5},
	{name: "fan-out deliveries/s in a burst", scenario: "fanout", figure: "deliveries/s (one burst, p50)", bound: 1, atLeast: true},
	{name: "concurrent gateways callbacks/s", scenario: "gateways", figure: "durable callbacks/s", bound: 3, atLeast: true},
	{name: "concurrent gateways HTTP p99", scenario: "gateways", figure: "callback HTTP p99", bound: 0.5},
}

// fleetGoals are a fleet's targets (issue 14 item 8); every update in the
// end-to-end scenario crosses Redis.
var fleetGoals = []goal{
	{name: "memory per connection", scenario: "idle", figure: "RSS per connection", bound: 0.5},
	{name: "cross-node end-to-end receipt p99", scenario: "e2e", figure: "receipt latency p99", bound: 0.5},
	{name: "fan-out receipt p99", scenario: "fanout", figure: "receipt latency p99", bound: 0.5},
	{name: "fan-out deliveries/s in a burst", scenario: "fanout", figure: "deliveries/s (one burst, p50)", bound: 1, atLeast: true},
	{name: "connect + join", scenario: "storm", figure: "connect+join all clients", bound: 1},
}

// expiryGoals compare the Go server with expiries running against itself
// without (issue 19 item 6).
var expiryGoals = []goal{
	{name: "end-to-end p99 with expiries (vs without)", scenario: "e2e", figure: "receipt latency p99", bound: 1.1},
}

// goalsFor picks the set of goals for a result: a fleet's, the expiry
// comparison's or a node alone's.
func goalsFor(r *Result) []goal {
	switch {
	case r.Params["expiryOrders"] != "":
		return expiryGoals
	case r.Params["nodes"] != "" && r.Params["nodes"] != "1":
		return fleetGoals
	}
	return goals
}

// goalOutcome is how one goal fared over one or more pairs of results.
type goalOutcome struct {
	goal
	ratio    float64 // the median of the pairs' ratios
	min, max float64 // their spread
	measured bool    // every pair had both figures present, valid, the second non-zero
	pairs    int     // pairs in which the goal was measured
	met      bool
	why      string // for a goal not measured
}

func (r *Result) metric(scenario, figure string) *Metric {
	for i := range r.Metrics {
		if r.Metrics[i].Scenario == scenario && r.Metrics[i].Figure == figure {
			return &r.Metrics[i]
		}
	}
	return nil
}

// pairRatio is a's figure over b's, and false when either is missing or
// invalid, a's is negative or b's is not positive. Every figure a goal
// reads is positive when measured; a negative one (RSS that shrank while
// the clients joined, as a garbage collection can make it) measured
// nothing, and its ratio would pass any upper bound.
func pairRatio(a, b *Result, scenario, figure string) (float64, bool) {
	ma, mb := a.metric(scenario, figure), b.metric(scenario, figure)
	if ma == nil || mb == nil || ma.Value == nil || mb.Value == nil || !ma.Valid || !mb.Valid || *mb.Value <= 0 || *ma.Value < 0 {
		return 0, false
	}
	return *ma.Value / *mb.Value, true
}

// median of the values (the mean of the middle two for an even count);
// values is sorted in place.
func median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	sort.Float64s(values)
	n := len(values)
	if n%2 == 1 {
		return values[n/2]
	}
	return (values[n/2-1] + values[n/2]) / 2
}

// spread is the smallest and largest value.
func spread(values []float64) (lo, hi float64) {
	for i, v := range values {
		if i == 0 || v < lo {
			lo = v
		}
		if i == 0 || v > hi {
			hi = v
		}
	}
	return lo, hi
}

// runPair is one interleaved pair: a run of the first side and the run of
// the second that followed it.
type runPair struct{ a, b *Result }

// judge decides every goal on the median of the pairs' ratios. A goal is
// measured only when every pair measured it: a run that lost or failed
// does not drop out of the median, it leaves the goal unmet. The last
// outcome is the loss check over all runs.
func judge(pairs []runPair) []goalOutcome {
	if len(pairs) == 0 {
		return nil
	}
	set := goalsFor(pairs[0].a)
	// An expiry run whose server ignored ttlSeconds expired nothing, so its
	// figures say nothing about expiry load.
	ignored := false
	for _, p := range pairs {
		ignored = ignored || p.a.Params["expiryHonoured"] == "false"
	}
	out := make([]goalOutcome, 0, len(set)+1)
	for _, g := range set {
		o := goalOutcome{goal: g}
		ratios := make([]float64, 0, len(pairs))
		for _, p := range pairs {
			if r, ok := pairRatio(p.a, p.b, g.scenario, g.figure); ok && !ignored {
				ratios = append(ratios, r)
			}
		}
		o.pairs = len(ratios)
		switch {
		case len(ratios) == len(pairs):
			o.measured = true
			o.min, o.max = spread(ratios)
			o.ratio = median(ratios)
			o.met = o.ratio <= g.bound
			if g.atLeast {
				o.met = o.ratio >= g.bound
			}
		case len(ratios) == 0:
			o.why = "not measured"
		default:
			o.why = fmt.Sprintf("measured in %d of %d runs", len(ratios), len(pairs))
		}
		if ignored {
			o.why = "not measured: the server ignored ttlSeconds"
		}
		out = append(out, o)
	}
	clean := true
	for _, p := range pairs {
		for _, r := range []*Result{p.a, p.b} {
			clean = clean && len(r.Problems) == 0 && len(r.Metrics) > 0
			for _, m := range r.Metrics {
				clean = clean && m.Valid
			}
		}
	}
	out = append(out, goalOutcome{goal: goal{name: lossGoal}, measured: true, met: clean, pairs: len(pairs)})
	return out
}

// checkGoals judges a against b: one pair.
func checkGoals(a, b *Result) []goalOutcome {
	return judge([]runPair{{a, b}})
}

// printGoals writes one line per goal and a count of those met, for one
// pair of results.
func printGoals(w io.Writer, a, b *Result) {
	writeGoals(w, []runPair{{a, b}})
}

// writeGoals is the goals block over one or more pairs: with several, the
// median ratio and its spread (min–max over the pairs).
func writeGoals(w io.Writer, pairs []runPair) {
	outcomes := judge(pairs)
	a, b := pairs[0].a, pairs[0].b
	if len(pairs) == 1 {
		fmt.Fprintf(w, "\ngoals (ratio %s/%s):\n", a.Server, b.Server)
	} else {
		fmt.Fprintf(w, "\ngoals (median ratio %s/%s over %d interleaved runs, spread min-max):\n", a.Server, b.Server, len(pairs))
	}
	full := fullRunFor(a)
	for _, key := range []string{"clients", "fanoutClients"} {
		if n := a.Params[key]; n != "" && n != full {
			fmt.Fprintf(w, "  (the goals are set for %s clients; this run had %s=%s, so judge a full run)\n", full, key, n)
			break
		}
	}
	var missed []string
	for _, o := range outcomes {
		verdict := "met"
		if !o.met {
			verdict = "NOT MET"
			missed = append(missed, o.name)
		}
		target, value, span := "", "", "" // the loss check has no ratio
		if o.scenario != "" {
			target = fmt.Sprintf("<= %g", o.bound)
			if o.atLeast {
				target = fmt.Sprintf(">= %g", o.bound)
			}
			value = o.why
			if o.measured {
				value = fmt.Sprintf("%.3f", o.ratio)
				if len(pairs) > 1 {
					span = fmt.Sprintf("(%.3f-%.3f)", o.min, o.max)
				}
			}
		}
		fmt.Fprintf(w, "  %-42s %-7s %-12s %-15s %s\n", o.name, target, value, span, verdict)
	}
	fmt.Fprintf(w, "%d of %d goals met\n", len(outcomes)-len(missed), len(outcomes))
	if len(missed) > 0 {
		fmt.Fprintf(w, "not met: %s\n", strings.Join(missed, "; "))
	}
}
