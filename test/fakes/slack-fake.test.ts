/**
 * The Slack fake answers like Slack's Web API: calls made with Slack's own client
 * (@slack/web-api, pointed at the fake) work when valid and are refused, with Slack's error codes,
 * when Slack would refuse them. The signing helpers sign like Slack (checked with Bolt's verifier).
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { App, LogLevel, verifySlackRequest } from '@slack/bolt';
import { ErrorCode, type WebAPIPlatformError, type WebAPIRateLimitedError, WebClient } from '@slack/web-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/paths.js';
import {
  checkViewSubmissionAnswer,
  type SlackFake,
  specProblems,
  startSlackFake,
} from '../support/fakes/slack-fake.js';
import {
  blockActionsPayload,
  postSlackCommand,
  postSlackInteraction,
  signSlackRequest,
  slashCommandForm,
  viewClosedPayload,
  viewSubmissionPayload,
} from '../support/slack-requests.js';

const SAMPLES = path.join(PROJECT_ROOT, 'test/fixtures/specs/slack/java-slack-sdk-samples');
const sample = (file: string): Record<string, unknown> =>
  JSON.parse(readFileSync(path.join(SAMPLES, file), 'utf8')) as Record<string, unknown>;

const silent = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  setLevel() {},
  getLevel: () => 'error' as never,
  setName() {},
};

let fake: SlackFake;
let client: WebClient;

const clientFor = (token?: string, options: { rejectRateLimitedCalls?: boolean } = {}): WebClient =>
  new WebClient(token, {
    slackApiUrl: fake.apiUrl,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: options.rejectRateLimitedCalls ?? true,
    logger: silent,
  });

/** The Slack error a call is refused with (fails the test when the call succeeds). */
async function slackError(call: Promise<unknown>): Promise<WebAPIPlatformError['data']> {
  try {
    await call;
  } catch (error) {
    const e = error as WebAPIPlatformError;
    if (e.code === ErrorCode.PlatformError) return e.data;
    throw error;
  }
  throw new Error('the call succeeded; Slack would refuse it');
}

const modal = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  type: 'modal',
  callback_id: 'connect_jira',
  title: { type: 'plain_text', text: 'Connect Jira' },
  submit: { type: 'plain_text', text: 'Save' },
  close: { type: 'plain_text', text: 'Cancel' },
  private_metadata: '{"tenant":"T0CLOUDPI"}',
  blocks: [
    {
      type: 'input',
      block_id: 'url',
      label: { type: 'plain_text', text: 'Site URL' },
      element: { type: 'url_text_input', action_id: 'value' },
    },
    {
      type: 'input',
      block_id: 'kind',
      label: { type: 'plain_text', text: 'Deployment' },
      element: {
        type: 'static_select',
        action_id: 'value',
        options: [
          { text: { type: 'plain_text', text: 'Cloud' }, value: 'cloud' },
          { text: { type: 'plain_text', text: 'Data Center' }, value: 'server' },
        ],
        initial_option: { text: { type: 'plain_text', text: 'Cloud' }, value: 'cloud' },
      },
    },
  ],
  ...overrides,
});

beforeAll(async () => {
  fake = await startSlackFake();
  client = clientFor(fake.botToken);
});
afterAll(async () => {
  await fake.close();
});

describe('authentication', () => {
  it('auth.test answers for the bot token with the team and bot user', async () => {
    const result = await client.auth.test();
    expect(result).toMatchObject({ ok: true, team_id: 'T0CLOUDPI', user_id: 'U0BOT', bot_id: fake.botId });
    expect(fake.calls.at(-1)).toMatchObject({ method: 'auth.test', token: fake.botToken });
  });

  it('refuses a missing token (not_authed) and an unknown one (invalid_auth)', async () => {
    expect((await slackError(clientFor().auth.test())).error).toBe('not_authed');
    expect((await slackError(clientFor('xoxb-1-2-nottherightone').auth.test())).error).toBe('invalid_auth');
  });

  it('reads a token from a form body, but never from a JSON body', async () => {
    const form = await fetch(`${fake.apiUrl}auth.test`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: fake.botToken }),
    });
    expect(await form.json()).toMatchObject({ ok: true, team_id: fake.teamId });
    const json = await fetch(`${fake.apiUrl}auth.test`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: fake.botToken }),
    });
    expect(json.status).toBe(200);
    expect(await json.json()).toEqual({ ok: false, error: 'not_authed' });
    const bearer = await fetch(`${fake.apiUrl}users.info`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json; charset=utf-8',
        authorization: `Bearer ${fake.botToken}`,
      },
      body: JSON.stringify({ user: fake.users.member }),
    });
    expect(await bearer.json()).toMatchObject({ ok: true, user: { id: fake.users.member } });
  });

  it('answers malformed bodies and unknown methods like Slack', async () => {
    const post = (method: string, body: string, type: string) =>
      fetch(`${fake.apiUrl}${method}`, {
        method: 'POST',
        headers: { 'content-type': type, authorization: `Bearer ${fake.botToken}` },
        body,
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }));
    expect(await post('auth.test', '{"a":', 'application/json')).toEqual({
      status: 200,
      body: { ok: false, error: 'invalid_json' },
    });
    expect((await post('auth.test', '[1]', 'application/json')).body.error).toBe('json_not_object');
    expect((await post('auth.test', 'x', 'text/plain')).body.error).toBe('invalid_post_type');
    expect(await post('nope.never', '', 'application/json')).toMatchObject({
      status: 404,
      body: { ok: false, error: 'unknown_method' },
    });
  });

  it('a revoked token stops working', async () => {
    const code = fake.issueOAuthCode();
    const installed = await clientFor().oauth.v2.access({
      client_id: fake.clientId,
      client_secret: fake.clientSecret,
      code,
    });
    const token = String(installed.access_token);
    const other = clientFor(token);
    await expect(other.auth.test()).resolves.toMatchObject({ ok: true });
    await expect(other.auth.revoke()).resolves.toMatchObject({ ok: true, revoked: true });
    expect((await slackError(other.auth.test())).error).toBe('invalid_auth');
  });
});

describe('users.info', () => {
  it('tells admins, owners and members apart', async () => {
    const info = async (user: string) => (await client.users.info({ user })).user;
    expect(await info(fake.users.admin)).toMatchObject({
      is_admin: true,
      is_owner: false,
      team_id: 'T0CLOUDPI',
    });
    expect(await info(fake.users.owner)).toMatchObject({ is_admin: true, is_owner: true });
    expect(await info(fake.users.member)).toMatchObject({ is_admin: false, is_owner: false });
    expect((await slackError(client.users.info({ user: 'U0NOBODY' }))).error).toBe('user_not_found');
  });

  it('has the fields of Slack users.info answers (java-slack-sdk sample)', async () => {
    const user = (await client.users.info({ user: fake.users.admin })).user as Record<string, unknown>;
    const sampleUser = sample('api/users.info.json').user as Record<string, unknown>;
    for (const key of Object.keys(user)) expect(Object.keys(sampleUser)).toContain(key);
  });
});

describe('views', () => {
  it('views.open with a fresh trigger returns the view with id and hash, and keeps it', async () => {
    const trigger = fake.issueTriggerId(fake.users.admin);
    const result = await client.views.open({ trigger_id: trigger, view: modal() as never });
    const view = result.view as Record<string, unknown>;
    expect(view).toMatchObject({
      type: 'modal',
      callback_id: 'connect_jira',
      team_id: 'T0CLOUDPI',
      state: { values: {} },
      root_view_id: view.id,
      previous_view_id: null,
    });
    expect(view.id).toMatch(/^V[A-Z0-9]+$/);
    expect(view.hash).toMatch(/^\d+\.[0-9a-f]+$/);
    expect(fake.modals.get(String(view.id))).toMatchObject({ hash: view.hash, user: fake.users.admin });
    // The answer carries only fields Slack's views.open answers carry.
    const sampleView = sample('api/views.open.json').view as Record<string, unknown>;
    for (const key of Object.keys(view)) expect(Object.keys(sampleView)).toContain(key);
  });

  it('a trigger works once (exchanged_trigger_id), for 3 seconds (expired_trigger_id), if issued (invalid_trigger_id)', async () => {
    const trigger = fake.issueTriggerId();
    await client.views.open({ trigger_id: trigger, view: modal() as never });
    expect((await slackError(client.views.open({ trigger_id: trigger, view: modal() as never }))).error).toBe(
      'exchanged_trigger_id',
    );
    const late = fake.issueTriggerId();
    fake.advanceTime(3_001);
    expect((await slackError(client.views.open({ trigger_id: late, view: modal() as never }))).error).toBe(
      'expired_trigger_id',
    );
    expect((await slackError(client.views.open({ trigger_id: '1.2.3', view: modal() as never }))).error).toBe(
      'invalid_trigger_id',
    );
  });

  it('refuses a modal title over 24 characters with a json-pointer message', async () => {
    const data = await slackError(
      client.views.open({
        trigger_id: fake.issueTriggerId(),
        view: modal({ title: { type: 'plain_text', text: 'Connect Jira Cloud or DC!' } }) as never,
      }),
    );
    expect(data.error).toBe('invalid_arguments');
    expect(data.response_metadata?.messages).toEqual([
      '[ERROR] must be less than 25 characters [json-pointer:/view/title/text]',
    ]);
  });

  it('refuses more than 100 blocks, and a modal with inputs but no submit', async () => {
    const many = Array.from({ length: 101 }, () => ({ type: 'divider' }));
    const tooMany = await slackError(
      client.views.open({ trigger_id: fake.issueTriggerId(), view: modal({ blocks: many }) as never }),
    );
    expect(tooMany.error).toBe('invalid_arguments');
    expect(tooMany.response_metadata?.messages).toContain(
      '[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]',
    );
    const noSubmit = modal();
    delete noSubmit.submit;
    const data = await slackError(
      client.views.open({ trigger_id: fake.issueTriggerId(), view: noSubmit as never }),
    );
    expect(data.response_metadata?.messages?.[0]).toMatch(/submit.*\[json-pointer:\/view\]$/);
  });

  it("refuses duplicate block_ids, and duplicate action_ids in one block (Slack's rule)", async () => {
    const button = (actionId: string) => ({
      type: 'button',
      action_id: actionId,
      text: { type: 'plain_text', text: 'Go' },
    });
    const dup = await slackError(
      client.views.open({
        trigger_id: fake.issueTriggerId(),
        view: modal({
          blocks: [
            { type: 'actions', block_id: 'a', elements: [button('go'), button('go')] },
            { type: 'actions', block_id: 'a', elements: [button('go')] },
          ],
        }) as never,
      }),
    );
    expect(dup.error).toBe('invalid_arguments');
    expect(dup.response_metadata?.messages).toEqual([
      '[ERROR] duplicate action_id: go [json-pointer:/view/blocks/0/elements/1/action_id]',
      '[ERROR] duplicate block_id: a [json-pointer:/view/blocks/1/block_id]',
    ]);
  });

  it('with actionIdScope "surface", action_ids must be unique in the whole view', async () => {
    const strict = await startSlackFake({ actionIdScope: 'surface' });
    try {
      const strictClient = new WebClient(strict.botToken, {
        slackApiUrl: strict.apiUrl,
        retryConfig: { retries: 0 },
        logger: silent,
      });
      const data = await slackError(
        strictClient.views.open({ trigger_id: strict.issueTriggerId(), view: modal() as never }),
      );
      expect(data.response_metadata?.messages).toEqual([
        '[ERROR] duplicate action_id: value [json-pointer:/view/blocks/1/element/action_id]',
      ]);
    } finally {
      await strict.close();
    }
  });

  it('refuses an initial_option that is not an option, unknown block types, mrkdwn titles', async () => {
    const select = modal();
    const blocks = select.blocks as Record<string, Record<string, unknown>>[];
    blocks[1]!.element!.initial_option = { text: { type: 'plain_text', text: 'Server' }, value: 'server' };
    const badInitial = await slackError(
      client.views.open({ trigger_id: fake.issueTriggerId(), view: select as never }),
    );
    expect(badInitial.response_metadata?.messages?.[0]).toContain(
      '[json-pointer:/view/blocks/1/element/initial_option]',
    );

    const unknown = await slackError(
      client.views.open({
        trigger_id: fake.issueTriggerId(),
        view: modal({ blocks: [{ type: 'table', rows: [] }] }) as never,
      }),
    );
    expect(unknown.response_metadata?.messages).toContain(
      '[ERROR] failed to match all allowed schemas [json-pointer:/view/blocks/0]',
    );

    const mrkdwnTitle = await slackError(
      client.views.open({
        trigger_id: fake.issueTriggerId(),
        view: modal({ title: { type: 'mrkdwn', text: '*Jira*' } }) as never,
      }),
    );
    expect(mrkdwnTitle.response_metadata?.messages).toEqual([
      '[ERROR] must be a valid enum value [json-pointer:/view/title/type]',
    ]);
  });

  const input = (element: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    type: 'input',
    block_id: 'b',
    label: { type: 'plain_text', text: 'Label' },
    element: { action_id: 'a', ...element },
    ...extra,
  });
  const option = (text: string, value = text) => ({ text: { type: 'plain_text', text }, value });
  const button = (extra: Record<string, unknown>) => ({
    type: 'actions',
    elements: [{ type: 'button', action_id: 'go', text: { type: 'plain_text', text: 'Go' }, ...extra }],
  });
  const LIMIT_CASES: [string, Record<string, unknown>, string][] = [
    [
      'submit over 24',
      { submit: { type: 'plain_text', text: 'S'.repeat(25) } },
      'must be less than 25 characters [json-pointer:/view/submit/text]',
    ],
    [
      'close over 24',
      { close: { type: 'plain_text', text: 'C'.repeat(25) } },
      'must be less than 25 characters [json-pointer:/view/close/text]',
    ],
    [
      'private_metadata over 3000',
      { private_metadata: 'm'.repeat(3001) },
      'must be less than 3001 characters [json-pointer:/view/private_metadata]',
    ],
    [
      'callback_id over 255',
      { callback_id: 'c'.repeat(256) },
      'must be less than 256 characters [json-pointer:/view/callback_id]',
    ],
    [
      'section text over 3000',
      { blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 't'.repeat(3001) } }] },
      'must be less than 3001 characters [json-pointer:/view/blocks/0/text/text]',
    ],
    [
      'header over 150',
      { blocks: [{ type: 'header', text: { type: 'plain_text', text: 'h'.repeat(151) } }] },
      'must be less than 151 characters [json-pointer:/view/blocks/0/text/text]',
    ],
    [
      'context over 10 elements',
      {
        blocks: [
          { type: 'context', elements: Array.from({ length: 11 }, () => ({ type: 'mrkdwn', text: 'x' })) },
        ],
      },
      'no more than 10 items allowed [json-pointer:/view/blocks/0/elements]',
    ],
    [
      'actions over 25 elements',
      {
        blocks: [
          {
            type: 'actions',
            elements: Array.from({ length: 26 }, (_, i) => ({
              type: 'button',
              action_id: `b${i}`,
              text: { type: 'plain_text', text: 'x' },
            })),
          },
        ],
      },
      'no more than 25 items allowed [json-pointer:/view/blocks/0/elements]',
    ],
    [
      'label over 2000',
      {
        blocks: [
          input({ type: 'plain_text_input' }, { label: { type: 'plain_text', text: 'l'.repeat(2001) } }),
        ],
      },
      'must be less than 2001 characters [json-pointer:/view/blocks/0/label/text]',
    ],
    [
      'hint over 2000',
      {
        blocks: [
          input({ type: 'plain_text_input' }, { hint: { type: 'plain_text', text: 'h'.repeat(2001) } }),
        ],
      },
      'must be less than 2001 characters [json-pointer:/view/blocks/0/hint/text]',
    ],
    [
      'placeholder over 150',
      {
        blocks: [
          input({ type: 'plain_text_input', placeholder: { type: 'plain_text', text: 'p'.repeat(151) } }),
        ],
      },
      'must be less than 151 characters [json-pointer:/view/blocks/0/element/placeholder/text]',
    ],
    [
      'select with no options',
      { blocks: [input({ type: 'static_select', options: [] })] },
      'must provide at least 1 items [json-pointer:/view/blocks/0/element/options]',
    ],
    [
      'select over 100 options',
      {
        blocks: [
          input({ type: 'static_select', options: Array.from({ length: 101 }, (_, i) => option(`o${i}`)) }),
        ],
      },
      'no more than 100 items allowed [json-pointer:/view/blocks/0/element/options]',
    ],
    [
      'option text over 75',
      { blocks: [input({ type: 'static_select', options: [option('o'.repeat(76), 'v')] })] },
      'must be less than 76 characters [json-pointer:/view/blocks/0/element/options/0/text/text]',
    ],
    [
      'option value over 150',
      { blocks: [input({ type: 'static_select', options: [option('o', 'v'.repeat(151))] })] },
      'must be less than 151 characters [json-pointer:/view/blocks/0/element/options/0/value]',
    ],
    [
      'radio over 10 options',
      {
        blocks: [
          input({ type: 'radio_buttons', options: Array.from({ length: 11 }, (_, i) => option(`o${i}`)) }),
        ],
      },
      'no more than 10 items allowed [json-pointer:/view/blocks/0/element/options]',
    ],
    [
      'button text over 75',
      { blocks: [button({ text: { type: 'plain_text', text: 'b'.repeat(76) } })] },
      'must be less than 76 characters [json-pointer:/view/blocks/0/elements/0/text/text]',
    ],
    [
      'button value over 2000',
      { blocks: [button({ value: 'v'.repeat(2001) })] },
      'must be less than 2001 characters [json-pointer:/view/blocks/0/elements/0/value]',
    ],
    [
      'button url over 3000',
      { blocks: [button({ url: `https://x.example/${'u'.repeat(3000)}` })] },
      'must be less than 3001 characters [json-pointer:/view/blocks/0/elements/0/url]',
    ],
    [
      'button style',
      { blocks: [button({ style: 'secondary' })] },
      'must be a valid enum value [json-pointer:/view/blocks/0/elements/0/style]',
    ],
    [
      'action_id over 255',
      { blocks: [button({ action_id: 'a'.repeat(256) })] },
      'must be less than 256 characters [json-pointer:/view/blocks/0/elements/0/action_id]',
    ],
    [
      'block_id over 255',
      { blocks: [{ type: 'divider', block_id: 'd'.repeat(256) }] },
      'must be less than 256 characters [json-pointer:/view/blocks/0/block_id]',
    ],
    [
      'text object without text',
      { blocks: [{ type: 'section', text: { type: 'mrkdwn' } }] },
      'missing required field: text [json-pointer:/view/blocks/0/text]',
    ],
    [
      'text object not an object',
      { blocks: [{ type: 'section', text: 'hello' }] },
      'must provide an object [json-pointer:/view/blocks/0/text]',
    ],
    [
      'input without element',
      { blocks: [{ type: 'input', label: { type: 'plain_text', text: 'L' } }] },
      'missing required field: element [json-pointer:/view/blocks/0]',
    ],
    [
      'button inside an input',
      { blocks: [input({ type: 'button', text: { type: 'plain_text', text: 'x' } })] },
      'failed to match all allowed schemas [json-pointer:/view/blocks/0/element]',
    ],
    [
      'unknown field',
      { blocks: [{ type: 'divider', text: 'x' }] },
      'unsupported field: text [json-pointer:/view/blocks/0]',
    ],
  ];

  it.each(LIMIT_CASES)('refuses %s (invalid_arguments)', async (_name, overrides, message) => {
    const data = await slackError(
      client.views.open({ trigger_id: fake.issueTriggerId(), view: modal(overrides) as never }),
    );
    expect(data.error).toBe('invalid_arguments');
    expect(data.response_metadata?.messages).toEqual([`[ERROR] ${message}`]);
  });

  it('accepts every block and element type at its limits', async () => {
    const blocks = [
      { type: 'header', text: { type: 'plain_text', text: 'h'.repeat(150) } },
      {
        type: 'section',
        text: { type: 'mrkdwn', text: 't'.repeat(3000) },
        accessory: { type: 'image', image_url: 'https://x.example/i.png', alt_text: 'i' },
      },
      {
        type: 'section',
        fields: [
          { type: 'mrkdwn', text: '*a*' },
          { type: 'plain_text', text: 'b' },
        ],
      },
      { type: 'divider' },
      {
        type: 'context',
        elements: [
          { type: 'mrkdwn', text: 'c' },
          { type: 'image', image_url: 'https://x.example/i.png', alt_text: 'i' },
        ],
      },
      {
        type: 'image',
        image_url: 'https://x.example/i.png',
        alt_text: 'i',
        title: { type: 'plain_text', text: 'T' },
      },
      {
        type: 'actions',
        elements: [
          {
            type: 'button',
            action_id: 'x'.repeat(255),
            text: { type: 'plain_text', text: 'b'.repeat(75) },
            value: 'v'.repeat(2000),
            style: 'danger',
            confirm: {
              title: { type: 'plain_text', text: 'Sure?' },
              text: { type: 'mrkdwn', text: 'Really' },
              confirm: { type: 'plain_text', text: 'Yes' },
              deny: { type: 'plain_text', text: 'No' },
            },
          },
        ],
      },
      input(
        {
          type: 'plain_text_input',
          multiline: true,
          initial_value: 'i',
          placeholder: { type: 'plain_text', text: 'p'.repeat(150) },
        },
        { block_id: 'b1', hint: { type: 'plain_text', text: 'h' }, optional: true },
      ),
      input(
        {
          type: 'static_select',
          options: Array.from({ length: 100 }, (_, i) => option(`o${i}`)),
          initial_option: option('o7'),
        },
        { block_id: 'b2' },
      ),
      input(
        { type: 'radio_buttons', options: [option('a'), option('b')], initial_option: option('b') },
        { block_id: 'b3' },
      ),
      input(
        { type: 'checkboxes', options: [option('a'), option('b')], initial_options: [option('a')] },
        { block_id: 'b4' },
      ),
      input({ type: 'email_text_input' }, { block_id: 'b5' }),
      input({ type: 'url_text_input', initial_value: 'https://acme.atlassian.net' }, { block_id: 'b6' }),
    ];
    const view = modal({
      title: { type: 'plain_text', text: 't'.repeat(24) },
      blocks,
      private_metadata: 'm'.repeat(3000),
    });
    await expect(
      client.views.open({ trigger_id: fake.issueTriggerId(), view: view as never }),
    ).resolves.toMatchObject({ ok: true });
  });

  it('refuses a view too large to serialize (view_too_large)', async () => {
    const blocks = Array.from({ length: 100 }, () => ({
      type: 'section',
      text: { type: 'mrkdwn', text: 'x'.repeat(3000) },
    }));
    const data = await slackError(
      client.views.open({ trigger_id: fake.issueTriggerId(), view: modal({ blocks }) as never }),
    );
    expect(data.error).toBe('view_too_large');
  });

  it('an invalid view does not use up the trigger', async () => {
    const trigger = fake.issueTriggerId();
    await slackError(client.views.open({ trigger_id: trigger, view: modal({ title: 'Jira' }) as never }));
    await expect(client.views.open({ trigger_id: trigger, view: modal() as never })).resolves.toMatchObject({
      ok: true,
    });
  });

  it('views.update by id or external_id, with the hash check (hash_conflict)', async () => {
    const opened = await client.views.open({
      trigger_id: fake.issueTriggerId(),
      view: modal({ external_id: 'jira-form-1' }) as never,
    });
    const id = String(opened.view?.id);
    const hash = String(opened.view?.hash);
    const updated = await client.views.update({
      view_id: id,
      hash,
      view: modal({ external_id: 'jira-form-1', private_metadata: 'step2' }) as never,
    });
    expect(updated.view).toMatchObject({ id, private_metadata: 'step2' });
    expect(updated.view?.hash).not.toBe(hash);
    expect(fake.modals.get(id)?.view.private_metadata).toBe('step2');

    expect((await slackError(client.views.update({ view_id: id, hash, view: modal() as never }))).error).toBe(
      'hash_conflict',
    );
    await expect(
      client.views.update({ external_id: 'jira-form-1', view: modal({ callback_id: 'x' }) as never }),
    ).resolves.toMatchObject({ view: { id, callback_id: 'x' } });
    expect((await slackError(client.views.update({ view_id: 'VNOPE', view: modal() as never }))).error).toBe(
      'not_found',
    );
    fake.closeModal(id);
    expect((await slackError(client.views.update({ view_id: id, view: modal() as never }))).error).toBe(
      'not_found',
    );
  });

  it('views.push stacks up to 3 views (push_limit_reached)', async () => {
    const user = fake.users.owner;
    const root = await client.views.open({ trigger_id: fake.issueTriggerId(user), view: modal() as never });
    const pushed = await client.views.push({ trigger_id: fake.issueTriggerId(user), view: modal() as never });
    expect(pushed.view).toMatchObject({ root_view_id: root.view?.id, previous_view_id: root.view?.id });
    await client.views.push({ trigger_id: fake.issueTriggerId(user), view: modal() as never });
    expect(
      (await slackError(client.views.push({ trigger_id: fake.issueTriggerId(user), view: modal() as never })))
        .error,
    ).toBe('push_limit_reached');
  });

  it('views.publish keeps the App Home per user; only home views', async () => {
    const home = {
      type: 'home',
      blocks: [
        { type: 'header', text: { type: 'plain_text', text: 'CloudPi' } },
        { type: 'section', text: { type: 'mrkdwn', text: '*3* integrations connected' } },
      ],
    };
    const result = await client.views.publish({ user_id: fake.users.member, view: home as never });
    expect(result.view).toMatchObject({ type: 'home', team_id: 'T0CLOUDPI' });
    expect(fake.homeOf(fake.users.member)?.blocks).toHaveLength(2);
    expect(fake.homeOf(fake.users.admin)).toBeUndefined();
    const asModal = await slackError(
      client.views.publish({ user_id: fake.users.member, view: modal() as never }),
    );
    expect(asModal.error).toBe('invalid_arguments');
    expect((await slackError(client.views.publish({ user_id: 'U0NOBODY', view: home as never }))).error).toBe(
      'user_not_found',
    );
    expect(
      (
        await slackError(
          client.views.publish({ user_id: fake.users.member, hash: '1.stale', view: home as never }),
        )
      ).error,
    ).toBe('hash_conflict');
  });
});

describe('messages', () => {
  const section = (text: string) => ({ type: 'section', text: { type: 'mrkdwn', text } });

  it('chat.postMessage and chat.postEphemeral are recorded; chat.update changes a posted message', async () => {
    const posted = await client.chat.postMessage({
      channel: 'C0CLOUDOPS',
      text: 'hello',
      blocks: [section('hello')],
    });
    expect(posted).toMatchObject({
      ok: true,
      channel: 'C0CLOUDOPS',
      message: { text: 'hello', bot_id: fake.botId },
    });
    const ephemeral = await client.chat.postEphemeral({
      channel: 'C0CLOUDOPS',
      user: fake.users.admin,
      text: 'psst',
    });
    expect(ephemeral.message_ts).toMatch(/^\d+\.\d{6}$/);
    expect(fake.messages.slice(-2)).toMatchObject([
      { method: 'chat.postMessage', channel: 'C0CLOUDOPS', text: 'hello', blocks: [section('hello')] },
      { method: 'chat.postEphemeral', channel: 'C0CLOUDOPS', user: fake.users.admin, text: 'psst' },
    ]);
    await expect(
      client.chat.update({ channel: 'C0CLOUDOPS', ts: String(posted.ts), text: 'bye' }),
    ).resolves.toMatchObject({
      ok: true,
      ts: posted.ts,
    });
    expect(
      (await slackError(client.chat.update({ channel: 'C0CLOUDOPS', ts: '1.000001', text: 'x' }))).error,
    ).toBe('message_not_found');
  });

  it('refuses what Slack refuses: no text, too long, >50 blocks, bad blocks, unknown channel or user', async () => {
    expect((await slackError(client.chat.postMessage({ channel: 'C0CLOUDOPS' } as never))).error).toBe(
      'no_text',
    );
    expect(
      (await slackError(client.chat.postMessage({ channel: 'C0CLOUDOPS', text: 'x'.repeat(40_001) }))).error,
    ).toBe('msg_too_long');
    const many = Array.from({ length: 51 }, (_, i) => section(`line ${i}`));
    const tooMany = await slackError(
      client.chat.postMessage({ channel: 'C0CLOUDOPS', text: 'x', blocks: many }),
    );
    expect(tooMany.error).toBe('invalid_blocks');
    expect(tooMany.response_metadata?.messages).toEqual([
      '[ERROR] no more than 50 items allowed [json-pointer:/blocks]',
    ]);
    const long = await slackError(
      client.chat.postMessage({ channel: 'C0CLOUDOPS', text: 'x', blocks: [section('y'.repeat(3001))] }),
    );
    expect(long.response_metadata?.messages).toEqual([
      '[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]',
    ]);
    const button = {
      type: 'button',
      text: { type: 'plain_text', text: 'Create ticket' },
      action_id: 'create',
    };
    const dupActions = await slackError(
      client.chat.postMessage({
        channel: 'C0CLOUDOPS',
        text: 'x',
        blocks: [{ type: 'actions', elements: [button, button] }],
      } as never),
    );
    expect(dupActions.response_metadata?.messages).toEqual([
      '[ERROR] duplicate action_id: create [json-pointer:/blocks/0/elements/1/action_id]',
    ]);
    expect((await slackError(client.chat.postMessage({ channel: 'not-a-channel', text: 'x' }))).error).toBe(
      'channel_not_found',
    );
    fake.removeChannel('C0GONEGONE');
    expect((await slackError(client.chat.postMessage({ channel: 'C0GONEGONE', text: 'x' }))).error).toBe(
      'channel_not_found',
    );
    expect(
      (await slackError(client.chat.postEphemeral({ channel: 'C0CLOUDOPS', user: 'U0NOBODY', text: 'x' })))
        .error,
    ).toBe('user_not_in_channel');
    expect((await slackError(client.conversations.info({ channel: 'C0GONEGONE' }))).error).toBe(
      'channel_not_found',
    );
    await expect(client.conversations.info({ channel: 'C0CLOUDOPS' })).resolves.toMatchObject({
      channel: { id: 'C0CLOUDOPS', is_channel: true },
    });
  });
});

describe('rate limits', () => {
  it('answers HTTP 429 with Retry-After for the next n calls of the method', async () => {
    fake.rateLimitNext('chat.postMessage', 2, 7);
    const raw = await fetch(`${fake.apiUrl}chat.postMessage`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fake.botToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ channel: 'C0CLOUDOPS', text: 'x' }),
    });
    expect(raw.status).toBe(429);
    expect(raw.headers.get('retry-after')).toBe('7');
    expect(await raw.json()).toEqual({ ok: false, error: 'ratelimited' });
    const limited = await client.chat
      .postMessage({ channel: 'C0CLOUDOPS', text: 'x' })
      .catch((e: unknown) => e);
    expect(limited).toMatchObject({
      code: ErrorCode.RateLimitedError,
      retryAfter: 7,
    } satisfies Partial<WebAPIRateLimitedError>);
    await expect(client.chat.postMessage({ channel: 'C0CLOUDOPS', text: 'x' })).resolves.toMatchObject({
      ok: true,
    });
  });
});

describe('oauth.v2.access', () => {
  it('exchanges a code once, for client id and secret as form fields or Basic auth', async () => {
    const anonymous = clientFor();
    const code = fake.issueOAuthCode({ userId: fake.users.owner });
    const installed = await anonymous.oauth.v2.access({
      client_id: fake.clientId,
      client_secret: fake.clientSecret,
      code,
    });
    expect(installed).toMatchObject({
      ok: true,
      token_type: 'bot',
      bot_user_id: 'U0BOT',
      app_id: fake.appId,
      team: { id: 'T0CLOUDPI', name: fake.teamName },
      enterprise: null,
      authed_user: { id: fake.users.owner },
      is_enterprise_install: false,
    });
    expect(installed.access_token).toMatch(/^xoxb-/);
    expect(fake.issuedTokens).toContain(installed.access_token);
    const again = await slackError(
      anonymous.oauth.v2.access({ client_id: fake.clientId, client_secret: fake.clientSecret, code }),
    );
    expect(again.error).toBe('invalid_code');

    const basic = await fetch(`${fake.apiUrl}oauth.v2.access`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${fake.clientId}:${fake.clientSecret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ code: fake.issueOAuthCode() }),
    });
    expect(await basic.json()).toMatchObject({ ok: true, team: { id: 'T0CLOUDPI' } });

    const wrongSecret = await slackError(
      anonymous.oauth.v2.access({
        client_id: fake.clientId,
        client_secret: 'nope',
        code: fake.issueOAuthCode(),
      }),
    );
    expect(wrongSecret.error).toBe('bad_client_secret');
    const wrongClient = await slackError(
      anonymous.oauth.v2.access({
        client_id: '1.1',
        client_secret: fake.clientSecret,
        code: fake.issueOAuthCode(),
      }),
    );
    expect(wrongClient.error).toBe('invalid_client_id');
  });

  it('checks redirect_uri when the code was issued for one, and expires codes after 10 minutes', async () => {
    const anonymous = clientFor();
    const creds = { client_id: fake.clientId, client_secret: fake.clientSecret };
    const redirect = 'https://chatops.example/slack/oauth_redirect';
    const code = fake.issueOAuthCode({ redirectUri: redirect });
    expect(
      (await slackError(anonymous.oauth.v2.access({ ...creds, code, redirect_uri: 'https://evil.example/' })))
        .error,
    ).toBe('bad_redirect_uri');
    await expect(
      anonymous.oauth.v2.access({ ...creds, code, redirect_uri: redirect }),
    ).resolves.toMatchObject({ ok: true });
    const old = fake.issueOAuthCode();
    fake.advanceTime(10 * 60_000 + 1);
    expect((await slackError(anonymous.oauth.v2.access({ ...creds, code: old }))).error).toBe('invalid_code');
  });
});

describe('signed requests and payloads', () => {
  it('signs exactly as Slack does (Bolt verifies the signature)', () => {
    const secret = 'a-signing-secret-of-32-characters';
    const body = slashCommandForm({
      text: 'jira',
      user_id: 'U0ADMIN',
      team_id: 'T0CLOUDPI',
      trigger_id: '1.2.3',
    }).toString();
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'x-slack-signature': signSlackRequest(secret, timestamp, body),
      'x-slack-request-timestamp': timestamp,
    };
    expect(() => verifySlackRequest({ signingSecret: secret, body, headers })).not.toThrow();
    expect(() => verifySlackRequest({ signingSecret: 'another', body, headers })).toThrow();
    expect(() => verifySlackRequest({ signingSecret: secret, body: `${body}&x=1`, headers })).toThrow();
  });

  it('slash command fields are the ones of Slack slash command payloads', () => {
    const form = slashCommandForm({
      text: 'jira',
      user_id: 'U0ADMIN',
      team_id: 'T0CLOUDPI',
      trigger_id: '1.2.3',
    });
    const keys = Object.keys(sample('app-backend/slash-commands/SlashCommandPayload.json'));
    for (const key of form.keys()) expect(keys).toContain(key);
  });

  it('view_submission and block_actions payloads have the shape of Slack payloads', async () => {
    const opened = await client.views.open({ trigger_id: fake.issueTriggerId(), view: modal() as never });
    const view = fake.modals.get(String(opened.view?.id))!.view;
    const submission = viewSubmissionPayload({
      teamId: fake.teamId,
      userId: fake.users.admin,
      view,
      values: { url: { value: 'https://acme.atlassian.net' }, kind: { value: 'server' } },
    });
    const submittedView = submission.view as { state: { values: Record<string, Record<string, unknown>> } };
    expect(submittedView.state.values).toEqual({
      url: { value: { type: 'url_text_input', value: 'https://acme.atlassian.net' } },
      kind: {
        value: {
          type: 'static_select',
          selected_option: { text: { type: 'plain_text', text: 'Data Center' }, value: 'server' },
        },
      },
    });
    const submissionSample = sample('app-backend/views/ViewSubmissionPayload.json');
    for (const key of Object.keys(submission)) {
      if (key !== 'response_urls') expect(Object.keys(submissionSample)).toContain(key);
    }
    // The sample's view has no `blocks` (its recorder dropped them); Slack's payloads carry them.
    for (const key of Object.keys(submission.view as object)) {
      if (key !== 'blocks') expect(Object.keys(submissionSample.view as object)).toContain(key);
    }

    const closed = viewClosedPayload({ teamId: fake.teamId, userId: fake.users.admin, view });
    const closedSample = sample('app-backend/views/ViewClosedPayload.json');
    for (const key of Object.keys(closed)) expect(Object.keys(closedSample)).toContain(key);

    const clicked = blockActionsPayload({
      teamId: fake.teamId,
      userId: fake.users.member,
      actionId: 'create',
      value: 'rec-1',
      triggerId: fake.issueTriggerId(),
      message: {
        ts: '1700000000.000100',
        channel: 'C0CLOUDOPS',
        blocks: [
          {
            type: 'actions',
            block_id: 'rec',
            elements: [
              { type: 'button', action_id: 'create', text: { type: 'plain_text', text: 'Create ticket' } },
            ],
          },
        ],
      },
    });
    expect(clicked).toMatchObject({
      type: 'block_actions',
      container: { type: 'message', message_ts: '1700000000.000100', channel_id: 'C0CLOUDOPS' },
      channel: { id: 'C0CLOUDOPS' },
      actions: [{ type: 'button', action_id: 'create', block_id: 'rec', value: 'rec-1' }],
    });
    const actionsSample = sample('app-backend/interactive-components/BlockActionPayload.json');
    for (const key of Object.keys(clicked)) expect(Object.keys(actionsSample)).toContain(key);
    const actionSample = (actionsSample.actions as Record<string, unknown>[])[0]!;
    for (const key of Object.keys((clicked.actions as object[])[0]!))
      expect(Object.keys(actionSample)).toContain(key);
  });
});

describe('view_submission answers', () => {
  it('accepts what Slack accepts and names what it would refuse', () => {
    const view = modal();
    expect(checkViewSubmissionAnswer(view, undefined)).toEqual([]);
    expect(
      checkViewSubmissionAnswer(view, { response_action: 'errors', errors: { url: 'Not a Jira site' } }),
    ).toEqual([]);
    expect(checkViewSubmissionAnswer(view, { response_action: 'update', view: modal() })).toEqual([]);
    expect(checkViewSubmissionAnswer(view, { response_action: 'errors', errors: { nope: 'x' } })).toEqual([
      'errors.nope: not the block_id of an input block of the view',
    ]);
    expect(
      checkViewSubmissionAnswer(view, {
        response_action: 'push',
        view: modal({ title: { type: 'plain_text', text: 'x'.repeat(25) } }),
      }),
    ).toEqual(['[ERROR] must be less than 25 characters [json-pointer:/view/title/text]']);
    expect(checkViewSubmissionAnswer(view, { response_action: 'close' })).toEqual([
      'unknown response_action "close"',
    ]);
  });
});

describe('the fake itself', () => {
  it("answers only with fields Slack's answers have (java-slack-sdk samples)", async () => {
    const keysOf = (v: unknown) => Object.keys(v as object);
    const auth = await client.auth.test();
    for (const key of keysOf(auth))
      if (key !== 'response_metadata') expect(keysOf(sample('api/auth.test.json'))).toContain(key);
    const eph = await client.chat.postEphemeral({
      channel: 'C0CLOUDOPS',
      user: fake.users.member,
      text: 'x',
    });
    for (const key of keysOf(eph))
      if (key !== 'response_metadata') expect(keysOf(sample('api/chat.postEphemeral.json'))).toContain(key);
    const conv = await client.conversations.info({ channel: 'C0CLOUDOPS' });
    const convSample = sample('api/conversations.info.json').channel;
    for (const key of keysOf(conv.channel)) expect(keysOf(convSample)).toContain(key);
    const home = await client.views.publish({
      user_id: fake.users.owner,
      view: { type: 'home', blocks: [] },
    });
    const viewSample = sample('api/views.open.json').view;
    for (const key of keysOf(home.view)) expect(keysOf(viewSample)).toContain(key);
  });

  it('checks answers against the spec (a wrong answer is caught)', () => {
    const problems = specProblems('auth.test', { ok: true, team_id: 'not-a-team', extra: 1 });
    expect(problems).toContain('auth.test $.team_id: "not-a-team" does not match ^[T][A-Z0-9]{2,}$');
    expect(problems).toContain('auth.test $: unexpected property extra');
    expect(problems).toContain('auth.test $: missing url');
  });

  it('records calls with their JSON arguments decoded', async () => {
    await client.chat.postMessage({ channel: 'C0CLOUDOPS', text: 'rec', blocks: [{ type: 'divider' }] });
    expect(fake.calls.at(-1)).toMatchObject({
      method: 'chat.postMessage',
      token: fake.botToken,
      body: { channel: 'C0CLOUDOPS', text: 'rec', blocks: [{ type: 'divider' }] },
      status: 200,
    });
  });

  it("answered only what Slack's published Web API spec allows", () => {
    expect(fake.specViolations).toEqual([]);
  });
});

describe('with Bolt (the helpers and the fake together)', () => {
  it('a signed slash command, view submission and button click reach Bolt, which talks to the fake', async () => {
    const signingSecret = 'bolt-signing-secret-for-the-fake-test';
    const app = new App({
      signingSecret,
      token: fake.botToken,
      clientOptions: { slackApiUrl: fake.apiUrl, retryConfig: { retries: 0 } },
      logLevel: LogLevel.ERROR,
      logger: silent as never,
    });
    const submitted: unknown[] = [];
    const clicked: unknown[] = [];
    app.command('/cloudpi', async ({ ack, body, client: web }) => {
      await ack();
      await web.views.open({ trigger_id: body.trigger_id, view: modal() as never });
    });
    app.view('connect_jira', async ({ ack, view }) => {
      submitted.push(view.state.values);
      await ack();
    });
    app.action('create', async ({ ack, body, client: web }) => {
      await ack();
      clicked.push(body);
      await web.chat.postEphemeral({
        channel: 'C0CLOUDOPS',
        user: body.user.id,
        text: 'Creating the ticket…',
      });
    });
    const server = (await app.start(0)) as Server;
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const before = fake.modals.size;
      const command = await postSlackCommand(base, signingSecret, {
        text: 'connect jira',
        user_id: fake.users.admin,
        team_id: fake.teamId,
        trigger_id: fake.issueTriggerId(fake.users.admin),
        channel_id: 'C0CLOUDOPS',
      });
      expect(command.status).toBe(200);
      await expect.poll(() => fake.modals.size).toBe(before + 1);
      const view = [...fake.modals.values()].at(-1)!.view;

      const submission = await postSlackInteraction(
        base,
        signingSecret,
        viewSubmissionPayload({
          teamId: fake.teamId,
          userId: fake.users.admin,
          view,
          values: { url: { value: 'https://acme.atlassian.net' } },
        }),
      );
      expect(submission.status).toBe(200);
      expect(submitted).toEqual([
        {
          url: { value: { type: 'url_text_input', value: 'https://acme.atlassian.net' } },
          kind: { value: { type: 'static_select', selected_option: null } },
        },
      ]);

      const click = await postSlackInteraction(
        base,
        signingSecret,
        blockActionsPayload({
          teamId: fake.teamId,
          userId: fake.users.member,
          actionId: 'create',
          value: 'rec-1',
          triggerId: fake.issueTriggerId(),
        }),
      );
      expect(click.status).toBe(200);
      await expect.poll(() => fake.messages.at(-1)?.text).toBe('Creating the ticket…');

      // A wrong signature or a stale timestamp is refused by Bolt.
      const fields = { text: 'x', user_id: fake.users.admin, team_id: fake.teamId, trigger_id: '1.2.3' };
      expect((await postSlackCommand(base, 'wrong-secret', fields)).status).toBe(401);
      const stale = Math.floor(Date.now() / 1000) - 6 * 60;
      expect((await postSlackCommand(base, signingSecret, fields, { timestamp: stale })).status).toBe(401);
    } finally {
      await app.stop();
    }
  });
});
