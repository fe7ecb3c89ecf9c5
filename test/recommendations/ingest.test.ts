import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type CliIo, runCli } from '../../src/cli.js';
import {
  ingestRefusedSchema,
  ingestResponseSchema,
  MAX_BATCH,
  RECOMMENDATION_FIELDS,
  recommendationViewSchema,
  storedRecommendationSchema,
} from '../../src/recommendations/ingest.js';
import { openDatabase } from '../../src/storage/db.js';
import { RecommendationRepository } from '../../src/storage/repositories/recommendations.js';
import { describeEachDatabase, type FreshDatabase, freshDatabase } from '../support/databases.js';
import { keyEntry, masterKey } from '../support/keys.js';
import { useService } from '../support/service.js';

type Json = Record<string, unknown>;

const full = {
  id: 'rec-1',
  title: 'Rightsize i-0abc (m5.4xlarge → m5.xlarge)',
  description: 'CPU under 5 % for 30 days.',
  cloud: 'aws',
  account: '123456789012',
  resource: 'arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc',
  region: 'eu-west-1',
  category: 'rightsizing',
  severity: 'high',
  monthlySavings: 412.5,
  currency: 'EUR',
  link: 'https://app.cloudpi.example/recommendations/rec-1',
  tags: ['team:payments', 'prod'],
};

describeEachDatabase('recommendations ingest API', (kind) => {
  const running = useService(kind);
  let key: string;
  let tenantId: string;

  beforeAll(async () => {
    const { repositories } = running.service;
    const tenant = await repositories.tenants.ensure('slack', 'T_INGEST', 'Acme');
    tenantId = tenant.id;
    key = (await repositories.apiKeys.create(tenant.id, 'ingest')).key;
  });

  function post(body: unknown, bearer = key, raw?: string) {
    return fetch(running.url('/api/v1/recommendations'), {
      method: 'POST',
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      body: raw ?? JSON.stringify(body),
    });
  }
  async function send(body: unknown, expected: number): Promise<Json> {
    const res = await post(body);
    const json = (await res.json()) as Json;
    expect(res.status, JSON.stringify(json).slice(0, 500)).toBe(expected);
    return json;
  }
  async function ingest(body: unknown, expected: 200 | 207 = 200) {
    return ingestResponseSchema.parse(await send(body, expected));
  }
  async function refused(body: unknown) {
    return ingestRefusedSchema.parse(await send(body, 400));
  }
  async function get(id: string, bearer = key) {
    return fetch(running.url(`/api/v1/recommendations/${encodeURIComponent(id)}`), {
      headers: { authorization: `Bearer ${bearer}` },
    });
  }

  it('stores a single object and reads it back with its (empty) cards and tickets', async () => {
    const report = await ingest(full);
    expect(report).toEqual({
      summary: { received: 1, created: 1, updated: 0, unchanged: 0, invalid: 0 },
      results: [{ index: 0, id: 'rec-1', status: 'created' }],
    });
    const res = await get('rec-1');
    expect(res.status).toBe(200);
    const view = recommendationViewSchema.parse(await res.json());
    expect(view).toMatchObject({ id: 'rec-1', recommendation: full, cards: [], tickets: [] });
  });

  it('accepts an array and a {recommendations: [...]} wrapper, and normalizes items', async () => {
    const array = await ingest([
      { id: 'arr-1', title: '  Delete idle disk  ', region: '', account: null, tags: ['a', 'a', 'b'] },
      { id: 'arr-2', title: 'Buy savings plan', monthlySavings: 0 },
    ]);
    expect(array.results.map((r) => r.status)).toEqual(['created', 'created']);
    const wrapped = await ingest({ recommendations: [{ id: 'wrap-1', title: 'Stop dev VMs at night' }] });
    expect(wrapped.results).toEqual([{ index: 0, id: 'wrap-1', status: 'created' }]);

    const view = recommendationViewSchema.parse(await (await get('arr-1')).json());
    // Trimmed title, empty and null fields left out, default currency, duplicate tags dropped.
    expect(view.recommendation).toEqual({
      id: 'arr-1',
      title: 'Delete idle disk',
      currency: 'USD',
      tags: ['a', 'b'],
    });
    const zero = recommendationViewSchema.parse(await (await get('arr-2')).json());
    expect(zero.recommendation.monthlySavings).toBe(0);
  });

  it('reports invalid items with index, id and field errors and stores the valid ones (207)', async () => {
    const report = await ingest(
      [
        { id: 'mixed-ok', title: 'Fine' },
        { id: 'mixed-bad', title: '', severity: 'urgent', currency: 'usd', monthlySavings: -3 },
        { title: 'No id', link: 'javascript:alert(1)', tags: ['ok', 42] },
        'not an object',
      ],
      207,
    );
    expect(report.summary).toEqual({ received: 4, created: 1, updated: 0, unchanged: 0, invalid: 3 });
    expect(report.results[0]).toEqual({ index: 0, id: 'mixed-ok', status: 'created' });
    const bad = report.results[1]!;
    expect(bad).toMatchObject({ index: 1, id: 'mixed-bad', status: 'invalid' });
    expect(bad.errors!.map((e) => e.field).sort()).toEqual([
      'currency',
      'monthlySavings',
      'severity',
      'title',
    ]);
    expect(bad.errors!.find((e) => e.field === 'currency')!.message).toContain('ISO 4217');
    const noId = report.results[2]!;
    expect(noId.id).toBeUndefined();
    expect(noId.errors!.map((e) => e.field).sort()).toEqual(['id', 'link', 'tags[1]']);
    expect(report.results[3]).toEqual({
      index: 3,
      status: 'invalid',
      errors: [{ field: '', message: 'must be an object (a recommendation)' }],
    });
    expect((await get('mixed-bad')).status).toBe(404);
    expect((await get('mixed-ok')).status).toBe(200);
  });

  it('answers 400 with the error and the per-item results when nothing is stored', async () => {
    const report = await refused({ id: 'x', cloud: 'AWS' });
    expect(report.error.code).toBe('VALIDATION');
    expect(report.results[0]!.errors!.map((e) => e.field).sort()).toEqual(['cloud', 'title']);

    for (const body of ['"just a string"', '42', '{"recommendations": {"id": "x"}}']) {
      const res = await post(undefined, key, body);
      expect(res.status, body).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('VALIDATION');
    }
    const text = await fetch(running.url('/api/v1/recommendations'), {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'text/plain' },
      body: 'id=1',
    });
    expect(text.status).toBe(400);
    expect(((await text.json()) as { error: { message: string } }).error.message).toContain(
      'Content-Type: application/json',
    );
  });

  it('is idempotent on (tenant, id): identical resends are unchanged, changed ones updated', async () => {
    const item = { id: 'idem-1', title: 'Idle load balancer', monthlySavings: 18, tags: ['x'] };
    expect((await ingest(item)).results[0]!.status).toBe('created');
    // Same content in another key order (and unknown fields, which are not stored): unchanged.
    const reordered = {
      tags: ['x'],
      monthlySavings: 18,
      title: 'Idle load balancer',
      id: 'idem-1',
      extra: 1,
    };
    expect((await ingest(reordered)).results[0]).toEqual({
      index: 0,
      id: 'idem-1',
      status: 'unchanged',
      ignoredFields: ['extra'],
    });
    const before = recommendationViewSchema.parse(await (await get('idem-1')).json());
    const changed = await ingest([
      { ...item, monthlySavings: 20 },
      { ...item, monthlySavings: 20 },
    ]);
    expect(changed.results.map((r) => r.status)).toEqual(['updated', 'unchanged']);
    const after = recommendationViewSchema.parse(await (await get('idem-1')).json());
    expect(after.internalId).toBe(before.internalId);
    expect(after.recommendation.monthlySavings).toBe(20);
    const rows = await running.service.database.rows<{ n: number }>(
      (await import('drizzle-orm'))
        .sql`select count(*)::int as n from recommendations where external_id = 'idem-1'`,
    );
    expect(rows[0]!.n).toBe(1);
  });

  it(`accepts a batch of ${MAX_BATCH} and refuses ${MAX_BATCH + 1}`, async () => {
    const batch = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        ...full,
        id: `bulk-${i}`,
        description: 'd'.repeat(10_000),
      }));
    const report = await ingest(batch(MAX_BATCH));
    expect(report.summary).toMatchObject({ received: MAX_BATCH, created: MAX_BATCH, invalid: 0 });
    const again = await ingest(batch(MAX_BATCH));
    expect(again.summary.unchanged).toBe(MAX_BATCH);

    const res = await post(batch(MAX_BATCH + 1));
    expect(res.status).toBe(413);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(body.error.message).toContain(
      `at most ${MAX_BATCH} recommendations; this one has ${MAX_BATCH + 1}`,
    );
    expect((await get(`bulk-${MAX_BATCH}`)).status).toBe(404);
  }, 60_000);

  it('refuses bodies over the byte limit with a JSON 413', async () => {
    const res = await post({ id: 'huge', title: 'x', description: 'y'.repeat(11 * 1024 * 1024) });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('stores hostile text as given, ignores prototype keys and refuses deep nesting and huge fields', async () => {
    const hostile = {
      id: 'hostile-<!channel>',
      title: '<!channel> <script>alert("x")</script> & "quotes" \\ \u2028',
      description: '<@U123> <https://evil.example|click> </div>',
    };
    const raw = `{"id": ${JSON.stringify(hostile.id)}, "title": ${JSON.stringify(hostile.title)}, "description": ${JSON.stringify(hostile.description)}, "__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}`;
    const res = await post(undefined, key, raw);
    expect(res.status).toBe(200);
    const report = ingestResponseSchema.parse(await res.json());
    expect(report.results[0]).toMatchObject({
      status: 'created',
      id: hostile.id,
      ignoredFields: ['__proto__', 'constructor'],
    });
    expect(({} as Json).polluted).toBeUndefined();
    const view = await get(hostile.id);
    expect(view.status).toBe(200);
    const text = await view.text();
    const parsed = recommendationViewSchema.parse(JSON.parse(text));
    expect(parsed.recommendation).toEqual({ ...hostile, title: hostile.title.trim(), currency: 'USD' });
    expect(Object.keys(parsed.recommendation)).not.toContain('__proto__');

    // Deep nesting: refused as a whole, with a clear message.
    const deep = `[{"id":"deep","title":"t","extra":${'['.repeat(5_000)}${']'.repeat(5_000)}}]`;
    const nested = await post(undefined, key, deep);
    expect(nested.status).toBe(400);
    expect(((await nested.json()) as { error: { message: string } }).error.message).toContain('nested');

    // Huge strings, NUL and broken surrogates: the item is invalid, the batch still answers.
    const big = await ingest(
      [
        { id: 'big', title: 't'.repeat(600), description: 'd'.repeat(10_001) },
        { id: 'nul', title: 'a\u0000b' },
        { id: 'surrogate', title: 'a\ud800b' },
        { id: 'x'.repeat(5_000), title: 't' },
        { id: 'ok-next-to-bad', title: 'fine' },
      ],
      207,
    );
    expect(big.results[0]!.errors!.map((e) => e.message)).toEqual([
      'must be at most 500 characters',
      'must be at most 10000 characters',
    ]);
    expect(big.results[1]!.errors![0]!.message).toContain('NUL');
    expect(big.results[2]!.errors![0]!.message).toContain('surrogate');
    expect(big.results[3]!.id).toHaveLength(201);
    expect(big.results[4]!.status).toBe('created');
  });

  it("keeps tenants apart: another tenant's key gets 404", async () => {
    const { repositories } = running.service;
    const other = await repositories.tenants.ensure('slack', 'T_INGEST_OTHER', 'Other');
    const otherKey = (await repositories.apiKeys.create(other.id, 'other')).key;
    const res = await get('rec-1', otherKey);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: { code: 'NOT_FOUND', message: 'No recommendation with id "rec-1" in this tenant.' },
    });
    // The same id in the other tenant is a different recommendation.
    const res2 = await post({ id: 'rec-1', title: 'Theirs' }, otherKey);
    expect(((await res2.json()) as { results: { status: string }[] }).results[0]!.status).toBe('created');
    const mine = recommendationViewSchema.parse(await (await get('rec-1')).json());
    expect(mine.recommendation.title).toBe(full.title);
  });

  it('returns the cards and tickets of a recommendation', async () => {
    await ingest({ id: 'with-cards', title: 'Has cards' });
    const repo = running.service.repositories.recommendations;
    const row = (await repo.findByExternalId(tenantId, 'with-cards'))!;
    const { card } = await repo.ensureCard(tenantId, row.id, 'slack', 'C0ALERTS');
    await repo.markCardPosted(tenantId, card.id, '1700000000.000100');
    const { ticket } = await repo.claimTicket(tenantId, row.id, 'jira', `cloudpi-${row.id}-jira`, 'slack:U1');
    await repo.completeTicket(tenantId, ticket.id, {
      key: 'OPS-7',
      url: 'https://jira.example/browse/OPS-7',
      status: 'open',
    });
    const view = recommendationViewSchema.parse(await (await get('with-cards')).json());
    expect(view.cards).toEqual([
      expect.objectContaining({ platform: 'slack', channelId: 'C0ALERTS', state: 'posted' }),
    ]);
    expect(view.tickets).toEqual([
      expect.objectContaining({ provider: 'jira', key: 'OPS-7', status: 'open', createdBy: 'slack:U1' }),
    ]);
  });

  it('needs a valid API key (401)', async () => {
    const res = await post(full, 'cpk_000000000000_nope');
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UNAUTHENTICATED');
    expect((await fetch(running.url('/api/v1/recommendations/rec-1'))).status).toBe(401);
  });

  it('serves a public OpenAPI 3.1 document with the same field names', async () => {
    const res = await fetch(running.url('/api/v1/openapi.json'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<string, Record<string, Json>>;
      components: {
        schemas: Record<string, { properties: Json; required?: string[] }>;
        securitySchemes: Json;
      };
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/api/v1/recommendations', '/api/v1/recommendations/{id}']),
    );
    expect(doc.paths['/api/v1/recommendations']!.post).toBeDefined();
    expect(doc.paths['/api/v1/recommendations/{id}']!.get).toBeDefined();
    expect(doc.components.securitySchemes.apiKey).toMatchObject({ type: 'http', scheme: 'bearer' });
    const input = doc.components.schemas.RecommendationInput!;
    expect(Object.keys(input.properties)).toEqual([...RECOMMENDATION_FIELDS]);
    expect(input.required).toEqual(['id', 'title']);
    // What is stored has the same names as what is sent, the names the ticket text reads.
    expect(Object.keys(storedRecommendationSchema.shape)).toEqual([...RECOMMENDATION_FIELDS]);
    for (const name of ['IngestResponse', 'Recommendation', 'Error'])
      expect(doc.components.schemas[name], name).toBeDefined();
    // Every $ref resolves.
    const refs = JSON.stringify(doc).match(/"#\/components\/schemas\/[A-Za-z]+"/g) ?? [];
    for (const ref of refs) expect(doc.components.schemas[ref.slice(22, -1)], ref).toBeDefined();
  });

  it('logs counts at info', () => {
    expect(running.logs()).toContain('recommendations ingested');
  });
});

describeEachDatabase('cloudpi recommendations push', (kind) => {
  let fresh: FreshDatabase;
  let env: Record<string, string>;

  beforeAll(async () => {
    fresh = await freshDatabase(kind);
    env = {
      CLOUDPI_DATA_DIR: fresh.dir,
      LOG_LEVEL: 'error',
      ...(fresh.target.kind === 'postgres'
        ? { DATABASE_URL: fresh.target.url, CLOUDPI_MASTER_KEYS: keyEntry(masterKey('k1')) }
        : {}),
    };
  });
  afterAll(async () => {
    await fresh?.drop();
  });

  async function cli(...argv: string[]) {
    let out = '';
    let err = '';
    const io: CliIo = { env, out: (t) => (out += t), err: (t) => (err += t) };
    const code = await runCli(argv, io);
    return { code, out, err };
  }

  it('stores a file through the same ingest and prints the per-item results', async () => {
    expect((await cli('tenant', 'create', 'slack:T_PUSH')).code).toBe(0);
    const file = path.join(fresh.dir, 'recs.json');
    writeFileSync(
      file,
      JSON.stringify({
        recommendations: [full, { id: 'push-2', title: 'Second' }, { id: 'push-bad', severity: 'urgent' }],
      }),
    );
    const first = await cli('recommendations', 'push', file, '--tenant', 'slack:T_PUSH');
    expect(first.err).toBe('');
    expect(first.code).toBe(1); // one item is invalid
    expect(first.out).toContain('created   #0 "rec-1"');
    expect(first.out).toContain('created   #1 "push-2"');
    expect(first.out).toMatch(/invalid {3}#2 "push-bad": .*title: .*severity: /);
    expect(first.out).toContain('3 received for slack:T_PUSH: 2 created, 0 updated, 0 unchanged, 1 invalid.');

    writeFileSync(file, JSON.stringify([full, { id: 'push-2', title: 'Second, edited' }]));
    const again = await cli('recommendations', 'push', file, '--tenant', 'slack:T_PUSH', '--json');
    expect(again.code).toBe(0);
    expect(ingestResponseSchema.parse(JSON.parse(again.out)).results.map((r) => r.status)).toEqual([
      'unchanged',
      'updated',
    ]);

    const handle = await openDatabase(fresh.target);
    try {
      const tenant = await handle.rows<{ id: string }>(
        (await import('drizzle-orm')).sql`select id from tenants where external_id = 'T_PUSH'`,
      );
      const row = await new RecommendationRepository(handle.db).findByExternalId(tenant[0]!.id, 'push-2');
      expect(row?.title).toBe('Second, edited');
    } finally {
      await handle.close();
    }
  });

  it('says what is wrong with the file or the tenant', async () => {
    const bad = path.join(fresh.dir, 'bad.json');
    writeFileSync(bad, '{"id": ');
    const notJson = await cli('recommendations', 'push', bad, '--tenant', 'slack:T_PUSH');
    expect(notJson.code).toBe(1);
    expect(notJson.err).toContain('is not valid JSON');
    const missing = await cli(
      'recommendations',
      'push',
      path.join(fresh.dir, 'nope.json'),
      '--tenant',
      'slack:T_PUSH',
    );
    expect(missing.err).toContain('Cannot read');
    const help = await cli('recommendations', 'push', '--help');
    expect(help.out).toContain('--tenant <ref>');
    expect(help.out).toContain('--json');
  });
});
