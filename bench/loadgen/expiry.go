package main

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"time"
)

// expiryLoad is the expiry-load scenario's state: many pending orders,
// created before everything else with {"ttlSeconds": n}, whose deadlines
// are staggered over the end-to-end scenario's window, so that the server
// expires them while it carries the callbacks. The comparison run creates
// the same orders with a window that outlasts the run, so both runs hold
// the same table and differ only in the expiries.
type expiryLoad struct {
	orders    []order
	staggered bool
	e2eAt     time.Time // when the end-to-end scenario's first callback is due
	first     time.Time // first and last planned deadline (staggered only)
	last      time.Time
	honoured  bool // every reply had expiresAt
	late      int  // orders whose planned deadline had passed when created
}

// expiryDeadline is order j's planned deadline among n: spread evenly over
// the end-to-end window, starting half a second into it.
func expiryDeadline(e2eAt time.Time, window time.Duration, j, n int) time.Time {
	off := 500 * time.Millisecond
	if n > 1 {
		off += time.Duration(float64(window-500*time.Millisecond) * float64(j) / float64(n-1))
	}
	return e2eAt.Add(off)
}

// ttlFor turns a planned deadline into the whole seconds of ttlSeconds
// asked for at now, at least 1; late is true when the deadline is already
// too close for that.
func ttlFor(deadline, now time.Time) (ttl int, late bool) {
	s := int(math.Round(deadline.Sub(now).Seconds()))
	if s < 1 {
		return 1, true
	}
	return s, false
}

// probeSize is how many orders (with the long window, on both sides)
// are created first to measure the server's creation rate.
func probeSize(n int) int { return min(max(n/50, 100), 2000) }

// planLead is how long after now the end-to-end scenario can start: the
// expiring orders at the probed creation rate, then the clients' own
// orders (created 16 rather than 64 in flight, so allowed four times as
// long each), all with a quarter to spare, then the storm (2 ms a client)
// and the two settle pauses, and 5 s.
func planLead(expiring, clients int, rate float64, settle time.Duration) time.Duration {
	rate = max(rate, 1)
	create := time.Duration(float64(expiring+4*clients) / rate * float64(time.Second))
	return create*5/4 + time.Duration(clients)*2*time.Millisecond + 2*settle + 5*time.Second
}

// prepareExpiry creates the orders; nil means the run cannot go on.
func prepareExpiry(ctx context.Context, cfg config, f *fleet, res *Result) *expiryLoad {
	n := cfg.expiryOrders
	e := &expiryLoad{staggered: cfg.expiryStaggered}
	lead := cfg.expiryLead
	// The probe's orders are extra, created the same way on both sides,
	// and never expire during the run.
	p := probeSize(n)
	hold := func(int) int { return int(cfg.expiryHold.Seconds()) }
	// Its first half warms up (connections, caches) untimed; the second
	// half is timed.
	var rate float64
	for half, size := range []int{p / 2, p - p/2} {
		t0 := time.Now()
		if _, err := f.createOrders(ctx, size, 64, cfg.amount, hold); err != nil {
			res.problem("expiry load: creating the probe's orders: %v", err)
			return nil
		}
		if half == 1 {
			rate = float64(size) / time.Since(t0).Seconds()
		}
	}
	if lead <= 0 {
		lead = planLead(n, cfg.clients, rate, cfg.settle)
	}
	res.add("expiry", "lead before the end-to-end scenario", "s", lead.Seconds(), true)
	e.e2eAt = time.Now().Add(lead)
	window := cfg.duration
	if cfg.expiryStaggered {
		e.first = expiryDeadline(e.e2eAt, window, 0, n)
		e.last = expiryDeadline(e.e2eAt, window, n-1, n)
	}
	lateCount := make([]bool, n)
	ttl := func(j int) int {
		if !cfg.expiryStaggered {
			return hold(j)
		}
		t, late := ttlFor(expiryDeadline(e.e2eAt, window, j, n), time.Now())
		lateCount[j] = late
		return t
	}
	logf(cfg, "expiry load: creating %d orders (staggered deadlines: %v; a probe of %d created at %.0f/s), end-to-end due at %s",
		n, cfg.expiryStaggered, p, rate, e.e2eAt.Format("15:04:05"))
	t0 := time.Now()
	orders, err := f.createOrders(ctx, n, 64, cfg.amount, ttl)
	if err != nil {
		res.problem("expiry load: creating orders: %v", err)
		return nil
	}
	res.add("expiry", "orders created/s", "1/s", float64(n)/time.Since(t0).Seconds(), true)
	e.orders = orders
	missing := 0
	for _, o := range orders {
		if o.ExpiresAt == "" {
			missing++
		}
	}
	for _, l := range lateCount {
		if l {
			e.late++
		}
	}
	e.honoured = missing == 0
	res.Params["expiryHonoured"] = "true"
	if !e.honoured {
		res.Params["expiryHonoured"] = "false"
		logf(cfg, "expiry load: WARNING: %d of %d order replies lack expiresAt: the server ignored ttlSeconds, so nothing will expire and this run does not measure expiry load", missing, n)
	}
	res.add("expiry", "order replies without expiresAt", "", float64(missing), true)
	if e.late > 0 {
		res.problem("expiry load: %d orders were created after their planned deadline; raise -expiry-lead", e.late)
	}
	return e
}

// startE2E waits for the planned start of the end-to-end scenario and
// returns it. Arriving after the first deadline is a problem: the
// expiries would not overlap the scenario as planned.
func (e *expiryLoad) startE2E(cfg config, res *Result) time.Time {
	now := time.Now()
	if e.staggered && now.After(e.first) {
		res.problem("expiry load: the end-to-end scenario began %.1f s after the first deadline; raise -expiry-lead", now.Sub(e.first).Seconds())
		return now.Add(100 * time.Millisecond)
	}
	if now.After(e.e2eAt) {
		return now.Add(100 * time.Millisecond)
	}
	logf(cfg, "expiry load: waiting %.1f s for the planned start", e.e2eAt.Sub(now).Seconds())
	// The wait is over before the scenario's CPU meter starts; the pacer
	// then holds the first callback to its time.
	time.Sleep(time.Until(e.e2eAt) - 100*time.Millisecond)
	return e.e2eAt
}

// expiryGrace is how long past its deadline an order may stay pending:
// the issue asks for expiry "within a few seconds".
const expiryGrace = 5 * time.Second

// check samples the orders after the last deadline (plus grace) and counts
// those that did not end as planned: still pending when staggered, or not
// pending in the comparison run.
func (e *expiryLoad) check(ctx context.Context, cfg config, f *fleet, res *Result) {
	if !e.honoured {
		return
	}
	if e.staggered {
		if d := time.Until(e.last.Add(expiryGrace)); d > 0 {
			logf(cfg, "expiry load: waiting %.1f s for the last deadline and grace", d.Seconds())
			time.Sleep(d)
		}
	}
	const sample = 200
	step := max(len(e.orders)/sample, 1)
	checked, wrong := 0, 0
	want := "pending"
	if e.staggered {
		want = "expired"
	}
	var firstWrong string
	for j := 0; j < len(e.orders) && ctx.Err() == nil; j += step {
		o := e.orders[j]
		var st struct {
			Status string `json:"status"`
		}
		path := "/api/payment/status/" + url.PathEscape(o.ID) + "?token=" + url.QueryEscape(o.Token)
		if err := f.home(j).do(ctx, http.MethodGet, path, nil, nil, http.StatusOK, &st); err != nil {
			res.problem("expiry load: reading order %s: %v", o.ID, err)
			return
		}
		checked++
		if st.Status != want {
			wrong++
			if firstWrong == "" {
				firstWrong = o.ID + " is " + st.Status
			}
		}
	}
	res.add("expiry", "orders sampled after the deadlines", "", float64(checked), true)
	res.add("expiry", "sampled orders not "+want, "", float64(wrong), wrong == 0)
	if wrong > 0 {
		res.problem("expiry load: %d of %d sampled orders are not %s %s after their deadline (first: %s)", wrong, checked, want, expiryGrace, firstWrong)
	}
}
