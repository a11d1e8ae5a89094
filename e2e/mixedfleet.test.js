'use strict';
// A mixed fleet: our Go server and a Node socket.io 4.8 server on
// @socket.io/redis-adapter 8.x share one Redis and channel prefix, as while
// a Node fleet is replaced node by node. Broadcasts and room counts cross
// in both directions.
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, api, createOrder, waitFor } = require('./lib/server');
const { connect, collect, connected } = require('./lib/clients');
const { sharedRedis, uniquePrefix, startNodeFleetServer } = require('./fleet/redis');

async function post(url, body) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 200, await res.text());
}

describe('mixed Node/Go fleet on one Redis', () => {
  let goNode;
  let nodeNode;
  before(async () => {
    const redisUrl = await sharedRedis();
    const prefix = uniquePrefix('mixed');
    nodeNode = await startNodeFleetServer({ redisUrl, prefix });
    goNode = await startServer({ env: { REDIS_URL: redisUrl, REDIS_PREFIX: prefix } });
  });
  after(async () => {
    await goNode.stop();
    await nodeNode.stop();
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
});
