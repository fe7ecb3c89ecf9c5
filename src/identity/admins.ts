import type { BootstrapAdmin } from '../config.js';
import type { IdentityRepository } from '../storage/repositories/identities.js';

export const ADMIN_ROLE = 'admin';

/**
 * Who may change a tenant's integrations: bootstrap admins from CLOUDPI_ADMINS (in every tenant
 * of their platform: meant for single-organization installs and first setup) and users granted
 * the admin role in that tenant (`cloudpi admin grant`, later SSO groups).
 */
export class AdminPolicy {
  constructor(
    private readonly bootstrap: readonly BootstrapAdmin[],
    private readonly identities: IdentityRepository,
  ) {}

  isBootstrapAdmin(platform: 'slack' | 'teams', userId: string): boolean {
    return this.bootstrap.some((a) => a.platform === platform && a.userId === userId);
  }

  async isAdmin(tenantId: string, platform: 'slack' | 'teams', userId: string): Promise<boolean> {
    if (this.isBootstrapAdmin(platform, userId)) return true;
    return this.identities.hasRole(tenantId, platform, userId, ADMIN_ROLE);
  }
}
