/**
 * The recommendation pipeline end to end (issue 5 point 7), on Slack with Jira: ingest → cards in
 * two subscribed channels (a third, which the bot was removed from, is recorded as a delivery
 * failure and handed to the fallback) → a double click on one card and a click on the other →
 * one Jira issue → both cards show it → the admin sets up the Jira webhook from chat → Jira's own
 * signed delivery says Done → both cards show Resolved · Done.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type JiraFake, startJiraFake } from '../support/fakes/jira-fake.js';
import type { SlackFakeMessage } from '../support/fakes/slack-fake.js';
import { waitFor } from '../support/wait.js';
import { useSlackWorkspace } from './harness.js';
import { type ResponseUrls, startResponseUrls, textOf } from './helpers.js';

const CHANNELS = ['C0PIPEONE', 'C0PIPETWO'] as const;
const REMOVED = 'C0PIPEGONE';

describe('recommendation pipeline on Slack (end to end)', () => {
  const ws = useSlackWorkspace({ CLOUDPI_TICKET_POLL_CRON: '0 0 1 1 *' }, { webhookDebounceSeconds: 1 });
  const running = ws.running;
  let jira: JiraFake;
  let responses: ResponseUrls;
  beforeAll(async () => {
    [jira, responses] = await Promise.all([startJiraFake(), startResponseUrls()]);
  });
  afterAll(async () => {
    expect(jira?.specViolations ?? []).toEqual([]);
    await Promise.all([jira?.close(), responses?.close()]);
  });

  const lastCard = (channel: string): SlackFakeMessage | undefined =>
    ws.slack.messages.filter((m) => m.channel === channel && m.method !== 'chat.postEphemeral').at(-1);

  const press = (user: string, message: SlackFakeMessage, label: string) => ws.press(user, message, label);

  it('ingest → two cards → three clicks → one Jira issue → Jira webhook Done → both cards resolved', async () => {
    const { repositories, integrations } = running.service;
    const tenant = await repositories.tenants.ensure('slack', ws.slack.teamId, 'Test');
    expect((await integrations.connect(tenant.id, 'jira', jira.validValues, 'test')).ok).toBe(true);
    expect((await integrations.configure(tenant.id, 'jira', jira.routing, 'test')).ok).toBe(true);
    for (const channel of [...CHANNELS, REMOVED]) {
      ws.slack.joinChannel(channel);
      await repositories.routes.create(tenant.id, {
        platform: 'slack',
        channelId: channel,
        filters: { clouds: ['aws'], minMonthlySavings: 100 },
        createdBy: 'slack:U0ADMIN',
      });
    }
    ws.slack.leaveChannel(REMOVED);

    // Ingest, through the API: one that matches, one below the savings filter.
    const key = (await repositories.apiKeys.create(tenant.id, 'ingest')).key;
    const res = await fetch(`${running.service.url}/api/v1/recommendations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify([
        {
          id: 'rec-pipe-1',
          title: 'Rightsize i-0abc to t3.small',
          cloud: 'aws',
          resource: 'arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc',
          severity: 'high',
          monthlySavings: 412.5,
          currency: 'EUR',
        },
        { id: 'rec-pipe-small', title: 'Tiny saving', cloud: 'aws', monthlySavings: 3 },
      ]),
    });
    expect(res.status).toBe(200);

    const posted = await waitFor(() => {
      const cards = ws.slack.messages.filter((m) => m.method === 'chat.postMessage');
      return cards.length >= 2 ? cards : undefined;
    });
    expect(posted.map((m) => m.channel).sort()).toEqual([...CHANNELS]);
    expect(textOf(posted[0]!.blocks)).toContain('€412.50');

    // The removed channel: recorded, audited, handed to the fallback (no SMTP here: unavailable).
    const rec = (await repositories.recommendations.findByExternalId(tenant.id, 'rec-pipe-1'))!;
    const gone = await waitFor(async () => {
      const card = (await repositories.recommendations.cards(tenant.id, rec.id)).find(
        (c) => c.channelId === REMOVED,
      );
      return card?.fallbackState && card.fallbackState !== 'queued' ? card : undefined;
    });
    expect(gone).toMatchObject({
      state: 'failed',
      lastError: 'not_in_channel',
      fallbackState: 'unavailable',
    });
    expect(gone.fallbackNote).toMatch(/SMTP/);
    const actions = (await repositories.audit.recent(tenant.id, 50)).map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(['card.delivery_failed', 'card.fallback_unavailable']));
    const home = JSON.stringify(await ws.openHome(ws.slack.users.admin));
    expect(home).toContain(`<#${REMOVED}>`);
    expect(home).toContain('Fallback not possible');

    // Double click on one copy, a click on the other: one issue, both copies show it.
    const [first, second] = CHANNELS.map((c) => posted.find((m) => m.channel === c)!);
    await Promise.all([
      press(ws.slack.users.member, first!, 'Create ticket'),
      press(ws.slack.users.member, first!, 'Create ticket'),
      press(ws.slack.users.admin, second!, 'Create ticket'),
    ]);
    const ticket = await waitFor(async () => {
      const rows = await repositories.recommendations.tickets(tenant.id, rec.id);
      return rows.length === 1 && rows[0]!.key ? rows[0]! : undefined;
    });
    expect(jira.ticketCount()).toBe(1);
    const issueKey = ticket.key!;
    await waitFor(() =>
      CHANNELS.every((c) => textOf(lastCard(c)?.blocks).includes(issueKey)) ? true : undefined,
    );
    for (const channel of CHANNELS) expect(textOf(lastCard(channel)?.blocks)).toContain('To Do');

    // The admin sets up Jira's webhook from chat: URL and secret, shown once, only to them.
    const responseUrl = responses.url();
    await ws.command('webhook jira', ws.slack.users.admin, CHANNELS[0], responseUrl);
    const answer = await waitFor(() => responses.posts.find((p) => p.path === new URL(responseUrl).pathname));
    expect(answer.body.response_type ?? 'ephemeral').toBe('ephemeral');
    const text = textOf(answer.body.blocks ?? answer.body.text);
    const url = /URL: (http\S+?\/webhooks\/jira\/[A-Za-z0-9_-]{22})/.exec(text)?.[1];
    const secret = /Secret \(shown only now[^)]*\): ([A-Za-z0-9_-]{43})/.exec(text)?.[1];
    expect(url).toBeDefined();
    expect(secret).toBeDefined();
    jira.addWebhook({ url: url!, secret: secret! });

    // Jira: the issue is done; its signed delivery arrives; both cards follow.
    jira.setStatus(issueKey, 'done');
    await jira.webhooksSettled();
    expect(jira.webhookDeliveries.map((d) => d.status)).toEqual([202]);
    await waitFor(() =>
      CHANNELS.every((c) => textOf(lastCard(c)?.blocks).includes(':white_check_mark: Resolved'))
        ? true
        : undefined,
    );
    for (const channel of CHANNELS) {
      const shown = textOf(lastCard(channel)?.blocks);
      expect(shown).toContain(issueKey);
      expect(shown).toContain('Done');
      expect(shown).not.toContain('Create ticket');
    }
    expect((await repositories.recommendations.tickets(tenant.id, rec.id))[0]!.status).toBe('done');
    // Still one issue, and the small recommendation never made a card.
    expect(jira.ticketCount()).toBe(1);
    expect(ws.slack.messages.filter((m) => m.method === 'chat.postMessage')).toHaveLength(2);
  });
});
