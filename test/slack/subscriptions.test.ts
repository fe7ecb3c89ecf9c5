/**
 * Channel subscriptions from Slack (/cloudpi subscribe, /cloudpi unsubscribe) in the running
 * service (one-workspace mode), driven with signed requests against the strict Slack fake.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  blockActionsPayload,
  postSlackInteraction,
  viewSubmissionPayload,
} from '../support/slack-requests.js';
import { waitFor } from '../support/wait.js';
import { SIGNING_SECRET, useSlackWorkspace } from './harness.js';
import { blockById, button, inputBlock, type ResponseUrls, startResponseUrls, textOf } from './helpers.js';

type Json = Record<string, unknown>;

const CHANNEL = 'C0CLOUDOPS';

describe('Slack subscriptions', () => {
  const ws = useSlackWorkspace();
  const running = ws.running;
  let responses: ResponseUrls;
  beforeAll(async () => {
    responses = await startResponseUrls();
  });
  afterAll(async () => {
    await responses?.close();
  });

  const base = () => running.service.url;

  async function command(text: string, user: string, channel = CHANNEL) {
    const responseUrl = responses.url();
    const triggerId = await ws.command(text, user, channel, responseUrl);
    return { triggerId, responseUrl };
  }

  async function answerAt(responseUrl: string): Promise<Json> {
    const path = new URL(responseUrl).pathname;
    return (await waitFor(() => responses.posts.find((p) => p.path === path))).body;
  }

  async function modalOpenedWith(triggerId: string): Promise<{ id: string; view: Json }> {
    const call = await waitFor(() =>
      ws.slack.calls.find((c) => c.method === 'views.open' && c.body.trigger_id === triggerId && c.status),
    );
    expect(call.error).toBeUndefined();
    const id = [...ws.slack.modals.keys()].at(-1)!;
    return { id, view: ws.slack.modals.get(id)!.view };
  }

  async function submit(view: Json, user: string, fields: Record<string, unknown>) {
    const values = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, { [k]: v }]));
    const res = await postSlackInteraction(
      base(),
      SIGNING_SECRET,
      viewSubmissionPayload({ teamId: ws.slack.teamId, userId: user, view, values }),
    );
    expect(res.status).toBe(200);
    const text = await res.text();
    return text ? (JSON.parse(text) as Json) : {};
  }

  /** Presses a button of an ephemeral message (in CHANNEL); returns the response_url it answers at. */
  async function pressInMessage(user: string, message: Json, label: string, value?: string) {
    const element = button(message, label);
    const responseUrl = responses.url();
    const res = await postSlackInteraction(
      base(),
      SIGNING_SECRET,
      blockActionsPayload({
        teamId: ws.slack.teamId,
        userId: user,
        actionId: String(element.action_id),
        triggerId: ws.slack.issueTriggerId(user),
        message: { blocks: message.blocks, text: message.text },
        container: {
          type: 'message',
          message_ts: '1700000000.000100',
          channel_id: CHANNEL,
          is_ephemeral: true,
        },
        channelId: CHANNEL,
        responseUrl,
        ...(value ? { value } : {}),
      }),
    );
    expect(res.status).toBe(200);
    return responseUrl;
  }

  async function tenantId(): Promise<string> {
    return (await running.service.repositories.tenants.findByExternalId('slack', ws.slack.teamId))!.id;
  }

  it('in a channel without the bot: an /invite hint, no modal', async () => {
    ws.slack.leaveChannel(CHANNEL);
    const { triggerId, responseUrl } = await command('subscribe', ws.slack.users.admin);
    const answer = await answerAt(responseUrl);
    expect(answer.response_type).toBe('ephemeral');
    expect(textOf(answer)).toContain('/invite @CloudPi');
    expect(ws.slack.calls.some((c) => c.method === 'conversations.info' && c.body.channel === CHANNEL)).toBe(
      true,
    );
    expect(ws.slack.calls.some((c) => c.method === 'views.open' && c.body.trigger_id === triggerId)).toBe(
      false,
    );

    // A channel the bot cannot see at all (channel_not_found) says the same.
    ws.slack.removeChannel('C0VANISHED');
    const gone = await command('subscribe', ws.slack.users.admin, 'C0VANISHED');
    expect(textOf(await answerAt(gone.responseUrl))).toContain('/invite @CloudPi');
    ws.slack.joinChannel(CHANNEL);
  });

  it('admin subscribes: modal, field error, saved route with filters, audited; unsubscribe removes it', async () => {
    const admin = ws.slack.users.admin;
    const { triggerId } = await command('subscribe', admin);
    const opened = await modalOpenedWith(triggerId);
    expect(opened.view.callback_id).toBe('cloudpi.subscribe');
    expect(JSON.parse(String(opened.view.private_metadata))).toMatchObject({ channel: CHANNEL });
    expect((inputBlock(opened.view, 'clouds').element as Json).type).toBe('multi_static_select');
    expect((inputBlock(opened.view, 'severities').element as Json).type).toBe('multi_static_select');
    // No Active provider: no ticket route fields.
    expect(blockById(opened.view, 'provider')).toBeUndefined();

    const invalid = await submit(opened.view, admin, { minMonthlySavings: '-5' });
    expect(invalid.response_action).toBe('errors');
    expect(Object.keys(invalid.errors as Json)).toEqual(['minMonthlySavings']);
    expect(await running.service.repositories.routes.list(await tenantId())).toEqual([]);

    const saved = await submit(opened.view, admin, {
      clouds: ['aws', 'gcp'],
      account: '123456789012',
      severities: ['critical', 'high'],
      minMonthlySavings: '100',
    });
    expect(saved.response_action).toBe('update');
    expect(textOf(saved.view)).toContain('This channel is subscribed');
    expect(textOf(saved.view)).toContain('AWS or Google Cloud');

    const rows = await running.service.repositories.routes.list(await tenantId());
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      platform: 'slack',
      channelId: CHANNEL,
      provider: null,
      createdBy: `slack:${admin}`,
      filters: {
        clouds: ['aws', 'gcp'],
        account: '123456789012',
        severities: ['critical', 'high'],
        minMonthlySavings: 100,
      },
    });
    const audit = await running.service.repositories.audit.recent(await tenantId(), 5, 'subscription.create');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: `slack:${admin}`, target: `slack:${CHANNEL}` });

    // /cloudpi unsubscribe: the list, with an Unsubscribe button per subscription.
    const { responseUrl } = await command('unsubscribe', admin);
    const list = await answerAt(responseUrl);
    expect(list.response_type).toBe('ephemeral');
    expect(textOf(list)).toContain('severity critical or high');
    expect(textOf(list)).toContain('saving at least 100 a month');

    // Another channel's list does not show it.
    const elsewhere = await command('unsubscribe', admin, 'C0ELSEWHERE');
    expect(textOf(await answerAt(elsewhere.responseUrl))).toContain('This channel has no subscriptions');

    // A member sees the list without buttons, and cannot remove by a forged press.
    const asMember = await command('unsubscribe', ws.slack.users.member);
    const memberList = await answerAt(asMember.responseUrl);
    expect(() => button(memberList, 'Unsubscribe')).toThrow();
    const forged = await pressInMessage(ws.slack.users.member, list, 'Unsubscribe');
    expect(textOf(await answerAt(forged))).toContain('Only CloudPi admins');
    expect(await running.service.repositories.routes.list(await tenantId())).toHaveLength(1);

    const pressed = await pressInMessage(admin, list, 'Unsubscribe');
    const answer = await answerAt(pressed);
    expect(textOf(answer)).toContain('Unsubscribed');
    expect(await running.service.repositories.routes.list(await tenantId())).toEqual([]);
    expect(
      await running.service.repositories.audit.recent(await tenantId(), 5, 'subscription.delete'),
    ).toHaveLength(1);

    // Pressing it again: already removed.
    const again = await pressInMessage(admin, list, 'Unsubscribe');
    expect(textOf(await answerAt(again))).toContain('already removed');
  });

  it('non-admins are refused, with no modal', async () => {
    const { triggerId, responseUrl } = await command('subscribe', ws.slack.users.member);
    expect(textOf(await answerAt(responseUrl))).toContain('Only CloudPi admins');
    expect(ws.slack.calls.some((c) => c.method === 'views.open' && c.body.trigger_id === triggerId)).toBe(
      false,
    );

    // A member submitting a subscribe form (opened by someone else) saves nothing.
    const admin = ws.slack.users.admin;
    const opened = await modalOpenedWith((await command('subscribe', admin)).triggerId);
    const refused = await submit(opened.view, ws.slack.users.member, { clouds: ['aws'] });
    expect(textOf(refused.view)).toContain('Only CloudPi admins');
    expect(await running.service.repositories.routes.list(await tenantId())).toEqual([]);
  });

  it("keeps tenants apart: another workspace's subscription is neither listed nor removable", async () => {
    const { repositories } = running.service;
    const other = await repositories.tenants.ensure('slack', 'T0OTHERTEAM', 'other');
    const foreign = await repositories.routes.create(other.id, {
      platform: 'slack',
      channelId: CHANNEL,
      filters: { clouds: ['azure'] },
      createdBy: 'slack:U0SOMEONE',
    });
    const admin = ws.slack.users.admin;
    const { responseUrl } = await command('unsubscribe', admin);
    const list = await answerAt(responseUrl);
    expect(textOf(list)).toContain('This channel has no subscriptions');
    expect(textOf(list)).not.toContain('Azure');

    // A forged button value naming the other tenant's subscription removes nothing.
    const opened = await modalOpenedWith((await command('subscribe', admin)).triggerId);
    await submit(opened.view, admin, {});
    const mine = await command('unsubscribe', admin);
    const myList = await answerAt(mine.responseUrl);
    const forged = await pressInMessage(admin, myList, 'Unsubscribe', foreign.id);
    expect(textOf(await answerAt(forged))).toContain('already removed');
    expect(await repositories.routes.list(other.id)).toHaveLength(1);
    expect(await repositories.routes.list(await tenantId())).toHaveLength(1);
  });
});
