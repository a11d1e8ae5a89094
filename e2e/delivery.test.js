'use strict';
// No lost update: a real socket.io-client v4 page model (rejoin on every
// 'connect', apply a status only if its seq is newer) must end on the
// order's final status when its transport drops while the order completes,
// and when the server is SIGKILLed right after acknowledging the callback.
// Run: cd e2e && node --test --test-concurrency=1 delivery.test.js
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { startServer, api, createOrder, waitFor } = require('./lib/server');
const { connect, once, connected } = require('./lib/clients');

const UPI_SECRET = 'e2e-upi-secret'; // what lib/server.js starts the server with

// upiCallback sends a UPI callback signed the way the gateway signs it:
// hex HMAC-SHA256 of the exact body bytes.
async function upiCallback(server, order, status, txnId) {
  const raw = JSON.stringify({ orderId: order.id, txnId, status, amount: order.amount, vpa: 'buyer@upi' });
  const signature = crypto.createHmac('sha256', UPI_SECRET).update(raw).digest('hex');
  return api(server, 'POST', '/api/payment/upi/callback', { raw, headers: { 'x-signature': signature } });
}

// trackOrder models what a checkout page does with a socket: join on every
// connect (first or re-), take the snapshot from the join ack, and apply
// updates only when their seq is newer than what it already has.
function trackOrder(socket, order) {
  const state = { status: null, seq: -1, applied: [], received: [], joins: [] };
  const apply = (snap, via) => {
    if (snap && typeof snap.seq === 'number' && snap.seq > state.seq) {
      state.seq = snap.seq;
      state.status = snap.status;
      state.applied.push({ status: snap.status, seq: snap.seq, via });
    }
  };
  socket.on('connect', async () => {
    try {
      const ack = await socket.timeout(5000).emitWithAck('join-order', { orderId: order.id, token: order.token });
      state.joins.push({ ok: ack.success, recovered: socket.recovered, status: ack.status && ack.status.status, seq: ack.status && ack.status.seq });
      if (ack.success) apply(ack.status, 'join');
    } catch (err) {
      state.joins.push({ ok: false, error: err.message });
    }
  });
  socket.on('payment-status-update', (payload, ack) => {
    state.received.push(payload);
    if (typeof ack === 'function') ack({ seq: payload.seq });
    apply(payload, 'update');
  });
  return state;
}

// dropTransport closes the client's underlying connection without telling
// the Manager to stop, as a network drop would; it reconnects by itself.
async function dropTransport(socket) {
  const gone = once(socket, 'disconnect');
  socket.io.engine.close();
  await gone;
}

function completions(state) {
  return state.applied.filter((a) => a.status === 'completed');
}

describe('delivery without lost updates', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server.stop(); });

  test('transport dropped while the order completes: client ends on completed, applied once', async (t) => {
    const order = await createOrder(server);
    const socket = connect('v4', server.url, { extra: { reconnectionDelay: 1000, reconnectionDelayMax: 1000, randomizationFactor: 0 } });
    const state = trackOrder(socket, order);
    try {
      await connected(socket);
      await waitFor(() => state.joins.length === 1 && state.status === 'pending', { message: 'first join' });

      await dropTransport(socket);
      const res = await upiCallback(server, order, 'SUCCESS', `txn_drop_${order.id}`);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.status, 'completed');
      // The scenario only means something if the callback landed while the
      // client was away.
      assert.equal(socket.connected, false, 'client reconnected before the callback was answered');

      await waitFor(() => state.status === 'completed' && state.joins.length >= 2, { message: 'completed after reconnect' });
      const rejoin = state.joins[1];
      assert.equal(rejoin.ok, true);
      assert.equal(rejoin.status, 'completed', 'rejoin snapshot must carry the final status');
      assert.equal(rejoin.seq, 1);
      assert.equal(completions(state).length, 1, `applied: ${JSON.stringify(state.applied)}`);
      assert.ok(state.received.every((u) => u.seq === 1 && u.status === 'completed'));
      t.diagnostic(`recovered=${rejoin.recovered} live updates received=${state.received.length} applied via ${completions(state)[0].via}`);
    } finally {
      socket.close();
    }
  });

  test('server SIGKILLed right after a callback got 200: clients reconnect and end on completed', async (t) => {
    const order = await createOrder(server);
    // live stays connected until the kill; away dropped its transport just
    // before the callback and can only learn the outcome from a snapshot.
    const live = connect('v4', server.url);
    const away = connect('v4', server.url, { extra: { reconnectionDelay: 3000, reconnectionDelayMax: 3000, randomizationFactor: 0 } });
    const liveState = trackOrder(live, order);
    const awayState = trackOrder(away, order);
    try {
      await Promise.all([connected(live), connected(away)]);
      await waitFor(() => liveState.joins.length === 1 && awayState.joins.length === 1, { message: 'first joins' });

      await dropTransport(away);
      const res = await upiCallback(server, order, 'SUCCESS', `txn_kill_${order.id}`);
      assert.equal(res.status, 200, res.text);
      await server.kill();
      assert.equal(away.connected, false, 'away reconnected before the kill');
      const awayJoinsBefore = awayState.joins.length;
      const liveJoinsBefore = liveState.joins.length;

      await server.start(); // same port, same database, same secrets
      await waitFor(() => liveState.status === 'completed' && awayState.status === 'completed' &&
        liveState.joins.length > liveJoinsBefore && awayState.joins.length > awayJoinsBefore,
      { timeout: 30000, message: 'both clients completed after restart' });

      for (const [name, state, joinsBefore] of [['live', liveState, liveJoinsBefore], ['away', awayState, awayJoinsBefore]]) {
        const rejoin = state.joins[joinsBefore];
        assert.equal(rejoin.ok, true, `${name}: ${JSON.stringify(rejoin)}`);
        assert.equal(rejoin.status, 'completed', `${name}: the restarted server's snapshot must say completed`);
        assert.equal(rejoin.seq, 1);
        assert.equal(rejoin.recovered, false, `${name}: a new process cannot recover the old session`);
        assert.equal(completions(state).length, 1, `${name} applied: ${JSON.stringify(state.applied)}`);
      }
      assert.equal(completions(awayState)[0].via, 'join', 'away can only have learned it from the rejoin snapshot');

      const poll = await api(server, 'GET', `/api/payment/status/${order.id}?token=${order.token}`);
      assert.equal(poll.body.status, 'completed');
      assert.equal(poll.body.seq, 1);
      t.diagnostic(`live learned it via ${completions(liveState)[0].via}; away via ${completions(awayState)[0].via}`);
    } finally {
      live.close();
      away.close();
    }
  });

  test('a repeated callback is answered 200 and broadcast to nobody', async () => {
    const order = await createOrder(server);
    const socket = connect('v4', server.url);
    const state = trackOrder(socket, order);
    try {
      await connected(socket);
      await waitFor(() => state.joins.length === 1, { message: 'join' });
      const txn = `txn_dup_${order.id}`;
      const first = await upiCallback(server, order, 'SUCCESS', txn);
      assert.equal(first.status, 200, first.text);
      await waitFor(() => state.received.length === 1, { message: 'first update' });
      const again = await upiCallback(server, order, 'SUCCESS', txn);
      assert.equal(again.status, 200, again.text);
      assert.equal(again.body.duplicate, true);
      const late = await upiCallback(server, order, 'PENDING', `${txn}_late`);
      assert.equal(late.status, 200, late.text);
      assert.equal(late.body.ignored, true);
      // A witness that joins after both: by the time its join is answered,
      // anything broadcast for the repeats would have reached the first
      // socket too, since broadcasts are sent before the callback returns.
      const witness = connect('v4', server.url);
      await connected(witness);
      await witness.timeout(5000).emitWithAck('join-order', { orderId: order.id, token: order.token });
      witness.close();
      assert.equal(state.received.length, 1, `received: ${JSON.stringify(state.received)}`);
      assert.deepEqual(state.applied.map((a) => a.status), ['pending', 'completed']);
    } finally {
      socket.close();
    }
  });
});

// A terminal update asks the page for an ack and is sent again until one
// comes (ACK_TIMEOUT_SECONDS, ACK_RETRIES); an acked update is sent once.
describe('terminal updates are resent until acknowledged', () => {
  let server;
  before(async () => { server = await startServer({ env: { ACK_TIMEOUT_SECONDS: '1', ACK_RETRIES: '2' } }); });
  after(async () => { await server.stop(); });

  // joinedSocket connects a v4 client, joins the order and records every
  // payment-status-update with whether it carried an ack callback; onUpdate
  // decides whether to ack each copy.
  async function joinedSocket(order, onUpdate) {
    const socket = connect('v4', server.url);
    const copies = [];
    socket.on('payment-status-update', (payload, ack) => {
      copies.push({ seq: payload.seq, status: payload.status, at: Date.now(), askedForAck: typeof ack === 'function' });
      if (typeof ack === 'function' && onUpdate(copies.length)) ack({ seq: payload.seq });
    });
    await connected(socket);
    const joined = await socket.timeout(5000).emitWithAck('join-order', { orderId: order.id, token: order.token });
    assert.equal(joined.success, true, JSON.stringify(joined));
    return { socket, copies };
  }

  // resends reads the server's count of re-sent updates from /metrics.
  async function resends() {
    const res = await fetch(`${server.url}/metrics`);
    const text = await res.text();
    const line = text.split('\n').find((l) => l.startsWith('paystatus_update_resends_total{event="payment-status-update"}'));
    assert.ok(line, 'paystatus_update_resends_total is exposed');
    return Number(line.split(' ').pop());
  }

  // completeAndCount joins a fresh order's room, completes the order, waits
  // for `want` copies of the update and then a quiet spell, and returns the
  // copies after checking that no more came, and that the resend metric
  // counted every copy after the first.
  async function completeAndCount(onUpdate, want, { timeout, quietMs }) {
    const resentBefore = await resends();
    const order = await createOrder(server);
    const { socket, copies } = await joinedSocket(order, onUpdate);
    try {
      const res = await upiCallback(server, order, 'SUCCESS', `txn_${want}_${order.id}`);
      assert.equal(res.status, 200, res.text);
      await waitFor(() => copies.length === want, { timeout, message: `${want} copies` });
      await new Promise((r) => setTimeout(r, quietMs));
      assert.equal(copies.length, want, JSON.stringify(copies));
      assert.equal(await resends() - resentBefore, want - 1, 'paystatus_update_resends_total counts the copies after the first');
      return copies;
    } finally {
      socket.close();
    }
  }

  test('no ack: the update comes again after the timeout, at most 1 + ACK_RETRIES times', async () => {
    // Nothing after the last retry.
    const copies = await completeAndCount(() => false, 3, { timeout: 6000, quietMs: 1800 });
    for (const c of copies) {
      assert.equal(c.status, 'completed');
      assert.equal(c.seq, copies[0].seq);
      assert.equal(c.askedForAck, true);
    }
    for (let i = 1; i < copies.length; i++) {
      const gap = copies[i].at - copies[i - 1].at;
      assert.ok(gap >= 800 && gap < 3000, `resend gap ${gap} ms`);
    }
  });

  test('acked on the second copy: no third copy', async () => {
    await completeAndCount((n) => n === 2, 2, { timeout: 4000, quietMs: 2500 });
  });

  test('acked at once: sent exactly once', async () => {
    await completeAndCount(() => true, 1, { timeout: 4000, quietMs: 2500 });
  });
});
