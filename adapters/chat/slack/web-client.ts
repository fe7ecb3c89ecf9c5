/**
 * Options for every Slack Web API client the app creates (Bolt's per-workspace clients and the
 * OAuth installer's): the base URL (SLACK_API_URL), a timeout per call (the client's default has
 * none), retries that wait out Retry-After on 429 instead of failing, and a limiter that keeps each
 * workspace's calls under the method tiers Slack documents, so a burst (App Home republished for
 * many admins) queues here instead of being answered with 429.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { webApi } from '@slack/bolt';

/** Calls per minute per workspace and method tier (https://docs.slack.dev/apis/web-api/rate-limits). */
export const TIER_LIMITS = { 1: 1, 2: 20, 3: 50, 4: 100 } as const;
export type Tier = keyof typeof TIER_LIMITS;

/**
 * The methods this app calls, by tier. chat.postEphemeral and auth.test are "special"; so is
 * chat.postMessage, whose limit is per channel ("about one message per second per channel"): it
 * is paced per channel by ChannelPostThrottle (throttle.ts) and has no workspace window here, so
 * a fan-out to many channels is not held to one channel's pace. Slack's workspace-wide limit on
 * posting has no published figure: a 429 from it is waited out (Retry-After).
 */
export const METHOD_TIERS: Readonly<Record<string, Tier | 'special' | 'per-channel'>> = {
  'auth.test': 'special',
  'users.info': 4,
  'views.open': 4,
  'views.update': 4,
  'views.push': 4,
  'views.publish': 4,
  'chat.postEphemeral': 'special',
  'chat.postMessage': 'per-channel',
  'chat.update': 3,
  'chat.delete': 3,
  'oauth.v2.access': 4,
  'team.info': 3,
};

/** "special" methods: Slack allows roughly one call per second per channel; we allow a burst of 60 a minute. */
const SPECIAL_PER_MINUTE = 60;
const UNKNOWN_TIER: Tier = 3;

export interface SlackClientSettings {
  /** Web API base URL with a trailing slash. */
  readonly apiUrl: string;
  /** Per-call timeout. Default 10 s. */
  readonly timeoutMs?: number;
  /** Retries after a 429 or a network failure. Default 3. */
  readonly retries?: number;
  /** The limiter's clock, for tests. */
  readonly now?: () => number;
}

/**
 * A sliding one-minute window per (token, method): Slack applies its tiers "per API method per
 * workspace per app". `acquire` resolves when a call may be made, to true when it had to wait; it
 * never rejects. Windows belong to the token, so one workspace's burst never delays another's.
 */
export class TierLimiter {
  readonly #windows = new Map<string, number[]>();
  /** Calls already counted in their window by `reserve`, not made yet, per (token, method). */
  readonly #reserved = new Map<string, number>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /**
   * Waits for `count` calls' turns and counts them now; the next `count` calls of the method
   * then go without waiting. A caller that reads what it sends after its turn has come (a card
   * update) sends what is current, not what was current when it started to queue.
   */
  async reserve(token: string, method: string, count = 1): Promise<void> {
    const key = `${token}|${method}`;
    for (let i = 0; i < count; i++) {
      if (!(await this.#take(token, method))) continue;
      this.#reserved.set(key, (this.#reserved.get(key) ?? 0) + 1);
    }
  }

  async acquire(token: string, method: string): Promise<boolean> {
    const key = `${token}|${method}`;
    const reserved = this.#reserved.get(key) ?? 0;
    if (reserved > 0) {
      if (reserved === 1) this.#reserved.delete(key);
      else this.#reserved.set(key, reserved - 1);
      return false;
    }
    return (await this.#take(token, method)) === 'waited';
  }

  /** Waits for a turn in the method's window and counts it; false for methods without a window. */
  async #take(token: string, method: string): Promise<false | 'now' | 'waited'> {
    const tier = METHOD_TIERS[method] ?? UNKNOWN_TIER;
    if (tier === 'per-channel') return false;
    const perMinute = tier === 'special' ? SPECIAL_PER_MINUTE : TIER_LIMITS[tier];
    const key = `${token}|${method}`;
    for (let waited = false; ; waited = true) {
      const now = this.#now();
      const window = (this.#windows.get(key) ?? []).filter((at) => now - at < 60_000);
      if (window.length < perMinute) {
        window.push(now);
        this.#windows.set(key, window);
        this.#sweep(now);
        return waited ? 'waited' : 'now';
      }
      this.#windows.set(key, window);
      // Re-checked at least every second (the clock may be a test's).
      await sleep(Math.min(1_000, Math.max(10, 60_000 - (now - window[0]!))));
    }
  }

  /** Drops idle windows so uninstalled workspaces do not accumulate. */
  #sweep(now: number): void {
    if (this.#windows.size < 1_000) return;
    for (const [key, window] of this.#windows) {
      if (window.every((at) => now - at >= 60_000)) this.#windows.delete(key);
    }
  }
}

/** Slack's chat.postMessage allowance: about one message per second per channel. */
export const CHANNEL_POST_SPACING_MS = 1_000;

/**
 * Spaces calls to one channel of one workspace at least `spacingMs` apart, without bursts. Card
 * posts use ChannelPostThrottle (throttle.ts) instead, which takes Slack's short bursts and counts
 * a post when Slack has answered it. Each call reserves the next free slot, so concurrent calls to
 * one channel queue in order; other channels are not delayed. Per process.
 */
export class ChannelSpacer {
  readonly #next = new Map<string, number>();
  readonly #spacingMs: number;
  readonly #now: () => number;

  constructor(spacingMs = CHANNEL_POST_SPACING_MS, now: () => number = Date.now) {
    this.#spacingMs = spacingMs;
    this.#now = now;
  }

  async acquire(workspace: string, channelId: string): Promise<void> {
    const key = `${workspace}|${channelId}`;
    const now = this.#now();
    const at = Math.max(now, this.#next.get(key) ?? 0);
    this.#next.set(key, at + this.#spacingMs);
    if (this.#next.size >= 1_000) {
      for (const [k, free] of this.#next) if (free <= now) this.#next.delete(k);
    }
    if (at > now) await sleep(at - now);
  }
}

function methodOf(url: string | URL): string {
  const path = typeof url === 'string' ? new URL(url).pathname : url.pathname;
  return path.slice(path.lastIndexOf('/') + 1);
}

function tokenOf(headers: unknown): string {
  const value =
    headers instanceof Headers
      ? headers.get('authorization')
      : typeof headers === 'object' && headers !== null
        ? ((headers as Record<string, string>).Authorization ??
          (headers as Record<string, string>).authorization)
        : undefined;
  // The token itself (the limiter's windows and reservations are keyed by it).
  return value?.replace(/^Bearer\s+/i, '') || 'anonymous';
}

/** WebClient options shared by every client of the app. */
export function slackClientOptions(
  settings: SlackClientSettings,
  limiter = new TierLimiter(settings.now),
): webApi.WebClientOptions {
  const timeout = settings.timeoutMs ?? 10_000;
  // Bolt posts to response_url with the same fetch and no signal: it gets the timeout here. The
  // client's own signal is its timeout, started before this fetch: a call that queued in the
  // limiter gets a fresh one, so the wait for its turn is not taken from the time it has to answer.
  const limitedFetch: webApi.FetchFunction = async (url, init) => {
    const waited = await limiter.acquire(tokenOf(init?.headers), methodOf(url));
    const signal = (!waited && init?.signal) || AbortSignal.timeout(timeout);
    return fetch(url, { ...(init as RequestInit), signal });
  };
  return {
    slackApiUrl: settings.apiUrl,
    timeout,
    // A 429 waits Retry-After inside the client, then counts as one retry; network errors and
    // timeouts back off from 0.5 s. Never an absolute URL: tokens only go to slackApiUrl.
    rejectRateLimitedCalls: false,
    retryConfig: {
      retries: settings.retries ?? 3,
      factor: 2,
      minTimeout: 500,
      maxTimeout: 5_000,
      randomize: true,
    },
    allowAbsoluteUrls: false,
    maxRequestConcurrency: 20,
    fetch: limitedFetch,
  };
}
