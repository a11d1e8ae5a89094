package payment

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Tokens issues and checks order access tokens. A token is
//
//	<key id>.<expiry, Unix seconds in base 36>.<HMAC-SHA256, base64url>
//
// where the HMAC covers the key id, the expiry and the order id under the
// key's secret. No token table is needed and any node can verify. The key id
// names which secret signed the token, so a new secret can sign new tokens
// while the previous ones still verify the tokens already handed out.
type Tokens struct {
	current tokenKey
	keys    map[string]tokenKey // by id, current included
	ttl     time.Duration
	now     func() time.Time
}

type tokenKey struct {
	id     string
	secret []byte
}

// TokenConfig configures Tokens. Zero fields take the default named.
type TokenConfig struct {
	// Secret signs new tokens; required.
	Secret []byte
	// Previous secrets still verify tokens issued under them.
	Previous [][]byte
	// TTL is how long a token stays valid (24 h).
	TTL time.Duration
	// Now is the clock (time.Now).
	Now func() time.Time
}

// DefaultTokenTTL is a token's lifetime unless configured.
const DefaultTokenTTL = 24 * time.Hour

// NewTokens returns a token issuer with one secret and the default lifetime.
func NewTokens(secret []byte) (*Tokens, error) {
	return NewTokenSet(TokenConfig{Secret: secret})
}

// NewTokenSet returns a token issuer for cfg.
func NewTokenSet(cfg TokenConfig) (*Tokens, error) {
	if len(cfg.Secret) == 0 {
		return nil, fmt.Errorf("%w: empty order token secret", ErrInvalidToken)
	}
	if cfg.TTL < 0 {
		return nil, fmt.Errorf("%w: negative token lifetime", ErrInvalidToken)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTokenTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t := &Tokens{ttl: cfg.TTL, now: cfg.Now, keys: map[string]tokenKey{}}
	t.current = newTokenKey(cfg.Secret)
	t.keys[t.current.id] = t.current
	for _, s := range cfg.Previous {
		if len(s) == 0 {
			return nil, fmt.Errorf("%w: empty previous order token secret", ErrInvalidToken)
		}
		k := newTokenKey(s)
		if _, dup := t.keys[k.id]; !dup {
			t.keys[k.id] = k
		}
	}
	return t, nil
}

// newTokenKey derives the key id from the secret, so operators name no ids
// and every node holding the same secret agrees on it.
func newTokenKey(secret []byte) tokenKey {
	sum := sha256.Sum256(append([]byte("paystatus order token key id\x00"), secret...))
	return tokenKey{id: hex.EncodeToString(sum[:4]), secret: append([]byte(nil), secret...)}
}

// KeyID names the secret that signs new tokens.
func (t *Tokens) KeyID() string { return t.current.id }

// Issue returns a token for an order id, valid for the configured lifetime.
func (t *Tokens) Issue(orderID string) string {
	exp := strconv.FormatInt(t.now().Add(t.ttl).Unix(), 36)
	return t.current.id + "." + exp + "." + t.current.sign(exp, orderID)
}

func (k tokenKey) sign(exp, orderID string) string {
	mac := hmac.New(sha256.New, k.secret)
	mac.Write([]byte(k.id))
	mac.Write([]byte{0})
	mac.Write([]byte(exp))
	mac.Write([]byte{0})
	mac.Write([]byte(orderID))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// maxTokenLen bounds the token looked at; real ones are far shorter.
const maxTokenLen = 128

// Verify checks a token: its key is known, it has not expired, and its MAC,
// compared in constant time, is the order's.
func (t *Tokens) Verify(orderID, token string) error {
	if token == "" {
		return fmt.Errorf("%w: missing", ErrInvalidToken)
	}
	if len(token) > maxTokenLen {
		return fmt.Errorf("%w: too long", ErrInvalidToken)
	}
	kid, rest, ok1 := strings.Cut(token, ".")
	exp, mac, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 {
		return fmt.Errorf("%w: malformed", ErrInvalidToken)
	}
	key, ok := t.keys[kid]
	if !ok {
		return fmt.Errorf("%w: unknown key", ErrInvalidToken)
	}
	// The MAC is checked before the expiry is believed.
	if !hmac.Equal([]byte(key.sign(exp, orderID)), []byte(mac)) {
		return ErrInvalidToken
	}
	expires, err := strconv.ParseInt(exp, 36, 64)
	if err != nil {
		return fmt.Errorf("%w: malformed expiry", ErrInvalidToken)
	}
	if !t.now().Before(time.Unix(expires, 0)) {
		return fmt.Errorf("%w: expired", ErrInvalidToken)
	}
	return nil
}
