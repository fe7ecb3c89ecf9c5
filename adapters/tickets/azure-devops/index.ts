/**
 * Azure DevOps (Services and Server) as a ticket provider: work items through azure-devops-node-api.
 * The SDK loads on the first call (it is not needed to start the service or render the form).
 */
import { lazyTicketProvider } from '../../../src/tickets/lazy-provider.js';
import { azureDevOpsFields } from './credentials.js';
import { azureDevOpsWebhook } from './webhook.js';

export const azureDevOpsProvider = lazyTicketProvider(
  { kind: 'azure-devops', displayName: 'Azure DevOps', fields: azureDevOpsFields, ticketNoun: 'work item' },
  async () => {
    const { AzureDevOpsProvider } = await import('./provider.js');
    return (context) => new AzureDevOpsProvider(context);
  },
  azureDevOpsWebhook,
);

export { normalizeOrganizationUrl, ORGANIZATION_URL_FIELD, PAT_FIELD } from './credentials.js';
