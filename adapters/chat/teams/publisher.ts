/**
 * Recommendation cards in Teams conversations, sent proactively with the conversation reference
 * stored when the bot was installed or last spoken to there. Sends keep Teams' per-conversation
 * limits (ConversationThrottle); 429 (after its Retry-After), 412, 500, 502, 503 and 504 are
 * retried with backoff; a conversation the bot is no longer in (403, 404) fails the card for good,
 * which hands it to the fallback.
 */
import { type Attachment, CardFactory } from 'botbuilder';
import type { ConversationReference } from 'botframework-schema';
import pRetry, { AbortError } from 'p-retry';
import type { Logger } from '../../../src/logger.js';
import { CardDeliveryError, type CardPublisher } from '../../../src/recommendations/card.js';
import type { ConversationRepository } from '../../../src/storage/repositories/conversations.js';
import { renderRecommendationCard } from './render.js';
import { ConversationThrottle } from './throttle.js';

export interface OutgoingActivity {
  readonly type: 'message';
  readonly id?: string;
  readonly attachments: Attachment[];
  readonly summary?: string;
}

/** How the publisher reaches a conversation (the adapter's continueConversationAsync). */
export interface ProactiveSender {
  send(reference: Partial<ConversationReference>, activity: OutgoingActivity): Promise<string | undefined>;
  update(
    reference: Partial<ConversationReference>,
    activity: OutgoingActivity & { id: string },
  ): Promise<void>;
}

export interface TeamsPublisherOptions {
  readonly conversations: ConversationRepository;
  readonly sender: ProactiveSender;
  readonly logger: Logger;
  readonly throttle?: ConversationThrottle;
  /** Attempts per send, first included. */
  readonly maxAttempts?: number;
}

const RETRYABLE_STATUS = new Set([412, 429, 500, 502, 503, 504]);
/** The connector's answers for a conversation the bot cannot post in any more. */
const GONE_STATUS = new Set([403, 404]);
const MAX_RETRY_AFTER_SECONDS = 60;

interface ConnectorFailure {
  readonly status?: number;
  readonly code?: string;
  readonly retryAfterSeconds?: number;
}

/** Status, error code and Retry-After of a Bot Connector failure (botframework-connector's RestError). */
export function connectorFailureOf(error: unknown): ConnectorFailure {
  const e = error as {
    statusCode?: unknown;
    code?: unknown;
    response?: {
      headers?: { get?: (name: string) => string | undefined } | Record<string, string>;
      status?: unknown;
    };
    body?: unknown;
  } | null;
  if (!e || typeof e !== 'object') return {};
  const status =
    typeof e.statusCode === 'number'
      ? e.statusCode
      : typeof e.response?.status === 'number'
        ? e.response.status
        : undefined;
  const headers = e.response?.headers;
  const header =
    headers && typeof (headers as { get?: unknown }).get === 'function'
      ? (headers as { get: (n: string) => string | undefined }).get('retry-after')
      : (headers as Record<string, string> | undefined)?.['retry-after'];
  const seconds = header && /^\d+$/.test(header.trim()) ? Number(header.trim()) : undefined;
  const body = e.body as { error?: { code?: unknown } } | undefined;
  const code =
    typeof body?.error?.code === 'string' ? body.error.code : typeof e.code === 'string' ? e.code : undefined;
  return {
    ...(status !== undefined ? { status } : {}),
    ...(code ? { code } : {}),
    ...(seconds !== undefined ? { retryAfterSeconds: seconds } : {}),
  };
}

export function createTeamsPublisher(options: TeamsPublisherOptions): CardPublisher {
  const throttle = options.throttle ?? new ConversationThrottle();
  const maxAttempts = options.maxAttempts ?? 5;

  async function referenceOf(tenantId: string, conversationId: string) {
    const row = await options.conversations.find(tenantId, 'teams', conversationId);
    if (!row) throw new CardDeliveryError('conversation_unknown');
    if (row.removedAt) throw new CardDeliveryError('bot_removed');
    return row.reference as Partial<ConversationReference>;
  }

  /** One send with the limits, retries and the classification of permanent failures. */
  async function deliver<T>(tenantId: string, conversationId: string, send: () => Promise<T>): Promise<T> {
    try {
      return await pRetry(
        async () => {
          await throttle.acquire(conversationId);
          try {
            return await send();
          } catch (error) {
            const failure = connectorFailureOf(error);
            if (failure.status !== undefined && GONE_STATUS.has(failure.status)) {
              await options.conversations.markRemoved(tenantId, 'teams', { conversationId });
              throw new AbortError(
                new CardDeliveryError(
                  failure.code ?? (failure.status === 404 ? 'ConversationNotFound' : 'Forbidden'),
                  {
                    cause: error,
                  },
                ),
              );
            }
            if (failure.status !== undefined && !RETRYABLE_STATUS.has(failure.status))
              throw new AbortError(error as Error);
            throw error;
          }
        },
        {
          retries: maxAttempts - 1,
          minTimeout: 500,
          maxTimeout: 8_000,
          factor: 2,
          randomize: true,
          onFailedAttempt: async ({ error, retriesLeft }) => {
            const wait = connectorFailureOf(error).retryAfterSeconds ?? 0;
            if (retriesLeft > 0 && wait > 0) {
              if (wait > MAX_RETRY_AFTER_SECONDS) throw error;
              await new Promise((resolve) => setTimeout(resolve, wait * 1000));
            }
            options.logger.debug(
              { conversationId, retriesLeft, ...connectorFailureOf(error) },
              'Teams send failed; retrying',
            );
          },
        },
      );
    } catch (error) {
      const original =
        error instanceof AbortError ? ((error as { originalError?: unknown }).originalError ?? error) : error;
      throw original;
    }
  }

  const activityOf = (view: Parameters<CardPublisher['post']>[2]): OutgoingActivity => ({
    type: 'message',
    summary: view.title.slice(0, 200),
    attachments: [CardFactory.adaptiveCard(renderRecommendationCard(view))],
  });

  return {
    platform: 'teams',
    async post(tenantId, channelId, view) {
      const reference = await referenceOf(tenantId, channelId);
      const id = await deliver(tenantId, channelId, () => options.sender.send(reference, activityOf(view)));
      if (!id) throw new Error('The Bot Connector answered without an activity id.');
      return id;
    },
    async update(tenantId, channelId, messageRef, view) {
      const reference = await referenceOf(tenantId, channelId);
      await deliver(tenantId, channelId, () =>
        options.sender.update(reference, { ...activityOf(view), id: messageRef }),
      );
    },
  };
}
