/**
 * Recommendation cards end to end (one workspace): ingest → a card in each subscribed channel →
 * Create ticket pressed twice on one card and once on the other → exactly one work item in the
 * Azure DevOps fake → both cards show its key; the status poll brings the ticket's status back
 * to both cards (Resolved once it is done).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollTicketStatuses, pollTicketStatusJob } from '../../src/tickets/poll-status.js';
import { type AzureDevOpsFake, startAzureDevOpsFake } from '../support/fakes/azure-devops-fake.js';
import type { SlackFakeMessage } from '../support/fakes/slack-fake.js';
import { waitFor } from '../support/wait.js';
import { useSlackWorkspace } from './harness.js';
import { textOf } from './helpers.js';

const CHANNELS = ['C0CARDSONE', 'C0CARDSTWO'] as const;

describe('Slack recommendation cards', () => {
  // The test runs the poll itself; the schedule must not race it.
  const ws = useSlackWorkspace({ CLOUDPI_TICKET_POLL_CRON: '0 0 1 1 *' });
  const running = ws.running;
  let ado: AzureDevOpsFake;
  beforeAll(async () => {
    ado = await startAzureDevOpsFake();
  });
  afterAll(async () => {
    await ado?.close();
  });

  const press = (user: string, message: SlackFakeMessage, label: string) => ws.press(user, message, label);

  it('posts a card per channel; three presses make one ticket that both cards show', async () => {
    const { repositories, integrations } = running.service;
    const tenant = await repositories.tenants.ensure('slack', ws.slack.teamId, 'Test');
    expect((await integrations.connect(tenant.id, 'azure-devops', ado.validValues, 'test')).ok).toBe(true);
    expect((await integrations.configure(tenant.id, 'azure-devops', ado.routing, 'test')).ok).toBe(true);
    for (const channel of CHANNELS) {
      ws.slack.joinChannel(channel);
      await repositories.routes.create(tenant.id, {
        platform: 'slack',
        channelId: channel,
        filters: { clouds: ['aws'] },
        createdBy: 'slack:U0ADMIN',
      });
    }
    const key = (await repositories.apiKeys.create(tenant.id, 'ingest')).key;
    const res = await fetch(`${running.service.url}/api/v1/recommendations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        id: 'rec-cards-1',
        title: 'Rightsize <!channel> i-0abc to t3.small',
        cloud: 'aws',
        account: '123456789012',
        resource: 'arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc',
        category: 'rightsizing',
        severity: 'high',
        monthlySavings: 1234.5,
        currency: 'USD',
        link: 'https://cloudpi.example/recommendations/rec-cards-1',
      }),
    });
    expect(res.status).toBe(200);

    const posted = await waitFor(() => {
      const cards = ws.slack.messages.filter((m) => m.method === 'chat.postMessage');
      return cards.length === 2 ? cards : undefined;
    });
    expect(posted.map((m) => m.channel).sort()).toEqual([...CHANNELS]);
    const first = posted[0]!;
    const second = posted[1]!;
    expect(textOf(first.blocks)).toContain('$1,234.50');
    // The title is plain text (a header): `<!channel>` in it is shown, not a mention.
    const [header, ...rest] = first.blocks as Record<string, unknown>[];
    expect(header).toMatchObject({ type: 'header', text: { type: 'plain_text' } });
    expect(JSON.stringify(rest)).not.toContain('<!channel>');
    const rec = await repositories.recommendations.findByExternalId(tenant.id, 'rec-cards-1');
    const cardRows = await repositories.recommendations.cards(tenant.id, rec!.id);
    expect(cardRows.map((c) => c.messageRef).sort()).toEqual([first.ts, second.ts].sort());

    await Promise.all([
      press(ws.slack.users.member, first, 'Create ticket'),
      press(ws.slack.users.member, first, 'Create ticket'),
      press(ws.slack.users.admin, second, 'Create ticket'),
    ]);

    const tickets = await waitFor(async () => {
      const rows = await repositories.recommendations.tickets(tenant.id, rec!.id);
      return rows.length === 1 && rows[0]!.key ? rows : undefined;
    });
    const ticketKey = tickets[0]!.key!;
    const showing = (channel: string) =>
      ws.slack.messages.some(
        (m) => m.method === 'chat.update' && m.channel === channel && textOf(m.blocks).includes(ticketKey),
      );
    await waitFor(() => (showing(CHANNELS[0]) && showing(CHANNELS[1]) ? true : undefined));
    expect(ado.ticketCount()).toBe(1);
    // The last state of both cards: the ticket, no Create ticket button.
    for (const channel of CHANNELS) {
      const last = ws.slack.messages
        .filter((m) => m.method === 'chat.update' && m.channel === channel)
        .at(-1)!;
      expect(textOf(last.blocks)).toContain(ticketKey);
      expect(textOf(last.blocks)).not.toContain('Create ticket');
    }

    // A resend with changes updates both posted cards instead of posting again.
    const resend = await fetch(`${running.service.url}/api/v1/recommendations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        id: 'rec-cards-1',
        title: 'Rightsize i-0abc to t3.micro',
        cloud: 'aws',
        severity: 'high',
        monthlySavings: 1500,
        currency: 'USD',
      }),
    });
    expect(resend.status).toBe(200);
    const updated = (channel: string) =>
      ws.slack.messages.some(
        (m) => m.method === 'chat.update' && m.channel === channel && textOf(m.blocks).includes('t3.micro'),
      );
    await waitFor(() => (updated(CHANNELS[0]) && updated(CHANNELS[1]) ? true : undefined));
    expect(ws.slack.messages.filter((m) => m.method === 'chat.postMessage')).toHaveLength(2);
    for (const channel of CHANNELS) {
      const last = ws.slack.messages
        .filter((m) => m.method === 'chat.update' && m.channel === channel)
        .at(-1)!;
      expect(textOf(last.blocks)).toContain('$1,500.00');
      expect(textOf(last.blocks)).toContain(ticketKey);
    }
  });

  it('brings the ticket status back to both cards by polling, and shows Resolved', async () => {
    const { repositories, database, tickets, logger, queue } = running.service;
    const tenant = await repositories.tenants.ensure('slack', ws.slack.teamId, 'Test');
    const rec = await repositories.recommendations.findByExternalId(tenant.id, 'rec-cards-1');
    const [ticket] = await repositories.recommendations.tickets(tenant.id, rec!.id);
    const ticketKey = ticket!.key!;
    const poll = () => pollTicketStatuses({ db: database.db, tickets, logger });
    const updates = () => ws.slack.messages.filter((m) => m.method === 'chat.update');
    const lastOf = (channel: string) =>
      updates()
        .filter((m) => m.channel === channel)
        .at(-1);

    // A change: both copies are updated with the new status.
    ado.setStatus(ticketKey, 'in_progress');
    expect(await poll()).toEqual({ checked: 1, changed: 1, failed: 0 });
    await waitFor(() =>
      // The provider's own status name (Azure DevOps: Active).
      CHANNELS.every((c) => textOf(lastOf(c)?.blocks).includes('· Active')) ? true : undefined,
    );
    for (const channel of CHANNELS) expect(textOf(lastOf(channel)?.blocks)).not.toContain('Resolved');

    // No change: no chat.update at all.
    const before = updates().length;
    expect(await poll()).toEqual({ checked: 1, changed: 0, failed: 0 });
    expect(updates()).toHaveLength(before);

    // Done in the provider, then the scheduled job (through the queue): both cards show Resolved.
    ado.setStatus(ticketKey, 'done');
    const jobId = await queue.send(pollTicketStatusJob, {});
    await waitFor(() =>
      CHANNELS.every((c) => textOf(lastOf(c)?.blocks).includes('Resolved')) ? true : undefined,
    );
    for (const channel of CHANNELS) {
      const text = textOf(lastOf(channel)?.blocks);
      expect(text).toContain(':white_check_mark: Resolved');
      expect(text).toContain(ticketKey);
    }
    const [row] = await repositories.recommendations.tickets(tenant.id, rec!.id);
    expect(['done', 'closed']).toContain(row!.status);
    await waitFor(async () =>
      (await queue.boss.getJobById(pollTicketStatusJob.name, jobId))?.state === 'completed'
        ? true
        : undefined,
    );

    // A resolved ticket is not polled again: a second run (queue and direct) updates nothing.
    const settled = updates().length;
    const again = await queue.send(pollTicketStatusJob, {});
    await waitFor(async () =>
      (await queue.boss.getJobById(pollTicketStatusJob.name, again))?.state === 'completed'
        ? true
        : undefined,
    );
    expect(await poll()).toEqual({ checked: 0, changed: 0, failed: 0 });
    expect(updates()).toHaveLength(settled);
  });
});
