// Sign-in through a real OpenID Provider in Chromium: the sign-in page's "Sign in with Corp SSO"
// button, the provider's own login page, two apps without a second sign-in, and a sign-out that
// ends the provider's session too (end_provider_session) and lands back on hubgate's sign-in page
// with its banner.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { bannerText, DESKTOP, launch, screenshot } from './lib/browser.js';
import { freePort, startGateway } from './lib/gateway.js';
import { startProvider } from './lib/provider.js';

describe('OpenID Connect in Chromium', () => {
  let provider;
  let gateway;
  let browser;
  let context;
  let page;

  before(async () => {
    const port = await freePort();
    provider = await startProvider({ name: 'oidc', gatewayPort: port });
    gateway = await startGateway({
      name: 'oidc',
      port,
      hub: provider.config('end_provider_session = true'),
      apps: [{ name: 'notebook' }, { name: 'dashboard', allowedGroups: ['ops'] }],
    });
    // Discovery runs in the background: wait until the provider is ready.
    for (let i = 0; i < 100; i += 1) {
      const ready = await (await fetch(`${gateway.url}/hub/ready`)).json();
      if (ready.providers?.corp === 'ready') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    browser = await launch();
    context = await browser.newContext(DESKTOP);
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
    await provider?.stop();
  });

  test('the sign-in page offers the provider beside the password form', async () => {
    page = await context.newPage();
    await page.goto(`${gateway.url}/apps/notebook/`);
    assert.equal(new URL(page.url()).pathname, '/hub/login');
    const button = page.getByRole('link', { name: 'Sign in with Corp SSO' });
    assert.equal(await button.count(), 1);
    assert.equal(await page.getByLabel('User name').count(), 1);
    await screenshot(page, 'sign-in-with-provider');
  });

  test('signing in on the provider\'s own login page lands on the app with the mapped identity', async () => {
    await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: 'Sign in with Corp SSO' }).click()]);
    assert.ok(page.url().startsWith(provider.issuer), page.url());
    await page.locator('input[name="login"]').fill('alice');
    await page.locator('input[name="password"]').fill('any password');
    await screenshot(page, 'provider-login');
    await Promise.all([
      page.waitForURL(`${gateway.url}/apps/notebook/`),
      page.locator('button[type="submit"]').first().click(),
    ]);
    assert.equal(await page.locator('#x-forwarded-user').innerText(), 'alice');
    assert.equal(await page.locator('#x-forwarded-groups').innerText(), 'ops,staff');
    assert.equal(await page.locator('#x-forwarded-email').innerText(), 'alice@example.com');
  });

  test('a second app opens without signing in again', async () => {
    const second = await context.newPage();
    await second.goto(`${gateway.url}/apps/dashboard/`);
    assert.equal(second.url(), `${gateway.url}/apps/dashboard/`);
    assert.equal(await second.locator('#x-forwarded-user').innerText(), 'alice');
    await second.close();
  });

  test('sign-out ends the provider\'s session too and comes back to the sign-in page', async () => {
    await page.goto(`${gateway.url}/logout`);
    // The provider asks "sign out?" on its own page.
    assert.ok(page.url().startsWith(`${provider.issuer}/session/end`), page.url());
    await screenshot(page, 'provider-sign-out');
    await Promise.all([
      page.waitForURL((url) => url.pathname === '/hub/login'),
      page.getByRole('button', { name: 'Yes, sign me out' }).click(),
    ]);
    assert.equal(new URL(page.url()).searchParams.get('reason'), 'logged_out');
    assert.equal(await bannerText(page), 'You have signed out of every app.');
    await screenshot(page, 'signed-out-of-provider');
    // Both apps now ask for a sign-in again, and so does the provider.
    await page.goto(`${gateway.url}/apps/dashboard/`);
    assert.equal(new URL(page.url()).pathname, '/hub/login');
    await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: 'Sign in with Corp SSO' }).click()]);
    assert.equal(await page.locator('input[name="login"]').count(), 1, 'the provider asks again');
  });
});
