/**
 * Azure DevOps (Services and Server) as a ticket provider: work items through azure-devops-node-api.
 */
import type { TicketProviderFactory } from '../../../src/tickets/port.js';
import { azureDevOpsFields } from './credentials.js';
import { AzureDevOpsProvider } from './provider.js';

export const azureDevOpsProvider: TicketProviderFactory = {
  descriptor: {
    kind: 'azure-devops',
    displayName: 'Azure DevOps',
    fields: azureDevOpsFields,
    ticketNoun: 'work item',
  },
  create: (context) => new AzureDevOpsProvider(context),
};

export { normalizeOrganizationUrl, ORGANIZATION_URL_FIELD, PAT_FIELD } from './credentials.js';
export { AzureDevOpsProvider } from './provider.js';
