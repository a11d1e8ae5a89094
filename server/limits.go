package server

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"
)

// ---- client IP ------------------------------------------------------------

// ipExtractor returns how the client's address is found: the peer address,
// unless the peer is one of the trusted proxies, in which case the last
// X-Forwarded-For hop that is not itself a trusted proxy.
func ipExtractor(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// parseCIDRs reads a list of addresses or CIDR ranges.
func parseCIDRs(list []string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, s := range list {
		if !strings.Contains(s, "/") {
			ip := net.ParseIP(s)
			if ip == nil {
				return nil, errors.New(s)
			}
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, errors.New(s)
		}
		out = append(out, n)
	}
	return out, nil
}

// ---- per-IP rate limits ---------------------------------------------------

// ipLimiter is a token bucket per client address. IPv6 clients are keyed by
// their /64, which one subscriber usually holds whole. The table is bounded:
// idle entries are swept, and when it is still full a new address is let
// through rather than locking every newcomer out.
type ipLimiter struct {
	limit   rate.Limit
	burst   int
	maxKeys int

	mu        sync.Mutex
	buckets   map[string]*ipBucket // guarded by mu
	lastSweep time.Time            // guarded by mu
}

type ipBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// newIPLimiter returns nil (no limit) when perSecond is not positive.
func newIPLimiter(perSecond float64, burst int) *ipLimiter {
	if perSecond <= 0 {
		return nil
	}
	return &ipLimiter{limit: rate.Limit(perSecond), burst: max(burst, 1), maxKeys: 100_000, buckets: make(map[string]*ipBucket)}
}

// allow takes one token for ip; a nil limiter allows everything.
func (l *ipLimiter) allow(ip string, now time.Time) bool {
	if l == nil {
		return true
	}
	key := ipKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.maxKeys {
			l.sweepLocked(now)
			if len(l.buckets) >= l.maxKeys {
				return true
			}
		}
		b = &ipBucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	if now.Sub(l.lastSweep) > time.Minute {
		l.sweepLocked(now)
	}
	return b.lim.AllowN(now, 1)
}

// sweepLocked drops buckets idle long enough to have refilled. l.mu must
// be held.
func (l *ipLimiter) sweepLocked(now time.Time) {
	l.lastSweep = now
	full := time.Duration(float64(l.burst)/float64(l.limit)*float64(time.Second)) + time.Second
	for k, b := range l.buckets {
		if now.Sub(b.seen) > full {
			delete(l.buckets, k)
		}
	}
}

func ipKey(ip string) string {
	parsed := net.ParseIP(ip)
	if parsed == nil || parsed.To4() != nil {
		return ip
	}
	return parsed.Mask(net.CIDRMask(64, 128)).String()
}

// rateLimited answers 429 once the client's bucket is empty.
func (s *Server) rateLimited(l *ipLimiter, what string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !l.allow(c.RealIP(), time.Now()) {
				s.refusals.WithLabelValues(what).Inc()
				c.Response().Header().Set("Retry-After", "1")
				return httpError(http.StatusTooManyRequests, "too many requests from this address, slow down", nil)
			}
			return next(c)
		}
	}
}

// ---- request bodies -------------------------------------------------------

// bodyDeadline gives every request body a read deadline, so a client that
// sends its body slowly or never cannot hold the connection. The deadline is
// lifted once the body has been read to its end, so it cannot cut short a
// long-poll that waits after reading.
func bodyDeadline(timeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			next.ServeHTTP(w, r) // not a net/http connection (tests with a recorder)
			return
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody clears the connection's read deadline at the end of the body.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// ---- connections ----------------------------------------------------------

// capListener bounds the connections open at once. One over the cap is
// answered with a bare 503 and closed, so the client learns why instead of
// waiting in the accept queue.
type capListener struct {
	net.Listener
	slots   chan struct{}
	tls     bool
	refused func()
}

func newCapListener(ln net.Listener, limit int, tls bool, refused func()) *capListener {
	return &capListener{Listener: ln, slots: make(chan struct{}, limit), tls: tls, refused: refused}
}

const overloadedResponse = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\nRetry-After: 5\r\nContent-Length: 24\r\n\r\nserver at its connection"

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &cappedConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
		}
		if l.refused != nil {
			l.refused()
		}
		if !l.tls {
			// Best effort and bounded: the reply fits the socket buffer.
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(c, overloadedResponse)
		}
		_ = c.Close()
	}
}

// cappedConn gives its slot back once, on the first Close.
type cappedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// SyscallConn exposes the descriptor, so the realtime layer can still watch
// an upgraded websocket with its shared poller.
func (c *cappedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.New("connection has no descriptor")
}

func (c *cappedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
