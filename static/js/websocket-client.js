/*
 * PaymentWebSocket — follows one order's payment status in the browser.
 *
 * Push first: it uses the official socket.io client, loaded from the page's
 * own origin (/socket.io/socket.io.js, or the `clientScript` option) and
 * never from the API origin, so an API URL cannot bring code into the page;
 * it joins the order's room on every (re)connect and
 * takes the current status from the `joined-order` reply. When push is not
 * possible (the client script does not load, the reconnect attempts run out,
 * the handshake is refused, or `realtime: false` / `mode: "polling"`), it
 * long-polls GET /api/payment/status/:orderId?since=<seq>&wait=<s> instead
 * (the token in the X-Order-Token header, out of URLs and logs) and,
 * unless push was switched off on purpose, keeps probing the socket now and
 * then so it can switch back.
 *
 * Updates are de-duplicated by `seq`; terminal updates that carry an ack are
 * acknowledged. Once the status is terminal every network activity stops.
 *
 * Connection states: connecting | connected | reconnecting | polling | closed.
 *
 * Plain browser script, no build step: exposes window.PaymentWebSocket.
 */
(function (root) {
  'use strict';

  var TERMINAL_STATUSES = ['completed', 'failed', 'expired', 'refunded'];
  var STATES = ['connecting', 'connected', 'reconnecting', 'polling', 'closed'];

  // One load of the socket.io client per script URL, shared by all instances.
  var scriptLoads = {};

  function isTerminal(status) {
    return TERMINAL_STATUSES.indexOf(status) !== -1;
  }

  function debugFromEnvironment() {
    try {
      var params = new URLSearchParams(root.location ? root.location.search : '');
      var flag = params.get('debug');
      if (flag !== null) return flag !== '0' && flag !== 'false';
    } catch (e) { /* no location: not a page */ }
    try {
      return !!(root.localStorage && root.localStorage.getItem('debug'));
    } catch (e) {
      return false; // storage can be blocked
    }
  }

  // Splits an API base such as "https://api.example.com/pay/" into the origin
  // the socket connects to and the path prefix for HTTP calls and the
  // socket.io endpoint (socket.io would read a path in the URL as a namespace).
  function parseBase(url) {
    var here = root.location ? root.location.href : 'http://localhost/';
    var parsed = new URL(url || here, here);
    var prefix = parsed.pathname.replace(/\/+$/, '');
    return { origin: parsed.origin, prefix: prefix, http: parsed.origin + prefix };
  }

  // The page's own origin serves the client script; without a page (no
  // location), the API's.
  function defaultClientScript(base) {
    var origin = root.location && root.location.origin;
    if (origin && origin !== 'null') return origin + '/socket.io/socket.io.js';
    return base.http + '/socket.io/socket.io.js';
  }

  function loadSocketIoClient(src) {
    if (typeof root.io === 'function') return Promise.resolve(root.io);
    if (scriptLoads[src]) return scriptLoads[src];
    var doc = root.document;
    if (!doc) return Promise.reject(new Error('no document to load the socket.io client into'));
    var load = new Promise(function (resolve, reject) {
      var script = doc.createElement('script');
      script.src = src;
      script.async = true;
      script.onload = function () {
        if (typeof root.io === 'function') {
          resolve(root.io);
        } else {
          script.remove();
          reject(new Error('socket.io client script loaded but defined no io()'));
        }
      };
      script.onerror = function () {
        script.remove();
        reject(new Error('could not load ' + src));
      };
      (doc.head || doc.documentElement).appendChild(script);
    });
    scriptLoads[src] = load;
    // Forget failures so that a later probe can try again.
    load.catch(function () {
      if (scriptLoads[src] === load) delete scriptLoads[src];
    });
    return load;
  }

  function sleepMs(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  class PaymentWebSocket {
    constructor(options) {
      var opts = options || {};
      if (!opts.orderId) throw new Error('PaymentWebSocket: orderId is required');

      this.orderId = String(opts.orderId);
      this.token = opts.token || '';
      this.base = parseBase(opts.url);
      this.url = this.base.http;
      this.clientScript = opts.clientScript || defaultClientScript(this.base);

      this.maxReconnectAttempts = numberOr(opts.maxReconnectAttempts, 5);
      this.reconnectDelay = numberOr(opts.reconnectDelay, 1000);
      this.reconnectDelayMax = numberOr(opts.reconnectDelayMax, 30000);
      this.randomizationFactor = numberOr(opts.randomizationFactor, 0.5);
      // Pause between polls when the server answers without holding the
      // request, and the base of the back-off after a failed poll.
      this.pollInterval = numberOr(opts.pollInterval, 3000);
      // How long the server may hold a poll (seconds, the server caps it at 30).
      this.longPollWait = Math.min(30, Math.max(0, numberOr(opts.longPollWait, 25)));
      // While polling, how often to try the socket again (grows up to the max).
      this.socketRetryInterval = numberOr(opts.socketRetryInterval, 15000);
      this.socketRetryIntervalMax = numberOr(opts.socketRetryIntervalMax, 120000);

      var mode = opts.mode || (opts.realtime === false ? 'polling' : 'auto');
      this.mode = mode === 'polling' ? 'polling' : 'auto';

      this.debug = opts.debug === undefined ? debugFromEnvironment() : !!opts.debug;
      this.onStatus = typeof opts.onStatus === 'function' ? opts.onStatus : null;
      this.onConnectionChange =
        typeof opts.onConnectionChange === 'function' ? opts.onConnectionChange : null;
      this.onError = typeof opts.onError === 'function' ? opts.onError : null;
      this.ioOptions = opts.ioOptions || {};

      this.state = null;
      this.status = null; // last status object applied
      this.lastSeq = -1;
      this.socket = null;
      this.socketId = null;
      this.transport = null;
      this.finished = false;

      this._probing = false;
      this._probeTimer = null;
      this._probeDelay = this.socketRetryInterval;
      this._pollRun = 0;
      this._pollAbort = null;
      this._onlineHandler = this._onBrowserOnline.bind(this);

      // A status the page already fetched: later updates are compared with it
      // and polling can long-poll from its seq straight away.
      if (opts.initialStatus && opts.initialStatus.status) {
        this.status = Object.assign({}, opts.initialStatus);
        if (typeof opts.initialStatus.seq === 'number') this.lastSeq = opts.initialStatus.seq;
        if (isTerminal(this.status.status)) this.finished = true;
      }

      if (root.addEventListener) root.addEventListener('online', this._onlineHandler);

      // Start after the constructor returns so callbacks can use the instance.
      if (opts.autoConnect !== false) {
        var self = this;
        Promise.resolve().then(function () { self.connect(); });
      }
    }

    static isTerminal(status) {
      return isTerminal(status);
    }

    get isTerminal() {
      return !!(this.status && isTerminal(this.status.status));
    }

    /** Starts following the order (called automatically unless autoConnect is false). */
    connect() {
      if (this.finished) {
        this._setState('closed');
        return;
      }
      if (this._started) return;
      this._started = true;
      if (this.mode === 'polling') {
        this._log('Realtime disabled for this session; polling the status endpoint');
        this._startPolling('realtime disabled');
        return;
      }
      this._setState('connecting');
      this._openSocket(false);
    }

    /** Stops everything: socket, timers and polls. */
    close() {
      this._shutdown('closed by caller');
    }

    // ---- socket -------------------------------------------------------------

    _openSocket(probe) {
      var self = this;
      var src = this.clientScript;
      this._probing = probe;
      loadSocketIoClient(src).then(function (io) {
        if (self.finished) return;
        if (probe && self.state !== 'polling') return;
        self._createSocket(io, probe);
      }, function (err) {
        if (self.finished) return;
        self._log('socket.io client unavailable: ' + err.message);
        if (probe) {
          self._probing = false;
          self._scheduleProbe();
        } else {
          self._startPolling('socket.io client unavailable');
        }
      });
    }

    _createSocket(io, probe) {
      var self = this;
      var options = Object.assign({
        path: this.base.prefix + '/socket.io/',
        forceNew: true,
        reconnection: true,
        reconnectionAttempts: this.maxReconnectAttempts,
        reconnectionDelay: this.reconnectDelay,
        reconnectionDelayMax: this.reconnectDelayMax,
        randomizationFactor: this.randomizationFactor,
        auth: this.token ? { token: this.token } : {},
      }, this.ioOptions);

      var socket = io(this.base.origin, options);
      this.socket = socket;

      socket.on('connect', function () {
        if (socket !== self.socket || self.finished) return;
        var wasProbe = self._probing;
        self._probing = false;
        self.socketId = socket.id;
        self._probeDelay = self.socketRetryInterval;
        self._log('WebSocket connected: ' + socket.id);
        if (wasProbe) self._stopPolling();
        self._watchTransport(socket);
        self._connectedAt = Date.now();
        self._setState('connected');
        self._join(socket);
      });

      socket.on('disconnect', function (reason) {
        if (socket !== self.socket || self.finished) return;
        self._log('Socket disconnected: ' + reason);
        self.socketId = null;
        if (reason === 'io client disconnect') return; // we closed it
        if (self.state === 'polling') return;
        self._setState('reconnecting');
        if (reason === 'io server disconnect') self._reconnectAfterKick(socket);
      });

      socket.on('connect_error', function (err) {
        if (socket !== self.socket || self.finished) return;
        self._log('Socket connect error: ' + (err && err.message));
        if (self._probing) {
          // One failed try is enough for a probe: keep polling, try later.
          self._dropSocket();
          self._probing = false;
          self._scheduleProbe();
          return;
        }
        if (!socket.active) {
          // Refused by the server (e.g. auth middleware): no automatic retry.
          self._report(err);
          self._startPolling('socket refused: ' + (err && err.message));
          return;
        }
        if (self.state !== 'polling') self._setState('reconnecting');
      });

      var manager = socket.io;
      manager.on('reconnect_attempt', function (attempt) {
        if (socket !== self.socket || self.finished) return;
        self._log('Reconnect attempt ' + attempt + ' of ' + self.maxReconnectAttempts);
        if (self.state !== 'polling') self._setState('reconnecting');
      });
      manager.on('reconnect_failed', function () {
        if (socket !== self.socket || self.finished) return;
        self._log('Reconnect attempts exhausted; falling back to polling');
        self._startPolling('reconnect attempts exhausted');
      });

      socket.on('joined-order', function (reply) {
        if (socket !== self.socket) return;
        self._onJoined(reply);
      });

      socket.on('payment-status-update', function () {
        var args = Array.prototype.slice.call(arguments);
        var ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
        var update = args[0] || {};
        self._log('Received payment status update: ' + JSON.stringify(update));
        if (ack) {
          // Acknowledge even duplicates, or the server keeps re-sending.
          try { ack({ seq: update.seq, orderId: update.orderId }); } catch (e) { /* ignore */ }
        }
        if (socket !== self.socket) return;
        self._applyStatus(update, 'socket');
      });
    }

    // The server ended the session on purpose (e.g. while shutting down), and
    // socket.io does not reconnect by itself then. Reconnect with the same
    // back-off, and give up on push if the server keeps doing it.
    _reconnectAfterKick(socket) {
      var self = this;
      if (this._connectedAt && Date.now() - this._connectedAt > 60000) this._kicks = 0;
      this._kicks = (this._kicks || 0) + 1;
      if (this._kicks > this.maxReconnectAttempts) {
        this._startPolling('server keeps closing the connection');
        return;
      }
      var delay = Math.min(this.reconnectDelay * Math.pow(2, this._kicks - 1), this.reconnectDelayMax);
      delay *= 1 + this.randomizationFactor * (Math.random() * 2 - 1);
      clearTimeout(this._kickTimer);
      this._kickTimer = setTimeout(function () {
        self._kickTimer = null;
        if (!self.finished && socket === self.socket && !socket.connected) socket.connect();
      }, Math.max(0, Math.round(delay)));
    }

    _join(socket) {
      var self = this;
      var payload = { orderId: this.orderId, token: this.token };
      socket.emit('join-order', payload, function (reply) {
        if (socket !== self.socket) return;
        self._onJoined(reply);
      });
    }

    _onJoined(reply) {
      if (this.finished || !reply) return;
      if (reply.orderId && String(reply.orderId) !== this.orderId) return;
      if (reply.success === false) {
        var err = new Error(reply.error || 'could not join the order room');
        this._log('Joining room for order ' + this.orderId + ' failed: ' + err.message);
        this._report(err);
        // Push is no use without the room; polling reports its own errors.
        this._dropSocket();
        this._startPolling('join refused');
        return;
      }
      if (this._joinedSocketId !== this.socketId) {
        this._joinedSocketId = this.socketId;
        this._log('Successfully joined room for order: ' + this.orderId);
      }
      if (reply.status) this._applyStatus(reply.status, 'join');
    }

    _watchTransport(socket) {
      var self = this;
      var engine = socket.io && socket.io.engine;
      if (!engine) return;
      this.transport = engine.transport && engine.transport.name;
      if (engine._pwsWatched) return;
      engine._pwsWatched = true;
      engine.on('upgrade', function (transport) {
        self.transport = transport && transport.name;
        self._log('Transport upgraded to ' + self.transport);
      });
    }

    _dropSocket() {
      clearTimeout(this._kickTimer);
      this._kickTimer = null;
      var socket = this.socket;
      this.socket = null;
      this.socketId = null;
      if (!socket) return;
      try {
        socket.removeAllListeners();
        socket.io.removeAllListeners('reconnect_attempt');
        socket.io.removeAllListeners('reconnect_failed');
        socket.disconnect();
      } catch (e) { /* already gone */ }
    }

    // ---- polling ------------------------------------------------------------

    _startPolling(reason) {
      if (this.finished) return;
      this._dropSocket();
      this._probing = false;
      if (this.state !== 'polling') {
        this._log('Polling the status endpoint (' + reason + ')');
        this._setState('polling');
      }
      if (!this._pollAbort) this._pollLoop();
      if (this.mode !== 'polling') this._scheduleProbe();
    }

    _stopPolling() {
      this._pollRun++;
      if (this._pollAbort) {
        this._pollAbort.abort();
        this._pollAbort = null;
      }
      clearTimeout(this._probeTimer);
      this._probeTimer = null;
    }

    _scheduleProbe() {
      var self = this;
      if (this.finished || this.mode === 'polling' || this._probeTimer) return;
      var delay = this._probeDelay;
      this._probeDelay = Math.min(this._probeDelay * 2, this.socketRetryIntervalMax);
      this._probeTimer = setTimeout(function () {
        self._probeTimer = null;
        if (self.finished || self.state !== 'polling') return;
        self._log('Trying the socket again');
        self._openSocket(true);
      }, delay);
    }

    _onBrowserOnline() {
      // Back online: try the socket straight away instead of waiting.
      if (this.finished || this.state !== 'polling' || this.mode === 'polling' || this._probing) return;
      clearTimeout(this._probeTimer);
      this._probeTimer = null;
      this._probeDelay = this.socketRetryInterval;
      this._openSocket(true);
    }

    async _pollLoop() {
      var run = ++this._pollRun;
      var failures = 0;
      var self = this;
      var stillRunning = function () { return !self.finished && self._pollRun === run; };

      while (stillRunning()) {
        var controller = new AbortController();
        this._pollAbort = controller;
        var since = this.lastSeq;
        var wait = since >= 0 ? this.longPollWait : 0;
        var query = new URLSearchParams();
        if (since >= 0) {
          query.set('since', String(since));
          query.set('wait', String(wait));
        }
        var qs = query.toString();
        var url = this.base.http + '/api/payment/status/' + encodeURIComponent(this.orderId) +
          (qs ? '?' + qs : '');
        // Give up on a poll the server holds far beyond what we asked for.
        var guard = setTimeout(function () { controller.abort(); }, (wait + 15) * 1000);
        var started = Date.now();
        var delay = 0;
        try {
          var res = await fetch(url, {
            signal: controller.signal,
            cache: 'no-store',
            headers: { Accept: 'application/json', 'X-Order-Token': this.token },
          });
          var body = await res.json().catch(function () { return {}; });
          if (!stillRunning()) break;
          if (res.ok) {
            failures = 0;
            var advanced = typeof body.seq === 'number' && body.seq > since;
            this._applyStatus(body, 'poll');
            // A server that did not hold the request: do not spin.
            if (!advanced && Date.now() - started < 1000) delay = this.pollInterval;
          } else if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
            // The order cannot be followed (unknown order, bad token): stop.
            var err = new Error(body.error || ('status request failed with HTTP ' + res.status));
            err.status = res.status;
            this._report(err);
            this._shutdown('status request refused');
            break;
          } else {
            failures++;
            delay = this._backoff(failures);
          }
        } catch (e) {
          if (!stillRunning()) break;
          failures++;
          this._log('Status poll failed: ' + e.message);
          delay = this._backoff(failures);
        } finally {
          clearTimeout(guard);
          if (this._pollAbort === controller) this._pollAbort = null;
        }
        if (delay > 0 && stillRunning()) await sleepMs(delay);
      }
    }

    _backoff(failures) {
      var base = Math.min(this.pollInterval * Math.pow(2, failures - 1), 30000);
      return Math.round(base * (0.75 + Math.random() * 0.5));
    }

    // ---- status -------------------------------------------------------------

    _applyStatus(update, source) {
      if (this.finished || !update || !update.status) return false;
      if (update.orderId && String(update.orderId) !== this.orderId) return false;
      var seq = typeof update.seq === 'number' ? update.seq : null;
      if (seq !== null && seq <= this.lastSeq) return false;
      if (seq !== null) this.lastSeq = seq;

      var previous = this.status ? this.status.status : null;
      var status = Object.assign({}, this.status || {}, update);
      if (!update.previousStatus) status.previousStatus = previous;
      status.source = update.source || source;
      this.status = status;

      if (this.onStatus) {
        try {
          this.onStatus(status, { source: source, previousStatus: previous });
        } catch (e) {
          if (root.console) root.console.error(e);
        }
      }
      if (isTerminal(status.status)) this._shutdown('status is ' + status.status);
      return true;
    }

    // ---- plumbing -----------------------------------------------------------

    _shutdown(reason) {
      if (this.finished) return;
      this.finished = true;
      this._log('Stopping all network activity (' + reason + ')');
      this._stopPolling();
      this._dropSocket();
      if (root.removeEventListener) root.removeEventListener('online', this._onlineHandler);
      this._setState('closed');
    }

    _setState(state) {
      if (STATES.indexOf(state) === -1 || state === this.state) return;
      this.state = state;
      if (this.onConnectionChange) {
        try {
          this.onConnectionChange(state);
        } catch (e) {
          if (root.console) root.console.error(e);
        }
      }
    }

    _report(err) {
      if (this.onError) {
        try { this.onError(err); } catch (e) { if (root.console) root.console.error(e); }
      } else if (this.debug && root.console) {
        root.console.warn('PaymentWebSocket: ' + err.message);
      }
    }

    _log(message) {
      if (this.debug && root.console) root.console.log(message);
    }
  }

  function numberOr(value, fallback) {
    return typeof value === 'number' && isFinite(value) ? value : fallback;
  }

  PaymentWebSocket.TERMINAL_STATUSES = TERMINAL_STATUSES.slice();
  PaymentWebSocket.STATES = STATES.slice();

  root.PaymentWebSocket = PaymentWebSocket;
  if (typeof module !== 'undefined' && module.exports) module.exports = PaymentWebSocket;
})(typeof window !== 'undefined' ? window : globalThis);
