/**
 * Bolt's InstallationStore over our sealed `installations` table. Each Slack workspace is a tenant
 * (`slack:<team id>`); an org-wide Enterprise Grid install is one tenant for the whole org
 * (`slack:<enterprise id>`). The installation object (bot token included) is sealed whole with
 * the tenant and install key as additional data, so a row copied to another tenant does not open.
 */
import type { Installation, InstallationQuery, InstallationStore } from '@slack/bolt';
import type { InstallationRepository } from '../../../src/storage/repositories/installations.js';
import type { TenantRepository } from '../../../src/storage/repositories/tenants.js';

export const SLACK_PLATFORM = 'slack';

/** The tenant's external id: the enterprise for org-wide installs, else the workspace. */
export function installKey(query: {
  teamId?: string | undefined;
  enterpriseId?: string | undefined;
  isEnterpriseInstall?: boolean | undefined;
}): string {
  const key = query.isEnterpriseInstall ? query.enterpriseId : query.teamId;
  if (!key) {
    throw new Error(
      query.isEnterpriseInstall
        ? 'An org-wide install without an enterprise id.'
        : 'A request without a team id.',
    );
  }
  return key;
}

export class SlackInstallationStore implements InstallationStore {
  constructor(
    private readonly tenants: TenantRepository,
    private readonly installations: InstallationRepository,
  ) {}

  async storeInstallation(installation: Installation): Promise<void> {
    const isEnterpriseInstall = installation.isEnterpriseInstall === true;
    const key = installKey({
      teamId: installation.team?.id,
      enterpriseId: installation.enterprise?.id,
      isEnterpriseInstall,
    });
    const name = (isEnterpriseInstall ? installation.enterprise?.name : installation.team?.name) ?? '';
    const tenant = await this.tenants.ensure(SLACK_PLATFORM, key, name);
    await this.installations.save(tenant.id, SLACK_PLATFORM, key, installation, installation.bot?.userId);
  }

  async fetchInstallation(query: InstallationQuery<boolean>): Promise<Installation> {
    const key = installKey(query);
    const tenant = await this.tenants.findByExternalId(SLACK_PLATFORM, key);
    const installation = tenant
      ? await this.installations.find<Installation>(tenant.id, SLACK_PLATFORM, key)
      : undefined;
    if (!installation)
      throw new Error(`CloudPi is not installed in Slack ${key}: install it from /slack/install.`);
    return installation;
  }

  async deleteInstallation(query: InstallationQuery<boolean>): Promise<void> {
    await this.remove(query);
  }

  /** Deletes the workspace's installation (bot token); true when there was one. */
  async remove(query: {
    teamId?: string | undefined;
    enterpriseId?: string | undefined;
    isEnterpriseInstall?: boolean | undefined;
  }): Promise<boolean> {
    const key = installKey(query);
    const tenant = await this.tenants.findByExternalId(SLACK_PLATFORM, key);
    if (!tenant) return false;
    return this.installations.remove(tenant.id, SLACK_PLATFORM, key);
  }
}
