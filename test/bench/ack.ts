/**
 * Bench section: how fast the service acknowledges Slack's slash commands and button presses
 * under load (p50 / p99 from request write to the HTTP answer, and requests per second), at 50
 * and 200 concurrent connections, side by side with a bare Bolt app whose listeners only ack.
 *
 * The service runs as a real process (`node <npm start flags> dist/src/bin.js serve`) in
 * one-workspace mode against the strict Slack Web API fake, on PostgreSQL when the bench has one
 * (else PGlite). The baseline is @slack/bolt's ExpressReceiver with `ack()` listeners, in its own
 * process. The load is closed-loop from this process (undici, exactly N connections, N workers
 * each sending the next request when the previous one was answered), warm-up first, then the
 * measured window; baseline and service alternate (round 1: baseline 50, service 50, baseline
 * 200, ...; round 2: service 50, baseline 50, ...).
 *
 * What is pressed:
 *  - slash command: `/cloudpi status` by a workspace admin: the service acks, then builds the
 *    Integration settings board (database reads) and answers at the command's response_url, a
 *    loopback endpoint in this process that only counts the answers. No modal, so no trigger_id
 *    has to be fresh. Under this saturating load the answers wait in the service's follow-up lane
 *    (src/http/follow-up-lane.ts) until the acknowledgements let up; the section waits for every
 *    one of them after the run and logs how long the last took.
 *  - button: "Open in CloudPi" on a recommendation card the service posted into a subscribed
 *    channel. Slack sends block_actions for link buttons too and the app must ack them; the card
 *    listener acks and has nothing more to do. The card's other buttons (Dismiss, Create ticket)
 *    follow up with chat.update / a provider call, which our client keeps under Slack's method
 *    tiers (chat.update: 50 a minute per workspace): thousands of presses a second would only
 *    queue up behind that limiter and keep working long after the measured window.
 *
 * Each request is signed with the current timestamp; the bodies come from a pool of distinct
 * ones per kind (neither Bolt nor the service deduplicates commands or presses). A non-2xx answer
 * or a failed request is counted and shown, and fails the row; so does an acked command that the
 * service never answered at its response_url. After each service run the section waits for those
 * answers and for the service to go idle, so that follow-up work never lands in the next run. Each
 * run logs the CPU of both servers, of this process (load generator, fakes) and of the whole
 * machine: on a shared machine that shows when something else took the cores.
 *
 * Diagnostics: BENCH_ACK_SERVICE_FLAGS and BENCH_ACK_BASELINE_FLAGS add Node flags to the service's
 * and the baseline's command lines (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", "--trace-gc").
 *
 * Environment: BENCH_LOAD_SECONDS (measured window per run, default 5), BENCH_WARMUP_SECONDS
 * (default 1), BENCH_ACK_CONNECTIONS (default "50,200"), BENCH_ACK_KINDS (default
 * "slash,button"), BENCH_ACK_ROUNDS (default 4: each round measures every row once, baseline and
 * service, the baseline first in odd rounds and the service first in even ones; a row pools its
 * rounds). An even number, so that each side runs second, right after the other, as often as it
 * runs first: in a run of three rounds the one measured second had the worse p99 in most pairs.
 *
 * Standalone: npm run build && node dist/test/bench/ack.js
 */
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { type SlackFake, type SlackFakeMessage, startSlackFake } from '../support/fakes/slack-fake.js';
import { blockActionsPayload, fakeTriggerId, slashCommandForm } from '../support/slack-requests.js';
import { BenchFailure } from './measure.js';
import {
  formatMs,
  formatRate,
  formatRatio,
  percentile,
  type Section,
  type SectionContext,
  type SectionRow,
} from './section.js';
import {
  childEnv,
  cpuMsOf,
  isMain,
  masterKeysEntry,
  runStandalone,
  type ServerProcess,
  seedTenant,
  startServer,
} from './standalone.js';

const SIGNING_SECRET = 'bench-signing-secret-0123456789abcdef';
const COMMAND_CHANNEL = 'C0BENCHOPS';
const CARD_CHANNEL = 'C0BENCHCARDS';
const CARD_ACTION = 'cloudpi_card.open';
/** Distinct request bodies per kind, cycled (each is signed anew with the current timestamp). */
const BODY_POOL = 1024;
const GOAL_THROUGHPUT_RATIO = 0.9;
const GOAL_P99_RATIO = 1.2;
/** How long the service may take to deliver the answers of a run's slash commands afterwards. */
const ANSWER_DRAIN_MS = 180_000;

type Kind = 'slash' | 'button';
const KIND_LABELS: Record<Kind, string> = {
  slash: 'slash command ack (/cloudpi status)',
  button: 'button ack (card: Open in CloudPi)',
};

/** The bare Bolt app of the baseline: same package, same receiver, listeners that only ack. */
const BASELINE_APP = `import { createRequire } from 'node:module';
const require = createRequire(process.env.BENCH_PACKAGE_JSON);
const { App, ExpressReceiver, LogLevel } = require('@slack/bolt');
const receiver = new ExpressReceiver({
  signingSecret: process.env.SLACK_SIGNING_SECRET,
  endpoints: '/slack/events',
  processBeforeResponse: false,
  logLevel: LogLevel.WARN,
});
receiver.router.get('/readyz', (_req, res) => res.json({ status: 'ready' }));
const app = new App({
  receiver,
  token: process.env.SLACK_BOT_TOKEN,
  clientOptions: { slackApiUrl: process.env.SLACK_API_URL },
  logLevel: LogLevel.WARN,
});
app.command('/cloudpi', async ({ ack }) => ack());
app.action(/.*/, async ({ ack }) => ack());
await app.start({ port: Number(process.env.PORT), host: process.env.HOST });
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
`;

function numberFromEnv(name: string, fallback: number, min: number): number {
  const raw = process.env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) {
    throw new BenchFailure(`${name} must be a number >= ${min}, got "${raw}"`);
  }
  return value;
}

function kindsFromEnv(): Kind[] {
  const raw = process.env.BENCH_ACK_KINDS?.trim() || 'slash,button';
  const kinds = raw.split(',').map((v) => v.trim());
  const unknown = kinds.filter((k) => k !== 'slash' && k !== 'button');
  if (unknown.length > 0) throw new BenchFailure(`BENCH_ACK_KINDS: unknown kind(s) ${unknown.join(', ')}`);
  return kinds as Kind[];
}

function connectionsFromEnv(): number[] {
  const raw = process.env.BENCH_ACK_CONNECTIONS?.trim() || '50,200';
  const values = raw.split(',').map((v) => Number(v.trim()));
  if (values.some((v) => !Number.isInteger(v) || v < 1)) {
    throw new BenchFailure(`BENCH_ACK_CONNECTIONS must be comma-separated whole numbers, got "${raw}"`);
  }
  return values;
}

// ---------------------------------------------------------------- response_url stand-in

interface AnswerSink {
  readonly url: string;
  /** Answers received (POSTs to a response_url). */
  readonly count: () => number;
  close(): Promise<void>;
}

/** Slack's response_url endpoint: 200 "ok" to every POST, counted, bodies not kept. */
async function startAnswerSink(): Promise<AnswerSink> {
  let count = 0;
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      count++;
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    count: () => count,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------- requests

/** Pre-built form bodies of one kind; each request signs one with the current timestamp. */
function buildBodies(kind: Kind, fake: SlackFake, sinkUrl: string, card: SlackFakeMessage): Buffer[] {
  const bodies: Buffer[] = [];
  for (let i = 0; i < BODY_POOL; i++) {
    let body: string;
    if (kind === 'slash') {
      body = slashCommandForm({
        text: 'status',
        user_id: fake.users.admin,
        team_id: fake.teamId,
        trigger_id: fakeTriggerId(),
        channel_id: COMMAND_CHANNEL,
        response_url: `${sinkUrl}/commands/${fake.teamId}/${i}`,
      }).toString();
    } else {
      const payload = blockActionsPayload({
        teamId: fake.teamId,
        userId: fake.users.member,
        actionId: CARD_ACTION,
        triggerId: fakeTriggerId(),
        message: { blocks: card.blocks, text: card.text, ts: card.ts, channel: card.channel },
        channelId: card.channel,
        responseUrl: `${sinkUrl}/actions/${fake.teamId}/${i}`,
      });
      body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
    }
    bodies.push(Buffer.from(body));
  }
  return bodies;
}

function signer(): (body: Buffer) => Record<string, string> {
  let second = 0;
  let stamp = '';
  return (body) => {
    const now = Math.floor(Date.now() / 1000);
    if (now !== second) {
      second = now;
      stamp = String(now);
    }
    const signature = createHmac('sha256', SIGNING_SECRET).update(`v0:${stamp}:`).update(body).digest('hex');
    return {
      'content-type': 'application/x-www-form-urlencoded',
      'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
      'x-slack-request-timestamp': stamp,
      'x-slack-signature': `v0=${signature}`,
    };
  };
}

// ---------------------------------------------------------------- load

interface LoadResult {
  /** Latency of each request answered in the window, ms. */
  readonly latencies: number[];
  /** Non-2xx answers and failed requests in the window, by status or error code. */
  readonly errors: Map<string, number>;
  readonly windowMs: number;
  /** 2xx answers over the whole run, warm-up included (each acked command owes an answer). */
  readonly acked: number;
  /** CPU of this process (load generator, fakes) and of the server over the window, % of one core. */
  readonly generatorCpu: number | undefined;
  readonly serverCpu: number | undefined;
  /** CPU of the other server (idle, or still working off an earlier run), % of one core. */
  readonly peerCpu: number | undefined;
  /** Busy CPU of the whole machine (all processes, every core) over the window, % of one core. */
  readonly machineCpu: number | undefined;
}

interface LoadStats {
  readonly p50: number;
  readonly p99: number;
  readonly throughput: number;
  readonly errorCount: number;
  readonly errors: string;
}

/** Figures of one run, or of several pooled (every latency, every request over the windows' sum). */
function statsOf(results: readonly LoadResult[]): LoadStats {
  const latencies = results.flatMap((r) => r.latencies);
  const errors = new Map<string, number>();
  for (const r of results) for (const [k, v] of r.errors) errors.set(k, (errors.get(k) ?? 0) + v);
  const errorCount = [...errors.values()].reduce((a, b) => a + b, 0);
  const windowMs = results.reduce((sum, r) => sum + r.windowMs, 0);
  return {
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    throughput: ((latencies.length + errorCount) / windowMs) * 1000,
    errorCount,
    errors: [...errors.entries()].map(([k, v]) => `${k}×${v}`).join(', '),
  };
}

/**
 * Closed loop: `connections` workers on a pool of exactly that many connections, each sending the
 * next request when the previous one is answered, for warm-up + window. Requests answered inside
 * the window are counted (throughput) and timed from the write to the answer's headers.
 */
async function runLoad(options: {
  readonly server: ServerProcess;
  /** The server not measured now: its CPU is sampled too, to see that it stays idle. */
  readonly peer: ServerProcess;
  readonly connections: number;
  readonly warmupMs: number;
  readonly windowMs: number;
  readonly bodies: readonly Buffer[];
}): Promise<LoadResult> {
  const pool = new Pool(options.server.url, {
    connections: options.connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 60_000,
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
  const sign = signer();
  const latencies: number[] = [];
  const errors = new Map<string, number>();
  const started = performance.now();
  const windowStart = started + options.warmupMs;
  const windowEnd = windowStart + options.windowMs;
  let next = 0;
  let acked = 0;
  type CpuSample = {
    at: number;
    generator: NodeJS.CpuUsage;
    server: number | undefined;
    peer: number | undefined;
    machine: number | undefined;
  };
  let cpuAtStart: CpuSample | undefined;
  let cpuAtEnd: CpuSample | undefined;
  const sample = (at: number): CpuSample => ({
    at,
    generator: process.cpuUsage(),
    server: cpuMsOf(options.server.pid),
    peer: cpuMsOf(options.peer.pid),
    machine: machineBusyMs(),
  });
  // Sampled by the first worker that sees the window open and close (no timer to fire late).
  const markCpu = (now: number) => {
    if (!cpuAtStart && now >= windowStart) cpuAtStart = sample(now);
    if (!cpuAtEnd && now >= windowEnd) cpuAtEnd = sample(now);
  };

  const worker = async () => {
    for (;;) {
      const sent = performance.now();
      markCpu(sent);
      if (sent >= windowEnd) return;
      const body = options.bodies[next++ % options.bodies.length]!;
      let outcome: string | undefined;
      try {
        const res = await pool.request({
          path: '/slack/events',
          method: 'POST',
          headers: sign(body),
          body,
        });
        await res.body.dump();
        if (res.statusCode < 200 || res.statusCode > 299) outcome = String(res.statusCode);
      } catch (error) {
        outcome = (error as { code?: string }).code ?? (error as Error).name;
      }
      const answered = performance.now();
      if (outcome === undefined) acked++;
      if (answered < windowStart || answered > windowEnd) continue;
      if (outcome === undefined) latencies.push(answered - sent);
      else errors.set(outcome, (errors.get(outcome) ?? 0) + 1);
    }
  };
  try {
    await Promise.all(Array.from({ length: options.connections }, worker));
  } finally {
    await pool.close();
  }
  const from = cpuAtStart;
  const to = cpuAtEnd;
  const elapsed = from && to ? to.at - from.at : 0;
  const percentOf = (ms: number | undefined) =>
    ms === undefined || elapsed <= 0 ? undefined : (ms / elapsed) * 100;
  const delta = (from: number | undefined, to: number | undefined) =>
    from === undefined || to === undefined ? undefined : to - from;
  return {
    latencies,
    errors,
    windowMs: options.windowMs,
    acked,
    generatorCpu: percentOf(
      from && to
        ? (to.generator.user - from.generator.user + to.generator.system - from.generator.system) / 1000
        : undefined,
    ),
    serverCpu: percentOf(delta(from?.server, to?.server)),
    peerCpu: percentOf(delta(from?.peer, to?.peer)),
    machineCpu: percentOf(delta(from?.machine, to?.machine)),
  };
}

/** Busy CPU time of the whole machine so far (every core, every process), milliseconds. */
function machineBusyMs(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const [, ...ticks] = line.trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
    const busy = ticks.slice(0, 8).reduce((sum, t, i) => (i === 3 || i === 4 ? sum : sum + t), 0);
    return busy * 10;
  } catch {
    return undefined;
  }
}

function formatStats(s: LoadStats): string {
  const errors = s.errorCount > 0 ? `, ${s.errorCount.toLocaleString('en-US')} errors (${s.errors})` : '';
  return `p50 ${formatMs(s.p50)} / p99 ${formatMs(s.p99)}, ${formatRate(s.throughput, ' req/s')}${errors}`;
}

// ---------------------------------------------------------------- the section

async function postOneCard(
  service: ServerProcess,
  apiKey: string,
  fake: SlackFake,
): Promise<SlackFakeMessage> {
  const res = await fetch(`${service.url}/api/v1/recommendations`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      id: 'bench-ack-card',
      title: 'Rightsize i-0abc123 (m5.2xlarge → m5.large)',
      description: 'CPU below 8% for 30 days; memory below 20%.',
      cloud: 'aws',
      account: '123456789012',
      resource: 'arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc123',
      region: 'eu-west-1',
      category: 'rightsizing',
      severity: 'high',
      monthlySavings: 412.5,
      currency: 'USD',
      link: 'https://app.cloudpi.example/recommendations/bench-ack-card',
      tags: ['team:platform', 'env:prod'],
    }),
  });
  if (res.status !== 200) throw new BenchFailure(`ingest answered ${res.status}: ${await res.text()}`);
  const deadline = performance.now() + 30_000;
  for (;;) {
    const card = fake.messages.find((m) => m.method === 'chat.postMessage' && m.channel === CARD_CHANNEL);
    if (card) return card;
    if (performance.now() > deadline)
      throw new BenchFailure(
        'the service did not post the recommendation card within 30 s',
        service.output(),
      );
    await sleep(50);
  }
}

export const ackSection: Section = async (ctx: SectionContext): Promise<SectionRow[]> => {
  const windowMs = numberFromEnv('BENCH_LOAD_SECONDS', 5, 0.5) * 1000;
  const warmupMs = numberFromEnv('BENCH_WARMUP_SECONDS', 1, 0) * 1000;
  const connectionCounts = connectionsFromEnv();
  const rounds = numberFromEnv('BENCH_ACK_ROUNDS', 4, 1);
  const kinds = kindsFromEnv();
  if (!Number.isInteger(rounds)) throw new BenchFailure('BENCH_ACK_ROUNDS must be a whole number');

  const fake = await startSlackFake();
  ctx.onCleanup(() => fake.close());
  const sink = await startAnswerSink();
  ctx.onCleanup(() => sink.close());

  const database = ctx.createPostgresDatabase ? await ctx.createPostgresDatabase() : undefined;
  const dbEnv: Record<string, string> = database
    ? { DATABASE_URL: database.url }
    : { CLOUDPI_DATA_DIR: path.join(ctx.workDir, 'ack-pglite') };
  const slackEnv = {
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_BOT_TOKEN: fake.botToken,
    SLACK_API_URL: fake.apiUrl,
  };
  const serviceEnv = childEnv({ ...dbEnv, ...slackEnv, CLOUDPI_MASTER_KEYS: masterKeysEntry() });
  const cwd = path.join(ctx.workDir, 'cwd');
  const servers: ServerProcess[] = [];
  ctx.onCleanup(async () => {
    for (const server of servers) await server.stop();
  });
  try {
    const { apiKey } = await seedTenant(serviceEnv, fake.teamId, [CARD_CHANNEL]);
    ctx.log(
      `ack: service on ${database ? 'PostgreSQL' : 'PGlite'}, ${connectionCounts.join(' and ')} connections, ${warmupMs / 1000} s warm-up + ${windowMs / 1000} s per run, ${rounds} round(s)`,
    );
    const service = await startServer({
      label: 'service',
      // Diagnostics, e.g. BENCH_ACK_SERVICE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
      args: [
        ...ctx.nodeFlags,
        ...(process.env.BENCH_ACK_SERVICE_FLAGS?.split(' ').filter(Boolean) ?? []),
        ctx.cli,
        'serve',
      ],
      env: serviceEnv,
      cwd,
    });
    servers.push(service);
    const card = await postOneCard(service, apiKey, fake);

    const baselineScript = path.join(ctx.workDir, 'bare-bolt.mjs');
    await writeFile(baselineScript, BASELINE_APP);
    const baseline = await startServer({
      label: 'bare Bolt',
      args: [
        ...ctx.nodeFlags,
        ...(process.env.BENCH_ACK_BASELINE_FLAGS?.split(' ').filter(Boolean) ?? []),
        baselineScript,
      ],
      env: childEnv({ ...slackEnv, BENCH_PACKAGE_JSON: path.join(ctx.root, 'package.json') }),
      cwd,
    });
    servers.push(baseline);

    /** Waits until the service's CPU use stays under 10% of a core for 250 ms (at most 10 s). */
    const quiet = async () => {
      const deadline = performance.now() + 10_000;
      while (performance.now() < deadline) {
        const before = cpuMsOf(service.pid);
        await sleep(250);
        const after = cpuMsOf(service.pid);
        if (before === undefined || after === undefined || after - before < 25) return;
      }
    };

    /**
     * One run against the baseline or the service. After the service's commands, waits until
     * each acked command was answered at its response_url (or ANSWER_DRAIN_MS passed) and the
     * service is idle again, so that no follow-up work spills into the next measurement.
     */
    const measure = async (
      kind: Kind,
      connections: number,
      role: 'baseline' | 'service',
      bodies: Buffer[],
    ) => {
      const [server, peer] = role === 'baseline' ? [baseline, service] : [service, baseline];
      const answersBefore = sink.count();
      const result = await runLoad({ server, peer, connections, warmupMs, windowMs, bodies });
      for (const proc of [server, peer]) {
        const ended = proc.exitStatus();
        if (ended)
          throw new BenchFailure(
            `ack: the ${proc.label} process died (code ${ended.code}, signal ${ended.signal}) during the ${kind} run at ${connections} connections`,
            proc.output(),
          );
      }
      const stats = statsOf([result]);
      const pct = (value: number | undefined) => (value === undefined ? '?' : `${value.toFixed(0)}%`);
      const perRequest =
        result.serverCpu === undefined
          ? '?'
          : `${((result.serverCpu * 10) / stats.throughput).toFixed(2)} ms`;
      ctx.log(
        `  ${kind.padEnd(6)} ${String(connections).padStart(3)} conns  ${role.padEnd(8)}  ${formatStats(stats)}   CPU: ${role} ${pct(result.serverCpu)} (${perRequest} a request), other server ${pct(result.peerCpu)}, load generator ${pct(result.generatorCpu)}, machine ${pct(result.machineCpu)} of ${os.availableParallelism() * 100}%`,
      );
      if (role !== 'service') return { result, unanswered: 0 };
      let unanswered = 0;
      if (kind === 'slash') {
        const drainStarted = performance.now();
        while (
          sink.count() - answersBefore < result.acked &&
          performance.now() - drainStarted < ANSWER_DRAIN_MS
        )
          await sleep(50);
        unanswered = Math.max(0, result.acked - (sink.count() - answersBefore));
        ctx.log(
          `         ${(result.acked - unanswered).toLocaleString('en-US')} of ${result.acked.toLocaleString('en-US')} acked commands (warm-up included) answered at their response_url, the last ${((performance.now() - drainStarted) / 1000).toFixed(1)} s after the run${unanswered > 0 ? `: ${unanswered.toLocaleString('en-US')} NOT ANSWERED` : ''}`,
        );
        if (unanswered > 0) {
          const warnings = service
            .output()
            .split('\n')
            .filter((line) => /"level":(40|50|60)/.test(line) && !line.includes('Teams runs WITHOUT'))
            .slice(-3);
          for (const line of warnings) ctx.log(`         service: ${line.slice(0, 400)}`);
        }
      }
      await quiet();
      return { result, unanswered };
    };

    // Rounds alternate baseline and service on every (kind, connections), in turn first; a row
    // pools its rounds, so that a burst of other work on the machine, or whatever runs first after
    // the previous row, does not land on one side only.
    type Key = `${Kind} ${number}`;
    const runs = new Map<Key, { baseline: LoadResult[]; service: LoadResult[]; unanswered: number }>();
    const bodies = {
      slash: buildBodies('slash', fake, sink.url, card),
      button: buildBodies('button', fake, sink.url, card),
    };
    for (let round = 1; round <= rounds; round++) {
      if (rounds > 1) ctx.log(`  round ${round} of ${rounds}`);
      for (const kind of kinds) {
        for (const connections of connectionCounts) {
          const key: Key = `${kind} ${connections}`;
          const entry = runs.get(key) ?? { baseline: [], service: [], unanswered: 0 };
          runs.set(key, entry);
          // Odd rounds measure the baseline first, even rounds the service first.
          const order =
            round % 2 === 1 ? (['baseline', 'service'] as const) : (['service', 'baseline'] as const);
          for (const side of order) {
            const measured = await measure(kind, connections, side, bodies[kind]);
            entry[side].push(measured.result);
            entry.unanswered += measured.unanswered;
          }
        }
      }
    }

    const rows: SectionRow[] = [];
    for (const kind of kinds) {
      for (const connections of connectionCounts) {
        const entry = runs.get(`${kind} ${connections}`)!;
        const s = statsOf(entry.service);
        const b = statsOf(entry.baseline);
        const throughputRatio = s.throughput / b.throughput;
        const p99Ratio = s.p99 / b.p99;
        const unanswered = entry.unanswered;
        const followUp = unanswered > 0 ? `; ${unanswered.toLocaleString('en-US')} acked, not answered` : '';
        rows.push({
          scenario: `${KIND_LABELS[kind]}, ${connections} conns`,
          measured: `${formatStats(s)}${followUp}`,
          baseline: formatStats(b),
          ratio: `${formatRatio(throughputRatio)} thr, ${formatRatio(p99Ratio)} p99`,
          goal: `≥ ${GOAL_THROUGHPUT_RATIO.toFixed(2)}× thr, p99 ≤ ${GOAL_P99_RATIO.toFixed(2)}×`,
          met:
            s.errorCount === 0 &&
            b.errorCount === 0 &&
            unanswered === 0 &&
            throughputRatio >= GOAL_THROUGHPUT_RATIO &&
            p99Ratio <= GOAL_P99_RATIO,
        });
      }
    }
    if (fake.specViolations.length > 0)
      ctx.log(`ack: Slack fake spec violations: ${fake.specViolations.slice(0, 5).join('; ')}`);
    return rows;
  } finally {
    while (servers.length > 0) {
      const server = servers.pop()!;
      const { code, signal } = await server.stop();
      if (code !== 0 && server.label === 'service')
        ctx.log(
          `ack: the service exited with code ${code} (signal ${signal}) after SIGTERM\n${server.output()}`,
        );
    }
    await database?.drop();
  }
};

if (isMain(import.meta.url)) {
  await runStandalone('Slack acknowledgement latency and throughput', ackSection);
}
