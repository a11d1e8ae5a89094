'use strict';
// Renders docs/checkout.png, the README's picture of the checkout page: a
// development server on a free port, one order, the page in Debian's
// Chromium at a phone-like width, captured once it shows "Live".
//
//   cd e2e && node browser/checkout-screenshot.js [output.png]
//
// Not a test (no .test.js suffix): run it after changing the page.

const path = require('node:path');
const { startServer, openBrowser, createOrder, waitFor, indicatorState } = require('./helpers');

async function main() {
  const out = path.resolve(process.argv[2] || path.join(__dirname, '..', '..', 'docs', 'checkout.png'));
  const server = await startServer();
  const browser = await openBrowser();
  try {
    const order = await createOrder(server, { description: 'Blue mug' });
    await browser.page.setViewportSize({ width: 520, height: 900 });
    const query = new URLSearchParams({ orderId: order.id, token: order.token });
    await browser.page.goto(`${server.url}/payment.html?${query}`);
    await waitFor('the page to go live', async () => (await indicatorState(browser.page)) === 'live', 15000);
    // The card with a margin of the page's background around it.
    const box = await browser.page.locator('#checkout').boundingBox();
    const margin = 16;
    await browser.page.screenshot({
      path: out,
      clip: {
        x: Math.max(0, box.x - margin),
        y: Math.max(0, box.y - margin),
        width: box.width + 2 * margin,
        height: box.height + 2 * margin,
      },
    });
    console.log(`wrote ${out}`);
  } catch (err) {
    console.error(browser.logs.join('\n'));
    throw err;
  } finally {
    await browser.close();
    await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
