package redisadapter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"paystatus/realtime/socketio"
)

// adapter is one namespace's link to the fleet.
type adapter struct {
	b     *Broker
	n     *socketio.Namespace
	local socketio.Adapter // this node's sessions, in PubSub mode
	uid   string
	nsp   string

	// PubSub mode's channels.
	channel, requestChannel, responseChannel, specificResponseChannel string
	// Streams mode's stream and channels.
	stream, publicChannel, privateChannel string

	mu       sync.Mutex
	requests map[string]*request    // guarded by mu; fetches awaiting answers
	acks     map[string]*ackRequest // guarded by mu; broadcasts awaiting acks
}

// request is a fetch of sockets (or of their ids) waiting for the other
// nodes' answers.
type request struct {
	expected int
	answered int
	sockets  []socketio.RemoteSocket
	done     chan struct{} // closed when all have answered
}

// ackRequest routes the answers to an acknowledged broadcast.
type ackRequest struct {
	onCount func(int)
	onAck   func([]any)
}

func newAdapter(b *Broker, n *socketio.Namespace) *adapter {
	a := &adapter{
		b: b, n: n, local: socketio.NewMemoryAdapter(n), uid: randomUID(), nsp: n.Name(),
		requests: map[string]*request{}, acks: map[string]*ackRequest{},
	}
	p := b.cfg.Prefix
	a.channel = p + "#" + a.nsp + "#"
	a.requestChannel = p + "-request#" + a.nsp + "#"
	a.responseChannel = p + "-response#" + a.nsp + "#"
	a.specificResponseChannel = a.responseChannel + a.uid + "#"
	a.stream = p
	a.publicChannel = p + "#" + a.nsp + "#"
	a.privateChannel = a.publicChannel + a.uid + "#"
	return a
}

func (a *adapter) streams() bool { return a.b.cfg.Mode == Streams }

func (a *adapter) run() {
	defer a.b.wg.Done()
	if a.streams() {
		a.b.wg.Add(1)
		go a.readStream()
		a.subscribe(a.onStreamsPubSub, "", a.publicChannel, a.privateChannel)
		return
	}
	a.subscribe(a.onPubSub, a.channel, a.requestChannel, a.responseChannel, a.specificResponseChannel)
}

// Broadcast implements socketio.Adapter.
func (a *adapter) Broadcast(opts socketio.BroadcastOptions, event string, args []any) error {
	if a.streams() {
		offset := a.xadd(opts, event, args)
		if a.b.cfg.SessionTTL <= 0 {
			offset = ""
		}
		return a.n.LocalBroadcast(opts, event, args, offset)
	}
	// This node's sockets get it even when it cannot be sent to the others.
	return errors.Join(a.Publish(opts, event, args), a.n.LocalBroadcast(opts, event, args, ""))
}

// Publish implements socketio.Adapter.
func (a *adapter) Publish(opts socketio.BroadcastOptions, event string, args []any) error {
	if a.streams() {
		a.xadd(opts, event, args)
		return nil
	}
	msg, err := encodeMsgpack([]any{a.uid, eventPacket(a.nsp, event, args), encodeOpts(opts)})
	if err != nil {
		return fmt.Errorf("redisadapter: encode broadcast: %w", err)
	}
	ch := a.channel
	if len(opts.Rooms) == 1 {
		ch += opts.Rooms[0] + "#"
	}
	a.b.enqueue(ch, msg)
	return nil
}

// BroadcastWithAck implements socketio.Adapter.
func (a *adapter) BroadcastWithAck(opts socketio.BroadcastOptions, event string, args []any, timeout time.Duration, onCount func(int), onAck func([]any)) error {
	id := randomUID()
	var msg []byte
	var err error
	if a.streams() {
		msg, err = encodeMsgpack(map[string]any{"uid": a.uid, "nsp": a.nsp, "type": typeBroadcast,
			"data": map[string]any{"packet": eventPacket(a.nsp, event, args), "requestId": id, "opts": encodeOpts(opts)}})
	} else {
		msg, err = encodeMsgpack(map[string]any{"uid": a.uid, "requestId": id, "type": reqBroadcast,
			"packet": eventPacket(a.nsp, event, args), "opts": encodeOpts(opts)})
	}
	if err != nil {
		return fmt.Errorf("redisadapter: encode broadcast: %w", err)
	}
	a.mu.Lock()
	a.acks[id] = &ackRequest{onCount: onCount, onAck: onAck}
	a.mu.Unlock()
	time.AfterFunc(timeout, func() {
		a.mu.Lock()
		delete(a.acks, id)
		a.mu.Unlock()
	})
	if a.streams() {
		a.b.enqueue(a.publicChannel, msg)
	} else {
		a.b.enqueue(a.requestChannel, msg)
	}
	return a.n.LocalBroadcastWithAck(opts, event, args, onCount, onAck)
}

// ServerSideEmit implements socketio.Adapter.
func (a *adapter) ServerSideEmit(event string, args []any) error {
	data := append([]any{event}, args...)
	if a.streams() {
		msg, err := encodeMsgpack(map[string]any{"uid": a.uid, "nsp": a.nsp, "type": typeServerSideEmit, "data": map[string]any{"packet": data}})
		if err != nil {
			return err
		}
		a.b.enqueue(a.publicChannel, msg)
		return nil
	}
	msg, err := jsonBytes(map[string]any{"uid": a.uid, "type": reqServerSideEmit, "data": data})
	if err != nil {
		return err
	}
	a.b.enqueue(a.requestChannel, msg)
	return nil
}

// FetchSockets implements socketio.Adapter: it asks every other node and
// waits for all of them, as Node's adapters do.
func (a *adapter) FetchSockets(ctx context.Context, opts socketio.BroadcastOptions) ([]socketio.RemoteSocket, error) {
	return a.gather(ctx, a.n.LocalSockets(opts), func(id string) (string, []byte, error) {
		if a.streams() {
			msg, err := encodeMsgpack(map[string]any{"uid": a.uid, "nsp": a.nsp, "type": typeFetchSockets,
				"data": map[string]any{"opts": encodeOpts(opts), "requestId": id}})
			return a.publicChannel, msg, err
		}
		msg, err := jsonBytes(map[string]any{"uid": a.uid, "requestId": id, "type": reqRemoteFetch,
			"opts": map[string]any{"rooms": nonNil(opts.Rooms), "except": nonNil(opts.Except)}})
		return a.requestChannel, msg, err
	})
}

// SocketIDs implements socketio.Adapter. In PubSub mode the other nodes
// answer with ids alone (the adapter's SOCKETS request); the streams
// adapter has no such request, so there it fetches the sockets.
func (a *adapter) SocketIDs(ctx context.Context, rooms []string) ([]string, error) {
	opts := socketio.BroadcastOptions{Rooms: rooms}
	var socks []socketio.RemoteSocket
	var err error
	if a.streams() {
		socks, err = a.FetchSockets(ctx, opts)
	} else {
		local := a.n.LocalSocketIDs(rooms)
		socks = make([]socketio.RemoteSocket, len(local))
		for i, id := range local {
			socks[i].ID = id
		}
		socks, err = a.gather(ctx, socks, func(id string) (string, []byte, error) {
			msg, err := jsonBytes(map[string]any{"uid": a.uid, "requestId": id, "type": reqSockets, "rooms": nonNil(rooms)})
			return a.requestChannel, msg, err
		})
	}
	seen := make(map[string]struct{}, len(socks))
	ids := make([]string, 0, len(socks))
	for _, s := range socks {
		if _, dup := seen[s.ID]; !dup {
			seen[s.ID] = struct{}{}
			ids = append(ids, s.ID)
		}
	}
	return ids, err
}

// gather sends the request that build makes (given its request id) and
// collects the sockets every other node answers with, after local. On
// failure it returns what it has with the error.
func (a *adapter) gather(ctx context.Context, local []socketio.RemoteSocket, build func(id string) (channel string, msg []byte, err error)) ([]socketio.RemoteSocket, error) {
	if _, has := ctx.Deadline(); !has {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.b.cfg.RequestTimeout)
		defer cancel()
	}
	countOn := a.requestChannel
	if a.streams() {
		countOn = a.publicChannel
	}
	subs, err := a.b.cfg.Client.PubSubNumSub(ctx, countOn).Result()
	if err != nil {
		return local, fmt.Errorf("redisadapter: count nodes: %w", err)
	}
	others := int(subs[countOn]) - 1
	if others <= 0 {
		return local, nil
	}
	id := randomUID()
	req := &request{expected: others, sockets: local, done: make(chan struct{})}
	a.mu.Lock()
	a.requests[id] = req
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.requests, id)
		a.mu.Unlock()
	}()
	ch, msg, err := build(id)
	if err != nil {
		return local, err
	}
	if err := a.b.publishNow(ctx, ch, msg); err != nil {
		return local, fmt.Errorf("redisadapter: fetch sockets: %w", err)
	}
	select {
	case <-req.done:
		a.mu.Lock()
		defer a.mu.Unlock()
		return req.sockets, nil
	case <-ctx.Done():
		a.mu.Lock()
		defer a.mu.Unlock()
		return req.sockets, fmt.Errorf("%w: %d of %d answered", ErrTimeout, req.answered, req.expected)
	}
}

// onFetchAnswer adds one node's sockets to a waiting fetch.
func (a *adapter) onFetchAnswer(id string, socks []socketio.RemoteSocket) {
	a.mu.Lock()
	defer a.mu.Unlock()
	req, ok := a.requests[id]
	if !ok || req.answered >= req.expected {
		return
	}
	req.answered++
	req.sockets = append(req.sockets, socks...)
	if req.answered == req.expected {
		close(req.done)
	}
}

func (a *adapter) ackRequest(id string) *ackRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.acks[id]
}

// PersistSession implements socketio.Adapter.
func (a *adapter) PersistSession(s socketio.Session) {
	if a.streams() {
		a.persistStreamSession(s)
		return
	}
	a.local.PersistSession(s)
}

// RestoreSession implements socketio.Adapter.
func (a *adapter) RestoreSession(ctx context.Context, pid, offset string) (socketio.Session, bool) {
	if a.streams() {
		return a.restoreStreamSession(ctx, pid, offset)
	}
	return a.local.RestoreSession(ctx, pid, offset)
}

// Close implements socketio.Adapter; the Broker's Close stops the reads.
func (a *adapter) Close() error { return nil }
