import { readFileSync } from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { MIGRATIONS_DIR } from '../paths.js';
import type { DatabaseHandle } from './db.js';
import { pgliteMigrator, postgresJsDriver, postgresJsMigrator, sql } from './orm.js';

/** Arbitrary but fixed: every replica takes the same advisory lock before migrating. */
const MIGRATION_LOCK_ID = 7_311_042_118;

/**
 * Applies the drizzle-kit migrations in drizzle/. On PostgreSQL several replicas may start at
 * once, so the migration runs on a dedicated connection holding an advisory lock; the others
 * wait, then find nothing left to apply.
 */
export async function runMigrations(handle: DatabaseHandle): Promise<void> {
  if (handle.kind === 'pglite') {
    await pgliteMigrator().migrate(handle.db as never, { migrationsFolder: MIGRATIONS_DIR });
    return;
  }
  const client = postgres(handle.url!, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await client`select pg_advisory_lock(${MIGRATION_LOCK_ID})`;
    await postgresJsMigrator().migrate(postgresJsDriver().drizzle({ client }), {
      migrationsFolder: MIGRATIONS_DIR,
    });
    await client`select pg_advisory_unlock(${MIGRATION_LOCK_ID})`;
  } finally {
    await client.end({ timeout: 5 });
  }
}

export interface MigrationState {
  readonly known: number;
  readonly applied: number;
}

let knownMigrations: number | undefined;

/** How many of the shipped migrations the database has applied (for /readyz and doctor). */
export async function migrationState(handle: DatabaseHandle): Promise<MigrationState> {
  knownMigrations ??= (
    JSON.parse(readFileSync(path.join(MIGRATIONS_DIR, 'meta', '_journal.json'), 'utf8')) as {
      entries: unknown[];
    }
  ).entries.length;
  const known = knownMigrations;
  const exists = await handle.rows<{ present: boolean }>(
    sql`select to_regclass('drizzle.__drizzle_migrations') is not null as present`,
  );
  if (!exists[0]?.present) return { known, applied: 0 };
  const rows = await handle.rows<{ n: number }>(
    sql`select count(*)::int as n from drizzle.__drizzle_migrations`,
  );
  return { known, applied: rows[0]?.n ?? 0 };
}
