/**
 * A channel's subscription chooses where its tickets go (issue 5 point 2): its card offers the
 * provider the subscription names, even when others are Active, and the ticket is created with
 * the subscription's type over the provider's own routing. A channel without a route offers every
 * Active provider.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AzureDevOpsFake, startAzureDevOpsFake } from '../support/fakes/azure-devops-fake.js';
import { type JiraFake, startJiraFake } from '../support/fakes/jira-fake.js';
import { waitFor } from '../support/wait.js';
import { useSlackWorkspace } from './harness.js';
import { textOf } from './helpers.js';

const ROUTED = 'C0ROUTEDTASK';
const OPEN = 'C0ROUTEOPEN';

describe('Slack cards follow the channel subscription route', () => {
  const ws = useSlackWorkspace({ CLOUDPI_TICKET_POLL_CRON: '0 0 1 1 *' });
  const running = ws.running;
  let ado: AzureDevOpsFake;
  let jira: JiraFake;
  beforeAll(async () => {
    [ado, jira] = await Promise.all([startAzureDevOpsFake(), startJiraFake()]);
  });
  afterAll(async () => {
    await Promise.all([ado?.close(), jira?.close()]);
  });

  it('offers the routed provider only and creates the routed type', async () => {
    const { repositories, integrations } = running.service;
    const tenant = await repositories.tenants.ensure('slack', ws.slack.teamId, 'Test');
    for (const [kind, fake] of [
      ['azure-devops', ado],
      ['jira', jira],
    ] as const) {
      expect((await integrations.connect(tenant.id, kind, fake.validValues, 'test')).ok).toBe(true);
      expect((await integrations.configure(tenant.id, kind, fake.routing, 'test')).ok).toBe(true);
    }
    expect(ado.routing.ticketType).toBe('Bug');
    ws.slack.joinChannel(ROUTED);
    ws.slack.joinChannel(OPEN);
    await repositories.routes.create(tenant.id, {
      platform: 'slack',
      channelId: ROUTED,
      filters: {},
      provider: 'azure-devops',
      target: { ticketType: 'Task' },
      createdBy: 'slack:U0ADMIN',
    });
    await repositories.routes.create(tenant.id, {
      platform: 'slack',
      channelId: OPEN,
      filters: {},
      createdBy: 'slack:U0ADMIN',
    });
    await running.service.recommendations.ingestRecommendations(tenant.id, {
      id: 'rec-routed-1',
      title: 'Stop idle VM vm-7',
      cloud: 'azure',
    });
    const posted = await waitFor(() => {
      const all = ws.slack.messages.filter((m) => m.method === 'chat.postMessage');
      return all.length === 2 ? all : undefined;
    });
    const routed = posted.find((m) => m.channel === ROUTED)!;
    const open = posted.find((m) => m.channel === OPEN)!;
    expect(textOf(routed.blocks)).toContain('Create ticket');
    expect(textOf(routed.blocks)).not.toContain('Jira');
    expect(textOf(open.blocks)).toContain('Create ticket in Jira');
    expect(textOf(open.blocks)).toContain('Create ticket in Azure DevOps');

    await ws.press(ws.slack.users.member, routed, 'Create ticket');
    const rec = (await repositories.recommendations.findByExternalId(tenant.id, 'rec-routed-1'))!;
    const ticket = await waitFor(async () => {
      const [row] = await repositories.recommendations.tickets(tenant.id, rec.id);
      return row?.key ? row : undefined;
    });
    expect(ticket.provider).toBe('azure-devops');
    expect(ticket.routing).toEqual({ ticketType: 'Task' });
    const item = ado.workItems.get(Number(ticket.key))!;
    expect(item.fields['System.WorkItemType']).toBe('Task');
    // The provider's area path still applies; the Bug's required cost center does not.
    expect(item.fields['System.AreaPath']).toBe('Ops\\Cloud');
    expect(item.fields['Custom.CostCenter']).toBeUndefined();
    // Both copies show the one ticket; no Jira issue was made.
    await waitFor(() =>
      [ROUTED, OPEN].every((c) =>
        ws.slack.messages.some(
          (m) => m.method === 'chat.update' && m.channel === c && textOf(m.blocks).includes(ticket.key!),
        ),
      )
        ? true
        : undefined,
    );
    expect(jira.ticketCount()).toBe(0);
    expect(ado.ticketCount()).toBe(1);
  });
});
