package server

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// envOf turns a map into a getenv function.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// effectiveConfig runs FromEnv and withDefaults, as New does.
func effectiveConfig(env map[string]string) (Config, Generated, error) {
	c, err := FromEnv(envOf(env))
	if err != nil {
		return c, nil, err
	}
	return c.withDefaults()
}

func TestConfigDefaults(t *testing.T) {
	c, gen, err := effectiveConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Env", c.Env, EnvDevelopment},
		{"Port", c.Port, 3000},
		{"Addr", c.Addr, ":3000"},
		{"DatabaseURL", c.DatabaseURL, "data/paystatus.db"},
		{"LogLevel", c.LogLevel, "info"},
		{"RoomAuth", c.RoomAuth, "token"},
		{"RolloutPercent", c.RolloutPercent, 100},
		{"StripeTolerance", c.StripeTolerance, 300 * time.Second},
		{"LongPollMax", c.LongPollMax, 30 * time.Second},
		{"BodyLimit", c.BodyLimit, int64(64 << 10)},
		{"ShutdownTimeout", c.ShutdownTimeout, 15 * time.Second},
		{"StaticDir", c.StaticDir, "static"},
		{"ClientDir", c.ClientDir, "node_modules/socket.io-client/dist"},
		{"RedisAdapter", c.RedisAdapter, "pubsub"},
		{"AdminToken", c.AdminToken, ""},
		{"Production", c.Production(), false},
	}
	for _, chk := range checks {
		if chk.got != chk.want {
			t.Errorf("%s = %v, want %v", chk.name, chk.got, chk.want)
		}
	}
	// Development generates every missing secret, each one different.
	if strings.Join(gen, ",") != "ORDER_TOKEN_SECRET,UPI_CALLBACK_SECRET,RAZORPAY_WEBHOOK_SECRET,STRIPE_WEBHOOK_SECRET" {
		t.Errorf("generated %v", gen)
	}
	seen := map[string]bool{}
	for _, s := range []string{c.OrderTokenSecret, c.UPISecret, c.RazorpaySecret, c.StripeSecret} {
		if len(s) != 64 || seen[s] {
			t.Errorf("generated secret %q is short or repeated", s)
		}
		seen[s] = true
	}
	c2, _, _ := effectiveConfig(nil)
	if c2.OrderTokenSecret == c.OrderTokenSecret {
		t.Error("two development starts generated the same secret")
	}
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(Config) bool
	}{
		{"port", map[string]string{"PORT": " 8080 "}, func(c Config) bool { return c.Port == 8080 && c.Addr == ":8080" }},
		{"production with secret", map[string]string{"APP_ENV": "production", "ORDER_TOKEN_SECRET": "s"}, func(c Config) bool {
			// Production never invents gateway secrets: a missing one disables its endpoint.
			return c.Production() && c.OrderTokenSecret == "s" && c.UPISecret == "" && c.StripeSecret == "" && c.RazorpaySecret == ""
		}},
		{"log level any case", map[string]string{"LOG_LEVEL": "DEBUG"}, func(c Config) bool { return c.LogLevel == "debug" }},
		{"room auth order", map[string]string{"ROOM_AUTH": "order"}, func(c Config) bool { return c.RoomAuth == "order" }},
		{"rollout 0", map[string]string{"REALTIME_ROLLOUT_PERCENT": "0"}, func(c Config) bool { return c.RolloutPercent == 0 }},
		{"rollout 0 with spaces", map[string]string{"REALTIME_ROLLOUT_PERCENT": " 0 "}, func(c Config) bool { return c.RolloutPercent == 0 }},
		{"rollout 00", map[string]string{"REALTIME_ROLLOUT_PERCENT": "00"}, func(c Config) bool { return c.RolloutPercent == 0 }},
		{"rollout 37", map[string]string{"REALTIME_ROLLOUT_PERCENT": "37"}, func(c Config) bool { return c.RolloutPercent == 37 }},
		{"rollout 100", map[string]string{"REALTIME_ROLLOUT_PERCENT": "100"}, func(c Config) bool { return c.RolloutPercent == 100 }},
		{"cors list", map[string]string{"CORS_ORIGINS": " https://a.example , ,https://b.example"}, func(c Config) bool {
			return strings.Join(c.CORSOrigins, "|") == "https://a.example|https://b.example"
		}},
		{"fractional seconds", map[string]string{"ACK_TIMEOUT_SECONDS": "1.5", "STRIPE_TOLERANCE_SECONDS": "60"}, func(c Config) bool {
			return c.AckTimeout == 1500*time.Millisecond && c.StripeTolerance == time.Minute
		}},
		{"ack retries", map[string]string{"ACK_RETRIES": "7"}, func(c Config) bool { return c.AckRetries == 7 }},
		{"tls both set", map[string]string{"TLS_CERT_FILE": "c.pem", "TLS_KEY_FILE": "k.pem"}, func(c Config) bool { return c.TLSCertFile == "c.pem" }},
		{"redis streams", map[string]string{"REDIS_ADAPTER": "streams"}, func(c Config) bool { return c.RedisAdapter == "streams" }},
		{"group commit by default", map[string]string{}, func(c Config) bool {
			return c.GroupCommit == "auto" && c.GroupCommitMax == 64 && c.GroupCommitWait == 0
		}},
		{"group commit set", map[string]string{"DB_GROUP_COMMIT": " OFF ", "DB_GROUP_COMMIT_MAX": "8", "DB_GROUP_COMMIT_WAIT_US": "250"}, func(c Config) bool {
			return c.GroupCommit == "off" && c.GroupCommitMax == 8 && c.GroupCommitWait == 250*time.Microsecond
		}},
		{"limits by default", map[string]string{}, func(c Config) bool {
			return c.IdleTimeout == 60*time.Second && c.BodyReadTimeout == 10*time.Second && c.MaxHeaderBytes == 16<<10 &&
				c.MaxConnections == 30000 && c.MaxSessions == 20000 && c.HandshakeRatePerIP == 20 && c.AnonRatePerIP == 50 &&
				c.OrderRatePerIP == 2 && c.OrderTokenTTL == 24*time.Hour && c.FrameAncestors == "'none'" && c.MetricsAddr == ""
		}},
		{"limits set", map[string]string{"IDLE_TIMEOUT_SECONDS": "5", "BODY_READ_TIMEOUT_SECONDS": "1.5", "MAX_HEADER_BYTES": "8192",
			"MAX_CONNECTIONS": "100", "MAX_SESSIONS": "50", "HANDSHAKE_RATE_PER_IP": "off", "ANON_RATE_PER_IP": "0.5", "ORDER_RATE_PER_IP": "OFF",
			"ORDER_TOKEN_TTL_SECONDS": "600", "METRICS_ADDR": "127.0.0.1:9100"}, func(c Config) bool {
			return c.IdleTimeout == 5*time.Second && c.BodyReadTimeout == 1500*time.Millisecond && c.MaxHeaderBytes == 8192 &&
				c.MaxConnections == 100 && c.MaxSessions == 50 && c.HandshakeRatePerIP == -1 && c.AnonRatePerIP == 0.5 &&
				c.OrderRatePerIP == -1 && c.OrderTokenTTL == 10*time.Minute && c.MetricsAddr == "127.0.0.1:9100"
		}},
		{"origins and proxies", map[string]string{"API_ORIGINS": "https://API.example.com/, http://localhost:8080", "FRAME_ANCESTORS": "https://shop.example.com",
			"TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1, ::1", "MERCHANT_API_KEY": "mk", "ORDER_TOKEN_PREVIOUS_SECRETS": "old1,old2"}, func(c Config) bool {
			return strings.Join(c.APIOrigins, " ") == "https://api.example.com http://localhost:8080" && c.FrameAncestors == "https://shop.example.com" &&
				len(c.TrustedProxies) == 3 && c.MerchantAPIKey == "mk" && strings.Join(c.PreviousOrderTokenSecrets, " ") == "old1 old2"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := effectiveConfig(tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

func TestConfigInvalid(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		message string // part of the error a human reads
	}{
		{"port not a number", map[string]string{"PORT": "http"}, `PORT="http"`},
		{"port too large", map[string]string{"PORT": "70000"}, "PORT 70000 out of range"},
		{"port negative", map[string]string{"PORT": "-1"}, "PORT -1 out of range"},
		{"unknown environment", map[string]string{"APP_ENV": "staging"}, "APP_ENV must be development or production"},
		{"environment case", map[string]string{"APP_ENV": "Production"}, "APP_ENV must be development or production"},
		{"log level", map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL must be"},
		{"room auth", map[string]string{"ROOM_AUTH": "none"}, "ROOM_AUTH must be token or order"},
		{"rollout over 100", map[string]string{"REALTIME_ROLLOUT_PERCENT": "101"}, "REALTIME_ROLLOUT_PERCENT must be 0 to 100"},
		{"rollout negative", map[string]string{"REALTIME_ROLLOUT_PERCENT": "-5"}, "REALTIME_ROLLOUT_PERCENT must be 0 to 100"},
		{"rollout minus one", map[string]string{"REALTIME_ROLLOUT_PERCENT": "-1"}, "REALTIME_ROLLOUT_PERCENT must be 0 to 100"},
		{"rollout not a number", map[string]string{"REALTIME_ROLLOUT_PERCENT": "half"}, "REALTIME_ROLLOUT_PERCENT"},
		{"tls cert only", map[string]string{"TLS_CERT_FILE": "c.pem"}, "TLS_CERT_FILE and TLS_KEY_FILE must be set together"},
		{"tls key only", map[string]string{"TLS_KEY_FILE": "k.pem"}, "TLS_CERT_FILE and TLS_KEY_FILE must be set together"},
		{"production without order secret", map[string]string{"APP_ENV": "production"}, "ORDER_TOKEN_SECRET is required when APP_ENV=production"},
		{"redis adapter", map[string]string{"REDIS_ADAPTER": "kafka"}, "REDIS_ADAPTER must be pubsub or streams"},
		{"ack retries not a number", map[string]string{"ACK_RETRIES": "x"}, "ACK_RETRIES"},
		{"group commit mode", map[string]string{"DB_GROUP_COMMIT": "sometimes"}, "DB_GROUP_COMMIT must be auto, on or off"},
		{"group commit max negative", map[string]string{"DB_GROUP_COMMIT_MAX": "-1"}, "DB_GROUP_COMMIT_MAX must be 1 to 4096"},
		{"group commit max too large", map[string]string{"DB_GROUP_COMMIT_MAX": "5000"}, "DB_GROUP_COMMIT_MAX must be 1 to 4096"},
		{"group commit wait too long", map[string]string{"DB_GROUP_COMMIT_WAIT_US": "10001"}, "DB_GROUP_COMMIT_WAIT_US must be 0 to 10000"},
		{"group commit wait overflows", map[string]string{"DB_GROUP_COMMIT_WAIT_US": "9223372036854775807"}, "DB_GROUP_COMMIT_WAIT_US must be 0 to 10000"},
		{"group commit wait negative", map[string]string{"DB_GROUP_COMMIT_WAIT_US": "-1"}, "DB_GROUP_COMMIT_WAIT_US must be 0 to 10000"},
		{"ack timeout zero", map[string]string{"ACK_TIMEOUT_SECONDS": "0"}, "ACK_TIMEOUT_SECONDS"},
		{"ack timeout negative", map[string]string{"ACK_TIMEOUT_SECONDS": "-2"}, "ACK_TIMEOUT_SECONDS"},
		{"ack timeout NaN", map[string]string{"ACK_TIMEOUT_SECONDS": "NaN"}, "ACK_TIMEOUT_SECONDS"},
		{"ack timeout infinite", map[string]string{"ACK_TIMEOUT_SECONDS": "Inf"}, "ACK_TIMEOUT_SECONDS"},
		{"stripe tolerance overflows", map[string]string{"STRIPE_TOLERANCE_SECONDS": "1e300"}, "STRIPE_TOLERANCE_SECONDS"},
		{"rate not a number", map[string]string{"ANON_RATE_PER_IP": "many"}, "ANON_RATE_PER_IP"},
		{"rate negative", map[string]string{"HANDSHAKE_RATE_PER_IP": "-3"}, "HANDSHAKE_RATE_PER_IP"},
		{"rate infinite", map[string]string{"ORDER_RATE_PER_IP": "Inf"}, "ORDER_RATE_PER_IP"},
		{"connections negative", map[string]string{"MAX_CONNECTIONS": "-1"}, "MAX_CONNECTIONS must be positive"},
		{"sessions not a number", map[string]string{"MAX_SESSIONS": "lots"}, "MAX_SESSIONS"},
		{"header bytes negative", map[string]string{"MAX_HEADER_BYTES": "-10"}, "MAX_HEADER_BYTES"},
		{"idle timeout zero", map[string]string{"IDLE_TIMEOUT_SECONDS": "0"}, "IDLE_TIMEOUT_SECONDS"},
		{"token TTL negative", map[string]string{"ORDER_TOKEN_TTL_SECONDS": "-60"}, "ORDER_TOKEN_TTL_SECONDS"},
		{"API origin with a path", map[string]string{"API_ORIGINS": "https://api.example.com/pay"}, "API_ORIGINS"},
		{"API origin without scheme", map[string]string{"API_ORIGINS": "api.example.com"}, "API_ORIGINS"},
		{"API origin javascript", map[string]string{"API_ORIGINS": "javascript:alert(1)"}, "API_ORIGINS"},
		{"frame ancestors with a directive", map[string]string{"FRAME_ANCESTORS": "'self'; script-src *"}, "FRAME_ANCESTORS"},
		{"trusted proxy not an address", map[string]string{"TRUSTED_PROXIES": "proxy.local"}, "TRUSTED_PROXIES"},
		{"trusted proxy bad range", map[string]string{"TRUSTED_PROXIES": "10.0.0.0/99"}, "TRUSTED_PROXIES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := effectiveConfig(tt.env)
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error = %v, want ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("error %q does not say %q", err, tt.message)
			}
		})
	}
}

// TestNewRefusesInvalidConfig checks that New reports bad settings as an
// error, before it opens anything, and never panics.
func TestNewRefusesInvalidConfig(t *testing.T) {
	db := testDatabaseURL(t)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"production without secret", Config{Env: EnvProduction, DatabaseURL: db}},
		{"bad environment", Config{Env: "test", DatabaseURL: db}},
		{"bad port", Config{Port: 1 << 20, DatabaseURL: db}},
		{"bad rollout", Config{RolloutPercent: 250, DatabaseURL: db}},
		{"half TLS", Config{TLSKeyFile: "k.pem", DatabaseURL: db}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("New panicked: %v", r)
				}
			}()
			srv, err := New(context.Background(), tt.cfg, nil)
			if err == nil {
				_ = srv.Shutdown(context.Background())
				t.Fatal("New accepted an invalid configuration")
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error = %v, want ErrConfig", err)
			}
		})
	}
}
