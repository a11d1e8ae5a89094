// The official socket.io clients at majors 2, 3 and 4, installed as npm
// aliases, behind one small helper for tests.
'use strict';
const clients = {
  v2: require('socket.io-client-v2'),
  v3: require('socket.io-client-v3'),
  v4: require('socket.io-client-v4'),
};

function connect(version, url, { transport = 'websocket', auth, extra = {} } = {}) {
  const io = clients[version];
  const opts = { transports: [transport], forceNew: true, reconnection: true, ...extra };
  if (auth && version !== 'v2') opts.auth = auth;
  const socket = io(url, opts);
  return socket;
}

// once resolves with the next payload of an event, or rejects after ms.
function once(socket, event, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, handler);
      reject(new Error(`no ${event} within ${ms} ms`));
    }, ms);
    function handler(...args) {
      clearTimeout(timer);
      socket.off(event, handler);
      resolve(args);
    }
    socket.on(event, handler);
  });
}

// collect records every payload of an event, acking where asked.
function collect(socket, event) {
  const seen = [];
  socket.on(event, (payload, ack) => {
    seen.push(payload);
    if (typeof ack === 'function') ack({ seq: payload && payload.seq });
  });
  return seen;
}

function connected(socket, ms = 10000) {
  if (socket.connected) return Promise.resolve();
  return once(socket, 'connect', ms);
}

module.exports = { clients, connect, once, collect, connected };
