import type { SecretBox } from '../../crypto/secret-box.js';
import type { Database } from '../db.js';
import { and, eq, sql } from '../orm.js';
import { identities, secretContext } from '../schema.js';

export type IdentityRow = typeof identities.$inferSelect;
export type ChatPlatform = 'slack' | 'teams';

export interface IdentityLink {
  idpSubject: string;
  email: string | null;
  groups: string[];
  /** The IdP grant (refresh token and the like), sealed at rest. */
  grant: Record<string, unknown>;
  loginValidUntil: Date;
}

/** Chat users: granted roles, and their link to the organization's identity provider. */
export class IdentityRepository {
  constructor(
    private readonly db: Database,
    private readonly box: SecretBox,
  ) {}

  async find(tenantId: string, platform: ChatPlatform, chatUserId: string): Promise<IdentityRow | undefined> {
    const [row] = await this.db
      .select()
      .from(identities)
      .where(
        and(
          eq(identities.tenantId, tenantId),
          eq(identities.platform, platform),
          eq(identities.chatUserId, chatUserId),
        ),
      );
    return row;
  }

  /** Chat users of the tenant who hold the role (on one platform). */
  async withRole(tenantId: string, platform: ChatPlatform, role: string): Promise<string[]> {
    const rows = await this.db
      .select({ chatUserId: identities.chatUserId })
      .from(identities)
      .where(
        and(
          eq(identities.tenantId, tenantId),
          eq(identities.platform, platform),
          sql`${role} = any(${identities.roles})`,
        ),
      );
    return rows.map((r) => r.chatUserId);
  }

  async grantRole(tenantId: string, platform: ChatPlatform, chatUserId: string, role: string): Promise<void> {
    await this.db
      .insert(identities)
      .values({ tenantId, platform, chatUserId, roles: [role] })
      .onConflictDoUpdate({
        target: [identities.tenantId, identities.platform, identities.chatUserId],
        set: {
          roles: sql`case when ${role} = any(${identities.roles}) then ${identities.roles} else array_append(${identities.roles}, ${role}::text) end`,
          updatedAt: new Date(),
        },
      });
  }

  /** False when the user did not hold the role. */
  async revokeRole(
    tenantId: string,
    platform: ChatPlatform,
    chatUserId: string,
    role: string,
  ): Promise<boolean> {
    const rows = await this.db
      .update(identities)
      .set({ roles: sql`array_remove(${identities.roles}, ${role}::text)`, updatedAt: new Date() })
      .where(
        and(
          eq(identities.tenantId, tenantId),
          eq(identities.platform, platform),
          eq(identities.chatUserId, chatUserId),
          sql`${role} = any(${identities.roles})`,
        ),
      )
      .returning({ id: identities.id });
    return rows.length > 0;
  }

  async hasRole(
    tenantId: string,
    platform: ChatPlatform,
    chatUserId: string,
    role: string,
  ): Promise<boolean> {
    const row = await this.find(tenantId, platform, chatUserId);
    return row?.roles.includes(role) ?? false;
  }

  async link(
    tenantId: string,
    platform: ChatPlatform,
    chatUserId: string,
    link: IdentityLink,
  ): Promise<void> {
    const grantSecret = this.box.encrypt(
      JSON.stringify(link.grant),
      secretContext.identity({ tenantId, platform, chatUserId }),
    );
    const set = {
      idpSubject: link.idpSubject,
      email: link.email,
      groups: link.groups,
      grantSecret,
      linkedAt: new Date(),
      loginValidUntil: link.loginValidUntil,
      updatedAt: new Date(),
    };
    await this.db
      .insert(identities)
      .values({ tenantId, platform, chatUserId, ...set })
      .onConflictDoUpdate({ target: [identities.tenantId, identities.platform, identities.chatUserId], set });
  }

  grant(row: IdentityRow): Record<string, unknown> | undefined {
    if (!row.grantSecret) return undefined;
    return JSON.parse(this.box.decrypt(row.grantSecret, secretContext.identity(row))) as Record<
      string,
      unknown
    >;
  }
}
