/**
 * PostgreSQL for `npm run bench`: either the server named by BENCH_DATABASE_URL / TEST_DATABASE_URL,
 * or a throwaway cluster started from the PostgreSQL binaries (PG_BIN, default
 * /usr/lib/postgresql/15/bin) and always stopped afterwards. Each measured start gets a fresh
 * database, dropped when its scenario is done.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { freePort } from './measure.js';

export type PostgresTarget =
  | {
      readonly kind: 'external';
      /** Connection string of a database the bench can run CREATE/DROP DATABASE from. */
      readonly adminUrl: string;
      readonly source: string;
      stop(): Promise<void>;
    }
  | {
      readonly kind: 'cluster';
      readonly adminUrl: string;
      readonly source: string;
      stop(): Promise<void>;
      /** Stops the server (fast shutdown: connections are cut), waits `downMs`, starts it again. */
      restart(downMs: number): Promise<void>;
    }
  | { readonly kind: 'skipped'; readonly reason: string };

const DEFAULT_PG_BIN = '/usr/lib/postgresql/15/bin';

interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
}

function run(file: string, args: readonly string[], cwd: string, timeoutMs = 120_000): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        reject(
          new Error(`${[file, ...args].join(' ')} failed: ${error.message}\n${stdout}${stderr}`.trimEnd(), {
            cause: error,
          }),
        );
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

/** Redacts the password of a connection string for printing. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparsable connection string>';
  }
}

/** PG_BIN, else /usr/lib/postgresql/15/bin, else the newest /usr/lib/postgresql/<n>/bin. */
function findBinaries(): { dir: string } | { reason: string } {
  const explicit = process.env.PG_BIN?.trim();
  const candidates: string[] = [];
  if (explicit) {
    candidates.push(explicit);
  } else {
    candidates.push(DEFAULT_PG_BIN);
    try {
      const versions = readdirSync('/usr/lib/postgresql')
        .filter((name) => /^\d+$/.test(name))
        .sort((a, b) => Number(b) - Number(a));
      for (const version of versions) candidates.push(`/usr/lib/postgresql/${version}/bin`);
    } catch {
      // no /usr/lib/postgresql
    }
  }
  for (const dir of candidates) {
    if (existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'pg_ctl'))) return { dir };
  }
  return {
    reason: `no initdb/pg_ctl in ${explicit ? `PG_BIN=${explicit}` : `${DEFAULT_PG_BIN} or /usr/lib/postgresql/*/bin`}, and neither BENCH_DATABASE_URL nor TEST_DATABASE_URL is set`,
  };
}

function postgresUserIds(): { uid: number; gid: number } | undefined {
  try {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('postgres:'));
    if (!line) return undefined;
    const fields = line.split(':');
    return { uid: Number(fields[2]), gid: Number(fields[3]) };
  } catch {
    return undefined;
  }
}

/**
 * A throwaway cluster from PG_BIN (or the default binaries) on a free port, for tests that stop
 * and start the server under the service (the reliability suite).
 */
export async function startThrowawayCluster(): Promise<PostgresTarget> {
  const found = findBinaries();
  if ('reason' in found) return { kind: 'skipped', reason: found.reason };
  return startCluster(found.dir);
}

/** Starts a throwaway cluster on a free port; the returned stop() stops it and deletes its files. */
async function startCluster(binDir: string): Promise<PostgresTarget> {
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  let owner: { uid: number; gid: number } | undefined;
  if (asRoot) {
    owner = postgresUserIds();
    if (!owner) {
      return {
        kind: 'skipped',
        reason: 'running as root and there is no "postgres" user to run the server as',
      };
    }
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cloudpi-bench-pg-'));
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const pg = (tool: string, args: readonly string[], timeoutMs?: number) =>
    asRoot
      ? run('runuser', ['-u', 'postgres', '--', path.join(binDir, tool), ...args], dir, timeoutMs)
      : run(path.join(binDir, tool), args, dir, timeoutMs);

  let started = false;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      if (started) await pg('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '60', 'stop'], 90_000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  try {
    await pg('initdb', [
      '-D',
      dataDir,
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
    ]);
    const port = await freePort();
    started = true;
    await pg(
      'pg_ctl',
      [
        '-D',
        dataDir,
        '-l',
        logFile,
        '-w',
        '-t',
        '60',
        '-o',
        `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`,
        'start',
      ],
      90_000,
    );
    const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`;
    return {
      kind: 'cluster',
      adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`,
      source: `throwaway cluster from ${binDir} on 127.0.0.1:${port}`,
      stop,
      async restart(downMs) {
        await pg('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '60', 'stop'], 90_000);
        await new Promise((resolve) => setTimeout(resolve, downMs));
        await pg('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-t', '60', '-o', options, 'start'], 90_000);
      },
    };
  } catch (error) {
    let log = '';
    try {
      log = readFileSync(logFile, 'utf8');
    } catch {
      // no log yet
    }
    await stop().catch(() => undefined);
    throw new Error(
      `could not start a throwaway PostgreSQL cluster: ${(error as Error).message}${log ? `\n--- server log ---\n${log}` : ''}`,
      { cause: error },
    );
  }
}

/** Where the PostgreSQL rows run: BENCH_DATABASE_URL, TEST_DATABASE_URL, or a throwaway cluster. */
export async function resolvePostgres(): Promise<PostgresTarget> {
  for (const name of ['BENCH_DATABASE_URL', 'TEST_DATABASE_URL'] as const) {
    const url = process.env[name]?.trim();
    if (url) {
      return { kind: 'external', adminUrl: url, source: `${name}=${redactUrl(url)}`, stop: async () => {} };
    }
  }
  const binaries = findBinaries();
  if ('reason' in binaries) return { kind: 'skipped', reason: binaries.reason };
  return startCluster(binaries.dir);
}

function adminClient(adminUrl: string) {
  return postgres(adminUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 });
}

/** "15.8 (Debian 15.8-1.pgdg120+1)"-style version of the server. */
export async function serverVersion(adminUrl: string): Promise<string> {
  const sql = adminClient(adminUrl);
  try {
    const rows = await sql<{ v: string }[]>`select current_setting('server_version') as v`;
    return rows[0]?.v ?? 'unknown';
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export interface BenchDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

/** Creates an empty database bench_<random> on the server of adminUrl. */
export async function createDatabase(adminUrl: string): Promise<BenchDatabase> {
  const name = `bench_${randomBytes(6).toString('hex')}`;
  const sql = adminClient(adminUrl);
  try {
    await sql.unsafe(`create database "${name}"`);
  } finally {
    await sql.end({ timeout: 5 });
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    name,
    url: url.toString(),
    async drop() {
      if (dropped) return;
      dropped = true;
      const admin = adminClient(adminUrl);
      try {
        try {
          await admin.unsafe(`drop database if exists "${name}" with (force)`);
        } catch (error) {
          // Servers before 13 have no WITH (FORCE).
          if ((error as { code?: string }).code !== '42601') throw error;
          await admin.unsafe(`drop database if exists "${name}"`);
        }
      } finally {
        await admin.end({ timeout: 5 });
      }
    },
  };
}
