/**
 * One section of the `npm run bench` table (load, latency, fan-out, ingest): each section module
 * exports an async function taking a SectionContext and returning its rows; run.ts runs them one
 * after the other and prints every row in one table with the start-up rows.
 */

export interface SectionContext {
  /** Package root (package.json, dist/, drizzle/). */
  readonly root: string;
  /** dist/src/bin.js: the service CLI, started with `serve` as a real process. */
  readonly cli: string;
  /** Node flags of the `npm start` script (e.g. --max-semi-space-size=4), for the service process. */
  readonly nodeFlags: readonly string[];
  /** A scratch directory the bench removes at the end. */
  readonly workDir: string;
  /**
   * A fresh PostgreSQL database for one measurement (dropped by `drop`); undefined when the bench
   * runs without PostgreSQL (then a section measures on PGlite only, or says why it skipped).
   */
  readonly createPostgresDatabase?: () => Promise<{ readonly url: string; drop(): Promise<void> }>;
  /** Registers a cleanup run at the end of the bench (also on failure or Ctrl-C). */
  readonly onCleanup: (cleanup: () => Promise<void>) => void;
  /** Progress lines (stdout, before the table). */
  readonly log: (line: string) => void;
}

export interface SectionRow {
  /** What is measured, e.g. "slash command ack, 50 conns". */
  readonly scenario: string;
  /** The measured figure(s), formatted, e.g. "p50 3.1 ms / p99 9.8 ms, 4,210 req/s". */
  readonly measured: string;
  /** The baseline figure(s) measured in the same run, formatted; "-" when there is none. */
  readonly baseline: string;
  /** measured / baseline, formatted (e.g. "0.97× thr, 1.10× p99"); "-" when there is none. */
  readonly ratio: string;
  /** The goal in words, e.g. "≥ 0.9× thr, p99 ≤ 1.2×". */
  readonly goal: string;
  /** true / false when the goal is judged; undefined when there is no goal or it was skipped. */
  readonly met: boolean | undefined;
  /** Shown instead of figures when the row could not be measured (and why). */
  readonly note?: string;
}

export type Section = (ctx: SectionContext) => Promise<SectionRow[]>;

/** Nearest-rank percentile of unsorted samples (p in 0..100). */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
}

export function formatRate(perSecond: number, unit = '/s'): string {
  return `${Math.round(perSecond).toLocaleString('en-US')}${unit}`;
}

export function formatRatio(value: number): string {
  return `${value.toFixed(2)}×`;
}
