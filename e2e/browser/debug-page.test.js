'use strict';
// Realtime debugging page (/websocket-test.html) against the real server.

const test = require('node:test');
const assert = require('node:assert/strict');
const { withServerAndPage, waitFor } = require('./helpers');

async function logEntries(page, selector) {
  return page.$$eval(`#log li${selector}`, (items) => items.map((li) => ({
    dir: li.dataset.dir,
    event: li.dataset.event,
    kind: li.dataset.kind || '',
    time: li.querySelector('.time').textContent,
    payload: li.querySelector('.payload').textContent,
  })));
}

test('debugging page connects, joins, pings and simulates a payment', async () => {
  await withServerAndPage('websocket-test-page', async ({ server, page, takeScreenshot }) => {
    await page.goto(`${server.url}/websocket-test.html`);

    await page.click('#connect');
    await page.waitForSelector('#connection-state[data-state="connected"]', { timeout: 15000 });
    const socketId = (await page.textContent('#socket-id')).trim();
    assert.ok(socketId && socketId !== '—', 'socket id shown');
    assert.equal(socketId, await page.evaluate(() => window.debugPage.socket.id));
    assert.match(await page.textContent('#transport'), /^(polling|websocket)$/);
    // The default polling transport is upgraded to WebSocket, and the page says so.
    await waitFor('the upgrade to websocket', async () =>
      (await page.textContent('#transport')) === 'websocket', 10000);
    assert.match(await page.textContent('#upgrades'), /polling → websocket/);

    await page.click('#create-order');
    const orderId = await waitFor('the new order id', () => page.inputValue('#order-id'));
    assert.ok(await page.inputValue('#order-token'), 'order token filled in');
    const created = await logEntries(page, '[data-dir="http"]');
    assert.ok(created.some((e) => e.event === '201 POST /api/orders'), 'order creation logged');

    await page.click('#join');
    await waitFor('the room name', async () => (await page.textContent('#room')).trim() !== '—');
    await waitFor('join events in the log', async () => {
      const out = await logEntries(page, '[data-dir="out"][data-event="join-order"]');
      const back = await logEntries(page, '[data-dir="in"][data-event="joined-order"]');
      return out.length === 1 && back.length >= 1 && back[0].payload.includes('"success":true');
    });
    assert.match(await page.textContent('#order-status'), /pending/);

    await page.click('#ping');
    const rtt = await waitFor('the round trip', async () => {
      const text = (await page.textContent('#rtt')).trim();
      return /^\d+ ms$/.test(text) && text;
    });
    assert.ok(parseInt(rtt, 10) < 5000, `round trip ${rtt}`);
    await waitFor('the pong in the log', async () =>
      (await logEntries(page, '[data-dir="in"][data-event="pong"]')).length === 1);

    // pending on a pending order is refused, and the page shows why.
    await page.selectOption('#simulate-status', 'pending');
    await page.click('#simulate');
    await waitFor('the refused simulation in the log', async () =>
      (await logEntries(page, '[data-dir="http"][data-kind="error"]'))
        .some((e) => e.event.startsWith('409 POST') && e.payload.includes('error')));

    await page.selectOption('#simulate-status', 'processing');
    await page.click('#simulate');
    await page.waitForSelector('#order-status[data-status="processing"]', { timeout: 5000 });

    await page.selectOption('#simulate-status', 'completed');
    await page.click('#simulate');
    await page.waitForSelector('#order-status[data-status="completed"]', { timeout: 5000 });
    const updates = await waitFor('the completed update in the log', async () => {
      const entries = await logEntries(page, '[data-dir="in"]');
      const found = entries.filter((e) => e.event.startsWith('payment-status-update') &&
        e.payload.includes('"status":"completed"') && e.payload.includes(orderId));
      return found.length >= 1 && found;
    });
    assert.match(updates[0].time, /^\d{2}:\d{2}:\d{2}\.\d{3}$/, 'log lines carry a timestamp');
    assert.match(updates[0].event, /ack requested/, 'terminal update arrives with an ack');
    await waitFor('the ack sent back', async () =>
      (await logEntries(page, '[data-dir="out"][data-event="ack: payment-status-update"]')).length >= 1);

    await takeScreenshot();

    await page.click('#clear-log');
    assert.equal(await page.$$eval('#log li', (items) => items.length), 0);

    await page.click('#disconnect');
    await page.waitForSelector('#connection-state[data-state="disconnected"]', { timeout: 5000 });
    assert.equal((await page.textContent('#socket-id')).trim(), '—');
  });
});
