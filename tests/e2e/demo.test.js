// The demo as a newcomer meets it, in a real Chromium: app A sends you to sign in, you land back on
// app A, app B opens without a second sign-in, the cookies stay where they belong, a WebSocket
// passes through the gateway, and one sign-out ends it all.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { bannerText, DESKTOP, launch, PHONE, screenshot, signIn } from './lib/browser.js';
import { startGateway, USERS } from './lib/gateway.js';

const APP_A = 'notebook';
const APP_B = 'dashboard';

describe('the demo in Chromium', () => {
  let gateway;
  let browser;
  let context;
  let pageA;
  let pageB;

  before(async () => {
    gateway = await startGateway({
      name: 'demo',
      apps: [
        { name: APP_A },
        { name: APP_B, allowedGroups: ['ops'], publicPaths: [`/apps/${APP_B}/public/`] },
      ],
    });
    browser = await launch();
    context = await browser.newContext(DESKTOP);
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  const appUrl = (app) => `${gateway.url}/apps/${app}/`;

  test('1. opening app A sends the browser to the sign-in page', async () => {
    pageA = await context.newPage();
    await pageA.goto(appUrl(APP_A));
    const url = new URL(pageA.url());
    assert.equal(url.pathname, '/hub/login');
    // After signing in, the browser goes on to mint app A's cookie and then to app A itself.
    const next = new URL(url.searchParams.get('next'), gateway.url);
    assert.equal(next.pathname, '/hub/authorize');
    assert.equal(next.searchParams.get('app'), APP_A);
    assert.equal(next.searchParams.get('next'), `/apps/${APP_A}/`);
    assert.equal(await pageA.locator('h1').innerText(), 'Sign in');
    assert.equal(await bannerText(pageA), null);
    await screenshot(pageA, 'sign-in');
  });

  test('1. app B\'s public path opens without signing in', async () => {
    const page = await context.newPage();
    await page.goto(`${appUrl(APP_B)}public/`);
    assert.equal(page.url(), `${appUrl(APP_B)}public/`);
    assert.equal(await page.locator('#app-name').innerText(), APP_B);
    assert.equal(await page.locator('#x-forwarded-user').innerText(), '(not sent)');
    await page.close();
  });

  test('1. signing in without "remember me" lands on app A', async () => {
    await signIn(pageA, 'alice');
    assert.equal(pageA.url(), appUrl(APP_A));
  });

  test('1. signing in with "remember me" keeps the cookies past the browser session', async () => {
    const remembered = await browser.newContext(DESKTOP);
    try {
      const page = await remembered.newPage();
      await page.goto(appUrl(APP_A));
      await signIn(page, 'alice', { rememberMe: true });
      assert.equal(page.url(), appUrl(APP_A));
      const jar = await remembered.cookies();
      const days = (c) => (c.expires - Date.now() / 1000) / 86_400;
      for (const name of ['hubgate-hub-login', 'hubgate-session-id', `hubgate-app-${APP_A}`]) {
        const cookie = jar.find((c) => c.name === name);
        assert.ok(cookie, `${name} is set`);
        // gateway.toml's remember_me_lifetime is 20 days.
        assert.ok(days(cookie) > 19 && days(cookie) <= 20, `${name} expires in ${days(cookie)} days`);
      }
      await page.goto(`${gateway.url}/hub/session`);
      assert.match(await page.locator('dl').innerText(), /Remember me\s+yes/);
    } finally {
      await remembered.close();
    }
  });

  test('2. app A shows the user and groups it received from the gateway', async () => {
    assert.equal(await pageA.locator('#app-name').innerText(), APP_A);
    assert.equal(await pageA.locator('#x-forwarded-user').innerText(), 'alice');
    assert.equal(await pageA.locator('#x-forwarded-groups').innerText(), USERS.alice.groups);
    assert.equal(await pageA.locator('#x-forwarded-email').innerText(), USERS.alice.email);
    await screenshot(pageA, 'app');
  });

  test('2. app B opens without signing in again', async () => {
    pageB = await context.newPage();
    const visited = [];
    pageB.on('framenavigated', (frame) => {
      if (frame === pageB.mainFrame()) visited.push(new URL(frame.url()).pathname);
    });
    await pageB.goto(appUrl(APP_B));
    assert.equal(pageB.url(), appUrl(APP_B));
    assert.ok(!visited.includes('/hub/login'), `went through the sign-in page: ${visited}`);
    assert.equal(await pageB.locator('#app-name').innerText(), APP_B);
    assert.equal(await pageB.locator('#x-forwarded-user').innerText(), 'alice');
  });

  test('3. each cookie is scoped to its own path and hidden from page JavaScript', async () => {
    const jar = Object.fromEntries((await context.cookies()).map((c) => [c.name, c]));
    const expected = {
      'hubgate-hub-login': '/hub/',
      'hubgate-session-id': '/',
      [`hubgate-app-${APP_A}`]: `/apps/${APP_A}/`,
      [`hubgate-app-${APP_B}`]: `/apps/${APP_B}/`,
    };
    assert.deepEqual(Object.keys(jar).sort(), Object.keys(expected).sort());
    for (const [name, path] of Object.entries(expected)) {
      assert.equal(jar[name].path, path, `${name} path`);
      assert.equal(jar[name].httpOnly, true, `${name} HttpOnly`);
      assert.equal(jar[name].sameSite, 'Lax', `${name} SameSite`);
      // Without "remember me" every cookie ends with the browser session.
      assert.equal(jar[name].expires, -1, `${name} is a session cookie`);
    }

    // An app's own cookie shows that document.cookie and the app do see cookies, just not ours.
    await context.addCookies([{ name: 'theme', value: 'dark', url: appUrl(APP_A) }]);
    await pageA.reload();
    for (const page of [pageA, pageB]) {
      const visible = await page.evaluate(() => document.cookie);
      assert.doesNotMatch(visible, /hubgate-/, `document.cookie on ${page.url()}`);
    }
    assert.equal(await pageA.evaluate(() => document.cookie), 'theme=dark');
    assert.equal(await pageA.locator('#cookies').innerText(), 'theme=dark');
    assert.equal(await pageB.locator('#cookies').innerText(), '(none)');
  });

  test('3. the session page lists the user, both apps and their tokens', async () => {
    const page = await context.newPage();
    await page.goto(`${gateway.url}/hub/session`);
    assert.equal(await page.locator('h1').innerText(), 'Signed in as alice');
    // The first table: the apps (other devices and recent sign-outs follow in a card of their own).
    const rows = await page.locator('table').first().locator('tbody tr').allInnerTexts();
    assert.equal(rows.length, 2);
    for (const row of rows) assert.match(row, /^(notebook|dashboard)\s+\d+[hms]( \d+[hms])* left$/);
    assert.match(await page.locator('dl').innerText(), /Remember me\s+no/);
    await screenshot(page, 'session');
    await page.close();
  });

  test('4. a WebSocket from app A\'s page carries a message through the gateway', async () => {
    // Pingora 0.9 can tear an upgraded connection down right after its 101 when the upstream
    // answers before the proxy has consumed the upgrade request's empty body
    // (cloudflare/pingora#946; the fixes, #947 and #1016, are not released). The browser then sees
    // the socket close with 1006. The page is reloaded for a new socket when, and only when, that
    // is what happened; anything else fails at once, as do five such tear-downs in a row.
    const status = pageA.locator('#ws-status');
    for (let attempt = 1; ; attempt += 1) {
      await status.filter({ hasText: /open|closed/ }).waitFor();
      if ((await status.innerText()) === 'open') {
        const message = `hello through the gateway (${attempt})`;
        await pageA.locator('#ws-message').fill(message);
        await pageA.locator('#ws-send').click();
        const echoed = pageA.locator('#ws-log li', { hasText: `← ${message}` });
        await echoed.or(status.filter({ hasText: 'closed' })).first().waitFor({ timeout: 5000 });
        if ((await echoed.count()) === 1) return;
      }
      assert.equal(await status.innerText(), 'closed (1006)', 'the WebSocket failed other than by pingora#946');
      assert.ok(attempt < 5, 'the WebSocket was torn down right after its 101 five times in a row');
      console.log(`attempt ${attempt}: the WebSocket closed right after it opened (pingora#946); reloading`);
      await pageA.reload();
    }
  });

  test('5. signing out from app B\'s page lands on the sign-in page saying so', async () => {
    await Promise.all([pageB.waitForURL(/\/hub\/login/), pageB.locator('#logout').click()]);
    const url = new URL(pageB.url());
    assert.equal(url.pathname, '/hub/login');
    assert.equal(url.searchParams.get('reason'), 'logged_out');
    assert.equal(await bannerText(pageB), 'You have signed out of every app.');
    await screenshot(pageB, 'signed-out');
    const left = (await context.cookies()).map((c) => c.name).filter((n) => n.startsWith('hubgate-'));
    // Only the sign-in form's anti-CSRF cookie and the signed-out marker (both at /hub/) remain.
    assert.deepEqual(
      left.filter((n) => n !== 'hubgate-csrf' && n !== 'hubgate-signed-out'),
      [],
      'every session cookie is cleared',
    );
  });

  test(
    '5. the WebSocket opened before sign-out no longer carries messages',
    async () => {
      await pageA.locator('#ws-message').fill('after sign-out');
      await pageA.locator('#ws-send').click();
      await pageA.waitForTimeout(1500);
      const echoed = await pageA.locator('#ws-log li', { hasText: '← after sign-out' }).count();
      assert.equal(echoed, 0, 'the socket opened before sign-out still echoes');
    },
  );

  test('5. app A, reloaded, sends the browser to the sign-in page', async () => {
    await pageA.reload();
    const url = new URL(pageA.url());
    assert.equal(url.pathname, '/hub/login');
    assert.equal(new URL(url.searchParams.get('next'), gateway.url).searchParams.get('app'), APP_A);
    assert.equal(await pageA.locator('h1').innerText(), 'Sign in');
  });

  test(
    '5. that sign-in page says the user signed out',
    async () => {
      assert.equal(await bannerText(pageA), 'You have signed out of every app.');
    },
  );

  test('bob is refused app B with a page that says why', async () => {
    const bobs = await browser.newContext(PHONE);
    try {
      const page = await bobs.newPage();
      await page.goto(appUrl(APP_B));
      const response = await Promise.all([
        page.waitForResponse((r) => new URL(r.url()).pathname === '/hub/authorize'),
        signIn(page, 'bob'),
      ]).then(([r]) => r);
      assert.equal(response.status(), 403);
      assert.equal(await page.locator('h1').innerText(), 'No access to this app');
      assert.match(await page.locator('.lead').innerText(), /signed in as bob.*may not use dashboard/);
      await screenshot(page, 'forbidden-phone');
      // The public path needs no permission at all.
      await page.goto(`${appUrl(APP_B)}public/`);
      assert.equal(await page.locator('#app-name').innerText(), APP_B);
    } finally {
      await bobs.close();
    }
  });

  test('the pages read on a phone', async () => {
    const phone = await browser.newContext(PHONE);
    try {
      const page = await phone.newPage();
      await page.goto(appUrl(APP_A));
      await screenshot(page, 'sign-in-phone');
      await page.getByLabel('User name').fill('alice');
      await page.getByLabel('Password').fill('not the password');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('.banner').waitFor();
      assert.equal(await bannerText(page), 'Wrong user name or password.');
      await screenshot(page, 'wrong-password-phone');
      await signIn(page, 'alice');
      await page.locator('#ws-status', { hasText: /open|closed/ }).waitFor();
      await screenshot(page, 'app-phone');
      await page.goto(`${gateway.url}/hub/session`);
      await screenshot(page, 'session-phone');
      // Nothing wider than the screen: no sideways scrolling on a phone.
      for (const path of ['/hub/session', `/apps/${APP_A}/`, '/hub/login']) {
        await page.goto(gateway.url + path);
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 0, `${path} is ${overflow}px wider than the phone`);
      }
    } finally {
      await phone.close();
    }
  });
});
