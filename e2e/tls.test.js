'use strict';
// TLS_CERT_FILE and TLS_KEY_FILE make the server itself speak HTTPS and
// WSS. A throwaway self-signed certificate from openssl is trusted by the
// client as its CA, so the test also proves the server presents that
// certificate.
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const https = require('node:https');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { startServer, waitFor, ADMIN_TOKEN } = require('./lib/server');
const { connect, collect, connected } = require('./lib/clients');

function makeCertificate(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { stdio: 'pipe' });
  return { cert, key, pem: fs.readFileSync(cert) };
}

// request sends JSON over https, trusting only the test certificate.
function request(url, { method = 'GET', body, admin = false, ca }) {
  return new Promise((resolve, reject) => {
    const headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (admin) headers.authorization = `Bearer ${ADMIN_TOKEN}`;
    const req = https.request(url, { method, headers, ca }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, body: json, text });
      });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe('TLS served by the server itself', () => {
  let server;
  let tls;
  before(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystatus-tls-'));
    tls = makeCertificate(dir);
    server = await startServer({ env: { TLS_CERT_FILE: tls.cert, TLS_KEY_FILE: tls.key } });
  });
  after(async () => { if (server) await server.stop(); });

  test('the URL is https and the log says TLS is on', () => {
    assert.match(server.url, /^https:\/\//);
    assert.match(server.logs.join(''), /"tls":true/);
  });

  test('plain HTTP on the TLS port is refused', async () => {
    const res = await new Promise((resolve, reject) => {
      http.get(server.url.replace('https:', 'http:') + '/healthz', (r) => { r.resume(); resolve(r); }).on('error', reject);
    });
    assert.equal(res.statusCode, 400);
  });

  test('a client that does not trust the certificate cannot connect', async () => {
    await assert.rejects(request(`${server.url}/healthz`, { ca: undefined }), /self[- ]signed|certificate/i);
  });

  for (const transport of ['websocket', 'polling']) {
    test(`v4 over ${transport === 'websocket' ? 'wss' : 'https polling'} receives the completion`, async () => {
      const created = await request(`${server.url}/api/orders`, { method: 'POST', body: { amount: 1999, currency: 'INR' }, ca: tls.pem });
      assert.equal(created.status, 201, created.text);
      const order = created.body;
      const socket = connect('v4', server.url, { transport, extra: { ca: tls.pem } });
      try {
        await connected(socket);
        assert.equal(socket.io.engine.transport.name, transport);
        const updates = collect(socket, 'payment-status-update');
        const ack = await socket.timeout(5000).emitWithAck('join-order', { orderId: order.id, token: order.token });
        assert.equal(ack.success, true);
        const done = await request(`${server.url}/api/payment/${order.id}/complete`, {
          method: 'POST', admin: true, body: { paymentId: `pay_tls_${transport}` }, ca: tls.pem,
        });
        assert.equal(done.status, 200, done.text);
        await waitFor(() => updates.length === 1, { message: 'update over TLS' });
        assert.equal(updates[0].status, 'completed');
        assert.equal(updates[0].paymentId, `pay_tls_${transport}`);
      } finally {
        socket.close();
      }
    });
  }
});
