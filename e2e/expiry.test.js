'use strict';
// Expiry on a fleet: two server processes on one database and one Redis
// both sweep for due orders. Exactly one applies each expiry, and the pages
// on both nodes hear of it, acknowledged, through the usual broadcast path.
// Also a restart of a lone node inside an order's window.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, api, createOrder, waitFor } = require('./lib/server');
const { connect, collect, connected } = require('./lib/clients');
const { sharedRedis, uniquePrefix } = require('./fleet/redis');

const FAST = { ORDER_TTL_MIN_SECONDS: '1', ORDER_EXPIRY_SWEEP_SECONDS: '0.2', ACK_TIMEOUT_SECONDS: '1' };

async function metric(node, name) {
  const res = await fetch(`${node.url}/metrics`);
  const line = (await res.text()).split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

async function join(socket, order) {
  const ack = await socket.timeout(5000).emitWithAck('join-order', { orderId: order.id, token: order.token });
  assert.equal(ack.success, true, JSON.stringify(ack));
  return ack;
}

function joinV2(socket, order) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no join ack')), 5000);
    socket.emit('join-order', { orderId: order.id, token: order.token }, (ack) => {
      clearTimeout(timer);
      assert.equal(ack.success, true, JSON.stringify(ack));
      resolve(ack);
    });
  });
}

for (const adapter of ['pubsub', 'streams']) {
  test(`two nodes (${adapter}) expire an order once and both nodes' pages are told`, async () => {
    const redisUrl = await sharedRedis();
    const common = { ...FAST, REDIS_URL: redisUrl, REDIS_PREFIX: uniquePrefix(`expiry-${adapter}`), REDIS_ADAPTER: adapter };
    const a = await startServer({ env: common });
    const b = await startServer({ env: { ...common, DATABASE_URL: a.env.DATABASE_URL } });
    const sockets = [];
    try {
      const orders = [];
      for (let i = 0; i < 5; i++) orders.push(await createOrder(i % 2 ? b : a, { amount: 1000 + i, ttlSeconds: 4 }));
      for (const o of orders) assert.ok(o.expiresAt, 'order response has expiresAt');
      // One v4 page on A and one v2 page on B per order.
      const seen = [];
      for (const o of orders) {
        const onA = connect('v4', a.url);
        const onB = connect('v2', b.url);
        sockets.push(onA, onB);
        await Promise.all([connected(onA), connected(onB)]);
        const updates = { a: collect(onA, 'payment-status-update'), b: collect(onB, 'payment-status-update') };
        const joinedA = await join(onA, o);
        const joinedB = await joinV2(onB, o);
        assert.equal(joinedA.status.status, 'pending');
        assert.equal(joinedA.status.expiresAt, o.expiresAt, 'joined-order carries expiresAt');
        assert.equal(joinedB.status.expiresAt, o.expiresAt);
        seen.push({ order: o, updates });
      }
      const deadline = Math.max(...orders.map((o) => Date.parse(o.expiresAt)));
      await waitFor(() => seen.every((s) => s.updates.a.length > 0 && s.updates.b.length > 0),
        { timeout: 15000, message: 'every page to hear of its expiry' });
      const lag = Date.now() - deadline;
      assert.ok(lag < 4000, `last page told ${lag} ms after the last deadline`);
      // Re-sends are acknowledged away; wait past one ack timeout so a
      // duplicate expiry (or an unacked re-send) would show.
      await new Promise((r) => setTimeout(r, 2500));
      for (const { order, updates } of seen) {
        for (const [node, list] of Object.entries(updates)) {
          assert.equal(list.length, 1, `order ${order.id} on ${node}: ${JSON.stringify(list)}`);
          assert.equal(list[0].status, 'expired');
          assert.equal(list[0].previousStatus, 'pending');
          assert.equal(list[0].source, 'expiry');
          assert.equal(list[0].seq, 1, 'one change: the expiry');
        }
        const res = await api(a, 'GET', `/api/payment/status/${order.id}?token=${order.token}`);
        assert.equal(res.body.status, 'expired');
        assert.equal(res.body.seq, 1);
      }
      const expiredA = await metric(a, 'paystatus_orders_expired_total');
      const expiredB = await metric(b, 'paystatus_orders_expired_total');
      assert.equal(expiredA + expiredB, orders.length, `A expired ${expiredA}, B ${expiredB}`);
    } finally {
      for (const s of sockets) s.disconnect();
      await Promise.all([a.stop(), b.stop()]);
    }
  });
}

test('a node restarted inside the window still expires the order, and a page that rejoins hears it', async () => {
  const node = await startServer({ env: FAST });
  try {
    const order = await createOrder(node, { amount: 700, ttlSeconds: 3 });
    await node.stop();
    await new Promise((r) => setTimeout(r, 1000));
    await node.start();
    const socket = connect('v4', node.url);
    try {
      await connected(socket);
      const updates = collect(socket, 'payment-status-update');
      const joined = await join(socket, order);
      const already = joined.status.status === 'expired';
      if (!already) {
        await waitFor(() => updates.length > 0, { timeout: 10000, message: 'the expiry after the restart' });
        assert.equal(updates[0].status, 'expired');
      }
      const lag = Date.now() - Date.parse(order.expiresAt);
      assert.ok(lag < 4000, `expired ${lag} ms after its deadline`);
      const res = await api(node, 'GET', `/api/payment/status/${order.id}?token=${order.token}`);
      assert.equal(res.body.status, 'expired');
      assert.equal(res.body.seq, 1);
    } finally {
      socket.disconnect();
    }
  } finally {
    await node.stop();
  }
});
