// A minimal Node socket.io 4.8 server on @socket.io/redis-adapter 8.x
// (ADAPTER=pubsub, the default) or @socket.io/redis-streams-adapter 0.3
// (ADAPTER=streams, with connection state recovery, stream, channels and
// session keys named as the Go server names them), for the mixed-fleet
// tests: it stands in for a node of the original fleet. It has no payment
// logic: `join-order` puts the socket in the order's room unchecked, POST
// /emit broadcasts to a room, POST /emit-with-ack broadcasts with
// acknowledgements and returns them, GET /room-size counts a room across
// the whole fleet.
'use strict';
const http = require('node:http');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const streams = require('@socket.io/redis-streams-adapter');
const { createClient } = require('redis');

async function main() {
  const port = Number(process.env.PORT);
  const pub = createClient({ url: process.env.REDIS_URL });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on('error', (err) => console.error('redis error:', err.message));
  await Promise.all([pub.connect(), sub.connect()]);

  const httpServer = http.createServer((req, res) => route(req, res).catch((err) => {
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: err.message }));
  }));
  const prefix = process.env.REDIS_PREFIX || 'socket.io';
  const opts = { cors: { origin: '*' } };
  if (process.env.ADAPTER === 'streams') {
    opts.adapter = streams.createAdapter(pub, { streamName: prefix, channelPrefix: prefix, sessionKeyPrefix: `${prefix}:session:` });
    opts.connectionStateRecovery = { maxDisconnectionDuration: 120000, skipMiddlewares: true };
  } else {
    opts.adapter = createAdapter(pub, sub, { key: prefix, requestsTimeout: 2500 });
  }
  const io = new Server(httpServer, opts);

  io.on('connection', (socket) => {
    socket.on('join-order', (payload, ack) => {
      const orderId = typeof payload === 'string' ? payload : payload && payload.orderId;
      const room = `order-${orderId}`;
      socket.join(room);
      if (typeof ack === 'function') ack({ success: true, orderId, room });
    });
  });

  async function route(req, res) {
    const url = new URL(req.url, 'http://localhost');
    const reply = (code, body) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'POST' && url.pathname === '/emit') {
      let body = '';
      for await (const chunk of req) body += chunk;
      const { room, event, payload } = JSON.parse(body);
      io.to(room).emit(event, payload);
      return reply(200, { ok: true });
    }
    if (req.method === 'POST' && url.pathname === '/emit-with-ack') {
      let body = '';
      for await (const chunk of req) body += chunk;
      const { room, event, payload, timeout } = JSON.parse(body);
      try {
        const answers = await io.timeout(timeout || 3000).to(room).emitWithAck(event, payload);
        return reply(200, { answers });
      } catch (err) {
        return reply(200, { error: err.message });
      }
    }
    if (req.method === 'GET' && url.pathname === '/room-size') {
      const sockets = await io.in(url.searchParams.get('room')).fetchSockets();
      return reply(200, { size: sockets.length });
    }
    return reply(404, { error: 'not found' });
  }

  httpServer.listen(port, '127.0.0.1', () => console.log(`node fleet server ready on ${port}`));
  process.on('SIGTERM', () => {
    io.close();
    Promise.allSettled([pub.quit(), sub.quit()]).then(() => process.exit(0));
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
