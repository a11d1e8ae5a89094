package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"paystatus/payment"

	"github.com/labstack/echo/v4"
)

// HTTPError is the one error type handlers return; the central error
// handler writes it, so no handler writes an error response itself.
type HTTPError struct {
	Code    int
	Message string
	Err     error // the cause, logged but not shown
}

func (e *HTTPError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%d %s", e.Code, e.Message)
}

func (e *HTTPError) Unwrap() error { return e.Err }

func httpError(code int, msg string, cause error) *HTTPError {
	return &HTTPError{Code: code, Message: msg, Err: cause}
}

// domainError maps payment errors to HTTP errors in one place.
func domainError(err error) *HTTPError {
	var he *HTTPError
	switch {
	case errors.As(err, &he):
		return he
	case errors.Is(err, payment.ErrOrderNotFound):
		return httpError(http.StatusNotFound, "order not found", err)
	case errors.Is(err, payment.ErrInvalidToken):
		return httpError(http.StatusUnauthorized, "invalid or missing order token", err)
	case errors.Is(err, payment.ErrInvalidTransition):
		return httpError(http.StatusConflict, err.Error(), err)
	case errors.Is(err, payment.ErrInvalidOrder), errors.Is(err, payment.ErrInvalidStatus):
		return httpError(http.StatusBadRequest, err.Error(), err)
	case errors.Is(err, payment.ErrQuotaExceeded):
		return httpError(http.StatusTooManyRequests, err.Error()+"; try again later", err)
	case errors.Is(err, payment.ErrAmountMismatch):
		return httpError(http.StatusUnprocessableEntity, err.Error(), err)
	case errors.Is(err, payment.ErrSignatureMissing), errors.Is(err, payment.ErrSignatureMalformed),
		errors.Is(err, payment.ErrSignatureMismatch), errors.Is(err, payment.ErrSignatureExpired):
		return httpError(http.StatusUnauthorized, "invalid signature", err)
	case errors.Is(err, payment.ErrMalformedPayload):
		return httpError(http.StatusBadRequest, err.Error(), err)
	}
	return httpError(http.StatusInternalServerError, "internal error", err)
}

// errorHandler is Echo's central error handler.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		var he *HTTPError
		var ee *echo.HTTPError
		switch {
		case errors.As(err, &he):
		case errors.As(err, &ee):
			msg := http.StatusText(ee.Code)
			if m, ok := ee.Message.(string); ok {
				msg = m
			}
			he = httpError(ee.Code, msg, ee.Internal)
		default:
			he = domainError(err)
		}
		req := c.Request()
		if he.Code >= 500 {
			log.Error("request failed", "method", req.Method, "path", req.URL.Path, "status", he.Code, "error", err)
		} else {
			log.Info("request refused", "method", req.Method, "path", req.URL.Path, "status", he.Code, "error", err)
		}
		if req.Method == http.MethodHead {
			_ = c.NoContent(he.Code)
			return
		}
		_ = c.JSON(he.Code, map[string]string{"error": he.Message})
	}
}
