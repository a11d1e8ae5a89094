package server

import (
	"hash/fnv"
	"net/http"

	"github.com/labstack/echo/v4"
)

// clientConfig handles GET /api/config: what a page needs to pick push or
// polling. A session is in the rollout when its id hashes below the
// configured percentage, so a session keeps its choice across reloads.
func (s *Server) clientConfig(c echo.Context) error {
	session := c.QueryParam("session")
	if len(session) > 128 {
		return httpError(http.StatusBadRequest, "session id longer than 128 bytes", nil)
	}
	return c.JSON(http.StatusOK, map[string]any{
		"environment":    s.cfg.Env,
		"realtime":       inRollout(session, s.cfg.RolloutPercent),
		"rolloutPercent": s.cfg.RolloutPercent,
		"longPollWait":   25,
		"pollInterval":   3000,
		// The API origins the checkout page may be pointed at with ?api=.
		"apiOrigins": append([]string{}, s.cfg.APIOrigins...),
	})
}

func inRollout(session string, percent int) bool {
	if percent >= 100 {
		return true
	}
	if percent <= 0 {
		return false
	}
	h := fnv.New32a()
	h.Write([]byte(session))
	return int(h.Sum32()%100) < percent
}
