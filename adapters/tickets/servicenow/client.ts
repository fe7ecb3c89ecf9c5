/**
 * ServiceNow Table API and OAuth token endpoint over the SSRF-guarded outbound fetch (no
 * ServiceNow SDK exists for Node). Every call has a timeout; 429 / 5xx / connection failures are
 * retried with backoff honouring Retry-After; vendor errors become AppErrors with a sentence for
 * the admin, the vendor error kept as `cause`.
 */
import { createHash } from 'node:crypto';
import { AppError, ErrorCode, isAppError } from '../../../src/errors.js';
import {
  classifyTransportError,
  createOutboundFetch,
  type OutboundFetch,
  retryAfterSeconds,
  withRetries,
} from '../../../src/net/outbound.js';
import { checkUrl } from '../../../src/net/url-policy.js';
import type { ProviderContext } from '../../../src/tickets/port.js';
import { FIELD, type ServiceNowCredentials, secretFieldOf } from './credentials.js';

export type TableRecord = Record<string, unknown>;

/** The vendor's answer, kept as `cause` of the AppErrors built from it. */
export class ServiceNowHttpError extends Error {
  override readonly name = 'ServiceNowHttpError';
  constructor(
    readonly status: number,
    readonly path: string,
    readonly vendorError: unknown,
  ) {
    super(`ServiceNow answered ${status} to ${path}: ${JSON.stringify(vendorError) ?? ''}`.slice(0, 500));
  }
}

interface RawResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: unknown;
}

interface Call {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly query?: Readonly<Record<string, string>>;
  readonly body?: unknown;
  /** What the call does, for messages: "list assignment groups". */
  readonly what: string;
}

// ---------------------------------------------------------------------------------------------
// OAuth tokens
// ---------------------------------------------------------------------------------------------

interface TokenState {
  readonly accessToken: string;
  /** When to stop using the token: shortly before expires_in runs out. */
  readonly useUntil: number;
  readonly refreshToken?: string;
}

/**
 * Module-level token cache, keyed by a SHA-256 of everything that decides which token the instance
 * issues (instance, grant, client id, user name, client secret, password): instances for the same
 * tenant share a token instead of asking for a new one each time (ServiceNow keeps every issued
 * token as an oauth_credential record), and different credentials never meet. Holds tokens only,
 * never the secrets they came from.
 */
const tokenCache = new Map<string, TokenState>();
const tokensInFlight = new Map<string, Promise<TokenState>>();
const MAX_CACHED_TOKENS = 1_000;
/** ServiceNow's default access token lifespan, used when a response carries no expires_in. */
const DEFAULT_EXPIRES_IN = 1_800;

/** Forgets every cached OAuth token (tests, credential rotation). */
export function clearServiceNowTokenCache(): void {
  tokenCache.clear();
  tokensInFlight.clear();
}

function cacheToken(key: string, state: TokenState): void {
  tokenCache.delete(key);
  if (tokenCache.size >= MAX_CACHED_TOKENS) {
    const oldest = tokenCache.keys().next().value;
    if (oldest !== undefined) tokenCache.delete(oldest);
  }
  tokenCache.set(key, state);
}

interface AuthHeader {
  readonly value: string;
  /** The bearer token used, when OAuth. */
  readonly token?: string;
  /** True when the token was just issued (a 401 with it is not a stale-token problem). */
  readonly fresh: boolean;
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

export class ServiceNowClient {
  private readonly fetch: OutboundFetch;
  private readonly maxAttempts: number;
  private origin: string | undefined;
  private readonly tokenKey: string | undefined;

  constructor(
    private readonly credentials: ServiceNowCredentials,
    private readonly context: ProviderContext,
  ) {
    this.fetch = createOutboundFetch({ policy: context.urlPolicy, timeoutMs: context.timeoutMs });
    this.maxAttempts = Math.max(1, context.maxAttempts ?? 3);
    if (credentials.authType !== 'basic') {
      const c = credentials;
      const parts = [
        c.instanceUrl.trim().replace(/\/+$/, ''),
        c.authType,
        c.clientId,
        c.clientSecret,
        c.authType === 'oauth_password' ? c.username : '',
        c.authType === 'oauth_password' ? c.password : '',
      ];
      this.tokenKey = createHash('sha256').update(JSON.stringify(parts)).digest('hex');
    }
  }

  /** The instance's origin, checked against the URL policy (INVALID_URL on the URL field). */
  base(): string {
    if (this.origin === undefined) {
      const url = checkUrl(this.credentials.instanceUrl, this.context.urlPolicy, FIELD.instanceUrl);
      // ServiceNow instances live at the root; an address pasted from the browser may carry a path.
      this.origin = url.origin;
    }
    return this.origin;
  }

  get host(): string {
    try {
      return new URL(this.base()).host;
    } catch {
      return this.credentials.instanceUrl;
    }
  }

  /** GET a table's records (retried), with the total count ServiceNow reports. */
  async list(
    table: string,
    query: Record<string, string>,
    what: string,
  ): Promise<{ records: TableRecord[]; total: number }> {
    const call: Call = { method: 'GET', path: `/api/now/table/${table}`, query, what };
    return withRetries(async () => {
      let response: RawResponse;
      try {
        response = await this.once(call);
      } catch (error) {
        // Table API v1 answers an empty list with 404 "No Record found"; v2 (the default) with [].
        if (error instanceof AppError && error.code === ErrorCode.NOT_FOUND && error.details?.vendor) {
          return { records: [], total: 0 };
        }
        throw error;
      }
      const result = (response.json as { result?: unknown }).result;
      if (!Array.isArray(result)) throw this.notServiceNow(call, response);
      const total = Number(response.headers.get('x-total-count') ?? result.length);
      return { records: result as TableRecord[], total: Number.isFinite(total) ? total : result.length };
    }, this.retryOptions());
  }

  /**
   * POST one record. Not retried blindly (a lost answer may mean the record exists): only a
   * 429 or 503, which ServiceNow answers before doing anything, is worth another try, and
   * `beforeRetry` runs first (to look the record up again).
   */
  async insert<T>(
    table: string,
    body: TableRecord,
    query: Record<string, string>,
    what: string,
    beforeRetry: () => Promise<T | undefined>,
  ): Promise<{ readonly existing: T } | { readonly created: TableRecord }> {
    const call: Call = { method: 'POST', path: `/api/now/table/${table}`, query, body, what };
    let attempt = 0;
    try {
      return await withRetries(async () => {
        attempt += 1;
        if (attempt > 1) {
          const existing = await beforeRetry();
          if (existing !== undefined) return { existing };
        }
        try {
          const response = await this.once(call);
          const result = (response.json as { result?: unknown }).result;
          if (!result || typeof result !== 'object' || Array.isArray(result)) {
            throw this.notServiceNow(call, response);
          }
          return { created: result as TableRecord };
        } catch (error) {
          if (isSafeToRepeat(error)) throw error;
          throw new DoNotRetry(error);
        }
      }, this.retryOptions());
    } catch (error) {
      throw error instanceof DoNotRetry ? error.original : error;
    }
  }

  private retryOptions() {
    return { maxAttempts: this.maxAttempts };
  }

  /** One request, with the one retry OAuth allows when a cached token turned out to be stale. */
  private async once(call: Call): Promise<RawResponse> {
    const auth = await this.authHeader();
    let response = await this.send(call, auth.value);
    if (response.status === 401 && auth.token !== undefined && !auth.fresh) {
      this.dropToken(auth.token);
      const again = await this.authHeader();
      response = await this.send(call, again.value);
    }
    if (response.status >= 200 && response.status < 300) {
      if (!response.json || typeof response.json !== 'object') throw this.notServiceNow(call, response);
      return response;
    }
    throw this.errorFor(call, response);
  }

  private async send(call: Call, authorization: string): Promise<RawResponse> {
    const url = new URL(call.path, this.base());
    for (const [name, value] of Object.entries(call.query ?? {})) url.searchParams.set(name, value);
    const headers: Record<string, string> = { Accept: 'application/json', Authorization: authorization };
    if (call.body !== undefined) headers['Content-Type'] = 'application/json';
    return this.exchange(url, {
      method: call.method,
      headers,
      ...(call.body !== undefined ? { body: JSON.stringify(call.body) } : {}),
    });
  }

  private async exchange(url: URL, init: RequestInit): Promise<RawResponse> {
    try {
      const response = await this.fetch(url, init);
      const text = await response.text();
      let json: unknown;
      if (/json/i.test(response.headers.get('content-type') ?? '')) {
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
      }
      return { status: response.status, headers: response.headers, text, json };
    } catch (error) {
      throw classifyTransportError(error, this.host, FIELD.instanceUrl);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Authentication
  // -------------------------------------------------------------------------------------------

  private async authHeader(): Promise<AuthHeader> {
    const c = this.credentials;
    if (c.authType === 'basic') {
      const basic = Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64');
      return { value: `Basic ${basic}`, fresh: false };
    }
    const key = this.tokenKey!;
    const cached = tokenCache.get(key);
    if (cached && Date.now() < cached.useUntil) {
      return { value: `Bearer ${cached.accessToken}`, token: cached.accessToken, fresh: false };
    }
    let pending = tokensInFlight.get(key);
    if (!pending) {
      pending = this.obtainToken(cached).finally(() => tokensInFlight.delete(key));
      tokensInFlight.set(key, pending);
    }
    const state = await pending;
    return { value: `Bearer ${state.accessToken}`, token: state.accessToken, fresh: true };
  }

  /** Forgets a token the instance refused (only if it is still the cached one). */
  private dropToken(token: string): void {
    const key = this.tokenKey!;
    const cached = tokenCache.get(key);
    if (cached?.accessToken === token) {
      cacheToken(key, { ...cached, useUntil: 0 });
    }
  }

  private async obtainToken(previous: TokenState | undefined): Promise<TokenState> {
    const c = this.credentials;
    if (c.authType === 'basic') throw new Error('basic authentication has no token');
    let state: TokenState | undefined;
    if (previous?.refreshToken) {
      try {
        state = await this.tokenRequest(
          {
            grant_type: 'refresh_token',
            client_id: c.clientId,
            client_secret: c.clientSecret,
            refresh_token: previous.refreshToken,
          },
          previous.refreshToken,
        );
      } catch (error) {
        // An expired or revoked refresh token: sign in again with the grant itself.
        if (!(isAppError(error) && error.code === ErrorCode.INVALID_CREDENTIALS)) throw error;
      }
    }
    if (!state) {
      const form: Record<string, string> =
        c.authType === 'oauth_client_credentials'
          ? { grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret }
          : {
              grant_type: 'password',
              client_id: c.clientId,
              client_secret: c.clientSecret,
              username: c.username,
              password: c.password,
            };
      state = await this.tokenRequest(form, undefined);
    }
    cacheToken(this.tokenKey!, state);
    return state;
  }

  /** POST {instance}/oauth_token.do (application/x-www-form-urlencoded), as ServiceNow documents. */
  private async tokenRequest(
    form: Record<string, string>,
    keepRefresh: string | undefined,
  ): Promise<TokenState> {
    const call: Call = { method: 'POST', path: '/oauth_token.do', what: 'get an OAuth access token' };
    const response = await this.exchange(new URL(call.path, this.base()), {
      method: 'POST',
      headers: { Accept: 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
    const body = (response.json ?? {}) as {
      access_token?: unknown;
      refresh_token?: unknown;
      expires_in?: unknown;
      error?: unknown;
      error_description?: unknown;
    };
    if (response.status === 200 && typeof body.access_token === 'string' && body.access_token) {
      const expiresIn = Number(body.expires_in ?? DEFAULT_EXPIRES_IN);
      const lifetimeMs =
        (Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : DEFAULT_EXPIRES_IN) * 1000;
      // Stop using the token shortly before it runs out: a minute, or a tenth of short lifetimes.
      const margin = Math.min(60_000, lifetimeMs / 10);
      const refresh =
        typeof body.refresh_token === 'string' && body.refresh_token ? body.refresh_token : keepRefresh;
      return {
        accessToken: body.access_token,
        useUntil: Date.now() + lifetimeMs - margin,
        ...(refresh ? { refreshToken: refresh } : {}),
      };
    }
    if (response.status === 200 && !response.json) throw this.notServiceNow(call, response);
    if (response.status === 400 || response.status === 401 || response.status === 403) {
      if (!response.json) throw this.notServiceNow(call, response);
      throw this.tokenRefused(form.grant_type ?? '', body.error, response, call);
    }
    throw this.errorFor(call, response);
  }

  private tokenRefused(grant: string, error: unknown, response: RawResponse, call: Call): AppError {
    const cause = new ServiceNowHttpError(response.status, call.path, response.json);
    const c = this.credentials;
    if (grant === 'refresh_token') {
      return new AppError(ErrorCode.INVALID_CREDENTIALS, 'ServiceNow refused the OAuth refresh token.', {
        cause,
        details: { field: FIELD.clientSecret, status: response.status },
      });
    }
    // ServiceNow answers every refused sign-in with the same opaque
    // {"error":"server_error","error_description":"access_denied"}; standard codes are used when present.
    if (error === 'invalid_grant' && c.authType === 'oauth_password') {
      return new AppError(
        ErrorCode.INVALID_CREDENTIALS,
        `User name or password is wrong: ServiceNow did not accept the password of "${c.username}" for the OAuth password grant. Check both, and that the user is active and not locked out.`,
        { cause, details: { field: FIELD.password, status: response.status } },
      );
    }
    if (c.authType === 'oauth_password' && error !== 'invalid_client') {
      return new AppError(
        ErrorCode.INVALID_CREDENTIALS,
        `ServiceNow refused the OAuth sign-in: the Client ID or client secret is wrong, or the user name or password of "${c.username}" is (ServiceNow does not say which). Check the Client ID and Client Secret in System OAuth > Application Registry, and the user's password.`,
        { cause, details: { field: FIELD.clientSecret, status: response.status } },
      );
    }
    return new AppError(
      ErrorCode.INVALID_CREDENTIALS,
      'Invalid Client ID or client secret: ServiceNow refused the OAuth client credentials. Check the Client ID and Client Secret in System OAuth > Application Registry; for the client credentials grant the instance also needs the system property glide.oauth.inbound.client.credential.grant_type.enabled=true and an OAuth Application User on the registry entry.',
      { cause, details: { field: FIELD.clientSecret, status: response.status } },
    );
  }

  // -------------------------------------------------------------------------------------------
  // Errors
  // -------------------------------------------------------------------------------------------

  private notServiceNow(call: Call, response: RawResponse): AppError {
    const hibernating = /hibernat/i.test(response.text);
    const type = response.headers.get('content-type')?.split(';')[0] || 'no content type';
    const message = hibernating
      ? `The ServiceNow instance at ${this.host} is hibernating. Wake it up (developer instances: developer.servicenow.com), then try again.`
      : `This does not look like a ServiceNow instance: ${this.host} answered ${call.path} with status ${response.status} (${type}) instead of ServiceNow's JSON. Enter the address of your instance, like https://<instance>.service-now.com.`;
    return new AppError(ErrorCode.NOT_FOUND, message, {
      cause: new ServiceNowHttpError(response.status, call.path, response.text.slice(0, 200)),
      details: { field: FIELD.instanceUrl, status: response.status },
    });
  }

  private errorFor(call: Call, response: RawResponse): AppError {
    const vendor = vendorError(response.json);
    const cause = new ServiceNowHttpError(
      response.status,
      call.path,
      response.json ?? response.text.slice(0, 200),
    );
    const said = vendor ? ` ServiceNow said: ${vendor.text}.` : '';
    const status = response.status;
    if (status === 401) {
      const c = this.credentials;
      const message =
        c.authType === 'basic'
          ? `User name or password is wrong: ServiceNow did not accept the credentials of "${c.username}". Check both, and that the user is active, not locked out, and allowed to use web services.`
          : 'ServiceNow did not accept a freshly issued OAuth access token. Check that the OAuth application may use the REST API (its scope) and that its user is active.';
      return new AppError(ErrorCode.INVALID_CREDENTIALS, message, {
        cause,
        details: { field: secretFieldOf(c), status },
      });
    }
    if (status === 429) {
      // A plain record: undici's Headers is not the global Headers that retryAfterSeconds checks for.
      const wait = retryAfterSeconds(Object.fromEntries(response.headers.entries()));
      return new AppError(
        ErrorCode.RATE_LIMITED,
        `ServiceNow's rate limit was reached while trying to ${call.what}.${said} Try again ${wait ? `in ${wait} seconds` : 'later'}, or ask the ServiceNow admin to raise the rate limit rule for this user.`,
        { cause, details: { status, ...(wait !== undefined ? { retryAfterSeconds: wait } : {}) } },
      );
    }
    if (status === 404) {
      if (!vendor) return this.notServiceNow(call, response);
      return new AppError(ErrorCode.NOT_FOUND, `ServiceNow found nothing to ${call.what}.${said}`, {
        cause,
        details: { status, vendor: true },
      });
    }
    if (status === 403) {
      const policy = dataPolicyFields(vendor);
      if (policy) {
        return new AppError(
          ErrorCode.INVALID_INPUT,
          `ServiceNow requires more fields to ${call.what}: ${policy.join(', ')}. Set values for them in the ServiceNow routing (field values).`,
          {
            cause,
            details: {
              status,
              fieldErrors: Object.fromEntries(policy.map((label) => [label, 'is mandatory'])),
            },
          },
        );
      }
      return new AppError(
        ErrorCode.FORBIDDEN,
        `ServiceNow did not allow the user to ${call.what}.${said} Give the ServiceNow user the role that allows it (itil for incidents).`,
        { cause, details: { status } },
      );
    }
    if (status === 400 || status === 415 || status === 406) {
      return new AppError(ErrorCode.INVALID_INPUT, `ServiceNow refused the request to ${call.what}.${said}`, {
        cause,
        details: { status },
      });
    }
    if (status >= 200 && status < 300) return this.notServiceNow(call, response);
    return new AppError(
      ErrorCode.PROVIDER_ERROR,
      `ServiceNow answered ${status} when trying to ${call.what}.${said}${status >= 500 ? ' Try again later.' : ''}`,
      { cause, details: { status } },
    );
  }
}

/** ServiceNow's error envelope: {"error":{"message","detail"},"status":"failure"}. */
function vendorError(json: unknown): { message: string; detail: string; text: string } | undefined {
  const error = (json as { error?: unknown } | undefined)?.error;
  if (!error || typeof error !== 'object') return undefined;
  const { message, detail } = error as { message?: unknown; detail?: unknown };
  const m = typeof message === 'string' ? message.trim() : '';
  const d = typeof detail === 'string' ? detail.trim() : '';
  const text = [m, d].filter(Boolean).join(': ').replace(/\s+/g, ' ').replace(/\.$/, '');
  return { message: m, detail: d, text: text || 'no details' };
}

/** The labels of "Data Policy Exception: The following fields are mandatory: Caller, Cost center". */
function dataPolicyFields(vendor: ReturnType<typeof vendorError>): string[] | undefined {
  if (!vendor) return undefined;
  const match = /Data Policy Exception:[\s\S]*?mandatory:\s*([^\n]+)/i.exec(
    `${vendor.message} ${vendor.detail}`,
  );
  if (!match) return undefined;
  const labels = match[1]!
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return labels.length > 0 ? labels : undefined;
}

/** Failures ServiceNow answers before doing anything: a POST may be repeated after them. */
function isSafeToRepeat(error: unknown): boolean {
  if (!isAppError(error)) return false;
  return error.code === ErrorCode.RATE_LIMITED || Number(error.details?.status) === 503;
}

/** Carries an error through withRetries without a retry (it only retries AppErrors). */
class DoNotRetry extends Error {
  constructor(readonly original: unknown) {
    super('do not retry');
  }
}
