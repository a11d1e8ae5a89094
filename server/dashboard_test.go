package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"paystatus/payment"
	"paystatus/realtime/realtimetest"
)

// dashboardPath is the Grafana dashboard shipped for operators.
const dashboardPath = "../deploy/grafana-dashboard.json"

// grafanaDashboard is the part of Grafana's dashboard model the test reads.
type grafanaDashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaPanel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // a collapsed row keeps its panels here
}

// queries lists every PromQL expression of the dashboard with where it is,
// the templating variables' label_values() included.
func (d grafanaDashboard) queries() (map[string]string, error) {
	out := map[string]string{}
	labelValues := regexp.MustCompile(`^label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(strings.TrimSpace(v.Definition))
		if m == nil {
			return nil, fmt.Errorf("variable %s: query %q is not label_values(<selector>, <label>)", v.Name, v.Definition)
		}
		out["variable "+v.Name] = m[1]
	}
	seen := map[int]string{}
	var walk func([]grafanaPanel) error
	walk = func(panels []grafanaPanel) error {
		for _, p := range panels {
			if other, dup := seen[p.ID]; dup {
				return fmt.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
			}
			seen[p.ID] = p.Title
			if p.Type != "row" && len(p.Targets) == 0 {
				return fmt.Errorf("panel %q has no queries", p.Title)
			}
			for _, t := range p.Targets {
				if strings.TrimSpace(t.Expr) == "" {
					return fmt.Errorf("panel %q query %s is empty", p.Title, t.RefID)
				}
				out[fmt.Sprintf("panel %q query %s", p.Title, t.RefID)] = t.Expr
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(d.Panels)
}

// promqlFunctions are the functions and aggregations the dashboard may use;
// anything else followed by "(" is refused, so a misspelt function fails
// the test instead of being read as a metric name.
var promqlFunctions = []string{
	"abs", "avg", "avg_over_time", "ceil", "clamp_min", "count", "delta", "deriv",
	"floor", "histogram_quantile", "increase", "irate", "label_values", "max",
	"max_over_time", "min", "min_over_time", "quantile", "rate", "round",
	"sum", "time", "topk", "vector",
}

// groupingFirst matches an aggregation's grouping clause put before its
// argument.
var groupingFirst = regexp.MustCompile(`^(by|without)\s*\(`)

// promqlMetricNames returns the metric names an expression selects. It
// skips strings, label matchers, range selectors, Grafana variables,
// numbers and durations, grouping clauses, keywords and function names.
func promqlMetricNames(expr string) ([]string, error) {
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || '0' <= c && c <= '9' }
	// skipTo returns the index after the close that balances expr[i], an
	// opening bracket, skipping quoted strings.
	skipTo := func(i int, open, close byte) (int, error) {
		depth := 0
		for j := i; j < len(expr); j++ {
			switch c := expr[j]; c {
			case '"', '\'', '`':
				k := j + 1
				for k < len(expr) && expr[k] != c {
					if expr[k] == '\\' {
						k++
					}
					k++
				}
				j = k
			case open:
				depth++
			case close:
				if depth--; depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("unbalanced %c in %q", open, expr)
	}
	var names []string
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '{':
			j, err := skipTo(i, '{', '}')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '[':
			j, err := skipTo(i, '[', ']')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '"' || c == '\'' || c == '`':
			return nil, fmt.Errorf("string outside a label matcher in %q", expr)
		case c == '$':
			i++
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '{' || expr[i] == '}') {
				i++
			}
		case '0' <= c && c <= '9' || c == '.':
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && expr[k] == ' ' {
				k++
			}
			opensCall := k < len(expr) && expr[k] == '('
			// An aggregation may take its grouping before its argument:
			// "sum by (le) (...)".
			if rest := expr[k:]; !opensCall && slices.Contains(promqlFunctions, word) &&
				groupingFirst.MatchString(rest) {
				opensCall = true
			}
			switch word {
			case "by", "without", "on", "ignoring", "group_left", "group_right":
				if !opensCall {
					if word == "group_left" || word == "group_right" {
						i = j
						continue
					}
					return nil, fmt.Errorf("%s without a label list in %q", word, expr)
				}
				end, err := skipTo(k, '(', ')')
				if err != nil {
					return nil, err
				}
				i = end
				continue
			case "and", "or", "unless", "bool", "offset":
			default:
				if opensCall {
					if !slices.Contains(promqlFunctions, word) {
						return nil, fmt.Errorf("unknown function %s in %q", word, expr)
					}
				} else {
					names = append(names, word)
				}
			}
			i = j
		default:
			i++
		}
	}
	return names, nil
}

func TestPromQLMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr    string
		want    []string
		wantErr string
	}{
		{expr: `paystatus_rooms`, want: []string{"paystatus_rooms"}},
		{expr: `sum by (transport, eio) (paystatus_sockets_connected{instance=~"$instance"})`, want: []string{"paystatus_sockets_connected"}},
		{expr: `histogram_quantile(0.99, sum by (le) (rate(a_bucket{x="}{"}[$__rate_interval])))`, want: []string{"a_bucket"}},
		{expr: `sum(rate(a_sum[5m])) / sum(rate(a_count[5m])) > bool 0.5`, want: []string{"a_sum", "a_count"}},
		{expr: `x unless on (instance) y offset 1h`, want: []string{"x", "y"}},
		{expr: `sum(a) without (le)`, want: []string{"a"}},
		{expr: `rat(paystatus_rooms[1m])`, wantErr: "unknown function rat"},
		{expr: `sum(paystatus_rooms{instance="a"`, wantErr: "unbalanced {"},
		{expr: `sum by paystatus_rooms`, wantErr: "by without a label list"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			got, err := promqlMetricNames(tc.expr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// exposedNames returns the sample names in a Prometheus text exposition
// (histograms contribute their _bucket, _sum and _count series).
func exposedNames(body []byte) map[string]bool {
	names := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

// missingFromExposition lists, sorted, each "metric (where)" the dashboard
// queries that the exposition does not have.
func missingFromExposition(d grafanaDashboard, exposed map[string]bool) ([]string, error) {
	queries, err := d.queries()
	if err != nil {
		return nil, err
	}
	var missing []string
	for where, expr := range queries {
		names, err := promqlMetricNames(expr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("%s: %q selects no metric", where, expr)
		}
		for _, n := range names {
			if !exposed[n] {
				missing = append(missing, fmt.Sprintf("%s (%s)", n, where))
			}
		}
	}
	sort.Strings(missing)
	return missing, nil
}

func loadDashboard(t *testing.T) (grafanaDashboard, []byte) {
	t.Helper()
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: uid %q, title %q, %d panels: not a dashboard", dashboardPath, d.UID, d.Title, len(d.Panels))
	}
	return d, raw
}

// exercisedMetrics runs a session on a real test server that touches every
// label set the dashboard groups by, so that each vector has a child and
// appears in /metrics, and returns the exposition.
func exercisedMetrics(t *testing.T) []byte {
	t.Helper()
	// A small per-address rate for the anonymous endpoints, so that the
	// session below is refused by a limit; and a Redis that is not there, so
	// that the node exports its Redis metrics and drops its cross-node
	// publishes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadRedis := "redis://" + ln.Addr().String()
	_ = ln.Close()
	ts := newTestServer(t, func(c *Config) { c.AnonRatePerIP = 1 }, withRedis(deadRedis, uniquePrefix(t), ""))
	id, token := ts.createOrder(t, 49900, "INR")
	limited := false
	for i := 0; i < 50 && !limited; i++ {
		limited = ts.do(t, newRequest(http.MethodGet, "/api/config?session=dash")).Status == http.StatusTooManyRequests
	}
	if !limited {
		t.Fatal("GET /api/config was never refused at 1 request a second per address")
	}
	c := dialWire(t, ts)
	joinOrder(t, c, id, token)
	c.Emit("join-order", map[string]any{"orderId": id, "token": "wrong"}) // a refused join
	if ev := c.NextEvent("refused join"); ev.Name != "joined-order" || ev.Data["success"] != false {
		t.Fatalf("join with a wrong token: %+v", ev)
	}
	c.Emit("no-such-event", nil) // a dropped event
	res := ts.do(t, newRequest(http.MethodPost, "/api/payment/"+id+"/complete").admin().json(map[string]any{"status": "completed", "paymentId": "pay_dash"}))
	expectStatus(t, res, http.StatusOK)
	if ev := c.NextEvent("the completion"); ev.Name != "payment-status-update" {
		t.Fatalf("after the completion: %+v", ev)
	}
	body := []byte(`{"orderId":"` + id + `","txnId":"T1","status":"SUCCESS","amount":49900}`)
	res = ts.do(t, newRequest(http.MethodPost, "/api/payment/upi/callback").raw(body).
		header("Content-Type", "application/json").header("X-Signature", payment.SignHex([]byte("not-the-secret"), body)))
	expectStatus(t, res, http.StatusUnauthorized)
	c.Emit("leave-order", map[string]any{"orderId": id})
	realtimetest.Eventually(t, 10*time.Second, "the dropped event and the leave in /metrics", func() bool {
		s := ts.scrape(t)
		return s[`paystatus_socket_events_dropped_total{reason="unknown"}`] > 0 && s["paystatus_room_leaves_total"] > 0 &&
			s[`paystatus_redis_publish_dropped_total{reason="error"}`] > 0
	})
	return ts.do(t, newRequest(http.MethodGet, "/metrics")).Body
}

// TestDashboardQueriesExistingMetrics checks that every metric the Grafana
// dashboard queries is in a running server's /metrics, and that the check
// reports a metric the server does not export.
func TestDashboardQueriesExistingMetrics(t *testing.T) {
	d, raw := loadDashboard(t)
	exposed := exposedNames(exercisedMetrics(t))
	missing, err := missingFromExposition(d, exposed)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Fatalf("the dashboard queries metrics that /metrics does not have:\n  %s", strings.Join(missing, "\n  "))
	}

	t.Run("a misspelt metric is reported", func(t *testing.T) {
		typo := bytes.Replace(raw, []byte("paystatus_long_polls_waiting"), []byte("paystatus_long_poll_waiting"), 1)
		if bytes.Equal(typo, raw) {
			t.Fatal("the dashboard no longer queries paystatus_long_polls_waiting; pick another metric for this check")
		}
		var bad grafanaDashboard
		if err := json.Unmarshal(typo, &bad); err != nil {
			t.Fatal(err)
		}
		missing, err := missingFromExposition(bad, exposed)
		if err != nil {
			t.Fatal(err)
		}
		if len(missing) != 1 || !strings.HasPrefix(missing[0], "paystatus_long_poll_waiting ") {
			t.Fatalf("missing = %q, want the misspelt metric alone", missing)
		}
	})
}

// alertRulesPath holds the suggested Prometheus alerting rules.
const alertRulesPath = "../deploy/prometheus-alerts.yml"

// scrapeSeries are the series Prometheus adds to every scrape itself; rules
// may use them although no /metrics has them.
var scrapeSeries = map[string]bool{"up": true, "scrape_duration_seconds": true, "scrape_samples_scraped": true}

// TestAlertRulesQueryExistingMetrics checks every expr of the suggested
// alerting rules the same way as the dashboard's queries.
func TestAlertRulesQueryExistingMetrics(t *testing.T) {
	raw, err := os.ReadFile(alertRulesPath)
	if err != nil {
		t.Fatal(err)
	}
	exprLine := regexp.MustCompile(`(?m)^\s*expr:\s*(.+?)\s*$`)
	rules := exprLine.FindAllStringSubmatch(string(raw), -1)
	if len(rules) == 0 {
		t.Fatalf("%s: no expr lines", alertRulesPath)
	}
	exposed := exposedNames(exercisedMetrics(t))
	for _, m := range rules {
		names, err := promqlMetricNames(m[1])
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%q selects no metric", m[1])
		}
		for _, n := range names {
			if !exposed[n] && !scrapeSeries[n] {
				t.Errorf("rule %q queries %s, which /metrics does not have", m[1], n)
			}
		}
	}
}
