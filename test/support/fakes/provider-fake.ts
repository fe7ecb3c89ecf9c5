/**
 * What every ticket-provider fake offers the contract suite. Each fake is a real HTTP server on
 * loopback that follows the vendor's published API (see test/fixtures/specs) and rejects what the
 * real service rejects: bad auth, wrong content types, unknown or missing required fields.
 */
import type { ProviderValues, Routing } from '../../../src/tickets/port.js';

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
  close(): Promise<void>;
}
