import { serviceNowProvider } from '../../adapters/tickets/servicenow/index.js';
import { startServiceNowFake } from '../support/fakes/servicenow-fake.js';
import { ticketProviderContract } from './ticket-provider.contract.js';

// Basic authentication here; the OAuth grants are covered in test/adapters/servicenow.test.ts.
ticketProviderContract({
  factory: serviceNowProvider,
  startFake: () => startServiceNowFake({ auth: 'basic' }),
});
