// Apps on their own host names in a real browser: the hub on `hub.localhost`, two apps on
// `grafana.localhost` and `notebook.localhost` (Chromium resolves `*.localhost` to loopback).
// One sign-in opens both; sign-out from one refuses the other on reload, with the banner.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { bannerText, DESKTOP, launch, screenshot, signIn } from './lib/browser.js';
import { startGateway } from './lib/gateway.js';

describe('apps on their own hosts in Chromium', () => {
  let gateway;
  let browser;

  before(async () => {
    gateway = await startGateway({
      name: 'hosts',
      hubHost: 'hub.localhost',
      apps: [
        { name: 'grafana', host: 'grafana.localhost' },
        { name: 'notebook', host: 'notebook.localhost' },
      ],
    });
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  test('one sign-in opens both hosts; sign-out from one refuses the other with the banner', async () => {
    const context = await browser.newContext(DESKTOP);
    const page = await context.newPage();
    const grafana = `http://grafana.localhost:${gateway.port}/`;
    const notebook = `http://notebook.localhost:${gateway.port}/`;

    await page.goto(grafana);
    assert.equal(new URL(page.url()).host, `hub.localhost:${gateway.port}`);
    assert.equal(new URL(page.url()).pathname, '/hub/login');
    await signIn(page, 'alice');
    assert.equal(page.url(), grafana);
    assert.match(await page.locator('body').innerText(), /alice/);

    // The second host opens without a second sign-in.
    await page.goto(notebook);
    assert.equal(page.url(), notebook);
    assert.match(await page.locator('body').innerText(), /alice/);
    await screenshot(page, 'hosts-notebook');

    // Each host holds its own host-only cookies; none of the hub's.
    const cookies = await context.cookies();
    const on = (host) => cookies.filter((c) => c.domain === host).map((c) => c.name).sort();
    assert.deepEqual(on('grafana.localhost'), ['hubgate-app-grafana', 'hubgate-session-id']);
    assert.deepEqual(on('notebook.localhost'), ['hubgate-app-notebook', 'hubgate-session-id']);
    assert.ok(cookies.every((c) => c.httpOnly), JSON.stringify(cookies));

    // Sign out on grafana's host; notebook's tab is refused on reload and told why.
    await page.goto(`http://grafana.localhost:${gateway.port}/.hubgate/logout`);
    assert.equal(new URL(page.url()).host, `hub.localhost:${gateway.port}`);
    assert.equal(await bannerText(page), 'You have signed out of every app.');
    await page.goto(notebook);
    await page.reload();
    const url = new URL(page.url());
    assert.equal(url.host, `hub.localhost:${gateway.port}`);
    assert.equal(url.pathname, '/hub/login');
    assert.equal(await bannerText(page), 'You have signed out of every app.');
    await screenshot(page, 'hosts-signed-out');
    const left = (await context.cookies()).filter((c) => c.domain === 'notebook.localhost');
    assert.deepEqual(left, [], 'the refused host cleared its cookies');
    await context.close();
  });
});
