package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"paystatus/payment"
	"paystatus/realtime"

	"github.com/labstack/echo/v4"
)

type createOrderRequest struct {
	Amount      *int64 `json:"amount"`
	Currency    string `json:"currency"`
	Description string `json:"description"`
	// TTLSeconds asks for a payment window other than ORDER_TTL_SECONDS,
	// within ORDER_TTL_MIN_SECONDS and ORDER_TTL_MAX_SECONDS.
	TTLSeconds *int64 `json:"ttlSeconds"`
}

type orderResponse struct {
	ID          string         `json:"id"`
	Status      payment.Status `json:"status"`
	Amount      int64          `json:"amount"`
	Currency    string         `json:"currency"`
	Description string         `json:"description"`
	Token       string         `json:"token"`
	CreatedAt   time.Time      `json:"createdAt"`
	ExpiresAt   time.Time      `json:"expiresAt"`
}

// createOrder handles POST /api/orders.
func (s *Server) createOrder(c echo.Context) error {
	var req createOrderRequest
	if err := s.bindJSON(c, &req, false); err != nil {
		return err
	}
	if req.Amount == nil {
		return httpError(http.StatusBadRequest, "amount is required, an integer in minor units", nil)
	}
	in := payment.NewOrder{Amount: *req.Amount, Currency: req.Currency, Description: req.Description}
	if req.TTLSeconds != nil {
		w := s.svc.Window()
		if *req.TTLSeconds <= 0 {
			return httpError(http.StatusBadRequest, fmt.Sprintf("ttlSeconds must be between %d and %d", int64(w.Min/time.Second), int64(w.Max/time.Second)), nil)
		}
		in.TTLSeconds = *req.TTLSeconds
	}
	o, err := s.svc.CreateOrder(c.Request().Context(), in)
	if errors.Is(err, payment.ErrQuotaExceeded) {
		s.metrics.ordersRefused.Inc()
		// The cap is over a sliding hour; a minute is a fair first retry.
		c.Response().Header().Set("Retry-After", "60")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, orderResponse{
		ID: o.ID, Status: o.Status, Amount: o.Amount, Currency: o.Currency,
		Description: o.Description, Token: o.Token, CreatedAt: o.CreatedAt.UTC(), ExpiresAt: o.ExpiresAt.UTC(),
	})
}

// orderToken takes the order token from ?token= or X-Order-Token.
func orderToken(c echo.Context) string {
	if t := c.QueryParam("token"); t != "" {
		return t
	}
	return c.Request().Header.Get("X-Order-Token")
}

// authorizeOrder checks the order token; with ROOM_AUTH=order a missing
// token is accepted so that pages written for the original keep polling.
func (s *Server) authorizeOrder(c echo.Context, orderID string) error {
	token := orderToken(c)
	if token == "" && s.cfg.RoomAuth == string(realtime.RoomAuthOrder) {
		return nil
	}
	return s.svc.Authorize(orderID, token)
}

// paymentStatus handles GET /api/payment/status/:orderId, the polling
// endpoint. With ?since=<seq>&wait=<seconds> it long-polls.
func (s *Server) paymentStatus(c echo.Context) error {
	orderID := c.Param("orderId")
	if !payment.ValidOrderID(orderID) {
		return httpError(http.StatusNotFound, "order not found", nil)
	}
	if err := s.authorizeOrder(c, orderID); err != nil {
		return err
	}
	since := int64(-1)
	if v := c.QueryParam("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return httpError(http.StatusBadRequest, "since must be a non-negative integer", err)
		}
		since = n
	}
	var wait time.Duration
	if v := c.QueryParam("wait"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f >= 0) || math.IsInf(f, 0) {
			return httpError(http.StatusBadRequest, "wait must be a non-negative number of seconds", err)
		}
		// Capped in float seconds first: a huge value would overflow the Duration.
		wait = time.Duration(min(f, s.cfg.LongPollMax.Seconds()) * float64(time.Second))
	}
	ctx := c.Request().Context()
	var snap payment.Snapshot
	var err error
	if since >= 0 && wait > 0 {
		s.metrics.longPollStarted()
		ctx, cancel := mergeDone(ctx, s.draining)
		defer cancel()
		snap, err = s.svc.WaitForChange(ctx, orderID, since, wait)
		s.metrics.longPollEnded()
	} else {
		snap, err = s.svc.Snapshot(ctx, orderID)
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, snap)
}

type completeRequest struct {
	Status    string `json:"status"`
	PaymentID string `json:"paymentId"`
}

type statusChangeResponse struct {
	payment.Snapshot
	PreviousStatus payment.Status `json:"previousStatus"`
	Source         string         `json:"source"`
	LateCapture    bool           `json:"lateCapture,omitempty"`
}

// completePayment handles POST /api/payment/:orderId/complete (admin).
func (s *Server) completePayment(c echo.Context) error {
	var req completeRequest
	if err := s.bindJSON(c, &req, true); err != nil {
		return err
	}
	to := payment.StatusCompleted
	switch req.Status {
	case "", "completed":
	case "failed":
		to = payment.StatusFailed
	default:
		return httpError(http.StatusBadRequest, `status must be "completed" or "failed"`, nil)
	}
	if len(req.PaymentID) > 128 {
		return httpError(http.StatusBadRequest, "paymentId longer than 128 bytes", nil)
	}
	// An operator completing an order confirms money taken, so it may land
	// on an expired order as a late capture.
	return s.transition(c, payment.Transition{OrderID: c.Param("orderId"), To: to, PaymentID: req.PaymentID, Source: "manual",
		Captured: to == payment.StatusCompleted})
}

type simulateRequest struct {
	Status string `json:"status"`
}

// simulatePayment handles POST /api/dev/orders/:orderId/simulate, a
// development-only way to move an order through its statuses.
func (s *Server) simulatePayment(c echo.Context) error {
	var req simulateRequest
	if err := s.bindJSON(c, &req, false); err != nil {
		return err
	}
	to, err := payment.ParseStatus(req.Status)
	if err != nil {
		return err
	}
	// A simulated completion stands for a gateway's, late captures included.
	return s.transition(c, payment.Transition{OrderID: c.Param("orderId"), To: to, PaymentID: "sim_" + strconv.FormatInt(time.Now().UnixNano(), 36), Source: "simulation",
		Captured: to == payment.StatusCompleted})
}

func (s *Server) transition(c echo.Context, tr payment.Transition) error {
	change, err := s.svc.Transition(c.Request().Context(), tr)
	if err != nil {
		return err
	}
	s.metrics.transition(change.PreviousStatus, change.Status)
	return c.JSON(http.StatusOK, statusChangeResponse{Snapshot: change.Snapshot, PreviousStatus: change.PreviousStatus, Source: change.Source, LateCapture: change.LateCapture})
}

type patchOrderRequest struct {
	Description *string         `json:"description"`
	Metadata    json.RawMessage `json:"metadata"`
}

// patchOrder handles PATCH /api/orders/:orderId (admin).
func (s *Server) patchOrder(c echo.Context) error {
	var req patchOrderRequest
	if err := s.bindJSON(c, &req, false); err != nil {
		return err
	}
	patch := payment.OrderPatch{Description: req.Description}
	if len(req.Metadata) > 0 && !bytes.Equal(req.Metadata, []byte("null")) {
		if trimmed := bytes.TrimSpace(req.Metadata); len(trimmed) == 0 || trimmed[0] != '{' {
			return httpError(http.StatusBadRequest, "metadata must be a JSON object", nil)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, req.Metadata); err != nil {
			return httpError(http.StatusBadRequest, "metadata must be a JSON object", err)
		}
		patch.Metadata = compact.Bytes()
	}
	change, err := s.svc.UpdateOrder(c.Request().Context(), c.Param("orderId"), patch)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, change)
}

// testConnection handles POST /api/orders/:orderId/test-connection (admin).
func (s *Server) testConnection(c echo.Context) error {
	orderID := c.Param("orderId")
	ctx := c.Request().Context()
	if _, err := s.svc.Snapshot(ctx, orderID); err != nil {
		return err
	}
	size, err := s.rt.TestConnection(ctx, orderID)
	if err != nil {
		return httpError(http.StatusServiceUnavailable, "could not reach the order's room", err)
	}
	return c.JSON(http.StatusOK, map[string]any{"orderId": orderID, "room": realtime.RoomName(orderID), "roomSize": size})
}
