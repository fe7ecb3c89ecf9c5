/**
 * What the service has stored, as one comparable value: per table the row count and a digest of
 * every row (api_keys without last_used_at, which a successful authentication touches). Two equal
 * snapshots mean nothing was written, updated or deleted in between.
 */

import type { DatabaseHandle } from '../../../src/storage/db.js';
import { sql } from '../../../src/storage/orm.js';

/** The service's own tables (pg-boss keeps its jobs in its own schema). */
export const STORED_TABLES = [
  'tenants',
  'installations',
  'integrations',
  'routes',
  'recommendations',
  'cards',
  'tickets',
  'identities',
  'api_keys',
  'audit_log',
  'digest_items',
  'sso_logins',
  'conversations',
  'webhook_endpoints',
] as const;

export type Snapshot = Record<(typeof STORED_TABLES)[number], string>;

export async function snapshot(handle: DatabaseHandle): Promise<Snapshot> {
  const out = {} as Snapshot;
  for (const table of STORED_TABLES) {
    const row = table === 'api_keys' ? sql.raw(`(to_jsonb(t) - 'last_used_at')`) : sql.raw('to_jsonb(t)');
    const [result] = await handle.rows<{ n: number; digest: string | null }>(
      sql`select count(*)::int as n, md5(string_agg(${row}::text, ',' order by ${row}::text)) as digest from ${sql.identifier(table)} t`,
    );
    out[table] = `${result?.n ?? 0} rows ${result?.digest ?? '-'}`;
  }
  return out;
}
