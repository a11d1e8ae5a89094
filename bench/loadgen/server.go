package main

// HTTP side of the generator: order creation, signed UPI callbacks, the
// admin broadcast trigger, and reading the server process's resource use.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

type api struct {
	base       string
	upiSecret  string
	adminToken string
	http       *http.Client
}

func newAPI(base, upiSecret, adminToken string) *api {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		// Well under Node's default keep-alive timeout (5 s), so the
		// client never reuses a connection the server is just closing (a
		// POST on it would fail with a reset and is not retried). Node
		// times the keep-alive from its last reply and can fire it before
		// reading a request already waiting on the socket when its event
		// loop falls behind, as an overloaded fleet on one core does; the
		// margin is what covers that.
		IdleConnTimeout:    time.Second,
		DisableCompression: true,
	}
	return &api{
		base:       strings.TrimRight(base, "/"),
		upiSecret:  upiSecret,
		adminToken: adminToken,
		http:       &http.Client{Transport: tr, Timeout: 60 * time.Second},
	}
}

type order struct {
	ID       string          `json:"id"`
	Status   string          `json:"status"`
	Amount   json.RawMessage `json:"amount"`
	Currency string          `json:"currency"`
	Token    string          `json:"token"`
	// ExpiresAt is the end of the payment window, from servers that have
	// one; an order created with ttlSeconds whose reply lacks it tells that
	// the server ignored the ttl.
	ExpiresAt string `json:"expiresAt"`
}

// do sends a request and decodes a JSON answer into out (if non-nil).
func (a *api) do(ctx context.Context, method, path string, body []byte, hdr map[string]string, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: bad JSON: %w", method, path, err)
		}
	}
	return nil
}

func (a *api) healthy(ctx context.Context) error {
	return a.do(ctx, http.MethodGet, "/healthz", nil, nil, http.StatusOK, nil)
}

func (a *api) waitHealthy(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := a.healthy(c)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server not healthy after %s: %w", limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// createOrder creates one order; ttlSeconds > 0 asks for that payment
// window ({"ttlSeconds": n}), 0 leaves the server's default.
func (a *api) createOrder(ctx context.Context, amount int64, desc string, ttlSeconds int) (order, error) {
	req := map[string]any{"amount": amount, "currency": "INR", "description": desc}
	if ttlSeconds > 0 {
		req["ttlSeconds"] = ttlSeconds
	}
	body, _ := json.Marshal(req)
	var o order
	if err := a.do(ctx, http.MethodPost, "/api/orders", body, nil, http.StatusCreated, &o); err != nil {
		return o, err
	}
	if o.ID == "" || o.Token == "" {
		return o, errors.New("order reply lacks id or token")
	}
	return o, nil
}

// createOrders creates n orders with a few requests in flight, order i on
// node i mod n; ttl(i) is order i's ttlSeconds (nil: the server's default).
func (f *fleet) createOrders(ctx context.Context, n, workers int, amount int64, ttl func(i int) int) ([]order, error) {
	orders := make([]order, n)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		firstEr error
		next    = make(chan int)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t := 0
				if ttl != nil {
					t = ttl(i)
				}
				o, err := f.home(i).createOrder(ctx, amount, fmt.Sprintf("bench order %d", i), t)
				if err != nil {
					mu.Lock()
					if firstEr == nil {
						firstEr = err
					}
					mu.Unlock()
					continue
				}
				orders[i] = o
			}
		}()
	}
	for i := 0; i < n; i++ {
		mu.Lock()
		stop := firstEr != nil
		mu.Unlock()
		if stop {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return orders, firstEr
}

// signedCallback returns the exact body bytes and their signature.
func (a *api) signedCallback(orderID, txnID, status string, amount json.RawMessage) ([]byte, string) {
	body, _ := json.Marshal(map[string]any{
		"orderId": orderID,
		"txnId":   txnID,
		"status":  status,
		"amount":  amount,
		"vpa":     "bench@upi",
	})
	m := hmac.New(sha256.New, []byte(a.upiSecret))
	m.Write(body)
	return body, hex.EncodeToString(m.Sum(nil))
}

// callbackReply accepts both servers' answers: the reference says
// {ok:true, status, seq}, the Go server {received:true, orderId, status, seq}.
type callbackReply struct {
	OK       bool   `json:"ok"`
	Received bool   `json:"received"`
	Status   string `json:"status"`
	Seq      int64  `json:"seq"`
}

func (a *api) postCallback(ctx context.Context, body []byte, sig string) (callbackReply, error) {
	var r callbackReply
	err := a.do(ctx, http.MethodPost, "/api/payment/upi/callback", body, map[string]string{"X-Signature": sig}, http.StatusOK, &r)
	return r, err
}

type testConnReply struct {
	OrderID  string `json:"orderId"`
	Room     string `json:"room"`
	RoomSize int    `json:"roomSize"`
}

func (a *api) testConnection(ctx context.Context, orderID string) (testConnReply, error) {
	var r testConnReply
	err := a.do(ctx, http.MethodPost, "/api/orders/"+orderID+"/test-connection", nil,
		map[string]string{"Authorization": "Bearer " + a.adminToken}, http.StatusOK, &r)
	return r, err
}

// goroutines reads the go_goroutines gauge from /metrics; ok is false when
// the server exposes no such gauge (e.g. the Node reference).
func (a *api) goroutines(ctx context.Context) (int64, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/metrics", nil)
	if err != nil {
		return 0, false
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return 0, false
	}
	return parseGoroutines(resp.Body)
}

// counter sums every sample in /metrics whose metric name contains part;
// ok is false when there is none (or no /metrics at all).
func (a *api) counter(ctx context.Context, part string) (float64, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/metrics", nil)
	if err != nil {
		return 0, false
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return 0, false
	}
	return parseCounter(resp.Body, part)
}

// parseCounter is counter's parser of the Prometheus text format.
func parseCounter(r io.Reader, part string) (float64, bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var total float64
	found := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		if !strings.Contains(name, part) {
			continue
		}
		f := strings.Fields(line[len(name):])
		if strings.HasPrefix(line[len(name):], "{") {
			// Labels may hold spaces: the value follows the closing brace.
			j := strings.LastIndexByte(line, '}')
			f = strings.Fields(line[j+1:])
		}
		if len(f) < 1 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		total += v
		found = true
	}
	return total, found
}

func parseGoroutines(r io.Reader) (int64, bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "go_goroutines") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || (f[0] != "go_goroutines" && !strings.HasPrefix(f[0], "go_goroutines{")) {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		return int64(v), true
	}
	return 0, false
}

// procRSS returns the resident set size of pid in bytes (VmRSS).
func procRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, err := strconv.ParseInt(f[1], 10, 64)
				if err != nil {
					return 0, err
				}
				return kb * 1024, nil
			}
		}
	}
	return 0, errors.New("no VmRSS line")
}

// clockTicks is USER_HZ, which is 100 on every Linux we run on.
const clockTicks = 100

// procCPU returns user+system CPU time consumed by pid so far (all threads).
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may contain spaces.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(s[i+1:])
	// After ")" come: state(3) ppid(4) ... utime(14) stime(15).
	if len(f) < 13 {
		return 0, errors.New("short stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed stat times")
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// procRunqueueWait sums, over all threads of pid, the time spent runnable
// but waiting for a CPU (second field of /proc/<pid>/task/*/schedstat).
// Large values mean the server was starved by other work on its CPU.
func procRunqueueWait(pid int) (time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var total int64
	for _, t := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread ended meanwhile
		}
		f := strings.Fields(string(data))
		if len(f) < 2 {
			continue
		}
		if v, err := strconv.ParseInt(f[1], 10, 64); err == nil {
			total += v
		}
	}
	return time.Duration(total), nil
}
