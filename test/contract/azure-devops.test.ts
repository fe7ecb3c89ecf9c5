import { azureDevOpsProvider } from '../../adapters/tickets/azure-devops/index.js';
import { startAzureDevOpsFake } from '../support/fakes/azure-devops-fake.js';
import { ticketProviderContract } from './ticket-provider.contract.js';

ticketProviderContract({ factory: azureDevOpsProvider, startFake: startAzureDevOpsFake });
