import { fromDrizzle, fromPglite, type JobWithMetadata, PgBoss } from 'pg-boss';
import type { z } from 'zod/v4';
import { AppError, ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Database, DatabaseHandle } from '../storage/db.js';
import { sql } from '../storage/orm.js';

/**
 * A typed job: its queue name, the schema its payload must satisfy, and its retry policy.
 * Retries back off exponentially (pg-boss: retryDelay * 2^n with jitter, capped); a job that
 * fails its last retry is copied to `<name>.dead`, where the dead-letter handler records it.
 */
export interface JobDefinition<T> {
  readonly name: string;
  readonly schema: z.ZodType<T>;
  readonly retryLimit: number;
  readonly retryDelaySeconds: number;
  readonly retryDelayMaxSeconds: number;
  /** How long one attempt may run before pg-boss expires it and retries. */
  readonly expireInSeconds: number;
  /**
   * pg-boss queue policy. `stately` with a singleton key keeps at most one queued and one active
   * job per key: a burst of requests for the same thing collapses into one run (debounce), and
   * one that arrives while it runs queues exactly one more.
   */
  readonly policy?: 'standard' | 'stately';
  /**
   * The job calls a service outside (ticket provider, chat platform, SMTP): the operator's retry
   * policy (CLOUDPI_RETRY_*) applies to it.
   */
  readonly outbound?: boolean;
}

/** The operator's retry policy for outbound jobs (unset fields keep each job's own). */
export interface RetryPolicy {
  readonly retryLimit?: number;
  readonly retryDelaySeconds?: number;
  readonly retryDelayMaxSeconds?: number;
}

/**
 * A payload field the queue adds when it defers a rate-limited job (how many times so far). The
 * job schemas are plain z.object()s, which strip it before the handler sees the data.
 */
const DEFERRALS = '_rateLimitDeferrals';
/** Rate-limit deferrals of one job before it counts as a failed attempt after all. */
const MAX_DEFERRALS = 100;

/** Seconds the error asks to wait (a 429's Retry-After), when it is a rate limit that says so. */
function rateLimitWait(error: unknown): number | undefined {
  if (!(error instanceof AppError) || error.code !== ErrorCode.RATE_LIMITED) return undefined;
  const seconds = Number(error.details?.retryAfterSeconds);
  return Number.isFinite(seconds) && seconds > 0 ? Math.ceil(seconds) : undefined;
}

export function defineJob<T>(
  definition: Pick<JobDefinition<T>, 'name' | 'schema'> & Partial<JobDefinition<T>>,
): JobDefinition<T> {
  return {
    retryLimit: 5,
    retryDelaySeconds: 2,
    retryDelayMaxSeconds: 300,
    expireInSeconds: 120,
    ...definition,
  };
}

/** How often the second and later worker slots of a queue look for jobs without being woken. */
const SIBLING_POLL_SECONDS = 30;
/** How often a dead-letter queue is looked at (pg-boss sends no NOTIFY when it dead-letters). */
const DEAD_LETTER_POLL_SECONDS = 5;

export function deadLetterQueueOf(name: string): string {
  return `${name}.dead`;
}

export interface JobContext {
  readonly id: string;
  readonly attempt: number;
  readonly signal: AbortSignal;
}

export type JobHandler<T> = (data: T, context: JobContext) => Promise<void>;

export interface DeadLetter {
  readonly queue: string;
  readonly jobId: string;
  readonly data: unknown;
}

export interface SendOptions {
  /** Enqueue inside this transaction: the job exists only if the transaction commits. */
  readonly tx?: Database;
  readonly startAfterSeconds?: number;
  /** pg-boss singleton key: at most one queued job per key. */
  readonly singletonKey?: string;
}

export interface WorkOptions {
  readonly concurrency?: number;
  readonly pollingIntervalSeconds?: number;
}

export interface JobQueueOptions {
  readonly handle: DatabaseHandle;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Called for every job that exhausted its retries. Default: logged at error level. */
  readonly onDeadLetter?: (letter: DeadLetter) => Promise<void>;
  /** Seconds between pg-boss maintenance passes: expiry, dead workers' jobs (default 60). */
  readonly superviseIntervalSeconds?: number;
  /**
   * Workers refresh a heartbeat on every active job; a job whose heartbeat is older than this
   * (its replica died) is retried elsewhere at the next maintenance pass. Default 30, minimum 10.
   */
  readonly heartbeatSeconds?: number;
  /** Overrides the retry policy of outbound jobs (CLOUDPI_RETRY_*). */
  readonly outboundRetry?: RetryPolicy;
}

export class JobQueue {
  readonly #boss: PgBoss;
  readonly #options: JobQueueOptions;
  readonly #logger: Logger;
  readonly #created = new Set<string>();
  /** The queues as they stood when this process started, to skip writes that would change nothing. */
  readonly #existing = new Map<string, Record<string, unknown>>();
  #started = false;
  #stopped = false;

  constructor(options: JobQueueOptions) {
    this.#options = options;
    this.#logger = options.logger.child({ component: 'jobs' });
    const { handle } = options;
    const interval = options.superviseIntervalSeconds ?? 60;
    const common = {
      schema: 'pgboss',
      superviseIntervalSeconds: interval,
      monitorIntervalSeconds: interval,
    };
    this.#boss =
      handle.kind === 'pglite'
        ? new PgBoss({
            ...common,
            db: fromPglite(handle.pglite!),
            backend: 'pglite',
            // PGlite delivers its own NOTIFYs to its listeners: a queued job starts at once,
            // not at the next poll (a ticket click waited up to a second for its job).
            useListenNotify: true,
          })
        : new PgBoss({
            ...common,
            connectionString: handle.url!,
            max: 5,
            application_name: 'cloudpi-chatops-jobs',
            // Workers wake on NOTIFY when a job is queued (polling stays the floor).
            useListenNotify: true,
          });
    this.#boss.on('error', (error: unknown) => this.#logger.error({ err: error }, 'job queue error'));
  }

  async start(): Promise<void> {
    await this.#boss.start();
    // One read instead of three writes per queue at every start (on PGlite each costs more).
    for (const queue of await this.#boss.getQueues())
      this.#existing.set(queue.name, queue as unknown as Record<string, unknown>);
    this.#started = true;
  }

  get running(): boolean {
    return this.#started && !this.#stopped;
  }

  /** The definition with the operator's retry policy applied (outbound jobs only). */
  effective<T>(definition: JobDefinition<T>): JobDefinition<T> {
    const override = definition.outbound ? this.#options.outboundRetry : undefined;
    if (!override) return definition;
    return {
      ...definition,
      ...(override.retryLimit !== undefined ? { retryLimit: override.retryLimit } : {}),
      ...(override.retryDelaySeconds !== undefined ? { retryDelaySeconds: override.retryDelaySeconds } : {}),
      ...(override.retryDelayMaxSeconds !== undefined
        ? { retryDelayMaxSeconds: override.retryDelayMaxSeconds }
        : {}),
    };
  }

  /**
   * Creates the queue and its dead-letter queue (idempotent; safe from several replicas) and
   * writes the current retry policy, expiry and heartbeat to it, so that a changed configuration
   * applies to a queue created by an earlier version or start. A queue that already exists with
   * these settings is left alone.
   */
  async #ensureQueue(given: JobDefinition<unknown>): Promise<void> {
    if (this.#created.has(given.name)) return;
    const definition = this.effective(given);
    const dead = deadLetterQueueOf(definition.name);
    const retention = { retentionSeconds: 14 * 24 * 3600, deleteAfterSeconds: 7 * 24 * 3600 };
    if (!this.#existing.has(dead)) await this.#boss.createQueue(dead, { ...retention, retryLimit: 0 });
    const settings = {
      retryLimit: definition.retryLimit,
      retryDelay: definition.retryDelaySeconds,
      retryBackoff: true,
      retryDelayMax: definition.retryDelayMaxSeconds,
      expireInSeconds: definition.expireInSeconds,
      heartbeatSeconds: Math.max(10, this.#options.heartbeatSeconds ?? 30),
      // Workers wake on NOTIFY when a job is queued (polling stays the floor).
      notify: true,
      deadLetter: dead,
    };
    const current = this.#existing.get(definition.name);
    if (!current)
      await this.#boss.createQueue(definition.name, {
        ...retention,
        ...(definition.policy ? { policy: definition.policy } : {}),
        ...settings,
      });
    // Written after a create too: another replica may have created it first, from other settings.
    if (!current || Object.entries(settings).some(([key, value]) => current[key] !== value))
      await this.#boss.updateQueue(definition.name, settings);
    this.#created.add(definition.name);
  }

  async send<T>(definition: JobDefinition<T>, data: T, options: SendOptions = {}): Promise<string> {
    const parsed = definition.schema.safeParse(data);
    if (!parsed.success) {
      throw new AppError(
        ErrorCode.VALIDATION,
        `Invalid payload for job ${definition.name}: ${parsed.error.message}`,
      );
    }
    await this.#ensureQueue(definition as JobDefinition<unknown>);
    const id = await this.#boss.send(definition.name, parsed.data as object, {
      ...(options.tx ? { db: fromDrizzle(options.tx as never, sql as never) } : {}),
      ...(options.startAfterSeconds ? { startAfter: options.startAfterSeconds } : {}),
      ...(options.singletonKey ? { singletonKey: options.singletonKey } : {}),
    });
    if (!id && !options.singletonKey)
      throw new AppError(ErrorCode.INTERNAL, `Job ${definition.name} was not queued.`);
    return id ?? '';
  }

  async work<T>(
    definition: JobDefinition<T>,
    handler: JobHandler<T>,
    options: WorkOptions = {},
  ): Promise<void> {
    await this.#ensureQueue(definition as JobDefinition<unknown>);
    const { metrics } = this.#options;
    const retryLimit = this.effective(definition).retryLimit;
    const polling = options.pollingIntervalSeconds ?? 1;
    const workOptions = {
      batchSize: 1 as const,
      localConcurrency: 1 as const,
      pollingIntervalSeconds: polling,
      // NOTIFYs of one transaction collapse into one, and a job due later (a retry, a deferral
      // past Retry-After) or left by a replica that died sends none: the backstop poll stays short.
      notifyPollingIntervalSeconds: Math.max(2, polling),
      includeMetadata: true as const,
    };
    const run = async (job: JobWithMetadata<T>): Promise<void> => {
      const parsed = definition.schema.safeParse(job.data);
      if (!parsed.success) {
        // A payload that does not parse will never succeed: fail it now, without retries.
        metrics.jobs.inc({ queue: definition.name, outcome: 'failed' });
        this.#logger.error(
          { queue: definition.name, jobId: job.id },
          'job payload does not match its schema',
        );
        await this.#boss.deleteJob(definition.name, job.id);
        await this.#boss.send(deadLetterQueueOf(definition.name), { ...(job.data as object) });
        return;
      }
      try {
        await handler(parsed.data, { id: job.id, attempt: job.retryCount + 1, signal: job.signal });
        metrics.jobs.inc({ queue: definition.name, outcome: 'completed' });
      } catch (error) {
        const wait = rateLimitWait(error);
        const deferrals = Number((job.data as Record<string, unknown>)[DEFERRALS] ?? 0);
        if (wait !== undefined && deferrals < MAX_DEFERRALS) {
          // A rate limit is not a failure of the job: it runs again once the provider's
          // Retry-After has passed (pg-boss' own retry delay could come sooner), without using up
          // an attempt. This attempt completes.
          await this.#boss.send(
            definition.name,
            { ...(job.data as object), [DEFERRALS]: deferrals + 1 },
            { startAfter: wait, ...(job.singletonKey ? { singletonKey: job.singletonKey } : {}) },
          );
          metrics.jobs.inc({ queue: definition.name, outcome: 'deferred' });
          this.#logger.info(
            { queue: definition.name, jobId: job.id, retryAfterSeconds: wait, deferrals: deferrals + 1 },
            'rate limited: job deferred until the Retry-After has passed',
          );
          return;
        }
        const final = job.retryCount >= retryLimit;
        metrics.jobs.inc({ queue: definition.name, outcome: final ? 'failed' : 'retried' });
        this.#logger.warn(
          { queue: definition.name, jobId: job.id, attempt: job.retryCount + 1, err: error },
          final ? 'job failed its last attempt' : 'job failed; will retry',
        );
        throw error;
      }
    };
    await this.#workSlots(definition.name, options.concurrency ?? 2, workOptions, run);
    const dead = deadLetterQueueOf(definition.name);
    // pg-boss moves a job to its dead-letter queue without a NOTIFY: these are found by polling.
    const deadPolling = Math.max(DEAD_LETTER_POLL_SECONDS, polling);
    const deadOptions = {
      ...workOptions,
      pollingIntervalSeconds: deadPolling,
      notifyPollingIntervalSeconds: deadPolling,
    };
    await this.#workSlots(dead, 1, deadOptions, async (job) => {
      metrics.jobs.inc({ queue: definition.name, outcome: 'dead_lettered' });
      const letter: DeadLetter = { queue: definition.name, jobId: job.id, data: job.data };
      if (this.#options.onDeadLetter) await this.#options.onDeadLetter(letter);
      else
        this.#logger.error(
          { queue: definition.name, jobId: job.id },
          'job dead-lettered after its last retry',
        );
    });
  }

  /**
   * One pg-boss worker per slot. Only the first slot polls at the given interval; the others wait
   * up to SIBLING_POLL_SECONDS, since NOTIFY wakes every slot of the queue when a job is queued,
   * and a slot that got a job wakes the next one, so a backlog the first slot found (jobs due
   * after a delay) is taken up by all of them. A slot that just ran a job fetches the next one at
   * once (notifyWorker skips its polling delay), so a backlog drains at the speed of the handlers
   * instead of one job per polling interval; an empty fetch waits out the interval as usual. An
   * idle replica asks the database about every two seconds per queue, not twice a second per slot.
   */
  async #workSlots<T>(
    name: string,
    slots: number,
    options: {
      batchSize: 1;
      localConcurrency: 1;
      pollingIntervalSeconds: number;
      notifyPollingIntervalSeconds: number;
      includeMetadata: true;
    },
    run: (job: JobWithMetadata<T>) => Promise<void>,
  ): Promise<void> {
    const workerIds: string[] = [];
    const count = Math.max(1, slots);
    for (let slot = 0; slot < count; slot++) {
      const slotOptions =
        slot === 0
          ? options
          : {
              ...options,
              pollingIntervalSeconds: Math.max(SIBLING_POLL_SECONDS, options.pollingIntervalSeconds),
              notifyPollingIntervalSeconds: Math.max(
                SIBLING_POLL_SECONDS,
                options.notifyPollingIntervalSeconds,
              ),
            };
      workerIds.push(
        await this.#boss.work<T, unknown, typeof options>(name, slotOptions, async ([job]) => {
          if (!job) return;
          const next = workerIds[slot + 1];
          if (next) this.#boss.notifyWorker(next);
          try {
            await run(job);
          } finally {
            this.#boss.notifyWorker(workerIds[slot]!);
          }
        }),
      );
    }
  }

  /**
   * Runs the job on a cron schedule. pg-boss keeps schedules in the database and fires each
   * occurrence once, whatever the number of replicas.
   */
  async schedule<T>(definition: JobDefinition<T>, cron: string, data: T): Promise<void> {
    const parsed = definition.schema.parse(data);
    await this.#ensureQueue(definition as JobDefinition<unknown>);
    await this.#boss.schedule(definition.name, cron, parsed as object);
  }

  /** True when pg-boss can reach its schema (used by /readyz). */
  async ping(): Promise<boolean> {
    if (!this.running) return false;
    return this.#boss.isInstalled();
  }

  /** Stops fetching, waits for active jobs up to `timeoutMs`, then releases pg-boss's pool. */
  async stop(timeoutMs = 25_000): Promise<void> {
    if (!this.#started || this.#stopped) return;
    this.#stopped = true;
    await this.#boss.stop({ graceful: true, timeout: timeoutMs, close: true });
  }

  /** Test and admin helper: jobs in a queue by state. */
  async counts(name: string): Promise<{ queued: number; active: number; total: number }> {
    const queue = await this.#boss.getQueue(name);
    return {
      queued: queue?.queuedCount ?? 0,
      active: queue?.activeCount ?? 0,
      total: queue?.totalCount ?? 0,
    };
  }

  /** The pg-boss instance, for the few admin operations not wrapped here (redrive). */
  get boss(): PgBoss {
    return this.#boss;
  }
}
