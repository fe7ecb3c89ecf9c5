/**
 * drizzle-orm, loaded through its CommonJS build. Every file of the service takes drizzle from
 * here, never from 'drizzle-orm' directly, so that one copy of it is loaded.
 *
 * Why: importing drizzle's ES modules on Node.js 24 reads and parses its 179 KB package.json
 * (an export map of hundreds of entries) again for each of its ~450 files, to find the package
 * scope (node:internal/modules/package_json_reader). Measured here: 1.5 s and about 230 MB of
 * garbage (RSS) before the service did anything, against 0.2 s and 20 MB through `require`,
 * which caches the package scope once. Types still come from drizzle's declaration files.
 *
 * The drivers load when a database of their kind opens: a PostgreSQL deployment never loads
 * PGlite, and an embedded one never loads postgres.js' drizzle session.
 */
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

const core = load('drizzle-orm') as typeof import('drizzle-orm');
export const {
  and,
  asc,
  desc,
  eq,
  getTableColumns,
  gt,
  inArray,
  isNotNull,
  isNull,
  like,
  not,
  notInArray,
  sql,
} = core;

const pgCore = load('drizzle-orm/pg-core') as typeof import('drizzle-orm/pg-core');
export const { bigserial, boolean, index, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } = pgCore;

export const postgresJsDriver = (): typeof import('drizzle-orm/postgres-js') =>
  load('drizzle-orm/postgres-js');
export const postgresJsMigrator = (): typeof import('drizzle-orm/postgres-js/migrator') =>
  load('drizzle-orm/postgres-js/migrator');
export const pgliteDriver = (): typeof import('drizzle-orm/pglite') => load('drizzle-orm/pglite');
export const pgliteMigrator = (): typeof import('drizzle-orm/pglite/migrator') =>
  load('drizzle-orm/pglite/migrator');
/** PGlite's CommonJS build: the one drizzle's PGlite session loads too (one copy in memory). */
export const pgliteModule = (): typeof import('@electric-sql/pglite') => load('@electric-sql/pglite');
