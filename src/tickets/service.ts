import { z } from 'zod/v4';
import type { SecretBox } from '../crypto/secret-box.js';
import { AppError, ErrorCode, isAppError } from '../errors.js';
import type { IntegrationService } from '../integrations/service.js';
import { defineJob, type JobQueue } from '../jobs/queue.js';
import type { Logger } from '../logger.js';
import { isRetryable } from '../net/outbound.js';
import type { Database } from '../storage/db.js';
import { and, eq } from '../storage/orm.js';
import { createRepositories, type Repositories } from '../storage/repositories/index.js';
import type { RecommendationRow, TicketRow } from '../storage/repositories/recommendations.js';
import { recommendations, tickets } from '../storage/schema.js';
import {
  type Routing,
  SEVERITIES,
  type Severity,
  TICKET_PROVIDER_KINDS,
  type TicketInput,
  type TicketProviderKind,
} from './port.js';

export const createTicketJob = defineJob({
  name: 'tickets.create',
  outbound: true,
  schema: z.object({
    tenantId: z.uuid(),
    ticketId: z.uuid(),
  }),
  retryLimit: 8,
  retryDelaySeconds: 5,
  retryDelayMaxSeconds: 600,
  expireInSeconds: 120,
});

/**
 * The key a ticket carries on the provider's side (Jira label, Azure DevOps tag, ServiceNow
 * correlation_id): one per (recommendation, provider), without spaces so that it is a valid
 * label and tag everywhere.
 */
export function idempotencyKeyOf(recommendationId: string, provider: TicketProviderKind): string {
  return `cloudpi-${recommendationId}-${provider}`;
}

function severityOf(value: unknown): Severity {
  const text = String(value ?? '').toLowerCase();
  return (SEVERITIES as readonly string[]).includes(text) ? (text as Severity) : 'medium';
}

/** The ticket text, from the recommendation as CloudPi sent it. */
export function ticketInputOf(
  recommendation: RecommendationRow,
  routing: TicketInput['routing'],
): TicketInput {
  const p = recommendation.payload as Record<string, unknown>;
  const lines: string[] = [];
  if (typeof p.description === 'string' && p.description.trim()) lines.push(p.description.trim());
  const facts = [
    ['Resource', p.resource],
    ['Account', p.account],
    ['Cloud', p.cloud],
    ['Region', p.region],
    ['Category', p.category],
    ['Severity', recommendation.severity ?? p.severity],
    [
      'Estimated monthly savings',
      typeof p.monthlySavings === 'number'
        ? `${p.monthlySavings.toFixed(2)} ${String(p.currency ?? 'USD')}`
        : undefined,
    ],
  ]
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${k}: ${String(v)}`);
  if (facts.length) lines.push(facts.join('\n'));
  lines.push(`CloudPi recommendation ${recommendation.externalId}`);
  return {
    title: recommendation.title,
    description: lines.join('\n\n'),
    severity: severityOf(recommendation.severity ?? p.severity),
    ...(typeof p.link === 'string' ? { link: p.link } : {}),
    routing,
  };
}

/**
 * The provider's routing with the project and type a subscription chose. Values that belong to
 * the provider's own project and type are dropped when those change: area and iteration paths
 * with another project, required field values (described per project and type) with either.
 */
export function routingOverride(stored: unknown, base: Routing): Routing {
  const o = (stored ?? {}) as { project?: unknown; ticketType?: unknown };
  const project = typeof o.project === 'string' && o.project ? o.project : undefined;
  const ticketType = typeof o.ticketType === 'string' && o.ticketType ? o.ticketType : undefined;
  const otherProject = project !== undefined && project !== base.project;
  const otherType = ticketType !== undefined && ticketType !== base.ticketType;
  if (!otherProject && !otherType) return base;
  const { areaPath, iterationPath, fieldValues: _fieldValues, ...rest } = base;
  return {
    ...rest,
    ...(otherProject
      ? {}
      : { ...(areaPath ? { areaPath } : {}), ...(iterationPath ? { iterationPath } : {}) }),
    ...(project ? { project } : {}),
    ...(ticketType ? { ticketType } : {}),
  };
}

export interface TicketServiceOptions {
  readonly db: Database;
  readonly box: SecretBox;
  readonly repositories: Repositories;
  readonly integrations: IntegrationService;
  readonly queue: JobQueue;
  readonly logger: Logger;
}

/** What happened to a ticket: created (it has a key), failed (for good), status (read back changed). */
export type TicketChange = 'created' | 'failed' | 'status';

export type TicketRequest = { readonly ticket: TicketRow; readonly queued: boolean };

/**
 * Exactly one ticket per (recommendation, provider): the ticket row is claimed by a unique
 * index, the job that talks to the provider is queued in the same transaction as the claim,
 * and the provider side carries the idempotency key, which the adapter looks up before it
 * creates, so a crash between the provider's answer and our commit is recovered on retry.
 */
export class TicketService {
  readonly #o: TicketServiceOptions;
  readonly #listeners: ((ticket: TicketRow, change: TicketChange) => Promise<void>)[] = [];

  constructor(options: TicketServiceOptions) {
    this.#o = options;
  }

  /**
   * Called after the create job settled a ticket (created, failed), gave up on it, or a status
   * refresh found a new status (cards).
   */
  onTicketChange(listener: (ticket: TicketRow, change: TicketChange) => Promise<void>): void {
    this.#listeners.push(listener);
  }

  async #notify(tenantId: string, ticketId: string, change?: TicketChange): Promise<void> {
    if (this.#listeners.length === 0) return;
    const ticket = await this.#ticket(tenantId, ticketId);
    const what = change ?? (ticket.key ? 'created' : 'failed');
    for (const listener of this.#listeners) {
      try {
        await listener(ticket, what);
      } catch (error) {
        this.#o.logger.warn({ err: error, tenantId, ticketId }, 'ticket change listener failed');
      }
    }
  }

  /** Claims the ticket and queues its creation; a second request returns the same ticket. */
  async createForRecommendation(
    tenantId: string,
    recommendationId: string,
    provider: TicketProviderKind,
    actor: string,
    /** Where this ticket goes when it is the first request (the channel's subscription). */
    routing: Pick<Routing, 'project' | 'ticketType'> = {},
  ): Promise<TicketRequest> {
    if (!(TICKET_PROVIDER_KINDS as readonly string[]).includes(provider)) {
      throw new AppError(ErrorCode.VALIDATION, `Unknown provider "${provider}".`);
    }
    // Fails fast (before claiming) when the provider is not connected or paused.
    await this.#o.integrations.providerFor(tenantId, provider);
    return this.#o.db.transaction(async (tx) => {
      const repos = createRepositories(tx as unknown as Database, this.#o.box);
      const [rec] = await tx
        .select({ id: recommendations.id })
        .from(recommendations)
        .where(and(eq(recommendations.tenantId, tenantId), eq(recommendations.id, recommendationId)));
      if (!rec)
        throw new AppError(ErrorCode.NOT_FOUND, 'That recommendation does not exist in this workspace.');
      const { ticket, claimed } = await repos.recommendations.claimTicket(
        tenantId,
        recommendationId,
        provider,
        idempotencyKeyOf(recommendationId, provider),
        actor,
        { ...routing },
      );
      if (claimed) {
        await this.#o.queue.send(
          createTicketJob,
          { tenantId, ticketId: ticket.id },
          { tx: tx as unknown as Database },
        );
      }
      return { ticket, queued: claimed };
    });
  }

  /** Queues another attempt for a ticket whose creation failed permanently (the Retry button). */
  async retry(tenantId: string, ticketId: string): Promise<TicketRow> {
    return this.#o.db.transaction(async (tx) => {
      const [row] = await tx
        .update(tickets)
        .set({ status: 'creating', lastError: null, updatedAt: new Date() })
        .where(and(eq(tickets.tenantId, tenantId), eq(tickets.id, ticketId), eq(tickets.status, 'failed')))
        .returning();
      if (!row) throw new AppError(ErrorCode.CONFLICT, 'This ticket is not in a failed state.');
      await this.#o.queue.send(createTicketJob, { tenantId, ticketId }, { tx: tx as unknown as Database });
      return row;
    });
  }

  /**
   * The job: calls the provider (which finds a ticket carrying the key before creating one) and
   * records key, URL and status. Retryable failures (rate limits, outages) are thrown so the
   * queue retries with backoff; others mark the ticket failed with the provider's reason.
   */
  async runCreate(tenantId: string, ticketId: string): Promise<TicketRow> {
    const ticket = await this.#ticket(tenantId, ticketId);
    if (ticket.key) return ticket;
    const [rec] = await this.#o.db
      .select()
      .from(recommendations)
      .where(and(eq(recommendations.tenantId, tenantId), eq(recommendations.id, ticket.recommendationId)));
    if (!rec) throw new AppError(ErrorCode.NOT_FOUND, 'The recommendation of this ticket is gone.');
    const kind = ticket.provider as TicketProviderKind;
    try {
      const { provider, routing } = await this.#o.integrations.providerFor(tenantId, kind);
      const chosen = routingOverride(ticket.routing, routing);
      const ref = await provider.createTicket(ticketInputOf(rec, chosen), ticket.idempotencyKey);
      let status = { status: 'open', providerStatus: null as string | null };
      try {
        const read = await provider.getTicket(ref.key);
        status = { status: read.status, providerStatus: read.providerStatus };
      } catch (error) {
        this.#o.logger.warn(
          { err: error, tenantId, ticketId },
          'created the ticket but could not read its status',
        );
      }
      await this.#o.repositories.recommendations.completeTicket(tenantId, ticketId, {
        key: ref.key,
        url: ref.url,
        status: status.status,
        providerStatus: status.providerStatus,
      });
      return this.#ticket(tenantId, ticketId);
    } catch (error) {
      const message = isAppError(error) ? error.message : 'The provider failed unexpectedly.';
      if (isRetryable(error)) {
        // Kept for the card and for the dead-letter handler, which marks the ticket failed if
        // the retries run out.
        await this.#o.db
          .update(tickets)
          .set({ lastError: message, updatedAt: new Date() })
          .where(and(eq(tickets.tenantId, tenantId), eq(tickets.id, ticketId)));
        throw error;
      }
      await this.#o.db
        .update(tickets)
        .set({ status: 'failed', lastError: message, updatedAt: new Date() })
        .where(and(eq(tickets.tenantId, tenantId), eq(tickets.id, ticketId)));
      this.#o.logger.warn({ err: error, tenantId, ticketId, provider: kind }, 'ticket creation failed');
      return this.#ticket(tenantId, ticketId);
    }
  }

  /** Called when the create job ran out of retries: the ticket shows as failed, with the last reason. */
  async markGaveUp(tenantId: string, ticketId: string): Promise<void> {
    await this.#o.db
      .update(tickets)
      .set({ status: 'failed', updatedAt: new Date() })
      .where(and(eq(tickets.tenantId, tenantId), eq(tickets.id, ticketId), eq(tickets.status, 'creating')));
    await this.#notify(tenantId, ticketId);
  }

  /**
   * Reads the provider's status (also while the integration is paused); true when it changed,
   * and then the onTicketChange listeners are told (every copy of the card shows it).
   */
  async refreshStatus(tenantId: string, ticketId: string): Promise<{ ticket: TicketRow; changed: boolean }> {
    const ticket = await this.#ticket(tenantId, ticketId);
    if (!ticket.key) return { ticket, changed: false };
    const { provider } = await this.#o.integrations.providerFor(
      tenantId,
      ticket.provider as TicketProviderKind,
      { includePaused: true },
    );
    const read = await provider.getTicket(ticket.key);
    const changed = read.status !== ticket.status || read.providerStatus !== ticket.providerStatus;
    if (changed) {
      await this.#o.db
        .update(tickets)
        .set({ status: read.status, providerStatus: read.providerStatus, updatedAt: new Date() })
        .where(and(eq(tickets.tenantId, tenantId), eq(tickets.id, ticketId)));
      await this.#notify(tenantId, ticketId, 'status');
    }
    return { ticket: await this.#ticket(tenantId, ticketId), changed };
  }

  async #ticket(tenantId: string, ticketId: string): Promise<TicketRow> {
    const [row] = await this.#o.db
      .select()
      .from(tickets)
      .where(and(eq(tickets.tenantId, tenantId), eq(tickets.id, ticketId)));
    if (!row) throw new AppError(ErrorCode.NOT_FOUND, 'No such ticket.');
    return row;
  }

  /** Registers the job worker. */
  async work(concurrency = 4): Promise<void> {
    await this.#o.queue.work(
      createTicketJob,
      async (data) => {
        await this.runCreate(data.tenantId, data.ticketId);
        await this.#notify(data.tenantId, data.ticketId);
      },
      { concurrency },
    );
  }
}
