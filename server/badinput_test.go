package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"paystatus/payment"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// ordersMentioning counts stored orders whose description contains marker,
// read over a connection of its own. Counting by marker rather than all
// rows keeps the check exact on a Postgres database shared with other tests.
func ordersMentioning(t *testing.T, ts *testServer, marker string) int64 {
	t.Helper()
	url := ts.Config().DatabaseURL
	var dialector gorm.Dialector
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		dialector = postgres.Open(url)
	} else {
		dialector = sqlite.Open("file:" + url + "?_busy_timeout=10000")
	}
	db, err := gorm.Open(dialector, &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if sqlDB, err := db.DB(); err == nil {
		defer sqlDB.Close()
	}
	var n int64
	if err := db.Table("orders").Where("description LIKE ?", "%"+marker+"%").Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

type badInput struct {
	name    string
	body    string
	code    int
	message string // part of the error message
}

func TestCreateOrderBadInput(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.BodyLimit = 4 << 10 })
	// Unique per run, since a Postgres test database keeps earlier runs' rows.
	m := fmt.Sprintf("bad-input-%d", time.Now().UnixNano())
	tests := []badInput{
		{"malformed JSON", `{"amount": 100, "description": "` + m + `"`, 400, "malformed JSON"},
		{"unquoted key", `{amount: 100, "description": "` + m + `"}`, 400, "malformed JSON"},
		{"amount as string", `{"amount": "100", "description": "` + m + `"}`, 400, `field "amount" has the wrong type`},
		{"fractional amount", `{"amount": 10.5, "description": "` + m + `"}`, 400, `field "amount" has the wrong type`},
		{"exponent amount", `{"amount": 1e2, "description": "` + m + `"}`, 400, `field "amount" has the wrong type`},
		{"boolean amount", `{"amount": true, "description": "` + m + `"}`, 400, `field "amount" has the wrong type`},
		{"negative amount", `{"amount": -100, "description": "` + m + `"}`, 400, "amount must be a positive integer"},
		{"zero amount", `{"amount": 0, "description": "` + m + `"}`, 400, "amount must be a positive integer"},
		{"amount past the limit", fmt.Sprintf(`{"amount": %d, "description": "%s"}`, payment.MaxAmount+1, m), 400, "amount must be a positive integer"},
		{"amount past int64", `{"amount": 9223372036854775808, "description": "` + m + `"}`, 400, `field "amount" has the wrong type`},
		{"huge amount", `{"amount": 1e400, "description": "` + m + `"}`, 400, "amount"},
		{"missing amount", `{"currency": "INR", "description": "` + m + `"}`, 400, "amount is required"},
		{"null amount", `{"amount": null, "description": "` + m + `"}`, 400, "amount is required"},
		{"two-letter currency", `{"amount": 100, "currency": "IN", "description": "` + m + `"}`, 400, "currency must be a three-letter"},
		{"currency with symbol", `{"amount": 100, "currency": "US$", "description": "` + m + `"}`, 400, "currency must be a three-letter"},
		{"currency as number", `{"amount": 100, "currency": 356, "description": "` + m + `"}`, 400, `field "currency" has the wrong type`},
		{"description as number", `{"amount": 100, "description": 5, "x": "` + m + `"}`, 400, `field "description" has the wrong type`},
		{"description too long", `{"amount": 100, "description": "` + m + strings.Repeat("d", 500) + `"}`, 400, "description longer than 500"},
		{"body over the limit", `{"amount": 100, "description": "` + m + strings.Repeat("d", 5000) + `"}`, 413, "request body larger than 4096 bytes"},
		{"trailing garbage", `{"amount": 100, "description": "` + m + `"} x`, 400, "trailing data"},
		{"trailing brace", `{"amount": 100, "description": "` + m + `"}}`, 400, "trailing data"},
		{"trailing bracket", `{"amount": 100, "description": "` + m + `"}]`, 400, "trailing data"},
		{"two objects", `{"amount": 100, "description": "` + m + `"}{"amount": 1}`, 400, "trailing data"},
		{"array", `[{"amount": 100, "description": "` + m + `"}]`, 400, "must be a JSON object"},
		{"string", `"` + m + `"`, 400, "must be a JSON object"},
		{"number", `100`, 400, "must be a JSON object"},
		{"null", `null`, 400, "must be a JSON object"},
		{"empty body", ``, 400, "must be a JSON object"},
		{"whitespace body", " \n\t", 400, "must be a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := ts.do(t, newRequest(http.MethodPost, "/api/orders").raw([]byte(tt.body)))
			checkRefusal(t, res, tt)
		})
	}
	if n := ordersMentioning(t, ts, m); n != 0 {
		t.Fatalf("bad requests stored %d orders", n)
	}
	// The check itself can see an order that was stored.
	ts.do(t, newRequest(http.MethodPost, "/api/orders").json(map[string]any{"amount": 1, "description": m}))
	if n := ordersMentioning(t, ts, m); n != 1 {
		t.Fatalf("counted %d orders after storing one", n)
	}
}

func checkRefusal(t *testing.T, res response, tt badInput) {
	t.Helper()
	if res.Status != tt.code {
		t.Fatalf("status %d, want %d: %s", res.Status, tt.code, res.Body)
	}
	msg, _ := res.JSON["error"].(string)
	if !strings.Contains(msg, tt.message) {
		t.Fatalf("error %q does not say %q", msg, tt.message)
	}
}

// orderSnapshot is what must not change when a request is refused.
func orderSnapshot(t *testing.T, ts *testServer, id string) string {
	t.Helper()
	o, events := ts.orderState(t, id)
	return fmt.Sprintf("%s seq=%d desc=%q meta=%q pay=%q events=%d", o.Status, o.Seq, o.Description, o.Metadata, o.PaymentID, len(events))
}

func TestCompleteBadInput(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.BodyLimit = 1 << 10 })
	id, _ := ts.createOrder(t, 100, "INR")
	before := orderSnapshot(t, ts, id)
	tests := []badInput{
		{"malformed JSON", `{"status": "completed"`, 400, "malformed JSON"},
		{"status as number", `{"status": 1}`, 400, `field "status" has the wrong type`},
		{"unknown status", `{"status": "paid"}`, 400, `status must be "completed" or "failed"`},
		{"trailing garbage", `{"status": "completed"} 1`, 400, "trailing data"},
		{"trailing brace", `{"status": "completed"}}`, 400, "trailing data"},
		{"array", `["completed"]`, 400, "must be a JSON object"},
		{"null", `null`, 400, "must be a JSON object"},
		{"body over the limit", `{"paymentId": "` + strings.Repeat("p", 2000) + `"}`, 413, "request body larger than 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := ts.do(t, newRequest(http.MethodPost, "/api/payment/"+id+"/complete").admin().raw([]byte(tt.body)))
			checkRefusal(t, res, tt)
		})
	}
	for _, badID := range []string{"ord_doesnotexist", strings.Repeat("a", 65), strings.Repeat("a", 5000), "ord%20x", "ord%2F..", "%00"} {
		t.Run("order id "+badID[:min(len(badID), 20)], func(t *testing.T) {
			res := ts.do(t, newRequest(http.MethodPost, "/api/payment/"+badID+"/complete").admin())
			checkRefusal(t, res, badInput{code: 404, message: "order not found"})
		})
	}
	if after := orderSnapshot(t, ts, id); after != before {
		t.Fatalf("refused requests changed the order:\n%s\n%s", before, after)
	}
}

func TestPatchOrderBadInput(t *testing.T) {
	ts := newTestServer(t)
	id, _ := ts.createOrder(t, 100, "INR")
	before := orderSnapshot(t, ts, id)
	tests := []badInput{
		{"malformed JSON", `{"description": `, 400, "malformed JSON"},
		{"nothing to change", `{}`, 400, "nothing to change"},
		{"only unknown fields", `{"amount": 5}`, 400, "nothing to change"},
		{"description as number", `{"description": 5}`, 400, `field "description" has the wrong type`},
		{"description too long", `{"description": "` + strings.Repeat("d", 501) + `"}`, 400, "description longer than 500"},
		{"metadata array", `{"metadata": [1, 2]}`, 400, "metadata must be a JSON object"},
		{"metadata string", `{"metadata": "x"}`, 400, "metadata must be a JSON object"},
		{"metadata number", `{"metadata": 3}`, 400, "metadata must be a JSON object"},
		{"metadata too large", `{"metadata": {"k": "` + strings.Repeat("m", 9000) + `"}}`, 400, "metadata larger than"},
		{"trailing garbage", `{"description": "x"} ,`, 400, "trailing data"},
		{"non-object body", `"x"`, 400, "must be a JSON object"},
		{"empty body", ``, 400, "must be a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := ts.do(t, newRequest(http.MethodPatch, "/api/orders/"+id).admin().raw([]byte(tt.body)))
			checkRefusal(t, res, tt)
		})
	}
	for _, badID := range []string{"ord_doesnotexist", strings.Repeat("a", 65), "a%20b"} {
		res := ts.do(t, newRequest(http.MethodPatch, "/api/orders/"+badID).admin().json(map[string]any{"description": "x"}))
		checkRefusal(t, res, badInput{code: 404, message: "order not found"})
	}
	if after := orderSnapshot(t, ts, id); after != before {
		t.Fatalf("refused requests changed the order:\n%s\n%s", before, after)
	}
}

func TestPaymentStatusBadInput(t *testing.T) {
	ts := newTestServer(t)
	id, token := ts.createOrder(t, 100, "INR")
	tokens, err := payment.NewTokens([]byte(ts.Config().OrderTokenSecret))
	if err != nil {
		t.Fatal(err)
	}
	base := "/api/payment/status/" + id + "?token=" + token
	tests := []struct {
		name string
		path string
		badInput
	}{
		{"negative since", base + "&since=-1&wait=1", badInput{code: 400, message: "since must be a non-negative integer"}},
		{"word since", base + "&since=abc", badInput{code: 400, message: "since must be a non-negative integer"}},
		{"fractional since", base + "&since=1.5", badInput{code: 400, message: "since must be a non-negative integer"}},
		{"since past int64", base + "&since=99999999999999999999", badInput{code: 400, message: "since must be a non-negative integer"}},
		{"word wait", base + "&since=0&wait=soon", badInput{code: 400, message: "wait must be a non-negative number"}},
		{"negative wait", base + "&since=0&wait=-1", badInput{code: 400, message: "wait must be a non-negative number"}},
		{"NaN wait", base + "&since=0&wait=NaN", badInput{code: 400, message: "wait must be a non-negative number"}},
		{"infinite wait", base + "&since=0&wait=Inf", badInput{code: 400, message: "wait must be a non-negative number"}},
		// A well-formed id that was never created, with the token the server would issue for it.
		{"unknown order", "/api/payment/status/ord_nosuchorder?token=" + tokens.Issue("ord_nosuchorder"), badInput{code: 404, message: "order not found"}},
		{"oversized id", "/api/payment/status/" + strings.Repeat("a", 65) + "?token=" + token, badInput{code: 404, message: "order not found"}},
		{"very long id", "/api/payment/status/" + strings.Repeat("a", 4000), badInput{code: 404, message: "order not found"}},
		{"id with space", "/api/payment/status/ord%20x", badInput{code: 404, message: "order not found"}},
		{"id with quote", "/api/payment/status/ord'--", badInput{code: 404, message: "order not found"}},
		{"id with encoded slash", "/api/payment/status/..%2F..%2Fetc", badInput{code: 404, message: "order not found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRefusal(t, ts.do(t, newRequest(http.MethodGet, tt.path)), tt.badInput)
		})
	}
}

func TestUnknownAPIPathIsNotFound(t *testing.T) {
	ts := newTestServer(t)
	for _, path := range []string{"/api/nope", "/api/orders/x/unknown", "/api/dev/nothing"} {
		res := ts.do(t, newRequest(http.MethodGet, path))
		if res.Status != http.StatusNotFound {
			t.Fatalf("GET %s: %d %s", path, res.Status, res.Body)
		}
	}
}
