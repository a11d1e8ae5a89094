// Redis for the multi-node tests: the shared instance on 127.0.0.1:6379
// (started when down), a private instance on a random port for tests that
// restart Redis, unique channel prefixes per run, and the Node fleet server.
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');
const crypto = require('node:crypto');
const { freePort, waitFor } = require('../lib/server');

function listening(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => { sock.destroy(); resolve(true); });
    sock.once('error', () => resolve(false));
  });
}

// sharedRedis returns the URL of the Redis on 6379, starting it if down.
async function sharedRedis() {
  if (!(await listening(6379))) {
    execFileSync('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no']);
    await waitFor(() => listening(6379), { message: 'shared redis on 6379' });
  }
  return 'redis://127.0.0.1:6379/0';
}

// privateRedis runs a redis-server of the test's own on a random port, so
// it can be stopped and started without disturbing anyone else.
async function privateRedis() {
  const port = await freePort();
  const handle = { port, url: `redis://127.0.0.1:${port}/0`, proc: null };
  handle.start = async () => {
    const proc = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    handle.proc = proc;
    handle.exited = new Promise((resolve) => proc.on('exit', resolve));
    await waitFor(() => listening(port), { message: `private redis on ${port}` });
  };
  handle.stop = async () => {
    if (!handle.proc || handle.proc.exitCode !== null || handle.proc.signalCode !== null) return;
    handle.proc.kill('SIGKILL');
    await handle.exited;
    await waitFor(async () => !(await listening(port)), { message: 'private redis down' });
  };
  await handle.start();
  return handle;
}

// uniquePrefix keeps concurrent and repeated runs off each other's channels.
function uniquePrefix(name) {
  return `paystatus-e2e-${name}-${crypto.randomBytes(4).toString('hex')}`;
}

// startNodeFleetServer runs e2e/fleet/node-server.js on a random port.
async function startNodeFleetServer({ redisUrl, prefix, adapter = 'pubsub' }) {
  const port = await freePort();
  const logs = [];
  const proc = spawn(process.execPath, [path.join(__dirname, 'node-server.js')], {
    env: { ...process.env, PORT: String(port), REDIS_URL: redisUrl, REDIS_PREFIX: prefix, ADAPTER: adapter },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  let dead = false;
  exited.then(() => { dead = true; });
  for (const s of [proc.stdout, proc.stderr]) s.on('data', (c) => logs.push(c.toString()));
  await waitFor(() => {
    if (dead) throw new Error(`node fleet server exited:\n${logs.join('')}`);
    return logs.join('').includes('node fleet server ready');
  }, { message: 'node fleet server start' });
  return {
    url: `http://127.0.0.1:${port}`,
    logs,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

// startProxy is the load balancer stand-in: one port whose target can be
// re-pointed (null refuses connections), and whose open connections can be
// cut.
async function startProxy(targetPort) {
  const conns = new Set();
  const p = { target: targetPort };
  const server = net.createServer((client) => {
    if (!p.target) { client.destroy(); return; } // nowhere to send it: refused
    const upstream = net.connect({ host: '127.0.0.1', port: p.target });
    conns.add(client);
    conns.add(upstream);
    const drop = () => { client.destroy(); upstream.destroy(); conns.delete(client); conns.delete(upstream); };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  p.url = `http://127.0.0.1:${server.address().port}`;
  p.cutAll = () => { for (const c of conns) c.destroy(); conns.clear(); };
  p.close = () => new Promise((resolve) => { p.cutAll(); server.close(() => resolve()); });
  return p;
}

module.exports = { sharedRedis, privateRedis, uniquePrefix, startNodeFleetServer, startProxy, listening };
