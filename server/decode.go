package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
)

// readBody reads the raw request body up to limit bytes. The buffer grows
// with what arrives, never from the declared Content-Length, so headers
// alone cannot make the server allocate a body's worth of memory.
func readBody(c echo.Context, limit int64) ([]byte, error) {
	req := c.Request()
	if req.ContentLength > limit {
		return nil, httpError(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", limit), nil)
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		return nil, httpError(http.StatusBadRequest, "could not read request body", err)
	}
	if int64(len(body)) > limit {
		return nil, httpError(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", limit), nil)
	}
	return body, nil
}

// decodeJSON parses a JSON object body into v with clear messages for each
// kind of mistake. An empty body is allowed when allowEmpty is set.
func decodeJSON(body []byte, v any, allowEmpty bool) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		if allowEmpty {
			return nil
		}
		return httpError(http.StatusBadRequest, "request body must be a JSON object", nil)
	}
	// Checked up front because null decodes into a struct without error.
	if trimmed[0] != '{' {
		return httpError(http.StatusBadRequest, "request body must be a JSON object", nil)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return httpError(http.StatusBadRequest, fmt.Sprintf("field %q has the wrong type: got %s", typeErr.Field, typeErr.Value), err)
		case errors.As(err, &typeErr):
			return httpError(http.StatusBadRequest, "request body must be a JSON object", err)
		case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
			return httpError(http.StatusBadRequest, "malformed JSON", err)
		}
		return httpError(http.StatusBadRequest, "malformed JSON: "+err.Error(), err)
	}
	// dec.More() alone misses a stray '}' or ']', so look at what is left.
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return httpError(http.StatusBadRequest, "malformed JSON: trailing data after the object", nil)
	}
	return nil
}

// bindJSON reads and decodes the body in one step.
func (s *Server) bindJSON(c echo.Context, v any, allowEmpty bool) error {
	body, err := readBody(c, s.cfg.BodyLimit)
	if err != nil {
		return err
	}
	return decodeJSON(body, v, allowEmpty)
}
