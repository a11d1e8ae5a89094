'use strict';

// Reference implementation of the payment status server on the original
// Node.js stack (http + socket.io + better-sqlite3). It exists only so that
// bench/ can measure the Go server against it with the same load generator;
// it follows the same HTTP and Socket.IO contract and uses library defaults.
// With REDIS_URL set it joins a fleet through @socket.io/redis-adapter, as
// a Node deployment of the original would; several such processes share one
// SQLite file (WAL allows that on one host).

const http = require('node:http');
const crypto = require('node:crypto');
const os = require('node:os');
const path = require('node:path');
const { Server } = require('socket.io');
const Database = require('better-sqlite3');

const PORT = Number.parseInt(process.env.PORT || '3000', 10);
const ORDER_TOKEN_SECRET = process.env.ORDER_TOKEN_SECRET || crypto.randomBytes(32).toString('hex');
const UPI_CALLBACK_SECRET = process.env.UPI_CALLBACK_SECRET || '';
const ADMIN_TOKEN = process.env.ADMIN_TOKEN || '';
const DB_PATH = process.env.DB_PATH || path.join(os.tmpdir(), `paystatus-node-ref-${process.pid}.sqlite`);
const MAX_BODY_BYTES = 64 * 1024;
const REDIS_URL = process.env.REDIS_URL || '';
// The adapter's channel prefix (its `key` option); nodes on one prefix form
// one fleet.
const REDIS_PREFIX = process.env.REDIS_PREFIX || 'socket.io';
// How long a cross-node request (a room count) may take.
const REQUESTS_TIMEOUT_MS = 5000;

const STATUS_FROM_UPI = { SUCCESS: 'completed', FAILURE: 'failed', PENDING: 'processing' };
const TERMINAL = new Set(['completed', 'failed']);

// ---------------------------------------------------------------- storage

// Fleet nodes share the file: a writer waits up to `timeout` ms for
// another's lock rather than failing.
const db = new Database(DB_PATH, { timeout: 10000 });
db.pragma('journal_mode = WAL');
// FULL: every commit fsyncs the WAL before it returns, so a 200 means the
// change survives a power cut. NORMAL would leave that to the next
// checkpoint. The Go server is held to the same promise.
db.pragma('synchronous = FULL');
db.pragma('foreign_keys = ON');
db.exec(`
  CREATE TABLE IF NOT EXISTS orders (
    id          TEXT PRIMARY KEY,
    amount      INTEGER NOT NULL,
    currency    TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL,
    seq         INTEGER NOT NULL DEFAULT 0,
    payment_id  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
  );
  CREATE TABLE IF NOT EXISTS payment_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id        TEXT NOT NULL REFERENCES orders(id),
    txn_id          TEXT NOT NULL UNIQUE,
    source          TEXT NOT NULL,
    status          TEXT NOT NULL,
    previous_status TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    amount          INTEGER NOT NULL,
    vpa             TEXT,
    created_at      TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS payment_events_order ON payment_events(order_id);
`);

const stmt = {
  insertOrder: db.prepare(`INSERT INTO orders (id, amount, currency, description, status, seq, created_at, updated_at)
                           VALUES (@id, @amount, @currency, @description, 'pending', 0, @createdAt, @createdAt)`),
  getOrder: db.prepare('SELECT * FROM orders WHERE id = ?'),
  eventByTxn: db.prepare('SELECT order_id, status, seq FROM payment_events WHERE txn_id = ?'),
  updateOrder: db.prepare(`UPDATE orders SET status = @status, seq = seq + 1, payment_id = @paymentId, updated_at = @updatedAt
                           WHERE id = @id AND seq = @seq`),
  insertEvent: db.prepare(`INSERT INTO payment_events (order_id, txn_id, source, status, previous_status, seq, amount, vpa, created_at)
                           VALUES (@orderId, @txnId, 'upi', @status, @previousStatus, @seq, @amount, @vpa, @createdAt)`),
};

// applyCallback runs inside one transaction: dedupe by txnId, check the
// transition, bump seq, record the event. Returns a result object; `update`
// is set only when the order changed and a broadcast is due.
const applyCallback = db.transaction((cb) => {
  const seen = stmt.eventByTxn.get(cb.txnId);
  if (seen) {
    const order = stmt.getOrder.get(seen.order_id);
    return { code: 200, body: { ok: true, status: order.status, seq: order.seq, duplicate: true } };
  }
  const order = stmt.getOrder.get(cb.orderId);
  if (!order) return { code: 404, body: { ok: false, error: 'order not found' } };
  if (cb.amount !== order.amount) return { code: 422, body: { ok: false, error: 'amount does not match order' } };

  const next = STATUS_FROM_UPI[cb.status];
  if (TERMINAL.has(order.status) || next === order.status) {
    if (TERMINAL.has(order.status) && next !== order.status) {
      return { code: 409, body: { ok: false, error: `order already ${order.status}`, status: order.status, seq: order.seq } };
    }
    return { code: 200, body: { ok: true, status: order.status, seq: order.seq } };
  }

  const updatedAt = new Date().toISOString();
  const seq = order.seq + 1;
  stmt.updateOrder.run({ id: order.id, status: next, paymentId: cb.txnId, updatedAt, seq: order.seq });
  stmt.insertEvent.run({
    orderId: order.id, txnId: cb.txnId, status: next, previousStatus: order.status,
    seq, amount: cb.amount, vpa: cb.vpa ?? null, createdAt: updatedAt,
  });
  return {
    code: 200,
    body: { ok: true, status: next, seq },
    update: {
      orderId: order.id, status: next, previousStatus: order.status, seq,
      amount: order.amount, currency: order.currency, paymentId: cb.txnId,
      source: 'upi', updatedAt,
    },
  };
});

// ---------------------------------------------------------------- helpers

function hmacHex(secret, data) {
  return crypto.createHmac('sha256', secret).update(data).digest('hex');
}

function safeEqualHex(expectedHex, givenHex) {
  if (typeof givenHex !== 'string') return false;
  const a = Buffer.from(expectedHex, 'utf8');
  const b = Buffer.from(givenHex.toLowerCase(), 'utf8');
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

function orderToken(orderId) {
  return hmacHex(ORDER_TOKEN_SECRET, orderId);
}

function roomFor(orderId) {
  return `order-${orderId}`;
}

function statusView(order) {
  return {
    orderId: order.id, status: order.status, seq: order.seq, amount: order.amount,
    currency: order.currency, paymentId: order.payment_id, updatedAt: order.updated_at,
  };
}

function sendJSON(res, code, body) {
  const data = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(data) });
  res.end(data);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(Object.assign(new Error('body too large'), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseJSON(raw) {
  try {
    const v = JSON.parse(raw.toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- HTTP routes

async function createOrder(req, res) {
  const body = parseJSON(await readBody(req));
  if (!body) return sendJSON(res, 400, { error: 'invalid JSON body' });
  const { amount, currency, description = '' } = body;
  if (!Number.isInteger(amount) || amount <= 0) return sendJSON(res, 400, { error: 'amount must be a positive integer (minor units)' });
  if (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency)) return sendJSON(res, 400, { error: 'currency must be a 3-letter ISO code' });
  if (typeof description !== 'string' || description.length > 500) return sendJSON(res, 400, { error: 'description must be a string of at most 500 characters' });

  const id = crypto.randomUUID();
  const createdAt = new Date().toISOString();
  stmt.insertOrder.run({ id, amount, currency, description, createdAt });
  sendJSON(res, 201, { id, status: 'pending', amount, currency, token: orderToken(id), createdAt });
}

async function upiCallback(req, res) {
  const raw = await readBody(req);
  if (!UPI_CALLBACK_SECRET || !safeEqualHex(hmacHex(UPI_CALLBACK_SECRET, raw), req.headers['x-signature'])) {
    return sendJSON(res, 401, { ok: false, error: 'invalid signature' });
  }
  const cb = parseJSON(raw);
  if (!cb || typeof cb.orderId !== 'string' || typeof cb.txnId !== 'string' || cb.txnId === '' ||
      !Object.hasOwn(STATUS_FROM_UPI, cb.status) || !Number.isInteger(cb.amount)) {
    return sendJSON(res, 400, { ok: false, error: 'invalid callback payload' });
  }
  // BEGIN IMMEDIATE: with fleet nodes on one file, a read that later
  // upgrades to a write could fail on another node's commit.
  const result = applyCallback.immediate(cb);
  if (result.update) {
    io.to(roomFor(result.update.orderId)).emit('payment-status-update', result.update);
  }
  sendJSON(res, result.code, result.body);
}

function testConnection(req, res, orderId) {
  const auth = req.headers.authorization || '';
  const given = auth.startsWith('Bearer ') ? auth.slice(7) : '';
  const ok = ADMIN_TOKEN !== '' && given.length === ADMIN_TOKEN.length &&
    crypto.timingSafeEqual(Buffer.from(given), Buffer.from(ADMIN_TOKEN));
  if (!ok) return sendJSON(res, 401, { error: 'unauthorized' });
  if (!stmt.getOrder.get(orderId)) return sendJSON(res, 404, { error: 'order not found' });

  const room = roomFor(orderId);
  const localSize = io.sockets.adapter.rooms.get(room)?.size ?? 0;
  if (!fleet) {
    io.to(room).emit('connection-test', { orderId, timestamp: Date.now(), roomSize: localSize });
    return sendJSON(res, 200, { orderId, room, roomSize: localSize });
  }
  // In a fleet the broadcast goes out first and never waits for the count;
  // the count across nodes (each node answers with its local size) only
  // feeds the HTTP reply.
  io.to(room).emit('connection-test', { orderId, timestamp: Date.now(), roomSize: localSize });
  // The adapter's requestsTimeout bounds the wait for the other nodes.
  io.serverSideEmitWithAck('room-size', room).then((sizes) => {
    const roomSize = localSize + sizes.reduce((a, b) => a + b, 0);
    sendJSON(res, 200, { orderId, room, roomSize });
  }, (err) => sendJSON(res, 503, { error: `room count across nodes failed: ${err.message}` }));
}

const TEST_CONNECTION = /^\/api\/orders\/([^/]+)\/test-connection$/;

async function route(req, res) {
  const { pathname } = new URL(req.url, 'http://localhost');
  if (req.method === 'GET' && pathname === '/healthz') return sendJSON(res, 200, { status: 'ok' });
  if (req.method === 'POST' && pathname === '/api/orders') return createOrder(req, res);
  if (req.method === 'POST' && pathname === '/api/payment/upi/callback') return upiCallback(req, res);
  const m = req.method === 'POST' && TEST_CONNECTION.exec(pathname);
  if (m) return testConnection(req, res, decodeURIComponent(m[1]));
  sendJSON(res, 404, { error: 'not found' });
}

const httpServer = http.createServer((req, res) => {
  route(req, res).catch((err) => {
    if (!res.headersSent) sendJSON(res, err.status || 500, { error: err.status ? err.message : 'internal error' });
    if (!err.status) console.error('request failed:', err);
  });
});

// ---------------------------------------------------------------- Socket.IO

const io = new Server(httpServer);
let fleet = null; // the Redis clients, when REDIS_URL is set

// Another node asks for this node's share of a room.
io.on('room-size', (room, reply) => {
  if (typeof reply === 'function') reply(io.sockets.adapter.rooms.get(room)?.size ?? 0);
});

io.on('connection', (socket) => {
  socket.on('join-order', (payload, ack) => {
    const orderId = payload && typeof payload.orderId === 'string' ? payload.orderId : '';
    const reply = (body) => {
      socket.emit('joined-order', body);
      if (typeof ack === 'function') ack(body);
    };
    if (!orderId || typeof payload.token !== 'string') {
      return reply({ orderId, success: false, error: 'orderId and token are required' });
    }
    if (!safeEqualHex(orderToken(orderId), payload.token)) {
      return reply({ orderId, success: false, error: 'invalid token' });
    }
    const order = stmt.getOrder.get(orderId);
    if (!order) return reply({ orderId, success: false, error: 'order not found' });
    const room = roomFor(orderId);
    socket.join(room);
    reply({ orderId, room, success: true, status: statusView(order) });
  });
});

// ---------------------------------------------------------------- lifecycle

async function joinFleet() {
  const { createClient } = require('redis');
  const { createAdapter } = require('@socket.io/redis-adapter');
  const pub = createClient({ url: REDIS_URL });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on('error', (err) => console.error('redis:', err.message));
  await Promise.all([pub.connect(), sub.connect()]);
  io.adapter(createAdapter(pub, sub, { key: REDIS_PREFIX, requestsTimeout: REQUESTS_TIMEOUT_MS }));
  fleet = { pub, sub };
}

(REDIS_URL ? joinFleet() : Promise.resolve()).then(() => {
  httpServer.listen(PORT, () => {
    console.log(`node reference server listening on :${PORT} (db ${DB_PATH}${fleet ? `, fleet ${REDIS_PREFIX}` : ''})`);
  });
}, (err) => {
  console.error('joining the fleet failed:', err);
  process.exit(1);
});

let stopping = false;
function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: shutting down`);
  const force = setTimeout(() => process.exit(1), 10_000);
  force.unref();
  io.close(async () => {
    if (fleet) await Promise.allSettled([fleet.pub.quit(), fleet.sub.quit()]);
    db.close();
    process.exit(0);
  });
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
