// Package server wires the payment domain and the realtime layer into one
// Echo HTTP application, and owns start-up and ordered shutdown.
package server

import (
	"context"
	"crypto/subtle"
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

	// draining is closed when shutdown begins, so held long-polls answer.
	draining  chan struct{}
	drainOnce sync.Once

	mu       sync.Mutex
	listener net.Listener // guarded by mu
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
	tokens, err := payment.NewTokens([]byte(cfg.OrderTokenSecret))
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	svc, err := payment.NewService(payment.ServiceDeps{Store: store, Tokens: tokens})
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, store: store, svc: svc, metrics: newMetrics(), draining: make(chan struct{})}
	s.checks = append(s.checks, readinessCheck{"database", store.Ping})
	redisLink, err := s.setupRedis(cfg)
	if err != nil {
		_ = store.Close()
		return nil, err
	}

	rtCfg := realtime.Config{
		CORSOrigins: cfg.CORSOrigins,
		RoomAuth:    realtime.RoomAuth(cfg.RoomAuth),
		AckTimeout:  cfg.AckTimeout,
		AckRetries:  cfg.AckRetries,
		Logger:      log,
		Observer:    s.metrics,
		ClientDir:   cfg.ClientDir,
		Engine:      realtime.Engine(cfg.RealtimeEngine),
	}
	if redisLink != nil {
		rtCfg.Redis = redisLink.realtimeConfig(cfg.RedisAdapter)
	}
	if s.rt, err = realtime.New(rtCfg, svc); err != nil {
		for _, closeFn := range s.closers {
			_ = closeFn()
		}
		_ = store.Close()
		return nil, err
	}
	svc.SetNotifier(s.rt)
	s.echo = s.routes()
	s.http = &http.Server{Handler: s.echo, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
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

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(s.log)
	e.Use(middleware.Recover())

	rt := echo.WrapHandler(s.rt.Handler())
	e.Any("/socket.io", rt)
	e.Any("/socket.io/*", rt)

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{})))

	api := e.Group("/api", s.cors())
	api.POST("/orders", s.createOrder)
	api.GET("/config", s.clientConfig)
	api.GET("/payment/status/:orderId", s.paymentStatus)
	// Per-route middleware: a Group("") with middleware would also catch
	// every unknown /api path and answer 401 instead of 404.
	api.POST("/payment/:orderId/complete", s.completePayment, s.requireAdmin)
	api.PATCH("/orders/:orderId", s.patchOrder, s.requireAdmin)
	api.POST("/orders/:orderId/test-connection", s.testConnection, s.requireAdmin)
	s.gatewayRoutes(api)
	if !s.cfg.Production() {
		api.POST("/dev/orders/:orderId/simulate", s.simulatePayment)
	}

	pages := e.Group("")
	if s.cfg.Production() {
		pages.Use(hideDevPages)
	}
	pages.Use(middleware.StaticWithConfig(middleware.StaticConfig{Root: s.cfg.StaticDir, Index: "index.html"}))
	return e
}

// devPages are the debugging tools, served in development only.
var devPages = map[string]bool{"/websocket-test.html": true, "/js/websocket-test.js": true}

func hideDevPages(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if devPages[c.Request().URL.Path] {
			return httpError(http.StatusNotFound, "not found", nil)
		}
		return next(c)
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

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
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
	return c.JSON(code, status)
}

// Listen binds the configured address; Addr() then reports it.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	s.mu.Lock()
	s.listener = &onceCloseListener{Listener: ln}
	s.mu.Unlock()
	return nil
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
	ln := s.listener
	s.mu.Unlock()
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
	if err := s.rt.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.http.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
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
