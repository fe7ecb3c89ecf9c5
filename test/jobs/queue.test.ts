import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod/v4';
import { AppError, ErrorCode } from '../../src/errors.js';
import { type DeadLetter, deadLetterQueueOf, defineJob, JobQueue } from '../../src/jobs/queue.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { sql } from '../../src/storage/orm.js';
import { tenants } from '../../src/storage/schema.js';
import { describeEachDatabase } from '../support/databases.js';
import { memoryLogger } from '../support/logs.js';
import { useStore } from '../support/store.js';
import { waitFor } from '../support/wait.js';

async function counter(metrics: Metrics, queue: string, outcome: string): Promise<number> {
  const metric = await metrics.jobs.get();
  return metric.values.find((v) => v.labels.queue === queue && v.labels.outcome === outcome)?.value ?? 0;
}

describeEachDatabase('job queue', (kind) => {
  const store = useStore(kind);
  let queue: JobQueue;
  let metrics: Metrics;
  const deadLetters: DeadLetter[] = [];

  beforeAll(async () => {
    metrics = createMetrics({ defaultMetrics: false });
    queue = new JobQueue({
      handle: store.handle,
      logger: memoryLogger('fatal').logger,
      metrics,
      onDeadLetter: async (letter) => {
        deadLetters.push(letter);
      },
    });
    await queue.start();
  });
  afterAll(async () => {
    await queue?.stop(2_000);
  });

  it('runs typed jobs and refuses payloads that do not match their schema', async () => {
    const greet = defineJob({ name: 'test.greet', schema: z.object({ name: z.string().min(1) }) });
    const seen: string[] = [];
    await queue.work(greet, async (data) => {
      seen.push(data.name);
    });
    await queue.send(greet, { name: 'Ada' });
    await waitFor(() => seen.includes('Ada'));
    await expect(queue.send(greet, { name: '' })).rejects.toThrow('Invalid payload for job test.greet');
    await expect(queue.send(greet, { nom: 'x' } as never)).rejects.toThrow('Invalid payload');
    expect(await counter(metrics, 'test.greet', 'completed')).toBe(1);
  });

  it('retries with exponential backoff, then dead-letters', async () => {
    const flaky = defineJob({
      name: 'test.always-fails',
      schema: z.object({ n: z.number() }),
      retryLimit: 2,
      retryDelaySeconds: 1,
    });
    const attempts: { attempt: number; at: number }[] = [];
    await queue.work(flaky, async (_data, ctx) => {
      attempts.push({ attempt: ctx.attempt, at: Date.now() });
      throw new Error('provider down');
    });
    await queue.send(flaky, { n: 7 });
    const letter = (await waitFor(() => deadLetters.find((d) => d.queue === 'test.always-fails'), 30_000))!;
    expect(letter.data).toEqual({ n: 7 });
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
    // Backoff: each retry waits at least the base delay (pg-boss adds jitter on top).
    expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(900);
    expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(900);
    expect(await counter(metrics, 'test.always-fails', 'retried')).toBe(2);
    expect(await counter(metrics, 'test.always-fails', 'failed')).toBe(1);
    expect(await counter(metrics, 'test.always-fails', 'dead_lettered')).toBe(1);
  });

  it('recovers when a retry succeeds', async () => {
    const once = defineJob({
      name: 'test.fails-once',
      schema: z.object({}),
      retryLimit: 3,
      retryDelaySeconds: 1,
    });
    let calls = 0;
    await queue.work(once, async () => {
      calls++;
      if (calls === 1) throw new Error('transient');
    });
    await queue.send(once, {});
    await waitFor(async () => (await counter(metrics, 'test.fails-once', 'completed')) === 1);
    expect(calls).toBe(2);
    expect(deadLetters.some((d) => d.queue === 'test.fails-once')).toBe(false);
  });

  it('enqueues in the same transaction as the domain write', async () => {
    const audit = defineJob({ name: 'test.tx', schema: z.object({ tenant: z.string() }) });
    const ran: string[] = [];
    // Queue exists before the transactions (send creates it lazily otherwise).
    await queue.work(audit, async (data) => {
      ran.push(data.tenant);
    });

    await expect(
      store.handle.db.transaction(async (tx) => {
        await tx.insert(tenants).values({ platform: 'email', externalId: 'tx-rolled-back' });
        await queue.send(audit, { tenant: 'tx-rolled-back' }, { tx });
        throw new Error('domain write failed');
      }),
    ).rejects.toThrow('domain write failed');

    await store.handle.db.transaction(async (tx) => {
      await tx.insert(tenants).values({ platform: 'email', externalId: 'tx-committed' });
      await queue.send(audit, { tenant: 'tx-committed' }, { tx });
    });
    await waitFor(() => ran.includes('tx-committed'));
    await sleep(1_500);
    expect(ran).toEqual(['tx-committed']);
    const rows = await store.handle.rows<{ n: number }>(
      sql`select count(*)::int as n from pgboss.job where name = 'test.tx' and data->>'tenant' = 'tx-rolled-back'`,
    );
    expect(rows[0]?.n).toBe(0);
  });

  it('a rate limit defers the job until its Retry-After has passed, without using up an attempt', async () => {
    const limited = defineJob({
      name: 'test.rate-limited',
      schema: z.object({ n: z.number() }),
      // One attempt only: were the 429s counted as failures, the job would dead-letter.
      retryLimit: 0,
    });
    const attempts: { attempt: number; at: number; data: unknown }[] = [];
    await queue.work(limited, async (data, ctx) => {
      attempts.push({ attempt: ctx.attempt, at: Date.now(), data });
      if (attempts.length <= 2)
        throw new AppError(ErrorCode.RATE_LIMITED, 'slow down', { details: { retryAfterSeconds: 2 } });
    });
    await queue.send(limited, { n: 1 });
    await waitFor(() => attempts.length >= 3, 30_000);
    // Each run after a 429 comes no sooner than the Retry-After (pg-boss' retry delay was 2 s too, but 0 retries are allowed).
    expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(1_900);
    expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(1_900);
    // The handler sees the payload it was sent (the deferral count stays inside the queue).
    expect(attempts.map((a) => a.data)).toEqual([{ n: 1 }, { n: 1 }, { n: 1 }]);
    expect(await counter(metrics, 'test.rate-limited', 'deferred')).toBe(2);
    expect(await counter(metrics, 'test.rate-limited', 'completed')).toBe(1);
    expect(deadLetters.filter((d) => d.queue === 'test.rate-limited')).toEqual([]);
  });

  it('drains a backlog at the speed of its handlers, not one job per polling interval', async () => {
    const quick = defineJob({ name: 'test.backlog', schema: z.object({ i: z.number() }) });
    const done: number[] = [];
    for (let i = 0; i < 40; i++) await queue.send(quick, { i });
    const started = Date.now();
    await queue.work(
      quick,
      async (data) => {
        done.push(data.i);
      },
      { concurrency: 2 },
    );
    await waitFor(() => done.length === 40, 30_000);
    // Two slots polling once a second would need 20 s; each slot fetches again right after a job.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(new Set(done).size).toBe(40);
  });

  it('wakes an idle worker of an outbound queue when a job is queued, not at its next poll', async () => {
    const outbound = defineJob({ name: 'test.wake', outbound: true, schema: z.object({ i: z.number() }) });
    const done: { i: number; at: number }[] = [];
    // Polling every 60 s: only the NOTIFY can start these jobs within the wait below.
    await queue.work(
      outbound,
      async (data) => {
        done.push({ i: data.i, at: Date.now() });
      },
      { pollingIntervalSeconds: 60 },
    );
    await sleep(1_500); // the worker's first fetch found nothing; it now sleeps until woken
    for (const i of [1, 2, 3]) {
      const sent = Date.now();
      await queue.send(outbound, { i });
      const ran = await waitFor(() => done.find((d) => d.i === i), 20_000);
      expect(ran.at - sent).toBeLessThan(15_000);
    }
  });

  it('jobs that come due later (no NOTIFY) are taken up by every slot, not by the first alone', async () => {
    const delayed = defineJob({ name: 'test.due-later', schema: z.object({ i: z.number() }) });
    let runningNow = 0;
    let most = 0;
    let release!: () => void;
    const allRunning = new Promise<void>((resolve) => {
      release = resolve;
    });
    await queue.work(
      delayed,
      async () => {
        runningNow++;
        most = Math.max(most, runningNow);
        if (runningNow === 3) release();
        // Each job holds its slot until three run at once (or 20 s): only the first slot polls
        // often, so the other two must be woken by a slot that found a job.
        await Promise.race([allRunning, sleep(20_000)]);
        runningNow--;
      },
      { concurrency: 3 },
    );
    await sleep(1_500); // every slot's first fetch found nothing
    for (const i of [1, 2, 3]) await queue.send(delayed, { i }, { startAfterSeconds: 2 });
    const started = Date.now();
    await waitFor(() => most === 3 || undefined, 25_000);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('names dead-letter queues after their source', () => {
    expect(deadLetterQueueOf('tickets.create')).toBe('tickets.create.dead');
  });
});

describeEachDatabase('job queue shutdown', (kind) => {
  const store = useStore(kind);

  it('drains: stop() waits for the running job to finish', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const queue = new JobQueue({ handle: store.handle, logger: memoryLogger('fatal').logger, metrics });
    await queue.start();
    const slow = defineJob({ name: 'test.slow', schema: z.object({}) });
    let started = false;
    let finished = false;
    await queue.work(slow, async () => {
      started = true;
      await sleep(1_500);
      finished = true;
    });
    await queue.send(slow, {});
    await waitFor(() => started);
    await queue.stop(10_000);
    expect(finished).toBe(true);
    expect(await counter(metrics, 'test.slow', 'completed')).toBe(1);
    expect(queue.running).toBe(false);
  });
});

describeEachDatabase('job queue retry policy from the configuration', (kind) => {
  const store = useStore(kind);
  let queue: JobQueue;
  afterAll(async () => {
    await queue?.stop(2_000);
  });

  it('applies CLOUDPI_RETRY_* to outbound jobs only, also to queues that exist already', async () => {
    const outbound = defineJob({
      name: 'test.outbound',
      schema: z.object({}),
      outbound: true,
      retryLimit: 8,
    });
    const inner = defineJob({ name: 'test.inner', schema: z.object({}), retryLimit: 8 });
    const first = new JobQueue({
      handle: store.handle,
      logger: memoryLogger('fatal').logger,
      metrics: createMetrics({ defaultMetrics: false }),
    });
    await first.start();
    await first.send(outbound, {});
    await first.send(inner, {});
    await first.stop(1_000);
    const withOperatorPolicy = () =>
      new JobQueue({
        handle: store.handle,
        logger: memoryLogger('fatal').logger,
        metrics: createMetrics({ defaultMetrics: false }),
        outboundRetry: { retryLimit: 2, retryDelaySeconds: 1, retryDelayMaxSeconds: 3 },
        heartbeatSeconds: 15,
      });
    // Restarted with an operator policy: the existing queue takes it.
    queue = withOperatorPolicy();
    await queue.start();
    await queue.send(outbound, {});
    await queue.send(inner, {});
    const out = await queue.boss.getQueue('test.outbound');
    const inn = await queue.boss.getQueue('test.inner');
    expect(out).toMatchObject({ retryLimit: 2, retryDelay: 1, retryDelayMax: 3, heartbeatSeconds: 15 });
    expect(inn).toMatchObject({ retryLimit: 8, retryDelay: 2, heartbeatSeconds: 15 });
    await queue.stop(1_000);

    // Started again with the same policy: the queues already say so and are not written again.
    queue = withOperatorPolicy();
    await queue.start();
    await queue.send(outbound, {});
    const again = await queue.boss.getQueue('test.outbound');
    expect(again).toMatchObject({ retryLimit: 2, retryDelay: 1, retryDelayMax: 3, heartbeatSeconds: 15 });
    expect(again?.updatedOn).toEqual(out?.updatedOn);
  });
});
