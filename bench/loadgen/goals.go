package main

import (
	"fmt"
	"io"
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

// fullRunClients is the size of run the goals are set for.
const fullRunClients = "10000"

var goals = []goal{
	{name: "memory per idle connection", scenario: "idle", figure: "RSS per connection", bound: 0.5},
	{name: "connect storm", scenario: "storm", figure: "connect+join all clients", bound: 1},
	{name: "end-to-end receipt p99", scenario: "e2e", figure: "receipt latency p99", bound: 0.25},
	{name: "fan-out receipt p99", scenario: "fanout", figure: "receipt latency p99", bound: 0.5},
	{name: "fan-out deliveries/s", scenario: "fanout", figure: "deliveries/s (whole run)", bound: 1, atLeast: true},
}

// goalOutcome is how one goal fared in a pair of results.
type goalOutcome struct {
	goal
	ratio    float64
	measured bool // both figures present, valid and the second non-zero
	met      bool
}

func (r *Result) metric(scenario, figure string) *Metric {
	for i := range r.Metrics {
		if r.Metrics[i].Scenario == scenario && r.Metrics[i].Figure == figure {
			return &r.Metrics[i]
		}
	}
	return nil
}

// checkGoals judges a against b. A figure from a scenario that lost,
// duplicated or failed is not measured, and so not met. The last outcome
// is "nothing lost": every figure of both results valid and no problems.
func checkGoals(a, b *Result) []goalOutcome {
	out := make([]goalOutcome, 0, len(goals)+1)
	for _, g := range goals {
		o := goalOutcome{goal: g}
		ma, mb := a.metric(g.scenario, g.figure), b.metric(g.scenario, g.figure)
		if ma != nil && mb != nil && ma.Value != nil && mb.Value != nil && ma.Valid && mb.Valid && *mb.Value != 0 {
			o.measured = true
			o.ratio = *ma.Value / *mb.Value
			o.met = o.ratio <= g.bound
			if g.atLeast {
				o.met = o.ratio >= g.bound
			}
		}
		out = append(out, o)
	}
	clean := len(a.Problems)+len(b.Problems) == 0 && len(a.Metrics) > 0 && len(b.Metrics) > 0
	for _, r := range []*Result{a, b} {
		for _, m := range r.Metrics {
			clean = clean && m.Valid
		}
	}
	out = append(out, goalOutcome{goal: goal{name: "nothing lost, duplicated or failed"}, measured: true, met: clean})
	return out
}

// printGoals writes one line per goal and a count of those met.
func printGoals(w io.Writer, a, b *Result) {
	outcomes := checkGoals(a, b)
	fmt.Fprintf(w, "\ngoals (ratio %s/%s):\n", a.Server, b.Server)
	for _, key := range []string{"clients", "fanoutClients"} {
		if n := a.Params[key]; n != "" && n != fullRunClients {
			fmt.Fprintf(w, "  (the goals are set for %s clients; this run had %s=%s, so judge a full run)\n", fullRunClients, key, n)
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
		target, value := "", "" // the loss check has no ratio
		if o.scenario != "" {
			target = fmt.Sprintf("<= %g", o.bound)
			if o.atLeast {
				target = fmt.Sprintf(">= %g", o.bound)
			}
			value = "not measured"
			if o.measured {
				value = fmt.Sprintf("%.3f", o.ratio)
			}
		}
		fmt.Fprintf(w, "  %-36s %-7s %-12s %s\n", o.name, target, value, verdict)
	}
	fmt.Fprintf(w, "%d of %d goals met\n", len(outcomes)-len(missed), len(outcomes))
	if len(missed) > 0 {
		fmt.Fprintf(w, "not met: %s\n", strings.Join(missed, "; "))
	}
}
