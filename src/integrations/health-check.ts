import { z } from 'zod/v4';
import { defineJob, type JobQueue } from '../jobs/queue.js';
import type { Logger } from '../logger.js';
import type { TenantRepository } from '../storage/repositories/tenants.js';
import type { IntegrationService } from './service.js';

/** Re-verifies every stored provider credential, so an expired PAT shows before someone clicks. */
export const healthCheckJob = defineJob({
  name: 'integrations.health-check',
  schema: z.object({}),
  retryLimit: 1,
  expireInSeconds: 900,
});

export async function scheduleHealthChecks(options: {
  queue: JobQueue;
  integrations: IntegrationService;
  tenants: TenantRepository;
  logger: Logger;
  cron: string;
  /** Told about every tenant whose provider states changed (chat surfaces refresh their views). */
  onChange?: (tenantId: string) => Promise<void>;
}): Promise<void> {
  await options.queue.work(healthCheckJob, async () => {
    let checked = 0;
    for (const tenant of await options.tenants.list()) {
      const changes = await options.integrations.healthCheck(tenant.id);
      checked++;
      for (const change of changes) {
        options.logger.warn({ tenant: tenant.id, ...change }, 'provider health changed');
      }
      if (changes.length > 0 && options.onChange) {
        await options
          .onChange(tenant.id)
          .catch((error: unknown) =>
            options.logger.warn(
              { err: error, tenant: tenant.id },
              'views not refreshed after a health change',
            ),
          );
      }
    }
    options.logger.debug({ tenants: checked }, 'integration health check done');
  });
  await options.queue.schedule(healthCheckJob, options.cron, {});
}
