package realtime

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"paystatus/payment"
)

// joinTimeout bounds the database lookup behind one join.
const joinTimeout = 5 * time.Second

// peer is what the order-room protocol needs from one socket, whichever
// Socket.IO implementation carries it.
type peer interface {
	ID() string
	Emit(event string, args ...any) error
	// EmitWithAckSignal calls acked when the client acknowledges the event.
	EmitWithAckSignal(event string, acked func(), args ...any) error
	Join(room string) bool
	Leave(room string) bool
	In(room string) bool
	Auth() map[string]any
	Connected() bool
}

// socketState is the per-socket bookkeeping of the protocol handlers. It is
// held by value in each backend's per-socket handler, so that a connection
// costs one heap object for all of it.
type socketState struct {
	limiter   eventLimiter
	transport atomic.Pointer[string] // the upgrade and disconnect run on different goroutines
	protocol  int
}

var transportNames = [...]string{"polling", "websocket"}

// transportName returns a shared copy of a transport's name, so that
// storing it allocates nothing.
func transportName(t string) *string {
	for i := range transportNames {
		if transportNames[i] == t {
			return &transportNames[i]
		}
	}
	return &t
}

// socketOpened readies st, which must be new, for a socket that has
// connected.
func (s *Server) socketOpened(st *socketState, p peer, transport string, protocol int, recovered bool) {
	st.limiter.init(s.cfg.EventsPerSecond)
	st.protocol = protocol
	st.transport.Store(transportName(transport))
	s.obs.SocketConnected(transport, protocol)
	s.log.Info("client connected", "socket", p.ID(), "transport", transport, "eio", protocol, "recovered", recovered)
}

func (s *Server) socketUpgraded(p peer, st *socketState, next string) {
	prev := st.transport.Swap(transportName(next))
	s.obs.SocketDisconnected(*prev, st.protocol)
	s.obs.SocketConnected(next, st.protocol)
	s.log.Debug("transport upgraded", "socket", p.ID(), "from", *prev, "to", next)
}

func (s *Server) socketClosed(p peer, st *socketState, reason string) {
	s.obs.SocketDisconnected(*st.transport.Load(), st.protocol)
	s.log.Info("client disconnected", "socket", p.ID(), "reason", reason)
}

// admitEvent applies the per-socket flood limit.
func (s *Server) admitEvent(p peer, st *socketState) bool {
	ok, shouldLog := st.limiter.allow(time.Now())
	if !ok {
		s.obs.EventDropped("flood")
		if shouldLog {
			s.log.Warn("dropping events from flooding socket", "socket", p.ID())
		}
	}
	return ok
}

// handleEvent dispatches one inbound event; reply is nil unless the client
// asked for an acknowledgement.
func (s *Server) handleEvent(p peer, event string, args []any, reply func(any)) {
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("socket event in", "socket", p.ID(), "event", truncate(event, 64), "args", args)
	}
	payload := first(args)
	switch event {
	case EventJoinOrder:
		s.onJoin(p, payload, reply)
	case EventLeaveOrder:
		s.onLeave(p, payload, reply)
	case EventPing:
		s.onPing(p, payload, reply)
	default:
		s.obs.EventDropped("unknown")
		s.log.Info("ignoring unknown event", "socket", p.ID(), "event", truncate(event, 64))
	}
}

func (s *Server) onPing(p peer, payload any, reply func(any)) {
	pong := pongPayload(payload, time.Now())
	_ = p.Emit(EventPong, pong)
	if reply != nil {
		reply(pong)
	}
}

func (s *Server) onJoin(p peer, payload any, reply func(any)) {
	answer := s.join(p, payload)
	_ = p.Emit(EventJoinedOrder, answer)
	if reply != nil {
		reply(answer)
	}
}

// join admits a socket to an order's room and returns the joined-order reply.
func (s *Server) join(p peer, payload any) map[string]any {
	refuse := func(reason string, msg string) map[string]any {
		s.obs.JoinRefused(reason)
		s.log.Warn("join refused", "socket", p.ID(), "orderId", orderIDOf(payload), "reason", msg)
		return map[string]any{"orderId": orderIDOf(payload), "success": false, "error": msg}
	}
	req, err := parseRoomRequest(payload)
	if err != nil {
		return refuse("malformed", err.Error())
	}
	if req.Token == "" {
		req.Token = tokenFromAuth(p.Auth())
	}
	if req.Token != "" || s.cfg.RoomAuth == RoomAuthToken {
		if err := s.access.Authorize(req.OrderID, req.Token); err != nil {
			return refuse("token", "invalid or missing order token")
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, joinTimeout)
	defer cancel()
	snap, err := s.access.Snapshot(ctx, req.OrderID)
	if errors.Is(err, payment.ErrOrderNotFound) {
		return refuse("unknown_order", "order not found")
	}
	if err != nil {
		s.log.Error("join lookup failed", "orderId", req.OrderID, "error", err)
		return refuse("error", "order status unavailable, try again")
	}
	room := RoomName(req.OrderID)
	p.Join(room)
	s.obs.Joined()
	s.log.Info("socket joined room", "socket", p.ID(), "room", room)
	return map[string]any{"orderId": req.OrderID, "room": room, "success": true, "status": snapshotPayload(snap)}
}

func (s *Server) onLeave(p peer, payload any, reply func(any)) {
	var answer map[string]any
	if req, err := parseRoomRequest(payload); err != nil {
		s.log.Warn("leave refused", "socket", p.ID(), "reason", err.Error())
		answer = map[string]any{"orderId": orderIDOf(payload), "success": false, "error": err.Error()}
	} else {
		room := RoomName(req.OrderID)
		if p.Leave(room) {
			s.obs.Left()
		}
		s.log.Info("socket left room", "socket", p.ID(), "room", room)
		answer = map[string]any{"orderId": req.OrderID, "room": room, "success": true}
	}
	if reply != nil {
		reply(answer)
	}
}

func tokenFromAuth(auth map[string]any) string {
	t, _ := auth["token"].(string)
	return t
}

func first(args []any) any {
	if len(args) == 0 {
		return nil
	}
	return args[0]
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
