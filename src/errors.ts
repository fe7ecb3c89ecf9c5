/**
 * One error class with stable string codes. Codes are part of the public contract (API bodies,
 * CLI exit messages, logs); change a code only with a changelog entry.
 */
export const ErrorCode = {
  CONFIG_INVALID: 'CONFIG_INVALID',
  INTERNAL: 'INTERNAL',
  NOT_FOUND: 'NOT_FOUND',
  VALIDATION: 'VALIDATION',
  CONFLICT: 'CONFLICT',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  RATE_LIMITED: 'RATE_LIMITED',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  SECRET_KEY_UNKNOWN: 'SECRET_KEY_UNKNOWN',
  SECRET_TAMPERED: 'SECRET_TAMPERED',
  SECRET_MALFORMED: 'SECRET_MALFORMED',
  DATABASE_LOCKED: 'DATABASE_LOCKED',
  DATABASE_UNAVAILABLE: 'DATABASE_UNAVAILABLE',
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  // Ticket providers, SSO and SMTP: what went wrong talking to the admin's system.
  INVALID_URL: 'INVALID_URL',
  UNREACHABLE: 'UNREACHABLE',
  TLS_ERROR: 'TLS_ERROR',
  INVALID_CREDENTIALS: 'INVALID_CREDENTIALS',
  EXPIRED_CREDENTIALS: 'EXPIRED_CREDENTIALS',
  PROVIDER_ERROR: 'PROVIDER_ERROR',
  INVALID_INPUT: 'INVALID_INPUT',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const httpStatusByCode: Partial<Record<ErrorCode, number>> = {
  CONFIG_INVALID: 500,
  NOT_FOUND: 404,
  VALIDATION: 400,
  CONFLICT: 409,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  RATE_LIMITED: 429,
  PAYLOAD_TOO_LARGE: 413,
  DATABASE_UNAVAILABLE: 503,
  SHUTTING_DOWN: 503,
  INVALID_URL: 400,
  INVALID_INPUT: 400,
  INVALID_CREDENTIALS: 400,
  EXPIRED_CREDENTIALS: 400,
  UNREACHABLE: 502,
  TLS_ERROR: 502,
  PROVIDER_ERROR: 502,
};

export interface AppErrorOptions {
  cause?: unknown;
  /** Extra, non-secret detail safe to return to the caller (field errors, retry hints). */
  details?: Record<string, unknown>;
}

export class AppError extends Error {
  override readonly name = 'AppError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }

  get httpStatus(): number {
    return httpStatusByCode[this.code] ?? 500;
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}

/** Wraps anything thrown at an edge into an AppError, keeping the original as `cause`. */
/**
 * Codes of a database that is not there (restarting, failing over, unreachable): postgres.js'
 * own connection errors, socket errors, and PostgreSQL's shutdown and start-up SQLSTATEs.
 */
const DATABASE_GONE = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down, recovering)
  '08000',
  '08003',
  '08006',
]);

/** True when the error (or its cause, as drizzle wraps driver errors) says the database is gone. */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let e = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && DATABASE_GONE.has(code)) return true;
  }
  return false;
}

export function asAppError(error: unknown): AppError {
  if (isAppError(error)) return error;
  if (isDatabaseUnavailable(error))
    return new AppError(
      ErrorCode.DATABASE_UNAVAILABLE,
      'The database is not reachable right now; nothing was changed. Try again in a few seconds.',
      { cause: error, details: { retryAfterSeconds: 5 } },
    );
  return new AppError(ErrorCode.INTERNAL, 'An unexpected error occurred.', { cause: error });
}
