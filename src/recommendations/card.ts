/**
 * Recommendation cards, platform-neutral: what a card shows (RecommendationCardView), the port a
 * chat adapter implements to post and update cards (CardPublisher), and the core service that
 * posts a new recommendation to every subscribed channel (job `cards.post`), turns a button press
 * into the one ticket of (recommendation, provider), and brings the ticket's state back into every
 * copy of the card.
 */

import { z } from 'zod/v4';
import { isAppError, isDatabaseUnavailable } from '../errors.js';
import type { IntegrationService } from '../integrations/service.js';
import { defineJob, type JobQueue } from '../jobs/queue.js';
import type { Logger } from '../logger.js';
import {
  cardFallbackJob,
  type FallbackChannel,
  type FallbackOutcome,
  NO_FALLBACK_NOTE,
} from '../notify/fallback.js';
import type { Database } from '../storage/db.js';
import { and, eq } from '../storage/orm.js';
import type { Repositories } from '../storage/repositories/index.js';
import type { CardRow, RecommendationRow, TicketRow } from '../storage/repositories/recommendations.js';
import type { RouteRow } from '../storage/repositories/routes.js';
import { cards } from '../storage/schema.js';
import { type Routing, TICKET_PROVIDER_KINDS, type TicketProviderKind } from '../tickets/port.js';
import type { TicketService } from '../tickets/service.js';
import type { StoredRecommendation } from './ingest.js';
import { CLOUD_LABELS, filtersOf, matches, type SubscriptionFilters } from './subscriptions.js';

/** Recommendations per card-posting job (an ingest request of 500 queues 10 jobs). */
export const POST_BATCH = 50;
/**
 * Cards of one posting job on their way at once: all of them. Each waits for its channel's turn
 * (Slack: one a second), so a fan-out to N channels needs N posts waiting at once to go at the
 * limits' pace (8 jobs of 50 per process keep 400 waiting).
 */
const POST_LANES = POST_BATCH;

const oneRecommendation = z.object({ tenantId: z.uuid(), recommendationId: z.uuid() });

export const postCardsJob = defineJob({
  name: 'cards.post',
  outbound: true,
  // One recommendation (as queued by earlier versions) or a batch.
  schema: z.union([
    oneRecommendation,
    z.object({ tenantId: z.uuid(), recommendationIds: z.array(z.uuid()).min(1).max(100) }),
  ]),
  retryLimit: 5,
  retryDelaySeconds: 5,
});

/** A resend changed the recommendation: every posted copy of its card shows the new content. */
export const refreshCardsJob = defineJob({
  name: 'cards.refresh',
  outbound: true,
  schema: oneRecommendation,
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
      /** Normalized: open | in_progress | done | closed. */
      readonly status: string;
      /** The provider's own status name ("In Progress", "Done"), when it was read. */
      readonly providerStatus: string | null;
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
  /**
   * Resolves when the platform's rate limit allows `count` updates (counted now, sent next).
   * Card refreshes wait here before they read what to show, so a refresh that queued behind a
   * burst shows the state its turn came in, not the one it queued with.
   */
  reserveUpdates?(tenantId: string, count: number): Promise<void>;
}

/** Ticket statuses a card shows as resolved. */
const RESOLVED_STATUSES: ReadonlySet<string> = new Set(['done', 'closed']);
const STATUS_LABELS: Readonly<Record<string, string>> = {
  open: 'Open',
  in_progress: 'In progress',
  done: 'Done',
  closed: 'Closed',
};

type CreatedTicket = Extract<CardTicketState, { kind: 'created' }>;

/** Done or closed: the card shows the recommendation as resolved. */
export function isResolved(ticket: Pick<CreatedTicket, 'status'>): boolean {
  return RESOLVED_STATUSES.has(ticket.status);
}

/** What a card calls the ticket's status: the provider's own word ("In Review") when known, ours otherwise. */
export function ticketStatusLabel(ticket: Pick<CreatedTicket, 'status' | 'providerStatus'>): string {
  return ticket.providerStatus?.trim() || STATUS_LABELS[ticket.status] || ticket.status;
}

/** One formatter per currency: building an Intl.NumberFormat costs more than a card's other formatting. */
const savingsFormats = new Map<string, Intl.NumberFormat | null>();

export function formatSavings(amount: number, currency: string): string {
  let format = savingsFormats.get(currency);
  if (format === undefined) {
    try {
      format = new Intl.NumberFormat('en-US', { style: 'currency', currency });
    } catch {
      format = null;
    }
    // Currencies are ISO codes (a few hundred); a flood of invalid ones is not kept.
    if (savingsFormats.size < 1_000) savingsFormats.set(currency, format);
  }
  return format ? format.format(amount) : `${amount.toFixed(2)} ${currency}`;
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
      providerStatus: ticket.providerStatus,
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
    ...(p.cloud ? { cloud: CLOUD_LABELS[p.cloud as keyof typeof CLOUD_LABELS] ?? p.cloud } : {}),
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

/** Emails recommendations beside the chat cards (src/notify/email.ts). */
export interface RouteMailer {
  notifyRoute(tenantId: string, route: RouteRow, view: RecommendationCardView): Promise<number>;
  /** A tenant without a chat platform: the recommendation goes to its fallback recipients. */
  notifyTenant(tenantId: string, view: RecommendationCardView): Promise<number>;
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
  readonly #fallbacks: FallbackChannel[] = [];
  #routeMailer: RouteMailer | undefined;
  /**
   * Per recommendation: the refresh running in this process and at most one waiting behind it.
   * Requests that arrive while one waits join it (it reads the state when it starts, so it shows
   * theirs too): a burst of changes costs two rounds of updates, not one per change.
   */
  readonly #refreshes = new Map<string, { running: Promise<void>; waiting?: Promise<void> }>();
  /**
   * What this process last sent to each posted message (its view, as JSON): a refresh that would
   * send the same again skips it (Slack allows about 50 card updates a minute per workspace). A
   * stale update from another replica is corrected by that replica's own second read.
   */
  readonly #sent = new Map<string, string>();
  /** Tenants' platforms (they never change), read at most once a minute per tenant. */
  readonly #platforms = new Map<string, { platform: string; until: number }>();

  constructor(options: CardServiceOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'cards' });
    // A job, not inline: the ticket job is done once the ticket is, and the card updates follow
    // at the platform's pace (Slack allows about 50 chat.update calls a minute per workspace),
    // with retries of their own.
    options.tickets.onTicketChange(async (ticket) => {
      await options.queue.send(refreshCardsJob, {
        tenantId: ticket.tenantId,
        recommendationId: ticket.recommendationId,
      });
    });
  }

  registerPublisher(publisher: CardPublisher): void {
    this.#publishers.set(publisher.platform, publisher);
  }

  /** Emails new recommendations to the recipients a subscription names (and email-only tenants). */
  registerRouteMailer(mailer: RouteMailer): void {
    this.#routeMailer = mailer;
  }

  /** A way to reach people when a card cannot be delivered in chat (email). Tried in order. */
  registerFallback(channel: FallbackChannel): void {
    this.#fallbacks.push(channel);
  }

  async #platformOf(tenantId: string): Promise<string | undefined> {
    const now = Date.now();
    const cached = this.#platforms.get(tenantId);
    if (cached && cached.until > now) return cached.platform;
    const tenant = await this.#o.repositories.tenants.get(tenantId);
    if (!tenant) return undefined;
    if (this.#platforms.size >= 1_000) this.#platforms.clear();
    this.#platforms.set(tenantId, { platform: tenant.platform, until: now + 60_000 });
    return tenant.platform;
  }

  /** The card as it is now; `loaded` is the recommendation's row when the caller already read it. */
  async #view(tenantId: string, recommendationId: string, dismissed = false, loaded?: RecommendationRow) {
    const repo = this.#o.repositories.recommendations;
    const row = loaded ?? (await repo.findById(tenantId, recommendationId));
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

  /**
   * The job: a card in every subscribed channel whose filters the recommendation passes, for a batch of one tenant's new recommendations (an ingest request queues them in
   * batches): the tenant's subscriptions and providers are read once for the batch, and the
   * recommendations, cards and tickets with one query each, so a fan-out of thousands of cards
   * costs one statement per card posted. Posts go out concurrently (each channel at Slack's
   * pace); a failure is rethrown once every other card was tried, and the retry posts only
   * the cards that are missing.
   */
  async postMany(tenantId: string, recommendationIds: readonly string[]): Promise<void> {
    const repo = this.#o.repositories.recommendations;
    const [rows, routes, board, existing, ticketRows] = await Promise.all([
      repo.findManyByIds(tenantId, recommendationIds),
      this.#o.repositories.routes.list(tenantId),
      this.#o.integrations.statusBoard(tenantId),
      repo.cardsOf(tenantId, recommendationIds),
      repo.ticketsOf(tenantId, recommendationIds),
    ]);
    const offered = board
      .filter((p) => p.status === 'active')
      .map((p) => ({ kind: p.kind, displayName: p.displayName }));
    const byId = new Map(rows.map((row) => [row.id, row]));
    // Parsed once per batch, not once per route and recommendation.
    const filters = new Map(routes.map((route) => [route.id, filtersOf(route.filters)]));
    const ordered = recommendationIds.flatMap((id) => byId.get(id) ?? []);
    let failure: unknown;
    let next = 0;
    const lane = async () => {
      for (let i = next++; i < ordered.length; i = next++) {
        const row = ordered[i]!;
        try {
          await this.#postOne(
            tenantId,
            row,
            cardViewOf(
              row,
              ticketRows.filter((t) => t.recommendationId === row.id),
              offered,
              false,
            ),
            routes,
            filters,
            existing.filter((c) => c.recommendationId === row.id),
          );
        } catch (error) {
          failure ??= error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(POST_LANES, ordered.length) }, lane));
    if (failure) throw failure;
  }

  async #postOne(
    tenantId: string,
    row: RecommendationRow,
    view: RecommendationCardView,
    routes: readonly RouteRow[],
    filters: ReadonlyMap<string, SubscriptionFilters>,
    existing: readonly CardRow[],
  ): Promise<void> {
    const repositories = this.#o.repositories;
    const channels = new Set<string>();
    let failure: unknown;
    // Email recipients of matching subscriptions, once per subscription and recommendation: on
    // the first attempt, before any card row exists (a retried job does not email again: an
    // attempt that fails leaves the rows of the cards it could not post).
    if (this.#routeMailer && existing.length === 0) {
      for (const route of routes)
        if (
          route.enabled &&
          route.emailRecipients.length &&
          matches(filters.get(route.id) ?? {}, row.payload)
        )
          await this.#routeMailer.notifyRoute(tenantId, route, view);
      if ((await this.#platformOf(tenantId)) === 'email')
        await this.#routeMailer.notifyTenant(tenantId, view);
    }
    const earlier = new Map(existing.map((card) => [`${card.platform}|${card.channelId}`, card]));
    for (const route of routes) {
      if (!route.enabled || !route.platform || !route.channelId) continue;
      const publisher = this.#publishers.get(route.platform);
      if (!publisher) continue;
      const key = `${route.platform}|${route.channelId}`;
      if (channels.has(key) || !matches(filters.get(route.id) ?? {}, row.payload)) continue;
      channels.add(key);
      const card = earlier.get(key);
      // Posted by an earlier attempt, or failed for good (the email fallback picks those up).
      if (card?.messageRef || card?.state === 'failed') continue;
      const { platform, channelId } = route;
      try {
        const ref = await publisher.post(tenantId, channelId, forRoute(view, route));
        // The message exists in the channel now: losing its ref to a database that is away for a
        // moment would post it again on the job's retry (chat.postMessage has no idempotency key),
        // so the write is retried in place until the database is back (up to a minute).
        await untilDatabaseAnswers(() =>
          repositories.recommendations.recordCardPosted(tenantId, row.id, platform, channelId, ref),
        );
      } catch (error) {
        const pending =
          card ?? (await repositories.recommendations.ensureCard(tenantId, row.id, platform, channelId)).card;
        if (error instanceof CardDeliveryError) {
          await this.#deliveryFailed(tenantId, pending.id, platform, channelId, error);
          continue;
        }
        this.#log.warn({ err: error, tenantId, channel: channelId }, 'card could not be posted');
        failure = error;
      }
    }
    // The other channels are posted (or failed for good); a retry posts only the missing ones.
    if (failure) throw failure;
  }

  /**
   * A permanent failure: recorded on the card row and in the audit log, never retried in chat,
   * and handed to the fallback (the job is queued in the same transaction as the mark).
   */
  async #deliveryFailed(
    tenantId: string,
    cardId: string,
    platform: string,
    channelId: string,
    error: CardDeliveryError,
  ): Promise<void> {
    const { audit } = this.#o.repositories;
    this.#log.warn(
      { tenantId, channel: channelId, reason: error.reason },
      'card cannot be delivered to the channel; marked failed and handed to the fallback',
    );
    await this.#o.db.transaction(async (tx) => {
      await tx
        .update(cards)
        .set({
          state: 'failed',
          lastError: error.reason,
          fallbackState: 'queued',
          fallbackNote: null,
          updatedAt: new Date(),
        })
        .where(and(eq(cards.tenantId, tenantId), eq(cards.id, cardId)));
      await this.#o.queue.send(cardFallbackJob, { tenantId, cardId }, { tx: tx as unknown as Database });
    });
    await audit.record(tenantId, {
      actor: 'system',
      action: 'card.delivery_failed',
      target: `${platform}:${channelId}`,
      after: { cardId, reason: error.reason },
    });
  }

  /**
   * The card as a copy in `channelId` shows it now (its route's provider, dismissed there or
   * not): what a platform answers a button press or a refresh with.
   */
  async viewFor(
    tenantId: string,
    recommendationId: string,
    platform: string,
    channelId: string,
  ): Promise<RecommendationCardView | undefined> {
    const view = await this.#view(tenantId, recommendationId);
    if (!view) return undefined;
    const [routes, copies] = await Promise.all([
      this.#o.repositories.routes.list(tenantId, { platform, channelId }),
      this.#o.repositories.recommendations.cards(tenantId, recommendationId),
    ]);
    const copy = copies.find((c) => c.platform === platform && c.channelId === channelId);
    return {
      ...forRoute(view, routeOf(routes, platform, channelId)),
      dismissed: copy?.state === 'dismissed',
    };
  }

  /**
   * Shows the current state in every posted copy of the card. Converges when several processes
   * refresh one card at once (a press on one replica, the ticket job on another), whichever of
   * their updates lands last: after updating, the state is read again, and a change since the
   * read that was shown is shown too (a few rounds at most).
   */
  refresh(tenantId: string, recommendationId: string): Promise<void> {
    const entry = this.#refreshes.get(recommendationId);
    if (entry?.waiting) return entry.waiting;
    const run = (): Promise<void> => this.#refreshNow(tenantId, recommendationId);
    const settle = (promise: Promise<void>) => {
      void promise
        .catch(() => {})
        .then(() => {
          const current = this.#refreshes.get(recommendationId);
          if (!current) return;
          if (current.running === promise) {
            if (current.waiting) this.#refreshes.set(recommendationId, { running: current.waiting });
            else this.#refreshes.delete(recommendationId);
          }
        });
    };
    if (entry) {
      const waiting = entry.running.catch(() => {}).then(run);
      entry.waiting = waiting;
      settle(waiting);
      return waiting;
    }
    const running = run();
    this.#refreshes.set(recommendationId, { running });
    settle(running);
    return running;
  }

  async #refreshNow(tenantId: string, recommendationId: string, rounds = 3): Promise<void> {
    const staleOf = (copies: readonly PostedCopy[]) =>
      copies.filter((copy) => this.#sent.get(sentKey(copy.card)) !== JSON.stringify(copy.view));
    for (let round = 0; round < rounds; round++) {
      // Round 0: anything to show? Later rounds: did it change while the last round was on its way?
      const stale = staleOf(await this.#copies(tenantId, recommendationId));
      if (stale.length === 0) return;
      await this.#reserveUpdates(tenantId, stale);
      for (const { card, view } of staleOf(await this.#copies(tenantId, recommendationId))) {
        const key = sentKey(card);
        try {
          await this.#publishers.get(card.platform)!.update(tenantId, card.channelId, card.messageRef, view);
          if (this.#sent.size >= 10_000) this.#sent.clear();
          this.#sent.set(key, JSON.stringify(view));
        } catch (error) {
          this.#sent.delete(key);
          this.#log.warn({ err: error, tenantId, channel: card.channelId }, 'card could not be updated');
        }
      }
    }
    if (staleOf(await this.#copies(tenantId, recommendationId)).length > 0)
      this.#log.warn(
        { tenantId, recommendationId },
        'card may not show its latest state: it kept changing, or its updates failed',
      );
  }

  /** Waits for the platforms' turns for one update of each of `copies`. */
  async #reserveUpdates(tenantId: string, copies: readonly { card: { platform: string } }[]): Promise<void> {
    const perPlatform = new Map<string, number>();
    for (const { card } of copies) perPlatform.set(card.platform, (perPlatform.get(card.platform) ?? 0) + 1);
    await Promise.all(
      [...perPlatform].map(([platform, count]) =>
        this.#publishers.get(platform)?.reserveUpdates?.(tenantId, count),
      ),
    );
  }

  /** Each posted copy of the card (on a registered platform), with what it shows now. */
  async #copies(tenantId: string, recommendationId: string): Promise<PostedCopy[]> {
    const [rows, view] = await Promise.all([
      this.#o.repositories.recommendations.cards(tenantId, recommendationId),
      this.#view(tenantId, recommendationId),
    ]);
    if (!view) return [];
    const posted = rows.filter((c) => c.messageRef && this.#publishers.has(c.platform));
    const routes = posted.length ? await this.#o.repositories.routes.list(tenantId) : [];
    return posted.map((card) => ({
      card: { platform: card.platform, channelId: card.channelId, messageRef: card.messageRef! },
      view: {
        ...forRoute(view, routeOf(routes, card.platform, card.channelId)),
        dismissed: card.state === 'dismissed',
      },
    }));
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
    /**
     * Off: the other copies are updated in the background (Teams answers the press with the
     * updated card itself, within its invoke deadline).
     */
    options: {
      readonly awaitRefresh?: boolean;
      /**
       * Called once the press is recorded (the ticket claimed and its job queued, committed),
       * before the cards are refreshed: Slack's acknowledgement goes here, so a press that was
       * acknowledged is never lost with a replica that dies right after.
       */
      readonly onRecorded?: () => Promise<void>;
    } = {},
  ): Promise<string | undefined> {
    let problem: string | undefined;
    try {
      if (action.kind === 'create') {
        const route = routeOf(
          await this.#o.repositories.routes.list(tenantId, { platform, channelId }),
          platform,
          channelId,
          action.provider,
        );
        await this.#o.tickets.createForRecommendation(
          tenantId,
          action.recommendationId,
          action.provider,
          actor,
          route ? routingOf(route) : {},
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
    await options.onRecorded?.();
    const refreshed = this.refresh(tenantId, action.recommendationId);
    if (options.awaitRefresh === false)
      refreshed.catch((error: unknown) =>
        this.#log.warn({ err: error, tenantId }, 'cards could not be refreshed after a press'),
      );
    else await refreshed;
    return problem;
  }

  /**
   * The fallback job: offers the undeliverable card to each fallback channel until one delivers
   * it. None set up: the card shows `unavailable` with what to configure, for admins to see.
   */
  async runFallback(tenantId: string, cardId: string): Promise<void> {
    const [card] = await this.#o.db
      .select()
      .from(cards)
      .where(and(eq(cards.tenantId, tenantId), eq(cards.id, cardId)));
    if (card?.state !== 'failed' || card.fallbackState === 'delivered') return;
    const view = await this.#view(tenantId, card.recommendationId);
    if (!view) return;
    const notes: string[] = [];
    let delivered: FallbackOutcome | undefined;
    for (const channel of this.#fallbacks) {
      const outcome = await channel.deliver(tenantId, card, view);
      if (outcome.outcome === 'delivered') {
        delivered = outcome;
        break;
      }
      notes.push(outcome.note);
    }
    const state = delivered ? 'delivered' : 'unavailable';
    const note = delivered ? delivered.note : notes.length ? notes.join(' ') : NO_FALLBACK_NOTE;
    await this.#o.db
      .update(cards)
      .set({ fallbackState: state, fallbackNote: note.slice(0, 1000), updatedAt: new Date() })
      .where(and(eq(cards.tenantId, tenantId), eq(cards.id, cardId)));
    await this.#o.repositories.audit.record(tenantId, {
      actor: 'system',
      action: delivered ? 'card.fallback_delivered' : 'card.fallback_unavailable',
      target: `${card.platform}:${card.channelId}`,
      after: { cardId, note },
    });
    if (!delivered)
      this.#log.warn({ tenantId, cardId, note }, 'undeliverable card: no fallback channel could take it');
  }

  /** The fallback job ran out of retries: the card shows the fallback as failed. */
  async markFallbackGaveUp(tenantId: string, cardId: string): Promise<void> {
    await this.#o.db
      .update(cards)
      .set({ fallbackState: 'failed', updatedAt: new Date() })
      .where(and(eq(cards.tenantId, tenantId), eq(cards.id, cardId), eq(cards.fallbackState, 'queued')));
  }

  /**
   * `concurrency` card-post jobs at a time per process: a post waits for its channel's turn under
   * Slack's limit of about one a second per channel (the Slack adapter's throttle), and jobs for
   * other channels go on meanwhile.
   */
  async work(concurrency = 8): Promise<void> {
    await this.#o.queue.work(cardFallbackJob, async (data) => {
      await this.runFallback(data.tenantId, data.cardId);
    });
    await this.#o.queue.work(
      postCardsJob,
      async (data) => {
        await this.postMany(
          data.tenantId,
          'recommendationIds' in data ? data.recommendationIds : [data.recommendationId],
        );
      },
      { concurrency },
    );
    await this.#o.queue.work(refreshCardsJob, async (data) => {
      await this.refresh(data.tenantId, data.recommendationId);
    });
  }
}

/** A posted copy of a card and what it shows now. */
interface PostedCopy {
  readonly card: { readonly platform: string; readonly channelId: string; readonly messageRef: string };
  readonly view: RecommendationCardView;
}

function sentKey(card: PostedCopy['card']): string {
  return `${card.platform}|${card.channelId}|${card.messageRef}`;
}

/** The enabled subscription of a channel (naming `provider`, when given). */
function routeOf(
  routes: readonly RouteRow[],
  platform: string,
  channelId: string,
  provider?: TicketProviderKind,
): RouteRow | undefined {
  const ofChannel = routes.filter((r) => r.enabled && r.platform === platform && r.channelId === channelId);
  return provider ? ofChannel.find((r) => r.provider === provider) : ofChannel.find((r) => r.provider);
}

/**
 * A channel whose subscription names a ticket provider offers that one (when it is Active);
 * other channels offer every Active provider.
 */
function forRoute(view: RecommendationCardView, route: RouteRow | undefined): RecommendationCardView {
  const named = route?.provider;
  if (!named) return view;
  const offered = view.offeredProviders.filter((p) => p.kind === named);
  return offered.length ? { ...view, offeredProviders: offered } : view;
}

/** The ticket routing a subscription chose (project, type), over the provider's own. */
function routingOf(route: RouteRow): Routing {
  const t = route.target as { project?: unknown; ticketType?: unknown };
  return {
    ...(typeof t.project === 'string' && t.project ? { project: t.project } : {}),
    ...(typeof t.ticketType === 'string' && t.ticketType ? { ticketType: t.ticketType } : {}),
  };
}

/** Runs `write`, retrying while the database is unreachable (restart, failover), up to `limitMs`. */
async function untilDatabaseAnswers<T>(write: () => Promise<T>, limitMs = 60_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (let delay = 250; ; delay = Math.min(delay * 2, 5_000)) {
    try {
      return await write();
    } catch (error) {
      if (!isDatabaseUnavailable(error) || Date.now() + delay > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
