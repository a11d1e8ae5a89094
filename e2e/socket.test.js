'use strict';
// The wire contract with the official socket.io clients 2, 3 and 4, each
// over websocket and over polling only, against the real server process.
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, api, createOrder, waitFor } = require('./lib/server');
const { connect, once, collect, connected } = require('./lib/clients');

// One Socket.IO implementation serves a node alone and a fleet alike, so
// the contract runs once.
describe('socket contract', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server.stop(); });

  for (const version of ['v2', 'v3', 'v4']) {
    for (const transport of ['websocket', 'polling']) {
      test(`${version} over ${transport}: join with token, receive completion with seq`, async () => {
        const order = await createOrder(server);
        const socket = connect(version, server.url, { transport });
        try {
          await connected(socket);
          const updates = collect(socket, 'payment-status-update');
          const acked = await new Promise((resolve) => {
            socket.emit('join-order', { orderId: order.id, token: order.token }, resolve);
          });
          assert.equal(acked.success, true);
          assert.equal(acked.room, `order-${order.id}`);
          assert.equal(acked.status.status, 'pending');
          assert.equal(acked.status.seq, 0);
          const res = await api(server, 'POST', `/api/payment/${order.id}/complete`, {
            admin: true, body: { status: 'completed', paymentId: `pay_${version}_${transport}` },
          });
          assert.equal(res.status, 200, res.text);
          assert.equal(res.body.seq, 1);
          await waitFor(() => updates.length >= 1, { message: 'payment-status-update' });
          const u = updates[0];
          assert.equal(u.orderId, order.id);
          assert.equal(u.status, 'completed');
          assert.equal(u.previousStatus, 'pending');
          assert.equal(u.seq, 1);
          assert.equal(u.amount, 49900);
          assert.equal(u.currency, 'INR');
          assert.equal(u.paymentId, `pay_${version}_${transport}`);
          assert.equal(u.source, 'manual');
          assert.ok(Date.parse(u.updatedAt));
        } finally {
          socket.close();
        }
      });
    }
  }

  test('joined-order event mirrors the ack and carries the snapshot', async () => {
    const order = await createOrder(server);
    const socket = connect('v4', server.url);
    try {
      await connected(socket);
      const reply = once(socket, 'joined-order');
      socket.emit('join-order', { orderId: order.id, token: order.token });
      const [payload] = await reply;
      assert.deepEqual(Object.keys(payload).sort(), ['orderId', 'room', 'status', 'success']);
      assert.equal(payload.status.orderId, order.id);
    } finally {
      socket.close();
    }
  });

  test('handshake auth token is accepted', async () => {
    const order = await createOrder(server);
    const socket = connect('v4', server.url, { auth: { token: order.token } });
    try {
      await connected(socket);
      const ack = await socket.timeout(5000).emitWithAck('join-order', order.id);
      assert.equal(ack.success, true);
    } finally {
      socket.close();
    }
  });

  const refusals = [
    ['wrong token', (o) => ({ orderId: o.id, token: 'f'.repeat(64) })],
    ['missing token', (o) => ({ orderId: o.id })],
    ['bare id without token', (o) => o.id],
    ['unknown order', () => ({ orderId: 'ord_doesnotexist', token: 'x' })],
    ['orderId not a string', () => ({ orderId: 12345, token: 'x' })],
    ['oversized orderId', () => ({ orderId: 'a'.repeat(5000), token: 'x' })],
    ['array payload', () => [1, 2, 3]],
  ];
  for (const [name, payloadOf] of refusals) {
    test(`join refused: ${name}`, async () => {
      const order = await createOrder(server);
      const socket = connect('v4', server.url);
      try {
        await connected(socket);
        const updates = collect(socket, 'payment-status-update');
        const ack = await socket.timeout(5000).emitWithAck('join-order', payloadOf(order));
        assert.equal(ack.success, false);
        assert.equal(typeof ack.error, 'string');
        assert.ok(!('room' in ack));
        // Not in the room: a completion does not reach this socket.
        const witness = connect('v4', server.url);
        await connected(witness);
        const seen = collect(witness, 'payment-status-update');
        await witness.timeout(5000).emitWithAck('join-order', { orderId: order.id, token: order.token });
        await api(server, 'POST', `/api/payment/${order.id}/complete`, { admin: true, body: {} });
        await waitFor(() => seen.length === 1, { message: 'witness update' });
        assert.equal(updates.length, 0);
        witness.close();
      } finally {
        socket.close();
      }
    });
  }

  test('leave-order stops updates', async () => {
    const order = await createOrder(server);
    const socket = connect('v4', server.url);
    try {
      await connected(socket);
      const updates = collect(socket, 'payment-status-update');
      await socket.timeout(5000).emitWithAck('join-order', { orderId: order.id, token: order.token });
      const left = await socket.timeout(5000).emitWithAck('leave-order', { orderId: order.id });
      assert.equal(left.success, true);
      const witness = connect('v4', server.url);
      await connected(witness);
      const seen = collect(witness, 'payment-status-update');
      await witness.timeout(5000).emitWithAck('join-order', { orderId: order.id, token: order.token });
      await api(server, 'POST', `/api/payment/${order.id}/complete`, { admin: true, body: { status: 'failed' } });
      await waitFor(() => seen.length === 1, { message: 'witness update' });
      assert.equal(seen[0].status, 'failed');
      assert.equal(updates.length, 0);
      witness.close();
    } finally {
      socket.close();
    }
  });

  test('ping gets pong echoing the payload, as event and ack', async () => {
    const socket = connect('v4', server.url);
    try {
      await connected(socket);
      const pong = once(socket, 'pong');
      const ack = await socket.timeout(5000).emitWithAck('ping', { hello: 'world', n: 7 });
      const [event] = await pong;
      for (const p of [ack, event]) {
        assert.equal(p.hello, 'world');
        assert.equal(p.n, 7);
        assert.equal(typeof p.timestamp, 'number');
      }
    } finally {
      socket.close();
    }
  });

  test('order-update and connection-test reach the room', async () => {
    const order = await createOrder(server);
    const socket = connect('v4', server.url);
    try {
      await connected(socket);
      const orderUpdates = collect(socket, 'order-update');
      const tests = collect(socket, 'connection-test');
      await socket.timeout(5000).emitWithAck('join-order', { orderId: order.id, token: order.token });
      const patch = await api(server, 'PATCH', `/api/orders/${order.id}`, { admin: true, body: { description: 'new', metadata: { cart: 3 } } });
      assert.equal(patch.status, 200, patch.text);
      const tc = await api(server, 'POST', `/api/orders/${order.id}/test-connection`, { admin: true });
      assert.equal(tc.status, 200, tc.text);
      assert.equal(tc.body.roomSize, 1);
      await waitFor(() => orderUpdates.length === 1 && tests.length === 1, { message: 'order-update and connection-test' });
      assert.equal(orderUpdates[0].seq, 1);
      assert.equal(orderUpdates[0].data.description, 'new');
      assert.deepEqual(orderUpdates[0].data.metadata, { cart: 3 });
      assert.equal(tests[0].roomSize, 1);
      assert.equal(tests[0].orderId, order.id);
    } finally {
      socket.close();
    }
  });

  test('unknown events and floods are ignored without harm', async () => {
    const order = await createOrder(server);
    const socket = connect('v4', server.url);
    try {
      await connected(socket);
      socket.emit('no-such-event', { x: 1 });
      for (let i = 0; i < 500; i++) socket.emit('ping', { i });
      // The server survives and the socket still works once the bucket refills.
      await waitFor(async () => {
        const ack = await socket.timeout(1000).emitWithAck('join-order', { orderId: order.id, token: order.token }).catch(() => null);
        return ack && ack.success;
      }, { timeout: 10000, message: 'join after flood' });
      const health = await api(server, 'GET', '/healthz');
      assert.equal(health.status, 200);
    } finally {
      socket.close();
    }
  });
});

describe('legacy ROOM_AUTH=order', () => {
  let server;
  before(async () => { server = await startServer({ env: { ROOM_AUTH: 'order' } }); });
  after(async () => { await server.stop(); });

  test('a v4 client joining with a bare order id gets the update', async () => {
    const order = await createOrder(server);
    const socket = connect('v4', server.url);
    try {
      await connected(socket);
      const updates = collect(socket, 'payment-status-update');
      const joined = once(socket, 'joined-order');
      socket.emit('join-order', order.id);
      const [reply] = await joined;
      assert.equal(reply.success, true);
      await api(server, 'POST', `/api/payment/${order.id}/complete`, { admin: true, body: {} });
      await waitFor(() => updates.length === 1, { message: 'update' });
      assert.equal(updates[0].status, 'completed');
      assert.ok(server.logs.join('').includes('ROOM_AUTH=order'));
    } finally {
      socket.close();
    }
  });

  test('an unknown order is still refused', async () => {
    const socket = connect('v4', server.url);
    try {
      await connected(socket);
      const ack = await socket.timeout(5000).emitWithAck('join-order', 'ord_missing');
      assert.equal(ack.success, false);
    } finally {
      socket.close();
    }
  });
});
