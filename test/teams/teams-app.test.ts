/**
 * The Teams bot end to end (issue 6 point 10), over HTTP to /api/messages with activities as Teams
 * sends them (validated against the Bot Framework activity schema, signed as the Bot Connector
 * signs them), against the strict fake Bot Framework: command → dialog → wrong PAT → the error in
 * the dialog → right PAT → the status card shows Active; subscribe a channel; ingest → a card in
 * the channel → Action.Execute twice → one work item → the refreshed card shows it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AzureDevOpsFake, startAzureDevOpsFake } from '../support/fakes/azure-devops-fake.js';
import type { Json } from '../support/fakes/teams-fake.js';
import { waitFor } from '../support/wait.js';
import { actionsTitled, cardOfInvoke, cardsOfActivity, cardText, useTeamsBot } from './harness.js';

describe('Teams bot (end to end)', () => {
  const bot = useTeamsBot({ CLOUDPI_TICKET_POLL_CRON: '0 0 1 1 *' });
  let ado: AzureDevOpsFake;
  beforeAll(async () => {
    ado = await startAzureDevOpsFake();
  });
  afterAll(async () => {
    expect(ado?.specViolations ?? []).toEqual([]);
    await ado?.close();
  });

  /** The newest card the bot sent into a conversation after `since` activities. */
  async function nextCard(conversationId: string, since: number): Promise<Json> {
    return waitFor(() => {
      const sent = bot.fake.activities.slice(since).filter((a) => a.conversationId === conversationId);
      const cards = sent.flatMap((a) => cardsOfActivity(a.activity));
      return cards.at(-1);
    });
  }

  it('refuses requests without a valid Bot Framework token', async () => {
    const activity = bot.fake.message('help', { conversation: 'personal', user: 'admin' });
    expect((await bot.send(activity, { token: null })).status).toBe(401);
    const forged = await bot.fake.signInbound(activity, { flaw: 'wrong-audience' });
    expect((await bot.send(activity, { token: forged })).status).toBe(401);
    const expired = await bot.fake.signInbound(activity, { flaw: 'expired' });
    expect((await bot.send(activity, { token: expired })).status).toBe(401);
    const wrongKey = await bot.fake.signInbound(activity, { flaw: 'wrong-key' });
    expect([401, 500]).toContain((await bot.send(activity, { token: wrongKey })).status);
    // Nothing was answered to any of them.
    expect(bot.fake.activities).toHaveLength(0);
  });

  it('answers unknown input with the help card, and help lists the commands', async () => {
    const personal = bot.fake.personalConversationId('member');
    const before = bot.fake.activities.length;
    const res = await bot.send(bot.fake.message('integratons', { conversation: 'personal', user: 'member' }));
    expect(res.status).toBe(200);
    const card = await nextCard(personal, before);
    const text = cardText(card);
    expect(text).toContain('integrations');
    expect(text).toMatch(/Did you mean/i);
  });

  it('connects Azure DevOps through a dialog: wrong PAT shows the error in the dialog, right PAT shows Active', async () => {
    const personal = bot.fake.personalConversationId('admin');
    const before = bot.fake.activities.length;
    expect(
      (await bot.send(bot.fake.message('connect azure-devops', { conversation: 'personal', user: 'admin' })))
        .status,
    ).toBe(200);
    const launcher = await nextCard(personal, before);
    const [open] = actionsTitled(launcher, /Connect/);
    expect(open).toBeDefined();
    const openData = open!.data as Json;
    expect(openData).toMatchObject({
      msteams: { type: 'task/fetch' },
      verb: 'cloudpi.dialog.open',
      form: 'connect',
    });

    const fetched = await bot.send(bot.fake.taskFetch(openData, { conversation: 'personal', user: 'admin' }));
    expect(fetched.status).toBe(200);
    const form = cardOfInvoke(fetched.body);
    expect(cardText(form)).toContain('Organization URL');
    expect(cardText(form)).toContain('Personal Access Token (PAT)');
    const [save] = actionsTitled(form, 'Save');
    expect(save).toBeDefined();
    const saveData = save!.data as Json;

    // A wrong PAT: the live check fails and the dialog shows why, under the PAT input.
    const wrong = await bot.send(
      bot.fake.taskSubmit(
        { f_organizationUrl: ado.url, f_personalAccessToken: ado.wrongSecretValues.personalAccessToken! },
        { conversation: 'personal', user: 'admin', actionData: saveData },
      ),
    );
    expect(wrong.status).toBe(200);
    const wrongCard = cardOfInvoke(wrong.body);
    const body = wrongCard.body as Json[];
    const patIndex = body.findIndex((e) => e.id === 'f_personalAccessToken');
    expect(patIndex).toBeGreaterThanOrEqual(0);
    const under = body[patIndex + 1]!;
    expect(under.type).toBe('TextBlock');
    expect(String(under.color).toLowerCase()).toBe('attention');
    expect(String(under.text)).toMatch(/token|PAT/i);
    // The typed organization URL is kept; the secret is not echoed back.
    expect(body.find((e) => e.id === 'f_organizationUrl')?.value).toBe(ado.url);
    expect(JSON.stringify(wrongCard)).not.toContain(ado.wrongSecretValues.personalAccessToken!);

    // The right PAT: "Azure DevOps is connected and active".
    const right = await bot.send(
      bot.fake.taskSubmit(
        { f_organizationUrl: ado.url, f_personalAccessToken: ado.validValues.personalAccessToken! },
        { conversation: 'personal', user: 'admin', actionData: saveData },
      ),
    );
    expect(right.status).toBe(200);
    expect(cardText(cardOfInvoke(right.body))).toContain('Azure DevOps is connected and active');
    expect(JSON.stringify(right.body)).not.toContain(ado.validValues.personalAccessToken!);

    // The status card shows Active.
    const since = bot.fake.activities.length;
    await bot.send(bot.fake.message('integrations', { conversation: 'personal', user: 'admin' }));
    const board = await nextCard(personal, since);
    const boardText = cardText(board);
    expect(boardText).toMatch(/Azure DevOps[\s\S]*Active/);
    expect(boardText).toContain('Not Connected');
  });

  it('refuses admin dialogs to members', async () => {
    const res = await bot.send(
      bot.fake.taskFetch(
        { verb: 'cloudpi.dialog.open', form: 'connect', provider: 'jira' },
        { conversation: 'personal', user: 'member' },
      ),
    );
    expect(cardText(cardOfInvoke(res.body))).toContain('Only CloudPi admins can change integrations');
  });

  it('subscribes a channel, posts the card there, and two Action.Execute presses make one work item', async () => {
    const { repositories, integrations, url } = bot.running.service;
    const tenant = (await repositories.tenants.findByRef(`teams:${bot.fake.tenantId}`))!;
    expect((await integrations.configure(tenant.id, 'azure-devops', ado.routing, 'test')).ok).toBe(true);
    const channel = bot.fake.team.channels.alerts.id;

    // The bot is added to the team: it remembers the General channel and says hello there.
    expect((await bot.send(bot.fake.conversationUpdate())).status).toBe(200);

    // @CloudPi subscribe in the channel → the Subscribe button → the dialog → Subscribe.
    const before = bot.fake.activities.length;
    await bot.send(
      bot.fake.message('subscribe', { conversation: 'channel', channel: 'alerts', user: 'admin' }),
    );
    const launcher = await nextCard(channel, before);
    const [open] = actionsTitled(launcher, /Subscribe/);
    const fetched = await bot.send(
      bot.fake.taskFetch(open!.data as Json, { conversation: 'channel', channel: 'alerts', user: 'admin' }),
    );
    const form = cardOfInvoke(fetched.body);
    const [submit] = actionsTitled(form, /Subscribe/);
    const saved = await bot.send(
      bot.fake.taskSubmit(
        { f_clouds: 'aws,azure', f_minMonthlySavings: '10' },
        { conversation: 'channel', channel: 'alerts', user: 'admin', actionData: submit!.data as Json },
      ),
    );
    expect(cardText(cardOfInvoke(saved.body))).toContain('This channel is subscribed');
    const routes = await repositories.routes.list(tenant.id, { platform: 'teams', channelId: channel });
    expect(routes).toHaveLength(1);
    expect(routes[0]!.filters).toMatchObject({ clouds: ['aws', 'azure'], minMonthlySavings: 10 });

    // Ingest → a card in the channel (a proactive post with the stored conversation reference).
    const key = (await repositories.apiKeys.create(tenant.id, 'ingest')).key;
    const res = await fetch(`${url}/api/v1/recommendations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        id: 'rec-teams-1',
        title: 'Delete unattached disk [click](https://evil.example) **now**',
        cloud: 'azure',
        account: 'sub-42',
        monthlySavings: 88.1,
        currency: 'EUR',
        severity: 'medium',
      }),
    });
    expect(res.status).toBe(200);
    const posted = await waitFor(() =>
      bot.fake
        .conversation(channel)
        .find((m) => cardText(cardsOfActivity(m.activity)[0]).includes('Delete unattached disk')),
    );
    const card = cardsOfActivity(posted.activity)[0]!;
    expect(cardText(card)).toContain('€88.10');
    // Hostile markdown from the recommendation is shown, not rendered as a link.
    expect(JSON.stringify(card)).not.toContain('](https://evil.example)');
    expect(card.refresh).toMatchObject({ action: { type: 'Action.Execute', verb: 'cloudpi.card.refresh' } });
    const [create] = actionsTitled(card, 'Create ticket');
    expect(create).toMatchObject({ type: 'Action.Execute', verb: 'cloudpi.card.create' });

    // Two presses at once: each answered within the invoke deadline with the card; one work item.
    const press = () =>
      bot.send(
        bot.fake.adaptiveCardAction(
          { verb: 'cloudpi.card.create', data: create!.data as Json },
          { conversation: 'channel', channel: 'alerts', user: 'member', replyToId: posted.id },
        ),
      );
    const answers = await Promise.all([press(), press()]);
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.ms).toBeLessThan(5_000);
      expect(cardText(cardOfInvoke(answer.body))).toMatch(/Creating ticket|Ticket/);
    }
    const rec = (await repositories.recommendations.findByExternalId(tenant.id, 'rec-teams-1'))!;
    const ticket = await waitFor(async () => {
      const [row] = await repositories.recommendations.tickets(tenant.id, rec.id);
      return row?.key ? row : undefined;
    });
    expect(ado.ticketCount()).toBe(1);

    // The refresh (Teams asks for it when the card is shown) answers with the ticket.
    const refreshed = await bot.send(
      bot.fake.adaptiveCardAction(
        {
          verb: 'cloudpi.card.refresh',
          data: card.refresh ? (((card.refresh as Json).action as Json).data as Json) : {},
          trigger: 'automatic',
        },
        { conversation: 'channel', channel: 'alerts', user: 'member', replyToId: posted.id },
      ),
    );
    const refreshedCard = cardOfInvoke(refreshed.body);
    expect(cardText(refreshedCard)).toContain(ticket.key!);
    expect(actionsTitled(refreshedCard, 'Create ticket')).toEqual([]);
    // And the posted message itself was updated (every copy follows).
    await waitFor(() =>
      cardText(
        cardsOfActivity(bot.fake.conversation(channel).find((m) => m.id === posted.id)!.activity)[0],
      ).includes(ticket.key!)
        ? true
        : undefined,
    );
  });
});
