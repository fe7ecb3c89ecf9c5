/**
 * Recommendation cards, platform-neutral: what a card shows (RecommendationCardView), the port a
 * chat adapter implements to post and update cards (CardPublisher), and the core service that
 * posts a new recommendation to every subscribed channel (job `cards.post`), turns a button press
 * into the one ticket of (recommendation, provider), and brings the ticket's state back into every
 * copy of the card.
 */
import { and, eq } from 'drizzle-orm';
import { z } from 'zod/v4';
import { isAppError } from '../errors.js';
import type { IntegrationService } from '../integrations/service.js';
import { defineJob, type JobQueue } from '../jobs/queue.js';
import type { Logger } from '../logger.js';
import type { Database } from '../storage/db.js';
import type { Repositories } from '../storage/repositories/index.js';
import type { RecommendationRow, TicketRow } from '../storage/repositories/recommendations.js';
import { cards } from '../storage/schema.js';
import { TICKET_PROVIDER_KINDS, type TicketProviderKind } from '../tickets/port.js';
import type { TicketService } from '../tickets/service.js';
import type { StoredRecommendation } from './ingest.js';
import { filtersOf, matches } from './subscriptions.js';

export const postCardsJob = defineJob({
  name: 'cards.post',
  schema: z.object({ tenantId: z.uuid(), recommendationId: z.uuid() }),
  retryLimit: 5,
  retryDelaySeconds: 5,
});

/** A resend changed the recommendation: every posted copy of its card shows the new content. */
export const refreshCardsJob = defineJob({
  name: 'cards.refresh',
  schema: postCardsJob.schema,
  retryLimit: 3,
});

export type CardTicketState =
  | { readonly kind: 'none' }
  | { readonly kind: 'creating'; readonly provider: TicketProviderKind }
  | {
      readonly kind: 'created';
      readonly provider: TicketProviderKind;
      readonly key: string;
      readonly url: string | null;
      readonly status: string;
      readonly createdBy: string | null;
    }
  | { readonly kind: 'failed'; readonly provider: TicketProviderKind; readonly reason: string };

export interface OfferedProvider {
  readonly kind: TicketProviderKind;
  readonly displayName: string;
}

/** Everything a card shows, already formatted; adapters escape and cut it for their platform. */
export interface RecommendationCardView {
  /** Internal id of the recommendation (button values carry it). */
  readonly recommendationId: string;
  readonly title: string;
  readonly resource?: string;
  readonly account?: string;
  readonly cloud?: string;
  readonly category?: string;
  /** Monthly savings with its currency, e.g. "$1,234.50"; undefined when not stated. */
  readonly savings?: string;
  readonly severity?: string;
  readonly link?: string;
  readonly ticket: CardTicketState;
  /** The tenant's Active ticket providers: one Create ticket button each. */
  readonly offeredProviders: readonly OfferedProvider[];
  readonly dismissed: boolean;
}

/**
 * Thrown by a CardPublisher when a card can never be delivered to a channel, however often it is
 * retried (the channel is gone or archived, the bot was removed, the token was revoked). `reason`
 * is the platform's error code (Slack: not_in_channel), recorded on the card row. Any other error
 * counts as transient: the posting job throws and is retried.
 */
export class CardDeliveryError extends Error {
  readonly reason: string;

  constructor(reason: string, options?: ErrorOptions) {
    super(`The card cannot be delivered: ${reason}.`, options);
    this.name = 'CardDeliveryError';
    this.reason = reason;
  }
}

/** A chat platform's way of showing cards (Slack now, Teams later). */
export interface CardPublisher {
  readonly platform: string;
  /** Posts a card in a channel; returns the message reference (Slack: ts). */
  post(tenantId: string, channelId: string, view: RecommendationCardView): Promise<string>;
  update(
    tenantId: string,
    channelId: string,
    messageRef: string,
    view: RecommendationCardView,
  ): Promise<void>;
}

export function formatSavings(amount: number, currency: string): string {
  try {
    return new Intl.NumberFormat('en-US', { style: 'currency', currency }).format(amount);
  } catch {
    return `${amount.toFixed(2)} ${currency}`;
  }
}

export function ticketStateOf(ticket: TicketRow | undefined): CardTicketState {
  if (!ticket) return { kind: 'none' };
  const provider = ticket.provider as TicketProviderKind;
  if (ticket.key)
    return {
      kind: 'created',
      provider,
      key: ticket.key,
      url: ticket.url,
      status: ticket.status,
      createdBy: ticket.createdBy,
    };
  if (ticket.status === 'failed')
    return { kind: 'failed', provider, reason: ticket.lastError ?? 'The provider refused the ticket.' };
  return { kind: 'creating', provider };
}

export function cardViewOf(
  row: RecommendationRow,
  ticketRows: readonly TicketRow[],
  offeredProviders: readonly OfferedProvider[],
  dismissed = false,
): RecommendationCardView {
  const p = row.payload as Partial<StoredRecommendation>;
  const latest = [...ticketRows].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())[0];
  return {
    recommendationId: row.id,
    title: row.title,
    ...(p.resource ? { resource: p.resource } : {}),
    ...(p.account ? { account: p.account } : {}),
    ...(p.cloud ? { cloud: p.cloud } : {}),
    ...(p.category ? { category: p.category } : {}),
    ...(typeof p.monthlySavings === 'number'
      ? { savings: formatSavings(p.monthlySavings, p.currency ?? 'USD') }
      : {}),
    ...((row.severity ?? p.severity) ? { severity: String(row.severity ?? p.severity) } : {}),
    ...(p.link ? { link: p.link } : {}),
    ticket: ticketStateOf(latest),
    offeredProviders,
    dismissed,
  };
}

/** What a button press asks for, platform-neutral. */
export type CardAction =
  | { readonly kind: 'create'; readonly recommendationId: string; readonly provider: TicketProviderKind }
  | { readonly kind: 'retry'; readonly recommendationId: string; readonly provider: TicketProviderKind }
  | { readonly kind: 'dismiss'; readonly recommendationId: string };

export function isProviderKind(value: string): value is TicketProviderKind {
  return (TICKET_PROVIDER_KINDS as readonly string[]).includes(value);
}

export interface CardServiceOptions {
  readonly db: Database;
  readonly repositories: Repositories;
  readonly integrations: IntegrationService;
  readonly tickets: TicketService;
  readonly queue: JobQueue;
  readonly logger: Logger;
}

export class CardService {
  readonly #o: CardServiceOptions;
  readonly #log: Logger;
  readonly #publishers = new Map<string, CardPublisher>();
  /** One refresh at a time per recommendation, so a stale state never overwrites a newer one. */
  readonly #locks = new Map<string, Promise<void>>();

  constructor(options: CardServiceOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'cards' });
    options.tickets.onTicketChange((ticket) => this.refresh(ticket.tenantId, ticket.recommendationId));
  }

  registerPublisher(publisher: CardPublisher): void {
    this.#publishers.set(publisher.platform, publisher);
  }

  async #view(tenantId: string, recommendationId: string, dismissed = false) {
    const repo = this.#o.repositories.recommendations;
    const row = await repo.findById(tenantId, recommendationId);
    if (!row) return undefined;
    const [ticketRows, board] = await Promise.all([
      repo.tickets(tenantId, recommendationId),
      this.#o.integrations.statusBoard(tenantId),
    ]);
    const offered = board
      .filter((p) => p.status === 'active')
      .map((p) => ({ kind: p.kind, displayName: p.displayName }));
    return cardViewOf(row, ticketRows, offered, dismissed);
  }

  /** The job: a card in every subscribed channel whose filters the recommendation passes. */
  async post(tenantId: string, recommendationId: string): Promise<void> {
    const { repositories } = this.#o;
    const row = await repositories.recommendations.findById(tenantId, recommendationId);
    if (!row) return;
    const view = await this.#view(tenantId, recommendationId);
    if (!view) return;
    const routes = await repositories.routes.list(tenantId);
    const channels = new Set<string>();
    let failure: unknown;
    for (const route of routes) {
      if (!route.enabled || !route.platform || !route.channelId) continue;
      const publisher = this.#publishers.get(route.platform);
      if (!publisher) continue;
      const key = `${route.platform}|${route.channelId}`;
      if (channels.has(key) || !matches(filtersOf(route.filters), row.payload)) continue;
      channels.add(key);
      const { card } = await repositories.recommendations.ensureCard(
        tenantId,
        recommendationId,
        route.platform,
        route.channelId,
      );
      // Posted by an earlier attempt, or failed for good (the email fallback picks those up).
      if (card.messageRef || card.state === 'failed') continue;
      try {
        const ref = await publisher.post(tenantId, route.channelId, view);
        await repositories.recommendations.markCardPosted(tenantId, card.id, ref);
      } catch (error) {
        if (error instanceof CardDeliveryError) {
          await this.#deliveryFailed(tenantId, card.id, route.platform, route.channelId, error);
          continue;
        }
        this.#log.warn({ err: error, tenantId, channel: route.channelId }, 'card could not be posted');
        failure = error;
      }
    }
    // The other channels are posted (or failed for good); a retry posts only the missing ones.
    if (failure) throw failure;
  }

  /** A permanent failure: recorded on the card row and in the audit log; never retried. */
  async #deliveryFailed(
    tenantId: string,
    cardId: string,
    platform: string,
    channelId: string,
    error: CardDeliveryError,
  ): Promise<void> {
    const { recommendations, audit } = this.#o.repositories;
    this.#log.warn(
      { tenantId, channel: channelId, reason: error.reason },
      'card cannot be delivered to the channel; marked failed',
    );
    await recommendations.markCardFailed(tenantId, cardId, error.reason);
    await audit.record(tenantId, {
      actor: 'system',
      action: 'card.delivery_failed',
      target: `${platform}:${channelId}`,
      after: { cardId, reason: error.reason },
    });
  }

  /** Shows the current state in every posted copy of the card. */
  async refresh(tenantId: string, recommendationId: string): Promise<void> {
    const previous = this.#locks.get(recommendationId) ?? Promise.resolve();
    const next = previous.then(() => this.#refreshNow(tenantId, recommendationId));
    const settled = next.catch(() => {});
    this.#locks.set(recommendationId, settled);
    void settled.then(() => {
      if (this.#locks.get(recommendationId) === settled) this.#locks.delete(recommendationId);
    });
    return next;
  }

  async #refreshNow(tenantId: string, recommendationId: string): Promise<void> {
    const rows = await this.#o.repositories.recommendations.cards(tenantId, recommendationId);
    const view = await this.#view(tenantId, recommendationId);
    if (!view) return;
    for (const card of rows) {
      const publisher = this.#publishers.get(card.platform);
      if (!publisher || !card.messageRef) continue;
      try {
        await publisher.update(tenantId, card.channelId, card.messageRef, {
          ...view,
          dismissed: card.state === 'dismissed',
        });
      } catch (error) {
        this.#log.warn({ err: error, tenantId, channel: card.channelId }, 'card could not be updated');
      }
    }
  }

  /**
   * A button press on a card in `channelId`. Create asks the TicketService for the one ticket of
   * (recommendation, provider) (a second press, or a press on another copy, gets the same one);
   * every copy then shows its state. Returns a message for the presser when the press failed.
   */
  async act(
    tenantId: string,
    platform: string,
    channelId: string,
    actor: string,
    action: CardAction,
  ): Promise<string | undefined> {
    let problem: string | undefined;
    try {
      if (action.kind === 'create') {
        await this.#o.tickets.createForRecommendation(
          tenantId,
          action.recommendationId,
          action.provider,
          actor,
        );
      } else if (action.kind === 'retry') {
        const ticket = (
          await this.#o.repositories.recommendations.tickets(tenantId, action.recommendationId)
        ).find((t) => t.provider === action.provider);
        if (ticket?.status === 'failed') await this.#o.tickets.retry(tenantId, ticket.id);
      } else {
        await this.#o.db
          .update(cards)
          .set({ state: 'dismissed', updatedAt: new Date() })
          .where(
            and(
              eq(cards.tenantId, tenantId),
              eq(cards.recommendationId, action.recommendationId),
              eq(cards.platform, platform),
              eq(cards.channelId, channelId),
            ),
          );
      }
    } catch (error) {
      problem = isAppError(error) ? error.message : 'Something went wrong on our side. Try again.';
      this.#log.warn({ err: error, tenantId, action: action.kind }, 'card action failed');
    }
    await this.refresh(tenantId, action.recommendationId);
    return problem;
  }

  async work(concurrency = 2): Promise<void> {
    await this.#o.queue.work(
      postCardsJob,
      async (data) => {
        await this.post(data.tenantId, data.recommendationId);
      },
      { concurrency },
    );
    await this.#o.queue.work(refreshCardsJob, async (data) => {
      await this.refresh(data.tenantId, data.recommendationId);
    });
  }
}
