import type { PgColumn, PgTable } from 'drizzle-orm/pg-core';
import type { Database } from '../storage/db.js';
import { and, eq, isNotNull, like, not } from '../storage/orm.js';
import {
  identities,
  installations,
  integrations,
  secretContext,
  ssoLogins,
  webhookEndpoints,
} from '../storage/schema.js';
import { keyIdOf, type SecretBox } from './secret-box.js';

interface SealedColumn {
  readonly name: string;
  readonly table: PgTable;
  readonly id: PgColumn;
  readonly column: PgColumn;
  readonly context: (row: Record<string, unknown>) => string;
}

/** Every column that holds a SecretBox envelope. A new sealed column must be listed here. */
export const SEALED_COLUMNS: readonly SealedColumn[] = [
  {
    name: 'installations.installation_secret',
    table: installations,
    id: installations.id,
    column: installations.installationSecret,
    context: (row) => secretContext.installation(row as Parameters<typeof secretContext.installation>[0]),
  },
  {
    name: 'integrations.credentials_secret',
    table: integrations,
    id: integrations.id,
    column: integrations.credentialsSecret,
    context: (row) => secretContext.integration(row as Parameters<typeof secretContext.integration>[0]),
  },
  {
    name: 'identities.grant_secret',
    table: identities,
    id: identities.id,
    column: identities.grantSecret,
    context: (row) => secretContext.identity(row as Parameters<typeof secretContext.identity>[0]),
  },
  {
    name: 'webhook_endpoints.signing_secret',
    table: webhookEndpoints,
    id: webhookEndpoints.id,
    column: webhookEndpoints.signingSecret,
    context: (row) => secretContext.webhook(row as Parameters<typeof secretContext.webhook>[0]),
  },
  {
    name: 'sso_logins.verifier_secret',
    table: ssoLogins,
    id: ssoLogins.id,
    column: ssoLogins.verifierSecret,
    context: (row) => secretContext.ssoLogin(row as Parameters<typeof secretContext.ssoLogin>[0]),
  },
];

export interface RotationReport {
  /** Envelopes re-sealed with the current key. */
  readonly rotated: number;
  /** Envelopes already on the current key. */
  readonly current: number;
  /** Rows changed by someone else between read and write; they were sealed anew by that writer. */
  readonly skipped: number;
  /** Sealed values per key id after the run. */
  readonly byKey: Record<string, number>;
}

/**
 * Re-seals every stored secret with the keyring's current key, row by row, while the service
 * keeps running: each update only applies if the envelope is still the one that was read
 * (compare-and-set), so a concurrent save is never overwritten with an older value.
 */
export async function rotateSecrets(db: Database, box: SecretBox, batchSize = 200): Promise<RotationReport> {
  let rotated = 0;
  let skipped = 0;
  const prefix = `v1.${box.currentKeyId}.`;
  for (const sealed of SEALED_COLUMNS) {
    let lastSeen: string[] = [];
    for (;;) {
      const rows = (await db
        .select()
        .from(sealed.table)
        .where(and(isNotNull(sealed.column), not(like(sealed.column, `${prefix}%`))))
        .limit(batchSize)) as Record<string, unknown>[];
      const fresh = rows.filter((row) => !lastSeen.includes(row.id as string));
      if (fresh.length === 0) break;
      for (const row of fresh) {
        const old = row[columnKey(sealed)] as string;
        const context = sealed.context(row);
        const resealed = box.encrypt(box.decrypt(old, context), context);
        const updated = await db
          .update(sealed.table)
          .set({ [columnKey(sealed)]: resealed })
          .where(and(eq(sealed.id, row.id as string), eq(sealed.column, old)))
          .returning({ id: sealed.id });
        if (updated.length > 0) rotated++;
        else skipped++;
      }
      // A row skipped by compare-and-set may still carry an old key; remember only this batch.
      lastSeen = fresh.map((row) => row.id as string);
    }
  }
  const byKey = await countByKey(db);
  return { rotated, current: (byKey[box.currentKeyId] ?? 0) - rotated, skipped, byKey };
}

/** How many sealed values each key id protects. */
export async function countByKey(db: Database): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const sealed of SEALED_COLUMNS) {
    const rows = await db.select({ value: sealed.column }).from(sealed.table).where(isNotNull(sealed.column));
    for (const { value } of rows) {
      const id = keyIdOf(value as string);
      counts[id] = (counts[id] ?? 0) + 1;
    }
  }
  return counts;
}

function columnKey(sealed: SealedColumn): string {
  const table = sealed.table as unknown as Record<string, PgColumn>;
  const entry = Object.entries(table).find(([, column]) => column === sealed.column);
  if (!entry) throw new Error(`column ${sealed.name} not found on its table`);
  return entry[0];
}
