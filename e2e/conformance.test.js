'use strict';
// realtime/conformance behaves as Socket.IO's protocol test suite expects.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');
const { freePort, waitFor, repoRoot } = require('./lib/server');
// ws is installed with the socket.io packages; its export changed at 8.
const wsModule = require('ws');
const WebSocket = wsModule.WebSocket || wsModule;
const { connect, once, connected } = require('./lib/clients');

let proc;
let url;
before(async () => {
  const bin = path.join(os.tmpdir(), `paystatus-conformance-${process.pid}`);
  execFileSync('go', ['build', '-o', bin, './realtime/conformance'], { cwd: repoRoot, stdio: 'inherit' });
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  proc = spawn(bin, ['-addr', `127.0.0.1:${port}`], { stdio: 'ignore' });
  await waitFor(async () => (await fetch(`${url}/socket.io/?EIO=4&transport=polling`)).ok, { message: 'conformance server' });
});
after(() => proc && proc.kill('SIGTERM'));

test('handshake advertises the suite settings', async () => {
  const res = await fetch(`${url}/socket.io/?EIO=4&transport=polling`, { headers: { origin: 'http://example.test' } });
  const text = await res.text();
  const open = JSON.parse(text.slice(1));
  assert.equal(text[0], '0');
  assert.equal(open.pingInterval, 300);
  assert.equal(open.pingTimeout, 200);
  assert.equal(open.maxPayload, 1000000);
  assert.ok(['*', 'http://example.test'].includes(res.headers.get('access-control-allow-origin')));
});

for (const nsp of ['/', '/custom']) {
  test(`connection to ${nsp} emits auth with the handshake payload`, async () => {
    const socket = connect('v4', url + (nsp === '/' ? '' : nsp), { auth: { token: 'abc', n: 1 } });
    try {
      const [auth] = await once(socket, 'auth');
      assert.deepEqual(auth, { token: 'abc', n: 1 });
    } finally {
      socket.close();
    }
  });
}

test('message is echoed as message-back, and message-with-ack acks the same arguments', async () => {
  const socket = connect('v4', url);
  try {
    await connected(socket);
    const back = once(socket, 'message-back');
    socket.emit('message', 1, '2', { three: 3 });
    assert.deepEqual(await back, [1, '2', { three: 3 }]);
    const acked = await new Promise((resolve) => socket.emit('message-with-ack', 'a', [1, 2], (...args) => resolve(args)));
    assert.deepEqual(acked, ['a', [1, 2]]);
  } finally {
    socket.close();
  }
});

test('a client that does not answer pings is dropped after interval + timeout', async () => {
  const res = await fetch(`${url}/socket.io/?EIO=4&transport=polling`);
  const { sid } = JSON.parse((await res.text()).slice(1));
  // Read the ping, never answer it: the session must be closed soon after.
  const started = Date.now();
  await fetch(`${url}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
  await waitFor(async () => {
    const r = await fetch(`${url}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
    return r.status === 400;
  }, { timeout: 3000, message: 'session closed' });
  assert.ok(Date.now() - started < 3000);
});

// -mode engineio: bare Engine.IO at /engine.io/, echoing every message, as
// the Engine.IO protocol suite's README sets its server up.
test('engineio mode echoes text and binary, over polling and websocket', async () => {
  const bin = path.join(os.tmpdir(), `paystatus-conformance-eio-${process.pid}`);
  execFileSync('go', ['build', '-o', bin, './realtime/conformance'], { cwd: repoRoot, stdio: 'inherit' });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}/engine.io/`;
  const eio = spawn(bin, ['-addr', `127.0.0.1:${port}`, '-mode', 'engineio'], { stdio: 'ignore' });
  try {
    await waitFor(async () => (await fetch(`${base}?EIO=4&transport=polling`)).ok, { message: 'engineio server' });
    const res = await fetch(`${base}?EIO=4&transport=polling`);
    const open = JSON.parse((await res.text()).slice(1));
    assert.deepEqual([open.pingInterval, open.pingTimeout, open.maxPayload, open.upgrades], [300, 200, 1000000, ['websocket']]);
    const post = await fetch(`${base}?EIO=4&transport=polling&sid=${open.sid}`, { method: 'POST', body: '4hello\x1ebAQIDBA==' });
    assert.equal(await post.text(), 'ok');
    const poll = await fetch(`${base}?EIO=4&transport=polling&sid=${open.sid}`);
    assert.equal(await poll.text(), '4hello\x1ebAQIDBA==');

    const ws = new WebSocket(`ws://127.0.0.1:${port}/engine.io/?EIO=4&transport=websocket`);
    ws.binaryType = 'arraybuffer';
    const frames = [];
    const got = (n) => waitFor(() => frames.length >= n, { message: `${n} frames` });
    ws.onmessage = (e) => frames.push(e.data);
    await got(1);
    assert.ok(String(frames[0]).startsWith('0{'));
    ws.send('4text');
    ws.send(new Uint8Array([1, 2, 3]));
    await got(3);
    assert.equal(frames[1], '4text');
    assert.deepEqual([...new Uint8Array(frames[2])], [1, 2, 3]);
    ws.close();
  } finally {
    eio.kill('SIGTERM');
  }
});
