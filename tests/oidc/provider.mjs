// The OpenID Provider hubgate's tests sign in against: panva's oidc-provider (OpenID Certified),
// with its built-in login form, back-channel logout and RP-initiated logout.
//
//   node provider.mjs CONFIG.json
//
// CONFIG.json: { "port": 0, "clients": [ <client metadata> ], "key_id": "k1" }. The provider
// listens on 127.0.0.1:<port>, its issuer is http://127.0.0.1:<port>, and it prints one line,
// `listening <issuer>`, once it serves. Every account exists (the login form takes any name and
// any password); the ones below carry groups and an email. Consent is granted without asking:
// the tests play a first-party deployment.
import { readFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const accounts = {
  alice: { email: 'alice@example.com', email_verified: true, groups: ['ops', 'staff'], name: 'Alice Ops' },
  carol: { email: 'carol@other.org', email_verified: true, groups: ['research'], name: 'Carol Research' },
  dave: { email: 'dave@example.com', email_verified: false, groups: ['staff'], name: 'Dave Unverified' },
};

// Accounts the tests disabled at the provider (POST /__test/disable?account=NAME): they no longer
// exist for the provider, so their refresh tokens are refused with invalid_grant.
const disabled = new Set();

// A fresh signing key per start: restarting with another key_id is a key rotation at the provider.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: config.key_id || 'k1', use: 'sig', alg: 'RS256' };

const port = config.port;
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: config.clients,
  jwks: { keys: [jwk] },
  cookies: { keys: ['hubgate-test-provider-cookie-key'] },
  pkce: { required: () => true },
  // Refresh tokens for every code flow of a client allowed them, as Keycloak does by default
  // (oidc-provider's own default wants offline_access with prompt=consent).
  issueRefreshToken: (ctx, client) => client.grantTypeAllowed('refresh_token'),
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name', 'groups'],
    email: ['email', 'email_verified'],
  },
  features: {
    devInteractions: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  // The provider guards its outgoing calls (back-channel logout) against loopback addresses;
  // here every relying party is on loopback, so the calls go out without that dispatcher.
  fetch(url, options) {
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
  async findAccount(ctx, id) {
    if (disabled.has(id)) return undefined;
    const known = accounts[id] || {};
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, ...known };
      },
    };
  },
  // First-party deployment: every requested scope and claim is granted without a consent page.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const grant = await ctx.oidc.provider.Grant.find(grantId);
      if (grant) return grant;
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid offline_access profile email');
    grant.addOIDCClaims(['preferred_username', 'name', 'groups', 'email', 'email_verified']);
    await grant.save();
    return grant;
  },
});
// Loopback over plain HTTP is what the tests run on; a real provider is behind HTTPS.
provider.proxy = false;

// The tests' own control: disable an account, as an administrator at the provider would.
provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && ctx.path === '/__test/disable') {
    disabled.add(ctx.query.account);
    ctx.status = 204;
    return;
  }
  await next();
});

// What the tests read when a back-channel call went wrong.
provider.on('backchannel.error', (ctx, err, client) => {
  process.stderr.write(`backchannel.error ${client.clientId}: ${err.message}\n`);
});
provider.on('backchannel.success', (ctx, client) => {
  process.stderr.write(`backchannel.success ${client.clientId}\n`);
});
provider.on('end_session.error', (ctx, err) => {
  process.stderr.write(`end_session.error: ${err.message} ${err.error_description || ''}\n`);
});

const server = provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${issuer}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
