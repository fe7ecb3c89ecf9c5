/**
 * Email delivery: the email fallback channel (a card chat could not deliver), recommendations for
 * the email recipients a subscription names, and for tenants without a chat platform. Every
 * message goes through the `notify.send-email` job: a pooled transport per tenant, a per-tenant
 * rate, and the retry policy — 421 / 450 / 451 / 452 and connection errors are retried with
 * backoff; permanent 5xx refusals are not, and are recorded where admins see them (the SMTP line
 * of the status board, the audit log).
 *
 * Each recipient gets their own message: its one-click Create ticket links and its
 * List-Unsubscribe link are signed for that recipient.
 */

import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { z } from 'zod/v4';
import { isAppError } from '../errors.js';
import { defineJob, type JobQueue } from '../jobs/queue.js';
import type { Logger } from '../logger.js';
import { isRetryable } from '../net/outbound.js';
import type { RecommendationCardView, RouteMailer } from '../recommendations/card.js';
import { filtersOf, matches } from '../recommendations/subscriptions.js';
import type { Database } from '../storage/db.js';
import { and, eq, inArray, sql } from '../storage/orm.js';
import type { Repositories } from '../storage/repositories/index.js';
import type { CardRow, TicketRow } from '../storage/repositories/recommendations.js';
import type { RouteRow } from '../storage/repositories/routes.js';
import { digestItems, routes } from '../storage/schema.js';
import type { TicketChange } from '../tickets/service.js';
import {
  digestEmail,
  listUnsubscribeHeaders,
  recommendationEmail,
  ticketCreatedEmail,
  ticketStatusEmail,
} from './email-content.js';
import type { FallbackChannel, FallbackOutcome } from './fallback.js';
import type { Mailer } from './mailer.js';
import { signAction, signUnsubscribe } from './signed-links.js';
import type { SmtpService } from './smtp.js';

export const sendEmailJob = defineJob({
  name: 'notify.send-email',
  outbound: true,
  schema: z.object({
    tenantId: z.uuid(),
    to: z.array(z.string().max(254)).min(1).max(50),
    subject: z.string().max(300),
    text: z.string().max(200_000),
    html: z.string().max(400_000),
    headers: z.record(z.string(), z.string().max(2000)).optional(),
    /** What it is for, in the audit log when it fails: fallback, subscription, test. */
    purpose: z.string().max(40),
  }),
  retryLimit: 8,
  // Greylisting (450) wants a few minutes; backoff doubles from 5 s to an hour.
  retryDelaySeconds: 5,
  retryDelayMaxSeconds: 3600,
  expireInSeconds: 300,
});

/** Every five minutes: the digests whose interval has passed (pg-boss runs each once across replicas). */
export const sendDigestsJob = defineJob({
  name: 'notify.digests',
  schema: z.object({}),
  retryLimit: 0,
  expireInSeconds: 600,
});

export const DIGESTS = ['hourly', 'daily'] as const;
export type Digest = (typeof DIGESTS)[number];
const DIGEST_MS: Record<Digest, number> = { hourly: 3600_000, daily: 24 * 3600_000 };

/** The digest interval a subscription asked for (its target), if any. */
export function digestOf(route: Pick<RouteRow, 'target'>): Digest | undefined {
  const value = (route.target as Record<string, unknown>).digest;
  return DIGESTS.find((d) => d === value);
}

export const ONE_CLICK_PATH = '/email/ticket';
export const UNSUBSCRIBE_PATH = '/email/unsubscribe';
/** One-click links work this long. */
export const ONE_CLICK_TTL_MS = 7 * 24 * 3600_000;
/** Unsubscribe from the tenant's fallback recipients (not a subscription). */
export const FALLBACK_ROUTE = 'fallback';

export interface EmailNotifierOptions {
  readonly db: Database;
  readonly repositories: Repositories;
  readonly smtp: SmtpService;
  readonly queue: JobQueue;
  readonly logger: Logger;
  /** Signing keys for email links, current first (SecretBox.derivedKeys). */
  readonly linkKeys: readonly Buffer[];
  readonly publicUrl: () => string;
  /** Messages per minute per tenant. */
  readonly perTenantPerMinute?: number;
  /** The card as email shows it (CardService.viewFor). */
  readonly viewOf?: (
    tenantId: string,
    recommendationId: string,
  ) => Promise<RecommendationCardView | undefined>;
}

export class EmailNotifier implements FallbackChannel, RouteMailer {
  readonly name = 'email';
  readonly #o: EmailNotifierOptions;
  readonly #log: Logger;
  readonly #rate: RateLimiterMemory;
  readonly #mailers = new Map<string, { mailer: Mailer; until: number }>();

  constructor(options: EmailNotifierOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'email' });
    this.#rate = new RateLimiterMemory({ points: options.perTenantPerMinute ?? 60, duration: 60 });
  }

  #url(path: string, token: string): string {
    const url = new URL(path, `${this.#o.publicUrl().replace(/\/+$/, '')}/`);
    url.searchParams.set('t', token);
    return url.href;
  }

  /** The message for one recipient, with links signed for them. */
  #message(tenantId: string, view: RecommendationCardView, recipient: string, routeId: string) {
    const key = this.#o.linkKeys[0]!;
    const expiresAt = new Date(Date.now() + ONE_CLICK_TTL_MS);
    const createTicket =
      view.ticket.kind === 'none'
        ? view.offeredProviders.map((p) => ({
            provider: p.kind,
            displayName: p.displayName,
            url: this.#url(
              ONE_CLICK_PATH,
              signAction(key, {
                tenantId,
                recommendationId: view.recommendationId,
                provider: p.kind,
                action: 'create-ticket',
                expiresAt,
              }),
            ),
          }))
        : [];
    const unsubscribe = this.#url(UNSUBSCRIBE_PATH, signUnsubscribe(key, { tenantId, routeId, recipient }));
    const content = recommendationEmail(view, {
      createTicket,
      unsubscribe,
      ...(view.link ? { open: view.link } : {}),
    });
    return {
      ...content,
      headers: {
        'List-Unsubscribe': `<${unsubscribe}>`,
        'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
        'X-CloudPi-Recommendation': view.recommendationId,
      },
    };
  }

  async #queue(
    tenantId: string,
    view: RecommendationCardView,
    recipients: readonly { to: string; routeId: string }[],
    purpose: string,
  ) {
    for (const { to, routeId } of recipients)
      await this.#o.queue.send(sendEmailJob, {
        tenantId,
        to: [to],
        purpose,
        ...this.#message(tenantId, view, to, routeId),
      });
  }

  /** The fallback: the channel's subscription recipients and the tenant's fallback recipients. */
  async deliver(tenantId: string, card: CardRow, view: RecommendationCardView): Promise<FallbackOutcome> {
    const status = await this.#o.smtp.status(tenantId);
    if (!status.configured)
      return {
        outcome: 'unavailable',
        note: 'Email (SMTP) is not set up: an admin can set it up with /cloudpi smtp.',
      };
    const routeRows = await this.#o.repositories.routes.list(tenantId, {
      platform: card.platform,
      channelId: card.channelId,
    });
    const recipients = new Map<string, string>();
    for (const route of routeRows)
      for (const to of route.emailRecipients) if (!recipients.has(to)) recipients.set(to, route.id);
    for (const to of status.recipients) if (!recipients.has(to)) recipients.set(to, FALLBACK_ROUTE);
    if (recipients.size === 0)
      return {
        outcome: 'unavailable',
        note: 'No email recipients: add fallback recipients in /cloudpi smtp, or recipients to the subscription.',
      };
    await this.#queue(
      tenantId,
      view,
      [...recipients].map(([to, routeId]) => ({ to, routeId })),
      'fallback',
    );
    return { outcome: 'delivered', note: `sent by email to ${[...recipients.keys()].join(', ')}` };
  }

  /**
   * A new recommendation for the email recipients of the subscriptions it matches: at once, or
   * gathered for the subscription's digest (hourly / daily).
   */
  async notifyRoute(tenantId: string, route: RouteRow, view: RecommendationCardView): Promise<number> {
    if (route.emailRecipients.length === 0) return 0;
    if (!(await this.#o.smtp.status(tenantId)).configured) return 0;
    if (digestOf(route)) {
      await this.#o.db
        .insert(digestItems)
        .values({ tenantId, routeId: route.id, recommendationId: view.recommendationId })
        .onConflictDoNothing();
      return 0;
    }
    await this.#queue(
      tenantId,
      view,
      route.emailRecipients.map((to) => ({ to, routeId: route.id })),
      'subscription',
    );
    return route.emailRecipients.length;
  }

  /**
   * A ticket was created, or its status changed: told to the recipients of the subscriptions the
   * recommendation matched (the people who got it by email).
   */
  async ticketChanged(ticket: TicketRow, change: TicketChange): Promise<number> {
    if (change === 'failed' || !this.#o.viewOf) return 0;
    const view = await this.#o.viewOf(ticket.tenantId, ticket.recommendationId);
    if (view?.ticket.kind !== 'created') return 0;
    if (!(await this.#o.smtp.status(ticket.tenantId)).configured) return 0;
    const rec = await this.#o.repositories.recommendations.findById(ticket.tenantId, ticket.recommendationId);
    if (!rec) return 0;
    const recipients = new Map<string, string>();
    for (const route of await this.#o.repositories.routes.list(ticket.tenantId))
      if (route.enabled && matches(filtersOf(route.filters), rec.payload))
        for (const to of route.emailRecipients) if (!recipients.has(to)) recipients.set(to, route.id);
    const key = this.#o.linkKeys[0]!;
    for (const [to, routeId] of recipients) {
      const unsubscribe = this.#url(
        UNSUBSCRIBE_PATH,
        signUnsubscribe(key, { tenantId: ticket.tenantId, routeId, recipient: to }),
      );
      const links = { unsubscribe, ...(view.link ? { open: view.link } : {}) };
      const content =
        change === 'created'
          ? ticketCreatedEmail(view, view.ticket, links)
          : ticketStatusEmail(view, view.ticket, undefined, links);
      await this.#o.queue.send(sendEmailJob, {
        tenantId: ticket.tenantId,
        to: [to],
        purpose: change === 'created' ? 'ticket-created' : 'ticket-status',
        ...content,
        headers: listUnsubscribeHeaders(unsubscribe),
      });
    }
    return recipients.size;
  }

  /** A tenant without a chat platform: every new recommendation to its fallback recipients. */
  async notifyTenant(tenantId: string, view: RecommendationCardView): Promise<number> {
    const status = await this.#o.smtp.status(tenantId);
    if (!status.configured || status.recipients.length === 0) return 0;
    await this.#queue(
      tenantId,
      view,
      status.recipients.map((to) => ({ to, routeId: FALLBACK_ROUTE })),
      'email-only',
    );
    return status.recipients.length;
  }

  /** The List-Unsubscribe action: the recipient leaves that subscription (or the fallback list). */
  async unsubscribe(tenantId: string, routeId: string, recipient: string): Promise<boolean> {
    if (routeId === FALLBACK_ROUTE) {
      const repo = this.#o.repositories.integrations;
      const row = await repo.get(tenantId, 'smtp');
      if (!row) return false;
      const settings = row.settings as Record<string, unknown>;
      const list = Array.isArray(settings.recipients) ? settings.recipients.map(String) : [];
      if (!list.includes(recipient)) return false;
      await repo.save(tenantId, 'smtp', {
        status: row.status as 'active',
        settings: { ...settings, recipients: list.filter((r) => r !== recipient) },
        lastVerifiedAt: row.lastVerifiedAt,
        lastError: row.lastError,
      });
    } else {
      const changed = await this.#o.db
        .update(routes)
        .set({
          emailRecipients: sql`array_remove(${routes.emailRecipients}, ${recipient}::text)`,
          updatedAt: new Date(),
        })
        .where(
          and(
            eq(routes.tenantId, tenantId),
            eq(routes.id, routeId),
            sql`${recipient} = any(${routes.emailRecipients})`,
          ),
        )
        .returning({ id: routes.id });
      if (changed.length === 0) return false;
    }
    await this.#o.repositories.audit.record(tenantId, {
      actor: `email:${recipient}`,
      action: 'email.unsubscribe',
      target: routeId,
    });
    return true;
  }

  /**
   * Sends the digests that are due: for each subscription with gathered recommendations whose
   * interval has passed since its last digest, one email per recipient; the items are then gone.
   */
  async sendDueDigests(now = new Date()): Promise<number> {
    const pending = await this.#o.db
      .select({ routeId: digestItems.routeId })
      .from(digestItems)
      .groupBy(digestItems.routeId);
    let sent = 0;
    for (const { routeId } of pending) {
      const [route] = await this.#o.db.select().from(routes).where(eq(routes.id, routeId));
      const interval = route ? digestOf(route) : undefined;
      if (!route || !interval) continue;
      const last = Date.parse(String((route.target as Record<string, unknown>).lastDigestAt ?? ''));
      if (Number.isFinite(last) && now.getTime() - last < DIGEST_MS[interval]) continue;
      const items = await this.#o.db.select().from(digestItems).where(eq(digestItems.routeId, routeId));
      const views: RecommendationCardView[] = [];
      for (const item of items) {
        const view = await this.#o.viewOf?.(route.tenantId, item.recommendationId);
        if (view) views.push(view);
      }
      const key = this.#o.linkKeys[0]!;
      const expiresAt = new Date(now.getTime() + ONE_CLICK_TTL_MS);
      const links = new Map(
        views.map((v) => [
          v.recommendationId,
          {
            createTicket:
              v.ticket.kind === 'none'
                ? v.offeredProviders.map((p) => ({
                    provider: p.kind,
                    displayName: p.displayName,
                    url: this.#url(
                      ONE_CLICK_PATH,
                      signAction(key, {
                        tenantId: route.tenantId,
                        recommendationId: v.recommendationId,
                        provider: p.kind,
                        action: 'create-ticket',
                        expiresAt,
                      }),
                    ),
                  }))
                : [],
            ...(v.link ? { open: v.link } : {}),
          },
        ]),
      );
      const from = Number.isFinite(last)
        ? new Date(last)
        : new Date(Math.min(...items.map((i) => i.createdAt.getTime())));
      if (views.length > 0 && (await this.#o.smtp.status(route.tenantId)).configured)
        for (const recipient of route.emailRecipients) {
          const unsubscribe = this.#url(
            UNSUBSCRIBE_PATH,
            signUnsubscribe(key, { tenantId: route.tenantId, routeId: route.id, recipient }),
          );
          const content = digestEmail(views, links, unsubscribe, { from, to: now });
          await this.#o.queue.send(sendEmailJob, {
            tenantId: route.tenantId,
            to: [recipient],
            purpose: 'digest',
            ...content,
            headers: listUnsubscribeHeaders(unsubscribe),
          });
          sent++;
        }
      await this.#o.db.delete(digestItems).where(
        and(
          eq(digestItems.routeId, routeId),
          inArray(
            digestItems.id,
            items.map((i) => i.id),
          ),
        ),
      );
      await this.#o.db
        .update(routes)
        .set({ target: { ...(route.target as Record<string, unknown>), lastDigestAt: now.toISOString() } })
        .where(eq(routes.id, routeId));
    }
    return sent;
  }

  async #mailer(tenantId: string): Promise<Mailer | undefined> {
    const cached = this.#mailers.get(tenantId);
    if (cached && cached.until > Date.now()) return cached.mailer;
    cached?.mailer.close();
    const mailer = await this.#o.smtp.mailerFor(tenantId, { pool: true });
    if (mailer) this.#mailers.set(tenantId, { mailer, until: Date.now() + 60_000 });
    return mailer;
  }

  async #waitForRate(tenantId: string): Promise<void> {
    for (;;) {
      try {
        await this.#rate.consume(tenantId);
        return;
      } catch (error) {
        if (!(error instanceof RateLimiterRes)) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.min(error.msBeforeNext, 60_000)));
      }
    }
  }

  async work(concurrency = 2): Promise<void> {
    await this.#o.queue.work(sendDigestsJob, async () => {
      await this.sendDueDigests();
    });
    await this.#o.queue.schedule(sendDigestsJob, '*/5 * * * *', {});
    await this.#o.queue.work(
      sendEmailJob,
      async (data) => {
        await this.#waitForRate(data.tenantId);
        const mailer = await this.#mailer(data.tenantId);
        if (!mailer) {
          this.#log.warn(
            { tenantId: data.tenantId, purpose: data.purpose },
            'email dropped: SMTP is not set up any more',
          );
          return;
        }
        try {
          await mailer.send({
            to: data.to,
            subject: data.subject,
            text: data.text,
            html: data.html,
            ...(data.headers ? { headers: data.headers } : {}),
          });
        } catch (error) {
          if (isRetryable(error)) throw error;
          // Permanent: retrying the same message would be refused the same way.
          const message = isAppError(error) ? error.message : 'The SMTP server refused the message.';
          this.#log.warn(
            { err: error, tenantId: data.tenantId, purpose: data.purpose },
            'email refused for good',
          );
          await this.#o.smtp.recordFailure(data.tenantId, message);
          await this.#o.repositories.audit.record(data.tenantId, {
            actor: 'system',
            action: 'email.failed',
            target: data.to.join(', '),
            after: { purpose: data.purpose, reason: message },
          });
        }
      },
      { concurrency },
    );
  }

  close(): void {
    for (const { mailer } of this.#mailers.values()) mailer.close();
    this.#mailers.clear();
  }
}
