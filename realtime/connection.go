package realtime

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"paystatus/payment"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// joinTimeout bounds the database lookup behind one join.
const joinTimeout = 5 * time.Second

var knownEvents = map[string]bool{EventJoinOrder: true, EventLeaveOrder: true, EventPing: true}

var errFlood = errors.New("too many events")

func (s *Server) onConnection(sock *socket.Socket) {
	initial, protocol := transportOf(sock)
	s.obs.SocketConnected(initial, protocol)
	s.log.Info("client connected", "socket", sock.Id(), "transport", initial, "eio", protocol, "recovered", sock.Recovered())

	// The upgrade and disconnect handlers run on different goroutines.
	var transport atomic.Pointer[string]
	transport.Store(&initial)
	conn := sock.Conn()
	_ = conn.On("upgrade", func(...any) {
		next, _ := transportOf(sock)
		prev := transport.Swap(&next)
		s.obs.SocketDisconnected(*prev, protocol)
		s.obs.SocketConnected(next, protocol)
		s.log.Debug("transport upgraded", "socket", sock.Id(), "from", *prev, "to", next)
	})

	limiter := newEventLimiter(s.cfg.EventsPerSecond)
	sock.Use(func(args []any, next func(error)) {
		ok, shouldLog := limiter.allow(time.Now())
		if !ok {
			s.obs.EventDropped("flood")
			if shouldLog {
				s.log.Warn("dropping events from flooding socket", "socket", sock.Id())
			}
			next(errFlood)
			return
		}
		next(nil)
	})
	_ = sock.On("error", func(args ...any) {
		if len(args) > 0 {
			if err, ok := args[0].(error); ok && errors.Is(err, errFlood) {
				return // already logged, at most once a second
			}
		}
		s.log.Warn("socket error", "socket", sock.Id(), "error", first(args))
	})
	sock.OnAny(func(args ...any) {
		name, _ := first(args).(string)
		if !knownEvents[name] {
			s.obs.EventDropped("unknown")
			s.log.Info("ignoring unknown event", "socket", sock.Id(), "event", truncate(name, 64))
		} else if s.log.Enabled(context.Background(), slog.LevelDebug) {
			s.log.Debug("socket event in", "socket", sock.Id(), "event", name, "args", eventArgs(args))
		}
	})
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		sock.OnAnyOutgoing(func(args ...any) {
			s.log.Debug("socket event out", "socket", sock.Id(), "event", first(args), "args", eventArgs(args))
		})
	}

	_ = sock.On(EventJoinOrder, func(args ...any) { s.onJoin(sock, args) })
	_ = sock.On(EventLeaveOrder, func(args ...any) { s.onLeave(sock, args) })
	_ = sock.On(EventPing, func(args ...any) {
		payload, ack := splitAck(args)
		reply := pongPayload(payload, time.Now())
		_ = sock.Emit(EventPong, reply)
		if ack != nil {
			ack([]any{reply}, nil)
		}
	})
	_ = sock.On("disconnect", func(args ...any) {
		s.obs.SocketDisconnected(*transport.Load(), protocol)
		s.log.Info("client disconnected", "socket", sock.Id(), "reason", first(args))
	})
}

func (s *Server) onJoin(sock *socket.Socket, args []any) {
	payload, ack := splitAck(args)
	reply := s.join(sock, payload)
	_ = sock.Emit(EventJoinedOrder, reply)
	if ack != nil {
		ack([]any{reply}, nil)
	}
}

// join admits a socket to an order's room and returns the joined-order reply.
func (s *Server) join(sock *socket.Socket, payload any) map[string]any {
	refuse := func(reason string, msg string) map[string]any {
		s.obs.JoinRefused(reason)
		s.log.Warn("join refused", "socket", sock.Id(), "orderId", orderIDOf(payload), "reason", msg)
		return map[string]any{"orderId": orderIDOf(payload), "success": false, "error": msg}
	}
	req, err := parseRoomRequest(payload)
	if err != nil {
		return refuse("malformed", err.Error())
	}
	if req.Token == "" {
		req.Token = handshakeToken(sock)
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
	sock.Join(socket.Room(room))
	s.obs.Joined()
	s.log.Info("socket joined room", "socket", sock.Id(), "room", room)
	return map[string]any{"orderId": req.OrderID, "room": room, "success": true, "status": snapshotPayload(snap)}
}

func (s *Server) onLeave(sock *socket.Socket, args []any) {
	payload, ack := splitAck(args)
	var reply map[string]any
	if req, err := parseRoomRequest(payload); err != nil {
		s.log.Warn("leave refused", "socket", sock.Id(), "reason", err.Error())
		reply = map[string]any{"orderId": orderIDOf(payload), "success": false, "error": err.Error()}
	} else {
		room := RoomName(req.OrderID)
		if sock.Rooms().Has(socket.Room(room)) {
			sock.Leave(socket.Room(room))
			s.obs.Left()
		}
		s.log.Info("socket left room", "socket", sock.Id(), "room", room)
		reply = map[string]any{"orderId": req.OrderID, "room": room, "success": true}
	}
	if ack != nil {
		ack([]any{reply}, nil)
	}
}

func handshakeToken(sock *socket.Socket) string {
	if hs := sock.Handshake(); hs != nil && hs.Auth != nil {
		if t, ok := hs.Auth["token"].(string); ok {
			return t
		}
	}
	return ""
}

// splitAck separates an acknowledgement callback from an event's arguments.
func splitAck(args []any) (payload any, ack socket.Ack) {
	if n := len(args); n > 0 {
		if a, ok := args[n-1].(socket.Ack); ok {
			ack = a
			args = args[:n-1]
		}
	}
	return first(args), ack
}

func first(args []any) any {
	if len(args) == 0 {
		return nil
	}
	return args[0]
}

func eventArgs(args []any) []any {
	if len(args) <= 1 {
		return nil
	}
	out := make([]any, 0, len(args)-1)
	for _, a := range args[1:] {
		if _, isAck := a.(socket.Ack); !isAck {
			out = append(out, a)
		}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func transportOf(sock *socket.Socket) (string, int) {
	conn := sock.Conn()
	if conn == nil {
		return "unknown", 0
	}
	name := "unknown"
	if t := conn.Transport(); t != nil {
		name = t.Name()
	}
	return name, conn.Protocol()
}
