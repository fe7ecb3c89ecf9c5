/**
 * Inbound Slack requests for tests: slash commands, interactivity payloads and Events API
 * callbacks, POSTed to `${baseUrl}/slack/events` and signed the way Slack signs them (v0:
 * HMAC-SHA256 of `v0:<timestamp>:<raw body>` with the app's signing secret, hex, in
 * `X-Slack-Signature: v0=<hex>`, the Unix timestamp in seconds in `X-Slack-Request-Timestamp`).
 *
 * The payload builders follow the shapes of Slack's own payloads as recorded by Slack's Java SDK
 * (test/fixtures/specs/slack/java-slack-sdk-samples/app-backend): SlashCommandPayload,
 * BlockActionPayload, ViewSubmissionPayload.
 */
import { createHmac, randomBytes, randomInt } from 'node:crypto';

export interface SignOptions {
  /** Unix seconds for X-Slack-Request-Timestamp (default now): an old one tests replay protection. */
  timestamp?: number;
  /** Sends this X-Slack-Signature instead of the right one. */
  signature?: string;
  /** Extra headers (e.g. X-Slack-Retry-Num for Events API retries). */
  headers?: Record<string, string>;
}

const APP_ID = 'A0CLOUDPI';
/** Slack still sends the deprecated verification token in payloads; Bolt ignores it. */
const VERIFICATION_TOKEN = 'verification-token-unused';

/** `v0=<hex HMAC-SHA256 of "v0:<timestamp>:<body>">`, Slack's request signature. */
export function signSlackRequest(signingSecret: string, timestamp: number, rawBody: string): string {
  return `v0=${createHmac('sha256', signingSecret).update(`v0:${timestamp}:${rawBody}`).digest('hex')}`;
}

/** POSTs an already serialized body, signed, to `${baseUrl}/slack/events`. */
export function postSignedSlackRequest(
  baseUrl: string,
  signingSecret: string,
  rawBody: string,
  contentType: string,
  opts: SignOptions = {},
): Promise<Response> {
  const timestamp = opts.timestamp ?? Math.floor(Date.now() / 1000);
  const signature = opts.signature ?? signSlackRequest(signingSecret, timestamp, rawBody);
  return fetch(`${baseUrl.replace(/\/+$/, '')}/slack/events`, {
    method: 'POST',
    headers: {
      'content-type': contentType,
      'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': signature,
      ...opts.headers,
    },
    body: rawBody,
  });
}

export interface SlashCommandFields {
  text: string;
  user_id: string;
  team_id: string;
  trigger_id: string;
  channel_id?: string;
  response_url?: string;
  /** Default '/cloudpi'. */
  command?: string;
  user_name?: string;
  channel_name?: string;
  team_domain?: string;
}

/** The form fields of a slash command, in the order and shape Slack sends them. */
export function slashCommandForm(fields: SlashCommandFields): URLSearchParams {
  const channelId = fields.channel_id ?? 'C0GENERAL';
  return new URLSearchParams({
    token: VERIFICATION_TOKEN,
    team_id: fields.team_id,
    team_domain: fields.team_domain ?? 'cloudpi-test',
    channel_id: channelId,
    channel_name: fields.channel_name ?? (channelId.startsWith('D') ? 'directmessage' : 'general'),
    user_id: fields.user_id,
    user_name: fields.user_name ?? fields.user_id.toLowerCase(),
    command: fields.command ?? '/cloudpi',
    text: fields.text,
    api_app_id: APP_ID,
    is_enterprise_install: 'false',
    response_url:
      fields.response_url ?? `https://hooks.slack.com/commands/${fields.team_id}/${randomInt(1e9, 1e10)}/x`,
    trigger_id: fields.trigger_id,
  });
}

/** Posts a Slack-signed slash command (form-encoded) to `${baseUrl}/slack/events`. */
export function postSlackCommand(
  baseUrl: string,
  signingSecret: string,
  fields: SlashCommandFields,
  opts?: SignOptions,
): Promise<Response> {
  return postSignedSlackRequest(
    baseUrl,
    signingSecret,
    slashCommandForm(fields).toString(),
    'application/x-www-form-urlencoded',
    opts,
  );
}

/** Posts a Slack-signed interactivity payload (form-encoded `payload=<json>`). */
export function postSlackInteraction(
  baseUrl: string,
  signingSecret: string,
  payload: Record<string, unknown>,
  opts?: SignOptions,
): Promise<Response> {
  const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
  return postSignedSlackRequest(baseUrl, signingSecret, body, 'application/x-www-form-urlencoded', opts);
}

/** Posts a Slack-signed Events API body (JSON: event_callback, url_verification). */
export function postSlackEvent(
  baseUrl: string,
  signingSecret: string,
  body: Record<string, unknown>,
  opts?: SignOptions,
): Promise<Response> {
  return postSignedSlackRequest(baseUrl, signingSecret, JSON.stringify(body), 'application/json', opts);
}

// ---------------------------------------------------------------------------------------------
// Payload builders.

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function actionTs(): string {
  return `${Math.floor(Date.now() / 1000)}.${String(randomInt(1e6)).padStart(6, '0')}`;
}

function userOf(teamId: string, userId: string): Json {
  const name = userId.toLowerCase();
  return { id: userId, username: name, name, team_id: teamId };
}

/** A trigger_id shaped like Slack's, for payloads whose trigger the test does not use. */
export function fakeTriggerId(): string {
  return `${randomInt(1e9, 1e10)}.${randomInt(1e9, 1e10)}.${randomBytes(16).toString('hex')}`;
}

/** A full view as Slack sends it back in payloads, from a view the test has (stored or bare). */
function fullView(teamId: string, view: Json): Json {
  const id = typeof view.id === 'string' ? view.id : `V${randomBytes(5).toString('hex').toUpperCase()}`;
  return {
    id,
    team_id: teamId,
    type: 'modal',
    private_metadata: '',
    callback_id: '',
    external_id: '',
    state: { values: {} },
    hash: `${Math.floor(Date.now() / 1000)}.${randomBytes(4).toString('hex')}`,
    clear_on_close: false,
    notify_on_close: false,
    close: null,
    submit: null,
    root_view_id: id,
    previous_view_id: null,
    app_id: APP_ID,
    app_installed_team_id: teamId,
    bot_id: 'B0CLOUDPI1',
    ...view,
  };
}

function findElement(blocks: unknown, actionId: string): { block: Json; element: Json } | undefined {
  if (!Array.isArray(blocks)) return undefined;
  for (const block of blocks) {
    if (!isObject(block)) continue;
    const candidates = [
      block.element,
      block.accessory,
      ...(Array.isArray(block.elements) ? block.elements : []),
    ];
    for (const element of candidates) {
      if (isObject(element) && element.action_id === actionId) return { block, element };
    }
  }
  return undefined;
}

function optionsOf(element: Json): Json[] {
  const direct = Array.isArray(element.options) ? element.options : [];
  const grouped = Array.isArray(element.option_groups)
    ? element.option_groups.flatMap((g) => (isObject(g) && Array.isArray(g.options) ? g.options : []))
    : [];
  return [...direct, ...grouped].filter(isObject);
}

function pickOption(element: Json, value: string): Json {
  const option = optionsOf(element).find((o) => o.value === value);
  if (!option)
    throw new Error(`no option with value ${JSON.stringify(value)} in ${String(element.action_id)}`);
  return option;
}

/**
 * The state value Slack sends for an input element: `value` is the text typed, the option value
 * chosen (string), or the option values (string[]) for multi-selects and checkboxes; null or
 * undefined is an untouched input. An object with a `type` is used as it is.
 */
function stateValue(element: Json, value: unknown): Json {
  if (isObject(value) && typeof value.type === 'string') return value;
  const type = String(element.type);
  const empty = value === undefined || value === null;
  switch (type) {
    case 'static_select':
    case 'radio_buttons':
      return { type, selected_option: empty ? null : pickOption(element, String(value)) };
    case 'multi_static_select':
    case 'checkboxes':
      return {
        type,
        selected_options: empty
          ? []
          : (Array.isArray(value) ? value : [value]).map((v) => pickOption(element, String(v))),
      };
    case 'users_select':
      return { type, selected_user: empty ? null : String(value) };
    case 'conversations_select':
      return { type, selected_conversation: empty ? null : String(value) };
    case 'channels_select':
      return { type, selected_channel: empty ? null : String(value) };
    case 'datepicker':
      return { type, selected_date: empty ? null : String(value) };
    default:
      // plain_text_input, email_text_input, url_text_input, number_input
      return { type, value: empty ? null : String(value) };
  }
}

/**
 * A view_submission payload (ViewSubmissionPayload). `view` is the view as Slack holds it (e.g.
 * `fake.modals.get(id).view`) or as the app built it; `values` maps block_id → action_id → the
 * entered value (see stateValue). Input blocks the test leaves out are sent empty, as Slack does.
 */
export function viewSubmissionPayload(args: {
  teamId: string;
  userId: string;
  view: Record<string, unknown>;
  values: Record<string, Record<string, unknown>>;
  triggerId?: string;
}): Record<string, unknown> {
  const view = fullView(args.teamId, args.view);
  const values: Record<string, Record<string, Json>> = {};
  const blocks = Array.isArray(view.blocks) ? view.blocks.filter(isObject) : [];
  for (const block of blocks) {
    if (block.type !== 'input' || !isObject(block.element) || typeof block.block_id !== 'string') continue;
    const actionId = String(block.element.action_id);
    values[block.block_id] = {
      [actionId]: stateValue(block.element, args.values[block.block_id]?.[actionId]),
    };
  }
  for (const [blockId, byAction] of Object.entries(args.values)) {
    for (const [actionId, value] of Object.entries(byAction)) {
      if (values[blockId]?.[actionId]) continue;
      const found = findElement(blocks, actionId);
      if (!found && !(isObject(value) && typeof value.type === 'string'))
        throw new Error(`view has no element ${blockId}/${actionId}; pass {type, ...} to send it anyway`);
      values[blockId] = { ...values[blockId], [actionId]: stateValue(found?.element ?? {}, value) };
    }
  }
  return {
    type: 'view_submission',
    team: { id: args.teamId, domain: 'cloudpi-test' },
    user: userOf(args.teamId, args.userId),
    api_app_id: APP_ID,
    token: VERIFICATION_TOKEN,
    trigger_id: args.triggerId ?? fakeTriggerId(),
    view: { ...view, state: { values } },
    response_urls: [],
    is_enterprise_install: false,
    enterprise: null,
  };
}

/**
 * A block_actions payload (BlockActionPayload) for a click on `actionId`: in a modal when `view`
 * is given (container {type: 'view'}), else in a message (`container` or a channel message
 * container). The element is looked up in the view's (or `message`'s) blocks to send its type,
 * text and block_id like Slack; a select's `value` becomes its selected_option.
 */
export function blockActionsPayload(args: {
  teamId: string;
  userId: string;
  actionId: string;
  value?: string;
  blockId?: string;
  triggerId: string;
  view?: Record<string, unknown>;
  container?: Record<string, unknown>;
  /** The message holding the button (sent as `message`, with `channel` and `response_url`). */
  message?: Record<string, unknown>;
  channelId?: string;
  responseUrl?: string;
}): Record<string, unknown> {
  const view = args.view ? fullView(args.teamId, args.view) : undefined;
  const found = findElement(view?.blocks ?? args.message?.blocks, args.actionId);
  const element = found?.element ?? { type: 'button', action_id: args.actionId };
  const type = String(element.type ?? 'button');
  const blockId =
    args.blockId ?? (typeof found?.block.block_id === 'string' ? found.block.block_id : 'actions');
  const action: Json = { action_id: args.actionId, block_id: blockId, type, action_ts: actionTs() };
  if (type === 'button') {
    if (element.text !== undefined) action.text = element.text;
    const value = args.value ?? element.value;
    if (value !== undefined) action.value = value;
    if (element.style !== undefined) action.style = element.style;
  } else if (type === 'static_select' || type === 'overflow' || type === 'radio_buttons') {
    if (args.value !== undefined)
      action.selected_option = optionsOf(element).length > 0 ? pickOption(element, args.value) : null;
  } else if (args.value !== undefined) {
    action.value = args.value;
  }

  const channelId =
    args.channelId ?? (typeof args.message?.channel === 'string' ? args.message.channel : 'C0GENERAL');
  const messageTs = typeof args.message?.ts === 'string' ? args.message.ts : actionTs();
  const container =
    args.container ??
    (view
      ? { type: 'view', view_id: view.id }
      : { type: 'message', message_ts: messageTs, channel_id: channelId, is_ephemeral: false });
  const inMessage = container.type === 'message' || container.type === 'ephemeral';
  return {
    type: 'block_actions',
    user: userOf(args.teamId, args.userId),
    api_app_id: APP_ID,
    token: VERIFICATION_TOKEN,
    container,
    trigger_id: args.triggerId,
    team: { id: args.teamId, domain: 'cloudpi-test' },
    enterprise: null,
    is_enterprise_install: false,
    ...(view ? { view } : {}),
    ...(inMessage
      ? {
          channel: { id: String(container.channel_id ?? channelId), name: 'general' },
          ...(args.message
            ? {
                message: {
                  type: 'message',
                  ts: messageTs,
                  bot_id: 'B0CLOUDPI1',
                  user: 'U0BOT',
                  ...args.message,
                },
              }
            : {}),
          response_url:
            args.responseUrl ?? `https://hooks.slack.com/actions/${args.teamId}/${randomInt(1e9, 1e10)}/x`,
        }
      : {}),
    actions: [action],
  };
}

/** A view_closed payload (ViewClosedPayload): the user closed a modal opened with notify_on_close. */
export function viewClosedPayload(args: {
  teamId: string;
  userId: string;
  view: Record<string, unknown>;
  isCleared?: boolean;
}): Record<string, unknown> {
  return {
    type: 'view_closed',
    team: { id: args.teamId, domain: 'cloudpi-test' },
    user: userOf(args.teamId, args.userId),
    api_app_id: APP_ID,
    token: VERIFICATION_TOKEN,
    view: fullView(args.teamId, args.view),
    is_cleared: args.isCleared ?? false,
    is_enterprise_install: false,
    enterprise: null,
  };
}
