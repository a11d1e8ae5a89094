package server

import (
	"net/http"
	"testing"
)

func TestCreateOrderAndPoll(t *testing.T) {
	ts := newTestServer(t)
	id, token := ts.createOrder(t, 1500, "inr")
	res := ts.do(t, newRequest(http.MethodGet, "/api/payment/status/"+id+"?token="+token))
	if res.Status != http.StatusOK {
		t.Fatalf("status: %d %s", res.Status, res.Body)
	}
	if res.JSON["status"] != "pending" || res.JSON["currency"] != "INR" || res.JSON["seq"].(float64) != 0 {
		t.Fatalf("unexpected snapshot %s", res.Body)
	}
}
