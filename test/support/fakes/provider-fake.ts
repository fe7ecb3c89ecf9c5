/**
 * What every ticket-provider fake offers the contract suite. Each fake is a real HTTP server on
 * loopback that follows the vendor's published API (see test/fixtures/specs) and rejects what the
 * real service rejects: bad auth, wrong content types, unknown or missing required fields.
 */
import type { ProviderValues, Routing } from '../../../src/tickets/port.js';

/** A webhook as an admin registers it at the provider: where to POST, and how to authenticate. */
export interface FakeWebhook {
  readonly url: string;
  /** Jira: the webhook secret the body is signed with (X-Hub-Signature). */
  readonly secret?: string;
  /** Azure DevOps, ServiceNow: Basic authentication sent with every delivery. */
  readonly username?: string;
  readonly password?: string;
}

/** One POST the fake made to a webhook. */
export interface FakeWebhookDelivery {
  readonly url: string;
  /** The receiver's answer status; undefined when no answer came (refused, reset, timed out). */
  readonly status: number | undefined;
  /** The exact body sent. */
  readonly body: string;
  /** The headers the fake set (fetch adds its own, e.g. Content-Length, on top). */
  readonly headers: Record<string, string>;
  /** When the delivery started (ms since the epoch). */
  readonly at: number;
  /** Why no answer came. */
  readonly error?: string;
}

export interface ProviderFake {
  /** Base URL of the fake (http://127.0.0.1:<port>/...), as an admin would type it. */
  readonly url: string;
  /** Form values that authenticate against this fake. */
  readonly validValues: ProviderValues;
  /** The same values with a wrong secret. */
  readonly wrongSecretValues: ProviderValues;
  /** A routing that creates tickets in a project the fake has, with any required field values. */
  readonly routing: Routing;
  /** Number of tickets the fake holds. */
  ticketCount(): number;
  /** Every request the fake received: method, path (with query) and its arrival time. */
  readonly requests: { method: string; path: string; at: number }[];
  /** The next `count` requests (matching `path` if given) answer 429 with Retry-After: seconds. */
  rateLimitNext(count: number, retryAfterSeconds: number, path?: RegExp): void;
  /** The next `count` requests answer this 5xx status. */
  failNext(count: number, status: number, path?: RegExp): void;
  /** The next ticket creation is performed, but the connection is dropped before the answer. */
  loseNextCreateResponse(): void;
  /** Delay every response by `ms` (0 to stop). */
  setDelay(ms: number): void;
  /** Moves a ticket to a provider status (by the fake's own status names: see each fake). */
  setStatus(key: string, status: 'open' | 'in_progress' | 'done'): void;
  /** Registers a webhook the fake calls on every status change of a ticket. */
  addWebhook(hook: FakeWebhook): void;
  /** Every delivery attempted, with the receiver's answer status (undefined when the connection failed). */
  readonly webhookDeliveries: FakeWebhookDelivery[];
  /** Resolves when every delivery started so far has been answered. */
  webhooksSettled(): Promise<void>;
  close(): Promise<void>;
}
