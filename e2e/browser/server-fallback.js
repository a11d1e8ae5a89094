'use strict';
// Minimal server starter for the browser tests, used only when the shared
// helper e2e/lib/server.js is absent. Same interface:
//   startServer({env}) -> {url, port, stop(), kill(), restart()}
// Builds the server once per test process and runs it on a free loopback port
// with its own SQLite file.

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const repoRoot = path.resolve(__dirname, '..', '..');
let binary = null;

function buildOnce() {
  if (binary) return binary;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystatus-bin-'));
  const out = path.join(dir, 'paystatus');
  execFileSync('go', ['build', '-o', out, '.'], { cwd: repoRoot, stdio: 'inherit' });
  binary = out;
  return binary;
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

async function waitHealthy(url, child, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited early with code ${child.exitCode}`);
    try {
      const res = await fetch(url + '/healthz');
      if (res.status === 200) return;
    } catch (e) { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server at ${url} not healthy after ${timeoutMs} ms`);
}

function waitExit(child, timeoutMs) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function startServer(options = {}) {
  const bin = buildOnce();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystatus-data-'));
  const port = options.port || await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    PORT: String(port),
    DATABASE_URL: path.join(dataDir, 'db.sqlite'),
    ADMIN_TOKEN: 'test-admin',
    APP_ENV: 'development',
    ...(options.env || {}),
  };
  let child = null;
  const output = [];

  async function launch() {
    child = spawn(bin, [], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d) => output.push(d.toString()));
    child.stderr.on('data', (d) => output.push(d.toString()));
    await waitHealthy(url, child, 20000);
  }

  await launch();

  return {
    url,
    port,
    output: () => output.join(''),
    async stop() {
      if (!child) return;
      const c = child;
      child = null;
      c.kill('SIGTERM');
      await waitExit(c, 10000);
    },
    async kill() {
      if (!child) return;
      const c = child;
      child = null;
      c.kill('SIGKILL');
      await waitExit(c, 5000);
    },
    async restart() {
      await this.stop();
      await launch();
    },
    async start() {
      if (!child) await launch();
    },
  };
}

module.exports = { startServer };
