'use strict';
// Shared pieces of the browser tests: the server, Debian's Chromium driven by
// playwright-core (never a downloaded browser), API calls and screenshots.

const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const repoRoot = path.resolve(__dirname, '..', '..');
const screenshotDir = path.join(repoRoot, 'artifacts', 'screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ADMIN_TOKEN = 'test-admin';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function loadServerHelper() {
  // PAYSTATUS_E2E_SERVER_HELPER points the tests at another starter with the
  // same interface (e.g. one that runs an already built binary).
  if (process.env.PAYSTATUS_E2E_SERVER_HELPER) {
    return require(path.resolve(process.env.PAYSTATUS_E2E_SERVER_HELPER));
  }
  return require(path.join(__dirname, '..', 'lib', 'server.js'));
}

async function startServer(options = {}) {
  const { startServer: start } = loadServerHelper();
  return start({
    ...options,
    env: {
      ADMIN_TOKEN,
      APP_ENV: 'development',
      // Fixed, so that order tokens stay valid across a server restart.
      ORDER_TOKEN_SECRET: 'e2e-browser-order-token-secret',
      ...(options.env || {}),
    },
  });
}

/**
 * A fresh Chromium with its own user-data dir. Returns {context, page, logs, close()}.
 * `logs` collects console lines and page errors, printed by the caller on failure.
 */
async function openBrowser() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}`);
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystatus-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1024, height: 800 },
  });
  const page = context.pages()[0] || await context.newPage();
  const logs = [];
  page.on('console', (msg) => logs.push(`[console.${msg.type()}] ${msg.text()}`));
  page.on('pageerror', (err) => logs.push(`[pageerror] ${err.message}`));
  return {
    context,
    page,
    logs,
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

async function screenshot(page, name) {
  fs.mkdirSync(screenshotDir, { recursive: true });
  await page.screenshot({ path: path.join(screenshotDir, `${name}.png`), fullPage: true })
    .catch(() => {});
}

async function api(server, method, urlPath, body, headers = {}) {
  const res = await fetch(server.url + urlPath, {
    method,
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
  return { status: res.status, data };
}

async function createOrder(server, fields = {}) {
  const res = await api(server, 'POST', '/api/orders',
    { amount: 49900, currency: 'INR', description: 'Browser test order', ...fields });
  if (res.status !== 201) throw new Error(`create order: HTTP ${res.status} ${JSON.stringify(res.data)}`);
  return res.data;
}

async function completeOrder(server, orderId, paymentId = 'pay_1') {
  const res = await api(server, 'POST', `/api/payment/${encodeURIComponent(orderId)}/complete`,
    { status: 'completed', paymentId }, { Authorization: `Bearer ${ADMIN_TOKEN}` });
  if (res.status !== 200) throw new Error(`complete order: HTTP ${res.status} ${JSON.stringify(res.data)}`);
  return res.data;
}

function paymentUrl(server, order, extra = {}) {
  const query = new URLSearchParams({ orderId: order.id, token: order.token, debug: '1', ...extra });
  return `${server.url}/payment.html?${query}`;
}

/** Polls fn until it returns a truthy value; throws with `what` after timeoutMs. */
async function waitFor(what, fn, timeoutMs = 10000, intervalMs = 50) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

async function indicatorState(page) {
  return page.getAttribute('#connection-indicator', 'data-state');
}

async function paymentStatus(page) {
  return page.getAttribute('#payment-status', 'data-status');
}

/**
 * Serves static/ from another origin (http://localhost:<port>, while the API is
 * at 127.0.0.1) to check the pages against a cross-origin API, as a static
 * host would: it also serves the socket.io browser client under /socket.io/,
 * and lists its handle's `apiOrigins` in the checkout page's
 * paystatus-api-origins meta tag.
 */
async function startStaticServer() {
  const handle = { origin: '', apiOrigins: [], close: null };
  const staticDir = path.join(repoRoot, 'static');
  const clientDir = path.join(repoRoot, 'node_modules', 'socket.io-client', 'dist');
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json' };
  const srv = http.createServer((req, res) => {
    let urlPath = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    let root = staticDir;
    if (urlPath.startsWith('/socket.io/')) {
      root = clientDir;
      urlPath = urlPath.slice('/socket.io'.length);
    }
    const file = path.join(root, urlPath);
    if (!file.startsWith(root + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': types[path.extname(file)] || 'application/octet-stream' });
    if (urlPath === '/payment.html') {
      const html = fs.readFileSync(file, 'utf8').replace(
        '<meta name="paystatus-api-origins" content="">',
        `<meta name="paystatus-api-origins" content="${handle.apiOrigins.join(' ')}">`);
      res.end(html);
      return;
    }
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const { port } = srv.address();
  handle.origin = `http://localhost:${port}`;
  handle.close = () => new Promise((resolve) => srv.close(resolve));
  return handle;
}

function serverOutput(server) {
  if (typeof server.output === 'function') return server.output();
  if (Array.isArray(server.logs)) return server.logs.join('');
  return '';
}

/** Waits until the server answers GET /healthz with 200 (e.g. after a restart). */
async function waitHealthy(server, timeoutMs = 20000) {
  await waitFor('GET /healthz to answer 200', async () => {
    const res = await fetch(server.url + '/healthz');
    return res.status === 200;
  }, timeoutMs);
}

/**
 * Runs body({server, browser, page, takeScreenshot}) with a fresh server and
 * browser. A screenshot named `name` is saved whatever happens (at the end,
 * unless the body took it itself with takeScreenshot()); on failure the page's
 * console lines and the server output are printed when the body throws.
 */
async function withServerAndPage(name, body, options = {}) {
  const server = await startServer(options.server);
  let browser = null;
  let shot = false;
  try {
    browser = await openBrowser();
    const takeScreenshot = async () => {
      shot = true;
      await screenshot(browser.page, name);
    };
    await body({ server, browser, page: browser.page, takeScreenshot });
  } catch (err) {
    if (browser) console.error(`--- page log (${name}) ---\n${browser.logs.join('\n')}`);
    const output = serverOutput(server);
    if (output) console.error(`--- server output (${name}) ---\n${output.slice(-4000)}`);
    throw err;
  } finally {
    if (browser) {
      if (!shot) await screenshot(browser.page, name);
      await browser.close();
    }
    await server.stop();
  }
}

module.exports = {
  startServer,
  openBrowser,
  screenshot,
  api,
  createOrder,
  completeOrder,
  paymentUrl,
  waitFor,
  indicatorState,
  paymentStatus,
  withServerAndPage,
  waitHealthy,
  startStaticServer,
  ADMIN_TOKEN,
};
