package payment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Notifier is told about every committed change, after the commit. The
// realtime layer implements it; payment knows nothing of how it delivers.
type Notifier interface {
	PaymentStatusChanged(StatusChange)
	OrderChanged(OrderChange)
}

// Service is the payment logic the HTTP handlers call.
type Service struct {
	store    Store
	tokens   *Tokens
	waiters  *Waiters
	notifier Notifier
	window   Window
	quota    *CreationQuota
}

// ServiceDeps are the Service's collaborators; Store and Tokens are required.
type ServiceDeps struct {
	Store    Store
	Tokens   *Tokens
	Waiters  *Waiters
	Notifier Notifier
	// Window is the payment window policy; zero fields mean the defaults.
	Window Window
	// Quota, when set, caps order creation.
	Quota *CreationQuota
}

// NewService wires a Service.
func NewService(deps ServiceDeps) (*Service, error) {
	if deps.Store == nil || deps.Tokens == nil {
		return nil, errors.New("payment service needs a store and tokens")
	}
	if deps.Waiters == nil {
		deps.Waiters = NewWaiters()
	}
	window, err := deps.Window.Validate()
	if err != nil {
		return nil, err
	}
	return &Service{store: deps.Store, tokens: deps.Tokens, waiters: deps.Waiters, notifier: deps.Notifier,
		window: window, quota: deps.Quota}, nil
}

// Window returns the effective payment window policy.
func (s *Service) Window() Window { return s.window }

// SetNotifier sets the notifier; the realtime layer is built after the service.
func (s *Service) SetNotifier(n Notifier) { s.notifier = n }

// Waiters exposes the long-poll registry, so a cross-node relay can wake it.
func (s *Service) Waiters() *Waiters { return s.waiters }

// Store exposes the store for health checks and tests.
func (s *Service) Store() Store { return s.store }

// CreatedOrder is a new order with its access token.
type CreatedOrder struct {
	Order
	Token string
}

// CreateOrder stores a new order and issues its token.
func (s *Service) CreateOrder(ctx context.Context, in NewOrder) (CreatedOrder, error) {
	// Postgres keeps microseconds: the times a creation answers with must
	// be the ones every later read returns.
	now := time.Now().Truncate(time.Microsecond)
	o, err := NewPendingOrder(in, now)
	if err != nil {
		return CreatedOrder{}, err
	}
	if in.TTLSeconds < 0 {
		return CreatedOrder{}, fmt.Errorf("%w: ttlSeconds must be positive", ErrInvalidOrder)
	}
	// Compared in whole seconds, so that a huge request cannot overflow.
	if in.TTLSeconds > 0 && (in.TTLSeconds < int64(s.window.Min/time.Second) || in.TTLSeconds > int64(s.window.Max/time.Second)) {
		return CreatedOrder{}, fmt.Errorf("%w: ttlSeconds must be between %d and %d", ErrInvalidOrder,
			int64(s.window.Min/time.Second), int64(s.window.Max/time.Second))
	}
	if o.ExpiresAt, err = s.window.Deadline(o.CreatedAt, time.Duration(in.TTLSeconds)*time.Second); err != nil {
		return CreatedOrder{}, err
	}
	if s.quota != nil {
		if err := s.quota.Reserve(ctx); err != nil {
			return CreatedOrder{}, err
		}
	}
	if err := s.store.InsertOrder(ctx, o); err != nil {
		return CreatedOrder{}, err
	}
	return CreatedOrder{Order: o, Token: s.tokens.Issue(o.ID)}, nil
}

// Authorize checks an order token.
func (s *Service) Authorize(orderID, token string) error {
	return s.tokens.Verify(orderID, token)
}

// Snapshot returns the order's current status.
func (s *Service) Snapshot(ctx context.Context, orderID string) (Snapshot, error) {
	o, err := s.store.Order(ctx, orderID)
	if err != nil {
		return Snapshot{}, err
	}
	return o.Snapshot(), nil
}

// WaitForChange returns the order's status once its seq is past since, or
// the current status when maxWait runs out. This is the long-poll.
func (s *Service) WaitForChange(ctx context.Context, orderID string, since int64, maxWait time.Duration) (Snapshot, error) {
	changed, cancel := s.waiters.Subscribe(orderID)
	defer cancel()
	// Reads are detached from ctx: its end (deadline, client gone, server
	// draining) must yield the current status, even if it lands mid-read.
	snap, err := s.detachedSnapshot(ctx, orderID)
	if err != nil || snap.Seq > since || maxWait <= 0 {
		return snap, err
	}
	ctx, stop := context.WithTimeout(ctx, maxWait)
	defer stop()
	for wait(ctx, changed) {
		snap, err = s.detachedSnapshot(ctx, orderID)
		if err != nil || snap.Seq > since {
			return snap, err
		}
	}
	// Timed out or the client went away: answer with what is true now.
	return s.detachedSnapshot(ctx, orderID)
}

// snapshotReadTimeout bounds one long-poll read, which no longer follows
// the caller's cancellation.
const snapshotReadTimeout = 5 * time.Second

func (s *Service) detachedSnapshot(ctx context.Context, orderID string) (Snapshot, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), snapshotReadTimeout)
	defer cancel()
	return s.Snapshot(ctx, orderID)
}

// Transition applies a status change and, once committed, announces it.
// Duplicate and stale deliveries come back as ErrDuplicateEvent and
// ErrStaleEvent, with nothing announced.
func (s *Service) Transition(ctx context.Context, tr Transition) (StatusChange, error) {
	received := time.Now()
	change, err := s.store.ApplyTransition(ctx, tr)
	if err != nil {
		return StatusChange{}, err
	}
	change.ReceivedAt = received
	s.announceStatus(change)
	return change, nil
}

// announceStatus tells the pages and long-polls of every node about a
// committed status change, whoever made it.
func (s *Service) announceStatus(change StatusChange) {
	if s.notifier != nil {
		s.notifier.PaymentStatusChanged(change)
	}
	s.announce(change.OrderID)
}

// UpdateOrder stores a general change and announces it as an order update.
func (s *Service) UpdateOrder(ctx context.Context, orderID string, patch OrderPatch) (OrderChange, error) {
	if patch.Description == nil && patch.Metadata == nil {
		return OrderChange{}, fmt.Errorf("%w: nothing to change", ErrInvalidOrder)
	}
	if !ValidOrderID(orderID) {
		return OrderChange{}, ErrOrderNotFound
	}
	if err := patch.Validate(); err != nil {
		return OrderChange{}, err
	}
	data := map[string]any{}
	if patch.Description != nil {
		data["description"] = *patch.Description
	}
	if patch.Metadata != nil {
		data["metadata"] = json.RawMessage(patch.Metadata)
	}
	encoded, err := json.Marshal(data)
	if err != nil {
		return OrderChange{}, fmt.Errorf("%w: %v", ErrInvalidOrder, err)
	}
	change, err := s.store.UpdateOrder(ctx, orderID, patch, encoded)
	if err != nil {
		return OrderChange{}, err
	}
	if s.notifier != nil {
		s.notifier.OrderChanged(change)
	}
	s.announce(orderID)
	return change, nil
}

// announce wakes this node's long-polls on the order. Other nodes' polls
// wake from the adapter's broadcast of the same change.
func (s *Service) announce(orderID string) { s.waiters.Notify(orderID) }
