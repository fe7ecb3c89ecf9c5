/**
 * A real OpenID provider on loopback for the OIDC adapter's tests: oidc-provider (panva's
 * certified implementation) with one confidential client, a few accounts and a browserless
 * interaction flow, plus the misbehaving peers the error mapping needs (broken discovery
 * documents, a server that never answers, a self-signed TLS server, a closed port).
 *
 * The interaction routes are ours (devInteractions is off): GET /interaction/:uid renders a tiny
 * form, POST /interaction/:uid/login finishes login and consent in one step, POST
 * /interaction/:uid/abort ends it with error=access_denied. `signIn()` drives them with fetch and
 * a small cookie jar, from the authorization URL to the redirect back to the client.
 */
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { generate as generateCertificate } from 'selfsigned';

export interface OidcAccount {
  readonly subject: string;
  /** What a test types into the login form (defaults to the subject). */
  readonly login?: string;
  readonly email?: string;
  readonly emailVerified?: boolean;
  readonly name?: string;
  /** Carried in the groups claim as given: a string or an array. */
  readonly groups?: string | readonly string[];
}

export interface OidcProviderOptions {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly redirectUris: readonly string[];
  /** How the client authenticates at the token endpoint (default client_secret_basic). */
  readonly tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post';
  readonly accounts: readonly OidcAccount[];
  /** The claim carrying the groups (default "groups"), released with the profile scope. */
  readonly groupsClaim?: string;
  /**
   * Put the scope claims (email, profile, groups) in the ID token too. By default oidc-provider
   * conforms to OpenID Connect Core 5.4: with response_type=code they only come from userinfo.
   */
  readonly claimsInIdToken?: boolean;
  /** ID token lifetime in seconds (default 3600). */
  readonly idTokenTtlSeconds?: number;
  /**
   * Refuse client authentication by the other secret method, as Okta and Auth0 do (oidc-provider
   * itself accepts client_secret_basic and client_secret_post alike for either registration):
   * 401 invalid_client "client authentication failed".
   */
  readonly strictClientAuth?: boolean;
  /** Answer userinfo with 401 invalid_token (a provider that does not honour its own access tokens). */
  readonly failUserinfo?: boolean;
}

export interface RunningOidcProvider {
  /** http://127.0.0.1:<port>, the issuer identifier. */
  readonly issuer: string;
  readonly port: number;
  /** Every request the provider received (method and path), for assertions on the wire. */
  readonly requests: { method: string; path: string; headers: IncomingMessage['headers'] }[];
  stop(): Promise<void>;
}

// oidc-provider ships no type declarations; these are the few members the support code uses.
interface OidcInteraction {
  readonly uid: string;
  readonly prompt: { readonly name: string; readonly details: Record<string, unknown> };
  readonly params: Record<string, unknown>;
  readonly session?: { readonly accountId?: string };
}
interface OidcGrant {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: readonly string[]): void;
  save(): Promise<string>;
}
interface OidcProvider {
  proxy: boolean;
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<OidcInteraction>;
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>;
  Grant: new (properties: { accountId: string; clientId: string }) => OidcGrant;
  on(event: string, listener: (...args: unknown[]) => void): void;
}
interface OidcProviderModule {
  Provider: new (issuer: string, configuration: Record<string, unknown>) => OidcProvider;
}
type MemoryAdapterModule = { createMemoryAdapter(clockTolerance?: number): unknown };

// Imported by a computed name: the package has no declarations, so a literal import would not type-check.
const PACKAGE = 'oidc-provider';

async function loadOidcProvider(): Promise<{ module: OidcProviderModule; adapters: MemoryAdapterModule }> {
  const module = (await import(PACKAGE)) as OidcProviderModule;
  // The exported in-memory adapter factory: the same storage as the default, without its warning.
  const adapters = (await import(`${PACKAGE}/lib/adapters/memory_adapter.js`)) as MemoryAdapterModule;
  return { module, adapters };
}

function listen(server: Server, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve((server.address() as AddressInfo).port));
  });
}

/** Closes the server and every socket still open on it (keep-alive, hung requests). */
function closer(server: Server): () => Promise<void> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function sendHtml(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!DOCTYPE html><html><body>${body}</body></html>`);
}

export async function startOidcProvider(options: OidcProviderOptions): Promise<RunningOidcProvider> {
  const { module, adapters } = await loadOidcProvider();
  const groupsClaim = options.groupsClaim ?? 'groups';
  const server = createHttpServer();
  const port = await listen(server);
  const issuer = `http://127.0.0.1:${port}`;

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
  const byLogin = new Map<string, OidcAccount>();
  const bySubject = new Map<string, OidcAccount>();
  for (const account of options.accounts) {
    byLogin.set(account.login ?? account.subject, account);
    bySubject.set(account.subject, account);
  }

  const provider = new module.Provider(issuer, {
    adapter: adapters.createMemoryAdapter(),
    clients: [
      {
        client_id: options.clientId,
        client_secret: options.clientSecret,
        redirect_uris: [...options.redirectUris],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: options.tokenEndpointAuthMethod ?? 'client_secret_basic',
      },
    ],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', groupsClaim],
      [groupsClaim]: [groupsClaim],
    },
    conformIdTokenClaims: !options.claimsInIdToken,
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    // A refresh token for every code grant of a client allowed the grant (default: only with offline_access).
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) =>
      client.grantTypeAllowed('refresh_token'),
    findAccount: async (_ctx: unknown, sub: string) => {
      const account = bySubject.get(sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        claims: async () => ({
          sub,
          ...(account.email === undefined ? {} : { email: account.email }),
          ...(account.emailVerified === undefined ? {} : { email_verified: account.emailVerified }),
          ...(account.name === undefined ? {} : { name: account.name }),
          ...(account.groups === undefined ? {} : { [groupsClaim]: account.groups }),
        }),
      };
    },
    // The defaults work but print "you SHOULD change it" notices; these keep test output quiet.
    renderError: async (ctx: { type: string; body: string }, out: Record<string, string>) => {
      ctx.type = 'html';
      ctx.body = `<!DOCTYPE html><html><body>${Object.entries(out)
        .map(([key, value]) => `<pre><strong>${key}</strong>: ${escapeHtml(String(value))}</pre>`)
        .join('')}</body></html>`;
    },
    clientBasedCORS: () => false,
    ttl: {
      AccessToken: 600,
      AuthorizationCode: 60,
      IdToken: options.idTokenTtlSeconds ?? 3600,
      Interaction: 600,
      Session: 600,
      Grant: 600,
      RefreshToken: 3600,
    },
  });
  // Errors the provider answers with are the point of many tests; nothing to print.
  provider.on('server_error', () => {});

  const requests: RunningOidcProvider['requests'] = [];
  const handle = provider.callback();

  async function interaction(req: IncomingMessage, res: ServerResponse, uid: string, action?: string) {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) return sendHtml(res, 400, '<p>interaction mismatch</p>');
    if (req.method === 'GET') {
      const what = details.prompt.name === 'login' ? 'login' : 'confirm';
      return sendHtml(
        res,
        200,
        `<form method="post" action="/interaction/${uid}/${what}">` +
          (what === 'login' ? '<input name="login" autofocus>' : '') +
          `<button>${what === 'login' ? 'Sign in' : 'Continue'}</button></form>` +
          `<form method="post" action="/interaction/${uid}/abort"><button>Cancel</button></form>`,
      );
    }
    if (action === 'abort') {
      return provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'End-User aborted interaction' },
        { mergeWithLastSubmission: false },
      );
    }
    const form = new URLSearchParams(await readBody(req));
    const clientId = String(details.params.client_id);
    let accountId = details.session?.accountId;
    const result: Record<string, unknown> = {};
    if (action === 'login') {
      const account = byLogin.get(form.get('login') ?? '');
      if (!account) return sendHtml(res, 200, '<p>Unknown user</p>');
      accountId = account.subject;
      result.login = { accountId };
    }
    if (!accountId) return sendHtml(res, 400, '<p>no session</p>');
    // Consent in the same step: a grant for everything the client asked for.
    const grant = new provider.Grant({ accountId, clientId });
    grant.addOIDCScope(String(details.params.scope ?? 'openid'));
    const missingClaims = details.prompt.details.missingOIDCClaims;
    if (Array.isArray(missingClaims)) grant.addOIDCClaims(missingClaims as string[]);
    result.consent = { grantId: await grant.save() };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers });
    const match = /^\/interaction\/([^/?]+)(?:\/(login|confirm|abort))?(?:\?.*)?$/.exec(req.url ?? '');
    if (match) {
      interaction(req, res, match[1]!, match[2]).catch((error: unknown) => {
        if (!res.headersSent) sendHtml(res, 400, `<p>${escapeHtml(String(error))}</p>`);
        else res.end();
      });
      return;
    }
    if (options.failUserinfo && req.url?.split('?')[0] === '/me') {
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': `Bearer realm="${issuer}", error="invalid_token", error_description="invalid token provided"`,
      });
      res.end(JSON.stringify({ error: 'invalid_token', error_description: 'invalid token provided' }));
      return;
    }
    if (options.strictClientAuth && req.method === 'POST' && req.url?.split('?')[0] === '/token') {
      const registered = options.tokenEndpointAuthMethod ?? 'client_secret_basic';
      const used = req.headers.authorization === undefined ? 'client_secret_post' : 'client_secret_basic';
      if (used !== registered) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ error: 'invalid_client', error_description: 'client authentication failed' }),
        );
        return;
      }
    }
    handle(req, res);
  });
  const close = closer(server);
  return { issuer, port, requests, stop: close };
}

// ---------------------------------------------------------------------------------------------
// Driving the flow without a browser.

/** Just enough of a cookie jar for one origin: name -> value, honouring deletions. */
export class CookieJar {
  private readonly cookies = new Map<string, string>();

  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const index = pair!.indexOf('=');
      if (index < 0) continue;
      const name = pair!.slice(0, index).trim();
      const value = pair!.slice(index + 1).trim();
      const expired = attributes.some((a) => {
        const [key, val = ''] = a.trim().split('=');
        if (key!.toLowerCase() === 'max-age') return Number(val) <= 0;
        if (key!.toLowerCase() === 'expires') return Date.parse(val) <= Date.now();
        return false;
      });
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

export type SignInAction = { readonly login: string } | { readonly cancel: true };

/**
 * Follows the authorization URL through the provider's interaction like a browser would and
 * returns the URL the provider finally redirects to (the client's redirect_uri with code and
 * state, or with error=access_denied when the action is cancel). Never requests that URL.
 */
export async function signIn(
  authorizationUrl: URL,
  action: SignInAction,
  jar = new CookieJar(),
): Promise<URL> {
  const origin = authorizationUrl.origin;
  let url = authorizationUrl;
  let init: RequestInit = { method: 'GET' };
  for (let step = 0; step < 20; step++) {
    const response = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers as Record<string, string>), cookie: jar.header(), accept: 'text/html' },
    });
    jar.store(response);
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      const next = new URL(location, url);
      if (next.origin !== origin) return next;
      url = next;
      init = { method: 'GET' };
      continue;
    }
    const html = await response.text();
    const forms = [...html.matchAll(/<form method="post" action="([^"]+)">/g)].map((m) => m[1]!);
    if (response.status !== 200 || forms.length === 0) {
      throw new Error(`signIn: unexpected ${response.status} at ${url.pathname}: ${html.slice(0, 500)}`);
    }
    const wanted = 'cancel' in action ? '/abort' : forms.find((f) => !f.endsWith('/abort'))!;
    const target = forms.find((f) => f.endsWith(wanted)) ?? forms[0]!;
    url = new URL(target, url);
    const body = new URLSearchParams(
      'login' in action && target.endsWith('/login') ? { login: action.login } : {},
    );
    init = {
      method: 'POST',
      body: body.toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    };
  }
  throw new Error('signIn: too many steps');
}

// ---------------------------------------------------------------------------------------------
// Misbehaving peers.

export interface StaticServer {
  readonly url: string;
  readonly requests: string[];
  stop(): Promise<void>;
}

export interface StaticRoute {
  readonly status?: number;
  readonly contentType?: string;
  /** A string is sent as is; anything else as JSON. A function gets the server's base URL. */
  readonly body: unknown | ((baseUrl: string) => unknown);
}

/** Serves fixed answers by path (e.g. broken discovery documents); 404 for anything else. */
export async function startStaticServer(routes: Record<string, StaticRoute>): Promise<StaticServer> {
  const server = createHttpServer();
  const port = await listen(server);
  const url = `http://127.0.0.1:${port}`;
  const requests: string[] = [];
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    requests.push(req.url ?? '/');
    const route = routes[(req.url ?? '/').split('?')[0]!];
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('Not Found');
      return;
    }
    const raw =
      typeof route.body === 'function' ? (route.body as (base: string) => unknown)(url) : route.body;
    const text = typeof raw === 'string' ? raw : JSON.stringify(raw);
    res.writeHead(route.status ?? 200, {
      'content-type': route.contentType ?? (typeof raw === 'string' ? 'text/html' : 'application/json'),
    });
    res.end(text);
  });
  return { url, requests, stop: closer(server) };
}

/** Accepts connections and reads requests but never answers (for timeouts). */
export async function startSilentServer(): Promise<StaticServer> {
  const server = createHttpServer();
  const port = await listen(server);
  const requests: string[] = [];
  server.on('request', (req: IncomingMessage) => {
    requests.push(req.url ?? '/');
  });
  return { url: `http://127.0.0.1:${port}`, requests, stop: closer(server) };
}

/** An https server with a self-signed certificate for 127.0.0.1 (for TLS errors). */
export async function startSelfSignedServer(): Promise<StaticServer> {
  const pems = await generateCertificate([{ name: 'commonName', value: '127.0.0.1' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
  });
  const server = createHttpsServer({ key: pems.private, cert: pems.cert });
  const requests: string[] = [];
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    requests.push(req.url ?? '/');
    res.writeHead(404).end();
  });
  const port = await listen(server);
  return { url: `https://127.0.0.1:${port}`, requests, stop: closer(server) };
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createHttpServer();
  const port = await listen(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
