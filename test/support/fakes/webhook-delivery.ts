/**
 * Webhook deliveries of the ticket-provider fakes. Like Jira, Azure DevOps and ServiceNow, a fake
 * POSTs once to every registered hook after a ticket changed, without holding up the change itself
 * (setStatus stays synchronous), and records what the receiver answered. There are no retries: the
 * vendors' retry policies differ, and a single attempt is what a receiver test needs to see.
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { FakeWebhook, FakeWebhookDelivery } from './provider-fake.js';

/** How long a delivery waits for the receiver's answer. */
export const WEBHOOK_TIMEOUT_MS = 10_000;

export interface RegisteredWebhook {
  readonly hook: FakeWebhook;
  /** Stable per registration (Azure DevOps' subscriptionId). */
  readonly id: string;
  /** Deliveries made to this hook, the current one included (Azure DevOps' notificationId). */
  sent: number;
}

export interface WebhookRequest {
  readonly body: string;
  readonly headers: Record<string, string>;
}

export interface WebhookSender {
  readonly deliveries: FakeWebhookDelivery[];
  add(hook: FakeWebhook): void;
  /** Starts one delivery per registered hook; `request` builds that hook's body and headers now. */
  send(request: (registered: RegisteredWebhook) => WebhookRequest): void;
  /** Resolves when every delivery started so far has been answered (or has failed). */
  settled(): Promise<void>;
}

export function createWebhookSender(): WebhookSender {
  const hooks: RegisteredWebhook[] = [];
  const deliveries: FakeWebhookDelivery[] = [];
  const pending = new Set<Promise<void>>();

  const deliver = async (url: string, { body, headers }: WebhookRequest): Promise<void> => {
    const at = Date.now();
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers,
        body,
        // A webhook sender reports what the receiver answered; it does not follow redirects.
        redirect: 'manual',
        signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
      });
      // Drain the answer so the connection is released; its content does not matter.
      await response.arrayBuffer().catch(() => undefined);
      deliveries.push({ url, status: response.status, body, headers, at });
    } catch (error) {
      deliveries.push({ url, status: undefined, body, headers, at, error: describeFailure(error) });
    }
  };

  return {
    deliveries,
    add(hook) {
      hooks.push({ hook: { ...hook }, id: randomUUID(), sent: 0 });
    },
    send(request) {
      for (const registered of hooks) {
        registered.sent++;
        const delivery = deliver(registered.hook.url, request(registered));
        pending.add(delivery);
        void delivery.finally(() => pending.delete(delivery));
      }
    },
    async settled() {
      await Promise.all([...pending]);
    },
  };
}

/** `Authorization: Basic ...` when the hook has a user name or password (both empty: none sent). */
export function basicAuthorization(hook: FakeWebhook): Record<string, string> {
  if (!hook.username && !hook.password) return {};
  const credentials = Buffer.from(`${hook.username ?? ''}:${hook.password ?? ''}`, 'utf8').toString('base64');
  return { Authorization: `Basic ${credentials}` };
}

/** WebSub's `X-Hub-Signature` value, as Jira sends it: HMAC-SHA256 of the raw body bytes. */
export function hubSignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

/** fetch only says "fetch failed"; the reason (ECONNREFUSED, a reset, the timeout) is in the cause. */
function describeFailure(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') {
    return `no answer within ${WEBHOOK_TIMEOUT_MS} ms`;
  }
  const cause =
    error instanceof Error ? (error.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  const reason = cause ? String(cause.code ?? cause.message ?? cause) : undefined;
  const message = error instanceof Error ? error.message : String(error);
  return reason ? `${message}: ${reason}` : message;
}
