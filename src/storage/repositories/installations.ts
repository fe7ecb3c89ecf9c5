import type { SecretBox } from '../../crypto/secret-box.js';
import type { Database } from '../db.js';
import { and, eq } from '../orm.js';
import { installations, secretContext } from '../schema.js';

export type InstallationRow = typeof installations.$inferSelect;

/** Chat platform installations (Slack OAuth installs); the installation object is sealed whole. */
export class InstallationRepository {
  constructor(
    private readonly db: Database,
    private readonly box: SecretBox,
  ) {}

  async save(
    tenantId: string,
    platform: string,
    installKey: string,
    installation: unknown,
    botUserId?: string,
  ): Promise<void> {
    const sealed = this.box.encrypt(
      JSON.stringify(installation),
      secretContext.installation({ tenantId, platform, installKey }),
    );
    const set = { installationSecret: sealed, botUserId: botUserId ?? null, updatedAt: new Date() };
    await this.db
      .insert(installations)
      .values({ tenantId, platform, installKey, ...set })
      .onConflictDoUpdate({
        target: [installations.tenantId, installations.platform, installations.installKey],
        set,
      });
  }

  async find<T = unknown>(tenantId: string, platform: string, installKey: string): Promise<T | undefined> {
    const [row] = await this.db
      .select()
      .from(installations)
      .where(
        and(
          eq(installations.tenantId, tenantId),
          eq(installations.platform, platform),
          eq(installations.installKey, installKey),
        ),
      );
    if (!row) return undefined;
    return JSON.parse(this.box.decrypt(row.installationSecret, secretContext.installation(row))) as T;
  }

  async remove(tenantId: string, platform: string, installKey: string): Promise<boolean> {
    const rows = await this.db
      .delete(installations)
      .where(
        and(
          eq(installations.tenantId, tenantId),
          eq(installations.platform, platform),
          eq(installations.installKey, installKey),
        ),
      )
      .returning({ id: installations.id });
    return rows.length > 0;
  }
}
