/**
 * Translations between openid-client's errors and claims and CloudPi's words: discovery and
 * transport failures as "Authorization endpoint unreachable: <cause>. <what to do>", the token
 * endpoint's client errors as "Invalid Client ID" / "Invalid client secret", callback failures as
 * UNAUTHENTICATED sentences, and ID token claims as an SsoIdentity.
 *
 * openid-client errors are recognised by name and code (ClientError, ResponseBodyError,
 * WWWAuthenticateChallengeError, AuthorizationResponseError; the OAUTH_* codes are oauth4webapi's
 * exported constants), and by the specific message of the oauth4webapi error in their cause
 * chain (which claim or parameter failed). The messages shown never carry the client secret.
 */
import { AppError, ErrorCode, isAppError } from '../../../src/errors.js';
import type { SsoIdentity } from '../../../src/identity/port.js';
import { classifyTransportError } from '../../../src/net/outbound.js';

/** The redirect_uri of the validation requests: no client registers it (.invalid never resolves). */
export const VALIDATION_REDIRECT_URI = 'https://cloudpi.invalid/sso/validate';

/** The discovery document lacks an endpoint an OpenID provider must have. */
export class MissingMetadataError extends Error {
  override readonly name = 'MissingMetadataError';
  constructor(
    readonly missing: readonly string[],
    readonly issuer: string,
  ) {
    super(`the discovery document lacks ${missing.join(', ')}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Looking into errors

type ErrorLike = { name?: unknown; code?: unknown; message?: unknown; cause?: unknown };

/** The error and its causes, outermost first. */
function chainOf(error: unknown): ErrorLike[] {
  const chain: ErrorLike[] = [];
  let current = error;
  for (let depth = 0; depth < 8 && current && typeof current === 'object'; depth++) {
    chain.push(current as ErrorLike);
    current = (current as ErrorLike).cause;
  }
  return chain;
}

function findInChain<T>(error: unknown, pick: (e: ErrorLike) => T | undefined): T | undefined {
  for (const e of chainOf(error)) {
    const found = pick(e);
    if (found !== undefined) return found;
  }
  return undefined;
}

function appErrorIn(error: unknown): AppError | undefined {
  return findInChain(error, (e) => (isAppError(e) ? e : undefined));
}

/** openid-client's (and oauth4webapi's) OAUTH_* code of the outermost error that has one. */
function oauthCodeOf(error: unknown): string | undefined {
  return findInChain(error, (e) =>
    typeof e.code === 'string' && e.code.startsWith('OAUTH_') ? e.code : undefined,
  );
}

/** All messages of the chain, for the specific oauth4webapi wording behind a generic ClientError. */
function messagesOf(error: unknown): string {
  return chainOf(error)
    .map((e) => (typeof e.message === 'string' ? e.message : ''))
    .join(' | ');
}

function isResponse(value: unknown): value is Response {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Response).status === 'number' &&
    typeof (value as Response).headers?.get === 'function'
  );
}

const sentenceCase = (text: string): string =>
  /^[A-Z][a-z]/.test(text) ? text[0]!.toLowerCase() + text.slice(1) : text;
const truncate = (text: string, max = 300): string =>
  text.length > max ? `${text.slice(0, max - 1)}…` : text;
const stripPeriod = (text: string): string => text.replace(/[.\s]+$/, '');

/** Removes the client secret wherever a provider's text might echo it. */
export function scrubSecret(text: string, secret: string): string {
  return secret.length >= 4 ? text.split(secret).join('[secret]') : text;
}

// ---------------------------------------------------------------------------------------------
// OAuth error answers

export interface OAuthErrorAnswer {
  readonly error: string;
  readonly description?: string;
  readonly status?: number;
}

const answers = new WeakMap<object, Promise<OAuthErrorAnswer | undefined>>();

/**
 * The OAuth error a token endpoint answered: from a ResponseBodyError (JSON body), or from a
 * WWWAuthenticateChallengeError (a 401 with WWW-Authenticate, as oidc-provider sends for Basic
 * client authentication), whose challenge parameters or unread body carry it. Memoised: a body
 * can be read once.
 */
export function oauthErrorOf(error: unknown): Promise<OAuthErrorAnswer | undefined> {
  if (!error || typeof error !== 'object') return Promise.resolve(undefined);
  let answer = answers.get(error);
  if (!answer) {
    answer = readOAuthError(error as ErrorLike);
    answers.set(error, answer);
  }
  return answer;
}

async function readOAuthError(error: ErrorLike): Promise<OAuthErrorAnswer | undefined> {
  const status =
    typeof (error as { status?: unknown }).status === 'number'
      ? (error as { status: number }).status
      : undefined;
  if (error.name === 'ResponseBodyError') {
    const e = error as { error?: unknown; error_description?: unknown };
    if (typeof e.error !== 'string') return undefined;
    return {
      error: e.error,
      ...(typeof e.error_description === 'string' ? { description: e.error_description } : {}),
      ...(status === undefined ? {} : { status }),
    };
  }
  if (error.name === 'WWWAuthenticateChallengeError') {
    const challenges = Array.isArray(error.cause)
      ? (error.cause as { parameters?: Record<string, string> }[])
      : [];
    const withError = challenges.find((c) => typeof c.parameters?.error === 'string');
    if (withError?.parameters?.error) {
      const description = withError.parameters.error_description;
      return {
        error: withError.parameters.error,
        ...(description ? { description } : {}),
        ...(status === undefined ? {} : { status }),
      };
    }
    const response = (error as { response?: unknown }).response;
    if (isResponse(response) && !response.bodyUsed) {
      try {
        const body = (await response.json()) as { error?: unknown; error_description?: unknown };
        if (typeof body.error === 'string') {
          return {
            error: body.error,
            ...(typeof body.error_description === 'string' ? { description: body.error_description } : {}),
            ...(status === undefined ? {} : { status }),
          };
        }
      } catch {
        // not JSON: no OAuth error to report
      }
    }
  }
  return undefined;
}

/**
 * invalid_client, and Keycloak's unauthorized_client for a wrong secret (it answers 401 with
 * "Invalid client or Invalid client credentials"), and Entra ID's unauthorized_client for an
 * unknown application (AADSTS700016).
 */
export function isClientRejectionAnswer(answer: OAuthErrorAnswer | undefined): boolean {
  if (!answer) return false;
  if (answer.error === 'invalid_client') return true;
  return (
    answer.error === 'unauthorized_client' &&
    (answer.status === 401 || /secret|credential|AADSTS700016/i.test(answer.description ?? ''))
  );
}

export async function isClientRejection(error: unknown): Promise<boolean> {
  return isClientRejectionAnswer(await oauthErrorOf(error));
}

function evidenceOf(answer: OAuthErrorAnswer): string {
  return truncate(answer.description ? `${answer.error}: ${stripPeriod(answer.description)}` : answer.error);
}

// ---------------------------------------------------------------------------------------------
// Transport and discovery failures

export interface FailureContext {
  /** The issuer URL as entered (after normalisation). */
  readonly issuerUrl: string;
  readonly timeoutMs: number;
}

const TLS_NAMES: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the certificate is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'the certificate chain ends in a self-signed certificate',
  CERT_HAS_EXPIRED: 'the certificate has expired',
  CERT_NOT_YET_VALID: 'the certificate is not valid yet',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the certificate is not valid for this host name',
  HOSTNAME_MISMATCH: 'the certificate is not valid for this host name',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    'the certificate is not signed by a trusted authority (or its chain is incomplete)',
  UNABLE_TO_GET_ISSUER_CERT:
    'the certificate is not signed by a trusted authority (or its chain is incomplete)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    'the certificate is not signed by a trusted authority (or its chain is incomplete)',
  CERT_REVOKED: 'the certificate has been revoked',
};

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function hostnameOf(url: string): string {
  try {
    return new URL(url).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return url;
  }
}

const TRANSPORT_CODES = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_NONAME',
  'EAI_FAIL',
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EPIPE',
  'EPRIVATEADDRESS',
  'ABORT_ERR',
  'OAUTH_TIMEOUT',
  'OAUTH_ABORT',
  'OAUTH_HTTP_REQUEST_FORBIDDEN',
  'OAUTH_REQUEST_PROTOCOL_FORBIDDEN',
]);

/** A failure below HTTP (or the guard refusing the address): nothing the provider answered. */
export function isTransportError(error: unknown): boolean {
  return chainOf(error).some(
    (e) =>
      isAppError(e) ||
      e.name === 'TimeoutError' ||
      e.name === 'AbortError' ||
      (typeof e.code === 'string' &&
        (TRANSPORT_CODES.has(e.code) ||
          e.code.startsWith('UND_ERR') ||
          e.code in TLS_NAMES ||
          /CERT|TLS|SSL/.test(e.code))),
  );
}

/**
 * "<cause>. <what to do>" for a request to `url` that failed below HTTP: DNS, refused, timed
 * out, TLS, the SSRF guard. classifyTransportError gives the error code (and the wording of
 * anything not named here).
 */
export function transportFailure(
  error: unknown,
  url: string,
  timeoutMs: number,
): { code: ErrorCode; text: string } {
  const guard = appErrorIn(error);
  if (guard) return { code: guard.code, text: sentenceCase(guard.message) };
  const host = hostOf(url);
  const classified = classifyTransportError(error, host, 'issuerUrl');
  const codes = chainOf(error)
    .map((e) => (typeof e.code === 'string' ? e.code : ''))
    .filter(Boolean);
  const has = (...wanted: string[]) => codes.find((c) => wanted.includes(c));
  if (classified.code === ErrorCode.INVALID_URL)
    return { code: classified.code, text: sentenceCase(classified.message) };
  const dns = has('ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL');
  if (dns) {
    return {
      code: ErrorCode.UNREACHABLE,
      text: `host not found: ${hostnameOf(url)} does not resolve (${dns}). Check the spelling of the issuer URL`,
    };
  }
  if (has('ECONNREFUSED')) {
    return {
      code: ErrorCode.UNREACHABLE,
      text: `connection refused by ${host}. Check the issuer URL's host and port, and that the identity provider is running`,
    };
  }
  const timedOut =
    has(
      'OAUTH_TIMEOUT',
      'UND_ERR_CONNECT_TIMEOUT',
      'UND_ERR_HEADERS_TIMEOUT',
      'UND_ERR_BODY_TIMEOUT',
      'ETIMEDOUT',
      'ABORT_ERR',
    ) || chainOf(error).some((e) => e.name === 'TimeoutError');
  if (timedOut) {
    const seconds = Number((timeoutMs / 1000).toFixed(timeoutMs < 1000 ? 2 : 0));
    return {
      code: ErrorCode.UNREACHABLE,
      text: `${host} timed out (no answer within ${seconds} s). Check the issuer URL, and that the identity provider is up and reachable from this server`,
    };
  }
  if (classified.code === ErrorCode.TLS_ERROR) {
    const tlsCode = codes.find((c) => !c.startsWith('OAUTH_') && !c.startsWith('UND_ERR')) ?? '';
    const named = TLS_NAMES[tlsCode] ?? 'the certificate could not be verified';
    return {
      code: ErrorCode.TLS_ERROR,
      text: `TLS certificate problem with ${host}: ${named}${tlsCode ? ` (${tlsCode})` : ''}. Use the identity provider's correct https address; its certificate must be valid for that name and signed by a trusted authority`,
    };
  }
  if (has('OAUTH_HTTP_REQUEST_FORBIDDEN', 'OAUTH_REQUEST_PROTOCOL_FORBIDDEN')) {
    return {
      code: ErrorCode.INVALID_URL,
      text: `${url} is not an https address, which this server does not connect to. The identity provider must publish https endpoints`,
    };
  }
  return { code: classified.code, text: stripPeriod(sentenceCase(classified.message)) };
}

async function bodyHint(response: Response): Promise<string> {
  try {
    if (response.bodyUsed) return '';
    const text = (await response.text()).slice(0, 2000);
    const json = JSON.parse(text) as { error?: unknown; error_description?: unknown };
    const detail = typeof json.error_description === 'string' ? json.error_description : json.error;
    return typeof detail === 'string' ? `: ${truncate(stripPeriod(detail), 200)}` : '';
  } catch {
    return '';
  }
}

function unreachable(code: ErrorCode, text: string, cause: unknown): AppError {
  return new AppError(code, `Authorization endpoint unreachable: ${stripPeriod(text)}.`, {
    cause,
    details: { field: 'issuerUrl' },
  });
}

/** Where openid-client looks for the discovery document of an issuer (OpenID Connect Discovery 4). */
export function discoveryUrlOf(issuer: string): string {
  try {
    const url = new URL(issuer);
    const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
    url.pathname = `${path}/.well-known/openid-configuration`;
    return url.href;
  } catch {
    return issuer;
  }
}

const ENTER_ISSUER =
  'Check the issuer URL: it is the address in front of /.well-known/openid-configuration (for Entra ID https://login.microsoftonline.com/<tenant id>/v2.0, for Okta https://<org>.okta.com/oauth2/default)';

/** Discovery failed: the cause named, the field issuerUrl. */
export async function discoveryFailure(error: unknown, context: FailureContext): Promise<AppError> {
  const discoveryUrl = discoveryUrlOf(context.issuerUrl);
  if (error instanceof MissingMetadataError) {
    return unreachable(
      ErrorCode.INVALID_URL,
      `${context.issuerUrl} is not an OpenID provider: its discovery document lacks ${error.missing.join(' and ')}. ${ENTER_ISSUER}`,
      error,
    );
  }
  const code = oauthCodeOf(error);
  const chain = chainOf(error);
  if (code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED') {
    const detail = findInChain(error, (e) =>
      e && typeof e === 'object' && 'attribute' in e
        ? (e as { attribute?: unknown; body?: { issuer?: unknown } })
        : undefined,
    );
    if (!detail || detail.attribute === 'issuer') {
      const stated = typeof detail?.body?.issuer === 'string' ? detail.body.issuer : 'another issuer';
      return unreachable(
        ErrorCode.INVALID_URL,
        `the discovery document at ${discoveryUrl} states the issuer ${stated}, which does not match the URL entered (${context.issuerUrl}). Enter the issuer exactly as the provider states it${stated === 'another issuer' ? '' : `: ${stated}`}`,
        error,
      );
    }
  }
  if (code === 'OAUTH_RESPONSE_IS_NOT_CONFORM') {
    const response = chain.find(isResponse) as Response | undefined;
    const status = response?.status ?? 0;
    const hint = response ? await bodyHint(response) : '';
    if (status === 404 || status === 410) {
      return unreachable(
        ErrorCode.INVALID_URL,
        `no discovery document at ${discoveryUrl} (HTTP ${status}). ${ENTER_ISSUER}`,
        error,
      );
    }
    if (status === 401 || status === 403) {
      return unreachable(
        ErrorCode.INVALID_URL,
        `${discoveryUrl} refused access (HTTP ${status}${hint}). The discovery document must be public; check the issuer URL`,
        error,
      );
    }
    if (status >= 500) {
      return unreachable(
        ErrorCode.UNREACHABLE,
        `the identity provider answered HTTP ${status} for ${discoveryUrl}${hint}. Try again later; if it persists, check the provider's status`,
        error,
      );
    }
    return unreachable(
      ErrorCode.INVALID_URL,
      `unexpected HTTP ${status} for ${discoveryUrl}${hint}. ${ENTER_ISSUER}`,
      error,
    );
  }
  if (code === 'OAUTH_RESPONSE_IS_NOT_JSON' || code === 'OAUTH_PARSE_ERROR') {
    const response = chain.find(isResponse) as Response | undefined;
    const type = response?.headers.get('content-type')?.split(';')[0]?.trim();
    const what =
      code === 'OAUTH_PARSE_ERROR'
        ? 'is not valid JSON'
        : `is not JSON${type ? ` (content-type ${type})` : ''}`;
    return unreachable(
      ErrorCode.INVALID_URL,
      `${context.issuerUrl} is not an OpenID provider: its discovery document ${discoveryUrl} ${what}. ${ENTER_ISSUER}`,
      error,
    );
  }
  if (code === 'OAUTH_INVALID_RESPONSE') {
    const messages = messagesOf(error);
    const what = /"issuer"/.test(messages)
      ? 'lacks issuer'
      : /top level object/.test(messages)
        ? 'is not a JSON object'
        : 'is not valid';
    return unreachable(
      ErrorCode.INVALID_URL,
      `${context.issuerUrl} is not an OpenID provider: its discovery document ${discoveryUrl} ${what}. ${ENTER_ISSUER}`,
      error,
    );
  }
  const failure = transportFailure(error, discoveryUrl, context.timeoutMs);
  return unreachable(failure.code, failure.text, error);
}

/** A failure of the token endpoint check that is not an OAuth answer (transport, HTTP status). */
export async function tokenEndpointFailure(
  error: unknown,
  tokenEndpoint: string,
  timeoutMs: number,
): Promise<AppError> {
  if (
    oauthCodeOf(error) === 'OAUTH_RESPONSE_IS_NOT_CONFORM' ||
    oauthCodeOf(error) === 'OAUTH_RESPONSE_IS_NOT_JSON'
  ) {
    const response = chainOf(error).find(isResponse) as Response | undefined;
    const status = response?.status;
    return unreachable(
      status !== undefined && status >= 500 ? ErrorCode.UNREACHABLE : ErrorCode.PROVIDER_ERROR,
      `the token endpoint ${tokenEndpoint} answered ${status === undefined ? 'something other than OAuth JSON' : `HTTP ${status}`} instead of an OAuth response. Check the issuer URL; try again later if the provider is having trouble`,
      error,
    );
  }
  const failure = transportFailure(error, tokenEndpoint, timeoutMs);
  return unreachable(failure.code, `the token endpoint: ${failure.text}`, error);
}

// ---------------------------------------------------------------------------------------------
// The token endpoint check of validate

export type TokenCheckOutcome =
  | { readonly kind: 'accepted'; readonly answer?: OAuthErrorAnswer }
  | { readonly kind: 'rejected'; readonly answer: OAuthErrorAnswer }
  | { readonly kind: 'not_allowed'; readonly answer: OAuthErrorAnswer }
  | { readonly kind: 'other'; readonly answer: OAuthErrorAnswer }
  | { readonly kind: 'failed'; readonly error: unknown };

/**
 * What the provider's answer to a made-up authorization code says about the client. It
 * authenticates the client before it looks at the code, so invalid_grant (the code) means the
 * Client ID and secret were accepted, and so does invalid_request about the code, redirect_uri or
 * PKCE verifier (Entra ID, Okta word some code problems so).
 */
export async function tokenCheckOutcome(error: unknown): Promise<TokenCheckOutcome> {
  if (error === undefined) return { kind: 'accepted' };
  const answer = await oauthErrorOf(error);
  if (!answer) return { kind: 'failed', error };
  if (answer.error === 'invalid_grant') return { kind: 'accepted', answer };
  if (
    answer.error === 'invalid_request' &&
    /code|redirect|verifier|pkce|grant/i.test(answer.description ?? '')
  ) {
    return { kind: 'accepted', answer };
  }
  if (isClientRejectionAnswer(answer)) return { kind: 'rejected', answer };
  if (answer.error === 'unauthorized_client' || answer.error === 'unsupported_grant_type') {
    return { kind: 'not_allowed', answer };
  }
  return { kind: 'other', answer };
}

export type RejectedField = 'clientId' | 'clientSecret' | 'expiredSecret' | 'either';

/** Provider wordings for an unknown client (Entra ID, Google, Okta, oidc-provider's authorization endpoint). */
const UNKNOWN_CLIENT =
  /AADSTS700016|\bclient(?:_id)?\s+(?:is\s+)?(?:not found|unknown|invalid|does not exist)|unknown client|oauth client was not found|application with identifier .* was not found|client_id.{0,30}(?:invalid|not found|unknown)|invalid.{0,20}client_id/i;
/** Provider wordings for an expired secret (Entra ID AADSTS7000222). */
const EXPIRED_SECRET = /AADSTS7000222|secret.{0,40}expired|expired.{0,40}secret/i;
/** Provider wordings for a wrong secret (Entra ID AADSTS7000215, Okta, oidc-provider's debug detail). */
const WRONG_SECRET =
  /AADSTS7000215|invalid (?:client )?secret|secret.{0,40}(?:invalid|incorrect|wrong|mismatch|does not match)|wrong secret/i;
/** An authorization endpoint error about the redirect_uri: the client itself is known. */
const REDIRECT_URI_ERROR = /redirect_uri|redirect uri|reply url|reply address|AADSTS50011|AADSTS500113/i;

/**
 * Which field a rejected client concerns. First the token endpoint's own words (Entra ID and
 * Okta say which); then, when it does not say (oidc-provider answers "client authentication
 * failed" for both, Keycloak "Invalid client or Invalid client credentials", Okta "Either the
 * client or the client credentials are invalid"), the authorization endpoint probe: an unknown
 * client there is a wrong Client ID, a complaint about the redirect_uri means the client exists
 * and so the secret is wrong. Otherwise both fields are named.
 */
export function rejectedField(
  answer: OAuthErrorAnswer,
  probe: { status: number; text: string } | undefined,
): {
  field: RejectedField;
  viaProbe: boolean;
} {
  const description = answer.description ?? '';
  if (EXPIRED_SECRET.test(description)) return { field: 'expiredSecret', viaProbe: false };
  if (WRONG_SECRET.test(description)) return { field: 'clientSecret', viaProbe: false };
  if (UNKNOWN_CLIENT.test(description)) return { field: 'clientId', viaProbe: false };
  if (probe && probe.status >= 400) {
    if (UNKNOWN_CLIENT.test(probe.text) || /\binvalid_client\b/.test(probe.text))
      return { field: 'clientId', viaProbe: true };
    if (REDIRECT_URI_ERROR.test(probe.text)) return { field: 'clientSecret', viaProbe: true };
  }
  return { field: 'either', viaProbe: false };
}

export function rejectionMessage(
  rejected: { field: RejectedField; viaProbe: boolean },
  answer: OAuthErrorAnswer,
  issuer: string,
  clientId: string,
): { code: ErrorCode; field: 'clientId' | 'clientSecret'; message: string } {
  const evidence = evidenceOf(answer);
  switch (rejected.field) {
    case 'clientId':
      return {
        code: ErrorCode.INVALID_CREDENTIALS,
        field: 'clientId',
        message: `Invalid Client ID: ${issuer} does not know the client "${clientId}" (token endpoint: ${evidence}${rejected.viaProbe ? '; the authorization endpoint does not know it either' : ''}). Copy the Client ID (Application ID) of the app registered for CloudPi ChatOps at your identity provider.`,
      };
    case 'clientSecret':
      return {
        code: ErrorCode.INVALID_CREDENTIALS,
        field: 'clientSecret',
        message: `Invalid client secret: ${issuer} knows the client "${clientId}" but refused its secret (token endpoint: ${evidence}). Enter the secret's value (not its ID) as shown when it was created, or create a new secret at your identity provider.`,
      };
    case 'expiredSecret':
      return {
        code: ErrorCode.EXPIRED_CREDENTIALS,
        field: 'clientSecret',
        message: `Invalid client secret: the secret of client "${clientId}" has expired (token endpoint: ${evidence}). Create a new client secret at your identity provider and enter it here.`,
      };
    default:
      return {
        code: ErrorCode.INVALID_CREDENTIALS,
        field: 'clientId',
        message: `Invalid Client ID or client secret: ${issuer} refused the client credentials (token endpoint: ${evidence}). Check both against the app registered for CloudPi ChatOps at your identity provider.`,
      };
  }
}

export function notAllowedMessage(answer: OAuthErrorAnswer, issuer: string, clientId: string): string {
  return `Invalid Client ID: ${issuer} does not let the client "${clientId}" use the authorization code flow (token endpoint: ${evidenceOf(answer)}). Register CloudPi ChatOps as a web application with the authorization code grant and a client secret.`;
}

export function otherAnswerMessage(answer: OAuthErrorAnswer, issuer: string): string {
  return `The token endpoint of ${issuer} did not accept the client check (${evidenceOf(answer)}). Check the SSO application at your identity provider; if it is temporarily unavailable, try again later.`;
}

// ---------------------------------------------------------------------------------------------
// Callback failures

const unauthenticated = (message: string, reason: string, cause: unknown): AppError =>
  new AppError(ErrorCode.UNAUTHENTICATED, message, { cause, details: { reason } });

const START_AGAIN = 'Start the sign-in again from the chat.';

const AUTHORIZATION_ERROR_ADVICE: Record<string, string> = {
  access_denied:
    'The sign-in was cancelled or refused at the identity provider; try again, and if it keeps failing ask your IdP administrator whether you are assigned to the application.',
  login_required: 'Sign in at the identity provider and try again.',
  interaction_required: 'Sign in at the identity provider and try again.',
  consent_required:
    'Consent to the application at the identity provider (or ask an administrator to), then try again.',
  invalid_scope:
    'An admin should check that the application may request the scopes openid, email and profile.',
  unauthorized_client: 'An admin should check that the application allows the authorization code flow.',
  server_error: 'The identity provider had a problem; try again later.',
  temporarily_unavailable: 'The identity provider is temporarily unavailable; try again later.',
};

/** Any failure of the redirect back: AppError UNAUTHENTICATED with a sentence, openid-client's error as cause. */
export async function callbackFailure(error: unknown, context: FailureContext): Promise<AppError> {
  if (isAppError(error) && error.code === ErrorCode.UNAUTHENTICATED) return error;
  const named = findInChain(error, (e) => (e.name === 'AuthorizationResponseError' ? e : undefined)) as
    | { error?: unknown; error_description?: unknown }
    | undefined;
  if (named && typeof named.error === 'string') {
    const description =
      typeof named.error_description === 'string'
        ? ` (${truncate(stripPeriod(named.error_description), 200)})`
        : '';
    const advice =
      AUTHORIZATION_ERROR_ADVICE[named.error] ??
      'An admin should check the SSO settings at the identity provider.';
    return unauthenticated(
      `Sign-in failed: the identity provider returned error=${named.error}${description}. ${advice}`,
      named.error,
      error,
    );
  }
  const answer = await oauthErrorOf(error);
  if (answer?.error === 'invalid_grant') {
    return unauthenticated(
      `Sign-in failed: the identity provider refused the authorization code (${evidenceOf(answer)}): it was already used (a replayed or reloaded sign-in link), has expired, or belongs to another sign-in. ${START_AGAIN}`,
      'invalid_grant',
      error,
    );
  }
  if (answer && isClientRejectionAnswer(answer)) {
    return unauthenticated(
      `Sign-in failed: the identity provider refused CloudPi's client credentials (${evidenceOf(answer)}). An admin should check the SSO Client ID and Client Secret.`,
      'invalid_client',
      error,
    );
  }
  if (answer) {
    return unauthenticated(
      `Sign-in failed: the identity provider's token endpoint answered ${evidenceOf(answer)}. ${START_AGAIN}`,
      answer.error,
      error,
    );
  }
  const messages = messagesOf(error);
  const checks: [RegExp, string, string][] = [
    [
      /"state"/,
      'state_mismatch',
      `Sign-in failed: the state in the redirect does not match this sign-in (state mismatch): the link is stale, was opened in another browser, or the request was forged. ${START_AGAIN}`,
    ],
    [
      /"iss" \(issuer\) response parameter|response parameter "iss"/,
      'issuer_mismatch',
      `Sign-in failed: the redirect does not come from the configured issuer ${context.issuerUrl} (iss mismatch). ${START_AGAIN}`,
    ],
    [
      /Authorization Code|no authorization code/i,
      'no_code',
      `Sign-in failed: the redirect from the identity provider carries no authorization code. ${START_AGAIN}`,
    ],
    [
      /"nonce"/,
      'nonce_mismatch',
      `Sign-in failed: the ID token's nonce does not match this sign-in (nonce mismatch): the token was issued for another sign-in or replayed. ${START_AGAIN}`,
    ],
    [
      /"exp" \(expiration time\)/,
      'id_token_expired',
      'Sign-in failed: the ID token has expired. Check that the clock of this server is correct, then sign in again.',
    ],
    [
      /"nbf"|"iat"|auth_time|too much time/,
      'id_token_time',
      'Sign-in failed: the ID token is not valid at this time (issued in the future or too long ago). Check that the clock of this server is correct, then sign in again.',
    ],
    [
      /"aud"|"azp"/,
      'wrong_audience',
      'Sign-in failed: the ID token was issued for another application (wrong audience). An admin should check the SSO Client ID.',
    ],
    [
      /JWT "iss"/,
      'issuer_mismatch',
      `Sign-in failed: the ID token was not issued by the configured issuer ${context.issuerUrl}. An admin should check the SSO issuer URL.`,
    ],
    [
      /signature|KEY_SELECTION|no applicable key/i,
      'bad_signature',
      `Sign-in failed: the ID token's signature does not verify against the identity provider's published keys. ${START_AGAIN}`,
    ],
  ];
  if (isTransportError(error)) {
    const failure = transportFailure(error, context.issuerUrl, context.timeoutMs);
    return unauthenticated(
      `Sign-in failed: Authorization endpoint unreachable: ${stripPeriod(failure.text)}.`,
      'unreachable',
      error,
    );
  }
  const code = oauthCodeOf(error);
  if (code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' || code === 'OAUTH_RESPONSE_IS_NOT_JSON') {
    const response = chainOf(error).find(isResponse) as Response | undefined;
    return unauthenticated(
      `Sign-in failed: the identity provider answered ${response ? `HTTP ${response.status}` : 'something unexpected'} instead of tokens. Try again later; if it keeps failing, an admin should check the SSO settings.`,
      'provider_error',
      error,
    );
  }
  for (const [pattern, reason, message] of checks) {
    if (pattern.test(messages)) return unauthenticated(message, reason, error);
  }
  return unauthenticated(
    `Sign-in failed: the identity provider's answer could not be validated (${truncate(stripPeriod(messagesOf(error).split(' | ').pop() ?? 'unknown error'), 200)}). ${START_AGAIN}`,
    'invalid_response',
    error,
  );
}

/** The userinfo request (made when the ID token lacks email or groups) failed. */
export async function userinfoFailure(error: unknown, context: FailureContext): Promise<AppError> {
  const answer = await oauthErrorOf(error);
  const cause = answer
    ? evidenceOf(answer)
    : isTransportError(error)
      ? stripPeriod(transportFailure(error, context.issuerUrl, context.timeoutMs).text.split('. ')[0] ?? '')
      : truncate(stripPeriod(messagesOf(error).split(' | ').pop() ?? 'unknown error'), 200);
  return unauthenticated(
    `Sign-in failed: the identity provider's userinfo endpoint did not return your profile (${cause}). Try again; if it keeps failing, an admin should check that the application may read the openid, email and profile scopes.`,
    'userinfo',
    error,
  );
}

// ---------------------------------------------------------------------------------------------
// Claims

type Claims = Record<string, unknown>;

/** A claim by name; a dotted name that is not itself a claim walks nested objects (Keycloak's realm_access.roles). */
function claimOf(claims: Claims | undefined, name: string): unknown {
  if (!claims) return undefined;
  if (name in claims) return claims[name];
  if (!name.includes('.') || /^https?:/.test(name)) return undefined;
  let current: unknown = claims;
  for (const part of name.split('.')) {
    if (!current || typeof current !== 'object') return undefined;
    current = (current as Claims)[part];
  }
  return current;
}

/** A groups claim as a list: a string is one group, arrays keep their strings and numbers. */
export function groupsOf(value: unknown): string[] {
  if (typeof value === 'string') return value === '' ? [] : [value];
  if (Array.isArray(value)) {
    return value.filter((v) => typeof v === 'string' || typeof v === 'number').map(String);
  }
  return [];
}

function booleanOf(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 'true') return true; // Cognito and others send strings
  if (value === 'false') return false;
  return undefined;
}

const stringOf = (value: unknown): string | undefined =>
  typeof value === 'string' && value !== '' ? value : undefined;

/** True when the ID token lacks what the identity needs and userinfo may add (email, groups). */
export function needsUserinfo(claims: Claims, groupsClaim: string): boolean {
  return stringOf(claims.email) === undefined || claimOf(claims, groupsClaim) === undefined;
}

/**
 * The identity from the validated ID token claims, completed from userinfo (whose subject
 * openid-client checked against the token's). The token's values win where both have one.
 */
export function identityOf(input: {
  readonly claims: Claims;
  readonly userinfo?: Claims;
  readonly groupsClaim: string;
  readonly refreshToken?: string;
}): SsoIdentity {
  const { claims, userinfo, groupsClaim } = input;
  const emailSource = stringOf(claims.email) !== undefined ? claims : userinfo;
  const email = stringOf(emailSource?.email);
  const emailVerified = booleanOf(emailSource?.email_verified);
  const name = stringOf(claims.name) ?? stringOf(userinfo?.name);
  const groupsValue = claimOf(claims, groupsClaim) ?? claimOf(userinfo, groupsClaim);
  return {
    subject: String(claims.sub),
    issuer: String(claims.iss),
    ...(email === undefined ? {} : { email }),
    ...(emailVerified === undefined ? {} : { emailVerified }),
    ...(name === undefined ? {} : { name }),
    groups: groupsOf(groupsValue),
    expiresAt: new Date(Number(claims.exp) * 1000),
    ...(input.refreshToken ? { refreshToken: input.refreshToken } : {}),
  };
}
