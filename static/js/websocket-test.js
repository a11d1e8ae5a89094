/*
 * Realtime debugging page (/websocket-test.html, development only).
 * Optional query: api=<origin of the API>, orderId=<id>, token=<token>.
 *
 * Talks to the server with the raw socket.io client so every event can be
 * seen: connect/disconnect, transport and upgrades, join/leave a room, ping
 * with round-trip time, simulate payments through the dev endpoint, and a log
 * of all events in both directions.
 */
(function () {
  'use strict';

  var params = new URLSearchParams(window.location.search);
  var api = resolveApiBase(params.get('api'));
  var MAX_LOG_ENTRIES = 500;

  var $ = function (id) { return document.getElementById(id); };
  var els = {
    apiBase: $('api-base'),
    state: $('connection-state'),
    socketId: $('socket-id'),
    transport: $('transport'),
    upgrades: $('upgrades'),
    connect: $('connect'),
    disconnect: $('disconnect'),
    createForm: $('create-order-form'),
    newAmount: $('new-amount'),
    newCurrency: $('new-currency'),
    newDescription: $('new-description'),
    orderId: $('order-id'),
    orderToken: $('order-token'),
    orderStatus: $('order-status'),
    orderSeq: $('order-seq'),
    room: $('room'),
    join: $('join'),
    leave: $('leave'),
    openCheckout: $('open-checkout'),
    ping: $('ping'),
    rtt: $('rtt'),
    simulateStatus: $('simulate-status'),
    simulate: $('simulate'),
    autoAck: $('auto-ack'),
    log: $('log'),
    clearLog: $('clear-log'),
  };

  var socket = null;
  var upgrades = [];
  var lastSeq = -1;
  var clientLoad = null;

  els.apiBase.textContent = api;
  if (params.get('orderId')) els.orderId.value = params.get('orderId');
  if (params.get('token')) els.orderToken.value = params.get('token');
  updateCheckoutLink();

  els.connect.addEventListener('click', connect);
  els.disconnect.addEventListener('click', disconnect);
  els.createForm.addEventListener('submit', function (ev) {
    ev.preventDefault();
    createOrder();
  });
  els.join.addEventListener('click', joinRoom);
  els.leave.addEventListener('click', leaveRoom);
  els.ping.addEventListener('click', ping);
  els.simulate.addEventListener('click', simulate);
  els.clearLog.addEventListener('click', function () { els.log.textContent = ''; });
  els.orderId.addEventListener('input', onOrderChanged);
  els.orderToken.addEventListener('input', updateCheckoutLink);

  window.debugPage = { get socket() { return socket; } };

  // ---- connection -----------------------------------------------------------

  function loadClient() {
    if (typeof window.io === 'function') return Promise.resolve(window.io);
    if (clientLoad) return clientLoad;
    // Always this page's own copy: a script from the API origin would run
    // with this page's rights (and the CSP refuses it).
    var src = window.location.origin + '/socket.io/socket.io.js';
    clientLoad = new Promise(function (resolve, reject) {
      var script = document.createElement('script');
      script.src = src;
      script.onload = function () {
        if (typeof window.io === 'function') resolve(window.io);
        else reject(new Error('the script defined no io()'));
      };
      script.onerror = function () {
        script.remove();
        reject(new Error('could not load ' + src));
      };
      document.head.appendChild(script);
    });
    clientLoad.catch(function () { clientLoad = null; });
    return clientLoad;
  }

  async function connect() {
    if (socket) {
      if (!socket.connected) {
        setState('connecting');
        socket.connect();
      }
      return;
    }
    setState('connecting');
    var io;
    try {
      io = await loadClient();
    } catch (err) {
      log('info', 'error', 'socket.io client', err.message, 'error');
      setState('disconnected');
      return;
    }
    var base = new URL(api);
    var token = els.orderToken.value.trim();
    socket = io(base.origin, {
      path: base.pathname.replace(/\/+$/, '') + '/socket.io/',
      forceNew: true,
      reconnectionAttempts: 5,
      reconnectionDelay: 1000,
      reconnectionDelayMax: 30000,
      randomizationFactor: 0.5,
      auth: token ? { token: token } : {},
    });

    socket.onAny(function (event) {
      var args = Array.prototype.slice.call(arguments, 1);
      var wantsAck = typeof args[args.length - 1] === 'function';
      log('in', event + (wantsAck ? ' (ack requested)' : ''), payloadOf(args));
    });
    socket.onAnyOutgoing(function (event) {
      log('out', event, payloadOf(Array.prototype.slice.call(arguments, 1)));
    });

    socket.on('connect', function () {
      setState('connected');
      els.socketId.textContent = socket.id;
      showTransport();
      log('info', 'connect', 'socket id ' + socket.id + ' over ' + transportName());
    });
    socket.on('disconnect', function (reason) {
      setState('disconnected');
      els.socketId.textContent = '—';
      els.transport.textContent = '—';
      els.room.textContent = '—';
      log('info', 'disconnect', reason);
    });
    socket.on('connect_error', function (err) {
      log('info', 'connect_error', err && err.message, 'error');
      if (!socket.active) setState('disconnected');
    });

    var manager = socket.io;
    manager.on('open', watchEngine);
    manager.on('reconnect_attempt', function (n) {
      setState('reconnecting');
      log('info', 'reconnect_attempt', 'attempt ' + n);
    });
    manager.on('reconnect', function (n) {
      log('info', 'reconnect', 'after ' + n + ' attempt(s)');
    });
    manager.on('reconnect_failed', function () {
      setState('disconnected');
      log('info', 'reconnect_failed', 'gave up reconnecting', 'error');
    });

    socket.on('joined-order', function (reply) {
      if (reply && reply.success) {
        els.room.textContent = reply.room || reply.orderId;
        if (reply.status) showStatus(reply.status);
      }
    });
    socket.on('payment-status-update', function (update, ack) {
      if (typeof ack === 'function' && els.autoAck.checked) {
        ack({ seq: update && update.seq, orderId: update && update.orderId });
        log('out', 'ack: payment-status-update', { seq: update && update.seq });
      }
      if (update) showStatus(update);
    });
  }

  function disconnect() {
    if (!socket) return;
    socket.disconnect();
    setState('disconnected');
  }

  function watchEngine() {
    var engine = socket && socket.io.engine;
    if (!engine) return;
    upgrades = [engine.transport ? engine.transport.name : '?'];
    showTransport();
    engine.on('upgrade', function (transport) {
      upgrades.push(transport.name);
      showTransport();
      log('info', 'upgrade', 'transport upgraded to ' + transport.name);
    });
  }

  function transportName() {
    var engine = socket && socket.io.engine;
    return engine && engine.transport ? engine.transport.name : '—';
  }

  function showTransport() {
    els.transport.textContent = transportName();
    els.upgrades.textContent = upgrades.length ? upgrades.join(' → ') : '—';
  }

  function setState(state) {
    els.state.textContent = state;
    els.state.dataset.state = state;
    els.connect.disabled = state === 'connected' || state === 'connecting';
    els.disconnect.disabled = state === 'disconnected';
  }

  // ---- order room -----------------------------------------------------------

  function requireSocket(action) {
    if (socket && socket.connected) return true;
    log('info', action, 'not connected: press Connect first', 'error');
    return false;
  }

  function requireOrder(action) {
    if (els.orderId.value.trim()) return true;
    log('info', action, 'no order id: create a test order or type one in', 'error');
    return false;
  }

  function joinRoom() {
    if (!requireSocket('join-order') || !requireOrder('join-order')) return;
    var payload = { orderId: els.orderId.value.trim(), token: els.orderToken.value.trim() };
    socket.emit('join-order', payload, function (reply) {
      log('in', 'ack: join-order', reply, reply && reply.success === false ? 'error' : '');
    });
  }

  function leaveRoom() {
    if (!requireSocket('leave-order') || !requireOrder('leave-order')) return;
    socket.emit('leave-order', { orderId: els.orderId.value.trim() });
    els.room.textContent = '—';
  }

  function ping() {
    if (!requireSocket('ping')) return;
    var started = performance.now();
    els.rtt.textContent = '…';
    socket.timeout(5000).emit('ping', { sentAt: Date.now() }, function (err, reply) {
      if (err) {
        els.rtt.textContent = 'timed out';
        log('info', 'ack: ping', 'no answer within 5 s', 'error');
        return;
      }
      var rtt = Math.round(performance.now() - started);
      els.rtt.textContent = rtt + ' ms';
      log('in', 'ack: ping', Object.assign({ rttMs: rtt }, reply));
    });
  }

  function showStatus(status) {
    if (typeof status.seq === 'number') {
      if (status.seq < lastSeq) return;
      lastSeq = status.seq;
      els.orderSeq.textContent = 'seq ' + status.seq;
    }
    els.orderStatus.textContent = status.status;
    els.orderStatus.dataset.status = status.status;
  }

  function onOrderChanged() {
    lastSeq = -1;
    els.orderStatus.textContent = '—';
    els.orderStatus.dataset.status = '';
    els.orderSeq.textContent = '';
    updateCheckoutLink();
  }

  function updateCheckoutLink() {
    var id = els.orderId.value.trim();
    var token = els.orderToken.value.trim();
    if (!id || !token) {
      els.openCheckout.hidden = true;
      return;
    }
    var query = new URLSearchParams({ orderId: id, token: token });
    if (api !== window.location.origin) query.set('api', api);
    els.openCheckout.href = 'payment.html?' + query.toString();
    els.openCheckout.hidden = false;
  }

  // ---- HTTP -----------------------------------------------------------------

  async function request(method, path, body) {
    log('http', method + ' ' + path, body === undefined ? '' : body);
    try {
      var res = await fetch(api + path, {
        method: method,
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      var data = await res.json().catch(function () { return null; });
      log('http', res.status + ' ' + method + ' ' + path, data, res.ok ? '' : 'error');
      return { ok: res.ok, status: res.status, data: data };
    } catch (err) {
      log('http', 'failed ' + method + ' ' + path, err.message, 'error');
      return { ok: false, status: 0, data: null };
    }
  }

  async function createOrder() {
    var body = {
      amount: parseInt(els.newAmount.value, 10),
      currency: els.newCurrency.value.trim().toUpperCase() || 'INR',
      description: els.newDescription.value,
    };
    var res = await request('POST', '/api/orders', body);
    if (!res.ok || !res.data) return;
    els.orderId.value = res.data.id;
    els.orderToken.value = res.data.token;
    onOrderChanged();
    if (res.data.status) showStatus({ status: res.data.status });
  }

  async function simulate() {
    if (!requireOrder('simulate')) return;
    var id = els.orderId.value.trim();
    var res = await request('POST', '/api/dev/orders/' + encodeURIComponent(id) + '/simulate',
      { status: els.simulateStatus.value });
    if (res.ok && res.data && res.data.status) showStatus(res.data);
  }

  // ---- log ------------------------------------------------------------------

  function payloadOf(args) {
    var clean = args.filter(function (a) { return typeof a !== 'function'; });
    if (clean.length === 0) return '';
    return clean.length === 1 ? clean[0] : clean;
  }

  function log(dir, event, payload, kind) {
    var arrows = { in: '←', out: '→', http: '⇄', info: '•' };
    var item = document.createElement('li');
    item.dataset.dir = dir;
    item.dataset.event = event;
    if (kind) item.dataset.kind = kind;

    var time = document.createElement('time');
    var now = new Date();
    time.className = 'time';
    time.dateTime = now.toISOString();
    time.textContent = now.toLocaleTimeString([], { hour12: false }) + '.' +
      String(now.getMilliseconds()).padStart(3, '0');

    var arrow = document.createElement('span');
    arrow.className = 'dir';
    arrow.textContent = arrows[dir] || '';
    arrow.title = dir === 'in' ? 'received' : dir === 'out' ? 'sent' : dir;

    var name = document.createElement('span');
    name.className = 'event';
    name.textContent = event;

    var body = document.createElement('pre');
    body.className = 'payload';
    body.textContent = typeof payload === 'string' ? payload : safeJson(payload);

    item.append(time, arrow, name, body);

    var nearBottom = els.log.scrollHeight - els.log.scrollTop - els.log.clientHeight < 40;
    els.log.appendChild(item);
    while (els.log.childElementCount > MAX_LOG_ENTRIES) els.log.firstElementChild.remove();
    if (nearBottom) els.log.scrollTop = els.log.scrollHeight;
  }

  function safeJson(value) {
    try {
      return JSON.stringify(value);
    } catch (e) {
      return String(value);
    }
  }

  function resolveApiBase(value) {
    if (!value) return window.location.origin;
    try {
      var url = new URL(value, window.location.href);
      return url.origin + url.pathname.replace(/\/+$/, '');
    } catch (e) {
      return window.location.origin;
    }
  }
})();
