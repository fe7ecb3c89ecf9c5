/**
 * Teams proactive cards (issue 6 points 4-7): cards reach subscribed channels through the stored
 * conversation references within Teams' per-conversation limits; 429 / 412 are retried (no call
 * before its Retry-After); a channel the bot was removed from fails the card for good and hands
 * it to the fallback; status changes reach every copy; status board buttons and dialogs (Edit →
 * Update with the secret kept, Disconnect after confirmation); one tenant never sees another's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollTicketStatuses } from '../../src/tickets/poll-status.js';
import { type AzureDevOpsFake, startAzureDevOpsFake } from '../support/fakes/azure-devops-fake.js';
import type { Json } from '../support/fakes/teams-fake.js';
import { waitFor } from '../support/wait.js';
import { actionsTitled, cardOfInvoke, cardsOfActivity, cardText, useTeamsBot } from './harness.js';

describe('Teams proactive cards and settings', () => {
  const bot = useTeamsBot({ CLOUDPI_TICKET_POLL_CRON: '0 0 1 1 *' });
  let ado: AzureDevOpsFake;
  let tenantId: string;
  const alerts = () => bot.fake.team.channels.alerts.id;
  const general = () => bot.fake.team.channels.general.id;

  beforeAll(async () => {
    ado = await startAzureDevOpsFake();
    const { repositories, integrations } = bot.running.service;
    // The bot is installed in the team and spoken to in both channels: it knows their references.
    expect((await bot.send(bot.fake.conversationUpdate())).status).toBe(200);
    for (const channel of ['general', 'alerts'] as const)
      expect(
        (await bot.send(bot.fake.message('help', { conversation: 'channel', channel, user: 'member' })))
          .status,
      ).toBe(200);
    tenantId = (await repositories.tenants.findByRef(`teams:${bot.fake.tenantId}`))!.id;
    expect((await integrations.connect(tenantId, 'azure-devops', ado.validValues, 'test')).ok).toBe(true);
    expect((await integrations.configure(tenantId, 'azure-devops', ado.routing, 'test')).ok).toBe(true);
    for (const channelId of [general(), alerts()])
      await repositories.routes.create(tenantId, {
        platform: 'teams',
        channelId,
        filters: {},
        createdBy: 'test',
      });
  });
  afterAll(async () => {
    await ado?.close();
  });

  const cardsIn = (channel: string, title: string) =>
    bot.fake.conversation(channel).filter((m) => cardText(cardsOfActivity(m.activity)[0]).includes(title));

  async function ingest(id: string, title = `Stop idle VM ${id}`) {
    await bot.running.service.recommendations.ingestRecommendations(tenantId, { id, title, cloud: 'azure' });
  }

  it('posts into every subscribed channel within the limits, and every copy follows the ticket status', async () => {
    const calls = bot.fake.calls.length;
    // A burst of 9 for the same two channels: Teams allows 7 a second per conversation.
    for (let i = 0; i < 9; i++) await ingest(`rec-burst-${i}`, `Burst ${i} resize`);
    await waitFor(
      () => ([alerts(), general()].every((c) => cardsIn(c, 'resize').length === 9) ? true : undefined),
      20_000,
    );
    const posts = bot.fake.calls
      .slice(calls)
      .filter((c) => c.method === 'POST' && /\/activities$/.test(c.path));
    expect(posts.filter((c) => c.status === 429)).toEqual([]);

    // A ticket, then its status from Azure DevOps by polling: both copies show it.
    const { repositories, database, tickets, logger } = bot.running.service;
    const rec = (await repositories.recommendations.findByExternalId(tenantId, 'rec-burst-0'))!;
    const [copy] = cardsIn(alerts(), 'Burst 0 resize');
    const card = cardsOfActivity(copy!.activity)[0]!;
    const [create] = actionsTitled(card, 'Create ticket');
    const pressed = await bot.send(
      bot.fake.adaptiveCardAction(
        { verb: 'cloudpi.card.create', data: create!.data as Json },
        { conversation: 'channel', channel: 'alerts', user: 'member', replyToId: copy!.id },
      ),
    );
    expect(pressed.status).toBe(200);
    const ticket = await waitFor(async () => {
      const [row] = await repositories.recommendations.tickets(tenantId, rec.id);
      return row?.key ? row : undefined;
    });
    ado.setStatus(ticket.key!, 'in_progress');
    expect(await pollTicketStatuses({ db: database.db, tickets, logger })).toMatchObject({ changed: 1 });
    await waitFor(() =>
      [alerts(), general()].every((c) =>
        cardText(cardsOfActivity(cardsIn(c, 'Burst 0 resize')[0]!.activity)[0]).includes('Active'),
      )
        ? true
        : undefined,
    );
    for (const c of [alerts(), general()])
      expect(cardText(cardsOfActivity(cardsIn(c, 'Burst 0 resize')[0]!.activity)[0])).toContain(ticket.key!);
  });

  it('waits out a 429 (Retry-After) and retries a 412', async () => {
    // The cards of the test before are refreshed by jobs: let them finish, so the 429 meets a post of this test.
    await waitFor(async () => {
      const refresh = await bot.running.service.queue.counts('cards.refresh');
      return refresh.queued === 0 && refresh.active === 0 ? true : undefined;
    }, 30_000);
    const calls = bot.fake.calls.length;
    bot.fake.rateLimitNext(1, 2);
    await ingest('rec-429', 'Throttled delete');
    await waitFor(
      () =>
        [alerts(), general()].every((c) => cardsIn(c, 'Throttled delete').length === 1) ? true : undefined,
      20_000,
    );
    const connector = bot.fake.calls.slice(calls).filter((c) => c.conversationId);
    const limited = connector.find((c) => c.status === 429)!;
    expect(limited).toBeDefined();
    const after = connector.filter(
      (c) =>
        c.at > limited.at && c.conversationId === limited.conversationId && c.operation === limited.operation,
    );
    expect(after.length).toBeGreaterThan(0);
    expect(after[0]!.at - limited.at).toBeGreaterThanOrEqual(1_900);

    const before412 = bot.fake.calls.length;
    bot.fake.failNext(1, 412, '/activities');
    await ingest('rec-412', 'Precondition delete');
    await waitFor(
      () =>
        [alerts(), general()].every((c) => cardsIn(c, 'Precondition delete').length === 1) ? true : undefined,
      20_000,
    );
    expect(bot.fake.calls.slice(before412).some((c) => c.status === 412)).toBe(true);
  });

  it('a channel the bot was removed from: the card fails for good and goes to the fallback', async () => {
    bot.fake.removeBot(alerts());
    await ingest('rec-removed', 'Orphaned snapshot');
    const { repositories } = bot.running.service;
    const rec = await waitFor(() => repositories.recommendations.findByExternalId(tenantId, 'rec-removed'));
    const failed = await waitFor(async () => {
      const cards = await repositories.recommendations.cards(tenantId, rec.id);
      const gone = cards.find((c) => c.channelId === alerts());
      return gone?.fallbackState && gone.fallbackState !== 'queued' ? gone : undefined;
    });
    expect(failed).toMatchObject({ state: 'failed', fallbackState: 'unavailable' });
    expect(failed.lastError).toMatch(/BotNotInConversationRoster|Forbidden/);
    // The other channel got its card; the removed one is remembered as removed.
    await waitFor(() => (cardsIn(general(), 'Orphaned snapshot').length === 1 ? true : undefined));
    expect((await repositories.conversations.find(tenantId, 'teams', alerts()))?.removedAt).toBeInstanceOf(
      Date,
    );
    bot.fake.restoreBot(alerts());
  });

  it('status board buttons: Pause shows Connected; Edit opens the form with Update and the PAT kept; Disconnect asks first', async () => {
    const personal = bot.fake.personalConversationId('admin');
    const before = bot.fake.activities.length;
    await bot.send(bot.fake.message('integrations', { conversation: 'personal', user: 'admin' }));
    const board = await waitFor(() =>
      bot.fake.activities
        .slice(before)
        .filter((a) => a.conversationId === personal)
        .flatMap((a) => cardsOfActivity(a.activity))
        .at(-1),
    );
    const [pause] = actionsTitled(board, 'Pause');
    expect(pause).toMatchObject({ type: 'Action.Execute', verb: 'cloudpi.board.pause' });
    const paused = await bot.send(
      bot.fake.adaptiveCardAction(
        { verb: 'cloudpi.board.pause', data: pause!.data as Json },
        { conversation: 'personal', user: 'admin' },
      ),
    );
    expect(cardText(cardOfInvoke(paused.body))).toMatch(/Azure DevOps[\s\S]*Connected/);
    const [activate] = actionsTitled(cardOfInvoke(paused.body), 'Activate');
    await bot.send(
      bot.fake.adaptiveCardAction(
        { verb: 'cloudpi.board.activate', data: activate!.data as Json },
        { conversation: 'personal', user: 'admin' },
      ),
    );
    // A member pressing the same button is refused and changes nothing.
    const refused = await bot.send(
      bot.fake.adaptiveCardAction(
        { verb: 'cloudpi.board.pause', data: pause!.data as Json },
        { conversation: 'personal', user: 'member' },
      ),
    );
    expect(cardText(cardOfInvoke(refused.body))).toContain('Only CloudPi admins');
    expect((await bot.running.service.integrations.status(tenantId, 'azure-devops')).status).toBe('active');

    const [edit] = actionsTitled(board, 'Edit');
    const form = cardOfInvoke(
      (await bot.send(bot.fake.taskFetch(edit!.data as Json, { conversation: 'personal', user: 'admin' })))
        .body,
    );
    expect(actionsTitled(form, 'Update')).toHaveLength(1);
    const pat = (form.body as Json[]).find((e) => e.id === 'f_personalAccessToken')!;
    expect(pat.value).toBeUndefined();
    expect(cardText(form)).toContain('Leave blank to keep the saved value.');
    expect(JSON.stringify(form)).not.toContain(ado.validValues.personalAccessToken!);
    // Update with the PAT left blank keeps the saved one.
    const updated = await bot.send(
      bot.fake.taskSubmit(
        { f_organizationUrl: ado.url, f_personalAccessToken: '' },
        {
          conversation: 'personal',
          user: 'admin',
          actionData: actionsTitled(form, 'Update')[0]!.data as Json,
        },
      ),
    );
    expect(cardText(cardOfInvoke(updated.body))).toContain('Azure DevOps is connected and active');

    const [disconnect] = actionsTitled(board, 'Disconnect Provider');
    const confirm = cardOfInvoke(
      (
        await bot.send(
          bot.fake.taskFetch(disconnect!.data as Json, { conversation: 'personal', user: 'admin' }),
        )
      ).body,
    );
    expect(cardText(confirm)).toContain('CloudPi will delete the saved Azure DevOps credentials');
    expect((await bot.running.service.integrations.status(tenantId, 'azure-devops')).status).toBe('active');
    const [sure] = actionsTitled(confirm, 'Disconnect Provider');
    const done = await bot.send(
      bot.fake.taskSubmit({}, { conversation: 'personal', user: 'admin', actionData: sure!.data as Json }),
    );
    expect(cardText(cardOfInvoke(done.body))).toContain('Azure DevOps is disconnected');
    expect((await bot.running.service.integrations.status(tenantId, 'azure-devops')).status).toBe(
      'not_connected',
    );
  });

  it("never shows one tenant's settings to another", async () => {
    const other = '0f0e0d0c-0b0a-4909-8807-060504030201';
    const { integrations, repositories } = bot.running.service;
    expect((await integrations.connect(tenantId, 'azure-devops', ado.validValues, 'test')).ok).toBe(true);
    const activity = bot.fake.message('integrations', { conversation: 'personal', user: 'admin' }) as Json;
    // The same chat id (the fake's connector knows it), but another organization's tenant.
    const conversation = { ...(activity.conversation as Json), tenantId: other };
    const foreign = {
      ...activity,
      conversation,
      channelData: { ...(activity.channelData as Json), tenant: { id: other } },
    };
    const before = bot.fake.activities.length;
    expect((await bot.send(foreign)).status).toBe(200);
    const board = await waitFor(() =>
      bot.fake.activities
        .slice(before)
        .flatMap((a) => cardsOfActivity(a.activity))
        .at(-1),
    );
    const text = cardText(board);
    expect(text).not.toMatch(/Azure DevOps[^\n]*\n[^\n]*Active/);
    expect(text).not.toContain(ado.url);
    const otherTenant = (await repositories.tenants.findByRef(`teams:${other}`))!;
    expect(otherTenant.id).not.toBe(tenantId);
    expect((await integrations.status(otherTenant.id, 'azure-devops')).status).toBe('not_connected');
  });
});
