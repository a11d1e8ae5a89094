'use strict';
// Node's own servers, engine.io and socket.io from e2e/node_modules, set up
// as the two suites' READMEs say, so that a run against them can be compared
// with a run against realtime/conformance on the same machine at the same
// time:  node e2e/upstream/reference.js engineio|socketio PORT
const mode = process.argv[2];
const port = Number(process.argv[3]);
const settings = { pingInterval: 300, pingTimeout: 200, maxPayload: 1e6, cors: { origin: '*' } };

if (mode === 'engineio') {
  const { listen } = require('engine.io');
  const server = listen(port, settings);
  server.on('connection', (socket) => {
    socket.on('data', (...args) => socket.send(...args));
  });
} else if (mode === 'socketio') {
  const { Server } = require('socket.io');
  const io = new Server(port, { ...settings, connectTimeout: 1000 });
  io.on('connection', (socket) => {
    socket.emit('auth', socket.handshake.auth);
    socket.on('message', (...args) => socket.emit('message-back', ...args));
    socket.on('message-with-ack', (...args) => {
      const ack = args.pop();
      ack(...args);
    });
  });
  io.of('/custom').on('connection', (socket) => socket.emit('auth', socket.handshake.auth));
} else {
  console.error('usage: reference.js engineio|socketio PORT');
  process.exit(2);
}
console.log(`reference ${mode} server listening on ${port}`);
