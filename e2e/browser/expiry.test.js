'use strict';
// The checkout page's payment window in a real Chromium against the real
// server: the countdown and what screen readers hear of it, the expired
// screen pushed (or polled) from the server, the silence after it, and a
// late capture shown once the buyer checks again.

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
} = require('./helpers');

// Short windows and a fast sweep, so orders end within seconds.
const SHORT_WINDOWS = { server: { env: { ORDER_TTL_MIN_SECONDS: '1', ORDER_EXPIRY_SWEEP_SECONDS: '0.2' } } };

// Records every text the countdown announcer is given, from the first paint.
function recordAnnouncements() {
  window.__announcements = [];
  document.addEventListener('DOMContentLoaded', () => {
    const el = document.getElementById('countdown-announcer');
    const push = () => {
      if (el.textContent) window.__announcements.push(el.textContent);
    };
    new MutationObserver(push).observe(el, { childList: true, characterData: true, subtree: true });
  });
}

async function announcements(page) {
  return page.evaluate(() => window.__announcements.slice());
}

test('counts down and announces the time left at a few points only, never ending the payment by itself',
  async () => {
    await withServerAndPage('expiry-countdown', async ({ server, page }) => {
      const order = await createOrder(server, { ttlSeconds: 400 });
      const deadline = Date.parse(order.expiresAt);
      assert.ok(deadline - Date.parse(order.createdAt) === 400000, 'order has a 400 s window');
      await page.addInitScript(recordAnnouncements);
      // A fake clock that keeps running: the test moves the page's wall
      // clock forward without waiting minutes.
      await page.clock.install();
      await page.goto(paymentUrl(server, order));
      await page.waitForSelector('#connection-indicator[data-state="live"]', { timeout: 15000 });

      assert.equal(await page.isVisible('#payment-window'), true);
      assert.match(await page.textContent('#countdown'), /^6:[34]\d$/);
      assert.equal(await page.getAttribute('#countdown', 'role'), 'timer');
      assert.equal(await page.getAttribute('#countdown', 'aria-live'), 'off');
      assert.equal(await page.getAttribute('#countdown-announcer', 'aria-live'), 'polite');
      await waitFor('the opening announcement', async () => (await announcements(page)).length === 1);
      assert.deepEqual(await announcements(page), ['7 minutes left to pay.']);

      // Ticking on, second by second, says nothing more.
      await page.waitForTimeout(2500);
      assert.equal((await announcements(page)).length, 1, 'no announcement every second');

      const steps = [
        [299, '5 minutes left to pay.'],
        [59, '1 minute left to pay.'],
        [29, '30 seconds left to pay.'],
        [-1, 'The time to pay is up. Waiting for confirmation.'],
      ];
      for (const [secondsLeft, said] of steps) {
        await page.clock.setSystemTime(deadline - secondsLeft * 1000);
        await waitFor(`"${said}"`, async () => (await announcements(page)).at(-1) === said);
      }
      assert.deepEqual(await announcements(page), ['7 minutes left to pay.', ...steps.map((s) => s[1])]);
      assert.equal((await page.textContent('#countdown')).trim(), '0:00');
      assert.match(await page.textContent('#countdown-label'), /Confirming with the server/);

      // The page's own clock never shows the expired screen: the server's
      // deadline is minutes away still.
      await page.waitForTimeout(1500);
      assert.equal(await paymentStatus(page), 'pending');
      assert.equal(await page.isVisible('#expired-actions'), false);
      assert.equal(await indicatorState(page), 'live');
    }, SHORT_WINDOWS);
  });

for (const mode of [
  { name: 'pushed over the socket', query: {}, live: 'live' },
  { name: 'found by the long-poll', query: { realtime: 'off' }, live: 'polling' },
]) {
  test(`shows the expired screen ${mode.name} at the deadline, then goes silent; a late capture shows on a check`,
    async () => {
      await withServerAndPage(`expiry-expired-${mode.query.realtime ? 'polling' : 'push'}`, async ({ server, page }) => {
        const order = await createOrder(server, { ttlSeconds: 4 });
        const deadline = Date.parse(order.expiresAt);
        let navigations = 0;
        page.on('framenavigated', (frame) => { if (frame === page.mainFrame()) navigations++; });
        await page.goto(paymentUrl(server, order, mode.query));
        await page.waitForSelector(`#connection-indicator[data-state="${mode.live}"]`, { timeout: 15000 });
        assert.equal(await paymentStatus(page), 'pending');
        assert.equal(await page.isVisible('#payment-window'), true);
        const navigationsBefore = navigations;

        await page.waitForSelector('#payment-status[data-status="expired"]', { timeout: 15000 });
        const lag = Date.now() - deadline;
        assert.ok(lag < 4000, `expired screen ${lag} ms after the deadline`);
        assert.equal(navigations, navigationsBefore, 'no reload');
        assert.match(await page.textContent('#status-title'), /expired/i);
        assert.equal(await page.isVisible('#payment-window'), false, 'countdown gone');
        assert.equal(await page.isVisible('#upi-link'), false, 'no pay button on an expired request');
        assert.equal(await page.isVisible('#check-again'), true);

        // All network activity stops.
        await waitFor('indicator to say the payment is final', async () => (await indicatorState(page)) === 'final');
        const client = await page.evaluate(() => {
          const c = window.paymentPage.client;
          return { state: c.state, socket: !!c.socket, pollInFlight: !!c._pollAbort };
        });
        assert.deepEqual(client, { state: 'closed', socket: false, pollInFlight: false });
        const requests = [];
        page.on('request', (req) => requests.push(req.url()));
        await page.waitForTimeout(2500);
        assert.deepEqual(requests, [], 'no requests after the expired screen');

        // The buyer's bank captured the money late: the server takes it as a
        // late capture; the silent page shows it once the buyer checks.
        const captured = await completeOrder(server, order.id, 'pay_late');
        assert.equal(captured.status, 'completed');
        assert.equal(captured.lateCapture, true);
        await page.waitForTimeout(500);
        assert.equal(await paymentStatus(page), 'expired', 'no network, so no change by itself');
        assert.deepEqual(requests, []);
        await page.click('#check-again');
        await page.waitForSelector('#payment-status[data-status="completed"]', { timeout: 5000 });
        assert.match(await page.textContent('#status-detail'), /after this payment request had expired/);
        assert.equal((await page.textContent('#payment-id')).trim(), 'pay_late');
        assert.equal(await page.isVisible('#check-again'), false);
        assert.equal(requests.filter((u) => u.includes('/api/payment/status/')).length, 1, 'exactly one check');
      }, SHORT_WINDOWS);
    });
}

test('a page opened on a late-captured order shows it as paid', async () => {
  await withServerAndPage('expiry-late-capture-reload', async ({ server, page }) => {
    const order = await createOrder(server, { ttlSeconds: 1 });
    await waitFor('the sweep to expire the order', async () => {
      const res = await fetch(`${server.url}/api/payment/status/${order.id}?token=${order.token}`);
      return (await res.json()).status === 'expired';
    }, 10000);
    await completeOrder(server, order.id, 'pay_after');
    await page.goto(paymentUrl(server, order));
    await page.waitForSelector('#payment-status[data-status="completed"]', { timeout: 10000 });
    assert.match(await page.textContent('#status-title'), /successful/i);
    assert.equal(await page.isVisible('#payment-window'), false);
  }, SHORT_WINDOWS);
});
