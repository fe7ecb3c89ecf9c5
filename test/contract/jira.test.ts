import { afterAll, describe, expect } from 'vitest';
import { jiraProvider } from '../../adapters/tickets/jira/index.js';
import { type JiraFake, startJiraFake } from '../support/fakes/jira-fake.js';
import { ticketProviderContract } from './ticket-provider.contract.js';

/** Runs the port's contract against the strict Jira fake, then checks the fake kept to the spec. */
function contractWith(deployment: 'cloud' | 'server'): void {
  const fakes: JiraFake[] = [];
  ticketProviderContract({
    factory: jiraProvider,
    startFake: async () => {
      const fake = await startJiraFake({ deployment });
      fakes.push(fake);
      return fake;
    },
  });
  afterAll(() => {
    for (const fake of fakes) expect(fake.specViolations).toEqual([]);
  });
}

describe('Jira Cloud', () => contractWith('cloud'));
describe('Jira Data Center / Server', () => contractWith('server'));
