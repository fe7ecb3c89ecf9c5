/**
 * Provider faults (issue 9), two replicas on PostgreSQL against the Jira fake:
 * - Jira answers 429 with Retry-After to every second call for 60 s → every ticket is created,
 *   and no call for a ticket arrives before the Retry-After its previous call was given;
 * - Jira is down (503) for a stretch of time → the create jobs retry, then dead-letter; each
 *   ticket shows as failed with Retry on its card, and the admins get one direct message that
 *   says how many and why. Nothing is silently dropped: after the outage, Retry creates them all.
 *   The outage is "5 minutes" compressed: RELIABILITY_OUTAGE_MS (default 30 s) with the retry
 *   schedule compressed to match (CLOUDPI_RETRY_*: 3 retries, 1 s then 2 s).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { textOf } from '../slack/helpers.js';
import { type FreshDatabase, freshDatabase, TEST_DATABASE_URL } from '../support/databases.js';
import type { SlackFakeMessage } from '../support/fakes/slack-fake.js';
import { waitFor } from '../support/wait.js';
import { type Cluster, channelIds, recommendations, startCluster } from './cluster.js';

const CHANNELS = channelIds('RELF', 20);
const RATE_LIMIT_WINDOW_MS = 60_000;
const OUTAGE_MS = Number(process.env.RELIABILITY_OUTAGE_MS ?? 30_000);

describe.skipIf(!TEST_DATABASE_URL)('provider faults (real processes on PostgreSQL)', () => {
  let fresh: FreshDatabase;
  let cluster: Cluster;
  beforeAll(async () => {
    fresh = await freshDatabase('postgres');
    cluster = await startCluster({
      databaseUrl: (fresh.target as { url: string }).url,
      dir: fresh.dir,
      channels: CHANNELS,
      env: {
        CLOUDPI_RETRY_LIMIT: '3',
        CLOUDPI_RETRY_DELAY_SECONDS: '1',
        CLOUDPI_RETRY_DELAY_MAX_SECONDS: '2',
      },
    });
  });
  afterAll(async () => {
    await cluster?.close();
    await fresh?.drop();
  });

  /** The latest version (post or update) of each card of `prefix`, by recommendation id. */
  const latestCards = (prefix: string) => {
    const latest = new Map<string, SlackFakeMessage>();
    for (const m of cluster.slack.messages) {
      if (!CHANNELS.includes(m.channel) || m.method === 'chat.postEphemeral') continue;
      const id = new RegExp(`${prefix}-\\d+`).exec(JSON.stringify(m.blocks))?.[0];
      if (id) latest.set(id, m);
    }
    return latest;
  };

  it('429 with Retry-After on half the calls for 60 s: every ticket created, no call before its Retry-After', async () => {
    const [a, b] = cluster.replicas;
    await cluster.ingest(recommendations('limited', 100, CHANNELS.length));
    const cards = await cluster.waitForCards(100, undefined, /limited-\d+/);
    const started = Date.now();
    cluster.jira.rateLimitWindow(RATE_LIMIT_WINDOW_MS, 2, 2);
    // Clicks spread over the first half of the window, alternating replicas.
    for (const [i, card] of cards.entries()) {
      expect(await cluster.press(i % 2 ? b! : a!, card)).toBe(200);
      await sleep(250);
    }
    await waitFor(async () => {
      const counts = await cluster.ticketCounts();
      return counts.open === 100 ? counts : undefined;
    }, RATE_LIMIT_WINDOW_MS + 120_000);
    expect(await cluster.ticketCounts()).toEqual({ open: 100 });
    expect(cluster.jira.ticketCount()).toBe(100);
    // The window was really hit, for most of its length, and never jumped.
    expect(cluster.jira.rateLimitedCount()).toBeGreaterThan(50);
    expect(cluster.jira.retryAfterViolations).toEqual([]);
    const lastRequest = cluster.jira.requests.at(-1)!.at;
    expect(lastRequest - started).toBeGreaterThan(20_000);
    // The cards show their issues, at Slack's pace: chat.update is Tier 3 (50 a minute per
    // workspace and replica), and each press is shown as well as its ticket.
    await waitFor(() => {
      const latest = latestCards('limited');
      return latest.size === 100 && [...latest.values()].every((m) => /OPS-\d+/.test(textOf(m.blocks)))
        ? true
        : undefined;
    }, 150_000);
    expect(cluster.errorLines()).toEqual([]);
  });

  it('provider down: retries, then dead-letter; cards show Retry, admins are told once; Retry after the outage creates them', async () => {
    const [a, b] = cluster.replicas;
    await cluster.ingest(recommendations('outage', 20, CHANNELS.length));
    const cards = await cluster.waitForCards(20, undefined, /outage-\d+/);
    expect(cards).toHaveLength(20);
    const before = cluster.jira.ticketCount();
    const outageEnds = Date.now() + OUTAGE_MS;
    cluster.jira.setOutage(outageEnds);
    for (const [i, card] of cards.entries()) expect(await cluster.press(i % 2 ? b! : a!, card)).toBe(200);

    // Every ticket ends failed (dead-lettered), while the provider is still down.
    await waitFor(async () => ((await cluster.ticketCounts()).failed === 20 ? true : undefined), OUTAGE_MS);
    expect(Date.now()).toBeLessThan(outageEnds);
    expect(cluster.jira.ticketCount()).toBe(before);
    // Each card says so and offers Retry. Card updates go at Slack's pace (chat.update is Tier 3:
    // 50 a minute per workspace, and the previous test's 200 updates may still fill the minute).
    const failedCards = await waitFor(() => {
      const latest = [...latestCards('outage').values()];
      return latest.length === 20 && latest.every((m) => textOf(m.blocks).includes('could not be created'))
        ? latest
        : undefined;
    }, 90_000);
    // The admin hears about it once (one direct message for the whole burst), with the count and the reason.
    const alerts = await waitFor(() => {
      const dms = cluster.slack.messages.filter(
        (m) => m.method === 'chat.postMessage' && m.channel === cluster.admin,
      );
      return dms.length > 0 ? dms : undefined;
    });
    await sleep(3_000);
    const dms = cluster.slack.messages.filter(
      (m) => m.method === 'chat.postMessage' && m.channel === cluster.admin,
    );
    expect(dms).toHaveLength(1);
    const alert = textOf(alerts[0]!.blocks ?? alerts[0]!.text);
    expect(alert).toContain('20 tickets could not be created');
    expect(alert).toContain('Jira: 20');
    expect(alert).toMatch(/503|unavailable/i);
    const audit = await cluster.repos.audit.recent(cluster.tenantId, 5, 'admins.alerted');
    expect(audit[0]?.after).toMatchObject({ tickets: 20, admins: [cluster.admin] });

    // After the outage: Retry on each card creates each ticket, once.
    await sleep(Math.max(0, outageEnds - Date.now()) + 500);
    for (const [i, card] of failedCards.entries())
      expect(await cluster.press(i % 2 ? b! : a!, card, 'Retry')).toBe(200);
    const opened = await waitFor(async () => {
      const counts = await cluster.ticketCounts();
      return counts.failed || counts.creating ? undefined : counts;
    }, 60_000);
    expect(Object.keys(opened)).toEqual(['open']);
    expect(cluster.jira.ticketCount()).toBe(before + 20);
  });
});
