'use strict';
// A mixed fleet: our Go server and a Node socket.io 4.8 server share one
// Redis and prefix, as while a Node fleet is replaced node by node, on
// @socket.io/redis-adapter 8.x (pubsub) and on
// @socket.io/redis-streams-adapter 0.3 (streams). Broadcasts, room counts
// and acknowledged broadcasts cross in both directions; with streams, a
// client recovers its session on the other kind of node.
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, api, createOrder, waitFor } = require('./lib/server');
const { createClient } = require('redis');
const { connect, once, collect, connected } = require('./lib/clients');
const { sharedRedis, uniquePrefix, startNodeFleetServer, startProxy } = require('./fleet/redis');

async function post(url, body) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 200, await res.text());
}

async function postJSON(url, body) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 200);
  return res.json();
}

for (const adapter of ['pubsub', 'streams']) describe(`mixed Node/Go fleet on one Redis (${adapter})`, () => {
  let goNode;
  let nodeNode;
  let redisClient;
  const prefix = uniquePrefix(`mixed-${adapter}`);
  before(async () => {
    const redisUrl = await sharedRedis();
    nodeNode = await startNodeFleetServer({ redisUrl, prefix, adapter });
    goNode = await startServer({ env: { REDIS_URL: redisUrl, REDIS_PREFIX: prefix, REDIS_ADAPTER: adapter } });
    redisClient = createClient({ url: redisUrl });
    await redisClient.connect();
  });
  after(async () => {
    await goNode.stop();
    await nodeNode.stop();
    if (adapter === 'streams') await redisClient.del(prefix);
    await redisClient.quit();
  });

  test('a client on the Node server gets the update of a callback sent to the Go server', async () => {
    const order = await createOrder(goNode);
    const socket = connect('v4', nodeNode.url);
    try {
      await connected(socket);
      const updates = collect(socket, 'payment-status-update');
      const ack = await socket.timeout(5000).emitWithAck('join-order', { orderId: order.id });
      assert.equal(ack.room, `order-${order.id}`);
      const res = await api(goNode, 'POST', `/api/payment/${order.id}/complete`, { admin: true, body: { status: 'completed', paymentId: 'pay_mixed' } });
      assert.equal(res.status, 200, res.text);
      await waitFor(() => updates.length >= 1, { message: 'update on the Node server\'s client' });
      const u = updates[0];
      assert.equal(u.orderId, order.id);
      assert.equal(u.status, 'completed');
      assert.equal(u.previousStatus, 'pending');
      assert.equal(u.seq, 1);
      assert.equal(u.amount, 49900);
      assert.equal(u.paymentId, 'pay_mixed');
      assert.ok(Date.parse(u.updatedAt));
    } finally {
      socket.close();
    }
  });

  test('an order update made on the Go server reaches the Node side with its data as an object', async () => {
    const order = await createOrder(goNode);
    const socket = connect('v4', nodeNode.url);
    try {
      await connected(socket);
      const updates = collect(socket, 'order-update');
      await socket.timeout(5000).emitWithAck('join-order', order.id);
      const res = await api(goNode, 'PATCH', `/api/orders/${order.id}`, { admin: true, body: { description: 'from Go', metadata: { n: 1 } } });
      assert.equal(res.status, 200, res.text);
      await waitFor(() => updates.length >= 1, { message: 'order-update on the Node side' });
      assert.deepEqual(updates[0].data, { description: 'from Go', metadata: { n: 1 } });
    } finally {
      socket.close();
    }
  });

  test('a client on the Go server gets a broadcast the Node server makes to its order room', async () => {
    const order = await createOrder(goNode);
    const socket = connect('v4', goNode.url);
    try {
      await connected(socket);
      const updates = collect(socket, 'payment-status-update');
      const ack = await socket.timeout(5000).emitWithAck('join-order', { orderId: order.id, token: order.token });
      assert.equal(ack.success, true);
      const payload = { orderId: order.id, status: 'processing', seq: 7, nested: { list: [1, 'two', null] } };
      await post(`${nodeNode.url}/emit`, { room: `order-${order.id}`, event: 'payment-status-update', payload });
      await waitFor(() => updates.length >= 1, { message: 'broadcast from the Node server' });
      assert.deepEqual(updates[0], payload);
    } finally {
      socket.close();
    }
  });

  test('room sizes count sockets on both kinds of node', async () => {
    const order = await createOrder(goNode);
    const onGo = connect('v4', goNode.url);
    const onNode = connect('v4', nodeNode.url);
    try {
      await Promise.all([connected(onGo), connected(onNode)]);
      assert.equal((await onGo.timeout(5000).emitWithAck('join-order', { orderId: order.id, token: order.token })).success, true);
      await onNode.timeout(5000).emitWithAck('join-order', { orderId: order.id });
      const fromGo = await api(goNode, 'POST', `/api/orders/${order.id}/test-connection`, { admin: true });
      assert.equal(fromGo.status, 200, fromGo.text);
      assert.equal(fromGo.body.roomSize, 2, 'the Go server counts the Node server\'s socket');
      const fromNode = await (await fetch(`${nodeNode.url}/room-size?room=order-${order.id}`)).json();
      assert.equal(fromNode.size, 2, 'the Node server counts the Go server\'s socket');
    } finally {
      onGo.close();
      onNode.close();
    }
  });

  test('an acknowledged broadcast from the Node server collects the answers of clients on the Go server', async () => {
    const order = await createOrder(goNode);
    const onGo = connect('v4', goNode.url);
    const onGo2 = connect('v4', goNode.url);
    try {
      await Promise.all([connected(onGo), connected(onGo2)]);
      for (const [i, s] of [onGo, onGo2].entries()) {
        assert.equal((await s.timeout(5000).emitWithAck('join-order', { orderId: order.id, token: order.token })).success, true);
        s.on('are-you-there', (payload, ack) => ack({ client: i, echo: payload.n }));
      }
      const res = await postJSON(`${nodeNode.url}/emit-with-ack`, { room: `order-${order.id}`, event: 'are-you-there', payload: { n: 42 }, timeout: 4000 });
      assert.equal(res.error, undefined, `emitWithAck failed: ${res.error}`);
      const answers = res.answers.slice().sort((x, y) => x.client - y.client);
      assert.deepEqual(answers, [{ client: 0, echo: 42 }, { client: 1, echo: 42 }]);
    } finally {
      onGo.close();
      onGo2.close();
    }
  });

  if (adapter !== 'streams') return;

  // Cut the client's connection to `from`, point the balancer at `to`,
  // commit a change on the Go server while it is away, and expect it to
  // resume on `to` with the update it missed.
  async function recoverAcross(fromName, toName) {
    const from = fromName === 'go' ? goNode : nodeNode;
    const to = toName === 'go' ? goNode : nodeNode;
    const order = await createOrder(goNode);
    const proxy = await startProxy(Number(new URL(from.url).port));
    const socket = connect('v4', proxy.url, { extra: { reconnectionDelay: 100, reconnectionDelayMax: 500 } });
    try {
      await connected(socket);
      const updates = collect(socket, 'payment-status-update');
      const firsts = collect(socket, 'first');
      const ack = await socket.timeout(5000).emitWithAck('join-order', { orderId: order.id, token: order.token });
      assert.equal(ack.room, `order-${order.id}`);
      // Recovery needs an offset: the client must have had one broadcast.
      await postJSON(`${nodeNode.url}/emit`, { room: `order-${order.id}`, event: 'first', payload: { n: 1 } });
      await waitFor(() => firsts.length > 0, { message: 'a first broadcast through the stream' });
      const firstId = socket.id;
      const keysBefore = new Set(await redisClient.keys(`${prefix}:session:*`));
      // The balancer refuses connections until the session is stored and
      // the change committed, so the update is one the client missed.
      proxy.target = null;
      const disconnected = once(socket, 'disconnect');
      proxy.cutAll();
      await disconnected;
      await waitFor(async () => (await redisClient.keys(`${prefix}:session:*`)).some((k) => !keysBefore.has(k)), { message: `session stored by the ${fromName} server` });
      const res = await api(goNode, 'POST', `/api/payment/${order.id}/complete`, { admin: true, body: { status: 'completed', paymentId: `pay_${fromName}_${toName}` } });
      assert.equal(res.status, 200, res.text);
      proxy.target = Number(new URL(to.url).port);
      await connected(socket, 15000);
      await waitFor(() => updates.length >= 1, { message: `missed update replayed on the ${toName} server` });
      assert.equal(socket.recovered, true, 'the session was recovered');
      assert.equal(socket.id, firstId);
      assert.equal(updates[0].status, 'completed');
      assert.equal(updates[0].paymentId, `pay_${fromName}_${toName}`);
      assert.equal(updates[0].seq, 1);
    } finally {
      socket.close();
      await proxy.close();
    }
  }

  test('a client cut from the Node server resumes on the Go server with what it missed', () => recoverAcross('node', 'go'));
  test('a client cut from the Go server resumes on the Node server with what it missed', () => recoverAcross('go', 'node'));
});
