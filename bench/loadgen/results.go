package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"time"
)

// Metric is one figure of one scenario for one server.
type Metric struct {
	Scenario string   `json:"scenario"`
	Figure   string   `json:"figure"`
	Unit     string   `json:"unit"`
	Value    *float64 `json:"value"` // nil: not measured (e.g. no goroutine gauge)
	// Valid is false when the scenario lost or duplicated messages, or
	// otherwise failed, so the figure must not be taken at face value.
	Valid bool `json:"valid"`
}

// Result is everything one generator run against one server produced.
type Result struct {
	Server   string            `json:"server"`
	Started  time.Time         `json:"started"`
	Params   map[string]string `json:"params"`
	Metrics  []Metric          `json:"metrics"`
	Problems []string          `json:"problems"`
}

func (r *Result) add(scenario, figure, unit string, v float64, valid bool) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		r.Metrics = append(r.Metrics, Metric{Scenario: scenario, Figure: figure, Unit: unit, Valid: valid})
		return
	}
	r.Metrics = append(r.Metrics, Metric{Scenario: scenario, Figure: figure, Unit: unit, Value: &v, Valid: valid})
}

func (r *Result) addMissing(scenario, figure, unit string) {
	r.Metrics = append(r.Metrics, Metric{Scenario: scenario, Figure: figure, Unit: unit, Valid: true})
}

func (r *Result) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.Problems = append(r.Problems, msg)
	fmt.Fprintf(os.Stderr, "loadgen[%s]: PROBLEM: %s\n", r.Server, msg)
}

func writeResult(path string, r *Result) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// callbackTimes is what the end-to-end scenario measured of one callback,
// in ns from its scheduled send; 0 where nothing came.
type callbackTimes struct {
	receipt, answered, written int64
}

// writeCallbackLog writes one line per callback, in the order they were
// scheduled: index, receipt, HTTP answer and request written. Slow receipts
// that bunch together in time point at a stall on the server (a garbage
// collection, a checkpoint) rather than at one slow request.
func writeCallbackLog(path string, start time.Time, rows []callbackTimes) error {
	var b strings.Builder
	// The first callback's scheduled time lets a reader line the rows up
	// with the server's own time-stamped traces.
	fmt.Fprintf(&b, "# first callback scheduled at %d ns since the epoch\n", start.UnixNano())
	b.WriteString("# index receipt_ns http_ns written_ns\n")
	for k, r := range rows {
		fmt.Fprintf(&b, "%d %d %d %d\n", k, r.receipt, r.answered, r.written)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func readResult(path string) (*Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// percentile returns the nearest-rank percentile of sorted values.
func percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

func sortInt64(v []int64) {
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// printTable prints one row per figure: scenario, figure, A, B, ratio A/B.
// Figures from an invalid scenario are marked with '*'.
func printTable(w io.Writer, a, b *Result) {
	type key struct{ s, f string }
	bm := map[key]Metric{}
	for _, m := range b.Metrics {
		bm[key{m.Scenario, m.Figure}] = m
	}
	seen := map[key]bool{}
	rows := make([][2]*Metric, 0, len(a.Metrics)+len(b.Metrics))
	for i := range a.Metrics {
		m := &a.Metrics[i]
		k := key{m.Scenario, m.Figure}
		seen[k] = true
		var other *Metric
		if o, ok := bm[k]; ok {
			other = &o
		}
		rows = append(rows, [2]*Metric{m, other})
	}
	for i := range b.Metrics {
		m := &b.Metrics[i]
		if !seen[key{m.Scenario, m.Figure}] {
			rows = append(rows, [2]*Metric{nil, m})
		}
	}

	for _, res := range []*Result{a, b} {
		if la := res.Params["loadavgAtStart"]; la != "" {
			fmt.Fprintf(w, "%s run: load average at start %s\n", res.Server, la)
		}
	}
	nameA, nameB := a.Server, b.Server
	header := []string{"scenario", "figure", nameA, nameB, "ratio " + nameA + "/" + nameB}
	lines := [][]string{header}
	invalid := false
	for _, r := range rows {
		m := r[0]
		if m == nil {
			m = r[1]
		}
		fig := m.Figure
		if m.Unit != "" {
			fig += " (" + m.Unit + ")"
		}
		ca, cb := cell(r[0]), cell(r[1])
		if strings.HasSuffix(ca, "*") || strings.HasSuffix(cb, "*") {
			invalid = true
		}
		lines = append(lines, []string{m.Scenario, fig, ca, cb, ratio(r[0], r[1])})
	}
	width := make([]int, len(header))
	for _, l := range lines {
		for i, c := range l {
			width[i] = max(width[i], len(c))
		}
	}
	for n, l := range lines {
		// Text columns left-aligned, figures right-aligned.
		fmt.Fprintf(w, "%-*s  %-*s  %*s  %*s  %*s\n",
			width[0], l[0], width[1], l[1], width[2], l[2], width[3], l[3], width[4], l[4])
		if n == 0 {
			total := width[0] + width[1] + width[2] + width[3] + width[4] + 8
			fmt.Fprintln(w, strings.Repeat("-", total))
		}
	}
	if invalid {
		fmt.Fprintln(w, "* scenario lost or duplicated messages or had errors: figure does not count")
	}
	for _, res := range []*Result{a, b} {
		for _, p := range res.Problems {
			fmt.Fprintf(w, "%s: %s\n", res.Server, p)
		}
	}
}

func cell(m *Metric) string {
	if m == nil || m.Value == nil {
		return "n/a"
	}
	s := formatValue(*m.Value)
	if !m.Valid {
		s += "*"
	}
	return s
}

func formatValue(v float64) string {
	av := math.Abs(v)
	switch {
	case v == math.Trunc(v) && av < 1e9:
		return fmt.Sprintf("%.0f", v)
	case av >= 100:
		return fmt.Sprintf("%.0f", v)
	case av >= 10:
		return fmt.Sprintf("%.1f", v)
	case av >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func ratio(a, b *Metric) string {
	if a == nil || b == nil || a.Value == nil || b.Value == nil {
		return "n/a"
	}
	if *b.Value == 0 {
		if *a.Value == 0 {
			return "-"
		}
		return "n/a"
	}
	return fmt.Sprintf("%.2f", *a.Value / *b.Value)
}
