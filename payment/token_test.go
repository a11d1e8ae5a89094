package payment

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func mustTokens(t testing.TB, secret string) *Tokens {
	t.Helper()
	tk, err := NewTokens([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestNewTokensRejectsEmptySecret(t *testing.T) {
	for _, secret := range [][]byte{nil, {}} {
		if _, err := NewTokens(secret); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("NewTokens(%q) error = %v, want ErrInvalidToken", secret, err)
		}
	}
}

// fixedClock is a settable clock for tokens.
type fixedClock struct{ t time.Time }

func (c *fixedClock) now() time.Time { return c.t }

func clockTokens(t testing.TB, clock *fixedClock, secret string, previous ...string) *Tokens {
	t.Helper()
	cfg := TokenConfig{Secret: []byte(secret), TTL: time.Hour, Now: clock.now}
	for _, p := range previous {
		cfg.Previous = append(cfg.Previous, []byte(p))
	}
	tk, err := NewTokenSet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestTokenIssueFormat(t *testing.T) {
	clock := &fixedClock{time.Unix(1_800_000_000, 0)}
	a := clockTokens(t, clock, "secret-a")
	tok := a.Issue("ord_1")
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[0] != a.KeyID() || len(parts[0]) != 8 {
		t.Fatalf("token %q is not <8-hex key id>.<expiry>.<mac>", tok)
	}
	if exp, err := strconv.ParseInt(parts[1], 36, 64); err != nil || exp != 1_800_000_000+3600 {
		t.Fatalf("expiry %q = %d, %v; want issue time + TTL", parts[1], exp, err)
	}
	if a.Issue("ord_1") != tok {
		t.Fatal("the same order at the same instant got two different tokens")
	}
	if a.Issue("ord_2") == tok {
		t.Fatal("two orders share a token")
	}
	if clockTokens(t, clock, "secret-b").Issue("ord_1") == tok {
		t.Fatal("the token does not depend on the secret")
	}
	if len(tok) > maxTokenLen {
		t.Fatalf("token of %d bytes exceeds the verified maximum", len(tok))
	}
}

func TestTokenExpiry(t *testing.T) {
	clock := &fixedClock{time.Unix(1_800_000_000, 0)}
	tk := clockTokens(t, clock, "secret")
	tok := tk.Issue("ord_1")
	clock.t = clock.t.Add(time.Hour - time.Second)
	if err := tk.Verify("ord_1", tok); err != nil {
		t.Fatalf("token refused before it expired: %v", err)
	}
	clock.t = clock.t.Add(time.Second)
	if err := tk.Verify("ord_1", tok); !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: error %v, want ErrInvalidToken (expired)", err)
	}
	// A token whose expiry was pushed forward by hand fails its MAC.
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + strconv.FormatInt(clock.t.Add(time.Hour).Unix(), 36) + "." + parts[2]
	if err := tk.Verify("ord_1", forged); !errors.Is(err, ErrInvalidToken) || strings.Contains(err.Error(), "expired") {
		t.Fatalf("forged expiry: error %v, want a MAC failure", err)
	}
}

func TestTokenRotation(t *testing.T) {
	clock := &fixedClock{time.Unix(1_800_000_000, 0)}
	old := clockTokens(t, clock, "old-secret")
	handedOut := old.Issue("ord_1")
	rotated := clockTokens(t, clock, "new-secret", "old-secret")
	if err := rotated.Verify("ord_1", handedOut); err != nil {
		t.Fatalf("a token issued before the rotation is refused: %v", err)
	}
	fresh := rotated.Issue("ord_1")
	if !strings.HasPrefix(fresh, rotated.KeyID()+".") || rotated.KeyID() == old.KeyID() {
		t.Fatalf("new token %q is not signed by the new key %s", fresh, rotated.KeyID())
	}
	if err := old.Verify("ord_1", fresh); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("a node without the new secret accepted its token: %v", err)
	}
	retired := clockTokens(t, clock, "new-secret")
	if err := retired.Verify("ord_1", handedOut); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("a retired secret's token still verifies: %v", err)
	}
}

func TestTokenSecretIsCopied(t *testing.T) {
	secret := []byte("mutable-secret")
	tk, err := NewTokens(secret)
	if err != nil {
		t.Fatal(err)
	}
	before := tk.Issue("ord_1")
	copy(secret, "XXXXXXXXXXXXXX")
	if tk.Issue("ord_1") != before {
		t.Fatal("changing the caller's slice changed the tokens")
	}
}

func TestTokenVerify(t *testing.T) {
	tk := mustTokens(t, "server-secret")
	good := tk.Issue("ord_1")
	tests := []struct {
		name    string
		orderID string
		token   string
		ok      bool
	}{
		{"right token", "ord_1", good, true},
		{"missing", "ord_1", "", false},
		{"other order's token", "ord_1", tk.Issue("ord_2"), false},
		{"other secret", "ord_1", mustTokens(t, "other-secret").Issue("ord_1"), false},
		{"one char changed", "ord_1", good[:len(good)-1] + string("AB"[boolInt(good[len(good)-1] == 'A')]), false},
		{"truncated", "ord_1", good[:32], false},
		{"legacy hex token", "ord_1", strings.Repeat("ab", 32), false},
		{"unknown key id", "ord_1", "00000000" + good[8:], false},
		{"too long", "ord_1", good + strings.Repeat("A", maxTokenLen), false},
		{"extended", "ord_1", good + "00", false},
		{"upper case", "ord_1", strings.ToUpper(good), false},
		{"padded", "ord_1", " " + good, false},
		{"token for empty id", "", tk.Issue(""), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tk.Verify(tt.orderID, tt.token)
			if tt.ok && err != nil {
				t.Fatalf("Verify refused a good token: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify error = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func BenchmarkTokenVerify(b *testing.B) {
	tk := mustTokens(b, "bench-secret")
	tok := tk.Issue("ord_benchmark0000001")
	b.ReportAllocs()
	for b.Loop() {
		if err := tk.Verify("ord_benchmark0000001", tok); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzTokenVerify: no input panics, and nothing but the issued token for
// the order verifies.
func FuzzTokenVerify(f *testing.F) {
	clock := &fixedClock{time.Unix(1_800_000_000, 0)}
	tk := clockTokens(f, clock, "fuzz-secret")
	good := tk.Issue("ord_1")
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add("..")
	f.Add(tk.KeyID() + ".zzzzzzzzzzzzz." + strings.Repeat("A", 43))
	f.Fuzz(func(t *testing.T, token string) {
		err := tk.Verify("ord_1", token)
		if (err == nil) != (token == good) {
			t.Fatalf("Verify(%q) = %v", token, err)
		}
	})
}
