import { z } from 'zod/v4';
import type { NoticeView } from '../commands/views.js';
import type { BootstrapAdmin } from '../config.js';
import { ADMIN_ROLE } from '../identity/admins.js';
import { defineJob, type JobQueue } from '../jobs/queue.js';
import type { Logger } from '../logger.js';
import type { Database } from '../storage/db.js';
import { and, eq, gt, sql } from '../storage/orm.js';
import type { Repositories } from '../storage/repositories/index.js';
import { tickets } from '../storage/schema.js';

/**
 * Tells a tenant's admins that work was given up after its last retry (today: tickets that could
 * not be created). Debounced per tenant: a provider outage that fails a thousand tickets sends
 * one message per admin, not a thousand.
 */
export const adminAlertJob = defineJob({
  name: 'notify.admin-alert',
  outbound: true,
  schema: z.object({ tenantId: z.uuid() }),
  policy: 'stately',
  retryLimit: 5,
});

/**
 * An alert goes out once no further ticket has been given up for this many seconds (a burst is
 * one message), or at the latest MAX_WAIT_SECONDS after the first of them.
 */
const QUIET_SECONDS = 5;
const MAX_WAIT_SECONDS = 120;
export const ALERTED_ACTION = 'admins.alerted';

/** Sends one direct message to each chat user; returns who got it. */
export type AdminMessenger = (
  tenantId: string,
  userIds: readonly string[],
  view: NoticeView,
) => Promise<string[]>;

const PROVIDER_NAMES: Record<string, string> = {
  jira: 'Jira',
  azure_devops: 'Azure DevOps',
  servicenow: 'ServiceNow',
};

export interface AdminAlertsOptions {
  readonly db: Database;
  readonly repositories: Repositories;
  readonly queue: JobQueue;
  readonly logger: Logger;
  readonly bootstrapAdmins: readonly BootstrapAdmin[];
}

export class AdminAlerts {
  readonly #o: AdminAlertsOptions;
  readonly #messengers = new Map<string, AdminMessenger>();

  constructor(options: AdminAlertsOptions) {
    this.#o = options;
  }

  /** The platform's direct-message channel (Slack: a DM from the app). */
  registerMessenger(platform: 'slack' | 'teams', messenger: AdminMessenger): void {
    this.#messengers.set(platform, messenger);
  }

  /** A ticket was given up: its tenant's admins hear about it (with the others of the burst). */
  async ticketGaveUp(tenantId: string): Promise<void> {
    await this.#o.queue.send(
      adminAlertJob,
      { tenantId },
      { singletonKey: tenantId, startAfterSeconds: QUIET_SECONDS },
    );
  }

  /** The admins of a tenant on its platform: bootstrap (CLOUDPI_ADMINS) and granted. */
  async #admins(tenantId: string, platform: 'slack' | 'teams'): Promise<string[]> {
    const granted = await this.#o.repositories.identities.withRole(tenantId, platform, ADMIN_ROLE);
    const bootstrap = this.#o.bootstrapAdmins.filter((a) => a.platform === platform).map((a) => a.userId);
    return [...new Set([...bootstrap, ...granted])];
  }

  /** The job: tickets given up since the last alert, grouped by provider, to every admin. */
  async send(tenantId: string): Promise<void> {
    const { repositories, db, logger } = this.#o;
    const tenant = await repositories.tenants.get(tenantId);
    if (!tenant) return;
    const [previous] = await repositories.audit.recent(tenantId, 1, ALERTED_ACTION);
    const since = previous?.at ?? new Date(0);
    const rows = await db
      .select({
        provider: tickets.provider,
        count: sql<number>`count(*)::int`,
        lastError: sql<
          string | null
        >`(array_agg(${tickets.lastError} order by ${tickets.updatedAt} desc))[1]`,
        first: sql<string>`min(${tickets.updatedAt})`,
        last: sql<string>`max(${tickets.updatedAt})`,
      })
      .from(tickets)
      .where(and(eq(tickets.tenantId, tenantId), eq(tickets.status, 'failed'), gt(tickets.updatedAt, since)))
      .groupBy(tickets.provider);
    const total = rows.reduce((n, r) => n + Number(r.count), 0);
    if (total === 0) return;
    const now = Date.now();
    const first = Math.min(...rows.map((r) => new Date(r.first).getTime()));
    const last = Math.max(...rows.map((r) => new Date(r.last).getTime()));
    if (now - last < QUIET_SECONDS * 1000 && now - first < MAX_WAIT_SECONDS * 1000) {
      // Still arriving: one message for the whole burst, a little later.
      await this.#o.queue.send(
        adminAlertJob,
        { tenantId },
        { singletonKey: tenantId, startAfterSeconds: QUIET_SECONDS },
      );
      return;
    }
    const lines = rows.map(
      (r) =>
        `• ${PROVIDER_NAMES[r.provider] ?? r.provider}: ${r.count} (last error: ${r.lastError ?? 'unknown'})`,
    );
    const view: NoticeView = {
      kind: 'notice',
      tone: 'error',
      title: `${total} ticket${total === 1 ? '' : 's'} could not be created`,
      text: `${lines.join('\n')}\nThe provider kept failing until the retries ran out. Each card shows Retry: press it once the provider answers again (\`/cloudpi status\` shows its state).`,
    };
    const platform = tenant.platform === 'teams' ? 'teams' : 'slack';
    const admins = await this.#admins(tenantId, platform);
    const messenger = this.#messengers.get(platform);
    const reached = messenger && admins.length > 0 ? await messenger(tenantId, admins, view) : [];
    await repositories.audit.record(tenantId, {
      actor: 'system',
      action: ALERTED_ACTION,
      target: 'tickets.gave_up',
      after: { tickets: total, admins: reached, unreachable: admins.filter((a) => !reached.includes(a)) },
    });
    if (reached.length === 0)
      logger.error(
        { tenantId, tickets: total, admins: admins.length },
        'tickets were given up and no admin could be told in chat (see the audit log)',
      );
  }

  async work(): Promise<void> {
    await this.#o.queue.work(adminAlertJob, (data) => this.send(data.tenantId), { concurrency: 1 });
  }
}
