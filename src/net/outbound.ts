import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import pRetry, { AbortError } from 'p-retry';
import { Agent, type Dispatcher, fetch as undiciFetch } from 'undici';
import { AppError, ErrorCode, isAppError } from '../errors.js';
import { checkUrl, guardedLookup, type UrlPolicy } from './url-policy.js';

/**
 * Outbound HTTP to admin-entered hosts (Jira, Azure DevOps, ServiceNow, OIDC, ...). Every
 * connection goes through guardedLookup (SSRF: every resolved address, at connect time), every
 * call has a timeout, redirects are followed by hand so each hop's URL is checked again, and TLS
 * verification stays on.
 */
export const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_REDIRECTS = 5;

export interface OutboundOptions {
  readonly policy: UrlPolicy;
  readonly timeoutMs?: number;
}

export type OutboundFetch = (url: string | URL, init?: RequestInit) => Promise<Response>;

const dispatchers = new Map<string, Dispatcher>();

/** One connection pool per policy and timeout, shared by all tenants (sockets carry no tenant state). */
function dispatcherFor(policy: UrlPolicy, timeoutMs: number): Dispatcher {
  const key = `${policy.allowHttp}:${policy.allowPrivateNetworks}:${timeoutMs}`;
  let dispatcher = dispatchers.get(key);
  if (!dispatcher) {
    dispatcher = new Agent({
      connect: { lookup: guardedLookup(policy) as never, timeout: timeoutMs },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      keepAliveTimeout: 10_000,
    });
    dispatchers.set(key, dispatcher);
  }
  return dispatcher;
}

/** A fetch bound to the policy: SSRF-guarded, timed out, redirects re-checked. */
export function createOutboundFetch(options: OutboundOptions): OutboundFetch {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const dispatcher = dispatcherFor(options.policy, timeoutMs);
  return async (input, init = {}) => {
    let url = checkUrl(String(input), options.policy);
    let requestInit = init;
    for (let hop = 0; ; hop++) {
      const signal = init.signal
        ? AbortSignal.any([init.signal, AbortSignal.timeout(timeoutMs)])
        : AbortSignal.timeout(timeoutMs);
      const response = (await undiciFetch(url, {
        ...(requestInit as object),
        redirect: 'manual',
        signal,
        dispatcher,
      } as never)) as unknown as Response;
      const location = response.headers.get('location');
      if (response.status < 300 || response.status >= 400 || !location) return response;
      if (hop >= MAX_REDIRECTS)
        throw new AppError(ErrorCode.UNREACHABLE, `Too many redirects from ${url.host}.`);
      await response.body?.cancel();
      url = checkUrl(new URL(location, url).toString(), options.policy);
      // 303, and 301/302 after POST, turn into GET without a body, as browsers and fetch do.
      if (
        response.status === 303 ||
        ((response.status === 301 || response.status === 302) && init.method === 'POST')
      ) {
        const { body: _body, ...rest } = requestInit;
        requestInit = { ...rest, method: 'GET' };
      }
    }
  };
}

/**
 * https/http agents with the same connect-time guard, for SDKs built on node:http
 * (azure-devops-node-api's typed-rest-client). One keep-alive pool per policy and timeout.
 */
export function createGuardedAgents(options: OutboundOptions): GuardedAgents {
  const timeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const key = `${options.policy.allowHttp}:${options.policy.allowPrivateNetworks}:${timeout}`;
  let agents = agentPools.get(key);
  if (!agents) {
    const lookup = guardedLookup(options.policy) as never;
    agents = {
      https: new HttpsAgent({ keepAlive: true, lookup, timeout }),
      http: new HttpAgent({ keepAlive: true, lookup, timeout }),
    };
    agentPools.set(key, agents);
  }
  return agents;
}

export interface GuardedAgents {
  readonly https: HttpsAgent;
  readonly http: HttpAgent;
}

const agentPools = new Map<string, GuardedAgents>();

const UNREACHABLE_CODES = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

/** The innermost error with a code, through fetch's "fetch failed" and SDK wrappers. */
function rootCause(error: unknown): { code?: string; message: string; name?: string } {
  let current = error as { code?: string; message?: string; cause?: unknown; name?: string } | undefined;
  let best = current;
  for (let depth = 0; current && depth < 6; depth++) {
    if (current.code) best = current;
    current = current.cause as typeof current;
  }
  return { code: best?.code, message: best?.message ?? String(error), name: best?.name };
}

/**
 * Turns a transport failure into the provider error codes, with a sentence for the admin:
 * UNREACHABLE (DNS, refused, reset, timeout), TLS_ERROR (certificate problems; verification is
 * never turned off), INVALID_URL (the guard refused the address).
 */
export function classifyTransportError(error: unknown, host: string, field?: string): AppError {
  if (isAppError(error)) return error;
  const details = field ? { field } : {};
  const cause = rootCause(error);
  const code = cause.code ?? '';
  if (code === 'EPRIVATEADDRESS') {
    return new AppError(
      ErrorCode.INVALID_URL,
      `${cause.message}, which this server does not connect to. Use the public address (the operator can allow private networks with CLOUDPI_ALLOW_PRIVATE_NETWORKS=true).`,
      { cause: error, details },
    );
  }
  if (
    cause.name === 'TimeoutError' ||
    cause.name === 'AbortError' ||
    code === 'ABORT_ERR' ||
    /timed? ?out/i.test(cause.message)
  ) {
    return new AppError(
      ErrorCode.UNREACHABLE,
      `${host} did not answer in time. Check the address and that the server is up.`,
      {
        cause: error,
        details,
      },
    );
  }
  if (
    /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|HOSTNAME_MISMATCH|ALTNAME/i.test(code) ||
    /certificate/i.test(cause.message)
  ) {
    return new AppError(
      ErrorCode.TLS_ERROR,
      `The TLS certificate of ${host} could not be verified (${code || cause.message}). Use the server's correct https address; the certificate must be valid for that name and signed by a trusted authority.`,
      { cause: error, details },
    );
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new AppError(
      ErrorCode.UNREACHABLE,
      `The host ${host} was not found (DNS). Check the spelling of the address.`,
      {
        cause: error,
        details,
      },
    );
  }
  if (code === 'ECONNREFUSED') {
    return new AppError(
      ErrorCode.UNREACHABLE,
      `${host} refused the connection. Check the address and port, and that the server is running.`,
      {
        cause: error,
        details,
      },
    );
  }
  if (UNREACHABLE_CODES.has(code)) {
    return new AppError(
      ErrorCode.UNREACHABLE,
      `The connection to ${host} failed (${code}). Try again; if it persists, check the address and your network.`,
      {
        cause: error,
        details,
      },
    );
  }
  return new AppError(ErrorCode.PROVIDER_ERROR, `Calling ${host} failed: ${cause.message}`, {
    cause: error,
    details,
  });
}

/** Seconds to wait from a Retry-After header (seconds or HTTP date) or Azure DevOps' X-RateLimit-Reset. */
export function retryAfterSeconds(
  headers: Headers | Record<string, string | string[] | undefined>,
  now = Date.now(),
): number | undefined {
  const get = (name: string): string | undefined => {
    // Duck-typed: undici's Headers class is not Node's global one.
    if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
    const record = headers as Record<string, string | string[] | undefined>;
    const value = record[name] ?? record[name.toLowerCase()];
    return Array.isArray(value) ? value[0] : value;
  };
  const retryAfter = get('retry-after');
  if (retryAfter) {
    if (/^\d+(\.\d+)?$/.test(retryAfter.trim())) return Math.ceil(Number(retryAfter));
    const date = Date.parse(retryAfter);
    if (!Number.isNaN(date)) return Math.max(0, Math.ceil((date - now) / 1000));
  }
  const reset = get('x-ratelimit-reset');
  if (reset && /^\d+$/.test(reset)) return Math.max(0, Math.ceil(Number(reset) - now / 1000));
  return undefined;
}

export interface RetryOptions {
  /** Total attempts, first included. */
  readonly maxAttempts?: number;
  readonly minDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Longest Retry-After honoured in place; longer waits surface as RATE_LIMITED for the job to reschedule. */
  readonly maxRetryAfterSeconds?: number;
}

const RETRYABLE = new Set<string>([ErrorCode.RATE_LIMITED, ErrorCode.UNREACHABLE]);

/** True for failures worth retrying: rate limits, transport failures and 5xx (PROVIDER_ERROR with status >= 500). */
export function isRetryable(error: unknown): boolean {
  if (!isAppError(error)) return false;
  if (RETRYABLE.has(error.code)) return true;
  return error.code === ErrorCode.PROVIDER_ERROR && Number(error.details?.status ?? 0) >= 500;
}

/**
 * Runs `operation` (which throws AppErrors) with exponential backoff on retryable failures,
 * waiting at least the server's Retry-After before the next attempt. Other errors (4xx) are
 * thrown at once.
 */
export async function withRetries<T>(operation: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const maxAttempts = options.maxAttempts ?? 3;
  const maxRetryAfter = options.maxRetryAfterSeconds ?? 60;
  return pRetry(
    async () => {
      try {
        return await operation();
      } catch (error) {
        if (!isRetryable(error)) throw new AbortError(error as Error);
        throw error;
      }
    },
    {
      retries: Math.max(0, maxAttempts - 1),
      minTimeout: options.minDelayMs ?? 250,
      maxTimeout: options.maxDelayMs ?? 5_000,
      factor: 2,
      randomize: true,
      onFailedAttempt: async ({ error, retriesLeft }) => {
        const wait = Number((error as AppError).details?.retryAfterSeconds ?? 0);
        if (retriesLeft > 0 && wait > 0) {
          if (wait > maxRetryAfter) throw error;
          await new Promise((resolve) => setTimeout(resolve, wait * 1000));
        }
      },
    },
  ).catch((error: unknown) => {
    throw error instanceof AbortError
      ? ((error as { originalError?: unknown }).originalError ?? error)
      : error;
  });
}
