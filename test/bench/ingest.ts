/**
 * Bench section: ingest of 10,000 recommendations through the real HTTP API (POST
 * /api/v1/recommendations with a tenant API key), on PostgreSQL (goal: over 2,000 a second) and
 * on PGlite (no goal: the embedded database serves one organization).
 *
 * The service runs as a real process with its API rate limit raised (CLOUDPI_API_RATE_LIMIT, 600
 * requests a minute by default, would pace the bench, not the service). The tenant is a Slack
 * workspace (the strict Slack Web API fake) with one subscribed channel, as after `/cloudpi
 * subscribe`: every new recommendation queues its card posting job in the ingest transaction, and
 * the card workers run meanwhile (Slack's one message a second per channel keeps them light).
 * What is timed is the API: from the first request to the last answer, 10,000 recommendations in
 * batches of the API's maximum (MAX_BATCH, 500) from a few concurrent clients; an answer comes
 * after its transaction committed, and the rows and queued jobs are counted afterwards. One
 * batch of other recommendations warms the service up first.
 *
 * Environment: BENCH_INGEST_TOTAL (default 10000), BENCH_INGEST_CLIENTS (concurrent clients,
 * default 4).
 *
 * Standalone: npm run build && node dist/test/bench/ingest.js
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { loadConfig } from '../../src/config.js';
import { postCardsJob } from '../../src/recommendations/card.js';
import { MAX_BATCH } from '../../src/recommendations/ingest.js';
import { openDatabase } from '../../src/storage/db.js';
import { sql } from '../../src/storage/orm.js';
import { startSlackFake } from '../support/fakes/slack-fake.js';
import { BenchFailure } from './measure.js';
import { formatRate, type Section, type SectionContext, type SectionRow } from './section.js';
import {
  childEnv,
  isMain,
  masterKeysEntry,
  runStandalone,
  type ServerProcess,
  seedTenant,
  startServer,
} from './standalone.js';

const GOAL_POSTGRES_PER_SECOND = 2_000;
const CHANNEL = 'C0BENCHINGEST';
const CLOUDS = ['aws', 'azure', 'gcp'] as const;
const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
const CATEGORIES = ['rightsizing', 'idle-resource', 'reserved-instance', 'storage-tiering'] as const;

function intFromEnv(name: string, fallback: number, min: number): number {
  const raw = process.env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new BenchFailure(`${name} must be a whole number >= ${min}, got "${raw}"`);
  }
  return value;
}

/** A recommendation as CloudPi sends one: every field, realistic lengths. */
function recommendation(prefix: string, n: number): Record<string, unknown> {
  const cloud = CLOUDS[n % CLOUDS.length]!;
  const account = String(100_000_000_000 + (n % 40) * 7_919);
  const instance = `i-0${n.toString(16).padStart(16, '0')}`;
  return {
    id: `${prefix}-${n}`,
    title: `Rightsize ${instance} from m5.2xlarge to m5.large`,
    description:
      'Average CPU stayed below 8% and memory below 20% over the last 30 days. A smaller instance ' +
      'type keeps the same headroom for the observed peaks.\nApply it in the next maintenance window.',
    cloud,
    account,
    resource: `arn:aws:ec2:eu-west-1:${account}:instance/${instance}`,
    region: 'eu-west-1',
    category: CATEGORIES[n % CATEGORIES.length],
    severity: SEVERITIES[n % SEVERITIES.length],
    monthlySavings: Math.round((25 + (n % 997) * 1.37) * 100) / 100,
    currency: 'USD',
    link: `https://app.cloudpi.example/recommendations/${prefix}-${n}`,
    tags: ['team:platform', `env:${n % 3 === 0 ? 'prod' : 'staging'}`, `cost-center:${1000 + (n % 25)}`],
  };
}

/** `{ "recommendations": [...] }` bodies of at most MAX_BATCH items. */
function batches(prefix: string, total: number): string[] {
  const bodies: string[] = [];
  for (let start = 0; start < total; start += MAX_BATCH) {
    const items = [];
    for (let n = start; n < Math.min(total, start + MAX_BATCH); n++) items.push(recommendation(prefix, n));
    bodies.push(JSON.stringify({ recommendations: items }));
  }
  return bodies;
}

interface IngestRun {
  readonly ms: number;
  readonly created: number;
  readonly failures: string[];
}

/** Sends every body with `clients` concurrent clients, each taking the next body when answered. */
async function ingest(
  service: ServerProcess,
  apiKey: string,
  bodies: readonly string[],
  clients: number,
): Promise<IngestRun> {
  const pool = new Pool(service.url, { connections: clients, headersTimeout: 120_000, bodyTimeout: 120_000 });
  let next = 0;
  let created = 0;
  const failures: string[] = [];
  const started = performance.now();
  const client = async () => {
    for (let i = next++; i < bodies.length; i = next++) {
      const res = await pool.request({
        path: '/api/v1/recommendations',
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: bodies[i]!,
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) {
        failures.push(`batch ${i}: HTTP ${res.statusCode} ${text.slice(0, 300)}`);
        continue;
      }
      created += (JSON.parse(text) as { summary: { created: number } }).summary.created;
    }
  };
  try {
    await Promise.all(Array.from({ length: clients }, client));
  } finally {
    await pool.close();
  }
  return { ms: performance.now() - started, created, failures };
}

/** Rows stored and card posting jobs queued for the tenant, read from the database afterwards. */
async function countStored(
  env: Record<string, string | undefined>,
  tenantId: string,
  prefix: string,
): Promise<{ stored: number; jobs: number | undefined }> {
  const handle = await openDatabase(loadConfig(env).database, { maxConnections: 1 });
  try {
    const [row] = await handle.rows<{ n: number | string }>(
      sql`select count(*) as n from recommendations where tenant_id = ${tenantId} and external_id like ${`${prefix}-%`}`,
    );
    let jobs: number | undefined;
    try {
      const [job] = await handle.rows<{ n: number | string }>(
        sql`select coalesce(sum(coalesce(jsonb_array_length(data->'recommendationIds'), 1)), 0) as n from pgboss.job where name = ${postCardsJob.name} and data->>'tenantId' = ${tenantId}`,
      );
      jobs = Number(job?.n ?? 0);
    } catch {
      jobs = undefined;
    }
    return { stored: Number(row?.n ?? 0), jobs };
  } finally {
    await handle.close();
  }
}

export const ingestSection: Section = async (ctx: SectionContext): Promise<SectionRow[]> => {
  const total = intFromEnv('BENCH_INGEST_TOTAL', 10_000, 1);
  const clients = intFromEnv('BENCH_INGEST_CLIENTS', 4, 1);
  const label = total.toLocaleString('en-US');
  const measured = batches('bench', total);
  const warmup = batches('warmup', MAX_BATCH);
  ctx.log(
    `ingest: ${label} recommendations in ${measured.length} batches of up to ${MAX_BATCH} (${(measured[0]!.length / 1024).toFixed(0)} KiB each), ${clients} concurrent clients`,
  );

  const targets: Array<'PostgreSQL' | 'PGlite'> = ctx.createPostgresDatabase
    ? ['PostgreSQL', 'PGlite']
    : ['PGlite'];
  const rows: SectionRow[] = [];
  if (!ctx.createPostgresDatabase) {
    rows.push({
      scenario: `${label} recs ingest PostgreSQL`,
      measured: '-',
      baseline: '-',
      ratio: '-',
      goal: `> ${formatRate(GOAL_POSTGRES_PER_SECOND, ' recs/s')}`,
      met: undefined,
      note: 'skipped (no PostgreSQL)',
    });
  }

  for (const target of targets) {
    const fake = await startSlackFake();
    const database = target === 'PostgreSQL' ? await ctx.createPostgresDatabase!() : undefined;
    const env = childEnv({
      ...(database
        ? { DATABASE_URL: database.url }
        : { CLOUDPI_DATA_DIR: path.join(ctx.workDir, 'ingest-pglite') }),
      CLOUDPI_MASTER_KEYS: masterKeysEntry(),
      CLOUDPI_API_RATE_LIMIT: '1000000',
      SLACK_SIGNING_SECRET: 'bench-signing-secret-0123456789abcdef',
      SLACK_BOT_TOKEN: fake.botToken,
      SLACK_API_URL: fake.apiUrl,
    });
    let service: ServerProcess | undefined;
    try {
      const { tenantId, apiKey } = await seedTenant(env, fake.teamId, [CHANNEL]);
      service = await startServer({
        label: `service (${target})`,
        args: [...ctx.nodeFlags, ctx.cli, 'serve'],
        env,
        cwd: path.join(ctx.workDir, 'cwd'),
      });
      const warm = await ingest(service, apiKey, warmup, 1);
      if (warm.failures.length > 0) throw new BenchFailure(`warm-up ingest failed: ${warm.failures[0]}`);
      await sleep(500);
      const run = await ingest(service, apiKey, measured, clients);
      const perSecond = (run.created / run.ms) * 1000;
      const posted = fake.messages.filter((m) => m.method === 'chat.postMessage').length;
      await service.stop();
      service = undefined;
      const counted = await countStored(env, tenantId, 'bench');
      ctx.log(
        `  ${target.padEnd(10)} ${run.created.toLocaleString('en-US')} created in ${(run.ms / 1000).toFixed(2)} s = ${formatRate(perSecond, ' recs/s')}; stored ${counted.stored.toLocaleString('en-US')}, card jobs queued ${counted.jobs?.toLocaleString('en-US') ?? '?'}, cards posted meanwhile ${posted}${run.failures.length > 0 ? `; FAILED: ${run.failures[0]}` : ''}`,
      );
      const complete = run.failures.length === 0 && run.created === total && counted.stored === total;
      rows.push({
        scenario: `${label} recs ingest ${target}`,
        measured: `${formatRate(perSecond, ' recs/s')} (${(run.ms / 1000).toFixed(2)} s)${complete ? '' : `; only ${counted.stored.toLocaleString('en-US')} stored`}`,
        baseline: '-',
        ratio: '-',
        goal: target === 'PostgreSQL' ? `> ${formatRate(GOAL_POSTGRES_PER_SECOND, ' recs/s')}` : '-',
        met: target === 'PostgreSQL' ? complete && perSecond > GOAL_POSTGRES_PER_SECOND : undefined,
      });
    } finally {
      if (service) await service.stop();
      await fake.close();
      await database?.drop();
    }
  }
  return rows;
};

if (isMain(import.meta.url)) {
  await runStandalone('ingest of recommendations through the API', ingestSection);
}
