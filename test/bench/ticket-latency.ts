/**
 * Bench section: a "Create ticket" press on a Slack card → the ticket created in Jira → the card
 * updated with the issue key, against a Jira fake without delay, with the service as a real
 * process (`cloudpi serve`) and the strict Slack Web API fake in this process.
 *
 * 100 recommendations (BENCH_TICKET_CARDS) are ingested into one subscribed channel (the cards
 * take about a second each to post: Slack's limit per channel); once every card is posted, "Create
 * ticket" is pressed on each card, one press every BENCH_TICKET_INTERVAL_MS (default 2500 ms: a
 * press causes two chat.update calls, "creating" and then the issue, and 24 presses a minute keep
 * them under chat.update's Tier 3 limit of 50 a minute per workspace, which the service keeps to;
 * faster, presses queue behind that limit). The first BENCH_TICKET_WARMUP presses (default 5:
 * loading the Jira adapter, first connections) are left out. A press is timed from the moment its
 * signed block_actions request is sent to the moment the Slack fake answers the chat.update of
 * that card that carries the issue key.
 *
 * Also exported for fanout.ts: starting the service process on a seeded database.
 *
 * Alone: `npm run build && node dist/test/bench/ticket-latency.js` (standalone.ts: PostgreSQL from
 * BENCH_DATABASE_URL / TEST_DATABASE_URL or a throwaway cluster, as in run.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ticketProviderFactories } from '../../adapters/tickets/index.js';
import { loadConfig } from '../../src/config.js';
import { SecretBox } from '../../src/crypto/secret-box.js';
import { createProviderRegistry, IntegrationService } from '../../src/integrations/service.js';
import { createLogger } from '../../src/logger.js';
import type { SubscriptionFilters } from '../../src/recommendations/subscriptions.js';
import { type DatabaseHandle, openDatabase } from '../../src/storage/db.js';
import { runMigrations } from '../../src/storage/migrate.js';
import { createRepositories, type Repositories } from '../../src/storage/repositories/index.js';
import { button, textOf } from '../slack/helpers.js';
import { type JiraFake, startJiraFake } from '../support/fakes/jira-fake.js';
import { type SlackFake, type SlackFakeMessage, startSlackFake } from '../support/fakes/slack-fake.js';
import { blockActionsPayload, postSlackInteraction } from '../support/slack-requests.js';
import { liveChildren } from './measure.js';
import { formatMs, formatRatio, percentile, type Section, type SectionContext } from './section.js';
import { isMain, runStandalone } from './standalone.js';

// ---------------------------------------------------------------- the service as a process

export const SIGNING_SECRET = 'bench-signing-secret-0123456789abcdef';
const READY_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 30_000;
const OUTPUT_LIMIT = 4 * 1024 * 1024;

/** One subscription of the seeded tenant. */
export interface BenchRoute {
  readonly channelId: string;
  readonly filters: SubscriptionFilters;
}

export interface BenchServiceOptions {
  /** Names the database and work directories. */
  readonly label: string;
  readonly slack: SlackFake;
  /** Connected, configured and Active for the tenant when given. */
  readonly jira?: JiraFake;
  readonly routes: readonly BenchRoute[];
  /** Extra environment of the service (e.g. a cron that never fires). */
  readonly env?: Record<string, string>;
}

/** A JSON log line of the service (pino: level 40 warn, 50 error). */
export type LogLine = Record<string, unknown> & { level?: number; msg?: string };

export interface BenchService {
  readonly url: string;
  /** CPU time the service process has used so far, ms; undefined without /proc. */
  cpu(): ProcessCpu | undefined;
  readonly database: 'PGlite' | 'PostgreSQL';
  readonly tenantId: string;
  /** A tenant API key for the ingest API. */
  readonly apiKey: string;
  /** The service's JSON log lines so far (LOG_LEVEL=warn: warnings and errors). */
  logs(): LogLine[];
  /** Lines that were not JSON (a library printing to the console). */
  otherOutput(): string[];
  /** SIGTERM, and the exit; SIGKILL after 30 s. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * Opens the service's database from this process (after stop() for PGlite, whose data directory
   * one process holds at a time) and runs `read` on it.
   */
  inspect<T>(read: (repositories: Repositories, handle: DatabaseHandle) => Promise<T>): Promise<T>;
}

/** The environment the service runs with: nothing inherited but PATH and HOME. */
function baseEnv(extra: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? os.tmpdir(),
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    CLOUDPI_ALLOW_HTTP: 'true',
    CLOUDPI_ALLOW_PRIVATE_NETWORKS: 'true',
    ...extra,
  };
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

/**
 * Seeds a fresh database (tenant of the Slack fake's workspace, Jira, subscriptions, an API key)
 * with the project's own code and the service's master key, then starts `cloudpi serve` on it and
 * waits for /readyz.
 */
export async function startBenchService(
  ctx: SectionContext,
  options: BenchServiceOptions,
): Promise<BenchService> {
  const dir = await mkdtemp(path.join(ctx.workDir, `${options.label}-`));
  const cwd = path.join(dir, 'cwd');
  await mkdir(cwd);
  const env = baseEnv({
    CLOUDPI_DATA_DIR: path.join(dir, 'data'),
    CLOUDPI_MASTER_KEYS: `bench:${randomBytes(32).toString('base64')}`,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_BOT_TOKEN: options.slack.botToken,
    SLACK_API_URL: options.slack.apiUrl,
    // Diagnostics, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the service.
    ...(process.env.BENCH_SERVICE_NODE_OPTIONS
      ? { NODE_OPTIONS: process.env.BENCH_SERVICE_NODE_OPTIONS }
      : {}),
    ...options.env,
  });
  if (ctx.createPostgresDatabase) {
    const database = await ctx.createPostgresDatabase();
    ctx.onCleanup(() => database.drop());
    env.DATABASE_URL = database.url;
  }
  const config = loadConfig({ ...env, PORT: '0' });
  const box = new SecretBox([...(config.masterKeys ?? [])]);
  const logger = createLogger({ level: 'warn', format: 'json' });

  const withDatabase = async <T>(
    read: (repositories: Repositories, handle: DatabaseHandle) => Promise<T>,
  ): Promise<T> => {
    const handle = await openDatabase(config.database, { maxConnections: 2 });
    try {
      return await read(createRepositories(handle.db, box), handle);
    } finally {
      await handle.close();
    }
  };

  const seeded = await withDatabase(async (repositories, handle) => {
    await runMigrations(handle);
    const tenant = await repositories.tenants.ensure('slack', options.slack.teamId, options.slack.teamName);
    if (options.jira) {
      const integrations = new IntegrationService({
        repositories,
        registry: createProviderRegistry(ticketProviderFactories),
        urlPolicy: { allowHttp: true, allowPrivateNetworks: true },
        logger,
      });
      const connected = await integrations.connect(tenant.id, 'jira', options.jira.validValues, 'bench');
      if (!connected.ok) throw new Error(`bench: Jira did not connect: ${JSON.stringify(connected)}`);
      const configured = await integrations.configure(tenant.id, 'jira', options.jira.routing, 'bench');
      if (!configured.ok) throw new Error(`bench: Jira routing refused: ${JSON.stringify(configured)}`);
    }
    for (const route of options.routes) {
      await repositories.routes.create(tenant.id, {
        platform: 'slack',
        channelId: route.channelId,
        filters: { ...route.filters },
        createdBy: 'bench',
      });
    }
    const { key } = await repositories.apiKeys.create(tenant.id, 'bench ingest');
    return { tenantId: tenant.id, apiKey: key };
  });

  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [...ctx.nodeFlags, ctx.cli, 'serve'], {
    cwd,
    env: { ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  const other: string[] = [];
  let outputBytes = 0;
  const pending = { stdout: '', stderr: '' };
  const take = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
    outputBytes += chunk.length;
    if (outputBytes > OUTPUT_LIMIT) return;
    const text = pending[stream] + chunk.toString('utf8');
    const parts = text.split('\n');
    pending[stream] = parts.pop() ?? '';
    for (const line of parts) {
      if (!line.trim()) continue;
      try {
        lines.push(JSON.parse(line) as LogLine);
      } catch {
        other.push(line);
      }
    }
  };
  liveChildren.add(child);
  child.stdout?.on('data', take('stdout'));
  child.stderr?.on('data', take('stderr'));
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      liveChildren.delete(child);
      exit = { code, signal };
      resolve(exit);
    });
  });
  ctx.onCleanup(async () => {
    if (!exit) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const tail = () => [...other.slice(-20), ...lines.slice(-20).map((l) => JSON.stringify(l))].join('\n');

  const url = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (exit) throw new Error(`bench: the service exited (${JSON.stringify(exit)}) before ready:\n${tail()}`);
    if (performance.now() > deadline) throw new Error(`bench: the service was not ready in time:\n${tail()}`);
    const status = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5_000) }).then(
      (r) => r.status,
      () => undefined,
    );
    if (status === 200) break;
    await sleep(50);
  }

  return {
    url,
    cpu: () => processCpu(child.pid),
    database: config.database.kind === 'pglite' ? 'PGlite' : 'PostgreSQL',
    tenantId: seeded.tenantId,
    apiKey: seeded.apiKey,
    logs: () => lines,
    otherOutput: () => other,
    async stop() {
      if (exit) return exit;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
    inspect: withDatabase,
  };
}

export interface ProcessCpu {
  readonly userMs: number;
  readonly systemMs: number;
}

/** utime and stime of a process from /proc (clock ticks of 10 ms on Linux). */
function processCpu(pid: number | undefined): ProcessCpu | undefined {
  if (!pid) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { userMs: Number(fields[11]) * 10, systemMs: Number(fields[12]) * 10 };
  } catch {
    return undefined;
  }
}

/** POSTs recommendations to the ingest API in batches of at most 500 (the API's limit). */
export async function ingest(
  service: BenchService,
  items: readonly Record<string, unknown>[],
): Promise<void> {
  for (let i = 0; i < items.length; i += 500) {
    const res = await fetch(`${service.url}/api/v1/recommendations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${service.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(items.slice(i, i + 500)),
    });
    const body = await res.text();
    if (res.status !== 200) throw new Error(`bench: ingest answered ${res.status}: ${body.slice(0, 500)}`);
  }
}

/** Resolves once `done()` holds, checked on every call the Slack fake answers; rejects after `timeoutMs`. */
export function untilSlack(slack: SlackFake, done: () => boolean, timeoutMs: number, what: string) {
  return new Promise<void>((resolve, reject) => {
    if (done()) {
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      off();
      reject(new Error(`bench: ${what} did not happen within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const off = slack.onCall(() => {
      if (!done()) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

/** `error` with the service's last log lines appended, for a bench that failed. */
export function withLogs(error: unknown, service: BenchService): Error {
  const lines = [
    ...service.otherOutput().slice(-10),
    ...service
      .logs()
      .slice(-20)
      .map((line) => JSON.stringify(line)),
  ];
  const message = error instanceof Error ? error.message : String(error);
  return new Error(`${message}\n--- service output (tail) ---\n${lines.join('\n')}`, { cause: error });
}

/** Warnings and errors the service logged, grouped by message, for the progress lines. */
export function summarizeLogs(lines: readonly LogLine[]): string[] {
  const counts = new Map<string, number>();
  for (const line of lines) {
    if ((line.level ?? 0) < 40) continue;
    const key = `${line.level === 40 ? 'warn' : 'error'}: ${line.msg ?? '?'}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([msg, n]) => `${n}× ${msg}`);
}

// ---------------------------------------------------------------- the section

const CHANNEL = 'C0BENCHLAT1';
const ISSUE_KEY = /\bOPS-\d+\b/;
const GOAL_P50_MS = 300;
const GOAL_P99_MS = 1_000;

function intFromEnv(name: string, fallback: number, min: number): number {
  const raw = process.env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min)
    throw new Error(`${name} must be an integer >= ${min}, got "${raw}"`);
  return value;
}

function recommendation(i: number): Record<string, unknown> {
  return {
    id: `bench-latency-${i}`,
    title: `Rightsize i-${i.toString(16).padStart(8, '0')} to t3.small`,
    cloud: 'aws',
    account: '123456789012',
    resource: `arn:aws:ec2:eu-west-1:123456789012:instance/i-${i.toString(16).padStart(8, '0')}`,
    severity: 'high',
    monthlySavings: 100 + i,
    currency: 'USD',
  };
}

/** The fake's own round trip: chat.update of a posted card, straight from this process. */
async function fakeRoundTrip(slack: SlackFake, card: SlackFakeMessage, n: number): Promise<number[]> {
  const samples: number[] = [];
  const body = new URLSearchParams({
    channel: card.channel,
    ts: card.ts ?? '',
    text: card.text ?? 'card',
    blocks: JSON.stringify(card.blocks ?? []),
  }).toString();
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const res = await fetch(`${slack.apiUrl}chat.update`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${slack.botToken}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body,
    });
    const answer = (await res.json()) as { ok: boolean };
    samples.push(performance.now() - started);
    if (!answer.ok)
      throw new Error(`bench: the Slack fake refused the baseline chat.update: ${JSON.stringify(answer)}`);
  }
  return samples;
}

export const ticketLatencySection: Section = async (ctx) => {
  const cardCount = intFromEnv('BENCH_TICKET_CARDS', 100, 2);
  const warmup = Math.min(intFromEnv('BENCH_TICKET_WARMUP', 5, 0), cardCount - 1);
  const intervalMs = intFromEnv('BENCH_TICKET_INTERVAL_MS', 2_500, 0);
  const scenario = 'click→ticket→card update';
  const goal = `p50 < ${formatMs(GOAL_P50_MS)}, p99 < ${formatMs(GOAL_P99_MS)}`;

  const slack = await startSlackFake();
  const jira = await startJiraFake();
  ctx.onCleanup(async () => {
    await Promise.all([slack.close(), jira.close()]);
  });
  const service = await startBenchService(ctx, {
    label: 'ticket-latency',
    slack,
    jira,
    routes: [{ channelId: CHANNEL, filters: {} }],
    // No status poll during the measurement (it would add Jira reads and card updates).
    env: { CLOUDPI_TICKET_POLL_CRON: '0 0 1 1 *', CLOUDPI_HEALTH_CHECK_CRON: '0 0 1 1 *' },
  });
  ctx.log(
    `ticket latency (${service.database}): ${cardCount} cards in ${CHANNEL}, ${warmup} warm-up presses, then one press every ${intervalMs} ms`,
  );

  const cards = () => slack.messages.filter((m) => m.method === 'chat.postMessage' && m.channel === CHANNEL);
  try {
    await ingest(
      service,
      Array.from({ length: cardCount }, (_, i) => recommendation(i)),
    );
    await untilSlack(slack, () => cards().length >= cardCount, 300_000, `posting ${cardCount} cards`);
  } catch (error) {
    await service.stop();
    throw withLogs(error, service);
  }
  const posted = cards();

  // A press is done when the fake answers a chat.update of its card that shows the issue key.
  const waiting = new Map<string, { done: (at: number) => void }>();
  const off = slack.onCall((call) => {
    if (call.method !== 'chat.update' || call.status !== 200 || call.error) return;
    const key = `${String(call.body.channel)}/${String(call.body.ts)}`;
    const entry = waiting.get(key);
    if (entry && ISSUE_KEY.test(textOf(call.body.blocks))) {
      waiting.delete(key);
      entry.done(performance.now());
    }
  });

  const ackMs: number[] = [];
  const press = async (card: SlackFakeMessage): Promise<number> => {
    const element = button({ blocks: card.blocks }, 'Create ticket');
    const payload = blockActionsPayload({
      teamId: slack.teamId,
      userId: slack.users.member,
      actionId: String(element.action_id),
      triggerId: slack.issueTriggerId(slack.users.member),
      message: { blocks: card.blocks, text: card.text, ts: card.ts, channel: card.channel },
      channelId: card.channel,
    });
    const key = `${card.channel}/${card.ts}`;
    let sentAt = 0;
    const updated = new Promise<number>((resolve) => {
      waiting.set(key, { done: (at) => resolve(at - sentAt) });
    });
    sentAt = performance.now();
    const res = await postSlackInteraction(service.url, SIGNING_SECRET, payload);
    ackMs.push(performance.now() - sentAt);
    if (res.status !== 200) throw new Error(`bench: the press answered ${res.status}: ${await res.text()}`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<number>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`bench: card ${key} never showed its issue key (60 s)`)),
        60_000,
      );
    });
    try {
      return await Promise.race([updated, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };

  try {
    const warm: number[] = [];
    for (const card of posted.slice(0, warmup)) {
      warm.push(await press(card));
      await sleep(intervalMs);
    }
    if (warmup > 0) ctx.log(`  warm-up presses: ${warm.map((ms) => formatMs(ms)).join(', ')}`);
    ackMs.length = 0;

    const measured = posted.slice(warmup);
    const results: Promise<number>[] = [];
    const started = performance.now();
    for (const [i, card] of measured.entries()) {
      // A steady pace: press i is sent at started + i × interval, whatever the earlier ones do.
      const due = started + i * intervalMs;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const result = press(card);
      result.catch(() => {});
      results.push(result);
    }
    const samples = await Promise.all(results);
    const baseline = await fakeRoundTrip(slack, posted[0]!, 50);
    const p50 = percentile(samples, 50);
    const p99 = percentile(samples, 99);
    const b50 = percentile(baseline, 50);
    ctx.log(
      `  ${samples.length} presses: p50 ${formatMs(p50)}, p90 ${formatMs(percentile(samples, 90))}, p99 ${formatMs(p99)}, max ${formatMs(Math.max(...samples))}; press ack p50 ${formatMs(percentile(ackMs, 50))}; Jira issues ${jira.ticketCount()}`,
    );
    for (const line of summarizeLogs(service.logs())) ctx.log(`  service log: ${line}`);
    return [
      {
        scenario: `${scenario} (${service.database})`,
        measured: `p50 ${formatMs(p50)} / p99 ${formatMs(p99)} (${samples.length} clicks)`,
        baseline: `fake chat.update p50 ${formatMs(b50)}`,
        ratio: `${formatRatio(p50 / b50)} p50`,
        goal,
        met: p50 < GOAL_P50_MS && p99 < GOAL_P99_MS,
      },
    ];
  } finally {
    off();
    await service.stop();
  }
};

if (isMain(import.meta.url)) {
  await runStandalone('click → ticket → card update (Jira fake without delay)', ticketLatencySection);
}
