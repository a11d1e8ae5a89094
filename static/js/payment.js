/*
 * Checkout page: /payment.html?orderId=<id>&token=<token>
 *   optional: api=<origin of the API>  realtime=on|off  debug=1
 *
 * ?api= may only name the page's own origin or one the server lists in its
 * configuration (apiOrigins, from API_ORIGINS); anything else is refused.
 * The configuration and the payee details always come from the page's own
 * origin, and the socket.io client script too, so a link cannot make this
 * page run or trust another server's code. The order token travels in the
 * X-Order-Token header, never in a URL.
 *
 * Shows the order summary and a UPI pay link, then follows the payment status
 * through PaymentWebSocket (push, or polling when this session is not in the
 * realtime rollout or push is not possible).
 */
(function () {
  'use strict';

  var params = new URLSearchParams(window.location.search);
  var orderId = (params.get('orderId') || '').trim();
  var token = (params.get('token') || '').trim();
  var ownOrigin = window.location.origin;
  var apiParam = params.get('api');
  var apiBase = ownOrigin; // settled by start() once the link's api is checked
  var realtimeOverride = parseOverride(params.get('realtime'));
  var debug = params.has('debug') ? params.get('debug') !== '0' : readDebugFlag();

  var els = {
    root: document.getElementById('checkout'),
    amount: document.getElementById('amount'),
    orderRef: document.getElementById('order-ref'),
    status: document.getElementById('payment-status'),
    title: document.getElementById('status-title'),
    detail: document.getElementById('status-detail'),
    paymentIdLine: document.getElementById('payment-id-line'),
    paymentId: document.getElementById('payment-id'),
    actions: document.getElementById('pay-actions'),
    upiLink: document.getElementById('upi-link'),
    pageError: document.getElementById('page-error'),
    indicator: document.getElementById('connection-indicator'),
    updatedAt: document.getElementById('updated-at'),
    window: document.getElementById('payment-window'),
    countdown: document.getElementById('countdown'),
    countdownLabel: document.getElementById('countdown-label'),
    announcer: document.getElementById('countdown-announcer'),
    expiredActions: document.getElementById('expired-actions'),
    checkAgain: document.getElementById('check-again'),
  };

  var STATUS_TEXT = {
    pending: {
      title: 'Waiting for your payment',
      detail: 'Pay with any UPI app using the button below.',
    },
    processing: {
      title: 'Payment processing',
      detail: 'Your bank is confirming the payment. Please keep this page open.',
    },
    completed: {
      title: 'Payment successful',
      detail: 'Thank you! Your payment has been received.',
    },
    failed: {
      title: 'Payment failed',
      detail: 'The payment did not go through. Go back to the merchant to try again, ' +
        'with another UPI app or account. If money left your account, your bank ' +
        'returns it automatically, usually within 5 working days.',
    },
    expired: {
      title: 'Payment request expired',
      detail: 'This payment request is no longer valid and nothing was charged. ' +
        'Go back to the merchant to start a new payment.',
    },
    refunded: {
      title: 'Payment refunded',
      detail: 'This payment was refunded to your account. Refunds can take a few ' +
        'working days to show up.',
    },
  };

  var INDICATOR = {
    connecting: { state: 'reconnecting', text: 'Connecting', title: 'Connecting for live updates' },
    connected: { state: 'live', text: 'Live', title: 'Live updates are on' },
    reconnecting: { state: 'reconnecting', text: 'Reconnecting', title: 'Connection lost, reconnecting' },
    polling: { state: 'polling', text: 'Polling', title: 'Checking for updates regularly' },
    closed: { state: 'offline', text: 'Offline', title: 'Not receiving updates' },
    // Updates stop on purpose once the status is terminal: nothing is wrong.
    final: { state: 'final', text: 'Up to date', title: 'This payment is final, so updates have stopped' },
  };

  var current = null; // last status object rendered
  var client = null;
  var connectionState = 'connecting';

  window.paymentPage = {
    get client() { return client; },
    get status() { return current; },
    get secondsLeft() { return countdown.secondsLeft; },
  };

  start();

  async function start() {
    if (!orderId || !token) {
      showFatal('This payment link is incomplete',
        'The link is missing its order details. Open the link you were sent again, or ask the merchant for a new one.');
      return;
    }
    els.orderRef.textContent = orderId;

    var configLoad = loadConfig();
    var requested = parseApiBase(apiParam);
    if (apiParam && !requested) {
      showFatal('This payment link is not valid', 'Open the link you were sent again, or ask the merchant for a new one.');
      return;
    }
    if (requested && requested.origin !== ownOrigin) {
      // Another origin is trusted only when this origin's configuration says so.
      if (trustedOrigins(await configLoad).indexOf(requested.origin) === -1) {
        showFatal('This payment link is not valid',
          'It points to a server this page does not trust. Open the link you were sent again, or ask the merchant for a new one.');
        return;
      }
    }
    if (requested) apiBase = requested.base;

    var results = await Promise.all([configLoad, loadStatus()]);
    var config = results[0];
    var statusResult = results[1];

    if (!statusResult.ok) {
      showFatal(statusResult.notFound ? 'Payment not found' : 'We could not load this payment',
        statusResult.message);
      return;
    }

    renderSummary(statusResult.status, config);
    clockSkew = statusResult.skew || 0;
    renderStatus(statusResult.status);
    els.checkAgain.addEventListener('click', checkAgain);

    var realtime = realtimeOverride !== null ? realtimeOverride : config.realtime !== false;
    if (debug) console.log('Realtime updates ' + (realtime ? 'on' : 'off') + ' for this session');

    client = new window.PaymentWebSocket({
      orderId: orderId,
      token: token,
      url: apiBase,
      clientScript: ownOrigin + '/socket.io/socket.io.js',
      mode: realtime ? 'auto' : 'polling',
      pollInterval: positive(config.pollInterval, 3000),
      longPollWait: positive(config.longPollWait, 25),
      initialStatus: statusResult.status,
      debug: debug,
      onStatus: function (status) { renderStatus(status); },
      onConnectionChange: function (state) {
        connectionState = state;
        renderIndicator();
      },
      onError: function (err) {
        if (debug) console.warn('Payment updates: ' + err.message);
        if (err.status) showNotice('Live updates stopped: ' + err.message);
      },
    });

    window.addEventListener('online', renderIndicator);
    window.addEventListener('offline', renderIndicator);
  }

  // ---- data -----------------------------------------------------------------

  // The configuration is always this origin's: it says which API origins
  // the page may use, and carries the payee details.
  async function loadConfig() {
    var fallback = { realtime: true, pollInterval: 3000, longPollWait: 25, apiOrigins: [] };
    try {
      var res = await fetch(ownOrigin + '/api/config?session=' + encodeURIComponent(sessionId()), {
        cache: 'no-store',
        headers: { Accept: 'application/json' },
      });
      if (!res.ok) return fallback;
      return Object.assign(fallback, await res.json());
    } catch (e) {
      return fallback;
    }
  }

  async function loadStatus() {
    var url = apiBase + '/api/payment/status/' + encodeURIComponent(orderId);
    try {
      var sent = Date.now();
      var res = await fetch(url, {
        cache: 'no-store',
        headers: { Accept: 'application/json', 'X-Order-Token': token },
      });
      var body = await res.json().catch(function () { return {}; });
      if (res.ok && body && body.status) return { ok: true, status: body, skew: serverSkew(res, sent) };
      var message = (body && body.error) || ('The server answered with HTTP ' + res.status + '.');
      if (res.status === 401 || res.status === 403) {
        message = 'This payment link is not valid. Open the link you were sent again, or ask the merchant for a new one.';
      }
      return { ok: false, notFound: res.status === 404, message: message };
    } catch (e) {
      return { ok: false, message: 'Check your internet connection and reload this page.' };
    }
  }

  function sessionId() {
    var key = 'paystatus.session';
    try {
      var id = sessionStorage.getItem(key);
      if (!id) {
        id = randomId();
        sessionStorage.setItem(key, id);
      }
      return id;
    } catch (e) {
      // Storage blocked: a per-page id still gives a stable answer for this visit.
      if (!window.__paystatusSession) window.__paystatusSession = randomId();
      return window.__paystatusSession;
    }
  }

  function randomId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  // ---- rendering ------------------------------------------------------------

  function renderSummary(status, config) {
    var currency = status.currency || 'INR';
    els.amount.textContent = formatAmount(status.amount, currency);

    var vpa = config.merchantVpa || els.root.dataset.merchantVpa;
    var name = config.merchantName || els.root.dataset.merchantName;
    els.upiLink.href = 'upi://pay?' + [
      ['pa', vpa],
      ['pn', name],
      ['am', majorAmount(status.amount, currency)],
      ['cu', currency],
      ['tr', orderId],
    ].map(function (pair) {
      return pair[0] + '=' + encodeURIComponent(String(pair[1])).replace(/%40/g, '@');
    }).join('&');
  }

  function renderStatus(status) {
    var previousState = current ? current.status : null;
    current = status;
    var state = status.status;
    var text = STATUS_TEXT[state] || { title: 'Status: ' + state, detail: '' };
    if (isLateCapture(status, previousState)) text = LATE_CAPTURE_TEXT;

    els.status.dataset.status = state;
    els.title.textContent = text.title;
    els.detail.textContent = text.detail;
    renderPaymentWindow(status);

    var showPaymentId = (state === 'completed' || state === 'refunded') && status.paymentId;
    els.paymentId.textContent = showPaymentId ? status.paymentId : '';
    els.paymentIdLine.hidden = !showPaymentId;

    els.actions.hidden = state !== 'pending';
    if (status.updatedAt) {
      var when = new Date(status.updatedAt);
      if (!isNaN(when.getTime())) {
        els.updatedAt.textContent = 'Last updated ' + when.toLocaleTimeString();
      }
    }
    document.title = text.title + ' · Payment status';
    renderIndicator();
  }

  // ---- payment window -------------------------------------------------------
  //
  // The countdown is the page's estimate of the server's deadline. It never
  // ends the payment by itself: the expired screen comes only from the
  // server (a pushed update, a poll, or the one check the buyer asks for).
  // Screen readers hear the time left when the page opens and at a few
  // points (ANNOUNCE_AT), not every second.

  var ANNOUNCE_AT = [300, 60, 30]; // seconds left
  var LATE_CAPTURE_TEXT = {
    title: 'Payment successful',
    detail: 'Your payment reached us after this payment request had expired, and it has been ' +
      'accepted. There is no need to pay again.',
  };
  var clockSkew = 0; // server clock minus this page's clock, in ms
  var countdown = { timer: null, deadline: NaN, secondsLeft: null, lastLeft: null };

  function isLateCapture(status, previousState) {
    return status.status === 'completed' && (status.lateCapture === true ||
      status.previousStatus === 'expired' || previousState === 'expired');
  }

  // serverSkew estimates how far this page's clock is from the server's,
  // from the Date header (same origin only; it is not exposed cross-origin).
  function serverSkew(res, sent) {
    var date = res.headers && res.headers.get('Date');
    var server = date ? Date.parse(date) : NaN;
    if (isNaN(server)) return 0;
    var skew = server + 500 - (sent + Date.now()) / 2; // Date has whole seconds
    return Math.abs(skew) < 2000 ? 0 : skew;
  }

  function renderPaymentWindow(status) {
    var open = status.status === 'pending' || status.status === 'processing';
    els.expiredActions.hidden = status.status !== 'expired';
    var deadline = open && status.expiresAt ? Date.parse(status.expiresAt) : NaN;
    if (isNaN(deadline)) {
      stopCountdown();
      return;
    }
    els.window.hidden = false;
    if (deadline !== countdown.deadline) {
      countdown.deadline = deadline;
      countdown.lastLeft = null;
    }
    tickCountdown();
    if (!countdown.timer) countdown.timer = setInterval(tickCountdown, 1000);
  }

  function stopCountdown() {
    clearInterval(countdown.timer);
    countdown.timer = null;
    countdown.deadline = NaN;
    countdown.secondsLeft = null;
    els.window.hidden = true;
  }

  function tickCountdown() {
    var left = Math.max(0, Math.ceil((countdown.deadline - (Date.now() + clockSkew)) / 1000));
    var previous = countdown.lastLeft;
    countdown.secondsLeft = left;
    countdown.lastLeft = left;
    els.countdown.textContent = formatClock(left);
    els.window.dataset.urgency = left === 0 ? 'over' : left <= 60 ? 'low' : 'ok';
    if (left === 0) {
      els.countdownLabel.textContent = 'Time is up. Confirming with the server…';
      if (previous !== 0) announce('The time to pay is up. Waiting for confirmation.');
      clearInterval(countdown.timer);
      countdown.timer = null;
      return;
    }
    els.countdownLabel.textContent = 'Time left to pay';
    if (previous === null) {
      announce(spokenTime(left) + ' left to pay.');
      return;
    }
    for (var i = 0; i < ANNOUNCE_AT.length; i++) {
      if (previous > ANNOUNCE_AT[i] && left <= ANNOUNCE_AT[i]) {
        announce(spokenTime(ANNOUNCE_AT[i]) + ' left to pay.');
        return;
      }
    }
  }

  function announce(message) {
    els.announcer.textContent = message;
  }

  function formatClock(seconds) {
    var h = Math.floor(seconds / 3600);
    var m = Math.floor((seconds % 3600) / 60);
    var s = seconds % 60;
    var mm = (h > 0 && m < 10 ? '0' : '') + m;
    return (h > 0 ? h + ':' : '') + mm + ':' + (s < 10 ? '0' : '') + s;
  }

  function spokenTime(seconds) {
    if (seconds >= 120) {
      var minutes = Math.round(seconds / 60);
      return minutes + ' minutes';
    }
    if (seconds >= 60) return '1 minute';
    return seconds + (seconds === 1 ? ' second' : ' seconds');
  }

  // checkAgain asks the server once, on the buyer's request, whether an
  // expired order was paid after all (a late capture). Nothing else runs
  // after a final status.
  async function checkAgain() {
    els.checkAgain.disabled = true;
    var result = await loadStatus();
    if (result.ok) {
      renderStatus(result.status);
    } else {
      showNotice('Could not check the payment: ' + result.message);
    }
    setTimeout(function () { els.checkAgain.disabled = false; }, 3000);
  }

  function renderIndicator() {
    var view = INDICATOR[connectionState] || INDICATOR.closed;
    var terminal = !!(current && window.PaymentWebSocket.isTerminal(current.status));
    if (connectionState === 'closed' && terminal) view = INDICATOR.final;
    var title = view.title;
    if (navigator.onLine === false && !terminal) {
      view = INDICATOR.closed;
      title = 'You are offline';
    }
    els.indicator.dataset.state = view.state;
    els.indicator.title = title;
    els.indicator.querySelector('.indicator-text').textContent = view.text;
  }

  function showFatal(title, detail) {
    stopCountdown();
    els.status.dataset.status = 'error';
    els.title.textContent = title;
    els.detail.textContent = detail;
    els.actions.hidden = true;
    connectionState = 'closed';
    renderIndicator();
  }

  function showNotice(message) {
    els.pageError.textContent = message;
    els.pageError.hidden = false;
  }

  // ---- helpers --------------------------------------------------------------

  function currencyDigits(currency) {
    try {
      return new Intl.NumberFormat('en', { style: 'currency', currency: currency })
        .resolvedOptions().maximumFractionDigits;
    } catch (e) {
      return 2;
    }
  }

  function formatAmount(minor, currency) {
    if (typeof minor !== 'number') return '—';
    var digits = currencyDigits(currency);
    var major = minor / Math.pow(10, digits);
    try {
      return new Intl.NumberFormat(undefined, { style: 'currency', currency: currency }).format(major);
    } catch (e) {
      return major.toFixed(digits) + ' ' + currency;
    }
  }

  function majorAmount(minor, currency) {
    var digits = currencyDigits(currency);
    return (minor / Math.pow(10, digits)).toFixed(digits);
  }

  // trustedOrigins lists the API origins this page may use besides its own:
  // those in its own <meta name="paystatus-api-origins"> and those its own
  // origin's configuration names.
  function trustedOrigins(config) {
    var list = [];
    var meta = document.querySelector('meta[name="paystatus-api-origins"]');
    if (meta && meta.content) list = meta.content.split(/[\s,]+/).filter(Boolean);
    if (Array.isArray(config.apiOrigins)) list = list.concat(config.apiOrigins);
    return list.map(function (o) {
      try { return new URL(o).origin; } catch (e) { return ''; }
    }).filter(Boolean);
  }

  // parseApiBase reads ?api= as an http(s) URL: its origin, and the base
  // for API calls (origin and path). Null when absent or not such a URL.
  function parseApiBase(value) {
    if (!value) return null;
    try {
      var url = new URL(value, window.location.href);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
      return { origin: url.origin, base: url.origin + url.pathname.replace(/\/+$/, '') };
    } catch (e) {
      return null;
    }
  }

  function parseOverride(value) {
    if (value === null) return null;
    var v = value.toLowerCase();
    if (v === 'off' || v === '0' || v === 'false') return false;
    if (v === 'on' || v === '1' || v === 'true') return true;
    return null;
  }

  function readDebugFlag() {
    try {
      return !!localStorage.getItem('debug');
    } catch (e) {
      return false;
    }
  }

  function positive(value, fallback) {
    return typeof value === 'number' && value > 0 ? value : fallback;
  }
})();
