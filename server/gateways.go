package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"paystatus/payment"

	"github.com/labstack/echo/v4"
)

// Gateway metric outcomes, beyond ok.
const (
	outcomeOK           = "ok"
	outcomeBadSignature = "bad_signature"
	outcomeDuplicate    = "duplicate"
	outcomeIgnored      = "ignored"
	outcomeRejected     = "rejected" // malformed, amount mismatch, impossible transition, too large
	outcomeError        = "error"
	outcomeDisabled     = "disabled"
)

// gatewayReply is the body of every 2xx answer to a gateway.
type gatewayReply struct {
	Received  bool           `json:"received"`
	OrderID   string         `json:"orderId,omitempty"`
	Status    payment.Status `json:"status,omitempty"`
	Seq       int64          `json:"seq,omitempty"`
	Duplicate bool           `json:"duplicate,omitempty"`
	Ignored   bool           `json:"ignored,omitempty"`
	Reason    string         `json:"reason,omitempty"`
}

// gatewayRoutes registers the signed gateway callbacks. An endpoint whose
// secret is empty (possible only in production, where none is generated)
// is disabled: it answers 503, which gateways retry, so deliveries made
// before the secret is configured are not dropped for good.
func (s *Server) gatewayRoutes(api *echo.Group) {
	endpoints := []struct {
		path, label, env, secret string
		build                    func(secret string) payment.Gateway
	}{
		{"/payment/upi/callback", "UPI callbacks", "UPI_CALLBACK_SECRET", s.cfg.UPISecret, payment.NewUPIGateway},
		{"/payment/webhook/razorpay", "Razorpay webhooks", "RAZORPAY_WEBHOOK_SECRET", s.cfg.RazorpaySecret, payment.NewRazorpayGateway},
		{"/payment/webhook/stripe", "Stripe webhooks", "STRIPE_WEBHOOK_SECRET", s.cfg.StripeSecret, func(secret string) payment.Gateway {
			return payment.NewStripeGateway(secret, s.cfg.StripeTolerance)
		}},
	}
	for _, ep := range endpoints {
		gw := ep.build(ep.secret)
		if ep.secret == "" {
			s.log.Error(fmt.Sprintf("%s disabled: %s is not set", ep.label, ep.env), "path", "/api"+ep.path)
			api.POST(ep.path, s.gatewayDisabled(gw.Name(), fmt.Sprintf("%s are disabled on this server: %s is not set", ep.label, ep.env)))
			continue
		}
		api.POST(ep.path, s.gatewayCallback(gw))
	}
}

func (s *Server) gatewayDisabled(name, msg string) echo.HandlerFunc {
	return func(echo.Context) error {
		s.metrics.gateway(name, outcomeDisabled)
		return httpError(http.StatusServiceUnavailable, msg, nil)
	}
}

// gatewayCallback reads the raw body, lets the gateway verify and parse it,
// applies the transition and maps the outcome to a response. The 200 goes
// out only after Service.Transition has committed (and broadcast), so a
// gateway whose request dies with the server retries it.
func (s *Server) gatewayCallback(gw payment.Gateway) echo.HandlerFunc {
	name := gw.Name()
	return func(c echo.Context) error {
		body, err := readBody(c, s.cfg.BodyLimit)
		if err != nil {
			s.metrics.gateway(name, outcomeRejected)
			return err
		}
		ev, err := gw.Open(body, c.Request().Header, time.Now())
		log := callbackLog{log: s.log, ctx: c.Request().Context(), gateway: name, ev: &ev}
		switch {
		case isSignatureError(err):
			s.metrics.gateway(name, outcomeBadSignature)
			log.Warn("gateway callback refused: bad signature", "error", err, "remote", c.RealIP())
			return httpError(http.StatusUnauthorized, "invalid signature: "+err.Error(), err)
		case errors.Is(err, payment.ErrUnknownEvent):
			s.metrics.gateway(name, outcomeIgnored)
			log.Info("gateway callback ignored: event type not handled")
			return c.JSON(http.StatusOK, gatewayReply{Received: true, Ignored: true, Reason: "event type not handled"})
		case err != nil:
			s.metrics.gateway(name, outcomeRejected)
			log.Warn("gateway callback refused: malformed payload", "error", err)
			return httpError(http.StatusBadRequest, err.Error(), err)
		case ev.OrderID == "":
			s.metrics.gateway(name, outcomeIgnored)
			log.Warn("gateway callback ignored: payload names no order")
			return c.JSON(http.StatusOK, gatewayReply{Received: true, Ignored: true, Reason: "payload names no order"})
		}

		change, err := s.svc.Transition(c.Request().Context(), ev.Transition())
		switch {
		case err == nil:
			s.metrics.gateway(name, outcomeOK)
			s.metrics.transition(change.PreviousStatus, change.Status)
			log.Info("gateway callback applied", "from", change.PreviousStatus, "to", change.Status, "seq", change.Seq)
			return c.JSON(http.StatusOK, gatewayReply{Received: true, OrderID: change.OrderID, Status: change.Status, Seq: change.Seq})
		case errors.Is(err, payment.ErrDuplicateEvent):
			s.metrics.gateway(name, outcomeDuplicate)
			log.Info("gateway callback already applied: duplicate delivery")
			return c.JSON(http.StatusOK, gatewayReply{Received: true, OrderID: ev.OrderID, Duplicate: true, Reason: "delivery already processed"})
		case errors.Is(err, payment.ErrStaleEvent):
			s.metrics.gateway(name, outcomeIgnored)
			log.Info("gateway callback ignored: order has moved past it", "error", err)
			return c.JSON(http.StatusOK, gatewayReply{Received: true, OrderID: ev.OrderID, Ignored: true, Reason: err.Error()})
		case errors.Is(err, payment.ErrOrderNotFound):
			// A 200 stops the gateway retrying something no retry can fix.
			s.metrics.gateway(name, outcomeIgnored)
			log.Warn("gateway callback ignored: unknown order")
			return c.JSON(http.StatusOK, gatewayReply{Received: true, OrderID: ev.OrderID, Ignored: true, Reason: "unknown order"})
		case errors.Is(err, payment.ErrAmountMismatch):
			s.metrics.gateway(name, outcomeRejected)
			log.Warn("gateway callback refused: amount or currency mismatch", "error", err, "amount", derefAmount(ev.Amount), "currency", ev.Currency)
			return httpError(http.StatusUnprocessableEntity, err.Error(), err)
		case errors.Is(err, payment.ErrInvalidTransition):
			// Not a 2xx: if an earlier event is still on its way (a refund
			// before the capture), the gateway's retry will then succeed.
			s.metrics.gateway(name, outcomeRejected)
			log.Warn("gateway callback refused: transition not allowed", "error", err)
			return httpError(http.StatusConflict, err.Error(), err)
		default:
			s.metrics.gateway(name, outcomeError)
			return err
		}
	}
}

// callbackLog writes the log lines about one gateway callback. The
// callback's attributes are built only for lines the logger keeps, so a
// callback whose lines are filtered out makes no garbage for them.
type callbackLog struct {
	log     *slog.Logger
	ctx     context.Context
	gateway string
	ev      *payment.GatewayEvent
}

func (l callbackLog) Info(msg string, args ...any) { l.write(slog.LevelInfo, msg, args) }
func (l callbackLog) Warn(msg string, args ...any) { l.write(slog.LevelWarn, msg, args) }

func (l callbackLog) write(level slog.Level, msg string, args []any) {
	if !l.log.Enabled(l.ctx, level) {
		return
	}
	l.log.With("gateway", l.gateway, "delivery", l.ev.DeliveryID, "event", l.ev.Type, "order", l.ev.OrderID).Log(l.ctx, level, msg, args...)
}

func isSignatureError(err error) bool {
	return errors.Is(err, payment.ErrSignatureMissing) || errors.Is(err, payment.ErrSignatureMalformed) ||
		errors.Is(err, payment.ErrSignatureMismatch) || errors.Is(err, payment.ErrSignatureExpired)
}

// derefAmount makes an optional amount loggable; -1 means absent.
func derefAmount(a *int64) int64 {
	if a == nil {
		return -1
	}
	return *a
}
