/**
 * Azure DevOps status webhooks: a service hook subscription (Project settings > Service hooks) with
 * the Web Hooks consumer on "Work item updated", sending Basic auth. `workitem.updated` names the
 * item in resource.workItemId (resource.id is the update's number there); created, deleted and
 * restored events carry the item itself as resource.
 */
import type { WebhookSupport } from '../../../src/tickets/port.js';

const WORK_ITEM_ID = /^[1-9][0-9]{0,9}$/;

export const azureDevOpsWebhook: WebhookSupport = {
  auth: 'basic',
  ticketKeys(payload) {
    const p = payload as { eventType?: unknown; resource?: Record<string, unknown> } | null;
    if (!p || typeof p !== 'object' || !p.resource || typeof p.resource !== 'object') return [];
    const id =
      p.eventType === 'workitem.updated'
        ? p.resource.workItemId
        : p.eventType === 'workitem.created' || p.eventType === 'workitem.restored'
          ? p.resource.id
          : undefined;
    const key = typeof id === 'number' || typeof id === 'string' ? String(id) : '';
    return WORK_ITEM_ID.test(key) ? [key] : [];
  },
  instructions: (url) => [
    'In Azure DevOps, open Project settings > Service hooks > Create subscription > Web Hooks.',
    'Trigger: Work item updated (optionally filtered on Tag contains cloudpi). Field: State.',
    `URL: ${url}`,
    'Basic authentication username: cloudpi; password: the secret below.',
    'Resource details to send: All.',
  ],
};
