/**
 * ServiceNow status webhooks: ServiceNow has no built-in webhook, so an admin creates an outbound
 * REST message (POST, JSON body below, Basic auth profile with user `cloudpi` and the secret) and
 * an "after update" business rule on Incident that sends it when State changes. The body names
 * the incident by number.
 */
import type { WebhookSupport } from '../../../src/tickets/port.js';

/** Incident numbers: a prefix of letters, then digits (INC0010001). */
const NUMBER = /^[A-Z]{2,10}[0-9]{4,12}$/;

export const serviceNowWebhook: WebhookSupport = {
  auth: 'basic',
  ticketKeys(payload) {
    const p = payload as { number?: unknown; table?: unknown } | null;
    if (!p || typeof p !== 'object') return [];
    if (p.table !== undefined && p.table !== 'incident') return [];
    return typeof p.number === 'string' && NUMBER.test(p.number.trim()) ? [p.number.trim()] : [];
  },
  instructions: (url) => [
    'In ServiceNow, create a Basic auth profile (System Web Services > REST Message authentication) with user name cloudpi and the secret below as password.',
    `Create an outbound REST message with endpoint ${url}, method POST, header Content-Type: application/json, that profile, and the content {"table":"incident","number":"\${number}","sys_id":"\${sys_id}","state":"\${state}"}.`,
    'Create a business rule on Incident (when: after, update, condition: State changes) that sends it (sn_ws.RESTMessageV2 with the number, sys_id and state of current).',
  ],
};
