'use strict';
// Runs Socket.IO's published protocol test suites (socketio/engine.io-protocol
// and socketio/socket.io-protocol, directory test-suite/) against
// realtime/conformance in headless Chromium, the way their index.html runs
// them in a browser. It fetches nothing: the suites and the browser builds
// of mocha 9, chai 4 and chai-string 1 must already be on disk, and the
// page's requests for them are answered from there. Not part of the test
// command, since getting the suites needs the network.
//
//   node e2e/upstream/run.js --suite /path/to/engine.io-protocol/test-suite \
//     --mode engineio --deps /path/with/node_modules [--runs 3] [--port N] \
//     [--server go|node]
//
// The suites talk to http://localhost:3000. On another port the runner
// serves test-suite.js with that address replaced, and changes nothing else.
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { freePort, waitFor, repoRoot } = require('../lib/server');

function parseArgs(argv) {
  const opts = { runs: 1, port: 0, mode: '', suite: '', deps: '', server: 'go' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in opts)) throw new Error(`unknown option ${argv[i]}`);
    opts[key] = typeof opts[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!opts.suite || !opts.deps) throw new Error('--suite and --deps are required');
  if (!opts.mode) opts.mode = fs.readFileSync(path.join(opts.suite, 'test-suite.js'), 'utf8').includes('/engine.io/') ? 'engineio' : 'socketio';
  return opts;
}

const CHROMIUM_ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

// The CDN files index.html loads, and where their copies are.
const CDN = {
  'https://unpkg.com/mocha@9/mocha.js': 'mocha/mocha.js',
  'https://unpkg.com/mocha@9/mocha.css': 'mocha/mocha.css',
  'https://unpkg.com/chai@4/chai.js': 'chai/chai.js',
  'https://unpkg.com/chai-string@1/chai-string.js': 'chai-string/chai-string.js',
};

// Collects each test's outcome from the page's mocha runner.
const HOOK = `(() => {
  let m;
  window.__suite = { tests: [], done: false };
  Object.defineProperty(window, 'mocha', {
    configurable: true,
    get() { return m; },
    set(v) {
      m = v;
      const run = v.run.bind(v);
      const start = (args) => {
        const runner = run(...args);
        if (!runner || typeof runner.on !== 'function') return;
        runner.on('pass', (t) => window.__suite.tests.push({ title: t.fullTitle(), state: 'passed' }));
        runner.on('fail', (t, err) => window.__suite.tests.push({ title: t.fullTitle(), state: 'failed', error: String(err && err.message) }));
        runner.on('end', () => { window.__suite.done = true; });
      };
      // index.html calls mocha.run() while the page is still parsing, and
      // the suite is a module script, which runs only once parsing ends:
      // start then, so that the suite has defined its tests whatever the
      // time its file takes to arrive.
      v.run = (...args) => {
        if (document.readyState === 'loading') {
          document.addEventListener('DOMContentLoaded', () => start(args), { once: true });
        } else {
          start(args);
        }
      };
    },
  });
})();`;

async function runOnce(browser, opts, pageOrigin) {
  const page = await browser.newPage();
  const logs = [];
  page.on('console', (msg) => logs.push(msg.text()));
  page.on('pageerror', (err) => logs.push(String(err)));
  await page.addInitScript(HOOK);
  for (const [url, file] of Object.entries(CDN)) {
    await page.route(url, (route) => route.fulfill({ path: path.join(opts.deps, 'node_modules', file) }));
  }
  await page.goto(`${pageOrigin}/index.html`);
  await page.waitForFunction(() => window.__suite && window.__suite.done, null, { timeout: 120000 });
  const tests = await page.evaluate(() => window.__suite.tests);
  await page.close();
  return { tests, logs };
}

// serveSuite serves the suite's files on loopback: a page Chromium got from
// anywhere else may not reach the server on localhost.
function serveSuite(opts, port) {
  const srv = http.createServer((req, res) => {
    const name = path.basename(new URL(req.url, 'http://x').pathname) || 'index.html';
    const file = path.join(opts.suite, name);
    if (!['index.html', 'test-suite.js'].includes(name) || !fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    let body = fs.readFileSync(file, 'utf8');
    if (name === 'test-suite.js' && port !== 3000) {
      body = body.replace('"http://localhost:3000"', `"http://localhost:${port}"`);
    }
    res.writeHead(200, { 'content-type': name.endsWith('.html') ? 'text/html' : 'text/javascript' }).end(body);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const bin = path.join(os.tmpdir(), `paystatus-conformance-${process.pid}`);
  const port = opts.port || (await freePort());
  let server;
  if (opts.server === 'node') {
    // --server node: Node's reference servers instead, for comparison.
    server = spawn(process.execPath, [path.join(__dirname, 'reference.js'), opts.mode, String(port)], { stdio: ['ignore', 'inherit', 'inherit'] });
  } else {
    execFileSync('go', ['build', '-o', bin, './realtime/conformance'], { cwd: repoRoot, stdio: 'inherit' });
    server = spawn(bin, ['-addr', `:${port}`, '-mode', opts.mode], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
  const prefix = opts.mode === 'engineio' ? 'engine.io' : 'socket.io';
  let failed = false;
  const pages = await serveSuite(opts, port);
  const pageOrigin = `http://127.0.0.1:${pages.address().port}`;
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
  try {
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/${prefix}/?EIO=4&transport=polling`)).ok, { message: 'conformance server' });
    for (let run = 1; run <= opts.runs; run++) {
      const { tests, logs } = await runOnce(browser, opts, pageOrigin);
      const passed = tests.filter((t) => t.state === 'passed').length;
      console.log(`run ${run}: ${passed}/${tests.length} passed (${opts.mode} suite, ${opts.server} server)`);
      for (const t of tests.filter((x) => x.state !== 'passed')) {
        console.log(`  FAIL ${t.title}: ${t.error}`);
        failed = true;
      }
      if (tests.length === 0) {
        failed = true;
        console.log(logs.join('\n'));
      }
    }
  } finally {
    await browser.close();
    pages.close();
    server.kill('SIGTERM');
    fs.rmSync(bin, { force: true });
  }
  process.exitCode = failed ? 1 : 0;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
