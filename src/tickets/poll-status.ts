/**
 * Ticket status comes back to the cards by polling: a scheduled job reads the status of every
 * open ticket from its provider (TicketService.refreshStatus), and a change reaches every copy of
 * the card through the TicketService's onTicketChange listeners.
 */

import { z } from 'zod/v4';
import { isAppError } from '../errors.js';
import { defineJob, type JobQueue } from '../jobs/queue.js';
import type { Logger } from '../logger.js';
import type { Database } from '../storage/db.js';
import { and, asc, eq, inArray, isNotNull, notInArray } from '../storage/orm.js';
import { integrations, tickets } from '../storage/schema.js';
import type { TicketService } from './service.js';

export const pollTicketStatusJob = defineJob({
  name: 'tickets.poll-status',
  schema: z.object({}),
  // The next scheduled run is the retry.
  retryLimit: 0,
  expireInSeconds: 900,
});

/** Tickets whose status is final: not polled any more. */
export const FINAL_TICKET_STATUSES = ['done', 'closed'] as const;
/** Integrations whose tickets are polled: Active, and Connected (paused for creation only). */
const POLLED_INTEGRATION_STATUSES = ['active', 'connected'];
/** At most this many tickets per run. */
export const POLL_BATCH_SIZE = 500;

export interface PollOptions {
  readonly db: Database;
  readonly tickets: TicketService;
  readonly logger: Logger;
  readonly limit?: number;
}

export interface PollReport {
  /** Tickets whose provider answered. */
  readonly checked: number;
  readonly changed: number;
  /** Tickets not read because their provider failed in this run. */
  readonly failed: number;
}

/**
 * One run: up to `limit` open tickets with a key, least recently checked first (`updated_at`
 * doubles as "last checked": every ticket taken in a run is touched, so the next run starts
 * with others). A provider that fails is logged and skipped for the rest of the run; the other
 * providers and tenants go on.
 */
export async function pollTicketStatuses(options: PollOptions): Promise<PollReport> {
  const { db, logger } = options;
  const limit = options.limit ?? POLL_BATCH_SIZE;
  const rows = await db
    .select({ id: tickets.id, tenantId: tickets.tenantId, provider: tickets.provider })
    .from(tickets)
    .innerJoin(
      integrations,
      and(eq(integrations.tenantId, tickets.tenantId), eq(integrations.kind, tickets.provider)),
    )
    .where(
      and(
        isNotNull(tickets.key),
        notInArray(tickets.status, [...FINAL_TICKET_STATUSES]),
        inArray(integrations.status, POLLED_INTEGRATION_STATUSES),
      ),
    )
    .orderBy(asc(tickets.updatedAt), asc(tickets.id))
    .limit(limit);
  const broken = new Set<string>();
  let checked = 0;
  let changed = 0;
  let failed = 0;
  for (const row of rows) {
    const provider = `${row.tenantId}|${row.provider}`;
    if (broken.has(provider)) {
      failed++;
      continue;
    }
    try {
      const result = await options.tickets.refreshStatus(row.tenantId, row.id);
      checked++;
      if (result.changed) changed++;
    } catch (error) {
      failed++;
      broken.add(provider);
      logger.warn(
        {
          err: error,
          tenant: row.tenantId,
          provider: row.provider,
          ticketId: row.id,
          ...(isAppError(error) ? { code: error.code } : {}),
        },
        'ticket status could not be read; this provider is skipped until the next run',
      );
    }
  }
  if (rows.length > 0) {
    await db
      .update(tickets)
      .set({ updatedAt: new Date() })
      .where(
        inArray(
          tickets.id,
          rows.map((r) => r.id),
        ),
      );
  }
  const report = { checked, changed, failed };
  logger.debug(report, 'ticket status poll done');
  return report;
}

/** Registers the worker and the cron schedule (pg-boss fires each occurrence once across replicas). */
export async function scheduleTicketStatusPolling(
  options: PollOptions & { readonly queue: JobQueue; readonly cron: string },
): Promise<void> {
  await options.queue.work(pollTicketStatusJob, async () => {
    await pollTicketStatuses(options);
  });
  await options.queue.schedule(pollTicketStatusJob, options.cron, {});
}
