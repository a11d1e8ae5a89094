// Package server wires the payment domain and the realtime layer into one
// Echo HTTP application, and owns start-up and ordered shutdown.
package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"paystatus/payment"
	"paystatus/payment/sqlstore"
	"paystatus/realtime"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server is the HTTP application with its Socket.IO server and database.
type Server struct {
	cfg     Config
	log     *slog.Logger
	store   payment.Store
	svc     *payment.Service
	rt      *realtime.Server
	echo    *echo.Echo
	http    *http.Server
	metrics *metrics
	checks  []readinessCheck
	closers []func() error // extra resources closed after HTTP, before the database

	refusals   *prometheus.CounterVec // requests refused by a limit, by which
	anonLimit  *ipLimiter             // nil: unlimited
	orderLimit *ipLimiter
	shakeLimit *ipLimiter
	internal   *http.Server // the METRICS_ADDR listener's server, or nil
	// sweeper expires orders past their window and purges old ones; it
	// runs from Run until Shutdown, which stops it before the database.
	sweeper     *payment.Sweeper
	stopSweeper context.CancelFunc // guarded by mu; nil when not running
	sweeperDone chan struct{}      // guarded by mu

	// draining is closed when shutdown begins, so held long-polls answer.
	draining  chan struct{}
	drainOnce sync.Once

	mu       sync.Mutex
	listener net.Listener // guarded by mu
	intLn    net.Listener // guarded by mu; the METRICS_ADDR listener
}

type readinessCheck struct {
	name  string
	check func(context.Context) error
}

// New validates the configuration, opens the database and builds the
// application. It does not listen; call Serve or Run.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	cfg, generated, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	for _, name := range generated {
		if name == "ORDER_TOKEN_SECRET" {
			log.Warn("generated a development secret; order tokens will not survive a restart", "name", name)
			continue
		}
		secret := map[string]string{"UPI_CALLBACK_SECRET": cfg.UPISecret, "RAZORPAY_WEBHOOK_SECRET": cfg.RazorpaySecret, "STRIPE_WEBHOOK_SECRET": cfg.StripeSecret}[name]
		log.Warn("generated a development secret", "name", name, "value", secret)
	}
	if cfg.RoomAuth == string(realtime.RoomAuthOrder) {
		log.Warn("ROOM_AUTH=order: sockets may join any existing order's room without its token; use only while migrating pages")
	}
	store, err := sqlstore.New(ctx, sqlstore.Config{
		URL:         cfg.DatabaseURL,
		GroupCommit: sqlstore.GroupMode(cfg.GroupCommit),
		GroupMax:    cfg.GroupCommitMax,
		GroupWait:   cfg.GroupCommitWait,
		SQLiteVFS:   cfg.sqliteVFS,
	})
	if err != nil {
		return nil, err
	}
	tokenCfg := payment.TokenConfig{Secret: []byte(cfg.OrderTokenSecret), TTL: cfg.OrderTokenTTL}
	for _, p := range cfg.PreviousOrderTokenSecrets {
		tokenCfg.Previous = append(tokenCfg.Previous, []byte(p))
	}
	tokens, err := payment.NewTokenSet(tokenCfg)
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	var quota *payment.CreationQuota
	if cfg.OrdersMaxPerHour > 0 {
		if quota, err = payment.NewCreationQuota(store, int64(cfg.OrdersMaxPerHour), time.Hour); err != nil {
			_ = store.Close()
			return nil, err
		}
	}
	svc, err := payment.NewService(payment.ServiceDeps{Store: store, Tokens: tokens, Quota: quota,
		Window: payment.Window{TTL: cfg.OrderTTL, Min: cfg.OrderTTLMin, Max: cfg.OrderTTLMax}})
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, store: store, svc: svc, metrics: newMetrics(), draining: make(chan struct{})}
	s.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "paystatus_requests_limited_total", Help: "Connections and requests refused by a limit, by limit.",
	}, []string{"limit"})
	s.metrics.registry.MustRegister(s.refusals)
	s.anonLimit = newIPLimiter(cfg.AnonRatePerIP, int(cfg.AnonRatePerIP*BurstSeconds))
	s.orderLimit = newIPLimiter(cfg.OrderRatePerIP, int(cfg.OrderRatePerIP*BurstSeconds))
	s.shakeLimit = newIPLimiter(cfg.HandshakeRatePerIP, int(cfg.HandshakeRatePerIP*BurstSeconds))
	s.sweeper, err = payment.NewSweeper(store, svc, payment.SweepConfig{
		Every: cfg.ExpirySweepEvery, Batch: cfg.ExpiryBatch, Retention: cfg.OrderRetention,
		Observer: s.metrics, Logger: log,
	})
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	s.checks = append(s.checks, readinessCheck{"database", store.Ping})
	redisLink, err := s.setupRedis(cfg)
	if err != nil {
		_ = store.Close()
		return nil, err
	}

	rtCfg := realtime.Config{
		CORSOrigins:    cfg.CORSOrigins,
		RoomAuth:       realtime.RoomAuth(cfg.RoomAuth),
		AckTimeout:     cfg.AckTimeout,
		AckRetries:     cfg.AckRetries,
		Logger:         log,
		Observer:       s.metrics,
		ClientDir:      cfg.ClientDir,
		MaxSessions:    cfg.MaxSessions,
		OnSessionsFull: func() { s.refusals.WithLabelValues("sessions").Inc() },
	}
	if redisLink != nil {
		rtCfg.Redis = redisLink.realtimeConfig(cfg.RedisAdapter)
		// Another node's broadcast of an order's change wakes the
		// long-polls held here: one cross-node message for both.
		rtCfg.OnRemoteChange = svc.Waiters().Notify
	}
	if s.rt, err = realtime.New(rtCfg, svc); err != nil {
		for _, closeFn := range s.closers {
			_ = closeFn()
		}
		_ = store.Close()
		return nil, err
	}
	svc.SetNotifier(s.rt)
	if s.echo, err = s.routes(); err != nil {
		_ = s.rt.Shutdown(ctx)
		for _, closeFn := range s.closers {
			_ = closeFn()
		}
		_ = store.Close()
		return nil, err
	}
	s.http = &http.Server{
		Handler:           bodyDeadline(cfg.BodyReadTimeout, s.echo),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", s.metricsHandler())
		mux.HandleFunc("GET /readyz", s.readyzDetailed)
		s.internal = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: cfg.IdleTimeout, MaxHeaderBytes: cfg.MaxHeaderBytes}
	}
	return s, nil
}

// Config returns the effective configuration, defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// Service returns the payment service, for tests and tools.
func (s *Server) Service() *payment.Service { return s.svc }

// Realtime returns the Socket.IO layer.
func (s *Server) Realtime() *realtime.Server { return s.rt }

// Handler returns the HTTP handler, for httptest.
func (s *Server) Handler() http.Handler { return s.echo }

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{})
}

func (s *Server) routes() (*echo.Echo, error) {
	trusted, err := parseCIDRs(s.cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("%w: TRUSTED_PROXIES entry %q", ErrConfig, err.Error())
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(s.log)
	e.IPExtractor = ipExtractor(trusted)
	e.Use(middleware.Recover())
	e.Use(securityHeaders(contentSecurityPolicy(s.cfg.APIOrigins, s.cfg.FrameAncestors)))

	rt := echo.WrapHandler(s.rt.Handler())
	shake := s.limitHandshakes()
	e.Any("/socket.io", rt, shake)
	e.Any("/socket.io/*", rt, shake)

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	if s.cfg.MetricsAddr == "" {
		e.GET("/metrics", echo.WrapHandler(s.metricsHandler()))
	}

	anon := s.rateLimited(s.anonLimit, "anonymous")
	api := e.Group("/api", s.cors())
	api.POST("/orders", s.createOrder, s.requireMerchant)
	api.GET("/config", s.clientConfig, anon)
	api.GET("/payment/status/:orderId", s.paymentStatus, anon)
	// Per-route middleware: a Group("") with middleware would also catch
	// every unknown /api path and answer 401 instead of 404.
	api.POST("/payment/:orderId/complete", s.completePayment, s.requireAdmin)
	api.PATCH("/orders/:orderId", s.patchOrder, s.requireAdmin)
	api.POST("/orders/:orderId/test-connection", s.testConnection, s.requireAdmin)
	s.gatewayRoutes(api)
	if !s.cfg.Production() {
		api.POST("/dev/orders/:orderId/simulate", s.simulatePayment, anon)
	}

	pages := e.Group("")
	if s.cfg.Production() {
		// Production serves only the files listed at start-up, by their
		// exact path, so no spelling reaches a development tool.
		files, err := publicFiles(s.cfg.StaticDir)
		if err != nil {
			return nil, err
		}
		pages.Use(onlyFiles(files))
	}
	pages.Use(middleware.StaticWithConfig(middleware.StaticConfig{Root: s.cfg.StaticDir, Index: "index.html"}))
	return e, nil
}

// limitHandshakes applies the per-address rate to Engine.IO handshakes:
// requests without a session id. Requests of existing sessions pass.
func (s *Server) limitHandshakes() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.Method == http.MethodOptions || r.URL.Query().Get("sid") != "" || strings.HasSuffix(r.URL.Path, ".js") || strings.HasSuffix(r.URL.Path, ".map") {
				return next(c)
			}
			if !s.shakeLimit.allow(c.RealIP(), time.Now()) {
				s.refusals.WithLabelValues("handshake").Inc()
				c.Response().Header().Set("Retry-After", "1")
				return httpError(http.StatusTooManyRequests, "too many connection attempts from this address", nil)
			}
			return next(c)
		}
	}
}

// requireMerchant guards order creation. A request bearing the merchant key
// passes; without one, production refuses it and development lets it
// through at the anonymous per-address order rate.
func (s *Server) requireMerchant(next echo.HandlerFunc) echo.HandlerFunc {
	limited := s.rateLimited(s.orderLimit, "orders")(next)
	return func(c echo.Context) error {
		got, bearer := strings.CutPrefix(c.Request().Header.Get("Authorization"), "Bearer ")
		key := s.cfg.MerchantAPIKey
		switch {
		case bearer && key != "" && subtle.ConstantTimeCompare([]byte(got), []byte(key)) == 1:
			return next(c)
		case s.cfg.Production() && key == "":
			return httpError(http.StatusForbidden, "order creation is disabled: set MERCHANT_API_KEY", nil)
		case s.cfg.Production() || (bearer && key != ""):
			return httpError(http.StatusUnauthorized, "merchant API key required", nil)
		}
		return limited(c)
	}
}

func (s *Server) cors() echo.MiddlewareFunc {
	origins := s.cfg.CORSOrigins
	if len(origins) == 0 {
		origins = []string{"*"}
	}
	return middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOrigins: origins,
		AllowMethods: []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodOptions},
		AllowHeaders: []string{"Content-Type", "Authorization", "X-Order-Token"},
	})
}

// requireAdmin checks Authorization: Bearer <ADMIN_TOKEN> in constant time.
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.cfg.AdminToken == "" {
			return httpError(http.StatusForbidden, "admin endpoints are disabled: set ADMIN_TOKEN", nil)
		}
		got, ok := strings.CutPrefix(c.Request().Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.AdminToken)) != 1 {
			return httpError(http.StatusUnauthorized, "admin token required", nil)
		}
		return next(c)
	}
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is the public readiness probe: ready or not, nothing more. With
// METRICS_ADDR unset it is also the detailed one, as before.
func (s *Server) readyz(c echo.Context) error {
	status, code := s.readiness(c.Request().Context())
	if s.cfg.MetricsAddr == "" && !s.cfg.Production() {
		return c.JSON(code, status)
	}
	if code != http.StatusOK {
		return c.JSON(code, map[string]string{"status": "not ready"})
	}
	return c.JSON(code, map[string]string{"status": "ready"})
}

// readyzDetailed serves the internal listener: each check's own result.
func (s *Server) readyzDetailed(w http.ResponseWriter, r *http.Request) {
	status, code := s.readiness(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(status)
}

func (s *Server) readiness(ctx context.Context) (map[string]string, int) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	status, code := map[string]string{}, http.StatusOK
	select {
	case <-s.draining:
		status["server"], code = "shutting down", http.StatusServiceUnavailable
	default:
	}
	for _, chk := range s.checks {
		if err := chk.check(ctx); err != nil {
			status[chk.name], code = err.Error(), http.StatusServiceUnavailable
		} else {
			status[chk.name] = "ok"
		}
	}
	return status, code
}

// Listen binds the configured address; Addr() then reports it.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	capped := newCapListener(ln, s.cfg.MaxConnections, s.cfg.TLSCertFile != "", func() { s.refusals.WithLabelValues("connections").Inc() })
	var intLn net.Listener
	if s.internal != nil {
		if intLn, err = net.Listen("tcp", s.cfg.MetricsAddr); err != nil {
			_ = ln.Close()
			return fmt.Errorf("listen on METRICS_ADDR %s: %w", s.cfg.MetricsAddr, err)
		}
	}
	s.mu.Lock()
	s.listener = &onceCloseListener{Listener: capped}
	s.intLn = intLn
	s.mu.Unlock()
	return nil
}

// InternalAddr is the METRICS_ADDR listener's address, or nil.
func (s *Server) InternalAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.intLn == nil {
		return nil
	}
	return s.intLn.Addr()
}

// Addr is the bound address, or nil before Listen.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return nil
	}
	return s.listener.Addr()
}

// Run serves until ctx is cancelled, then shuts down in order.
func (s *Server) Run(ctx context.Context) error {
	if s.Addr() == nil {
		if err := s.Listen(); err != nil {
			_ = s.store.Close()
			return err
		}
	}
	s.mu.Lock()
	ln, intLn := s.listener, s.intLn
	s.mu.Unlock()
	if intLn != nil {
		go func() {
			if err := s.internal.Serve(intLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Warn("internal listener stopped", "error", err)
			}
		}()
		s.log.Info("metrics and readiness on the internal listener", "addr", intLn.Addr().String())
	}
	serveErr := make(chan error, 1)
	go func() {
		var err error
		if s.cfg.TLSCertFile != "" {
			err = s.http.ServeTLS(ln, s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
		} else {
			err = s.http.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) || s.isDraining() {
			// Shutdown closed the listener itself; that is not a failure.
			err = nil
		}
		serveErr <- err
	}()
	s.startSweeper()
	port := ln.Addr().(*net.TCPAddr).Port
	s.log.Info(fmt.Sprintf("Server running on port %d", port), "env", s.cfg.Env, "database", s.store.Dialect(), "tls", s.cfg.TLSCertFile != "")
	s.log.Info("WebSocket server ready for connections", "path", "/socket.io/")

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		if err != nil {
			err = fmt.Errorf("serve: %w", err)
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(err, s.Shutdown(shutdownCtx))
}

// Shutdown stops accepting connections, answers held long-polls, closes the
// realtime server, waits for in-flight requests, then closes the database.
func (s *Server) Shutdown(ctx context.Context) error {
	s.log.Info("shutting down")
	s.mu.Lock()
	ln := s.listener
	s.mu.Unlock()
	var errs []error
	// Draining is marked before the listener closes, so Serve's accept error
	// is recognised as part of the shutdown.
	s.drainOnce.Do(func() { close(s.draining) })
	if ln != nil {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	s.stopSweeping()
	if err := s.rt.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.http.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
	}
	if s.internal != nil {
		if err := s.internal.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("internal listener shutdown: %w", err))
		}
	}
	for _, closeFn := range s.closers {
		if err := closeFn(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close database: %w", err))
	}
	s.log.Info("shutdown complete")
	return errors.Join(errs...)
}

// Sweeper returns the expiry sweep, for tests and tools.
func (s *Server) Sweeper() *payment.Sweeper { return s.sweeper }

// startSweeper runs the expiry sweep until stopSweeping.
func (s *Server) startSweeper() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopSweeper != nil || s.isDraining() {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.stopSweeper, s.sweeperDone = cancel, done
	go func() {
		defer close(done)
		_ = s.sweeper.Run(ctx)
	}()
}

// stopSweeping stops the sweep and waits for its batch in progress, so
// that nothing writes once the database closes. Safe to call more than once.
func (s *Server) stopSweeping() {
	s.mu.Lock()
	cancel, done := s.stopSweeper, s.sweeperDone
	s.stopSweeper = func() {}
	s.mu.Unlock()
	if cancel != nil && done != nil {
		cancel()
		<-done
	}
}

func (s *Server) isDraining() bool {
	select {
	case <-s.draining:
		return true
	default:
		return false
	}
}

// onceCloseListener lets shutdown close the listener before http.Server
// does, without the second close reporting an error.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}

// mergeDone returns a context that ends with ctx or when done is closed.
func mergeDone(ctx context.Context, done <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
