import type { SecretBox } from '../../crypto/secret-box.js';
import type { Database } from '../db.js';
import { and, eq } from '../orm.js';
import { integrations, secretContext } from '../schema.js';

export const INTEGRATION_KINDS = ['jira', 'azure-devops', 'servicenow', 'sso', 'smtp'] as const;
export type IntegrationKind = (typeof INTEGRATION_KINDS)[number];
export const INTEGRATION_STATUSES = ['not_connected', 'connected', 'active', 'error'] as const;
export type IntegrationStatus = (typeof INTEGRATION_STATUSES)[number];

export type IntegrationRow = typeof integrations.$inferSelect;

export interface IntegrationWrite {
  status: IntegrationStatus;
  settings: Record<string, unknown>;
  /** Plain credentials to seal; undefined keeps the stored ones ("leave blank to keep"). */
  credentials?: Record<string, string> | undefined;
  lastVerifiedAt?: Date | null;
  lastError?: string | null;
}

export class IntegrationRepository {
  constructor(
    private readonly db: Database,
    private readonly box: SecretBox,
  ) {}

  async get(tenantId: string, kind: IntegrationKind): Promise<IntegrationRow | undefined> {
    const [row] = await this.db
      .select()
      .from(integrations)
      .where(and(eq(integrations.tenantId, tenantId), eq(integrations.kind, kind)));
    return row;
  }

  async list(tenantId: string): Promise<IntegrationRow[]> {
    return this.db.select().from(integrations).where(eq(integrations.tenantId, tenantId));
  }

  /** Inserts or replaces the tenant's integration of this kind in one statement. */
  async save(tenantId: string, kind: IntegrationKind, write: IntegrationWrite): Promise<IntegrationRow> {
    const sealed =
      write.credentials === undefined
        ? undefined
        : this.box.encrypt(JSON.stringify(write.credentials), secretContext.integration({ tenantId, kind }));
    const values = {
      status: write.status,
      settings: write.settings,
      lastVerifiedAt: write.lastVerifiedAt ?? null,
      lastError: write.lastError ?? null,
      updatedAt: new Date(),
      ...(sealed === undefined ? {} : { credentialsSecret: sealed }),
    };
    const [row] = await this.db
      .insert(integrations)
      .values({ tenantId, kind, ...values })
      .onConflictDoUpdate({ target: [integrations.tenantId, integrations.kind], set: values })
      .returning();
    return row!;
  }

  credentials(row: IntegrationRow): Record<string, string> | undefined {
    if (!row.credentialsSecret) return undefined;
    return JSON.parse(
      this.box.decrypt(
        row.credentialsSecret,
        secretContext.integration({ tenantId: row.tenantId, kind: row.kind }),
      ),
    ) as Record<string, string>;
  }

  async remove(tenantId: string, kind: IntegrationKind): Promise<boolean> {
    const rows = await this.db
      .delete(integrations)
      .where(and(eq(integrations.tenantId, tenantId), eq(integrations.kind, kind)))
      .returning({ id: integrations.id });
    return rows.length > 0;
  }
}
