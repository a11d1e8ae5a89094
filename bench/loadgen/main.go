// Command loadgen drives a payment status server the way many browser tabs
// would (Socket.IO over websocket) while sending it signed UPI callbacks and
// admin broadcasts, and measures memory, latency, loss and duplication.
//
//	loadgen -name Go -url http://127.0.0.1:8080 -pid 1234 -out go.json
//	loadgen -name Go -url http://127.0.0.1:8080,http://127.0.0.1:8081 -pid 11,12 ...   (a fleet)
//	loadgen -report go.json node.json
//	loadgen -median go-1.json node-1.json go-2.json node-2.json ...
//	loadgen -plan 5 go node
//
// See bench/README.md for the scenarios and how bench/run.sh uses it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"
)

type config struct {
	name       string
	url        string // one base URL, or a comma-separated fleet
	pid        string // the server's pid, or one per fleet node, comma-separated
	out        string
	e2eLog     string
	upiSecret  string
	adminToken string

	clients     int
	dialConc    int
	gcLimitMiB  int
	settle      time.Duration
	rate        int
	duration    time.Duration
	fanClients  int
	fanRate     float64
	fanDuration time.Duration
	drain       time.Duration
	linger      time.Duration
	amount      int64
	scenarios   string

	gwOrders   int
	gwSenders  int
	gwDuration time.Duration

	expiryOrders    int
	expiryStaggered bool
	expiryLead      time.Duration
	expiryHold      time.Duration
}

// resendMetric is what the name of the server's counter of re-sent
// unacknowledged updates contains; every counter matching it is summed.
const resendMetric = "resend"

// lateFirstReceipt: a terminal update first received this long after its
// callback was scheduled was most likely a re-send (the Go server re-sends
// after 5 s without an ack) whose first copy was lost.
const lateFirstReceipt = 4 * time.Second

func main() {
	var (
		cfg    config
		smoke  bool
		report bool
		median bool
		plan   int
	)
	flag.StringVar(&cfg.name, "name", "server", "label for this server in results (e.g. Go, Node)")
	flag.StringVar(&cfg.url, "url", "http://127.0.0.1:8080", "base URL of the server under test; a comma-separated list is a fleet (client i on node i mod n, its callback to node i+1 mod n)")
	flag.StringVar(&cfg.pid, "pid", "", "server process id, for RSS and CPU readings; for a fleet one per node, comma-separated (empty: skip them)")
	flag.StringVar(&cfg.out, "out", "", "write results as JSON to this file")
	flag.StringVar(&cfg.e2eLog, "e2e-log", "", "write one line per end-to-end callback to this file: its index (= ms after the first), and its receipt, HTTP and written-late times in ns (0: none)")
	flag.StringVar(&cfg.upiSecret, "upi-secret", os.Getenv("UPI_CALLBACK_SECRET"), "HMAC secret for UPI callbacks (default $UPI_CALLBACK_SECRET)")
	flag.StringVar(&cfg.adminToken, "admin-token", os.Getenv("ADMIN_TOKEN"), "bearer token for test-connection (default $ADMIN_TOKEN)")
	flag.IntVar(&cfg.clients, "clients", 10000, "connected, joined clients for the idle, storm and end-to-end scenarios")
	flag.IntVar(&cfg.dialConc, "dial-concurrency", 256, "handshakes in flight during a connect storm")
	flag.DurationVar(&cfg.settle, "settle", 3*time.Second, "pause before memory readings")
	flag.IntVar(&cfg.rate, "rate", 1000, "UPI callbacks per second in the end-to-end scenario")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "length of the end-to-end scenario (callbacks = rate x duration, at most one per client)")
	flag.IntVar(&cfg.fanClients, "fanout-clients", 0, "sockets in the single fan-out room (0: same as -clients)")
	flag.Float64Var(&cfg.fanRate, "fanout-rate", 2, "broadcasts per second in the fan-out scenario")
	flag.DurationVar(&cfg.fanDuration, "fanout-duration", 10*time.Second, "length of the fan-out scenario")
	flag.DurationVar(&cfg.drain, "drain", 10*time.Second, "how long to wait for outstanding receipts after the last send")
	flag.DurationVar(&cfg.linger, "linger", 2*time.Second, "how long to keep listening for re-sends once everything arrived")
	flag.Int64Var(&cfg.amount, "amount", 49900, "order amount in minor units")
	flag.StringVar(&cfg.scenarios, "scenarios", "idle,e2e,fanout,gateways", "comma-separated subset of idle (includes the connect storm), e2e, fanout, gateways")
	flag.IntVar(&cfg.gwOrders, "gateways-orders", 5000, "orders in the concurrent-gateways scenario (two callbacks each)")
	flag.IntVar(&cfg.gwSenders, "gateways-senders", 64, "concurrent gateway senders, each sending its next callback when the previous is answered")
	flag.DurationVar(&cfg.gwDuration, "gateways-duration", 10*time.Second, "the concurrent-gateways scenario stops taking new orders after this long")
	flag.IntVar(&cfg.expiryOrders, "expiry-orders", 0, "expiry load: pending orders created first with ttlSeconds (0: none)")
	flag.BoolVar(&cfg.expiryStaggered, "expiry-staggered", true, "expiry load: deadlines spread over the end-to-end scenario (false: a window that outlasts the run, for the comparison run)")
	flag.DurationVar(&cfg.expiryLead, "expiry-lead", 0, "expiry load: the end-to-end scenario starts this long after the expiring orders begin to be created (0: planned from the creation rate of a first batch)")
	flag.DurationVar(&cfg.expiryHold, "expiry-hold", 900*time.Second, "expiry load: ttlSeconds of the comparison run's orders")
	flag.IntVar(&cfg.gcLimitMiB, "gc-limit-mib", 2048, "collect the generator's own garbage only when its heap reaches this size (0: Go's default pacing, or GOGC/GOMEMLIMIT from the environment)")
	flag.BoolVar(&smoke, "smoke", false, "small, quick run: 300 clients, a few seconds per scenario")
	flag.BoolVar(&report, "report", false, "print a comparison table of two result files given as arguments")
	flag.BoolVar(&median, "median", false, "judge the goals on the median of interleaved runs: result files as arguments, in run order A, B, A, B, ...")
	flag.IntVar(&plan, "plan", 0, "print the interleaved order of this many runs of the sides given as arguments, one \"side run\" per line")
	flag.Parse()

	if plan != 0 {
		steps, err := interleave(plan, flag.Args())
		check(err)
		for _, st := range steps {
			fmt.Printf("%s %d\n", st.side, st.run)
		}
		return
	}
	if median {
		runs, err := readRuns(flag.Args())
		check(err)
		problems := printMedians(os.Stdout, runs)
		if problems {
			os.Exit(1)
		}
		return
	}

	if report {
		if flag.NArg() != 2 {
			fmt.Fprintln(os.Stderr, "usage: loadgen -report A.json B.json")
			os.Exit(2)
		}
		a, err := readResult(flag.Arg(0))
		check(err)
		b, err := readResult(flag.Arg(1))
		check(err)
		printTable(os.Stdout, a, b)
		printGoals(os.Stdout, a, b)
		if len(a.Problems)+len(b.Problems) > 0 {
			os.Exit(1)
		}
		return
	}

	if smoke {
		setIfDefault := func(name, value string) {
			set := false
			flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
			if !set {
				check(flag.Set(name, value))
			}
		}
		setIfDefault("clients", "300")
		setIfDefault("rate", "100")
		setIfDefault("duration", "3s")
		setIfDefault("fanout-duration", "3s")
		setIfDefault("settle", "1s")
		setIfDefault("drain", "5s")
		setIfDefault("linger", "1s")
		setIfDefault("gateways-orders", "300")
		setIfDefault("gateways-duration", "3s")
	}
	if cfg.fanClients == 0 {
		cfg.fanClients = cfg.clients
	}
	if cfg.upiSecret == "" || cfg.adminToken == "" {
		fmt.Fprintln(os.Stderr, "loadgen: UPI callback secret and admin token are required (-upi-secret, -admin-token or the env)")
		os.Exit(2)
	}

	if cfg.gcLimitMiB > 0 {
		// With Go's default pacing the generator's small heap was collected
		// every 0.6–0.8 s in the end-to-end scenario; a collection slows its
		// reading and delays receipt timestamps, which then count against
		// whichever server is measured. A full run allocates about 350 MB.
		debug.SetGCPercent(-1)
		debug.SetMemoryLimit(int64(cfg.gcLimitMiB) << 20)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	res := run(ctx, cfg)
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	fmt.Fprintf(os.Stderr, "loadgen[%s]: the generator allocated %d MB and collected %d times\n", cfg.name, mem.TotalAlloc>>20, mem.NumGC)
	if cfg.out != "" {
		check(writeResult(cfg.out, res))
	}
	for _, m := range res.Metrics {
		v := "n/a"
		if m.Value != nil {
			v = formatValue(*m.Value)
		}
		if !m.Valid {
			v += " (invalid)"
		}
		fmt.Fprintf(os.Stderr, "loadgen[%s]: %-8s %-34s %s %s\n", cfg.name, m.Scenario, m.Figure, v, m.Unit)
	}
	if len(res.Problems) > 0 {
		fmt.Fprintf(os.Stderr, "loadgen[%s]: %d problem(s)\n", cfg.name, len(res.Problems))
		os.Exit(1)
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
}

func logf(cfg config, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadgen[%s] %s %s\n", cfg.name, time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func init() {
	// Keep the generator's own footprint predictable; it is pinned to one
	// core by run.sh anyway.
	if os.Getenv("GOMAXPROCS") == "" && runtime.NumCPU() > 2 {
		runtime.GOMAXPROCS(2)
	}
}
