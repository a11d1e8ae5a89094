package payment

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// UPI callbacks: POST body {orderId, txnId, status, amount, vpa}, signed
// with X-Signature: hex HMAC-SHA256 of the raw body.

// UPIGatewayName is the source recorded for UPI callbacks.
const UPIGatewayName = "upi"

// UPISignatureHeader carries the callback's signature.
const UPISignatureHeader = "X-Signature"

// UPICurrency is the only currency UPI settles in; a callback is compared
// with the order as if it said so, which stops a UPI payment of 500 paise
// from completing an order of 500 cents.
const UPICurrency = "INR"

// upiStatuses maps the callback's status to the order's.
var upiStatuses = map[string]Status{
	"SUCCESS": StatusCompleted,
	"FAILURE": StatusFailed,
	"PENDING": StatusProcessing,
}

type upiGateway struct{ secret []byte }

// NewUPIGateway verifies and parses UPI callbacks signed with secret.
func NewUPIGateway(secret string) Gateway { return upiGateway{secret: []byte(secret)} }

func (upiGateway) Name() string { return UPIGatewayName }

func (g upiGateway) Open(body []byte, header http.Header, _ time.Time) (GatewayEvent, error) {
	if err := VerifyHexHMAC(g.secret, body, header.Get(UPISignatureHeader)); err != nil {
		return GatewayEvent{Gateway: UPIGatewayName}, err
	}
	return ParseUPICallback(body)
}

type upiCallback struct {
	OrderID string          `json:"orderId"`
	TxnID   string          `json:"txnId"`
	Status  string          `json:"status"`
	Amount  json.RawMessage `json:"amount"`
	VPA     string          `json:"vpa"`
}

// ParseUPICallback parses a verified callback body. A transaction may be
// reported PENDING and later SUCCESS under the same txnId, so the delivery
// id is txnId and status together: each report applies once.
func ParseUPICallback(body []byte) (GatewayEvent, error) {
	ev := GatewayEvent{Gateway: UPIGatewayName}
	var cb upiCallback
	if err := decodeObject(body, &cb); err != nil {
		return ev, err
	}
	if err := checkID("txnId", cb.TxnID, true, maxPaymentIDLength); err != nil {
		return ev, err
	}
	if err := checkID("orderId", cb.OrderID, true, maxPaymentIDLength); err != nil {
		return ev, err
	}
	if err := checkID("status", cb.Status, true, 32); err != nil {
		return ev, err
	}
	if err := checkID("vpa", cb.VPA, false, 256); err != nil {
		return ev, err
	}
	amount, err := minorUnits("amount", cb.Amount)
	if err != nil {
		return ev, err
	}
	if amount == nil {
		return ev, errMissing("amount")
	}
	status := strings.ToUpper(cb.Status)
	ev.Type = status
	ev.DeliveryID = cb.TxnID + ":" + status
	ev.OrderID = cb.OrderID
	ev.PaymentID = cb.TxnID
	ev.Amount = amount
	ev.Currency = UPICurrency
	to, ok := upiStatuses[status]
	if !ok {
		return unknownEvent(ev)
	}
	ev.To = to
	return ev, nil
}
