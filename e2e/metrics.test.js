'use strict';
// /metrics after a scripted session with the real clients: v4 (EIO 4) and
// v2 (EIO 3), over websocket, polling only, and polling upgraded to
// websocket. Counters and gauges must carry the right labels.
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, api, createOrder, waitFor } = require('./lib/server');
const { connect, collect, connected } = require('./lib/clients');
const crypto = require('node:crypto');

// upi posts a UPI callback signed with the e2e server's secret (or not).
function upi(server, body, secret = 'e2e-upi-secret') {
  const raw = JSON.stringify(body);
  const signature = crypto.createHmac('sha256', secret).update(raw).digest('hex');
  return api(server, 'POST', '/api/payment/upi/callback', { raw, headers: { 'x-signature': signature } });
}

// scrape returns { 'name{labels}': value } from the Prometheus text format.
async function scrape(server) {
  const res = await fetch(`${server.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/plain/);
  const out = {};
  for (const line of (await res.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

const sockets = (eio, transport) => `paystatus_sockets_connected{eio="${eio}",transport="${transport}"}`;

// expectMetrics polls until every listed sample has its value, then
// reports any that never got there.
async function expectMetrics(server, want, message) {
  let last = {};
  try {
    await waitFor(async () => {
      last = await scrape(server);
      return Object.entries(want).every(([k, v]) => (last[k] ?? 0) === v);
    }, { timeout: 10000, message });
  } catch (err) {
    const wrong = Object.entries(want).filter(([k, v]) => (last[k] ?? 0) !== v).map(([k, v]) => `${k}: got ${last[k]}, want ${v}`);
    throw new Error(`${err.message}\n${wrong.join('\n')}`);
  }
}

// join emits join-order in the shape each client major supports: v2 has no
// emitWithAck, so its ack comes through a callback.
function join(socket, payload) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no join ack')), 5000);
    socket.emit('join-order', payload, (reply) => { clearTimeout(timer); resolve(reply); });
  });
}

describe('metrics', () => {
  let server;
  const open = [];
  before(async () => { server = await startServer(); });
  after(async () => {
    for (const s of open) s.close();
    await server.stop();
  });

  test('a scripted session shows up in /metrics with the right labels', async () => {
    const paid = await createOrder(server);
    const other = await createOrder(server);

    // Fresh node: no sockets, no rooms.
    await expectMetrics(server, {
      [sockets(4, 'websocket')]: 0, [sockets(3, 'polling')]: 0, paystatus_rooms: 0, paystatus_room_joins_total: 0,
    }, 'a quiet start');

    const v4ws = connect('v4', server.url, { transport: 'websocket' });
    const v4upgraded = connect('v4', server.url, { extra: { transports: ['polling', 'websocket'] } });
    const v2poll = connect('v2', server.url, { transport: 'polling' });
    const v2ws = connect('v2', server.url, { transport: 'websocket' });
    open.push(v4ws, v4upgraded, v2poll, v2ws);
    await Promise.all(open.map((s) => connected(s)));
    // The upgraded socket is counted once, under websocket, after the
    // switch: the polling gauge for EIO 4 falls back to zero.
    await waitFor(() => v4upgraded.io.engine.transport.name === 'websocket', { message: 'v4 upgrade' });
    await expectMetrics(server, {
      [sockets(4, 'websocket')]: 2, [sockets(4, 'polling')]: 0,
      [sockets(3, 'websocket')]: 1, [sockets(3, 'polling')]: 1,
    }, 'sockets by transport and protocol');

    const updates = [collect(v4ws, 'payment-status-update'), collect(v2poll, 'payment-status-update')];
    assert.equal((await join(v4ws, { orderId: paid.id, token: paid.token })).success, true);
    assert.equal((await join(v2poll, { orderId: paid.id, token: paid.token })).success, true);
    assert.equal((await join(v4ws, { orderId: other.id, token: other.token })).success, true);
    assert.equal((await join(v4upgraded, { orderId: paid.id, token: 'f'.repeat(64) })).success, false);
    assert.equal((await join(v2ws, 12345)).success, false);
    await expectMetrics(server, {
      paystatus_room_joins_total: 3,
      'paystatus_room_joins_refused_total{reason="token"}': 1,
      'paystatus_room_joins_refused_total{reason="malformed"}': 1,
      paystatus_rooms: 2,
    }, 'joins, refusals and rooms');

    const left = await new Promise((resolve) => v4ws.emit('leave-order', { orderId: other.id }, resolve));
    assert.equal(left.success, true);
    await expectMetrics(server, { paystatus_room_leaves_total: 1, paystatus_rooms: 1 }, 'leave empties a room');

    const done = await api(server, 'POST', `/api/payment/${paid.id}/complete`, { admin: true, body: { paymentId: 'pay_metrics' } });
    assert.equal(done.status, 200, done.text);
    await waitFor(() => updates.every((u) => u.length === 1), { message: 'both members updated' });
    const tc = await api(server, 'POST', `/api/orders/${paid.id}/test-connection`, { admin: true });
    assert.equal(tc.status, 200, tc.text);
    assert.equal(tc.body.roomSize, 2);
    await expectMetrics(server, {
      'paystatus_status_transitions_total{from="pending",to="completed"}': 1,
      'paystatus_broadcasts_total{event="payment-status-update"}': 1,
      'paystatus_broadcasts_total{event="connection-test"}': 1,
      paystatus_callback_to_broadcast_seconds_count: 1,
      'paystatus_callback_to_broadcast_seconds_bucket{le="+Inf"}': 1,
    }, 'transition, broadcasts and latency');
    const m = await scrape(server);
    assert.ok(m.paystatus_callback_to_broadcast_seconds_sum > 0, 'latency sum is positive');
    assert.ok(m.paystatus_callback_to_broadcast_seconds_sum < 2.5, 'latency sum is below the top bucket');

    // Gateway callbacks are counted by endpoint and outcome; the accepted
    // one is also a transition and a broadcast.
    const viaUpi = await createOrder(server);
    const callback = { orderId: viaUpi.id, txnId: 'txn_metrics', status: 'PENDING', amount: 49900 };
    assert.equal((await upi(server, callback)).status, 200);
    const repeat = await upi(server, callback);
    assert.equal(repeat.status, 200);
    assert.equal(repeat.body.duplicate, true);
    assert.equal((await upi(server, callback, 'not-the-secret')).status, 401);
    await expectMetrics(server, {
      'paystatus_gateway_requests_total{endpoint="upi",outcome="ok"}': 1,
      'paystatus_gateway_requests_total{endpoint="upi",outcome="duplicate"}': 1,
      'paystatus_gateway_requests_total{endpoint="upi",outcome="bad_signature"}': 1,
      'paystatus_status_transitions_total{from="pending",to="processing"}': 1,
      'paystatus_broadcasts_total{event="payment-status-update"}': 2,
      paystatus_callback_to_broadcast_seconds_count: 2,
    }, 'gateway requests by endpoint and outcome');

    // Disconnecting takes every gauge back down; the room goes with its
    // last member.
    for (const s of open.splice(0)) s.close();
    await expectMetrics(server, {
      [sockets(4, 'websocket')]: 0, [sockets(4, 'polling')]: 0,
      [sockets(3, 'websocket')]: 0, [sockets(3, 'polling')]: 0,
      paystatus_rooms: 0,
    }, 'gauges back to zero');
  });
});
