/**
 * Jira's status webhooks: an admin webhook (Jira Cloud: Settings > System > WebHooks; Data Center
 * 10+: Administration > System > WebHooks) with a secret, so every delivery carries
 * `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>`. Issue events name the issue by key.
 */
import type { WebhookSupport } from '../../../src/tickets/port.js';

const ISSUE_EVENTS = new Set(['jira:issue_created', 'jira:issue_updated']);
/** Project keys are upper-case letters, digits and underscores; the number follows a dash. */
const ISSUE_KEY = /^[A-Z][A-Z0-9_]{0,254}-[1-9][0-9]{0,17}$/;

export const jiraWebhook: WebhookSupport = {
  auth: 'hub-signature-sha256',
  ticketKeys(payload) {
    const p = payload as { webhookEvent?: unknown; issue?: { key?: unknown } } | null;
    if (!p || typeof p !== 'object' || !ISSUE_EVENTS.has(String(p.webhookEvent))) return [];
    const key = p.issue?.key;
    return typeof key === 'string' && ISSUE_KEY.test(key) ? [key] : [];
  },
  instructions: (url) => [
    'In Jira, open Settings (gear) > System > WebHooks (Data Center: Administration > System > WebHooks) and choose Create a WebHook.',
    `URL: ${url}`,
    'Secret: the secret below (Jira signs every delivery with it).',
    'Events: Issue > updated. Optional JQL filter: labels = cloudpi (every CloudPi ticket carries that label).',
  ],
};
