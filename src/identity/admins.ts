import type { BootstrapAdmin } from '../config.js';
import type { IdentityRepository } from '../storage/repositories/identities.js';

export const ADMIN_ROLE = 'admin';
/** Given at sign-in to members of the tenant's configured SSO admin group (identity/sso.ts). */
export const SSO_ADMIN_ROLE = 'sso-admin';

/**
 * Who may change a tenant's integrations: bootstrap admins from CLOUDPI_ADMINS (in every tenant
 * of their platform: meant for single-organization installs and first setup) and users granted
 * the admin role in that tenant (`cloudpi admin grant`, later SSO groups).
 */
export class AdminPolicy {
  constructor(
    private readonly bootstrap: readonly BootstrapAdmin[],
    private readonly identities: IdentityRepository,
    /** Group-based admin rights count only while the tenant's SSO is enabled. */
    private readonly ssoEnabled: (tenantId: string) => Promise<boolean> = async () => false,
  ) {}

  isBootstrapAdmin(platform: 'slack' | 'teams', userId: string): boolean {
    return this.bootstrap.some((a) => a.platform === platform && a.userId === userId);
  }

  /** Bootstrap, granted (`cloudpi admin grant`), or a member of the SSO admin group at the last sign-in. */
  async isAdmin(tenantId: string, platform: 'slack' | 'teams', userId: string): Promise<boolean> {
    if (this.isBootstrapAdmin(platform, userId)) return true;
    const row = await this.identities.find(tenantId, platform, userId);
    if (row?.roles.includes(ADMIN_ROLE)) return true;
    return Boolean(row?.roles.includes(SSO_ADMIN_ROLE)) && (await this.ssoEnabled(tenantId));
  }
}
