'use strict';
// Binary round trips from the browser builds of socket.io-client 2, 3 and 4
// in Chromium, against realtime/conformance. In a browser, client 2 polls
// with XHR2 and sends binary as Engine.IO 3's binary payload
// (application/octet-stream), which Node cannot show: there it falls back
// to base64. The test checks that format is the one used, and that the
// bytes come back intact in an event and in an ack.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { openBrowser } = require('./helpers');
const { freePort, waitFor, repoRoot } = require('../lib/server');

const bundles = {
  v2: 'socket.io-client-v2/dist/socket.io.js',
  v3: 'socket.io-client-v3/dist/socket.io.js',
  v4: 'socket.io-client-v4/dist/socket.io.js',
};

let proc;
let ioURL;
let pages;
let pageOrigin;
before(async () => {
  const bin = path.join(os.tmpdir(), `paystatus-conformance-browser-${process.pid}`);
  execFileSync('go', ['build', '-o', bin, './realtime/conformance'], { cwd: repoRoot, stdio: 'inherit' });
  const port = await freePort();
  ioURL = `http://127.0.0.1:${port}`;
  proc = spawn(bin, ['-addr', `127.0.0.1:${port}`], { stdio: 'ignore' });
  await waitFor(async () => (await fetch(`${ioURL}/socket.io/?EIO=4&transport=polling`)).ok, { message: 'conformance server' });
  // A loopback page server for the client bundles.
  pages = http.createServer((req, res) => {
    const name = new URL(req.url, 'http://x').pathname.slice(1);
    if (bundles[name]) {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      fs.createReadStream(path.join(__dirname, '..', 'node_modules', bundles[name])).pipe(res);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>binary</title>');
  });
  await new Promise((resolve) => pages.listen(0, '127.0.0.1', resolve));
  pageOrigin = `http://127.0.0.1:${pages.address().port}`;
});
after(() => {
  if (proc) proc.kill('SIGTERM');
  if (pages) pages.close();
});

for (const version of ['v2', 'v3', 'v4']) {
  for (const transport of ['polling', 'websocket']) {
    test(`browser ${version} over ${transport}: binary in an event and in an ack comes back intact`, async () => {
      const browser = await openBrowser();
      const posts = [];
      browser.page.on('request', (req) => {
        if (req.method() === 'POST' && req.url().startsWith(ioURL)) posts.push(req.headers()['content-type'] || '');
      });
      try {
        await browser.page.goto(`${pageOrigin}/`);
        await browser.page.addScriptTag({ url: `${pageOrigin}/${version}` });
        // Client 2's browser build sends ArrayBuffer, Blob and File as
        // binary, but a typed array as a plain object; 3 and 4 take both.
        const typedArrays = version !== 'v2';
        const result = await browser.page.evaluate(async ({ url, transport, typedArrays }) => {
          const bytes = new Uint8Array(256);
          for (let i = 0; i < 256; i++) bytes[i] = i;
          const same = (got) => {
            const b = new Uint8Array(got);
            return b.length === 256 && b.every((v, i) => v === i);
          };
          // Client 2 sends credentials by default; the conformance server
          // allows any origin, which browsers refuse to combine with them.
          const socket = window.io(url, { transports: [transport], forceNew: true, reconnection: false, withCredentials: false });
          await new Promise((resolve, reject) => {
            socket.on('connect', resolve);
            socket.on('connect_error', reject);
            socket.on('error', reject);
          });
          const echoed = await new Promise((resolve) => {
            socket.once('message-back', (a, b) => resolve({ a, b }));
            socket.emit('message', bytes.buffer, { nested: typedArrays ? bytes : bytes.buffer });
          });
          const acked = await new Promise((resolve) => socket.emit('message-with-ack', bytes.buffer, (a) => resolve(a)));
          const engineTransport = socket.io.engine.transport.name;
          socket.close();
          return {
            event: same(echoed.a),
            nested: same(echoed.b.nested),
            ack: same(acked),
            engineTransport,
          };
        }, { url: ioURL, transport, typedArrays });
        assert.deepEqual(result, { event: true, nested: true, ack: true, engineTransport: transport }, browser.logs.join('\n'));
        if (version === 'v2' && transport === 'polling') {
          assert.ok(posts.includes('application/octet-stream'), `client 2 posted ${JSON.stringify(posts)}, want a binary payload`);
        }
      } finally {
        await browser.close();
      }
    });
  }
}
