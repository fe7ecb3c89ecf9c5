/**
 * Bench section: fan-out of 1,000 cards to 100 Slack channels against the Slack Web API fake
 * applying Slack's chat.postMessage limit per channel (SLACK_CHANNEL_POST_LIMIT: 1 a second,
 * bursts of 3), with the service as a real process (`cloudpi serve`).
 *
 * 100 channels are subscribed, channel i to the account "fanout-i"; 1,000 recommendations are
 * ingested (two requests of 500), recommendation j for account "fanout-(j mod 100)", so each
 * channel gets 10 cards, after a warm-up of 30 cards to 10 other channels (not measured). Measured:
 * from the first ingest request to the last card the fake
 * accepted. The floor is the earliest time the limit lets 10 posts per channel through (all 100
 * channels in parallel, nothing else taking time). A 429 the service waited out and then posted is
 * handled; a card left unposted, or a warning or error the service logged about a rate limit, is
 * unhandled.
 *
 * Alone: `npm run build && node dist/test/bench/fanout.js` (standalone.ts: PostgreSQL from
 * BENCH_DATABASE_URL / TEST_DATABASE_URL or a throwaway cluster, as in run.ts). BENCH_FANOUT_TIMEOUT_S (default
 * 600) bounds the wait for the last card; BENCH_FANOUT_BURST sets the fake's burst.
 */
import os from 'node:os';
import { eq, sql } from '../../src/storage/orm.js';
import { cards } from '../../src/storage/schema.js';
import { earliestPostsMs, SLACK_CHANNEL_POST_LIMIT, startSlackFake } from '../support/fakes/slack-fake.js';
import { formatRatio, type Section } from './section.js';
import { isMain, runStandalone } from './standalone.js';
import {
  type BenchService,
  ingest,
  type LogLine,
  type ProcessCpu,
  startBenchService,
  summarizeLogs,
  untilSlack,
  withLogs,
} from './ticket-latency.js';

const CHANNELS = 100;
const CARDS_PER_CHANNEL = 10;
const GOAL_RATIO = 1.1;
/** Warm-up cards (not measured), to channels of their own: 10 channels × 3 (one burst each). */
const WARM_CHANNELS = 10;
const WARM_PER_CHANNEL = 3;

const channelOf = (i: number) => `C0FANOUT${String(i).padStart(3, '0')}`;

function recommendation(j: number): Record<string, unknown> {
  return {
    id: `bench-fanout-${j}`,
    title: `Delete unattached volume vol-${j.toString(16).padStart(8, '0')}`,
    cloud: 'aws',
    account: `fanout-${j % CHANNELS}`,
    resource: `arn:aws:ec2:eu-west-1:123456789012:volume/vol-${j.toString(16).padStart(8, '0')}`,
    category: 'storage',
    severity: 'medium',
    monthlySavings: 20 + (j % 50),
    currency: 'USD',
  };
}

const RATE_LIMIT_TEXT = /rate.?limit|ratelimited|\b429\b|retry-after/i;

/**
 * The Slack Web API client's notice that it got a 429 and retries after Retry-After (logged at
 * warn before the retry): a handled 429, counted apart.
 */
function isRetryNotice(line: LogLine): boolean {
  return (
    (line.level ?? 0) === 40 &&
    /^http request failed/.test(line.msg ?? '') &&
    RATE_LIMIT_TEXT.test(line.msg ?? '')
  );
}

/** A warning or error of the service about a rate limit (429) other than the client's retry notice. */
function isRateLimitLine(line: LogLine): boolean {
  return (line.level ?? 0) >= 40 && !isRetryNotice(line) && RATE_LIMIT_TEXT.test(JSON.stringify(line));
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

export const fanoutSection: Section = async (ctx) => {
  const total = CHANNELS * CARDS_PER_CHANNEL;
  const timeoutS = Number(process.env.BENCH_FANOUT_TIMEOUT_S ?? 600);
  const scenario = `fan-out ${total.toLocaleString('en-US')} cards → ${CHANNELS} channels`;
  const goal = `≤ ${GOAL_RATIO.toFixed(2)}× floor, 0 unhandled 429`;
  // BENCH_FANOUT_BURST below the service's assumed burst (3) makes the fake stricter than the
  // service expects: its 429s are then what the service has to wait out.
  const burst = Number(process.env.BENCH_FANOUT_BURST ?? SLACK_CHANNEL_POST_LIMIT.burst);
  const limit = { ...SLACK_CHANNEL_POST_LIMIT, burst };
  const floorMs = earliestPostsMs(limit, CARDS_PER_CHANNEL);

  const slack = await startSlackFake({ channelPostLimit: limit });
  ctx.onCleanup(() => slack.close());
  const channels = Array.from({ length: CHANNELS }, (_, i) => channelOf(i));
  const warmChannels = Array.from({ length: WARM_CHANNELS }, (_, i) => `C0FANWARM${i}`);
  const service: BenchService = await startBenchService(ctx, {
    label: 'fanout',
    slack,
    routes: [
      ...channels.map((channelId, i) => ({ channelId, filters: { account: `fanout-${i}` } })),
      ...warmChannels.map((channelId, i) => ({ channelId, filters: { account: `warm-${i}` } })),
    ],
    env: { CLOUDPI_TICKET_POLL_CRON: '0 0 1 1 *', CLOUDPI_HEALTH_CHECK_CRON: '0 0 1 1 *' },
  });
  ctx.log(
    `fan-out (${service.database}): ${total} cards to ${CHANNELS} channels; the fake allows ${limit.perSecond} post/s per channel, bursts of ${limit.burst}: floor ${seconds(floorMs)}`,
  );

  const wanted = new Set(channels);
  let accepted = 0;
  let firstAt = 0;
  let lastAt = 0;
  /** When each channel's posts were accepted: the pace per channel against the limit's. */
  const postedAt = new Map<string, number[]>();
  const off = slack.onCall((call) => {
    if (call.method !== 'chat.postMessage' || call.status !== 200 || call.error) return;
    const channel = String(call.body.channel);
    if (!wanted.has(channel)) return;
    accepted += 1;
    lastAt = performance.now();
    firstAt ||= lastAt;
    const times = postedAt.get(channel) ?? [];
    times.push(lastAt);
    postedAt.set(channel, times);
  });
  let ingestedAt = 0;

  // Warm-up, not measured: a running service has its code paths compiled and its connections
  // open; the first requests of a fresh process are start-up, measured in its own rows.
  {
    let warmed = 0;
    const warmSet = new Set(warmChannels);
    const offWarm = slack.onCall((call) => {
      if (call.method === 'chat.postMessage' && call.status === 200 && warmSet.has(String(call.body.channel)))
        warmed += 1;
    });
    const warmItems = Array.from({ length: WARM_CHANNELS * WARM_PER_CHANNEL }, (_, j) => ({
      ...recommendation(100_000 + j),
      id: `bench-fanout-warm-${j}`,
      account: `warm-${j % WARM_CHANNELS}`,
    }));
    try {
      await ingest(service, warmItems);
      await untilSlack(slack, () => warmed >= warmItems.length, 60_000, 'the warm-up cards');
    } catch (error) {
      offWarm();
      await service.stop();
      throw withLogs(error, service);
    }
    offWarm();
  }

  let finished = true;
  let startedAt = 0;
  let serviceCpuAtStart: ProcessCpu | undefined;
  let benchCpuAtStart: NodeJS.CpuUsage | undefined;
  try {
    const items = Array.from({ length: total }, (_, j) => recommendation(j));
    serviceCpuAtStart = service.cpu();
    benchCpuAtStart = process.cpuUsage();
    startedAt = performance.now();
    await ingest(service, items);
    ingestedAt = performance.now();
    await untilSlack(slack, () => accepted >= total, timeoutS * 1000, `posting ${total} cards`).catch(
      (error: Error) => {
        finished = false;
        ctx.log(`  ${error.message} (${accepted} posted)`);
      },
    );
  } catch (error) {
    off();
    await service.stop();
    throw withLogs(error, service);
  }
  off();
  const elapsedMs = (finished ? lastAt : performance.now()) - startedAt;
  const serviceCpu = service.cpu();
  const benchCpu = process.cpuUsage(benchCpuAtStart);
  await service.stop();

  const { states, transactions } = await service.inspect(async (_repositories, handle) => {
    const rows = await handle.db
      .select({ state: cards.state, channelId: cards.channelId })
      .from(cards)
      .where(eq(cards.platform, 'slack'));
    const byState = new Map<string, number>();
    for (const row of rows)
      if (wanted.has(row.channelId)) byState.set(row.state, (byState.get(row.state) ?? 0) + 1);
    // Statements the service ran (each one its own transaction, most of them): the cost of a card.
    const [stat] =
      handle.kind === 'postgres'
        ? await handle.rows<{ n: string }>(
            sql`select xact_commit + xact_rollback as n from pg_stat_database where datname = current_database()`,
          )
        : [];
    return { states: byState, transactions: stat ? Number(stat.n) : undefined };
  });
  const posted = states.get('posted') ?? 0;
  const notPosted = total - posted;
  const tooMany = [...wanted].filter(
    (c) =>
      slack.messages.filter((m) => m.method === 'chat.postMessage' && m.channel === c).length >
      CARDS_PER_CHANNEL,
  ).length;
  const answered429 = [...slack.channelRateLimited.values()].reduce((a, b) => a + b, 0);
  const rateLimitLines = service.logs().filter(isRateLimitLine).length;
  const retryNotices = service.logs().filter(isRetryNotice).length;
  const unhandled = notPosted + rateLimitLines;
  const ratio = elapsedMs / floorMs;

  ctx.log(
    `  ${seconds(elapsedMs)} to the last card; cards by state: ${[...states].map(([s, n]) => `${s} ${n}`).join(', ') || 'none'}; 429 answered ${answered429}; the client's retry notices ${retryNotices}; other rate-limit warnings/errors ${rateLimitLines}; channels with duplicate posts ${tooMany}`,
  );
  ctx.log(
    `  ingest answered after ${seconds(ingestedAt - startedAt)}; first card at ${seconds(firstAt - startedAt)}; first to last card ${seconds(lastAt - firstAt)}`,
  );
  const channelFirsts = [...postedAt.values()].map((t) => t[0]! - startedAt);
  const channelSpans = [...postedAt.values()].map((t) => t[t.length - 1]! - t[0]!);
  if (channelFirsts.length > 0)
    ctx.log(
      `  each channel's first card at ${seconds(Math.min(...channelFirsts))}–${seconds(Math.max(...channelFirsts))}; its first to its last card ${seconds(Math.min(...channelSpans))}–${seconds(Math.max(...channelSpans))} (the limit's floor from the first: ${seconds(floorMs)})`,
    );
  if (transactions !== undefined)
    ctx.log(
      `  PostgreSQL transactions in the database, set-up to end: ${transactions} (${(transactions / total).toFixed(1)} per card)`,
    );
  ctx.log(
    `  CPU while fanning out: service ${serviceCpu && serviceCpuAtStart ? `${seconds(serviceCpu.userMs - serviceCpuAtStart.userMs)} user + ${seconds(serviceCpu.systemMs - serviceCpuAtStart.systemMs)} system` : '?'}, bench process (Slack fake) ${seconds((benchCpu.user + benchCpu.system) / 1000)}, in ${seconds(elapsedMs)} on ${os.availableParallelism()} CPUs (load average ${os.loadavg()[0]!.toFixed(1)})`,
  );
  for (const line of summarizeLogs(service.logs())) ctx.log(`  service log: ${line}`);

  return [
    {
      scenario: `${scenario} (${service.database})`,
      measured: `${finished ? '' : '> '}${seconds(elapsedMs)} (${answered429}×429 handled, ${unhandled} unhandled)`,
      baseline: `floor ${seconds(floorMs)}`,
      ratio: formatRatio(ratio),
      goal,
      met: finished && ratio <= GOAL_RATIO && unhandled === 0,
    },
  ];
};

if (isMain(import.meta.url)) {
  await runStandalone(
    "fan-out of 1,000 cards to 100 channels under Slack's per-channel limit",
    fanoutSection,
  );
}
