package payment

import (
	"errors"
	"testing"
	"time"
)

// Fuzz targets for everything that reads bytes a gateway (or an attacker)
// controls. Seed inputs live in testdata/fuzz/<target>/; run one with
// go test ./payment -fuzz=FuzzParseStripeSignature -fuzztime=30s.

// checkParsed holds for every event a parser accepts.
func checkParsed(t *testing.T, ev GatewayEvent, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrMalformedPayload) && !errors.Is(err, ErrUnknownEvent) {
			t.Fatalf("parser returned an error outside its contract: %v", err)
		}
		return
	}
	if ev.DeliveryID == "" || len(ev.DeliveryID) > maxDeliveryIDLength+40 {
		t.Fatalf("accepted event with delivery id %q", ev.DeliveryID)
	}
	if _, perr := ParseStatus(string(ev.To)); perr != nil {
		t.Fatalf("accepted event with status %q", ev.To)
	}
	if ev.Amount != nil && (*ev.Amount < 0 || *ev.Amount > MaxAmount) {
		t.Fatalf("accepted amount %d", *ev.Amount)
	}
	if ev.Currency != "" && !currencyPattern.MatchString(ev.Currency) {
		t.Fatalf("accepted currency %q", ev.Currency)
	}
	if len(ev.PaymentID) > maxPaymentIDLength || len(ev.OrderID) > maxPaymentIDLength {
		t.Fatalf("accepted oversized ids %q %q", ev.PaymentID, ev.OrderID)
	}
}

func FuzzParseStripeSignature(f *testing.F) {
	f.Add("t=1700000000,v1=" + SignHex([]byte("k"), []byte("1700000000.{}")))
	secret := []byte("whsec_fuzz")
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, header string) {
		sig, err := ParseStripeSignature(header)
		if err != nil {
			if !errors.Is(err, ErrSignatureMissing) && !errors.Is(err, ErrSignatureMalformed) {
				t.Fatalf("unexpected error kind: %v", err)
			}
		} else if sig.Timestamp <= 0 || len(sig.V1) == 0 || len(sig.V1) > maxStripeSignatures {
			t.Fatalf("accepted %q as %+v", header, sig)
		}
		// A random header must never verify against a secret it was not made with.
		if VerifyStripeSignature(secret, []byte("{}"), header, now, time.Hour*24*365*100) == nil {
			t.Fatalf("random header %q verified", header)
		}
	})
}

func FuzzParseUPICallback(f *testing.F) {
	f.Add([]byte(`{"orderId":"ord_1","txnId":"T1","status":"SUCCESS","amount":49900,"vpa":"a@upi"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := ParseUPICallback(body)
		checkParsed(t, ev, err)
	})
}

func FuzzParseRazorpayWebhook(f *testing.F) {
	f.Add([]byte(razorpayBody("payment.captured", `{"id":"pay_1","amount":49900,"currency":"INR","notes":{"orderId":"ord_1"}}`)))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := ParseRazorpayWebhook(body)
		checkParsed(t, ev, err)
	})
}

func FuzzParseStripeWebhook(f *testing.F) {
	f.Add([]byte(stripeBody("evt_1", "payment_intent.succeeded", `{"id":"pi_1","amount":2000,"amount_received":2000,"currency":"usd","metadata":{"orderId":"ord_1"}}`)))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := ParseStripeWebhook(body)
		checkParsed(t, ev, err)
	})
}
