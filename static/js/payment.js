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
    renderStatus(statusResult.status);

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
      var res = await fetch(url, {
        cache: 'no-store',
        headers: { Accept: 'application/json', 'X-Order-Token': token },
      });
      var body = await res.json().catch(function () { return {}; });
      if (res.ok && body && body.status) return { ok: true, status: body };
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
    current = status;
    var state = status.status;
    var text = STATUS_TEXT[state] || { title: 'Status: ' + state, detail: '' };

    els.status.dataset.status = state;
    els.title.textContent = text.title;
    els.detail.textContent = text.detail;

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
