import { AppError, ErrorCode } from '../../errors.js';
import type { Database } from '../db.js';
import { and, asc, eq } from '../orm.js';
import { tenants } from '../schema.js';

export const TENANT_PLATFORMS = ['slack', 'teams', 'email'] as const;
export type TenantPlatform = (typeof TENANT_PLATFORMS)[number];

export type Tenant = typeof tenants.$inferSelect;

const REF = /^(slack|teams|email):([A-Za-z0-9._@-]{1,128})$/;

/** `slack:T0123`, `teams:<tenant guid>` or `email:<name>`: how admins name a tenant in the CLI. */
export function parseTenantRef(ref: string): { platform: TenantPlatform; externalId: string } {
  const match = REF.exec(ref.trim());
  if (!match) {
    throw new AppError(
      ErrorCode.VALIDATION,
      `"${ref}" is not a tenant reference: use slack:<team id>, teams:<tenant id> or email:<name>.`,
    );
  }
  return { platform: match[1] as TenantPlatform, externalId: match[2]! };
}

export function tenantRef(tenant: Pick<Tenant, 'platform' | 'externalId'>): string {
  return `${tenant.platform}:${tenant.externalId}`;
}

export class TenantRepository {
  constructor(private readonly db: Database) {}

  /** Creates the tenant, or returns the existing one with that reference. */
  async ensure(platform: TenantPlatform, externalId: string, name = ''): Promise<Tenant> {
    const [created] = await this.db
      .insert(tenants)
      .values({ platform, externalId, name })
      .onConflictDoNothing({ target: [tenants.platform, tenants.externalId] })
      .returning();
    if (created) return created;
    const existing = await this.findByExternalId(platform, externalId);
    if (!existing) throw new AppError(ErrorCode.INTERNAL, 'Tenant vanished while being created.');
    return existing;
  }

  async findByExternalId(platform: TenantPlatform, externalId: string): Promise<Tenant | undefined> {
    const [row] = await this.db
      .select()
      .from(tenants)
      .where(and(eq(tenants.platform, platform), eq(tenants.externalId, externalId)));
    return row;
  }

  async findByRef(ref: string): Promise<Tenant | undefined> {
    const { platform, externalId } = parseTenantRef(ref);
    return this.findByExternalId(platform, externalId);
  }

  /** Like findByRef, but a missing tenant is an error that says how to create it. */
  async requireByRef(ref: string): Promise<Tenant> {
    const tenant = await this.findByRef(ref);
    if (!tenant) {
      throw new AppError(
        ErrorCode.NOT_FOUND,
        `No tenant ${ref}. Create it with: cloudpi tenant create ${ref}`,
      );
    }
    return tenant;
  }

  async get(id: string): Promise<Tenant | undefined> {
    const [row] = await this.db.select().from(tenants).where(eq(tenants.id, id));
    return row;
  }

  async list(): Promise<Tenant[]> {
    return this.db.select().from(tenants).orderBy(asc(tenants.platform), asc(tenants.externalId));
  }
}
