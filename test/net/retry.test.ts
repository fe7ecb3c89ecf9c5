import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import { retryAfterSeconds, withRetries } from '../../src/net/outbound.js';

describe('retry policy', () => {
  it('reads Retry-After (seconds or date) and X-RateLimit-Reset from any Headers implementation', async () => {
    const { Headers: UndiciHeaders } = await import('undici');
    expect(retryAfterSeconds(new UndiciHeaders({ 'retry-after': '3' }) as unknown as Headers)).toBe(3);
    expect(retryAfterSeconds(new Headers({ 'Retry-After': '2' }))).toBe(2);
    const now = Date.parse('2026-11-29T12:00:00Z');
    expect(retryAfterSeconds({ 'retry-after': 'Sun, 29 Nov 2026 12:00:05 GMT' }, now)).toBe(5);
    expect(retryAfterSeconds({ 'x-ratelimit-reset': String(now / 1000 + 7) }, now)).toBe(7);
    expect(retryAfterSeconds({})).toBeUndefined();
  });

  it('retries rate limits no earlier than Retry-After, and 5xx with backoff', async () => {
    const calls: number[] = [];
    const result = await withRetries(
      async () => {
        calls.push(Date.now());
        if (calls.length === 1)
          throw new AppError('RATE_LIMITED', 'slow down', { details: { retryAfterSeconds: 1 } });
        if (calls.length === 2)
          throw new AppError('PROVIDER_ERROR', 'bad gateway', { details: { status: 502 } });
        return 'ok';
      },
      { maxAttempts: 3, minDelayMs: 10 },
    );
    expect(result).toBe('ok');
    expect(calls[1]! - calls[0]!).toBeGreaterThanOrEqual(1_000);
  });

  it('does not retry other client errors, and gives up after the attempts', async () => {
    let calls = 0;
    await expect(
      withRetries(async () => {
        calls++;
        throw new AppError('INVALID_CREDENTIALS', 'wrong token');
      }),
    ).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS' });
    expect(calls).toBe(1);
    calls = 0;
    await expect(
      withRetries(
        async () => {
          calls++;
          throw new AppError('UNREACHABLE', 'down');
        },
        { maxAttempts: 3, minDelayMs: 1, maxDelayMs: 5 },
      ),
    ).rejects.toMatchObject({ code: 'UNREACHABLE' });
    expect(calls).toBe(3);
  });
});
