import type { Database } from '../db.js';
import { and, desc, eq } from '../orm.js';
import { auditLog } from '../schema.js';

export type AuditEntry = typeof auditLog.$inferSelect;

const SECRET_KEY = /(secret|password|passwd|token|pat$|^pat|api[_-]?key|private[_-]?key|credential)/i;

/** A copy with every secret-looking field replaced by a marker that only says it was set. */
export function withoutSecrets(
  value: Record<string, unknown> | null | undefined,
): Record<string, unknown> | null {
  if (!value) return null;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (SECRET_KEY.test(key)) out[key] = v === undefined || v === null || v === '' ? v : '[set]';
    else if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date))
      out[key] = withoutSecrets(v as Record<string, unknown>);
    else out[key] = v;
  }
  return out;
}

export interface AuditInput {
  actor: string;
  action: string;
  target?: string;
  before?: Record<string, unknown> | null;
  after?: Record<string, unknown> | null;
}

export class AuditLogRepository {
  constructor(private readonly db: Database) {}

  async record(tenantId: string, entry: AuditInput): Promise<void> {
    await this.db.insert(auditLog).values({
      tenantId,
      actor: entry.actor,
      action: entry.action,
      target: entry.target ?? '',
      before: withoutSecrets(entry.before),
      after: withoutSecrets(entry.after),
    });
  }

  async recent(tenantId: string, limit = 20, action?: string): Promise<AuditEntry[]> {
    return this.db
      .select()
      .from(auditLog)
      .where(
        action
          ? and(eq(auditLog.tenantId, tenantId), eq(auditLog.action, action))
          : eq(auditLog.tenantId, tenantId),
      )
      .orderBy(desc(auditLog.at), desc(auditLog.id))
      .limit(limit);
  }
}
