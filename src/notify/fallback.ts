/**
 * The fallback of a card that chat could not deliver for good (channel gone or archived, bot
 * removed, token revoked): the card is handed over by a job, queued in the same transaction that
 * marks the card failed, so a hand-over is never lost. The job offers it to the registered
 * fallback channels in order (email, with the SMTP settings); what happened is recorded on the
 * card (`fallback_state`, `fallback_note`) and in the audit log, where admins see it.
 */
import { z } from 'zod/v4';
import { defineJob } from '../jobs/queue.js';
import type { RecommendationCardView } from '../recommendations/card.js';
import type { CardRow } from '../storage/repositories/recommendations.js';

export const cardFallbackJob = defineJob({
  name: 'notify.card-fallback',
  outbound: true,
  schema: z.object({ tenantId: z.uuid(), cardId: z.uuid() }),
  retryLimit: 6,
  retryDelaySeconds: 30,
  retryDelayMaxSeconds: 1800,
});

export const FALLBACK_STATES = ['queued', 'delivered', 'unavailable', 'failed'] as const;
export type FallbackState = (typeof FALLBACK_STATES)[number];

/** What a fallback channel did with an undeliverable card. */
export type FallbackOutcome =
  /** Sent; the note says to whom ("email to ops@example.com"). */
  | { readonly outcome: 'delivered'; readonly note: string }
  /** This channel is not set up for the tenant (no SMTP settings, no recipients): try the next. */
  | { readonly outcome: 'unavailable'; readonly note: string };

/**
 * A way to reach people when chat cannot (the SMTP issue's email channel). Throwing means a
 * transient failure: the job retries; after the last retry the card's fallback shows `failed`.
 */
export interface FallbackChannel {
  readonly name: string;
  deliver(tenantId: string, card: CardRow, view: RecommendationCardView): Promise<FallbackOutcome>;
}

/** Said when no channel could take the card (none registered, or none set up for the tenant). */
export const NO_FALLBACK_NOTE =
  'No fallback channel is set up: email fallback needs SMTP settings (/cloudpi smtp) and recipients.';
