package payment

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Tokens issues and checks order access tokens: an HMAC of the order id under
// a server secret, so no token table is needed and any node can verify.
type Tokens struct {
	secret []byte
}

// NewTokens returns a token issuer; the secret must not be empty.
func NewTokens(secret []byte) (*Tokens, error) {
	if len(secret) == 0 {
		return nil, fmt.Errorf("%w: empty order token secret", ErrInvalidToken)
	}
	return &Tokens{secret: append([]byte(nil), secret...)}, nil
}

// Issue returns the token for an order id.
func (t *Tokens) Issue(orderID string) string {
	mac := hmac.New(sha256.New, t.secret)
	mac.Write([]byte(orderID))
	return hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a token in constant time.
func (t *Tokens) Verify(orderID, token string) error {
	if token == "" {
		return fmt.Errorf("%w: missing", ErrInvalidToken)
	}
	if !hmac.Equal([]byte(t.Issue(orderID)), []byte(token)) {
		return ErrInvalidToken
	}
	return nil
}
