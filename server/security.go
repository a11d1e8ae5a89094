package server

import (
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/labstack/echo/v4"
)

// contentSecurityPolicy builds the policy sent with every response: scripts
// and styles only from this origin, connections only to this origin and the
// configured API origins (with their websocket schemes), and framing only by
// the configured ancestors.
func contentSecurityPolicy(apiOrigins []string, frameAncestors string) string {
	connect := []string{"'self'"}
	for _, o := range apiOrigins {
		connect = append(connect, o)
		if ws, ok := strings.CutPrefix(o, "http"); ok {
			connect = append(connect, "ws"+ws) // http→ws, https→wss
		}
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' data:",
		"connect-src " + strings.Join(connect, " "),
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors " + frameAncestors,
	}, "; ")
}

// securityHeaders sets the policy and the hardening headers on every
// response, pages and API alike, before the handler runs so that error
// answers carry them too.
func securityHeaders(csp string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("Content-Security-Policy", csp)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			return next(c)
		}
	}
}

// normalizeOrigin checks that o is a bare http(s) origin and returns it in
// the form browsers send (lower-case scheme and host, no trailing slash).
func normalizeOrigin(o string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%w: %q is not an origin such as https://pay.example.com", ErrConfig, o)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// devFiles are the debugging tools, never served in production.
var devFiles = map[string]bool{"websocket-test.html": true, "js/websocket-test.js": true}

// publicFiles lists, as URL paths, the files under dir that production
// serves: every regular file except the development tools. Requests for any
// other spelling (trailing slash, doubled slash, other case) are not on it.
func publicFiles(dir string) (map[string]bool, error) {
	files := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !devFiles[rel] {
			files["/"+rel] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list static files in %s: %w", dir, err)
	}
	return files, nil
}

// onlyFiles answers 404 for any page path not exactly on the list.
func onlyFiles(files map[string]bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			u := c.Request().URL
			if !files[u.Path] || (u.RawPath != "" && u.RawPath != u.Path) {
				return httpError(http.StatusNotFound, "not found", nil)
			}
			return next(c)
		}
	}
}
