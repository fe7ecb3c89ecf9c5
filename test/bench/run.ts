/**
 * `npm run bench`, one table measured in one run: start-up time to /readyz on PGlite and on
 * PostgreSQL, idle resident memory and graceful shutdown time of the real service process (beside
 * a bare Node HTTP server started the same way), then the sections: slash command and button
 * acknowledgement under load (beside a bare Bolt app), click → ticket → card update, fan-out of
 * 1,000 cards to 100 channels under Slack's per-channel limit, ingest of 10,000 recommendations.
 *
 * Environment:
 *   BENCH_RUNS          repetitions of each scenario (default 3)
 *   BENCH_IDLE_MS       idle time after ready before reading RSS (default 3000)
 *   BENCH_WARMUP        1 (default) runs one discarded baseline + PGlite start first, 0 skips it
 *   BENCH_SECTIONS      comma-separated subset of startup,ack,ticket,fanout,ingest (default all)
 *   BENCH_DATABASE_URL  PostgreSQL server to create the bench databases on (else TEST_DATABASE_URL,
 *                       else a throwaway cluster from PG_BIN, default /usr/lib/postgresql/15/bin)
 *
 * Exit code 0 whether or not the goals are met (this is a report); 1 when the bench itself failed.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ackSection } from './ack.js';
import { fanoutSection } from './fanout.js';
import { ingestSection } from './ingest.js';
import { BenchFailure, freePort, liveChildren, measureRun, type RunResult } from './measure.js';
import {
  type BenchDatabase,
  createDatabase,
  type PostgresTarget,
  resolvePostgres,
  serverVersion,
} from './postgres.js';
import type { Section, SectionContext, SectionRow } from './section.js';
import { childEnv, renderRows } from './standalone.js';
import { ticketLatencySection } from './ticket-latency.js';

const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 60_000;
const POLL_INTERVAL_MS = 20;

const GOAL_READY_PGLITE_MS = 3_000;
const GOAL_READY_POSTGRES_MS = 1_000;
const GOAL_IDLE_RSS_BYTES = 200_000_000;

type Scenario = 'baseline' | 'pgliteFirst' | 'pgliteWarm' | 'postgresFirst' | 'postgresWarm';

const SCENARIO_LABELS: Record<Scenario, string> = {
  baseline: 'baseline (bare node:http)',
  pgliteFirst: 'PGlite (first start)',
  pgliteWarm: 'PGlite (warm start)',
  postgresFirst: 'PostgreSQL (first start)',
  postgresWarm: 'PostgreSQL (warm start)',
};

const BASELINE_SERVER = `import http from 'node:http';
const server = http.createServer((req, res) => {
  if (req.url === '/readyz') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"status":"ready"}');
    return;
  }
  res.writeHead(404);
  res.end();
});
server.listen(Number(process.env.PORT), process.env.HOST);
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
`;

function intFromEnv(name: string, fallback: number, min: number): number {
  const raw = process.env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new BenchFailure(`${name} must be an integer >= ${min}, got "${raw}"`);
  }
  return value;
}

function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'drizzle'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new BenchFailure('cannot find the package root (package.json + drizzle/)');
    dir = parent;
  }
}

// ---------------------------------------------------------------- statistics and formatting

interface Stats {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

function stats(values: readonly number[]): Stats | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, n: sorted.length };
}

function formatMs(ms: number): string {
  return ms < 1_000 ? `${Math.round(ms)} ms` : `${(ms / 1_000).toFixed(2)} s`;
}

function formatBytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

type Unit = 'ms' | 'bytes';

function format(value: number, unit: Unit): string {
  return unit === 'ms' ? formatMs(value) : formatBytes(value);
}

interface Row {
  readonly scenario: string;
  readonly unit: Unit;
  readonly values: readonly number[];
  readonly baseline: readonly number[];
  /** Upper bound the median must stay under; undefined when there is no goal. */
  readonly goal: number | undefined;
  /** Shown instead of figures (e.g. why PostgreSQL rows were skipped). */
  readonly note?: string;
}

/** A start-up row in the shape of the section rows, for the one table. */
function asSectionRow(row: Row): SectionRow {
  const s = stats(row.values);
  const b = stats(row.baseline);
  const goal = row.goal === undefined ? '-' : `< ${format(row.goal, row.unit).replace(/\.0+ /, ' ')}`;
  if (!s)
    return {
      scenario: row.scenario,
      measured: row.note ?? 'not run',
      baseline: b ? format(b.median, row.unit) : '-',
      ratio: '-',
      goal,
      met: undefined,
    };
  return {
    scenario: row.scenario,
    measured: `${format(s.median, row.unit)} (${format(s.min, row.unit)}–${format(s.max, row.unit)}, n=${s.n})`,
    baseline: b ? format(b.median, row.unit) : '-',
    ratio: b && b.median > 0 ? `${(s.median / b.median).toFixed(1)}×` : '-',
    goal,
    met: row.goal === undefined ? undefined : s.median < row.goal,
  };
}

/** The load, latency, fan-out and ingest sections (BENCH_SECTIONS=ack,ticket,fanout,ingest,startup picks). */
const SECTIONS: ReadonlyArray<{ readonly id: string; readonly title: string; readonly run: Section }> = [
  { id: 'ack', title: 'slash command and button acknowledgement under load', run: ackSection },
  { id: 'ticket', title: 'click → ticket created → card updated', run: ticketLatencySection },
  { id: 'fanout', title: 'fan-out of 1,000 cards to 100 channels', run: fanoutSection },
  { id: 'ingest', title: 'ingest of 10,000 recommendations', run: ingestSection },
];
const sectionRows: SectionRow[] = [];
let selected = new Set<string>(['startup']);

function selectedSections(): Set<string> {
  const raw = process.env.BENCH_SECTIONS?.trim();
  const all = ['startup', ...SECTIONS.map((x) => x.id)];
  if (!raw) return new Set(all);
  const picked = raw
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  const unknown = picked.filter((x) => !all.includes(x));
  if (unknown.length)
    throw new BenchFailure(`BENCH_SECTIONS: unknown ${unknown.join(', ')} (known: ${all.join(', ')})`);
  return new Set(picked);
}

// ---------------------------------------------------------------- the bench

interface Context {
  readonly root: string;
  readonly cli: string;
  readonly nodeFlags: string[];
  readonly workDir: string;
  /** Empty directory every child runs in, so no .env of the checkout is picked up. */
  readonly cwd: string;
  readonly baselineScript: string;
  readonly idleMs: number;
}

const samples: Record<Scenario, RunResult[]> = {
  baseline: [],
  pgliteFirst: [],
  pgliteWarm: [],
  postgresFirst: [],
  postgresWarm: [],
};
const warnings: string[] = [];
const cleanups: Array<() => Promise<void>> = [];

async function measure(
  ctx: Context,
  scenario: Scenario | undefined,
  label: string,
  args: readonly string[],
  extraEnv: Record<string, string>,
): Promise<RunResult> {
  const port = await freePort();
  const result = await measureRun({
    label,
    args,
    env: childEnv({ ...extraEnv, PORT: String(port) }),
    cwd: ctx.cwd,
    port,
    readyTimeoutMs: READY_TIMEOUT_MS,
    idleMs: ctx.idleMs,
    pollIntervalMs: POLL_INTERVAL_MS,
    stopTimeoutMs: STOP_TIMEOUT_MS,
  });
  if (result.exitCode !== 0) {
    warnings.push(
      `${label}: exited with code ${result.exitCode} (signal ${result.exitSignal}) after SIGTERM\n${result.output}`,
    );
  }
  if (scenario) samples[scenario].push(result);
  process.stdout.write(
    `  ${label.padEnd(36)} ready ${formatMs(result.readyMs).padStart(8)}   idle RSS ${formatBytes(result.idleRssBytes).padStart(9)}   SIGTERM→exit ${formatMs(result.stopMs).padStart(7)}${scenario ? '' : '   (warm-up, discarded)'}\n`,
  );
  return result;
}

const baselineRun = (ctx: Context, scenario: Scenario | undefined, label: string) =>
  measure(ctx, scenario, label, [...ctx.nodeFlags, ctx.baselineScript], {});

/**
 * The node flags `npm start` runs the service with (package.json is the one source of truth),
 * so the bench measures what operators run. The baseline gets the same flags.
 */
function startFlags(root: string): string[] {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    scripts: { start: string };
  };
  const match = /^node((?:\s+--\S+)*)\s+dist\/src\/bin\.js serve$/.exec(pkg.scripts.start.trim());
  if (!match) throw new BenchFailure(`cannot read node flags from the start script: ${pkg.scripts.start}`);
  return match[1]!.trim().split(/\s+/).filter(Boolean);
}

const serveArgs = (ctx: Context) => [...ctx.nodeFlags, ctx.cli, 'serve'];

async function pgliteRuns(ctx: Context, index: number): Promise<void> {
  const dataDir = path.join(ctx.workDir, `pglite-${index}`);
  const env = { CLOUDPI_DATA_DIR: dataDir };
  await measure(ctx, 'pgliteFirst', SCENARIO_LABELS.pgliteFirst, serveArgs(ctx), env);
  await measure(ctx, 'pgliteWarm', SCENARIO_LABELS.pgliteWarm, serveArgs(ctx), env);
  await rm(dataDir, { recursive: true, force: true });
}

async function postgresRuns(ctx: Context, adminUrl: string): Promise<void> {
  const database: BenchDatabase = await createDatabase(adminUrl);
  const dropOnFailure = () => database.drop();
  cleanups.push(dropOnFailure);
  const env = {
    DATABASE_URL: database.url,
    CLOUDPI_MASTER_KEYS: `bench:${randomBytes(32).toString('base64')}`,
  };
  await measure(ctx, 'postgresFirst', SCENARIO_LABELS.postgresFirst, serveArgs(ctx), env);
  await measure(ctx, 'postgresWarm', SCENARIO_LABELS.postgresWarm, serveArgs(ctx), env);
  await database.drop();
  cleanups.splice(cleanups.indexOf(dropOnFailure), 1);
}

function buildRows(postgresNote: string | undefined): Row[] {
  const ready = (s: Scenario) => samples[s].map((r) => r.readyMs);
  const rss = (...s: Scenario[]) => s.flatMap((x) => samples[x].map((r) => r.idleRssBytes));
  const stop = (...s: Scenario[]) => s.flatMap((x) => samples[x].map((r) => r.stopMs));
  const baseReady = ready('baseline');
  const pgNote = postgresNote ? { note: 'skipped' } : {};
  return [
    {
      scenario: 'start→ready PGlite (first)',
      unit: 'ms',
      values: ready('pgliteFirst'),
      baseline: baseReady,
      goal: GOAL_READY_PGLITE_MS,
    },
    {
      scenario: 'start→ready PGlite (warm)',
      unit: 'ms',
      values: ready('pgliteWarm'),
      baseline: baseReady,
      goal: GOAL_READY_PGLITE_MS,
    },
    {
      scenario: 'start→ready PostgreSQL (first)',
      unit: 'ms',
      values: ready('postgresFirst'),
      baseline: baseReady,
      goal: GOAL_READY_POSTGRES_MS,
      ...pgNote,
    },
    {
      scenario: 'start→ready PostgreSQL (warm)',
      unit: 'ms',
      values: ready('postgresWarm'),
      baseline: baseReady,
      goal: GOAL_READY_POSTGRES_MS,
      ...pgNote,
    },
    {
      scenario: 'idle RSS PGlite (first)',
      unit: 'bytes',
      values: rss('pgliteFirst'),
      baseline: rss('baseline'),
      goal: GOAL_IDLE_RSS_BYTES,
    },
    {
      scenario: 'idle RSS PGlite (warm)',
      unit: 'bytes',
      values: rss('pgliteWarm'),
      baseline: rss('baseline'),
      goal: GOAL_IDLE_RSS_BYTES,
    },
    {
      scenario: 'idle RSS PostgreSQL (first)',
      unit: 'bytes',
      values: rss('postgresFirst'),
      baseline: rss('baseline'),
      goal: GOAL_IDLE_RSS_BYTES,
      ...pgNote,
    },
    {
      scenario: 'idle RSS PostgreSQL (warm)',
      unit: 'bytes',
      values: rss('postgresWarm'),
      baseline: rss('baseline'),
      goal: GOAL_IDLE_RSS_BYTES,
      ...pgNote,
    },
    {
      scenario: 'SIGTERM→exit PGlite',
      unit: 'ms',
      values: stop('pgliteFirst', 'pgliteWarm'),
      baseline: stop('baseline'),
      goal: undefined,
    },
    {
      scenario: 'SIGTERM→exit PostgreSQL',
      unit: 'ms',
      values: stop('postgresFirst', 'postgresWarm'),
      baseline: stop('baseline'),
      goal: undefined,
      ...pgNote,
    },
  ];
}

function printReport(postgresNote: string | undefined, partial: boolean): void {
  const out: string[] = [''];
  if (partial) out.push('Partial results (the bench failed before finishing):', '');
  const startupRows = selected.has('startup') ? buildRows(postgresNote).map(asSectionRow) : [];
  out.push(renderRows([...startupRows, ...sectionRows]), '');
  out.push(
    'start-up rows: median (min–max) over the runs above (SIGTERM→exit: first and warm starts together);',
    'idle RSS = VmRSS of the process after the idle time in the header, right before SIGTERM;',
    'baseline = median of a bare node:http server answering 200 on /readyz, started the same way;',
    'ratio = median / baseline; met? compares the median with the goal; MB = 10^6 bytes (VmRSS).',
  );
  if (postgresNote) out.push(`PostgreSQL rows skipped: ${postgresNote}`);
  process.stdout.write(`${out.join('\n')}\n`);
  for (const warning of warnings) process.stdout.write(`\nwarning: ${warning}\n`);
}

async function runCleanups(): Promise<void> {
  while (cleanups.length > 0) {
    const cleanup = cleanups.pop()!;
    try {
      await cleanup();
    } catch (error) {
      process.stderr.write(`bench cleanup failed: ${(error as Error).message}\n`);
    }
  }
}

let interrupted = false;
function onInterrupt(signal: NodeJS.Signals): void {
  if (interrupted) process.exit(130);
  interrupted = true;
  process.stderr.write(`\n${signal}: stopping the bench and cleaning up...\n`);
  for (const child of liveChildren) child.kill('SIGKILL');
  void runCleanups().finally(() => process.exit(130));
}

async function main(): Promise<number> {
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onInterrupt);

  let postgresNote: string | undefined;
  let finished = false;
  try {
    const runs = intFromEnv('BENCH_RUNS', 3, 1);
    const idleMs = intFromEnv('BENCH_IDLE_MS', 3_000, 0);
    const warmup = intFromEnv('BENCH_WARMUP', 1, 0) > 0;
    const root = projectRoot();
    const cli = path.join(root, 'dist', 'src', 'bin.js');
    if (!existsSync(cli)) throw new BenchFailure(`${cli} is missing: run npm run build first`);

    const workDir = await mkdtemp(path.join(os.tmpdir(), 'cloudpi-bench-'));
    cleanups.push(() => rm(workDir, { recursive: true, force: true }));
    const cwd = path.join(workDir, 'cwd');
    await mkdir(cwd);
    const baselineScript = path.join(workDir, 'baseline-server.mjs');
    await writeFile(baselineScript, BASELINE_SERVER);
    const ctx: Context = { root, cli, nodeFlags: startFlags(root), workDir, cwd, baselineScript, idleMs };

    let postgres: PostgresTarget;
    try {
      postgres = await resolvePostgres();
    } catch (error) {
      throw new BenchFailure((error as Error).message);
    }
    let postgresLine: string;
    if (postgres.kind === 'skipped') {
      postgresNote = postgres.reason;
      postgresLine = `skipped (${postgres.reason})`;
    } else {
      cleanups.push(() => postgres.stop());
      const version = await serverVersion(postgres.adminUrl).catch((error: Error) => {
        throw new BenchFailure(`cannot connect to PostgreSQL (${postgres.source}): ${error.message}`);
      });
      postgresLine = `${version}, ${postgres.source}`;
    }

    const cpus = os.cpus();
    process.stdout.write(
      [
        'CloudPi ChatOps bench: start-up to /readyz, idle RSS, graceful shutdown',
        `node ${process.version} (${process.execPath}), ${process.platform}/${process.arch}`,
        `CPUs: ${os.availableParallelism()} x ${cpus[0]?.model.trim() ?? 'unknown'}, memory ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
        `PostgreSQL: ${postgresLine}`,
        `runs per scenario: ${runs}, idle before RSS: ${idleMs} ms, /readyz poll: every ${POLL_INTERVAL_MS} ms, work dir: ${workDir}`,
        '',
      ].join('\n'),
    );

    selected = selectedSections();
    if (warmup && selected.has('startup')) {
      process.stdout.write('warm-up:\n');
      await baselineRun(ctx, undefined, SCENARIO_LABELS.baseline);
      const dataDir = path.join(workDir, 'pglite-warmup');
      await measure(ctx, undefined, SCENARIO_LABELS.pgliteFirst, serveArgs(ctx), {
        CLOUDPI_DATA_DIR: dataDir,
      });
      await rm(dataDir, { recursive: true, force: true });
    }

    for (let i = 1; selected.has('startup') && i <= runs; i++) {
      process.stdout.write(`run ${i}/${runs}:\n`);
      await baselineRun(ctx, 'baseline', SCENARIO_LABELS.baseline);
      await pgliteRuns(ctx, i);
      if (postgres.kind !== 'skipped') await postgresRuns(ctx, postgres.adminUrl);
    }
    const sectionContext: SectionContext = {
      root,
      cli,
      nodeFlags: ctx.nodeFlags,
      workDir,
      ...(postgres.kind !== 'skipped'
        ? { createPostgresDatabase: () => createDatabase(postgres.adminUrl) }
        : {}),
      onCleanup: (cleanup) => {
        cleanups.push(cleanup);
      },
      log: (line) => process.stdout.write(`${line}\n`),
    };
    for (const section of SECTIONS) {
      if (!selected.has(section.id)) continue;
      process.stdout.write(`\n${section.title}:\n`);
      settleBenchProcess(section.id);
      sectionRows.push(...(await section.run(sectionContext)));
    }
    finished = true;
    printReport(postgresNote, false);
    return 0;
  } catch (error) {
    if (error instanceof BenchFailure) {
      process.stderr.write(`\nbench failed: ${error.message}\n`);
      if (error.output) process.stderr.write(`--- service output (tail) ---\n${error.output}\n`);
    } else {
      process.stderr.write(`\nbench failed: ${(error as Error).stack ?? String(error)}\n`);
    }
    if (!finished && (sectionRows.length > 0 || Object.values(samples).some((list) => list.length > 0)))
      printReport(postgresNote, true);
    return 1;
  } finally {
    await runCleanups();
  }
}

/**
 * Before each section: the fakes and load generators of a section run in this process, so what
 * the earlier sections left on its heap (hundreds of thousands of latency samples, request
 * bodies) would be collected in the middle of the next section's measurement, as a pause of the
 * fakes that the service would be charged for. A full collection here (the bench script runs
 * node with --expose-gc) leaves each section a clean heap; the heap before and after is logged.
 */
function settleBenchProcess(sectionId: string): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  const before = process.memoryUsage().heapUsed;
  gc?.();
  const after = process.memoryUsage().heapUsed;
  const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
  process.stdout.write(
    gc
      ? `(bench process heap before ${sectionId}: ${mb(before)}, ${mb(after)} after a full collection)\n`
      : `(bench process heap before ${sectionId}: ${mb(before)}; run node with --expose-gc to collect it first)\n`,
  );
}

process.exitCode = await main();
