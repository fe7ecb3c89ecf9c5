import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { describe } from 'vitest';
import type { DatabaseTarget } from '../../src/storage/db.js';

export type DatabaseKind = 'pglite' | 'postgres';

/** Set by .ci/run: a server on which each suite creates and drops its own database. */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL;
/** PostgreSQL client binaries (pg_dump), when present. */
export const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface FreshDatabase {
  readonly target: DatabaseTarget;
  /** Where files of this database's test live (PGlite data dir, master key). */
  readonly dir: string;
  drop(): Promise<void>;
}

export function tempDir(prefix = 'cloudpi-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** An empty database of the given kind, with nothing but what the test puts in it. */
export async function freshDatabase(kind: DatabaseKind): Promise<FreshDatabase> {
  const dir = tempDir();
  if (kind === 'pglite') {
    return {
      target: { kind: 'pglite', dataDir: path.join(dir, 'pglite') },
      dir,
      async drop() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  if (!TEST_DATABASE_URL) throw new Error('TEST_DATABASE_URL is not set');
  const name = `cloudpi_t_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    target: { kind: 'postgres', url: url.toString() },
    dir,
    async drop() {
      const a = postgres(TEST_DATABASE_URL!, { max: 1, onnotice: () => {} });
      await a.unsafe(`drop database if exists ${name} with (force)`);
      await a.end();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs the same suite on PGlite always and on PostgreSQL when TEST_DATABASE_URL is set (shown as
 * skipped otherwise), like drizzle's integration tests.
 */
export function describeEachDatabase(name: string, suite: (kind: DatabaseKind) => void): void {
  describe(`${name} [pglite]`, () => suite('pglite'));
  describe.skipIf(!TEST_DATABASE_URL)(`${name} [postgres]`, () => suite('postgres'));
}
