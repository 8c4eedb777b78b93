// Headless Chromium from the distribution (playwright-core cannot download its own browser here),
// and the helpers every test uses: sign in, read the banner, take screenshots.

import path from 'node:path';
import { chromium } from 'playwright-core';

import { OUTPUT, USERS } from './gateway.js';

export const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
export const DESKTOP = { viewport: { width: 1024, height: 720 } };

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    // Without these, Chromium keeps calling out to Google's services, which a closed network
    // refuses many times a second; the QUIC and sandbox flags match how it runs as root here.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export async function screenshot(page, name) {
  const file = path.join(OUTPUT, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Fills and submits the sign-in form the page is on; resolves once the next page has loaded. */
export async function signIn(page, user, { rememberMe = false } = {}) {
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(USERS[user].password);
  if (rememberMe) await page.getByLabel('Remember me on this device').check();
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign in' }).click()]);
}

export async function bannerText(page) {
  const banner = page.locator('.banner');
  return (await banner.count()) ? (await banner.innerText()).trim() : null;
}
