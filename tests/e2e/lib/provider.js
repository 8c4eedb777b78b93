// The real OpenID Provider of tests/oidc (panva's oidc-provider, its built-in login form) on a
// free loopback port, registered for one gateway port.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { freePort, OUTPUT, REPO } from './gateway.js';

export const CLIENT_SECRET = 'e2e-client-secret-for-hubgate';

export async function startProvider({ name, gatewayPort }) {
  mkdirSync(OUTPUT, { recursive: true });
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), `hubgate-e2e-op-${name}-`));
  const gateway = `http://127.0.0.1:${gatewayPort}`;
  const config = {
    port,
    key_id: 'k1',
    clients: [
      {
        client_id: 'hubgate',
        client_secret: CLIENT_SECRET,
        redirect_uris: [`${gateway}/hub/oidc/corp/callback`],
        post_logout_redirect_uris: [`${gateway}/hub/login?reason=logged_out`],
        backchannel_logout_uri: `${gateway}/hub/oidc/corp/backchannel-logout`,
        backchannel_logout_session_required: true,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      },
    ],
  };
  const configPath = path.join(dir, 'provider.json');
  writeFileSync(configPath, JSON.stringify(config));
  const log = openSync(path.join(OUTPUT, `provider-${name}.log`), 'w');
  const child = spawn('node', [path.join(REPO, 'tests/oidc/provider.mjs'), configPath], {
    stdio: ['ignore', 'pipe', log],
  });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the OpenID provider did not start')), 20_000);
    child.stdout.on('data', (chunk) => {
      if (String(chunk).includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`the OpenID provider exited (${code})`)));
  });
  process.once('exit', () => child.kill('SIGKILL'));
  const issuer = `http://127.0.0.1:${port}`;
  return {
    issuer,
    /** The `[[hub.providers]]` block for this provider. */
    config: (extra = '') => `[[hub.providers]]
id = "corp"
name = "Corp SSO"
issuer = "${issuer}"
client_id = "hubgate"
client_secret = "${CLIENT_SECRET}"
${extra}
`,
    async stop() {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
