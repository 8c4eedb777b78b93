// Step 6 of the walk-through, on a gateway of its own with a 3-second idle timeout: a tab left
// alone past it is signed out, and the sign-in page says why.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { bannerText, DESKTOP, launch, screenshot, signIn } from './lib/browser.js';
import { startGateway } from './lib/gateway.js';

describe('idle timeout in Chromium', () => {
  let gateway;
  let browser;

  before(async () => {
    gateway = await startGateway({
      name: 'idle',
      session: { idle_timeout: '3s' },
      apps: [{ name: 'notebook' }],
    });
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  test('6. waiting past idle_timeout signs the user out, and the banner says so', async () => {
    const context = await browser.newContext(DESKTOP);
    const page = await context.newPage();
    const app = `${gateway.url}/apps/notebook/`;
    await page.goto(app);
    await signIn(page, 'alice');
    assert.equal(page.url(), app);
    // The demo page's open WebSocket is not activity: only requests through the gateway are.
    await page.waitForTimeout(4500);
    await page.reload();
    const url = new URL(page.url());
    assert.equal(url.pathname, '/hub/login');
    assert.equal(url.searchParams.get('reason'), 'idle_timeout');
    assert.equal(await bannerText(page), 'You were signed out after 3 seconds without activity.');
    await screenshot(page, 'idle-timeout');
    // Signing in again goes straight back to the app.
    await signIn(page, 'alice');
    assert.equal(page.url(), app);
    await context.close();
  });
});
