// session.js on the demo app's pages, in Chromium, on gateways with a 5-second idle timeout, a
// 3-second warning and a 1-second polling interval (`session.poll_interval`, shortened for
// tests; 30 s by default and at most): the warning, "Stay signed in" (across tabs), a page that
// only polls signed out on time, sign-outs in another tab and on another instance explained by
// the dialog and then the banner, the Ctrl+Shift+D panel, a strict CSP, no console errors, and the
// app's own styles untouched.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import path from 'node:path';

import { bannerText, DESKTOP, launch, signIn } from './lib/browser.js';
import { freePort, OUTPUT, startGateway } from './lib/gateway.js';

const SESSION = { idle_timeout: '5s', warn_before: '3s', poll_interval: '1s' };
const ADMIN_TOKEN = 'e2e-session-script-admin-token';
const BAR = '#hubgate-session >> .bar';
const DIALOG = '#hubgate-session >> #end-dialog';
const PANEL = '#hubgate-session >> #panel';

/** What the window shows (the bar and the panel are fixed to it), for docs/session-*.png. */
async function screenshot(page, name) {
  await page.screenshot({ path: path.join(OUTPUT, `${name}.png`) });
}

/** Console errors and uncaught exceptions of a page (the favicon Chromium asks for aside). */
function watchErrors(page) {
  const errors = [];
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.location().url.endsWith('/favicon.ico')) {
      errors.push(`${message.text()} (${message.location().url})`);
    }
  });
  page.on('pageerror', (error) => errors.push(String(error)));
  return errors;
}

async function openSignedIn(context, gateway, path = '/apps/notebook/') {
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${gateway.url}${path}`);
  await signIn(page, 'alice');
  return { page, errors };
}

async function isSignedIn(page) {
  return page.evaluate(async () => (await fetch('/hub/api/session', { headers: { Accept: 'application/json' } })).status === 200);
}

/** The dialog's reason, then the sign-in page it leads to: the banner must say the same. */
async function dialogThenBanner(page, expected, shot) {
  await page.locator(DIALOG).waitFor({ state: 'visible', timeout: 8000 });
  assert.equal((await page.locator('#hubgate-session >> #end-reason').innerText()).trim(), expected);
  if (shot) await screenshot(page, shot);
  await page.waitForURL(/\/hub\/login\?/, { timeout: 8000 });
  assert.equal(await bannerText(page), expected);
}

function startRedis(port) {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  return child;
}

describe('session.js in Chromium', () => {
  let gateway;
  let browser;

  before(async () => {
    gateway = await startGateway({ name: 'session-script', session: SESSION, apps: [{ name: 'notebook' }] });
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  test('the warning appears, and "Stay signed in" in one tab keeps the session past its deadline in every tab', async () => {
    const context = await browser.newContext(DESKTOP);
    const { page, errors } = await openSignedIn(context, gateway);
    const second = await context.newPage();
    const secondErrors = watchErrors(second);
    await second.goto(`${gateway.url}/apps/notebook/`);
    const loaded = Date.now();
    await page.locator(BAR).waitFor({ state: 'visible', timeout: 6000 });
    await second.locator(BAR).waitFor({ state: 'visible', timeout: 6000 });
    const text = await page.locator('#hubgate-session >> #warning-text').innerText();
    assert.match(text, /^You will be signed out in 0:0[1-3] for inactivity$/);
    await screenshot(page, 'session-warning');
    await page.locator('#hubgate-session >> #stay').click();
    await page.locator(BAR).waitFor({ state: 'hidden', timeout: 3000 });
    // The other tab heard of it (BroadcastChannel) without asking the gateway.
    await second.locator(BAR).waitFor({ state: 'hidden', timeout: 3000 });
    // Past the original deadline (5 s after the last request through the gateway).
    await page.waitForTimeout(Math.max(0, loaded + 6000 - Date.now()));
    assert.equal(await isSignedIn(page), true, 'still signed in after the original deadline');
    assert.equal(await page.locator(DIALOG).isVisible(), false);
    // Nobody acts again: the tabs only poll, and polling is no activity — signed out on time.
    await page.locator(DIALOG).waitFor({ state: 'visible', timeout: 8000 });
    assert.match(await page.locator('#hubgate-session >> #end-idle').innerText(), /^Idle for \d+ seconds\.$/);
    await dialogThenBanner(page, 'You were signed out after 5 seconds without activity.', 'session-dialog');
    assert.deepEqual(errors, []);
    assert.deepEqual(secondErrors, []);
    await context.close();
  });

  test('a sign-out in another tab shows the dialog with the reason, then the same banner', async () => {
    const context = await browser.newContext(DESKTOP);
    const { page, errors } = await openSignedIn(context, gateway);
    const other = await context.newPage();
    await other.goto(`${gateway.url}/hub/session`);
    await other.getByRole('link', { name: 'Sign out', exact: true }).click();
    await page.locator(DIALOG).waitFor({ state: 'visible', timeout: 4000 });
    await dialogThenBanner(page, 'You have signed out of every app.');
    const url = new URL(page.url());
    assert.equal(url.searchParams.get('reason'), 'logged_out');
    assert.equal(url.searchParams.get('next'), '/apps/notebook/');
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('Ctrl+Shift+D opens the panel; the app keeps its own styles; a strict CSP is no obstacle', async () => {
    const probe = async (page) =>
      page.evaluate(() =>
        ['body', 'h1', '.card', 'nav a', 'th', 'button', 'code'].map((selector) => {
          const style = getComputedStyle(document.querySelector(selector));
          return [selector, style.font, style.color, style.backgroundColor, style.margin, style.padding, style.display, style.width];
        }),
      );
    // The same page without the script, for comparison.
    const bare = await browser.newContext(DESKTOP);
    await bare.route('**/static/session.js', (route) => route.fulfill({ status: 200, contentType: 'text/javascript', body: '' }));
    const { page: plain } = await openSignedIn(bare, gateway);
    const without = await probe(plain);
    await bare.close();

    const context = await browser.newContext(DESKTOP);
    const { page, errors } = await openSignedIn(context, gateway);
    await page.keyboard.press('Control+Shift+D');
    const panel = page.locator(PANEL);
    await panel.waitFor({ state: 'visible', timeout: 3000 });
    const text = await panel.innerText();
    for (const part of ['User', 'alice', 'Groups', 'ops', 'Idle time left', 'Session ends in', 'notebook token', 'Recent sign-outs']) {
      assert.ok(text.includes(part), `${part} in the panel: ${text}`);
    }
    assert.deepEqual(await probe(page), without, 'the app looks the same with the script');
    await screenshot(page, 'session-panel');
    await page.keyboard.press('Control+Shift+D');
    await panel.waitFor({ state: 'hidden', timeout: 3000 });

    // Under `script-src 'self'; style-src 'self'`: the script runs and its styles apply.
    const strict = await context.newPage();
    const strictErrors = watchErrors(strict);
    await strict.goto(`${gateway.url}/apps/notebook/strict`);
    await strict.locator('#strict').waitFor();
    await strict.waitForFunction(() => window.hubgateSession !== undefined);
    await strict.keyboard.press('Control+Shift+D');
    await strict.locator(PANEL).waitFor({ state: 'visible', timeout: 3000 });
    assert.equal(await strict.locator(PANEL).evaluate((node) => getComputedStyle(node).position), 'fixed');
    assert.deepEqual(strictErrors, []);
    assert.deepEqual(errors, []);
    await context.close();
  });
});

describe('session.js across two instances sharing Redis', () => {
  let redis;
  let first;
  let second;
  let browser;

  before(async () => {
    const port = await freePort();
    redis = startRedis(port);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Both instances sign with the same key (required with Redis).
    const keys = `[[tokens.keys]]\nid = "k1"\nsecret = "${Buffer.alloc(32, 7).toString('base64url')}"`;
    process.env.HUBGATE_ADMIN_TOKEN = ADMIN_TOKEN;
    const session = { ...SESSION, idle_timeout: '30m', store: 'redis', redis_url: `redis://127.0.0.1:${port}/0` };
    first = await startGateway({ name: 'session-script-a', session, hub: keys, apps: [{ name: 'notebook' }] });
    second = await startGateway({ name: 'session-script-b', session, hub: keys, apps: [{ name: 'notebook' }] });
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await first?.stop();
    await second?.stop();
    redis?.kill('SIGTERM');
  });

  test('an administrator ending the session on the other instance shows the dialog with the reason and the idle time', async () => {
    const context = await browser.newContext(DESKTOP);
    const { page, errors } = await openSignedIn(context, first);
    await page.waitForFunction(() => window.hubgateSession !== undefined);
    const response = await fetch(`${second.url}/hub/api/admin/revoke`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify({ user: 'alice' }),
    });
    assert.deepEqual(await response.json(), { revoked: 1 });
    await page.locator(DIALOG).waitFor({ state: 'visible', timeout: 4000 });
    assert.match(await page.locator('#hubgate-session >> #end-idle').innerText(), /^Idle for \d+ seconds?\.$/);
    await dialogThenBanner(page, 'An administrator ended your session. Please sign in again.');
    // The dialog's own report reached the store beside the end.
    const ends = await fetch(`${second.url}/hub/api/admin/ends?user=alice`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
    const answer = await ends.json();
    assert.equal(answer.ends[0].reason, 'revoked');
    assert.ok(answer.ends[0].reports.some((r) => r.message.includes('session.js showed the sign-out dialog (revoked)')), JSON.stringify(answer));
    assert.deepEqual(errors, []);
    await context.close();
  });
});
