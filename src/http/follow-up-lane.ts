/**
 * Work a request owes after its answer was sent, run so that it never costs the answers of the
 * requests behind it. Slack gives an app three seconds to acknowledge a command or the user sees
 * "operation_timeout", while the answer itself may come through the command's response_url for
 * thirty minutes. Under a burst that saturates the process, follow-ups that ran as soon as their
 * request was acknowledged took the CPU the next acknowledgements needed (a `/cloudpi status`
 * board costs about ten times its acknowledgement).
 *
 * So follow-ups queue here, first in first out. While requests keep arriving and the event loop is
 * saturated, only `busyConcurrency` of them run at a time (none by default); otherwise, and for
 * any follow-up that has waited `maxWaitMs`, up to `concurrency`. An idle process starts a
 * follow-up at once: the lane only adds waiting when there are acknowledgements to give first.
 * Nothing is dropped: past `maxWaiting`, a follow-up runs at once, as if there were no lane.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../logger.js';

export interface FollowUpLaneOptions {
  /** Follow-ups running at once while the process is not saturated. Default 16. */
  readonly concurrency?: number;
  /**
   * Follow-ups running at once while it is. Default 0: even one at a time took a tenth of the
   * acknowledgements' CPU in the bench (a board is ten acknowledgements' work); `maxWaitMs`
   * bounds the wait instead.
   */
  readonly busyConcurrency?: number;
  /** A follow-up waits no longer than this, whatever the load. Default 30 s. */
  readonly maxWaitMs?: number;
  /** Follow-ups kept waiting at most; one more runs at once. Default 50,000. */
  readonly maxWaiting?: number;
  /**
   * How often the load is looked at while follow-ups wait or run. Default 25 ms; each look
   * covers the last `WINDOW_LOOKS` intervals.
   */
  readonly intervalMs?: number;
  /**
   * Whether the process is saturated now. Default: requests arrived (`noteRequest`) in the window
   * and the event loop was busy at least 85% of it.
   */
  readonly saturated?: (sample: LoadSample) => boolean;
}

export interface LoadSample {
  /** Requests noted in the window. */
  readonly arrivals: number;
  /** The event loop's utilization over the window, 0..1. */
  readonly utilization: number;
}

/** The load is judged over this many intervals (100 ms by default), not one, so that one short
 * interval between two requests does not read as idle. */
export const WINDOW_LOOKS = 4;

export const SATURATED_UTILIZATION = 0.85;

function defaultSaturated(sample: LoadSample): boolean {
  return sample.arrivals > 0 && sample.utilization >= SATURATED_UTILIZATION;
}

interface Waiting {
  readonly run: () => Promise<void>;
  readonly at: number;
}

export class FollowUpLane {
  readonly #concurrency: number;
  readonly #busyConcurrency: number;
  readonly #maxWaitMs: number;
  readonly #maxWaiting: number;
  readonly #intervalMs: number;
  readonly #saturated: (sample: LoadSample) => boolean;
  readonly #logger: Logger;
  /** First in first out: `#waiting[#head]` is the oldest (Array#shift is linear in the length). */
  #waiting: (Waiting | undefined)[] = [];
  #head = 0;
  readonly #running = new Set<Promise<void>>();
  #arrivals = 0;
  /** The last looks, oldest first: requests noted, and the loop's active and idle ms. */
  readonly #window: { arrivals: number; active: number; idle: number }[] = [];
  #busy = false;
  #draining = false;
  #elu = performance.eventLoopUtilization();
  #timer: NodeJS.Timeout | undefined;
  #idle: { promise: Promise<void>; resolve: () => void } | undefined;

  constructor(logger: Logger, options: FollowUpLaneOptions = {}) {
    this.#logger = logger;
    this.#concurrency = Math.max(1, options.concurrency ?? 16);
    this.#busyConcurrency = Math.max(0, Math.min(this.#concurrency, options.busyConcurrency ?? 0));
    this.#maxWaitMs = options.maxWaitMs ?? 30_000;
    this.#maxWaiting = options.maxWaiting ?? 50_000;
    this.#intervalMs = options.intervalMs ?? 25;
    this.#saturated = options.saturated ?? defaultSaturated;
  }

  /** A request arrived (acknowledgements to give): counted towards the next look at the load. */
  noteRequest(): void {
    this.#arrivals++;
  }

  /** Follow-ups waiting to start. */
  get waiting(): number {
    return this.#waiting.length - this.#head;
  }

  /** Follow-ups running now. */
  get running(): number {
    return this.#running.size;
  }

  /** Queues a follow-up. It must handle its own errors; one that throws is logged. */
  run(work: () => Promise<void>): void {
    if (this.waiting >= this.#maxWaiting) {
      this.#start(work);
      return;
    }
    if (!this.#timer) {
      // The first follow-up after a quiet spell: look at the load now (the last look is stale).
      this.#look();
      this.#timer = setInterval(() => this.#tick(), this.#intervalMs);
      this.#timer.unref();
    }
    this.#waiting.push({ run: work, at: performance.now() });
    this.#pump();
  }

  /** Runs everything still waiting, as fast as it may, and resolves when all of it has finished. */
  async drain(): Promise<void> {
    this.#draining = true;
    this.#pump();
    while (this.waiting > 0 || this.#running.size > 0) {
      this.#idle ??= Promise.withResolvers<void>();
      await this.#idle.promise;
    }
  }

  #look(): void {
    const now = performance.eventLoopUtilization();
    const { active, idle } = performance.eventLoopUtilization(now, this.#elu);
    this.#elu = now;
    this.#window.push({ arrivals: this.#arrivals, active, idle });
    this.#arrivals = 0;
    if (this.#window.length > WINDOW_LOOKS) this.#window.shift();
    let arrivals = 0;
    let busy = 0;
    let total = 0;
    for (const look of this.#window) {
      arrivals += look.arrivals;
      busy += look.active;
      total += look.active + look.idle;
    }
    this.#busy = this.#saturated({ arrivals, utilization: total > 0 ? busy / total : 0 });
  }

  #tick(): void {
    this.#look();
    this.#pump();
    if (this.waiting === 0 && this.#running.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #limit(): number {
    if (this.#draining || !this.#busy) return this.#concurrency;
    const oldest = this.#waiting[this.#head];
    return oldest && performance.now() - oldest.at >= this.#maxWaitMs
      ? this.#concurrency
      : this.#busyConcurrency;
  }

  #pump(): void {
    while (this.waiting > 0 && this.#running.size < this.#limit()) {
      const next = this.#waiting[this.#head]!;
      this.#waiting[this.#head++] = undefined;
      this.#start(next.run);
    }
    if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
      this.#waiting = this.#waiting.slice(this.#head);
      this.#head = 0;
    }
    if (this.waiting === 0 && this.#running.size === 0 && this.#idle) {
      this.#idle.resolve();
      this.#idle = undefined;
    }
  }

  #start(work: () => Promise<void>): void {
    const running: Promise<void> = Promise.resolve()
      .then(work)
      .catch((error: unknown) => this.#logger.error({ err: error }, 'follow-up work failed'))
      .finally(() => {
        this.#running.delete(running);
        this.#pump();
      });
    this.#running.add(running);
  }
}
