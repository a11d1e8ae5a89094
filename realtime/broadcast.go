package realtime

import (
	"context"
	"sync/atomic"
	"time"

	"paystatus/payment"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// PaymentStatusChanged implements payment.Notifier.
func (s *Server) PaymentStatusChanged(c payment.StatusChange) { s.BroadcastPaymentUpdate(c) }

// OrderChanged implements payment.Notifier.
func (s *Server) OrderChanged(c payment.OrderChange) { s.BroadcastOrderUpdate(c) }

// BroadcastPaymentUpdate sends payment-status-update to the order's room.
// Terminal statuses go to this node's sockets one by one with an
// acknowledgement, and are sent again to a socket that has not acked in
// time; sockets on other nodes get a plain broadcast through the adapter.
func (s *Server) BroadcastPaymentUpdate(c payment.StatusChange) {
	if s.Closed() {
		return
	}
	room := socket.Room(RoomName(c.OrderID))
	payload := statusChangePayload(c)
	s.log.Info("broadcasting payment update to room", "room", room, "status", c.Status, "seq", c.Seq)
	s.obs.Broadcast(EventPaymentStatus)
	if !c.Status.Terminal() {
		_ = s.io.To(room).Emit(EventPaymentStatus, payload)
	} else {
		local := s.localMembers(room)
		except := make([]socket.Room, len(local))
		for i, id := range local {
			except[i] = socket.Room(id)
			s.deliverWithAck(id, room, payload, 0)
		}
		_ = s.io.To(room).Except(except...).Emit(EventPaymentStatus, payload)
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
	room := socket.Room(RoomName(c.OrderID))
	s.log.Info("broadcasting order update to room", "room", room, "seq", c.Seq)
	s.obs.Broadcast(EventOrderUpdate)
	_ = s.io.To(room).Emit(EventOrderUpdate, orderChangePayload(c))
}

// localMembers lists the ids of this node's sockets in a room.
func (s *Server) localMembers(room socket.Room) []socket.SocketId {
	members, ok := s.io.Sockets().Adapter().Rooms().Load(room)
	if !ok {
		return nil
	}
	return members.Keys()
}

// deliverWithAck emits to one socket and schedules a resend if no ack comes
// within AckTimeout. The socket is looked up by id at each attempt, so a
// socket restored by connection state recovery is found again.
func (s *Server) deliverWithAck(id socket.SocketId, room socket.Room, payload map[string]any, attempt int) {
	if s.ctx.Err() != nil {
		return
	}
	sock, ok := s.io.Sockets().Sockets().Load(id)
	if ok && sock.Connected() && sock.Rooms().Has(room) {
		var acked atomic.Bool
		_ = sock.Emit(EventPaymentStatus, payload, socket.Ack(func([]any, error) { acked.Store(true) }))
		time.AfterFunc(s.cfg.AckTimeout, func() {
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
	if s.cfg.Redis == nil {
		// Alone, the local room is the whole room; fetching every socket's
		// details just to count them cost most of a fan-out broadcast.
		if members, ok := s.io.Sockets().Adapter().Rooms().Load(socket.Room(RoomName(orderID))); ok {
			return members.Len(), nil
		}
		return 0, nil
	}
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	s.io.In(socket.Room(RoomName(orderID))).FetchSockets()(func(sockets []*socket.RemoteSocket, err error) {
		done <- result{len(sockets), err}
	})
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	select {
	case r := <-done:
		return r.n, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// TestConnection emits connection-test to an order's room and returns the
// room's size.
func (s *Server) TestConnection(ctx context.Context, orderID string) (int, error) {
	size, err := s.RoomSize(ctx, orderID)
	if err != nil {
		return 0, err
	}
	s.obs.Broadcast(EventConnTest)
	_ = s.io.To(socket.Room(RoomName(orderID))).Emit(EventConnTest, map[string]any{
		"orderId":   orderID,
		"timestamp": time.Now().UnixMilli(),
		"roomSize":  size,
	})
	return size, nil
}
