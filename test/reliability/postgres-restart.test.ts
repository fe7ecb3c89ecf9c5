/**
 * PostgreSQL restarted under load (issue 9): two replicas on a throwaway cluster of their own
 * (PG_BIN), recommendations ingested and cards clicked the whole time; the server is stopped
 * (fast shutdown: every connection cut), kept down for a few seconds and started again. The
 * replicas are not restarted: they answer 503 with a clear error while it is down, report not
 * ready, and recover on their own; everything that was acknowledged is there afterwards: each
 * recommendation ingested with 200 has its card, each click answered 200 has its ticket, once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../../src/storage/orm.js';
import { createDatabase, type PostgresTarget, startThrowawayCluster } from '../bench/postgres.js';
import { tempDir } from '../support/databases.js';
import { waitFor } from '../support/wait.js';
import { type Cluster, channelIds, recommendations, startCluster } from './cluster.js';

const CHANNELS = channelIds('RELP', 20);

let server: PostgresTarget | undefined;
const skip = !process.env.TEST_DATABASE_URL;

describe.skipIf(skip)('PostgreSQL restarted under load (real processes)', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    server = await startThrowawayCluster();
    if (server.kind !== 'cluster')
      throw new Error(`no PostgreSQL cluster to restart: ${JSON.stringify(server)}`);
    const database = await createDatabase(server.adminUrl);
    cluster = await startCluster({ databaseUrl: database.url, dir: tempDir(), channels: CHANNELS });
  });
  afterAll(async () => {
    await cluster?.close();
    if (server?.kind === 'cluster') await server.stop();
  });

  it('the replicas ride out a restart of PostgreSQL without restarting themselves', async () => {
    const [a, b] = cluster.replicas;
    const pids = cluster.replicas.map((r) => r.child.pid);
    const accepted: string[] = [];
    const refused: { status: number; body: string }[] = [];
    let batch = 0;
    let stop = false;

    // Load: a batch of 10 recommendations every 200 ms, alternating replicas, until told to stop.
    const load = (async () => {
      while (!stop) {
        const recs = recommendations(`pgr${batch}`, 10, CHANNELS.length);
        const replica = batch++ % 2 ? b! : a!;
        const res = await fetch(`http://127.0.0.1:${replica.port}/api/v1/recommendations`, {
          method: 'POST',
          headers: { authorization: `Bearer ${cluster.apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify(recs),
        }).catch((error: Error) => ({ status: 0, text: async () => error.message }));
        if (res.status === 200) accepted.push(...recs.map((r) => String(r.id)));
        else refused.push({ status: res.status, body: await res.text() });
        await sleep(200);
      }
    })();

    await waitFor(() => (accepted.length >= 100 ? true : undefined), 60_000);
    const server_ = server as Extract<PostgresTarget, { kind: 'cluster' }>;
    await server_.restart(5_000);
    // Ready again on their own, and ingesting.
    for (const r of cluster.replicas)
      await waitFor(async () => {
        const res = await fetch(`http://127.0.0.1:${r.port}/readyz`).catch(() => undefined);
        return res?.status === 200 ? true : undefined;
      }, 60_000);
    const afterRestart = accepted.length;
    await waitFor(() => (accepted.length >= afterRestart + 50 ? true : undefined), 60_000);
    stop = true;
    await load;

    // While it was down, the API said so (503 + a clear message), never 500.
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(r.status).toBe(503);
      expect(r.body).toMatch(/database is not reachable|not ready|unavailable/i);
    }
    // Same processes: nobody restarted.
    expect(cluster.replicas.map((r) => r.child.pid)).toEqual(pids);
    expect(cluster.replicas.every((r) => r.child.exitCode === null)).toBe(true);

    // Everything acknowledged was kept, and gets its card.
    const stored = await waitFor(async () => {
      const rows = await cluster.handle.rows<{ external_id: string }>(
        sql`select external_id from recommendations where tenant_id = ${cluster.tenantId}`,
      );
      return rows.length >= accepted.length ? rows : undefined;
    });
    // (A batch whose answer was lost to the restart may be stored too: the client retries it.)
    const storedIds = new Set(stored.map((r) => r.external_id));
    expect(accepted.filter((id) => !storedIds.has(id))).toEqual([]);
    const cards = await cluster.waitForCards(stored.length, 240_000);
    const carded = new Set(cards.map((c) => /pgr\d+-\d+/.exec(JSON.stringify(c.blocks))?.[0]));
    expect(carded.size).toBe(stored.length);
    expect(accepted.filter((id) => !carded.has(id))).toEqual([]);

    // Clicks after the restart create their tickets (jobs run again), each once.
    const clicked = cards.slice(0, 40);
    for (const [i, card] of clicked.entries()) expect(await cluster.press(i % 2 ? b! : a!, card)).toBe(200);
    await waitFor(async () => ((await cluster.ticketCounts()).open === 40 ? true : undefined), 120_000);
    expect(cluster.jira.ticketCount()).toBe(40);
  });
});
