package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkUPICallback measures the whole callback path in process: signature
// check, parse, one transaction and the broadcast to an empty room.
func BenchmarkUPICallback(b *testing.B) {
	// The benchmark's servers log at warn, as bench/run.sh runs them.
	ts := newTestServerLogging(b, slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ids := make([]string, b.N)
	for i := range ids {
		ids[i], _ = ts.createOrder(b, 49900, "INR")
	}
	handler := ts.Handler()
	// net/http gives every request a context that ends with its connection;
	// httptest's never ends, which would hide the cost of cancellation.
	reqCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body, _ := json.Marshal(map[string]any{"orderId": ids[i], "txnId": "txn_" + ids[i], "status": "SUCCESS", "amount": 49900, "vpa": "buyer@upi"})
		mac := hmac.New(sha256.New, []byte("test-upi-secret"))
		mac.Write(body)
		req := httptest.NewRequest(http.MethodPost, "/api/payment/upi/callback", bytes.NewReader(body)).WithContext(reqCtx)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Signature", hex.EncodeToString(mac.Sum(nil)))
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("callback: %d %s", rec.Code, rec.Body)
		}
	}
}
