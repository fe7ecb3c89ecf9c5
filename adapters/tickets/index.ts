import type { TicketProviderFactory } from '../../src/tickets/port.js';
import { azureDevOpsProvider } from './azure-devops/index.js';
import { jiraProvider } from './jira/index.js';
import { serviceNowProvider } from './servicenow/index.js';

/** The ticket providers the service offers, in the order of CloudPi's Integration page. */
export const ticketProviderFactories: readonly TicketProviderFactory[] = [
  jiraProvider,
  azureDevOpsProvider,
  serviceNowProvider,
];
