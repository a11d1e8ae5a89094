package redisadapter

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"paystatus/realtime/socketio"
)

// Message types of socket.io-adapter's ClusterAdapter, which the streams
// adapter carries.
const (
	typeInitialHeartbeat     = 1
	typeHeartbeat            = 2
	typeBroadcast            = 3
	typeSocketsJoin          = 4
	typeSocketsLeave         = 5
	typeDisconnectSockets    = 6
	typeFetchSockets         = 7
	typeFetchSocketsResponse = 8
	typeServerSideEmit       = 9
	typeServerSideEmitResp   = 10
	typeBroadcastClientCount = 11
	typeBroadcastAck         = 12
	typeAdapterClose         = 13
)

// Stream timings and limits.
const (
	streamBlock       = time.Second // one blocking read; bounds how long Close waits
	sessionOpTimeout  = time.Second // saving a session when a socket drops
	restoreMaxBatches = 100         // stream reads while restoring, as Node bounds them
	restoreBatch      = 1000        // entries per such read
)

var offsetPattern = regexp.MustCompile(`^[0-9]+-[0-9]+$`)

// xadd appends a broadcast to the stream and returns its entry id, the
// offset clients see; empty when Redis did not take it (counted).
func (a *adapter) xadd(opts socketio.BroadcastOptions, event string, args []any) string {
	data, err := json.Marshal(map[string]any{"packet": eventPacket(a.nsp, event, args), "opts": encodeOpts(opts)})
	if err != nil {
		a.b.warn.report("encode", "cannot encode a broadcast", err)
		return ""
	}
	ctx, cancel := context.WithTimeout(a.b.ctx, publishTimeout)
	defer cancel()
	id, err := a.b.cfg.Client.XAdd(ctx, &redis.XAddArgs{
		Stream: a.stream, MaxLen: a.b.cfg.MaxLen, Approx: true,
		Values: []any{"uid", a.uid, "nsp", a.nsp, "type", strconv.Itoa(typeBroadcast), "data", string(data)},
	}).Result()
	if err != nil {
		a.b.cfg.OnDropped("error")
		a.b.warn.report("publish", "cross-node publish failed", err)
		return ""
	}
	return id
}

// readStream follows the stream from its end at start until the broker
// stops; after an outage it goes on from the last entry it saw.
func (a *adapter) readStream() {
	defer a.b.wg.Done()
	ctx := a.b.ctx
	offset := "$"
	broken := false
	for ctx.Err() == nil {
		res, err := a.b.cfg.SubClient.XRead(ctx, &redis.XReadArgs{
			Streams: []string{a.stream, offset}, Count: a.b.cfg.ReadCount, Block: streamBlock,
		}).Result()
		if err != nil {
			if errors.Is(err, redis.Nil) {
				if broken {
					broken = false
					a.b.restored()
				}
				continue
			}
			if ctx.Err() != nil {
				return
			}
			broken = true
			a.b.warn.report("receive", "stream read failed; retrying", err)
			if !a.b.pause() {
				return
			}
			continue
		}
		if broken {
			broken = false
			a.b.restored()
		}
		for _, s := range res {
			for _, e := range s.Messages {
				offset = e.ID
				if err := a.onStreamEntry(e); err != nil {
					a.b.warn.report("malformed", "dropping a stream entry", err)
				}
			}
		}
	}
}

func (a *adapter) onStreamEntry(e redis.XMessage) error {
	data := asString(e.Values["data"])
	if len(data) > a.b.cfg.MaxMessage {
		return ErrTooLarge
	}
	if asString(e.Values["nsp"]) != a.nsp || asString(e.Values["uid"]) == a.uid {
		return nil
	}
	typ, ok := asInt(e.Values["type"])
	if !ok {
		return ErrMalformed
	}
	var body any
	if data != "" {
		var err error
		if body, err = decodeStreamData(data); err != nil {
			return err
		}
	}
	return a.onClusterMessage(asString(e.Values["uid"]), typ, body, e.ID)
}

// decodeStreamData reads an entry's data field: JSON, or base64 msgpack
// when the sender's payload held binary.
func decodeStreamData(data string) (any, error) {
	if strings.HasPrefix(data, "{") {
		return decodeAny([]byte(data))
	}
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, errors.Join(ErrMalformed, err)
	}
	var v any
	if err := unmarshalMsgpack(raw, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// onStreamsPubSub handles the streams adapter's pub/sub messages: requests
// that need no history, and answers to this node.
func (a *adapter) onStreamsPubSub(msg *redis.Message) {
	err := func() error {
		v, err := decodeAny([]byte(msg.Payload))
		if err != nil {
			return err
		}
		m, ok := v.(map[string]any)
		if !ok {
			return ErrMalformed
		}
		if asString(m["nsp"]) != a.nsp || asString(m["uid"]) == a.uid {
			return nil
		}
		typ, ok := asInt(m["type"])
		if !ok {
			return ErrMalformed
		}
		return a.onClusterMessage(asString(m["uid"]), typ, m["data"], "")
	}()
	if err != nil {
		a.b.warn.report("malformed", "dropping a message", err)
	}
}

// onClusterMessage handles one message from node uid; offset is its
// stream entry id, empty when it came by pub/sub.
func (a *adapter) onClusterMessage(uid string, typ int64, body any, offset string) error {
	data, _ := body.(map[string]any)
	id := asString(data["requestId"])
	switch typ {
	case typeBroadcast:
		event, args, err := decodePacket(data["packet"], a.nsp)
		if err != nil {
			return err
		}
		opts := decodeOpts(data["opts"])
		if id == "" {
			if a.b.cfg.SessionTTL <= 0 {
				offset = ""
			}
			return a.n.RemoteBroadcast(opts, event, args, offset)
		}
		return a.n.LocalBroadcastWithAck(opts, event, args,
			func(n int) {
				a.respondCluster(uid, typeBroadcastClientCount, map[string]any{"requestId": id, "clientCount": n})
			},
			func(answer []any) {
				a.respondCluster(uid, typeBroadcastAck, map[string]any{"requestId": id, "packet": firstArg(answer)})
			})
	case typeSocketsJoin:
		a.n.LocalJoin(decodeOpts(data["opts"]), asStrings(data["rooms"]))
	case typeSocketsLeave:
		a.n.LocalLeave(decodeOpts(data["opts"]), asStrings(data["rooms"]))
	case typeDisconnectSockets:
		close, _ := data["close"].(bool)
		a.n.LocalDisconnect(decodeOpts(data["opts"]), close)
	case typeFetchSockets:
		socks := a.n.LocalSockets(decodeOpts(data["opts"]))
		a.respondCluster(uid, typeFetchSocketsResponse, map[string]any{"requestId": id, "sockets": socketsPayload(socks)})
	case typeFetchSocketsResponse:
		a.onFetchAnswer(id, decodeSockets(data["sockets"]))
	case typeServerSideEmit:
		packet, ok := data["packet"].([]any)
		if !ok || len(packet) == 0 {
			return ErrMalformed
		}
		event, ok := packet[0].(string)
		if !ok {
			return ErrMalformed
		}
		a.n.RemoteServerSideEmit(event, packet[1:])
	case typeBroadcastClientCount, typeBroadcastAck:
		ack := a.ackRequest(id)
		if ack == nil {
			return nil
		}
		if typ == typeBroadcastClientCount {
			if n, ok := asInt(data["clientCount"]); ok && ack.onCount != nil {
				ack.onCount(int(n))
			}
		} else if ack.onAck != nil {
			ack.onAck([]any{data["packet"]})
		}
	case typeInitialHeartbeat, typeHeartbeat, typeAdapterClose, typeServerSideEmitResp:
		// Node counts nodes with NUMSUB in this version; nothing to track.
	}
	return nil
}

// respondCluster answers node uid on its private channel.
func (a *adapter) respondCluster(uid string, typ int, data map[string]any) {
	msg, err := encodeMsgpack(map[string]any{"uid": a.uid, "nsp": a.nsp, "type": typ, "data": data})
	if err != nil {
		a.b.warn.report("encode", "cannot encode an answer", err)
		return
	}
	a.b.enqueue(a.publicChannel+uid+"#", msg)
}

// persistStreamSession saves a dropped socket's session where any node
// finds it, as Node's streams adapter does: base64 msgpack, expiring with
// the recovery window. Its rooms include its id, as Node lists them.
func (a *adapter) persistStreamSession(s socketio.Session) {
	if a.b.cfg.SessionTTL <= 0 {
		return
	}
	rooms := append([]string{s.SID}, s.Rooms...)
	raw, err := encodeMsgpack(map[string]any{"sid": s.SID, "pid": s.PID, "rooms": rooms, "data": map[string]any{}})
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(a.b.ctx, sessionOpTimeout)
	defer cancel()
	if err := a.b.cfg.Client.Set(ctx, a.b.cfg.SessionKeyPrefix+s.PID, base64.StdEncoding.EncodeToString(raw), a.b.cfg.SessionTTL).Err(); err != nil {
		a.b.cfg.OnDropped("error")
		a.b.warn.report("session", "cannot save a session for recovery", err)
	}
}

// restoreStreamSession takes a saved session and the broadcasts it missed
// from the stream: both the session and the offset's entry must exist.
func (a *adapter) restoreStreamSession(ctx context.Context, pid, offset string) (socketio.Session, bool) {
	if a.b.cfg.SessionTTL <= 0 || !offsetPattern.MatchString(offset) || pid == "" || len(pid) > 64 {
		return socketio.Session{}, false
	}
	c := a.b.cfg.Client
	pipe := c.Pipeline()
	get := pipe.GetDel(ctx, a.b.cfg.SessionKeyPrefix+pid)
	at := pipe.XRange(ctx, a.stream, offset, offset)
	_, _ = pipe.Exec(ctx)
	raw, err := get.Result()
	entries, err2 := at.Result()
	if err != nil || err2 != nil || len(entries) == 0 {
		return socketio.Session{}, false
	}
	s, ok := decodeSession(raw)
	if !ok {
		return socketio.Session{}, false
	}
	s.PID = pid
	withID := append([]string{s.SID}, s.Rooms...)
	for range restoreMaxBatches {
		batch, err := c.XRangeN(ctx, a.stream, nextOffset(offset), "+", restoreBatch).Result()
		if err != nil {
			return socketio.Session{}, false
		}
		for _, e := range batch {
			offset = e.ID
			if asString(e.Values["nsp"]) != a.nsp || asString(e.Values["type"]) != strconv.Itoa(typeBroadcast) {
				continue
			}
			body, err := decodeStreamData(asString(e.Values["data"]))
			if err != nil {
				continue
			}
			data, _ := body.(map[string]any)
			if asString(data["requestId"]) != "" {
				continue
			}
			opts := decodeOpts(data["opts"])
			if !includes(withID, opts) {
				continue
			}
			event, args, err := decodePacket(data["packet"], a.nsp)
			if err != nil {
				continue
			}
			text, err := socketio.EventPacket(a.nsp, event, args, e.ID)
			if err == nil {
				s.Missed = append(s.Missed, text)
			}
		}
		if len(batch) < restoreBatch {
			break
		}
	}
	return s, true
}

func decodeSession(raw string) (socketio.Session, bool) {
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return socketio.Session{}, false
	}
	var m map[string]any
	if err := unmarshalMsgpack(b, &m); err != nil {
		return socketio.Session{}, false
	}
	s := socketio.Session{SID: asString(m["sid"])}
	if s.SID == "" {
		return socketio.Session{}, false
	}
	for _, r := range asStrings(m["rooms"]) {
		if r != s.SID {
			s.Rooms = append(s.Rooms, r)
		}
	}
	return s, true
}

// includes reports whether a broadcast with opts reached a socket in rooms.
func includes(rooms []string, opts socketio.BroadcastOptions) bool {
	in := len(opts.Rooms) == 0
	for _, r := range opts.Rooms {
		if contains(rooms, r) {
			in = true
			break
		}
	}
	if !in {
		return false
	}
	for _, e := range opts.Except {
		if contains(rooms, e) {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// nextOffset is the smallest stream id after offset.
func nextOffset(offset string) string {
	ms, seq, _ := strings.Cut(offset, "-")
	n, _ := strconv.ParseUint(seq, 10, 64)
	return ms + "-" + strconv.FormatUint(n+1, 10)
}
