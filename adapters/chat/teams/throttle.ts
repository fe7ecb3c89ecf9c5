/**
 * Teams' limits for one bot in one conversation: 7 messages a second and 60 in 30 seconds (posts,
 * replies and updates all count). Sends wait here, in sliding windows, instead of being refused;
 * a 429 that still comes (another replica sent too) is waited out by the publisher's retry.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface SendLimit {
  readonly count: number;
  readonly windowMs: number;
}

export const TEAMS_CONVERSATION_LIMITS: readonly SendLimit[] = [
  { count: 7, windowMs: 1_000 },
  { count: 60, windowMs: 30_000 },
];

export class ConversationThrottle {
  readonly #sent = new Map<string, number[]>();
  readonly #limits: readonly SendLimit[];
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<unknown>;

  constructor(
    limits: readonly SendLimit[] = TEAMS_CONVERSATION_LIMITS,
    clock: { now?: () => number; sleep?: (ms: number) => Promise<unknown> } = {},
  ) {
    this.#limits = limits;
    this.#now = clock.now ?? Date.now;
    this.#sleep = clock.sleep ?? sleep;
  }

  /** Resolves when one more send to `key` stays within every limit (and counts it). */
  async acquire(key: string): Promise<void> {
    const longest = Math.max(...this.#limits.map((l) => l.windowMs));
    for (;;) {
      const now = this.#now();
      const sent = (this.#sent.get(key) ?? []).filter((t) => t > now - longest);
      let wait = 0;
      for (const limit of this.#limits) {
        const inWindow = sent.filter((t) => t > now - limit.windowMs);
        if (inWindow.length >= limit.count) {
          // The send that frees a slot is the count-th newest one in the window.
          const freeing = inWindow[inWindow.length - limit.count]!;
          wait = Math.max(wait, freeing + limit.windowMs - now + 1);
        }
      }
      if (wait <= 0) {
        sent.push(now);
        this.#sent.set(key, sent);
        return;
      }
      this.#sent.set(key, sent);
      await this.#sleep(wait);
    }
  }
}
