/**
 * What the ack and ingest sections of `npm run bench` share: the service as a real process
 * (startServer), the tenant they seed before it starts (seedTenant), and runStandalone, which
 * builds the SectionContext run.ts would give a section so that each runs on its own:
 *
 *   npm run build && node dist/test/bench/ack.js
 *   npm run build && node dist/test/bench/ingest.js
 *
 * PostgreSQL comes from BENCH_DATABASE_URL / TEST_DATABASE_URL or a throwaway cluster, as in run.ts;
 * BENCH_NODE_FLAGS replaces the node flags of `npm start` for the service (and the baseline).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadConfig } from '../../src/config.js';
import { SecretBox } from '../../src/crypto/secret-box.js';
import { openDatabase } from '../../src/storage/db.js';
import { runMigrations } from '../../src/storage/migrate.js';
import { createRepositories } from '../../src/storage/repositories/index.js';
import { BenchFailure, freePort, liveChildren } from './measure.js';
import { createDatabase, resolvePostgres, serverVersion } from './postgres.js';
import type { Section, SectionContext, SectionRow } from './section.js';

const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

/** Variables the sections set themselves; inherited values would change what is measured. */
const CONTROLLED_ENV = new Set([
  'DATABASE_URL',
  'PORT',
  'HOST',
  'LOG_LEVEL',
  'LOG_FORMAT',
  'BENCH_DATABASE_URL',
  'TEST_DATABASE_URL',
]);

/** The environment of a child: inherited (PATH...) without CLOUDPI_*, SLACK_* and MICROSOFT_*, plus `extra`. */
export function childEnv(extra: Record<string, string>): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(CLOUDPI|SLACK|MICROSOFT)_/.test(key) || CONTROLLED_ENV.has(key)) continue;
    env[key] = value;
  }
  return { ...env, LOG_LEVEL: 'warn', LOG_FORMAT: 'json', HOST: '127.0.0.1', ...extra };
}

/** `<id>:<base64 32 bytes>`, the CLOUDPI_MASTER_KEYS format (test/support/keys.ts). */
export function masterKeysEntry(): string {
  return `bench:${randomBytes(32).toString('base64')}`;
}

export interface ServerProcess {
  readonly label: string;
  readonly port: number;
  readonly url: string;
  readonly pid: number;
  /** Tail of stdout + stderr. */
  output(): string;
  /** How it ended, once it has; undefined while it runs. */
  exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** SIGTERM, then SIGKILL after 30 s; resolves to how it ended. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** One GET without keep-alive (no socket held open that would delay a graceful shutdown). */
function probe(port: number, urlPath: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: urlPath, agent: false, headers: { connection: 'close' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
        res.on('error', () => resolve(res.statusCode));
      },
    );
    req.setTimeout(5_000, () => req.destroy(new Error('probe timed out')));
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/**
 * Starts `node ...args` (a server taking HOST and PORT from `env`) in `cwd` and waits for its
 * GET /readyz to answer 200. Throws BenchFailure with the output when it exits or never gets ready.
 */
export async function startServer(options: {
  readonly label: string;
  readonly args: readonly string[];
  readonly env: Record<string, string | undefined>;
  readonly cwd: string;
}): Promise<ServerProcess> {
  const port = await freePort();
  let output = '';
  const child: ChildProcess = spawn(process.execPath, options.args, {
    cwd: options.cwd,
    env: { ...options.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  liveChildren.add(child);
  const append = (chunk: Buffer) => {
    output += String(chunk);
    if (output.length > 64 * 1024) output = output.slice(-64 * 1024);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let spawnError: Error | undefined;
  child.on('error', (error) => {
    spawnError = error;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      liveChildren.delete(child);
      resolve({ code, signal });
    }),
  );
  let hasExited = false;
  let exitStatus: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void exited.then((status) => {
    hasExited = true;
    exitStatus = status;
  });

  const deadline = performance.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (spawnError) throw new BenchFailure(`${options.label}: could not spawn: ${spawnError.message}`);
    if (hasExited) {
      const { code, signal } = await exited;
      throw new BenchFailure(
        `${options.label}: exited (code ${code}, signal ${signal}) before /readyz answered 200`,
        output,
      );
    }
    if (performance.now() > deadline) {
      child.kill('SIGKILL');
      throw new BenchFailure(`${options.label}: /readyz did not answer 200 within 60 s`, output);
    }
    if ((await probe(port, '/readyz')) === 200) break;
    await sleep(50);
  }

  return {
    label: options.label,
    port,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    output: () => output,
    exitStatus: () => exitStatus,
    async stop() {
      if (!hasExited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        const result = await exited;
        clearTimeout(timer);
        return result;
      }
      return exited;
    },
  };
}

/** CPU time (user + system) a process used so far, milliseconds (Linux /proc). */
export function cpuMsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat (11 and 12 after the command name).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return undefined;
  }
}

export interface SeededTenant {
  readonly tenantId: string;
  /** A tenant API key for /api/v1 (Bearer). */
  readonly apiKey: string;
}

/**
 * Before the service starts, on the database its environment names: migrations, the tenant of
 * `slack:<teamId>`, an API key, and an unfiltered subscription of each channel in `channels`
 * (what `/cloudpi subscribe` leaves behind).
 */
export async function seedTenant(
  env: Record<string, string | undefined>,
  teamId: string,
  channels: readonly string[],
): Promise<SeededTenant> {
  const config = loadConfig(env);
  if (!config.masterKeys) throw new BenchFailure('seedTenant needs CLOUDPI_MASTER_KEYS in the environment');
  const handle = await openDatabase(config.database, { maxConnections: 2 });
  try {
    await runMigrations(handle);
    const repos = createRepositories(handle.db, new SecretBox(config.masterKeys));
    const tenant = await repos.tenants.ensure('slack', teamId, 'CloudPi bench');
    for (const channelId of channels) {
      await repos.routes.create(tenant.id, {
        platform: 'slack',
        channelId,
        filters: {},
        createdBy: 'slack:U0ADMIN',
      });
    }
    const { key } = await repos.apiKeys.create(tenant.id, 'bench');
    return { tenantId: tenant.id, apiKey: key };
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------- standalone entry

function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'drizzle'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new BenchFailure('cannot find the package root (package.json + drizzle/)');
    dir = parent;
  }
}

/** The node flags of the `npm start` script, as run.ts reads them. */
function startFlags(root: string): string[] {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    scripts: { start: string };
  };
  const match = /^node((?:\s+--\S+)*)\s+dist\/src\/bin\.js serve$/.exec(pkg.scripts.start.trim());
  if (!match) throw new BenchFailure(`cannot read node flags from the start script: ${pkg.scripts.start}`);
  return match[1]!.trim().split(/\s+/).filter(Boolean);
}

/** True when the module at `moduleUrl` is the script node was started with. */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1];
  return script !== undefined && pathToFileURL(path.resolve(script)).href === moduleUrl;
}

export function renderRows(rows: readonly SectionRow[]): string {
  const header = ['scenario', 'measured', 'baseline', 'ratio', 'goal', 'met?'];
  const cells = rows.map((r) => [
    r.scenario,
    r.note ?? r.measured,
    r.baseline,
    r.ratio,
    r.goal,
    r.met === undefined ? '-' : r.met ? 'yes' : 'NO',
  ]);
  const all = [header, ...cells];
  const widths = header.map((_, col) => Math.max(...all.map((line) => line[col]!.length)));
  const line = (values: readonly string[]) => values.map((v, col) => v.padEnd(widths[col]!)).join(' | ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...cells.map(line)].join('\n');
}

/**
 * Runs one section the way run.ts does (fresh PostgreSQL databases on BENCH_DATABASE_URL /
 * TEST_DATABASE_URL or a throwaway cluster, a scratch directory, cleanups also on Ctrl-C) and
 * prints its rows. Sets the exit code: 0 when it ran (goals met or not), 1 when it failed.
 */
export async function runStandalone(title: string, section: Section): Promise<void> {
  const cleanups: Array<() => Promise<void>> = [];
  const runCleanups = async () => {
    while (cleanups.length > 0) {
      try {
        await cleanups.pop()!();
      } catch (error) {
        process.stderr.write(`bench cleanup failed: ${(error as Error).message}\n`);
      }
    }
  };
  let interrupted = false;
  const onInterrupt = (signal: NodeJS.Signals) => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write(`\n${signal}: stopping the bench and cleaning up...\n`);
    for (const child of liveChildren) child.kill('SIGKILL');
    void runCleanups().finally(() => process.exit(130));
  };
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onInterrupt);

  try {
    const root = projectRoot();
    const cli = path.join(root, 'dist', 'src', 'bin.js');
    if (!existsSync(cli)) throw new BenchFailure(`${cli} is missing: run npm run build first`);
    const workDir = await mkdtemp(path.join(os.tmpdir(), 'cloudpi-bench-'));
    cleanups.push(() => rm(workDir, { recursive: true, force: true }));
    await mkdir(path.join(workDir, 'cwd'));

    const postgres = await resolvePostgres();
    let postgresLine: string;
    let createPostgresDatabase: SectionContext['createPostgresDatabase'];
    if (postgres.kind === 'skipped') {
      postgresLine = `skipped (${postgres.reason})`;
    } else {
      cleanups.push(() => postgres.stop());
      postgresLine = `${await serverVersion(postgres.adminUrl)}, ${postgres.source}`;
      createPostgresDatabase = async () => {
        const database = await createDatabase(postgres.adminUrl);
        cleanups.push(() => database.drop());
        return database;
      };
    }
    const cpus = os.cpus();
    process.stdout.write(
      [
        `CloudPi ChatOps bench: ${title}`,
        `node ${process.version}, ${process.platform}/${process.arch}, CPUs: ${os.availableParallelism()} x ${cpus[0]?.model.trim() ?? 'unknown'}`,
        `PostgreSQL: ${postgresLine}`,
        '',
      ].join('\n'),
    );
    const ctx: SectionContext = {
      root,
      cli,
      // BENCH_NODE_FLAGS (standalone only) tries other flags than npm start's, e.g. a larger young generation.
      nodeFlags:
        process.env.BENCH_NODE_FLAGS === undefined
          ? startFlags(root)
          : process.env.BENCH_NODE_FLAGS.split(/\s+/).filter(Boolean),
      workDir,
      ...(createPostgresDatabase ? { createPostgresDatabase } : {}),
      onCleanup: (cleanup) => {
        cleanups.push(cleanup);
      },
      log: (line) => process.stdout.write(`${line}\n`),
    };
    const rows = await section(ctx);
    process.stdout.write(`\n${renderRows(rows)}\n`);
    process.exitCode = 0;
  } catch (error) {
    if (error instanceof BenchFailure) {
      process.stderr.write(`\nbench failed: ${error.message}\n`);
      if (error.output) process.stderr.write(`--- output (tail) ---\n${error.output}\n`);
    } else {
      process.stderr.write(`\nbench failed: ${(error as Error).stack ?? String(error)}\n`);
    }
    process.exitCode = 1;
  } finally {
    for (const child of liveChildren) child.kill('SIGKILL');
    await runCleanups();
  }
}
