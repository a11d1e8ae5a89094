package server

import (
	"net/http"
	"path/filepath"
	"testing"

	"paystatus/payment"
	"paystatus/payment/sqlstore/synctrace"
)

// Every 2xx that acknowledges a change (order creation, PATCH, gateway
// callbacks, manual completion) is sent after the change's WAL writes were
// fsynced: a gateway that got its 200 never sends the callback again. The
// database is opened through a VFS that traces writes and syncs of the WAL;
// the requests go one at a time, so at each reply nothing else is writing.
// The check fails with synchronous=NORMAL (see
// TestSyncTraceCatchesUnsyncedCommits in payment/sqlstore, and
// docs/storage.md).
func TestAcknowledgementsFollowTheWALSync(t *testing.T) {
	vfs, err := synctrace.Register()
	if err != nil {
		t.Skipf("tracing VFS unavailable: %v", err)
	}
	for _, mode := range []string{"on", "off"} {
		t.Run("group commit "+mode, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "durable.db")
			ts := newTestServer(t, func(c *Config) {
				c.DatabaseURL, c.sqliteVFS, c.GroupCommit = path, vfs, mode
			})
			acked := func(what string, res response, want int) {
				t.Helper()
				if res.Status != want {
					t.Fatalf("%s: %d %s", what, res.Status, res.Body)
				}
				c, ok := synctrace.WAL(path)
				if !ok {
					t.Fatal("the WAL was not opened through the tracing VFS")
				}
				if c.Unsynced != 0 {
					t.Fatalf("%s: %d sent with %d WAL writes not yet synced (%+v)", what, res.Status, c.Unsynced, c)
				}
			}
			for i := range 10 {
				res := ts.do(t, newRequest(http.MethodPost, "/api/orders").json(map[string]any{"amount": 100, "currency": "INR"}))
				acked("create order", res, http.StatusCreated)
				id := res.JSON["id"].(string)
				acked("patch order", ts.do(t, newRequest(http.MethodPatch, "/api/orders/"+id).admin().json(map[string]any{"description": "durable"})), http.StatusOK)
				if i%2 == 0 {
					d := gwDelivery{id: gwID("txn"), orderID: id, to: payment.StatusProcessing, amount: 100, currency: "INR"}
					acked("UPI callback", ts.do(t, gwDriverUPI.request(d)), http.StatusOK)
					d.id, d.to = gwID("txn"), payment.StatusCompleted
					acked("UPI callback", ts.do(t, gwDriverUPI.request(d)), http.StatusOK)
				} else {
					acked("manual completion", ts.do(t, newRequest(http.MethodPost, "/api/payment/"+id+"/complete").admin().json(map[string]any{})), http.StatusOK)
				}
			}
		})
	}
}
