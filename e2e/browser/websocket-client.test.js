'use strict';
// static/js/websocket-client.js in Node, with a fake socket.io client and a
// fake fetch: the parts of its logic that a real server cannot be made to show
// on demand (duplicates, reconnect exhaustion, probes, refused handshakes).

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const PaymentWebSocket = require(path.join(__dirname, '..', '..', 'static', 'js', 'websocket-client.js'));

class Emitter {
  constructor() { this.handlers = {}; }
  on(event, fn) { (this.handlers[event] = this.handlers[event] || []).push(fn); return this; }
  fire(event, ...args) { (this.handlers[event] || []).slice().forEach((fn) => fn(...args)); }
  removeAllListeners(event) {
    if (event) delete this.handlers[event];
    else this.handlers = {};
    return this;
  }
}

// A stand-in for window.io: records each socket it makes; tests drive them.
function installFakeIo() {
  const sockets = [];
  const io = (url, options) => {
    const socket = new Emitter();
    Object.assign(socket, {
      url, options, emitted: [], active: true, connected: false, id: undefined, disconnected: false,
    });
    socket.io = new Emitter();
    socket.io.engine = new Emitter();
    socket.io.engine.transport = { name: 'polling' };
    socket.emit = (event, ...args) => { socket.emitted.push([event, ...args]); };
    socket.connect = () => { socket.connectCalls = (socket.connectCalls || 0) + 1; };
    socket.disconnect = () => { socket.connected = false; socket.active = false; socket.disconnected = true; };
    socket.serverConnect = (id) => { socket.connected = true; socket.id = id; socket.fire('connect'); };
    socket.lose = (reason) => { socket.connected = false; socket.id = undefined; socket.fire('disconnect', reason); };
    socket.joins = () => socket.emitted.filter((e) => e[0] === 'join-order');
    sockets.push(socket);
    return socket;
  };
  io.sockets = sockets;
  globalThis.io = io;
  return io;
}

// fetch stand-in: respond(url, n) returns {status, body}, or null to hold the
// request (a long-poll the server keeps open) until it is aborted.
function installFakeFetch(respond) {
  const calls = [];
  const aborted = [];
  const headers = [];
  globalThis.fetch = (url, options = {}) => {
    calls.push(url);
    headers.push(options.headers || {});
    return new Promise((resolve, reject) => {
      if (options.signal) {
        options.signal.addEventListener('abort', () => {
          aborted.push(url);
          reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
        });
      }
      Promise.resolve(respond(url, calls.length)).then((r) => {
        if (r) resolve({ ok: r.status < 300, status: r.status, json: async () => r.body });
      });
    });
  };
  return { calls, aborted, headers };
}

async function until(what, fn, timeoutMs = 2000) {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const status = (s, seq, extra = {}) => ({
  orderId: 'ord_1', status: s, seq, amount: 100, currency: 'INR', paymentId: null, ...extra,
});

function makeClient(options = {}) {
  const seen = { statuses: [], states: [], errors: [] };
  const client = new PaymentWebSocket({
    orderId: 'ord_1',
    token: 'tok_1',
    url: 'http://api.test',
    debug: false,
    onStatus: (s) => seen.statuses.push(`${s.status}#${s.seq}`),
    onConnectionChange: (state) => seen.states.push(state),
    onError: (err) => seen.errors.push(err.message),
    ...options,
  });
  return { client, seen };
}

test.afterEach(() => {
  delete globalThis.io;
  delete globalThis.fetch;
});

test('drives socket.io-client reconnection options and passes the token in the handshake', async () => {
  const io = installFakeIo();
  const { client } = makeClient();
  await until('a socket', () => io.sockets.length === 1);
  const { url, options } = io.sockets[0];
  assert.equal(url, 'http://api.test');
  assert.equal(options.path, '/socket.io/');
  assert.equal(options.reconnection, true);
  assert.equal(options.reconnectionAttempts, 5);
  assert.equal(options.reconnectionDelay, 1000);
  assert.equal(options.reconnectionDelayMax, 30000);
  assert.ok(options.randomizationFactor > 0, 'jitter');
  assert.deepEqual(options.auth, { token: 'tok_1' });
  assert.equal(options.transports, undefined, 'transports left to socket.io');
  client.close();
});

test('joins on every connect and takes the status from joined-order', async () => {
  const io = installFakeIo();
  const { client, seen } = makeClient();
  await until('a socket', () => io.sockets.length === 1);
  const socket = io.sockets[0];
  socket.serverConnect('s1');
  assert.deepEqual(socket.joins().map((j) => j[1]), [{ orderId: 'ord_1', token: 'tok_1' }]);
  socket.fire('joined-order', { orderId: 'ord_1', room: 'r', success: true, status: status('pending', 0) });
  // The ack of the same join carries the same payload: applied once.
  socket.joins()[0][2]({ orderId: 'ord_1', room: 'r', success: true, status: status('pending', 0) });

  socket.lose('transport close');
  assert.equal(client.state, 'reconnecting');
  socket.serverConnect('s2');
  assert.equal(socket.joins().length, 2, 'joined again after reconnecting');
  socket.fire('joined-order', { orderId: 'ord_1', success: true, status: status('processing', 1) });

  assert.deepEqual(seen.statuses, ['pending#0', 'processing#1']);
  assert.deepEqual(seen.states, ['connecting', 'connected', 'reconnecting', 'connected']);
  client.close();
  assert.equal(client.state, 'closed');
});

test('ignores updates whose seq is not newer, and still acknowledges them', async () => {
  const io = installFakeIo();
  const { client, seen } = makeClient();
  await until('a socket', () => io.sockets.length === 1);
  const socket = io.sockets[0];
  socket.serverConnect('s1');
  socket.fire('joined-order', { orderId: 'ord_1', success: true, status: status('pending', 3) });

  const acks = [];
  socket.fire('payment-status-update', status('processing', 3, { previousStatus: 'pending' }), (a) => acks.push(a));
  socket.fire('payment-status-update', status('processing', 4, { previousStatus: 'pending' }));
  socket.fire('payment-status-update', status('processing', 4), (a) => acks.push(a));
  socket.fire('payment-status-update', status('pending', 2));
  // Another order's update is not ours.
  socket.fire('payment-status-update', { ...status('failed', 9), orderId: 'ord_2' });

  assert.deepEqual(seen.statuses, ['pending#3', 'processing#4']);
  assert.deepEqual(acks, [{ seq: 3, orderId: 'ord_1' }, { seq: 4, orderId: 'ord_1' }]);
  client.close();
});

test('acknowledges a terminal update and then stops everything', async () => {
  const io = installFakeIo();
  const http = installFakeFetch(() => ({ status: 200, body: status('pending', 0) }));
  const { client, seen } = makeClient();
  await until('a socket', () => io.sockets.length === 1);
  const socket = io.sockets[0];
  socket.serverConnect('s1');
  let acked = null;
  socket.fire('payment-status-update', status('completed', 1, { paymentId: 'pay_1' }), (a) => { acked = a; });

  assert.deepEqual(acked, { seq: 1, orderId: 'ord_1' });
  assert.equal(socket.disconnected, true, 'socket closed');
  assert.equal(client.state, 'closed');
  assert.equal(client.isTerminal, true);
  assert.deepEqual(seen.statuses, ['completed#1']);
  // Nothing reconnects or polls afterwards.
  socket.fire('disconnect', 'io client disconnect');
  socket.io.fire('reconnect_failed');
  assert.equal(io.sockets.length, 1);
  assert.equal(http.calls.length, 0);
});

test('falls back to long-polling when the reconnect attempts run out, and stops at a terminal status', async () => {
  const io = installFakeIo();
  const http = installFakeFetch((url, n) => (n === 1
    ? { status: 200, body: status('processing', 1) }
    : { status: 200, body: status('failed', 2) }));
  const { client, seen } = makeClient({ socketRetryInterval: 60000 });
  await until('a socket', () => io.sockets.length === 1);
  const socket = io.sockets[0];
  socket.serverConnect('s1');
  socket.fire('joined-order', { orderId: 'ord_1', success: true, status: status('pending', 0) });
  socket.lose('transport close');
  socket.io.fire('reconnect_attempt', 1);
  socket.io.fire('reconnect_failed');

  assert.equal(socket.disconnected, true);
  await until('the terminal status', () => client.state === 'closed');
  assert.deepEqual(seen.statuses, ['pending#0', 'processing#1', 'failed#2']);
  assert.deepEqual(seen.states, ['connecting', 'connected', 'reconnecting', 'polling', 'closed']);
  const first = new URL(http.calls[0]);
  assert.equal(first.pathname, '/api/payment/status/ord_1');
  assert.equal(first.searchParams.get('token'), null, 'the token stays out of the URL');
  assert.equal(http.headers[0]['X-Order-Token'], 'tok_1', 'the token travels in X-Order-Token');
  assert.equal(first.searchParams.get('since'), '0');
  assert.equal(first.searchParams.get('wait'), '25');
  assert.equal(new URL(http.calls[1]).searchParams.get('since'), '1');
  assert.equal(http.calls.length, 2, 'no poll after the terminal status');
});

test('while polling it probes the socket and switches back when it connects', async () => {
  const io = installFakeIo();
  const http = installFakeFetch(() => null); // every poll is held open
  const { client, seen } = makeClient({ socketRetryInterval: 20 });
  await until('a socket', () => io.sockets.length === 1);
  io.sockets[0].fire('connect_error', new Error('xhr poll error'));
  io.sockets[0].io.fire('reconnect_failed');
  assert.equal(client.state, 'polling');
  await until('a poll in flight', () => http.calls.length === 1);

  // First probe fails: still polling, another probe later.
  await until('a probe', () => io.sockets.length === 2);
  io.sockets[1].fire('connect_error', new Error('xhr poll error'));
  assert.equal(io.sockets[1].disconnected, true);
  assert.equal(client.state, 'polling');

  await until('a second probe', () => io.sockets.length === 3, 3000);
  io.sockets[2].serverConnect('s3');
  assert.equal(client.state, 'connected');
  assert.equal(http.aborted.length, 1, 'the held poll was aborted');
  assert.equal(io.sockets[2].joins().length, 1);
  assert.deepEqual(seen.states, ['connecting', 'reconnecting', 'polling', 'connected']);
  client.close();
});

test('reconnects by itself, with back-off, when the server ends the session', async () => {
  const io = installFakeIo();
  installFakeFetch(() => null);
  const { client } = makeClient({ reconnectDelay: 10, maxReconnectAttempts: 2, socketRetryInterval: 60000 });
  await until('a socket', () => io.sockets.length === 1);
  const socket = io.sockets[0];
  socket.serverConnect('s1');
  socket.lose('io server disconnect');
  assert.equal(client.state, 'reconnecting');
  await until('a reconnect', () => socket.connectCalls === 1);
  socket.serverConnect('s1b');
  socket.lose('io server disconnect');
  await until('another reconnect', () => socket.connectCalls === 2);
  socket.serverConnect('s1c');
  // A server that keeps closing the session gets polling instead.
  socket.lose('io server disconnect');
  assert.equal(client.state, 'polling');
  client.close();
});

test('a handshake the server refuses goes straight to polling', async () => {
  const io = installFakeIo();
  installFakeFetch(() => null);
  const { client, seen } = makeClient({ socketRetryInterval: 60000 });
  await until('a socket', () => io.sockets.length === 1);
  io.sockets[0].active = false; // what socket.io-client does for a middleware error
  io.sockets[0].fire('connect_error', new Error('invalid token'));
  assert.equal(client.state, 'polling');
  assert.deepEqual(seen.errors, ['invalid token']);
  client.close();
});

test('a refused join falls back to polling, and a refused poll stops with an error', async () => {
  const io = installFakeIo();
  installFakeFetch(() => ({ status: 403, body: { error: 'bad token' } }));
  const { client, seen } = makeClient({ socketRetryInterval: 60000 });
  await until('a socket', () => io.sockets.length === 1);
  io.sockets[0].serverConnect('s1');
  io.sockets[0].fire('joined-order', { orderId: 'ord_1', success: false, error: 'forbidden' });
  await until('closed', () => client.state === 'closed');
  assert.deepEqual(seen.states, ['connecting', 'connected', 'polling', 'closed']);
  assert.deepEqual(seen.errors, ['forbidden', 'bad token']);
});

test('realtime: false polls only and never touches socket.io', async () => {
  const io = installFakeIo();
  const http = installFakeFetch(() => ({ status: 200, body: status('expired', 5) }));
  const { client, seen } = makeClient({ realtime: false, initialStatus: status('pending', 4) });
  await until('closed', () => client.state === 'closed');
  assert.equal(io.sockets.length, 0);
  assert.equal(new URL(http.calls[0]).searchParams.get('since'), '4');
  assert.deepEqual(seen.statuses, ['expired#5']);
  assert.deepEqual(seen.states, ['polling', 'closed']);
});

test('an already terminal initial status starts nothing', async () => {
  const io = installFakeIo();
  const http = installFakeFetch(() => null);
  const { client, seen } = makeClient({ initialStatus: status('completed', 2) });
  await until('closed', () => client.state === 'closed');
  assert.equal(io.sockets.length, 0);
  assert.equal(http.calls.length, 0);
  assert.deepEqual(seen.statuses, []);
});
