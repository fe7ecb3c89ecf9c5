/**
 * Jira (Cloud, and Data Center / Server) as a ticket provider. main.ts registers `jiraProvider`;
 * the core only sees the TicketProvider port.
 */
import type { TicketProviderFactory } from '../../../src/tickets/port.js';
import { JIRA_FIELDS } from './credentials.js';
import { createJiraProvider } from './provider.js';
import { jiraWebhook } from './webhook.js';

export const jiraProvider: TicketProviderFactory = {
  descriptor: {
    kind: 'jira',
    displayName: 'Jira',
    fields: JIRA_FIELDS,
    ticketNoun: 'issue',
  },
  create: (context) => createJiraProvider(context),
  webhook: jiraWebhook,
};

export { JIRA_FIELDS, JiraField } from './credentials.js';
export { createJiraProvider } from './provider.js';
