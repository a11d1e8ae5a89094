package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"paystatus/payment"
	"paystatus/payment/sqlstore"
)

// Environment names.
const (
	EnvDevelopment = "development"
	EnvProduction  = "production"
)

// DefaultBodyLimit is Config.BodyLimit's default.
const DefaultBodyLimit = 64 << 10

// DefaultMaxHeaderBytes is Config.MaxHeaderBytes's default.
const DefaultMaxHeaderBytes = 16 << 10

// Config is the whole server configuration. Each field's zero value means
// its default, filled in by New; FromEnv reads the documented environment
// variables into it.
type Config struct {
	// Addr is the listen address; empty means ":" + Port.
	Addr string
	// Port is used when Addr is empty (3000).
	Port int
	// DatabaseURL is a postgres:// URL or a SQLite file path (data/paystatus.db).
	DatabaseURL string
	// GroupCommit is auto (default: on for SQLite, off for Postgres), on or
	// off. GroupCommitMax caps the changes in one group (zero means
	// sqlstore.DefaultGroupMax); GroupCommitWait is how long a group waits
	// for more changes (zero by default, at most sqlstore.MaxGroupWait). See
	// docs/storage.md.
	GroupCommit     string
	GroupCommitMax  int
	GroupCommitWait time.Duration
	// sqliteVFS names a SQLite VFS to open the database through; tests set
	// it to trace fsyncs.
	sqliteVFS string
	// Env is development (default) or production.
	Env string
	// AdminToken guards the admin endpoints; empty disables them.
	AdminToken string
	// OrderTokenSecret signs order tokens. Generated in development when
	// empty; required in production.
	OrderTokenSecret string
	// CORSOrigins lists allowed browser origins; empty allows any.
	CORSOrigins []string
	// LogLevel is debug, info (default), warn or error.
	LogLevel string
	// RoomAuth is token (default) or order (legacy pages, no token).
	RoomAuth string
	// RolloutPercent is the share of sessions that get push (100).
	// Use -1 to mean 0 explicitly, since zero means the default.
	RolloutPercent int
	// Gateway secrets; empty ones are generated in development and disable
	// their endpoint in production.
	UPISecret      string
	RazorpaySecret string
	StripeSecret   string
	// StripeTolerance is the accepted age of a Stripe signature (300 s).
	StripeTolerance time.Duration
	// LongPollMax caps ?wait= on the status endpoint (30 s).
	LongPollMax time.Duration
	// AckTimeout and AckRetries govern resends of terminal updates (5 s, 3).
	AckTimeout time.Duration
	AckRetries int
	// BodyLimit bounds request bodies in bytes; zero means DefaultBodyLimit.
	BodyLimit int64
	// StaticDir holds the pages (static); ClientDir holds the socket.io
	// browser client (node_modules/socket.io-client/dist).
	StaticDir string
	ClientDir string
	// TLSCertFile and TLSKeyFile, both set, serve HTTPS and WSS.
	TLSCertFile string
	TLSKeyFile  string
	// RedisURL enables fan-out across nodes; RedisAdapter is pubsub
	// (default) or streams.
	RedisURL     string
	RedisAdapter string
	// RedisPrefix names the shared channels and stream (socket.io, as
	// Node's adapter); only nodes on the same prefix share broadcasts.
	RedisPrefix string
	// ShutdownTimeout bounds graceful shutdown (15 s).
	ShutdownTimeout time.Duration

	// MerchantAPIKey is the bearer key POST /api/orders needs. Production
	// refuses order creation without it; development accepts anonymous
	// orders, limited per address by OrderRatePerIP.
	MerchantAPIKey string
	// PreviousOrderTokenSecrets still verify tokens issued before a rotation
	// of OrderTokenSecret; new tokens use OrderTokenSecret.
	PreviousOrderTokenSecrets []string
	// OrderTokenTTL is how long an order token stays valid (24 h).
	OrderTokenTTL time.Duration
	// APIOrigins are the origins, besides the page's own, that the checkout
	// page may take from ?api= and connect to.
	APIOrigins []string
	// FrameAncestors is the CSP frame-ancestors source list ('none').
	FrameAncestors string
	// TrustedProxies are addresses or CIDR ranges whose X-Forwarded-For is
	// believed; empty means the peer address is the client.
	TrustedProxies []string
	// MetricsAddr, when set, serves /metrics and the detailed /readyz on a
	// listener of their own and takes /metrics off the public port.
	MetricsAddr string

	// IdleTimeout closes keep-alive connections idle this long (60 s).
	IdleTimeout time.Duration
	// BodyReadTimeout bounds reading one request body (10 s).
	BodyReadTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers; zero means
	// DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// MaxConnections caps open connections (30000); MaxSessions caps
	// Engine.IO sessions (20000). Both answer 503 beyond the cap.
	MaxConnections int
	MaxSessions    int
	// Per-address rates, per second, with a burst of BurstSeconds' worth:
	// HandshakeRatePerIP (20) for Engine.IO handshakes, AnonRatePerIP (50)
	// for anonymous API calls, OrderRatePerIP (2) for anonymous order
	// creation in development. Negative disables a limit.
	HandshakeRatePerIP float64
	AnonRatePerIP      float64
	OrderRatePerIP     float64
	// OrderTTL is the payment window of an order that asks for none (15
	// min); OrderTTLMin and OrderTTLMax bound a per-order ttlSeconds (1 min
	// and 24 h).
	OrderTTL    time.Duration
	OrderTTLMin time.Duration
	OrderTTLMax time.Duration
	// ExpirySweepEvery is the pause between expiry sweeps (1 s);
	// ExpiryBatch is how many orders one sweep transaction expires (50).
	ExpirySweepEvery time.Duration
	ExpiryBatch      int
	// OrderRetention is how long terminal orders are kept after their
	// creation (30 days). Use -1 to keep them forever (ORDER_RETENTION=0).
	OrderRetention time.Duration
	// OrdersMaxPerHour caps order creation across the fleet; 0 is no cap.
	OrdersMaxPerHour int
}

// BurstSeconds is how many seconds of its rate a per-address bucket holds.
const BurstSeconds = 5

// ErrConfig marks invalid configuration.
var ErrConfig = errors.New("invalid configuration")

// FromEnv reads the configuration from environment variables.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL:      getenv("DATABASE_URL"),
		Env:              getenv("APP_ENV"),
		AdminToken:       getenv("ADMIN_TOKEN"),
		OrderTokenSecret: getenv("ORDER_TOKEN_SECRET"),
		LogLevel:         getenv("LOG_LEVEL"),
		RoomAuth:         getenv("ROOM_AUTH"),
		UPISecret:        getenv("UPI_CALLBACK_SECRET"),
		RazorpaySecret:   getenv("RAZORPAY_WEBHOOK_SECRET"),
		StripeSecret:     getenv("STRIPE_WEBHOOK_SECRET"),
		StaticDir:        getenv("STATIC_DIR"),
		ClientDir:        getenv("SOCKET_IO_CLIENT_DIR"),
		TLSCertFile:      getenv("TLS_CERT_FILE"),
		TLSKeyFile:       getenv("TLS_KEY_FILE"),
		RedisURL:         getenv("REDIS_URL"),
		RedisAdapter:     getenv("REDIS_ADAPTER"),
		RedisPrefix:      getenv("REDIS_PREFIX"),
		GroupCommit:      strings.ToLower(strings.TrimSpace(getenv("DB_GROUP_COMMIT"))),
	}
	c.CORSOrigins = listEnv(getenv, "CORS_ORIGINS")
	c.MerchantAPIKey = getenv("MERCHANT_API_KEY")
	c.PreviousOrderTokenSecrets = listEnv(getenv, "ORDER_TOKEN_PREVIOUS_SECRETS")
	c.APIOrigins = listEnv(getenv, "API_ORIGINS")
	c.FrameAncestors = strings.TrimSpace(getenv("FRAME_ANCESTORS"))
	c.TrustedProxies = listEnv(getenv, "TRUSTED_PROXIES")
	c.MetricsAddr = strings.TrimSpace(getenv("METRICS_ADDR"))
	var err error
	for _, d := range []struct {
		name string
		v    *time.Duration
	}{{"ORDER_TOKEN_TTL_SECONDS", &c.OrderTokenTTL}, {"IDLE_TIMEOUT_SECONDS", &c.IdleTimeout}, {"BODY_READ_TIMEOUT_SECONDS", &c.BodyReadTimeout}} {
		if *d.v, err = secondsEnv(getenv, d.name); err != nil {
			return c, err
		}
	}
	for _, n := range []struct {
		name string
		v    *int
	}{{"MAX_HEADER_BYTES", &c.MaxHeaderBytes}, {"MAX_CONNECTIONS", &c.MaxConnections}, {"MAX_SESSIONS", &c.MaxSessions}} {
		if *n.v, err = intEnv(getenv, n.name); err != nil {
			return c, err
		}
		if *n.v < 0 {
			return c, fmt.Errorf("%w: %s must be positive, not %d", ErrConfig, n.name, *n.v)
		}
	}
	for _, r := range []struct {
		name string
		v    *float64
	}{{"HANDSHAKE_RATE_PER_IP", &c.HandshakeRatePerIP}, {"ANON_RATE_PER_IP", &c.AnonRatePerIP}, {"ORDER_RATE_PER_IP", &c.OrderRatePerIP}} {
		if *r.v, err = rateEnv(getenv, r.name); err != nil {
			return c, err
		}
	}
	if c.Port, err = intEnv(getenv, "PORT"); err != nil {
		return c, err
	}
	if c.RolloutPercent, err = intEnv(getenv, "REALTIME_ROLLOUT_PERCENT"); err != nil {
		return c, err
	}
	// Config keeps -1 for an explicit 0, so a negative setting (-1 included)
	// is refused here rather than read as that marker.
	switch {
	case c.RolloutPercent < 0:
		return c, fmt.Errorf("%w: REALTIME_ROLLOUT_PERCENT must be 0 to 100, not %d", ErrConfig, c.RolloutPercent)
	case c.RolloutPercent == 0 && strings.TrimSpace(getenv("REALTIME_ROLLOUT_PERCENT")) != "":
		c.RolloutPercent = -1
	}
	if c.AckRetries, err = intEnv(getenv, "ACK_RETRIES"); err != nil {
		return c, err
	}
	if c.GroupCommitMax, err = intEnv(getenv, "DB_GROUP_COMMIT_MAX"); err != nil {
		return c, err
	}
	waitMicros, err := intEnv(getenv, "DB_GROUP_COMMIT_WAIT_US")
	if err != nil {
		return c, err
	}
	if waitMicros < 0 || waitMicros > 10000 {
		return c, fmt.Errorf("%w: DB_GROUP_COMMIT_WAIT_US must be 0 to 10000, not %d", ErrConfig, waitMicros)
	}
	c.GroupCommitWait = time.Duration(waitMicros) * time.Microsecond
	if c.StripeTolerance, err = secondsEnv(getenv, "STRIPE_TOLERANCE_SECONDS"); err != nil {
		return c, err
	}
	if c.AckTimeout, err = secondsEnv(getenv, "ACK_TIMEOUT_SECONDS"); err != nil {
		return c, err
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
	}{{"ORDER_TTL_SECONDS", &c.OrderTTL}, {"ORDER_TTL_MIN_SECONDS", &c.OrderTTLMin}, {"ORDER_TTL_MAX_SECONDS", &c.OrderTTLMax}, {"ORDER_EXPIRY_SWEEP_SECONDS", &c.ExpirySweepEvery}} {
		if *d.v, err = secondsEnv(getenv, d.name); err != nil {
			return c, err
		}
	}
	if c.ExpiryBatch, err = intEnv(getenv, "ORDER_EXPIRY_BATCH"); err != nil {
		return c, err
	}
	if c.OrdersMaxPerHour, err = intEnv(getenv, "ORDERS_MAX_PER_HOUR"); err != nil {
		return c, err
	}
	if c.OrderRetention, err = retentionEnv(getenv, "ORDER_RETENTION"); err != nil {
		return c, err
	}
	return c, nil
}

func listEnv(getenv func(string) string, name string) []string {
	var out []string
	for _, v := range strings.Split(getenv(name), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// rateEnv reads a per-second rate; "off" disables the limit (-1 in Config).
func rateEnv(getenv func(string) string, name string) (float64, error) {
	v := strings.TrimSpace(getenv(name))
	switch {
	case v == "":
		return 0, nil
	case strings.EqualFold(v, "off"):
		return -1, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f > 0) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%w: %s=%q is neither a positive rate per second nor off", ErrConfig, name, v)
	}
	return f, nil
}

// retentionEnv reads a retention: a Go duration ("720h") or whole days
// ("30d"); "0" means keep forever, returned as -1.
func retentionEnv(getenv func(string) string, name string) (time.Duration, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return 0, nil
	}
	if v == "0" {
		return -1, nil
	}
	bad := fmt.Errorf("%w: %s=%q must be a duration such as 720h or 30d, or 0 to keep orders forever", ErrConfig, name, v)
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 100*365 {
			return 0, bad
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, bad
	}
	return d, nil
}

func intEnv(getenv func(string) string, name string) (int, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%w: %s=%q is not a whole number", ErrConfig, name, v)
	}
	return n, nil
}

// maxSeconds is the longest duration setting accepted, about 292 years.
const maxSeconds = float64(math.MaxInt64 / int64(time.Second))

func secondsEnv(getenv func(string) string, name string) (time.Duration, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	// The negated test also refuses NaN; the cap keeps the Duration from overflowing.
	if err != nil || !(f > 0) || f > maxSeconds {
		return 0, fmt.Errorf("%w: %s=%q is not a positive number of seconds", ErrConfig, name, v)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// Generated lists the secrets that withDefaults generated, for a warning.
type Generated []string

// withDefaults validates the configuration and fills in defaults.
func (c Config) withDefaults() (Config, Generated, error) {
	var gen Generated
	if c.Env == "" {
		c.Env = EnvDevelopment
	}
	if c.Env != EnvDevelopment && c.Env != EnvProduction {
		return c, nil, fmt.Errorf("%w: APP_ENV must be development or production, not %q", ErrConfig, c.Env)
	}
	if c.Port == 0 {
		c.Port = 3000
	}
	if c.Port < 0 || c.Port > 65535 {
		return c, nil, fmt.Errorf("%w: PORT %d out of range", ErrConfig, c.Port)
	}
	if c.Addr == "" {
		c.Addr = fmt.Sprintf(":%d", c.Port)
	}
	if c.DatabaseURL == "" {
		c.DatabaseURL = "data/paystatus.db"
	}
	switch c.GroupCommit {
	case "":
		c.GroupCommit = "auto"
	case "auto", "on", "off":
	default:
		return c, nil, fmt.Errorf("%w: DB_GROUP_COMMIT must be auto, on or off, not %q", ErrConfig, c.GroupCommit)
	}
	if c.GroupCommitMax == 0 {
		c.GroupCommitMax = sqlstore.DefaultGroupMax
	}
	if c.GroupCommitMax < 1 || c.GroupCommitMax > 4096 {
		return c, nil, fmt.Errorf("%w: DB_GROUP_COMMIT_MAX must be 1 to 4096, not %d", ErrConfig, c.GroupCommitMax)
	}
	if c.GroupCommitWait < 0 || c.GroupCommitWait > sqlstore.MaxGroupWait {
		return c, nil, fmt.Errorf("%w: DB_GROUP_COMMIT_WAIT_US must be 0 to %d, not %d", ErrConfig, sqlstore.MaxGroupWait.Microseconds(), c.GroupCommitWait.Microseconds())
	}
	switch strings.ToLower(c.LogLevel) {
	case "":
		c.LogLevel = "info"
	case "debug", "info", "warn", "error":
		c.LogLevel = strings.ToLower(c.LogLevel)
	default:
		return c, nil, fmt.Errorf("%w: LOG_LEVEL must be debug, info, warn or error, not %q", ErrConfig, c.LogLevel)
	}
	if err := eitherOf(&c.RoomAuth, "ROOM_AUTH", "token", "order"); err != nil {
		return c, nil, err
	}
	switch {
	case c.RolloutPercent == 0:
		c.RolloutPercent = 100
	case c.RolloutPercent == -1:
		c.RolloutPercent = 0
	case c.RolloutPercent < 0 || c.RolloutPercent > 100:
		return c, nil, fmt.Errorf("%w: REALTIME_ROLLOUT_PERCENT must be 0 to 100, not %d", ErrConfig, c.RolloutPercent)
	}
	if c.StripeTolerance == 0 {
		c.StripeTolerance = 300 * time.Second
	}
	if c.LongPollMax == 0 {
		c.LongPollMax = 30 * time.Second
	}
	if c.BodyLimit == 0 {
		c.BodyLimit = DefaultBodyLimit
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
	if err := c.lifecycleDefaults(); err != nil {
		return c, nil, err
	}
	if c.StaticDir == "" {
		c.StaticDir = "static"
	}
	if c.ClientDir == "" {
		c.ClientDir = "node_modules/socket.io-client/dist"
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return c, nil, fmt.Errorf("%w: TLS_CERT_FILE and TLS_KEY_FILE must be set together", ErrConfig)
	}
	if err := eitherOf(&c.RedisAdapter, "REDIS_ADAPTER", "pubsub", "streams"); err != nil {
		return c, nil, err
	}
	if err := c.securityDefaults(); err != nil {
		return c, nil, err
	}
	if c.OrderTokenSecret == "" {
		if c.Env == EnvProduction {
			return c, nil, fmt.Errorf("%w: ORDER_TOKEN_SECRET is required when APP_ENV=production", ErrConfig)
		}
		c.OrderTokenSecret = randomSecret()
		gen = append(gen, "ORDER_TOKEN_SECRET")
	}
	if c.Env == EnvDevelopment {
		for _, s := range []struct {
			name string
			v    *string
		}{{"UPI_CALLBACK_SECRET", &c.UPISecret}, {"RAZORPAY_WEBHOOK_SECRET", &c.RazorpaySecret}, {"STRIPE_WEBHOOK_SECRET", &c.StripeSecret}} {
			if *s.v == "" {
				*s.v = randomSecret()
				gen = append(gen, s.name)
			}
		}
	}
	return c, gen, nil
}

// securityDefaults validates and fills in the limits and the origin lists.
func (c *Config) securityDefaults() error {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.OrderTokenTTL, 24*time.Hour)
	def(&c.IdleTimeout, 60*time.Second)
	def(&c.BodyReadTimeout, 10*time.Second)
	if c.OrderTokenTTL < 0 || c.IdleTimeout < 0 || c.BodyReadTimeout < 0 {
		return fmt.Errorf("%w: negative timeout", ErrConfig)
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defInt(&c.MaxHeaderBytes, DefaultMaxHeaderBytes)
	defInt(&c.MaxConnections, 30_000)
	defInt(&c.MaxSessions, 20_000)
	if c.MaxHeaderBytes < 0 || c.MaxConnections < 0 || c.MaxSessions < 0 {
		return fmt.Errorf("%w: negative limit", ErrConfig)
	}
	defRate := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	defRate(&c.HandshakeRatePerIP, 20)
	defRate(&c.AnonRatePerIP, 50)
	defRate(&c.OrderRatePerIP, 2)
	if c.FrameAncestors == "" {
		c.FrameAncestors = "'none'"
	}
	if strings.ContainsAny(c.FrameAncestors, ";,\r\n") {
		return fmt.Errorf("%w: FRAME_ANCESTORS must be a CSP source list, not %q", ErrConfig, c.FrameAncestors)
	}
	c.APIOrigins = append([]string(nil), c.APIOrigins...) // normalised in place below
	for i, o := range c.APIOrigins {
		n, err := normalizeOrigin(o)
		if err != nil {
			return fmt.Errorf("API_ORIGINS: %w", err)
		}
		c.APIOrigins[i] = n
	}
	if _, err := parseCIDRs(c.TrustedProxies); err != nil {
		return fmt.Errorf("%w: TRUSTED_PROXIES entry %q is neither an address nor a CIDR range", ErrConfig, err.Error())
	}
	for _, s := range c.PreviousOrderTokenSecrets {
		if s == "" {
			return fmt.Errorf("%w: empty previous order token secret", ErrConfig)
		}
	}
	return nil
}

// lifecycleDefaults validates the order lifecycle settings and fills in
// their defaults.
func (c *Config) lifecycleDefaults() error {
	window, err := payment.Window{TTL: c.OrderTTL, Min: c.OrderTTLMin, Max: c.OrderTTLMax}.Validate()
	if err != nil {
		return fmt.Errorf("%w: ORDER_TTL_SECONDS, ORDER_TTL_MIN_SECONDS, ORDER_TTL_MAX_SECONDS: %v", ErrConfig, err)
	}
	c.OrderTTL, c.OrderTTLMin, c.OrderTTLMax = window.TTL, window.Min, window.Max
	if c.ExpirySweepEvery == 0 {
		c.ExpirySweepEvery = payment.DefaultSweepEvery
	}
	if c.ExpiryBatch == 0 {
		c.ExpiryBatch = payment.DefaultSweepBatch
	}
	if c.ExpiryBatch < 0 || c.ExpiryBatch > 10000 {
		return fmt.Errorf("%w: ORDER_EXPIRY_BATCH must be 1 to 10000, not %d", ErrConfig, c.ExpiryBatch)
	}
	switch {
	case c.OrderRetention == 0:
		c.OrderRetention = payment.DefaultRetention
	case c.OrderRetention < 0:
		c.OrderRetention = -1
	}
	// The purge walks orders by creation time and expects every order it
	// passes to have ended, which holds once the longest window is over.
	if c.OrderRetention > 0 && c.OrderRetention <= c.OrderTTLMax {
		return fmt.Errorf("%w: ORDER_RETENTION (%s) must be longer than ORDER_TTL_MAX_SECONDS (%s)", ErrConfig, c.OrderRetention, c.OrderTTLMax)
	}
	if c.OrdersMaxPerHour < 0 {
		return fmt.Errorf("%w: ORDERS_MAX_PER_HOUR must be 0 (no cap) or more, not %d", ErrConfig, c.OrdersMaxPerHour)
	}
	return nil
}

// Production reports whether the server runs in production mode.
func (c Config) Production() bool { return c.Env == EnvProduction }

func randomSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// eitherOf fills an empty *value with def, and refuses anything but def or
// alt with an error naming the variable.
func eitherOf(value *string, name, def, alt string) error {
	switch *value {
	case "":
		*value = def
	case def, alt:
	default:
		return fmt.Errorf("%w: %s must be %s or %s, not %q", ErrConfig, name, def, alt, *value)
	}
	return nil
}
