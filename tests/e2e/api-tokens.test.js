// API tokens as a person makes them, in a real Chromium: the session page's form makes a token for
// one app, the next page shows the secret once, a script (Node's fetch, no cookies) reaches the
// app with it as that person, and the Revoke button ends it for the script at once.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { DESKTOP, launch, screenshot, signIn } from './lib/browser.js';
import { startGateway } from './lib/gateway.js';

describe('API tokens on the session page', () => {
  let gateway;
  let browser;
  let page;
  let secret;

  before(async () => {
    gateway = await startGateway({
      name: 'api-tokens',
      apps: [{ name: 'reports' }, { name: 'notebook' }],
    });
    browser = await launch();
    const context = await browser.newContext(DESKTOP);
    page = await context.newPage();
    await page.goto(`${gateway.url}/apps/reports/`);
    await signIn(page, 'alice');
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  const script = (token, app = 'reports') =>
    fetch(`${gateway.url}/apps/${app}/data`, { headers: { authorization: `Bearer ${token}` } });

  test('the form makes a token and the next page shows its secret once', async () => {
    await page.goto(`${gateway.url}/hub/session`);
    assert.equal(await page.locator('#no-api-tokens').count(), 1);
    await page.fill('#token-name', 'nightly export');
    await page.check('#new-api-token input[name="app"][value="reports"]');
    await page.selectOption('#token-days', '7');
    await page.click('#new-api-token button[type="submit"]');
    secret = (await page.locator('#new-token').innerText()).trim();
    assert.match(secret, /^hg_[A-Za-z0-9_-]{43}$/);
    await screenshot(page, 'api-token-created');
  });

  test('a script with the token reaches that app as its owner, and only that app', async () => {
    const answer = await script(secret);
    assert.equal(answer.status, 200);
    const seen = await answer.json();
    assert.equal(seen.headers['x-forwarded-user'], 'alice');
    assert.equal(seen.headers.authorization, undefined);
    const elsewhere = await script(secret, 'notebook');
    assert.equal(elsewhere.status, 403);
    assert.equal((await elsewhere.json()).reason, 'token_not_for_app');
  });

  test('the session page lists the token without its secret and revokes it', async () => {
    await page.goto(`${gateway.url}/hub/session`);
    const row = page.locator('#api-token-list tbody tr');
    assert.equal(await row.count(), 1);
    assert.match(await row.innerText(), /nightly export/);
    assert.ok(!(await page.content()).includes(secret), 'never shown again');
    await row.locator('button').click();
    await page.waitForURL(`${gateway.url}/hub/session`);
    assert.equal(await page.locator('#no-api-tokens').count(), 1);
    const refused = await script(secret);
    assert.equal(refused.status, 401);
    assert.equal((await refused.json()).reason, 'token_revoked');
  });
});
