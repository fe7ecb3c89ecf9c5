/**
 * The OpenID Connect adapter against a real OpenID provider (oidc-provider) on loopback:
 * validate's classification field by field (what oidc-provider really answers for each client
 * error is pinned here too), the guard on the issuer URL, and the whole authorization code flow
 * with PKCE over HTTP, without a browser.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeIssuerUrl } from '../../adapters/identity/oidc/client.js';
import { oidcIdentityProvider } from '../../adapters/identity/oidc/index.js';
import { groupsOf, identityOf, rejectedField } from '../../adapters/identity/oidc/mapping.js';
import { ErrorCode } from '../../src/errors.js';
import type { IdentityProviderContext, LoginChecks, SsoVerifyResult } from '../../src/identity/port.js';
import type { UrlPolicy } from '../../src/net/url-policy.js';
import { errorOf } from '../support/errors.js';
import {
  closedPort,
  type OidcAccount,
  type RunningOidcProvider,
  type StaticServer,
  signIn,
  startOidcProvider,
  startSelfSignedServer,
  startSilentServer,
  startStaticServer,
} from '../support/oidc-provider.js';

const LOOPBACK: UrlPolicy = { allowHttp: true, allowPrivateNetworks: true };
const CLIENT_ID = 'cloudpi-chatops';
const CLIENT_SECRET = `secret-${randomBytes(12).toString('hex')}`;
const REDIRECT_URI = 'https://chatops.example.test/auth/sso/callback';

const ALICE: OidcAccount = {
  subject: 'user-alice',
  login: 'alice',
  email: 'alice@example.test',
  emailVerified: true,
  name: 'Alice Admin',
  groups: ['cloudpi-admins', 'finops'],
};
const BOB: OidcAccount = {
  subject: 'user-bob',
  login: 'bob',
  email: 'bob@example.test',
  emailVerified: false,
  name: 'Bob Builder',
  groups: 'engineering',
};

function provider(issuerUrl: string, overrides: Partial<IdentityProviderContext> = {}) {
  return oidcIdentityProvider.create({
    settings: { issuerUrl, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
    urlPolicy: LOOPBACK,
    timeoutMs: 5_000,
    ...overrides,
  });
}

function withSettings(issuerUrl: string, clientId: string, clientSecret: string, policy = LOOPBACK) {
  return oidcIdentityProvider.create({
    settings: { issuerUrl, clientId, clientSecret },
    urlPolicy: policy,
    timeoutMs: 5_000,
  });
}

function checks(): LoginChecks {
  return {
    redirectUri: REDIRECT_URI,
    state: randomBytes(16).toString('base64url'),
    nonce: randomBytes(16).toString('base64url'),
    codeVerifier: randomBytes(32).toString('base64url'),
  };
}

function failure(result: SsoVerifyResult) {
  if (result.ok) throw new Error(`expected a failure, got ${JSON.stringify(result)}`);
  return result;
}

let op: RunningOidcProvider;
beforeAll(async () => {
  op = await startOidcProvider({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    redirectUris: [REDIRECT_URI],
    accounts: [ALICE, BOB],
  });
});
afterAll(async () => {
  await op?.stop();
});

describe('what oidc-provider answers for client errors (the heuristics rest on this)', () => {
  async function tokenRequest(clientId: string, secret: string) {
    const response = await fetch(`${op.issuer}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: 'cloudpi-validation-x',
        redirect_uri: 'https://cloudpi.invalid/sso/validate',
        code_verifier: 'a'.repeat(43),
      }),
    });
    return {
      status: response.status,
      challenge: response.headers.get('www-authenticate'),
      body: await response.json(),
    };
  }

  it('answers 401 invalid_client "client authentication failed" alike for an unknown client and a wrong secret', async () => {
    const unknown = await tokenRequest('nobody', CLIENT_SECRET);
    const wrongSecret = await tokenRequest(CLIENT_ID, 'wrong');
    for (const answer of [unknown, wrongSecret]) {
      expect(answer.status).toBe(401);
      expect(answer.body).toEqual({
        error: 'invalid_client',
        error_description: 'client authentication failed',
      });
      // With Basic authentication the same error also comes as a WWW-Authenticate challenge.
      expect(answer.challenge).toBe(
        `Basic realm="${op.issuer}", error="invalid_client", error_description="client authentication failed"`,
      );
    }
    // The accepted client with a made-up code: the code is what is wrong.
    expect(await tokenRequest(CLIENT_ID, CLIENT_SECRET)).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'grant request is invalid' },
    });
  });

  it('tells them apart at the authorization endpoint: "client is invalid" vs a redirect_uri error', async () => {
    const probe = async (clientId: string) => {
      const url = new URL(`${op.issuer}/auth`);
      url.search = new URLSearchParams({
        client_id: clientId,
        response_type: 'code',
        scope: 'openid',
        redirect_uri: 'https://cloudpi.invalid/sso/validate',
        code_challenge: 'a'.repeat(43),
        code_challenge_method: 'S256',
      }).toString();
      const response = await fetch(url, { redirect: 'manual' });
      return { status: response.status, text: await response.text() };
    };
    const unknown = await probe('nobody');
    expect(unknown.status).toBe(400);
    expect(unknown.text).toContain('invalid_client');
    expect(unknown.text).toContain('client is invalid');
    const known = await probe(CLIENT_ID);
    expect(known.status).toBe(400);
    expect(known.text).toContain('invalid_redirect_uri');
    expect(known.text).toContain(
      'redirect_uri did not match any of the client&#39;s registered redirect_uris',
    );
  });
});

describe('validate', () => {
  it('discovers the provider and checks the client at the token endpoint', async () => {
    const before = op.requests.length;
    const result = await provider(op.issuer).validate();
    expect(result).toEqual({
      ok: true,
      issuer: op.issuer,
      authorizationEndpoint: `${op.issuer}/auth`,
      summary: `Signed in to ${op.issuer} as client ${CLIENT_ID}`,
    });
    const sent = op.requests.slice(before);
    expect(sent.map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /.well-known/openid-configuration',
      'POST /token',
    ]);
    // client_secret_basic, the provider's first listed secret method.
    expect(sent[1]!.headers.authorization).toMatch(/^Basic /);
  });

  it('accepts a pasted discovery document URL as the issuer', async () => {
    expect(normalizeIssuerUrl(` ${op.issuer}/.well-known/openid-configuration `)).toBe(op.issuer);
    expect(await provider(`${op.issuer}/.well-known/openid-configuration`).validate()).toMatchObject({
      ok: true,
    });
  });

  it('a wrong Client ID is "Invalid Client ID" at clientId', async () => {
    const result = failure(await withSettings(op.issuer, 'not-a-client', CLIENT_SECRET).validate());
    expect(result.code).toBe(ErrorCode.INVALID_CREDENTIALS);
    expect(result.field).toBe('clientId');
    expect(result.message).toBe(
      `Invalid Client ID: ${op.issuer} does not know the client "not-a-client" (token endpoint: invalid_client: client authentication failed; the authorization endpoint does not know it either). Copy the Client ID (Application ID) of the app registered for CloudPi ChatOps at your identity provider.`,
    );
    expect(result.message).not.toContain(CLIENT_SECRET);
  });

  it('a wrong secret is "Invalid client secret" at clientSecret, and the secret is never shown', async () => {
    const wrong = `wrong-${randomBytes(8).toString('hex')}`;
    const result = failure(await withSettings(op.issuer, CLIENT_ID, wrong).validate());
    expect(result.code).toBe(ErrorCode.INVALID_CREDENTIALS);
    expect(result.field).toBe('clientSecret');
    expect(result.message).toMatch(
      new RegExp(
        `^Invalid client secret: ${op.issuer.replace(/\./g, '\\.')} knows the client "${CLIENT_ID}" but refused its secret \\(token endpoint: invalid_client: client authentication failed\\)\\. `,
      ),
    );
    expect(result.message).not.toContain(wrong);
  });

  it('finds the client authentication method a strict provider registered (client_secret_post)', async () => {
    const strict = await startOidcProvider({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      redirectUris: [REDIRECT_URI],
      accounts: [ALICE],
      tokenEndpointAuthMethod: 'client_secret_post',
      strictClientAuth: true,
    });
    try {
      expect(await provider(strict.issuer).validate()).toMatchObject({ ok: true });
      const tokenCalls = strict.requests.filter((r) => r.path === '/token');
      expect(tokenCalls.map((r) => (r.headers.authorization ? 'basic' : 'post'))).toEqual(['basic', 'post']);
      // And the sign-in, with the same fallback on the code exchange.
      const sso = provider(strict.issuer);
      const login = checks();
      const redirect = await signIn(await sso.loginUrl(login), { login: 'alice' });
      expect(await sso.callback(redirect, login)).toMatchObject({
        subject: ALICE.subject,
        email: ALICE.email,
      });
    } finally {
      await strict.stop();
    }
  });

  it('a closed port: Authorization endpoint unreachable, connection refused', async () => {
    const port = await closedPort();
    const result = failure(await provider(`http://127.0.0.1:${port}`).validate());
    expect(result).toMatchObject({ code: ErrorCode.UNREACHABLE, field: 'issuerUrl' });
    expect(result.message).toBe(
      `Authorization endpoint unreachable: connection refused by 127.0.0.1:${port}. Check the issuer URL's host and port, and that the identity provider is running.`,
    );
  });

  it('a host that does not exist: Authorization endpoint unreachable, host not found', async () => {
    const result = failure(
      await withSettings('https://sso.cloudpi-test.invalid', CLIENT_ID, CLIENT_SECRET, {
        allowHttp: false,
        allowPrivateNetworks: false,
      }).validate(),
    );
    expect(result).toMatchObject({ code: ErrorCode.UNREACHABLE, field: 'issuerUrl' });
    expect(result.message).toMatch(
      /^Authorization endpoint unreachable: host not found: sso\.cloudpi-test\.invalid does not resolve \((ENOTFOUND|EAI_AGAIN)\)\. Check the spelling of the issuer URL\.$/,
    );
  });

  it('a server that never answers: Authorization endpoint unreachable, timed out', async () => {
    const silent = await startSilentServer();
    try {
      const started = Date.now();
      const result = failure(await provider(silent.url, { timeoutMs: 400 }).validate());
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(result).toMatchObject({ code: ErrorCode.UNREACHABLE, field: 'issuerUrl' });
      expect(result.message).toBe(
        `Authorization endpoint unreachable: ${new URL(silent.url).host} timed out (no answer within 0.4 s). Check the issuer URL, and that the identity provider is up and reachable from this server.`,
      );
      expect(silent.requests).toEqual(['/.well-known/openid-configuration']);
    } finally {
      await silent.stop();
    }
  });

  it('a self-signed certificate: TLS_ERROR naming it (verification stays on)', async () => {
    const tls = await startSelfSignedServer();
    try {
      const result = failure(await provider(tls.url).validate());
      expect(result).toMatchObject({ code: ErrorCode.TLS_ERROR, field: 'issuerUrl' });
      expect(result.message).toMatch(
        /^Authorization endpoint unreachable: TLS certificate problem with 127\.0\.0\.1:\d+: the certificate is self-signed \(DEPTH_ZERO_SELF_SIGNED_CERT\)\. /,
      );
      expect(tls.requests).toEqual([]);
    } finally {
      await tls.stop();
    }
  });

  describe('documents that are not an OpenID provider', () => {
    let docs: StaticServer;
    const document = (issuer: string, without?: string) => {
      const doc: Record<string, string> = {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
      };
      if (without) delete doc[without];
      return doc;
    };
    beforeAll(async () => {
      docs = await startStaticServer({
        '/html/.well-known/openid-configuration': { body: '<html><body>Sign in</body></html>' },
        '/broken-json/.well-known/openid-configuration': {
          contentType: 'application/json',
          body: '{"issuer": ',
        },
        '/no-jwks/.well-known/openid-configuration': {
          body: (base: string) => document(`${base}/no-jwks`, 'jwks_uri'),
        },
        '/no-token/.well-known/openid-configuration': {
          body: (base: string) => document(`${base}/no-token`, 'token_endpoint'),
        },
        '/no-issuer/.well-known/openid-configuration': {
          body: (base: string) => document(`${base}/no-issuer`, 'issuer'),
        },
        '/other/.well-known/openid-configuration': {
          body: () => document('https://login.example.test/tenant-b'),
        },
      });
    });
    afterAll(async () => {
      await docs.stop();
    });
    const messageFor = async (path: string) => {
      const result = failure(await provider(`${docs.url}${path}`).validate());
      expect(result).toMatchObject({ code: ErrorCode.INVALID_URL, field: 'issuerUrl' });
      return result.message;
    };

    it('HTML instead of JSON', async () => {
      expect(await messageFor('/html')).toMatch(
        new RegExp(
          `^Authorization endpoint unreachable: ${docs.url}/html is not an OpenID provider: its discovery document ${docs.url}/html/\\.well-known/openid-configuration is not JSON \\(content-type text/html\\)\\. Check the issuer URL`,
        ),
      );
      expect(await messageFor('/broken-json')).toContain('is not an OpenID provider: its discovery document');
      expect(await messageFor('/broken-json')).toContain(
        `its discovery document ${docs.url}/broken-json/.well-known/openid-configuration is not valid JSON.`,
      );
    });

    it('a document without jwks_uri, token_endpoint or issuer says which', async () => {
      expect(await messageFor('/no-jwks')).toContain(
        `Authorization endpoint unreachable: ${docs.url}/no-jwks is not an OpenID provider: its discovery document lacks jwks_uri.`,
      );
      expect(await messageFor('/no-token')).toContain('its discovery document lacks token_endpoint.');
      expect(await messageFor('/no-issuer')).toContain(
        `its discovery document ${docs.url}/no-issuer/.well-known/openid-configuration lacks issuer.`,
      );
    });

    it('a document whose issuer is not the URL entered', async () => {
      expect(await messageFor('/other')).toBe(
        `Authorization endpoint unreachable: the discovery document at ${docs.url}/other/.well-known/openid-configuration states the issuer https://login.example.test/tenant-b, which does not match the URL entered (${docs.url}/other). Enter the issuer exactly as the provider states it: https://login.example.test/tenant-b.`,
      );
    });

    it('no discovery document at all (404)', async () => {
      expect(await messageFor('/nothing-here')).toMatch(
        new RegExp(
          `^Authorization endpoint unreachable: no discovery document at ${docs.url}/nothing-here/\\.well-known/openid-configuration \\(HTTP 404\\)\\. Check the issuer URL`,
        ),
      );
    });
  });

  it('refuses an http issuer when the policy forbids http, without connecting', async () => {
    const before = op.requests.length;
    const result = failure(
      await withSettings(op.issuer, CLIENT_ID, CLIENT_SECRET, {
        allowHttp: false,
        allowPrivateNetworks: true,
      }).validate(),
    );
    expect(result).toMatchObject({ code: ErrorCode.INVALID_URL, field: 'issuerUrl' });
    expect(result.message).toBe(
      'Authorization endpoint unreachable: only https:// URLs are allowed. Use the https address of the server (the operator can allow plain http with CLOUDPI_ALLOW_HTTP=true).',
    );
    expect(op.requests.length).toBe(before);
  });

  it('refuses a private address when private networks are not allowed, without connecting', async () => {
    const before = op.requests.length;
    const result = failure(
      await withSettings(op.issuer, CLIENT_ID, CLIENT_SECRET, {
        allowHttp: true,
        allowPrivateNetworks: false,
      }).validate(),
    );
    expect(result).toMatchObject({ code: ErrorCode.INVALID_URL, field: 'issuerUrl' });
    expect(result.message).toMatch(
      /^Authorization endpoint unreachable: 127\.0\.0\.1 is a private, loopback or link-local address, which this server does not connect to\. .*CLOUDPI_ALLOW_PRIVATE_NETWORKS=true/,
    );
    expect(op.requests.length).toBe(before);
  });
});

describe('sign-in: authorization code flow with PKCE', () => {
  it('builds the authorization URL: code, PKCE S256, state, nonce, scope openid email profile', async () => {
    const login = checks();
    const url = await provider(op.issuer).loginUrl(login);
    expect(url.origin + url.pathname).toBe(`${op.issuer}/auth`);
    const params = Object.fromEntries(url.searchParams);
    const { createHash } = await import('node:crypto');
    expect(params).toEqual({
      client_id: CLIENT_ID,
      response_type: 'code',
      scope: 'openid email profile',
      redirect_uri: REDIRECT_URI,
      state: login.state,
      nonce: login.nonce,
      code_challenge: createHash('sha256').update(login.codeVerifier).digest('base64url'),
      code_challenge_method: 'S256',
    });
  });

  it('signs in over HTTP, returns the identity, and refuses the same callback again (code replay)', async () => {
    const sso = provider(op.issuer);
    const login = checks();
    const redirect = await signIn(await sso.loginUrl(login), { login: 'alice' });
    expect(redirect.origin + redirect.pathname).toBe(REDIRECT_URI);
    expect(redirect.searchParams.get('state')).toBe(login.state);
    expect(redirect.searchParams.get('code')).toBeTruthy();
    expect(redirect.searchParams.get('iss')).toBe(op.issuer);

    const before = op.requests.length;
    const started = Date.now();
    const identity = await sso.callback(redirect, login);
    expect(identity).toMatchObject({
      subject: ALICE.subject,
      issuer: op.issuer,
      email: ALICE.email,
      emailVerified: true,
      name: ALICE.name,
      groups: ['cloudpi-admins', 'finops'],
    });
    expect(identity.refreshToken).toEqual(expect.any(String));
    expect(identity.expiresAt.getTime()).toBeGreaterThan(started + 3_500_000);
    expect(identity.expiresAt.getTime()).toBeLessThan(started + 3_700_000);
    // oidc-provider keeps the scope claims out of the ID token of a code flow: they came from
    // userinfo. The ID token's signature was checked against the JWKS.
    expect(op.requests.slice(before).map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /token',
      'GET /jwks',
      'GET /me',
    ]);

    const replay = await errorOf(provider(op.issuer).callback(redirect, login));
    expect(replay.code).toBe(ErrorCode.UNAUTHENTICATED);
    expect(replay.details.reason).toBe('invalid_grant');
    expect(replay.message).toBe(
      'Sign-in failed: the identity provider refused the authorization code (invalid_grant: grant request is invalid): it was already used (a replayed or reloaded sign-in link), has expired, or belongs to another sign-in. Start the sign-in again from the chat.',
    );
  });

  it('refuses a callback with another state before spending the code', async () => {
    const sso = provider(op.issuer);
    const login = checks();
    const redirect = await signIn(await sso.loginUrl(login), { login: 'alice' });
    const forged = new URL(redirect);
    forged.searchParams.set('state', 'someone-elses-state');
    const before = op.requests.length;
    const error = await errorOf(sso.callback(forged, login));
    expect(error.code).toBe(ErrorCode.UNAUTHENTICATED);
    expect(error.details.reason).toBe('state_mismatch');
    expect(error.message).toMatch(
      /^Sign-in failed: the state in the redirect does not match this sign-in \(state mismatch\)/,
    );
    expect(op.requests.length).toBe(before);
    // The genuine redirect still works: the forged one never reached the token endpoint.
    expect(await sso.callback(redirect, login)).toMatchObject({ subject: ALICE.subject });
  });

  it('refuses an ID token with another nonce', async () => {
    const sso = provider(op.issuer);
    const login = checks();
    const redirect = await signIn(await sso.loginUrl(login), { login: 'alice' });
    const error = await errorOf(sso.callback(redirect, { ...login, nonce: 'another-sign-ins-nonce' }));
    expect(error.code).toBe(ErrorCode.UNAUTHENTICATED);
    expect(error.details.reason).toBe('nonce_mismatch');
    expect(error.message).toBe(
      "Sign-in failed: the ID token's nonce does not match this sign-in (nonce mismatch): the token was issued for another sign-in or replayed. Start the sign-in again from the chat.",
    );
  });

  it('refuses a wrong PKCE verifier', async () => {
    const sso = provider(op.issuer);
    const login = checks();
    const redirect = await signIn(await sso.loginUrl(login), { login: 'alice' });
    const error = await errorOf(
      sso.callback(redirect, { ...login, codeVerifier: randomBytes(32).toString('base64url') }),
    );
    expect(error.code).toBe(ErrorCode.UNAUTHENTICATED);
    expect(error.details.reason).toBe('invalid_grant');
  });

  it('an error redirect from the IdP (the user cancelled) names error=access_denied', async () => {
    const sso = provider(op.issuer);
    const login = checks();
    const redirect = await signIn(await sso.loginUrl(login), { cancel: true });
    expect(redirect.searchParams.get('error')).toBe('access_denied');
    const error = await errorOf(sso.callback(redirect, login));
    expect(error.code).toBe(ErrorCode.UNAUTHENTICATED);
    expect(error.details.reason).toBe('access_denied');
    expect(error.message).toMatch(
      /^Sign-in failed: the identity provider returned error=access_denied \(End-User aborted interaction\)\. The sign-in was cancelled or refused/,
    );
  });

  it('reads claims from the ID token when the provider puts them there (no userinfo), a string groups claim too', async () => {
    const rich = await startOidcProvider({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      redirectUris: [REDIRECT_URI],
      accounts: [BOB],
      claimsInIdToken: true,
      groupsClaim: 'roles',
    });
    try {
      const sso = provider(rich.issuer, { groupsClaim: 'roles' });
      const login = checks();
      const redirect = await signIn(await sso.loginUrl(login), { login: 'bob' });
      const identity = await sso.callback(redirect, login);
      expect(identity).toMatchObject({
        subject: BOB.subject,
        email: BOB.email,
        emailVerified: false,
        name: BOB.name,
        groups: ['engineering'],
      });
      expect(rich.requests.some((r) => r.path.startsWith('/me'))).toBe(false);
    } finally {
      await rich.stop();
    }
  });

  it('a failing userinfo endpoint (needed for the email) is UNAUTHENTICATED naming it', async () => {
    const broken = await startOidcProvider({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      redirectUris: [REDIRECT_URI],
      accounts: [ALICE],
      failUserinfo: true,
    });
    try {
      const sso = provider(broken.issuer);
      const login = checks();
      const redirect = await signIn(await sso.loginUrl(login), { login: 'alice' });
      const error = await errorOf(sso.callback(redirect, login));
      expect(error).toMatchObject({ code: ErrorCode.UNAUTHENTICATED, details: { reason: 'userinfo' } });
      expect(error.message).toMatch(
        /^Sign-in failed: the identity provider's userinfo endpoint did not return your profile \(invalid_token: invalid token provided\)\. /,
      );
    } finally {
      await broken.stop();
    }
  });

  it('loginUrl and callback throw when the issuer is unreachable', async () => {
    const port = await closedPort();
    const sso = provider(`http://127.0.0.1:${port}`);
    const login = checks();
    const loginError = await errorOf(sso.loginUrl(login));
    expect(loginError).toMatchObject({ code: ErrorCode.UNREACHABLE, details: { field: 'issuerUrl' } });
    expect(loginError.message).toMatch(/^Authorization endpoint unreachable: connection refused/);
    const callbackError = await errorOf(
      sso.callback(new URL(`${REDIRECT_URI}?code=x&state=${login.state}`), login),
    );
    expect(callbackError).toMatchObject({
      code: ErrorCode.UNAUTHENTICATED,
      details: { reason: 'unreachable' },
    });
    expect(callbackError.message).toMatch(
      /^Sign-in failed: Authorization endpoint unreachable: connection refused/,
    );
  });
});

describe('mapping', () => {
  it('reads groups from a string or an array', () => {
    expect(groupsOf('admins')).toEqual(['admins']);
    expect(groupsOf(['a', 2, null, 'b'])).toEqual(['a', '2', 'b']);
    expect(groupsOf(undefined)).toEqual([]);
  });

  it('prefers the ID token, completes from userinfo, and follows a dotted claim name', () => {
    const identity = identityOf({
      claims: { sub: 's', iss: 'https://idp.example', exp: 2_000_000_000, realm_access: { roles: ['r1'] } },
      userinfo: { sub: 's', email: 'u@example.test', email_verified: 'true', name: 'U' },
      groupsClaim: 'realm_access.roles',
    });
    expect(identity).toEqual({
      subject: 's',
      issuer: 'https://idp.example',
      email: 'u@example.test',
      emailVerified: true,
      name: 'U',
      groups: ['r1'],
      expiresAt: new Date(2_000_000_000_000),
    });
  });

  it('tells a wrong Client ID from a wrong secret by the providers own words', () => {
    const field = (error: string, description: string, status = 401) =>
      rejectedField({ error, description, status }, undefined).field;
    // Entra ID
    expect(
      field(
        'unauthorized_client',
        "AADSTS700016: Application with identifier 'x' was not found in the directory 'y'.",
        400,
      ),
    ).toBe('clientId');
    expect(field('invalid_client', 'AADSTS7000215: Invalid client secret provided.')).toBe('clientSecret');
    expect(
      field('invalid_client', 'AADSTS7000222: The provided client secret keys for app are expired.'),
    ).toBe('expiredSecret');
    // Okta
    expect(field('invalid_client', 'The client secret supplied for a confidential client is invalid.')).toBe(
      'clientSecret',
    );
    expect(
      field(
        'invalid_client',
        'Client authentication failed. Either the client or the client credentials are invalid.',
      ),
    ).toBe('either');
    // Google
    expect(field('invalid_client', 'The OAuth client was not found.')).toBe('clientId');
    // Keycloak and oidc-provider do not say which.
    expect(field('unauthorized_client', 'Invalid client or Invalid client credentials')).toBe('either');
    expect(field('invalid_client', 'client authentication failed')).toBe('either');
  });
});
