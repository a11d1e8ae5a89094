package server

import (
	"net/http"
	"testing"
)

func TestHealthAndReadiness(t *testing.T) {
	for _, tc := range []struct {
		name       string
		path       string
		breakIt    func(*testServer)
		wantStatus int
		wantBody   map[string]string // fields that must match exactly
		wantSet    []string          // fields that must be present, any value
	}{
		{"liveness", "/healthz", nil, http.StatusOK, map[string]string{"status": "ok"}, nil},
		{"ready with the database up", "/readyz", nil, http.StatusOK, map[string]string{"database": "ok"}, nil},
		{
			"not ready once the database is closed", "/readyz",
			func(ts *testServer) { _ = ts.store.Close() },
			http.StatusServiceUnavailable, nil, []string{"database"},
		},
		{
			"still alive with the database closed", "/healthz",
			func(ts *testServer) { _ = ts.store.Close() },
			http.StatusOK, map[string]string{"status": "ok"}, nil,
		},
		{
			"not ready while draining", "/readyz",
			func(ts *testServer) { ts.drainOnce.Do(func() { close(ts.draining) }) },
			http.StatusServiceUnavailable, map[string]string{"server": "shutting down", "database": "ok"}, nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t)
			if tc.breakIt != nil {
				tc.breakIt(ts)
			}
			res := ts.do(t, newRequest(http.MethodGet, tc.path))
			if res.Status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", res.Status, tc.wantStatus, res.Body)
			}
			for k, v := range tc.wantBody {
				if res.JSON[k] != v {
					t.Errorf("%s = %v, want %q (%s)", k, res.JSON[k], v, res.Body)
				}
			}
			for _, k := range tc.wantSet {
				if v, _ := res.JSON[k].(string); v == "" || v == "ok" {
					t.Errorf("%s = %v, want an error message (%s)", k, res.JSON[k], res.Body)
				}
			}
		})
	}
}
