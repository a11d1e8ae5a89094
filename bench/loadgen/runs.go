package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// step is one run of one side in an interleaved series.
type step struct {
	side string
	run  int // 1-based
}

// interleave is the order of n runs of the sides: every side's run 1, in
// the order given, then every side's run 2, and so on (A, B, A, B, ...).
// Neighbouring runs see about the same machine, so the pairs they form
// compare the sides under the same conditions, and a machine that drifts
// during the series touches both sides alike.
func interleave(n int, sides []string) ([]step, error) {
	if n < 1 {
		return nil, fmt.Errorf("runs must be at least 1, not %d", n)
	}
	if len(sides) == 0 {
		return nil, errors.New("no sides to interleave")
	}
	seen := map[string]bool{}
	for _, s := range sides {
		if s == "" || strings.ContainsAny(s, " \t\n") || seen[s] {
			return nil, fmt.Errorf("bad or repeated side %q", s)
		}
		seen[s] = true
	}
	out := make([]step, 0, n*len(sides))
	for r := 1; r <= n; r++ {
		for _, s := range sides {
			out = append(out, step{side: s, run: r})
		}
	}
	return out, nil
}

// pairRuns groups results given in run order A, B, A, B, ... into pairs,
// and checks that every A (and every B) is the same server.
func pairRuns(results []*Result) ([]runPair, error) {
	if len(results) == 0 || len(results)%2 != 0 {
		return nil, fmt.Errorf("need results in pairs (A, B, A, B, ...), got %d", len(results))
	}
	pairs := make([]runPair, 0, len(results)/2)
	for i := 0; i < len(results); i += 2 {
		p := runPair{a: results[i], b: results[i+1]}
		if len(pairs) > 0 && (p.a.Server != pairs[0].a.Server || p.b.Server != pairs[0].b.Server) {
			return nil, fmt.Errorf("run %d pairs %s with %s, run 1 %s with %s", len(pairs)+1, p.a.Server, p.b.Server, pairs[0].a.Server, pairs[0].b.Server)
		}
		pairs = append(pairs, p)
	}
	return pairs, nil
}

func readRuns(paths []string) ([]runPair, error) {
	results := make([]*Result, 0, len(paths))
	for _, p := range paths {
		r, err := readResult(p)
		if err != nil {
			return nil, err
		}
		results = append(results, r)
	}
	return pairRuns(results)
}

// figureStats is one figure over the runs of one side.
type figureStats struct {
	median, min, max float64
	runs             int  // runs that have a value
	invalid          bool // some run's value does not count
}

func statsOf(rs []*Result, scenario, figure string) figureStats {
	var vals []float64
	st := figureStats{}
	for _, r := range rs {
		m := r.metric(scenario, figure)
		if m == nil || m.Value == nil {
			continue
		}
		st.invalid = st.invalid || !m.Valid
		vals = append(vals, *m.Value)
	}
	st.runs = len(vals)
	if len(vals) > 0 {
		st.min, st.max = spread(vals)
		st.median = median(vals)
	}
	return st
}

func (st figureStats) cell(total int) string {
	if st.runs == 0 {
		return "n/a"
	}
	s := formatValue(st.median)
	if total > 1 {
		s += " (" + formatValue(st.min) + "-" + formatValue(st.max) + ")"
	}
	if st.runs < total {
		s += fmt.Sprintf(" [%d runs]", st.runs)
	}
	if st.invalid {
		s += "*"
	}
	return s
}

// printMedians prints, for interleaved runs, every figure's median and
// spread for each side and the median of the pairs' ratios, then the goals
// judged on those medians. It reports whether any run had a problem.
func printMedians(w io.Writer, pairs []runPair) bool {
	as := make([]*Result, len(pairs))
	bs := make([]*Result, len(pairs))
	problems := false
	for i, p := range pairs {
		as[i], bs[i] = p.a, p.b
		problems = problems || len(p.a.Problems)+len(p.b.Problems) > 0
	}
	nameA, nameB := as[0].Server, bs[0].Server
	for i, p := range pairs {
		fmt.Fprintf(w, "run %d: %s load average at start %s; %s %s\n", i+1, nameA, p.a.Params["loadavgAtStart"], nameB, p.b.Params["loadavgAtStart"])
	}
	type key struct{ s, f string }
	var order []key
	units := map[key]string{}
	seen := map[key]bool{}
	for _, rs := range [][]*Result{as, bs} {
		for _, r := range rs {
			for _, m := range r.Metrics {
				k := key{m.Scenario, m.Figure}
				if !seen[k] {
					seen[k] = true
					order = append(order, k)
					units[k] = m.Unit
				}
			}
		}
	}
	header := []string{"scenario", "figure", nameA + " median (min-max)", nameB + " median (min-max)", "ratio median (min-max)"}
	lines := [][]string{header}
	invalid := false
	for _, k := range order {
		sa, sb := statsOf(as, k.s, k.f), statsOf(bs, k.s, k.f)
		invalid = invalid || sa.invalid || sb.invalid
		var ratios []float64
		for _, p := range pairs {
			if r, ok := pairRatio(p.a, p.b, k.s, k.f); ok {
				ratios = append(ratios, r)
			}
		}
		rc := "n/a"
		if len(ratios) == len(pairs) {
			lo, hi := spread(ratios)
			rc = fmt.Sprintf("%.2f", median(ratios))
			if len(pairs) > 1 {
				rc += fmt.Sprintf(" (%.2f-%.2f)", lo, hi)
			}
		}
		fig := k.f
		if u := units[k]; u != "" {
			fig += " (" + u + ")"
		}
		lines = append(lines, []string{k.s, fig, sa.cell(len(pairs)), sb.cell(len(pairs)), rc})
	}
	width := make([]int, len(header))
	for _, l := range lines {
		for i, c := range l {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	for n, l := range lines {
		for i, c := range l {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if i < 2 {
				fmt.Fprint(w, c+pad+"  ")
			} else {
				fmt.Fprint(w, pad+c+"  ")
			}
		}
		fmt.Fprintln(w)
		if n == 0 {
			total := 0
			for _, x := range width {
				total += x + 2
			}
			fmt.Fprintln(w, strings.Repeat("-", total))
		}
	}
	if invalid {
		fmt.Fprintln(w, "* a run lost or duplicated messages or had errors: its figure does not count")
	}
	for i, p := range pairs {
		for _, r := range []*Result{p.a, p.b} {
			for _, pr := range r.Problems {
				fmt.Fprintf(w, "run %d, %s: %s\n", i+1, r.Server, pr)
			}
		}
	}
	writeGoals(w, pairs)
	return problems
}
