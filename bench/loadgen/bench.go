package main

import (
	"context"
	"fmt"
	"math"
	"net/http/httptrace"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// run executes the selected scenarios against one server and collects the
// figures. Scenario order: orders are created, then the connect storm opens
// and joins N clients (scenario 4), the idle memory reading is taken with
// them connected (1), the end-to-end callbacks go to those same clients (2);
// then they close and a fresh N join one shared room for the fan-out (3).
func run(ctx context.Context, cfg config) *Result {
	res := &Result{
		Server:  cfg.name,
		Started: time.Now().UTC(),
		Params: map[string]string{
			"url":                 cfg.url,
			"clients":             fmt.Sprint(cfg.clients),
			"dialConcurrency":     fmt.Sprint(cfg.dialConc),
			"rate":                fmt.Sprint(cfg.rate),
			"duration":            cfg.duration.String(),
			"fanoutClients":       fmt.Sprint(cfg.fanClients),
			"fanoutRate":          fmt.Sprint(cfg.fanRate),
			"fanoutDuration":      cfg.fanDuration.String(),
			"scenarios":           cfg.scenarios,
			"generatorGCLimitMiB": fmt.Sprint(cfg.gcLimitMiB),
		},
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.Params["loadavgAtStart"] = strings.TrimSpace(string(la))
	}
	want := map[string]bool{}
	for _, s := range strings.Split(cfg.scenarios, ",") {
		want[strings.TrimSpace(s)] = true
	}
	f, err := newFleet(cfg)
	if err != nil {
		res.problem("%v", err)
		return res
	}
	res.Params["nodes"] = fmt.Sprint(len(f.nodes))
	if err := f.waitHealthy(ctx, 30*time.Second); err != nil {
		res.problem("%v", err)
		return res
	}

	var exp *expiryLoad
	if cfg.expiryOrders > 0 {
		res.Params["expiryOrders"] = fmt.Sprint(cfg.expiryOrders)
		res.Params["expiryStaggered"] = fmt.Sprint(cfg.expiryStaggered)
		if exp = prepareExpiry(ctx, cfg, f, res); exp == nil {
			return res
		}
	}
	if want["idle"] || want["e2e"] {
		if !idleAndE2E(ctx, cfg, f, res, want["e2e"], exp) {
			return res
		}
	}
	if exp != nil && ctx.Err() == nil {
		exp.check(ctx, cfg, f, res)
	}
	if want["fanout"] && ctx.Err() == nil {
		fanout(ctx, cfg, f, res)
	}
	if want["gateways"] && ctx.Err() == nil {
		gateways(ctx, cfg, f, res)
	}
	for _, p := range f.pids {
		if _, err := procRSS(p); err != nil {
			res.problem("server process %d is gone after the run: %v", p, err)
		}
	}
	if err := f.healthy(ctx); err != nil {
		res.problem("server unhealthy after the run: %v", err)
	}
	return res
}

// connectAll opens and joins clients with at most conc handshakes in flight.
// It returns the per-client connect+join durations and the number that
// failed; failed clients are left nil in the slice.
func connectAll(ctx context.Context, set *clientSet, clients []*client, conc int) (durs []int64, failed int, firstErr error) {
	durs = make([]int64, 0, len(clients))
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, conc)
	)
	for i, c := range clients {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int, c *client) {
			cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			start := time.Now()
			err := c.connect(cctx)
			d := time.Since(start)
			cancel()
			<-sem
			mu.Lock()
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = fmt.Errorf("client %d: %w", i, err)
				}
				clients[i] = nil
			} else {
				durs = append(durs, int64(d))
			}
			mu.Unlock()
			if err != nil {
				wg.Done()
				return
			}
			set.wg.Add(1)
			loop := c.serve()
			wg.Done()
			if loop != nil {
				loop()
			}
		}(i, c)
	}
	wg.Wait()
	return durs, failed, firstErr
}

// rssMiB is the resident set of the server's processes, summed over the
// nodes of a fleet.
func rssMiB(f *fleet) (float64, bool) {
	if len(f.pids) == 0 {
		return 0, false
	}
	b, err := f.rssBytes()
	if err != nil {
		return 0, false
	}
	return float64(b) / (1 << 20), true
}

// selfCPU is the generator's own CPU time so far: when it approaches the
// wall time of a scenario, the generator, not the server, was the limit.
func selfCPU() time.Duration {
	d, _ := procCPU(os.Getpid())
	return d
}

// cpuNow is the server's CPU time so far (summed over a fleet's nodes), or
// cpuGone.
func cpuNow(f *fleet) time.Duration {
	if len(f.pids) == 0 {
		return 0
	}
	d, err := f.cpu()
	if err != nil {
		return cpuGone
	}
	return d
}

// waitNow is the server's accumulated run-queue wait, or cpuGone.
func waitNow(f *fleet) time.Duration {
	if len(f.pids) == 0 {
		return cpuGone
	}
	d, err := f.runqueueWait()
	if err != nil {
		return cpuGone
	}
	return d
}

// cpuGone marks a reading of a server that no longer exists.
const cpuGone = time.Duration(math.MinInt64)

// cpuSpan is the CPU time between two readings, and false if either failed.
// cpuMeter holds the readings at a scenario's start: the server's CPU time,
// its time spent waiting for a CPU, and this generator's own CPU time.
type cpuMeter struct {
	f                    *fleet
	server, waited, self time.Duration
}

func startCPUMeter(f *fleet) cpuMeter {
	return cpuMeter{f: f, server: cpuNow(f), waited: waitNow(f), self: selfCPU()}
}

// cpuUsage is what a meter measured; a server figure that could not be
// read is left out of the results.
type cpuUsage struct {
	server, waited, self time.Duration
	serverOK, waitedOK   bool
}

func (m cpuMeter) stop() cpuUsage {
	u := cpuUsage{self: selfCPU() - m.self}
	u.server, u.serverOK = cpuSpan(m.server, cpuNow(m.f))
	u.serverOK = u.serverOK && len(m.f.pids) > 0
	u.waited, u.waitedOK = cpuSpan(m.waited, waitNow(m.f))
	return u
}

// addTo adds the scenario's three CPU figures, in the table's order.
func (u cpuUsage) addTo(res *Result, scenario string, valid bool) {
	if u.serverOK {
		res.add(scenario, "server CPU time", "s", u.server.Seconds(), valid)
	}
	if u.waitedOK {
		res.add(scenario, "server waiting for a CPU", "s", u.waited.Seconds(), valid)
	}
	res.add(scenario, "generator CPU time", "s", u.self.Seconds(), valid)
}

func cpuSpan(from, to time.Duration) (time.Duration, bool) {
	if from == cpuGone || to == cpuGone {
		return 0, false
	}
	return to - from, true
}

func idleAndE2E(ctx context.Context, cfg config, f *fleet, res *Result, doE2E bool, exp *expiryLoad) bool {
	n := cfg.clients
	logf(cfg, "creating %d orders", n)
	t0 := time.Now()
	orders, err := f.createOrders(ctx, n, 16, cfg.amount, nil)
	if err != nil {
		res.problem("creating orders: %v", err)
		return false
	}
	res.add("setup", "orders created/s", "1/s", float64(n)/time.Since(t0).Seconds(), true)

	time.Sleep(cfg.settle)
	rssBefore, haveRSS := rssMiB(f)
	grBefore, haveGR := f.goroutines(ctx)

	set := &clientSet{
		sched: make([]atomic.Int64, n),
		lat:   make([]atomic.Int64, n),
	}
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = &client{idx: i, orderID: orders[i].ID, token: orders[i].Token, run: set, wsURL: f.wsFor(i)}
	}

	// Scenario 4: connect storm.
	logf(cfg, "connect storm: %d clients, %d handshakes in flight", n, cfg.dialConc)
	stormStart := time.Now()
	stormMeter := startCPUMeter(f)
	durs, failed, ferr := connectAll(ctx, set, clients, cfg.dialConc)
	storm := time.Since(stormStart)
	stormCPU := stormMeter.stop()
	stormOK := failed == 0
	if !stormOK {
		res.problem("connect storm: %d of %d clients failed to connect and join; first: %v", failed, n, ferr)
	}
	sortInt64(durs)
	res.add("storm", "connect+join all clients", "s", storm.Seconds(), stormOK)
	res.add("storm", "connect+join rate", "clients/s", float64(len(durs))/storm.Seconds(), stormOK)
	res.add("storm", "per-client connect+join p50", "ms", ms(percentile(durs, 50)), stormOK)
	res.add("storm", "per-client connect+join p99", "ms", ms(percentile(durs, 99)), stormOK)
	stormCPU.addTo(res, "storm", stormOK)

	// Scenario 1: idle memory per connection.
	time.Sleep(cfg.settle)
	if haveRSS {
		rssAfter, _ := rssMiB(f)
		joined := float64(len(durs))
		res.add("idle", "server RSS before clients", "MiB", rssBefore, stormOK)
		res.add("idle", "server RSS with clients", "MiB", rssAfter, stormOK)
		if joined > 0 {
			res.add("idle", "RSS per connection", "KiB", (rssAfter-rssBefore)*1024/joined, stormOK)
		}
	} else {
		res.addMissing("idle", "RSS per connection", "KiB")
	}
	if grAfter, ok := f.goroutines(ctx); ok && haveGR && len(durs) > 0 {
		res.add("idle", "goroutines per connection", "", float64(grAfter-grBefore)/float64(len(durs)), stormOK)
	} else {
		res.addMissing("idle", "goroutines per connection", "")
	}
	if set.unexpected.Load() > 0 {
		res.problem("idle: %d clients were disconnected while idle; last error: %s", set.unexpected.Load(), set.lastErr())
	}

	if doE2E && ctx.Err() == nil {
		e2e(ctx, cfg, f, res, set, clients, orders, exp)
	}

	logf(cfg, "closing %d clients", n)
	set.closeAll(clients, 30*time.Second)
	time.Sleep(time.Second)
	return true
}

// e2e is scenario 2: one SUCCESS callback per order at a fixed rate, and the
// time from each callback's scheduled send time to its client's receipt.
func e2e(ctx context.Context, cfg config, f *fleet, res *Result, set *clientSet, clients []*client, orders []order, exp *expiryLoad) {
	total := int(float64(cfg.rate) * cfg.duration.Seconds())
	if total > len(clients) {
		total = len(clients)
	}
	if total <= 0 {
		return
	}
	interval := time.Second / time.Duration(cfg.rate)
	type prepared struct {
		body []byte
		sig  string
		to   *api
	}
	runID := time.Now().UnixNano()
	targets := make([]int, 0, total)
	for i := 0; i < len(clients) && len(targets) < total; i++ {
		if clients[i] != nil {
			targets = append(targets, i)
		}
	}
	total = len(targets)
	reqs := make([]prepared, total)
	for k, i := range targets {
		body, sig := f.callbackTo(i).signedCallback(orders[i].ID, fmt.Sprintf("bench-%d-%d", runID, i), "SUCCESS", orders[i].Amount)
		reqs[k] = prepared{body, sig, f.callbackTo(i)}
	}

	logf(cfg, "end-to-end: %d callbacks at %d/s", total, cfg.rate)
	var (
		httpLat  = make([]atomic.Int64, total) // written by senders that may outlive the scenario
		sendLate = make([]atomic.Int64, total) // scheduled time to request written, the generator's own delay
		httpErrs atomic.Int64
		badReply atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
		sem      = make(chan struct{}, 512)
	)
	pace := newPacer()
	defer pace.close()
	resendsBefore, haveResends := f.counter(ctx, resendMetric)
	start := time.Now().Add(100 * time.Millisecond)
	if exp != nil {
		start = exp.startE2E(cfg, res)
	}
	meter := startCPUMeter(f)
	for k := range targets {
		if ctx.Err() != nil {
			break
		}
		at := start.Add(time.Duration(k) * interval)
		pace.waitUntil(at)
		i := targets[k]
		set.sched[i].Store(at.UnixNano())
		wg.Add(1)
		go func(k int, at time.Time) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			traced := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
				WroteRequest: func(httptrace.WroteRequestInfo) { sendLate[k].Store(max(int64(time.Since(at)), 1)) },
			})
			r, err := reqs[k].to.postCallback(traced, reqs[k].body, reqs[k].sig)
			httpLat[k].Store(max(int64(time.Since(at)), 1))
			if err != nil {
				httpErrs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			if !(r.OK || r.Received) || r.Status != "completed" {
				badReply.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Sprintf("callback reply ok=%v status=%q", r.OK, r.Status))
			}
		}(k, at)
	}
	lastSched := start.Add(time.Duration(total-1) * interval)
	sendDone := make(chan struct{})
	go func() { wg.Wait(); close(sendDone) }()

	// Wait for every terminal update, or give up after the drain period.
	deadline := lastSched.Add(cfg.drain)
	for set.terminal.Load() < int64(total) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-sendDone:
	case <-time.After(time.Until(deadline) + 30*time.Second):
	}
	// Keep listening a little for re-sends and stray duplicates.
	time.Sleep(cfg.linger)
	used := meter.stop() // includes the idle linger
	wall := time.Since(start)
	resendsAfter, _ := f.counter(ctx, resendMetric)

	lats := make([]int64, 0, total)
	for _, i := range targets {
		if v := set.lat[i].Load(); v > 0 {
			lats = append(lats, v)
		}
	}
	if cfg.e2eLog != "" {
		rows := make([]callbackTimes, len(targets))
		for k, i := range targets {
			rows[k] = callbackTimes{receipt: set.lat[i].Load(), answered: httpLat[k].Load(), written: sendLate[k].Load()}
		}
		if err := writeCallbackLog(cfg.e2eLog, start, rows); err != nil {
			res.problem("e2e: writing %s: %v", cfg.e2eLog, err)
		}
	}
	sortInt64(lats)
	// Requests still unanswered when the scenario ended have no latency.
	answered := recordedSorted(httpLat)
	written := recordedSorted(sendLate)
	lost := int64(total - len(lats))
	dups := set.dups.Load()
	raw := set.rawDups.Load()
	extra := set.updates.Load() - int64(total) // updates we never caused
	// A first receipt this late most likely was a re-send whose first copy
	// never arrived: it is counted, so a lost send cannot pass unseen.
	lateFirst := len(lats) - sort.Search(len(lats), func(j int) bool { return lats[j] > int64(lateFirstReceipt) })
	serverResends := -1.0
	if haveResends {
		serverResends = resendsAfter - resendsBefore
	}
	valid := lost == 0 && dups == 0 && raw == 0 && serverResends <= 0 && httpErrs.Load() == 0 && badReply.Load() == 0 && set.unexpected.Load() == 0 && extra <= 0 && set.wrongOrder.Load() == 0

	res.add("e2e", "callbacks sent", "", float64(total), valid)
	res.add("e2e", "callback rate achieved", "1/s", float64(total)/lastSched.Sub(start).Seconds(), valid)
	// Part of every latency below, for both servers alike: how late the
	// generator wrote each callback after its scheduled time.
	res.add("e2e", "callback written late p50 (generator)", "ms", ms(percentile(written, 50)), valid)
	res.add("e2e", "callback written late p99 (generator)", "ms", ms(percentile(written, 99)), valid)
	res.add("e2e", "callback HTTP p50", "ms", ms(percentile(answered, 50)), valid)
	res.add("e2e", "callback HTTP p99", "ms", ms(percentile(answered, 99)), valid)
	if n := total - len(answered); n > 0 {
		res.add("e2e", "callbacks unanswered at the end", "", float64(n), valid)
		res.problem("e2e: %d callbacks still unanswered when the scenario ended", n)
	}
	res.add("e2e", "receipt latency p50", "ms", ms(percentile(lats, 50)), valid)
	res.add("e2e", "receipt latency p99", "ms", ms(percentile(lats, 99)), valid)
	if len(lats) > 0 {
		res.add("e2e", "receipt latency max", "ms", ms(lats[len(lats)-1]), valid)
	}
	// For reading the goals, not judged: the same receipts counted from
	// when the generator had written each callback, so without its own
	// lateness (which a stalled generator adds to both servers alike).
	fromWrite := sinceWritten(set.lat, targets, sendLate)
	res.add("e2e", "receipt latency p50 from the write", "ms", ms(percentile(fromWrite, 50)), valid)
	res.add("e2e", "receipt latency p99 from the write", "ms", ms(percentile(fromWrite, 99)), valid)
	res.add("e2e", "lost updates", "", float64(lost), valid)
	res.add("e2e", "duplicate updates", "", float64(dups), valid)
	res.add("e2e", "re-sends received (seq seen twice)", "", float64(raw), valid)
	if haveResends {
		res.add("e2e", "re-sends by the server (metric)", "", serverResends, valid)
	} else {
		res.addMissing("e2e", "re-sends by the server (metric)", "")
	}
	res.add("e2e", fmt.Sprintf("first receipts later than %s", lateFirstReceipt), "", float64(lateFirst), valid)
	res.add("e2e", "acks sent", "", float64(set.acksSent.Load()), valid)
	used.addTo(res, "e2e", valid)
	res.add("e2e", "scenario wall time", "s", wall.Seconds(), valid)

	if lost > 0 {
		res.problem("e2e: %d of %d updates never arrived", lost, total)
	}
	if dups > 0 {
		res.problem("e2e: %d duplicate updates (a seq repeated after it was acked or came without an ack id), %.0f to %.0f ms after the first copy",
			dups, ms(set.dupGapMin.Load()), ms(set.dupGapMax.Load()))
	}
	// Every client acks at once, so a re-send means an ack was not taken in
	// time or a first send went missing; either way the figures do not count.
	if raw > dups {
		res.problem("e2e: %d re-sends reached clients that had the update already (%.0f to %.0f ms after the first copy)",
			raw-dups, ms(set.dupGapMin.Load()), ms(set.dupGapMax.Load()))
	}
	if serverResends > 0 {
		res.problem("e2e: the server re-sent %.0f unacknowledged updates (clients saw %d of them twice, %d first receipts came after %s)",
			serverResends, raw, lateFirst, lateFirstReceipt)
	}
	if httpErrs.Load() > 0 || badReply.Load() > 0 {
		res.problem("e2e: %d callback errors, %d unexpected replies; first: %v", httpErrs.Load(), badReply.Load(), firstErr.Load())
	}
	if extra > 0 {
		res.problem("e2e: %d updates arrived that no callback caused", extra)
	}
	if n := set.wrongOrder.Load(); n > 0 {
		res.problem("e2e: %d updates arrived on a socket that did not join that order", n)
	}
	if n := set.unexpected.Load(); n > 0 {
		res.problem("e2e: %d clients were disconnected; last error: %s", n, set.lastErr())
	}
	if n := set.badFrames.Load(); n > 0 {
		res.problem("e2e: %d frames could not be parsed; last error: %s", n, set.lastErr())
	}
}

// sinceWritten returns, sorted, each receipt's latency less the time its
// callback took to be written: lat is indexed by client, written by
// callback (targets maps one to the other). Callbacks without both
// readings are left out.
func sinceWritten(lat []atomic.Int64, targets []int, written []atomic.Int64) []int64 {
	out := make([]int64, 0, len(targets))
	for k, i := range targets {
		r, w := lat[i].Load(), written[k].Load()
		if r > 0 && w > 0 {
			out = append(out, max(r-w, 0))
		}
	}
	sortInt64(out)
	return out
}

// recordedSorted returns the durations recorded in vals (zero: none
// recorded), in ascending order.
func recordedSorted(vals []atomic.Int64) []int64 {
	out := make([]int64, 0, len(vals))
	for i := range vals {
		if v := vals[i].Load(); v > 0 {
			out = append(out, v)
		}
	}
	sortInt64(out)
	return out
}

// fanout is scenario 3: one room holding every socket, a steady trickle of
// admin broadcasts into it. On a fleet, socket i joins on node i mod n and
// broadcast k is triggered on node k mod n.
func fanout(ctx context.Context, cfg config, f *fleet, res *Result) {
	m := cfg.fanClients
	broadcasts := int(math.Round(cfg.fanRate * cfg.fanDuration.Seconds()))
	if m <= 0 || broadcasts <= 0 {
		return
	}
	o, err := f.nodes[0].createOrder(ctx, cfg.amount, "bench fan-out room", 0)
	if err != nil {
		res.problem("fan-out: creating the order: %v", err)
		return
	}
	set := &clientSet{fanCap: broadcasts}
	clients := make([]*client, m)
	for i := range clients {
		// The receipt log is made now: made at the first receipt, 10,000 of
		// them set off a collection in the generator during the first
		// broadcast and delayed its receipts.
		clients[i] = &client{idx: i, orderID: o.ID, token: o.Token, run: set, wsURL: f.wsFor(i), fan: make([]fanRecv, 0, broadcasts)}
	}
	logf(cfg, "fan-out: joining %d clients to one room", m)
	durs, failed, ferr := connectAll(ctx, set, clients, cfg.dialConc)
	if failed > 0 {
		res.problem("fan-out: %d of %d clients failed to join; first: %v", failed, m, ferr)
	}
	joined := len(durs)
	time.Sleep(cfg.settle)

	logf(cfg, "fan-out: %d broadcasts at %g/s to %d sockets", broadcasts, cfg.fanRate, joined)
	interval := time.Duration(float64(time.Second) / cfg.fanRate)
	sched := make([]int64, 0, broadcasts)
	postErrs := 0
	var firstErr error
	meter := startCPUMeter(f)
	start := time.Now().Add(100 * time.Millisecond)
	// Broadcasts go out one after another: each trigger waits for the
	// previous reply, so the server's timestamps are increasing and rank
	// order identifies the broadcast.
	pace := newPacer()
	defer pace.close()
	for k := 0; k < broadcasts && ctx.Err() == nil; k++ {
		at := start.Add(time.Duration(k) * interval)
		pace.waitUntil(at)
		r, err := f.nodes[k%len(f.nodes)].testConnection(ctx, o.ID)
		if err != nil {
			postErrs++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		sched = append(sched, at.UnixNano())
		if r.RoomSize != joined {
			res.problem("fan-out: server reported room size %d, %d sockets joined", r.RoomSize, joined)
		}
	}
	sent := len(sched)
	expected := int64(sent * joined)
	deadline := time.Now().Add(cfg.drain)
	for set.fanRecvs.Load() < expected && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(cfg.linger)
	used := meter.stop()
	wall := time.Since(start)
	set.closeAll(clients, 30*time.Second)

	// Map server timestamps to broadcasts.
	tsSet := map[int64]struct{}{}
	for _, c := range clients {
		if c == nil {
			continue
		}
		for _, r := range c.fan {
			tsSet[r.ts] = struct{}{}
		}
	}
	distinct := make([]int64, 0, len(tsSet))
	for ts := range tsSet {
		distinct = append(distinct, ts)
	}
	sortInt64(distinct)
	index := map[int64]int{}
	if len(distinct) == sent {
		for k, ts := range distinct {
			index[ts] = k
		}
	} else {
		// Some broadcast reached nobody: fall back to the latest broadcast
		// scheduled at or before the server's timestamp.
		res.problem("fan-out: %d distinct broadcasts seen, %d sent", len(distinct), sent)
		for _, ts := range distinct {
			k := sort.Search(len(sched), func(j int) bool { return sched[j] > (ts+1)*int64(time.Millisecond) }) - 1
			if k < 0 {
				k = 0
			}
			index[ts] = k
		}
	}

	lats := make([]int64, 0, expected)
	perBcastMax := make([]int64, sent)
	perBcastMin := make([]int64, sent)
	var delivered, dups int64
	var lastRecv int64
	got := make([]uint8, sent)
	for _, c := range clients {
		if c == nil {
			continue
		}
		clear(got)
		for _, r := range c.fan {
			k, ok := index[r.ts]
			if !ok || k >= sent {
				continue
			}
			if got[k] > 0 {
				dups++
				continue
			}
			got[k]++
			delivered++
			d := r.recv - sched[k]
			lats = append(lats, d)
			if d > perBcastMax[k] {
				perBcastMax[k] = d
			}
			if perBcastMin[k] == 0 || d < perBcastMin[k] {
				perBcastMin[k] = d
			}
			if r.recv > lastRecv {
				lastRecv = r.recv
			}
		}
	}
	sortInt64(lats)
	reach := make([]string, len(perBcastMax))
	for k, d := range perBcastMax {
		reach[k] = fmt.Sprintf("%.1f", ms(d))
	}
	logf(cfg, "fan-out: time to reach all sockets, each broadcast in order (ms): %s", strings.Join(reach, " "))
	first := make([]string, len(perBcastMin))
	for k, d := range perBcastMin {
		first[k] = fmt.Sprintf("%.2f", ms(d))
	}
	logf(cfg, "fan-out: time to reach the first socket, each broadcast in order (ms): %s", strings.Join(first, " "))
	sortInt64(perBcastMax)
	lost := expected - delivered
	valid := lost == 0 && dups == 0 && postErrs == 0 && set.unexpected.Load() == 0 && failed == 0

	res.add("fanout", "sockets in room", "", float64(joined), valid)
	res.add("fanout", "broadcasts", "", float64(sent), valid)
	res.add("fanout", "deliveries", "", float64(delivered), valid)
	if lastRecv > 0 && sent > 0 {
		res.add("fanout", "deliveries/s (whole run)", "1/s", float64(delivered)/(float64(lastRecv-sched[0])/1e9), valid)
	}
	if sent > 0 && perBcastMax[sent/2] > 0 {
		res.add("fanout", "deliveries/s (one burst, p50)", "1/s", float64(joined)/(float64(perBcastMax[sent/2])/1e9), valid)
		res.add("fanout", "time to reach all sockets p50", "ms", ms(perBcastMax[sent/2]), valid)
	}
	// CPU per delivery swings less from run to run than the latencies do
	// (it includes the idle drain and linger, the same for both servers).
	if used.serverOK && delivered > 0 {
		res.add("fanout", "server CPU time per delivery", "µs", float64(used.server.Microseconds())/float64(delivered), valid)
	}
	res.add("fanout", "receipt latency p50", "ms", ms(percentile(lats, 50)), valid)
	res.add("fanout", "receipt latency p99", "ms", ms(percentile(lats, 99)), valid)
	if len(lats) > 0 {
		res.add("fanout", "receipt latency max", "ms", ms(lats[len(lats)-1]), valid)
	}
	res.add("fanout", "lost deliveries", "", float64(lost), valid)
	res.add("fanout", "duplicate deliveries", "", float64(dups), valid)
	used.addTo(res, "fanout", valid)
	res.add("fanout", "scenario wall time", "s", wall.Seconds(), valid)
	if lost > 0 {
		res.problem("fan-out: %d of %d deliveries never arrived", lost, expected)
	}
	if dups > 0 {
		res.problem("fan-out: %d duplicate deliveries", dups)
	}
	if postErrs > 0 {
		res.problem("fan-out: %d test-connection calls failed; first: %v", postErrs, firstErr)
	}
	if n := set.unexpected.Load(); n > 0 {
		res.problem("fan-out: %d clients were disconnected; last error: %s", n, set.lastErr())
	}
}
