'use strict';
// deploy/nginx.conf, as committed and as printed in the README, in front of
// two real nodes: a v4 client starts on long-polling, upgrades to websocket
// through nginx and receives its update. Skipped only when no nginx binary
// is installed (apt-get install -y nginx-light).
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startServer, api, createOrder, waitFor, freePort, repoRoot } = require('./lib/server');
const { connect, collect, connected } = require('./lib/clients');

const confPath = path.join(repoRoot, 'deploy', 'nginx.conf');

function findNginx() {
  for (const candidate of [process.env.NGINX_BIN, 'nginx', '/usr/sbin/nginx', '/usr/local/sbin/nginx']) {
    if (!candidate) continue;
    try {
      execFileSync(candidate, ['-v'], { stdio: 'pipe' });
      return candidate;
    } catch { /* try the next */ }
  }
  return null;
}

// localConfig points the committed snippet at the test's nodes and port.
// It insists on finding what it rewrites, so an edit to the snippet that
// this test no longer exercises fails here.
function localConfig(snippet, nodePorts, listenPort) {
  const upstreams = snippet.match(/^\s*server\s+[\d.]+:\d+;$/gm) || [];
  assert.equal(upstreams.length, 2, 'deploy/nginx.conf has two upstream server lines');
  let i = 0;
  let out = snippet.replace(/^(\s*server\s+)[\d.]+:\d+;$/gm, (_, lead) => `${lead}127.0.0.1:${nodePorts[i++]};`);
  assert.match(out, /^\s*listen 80;$/m, 'deploy/nginx.conf listens on port 80');
  out = out.replace(/^(\s*)listen 80;$/m, `$1listen 127.0.0.1:${listenPort};`);
  return out;
}

function mainConfig(prefix, include) {
  const p = (name) => path.join(prefix, name);
  return `worker_processes 1;
pid ${p('nginx.pid')};
error_log ${p('error.log')} info;
events { worker_connections 256; }
http {
    access_log ${p('access.log')};
    client_body_temp_path ${p('body')};
    proxy_temp_path ${p('proxy')};
    fastcgi_temp_path ${p('fastcgi')};
    uwsgi_temp_path ${p('uwsgi')};
    scgi_temp_path ${p('scgi')};
    include ${include};
}
`;
}

const nginxBin = findNginx();

describe('behind nginx with sticky sessions', { skip: nginxBin ? false : 'nginx not installed: apt-get install -y nginx-light (or set NGINX_BIN)' }, () => {
  let nodes = [];
  let nginx;
  let nginxExited;
  let prefix;
  const proxy = {};

  before(async () => {
    // Both nodes share one database, as they would in production.
    const shared = fs.mkdtempSync(path.join(os.tmpdir(), 'paystatus-nginx-db-'));
    const env = { DATABASE_URL: path.join(shared, 'db.sqlite') };
    nodes = [await startServer({ env }), await startServer({ env })];

    prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'paystatus-nginx-'));
    const port = await freePort();
    const snippet = fs.readFileSync(confPath, 'utf8');
    fs.writeFileSync(path.join(prefix, 'paystatus.conf'), localConfig(snippet, nodes.map((n) => n.port), port));
    fs.writeFileSync(path.join(prefix, 'nginx.conf'), mainConfig(prefix, path.join(prefix, 'paystatus.conf')));
    execFileSync(nginxBin, ['-t', '-p', prefix, '-c', path.join(prefix, 'nginx.conf')], { stdio: 'pipe' });
    nginx = spawn(nginxBin, ['-p', prefix, '-c', path.join(prefix, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const logs = [];
    nginx.stderr.on('data', (c) => logs.push(c.toString()));
    nginxExited = new Promise((resolve) => nginx.on('exit', resolve));
    proxy.url = `http://127.0.0.1:${port}`;
    await waitFor(async () => {
      if (nginx.exitCode !== null) throw new Error(`nginx exited: ${logs.join('')}`);
      return (await fetch(`${proxy.url}/healthz`)).status === 200;
    }, { message: 'nginx to proxy /healthz' });
  });

  after(async () => {
    if (nginx && nginx.exitCode === null) {
      nginx.kill('SIGQUIT');
      await nginxExited;
    }
    for (const n of nodes) await n.stop();
  });

  test('the docs point at the tested configuration and show no other', () => {
    const snippet = fs.readFileSync(confPath, 'utf8').trim();
    const operations = fs.readFileSync(path.join(repoRoot, 'docs', 'operations.md'), 'utf8');
    assert.ok(operations.includes('](../deploy/nginx.conf)'), 'docs/operations.md links deploy/nginx.conf');
    // Any nginx block in the README or docs must be this file, verbatim, so
    // no untested variant can drift in.
    const docs = ['README.md', ...fs.readdirSync(path.join(repoRoot, 'docs')).filter((f) => f.endsWith('.md')).map((f) => path.join('docs', f))];
    for (const doc of docs) {
      const text = fs.readFileSync(path.join(repoRoot, doc), 'utf8');
      for (const m of text.matchAll(/```nginx\n([\s\S]*?)\n```/g)) {
        assert.strictEqual(m[1].trim(), snippet, `${doc} shows an nginx block that is not deploy/nginx.conf`);
      }
    }
  });

  test('v4 over polling then websocket through nginx receives the update, on one node', async () => {
    const order = await createOrder(proxy);
    const socket = connect('v4', proxy.url, { extra: { transports: ['polling', 'websocket'] } });
    try {
      await connected(socket);
      await waitFor(() => socket.io.engine.transport.name === 'websocket', { message: 'upgrade to websocket through nginx' });
      const updates = collect(socket, 'payment-status-update');
      const ack = await socket.timeout(5000).emitWithAck('join-order', { orderId: order.id, token: order.token });
      assert.equal(ack.success, true);
      const res = await api(proxy, 'POST', `/api/payment/${order.id}/complete`, { admin: true, body: { paymentId: 'pay_nginx' } });
      assert.equal(res.status, 200, res.text);
      await waitFor(() => updates.length === 1, { message: 'update through nginx' });
      assert.equal(updates[0].status, 'completed');
      assert.equal(updates[0].paymentId, 'pay_nginx');

      // ip_hash sent the whole session to one node.
      const connectedOn = nodes.filter((n) => n.logs.join('').includes('client connected'));
      assert.equal(connectedOn.length, 1, 'exactly one node saw the socket');
    } finally {
      socket.close();
    }
    // nginx logs a websocket request when it ends: the handshake went over
    // polling and the upgrade passed through with 101.
    const access = () => fs.readFileSync(path.join(prefix, 'access.log'), 'utf8');
    assert.match(access(), /GET \/socket\.io\/\?EIO=4&transport=polling&t=[^ ]+ HTTP\/1\.1" 200 /, 'handshake over polling');
    await waitFor(() => /GET \/socket\.io\/\?EIO=4&transport=websocket&sid=[^ ]+ HTTP\/1\.1" 101 /.test(access()), { message: 'upgrade (101) in the access log' });
  });

  test('websocket-only v4 through nginx receives the update', async () => {
    const order = await createOrder(proxy);
    const socket = connect('v4', proxy.url, { transport: 'websocket' });
    try {
      await connected(socket);
      const updates = collect(socket, 'payment-status-update');
      const ack = await socket.timeout(5000).emitWithAck('join-order', { orderId: order.id, token: order.token });
      assert.equal(ack.success, true);
      const res = await api(proxy, 'POST', `/api/payment/${order.id}/complete`, { admin: true, body: { status: 'failed' } });
      assert.equal(res.status, 200, res.text);
      await waitFor(() => updates.length === 1, { message: 'update through nginx' });
      assert.equal(updates[0].status, 'failed');
    } finally {
      socket.close();
    }
  });
});
