package server

import "github.com/labstack/echo/v4"

// gatewayRoutes registers the signed gateway callbacks.
func (s *Server) gatewayRoutes(api *echo.Group) {}
