'use strict';
// Binary round trips with the official socket.io-client 2, 3 and 4, over
// websocket and over polling, against realtime/conformance: its "message"
// handler emits the arguments back as "message-back" and its
// "message-with-ack" handler acknowledges with them, so a Buffer sent in an
// event and in an ack must come back byte for byte. The payment server is
// checked too: a binary event must not cost a client its connection.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');
const { freePort, waitFor, repoRoot, startServer, createOrder } = require('./lib/server');
const { connect, once, connected } = require('./lib/clients');

let proc;
let url;
before(async () => {
  const bin = path.join(os.tmpdir(), `paystatus-conformance-binary-${process.pid}`);
  execFileSync('go', ['build', '-o', bin, './realtime/conformance'], { cwd: repoRoot, stdio: 'inherit' });
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  proc = spawn(bin, ['-addr', `127.0.0.1:${port}`], { stdio: 'ignore' });
  await waitFor(async () => (await fetch(`${url}/socket.io/?EIO=4&transport=polling`)).ok, { message: 'conformance server' });
});
after(() => proc && proc.kill('SIGTERM'));

// Every byte value, a larger block, and an empty buffer.
function payloads() {
  const all = Buffer.alloc(256);
  for (let i = 0; i < 256; i++) all[i] = i;
  const big = Buffer.alloc(70000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  return { all, big, empty: Buffer.alloc(0) };
}

function asBuffer(v) {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof ArrayBuffer) return Buffer.from(v);
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new Error(`not binary: ${Object.prototype.toString.call(v)}`);
}

function assertSame(got, want, what) {
  const b = asBuffer(got);
  assert.equal(b.length, want.length, `${what}: length`);
  assert.ok(b.equals(want), `${what}: bytes differ`);
}

for (const version of ['v2', 'v3', 'v4']) {
  for (const transport of ['websocket', 'polling']) {
    test(`${version} over ${transport}: binary in an event and in an ack comes back intact`, async () => {
      const socket = connect(version, url, { transport, extra: { reconnection: false } });
      try {
        await connected(socket);
        assert.equal(socket.io.engine.transport.name, transport);
        const { all, big, empty } = payloads();

        const back = once(socket, 'message-back');
        socket.emit('message', all, { nested: big, list: [empty, 'text'] }, 42);
        const [first, obj, n] = await back;
        assertSame(first, all, 'event argument');
        assertSame(obj.nested, big, 'nested buffer');
        assertSame(obj.list[0], empty, 'empty buffer');
        assert.equal(obj.list[1], 'text');
        assert.equal(n, 42);

        const acked = await new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no ack')), 10000);
          socket.emit('message-with-ack', big, { all }, (...args) => {
            clearTimeout(timer);
            resolve(args);
          });
        });
        assert.equal(acked.length, 2);
        assertSame(acked[0], big, 'ack argument');
        assertSame(acked[1].all, all, 'ack nested buffer');

        // Text still works afterwards on the same connection.
        const text = once(socket, 'message-back');
        socket.emit('message', 'plain');
        assert.deepEqual(await text, ['plain']);
        assert.ok(socket.connected);
      } finally {
        socket.close();
      }
    });
  }
}

test('the payment server accepts a binary event without dropping the client', async () => {
  const server = await startServer();
  try {
    for (const version of ['v2', 'v3', 'v4']) {
      for (const transport of ['websocket', 'polling']) {
        const socket = connect(version, server.url, { transport, extra: { reconnection: false } });
        try {
          await connected(socket);
          let dropped = null;
          socket.on('disconnect', (reason) => { dropped = reason; });
          socket.emit('unknown-binary-event', Buffer.from([1, 2, 3]), { file: Buffer.from('abc') });
          // A round trip after it: joining an order room answers with an ack.
          const order = await createOrder(server);
          const acked = await new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error('no answer to join-order')), 10000);
            socket.emit('join-order', { orderId: order.id, token: order.token }, (res) => {
              clearTimeout(timer);
              resolve(res);
            });
          });
          assert.equal(acked.success, true, `${version} ${transport}`);
          assert.equal(dropped, null, `${version} over ${transport} dropped: ${dropped}`);
          assert.ok(socket.connected);
        } finally {
          socket.close();
        }
      }
    }
  } finally {
    await server.stop();
  }
});
