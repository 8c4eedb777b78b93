// The pages the gateway answers with itself when it cannot pass a request on: an app that is
// down (502) and an address no app lives at (404). Plain `hubgate`, not the demo, so the app's
// upstream port really has nothing listening.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { launch, PHONE, screenshot } from './lib/browser.js';
import { freePort, startGateway } from './lib/gateway.js';

describe('error pages in Chromium', () => {
  let gateway;
  let browser;
  let page;

  before(async () => {
    gateway = await startGateway({
      name: 'errors',
      demo: false,
      apps: [
        // Public, so the 502 page shows without signing in first.
        { name: 'offline', upstream: `127.0.0.1:${await freePort()}`, publicPaths: ['/apps/offline/'] },
      ],
    });
    browser = await launch();
    page = await (await browser.newContext(PHONE)).newPage();
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  test('an app that does not answer gets a 502 page, not a bare error', async () => {
    const response = await page.goto(`${gateway.url}/apps/offline/`);
    assert.equal(response.status(), 502);
    assert.equal(await page.locator('h1').innerText(), 'The app is not answering');
    assert.equal(await page.locator('link[rel=stylesheet]').count(), 1);
    await screenshot(page, 'bad-gateway-phone');
  });

  test('an unknown address gets a 404 page', async () => {
    const response = await page.goto(`${gateway.url}/no/such/app`);
    assert.equal(response.status(), 404);
    assert.equal(await page.locator('h1').innerText(), 'Page not found');
    await screenshot(page, 'not-found-phone');
  });
});
