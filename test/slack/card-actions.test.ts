/**
 * Recommendation card buttons end to end (one workspace, two subscribed channels, Jira and Azure
 * DevOps both Active): one Create ticket button per provider, and a press makes exactly one ticket
 * in that provider only; a permanent refusal shows the provider's reason with Retry, and Retry
 * after the cause is fixed makes exactly one ticket; Dismiss hides the buttons in its channel
 * only; anyone in the channel may press, and an unsigned press is refused and does nothing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapeMrkdwn } from '../../adapters/chat/slack/render.js';
import { eq } from '../../src/storage/orm.js';
import { tickets as ticketsTable } from '../../src/storage/schema.js';
import { type AzureDevOpsFake, startAzureDevOpsFake } from '../support/fakes/azure-devops-fake.js';
import { type JiraFake, startJiraFake } from '../support/fakes/jira-fake.js';
import type { SlackFakeMessage } from '../support/fakes/slack-fake.js';
import { postSlackInteraction } from '../support/slack-requests.js';
import { waitFor } from '../support/wait.js';
import { SIGNING_SECRET, useSlackWorkspace } from './harness.js';
import { textOf } from './helpers.js';

const CHANNELS = ['C0ACTIONSONE', 'C0ACTIONSTWO'] as const;
const CREATE_JIRA = 'Create ticket in Jira';
const CREATE_ADO = 'Create ticket in Azure DevOps';

type Json = Record<string, unknown>;

describe('Slack recommendation card actions', () => {
  // No scheduled status poll racing the presses.
  const ws = useSlackWorkspace({ CLOUDPI_TICKET_POLL_CRON: '0 0 1 1 *' });
  const running = ws.running;
  let jira: JiraFake;
  let ado: AzureDevOpsFake;
  let tenantId: string;
  let ingestKey: string;

  beforeAll(async () => {
    [jira, ado] = await Promise.all([startJiraFake(), startAzureDevOpsFake()]);
    const { repositories, integrations } = running.service;
    tenantId = (await repositories.tenants.ensure('slack', ws.slack.teamId, 'Test')).id;
    expect((await integrations.connect(tenantId, 'jira', jira.validValues, 'test')).ok).toBe(true);
    expect((await integrations.configure(tenantId, 'jira', jira.routing, 'test')).ok).toBe(true);
    expect((await integrations.connect(tenantId, 'azure-devops', ado.validValues, 'test')).ok).toBe(true);
    expect((await integrations.configure(tenantId, 'azure-devops', ado.routing, 'test')).ok).toBe(true);
    const board = await integrations.statusBoard(tenantId);
    expect(board.filter((p) => p.status === 'active').map((p) => p.kind)).toEqual(['jira', 'azure-devops']);
    for (const channel of CHANNELS) {
      ws.slack.joinChannel(channel);
      await repositories.routes.create(tenantId, {
        platform: 'slack',
        channelId: channel,
        filters: { clouds: ['aws'] },
        createdBy: 'slack:U0ADMIN',
      });
    }
    ingestKey = (await repositories.apiKeys.create(tenantId, 'ingest')).key;
  });

  afterAll(async () => {
    expect(jira?.specViolations ?? []).toEqual([]);
    expect(ado?.specViolations ?? []).toEqual([]);
    await Promise.all([jira?.close(), ado?.close()]);
  });

  /** Ingests a recommendation and returns its id and the two posted cards (channel order). */
  async function newRecommendation(id: string, title: string) {
    const res = await fetch(`${running.service.url}/api/v1/recommendations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ingestKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        id,
        title,
        cloud: 'aws',
        account: '123456789012',
        resource: `arn:aws:ec2:eu-west-1:123456789012:instance/${id}`,
        category: 'rightsizing',
        severity: 'high',
        monthlySavings: 99.5,
        currency: 'USD',
      }),
    });
    expect(res.status).toBe(200);
    const posted = await waitFor(() => {
      const cards = ws.slack.messages.filter(
        (m) => m.method === 'chat.postMessage' && m.text === `Recommendation: ${title}`,
      );
      return cards.length === CHANNELS.length ? cards : undefined;
    });
    const byChannel = CHANNELS.map((c) => posted.find((m) => m.channel === c)!);
    expect(byChannel.every(Boolean)).toBe(true);
    const rec = await running.service.repositories.recommendations.findByExternalId(tenantId, id);
    return { rec: rec!, cards: byChannel as [SlackFakeMessage, SlackFakeMessage] };
  }

  /** The card as it shows now: its last post or update. */
  function latest(card: SlackFakeMessage): SlackFakeMessage {
    return ws.slack.messages.filter((m) => m.channel === card.channel && m.ts === card.ts).at(-1)!;
  }
  const updatesOf = (card: SlackFakeMessage) =>
    ws.slack.messages.filter(
      (m) => m.method === 'chat.update' && m.channel === card.channel && m.ts === card.ts,
    );

  function labels(card: SlackFakeMessage): string[] {
    return ((card.blocks ?? []) as Json[]).flatMap((b) =>
      b.type === 'actions'
        ? (b.elements as Json[]).filter((e) => e.type === 'button').map((e) => String((e.text as Json).text))
        : [],
    );
  }

  const interaction = (user: string, card: SlackFakeMessage, label: string): Json =>
    ws.pressPayload(user, latest(card), label);

  /** `user` presses the button `label` on the card as it shows now. */
  const press = (user: string, card: SlackFakeMessage, label: string) => ws.press(user, latest(card), label);

  const ticketsOf = (recommendationId: string) =>
    running.service.repositories.recommendations.tickets(tenantId, recommendationId);

  /** Waits for the one ticket of the recommendation to have a key. */
  async function createdTicket(recommendationId: string) {
    const rows = await waitFor(async () => {
      const found = await ticketsOf(recommendationId);
      return found.length >= 1 && found.every((t) => t.key) ? found : undefined;
    });
    expect(rows).toHaveLength(1);
    return rows[0]!;
  }

  /** Every card post and update since call `since` was accepted by Slack (no invalid_blocks, no missing message). */
  function expectNoRefusedCardCalls(since: number): void {
    const refused = ws.slack.calls
      .slice(since)
      .filter(
        (c) => (c.method === 'chat.postMessage' || c.method === 'chat.update') && c.error !== undefined,
      );
    expect(refused.map((c) => `${c.method}: ${c.error}`)).toEqual([]);
  }

  it('offers one Create ticket button per Active provider; Jira makes one Jira issue only', async () => {
    const since = ws.slack.calls.length;
    const { rec, cards } = await newRecommendation('rec-actions-a', 'Rightsize i-0aaa to t3.small');
    for (const card of cards) {
      expect(labels(card)).toEqual([CREATE_JIRA, CREATE_ADO, 'Dismiss']);
    }
    const adoBefore = ado.ticketCount();
    const jiraBefore = jira.ticketCount();

    await press(ws.slack.users.member, cards[0], CREATE_JIRA);
    const ticket = await createdTicket(rec.id);
    expect(ticket.provider).toBe('jira');
    expect(ticket.key).toMatch(/^OPS-\d+$/);
    expect(jira.ticketCount()).toBe(jiraBefore + 1);
    expect(jira.issues.get(ticket.key!)).toBeDefined();
    expect(ado.ticketCount()).toBe(adoBefore);

    // Both copies show the Jira key and no Create ticket button any more.
    await waitFor(() => cards.every((c) => textOf(latest(c).blocks).includes(ticket.key!)) || undefined);
    for (const card of cards) {
      const shown = latest(card);
      expect(shown.method).toBe('chat.update');
      expect(textOf(shown.blocks)).toContain(`Ticket <${ticket.url}|${ticket.key}>`);
      expect(labels(shown).filter((l) => l.startsWith('Create ticket'))).toEqual([]);
      expect(labels(shown)).not.toContain('Dismiss');
    }
    // Nothing was asked of Azure DevOps for this recommendation.
    expect(JSON.stringify(ado.requests.map((r) => r.body ?? null))).not.toContain(rec.id);
    expectNoRefusedCardCalls(since);
  });

  it('a card update that lands after the state changed is followed by one showing the change (replicas racing)', async () => {
    const { rec, cards } = await newRecommendation('rec-actions-race', 'Stop idle instance i-0race');
    await press(ws.slack.users.member, cards[0], CREATE_JIRA);
    const ticket = await createdTicket(rec.id);
    await waitFor(() => cards.every((c) => textOf(latest(c).blocks).includes(ticket.key!)) || undefined);
    await sleep(300);
    // The ticket moves on; a refresh reads it as in progress, its first update is slow to reach
    // Slack, and the ticket is resolved meanwhile (as by a status webhook on another replica).
    const setStatus = (status: string, providerStatus: string) =>
      running.service.database.db
        .update(ticketsTable)
        .set({ status, providerStatus })
        .where(eq(ticketsTable.id, ticket.id));
    await setStatus('in_progress', 'In Progress');
    let release!: () => void;
    ws.slack.holdNext('chat.update', new Promise<void>((resolve) => (release = resolve)));
    const since = ws.slack.calls.length;
    const refreshed = running.service.cards.refresh(tenantId, rec.id);
    await waitFor(() => ws.slack.calls.slice(since).some((c) => c.method === 'chat.update') || undefined);
    await setStatus('done', 'Done');
    release();
    await refreshed;
    for (const card of cards) {
      const shown = textOf(latest(card).blocks);
      expect(shown).toContain(ticket.key!);
      expect(shown).toContain('Done');
    }
    expectNoRefusedCardCalls(since);
  });

  it("shows a permanent refusal with the provider's reason and Retry; Retry makes exactly one ticket", async () => {
    const since = ws.slack.calls.length;
    const { rec, cards } = await newRecommendation('rec-actions-b', 'Delete idle volume vol-0bbb');
    const adoBefore = ado.ticketCount();
    const jiraBefore = jira.ticketCount();
    // A reader-only account: 403 on create, which is not retryable (FORBIDDEN).
    ado.denyCreate(ado.routing.project as string, true);
    try {
      await press(ws.slack.users.member, cards[0], CREATE_ADO);
      const failedText = (card: SlackFakeMessage) => textOf(latest(card).blocks);
      await waitFor(
        () =>
          cards.every((c) => failedText(c).includes(':warning: The ticket could not be created:')) ||
          undefined,
      );
      const [failed] = await ticketsOf(rec.id);
      expect(failed).toMatchObject({ provider: 'azure-devops', status: 'failed', key: null });
      expect(failed!.lastError).toContain('TF237111');
      const reason = escapeMrkdwn(failed!.lastError!);
      for (const card of cards) {
        const text = failedText(card);
        // The provider's reason, and a Retry button instead of the Create ticket ones.
        expect(text).toContain(`:warning: The ticket could not be created: ${reason.slice(0, 80)}`);
        expect(text).toContain('TF237111');
        expect(labels(latest(card))).toEqual(['Retry']);
      }
      expect(ado.ticketCount()).toBe(adoBefore);
    } finally {
      ado.denyCreate(ado.routing.project as string, false);
    }

    // The cause is fixed; Retry pressed on both copies at once: one work item.
    await Promise.all([
      press(ws.slack.users.member, cards[0], 'Retry'),
      press(ws.slack.users.admin, cards[1], 'Retry'),
    ]);
    const ticket = await createdTicket(rec.id);
    expect(ticket).toMatchObject({ provider: 'azure-devops', lastError: null });
    expect(ticket.key).toMatch(/^\d+$/);
    await waitFor(() => cards.every((c) => textOf(latest(c).blocks).includes(ticket.key!)) || undefined);
    // Let a second (wrongly queued) attempt show itself before counting.
    await sleep(500);
    expect(ado.ticketCount()).toBe(adoBefore + 1);
    expect(jira.ticketCount()).toBe(jiraBefore);
    expect(await ticketsOf(rec.id)).toHaveLength(1);
    for (const card of cards) {
      const shown = latest(card);
      expect(textOf(shown.blocks)).toContain(`Ticket <${ticket.url}|${ticket.key}>`);
      expect(textOf(shown.blocks)).not.toContain('could not be created');
      expect(labels(shown)).not.toContain('Retry');
      expect(labels(shown).filter((l) => l.startsWith('Create ticket'))).toEqual([]);
    }
    expectNoRefusedCardCalls(since);
  });

  it('dismisses the copy in one channel only; the other keeps its buttons', async () => {
    const since = ws.slack.calls.length;
    const { rec, cards } = await newRecommendation('rec-actions-c', 'Buy a savings plan for m5');
    const [dismissed, other] = cards;
    await press(ws.slack.users.member, dismissed, 'Dismiss');
    await waitFor(() => textOf(latest(dismissed).blocks).includes('Dismissed in this channel.') || undefined);
    expect(labels(latest(dismissed))).toEqual([]);
    expect(textOf(latest(other).blocks)).not.toContain('Dismissed');
    expect(labels(latest(other))).toEqual([CREATE_JIRA, CREATE_ADO, 'Dismiss']);
    const rows = await running.service.repositories.recommendations.cards(tenantId, rec.id);
    expect(Object.fromEntries(rows.map((r) => [r.channelId, r.state === 'dismissed']))).toEqual({
      [CHANNELS[0]]: true,
      [CHANNELS[1]]: false,
    });
    expect(await ticketsOf(rec.id)).toEqual([]);

    // A ticket made from the other copy: both show it, and the dismissed copy stays dismissed.
    await press(ws.slack.users.member, other, CREATE_JIRA);
    const ticket = await createdTicket(rec.id);
    await waitFor(() => textOf(latest(other).blocks).includes(ticket.key!) || undefined);
    // The dismissed copy is updated with the ticket too, and Slack accepts that update.
    await waitFor(
      () =>
        ws.slack.calls
          .slice(since)
          .some(
            (c) =>
              c.method === 'chat.update' &&
              c.body.channel === dismissed.channel &&
              c.body.ts === dismissed.ts &&
              c.status !== undefined &&
              textOf(c.body.blocks).includes(ticket.key!),
          ) || undefined,
    );
    expectNoRefusedCardCalls(since);
    expect(textOf(latest(dismissed).blocks)).toContain(ticket.key!);
    expect(textOf(latest(dismissed).blocks)).toContain('Dismissed in this channel.');
    expect(labels(latest(dismissed))).toEqual([]);
    expect(textOf(latest(other).blocks)).not.toContain('Dismissed');
    expectNoRefusedCardCalls(since);
  });

  it('lets anyone in the channel create the ticket, and refuses an unsigned press', async () => {
    const since = ws.slack.calls.length;
    const outsider = 'U0OUTSIDER';
    // A plain workspace member: no CloudPi admin, nothing to do with the Jira account.
    ws.slack.addUser({ id: outsider, name: 'oscar.outsider', is_admin: false, is_owner: false });
    const { rec, cards } = await newRecommendation('rec-actions-d', 'Stop idle instance i-0ddd');
    const jiraBefore = jira.ticketCount();
    const jiraRequests = jira.requests.length;

    // Forged: signed with another secret, or with a made-up signature.
    const forged = await postSlackInteraction(
      running.service.url,
      'not-the-signing-secret-0123456789',
      interaction(ws.slack.users.admin, cards[0], CREATE_JIRA),
    );
    expect(forged.status).toBe(401);
    const unsigned = await postSlackInteraction(
      running.service.url,
      SIGNING_SECRET,
      interaction(ws.slack.users.admin, cards[0], CREATE_JIRA),
      { signature: `v0=${'0'.repeat(64)}` },
    );
    expect(unsigned.status).toBe(401);
    await sleep(500);
    expect(await ticketsOf(rec.id)).toEqual([]);
    expect(jira.ticketCount()).toBe(jiraBefore);
    expect(jira.requests.length).toBe(jiraRequests);
    expect(cards.flatMap(updatesOf)).toEqual([]);

    // The outsider presses on the second copy: the ticket is made, in their name.
    await press(outsider, cards[1], CREATE_JIRA);
    const ticket = await createdTicket(rec.id);
    expect(ticket).toMatchObject({ provider: 'jira', createdBy: `slack:${outsider}` });
    expect(jira.ticketCount()).toBe(jiraBefore + 1);
    await waitFor(() => cards.every((c) => textOf(latest(c).blocks).includes(ticket.key!)) || undefined);
    for (const card of cards) expect(textOf(latest(card).blocks)).toContain(`by <@${outsider}>`);
    // No "you may not" answer went to the outsider.
    expect(ws.slack.messages.filter((m) => m.method === 'chat.postEphemeral' && m.user === outsider)).toEqual(
      [],
    );
    expectNoRefusedCardCalls(since);
  });
});
