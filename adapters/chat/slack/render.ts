/**
 * Block Kit rendering of the core's view models. Everything that comes from users or providers
 * (site URLs, error messages, ticket titles, audit entries) is escaped (&, <, >) and set in
 * `verbatim` mrkdwn, so it can neither mention (<!channel>, <@U…>) nor forge links; only links we
 * build ourselves (ticket URLs that parse as http/https) are links. Every string is cut to its
 * Block Kit limit, block counts are capped per surface, and action ids are unique per view.
 */
import type { types } from '@slack/bolt';
import type {
  ActionButton,
  ActionName,
  AuditView,
  ConfigureFormView,
  ConfirmView,
  HelpView,
  IntegrationDetailsView,
  IntegrationFormView,
  NoticeView,
  ProgressView,
  SettingsKind,
  StatusBoardView,
  SubscribeFormView,
  SubscriptionListView,
  Tone,
  View,
} from '../../../src/commands/views.js';
import { SETTINGS_KINDS } from '../../../src/commands/views.js';
import {
  isResolved,
  type RecommendationCardView,
  ticketStatusLabel,
} from '../../../src/recommendations/card.js';

type Block = types.KnownBlock;
type PlainText = types.PlainTextElement;
type Mrkdwn = types.MrkdwnElement;
type Option = types.PlainTextOption;

/** Slack's documented Block Kit limits (characters unless noted). */
export const LIMITS = {
  messageBlocks: 50,
  viewBlocks: 100,
  modalTitle: 24,
  modalButton: 24,
  sectionText: 3000,
  headerText: 150,
  contextText: 3000,
  buttonText: 75,
  buttonValue: 2000,
  inputLabel: 2000,
  inputHint: 2000,
  placeholder: 150,
  textInput: 3000,
  selectOptions: 100,
  optionText: 75,
  optionValue: 150,
  blockId: 255,
  actionId: 255,
  privateMetadata: 3000,
  messageText: 3000,
} as const;

export const CALLBACK = {
  integration: 'cloudpi.integration',
  configure: 'cloudpi.configure',
  confirm: 'cloudpi.confirm',
  details: 'cloudpi.details',
  notice: 'cloudpi.notice',
  progress: 'cloudpi.progress',
  subscribe: 'cloudpi.subscribe',
} as const;

/** Form fields: the block_id and the element's action_id are both the field key. */
function fieldId(key: string): string {
  return cut(key, LIMITS.blockId);
}
const ACTION_PREFIX = 'cloudpi.';
const ACTIONS: readonly ActionName[] = [
  'test-email',
  'connect',
  'edit',
  'configure',
  'disconnect',
  'confirm-disconnect',
  'pause',
  'activate',
  'refresh',
  'unsubscribe',
];
export const ACTION_ID_PATTERN = /^cloudpi\.[a-z-]+\.[a-z-]+(?:\.\d+)?$/;

/** What a modal remembers between its opening and its submission or button presses. */
export interface ModalMeta {
  readonly provider?: SettingsKind;
  /** Where the flow started: a slash command in a channel, App Home or an ephemeral message. */
  readonly channel?: string;
}

export function encodeMeta(meta: ModalMeta): string {
  const text = JSON.stringify(meta);
  return text.length <= LIMITS.privateMetadata ? text : JSON.stringify({ provider: meta.provider });
}

export function decodeMeta(text: string | undefined): ModalMeta {
  try {
    const raw = JSON.parse(text || '{}') as Record<string, unknown>;
    const provider = SETTINGS_KINDS.find((k) => k === raw.provider);
    return {
      ...(provider ? { provider } : {}),
      ...(typeof raw.channel === 'string' ? { channel: raw.channel } : {}),
    };
  } catch {
    return {};
  }
}

export function actionIdOf(button: Pick<ActionButton, 'action' | 'provider'>): string {
  return `${ACTION_PREFIX}${button.action}.${button.provider ?? 'all'}`;
}

export function parseActionId(
  actionId: string,
): { action: ActionName; provider: SettingsKind | undefined } | undefined {
  if (!ACTION_ID_PATTERN.test(actionId)) return undefined;
  const [, action, provider] = actionId.split('.');
  const name = ACTIONS.find((a) => a === action);
  if (!name) return undefined;
  return { action: name, provider: SETTINGS_KINDS.find((k) => k === provider) };
}

// ---------------------------------------------------------------------------------------------
// Text

/** Escapes the three characters Slack gives meaning to in mrkdwn (mentions, links, commands). */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Cuts to `max` characters with an ellipsis, never inside an escape entity or a surrogate pair. */
export function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  let head = text.slice(0, Math.max(0, max - 1));
  head = head.replace(/&[a-z]{0,3}$/, '');
  if (/[\uD800-\uDBFF]$/.test(head)) head = head.slice(0, -1);
  return `${head}…`;
}

function plain(text: string, max: number): PlainText {
  return { type: 'plain_text', text: cut(text.trim() || '-', max), emoji: true };
}

/** mrkdwn whose parts were escaped by the caller; `verbatim` stops auto-linking and mention parsing. */
function md(text: string, max: number = LIMITS.sectionText): Mrkdwn {
  return { type: 'mrkdwn', text: cut(text.trim() || '-', max), verbatim: true };
}

const e = escapeMrkdwn;

const TONE_EMOJI: Record<Tone, string> = {
  success: ':white_check_mark:',
  error: ':x:',
  warning: ':warning:',
  info: ':information_source:',
};

const BADGE_EMOJI: Record<string, string> = {
  active: ':large_green_circle:',
  connected: ':large_blue_circle:',
  not_connected: ':white_circle:',
  error: ':red_circle:',
};

function badgeEmoji(status: string): string {
  return BADGE_EMOJI[status] ?? ':white_circle:';
}

/** An http(s) link we build ourselves; anything else is shown as text. */
function link(url: string, label: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return e(label);
    const safe = parsed.href
      .replace(/\|/g, '%7C')
      .replace(/</g, '%3C')
      .replace(/>/g, '%3E')
      .replace(/&/g, '&amp;');
    return `<${safe}|${e(label).replace(/\|/g, '¦')}>`;
  } catch {
    return e(label);
  }
}

// ---------------------------------------------------------------------------------------------
// Blocks

/** Keeps action ids unique within one view or message (Slack refuses duplicates). */
class ActionIds {
  readonly #seen = new Set<string>();

  next(button: Pick<ActionButton, 'action' | 'provider'>): string {
    const base = actionIdOf(button);
    let id = base;
    for (let n = 2; this.#seen.has(id); n++) id = `${base}.${n}`;
    this.#seen.add(id);
    return id;
  }
}

function buttons(actions: readonly ActionButton[], ids: ActionIds, blockId: string): Block[] {
  if (actions.length === 0) return [];
  return [
    {
      type: 'actions',
      block_id: cut(blockId, LIMITS.blockId),
      elements: actions.slice(0, 25).map((a) => ({
        type: 'button' as const,
        action_id: ids.next(a),
        text: plain(a.label, LIMITS.buttonText),
        value: cut(a.subscriptionId ?? a.provider ?? 'all', LIMITS.buttonValue),
        ...(a.style ? { style: a.style } : {}),
      })),
    },
  ];
}

function noticeBlocks(notice: NoticeView, blockId = 'notice'): Block[] {
  const text = `${TONE_EMOJI[notice.tone]} *${e(notice.title)}*${notice.text ? `\n${e(notice.text)}` : ''}`;
  const url =
    notice.link && /^https?:\/\//i.test(notice.link.url) && notice.link.url.length <= 3000
      ? notice.link.url
      : undefined;
  return [
    { type: 'section', block_id: blockId, text: md(text) },
    ...(url
      ? [
          {
            type: 'actions',
            block_id: `${blockId}.link`,
            elements: [
              {
                type: 'button',
                action_id: `${ACTION_PREFIX}link.all`,
                text: plain(notice.link!.label, LIMITS.buttonText),
                url,
                style: 'primary',
              },
            ],
          } as Block,
        ]
      : []),
  ];
}

function capBlocks(blocks: Block[], max: number): Block[] {
  if (blocks.length <= max) return blocks;
  return [
    ...blocks.slice(0, max - 1),
    { type: 'context', block_id: 'more', elements: [md('…more is not shown here.')] },
  ];
}

function helpBlocks(help: HelpView): Block[] {
  const lines = help.commands.map((c) => `\`${e(c.usage)}\`  ${e(c.description)}`);
  return [
    ...(help.suggestion
      ? [
          {
            type: 'section' as const,
            block_id: 'suggestion',
            text: md(`:thinking_face: Did you mean \`${e(help.suggestion)}\`?`),
          },
        ]
      : []),
    { type: 'section', block_id: 'intro', text: md(e(help.intro)) },
    { type: 'section', block_id: 'commands', text: md(lines.join('\n')) },
  ];
}

function statusBoardBlocks(board: StatusBoardView, ids: ActionIds): Block[] {
  const blocks: Block[] = [
    { type: 'header', block_id: 'title', text: plain(board.title, LIMITS.headerText) },
  ];
  for (const p of board.providers) {
    const details = p.details.map((d) => e(d)).join('\n');
    blocks.push({
      type: 'section',
      block_id: `provider.${p.provider}`,
      text: md(
        `*${e(p.displayName)}*   ${badgeEmoji(p.status)} ${e(p.badge)}${details ? `\n${details}` : ''}`,
      ),
    });
    blocks.push(...buttons(p.actions, ids, `actions.${p.provider}`));
    blocks.push({ type: 'divider', block_id: `divider.${p.provider}` });
  }
  board.settings.forEach((s, i) => {
    const details = s.details.map((d) => e(d)).join('\n');
    const status = s.badge === 'Not Connected' ? 'not_connected' : s.badge.toLowerCase();
    blocks.push({
      type: 'section',
      block_id: `setting.${i}`,
      text: md(`*${e(s.name)}*   ${badgeEmoji(status)} ${e(s.badge)}${details ? `\n${details}` : ''}`),
    });
    blocks.push(...buttons(s.actions, ids, `setting-actions.${i}`));
  });
  blocks.push({ type: 'divider', block_id: 'divider.tickets' });
  const tickets = board.recentTickets.map(
    (t) =>
      `${link(t.url, t.key)}  ${e(t.title)}  ·  ${e(ticketStatusLabel({ status: t.status, providerStatus: t.providerStatus ?? null }))}  ·  ${e(t.providerName ?? t.provider)}`,
  );
  blocks.push({
    type: 'section',
    block_id: 'tickets',
    text: md(`*Recent tickets*\n${tickets.length ? tickets.join('\n') : 'No tickets yet.'}`),
  });
  if (board.deliveryProblems?.length) {
    // A Slack channel id is shown as a mention; anything else (another platform's id) as text.
    const channel = (id: string) => (/^[CGD][A-Z0-9]{2,}$/.test(id) ? `<#${id}>` : e(id));
    const problems = board.deliveryProblems.map(
      (p) =>
        `${channel(p.channelId)}  \`${e(p.reason)}\`  ·  ${e(p.title)}${p.fallback ? `\n      ${e(p.fallback)}` : ''}`,
    );
    blocks.push({ type: 'divider', block_id: 'divider.delivery' });
    blocks.push({
      type: 'section',
      block_id: 'delivery-problems',
      text: md(
        `*Delivery problems*\nThese cards could not be posted; invite the app back or remove the subscription:\n${problems.join('\n')}`,
      ),
    });
  }
  if (!board.canEdit) {
    blocks.push({
      type: 'context',
      block_id: 'admins-only',
      elements: [
        md(
          'Only CloudPi admins can change these settings: workspace admins and owners, and people an admin granted it to.',
        ),
      ],
    });
  }
  return blocks;
}

function detailsBlocks(details: IntegrationDetailsView, ids: ActionIds): Block[] {
  const lines = details.details.map((d) => e(d)).join('\n');
  return [
    ...(details.notice ? noticeBlocks(details.notice) : []),
    {
      type: 'section',
      block_id: 'status',
      text: md(
        `*${e(details.title)}*   ${badgeEmoji(statusOfBadge(details.badge))} ${e(details.badge)}${lines ? `\n${lines}` : ''}`,
      ),
    },
    ...buttons(details.actions, ids, `actions.${details.provider}`),
  ];
}

function statusOfBadge(badge: string): string {
  return badge.toLowerCase().replace(/\s+/g, '_');
}

function auditBlocks(audit: AuditView): Block[] {
  if (audit.entries.length === 0) {
    return [
      { type: 'section', block_id: 'audit', text: md('*Recent admin changes*\nNo admin changes yet.') },
    ];
  }
  const lines = audit.entries.map(
    (a) => `${a.at.toISOString().replace(/\.\d+Z$/, 'Z')}  ${e(a.actor)}  ${e(a.action)}  ${e(a.target)}`,
  );
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i += 10) {
    const chunk = lines.slice(i, i + 10).join('\n');
    blocks.push({
      type: 'section',
      block_id: `audit.${i / 10}`,
      text: md(`${i === 0 ? '*Recent admin changes*\n' : ''}${chunk}`),
    });
  }
  return blocks;
}

function progressBlocks(progress: ProgressView): Block[] {
  return [
    { type: 'section', block_id: 'progress', text: md(`:hourglass_flowing_sand: ${e(progress.text)}`) },
  ];
}

function option(value: string, label: string): Option {
  return { text: plain(label, LIMITS.optionText), value: cut(value, LIMITS.optionValue) };
}

/** An error shown under its field in a view we update ourselves (response_action errors cannot). */
function fieldError(key: string, message: string): Block {
  return {
    type: 'context',
    block_id: cut(`${key}.error`, LIMITS.blockId),
    elements: [md(`:warning: ${e(message)}`, LIMITS.contextText)],
  };
}

function input(
  key: string,
  label: string,
  required: boolean,
  element: types.InputBlockElement,
  hint?: string,
  dispatch = false,
): Block {
  return {
    type: 'input',
    block_id: fieldId(key),
    label: plain(label, LIMITS.inputLabel),
    optional: !required,
    element,
    ...(hint ? { hint: plain(hint, LIMITS.inputHint) } : {}),
    // A change is sent at once (block_actions), so the form can be rebuilt for the new choice.
    ...(dispatch ? { dispatch_action: true } : {}),
  };
}

function selectElement(
  key: string,
  options: readonly { value: string; label: string }[],
  value: string | undefined,
): types.StaticSelect {
  const rendered = options.slice(0, LIMITS.selectOptions).map((o) => option(o.value, o.label));
  const initial = rendered.find((o) => o.value === value);
  return {
    type: 'static_select',
    action_id: fieldId(key),
    options: rendered,
    ...(initial ? { initial_option: initial } : {}),
  };
}

function textElement(
  key: string,
  value: string | undefined,
  placeholder: string | undefined,
): types.PlainTextInput {
  return {
    type: 'plain_text_input',
    action_id: fieldId(key),
    max_length: LIMITS.textInput,
    ...(value ? { initial_value: cut(value, LIMITS.textInput) } : {}),
    ...(placeholder ? { placeholder: plain(placeholder, LIMITS.placeholder) } : {}),
  };
}

function formBlocks(form: IntegrationFormView): Block[] {
  const keys = new Set(form.fields.map((f) => f.key));
  const stray = Object.entries(form.errors).filter(([k]) => !keys.has(k));
  const blocks: Block[] = [
    ...(form.notice ? noticeBlocks(form.notice) : []),
    ...stray.map(([, message], i) => fieldError(`form.${i}`, message)),
  ];
  for (const field of form.fields) {
    const other = field.when ? form.fields.find((f) => f.key === field.when?.field) : undefined;
    const condition = field.when
      ? `Only when ${other?.label ?? field.when.field} is ${field.when.oneOf
          .map((v) => other?.options?.find((o) => o.value === v)?.label ?? v)
          .join(' or ')}.`
      : undefined;
    const hint = [field.hint, condition].filter(Boolean).join(' ');
    // Secrets are never pre-filled, whatever the view carries.
    const value = field.secret ? undefined : field.value;
    const element =
      field.type === 'select' && field.options?.length
        ? selectElement(field.key, field.options, value ?? field.defaultValue)
        : textElement(field.key, value, field.placeholder);
    blocks.push(input(field.key, field.label, field.required && !field.when, element, hint || undefined));
    const error = form.errors[field.key];
    if (error) blocks.push(fieldError(field.key, error));
  }
  return blocks;
}

function configureBlocks(form: ConfigureFormView): Block[] {
  const blocks: Block[] = [...(form.notice ? noticeBlocks(form.notice) : [])];
  for (const field of form.fields) {
    const select = field.type === 'select' && Boolean(field.options?.length);
    const element = select
      ? selectElement(field.key, field.options ?? [], field.value)
      : textElement(field.key, field.value, undefined);
    blocks.push(input(field.key, field.label, field.required, element, field.hint, select && field.reloads));
    const error = form.errors[field.key];
    if (error) blocks.push(fieldError(field.key, error));
  }
  return blocks;
}

function subscribeBlocks(form: SubscribeFormView): Block[] {
  const keys = new Set(form.fields.map((f) => f.key));
  const stray = Object.entries(form.errors).filter(([k]) => !keys.has(k));
  const blocks: Block[] = [
    ...(form.notice ? noticeBlocks(form.notice) : []),
    ...stray.map(([, message], i) => fieldError(`form.${i}`, message)),
  ];
  for (const field of form.fields) {
    let element: types.InputBlockElement;
    if (field.type === 'multi-select' && field.options?.length) {
      const rendered = field.options.slice(0, LIMITS.selectOptions).map((o) => option(o.value, o.label));
      const chosen = typeof field.value === 'string' ? [field.value] : (field.value ?? []);
      const initial = rendered.filter((o) => chosen.includes(o.value ?? ''));
      element = {
        type: 'multi_static_select',
        action_id: fieldId(field.key),
        options: rendered,
        ...(initial.length ? { initial_options: initial } : {}),
        placeholder: plain('Any', LIMITS.placeholder),
      };
    } else if (field.type === 'select' && field.options?.length) {
      element = selectElement(
        field.key,
        field.options,
        typeof field.value === 'string' ? field.value : undefined,
      );
    } else {
      element = textElement(
        field.key,
        typeof field.value === 'string' ? field.value : undefined,
        field.placeholder,
      );
    }
    blocks.push(input(field.key, field.label, false, element, field.hint));
    const error = form.errors[field.key];
    if (error) blocks.push(fieldError(field.key, error));
  }
  return blocks;
}

function subscriptionBlocks(list: SubscriptionListView, ids: ActionIds): Block[] {
  const blocks: Block[] = [
    ...(list.notice ? noticeBlocks(list.notice) : []),
    { type: 'section', block_id: 'subscriptions', text: md(`*${e(list.title)}*`) },
  ];
  if (list.items.length === 0) {
    blocks.push({ type: 'section', block_id: 'subscriptions.none', text: md(e(list.empty)) });
    return blocks;
  }
  list.items.forEach((item, i) => {
    const lines = [
      `:bell: ${e(item.filters)}`,
      ...(item.tickets ? [e(item.tickets)] : []),
      ...(item.createdBy ? [`_added by ${e(item.createdBy)}_`] : []),
    ];
    blocks.push({ type: 'section', block_id: `subscription.${i}`, text: md(lines.join('\n')) });
    blocks.push(...buttons(item.actions, ids, `subscription-actions.${i}`));
  });
  return blocks;
}

// ---------------------------------------------------------------------------------------------
// Surfaces

export type ModalContent =
  | IntegrationFormView
  | IntegrationDetailsView
  | ConfigureFormView
  | ConfirmView
  | NoticeView
  | ProgressView
  | View;

function modal(
  title: string,
  blocks: Block[],
  meta: ModalMeta,
  opts: { callbackId: string; submit?: string; close?: string },
): types.ModalView {
  return {
    type: 'modal',
    callback_id: opts.callbackId,
    title: plain(title, LIMITS.modalTitle),
    ...(opts.submit ? { submit: plain(opts.submit, LIMITS.modalButton) } : {}),
    close: plain(opts.close ?? 'Close', LIMITS.modalButton),
    private_metadata: encodeMeta(meta),
    blocks: capBlocks(blocks, LIMITS.viewBlocks),
  };
}

/** A modal for any view the core hands to a form surface. */
export function renderModal(view: ModalContent, meta: ModalMeta = {}): types.ModalView {
  const ids = new ActionIds();
  switch (view.kind) {
    case 'integration-form':
      return modal(
        view.title,
        formBlocks(view),
        { ...meta, provider: view.provider },
        {
          callbackId: CALLBACK.integration,
          submit: view.submitLabel,
          close: 'Cancel',
        },
      );
    case 'configure-form':
      return modal(
        view.title,
        configureBlocks(view),
        { ...meta, provider: view.provider },
        {
          callbackId: CALLBACK.configure,
          submit: view.submitLabel,
          close: 'Cancel',
        },
      );
    case 'integration-details':
      return modal(
        view.title,
        detailsBlocks(view, ids),
        { ...meta, provider: view.provider },
        {
          callbackId: CALLBACK.details,
          close: 'Done',
        },
      );
    case 'confirm':
      return modal(
        view.title,
        [{ type: 'section', block_id: 'confirm', text: md(e(view.text)) }],
        { ...meta, ...(view.confirm.provider ? { provider: view.confirm.provider } : {}) },
        { callbackId: CALLBACK.confirm, submit: view.confirm.label, close: 'Cancel' },
      );
    case 'progress':
      return modal(view.title, progressBlocks(view), meta, { callbackId: CALLBACK.progress });
    case 'subscribe-form':
      return modal(
        view.title,
        subscribeBlocks(view),
        { ...meta, channel: view.channelId },
        { callbackId: CALLBACK.subscribe, submit: 'Subscribe', close: 'Cancel' },
      );
    case 'notice':
      return modal('CloudPi', noticeBlocks(view), meta, { callbackId: CALLBACK.notice, close: 'Done' });
    default:
      return modal('CloudPi', messageBlocks(view, ids), meta, { callbackId: CALLBACK.notice, close: 'Done' });
  }
}

/** "Verifying…", "Loading…": what a modal shows while slow work runs. */
export function progressView(title: string, text: string): ProgressView {
  return { kind: 'progress', title, text };
}

function messageBlocks(view: View, ids: ActionIds): Block[] {
  switch (view.kind) {
    case 'notice':
      return noticeBlocks(view);
    case 'help':
      return helpBlocks(view);
    case 'status-board':
      return statusBoardBlocks(view, ids);
    case 'audit':
      return auditBlocks(view);
    case 'integration-details':
      return detailsBlocks(view, ids);
    case 'progress':
      return progressBlocks(view);
    case 'confirm':
      return [{ type: 'section', block_id: 'confirm', text: md(e(view.text)) }];
    case 'subscriptions':
      return subscriptionBlocks(view, ids);
    case 'integration-form':
    case 'configure-form':
    case 'subscribe-form':
      return [{ type: 'section', block_id: 'form', text: md(e(view.title)) }];
  }
}

/** Plain fallback text (notifications, screen readers) for a message's blocks. */
function fallbackText(view: View): string {
  switch (view.kind) {
    case 'notice':
      return `${view.title}${view.text ? `. ${view.text}` : ''}`;
    case 'help':
      return view.suggestion ? `Did you mean ${view.suggestion}? ${view.intro}` : view.intro;
    case 'status-board':
      return `${view.title}: ${view.providers.map((p) => `${p.displayName} ${p.badge}`).join(', ')}`;
    case 'audit':
      return 'Recent admin changes';
    case 'subscriptions':
      return view.notice
        ? `${view.notice.title}. ${view.title}: ${view.items.length}`
        : `${view.title}: ${view.items.length}`;
    default:
      return view.title;
  }
}

/** An ephemeral message (slash command answers). */
export function renderMessage(view: View): { text: string; blocks: Block[] } {
  return {
    text: cut(e(fallbackText(view)), LIMITS.messageText),
    blocks: capBlocks(messageBlocks(view, new ActionIds()), LIMITS.messageBlocks),
  };
}

/** App Home: the Integration settings page. */
export function renderHome(board: StatusBoardView): types.HomeView {
  return {
    type: 'home',
    callback_id: 'cloudpi.home',
    blocks: capBlocks(statusBoardBlocks(board, new ActionIds()), LIMITS.viewBlocks),
  };
}

// ---------------------------------------------------------------------------------------------
// Recommendation cards

/** Prefix of card buttons (not matched by ACTION_ID_PATTERN: cards have their own listener). */
export const CARD_ACTION_PREFIX = 'cloudpi_card.';
export const CARD_ACTION_PATTERN = /^cloudpi_card\.(create|retry|dismiss|open)(?:\.([a-z-]+))?$/;

/** The value of a card button: recommendation id and provider. */
export function cardButtonValue(recommendationId: string, provider?: string): string {
  return provider ? `${recommendationId}|${provider}` : recommendationId;
}

export function parseCardAction(
  actionId: string,
  value: string | undefined,
): { action: 'create' | 'retry' | 'dismiss'; recommendationId: string; provider?: string } | undefined {
  const match = CARD_ACTION_PATTERN.exec(actionId);
  if (!match || match[1] === 'open' || !value) return undefined;
  const [recommendationId, provider] = value.split('|');
  if (!recommendationId || !/^[0-9a-f-]{36}$/i.test(recommendationId)) return undefined;
  return {
    action: match[1] as 'create' | 'retry' | 'dismiss',
    recommendationId,
    ...(provider ? { provider } : {}),
  };
}

/** A URL inside `<url|label>`: no character that ends or splits the link. */
function safeUrl(url: string): string | undefined {
  if (!/^https?:\/\//i.test(url)) return undefined;
  return url.replace(/&/g, '&amp;').replace(/</g, '%3C').replace(/>/g, '%3E').replace(/\|/g, '%7C');
}

const SEVERITY_EMOJI: Record<string, string> = {
  critical: ':red_circle:',
  high: ':large_orange_circle:',
  medium: ':large_yellow_circle:',
  low: ':white_circle:',
};

/** A recommendation card (chat.postMessage / chat.update): escaped, cut to Block Kit's limits. */
export function renderCard(view: RecommendationCardView): { text: string; blocks: Block[] } {
  const blocks: Block[] = [
    { type: 'header', text: { type: 'plain_text', text: cut(view.title, LIMITS.headerText), emoji: false } },
  ];
  const facts: [string, string | undefined][] = [
    ['Resource', view.resource],
    ['Account', view.account],
    ['Cloud', view.cloud],
    ['Category', view.category],
    ['Monthly savings', view.savings],
    [
      'Severity',
      view.severity ? `${SEVERITY_EMOJI[view.severity] ?? ''} ${view.severity}`.trim() : undefined,
    ],
  ];
  // Labels are ours; values come from the recommendation and are escaped.
  const fields: Mrkdwn[] = facts
    .filter((f): f is [string, string] => Boolean(f[1]))
    .map(([label, value]) => ({
      type: 'mrkdwn',
      text: cut(`*${label}*\n${e(value)}`, 2000),
      verbatim: true,
    }));
  if (fields.length > 0)
    blocks.push({ type: 'section', block_id: 'card.facts', fields: fields.slice(0, 10) });

  const ticket = view.ticket;
  const status = (text: string, blockId = 'card.ticket'): Block => ({
    type: 'context',
    block_id: blockId,
    elements: [{ type: 'mrkdwn', text: cut(text, LIMITS.contextText), verbatim: true }],
  });
  if (view.dismissed) blocks.push(status(':no_entry_sign: Dismissed in this channel.', 'card.dismissed'));
  if (ticket.kind === 'creating') blocks.push(status(':hourglass_flowing_sand: Creating ticket…'));
  else if (ticket.kind === 'created') {
    // Key and URL are bounded on their own, so cutting the line can never split the link.
    const url = ticket.url && ticket.url.length <= 2000 ? safeUrl(ticket.url) : undefined;
    const key = e(cut(ticket.key, 255)).replace(/\|/g, '');
    const slackUser = /^slack:([A-Z0-9]+)$/.exec(ticket.createdBy ?? '')?.[1];
    const who = slackUser ? ` by <@${slackUser}>` : ticket.createdBy ? ` by ${e(ticket.createdBy)}` : '';
    const ref = url ? `<${url}|${key}>` : key;
    // The provider's own word ("In Review") when known; ours otherwise.
    const shown = e(ticketStatusLabel(ticket));
    blocks.push(
      isResolved(ticket)
        ? status(`:white_check_mark: Resolved · Ticket ${ref} · ${shown}${who}`)
        : status(`:ticket: Ticket ${ref} · ${shown}${who}`),
    );
  } else if (ticket.kind === 'failed')
    blocks.push(status(`:warning: The ticket could not be created: ${e(ticket.reason)}`));

  const buttons: types.Button[] = [];
  if (!view.dismissed) {
    if (ticket.kind === 'none') {
      for (const p of view.offeredProviders) {
        buttons.push({
          type: 'button',
          action_id: `${CARD_ACTION_PREFIX}create.${p.kind}`,
          text: {
            type: 'plain_text',
            text: cut(
              view.offeredProviders.length > 1 ? `Create ticket in ${p.displayName}` : 'Create ticket',
              LIMITS.buttonText,
            ),
          },
          style: 'primary',
          value: cardButtonValue(view.recommendationId, p.kind),
        });
      }
    } else if (ticket.kind === 'failed') {
      buttons.push({
        type: 'button',
        action_id: `${CARD_ACTION_PREFIX}retry.${ticket.provider}`,
        text: { type: 'plain_text', text: 'Retry' },
        style: 'primary',
        value: cardButtonValue(view.recommendationId, ticket.provider),
      });
    }
  }
  if (view.link) {
    const url = /^https?:\/\//i.test(view.link) && view.link.length <= 3000 ? view.link : undefined;
    if (url)
      buttons.push({
        type: 'button',
        action_id: `${CARD_ACTION_PREFIX}open`,
        text: { type: 'plain_text', text: 'Open in CloudPi' },
        url,
      });
  }
  if (!view.dismissed && ticket.kind === 'none')
    buttons.push({
      type: 'button',
      action_id: `${CARD_ACTION_PREFIX}dismiss`,
      text: { type: 'plain_text', text: 'Dismiss' },
      value: cardButtonValue(view.recommendationId),
    });
  if (buttons.length > 0)
    blocks.push({ type: 'actions', block_id: 'card.actions', elements: buttons.slice(0, 25) });
  return { text: cut(e(`Recommendation: ${view.title}`), LIMITS.messageText), blocks };
}
