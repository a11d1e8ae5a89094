package realtime

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"paystatus/payment"
	"paystatus/realtime/socketio"
)

// PaymentStatusChanged implements payment.Notifier.
func (s *Server) PaymentStatusChanged(c payment.StatusChange) { s.BroadcastPaymentUpdate(c) }

// OrderChanged implements payment.Notifier.
func (s *Server) OrderChanged(c payment.OrderChange) { s.BroadcastOrderUpdate(c) }

// BroadcastPaymentUpdate sends payment-status-update to the order's room.
// Terminal statuses go to this node's sockets one by one with an
// acknowledgement, and are sent again to a socket that has not acked in
// time; the other nodes get a plain broadcast through the adapter, and
// each Go node does the same for its own sockets when it receives it (see
// onRemoteBroadcast).
func (s *Server) BroadcastPaymentUpdate(c payment.StatusChange) {
	if s.Closed() {
		return
	}
	room := RoomName(c.OrderID)
	// Fields are built only for a line the logger keeps: the sweep
	// announces every expiry, and boxing them is garbage at warn.
	if s.log.Enabled(s.ctx, slog.LevelInfo) {
		s.log.Info("broadcasting payment update to room", "room", room, "status", c.Status, "seq", c.Seq)
	}
	s.obs.Broadcast(EventPaymentStatus)
	if !c.Status.Terminal() {
		s.impl.broadcast(room, nil, EventPaymentStatus, statusChangePayload(c))
	} else if ids := s.impl.members(room); len(ids) > 0 || !s.impl.alone() {
		// A node alone with nobody in the room (most expiries) builds no
		// payload.
		payload := statusChangePayload(c)
		for _, id := range ids {
			s.deliverWithAck(id, room, payload, 0)
		}
		s.impl.publish(room, EventPaymentStatus, payload)
	}
	if !c.ReceivedAt.IsZero() {
		s.obs.Delivered(EventPaymentStatus, time.Since(c.ReceivedAt))
	}
}

// BroadcastOrderUpdate sends order-update to the order's room.
func (s *Server) BroadcastOrderUpdate(c payment.OrderChange) {
	if s.Closed() {
		return
	}
	room := RoomName(c.OrderID)
	if s.log.Enabled(s.ctx, slog.LevelInfo) {
		s.log.Info("broadcasting order update to room", "room", room, "seq", c.Seq)
	}
	s.obs.Broadcast(EventOrderUpdate)
	s.impl.broadcast(room, nil, EventOrderUpdate, orderChangePayload(c))
}

// deliverWithAck emits to one socket and schedules a resend if no ack comes
// within AckTimeout. The socket is looked up by id at each attempt, so a
// socket restored by connection state recovery is found again.
func (s *Server) deliverWithAck(id, room string, payload any, attempt int) {
	if s.ctx.Err() != nil {
		return
	}
	sock, ok := s.impl.lookup(id)
	if ok && sock.Connected() && sock.In(room) {
		if attempt > 0 {
			s.obs.Resent(EventPaymentStatus)
		}
		// An ack stops the resend timer, so an acknowledged update costs no
		// goroutine when the timeout passes.
		var acked atomic.Bool
		var resend atomic.Pointer[time.Timer]
		_ = sock.EmitWithAckSignal(EventPaymentStatus, func() {
			acked.Store(true)
			if t := resend.Load(); t != nil {
				t.Stop()
			}
		}, payload)
		t := time.AfterFunc(s.cfg.AckTimeout, func() {
			if acked.Load() {
				return
			}
			if attempt >= s.cfg.AckRetries {
				s.log.Warn("terminal update not acknowledged", "socket", id, "room", room, "attempts", attempt+1)
				return
			}
			s.log.Info("resending unacknowledged update", "socket", id, "room", room, "attempt", attempt+1)
			s.deliverWithAck(id, room, payload, attempt+1)
		})
		resend.Store(t)
		if acked.Load() {
			t.Stop()
		}
		return
	}
	// Gone for now: it may be restored by recovery within the window, and
	// otherwise its page rejoins and reads the snapshot.
	if attempt < s.cfg.AckRetries {
		time.AfterFunc(s.cfg.AckTimeout, func() { s.deliverWithAck(id, room, payload, attempt+1) })
	}
}

// RoomSize counts the sockets in an order's room on every node.
func (s *Server) RoomSize(ctx context.Context, orderID string) (int, error) {
	if s.Closed() {
		return 0, ErrClosed
	}
	return s.impl.roomSize(ctx, RoomName(orderID))
}

// TestConnection emits connection-test to an order's room and returns the
// room's size across the fleet. The broadcast goes out before the count and
// carries this node's share of the room: counting asks every other node
// and waits for their answers, and a test message must not wait on that.
// When some node does not answer, the error is returned after the
// broadcast, with the sockets counted so far.
func (s *Server) TestConnection(ctx context.Context, orderID string) (int, error) {
	if s.Closed() {
		return 0, ErrClosed
	}
	room := RoomName(orderID)
	s.obs.Broadcast(EventConnTest)
	s.impl.broadcast(room, nil, EventConnTest, map[string]any{
		"orderId":   orderID,
		"timestamp": time.Now().UnixMilli(),
		"roomSize":  s.impl.localRoomSize(room),
	})
	size, err := s.impl.roomSize(ctx, room)
	if err != nil && !errors.Is(err, ErrClosed) {
		s.log.Warn("room count incomplete", "orderId", orderID, "error", err)
	}
	return size, err
}

// onRemoteBroadcast sees each broadcast from another node before this
// node's sockets do. An order's update wakes this node's long-polls, so
// one cross-node message serves both. A terminal status goes to this
// node's sockets with an acknowledgement and re-sends, as on the node that
// committed it; it reports true then, having delivered it itself.
func (s *Server) onRemoteBroadcast(opts socketio.BroadcastOptions, event string, args []any) bool {
	if event != EventPaymentStatus && event != EventOrderUpdate {
		return false
	}
	for _, room := range opts.Rooms {
		if id, ok := strings.CutPrefix(room, "order-"); ok && s.cfg.OnRemoteChange != nil {
			s.cfg.OnRemoteChange(id)
		}
	}
	if event != EventPaymentStatus || len(args) == 0 || len(opts.Rooms) != 1 || s.Closed() {
		return false
	}
	update, ok := args[0].(map[string]any)
	if !ok {
		return false
	}
	status, _ := update["status"].(string)
	if !payment.Status(status).Terminal() {
		return false
	}
	room := opts.Rooms[0]
	for _, id := range s.impl.members(room) {
		if !slices.Contains(opts.Except, id) {
			s.deliverWithAck(id, room, update, 0)
		}
	}
	return true
}

// resyncAfter are the delays, after this node reads from Redis again, at
// which resync runs once more: a peer that reconnects later than this node
// may have dropped its publishes of changes committed after the first pass.
var resyncAfter = []time.Duration{2 * time.Second, 6 * time.Second}

// restored runs when this node reads from Redis again after an outage: a
// resync at once, then again at each of resyncAfter unless shut down.
func (s *Server) restored() {
	s.resync()
	go func() {
		var waited time.Duration
		for _, d := range resyncAfter {
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(d - waited):
			}
			waited = d
			s.resync()
		}
	}()
}

// resync brings this node's pages up to date after an outage: what other
// nodes broadcast meanwhile never reached it, so each order room with a
// socket here gets the order's status from the database, terminal ones
// with an acknowledgement. Pages drop what they already have by seq.
func (s *Server) resync() {
	rooms := s.impl.localOrderRooms()
	s.log.Info("resending order statuses after a Redis outage", "rooms", len(rooms))
	for _, room := range rooms {
		if s.ctx.Err() != nil {
			return
		}
		orderID := strings.TrimPrefix(room, "order-")
		ctx, cancel := context.WithTimeout(s.ctx, joinTimeout)
		snap, err := s.access.Snapshot(ctx, orderID)
		cancel()
		if err != nil {
			s.log.Warn("resync: order status unavailable", "orderId", orderID, "error", err)
			continue
		}
		payload := &statusUpdate{orderSnapshot: snapshotPayload(snap), Source: "resync"}
		if snap.Status.Terminal() {
			for _, id := range s.impl.members(room) {
				s.deliverWithAck(id, room, payload, 0)
			}
			continue
		}
		s.impl.localBroadcast(room, EventPaymentStatus, payload)
	}
}
