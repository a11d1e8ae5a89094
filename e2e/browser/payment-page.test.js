'use strict';
// Checkout page (/payment.html) against the real server in a real Chromium.

const test = require('node:test');
const assert = require('node:assert/strict');
const {
  withServerAndPage,
  createOrder,
  completeOrder,
  paymentUrl,
  waitFor,
  indicatorState,
  paymentStatus,
  waitHealthy,
  startStaticServer,
} = require('./helpers');

// Records every value the connection indicator takes, from the first paint.
function recordIndicatorHistory() {
  window.__indicatorHistory = [];
  const watch = () => {
    const el = document.getElementById('connection-indicator');
    if (!el) return;
    const push = () => {
      const state = el.getAttribute('data-state');
      const h = window.__indicatorHistory;
      if (h[h.length - 1] !== state) h.push(state);
    };
    push();
    new MutationObserver(push).observe(el, { attributes: true, attributeFilter: ['data-state'] });
  };
  document.addEventListener('DOMContentLoaded', watch);
}

function joinedLines(logs, orderId) {
  return logs.filter((l) => l.includes(`Successfully joined room for order: ${orderId}`)).length;
}

test('goes live and shows the completed payment within a second, without a reload', async () => {
  await withServerAndPage('payment-live-success', async ({ server, browser, page }) => {
    const order = await createOrder(server, { amount: 49900, currency: 'INR' });
    let navigations = 0;
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) navigations++;
    });

    await page.goto(paymentUrl(server, order));
    await page.waitForSelector('#connection-indicator[data-state="live"]', { timeout: 15000 });
    assert.equal((await page.textContent('#connection-indicator')).trim(), 'Live');
    await waitFor('the join of the order room', () => joinedLines(browser.logs, order.id) >= 1);

    assert.equal(await paymentStatus(page), 'pending');
    assert.equal(await page.getAttribute('#payment-status', 'aria-live'), 'polite');
    assert.match(await page.textContent('#amount'), /499\.00/);
    const upi = new URL(await page.getAttribute('#upi-link', 'href'));
    assert.equal(upi.protocol, 'upi:');
    assert.equal(upi.searchParams.get('am'), '499.00');
    assert.equal(upi.searchParams.get('cu'), 'INR');
    assert.equal(upi.searchParams.get('tr'), order.id);
    assert.ok(upi.searchParams.get('pa'), 'UPI link has a payee address');

    await page.evaluate(() => { window.__sameDocument = true; });
    const navigationsBefore = navigations;

    const started = Date.now();
    await completeOrder(server, order.id, 'pay_1');
    const left = Math.max(1, 1000 - (Date.now() - started));
    await page.waitForSelector('#payment-status[data-status="completed"]', { timeout: left });
    assert.ok(Date.now() - started <= 1000, `success shown after ${Date.now() - started} ms`);

    assert.equal((await page.textContent('#payment-id')).trim(), 'pay_1');
    assert.equal(await page.isVisible('#payment-id'), true);
    assert.match(await page.textContent('#payment-status'), /successful/i);
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'page was not reloaded');
    assert.equal(navigations, navigationsBefore, 'no navigation happened');
    assert.equal(await page.isVisible('#upi-link'), false, 'pay link hidden once paid');

    // Terminal status: the page stops all network activity.
    await waitFor('indicator to say the payment is final', async () => (await indicatorState(page)) === 'final');
    assert.doesNotMatch(await page.textContent('#connection-indicator'), /offline/i);
  });
});

test('reaches success by polling when every /socket.io/ request is blocked', async () => {
  await withServerAndPage('payment-socketio-blocked', async ({ server, page }) => {
    const order = await createOrder(server);
    let blocked = 0;
    await page.route('**/socket.io/**', (route) => {
      blocked++;
      return route.abort();
    });
    const statusPolls = [];
    page.on('request', (req) => {
      if (req.url().includes('/api/payment/status/')) statusPolls.push(req.url());
    });

    await page.goto(paymentUrl(server, order));
    await page.waitForSelector('#connection-indicator[data-state="polling"]', { timeout: 15000 });
    assert.equal((await page.textContent('#connection-indicator')).trim(), 'Polling');
    assert.ok(blocked >= 1, 'the page tried to reach /socket.io/');
    assert.equal(await paymentStatus(page), 'pending');
    // A long-poll from the status the page already has is waiting on the server.
    await waitFor('a long-poll request', () =>
      statusPolls.some((u) => /[?&]since=\d+/.test(u) && /[?&]wait=\d+/.test(u)));

    await completeOrder(server, order.id, 'pay_polled');
    await page.waitForSelector('#payment-status[data-status="completed"]', { timeout: 5000 });
    assert.equal((await page.textContent('#payment-id')).trim(), 'pay_polled');

    // Polling stops at the terminal status.
    await waitFor('indicator to say the payment is final', async () => (await indicatorState(page)) === 'final');
    assert.doesNotMatch(await page.textContent('#connection-indicator'), /offline/i);
    const client = await page.evaluate(() => {
      const c = window.paymentPage.client;
      return { state: c.state, socket: !!c.socket, pollInFlight: !!c._pollAbort };
    });
    assert.deepEqual(client, { state: 'closed', socket: false, pollInFlight: false });
  });
});

test('reconnects and rejoins after a server restart, ending on a completion made while it was away',
  async () => {
    await withServerAndPage('payment-server-restart', async ({ server, browser, page }) => {
      const order = await createOrder(server);
      await page.addInitScript(recordIndicatorHistory);
      await page.goto(paymentUrl(server, order));
      await page.waitForSelector('#connection-indicator[data-state="live"]', { timeout: 15000 });
      await waitFor('the first join', () => joinedLines(browser.logs, order.id) >= 1);

      // Keep the page away from the socket until the completion is stored, so
      // the page can only learn it by rejoining after the restart.
      await page.route('**/socket.io/**', (route) => route.abort());
      await server.restart();
      await waitHealthy(server);
      await waitFor('the page to notice the restart',
        async () => (await indicatorState(page)) === 'reconnecting', 15000);

      await completeOrder(server, order.id, 'pay_restart');
      assert.equal(await paymentStatus(page), 'pending', 'the page cannot know yet');

      await page.unroute('**/socket.io/**');
      await page.waitForSelector('#payment-status[data-status="completed"]', { timeout: 45000 });
      assert.equal((await page.textContent('#payment-id')).trim(), 'pay_restart');

      const history = await page.evaluate(() => window.__indicatorHistory);
      const firstReconnecting = history.indexOf('reconnecting', history.indexOf('live'));
      assert.ok(firstReconnecting > 0, `went reconnecting after live: ${history}`);
      assert.ok(history.indexOf('live', firstReconnecting) > firstReconnecting,
        `came back live (by reconnecting, not polling): ${history}`);
      assert.ok(joinedLines(browser.logs, order.id) >= 2, 'joined the room again after reconnecting');
      await waitFor('indicator to say the payment is final', async () => (await indicatorState(page)) === 'final');
    assert.doesNotMatch(await page.textContent('#connection-indicator'), /offline/i);
    });
  });

test('with ?realtime=off the page only polls and still ends on success', async () => {
  await withServerAndPage('payment-realtime-off', async ({ server, page }) => {
    const order = await createOrder(server);
    const socketRequests = [];
    const statusPolls = [];
    page.on('request', (req) => {
      if (req.url().includes('/socket.io/')) socketRequests.push(req.url());
      if (req.url().includes('/api/payment/status/')) statusPolls.push(req.url());
    });

    await page.goto(paymentUrl(server, order, { realtime: 'off' }));
    await page.waitForSelector('#connection-indicator[data-state="polling"]', { timeout: 15000 });
    await waitFor('a long-poll request', () =>
      statusPolls.some((u) => /[?&]since=\d+/.test(u) && /[?&]wait=\d+/.test(u)));

    await completeOrder(server, order.id, 'pay_off');
    await page.waitForSelector('#payment-status[data-status="completed"]', { timeout: 5000 });
    assert.equal((await page.textContent('#payment-id')).trim(), 'pay_off');
    assert.deepEqual(socketRequests, [], 'no socket.io traffic at all');
  });
});

test('the rollout decides between push and polling, and ?realtime=on overrides it', async () => {
  await withServerAndPage('payment-rollout-zero', async ({ server, page }) => {
    const config = await (await fetch(`${server.url}/api/config?session=abc`)).json();
    assert.equal(config.realtime, false, 'REALTIME_ROLLOUT_PERCENT=0 gives no session push');

    const order = await createOrder(server);
    await page.goto(paymentUrl(server, order));
    await page.waitForSelector('#connection-indicator[data-state="polling"]', { timeout: 15000 });

    const forced = await createOrder(server);
    await page.goto(paymentUrl(server, forced, { realtime: 'on' }));
    await page.waitForSelector('#connection-indicator[data-state="live"]', { timeout: 15000 });
    await completeOrder(server, forced.id, 'pay_forced');
    await page.waitForSelector('#payment-status[data-status="completed"]', { timeout: 2000 });
  }, { server: { env: { REALTIME_ROLLOUT_PERCENT: '0' } } });
});

test('works when the page is served from another origin than the API (?api=)', async () => {
  const pages = await startStaticServer();
  try {
    await withServerAndPage('payment-cross-origin', async ({ server, page }) => {
      pages.apiOrigins = [server.url]; // the static host trusts this API
      const order = await createOrder(server);
      const requests = [];
      page.on('request', (req) => requests.push(req.url()));

      const query = new URLSearchParams({ orderId: order.id, token: order.token, api: server.url });
      await page.goto(`${pages.origin}/payment.html?${query}`);
      await page.waitForSelector('#connection-indicator[data-state="live"]', { timeout: 15000 });
      assert.ok(requests.includes(`${pages.origin}/socket.io/socket.io.js`),
        'the socket.io client comes from the page\'s own origin');
      assert.ok(!requests.includes(`${server.url}/socket.io/socket.io.js`),
        'no script is loaded from the API origin');
      assert.match(await page.textContent('#amount'), /499\.00/);

      await completeOrder(server, order.id, 'pay_cors');
      await page.waitForSelector('#payment-status[data-status="completed"]', { timeout: 2000 });
      assert.equal((await page.textContent('#payment-id')).trim(), 'pay_cors');
    }, { server: { env: { CORS_ORIGINS: pages.origin } } });
  } finally {
    await pages.close();
  }
});

test('a broken link shows a clear error', async () => {
  await withServerAndPage('payment-bad-token', async ({ server, page }) => {
    const order = await createOrder(server);
    await page.goto(paymentUrl(server, { id: order.id, token: 'not-the-token' }));
    await page.waitForSelector('#payment-status[data-status="error"]', { timeout: 10000 });
    assert.equal(await indicatorState(page), 'offline');
    assert.equal(await page.isVisible('#upi-link'), false);
  });
});
