/**
 * Ticket status webhooks: Jira webhooks, Azure DevOps service hooks and ServiceNow outbound REST
 * messages tell us a ticket changed. Each tenant and provider has its own endpoint
 * (`/webhooks/<provider>/<public id>`) and secret. A delivery is authenticated, then only names
 * tickets: their status is read back from the provider (TicketService.refreshStatus) by a job,
 * so a forged or replayed body can at most cause a re-read. Deliveries for one ticket within a
 * few seconds collapse into one read and one card update (queue policy `stately`).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod/v4';
import { AppError, ErrorCode, isAppError } from '../errors.js';
import type { IntegrationService } from '../integrations/service.js';
import { defineJob, type JobQueue } from '../jobs/queue.js';
import type { Logger } from '../logger.js';
import { isRetryable } from '../net/outbound.js';
import type { Database } from '../storage/db.js';
import { and, eq, inArray } from '../storage/orm.js';
import type { Repositories } from '../storage/repositories/index.js';
import type { WebhookEndpointRow } from '../storage/repositories/webhooks.js';
import { tickets } from '../storage/schema.js';
import { TICKET_PROVIDER_KINDS, type TicketProviderKind, type WebhookSupport } from './port.js';
import type { TicketService } from './service.js';

export const refreshTicketStatusJob = defineJob({
  name: 'tickets.refresh-status',
  outbound: true,
  schema: z.object({ tenantId: z.uuid(), ticketId: z.uuid() }),
  retryLimit: 5,
  retryDelaySeconds: 10,
  retryDelayMaxSeconds: 300,
  expireInSeconds: 120,
  policy: 'stately',
});

/** Deliveries for the same ticket within this window lead to one read and one card update. */
export const WEBHOOK_DEBOUNCE_SECONDS = 2;
/** Webhook bodies (a Jira issue event carries the whole issue). */
export const WEBHOOK_BODY_LIMIT_BYTES = 5 * 1024 * 1024;
/** The Basic auth user name Azure DevOps and ServiceNow send. */
export const WEBHOOK_BASIC_USER = 'cloudpi';
/** At most this many tickets are taken from one delivery. */
const MAX_KEYS_PER_DELIVERY = 50;

export interface WebhookSetup {
  readonly provider: TicketProviderKind;
  readonly url: string;
  /** Only when just issued: shown once. */
  readonly secret?: string;
  readonly auth: WebhookSupport['auth'];
  readonly instructions: readonly string[];
  readonly lastReceivedAt: Date | null;
}

export interface WebhookReceipt {
  /** Ticket keys the delivery named that belong to CloudPi tickets: a status read is queued. */
  readonly queued: readonly string[];
  /** Keys named that are not CloudPi tickets of this tenant. */
  readonly ignored: readonly string[];
}

export interface TicketWebhooksOptions {
  readonly db: Database;
  readonly repositories: Repositories;
  readonly integrations: IntegrationService;
  readonly tickets: TicketService;
  readonly queue: JobQueue;
  readonly logger: Logger;
  /** Where providers reach this service (CLOUDPI_PUBLIC_URL). */
  readonly publicUrl: () => string;
  /** Seconds a delivery waits before the read, so that a burst collapses (tests shorten it). */
  readonly debounceSeconds?: number;
}

export function isTicketProviderKind(value: string): value is TicketProviderKind {
  return (TICKET_PROVIDER_KINDS as readonly string[]).includes(value);
}

export class TicketWebhooks {
  readonly #o: TicketWebhooksOptions;
  readonly #log: Logger;

  constructor(options: TicketWebhooksOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'webhooks' });
  }

  /** The provider's webhook support, or a clear error when it has none or is unknown. */
  support(provider: string): WebhookSupport {
    const support = isTicketProviderKind(provider)
      ? this.#o.integrations.webhookSupport(provider)
      : undefined;
    if (!support) throw new AppError(ErrorCode.NOT_FOUND, `No webhooks for provider "${provider}".`);
    return support;
  }

  urlOf(row: Pick<WebhookEndpointRow, 'provider' | 'publicId'>): string {
    const base = `${this.#o.publicUrl().replace(/\/+$/, '')}/`;
    return new URL(`webhooks/${row.provider}/${row.publicId}`, base).href;
  }

  #setup(row: WebhookEndpointRow, secret?: string): WebhookSetup {
    const provider = row.provider as TicketProviderKind;
    const support = this.support(provider);
    const url = this.urlOf(row);
    return {
      provider,
      url,
      ...(secret ? { secret } : {}),
      auth: support.auth,
      instructions: support.instructions(url),
      lastReceivedAt: row.lastReceivedAt,
    };
  }

  /** The tenant's endpoint for a provider (without its secret), if one was issued. */
  async show(tenantId: string, provider: TicketProviderKind): Promise<WebhookSetup | undefined> {
    this.support(provider);
    const row = await this.#o.repositories.webhooks.get(tenantId, provider);
    return row ? this.#setup(row) : undefined;
  }

  /**
   * Issues the endpoint (or a new URL and secret in place of the old ones, which stop working at
   * once) for a connected provider; audited without the secret.
   */
  async issue(tenantId: string, provider: TicketProviderKind, actor: string): Promise<WebhookSetup> {
    this.support(provider);
    const name = this.#o.integrations.descriptor(provider).displayName;
    const status = await this.#o.integrations.status(tenantId, provider);
    if (status.status === 'not_connected')
      throw new AppError(
        ErrorCode.CONFLICT,
        `${name} is not connected. Connect it first (/cloudpi connect ${provider}), then set up its webhook.`,
      );
    const before = await this.#o.repositories.webhooks.get(tenantId, provider);
    const { row, secret } = await this.#o.repositories.webhooks.issue(tenantId, provider, actor);
    await this.#o.repositories.audit.record(tenantId, {
      actor,
      action: before ? 'webhook.rotate' : 'webhook.create',
      target: provider,
      before: before ? { endpoint: before.id } : null,
      after: { endpoint: row.id },
    });
    return this.#setup(row, secret);
  }

  /**
   * Finds the endpoint a request names and checks the credentials that come in its headers
   * (Basic auth), before any body is read. Jira's signature needs the body: `verifyBody`.
   * Unknown endpoints and wrong credentials get the same answer.
   */
  async authenticate(
    provider: string,
    publicId: string,
    authorization: string | undefined,
  ): Promise<{ endpoint: WebhookEndpointRow; secret: string; support: WebhookSupport }> {
    const support = isTicketProviderKind(provider)
      ? this.#o.integrations.webhookSupport(provider)
      : undefined;
    const found = support
      ? await this.#o.repositories.webhooks.findByPublicId(provider, publicId)
      : undefined;
    if (!support || !found) throw unauthenticated();
    if (support.auth === 'basic' && !basicMatches(authorization, found.secret)) throw unauthenticated();
    return { endpoint: found.row, secret: found.secret, support };
  }

  /** Jira: `X-Hub-Signature: sha256=<hex>` must be the HMAC of the exact body bytes. */
  verifyBody(support: WebhookSupport, secret: string, body: Buffer, signature: string | undefined): void {
    if (support.auth !== 'hub-signature-sha256') return;
    const match = /^sha256=([0-9a-f]{64})$/i.exec(signature?.trim() ?? '');
    const expected = createHmac('sha256', secret).update(body).digest();
    const given = match ? Buffer.from(match[1]!, 'hex') : Buffer.alloc(expected.length);
    if (!timingSafeEqual(given, expected) || !match) throw unauthenticated();
  }

  /**
   * An authenticated delivery: the tickets it names are looked up in the endpoint's tenant only,
   * and a status read is queued for each (collapsed with other deliveries for the same ticket).
   */
  async receive(
    endpoint: WebhookEndpointRow,
    support: WebhookSupport,
    payload: unknown,
  ): Promise<WebhookReceipt> {
    const keys = [...new Set(support.ticketKeys(payload))].slice(0, MAX_KEYS_PER_DELIVERY);
    void this.#o.repositories.webhooks.touch(endpoint.id).catch(() => {});
    if (keys.length === 0) return { queued: [], ignored: [] };
    const rows = await this.#o.db
      .select({ id: tickets.id, key: tickets.key })
      .from(tickets)
      .where(
        and(
          eq(tickets.tenantId, endpoint.tenantId),
          eq(tickets.provider, endpoint.provider),
          inArray(tickets.key, keys),
        ),
      );
    for (const row of rows) {
      await this.#o.queue.send(
        refreshTicketStatusJob,
        { tenantId: endpoint.tenantId, ticketId: row.id },
        {
          singletonKey: row.id,
          startAfterSeconds: this.#o.debounceSeconds ?? WEBHOOK_DEBOUNCE_SECONDS,
        },
      );
    }
    const known = new Set(rows.map((r) => r.key));
    const receipt = { queued: keys.filter((k) => known.has(k)), ignored: keys.filter((k) => !known.has(k)) };
    this.#log.debug(
      { tenantId: endpoint.tenantId, provider: endpoint.provider, ...receipt },
      'webhook received',
    );
    return receipt;
  }

  /** The job: re-reads the ticket; a change reaches every copy of its card (TicketService listeners). */
  async work(concurrency = 2): Promise<void> {
    await this.#o.queue.work(
      refreshTicketStatusJob,
      async ({ tenantId, ticketId }) => {
        try {
          await this.#o.tickets.refreshStatus(tenantId, ticketId);
        } catch (error) {
          if (isRetryable(error)) throw error;
          // Disconnected provider, revoked credentials, deleted ticket: the poll and the health
          // check report those; retrying the same read would not help.
          this.#log.warn(
            { err: error, tenantId, ticketId, ...(isAppError(error) ? { code: error.code } : {}) },
            'ticket status could not be read after a webhook',
          );
        }
      },
      { concurrency },
    );
  }
}

function unauthenticated(): AppError {
  return new AppError(
    ErrorCode.UNAUTHENTICATED,
    'This webhook URL and secret do not match. Copy both again from /cloudpi webhook <provider>.',
  );
}

function basicMatches(header: string | undefined, secret: string): boolean {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header?.trim() ?? '');
  const decoded = match ? Buffer.from(match[1]!, 'base64').toString('utf8') : '';
  const colon = decoded.indexOf(':');
  const user = colon >= 0 ? decoded.slice(0, colon) : '';
  const password = colon >= 0 ? decoded.slice(colon + 1) : '';
  const a = Buffer.from(password);
  const b = Buffer.from(secret);
  // Compare in constant time whatever the length, then check the rest.
  const same = timingSafeEqual(a.length === b.length ? a : Buffer.alloc(b.length), b);
  return same && a.length === b.length && user === WEBHOOK_BASIC_USER;
}
