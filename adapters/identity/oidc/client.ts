/**
 * openid-client v6 wiring: discovery through the SSRF-guarded transport, the client
 * authentication method, and the few requests the adapter makes besides openid-client's own
 * (the token endpoint check and the authorization endpoint probe of `validate`).
 *
 * Every request openid-client makes (discovery, token, JWKS, userinfo) goes through
 * createOutboundFetch as its `customFetch`: the guarded lookup refuses private addresses at
 * connect time, redirects are re-checked hop by hop, and every call has the timeout. Plain http
 * is only allowed (`allowInsecureRequests`) for an issuer the operator's policy let through
 * checkUrl; TLS verification is never turned off.
 */

import { randomBytes } from 'node:crypto';
import {
  allowInsecureRequests,
  ClientSecretBasic,
  ClientSecretPost,
  type Configuration,
  type CustomFetch,
  calculatePKCECodeChallenge,
  customFetch,
  discovery,
  enableNonRepudiationChecks,
  genericGrantRequest,
  randomNonce,
  randomPKCECodeVerifier,
  randomState,
} from 'openid-client';
import { createOutboundFetch, DEFAULT_TIMEOUT_MS, retryAfterSeconds } from '../../../src/net/outbound.js';
import { checkUrl, type UrlPolicy } from '../../../src/net/url-policy.js';
import { MissingMetadataError, VALIDATION_REDIRECT_URI } from './mapping.js';

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post';

export interface OidcClientOptions {
  readonly issuerUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly policy: UrlPolicy;
  readonly timeoutMs?: number;
}

/** The discovered provider and the client configuration openid-client works with. */
export interface OidcConnection {
  readonly config: Configuration;
  /** The issuer as the discovery document states it. */
  readonly issuer: string;
  readonly authorizationEndpoint: string;
  readonly tokenEndpoint: string;
  /** The guarded fetch, for the adapter's own requests (the authorization endpoint probe). */
  readonly fetch: CustomFetch;
  /** Client authentication methods to try, preferred first (see `withClientAuthFallback`). */
  readonly authMethods: readonly ClientAuthMethod[];
  /** Switches the method `config` authenticates the client with. */
  useAuthMethod(method: ClientAuthMethod): void;
  readonly authMethod: ClientAuthMethod;
}

const DISCOVERY_PATH = '/.well-known/openid-configuration';

/**
 * The issuer identifier from what an admin typed: trimmed, and without a pasted
 * /.well-known/openid-configuration (given the document's URL, openid-client would skip the
 * issuer check). Nothing else is changed: issuers are compared exactly, so a mismatch (a trailing
 * slash, another tenant) is reported with the issuer the provider states.
 */
export function normalizeIssuerUrl(raw: string): string {
  const text = raw.trim();
  return text.endsWith(DISCOVERY_PATH) ? text.slice(0, -DISCOVERY_PATH.length) : text;
}

const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
const MAX_ATTEMPTS = 3;
const MAX_RETRY_AFTER_MS = 5_000;

/**
 * createOutboundFetch in openid-client's CustomFetch shape. GETs (discovery, JWKS, userinfo)
 * are retried on 429/5xx with backoff, honouring Retry-After up to 5 s; token requests are
 * never repeated (an authorization code is single-use).
 */
export function guardedFetch(policy: UrlPolicy, timeoutMs: number): CustomFetch {
  const fetch = createOutboundFetch({ policy, timeoutMs });
  return async (url, options) => {
    const init = options as unknown as RequestInit;
    for (let attempt = 1; ; attempt++) {
      const response = await fetch(url, init);
      if (options.method !== 'GET' || attempt >= MAX_ATTEMPTS || !RETRY_STATUSES.has(response.status)) {
        return response;
      }
      const retryAfter = retryAfterSeconds(response.headers);
      await response.body?.cancel();
      const wait = Math.min(
        retryAfter === undefined ? 200 * 2 ** attempt : retryAfter * 1000,
        MAX_RETRY_AFTER_MS,
      );
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  };
}

/**
 * client_secret_basic (RFC 6749's default, and the default of RFC 8414 when the document lists
 * none) first, then client_secret_post, as far as the provider lists them. Some providers accept
 * either (oidc-provider, Entra ID, Keycloak); others only the one registered for the client
 * (Okta, Auth0), which `withClientAuthFallback` finds by trying the other one.
 */
function authMethodsOf(supported: unknown): ClientAuthMethod[] {
  const list = Array.isArray(supported) ? (supported as unknown[]) : ['client_secret_basic'];
  const methods = (['client_secret_basic', 'client_secret_post'] as const).filter((m) => list.includes(m));
  return methods.length > 0 ? methods : ['client_secret_basic', 'client_secret_post'];
}

/**
 * Discovery: checks the issuer URL against the policy, fetches and validates the discovery
 * document (issuer equal to the URL entered; authorization, token and JWKS endpoints present).
 * Throws AppError (INVALID_URL from checkUrl), MissingMetadataError or openid-client's errors;
 * mapping.ts words them.
 */
export async function connect(options: OidcClientOptions): Promise<OidcConnection> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const issuerUrl = checkUrl(normalizeIssuerUrl(options.issuerUrl), options.policy, 'issuerUrl');
  // checkUrl only lets http through when the operator allows it.
  const insecure = issuerUrl.protocol === 'http:';
  const fetch = guardedFetch(options.policy, timeoutMs);
  const state: { method: ClientAuthMethod } = { method: 'client_secret_basic' };
  const basic = ClientSecretBasic(options.clientSecret);
  const post = ClientSecretPost(options.clientSecret);
  const config = await discovery(
    issuerUrl,
    options.clientId,
    { client_secret: options.clientSecret },
    (as, client, body, headers) =>
      (state.method === 'client_secret_basic' ? basic : post)(as, client, body, headers),
    {
      [customFetch]: fetch,
      // openid-client's own limit covers a whole call (with the GET retries); each request
      // already has timeoutMs from createOutboundFetch.
      timeout: (timeoutMs * MAX_ATTEMPTS) / 1000,
      execute: insecure ? [allowInsecureRequests] : [],
    },
  );
  const metadata = config.serverMetadata();
  const missing = (['authorization_endpoint', 'token_endpoint', 'jwks_uri'] as const).filter(
    (name) => typeof metadata[name] !== 'string' || metadata[name] === '',
  );
  if (missing.length > 0) throw new MissingMetadataError(missing, metadata.issuer);
  // Verify the ID token's signature against the provider's JWKS, not only its claims (openid-client
  // otherwise relies on TLS for tokens from the token endpoint, and plain http may be allowed).
  enableNonRepudiationChecks(config);
  const authMethods = authMethodsOf(metadata.token_endpoint_auth_methods_supported);
  state.method = authMethods[0]!;
  return {
    config,
    issuer: metadata.issuer,
    authorizationEndpoint: metadata.authorization_endpoint!,
    tokenEndpoint: metadata.token_endpoint!,
    fetch,
    authMethods,
    useAuthMethod: (method) => {
      state.method = method;
    },
    get authMethod() {
      return state.method;
    },
  };
}

/**
 * Runs a token endpoint call with the preferred client authentication method and, when the
 * provider answers invalid_client and lists another method, once more with that one (it keeps
 * the method that worked). Safe for the code exchange: providers authenticate the client before
 * they look at the code, so a refused attempt does not use it up.
 */
export async function withClientAuthFallback<T>(
  connection: OidcConnection,
  isClientRejection: (error: unknown) => Promise<boolean>,
  operation: () => Promise<T>,
): Promise<T> {
  const first = connection.authMethod;
  try {
    return await operation();
  } catch (error) {
    const other = connection.authMethods.find((m) => m !== first);
    if (!other || !(await isClientRejection(error))) throw error;
    connection.useAuthMethod(other);
    try {
      return await operation();
    } catch (second) {
      // Both refused: report the preferred method's answer, and leave it selected.
      connection.useAuthMethod(first);
      if (await isClientRejection(second)) throw error;
      throw second;
    }
  }
}

/**
 * The client check of `validate`: an authorization code grant with a code no provider issued.
 * The provider authenticates the client first, so it answers invalid_client for a wrong Client
 * ID or secret and invalid_grant (the code) for a client it accepted. Rejects with what the
 * provider answered; resolves only in the impossible case that it issued tokens.
 */
export async function tokenEndpointCheck(connection: OidcConnection): Promise<void> {
  await genericGrantRequest(connection.config, 'authorization_code', {
    code: `cloudpi-validation-${randomBytes(16).toString('hex')}`,
    redirect_uri: VALIDATION_REDIRECT_URI,
    code_verifier: randomPKCECodeVerifier(),
  });
}

export interface ProbeAnswer {
  readonly status: number;
  readonly text: string;
}

const PROBE_MAX_CHARS = 64 * 1024;

/**
 * Asks the authorization endpoint about the client, with a redirect_uri no client registers:
 * providers check the client before the redirect_uri and show the error themselves instead of
 * redirecting, so the page says either "unknown client" or "redirect_uri not registered" (the
 * client exists). Used only to tell a wrong Client ID from a wrong secret when the token
 * endpoint's invalid_client does not say which. Undefined when the probe itself fails.
 */
export async function probeAuthorizationEndpoint(
  connection: OidcConnection,
  clientId: string,
): Promise<ProbeAnswer | undefined> {
  const url = new URL(connection.authorizationEndpoint);
  const verifier = randomPKCECodeVerifier();
  const parameters = {
    client_id: clientId,
    response_type: 'code',
    scope: 'openid',
    redirect_uri: VALIDATION_REDIRECT_URI,
    state: randomState(),
    nonce: randomNonce(),
    code_challenge: await calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  };
  for (const [name, value] of Object.entries(parameters)) url.searchParams.set(name, value);
  try {
    const response = await connection.fetch(url.href, {
      method: 'GET',
      headers: { accept: 'application/json, text/html;q=0.9, */*;q=0.1' },
      body: undefined,
      redirect: 'manual',
    });
    const text = await response.text();
    return { status: response.status, text: text.slice(0, PROBE_MAX_CHARS) };
  } catch {
    return undefined;
  }
}
