package redisadapter

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Request types of @socket.io/redis-adapter 8.x, on its request and
// response channels.
const (
	reqSockets              = 0
	reqAllRooms             = 1
	reqRemoteJoin           = 2
	reqRemoteLeave          = 3
	reqRemoteDisconnect     = 4
	reqRemoteFetch          = 5
	reqServerSideEmit       = 6
	reqBroadcast            = 7
	reqBroadcastClientCount = 8
	reqBroadcastAck         = 9
)

func jsonBytes(v any) ([]byte, error) { return json.Marshal(v) }

// subscribe reads pattern (when not empty) and channels until the broker
// stops, handing each message to handle. go-redis reconnects and
// subscribes again after a lost connection.
func (a *adapter) subscribe(handle func(*redis.Message), pattern string, channels ...string) {
	ctx := a.b.ctx
	ps := a.b.cfg.SubClient.Subscribe(ctx, channels...)
	defer ps.Close()
	if pattern != "" {
		if err := ps.PSubscribe(ctx, pattern+"*"); err != nil {
			a.b.warn.report("subscribe", "subscribe failed", err)
		}
	}
	// A blocked read ignores the context; closing the subscription ends it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	broken := false
	for {
		v, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
				return
			}
			broken = true
			a.b.warn.report("receive", "subscription read failed; retrying", err)
			if !a.b.pause() {
				return
			}
			continue
		}
		switch msg := v.(type) {
		case *redis.Subscription:
			// go-redis subscribes again after a lost connection.
			if broken {
				broken = false
				a.b.restored()
			}
		case *redis.Message:
			if len(msg.Payload) > a.b.cfg.MaxMessage {
				a.b.warn.report("size", "dropping an oversized message", ErrTooLarge)
				continue
			}
			handle(msg)
		}
	}
}

// onPubSub handles a message of the redis-adapter format.
func (a *adapter) onPubSub(msg *redis.Message) {
	var err error
	switch {
	case msg.Pattern != "" || (strings.HasPrefix(msg.Channel, a.channel) && !strings.HasPrefix(msg.Channel, a.requestChannel)):
		err = a.onBroadcastMessage([]byte(msg.Payload))
	case strings.HasPrefix(msg.Channel, a.responseChannel):
		err = a.onResponse([]byte(msg.Payload))
	case msg.Channel == a.requestChannel:
		err = a.onRequest([]byte(msg.Payload))
	}
	if err != nil {
		a.b.warn.report("malformed", "dropping a message", err)
	}
}

// onBroadcastMessage delivers [uid, packet, opts] from another node.
func (a *adapter) onBroadcastMessage(payload []byte) error {
	v, err := decodeAny(payload)
	if err != nil {
		return err
	}
	list, ok := v.([]any)
	if !ok || len(list) != 3 {
		return ErrMalformed
	}
	if asString(list[0]) == a.uid {
		return nil
	}
	if p, ok := list[1].(map[string]any); ok && p["nsp"] == nil {
		p["nsp"] = "/"
	}
	event, args, err := decodePacket(list[1], a.nsp)
	if err != nil {
		return err
	}
	return a.n.RemoteBroadcast(decodeOpts(list[2]), event, args, "")
}

func (a *adapter) onRequest(payload []byte) error {
	v, err := decodeAny(payload)
	if err != nil {
		return err
	}
	req, ok := v.(map[string]any)
	if !ok {
		return ErrMalformed
	}
	if asString(req["uid"]) == a.uid {
		return nil // our own request
	}
	typ, _ := asInt(req["type"])
	id := asString(req["requestId"])
	switch typ {
	case reqRemoteFetch:
		socks := a.n.LocalSockets(decodeOpts(req["opts"]))
		return a.respondJSON(map[string]any{"requestId": id, "sockets": socketsPayload(socks)})
	case reqSockets:
		return a.respondJSON(map[string]any{"requestId": id, "sockets": a.n.LocalSocketIDs(asStrings(req["rooms"]))})
	case reqAllRooms:
		return a.respondJSON(map[string]any{"requestId": id, "rooms": a.n.LocalRooms()})
	case reqRemoteJoin, reqRemoteLeave, reqRemoteDisconnect:
		if req["opts"] == nil {
			return nil // the single-socket form of redis-adapter 6: not supported
		}
		opts := decodeOpts(req["opts"])
		switch typ {
		case reqRemoteJoin:
			a.n.LocalJoin(opts, asStrings(req["rooms"]))
		case reqRemoteLeave:
			a.n.LocalLeave(opts, asStrings(req["rooms"]))
		default:
			close, _ := req["close"].(bool)
			a.n.LocalDisconnect(opts, close)
		}
	case reqServerSideEmit:
		data, ok := req["data"].([]any)
		if !ok || len(data) == 0 {
			return ErrMalformed
		}
		event, ok := data[0].(string)
		if !ok {
			return ErrMalformed
		}
		a.n.RemoteServerSideEmit(event, data[1:])
	case reqBroadcast:
		event, args, err := decodePacket(req["packet"], a.nsp)
		if err != nil {
			return err
		}
		return a.n.LocalBroadcastWithAck(decodeOpts(req["opts"]), event, args,
			func(count int) {
				_ = a.respondJSON(map[string]any{"type": reqBroadcastClientCount, "requestId": id, "clientCount": count})
			},
			func(answer []any) {
				msg, err := encodeMsgpack(map[string]any{"type": reqBroadcastAck, "requestId": id, "packet": firstArg(answer)})
				if err == nil {
					a.b.enqueue(a.responseChannel, msg)
				}
			})
	}
	return nil
}

func (a *adapter) respondJSON(v any) error {
	msg, err := jsonBytes(v)
	if err != nil {
		return err
	}
	a.b.enqueue(a.responseChannel, msg)
	return nil
}

func (a *adapter) onResponse(payload []byte) error {
	v, err := decodeAny(payload)
	if err != nil {
		return err
	}
	resp, ok := v.(map[string]any)
	if !ok {
		return ErrMalformed
	}
	id := asString(resp["requestId"])
	if ack := a.ackRequest(id); ack != nil {
		typ, _ := asInt(resp["type"])
		switch typ {
		case reqBroadcastClientCount:
			if n, ok := asInt(resp["clientCount"]); ok && ack.onCount != nil {
				ack.onCount(int(n))
			}
		case reqBroadcastAck:
			if ack.onAck != nil {
				ack.onAck([]any{resp["packet"]})
			}
		}
		return nil
	}
	if socks, ok := resp["sockets"]; ok {
		a.onFetchAnswer(id, decodeSockets(socks))
	}
	return nil
}
