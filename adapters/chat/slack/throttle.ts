/**
 * Slack's limit on posting messages, kept per channel: "1 per second. Short bursts >1 allowed"
 * (https://docs.slack.dev/apis/web-api/rate-limits; chat.postMessage "generally allows posting one
 * message per second per channel"). Modelled as a token bucket per channel that holds `burst`
 * posts and refills `perSecond` a second; Slack does not publish the burst size, so a small one
 * is assumed (a 429 beyond it is still waited out, see below).
 *
 * Posts to one channel run one at a time, and a post takes its token when Slack's answer has come:
 * Slack counted it somewhere between the send and the answer, so counting it at the answer never
 * lets the next post reach Slack sooner than the limit allows, whatever the network delays. Other
 * channels are never delayed.
 *
 * Breadth first: a channel's first post (its bucket full) goes before the burst posts of channels
 * that already got one. While such leading posts are on their way, a post that would use a burst
 * token (no wait for the rate) waits for them, at most LEADING_HOLD_MS: the burst token keeps, and
 * a channel's pace is set from its first post's answer (the next refill is a second after it), so
 * every answer that a fan-out's other posts would have delayed delays that channel's whole queue.
 * Measured on the fan-out bench (100 channels, 10 posts each): the first posts' answers came
 * 240-320 ms after their sends when the second and third posts of the burst were sent beside them.
 * A post paced by the rate (it waited for a token) is never held.
 *
 * Per process: replicas do not coordinate. A 429 that still comes (another replica posted to the
 * same channel, or Slack's workspace-wide limit) is waited out by the Web API client
 * (Retry-After), and the post reports it with `rateLimited()` so the channel's bucket starts empty.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface PostLimit {
  readonly perSecond: number;
  readonly burst: number;
}

/** Slack's posting limit as this app assumes it: one a second per channel, bursts of 3. */
export const SLACK_POST_LIMIT: PostLimit = { perSecond: 1, burst: 3 };

interface Channel {
  /** Posts the bucket held at `at`. */
  tokens: number;
  at: number;
  /** Settles when the channel's last queued post is done. */
  tail: Promise<void>;
  queued: number;
}

export interface ThrottleClock {
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<unknown>;
}

const SWEEP_AT = 1_000;
/** Longest a burst post waits for other channels' first posts (see the header). */
export const LEADING_HOLD_MS = 500;

export class ChannelPostThrottle {
  readonly #channels = new Map<string, Channel>();
  readonly #limit: PostLimit;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<unknown>;
  /** First posts of channels (bucket full) on their way, and who waits for them to be done. */
  #leading = 0;
  #leadingDone: (() => void)[] = [];

  constructor(limit: PostLimit = SLACK_POST_LIMIT, clock: ThrottleClock = {}) {
    if (!(limit.perSecond > 0 && limit.burst >= 1))
      throw new Error('a post limit needs perSecond > 0 and burst >= 1');
    this.#limit = limit;
    this.#now = clock.now ?? Date.now;
    this.#sleep = clock.sleep ?? sleep;
  }

  /**
   * Runs `post` once the channel `key` (workspace and channel) may take one more message, after
   * every post queued before it there. `post` calls `rateLimited()` when Slack answered 429 on the
   * way. Whether it succeeds or throws, the post counts.
   */
  async run<T>(key: string, post: (rateLimited: () => void) => Promise<T>): Promise<T> {
    const channel = this.#channel(key);
    const previous = channel.tail;
    let release!: () => void;
    channel.tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    channel.queued += 1;
    let leading = false;
    try {
      await previous;
      let paced = false;
      let held = false;
      for (;;) {
        const tokens = this.#refill(channel);
        if (tokens >= this.#limit.burst) {
          leading = true;
          break;
        }
        if (tokens >= 1) {
          if (paced || held || this.#leading === 0) break;
          // A burst post: other channels' first posts go first (see the header).
          held = true;
          await this.#untilLeadingDone(LEADING_HOLD_MS);
          continue;
        }
        paced = true;
        await this.#sleep(Math.max(1, Math.ceil(((1 - tokens) / this.#limit.perSecond) * 1000)));
      }
      if (leading) this.#leading += 1;
      let limited = false;
      try {
        return await post(() => {
          limited = true;
        });
      } finally {
        const tokens = this.#refill(channel);
        channel.tokens = limited ? 0 : Math.max(0, tokens - 1);
      }
    } finally {
      if (leading) {
        this.#leading -= 1;
        if (this.#leading === 0) for (const done of this.#leadingDone.splice(0)) done();
      }
      channel.queued -= 1;
      release();
      if (this.#channels.size >= SWEEP_AT) this.#sweep();
    }
  }

  /** Resolves when no first post is on its way, or after `maxMs`. */
  async #untilLeadingDone(maxMs: number): Promise<void> {
    let done!: () => void;
    const idle = new Promise<void>((resolve) => {
      done = resolve;
    });
    this.#leadingDone.push(done);
    await Promise.race([idle, this.#sleep(maxMs)]);
    const at = this.#leadingDone.indexOf(done);
    if (at >= 0) this.#leadingDone.splice(at, 1);
  }

  #channel(key: string): Channel {
    let channel = this.#channels.get(key);
    if (!channel) {
      channel = { tokens: this.#limit.burst, at: this.#now(), tail: Promise.resolve(), queued: 0 };
      this.#channels.set(key, channel);
    }
    return channel;
  }

  #refill(channel: Channel): number {
    const now = this.#now();
    channel.tokens = Math.min(
      this.#limit.burst,
      channel.tokens + (Math.max(0, now - channel.at) / 1000) * this.#limit.perSecond,
    );
    channel.at = now;
    return channel.tokens;
  }

  /** Forgets idle channels whose bucket is full again (forgetting one is the same as keeping it). */
  #sweep(): void {
    for (const [key, channel] of this.#channels) {
      if (channel.queued === 0 && this.#refill(channel) >= this.#limit.burst) this.#channels.delete(key);
    }
  }
}
