package main

// The servers under test: one node, or a fleet of nodes sharing one
// database and one Redis. The traffic pattern over a fleet is fixed so that
// every update crosses Redis: client i talks to node i mod n, and the
// gateway callback for client i's order goes to node (i+1) mod n.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// fleet is the nodes of the server under test, in the order given.
type fleet struct {
	nodes []*api
	ws    []string // Socket.IO websocket URL of each node
	pids  []int    // server process of each node; empty: no process readings
}

// parseURLs splits a comma-separated list of base URLs.
func parseURLs(s string) ([]string, error) {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no server URL")
	}
	return out, nil
}

// parsePIDs splits a comma-separated list of process ids; "" and "0" mean
// none. A list must have one pid per node.
func parsePIDs(s string, nodes int) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || p <= 0 {
			return nil, fmt.Errorf("bad pid %q", f)
		}
		out = append(out, p)
	}
	if len(out) != nodes {
		return nil, fmt.Errorf("%d pids for %d nodes", len(out), nodes)
	}
	return out, nil
}

func newFleet(cfg config) (*fleet, error) {
	urls, err := parseURLs(cfg.url)
	if err != nil {
		return nil, err
	}
	f := &fleet{}
	if f.pids, err = parsePIDs(cfg.pid, len(urls)); err != nil {
		return nil, err
	}
	for _, u := range urls {
		w, err := wsURL(u)
		if err != nil {
			return nil, fmt.Errorf("bad url %q: %w", u, err)
		}
		f.nodes = append(f.nodes, newAPI(u, cfg.upiSecret, cfg.adminToken))
		f.ws = append(f.ws, w)
	}
	return f, nil
}

// home is the node client i talks to; callbackNode the node its order's
// gateway callback goes to: the next one, so that on a fleet the update
// has to cross to the client's node.
func home(i, n int) int         { return i % n }
func callbackNode(i, n int) int { return (i + 1) % n }

func (f *fleet) home(i int) *api       { return f.nodes[home(i, len(f.nodes))] }
func (f *fleet) callbackTo(i int) *api { return f.nodes[callbackNode(i, len(f.nodes))] }
func (f *fleet) wsFor(i int) string    { return f.ws[home(i, len(f.ws))] }

// waitHealthy waits until every node answers /healthz.
func (f *fleet) waitHealthy(ctx context.Context, limit time.Duration) error {
	for _, a := range f.nodes {
		if err := a.waitHealthy(ctx, limit); err != nil {
			return fmt.Errorf("%s: %w", a.base, err)
		}
	}
	return nil
}

func (f *fleet) healthy(ctx context.Context) error {
	for _, a := range f.nodes {
		if err := a.healthy(ctx); err != nil {
			return fmt.Errorf("%s: %w", a.base, err)
		}
	}
	return nil
}

// goroutines sums the go_goroutines gauge over the nodes; false when any
// node has none.
func (f *fleet) goroutines(ctx context.Context) (int64, bool) {
	var total int64
	for _, a := range f.nodes {
		n, ok := a.goroutines(ctx)
		if !ok {
			return 0, false
		}
		total += n
	}
	return total, true
}

// counter sums, over the nodes, every counter in /metrics whose name
// contains part; false when no node exposes one.
func (f *fleet) counter(ctx context.Context, part string) (float64, bool) {
	var total float64
	found := false
	for _, a := range f.nodes {
		v, ok := a.counter(ctx, part)
		if ok {
			total += v
			found = true
		}
	}
	return total, found
}

// rssBytes sums the resident set of every node's process.
func (f *fleet) rssBytes() (int64, error) {
	var total int64
	for _, p := range f.pids {
		b, err := procRSS(p)
		if err != nil {
			return 0, err
		}
		total += b
	}
	return total, nil
}

// cpu sums user+system CPU time over the nodes' processes.
func (f *fleet) cpu() (time.Duration, error) {
	var total time.Duration
	for _, p := range f.pids {
		d, err := procCPU(p)
		if err != nil {
			return 0, err
		}
		total += d
	}
	return total, nil
}

// runqueueWait sums the nodes' time spent waiting for a CPU.
func (f *fleet) runqueueWait() (time.Duration, error) {
	var total time.Duration
	for _, p := range f.pids {
		d, err := procRunqueueWait(p)
		if err != nil {
			return 0, err
		}
		total += d
	}
	return total, nil
}
