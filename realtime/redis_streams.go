package realtime

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/zishang520/socket.io/adapters/adapter/v3"
	sioredis "github.com/zishang520/socket.io/adapters/redis/v3"
	redisadapter "github.com/zishang520/socket.io/adapters/redis/v3/adapter"
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/utils"
)

// Stream reading limits, as in Node's streams adapter.
const (
	streamsMaxLen    = 10_000
	streamsReadCount = 100
	streamsBlock     = 5 * time.Second
	streamsRetry     = time.Second
)

// streamsBuilder makes the Redis Streams adapters and reads the stream for
// them, in place of the library's own builder. In the library version we
// pin, the heartbeat adapter routes other nodes' answers to its cross-node
// requests (fetchSockets, so room sizes) past the code waiting for them,
// and every such request times out. This reader hands those answers to the
// waiting handler too.
type streamsBuilder struct {
	ctx   context.Context
	redis *sioredis.RedisClient
	opts  *redisadapter.RedisStreamsAdapterOptions

	mu       sync.Mutex
	adapters map[string]redisadapter.RedisStreamsAdapter // by namespace; guarded by mu
	reading  bool                                        // guarded by mu
}

func newStreamsBuilder(ctx context.Context, client *sioredis.RedisClient, prefix string) *streamsBuilder {
	opts := redisadapter.DefaultRedisStreamsAdapterOptions()
	opts.SetStreamName(prefix)
	opts.SetSessionKeyPrefix(prefix + ":session:")
	opts.SetMaxLen(streamsMaxLen)
	opts.SetReadCount(streamsReadCount)
	// Set both explicitly: the library's own default interval is given in
	// the wrong unit and would heartbeat every few microseconds.
	opts.SetHeartbeatInterval(streamsHeartbeatInterval)
	opts.SetHeartbeatTimeout(streamsHeartbeatTimeoutMS)
	return &streamsBuilder{ctx: ctx, redis: client, opts: opts, adapters: map[string]redisadapter.RedisStreamsAdapter{}}
}

// New implements socket.AdapterConstructor.
func (b *streamsBuilder) New(nsp socket.Namespace) socket.Adapter {
	a := redisadapter.NewRedisStreamsAdapter(nsp, b.redis, b.opts)
	name := nsp.Name()
	a.Cleanup(func() {
		b.mu.Lock()
		delete(b.adapters, name)
		b.mu.Unlock()
	})
	b.mu.Lock()
	b.adapters[name] = a
	start := !b.reading
	b.reading = true
	b.mu.Unlock()
	if start {
		// Read from the stream's current end, fixed now, so the answers to
		// this node's first heartbeat are not missed.
		go b.read(b.lastID())
	}
	return &streamsAdapter{a}
}

// streamsAdapter corrects the session the library restores: it lists each
// missed broadcast as a whole packet where the socket expects the packet's
// event arguments, and clients reject the replay as unparsable and
// reconnect in a loop.
type streamsAdapter struct {
	redisadapter.RedisStreamsAdapter
}

func (a *streamsAdapter) RestoreSession(pid socket.PrivateSessionId, offset string) (*socket.Session, error) {
	s, err := a.RedisStreamsAdapter.RestoreSession(pid, offset)
	if err != nil || s == nil {
		return s, err
	}
	for i, p := range s.MissedPackets {
		if pkt, ok := p.(*parser.Packet); ok {
			s.MissedPackets[i] = pkt.Data
		}
	}
	return s, nil
}

func (b *streamsBuilder) lastID() string {
	ctx, cancel := context.WithTimeout(b.ctx, time.Second)
	defer cancel()
	last, err := b.redis.Client.XRevRangeN(ctx, b.opts.StreamName(), "+", "-", 1).Result()
	if err != nil {
		return "$"
	}
	if len(last) == 0 {
		return "0-0"
	}
	return last[0].ID
}

func (b *streamsBuilder) read(offset string) {
	for b.ctx.Err() == nil {
		res, err := b.redis.Sub().XRead(b.ctx, &goredis.XReadArgs{
			Streams: []string{b.opts.StreamName(), offset},
			Count:   b.opts.ReadCount(),
			Block:   streamsBlock,
		}).Result()
		if err != nil {
			if errors.Is(err, goredis.Nil) {
				continue
			}
			if b.ctx.Err() != nil {
				return
			}
			b.redis.Emit("error", err)
			select {
			case <-b.ctx.Done():
				return
			case <-time.After(streamsRetry):
			}
			continue
		}
		for _, stream := range res {
			for _, entry := range stream.Messages {
				offset = entry.ID
				b.dispatch(redisadapter.RawClusterMessage(entry.Values), entry.ID)
			}
		}
	}
}

func (b *streamsBuilder) dispatch(raw redisadapter.RawClusterMessage, id string) {
	b.mu.Lock()
	a := b.adapters[raw.Nsp()]
	b.mu.Unlock()
	if a == nil {
		return
	}
	if err := a.OnRawMessage(raw, id); err != nil {
		return
	}
	if resp := responseOf(raw); resp != nil && resp.Uid != a.Uid() {
		a.OnResponse(resp)
	}
}

// responseOf decodes the answers the library misroutes: fetchSockets and
// serverSideEmit responses. Anything else, or anything undecodable, is nil.
func responseOf(raw redisadapter.RawClusterMessage) *adapter.ClusterResponse {
	n, err := strconv.Atoi(raw.Type())
	if err != nil {
		return nil
	}
	var data any
	switch t := adapter.MessageType(n); t {
	case adapter.FETCH_SOCKETS_RESPONSE:
		data = &adapter.FetchSocketsResponse{}
	case adapter.SERVER_SIDE_EMIT_RESPONSE:
		data = &adapter.ServerSideEmitResponse{}
	default:
		return nil
	}
	body := raw.Data()
	if body == "" {
		return nil
	}
	// JSON unless the sender needed binary, then base64 msgpack.
	if body[0] == '{' {
		err = json.Unmarshal([]byte(body), data)
	} else {
		var bin []byte
		if bin, err = base64.StdEncoding.DecodeString(body); err == nil {
			err = utils.MsgPack().Decode(bin, data)
		}
	}
	if err != nil {
		return nil
	}
	return &adapter.ClusterResponse{Uid: adapter.ServerId(raw.Uid()), Nsp: raw.Nsp(), Type: adapter.MessageType(n), Data: data}
}
