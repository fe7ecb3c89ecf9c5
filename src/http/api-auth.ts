import type { NextFunction, Request, Response } from 'express';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { AppError, ErrorCode } from '../errors.js';
import type { ApiKeyRepository } from '../storage/repositories/api-keys.js';
import type { Tenant, TenantRepository } from '../storage/repositories/tenants.js';

export interface ApiCaller {
  readonly tenant: Tenant;
  readonly keyId: string;
}

declare module 'express-serve-static-core' {
  interface Request {
    apiCaller?: ApiCaller;
  }
}

export interface ApiAuthOptions {
  readonly apiKeys: ApiKeyRepository;
  readonly tenants: TenantRepository;
  /** Requests per minute per key. */
  readonly perMinute: number;
  /** Failed authentications per minute per client address before it is refused outright. */
  readonly failuresPerMinute?: number;
}

/**
 * Machine callers: `Authorization: Bearer cpk_...`. Keys are checked against their stored hash in
 * constant time; each key has its own per-minute budget, and a client address that keeps
 * presenting bad keys is refused for the rest of the minute (valid keys from it still work).
 * Limits are per replica (in memory); behind N replicas the effective budget is up to N times the
 * setting.
 */
export function apiKeyAuth(options: ApiAuthOptions) {
  const perKey = new RateLimiterMemory({ points: options.perMinute, duration: 60 });
  const failures = new RateLimiterMemory({ points: options.failuresPerMinute ?? 30, duration: 60 });

  return async function authenticate(req: Request, res: Response, next: NextFunction): Promise<void> {
    const address = req.socket.remoteAddress ?? 'unknown';
    const header = req.get('authorization') ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    const key = match ? await options.apiKeys.authenticate(match[1]!) : undefined;
    if (!key) {
      // Only failures count and only failures are refused: behind a proxy every caller shares
      // one address, and someone else's bad keys must not lock out a valid one.
      const blocked = await failures.get(address);
      if (blocked && blocked.remainingPoints <= 0) {
        throw rateLimited(res, blocked, 'Too many failed authentication attempts from this address.');
      }
      await consumeQuietly(failures, address);
      if (!match) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="cloudpi"');
        throw new AppError(
          ErrorCode.UNAUTHENTICATED,
          'Send a tenant API key as "Authorization: Bearer <key>".',
        );
      }
      res.setHeader('WWW-Authenticate', 'Bearer realm="cloudpi", error="invalid_token"');
      throw new AppError(
        ErrorCode.UNAUTHENTICATED,
        'The API key is not valid or has been revoked. Create one with: cloudpi apikey create --tenant <tenant>',
      );
    }
    try {
      const state = await perKey.consume(key.id);
      res.setHeader('RateLimit-Limit', String(options.perMinute));
      res.setHeader('RateLimit-Remaining', String(state.remainingPoints));
    } catch (error) {
      if (error instanceof RateLimiterRes) {
        throw rateLimited(res, error, `This API key is limited to ${options.perMinute} requests per minute.`);
      }
      throw error;
    }
    const tenant = await options.tenants.get(key.tenantId);
    if (!tenant)
      throw new AppError(ErrorCode.UNAUTHENTICATED, 'The API key belongs to a tenant that no longer exists.');
    req.apiCaller = { tenant, keyId: key.id };
    void options.apiKeys.touch(key.id).catch(() => {});
    next();
  };
}

async function consumeQuietly(limiter: RateLimiterMemory, key: string): Promise<void> {
  await limiter.consume(key).catch(() => {});
}

function rateLimited(res: Response, state: RateLimiterRes, message: string): AppError {
  const seconds = Math.max(1, Math.ceil(state.msBeforeNext / 1000));
  res.setHeader('Retry-After', String(seconds));
  return new AppError(ErrorCode.RATE_LIMITED, `${message} Retry after ${seconds} s.`, {
    details: { retryAfterSeconds: seconds },
  });
}
