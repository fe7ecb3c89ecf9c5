import { randomBytes } from 'node:crypto';
import type { SecretBox } from '../../crypto/secret-box.js';
import type { Database } from '../db.js';
import { and, eq, sql } from '../orm.js';
import { secretContext, webhookEndpoints } from '../schema.js';

export type WebhookEndpointRow = typeof webhookEndpoints.$inferSelect;

/** The public id in the URL: 128 random bits, base64url (22 characters). */
const PUBLIC_ID_FORMAT = /^[A-Za-z0-9_-]{22}$/;

export interface IssuedWebhook {
  readonly row: WebhookEndpointRow;
  /** The secret in clear: returned only when it was just made (shown once). */
  readonly secret: string;
}

/**
 * Webhook endpoints, one per (tenant, provider). Secrets are 256-bit random and sealed (the
 * receiver needs them in clear to check HMAC signatures, so they cannot be hashed).
 */
export class WebhookRepository {
  constructor(
    private readonly db: Database,
    private readonly box: SecretBox,
  ) {}

  async get(tenantId: string, provider: string): Promise<WebhookEndpointRow | undefined> {
    const [row] = await this.db
      .select()
      .from(webhookEndpoints)
      .where(and(eq(webhookEndpoints.tenantId, tenantId), eq(webhookEndpoints.provider, provider)));
    return row;
  }

  /** The endpoint a request's URL names, with its secret opened; undefined for unknown ids. */
  async findByPublicId(
    provider: string,
    publicId: string,
  ): Promise<{ row: WebhookEndpointRow; secret: string } | undefined> {
    if (!PUBLIC_ID_FORMAT.test(publicId)) return undefined;
    const [row] = await this.db
      .select()
      .from(webhookEndpoints)
      .where(and(eq(webhookEndpoints.publicId, publicId), eq(webhookEndpoints.provider, provider)));
    if (!row) return undefined;
    return { row, secret: this.box.decrypt(row.signingSecret, secretContext.webhook(row)) };
  }

  /**
   * A new endpoint, or a new id and secret for the existing one (rotation: the old URL stops
   * working at once). One statement, so two admins rotating at once leave one valid pair.
   */
  async issue(tenantId: string, provider: string, createdBy: string): Promise<IssuedWebhook> {
    const publicId = randomBytes(16).toString('base64url');
    const secret = randomBytes(32).toString('base64url');
    const signingSecret = this.box.encrypt(secret, secretContext.webhook({ tenantId, provider, publicId }));
    const [row] = await this.db
      .insert(webhookEndpoints)
      .values({ tenantId, provider, publicId, signingSecret, createdBy })
      .onConflictDoUpdate({
        target: [webhookEndpoints.tenantId, webhookEndpoints.provider],
        set: { publicId, signingSecret, createdBy, lastReceivedAt: null, updatedAt: sql`now()` },
      })
      .returning();
    return { row: row!, secret };
  }

  async remove(tenantId: string, provider: string): Promise<boolean> {
    const rows = await this.db
      .delete(webhookEndpoints)
      .where(and(eq(webhookEndpoints.tenantId, tenantId), eq(webhookEndpoints.provider, provider)))
      .returning({ id: webhookEndpoints.id });
    return rows.length > 0;
  }

  async touch(id: string): Promise<void> {
    await this.db
      .update(webhookEndpoints)
      .set({ lastReceivedAt: new Date() })
      .where(eq(webhookEndpoints.id, id));
  }
}
