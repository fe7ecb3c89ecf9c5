/**
 * The reliability suite's world: replicas of the real service (`cloudpi serve`, separate
 * processes) on one PostgreSQL database, the strict Slack and Jira fakes in this process, and a
 * tenant set up the way an admin would have it (Jira connected, channels subscribed, an ingest
 * API key). The test process opens the same database with the same master key to set up and to
 * count what happened.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ticketProviderFactories } from '../../adapters/tickets/index.js';
import { SecretBox } from '../../src/crypto/secret-box.js';
import { createProviderRegistry, IntegrationService } from '../../src/integrations/service.js';
import { createLogger } from '../../src/logger.js';
import { type DatabaseHandle, openDatabase } from '../../src/storage/db.js';
import { sql } from '../../src/storage/orm.js';
import { createRepositories, type Repositories } from '../../src/storage/repositories/index.js';
import { button } from '../slack/helpers.js';
import { type JiraFake, startJiraFake } from '../support/fakes/jira-fake.js';
import { type SlackFake, type SlackFakeMessage, startSlackFake } from '../support/fakes/slack-fake.js';
import { keyEntry, masterKey } from '../support/keys.js';
import { freePort, type ServiceProcess, spawnCli, waitUntilReady } from '../support/process.js';
import { blockActionsPayload, postSlackInteraction } from '../support/slack-requests.js';
import { waitFor } from '../support/wait.js';

export const SIGNING_SECRET = 'reliability-signing-secret-0123456789';

export interface ClusterOptions {
  /** postgres:// URL of an empty database the cluster owns. */
  readonly databaseUrl: string;
  /** Directory for the replicas' data dirs. */
  readonly dir: string;
  readonly channels: readonly string[];
  /** Extra environment for every replica. */
  readonly env?: Record<string, string>;
}

export interface Cluster {
  readonly slack: SlackFake;
  readonly jira: JiraFake;
  readonly replicas: ServiceProcess[];
  readonly handle: DatabaseHandle;
  readonly repos: Repositories;
  readonly tenantId: string;
  readonly apiKey: string;
  readonly admin: string;
  /** Starts one more replica (same environment) and waits until it is ready. */
  addReplica(): Promise<ServiceProcess>;
  /** POSTs recommendations to the ingest API of a replica; expects 200. */
  ingest(recommendations: readonly Record<string, unknown>[], replica?: ServiceProcess): Promise<void>;
  /** The cards as first posted (chat.postMessage into the subscribed channels). */
  postedCards(): SlackFakeMessage[];
  /** Waits until `count` cards (of recommendations whose id matches `match`, if given) have been posted. */
  waitForCards(count: number, timeoutMs?: number, match?: RegExp): Promise<SlackFakeMessage[]>;
  /** The signed body of `user` pressing `label` on `card` (one click). */
  press(replica: ServiceProcess, card: SlackFakeMessage, label?: string, retryNum?: number): Promise<number>;
  /** Tickets by status (SQL on the shared database). */
  ticketCounts(): Promise<Record<string, number>>;
  /** Lines the replicas logged at error level or above (JSON logs), with the replica's index. */
  errorLines(): string[];
  close(): Promise<void>;
}

/** `n` Slack channel ids for one test file, e.g. C0RELS0000… (`tag`: up to 5 capitals). */
export function channelIds(tag: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `C0${tag}${String(i).padStart(4, '0')}`);
}

/** The account of channel `index`'s subscription filter: each channel gets its own share. */
export function accountOf(index: number): string {
  return `acct-${String(index).padStart(3, '0')}`;
}

/**
 * The recommendation bodies the suite ingests: `n` of them, ids `${prefix}-<i>`, spread evenly
 * over `channels` subscribed channels by account (Slack allows about one post a second per
 * channel: a thousand cards in one channel would take a quarter of an hour).
 */
export function recommendations(prefix: string, n: number, channels = 1): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}-${i}`,
    // The id is in the title: tests find each card's recommendation by it.
    title: `${prefix}-${i}: rightsize instance i-0${i.toString(16)} to t3.small`,
    description: 'CPU under 5% for 30 days.',
    cloud: 'aws',
    account: accountOf(i % channels),
    region: 'eu-west-1',
    resource: `arn:aws:ec2:eu-west-1:123456789012:instance/i-0${i.toString(16)}`,
    severity: 'medium',
    monthlySavings: 100 + i,
    currency: 'USD',
  }));
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const [slack, jira] = await Promise.all([startSlackFake(), startJiraFake()]);
  const key = masterKey('reliability');
  const admin = slack.users.admin;
  const env: Record<string, string> = {
    DATABASE_URL: options.databaseUrl,
    CLOUDPI_MASTER_KEYS: keyEntry(key),
    CLOUDPI_ALLOW_HTTP: 'true',
    CLOUDPI_ALLOW_PRIVATE_NETWORKS: 'true',
    CLOUDPI_ADMINS: `slack:${admin}`,
    CLOUDPI_API_RATE_LIMIT: '1000000',
    CLOUDPI_TICKET_POLL_CRON: '0 0 1 1 *',
    CLOUDPI_HEALTH_CHECK_CRON: '0 0 1 1 *',
    CLOUDPI_JOB_SUPERVISE_SECONDS: '2',
    CLOUDPI_JOB_HEARTBEAT_SECONDS: '10',
    CLOUDPI_SHUTDOWN_TIMEOUT_MS: '5000',
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_BOT_TOKEN: slack.botToken,
    SLACK_API_URL: slack.apiUrl,
    LOG_LEVEL: 'info',
    ...options.env,
  };
  const replicas: ServiceProcess[] = [];
  const addReplica = async () => {
    const replica = spawnCli(
      ['serve'],
      { ...env, CLOUDPI_DATA_DIR: `${options.dir}/replica-${replicas.length}` },
      await freePort(),
    );
    replicas.push(replica);
    await waitUntilReady(replica, 60_000);
    return replica;
  };
  // The first migrates; the second starts on the migrated database.
  await addReplica();
  await addReplica();

  const handle = await openDatabase({ kind: 'postgres', url: options.databaseUrl });
  const box = new SecretBox([key]);
  const repos = createRepositories(handle.db, box);
  const tenant = await repos.tenants.ensure('slack', slack.teamId, 'Reliability');
  const integrations = new IntegrationService({
    repositories: repos,
    registry: createProviderRegistry(ticketProviderFactories),
    urlPolicy: { allowHttp: true, allowPrivateNetworks: true },
    logger: createLogger({ level: 'silent', format: 'json' }),
  });
  const connected = await integrations.connect(tenant.id, 'jira', jira.validValues, 'reliability');
  if (!connected.ok) throw new Error(`Jira did not connect: ${JSON.stringify(connected)}`);
  const configured = await integrations.configure(tenant.id, 'jira', jira.routing, 'reliability');
  if (!configured.ok) throw new Error(`Jira routing refused: ${JSON.stringify(configured)}`);
  for (const [index, channel] of options.channels.entries()) {
    slack.joinChannel(channel);
    await repos.routes.create(tenant.id, {
      platform: 'slack',
      channelId: channel,
      filters: { account: accountOf(index) },
      createdBy: `slack:${admin}`,
    });
  }
  const apiKey = (await repos.apiKeys.create(tenant.id, 'reliability')).key;

  const errorLines = () =>
    replicas.flatMap((r, i) =>
      r
        .stdout()
        .split('\n')
        .filter((line) => /"level":(50|60)/.test(line))
        .map((line) => `replica ${i}: ${line}`),
    );
  const postedCards = () =>
    slack.messages.filter((m) => m.method === 'chat.postMessage' && options.channels.includes(m.channel));

  return {
    slack,
    jira,
    replicas,
    handle,
    repos,
    tenantId: tenant.id,
    apiKey,
    admin,
    addReplica,
    async ingest(recs, replica = replicas[0]!) {
      for (let i = 0; i < recs.length; i += 500) {
        const res = await fetch(`http://127.0.0.1:${replica.port}/api/v1/recommendations`, {
          method: 'POST',
          headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify(recs.slice(i, i + 500)),
        });
        if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
      }
    },
    postedCards,
    async waitForCards(count, timeoutMs = 180_000, match) {
      const ofThese = () =>
        match ? postedCards().filter((c) => match.test(JSON.stringify(c.blocks))) : postedCards();
      try {
        return await waitFor(() => {
          const cards = ofThese();
          return cards.length >= count ? cards : undefined;
        }, timeoutMs);
      } catch {
        const states = await handle.rows<{ state: string; n: number }>(
          sql`select state, count(*)::int as n from cards where tenant_id = ${tenant.id} group by state`,
        );
        throw new Error(
          `${ofThese().length} of ${count} cards posted in ${timeoutMs} ms; cards by state: ${JSON.stringify(states)}; errors: ${errorLines().slice(0, 5).join('\n')}`,
        );
      }
    },
    async press(replica, card, label = 'Create ticket', retryNum) {
      const element = button({ blocks: card.blocks }, label);
      const payload = blockActionsPayload({
        teamId: slack.teamId,
        userId: slack.users.member,
        actionId: String(element.action_id),
        triggerId: slack.issueTriggerId(slack.users.member),
        message: { blocks: card.blocks, text: card.text, ts: card.ts, channel: card.channel },
        channelId: card.channel,
      });
      const res = await postSlackInteraction(
        `http://127.0.0.1:${replica.port}`,
        SIGNING_SECRET,
        payload,
        retryNum
          ? { headers: { 'x-slack-retry-num': String(retryNum), 'x-slack-retry-reason': 'http_timeout' } }
          : {},
      ).catch(() => undefined);
      await res?.arrayBuffer().catch(() => undefined);
      return res?.status ?? 0;
    },
    async ticketCounts() {
      const rows = await handle.rows<{ status: string; n: number }>(
        sql`select status, count(*)::int as n from tickets where tenant_id = ${tenant.id} group by status`,
      );
      return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
    },
    errorLines,
    async close() {
      for (const r of replicas) r.child.kill('SIGTERM');
      await Promise.race([Promise.all(replicas.map((r) => r.exited)), sleep(15_000)]);
      for (const r of replicas) r.child.kill('SIGKILL');
      await handle.close();
      await Promise.all([slack.close(), jira.close()]);
    },
  };
}
