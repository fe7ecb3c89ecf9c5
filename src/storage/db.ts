import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import type { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import postgres from 'postgres';
import type { AppConfig } from '../config.js';
import { AppError, ErrorCode } from '../errors.js';
import { pgliteDriver, pgliteModule, postgresJsDriver } from './orm.js';
import { schema } from './schema.js';

export type Database = PgDatabase<PgQueryResultHKT, typeof schema>;

export type DatabaseTarget = AppConfig['database'];

/**
 * The rows of `db.execute(query)` on either driver (postgres.js answers an array of rows, PGlite
 * `{ rows }`); DatabaseHandle.rows, and raw statements run on a transaction.
 */
export async function executeRows<T>(db: Database, query: ReturnType<typeof sql>): Promise<T[]> {
  const result = (await db.execute(query)) as unknown;
  return Array.isArray(result) ? [...(result as T[])] : ((result as { rows: T[] }).rows ?? []);
}

export interface DatabaseHandle {
  readonly kind: 'pglite' | 'postgres';
  readonly db: Database;
  /** The PGlite instance in embedded mode (pg-boss and raw scripts share it). */
  readonly pglite: PGlite | undefined;
  /** The connection string in PostgreSQL mode (pg-boss opens its own pool on it). */
  readonly url: string | undefined;
  /** Rows of a raw query, the same shape on both drivers. */
  rows<T = Record<string, unknown>>(query: ReturnType<typeof sql>): Promise<T[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** postgres.js pool size. */
  maxConnections?: number;
  /** Seconds to wait for a connection before failing a query. */
  connectTimeoutSeconds?: number;
}

export async function openDatabase(
  target: DatabaseTarget,
  options: OpenDatabaseOptions = {},
): Promise<DatabaseHandle> {
  return target.kind === 'pglite' ? openPglite(target.dataDir) : openPostgres(target.url, options);
}

async function openPglite(dataDir: string): Promise<DatabaseHandle> {
  mkdirSync(dataDir, { recursive: true });
  const releaseLock = acquireDataDirLock(dataDir);
  let client: PGlite;
  try {
    // An embedded install serves one organization: 16 MB of shared buffers instead of
    // PostgreSQL's 128 MB default keeps the idle process smaller (see npm run bench).
    client = await pgliteModule().PGlite.create({
      dataDir,
      postgresqlconf: ['shared_buffers=16MB', 'work_mem=4MB'],
    });
  } catch (error) {
    releaseLock();
    throw new AppError(
      ErrorCode.DATABASE_UNAVAILABLE,
      `Could not open the embedded database in ${dataDir}.`,
      {
        cause: error,
      },
    );
  }
  const db = pgliteDriver().drizzle({ client, schema }) as unknown as Database;
  let closed = false;
  return {
    kind: 'pglite',
    db,
    pglite: client,
    url: undefined,
    rows<T>(query: ReturnType<typeof sql>) {
      return executeRows<T>(db, query);
    },
    async ping() {
      if (closed || client.closed)
        throw new AppError(ErrorCode.DATABASE_UNAVAILABLE, 'The embedded database is closed.');
      await client.query('select 1');
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await client.close();
      } finally {
        releaseLock();
      }
    },
  };
}

async function openPostgres(url: string, options: OpenDatabaseOptions): Promise<DatabaseHandle> {
  const client = postgres(url, {
    max: options.maxConnections ?? 10,
    connect_timeout: options.connectTimeoutSeconds ?? 10,
    idle_timeout: 30,
    onnotice: () => {},
    connection: { application_name: 'cloudpi-chatops' },
  });
  const db = postgresJsDriver().drizzle({ client, schema }) as unknown as Database;
  return {
    kind: 'postgres',
    db,
    pglite: undefined,
    url,
    rows<T>(query: ReturnType<typeof sql>) {
      return executeRows<T>(db, query);
    },
    async ping() {
      await client`select 1`;
    },
    async close() {
      await client.end({ timeout: 5 });
    },
  };
}

/**
 * PGlite is a single-process database: a second process opening the same data directory would
 * corrupt it. The lock names the holder so the CLI can say who has it.
 */
function acquireDataDirLock(dataDir: string): () => void {
  const lockFile = path.join(dataDir, 'cloudpi.lock');
  if (existsSync(lockFile)) {
    const pid = Number.parseInt(readFileSync(lockFile, 'utf8'), 10);
    if (Number.isInteger(pid) && pid !== process.pid && isAlive(pid)) {
      throw new AppError(
        ErrorCode.DATABASE_LOCKED,
        `The embedded database in ${dataDir} is in use by process ${pid} (the running service?). Stop it first, or run the service on PostgreSQL (DATABASE_URL), where the CLI works alongside it.`,
      );
    }
    if (pid === process.pid) {
      throw new AppError(
        ErrorCode.DATABASE_LOCKED,
        `The embedded database in ${dataDir} is already open in this process.`,
      );
    }
  }
  writeFileSync(lockFile, String(process.pid), { mode: 0o600 });
  return () => {
    try {
      if (Number.parseInt(readFileSync(lockFile, 'utf8'), 10) === process.pid) rmSync(lockFile);
    } catch {
      // already gone
    }
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
