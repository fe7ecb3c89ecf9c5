import { request as httpRequest } from 'node:http';
import { expect, it } from 'vitest';
import { describeEachDatabase } from '../support/databases.js';
import { useService } from '../support/service.js';

describeEachDatabase('HTTP service', (kind) => {
  const running = useService(kind, {
    CLOUDPI_API_RATE_LIMIT: '5',
    CLOUDPI_METRICS_TOKEN: 'metrics-token-0123456789',
  });

  async function tenantWithKey(ref: string) {
    const { repositories } = running.service;
    const [platform, externalId] = ref.split(':') as ['slack', string];
    const tenant = await repositories.tenants.ensure(platform, externalId, 'Acme');
    const { key, prefix } = await repositories.apiKeys.create(tenant.id, 'test');
    return { tenant, key, prefix };
  }

  it('answers liveness and readiness as JSON', async () => {
    const live = await fetch(running.url('/healthz'));
    expect(live.status).toBe(200);
    expect(await live.json()).toMatchObject({ status: 'ok' });
    const ready = await fetch(running.url('/readyz'));
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      status: 'ready',
      checks: { database: 'ok', migrations: 'ok', queue: 'ok' },
    });
  });

  it('authenticates machine callers with tenant API keys', async () => {
    const { tenant, key } = await tenantWithKey('slack:T_HTTP_AUTH');
    const ok = await fetch(running.url('/api/v1/tenant'), { headers: { authorization: `Bearer ${key}` } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({
      id: tenant.id,
      ref: 'slack:T_HTTP_AUTH',
      platform: 'slack',
      name: 'Acme',
    });

    const missing = await fetch(running.url('/api/v1/tenant'));
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toContain('Bearer');
    expect(await missing.json()).toEqual({
      error: { code: 'UNAUTHENTICATED', message: 'Send a tenant API key as "Authorization: Bearer <key>".' },
    });

    const wrong = await fetch(running.url('/api/v1/tenant'), {
      headers: { authorization: `Bearer ${key.slice(0, -2)}zz` },
    });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: { message: string } }).error.message).toContain(
      'not valid or has been revoked',
    );
  });

  it('refuses a revoked key', async () => {
    const { tenant, key, prefix } = await tenantWithKey('slack:T_HTTP_REVOKE');
    await running.service.repositories.apiKeys.revoke(tenant.id, prefix);
    const res = await fetch(running.url('/api/v1/tenant'), { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(401);
  });

  it('rate-limits each key with 429 and Retry-After', async () => {
    const { key } = await tenantWithKey('slack:T_HTTP_RATE');
    const other = await tenantWithKey('slack:T_HTTP_RATE_2');
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await fetch(running.url('/api/v1/tenant'), { headers: { authorization: `Bearer ${key}` } });
      statuses.push(res.status);
      if (res.status === 429) {
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('RATE_LIMITED');
      } else await res.arrayBuffer();
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    // Another key has its own budget.
    const res = await fetch(running.url('/api/v1/tenant'), {
      headers: { authorization: `Bearer ${other.key}` },
    });
    expect(res.status).toBe(200);
  });

  it('answers bad bodies, unknown routes and oversized payloads with JSON errors', async () => {
    const { key } = await tenantWithKey('slack:T_HTTP_BODY');
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const bad = await fetch(running.url('/api/v1/tenant'), { method: 'POST', headers, body: '{"a":' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({
      error: { code: 'VALIDATION', message: 'The request body is not valid JSON.' },
    });

    const big = await fetch(running.url('/api/v1/tenant'), {
      method: 'POST',
      headers,
      body: JSON.stringify({ blob: 'x'.repeat(2 * 1024 * 1024) }),
    });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe('PAYLOAD_TOO_LARGE');

    const missing = await fetch(running.url('/nowhere'));
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({
      error: { code: 'NOT_FOUND', message: 'No route for GET /nowhere.' },
    });
  });

  it('serves Prometheus metrics behind the metrics token, with latency by route', async () => {
    await fetch(running.url('/healthz'));
    const denied = await fetch(running.url('/metrics'));
    expect(denied.status).toBe(401);
    const res = await fetch(running.url('/metrics'), {
      headers: { authorization: 'Bearer metrics-token-0123456789' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(
      /cloudpi_http_request_duration_seconds_bucket\{le="[^"]+",method="GET",route="\/healthz",status="200"\}/,
    );
    expect(text).toContain('route="/api/v1/tenant"');
    expect(text).toContain('# TYPE cloudpi_jobs_total counter');
    expect(text).toContain('process_resident_memory_bytes');
  });

  it('never logs a presented API key', async () => {
    const { key } = await tenantWithKey('slack:T_HTTP_LOG');
    await fetch(running.url('/api/v1/tenant'), { headers: { authorization: `Bearer ${key}` } });
    expect(running.logs()).not.toContain(key.slice(-20));
  });

  it('finishes a request in flight when shutdown starts, and reports draining', async () => {
    const { key } = await tenantWithKey('slack:T_HTTP_DRAIN');
    const { port } = new URL(running.service.url);
    const body = JSON.stringify({ hello: 'world' });
    // Headers now, body later: the request is in flight when close() begins.
    const response = new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/api/v1/tenant',
          headers: {
            authorization: `Bearer ${key}`,
            'content-type': 'application/json',
            'content-length': body.length,
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
        },
      );
      req.on('error', reject);
      req.write(body.slice(0, 5));
      setTimeout(() => req.end(body.slice(5)), 400);
    });
    await new Promise((r) => setTimeout(r, 100));
    const closing = running.service.close();
    expect(running.service.draining).toBe(true);
    // The POST route does not exist (only GET), so the finished request gets its JSON 404.
    expect((await response).status).toBe(404);
    await closing;
    await expect(fetch(running.url('/healthz'))).rejects.toThrow();
  });
});
