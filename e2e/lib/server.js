// Starts the real server binary for end-to-end tests: random port, its own
// SQLite file (unless DATABASE_URL is given), and helpers to stop, kill and
// restart it on the same port and database.
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');

const repoRoot = path.resolve(__dirname, '..', '..');
let builtBinary = null;

function buildServer() {
  if (process.env.PAYSTATUS_BIN) return process.env.PAYSTATUS_BIN;
  if (builtBinary) return builtBinary;
  const out = path.join(os.tmpdir(), `paystatus-e2e-${process.pid}`);
  execFileSync('go', ['build', '-o', out, '.'], { cwd: repoRoot, stdio: 'inherit' });
  builtBinary = out;
  return out;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(check, { timeout = 15000, interval = 50, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let lastErr;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, interval));
  }
  throw new Error(`timed out waiting for ${message}${lastErr ? `: ${lastErr.message}` : ''}`);
}

const ADMIN_TOKEN = 'test-admin-token';

async function startServer({ env = {}, port } = {}) {
  const bin = buildServer();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystatus-e2e-'));
  const baseEnv = {
    ...process.env,
    APP_ENV: 'development',
    ADMIN_TOKEN,
    ORDER_TOKEN_SECRET: 'e2e-order-secret',
    UPI_CALLBACK_SECRET: 'e2e-upi-secret',
    RAZORPAY_WEBHOOK_SECRET: 'e2e-razorpay-secret',
    STRIPE_WEBHOOK_SECRET: 'e2e-stripe-secret',
    DATABASE_URL: path.join(dir, 'db.sqlite'),
    STATIC_DIR: path.join(repoRoot, 'static'),
    SOCKET_IO_CLIENT_DIR: path.join(repoRoot, 'node_modules', 'socket.io-client', 'dist'),
    LOG_LEVEL: 'info',
    // Every test client shares one address; the per-address limits have
    // tests of their own that switch them on.
    HANDSHAKE_RATE_PER_IP: 'off',
    ANON_RATE_PER_IP: 'off',
    ORDER_RATE_PER_IP: 'off',
    ...env,
  };
  const handle = { dir, env: baseEnv, port: port || (await freePort()), proc: null, logs: [] };
  const scheme = baseEnv.TLS_CERT_FILE ? 'https' : 'http';

  handle.start = async () => {
    // Only this run's output counts towards readiness; earlier runs' stays in logs.
    const firstLine = handle.logs.length;
    const proc = spawn(bin, [], { env: { ...handle.env, PORT: String(handle.port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    handle.proc = proc;
    const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    handle.exited = exited;
    for (const stream of [proc.stdout, proc.stderr]) {
      stream.on('data', (chunk) => handle.logs.push(chunk.toString()));
    }
    let dead = false;
    exited.then(() => { dead = true; });
    await waitFor(async () => {
      if (dead) throw new Error(`server exited early:\n${handle.logs.join('')}`);
      return handle.logs.slice(firstLine).join('').includes('WebSocket server ready');
    }, { timeout: 20000, message: 'server start' });
  };
  handle.url = `${scheme}://127.0.0.1:${handle.port}`;
  handle.stop = async () => {
    if (!handle.proc || handle.proc.exitCode !== null || handle.proc.signalCode !== null) return;
    handle.proc.kill('SIGTERM');
    await handle.exited;
  };
  handle.kill = async () => {
    if (!handle.proc || handle.proc.exitCode !== null || handle.proc.signalCode !== null) return;
    handle.proc.kill('SIGKILL');
    await handle.exited;
  };
  handle.restart = async () => {
    await handle.stop();
    await handle.start();
  };
  await handle.start();
  return handle;
}

async function api(server, method, urlPath, { body, headers = {}, admin = false, raw } = {}) {
  const h = { ...headers };
  if (body !== undefined || raw !== undefined) h['content-type'] = 'application/json';
  if (admin) h.authorization = `Bearer ${ADMIN_TOKEN}`;
  const res = await fetch(server.url + urlPath, {
    method,
    headers: h,
    body: raw !== undefined ? raw : body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, body: json, text };
}

async function createOrder(server, body = { amount: 49900, currency: 'INR', description: 'e2e order' }) {
  const res = await api(server, 'POST', '/api/orders', { body });
  if (res.status !== 201) throw new Error(`create order: ${res.status} ${res.text}`);
  return res.body;
}

module.exports = { startServer, api, createOrder, waitFor, freePort, ADMIN_TOKEN, repoRoot };
