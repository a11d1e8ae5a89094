package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// gateways is the concurrent-gateways scenario: a number of senders (64 by
// default), each sending a signed callback as soon as its previous one was
// answered, with no socket listening. Every callback changes an order
// (PENDING moves it to processing, then SUCCESS to completed, each under
// its own txnId), so every 200 is a durable commit: the figure is durable
// callbacks per second, and the HTTP reply's p50/p99.
func gateways(ctx context.Context, cfg config, f *fleet, res *Result) {
	n, senders := cfg.gwOrders, cfg.gwSenders
	if n <= 0 || senders <= 0 {
		return
	}
	logf(cfg, "gateways: creating %d orders", n)
	orders, err := f.createOrders(ctx, n, 64, cfg.amount, nil)
	if err != nil {
		res.problem("gateways: creating orders: %v", err)
		return
	}
	runID := time.Now().UnixNano()
	steps := [...]struct{ upi, want string }{{"PENDING", "processing"}, {"SUCCESS", "completed"}}

	logf(cfg, "gateways: %d senders, %d orders (2 callbacks each), at most %s", senders, n, cfg.gwDuration)
	var (
		next     atomic.Int64 // next order to take
		lats     = make([]atomic.Int64, 2*n)
		errs     atomic.Int64
		badReply atomic.Int64
		firstErr atomic.Value
		lastDone atomic.Int64
		wg       sync.WaitGroup
	)
	meter := startCPUMeter(f)
	start := time.Now()
	stopAt := start.Add(cfg.gwDuration)
	for w := 0; w < senders; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(stopAt) {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				to := f.callbackTo(i)
				for s, st := range steps {
					body, sig := to.signedCallback(orders[i].ID, fmt.Sprintf("gw-%d-%d-%d", runID, i, s), st.upi, orders[i].Amount)
					t0 := time.Now()
					r, err := to.postCallback(ctx, body, sig)
					done := time.Now()
					lats[2*i+s].Store(max(int64(done.Sub(t0)), 1))
					for {
						cur := lastDone.Load()
						if cur >= done.UnixNano() || lastDone.CompareAndSwap(cur, done.UnixNano()) {
							break
						}
					}
					if err != nil {
						errs.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
						break
					}
					if !(r.OK || r.Received) || r.Status != st.want {
						badReply.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("callback reply ok=%v status=%q, want %q", r.OK, r.Status, st.want))
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	used := meter.stop()
	elapsed := time.Duration(lastDone.Load() - start.UnixNano())

	answered := recordedSorted(lats)
	ok := int64(len(answered)) - errs.Load() - badReply.Load()
	valid := errs.Load() == 0 && badReply.Load() == 0 && ok > 0
	res.add("gateways", "senders", "", float64(senders), valid)
	res.add("gateways", "durable callbacks answered", "", float64(ok), valid)
	if elapsed > 0 {
		res.add("gateways", "durable callbacks/s", "1/s", float64(ok)/elapsed.Seconds(), valid)
	}
	res.add("gateways", "callback HTTP p50", "ms", ms(percentile(answered, 50)), valid)
	res.add("gateways", "callback HTTP p99", "ms", ms(percentile(answered, 99)), valid)
	if used.serverOK && ok > 0 {
		res.add("gateways", "server CPU time per callback", "µs", float64(used.server.Microseconds())/float64(ok), valid)
	}
	used.addTo(res, "gateways", valid)
	res.add("gateways", "scenario wall time", "s", elapsed.Seconds(), valid)
	if errs.Load() > 0 || badReply.Load() > 0 {
		res.problem("gateways: %d callback errors, %d unexpected replies; first: %v", errs.Load(), badReply.Load(), firstErr.Load())
	}
}
