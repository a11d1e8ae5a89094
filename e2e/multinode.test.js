'use strict';
// Several server processes on one Redis: broadcasts and room sizes cross
// nodes, a dead node's clients converge on a surviving one, a Redis restart
// is survived, and the streams adapter recovers sessions on another node.
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { createClient } = require('redis');
const { startServer, api, createOrder, waitFor } = require('./lib/server');
const { connect, once, collect, connected } = require('./lib/clients');
const { sharedRedis, privateRedis, uniquePrefix, startProxy } = require('./fleet/redis');

// startNodes starts n server processes on one SQLite file and one Redis.
async function startNodes(n, { redisUrl, prefix, adapter = 'pubsub', env = {} }) {
  const nodes = [];
  const common = { REDIS_URL: redisUrl, REDIS_PREFIX: prefix, REDIS_ADAPTER: adapter, ...env };
  nodes.push(await startServer({ env: common }));
  for (let i = 1; i < n; i++) {
    nodes.push(await startServer({ env: { ...common, DATABASE_URL: nodes[0].env.DATABASE_URL } }));
  }
  return nodes;
}

async function join(socket, order) {
  const ack = await socket.timeout(5000).emitWithAck('join-order', { orderId: order.id, token: order.token });
  assert.equal(ack.success, true, JSON.stringify(ack));
  return ack;
}

async function complete(node, order, paymentId) {
  const res = await api(node, 'POST', `/api/payment/${order.id}/complete`, { admin: true, body: { status: 'completed', paymentId } });
  assert.equal(res.status, 200, res.text);
  return res.body;
}

async function roomSize(node, order) {
  const res = await api(node, 'POST', `/api/orders/${order.id}/test-connection`, { admin: true });
  assert.equal(res.status, 200, res.text);
  return res.body.roomSize;
}

for (const adapter of ['pubsub', 'streams']) {
  describe(`two nodes on one Redis (${adapter})`, () => {
    let nodes;
    before(async () => {
      nodes = await startNodes(2, { redisUrl: await sharedRedis(), prefix: uniquePrefix(adapter), adapter });
    });
    after(async () => { await Promise.all(nodes.map((n) => n.stop())); });

    test('a client on B gets the update of a callback sent to A; A counts B\'s socket', async () => {
      const [a, b] = nodes;
      const order = await createOrder(a);
      const socket = connect('v4', b.url);
      try {
        await connected(socket);
        const updates = collect(socket, 'payment-status-update');
        await join(socket, order);
        // Streams nodes learn of each other from heartbeats; until then A
        // would count only itself.
        await waitFor(async () => (await roomSize(a, order)) === 1, { message: 'A to count the socket on B' });
        assert.equal(await roomSize(b, order), 1);
        const body = await complete(a, order, `pay_${adapter}`);
        assert.equal(body.seq, 1);
        await waitFor(() => updates.length >= 1, { message: 'payment-status-update on B' });
        assert.equal(updates[0].orderId, order.id);
        assert.equal(updates[0].status, 'completed');
        assert.equal(updates[0].seq, 1);
        assert.equal(updates[0].paymentId, `pay_${adapter}`);
        assert.equal(updates.length, 1, 'one update, not one per node');
      } finally {
        socket.close();
      }
    });

    test('a client on A gets an order update made through B, once', async () => {
      const [a, b] = nodes;
      const order = await createOrder(a);
      const socket = connect('v4', a.url);
      try {
        await connected(socket);
        const updates = collect(socket, 'order-update');
        await join(socket, order);
        const res = await api(b, 'PATCH', `/api/orders/${order.id}`, { admin: true, body: { description: 'changed on B' } });
        assert.equal(res.status, 200, res.text);
        await waitFor(() => updates.length >= 1, { message: 'order-update on A' });
        assert.equal(updates[0].data.description, 'changed on B');
        // Give a duplicate a moment to show up before asserting there is none.
        await roomSize(a, order);
        assert.equal(updates.length, 1);
      } finally {
        socket.close();
      }
    });
  });
}

describe('a node dies', () => {
  let nodes;
  let proxy;
  before(async () => {
    nodes = await startNodes(2, { redisUrl: await sharedRedis(), prefix: uniquePrefix('kill') });
    proxy = await startProxy(nodes[1].port);
  });
  after(async () => {
    await proxy.close();
    await Promise.all(nodes.map((n) => n.stop()));
  });

  test('after SIGKILL of B its client reconnects to A and ends on the true status', async () => {
    const [a, b] = nodes;
    const order = await createOrder(a);
    const socket = connect('v4', proxy.url, { extra: { reconnectionDelay: 100, reconnectionDelayMax: 500 } });
    // As the page does: join on every connect, keep the newest status seen.
    let latest = null;
    const keep = (s) => { if (s && (!latest || s.seq > latest.seq)) latest = s; };
    socket.on('connect', () => {
      socket.emit('join-order', { orderId: order.id, token: order.token }, (ack) => { if (ack && ack.success) keep(ack.status); });
    });
    socket.on('payment-status-update', (u, ack) => { keep(u); if (typeof ack === 'function') ack({ seq: u.seq }); });
    try {
      await waitFor(() => latest && latest.seq === 0, { message: 'first join through B' });
      assert.equal(await roomSize(a, order), 1);
      proxy.target = a.port;
      const disconnected = once(socket, 'disconnect');
      await b.kill();
      await disconnected;
      await complete(a, order, 'pay_while_down');
      await waitFor(() => latest && latest.seq === 1, { message: 'completion after reconnecting to A' });
      assert.equal(latest.status, 'completed');
      assert.equal(latest.paymentId, 'pay_while_down');
      // The dead node no longer counts: A asks only the nodes still there.
      await waitFor(async () => (await roomSize(a, order)) === 1, { message: 'room size 1 on A' });
    } finally {
      socket.close();
    }
  });
});

describe('Redis restarts while both nodes run', () => {
  let redis;
  let nodes;
  before(async () => {
    redis = await privateRedis();
    nodes = await startNodes(2, { redisUrl: redis.url, prefix: uniquePrefix('restart') });
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.stop();
  });

  test('readyz shows redis down, broadcasts resume, a missed update reaches the page and a rejoin agrees', async () => {
    const [a, b] = nodes;
    const missed = await createOrder(a);
    const later = await createOrder(a);
    const socket = connect('v4', b.url);
    try {
      await connected(socket);
      const updates = collect(socket, 'payment-status-update');
      const tests = collect(socket, 'connection-test');
      await join(socket, missed);
      await join(socket, later);

      await redis.stop();
      for (const node of [a, b]) {
        await waitFor(async () => {
          const res = await api(node, 'GET', '/readyz');
          return res.status === 503 && /^redis: /.test(res.body.redis) && res.body.database === 'ok';
        }, { message: 'readyz to report redis down' });
      }
      // Committed while Redis is away: B's client cannot hear of it.
      const res = await api(a, 'POST', `/api/payment/${missed.id}/complete`, { admin: true, body: { status: 'completed', paymentId: 'pay_missed' } });
      assert.equal(res.status, 200, `a callback must not fail because Redis is down: ${res.text}`);
      assert.ok(a.logs.join('').includes('redis connection lost'), 'the outage is logged');

      await redis.start();
      for (const node of [a, b]) {
        await waitFor(async () => (await api(node, 'GET', '/readyz')).status === 200, { timeout: 20000, message: 'readyz ok again' });
      }
      // B resubscribes on its own schedule: probe until a broadcast from A lands.
      await waitFor(async () => {
        await api(a, 'POST', `/api/orders/${later.id}/test-connection`, { admin: true });
        return tests.length > 0;
      }, { timeout: 20000, interval: 300, message: 'broadcasts from A to reach B again' });
      assert.ok(a.logs.join('').includes('redis connection restored'), 'the recovery is logged');

      await complete(a, later, 'pay_later');
      await waitFor(() => updates.some((u) => u.orderId === later.id && u.seq === 1), { message: 'update after the restart' });
      // Its publish was lost in transit, but B brings its rooms up to date
      // from the database once it reads from Redis again.
      await waitFor(() => updates.some((u) => u.orderId === missed.id && u.seq === 1 && u.status === 'completed'), { message: 'the update committed during the outage, resent by B' });
      const rejoin = await join(socket, missed);
      assert.equal(rejoin.status.status, 'completed');
      assert.equal(rejoin.status.seq, 1);
    } finally {
      socket.close();
    }
  });
});

describe('streams adapter: session recovery on another node', () => {
  let nodes;
  let proxy;
  let redisClient;
  const prefix = uniquePrefix('recover');
  before(async () => {
    const url = await sharedRedis();
    nodes = await startNodes(2, { redisUrl: url, prefix, adapter: 'streams' });
    proxy = await startProxy(nodes[1].port);
    redisClient = createClient({ url });
    await redisClient.connect();
  });
  after(async () => {
    await redisClient.del(prefix);
    await redisClient.quit();
    await proxy.close();
    await Promise.all(nodes.map((n) => n.stop()));
  });

  test('a client cut from B resumes on A with the update it missed, without rejoining', async () => {
    const [a] = nodes;
    const order = await createOrder(a);
    const socket = connect('v4', proxy.url, { extra: { reconnectionDelay: 100, reconnectionDelayMax: 500 } });
    try {
      await connected(socket);
      const updates = collect(socket, 'payment-status-update');
      const tests = collect(socket, 'connection-test');
      await join(socket, order);
      // Recovery needs an offset: the client must have had one broadcast.
      await waitFor(async () => {
        await api(a, 'POST', `/api/orders/${order.id}/test-connection`, { admin: true });
        return tests.length > 0;
      }, { interval: 300, message: 'a first broadcast through the stream' });
      const firstId = socket.id;

      proxy.target = a.port;
      const disconnected = once(socket, 'disconnect');
      proxy.cutAll();
      await disconnected;
      // Wait until B has noticed the cut and stored the session in Redis.
      await waitFor(async () => (await redisClient.keys(`${prefix}:session:*`)).length > 0, { message: 'session stored by B' });
      await complete(a, order, 'pay_recovered');
      await connected(socket, 15000);
      await waitFor(() => updates.length >= 1, { message: 'missed update replayed on A' });
      assert.equal(socket.recovered, true, 'the session was recovered');
      assert.equal(socket.id, firstId);
      assert.equal(updates[0].status, 'completed');
      assert.equal(updates[0].seq, 1);
    } finally {
      socket.close();
    }
  });
});

for (const adapter of ['pubsub', 'streams']) {
  describe(`terminal updates are acknowledged on every node (${adapter})`, () => {
    let nodes;
    before(async () => {
      nodes = await startNodes(2, { redisUrl: await sharedRedis(), prefix: uniquePrefix(`ack-${adapter}`), adapter, env: { ACK_TIMEOUT_SECONDS: '1', ACK_RETRIES: '3' } });
    });
    after(async () => { await Promise.all(nodes.map((n) => n.stop())); });

    test('an unacknowledged completion is sent again to clients on both nodes, and stops once acked', async () => {
      const [a, b] = nodes;
      const order = await createOrder(a);
      // Each client leaves the first delivery unanswered and acks the second.
      const clients = [a, b].map((node) => ({ node, socket: connect('v4', node.url), got: [] }));
      try {
        for (const c of clients) {
          await connected(c.socket);
          c.socket.on('payment-status-update', (u, ack) => {
            c.got.push({ seq: u.seq, status: u.status, ackable: typeof ack === 'function' });
            if (c.got.length >= 2 && typeof ack === 'function') ack({ seq: u.seq });
          });
          await join(c.socket, order);
        }
        await waitFor(async () => (await roomSize(a, order)) === 2, { message: 'A to count both sockets' });
        await complete(a, order, `pay_ack_${adapter}`);
        for (const c of clients) {
          await waitFor(() => c.got.length >= 2, { timeout: 10000, message: `re-send to the client on ${c.node === a ? 'A' : 'B'}` });
        }
        // An acked update is not sent again: wait past two more timeouts.
        await new Promise((r) => setTimeout(r, 2500));
        for (const [i, c] of clients.entries()) {
          const where = i === 0 ? 'A (committed the change)' : 'B (got it over Redis)';
          assert.equal(c.got.length, 2, `client on ${where}: ${JSON.stringify(c.got)}`);
          for (const g of c.got) {
            assert.deepEqual(g, { seq: 1, status: 'completed', ackable: true }, `client on ${where}`);
          }
        }
      } finally {
        for (const c of clients) c.socket.close();
      }
    });
  });
}

describe('Redis restarts in the middle of a stream of callbacks', () => {
  let redis;
  let nodes;
  before(async () => {
    redis = await privateRedis();
    nodes = await startNodes(2, { redisUrl: redis.url, prefix: uniquePrefix('midstream'), env: { ACK_TIMEOUT_SECONDS: '1' } });
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.stop();
  });

  test('every page ends on its true status and every callback is in the database', async () => {
    const [a, b] = nodes;
    const count = 12;
    const orders = [];
    for (let i = 0; i < count; i++) orders.push(await createOrder(a));
    // A page per order, alternately on A and B; each keeps the newest
    // status it has seen, from join acks and updates, as the page does.
    const pages = orders.map((order, i) => {
      const node = i % 2 === 0 ? a : b;
      const socket = connect('v4', node.url, { extra: { reconnectionDelay: 100, reconnectionDelayMax: 500 } });
      const page = { order, socket, latest: null };
      const keep = (s) => { if (s && (!page.latest || s.seq > page.latest.seq)) page.latest = s; };
      socket.on('connect', () => {
        socket.emit('join-order', { orderId: order.id, token: order.token }, (ack) => { if (ack && ack.success) keep(ack.status); });
      });
      socket.on('payment-status-update', (u, ack) => { keep(u); if (typeof ack === 'function') ack({ seq: u.seq }); });
      return page;
    });
    try {
      await waitFor(() => pages.every((p) => p.latest && p.latest.seq === 0), { message: 'every page joined' });
      // Each order's callbacks go to the node its page is not on, so every
      // update must cross Redis: processing, then completed or failed.
      const expected = new Map();
      const steps = [];
      for (const [i, p] of pages.entries()) {
        const other = i % 2 === 0 ? b : a;
        steps.push(() => api(other, 'POST', `/api/dev/orders/${p.order.id}/simulate`, { body: { status: 'processing' } }));
        const final = i % 3 === 0 ? 'failed' : 'completed';
        expected.set(p.order.id, final);
        steps.push(() => api(other, 'POST', `/api/payment/${p.order.id}/complete`, { admin: true, body: { status: final, paymentId: `pay_mid_${i}` } }));
      }
      const outageAt = Math.floor(steps.length / 3);
      const backAt = Math.floor((2 * steps.length) / 3);
      for (const [i, step] of steps.entries()) {
        if (i === outageAt) {
          await redis.stop();
          await waitFor(async () => (await api(a, 'GET', '/readyz')).status === 503, { message: 'A reports Redis down' });
        }
        if (i === backAt) await redis.start();
        const res = await step();
        assert.equal(res.status, 200, `callback ${i} must not fail because of Redis: ${res.text}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      for (const node of [a, b]) {
        await waitFor(async () => (await api(node, 'GET', '/readyz')).status === 200, { timeout: 20000, message: 'readyz ok again' });
      }
      // Nothing lost in the database: each order holds its last callback.
      for (const p of pages) {
        const res = await api(a, 'GET', `/api/payment/status/${p.order.id}?token=${p.order.token}`);
        assert.equal(res.status, 200, res.text);
        assert.equal(res.body.status, expected.get(p.order.id), `order ${p.order.id} in the database`);
        assert.equal(res.body.seq, 2);
      }
      // Every page converges on it, without reloading.
      await waitFor(() => pages.every((p) => p.latest && p.latest.seq === 2), {
        timeout: 30000,
        message: 'every page to reach seq 2',
      }).catch((err) => {
        const stuck = pages.filter((p) => !p.latest || p.latest.seq !== 2).map((p) => `${p.order.id}: ${JSON.stringify(p.latest)}`);
        throw new Error(`${err.message}; stuck: ${stuck.join(', ')}`);
      });
      for (const p of pages) assert.equal(p.latest.status, expected.get(p.order.id));
      const metrics = await (await fetch(`${a.url}/metrics`)).text() + await (await fetch(`${b.url}/metrics`)).text();
      assert.match(metrics, /paystatus_redis_publish_dropped_total\{reason="error"\} [1-9]/, `dropped cross-node publishes are counted: ${metrics.split('\n').filter((l) => l.includes('redis')).join('; ')}`);
      assert.match(metrics, /paystatus_redis_up 1/);
    } finally {
      for (const p of pages) p.socket.close();
    }
  });
});
