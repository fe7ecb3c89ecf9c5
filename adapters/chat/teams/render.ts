/**
 * Adaptive Card rendering of the core's view models for Microsoft Teams (schema 1.5, what Teams
 * supports). Pure functions: views in, card JSON out.
 *
 * Text. TextBlocks and FactSet values render a markdown subset, so everything that comes from
 * users, providers or recommendations is escaped (`escapeMarkdown`): markdown punctuation gets a
 * backslash, `& < >` become entities, list markers at a line start are escaped, so no link,
 * emphasis, heading or mention (`<at>`) can be injected. Styling is done with TextBlock
 * properties (weight, color), never with markup around foreign text. Links are built only from
 * our own URLs (`[text](url)`, http/https, ≤ 2000 characters, text escaped). Button titles, input
 * labels and choice titles are plain text in Adaptive Cards and are only cut.
 *
 * Size. Every string is cut (titles 200, fact values 1000, details 2000 characters) and the card is
 * kept under CARD_MAX_BYTES (below Teams' 28 KB message limit, leaving room for the activity
 * envelope): lists (recent tickets, delivery problems, audit entries, subscriptions…) are shortened
 * first, with a "… more not shown" line, then strings are cut shorter.
 *
 * Actions (the Teams wiring parses exactly these; every action's data carries `verb`):
 * - Message cards: buttons that open a dialog are `Action.Submit` with
 *   `data: { msteams: { type: 'task/fetch' }, verb: 'cloudpi.dialog.open', form, provider? }`;
 *   other buttons are Universal Actions `Action.Execute` with `verb: 'cloudpi.board.<action>'` and
 *   the same verb repeated in `data` (`{ verb, provider?, subscriptionId? }`).
 * - Dialogs (task modules): Teams runs neither Bot Framework `msteams` actions nor Action.Execute
 *   inside a dialog, so every button there is a plain `Action.Submit` (a `task/submit` invoke)
 *   whose `data.verb` says what it does: `cloudpi.dialog.submit` `{ form, provider?, channelId? }`
 *   (Teams merges the input values into data, under `inputIdOf(key)`), `cloudpi.dialog.configure-
 *   reload` `{ form: 'configure', provider, field }`, `cloudpi.dialog.open` `{ form, provider? }`
 *   and `cloudpi.board.<action>` `{ provider?, subscriptionId? }` (answer with a new dialog).
 * - Recommendation cards: `Action.Execute` with `cloudpi.card.create|retry` `{ recommendationId,
 *   provider }`, `cloudpi.card.dismiss` `{ recommendationId }`, and `refresh` with
 *   `cloudpi.card.refresh` `{ recommendationId }` so Teams fetches the current state.
 */
import type {
  ActionButton,
  ActionName,
  AuditView,
  ConfigureFormView,
  ConfirmView,
  DeliveryProblem,
  FormField,
  HelpView,
  IntegrationDetailsView,
  IntegrationFormView,
  NoticeView,
  ProgressView,
  RecentTicket,
  SettingsKind,
  StatusBoardView,
  SubscribeFormView,
  SubscriptionListView,
  Tone,
  View,
} from '../../../src/commands/views.js';
import {
  isResolved,
  type RecommendationCardView,
  ticketStatusLabel,
} from '../../../src/recommendations/card.js';
import { SUBSCRIBE_FIELDS, type SubmittedValue } from '../../../src/recommendations/subscriptions.js';
import type { TicketProviderKind } from '../../../src/tickets/port.js';

// ---------------------------------------------------------------------------------------------
// Constants

export const ADAPTIVE_CARD_SCHEMA = 'http://adaptivecards.io/schemas/adaptive-card.json';
export const ADAPTIVE_CARD_VERSION = '1.5';
/** Teams refuses messages over about 28 KB (the whole activity). */
export const TEAMS_MESSAGE_MAX_BYTES = 28 * 1024;
/** What a card may take of that: the rest is left for the activity envelope around it. */
export const CARD_MAX_BYTES = 26 * 1024;

export const TEXT_LIMITS = {
  title: 200,
  factValue: 1000,
  details: 2000,
  buttonTitle: 100,
  inputLabel: 200,
  choiceTitle: 200,
  placeholder: 200,
  inputValue: 3000,
  url: 2000,
} as const;

/** Every verb the bot's cards use. */
export const VERB = {
  dialogOpen: 'cloudpi.dialog.open',
  dialogSubmit: 'cloudpi.dialog.submit',
  configureReload: 'cloudpi.dialog.configure-reload',
  boardPause: 'cloudpi.board.pause',
  boardActivate: 'cloudpi.board.activate',
  boardRefresh: 'cloudpi.board.refresh',
  boardUnsubscribe: 'cloudpi.board.unsubscribe',
  boardConfirmDisconnect: 'cloudpi.board.confirm-disconnect',
  boardTestEmail: 'cloudpi.board.test-email',
  cardCreate: 'cloudpi.card.create',
  cardRetry: 'cloudpi.card.retry',
  cardDismiss: 'cloudpi.card.dismiss',
  cardRefresh: 'cloudpi.card.refresh',
} as const;

export type TeamsVerb = (typeof VERB)[keyof typeof VERB];

export const TEAMS_VERBS: readonly TeamsVerb[] = Object.freeze(Object.values(VERB));

/** The dialogs a button can open (`data.form` of `cloudpi.dialog.open`). */
export type DialogForm = 'connect' | 'edit' | 'configure' | 'disconnect' | 'subscribe';
/** The dialog a submission comes from (`data.form` of `cloudpi.dialog.submit`). */
export type SubmitForm = 'integration' | 'configure' | 'subscribe' | 'disconnect';
/** Buttons that act at once (`cloudpi.board.<action>`). */
export type BoardAction =
  | 'pause'
  | 'activate'
  | 'refresh'
  | 'unsubscribe'
  | 'confirm-disconnect'
  | 'test-email';

const DIALOG_ACTIONS: ReadonlySet<ActionName> = new Set(['connect', 'edit', 'configure', 'disconnect']);

export interface DialogOpenData {
  readonly msteams?: { readonly type: 'task/fetch' };
  readonly verb: typeof VERB.dialogOpen;
  readonly form: DialogForm;
  readonly provider?: SettingsKind;
}

export interface BoardActionData {
  readonly verb: `cloudpi.board.${BoardAction}`;
  readonly provider?: SettingsKind;
  readonly subscriptionId?: string;
}

export interface DialogSubmitData {
  readonly verb: typeof VERB.dialogSubmit;
  readonly form: SubmitForm;
  readonly provider?: SettingsKind;
  readonly channelId?: string;
}

export interface ConfigureReloadData {
  readonly verb: typeof VERB.configureReload;
  readonly form: 'configure';
  readonly provider: SettingsKind;
  /** The field whose choice changed (a new project resets the type). */
  readonly field: string;
}

export interface CardActionData {
  readonly verb:
    | typeof VERB.cardCreate
    | typeof VERB.cardRetry
    | typeof VERB.cardDismiss
    | typeof VERB.cardRefresh;
  readonly recommendationId: string;
  readonly provider?: TicketProviderKind;
}

// ---------------------------------------------------------------------------------------------
// Card JSON types (the subset of Adaptive Cards 1.5 this renderer emits)

export type TextColor = 'default' | 'accent' | 'good' | 'warning' | 'attention';
export type Spacing = 'none' | 'small' | 'default' | 'medium' | 'large';

export interface TextBlockJson {
  readonly type: 'TextBlock';
  readonly text: string;
  readonly wrap: true;
  readonly weight?: 'bolder';
  readonly size?: 'small' | 'medium' | 'large';
  readonly color?: TextColor;
  readonly isSubtle?: boolean;
  readonly spacing?: Spacing;
  readonly separator?: boolean;
  readonly horizontalAlignment?: 'right';
}

export interface FactSetJson {
  readonly type: 'FactSet';
  readonly facts: readonly { readonly title: string; readonly value: string }[];
  readonly spacing?: Spacing;
}

export interface ColumnJson {
  readonly type: 'Column';
  readonly width: 'auto' | 'stretch';
  readonly items: readonly CardElementJson[];
  readonly verticalContentAlignment?: 'center';
}

export interface ColumnSetJson {
  readonly type: 'ColumnSet';
  readonly columns: readonly ColumnJson[];
  readonly spacing?: Spacing;
  readonly separator?: boolean;
}

export interface ContainerJson {
  readonly type: 'Container';
  readonly items: readonly CardElementJson[];
  readonly spacing?: Spacing;
  readonly separator?: boolean;
}

export interface ActionSetJson {
  readonly type: 'ActionSet';
  readonly actions: readonly CardActionJson[];
  readonly spacing?: Spacing;
}

export interface TextInputJson {
  readonly type: 'Input.Text';
  readonly id: string;
  readonly label: string;
  readonly style?: 'text' | 'url' | 'email' | 'password';
  readonly value?: string;
  readonly placeholder?: string;
  readonly maxLength?: number;
  readonly isRequired?: true;
  readonly errorMessage?: string;
}

export interface ChoiceSetInputJson {
  readonly type: 'Input.ChoiceSet';
  readonly id: string;
  readonly label: string;
  readonly style: 'compact';
  readonly choices: readonly { readonly title: string; readonly value: string }[];
  readonly value?: string;
  readonly isMultiSelect?: true;
  readonly placeholder?: string;
  readonly isRequired?: true;
  readonly errorMessage?: string;
}

export type CardElementJson =
  | TextBlockJson
  | FactSetJson
  | ColumnSetJson
  | ContainerJson
  | ActionSetJson
  | TextInputJson
  | ChoiceSetInputJson;

export type ActionStyle = 'positive' | 'destructive';

export interface SubmitActionJson {
  readonly type: 'Action.Submit';
  readonly title: string;
  readonly data: DialogOpenData | BoardActionData | DialogSubmitData | ConfigureReloadData;
  readonly style?: ActionStyle;
}

export interface ExecuteActionJson {
  readonly type: 'Action.Execute';
  readonly title?: string;
  readonly verb: TeamsVerb;
  readonly data: BoardActionData | CardActionData;
  readonly style?: ActionStyle;
}

export interface OpenUrlActionJson {
  readonly type: 'Action.OpenUrl';
  readonly title: string;
  readonly url: string;
}

export type CardActionJson = SubmitActionJson | ExecuteActionJson | OpenUrlActionJson;

export interface AdaptiveCardJson {
  readonly type: 'AdaptiveCard';
  readonly $schema: typeof ADAPTIVE_CARD_SCHEMA;
  readonly version: typeof ADAPTIVE_CARD_VERSION;
  readonly body: readonly CardElementJson[];
  readonly actions?: readonly CardActionJson[];
  readonly refresh?: { readonly action: ExecuteActionJson };
}

// ---------------------------------------------------------------------------------------------
// Input ids

const INPUT_PREFIX = 'f_';

/**
 * The input id of a form field. Teams merges input values into the submit action's data, so ids
 * are prefixed to never collide with `verb`, `form`, `provider`, `channelId` or `msteams`.
 */
export function inputIdOf(key: string): string {
  return `${INPUT_PREFIX}${key}`;
}

/** The field key of an input id, or undefined for anything that is not a form input. */
export function fieldKeyOf(inputId: string): string | undefined {
  return inputId.startsWith(INPUT_PREFIX) && inputId.length > INPUT_PREFIX.length
    ? inputId.slice(INPUT_PREFIX.length)
    : undefined;
}

/** The typed values of a dialog submission, by field key (action data and `msteams` left out). */
export function formValuesOf(data: Readonly<Record<string, unknown>>): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [id, value] of Object.entries(data)) {
    const key = fieldKeyOf(id);
    if (key === undefined) continue;
    if (typeof value === 'string') values[key] = value;
    else if (typeof value === 'number' || typeof value === 'boolean') values[key] = String(value);
  }
  return values;
}

/** A multi-select's value as Adaptive Cards submits it ("aws,gcp") split into its values. */
export function splitMultiSelect(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
}

/**
 * A subscribe dialog's submission as the core reads it: Adaptive Cards submits a multi-select as
 * one comma-joined string, the core wants the list.
 */
export function subscribeValuesOf(data: Readonly<Record<string, unknown>>): Record<string, SubmittedValue> {
  const values: Record<string, SubmittedValue> = formValuesOf(data);
  for (const key of [SUBSCRIBE_FIELDS.clouds, SUBSCRIBE_FIELDS.severities])
    if (key in values) values[key] = splitMultiSelect(values[key] as string);
  return values;
}

// ---------------------------------------------------------------------------------------------
// Text

/** Cuts to `max` characters with an ellipsis, never inside a surrogate pair. */
export function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  let head = text.slice(0, Math.max(0, max - 1));
  if (/[\uD800-\uDBFF]$/.test(head)) head = head.slice(0, -1);
  return `${head}…`;
}

function escapeLine(line: string): string {
  const escaped = line
    .trimStart()
    .replace(/[\\`*_~[\]()#]/g, '\\$&')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
  // List markers and ordered-list numbers at the start of a line.
  return escaped.replace(/^([-+])/, '\\$1').replace(/^(\d{1,9})([.)])/, '$1\\$2');
}

/**
 * Markdown-escapes text so a TextBlock shows it literally. Lines become paragraphs (a single
 * newline is not a line break in Adaptive Card markdown).
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .split(/\n+/)
    .map(escapeLine)
    .filter((line, _i, all) => line !== '' || all.length === 1)
    .join('\n\n');
}

/** An http(s) URL we may link to or open, or undefined. */
export function safeUrl(url: string | null | undefined): string | undefined {
  if (!url || url.length > TEXT_LIMITS.url) return undefined;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return undefined;
    return parsed.href.length <= TEXT_LIMITS.url ? parsed.href : undefined;
  } catch {
    return undefined;
  }
}

/** A markdown link to one of our own URLs; the label alone (escaped) when the URL is not http(s). */
export function markdownLink(url: string | null | undefined, label: string): string {
  const href = safeUrl(url);
  const text = escapeMarkdown(label).replace(/\n+/g, ' ');
  if (!href) return text;
  // Characters that would end the destination, start a title or form an entity are encoded.
  const destination = href
    .replace(/[()<>[\]"' \\]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`)
    .replace(/&(?=#?[a-zA-Z0-9]+;)/g, '&amp;');
  return `[${text}](${destination})`;
}

// ---------------------------------------------------------------------------------------------
// Size budget

interface Budget {
  /** How many items of each list are shown. */
  readonly keep: number;
  /** Factor on every string limit. */
  readonly scale: number;
}

const FULL: Budget = { keep: Number.POSITIVE_INFINITY, scale: 1 };
const MAX_LIST = 100;

/** Bytes of the card as sent (UTF-8 JSON). */
export function cardByteLength(card: unknown): number {
  return Buffer.byteLength(JSON.stringify(card), 'utf8');
}

function limit(budget: Budget, max: number): number {
  return Math.max(16, Math.floor(max * budget.scale));
}

/** Escaped text, cut to `max` (scaled) before escaping so no escape is split. */
function esc(budget: Budget, text: string, max: number): string {
  return escapeMarkdown(cut(text, limit(budget, max)));
}

function take<T>(items: readonly T[], budget: Budget): { shown: readonly T[]; hidden: number } {
  const n = Math.min(items.length, MAX_LIST, budget.keep);
  return { shown: items.slice(0, n), hidden: items.length - n };
}

function moreLine(hidden: number): TextBlockJson[] {
  return hidden > 0
    ? [
        textBlock(`… ${hidden} more not shown here (the card would be too large for Teams).`, {
          isSubtle: true,
        }),
      ]
    : [];
}

/** The largest card that fits: lists shortened first, then strings cut shorter. */
function fitToBudget(build: (budget: Budget) => AdaptiveCardJson): AdaptiveCardJson {
  const full = build(FULL);
  if (cardByteLength(full) <= CARD_MAX_BYTES) return full;
  for (const scale of [1, 0.5, 0.25, 0.1]) {
    let lo = 0;
    let hi = MAX_LIST;
    let best: AdaptiveCardJson | undefined;
    while (lo <= hi) {
      const keep = Math.floor((lo + hi) / 2);
      const card = build({ keep, scale });
      if (cardByteLength(card) <= CARD_MAX_BYTES) {
        best = card;
        lo = keep + 1;
      } else hi = keep - 1;
    }
    if (best) return best;
  }
  // Nothing fits even so (never with the views the core builds): the head of the body only.
  const smallest = build({ keep: 0, scale: 0.1 });
  const body = [...smallest.body];
  const note = textBlock('The rest is too large to show in Teams.', { isSubtle: true });
  while (body.length > 1 && cardByteLength({ ...smallest, body: [...body, note] }) > CARD_MAX_BYTES)
    body.pop();
  return { ...smallest, body: [...body, note] };
}

// ---------------------------------------------------------------------------------------------
// Elements

type TextOptions = Omit<TextBlockJson, 'type' | 'text' | 'wrap'>;

/** A TextBlock of markdown the caller built from escaped parts. */
function textBlock(markdown: string, options: TextOptions = {}): TextBlockJson {
  return { type: 'TextBlock', text: markdown || ' ', wrap: true, ...options };
}

function card(
  body: readonly CardElementJson[],
  actions: readonly CardActionJson[] = [],
  refresh?: ExecuteActionJson,
): AdaptiveCardJson {
  return {
    type: 'AdaptiveCard',
    $schema: ADAPTIVE_CARD_SCHEMA,
    version: ADAPTIVE_CARD_VERSION,
    body: body.length ? body : [textBlock(' ')],
    ...(actions.length ? { actions } : {}),
    ...(refresh ? { refresh: { action: refresh } } : {}),
  };
}

const TONE: Record<Tone, { icon: string; color: TextColor }> = {
  success: { icon: '✅', color: 'good' },
  error: { icon: '❌', color: 'attention' },
  warning: { icon: '⚠️', color: 'warning' },
  info: { icon: 'ℹ️', color: 'default' },
};

const BADGE_COLOR: Record<string, TextColor> = {
  active: 'good',
  connected: 'accent',
  not_connected: 'default',
  error: 'attention',
};

function badgeColor(statusOrBadge: string): TextColor {
  return BADGE_COLOR[statusOrBadge.trim().toLowerCase().replace(/\s+/g, '_')] ?? 'default';
}

function heading(budget: Budget, text: string, size: 'medium' | 'large' = 'medium'): TextBlockJson {
  return textBlock(esc(budget, text, TEXT_LIMITS.title), { weight: 'bolder', size });
}

function detailLines(budget: Budget, lines: readonly string[]): TextBlockJson[] {
  return lines
    .filter((l) => l.trim())
    .map((l) => textBlock(esc(budget, l, TEXT_LIMITS.details), { isSubtle: true, spacing: 'none' }));
}

/** Name on the left, a colored badge on the right. */
function titleWithBadge(budget: Budget, name: string, badge: string, color: TextColor): ColumnSetJson {
  return {
    type: 'ColumnSet',
    columns: [
      {
        type: 'Column',
        width: 'stretch',
        items: [textBlock(esc(budget, name, TEXT_LIMITS.title), { weight: 'bolder' })],
      },
      {
        type: 'Column',
        width: 'auto',
        verticalContentAlignment: 'center',
        items: [
          textBlock(`● ${esc(budget, badge, TEXT_LIMITS.title)}`, {
            color,
            weight: 'bolder',
            horizontalAlignment: 'right',
          }),
        ],
      },
    ],
  };
}

function noticeElements(budget: Budget, notice: NoticeView): CardElementJson[] {
  const tone = TONE[notice.tone];
  return [
    textBlock(`${tone.icon} ${esc(budget, notice.title, TEXT_LIMITS.title)}`, {
      weight: 'bolder',
      color: tone.color,
    }),
    ...(notice.text ? [textBlock(esc(budget, notice.text, TEXT_LIMITS.details), { spacing: 'small' })] : []),
    ...linkElements(notice),
  ];
}

function linkElements(notice: NoticeView): CardElementJson[] {
  const url = notice.link ? safeUrl(notice.link.url) : undefined;
  if (!url || !notice.link) return [];
  const open: OpenUrlActionJson = {
    type: 'Action.OpenUrl',
    title: cut(notice.link.label, TEXT_LIMITS.buttonTitle),
    url,
  };
  return [{ type: 'ActionSet', actions: [open] }];
}

// ---------------------------------------------------------------------------------------------
// Buttons

type Surface = 'message' | 'dialog';

function actionStyle(style: ActionButton['style']): { style?: ActionStyle } {
  return style === 'primary' ? { style: 'positive' } : style === 'danger' ? { style: 'destructive' } : {};
}

function openDialog(
  surface: Surface,
  title: string,
  form: DialogForm,
  provider?: SettingsKind,
  style?: ActionStyle,
): SubmitActionJson {
  return {
    type: 'Action.Submit',
    title: cut(title, TEXT_LIMITS.buttonTitle),
    data: {
      // Bot Framework actions do not run inside a dialog: there it is a plain task/submit.
      ...(surface === 'message' ? { msteams: { type: 'task/fetch' as const } } : {}),
      verb: VERB.dialogOpen,
      form,
      ...(provider ? { provider } : {}),
    },
    ...(style ? { style } : {}),
  };
}

function buttonAction(surface: Surface, button: ActionButton): CardActionJson {
  const title = cut(button.label.trim() || button.action, TEXT_LIMITS.buttonTitle);
  const style = actionStyle(button.style);
  if (DIALOG_ACTIONS.has(button.action))
    return openDialog(surface, title, button.action as DialogForm, button.provider, style.style);
  const verb = `cloudpi.board.${button.action as BoardAction}` as const;
  const data: BoardActionData = {
    verb,
    ...(button.provider ? { provider: button.provider } : {}),
    ...(button.subscriptionId ? { subscriptionId: button.subscriptionId } : {}),
  };
  if (surface === 'dialog') return { type: 'Action.Submit', title, data, ...style };
  return { type: 'Action.Execute', title, verb, data, ...style };
}

/**
 * Buttons in rows that fit a card's width in Teams (about three short titles): a destructive
 * one (Disconnect Provider) gets its own row, away from the others.
 */
function actionSet(surface: Surface, buttons: readonly ActionButton[]): ActionSetJson[] {
  const shown = buttons.slice(0, 6);
  const rows: ActionButton[][] = [];
  const plain = shown.filter((b) => b.style !== 'danger');
  for (let i = 0; i < plain.length; i += 3) rows.push(plain.slice(i, i + 3));
  const danger = shown.filter((b) => b.style === 'danger');
  if (danger.length) rows.push(danger);
  return rows.map((row) => ({ type: 'ActionSet', actions: row.map((b) => buttonAction(surface, b)) }));
}

// ---------------------------------------------------------------------------------------------
// Message views

/** Teams users talk to the bot without Slack's slash command: `/cloudpi integrations` -> `integrations`. */
function teamsCommand(usage: string): string {
  return usage.replace(/^\/cloudpi\s+/, '');
}

function helpElements(budget: Budget, help: HelpView): CardElementJson[] {
  const { shown, hidden } = take(help.commands, budget);
  return [
    ...(help.suggestion
      ? [
          textBlock(`🤔 Did you mean ${esc(budget, teamsCommand(help.suggestion), TEXT_LIMITS.title)}?`, {
            weight: 'bolder',
          }),
        ]
      : []),
    textBlock(esc(budget, help.intro, TEXT_LIMITS.details)),
    ...(shown.length
      ? [
          {
            type: 'FactSet' as const,
            facts: shown.map((c) => ({
              title: esc(budget, teamsCommand(c.usage), TEXT_LIMITS.title),
              value: esc(budget, c.description, TEXT_LIMITS.factValue),
            })),
          },
        ]
      : []),
    ...moreLine(hidden),
  ];
}

function ticketLine(budget: Budget, t: RecentTicket): TextBlockJson {
  const key = markdownLink(t.url, cut(t.key, limit(budget, TEXT_LIMITS.title)));
  const status = ticketStatusLabel({ status: t.status, providerStatus: t.providerStatus ?? null });
  const rest = [t.title, status, t.providerName ?? t.provider]
    .filter((s) => s?.trim())
    .map((s) => esc(budget, s, TEXT_LIMITS.title));
  return textBlock([key, ...rest].join(' · '), { spacing: 'small' });
}

function problemElements(budget: Budget, p: DeliveryProblem): CardElementJson[] {
  const where = p.platform === 'teams' ? p.channelId : `${p.platform} ${p.channelId}`;
  const at = Number.isNaN(p.at.getTime()) ? '' : ` · ${p.at.toISOString().replace(/\.\d+Z$/, 'Z')}`;
  return [
    {
      type: 'Container',
      spacing: 'small',
      items: [
        textBlock(
          `${esc(budget, where, TEXT_LIMITS.title)} · ${esc(budget, p.reason, TEXT_LIMITS.title)}${at}`,
          { weight: 'bolder', color: 'attention' },
        ),
        textBlock(esc(budget, p.title, TEXT_LIMITS.title), { spacing: 'none' }),
        ...(p.fallback
          ? [textBlock(esc(budget, p.fallback, TEXT_LIMITS.details), { isSubtle: true, spacing: 'none' })]
          : []),
      ],
    },
  ];
}

function statusBoardCard(budget: Budget, surface: Surface, board: StatusBoardView): AdaptiveCardJson {
  const body: CardElementJson[] = [heading(budget, board.title, 'large')];
  for (const p of board.providers) {
    body.push({
      type: 'Container',
      separator: true,
      spacing: 'medium',
      items: [
        titleWithBadge(budget, p.displayName, p.badge, badgeColor(p.status)),
        ...detailLines(budget, p.details),
        ...actionSet(surface, board.canEdit ? p.actions : []),
      ],
    });
  }
  for (const s of board.settings) {
    body.push({
      type: 'Container',
      separator: true,
      spacing: 'medium',
      items: [
        titleWithBadge(budget, s.name, s.badge, badgeColor(s.badge)),
        ...detailLines(budget, s.details),
        ...actionSet(surface, board.canEdit ? s.actions : []),
      ],
    });
  }
  const tickets = take(board.recentTickets, budget);
  body.push(
    textBlock('Recent tickets', { weight: 'bolder', separator: true, spacing: 'medium' }),
    ...(board.recentTickets.length
      ? tickets.shown.map((t) => ticketLine(budget, t))
      : [textBlock('No tickets yet.', { isSubtle: true })]),
    ...moreLine(tickets.hidden),
  );
  if (board.deliveryProblems?.length) {
    const problems = take(board.deliveryProblems, budget);
    body.push(
      textBlock('Delivery problems', { weight: 'bolder', separator: true, spacing: 'medium' }),
      textBlock(
        'These cards could not be posted; add the app back to the channel or remove the subscription:',
        { isSubtle: true, spacing: 'none' },
      ),
      ...problems.shown.flatMap((p) => problemElements(budget, p)),
      ...moreLine(problems.hidden),
    );
  }
  if (!board.canEdit)
    body.push(
      textBlock(
        'Only CloudPi admins can change these settings: team owners, and people an admin granted it to.',
        { isSubtle: true, separator: true },
      ),
    );
  return card(body, [buttonAction(surface, { action: 'refresh', label: 'Refresh' })]);
}

function detailsElements(budget: Budget, surface: Surface, view: IntegrationDetailsView): CardElementJson[] {
  return [
    ...(view.notice ? noticeElements(budget, view.notice) : []),
    {
      type: 'Container',
      ...(view.notice ? { separator: true } : {}),
      items: [
        titleWithBadge(budget, view.title, view.badge, badgeColor(view.badge)),
        ...detailLines(budget, view.details),
        ...actionSet(surface, view.actions),
      ],
    },
  ];
}

function subscriptionElements(
  budget: Budget,
  surface: Surface,
  list: SubscriptionListView,
): CardElementJson[] {
  const body: CardElementJson[] = [
    ...(list.notice ? noticeElements(budget, list.notice) : []),
    heading(budget, list.title),
  ];
  if (list.items.length === 0) {
    body.push(textBlock(esc(budget, list.empty, TEXT_LIMITS.details)));
    return body;
  }
  const { shown, hidden } = take(list.items, budget);
  for (const item of shown) {
    body.push({
      type: 'Container',
      separator: true,
      items: [
        textBlock(`🔔 ${esc(budget, item.filters, TEXT_LIMITS.details)}`),
        ...(item.tickets
          ? [textBlock(esc(budget, item.tickets, TEXT_LIMITS.details), { spacing: 'none' })]
          : []),
        ...(item.createdBy
          ? [
              textBlock(`added by ${esc(budget, item.createdBy, TEXT_LIMITS.title)}`, {
                isSubtle: true,
                spacing: 'none',
              }),
            ]
          : []),
        ...actionSet(surface, item.actions),
      ],
    });
  }
  body.push(...moreLine(hidden));
  return body;
}

function auditElements(budget: Budget, audit: AuditView): CardElementJson[] {
  const body: CardElementJson[] = [heading(budget, 'Recent admin changes')];
  if (audit.entries.length === 0) return [...body, textBlock('No admin changes yet.', { isSubtle: true })];
  const { shown, hidden } = take(audit.entries, budget);
  for (const a of shown) {
    const at = Number.isNaN(a.at.getTime()) ? '' : a.at.toISOString().replace(/\.\d+Z$/, 'Z');
    body.push(
      textBlock(
        [at, a.actor, a.action, a.target]
          .filter(Boolean)
          .map((s) => esc(budget, s, TEXT_LIMITS.title))
          .join(' · '),
        { spacing: 'small' },
      ),
    );
  }
  return [...body, ...moreLine(hidden)];
}

function progressElements(budget: Budget, progress: ProgressView): CardElementJson[] {
  return [
    heading(budget, progress.title),
    textBlock(`⏳ ${esc(budget, progress.text, TEXT_LIMITS.details)}`, { isSubtle: true }),
  ];
}

function confirmElements(budget: Budget, view: ConfirmView): CardElementJson[] {
  return [heading(budget, view.title), textBlock(esc(budget, view.text, TEXT_LIMITS.details))];
}

function messageCard(budget: Budget, view: View): AdaptiveCardJson {
  switch (view.kind) {
    case 'notice':
      return card(noticeElements(budget, view));
    case 'help':
      return card(helpElements(budget, view));
    case 'status-board':
      return statusBoardCard(budget, 'message', view);
    case 'integration-details':
      return card(detailsElements(budget, 'message', view));
    case 'subscriptions':
      return card(subscriptionElements(budget, 'message', view));
    case 'audit':
      return card(auditElements(budget, view));
    case 'progress':
      return card(progressElements(budget, view));
    case 'confirm':
      return card(confirmElements(budget, view), [buttonAction('message', view.confirm)]);
    // A form asked for from a message: a button that opens it as a dialog.
    case 'integration-form':
      return card(
        [heading(budget, view.title), ...(view.notice ? noticeElements(budget, view.notice) : [])],
        [
          openDialog(
            'message',
            view.submitLabel === 'Update' ? 'Edit' : 'Connect',
            view.submitLabel === 'Update' ? 'edit' : 'connect',
            view.provider,
            'positive',
          ),
        ],
      );
    case 'configure-form':
      return card(
        [heading(budget, view.title), ...(view.notice ? noticeElements(budget, view.notice) : [])],
        [openDialog('message', 'Configure', 'configure', view.provider, 'positive')],
      );
    case 'subscribe-form':
      return card(
        [heading(budget, view.title), ...(view.notice ? noticeElements(budget, view.notice) : [])],
        [openDialog('message', 'Subscribe', 'subscribe', undefined, 'positive')],
      );
  }
}

/** A view sent as a chat message (command answers, the status board, notices). */
export function renderMessageCard(view: View): AdaptiveCardJson {
  return fitToBudget((budget) => messageCard(budget, view));
}

// ---------------------------------------------------------------------------------------------
// Dialogs

function hintLine(budget: Budget, text: string): TextBlockJson {
  return textBlock(esc(budget, text, TEXT_LIMITS.details), {
    isSubtle: true,
    size: 'small',
    spacing: 'none',
  });
}

function errorLine(budget: Budget, message: string): TextBlockJson {
  return textBlock(`⚠️ ${esc(budget, message, TEXT_LIMITS.details)}`, {
    color: 'attention',
    size: 'small',
    spacing: 'none',
  });
}

/** Errors not tied to a field of the form (`_`, or a key the form does not have), above the inputs. */
function formLevelErrors(
  budget: Budget,
  errors: Readonly<Record<string, string>>,
  keys: readonly string[],
): TextBlockJson[] {
  const known = new Set(keys);
  return Object.entries(errors)
    .filter(([key, message]) => !known.has(key) && message)
    .map(([, message]) => errorLine(budget, message));
}

/**
 * The choices of a list: all of them (up to 100) while the card fits; cut down with the budget
 * otherwise, always keeping the chosen ones.
 */
function choices(
  budget: Budget,
  options: readonly { value: string; label: string }[],
  chosen: readonly string[],
): { rendered: ChoiceSetInputJson['choices']; hidden: number } {
  const listed = options.slice(0, MAX_LIST);
  const kept = listed.filter((o, i) => i < budget.keep || chosen.includes(o.value));
  return {
    rendered: kept.map((o) => ({
      title: cut(o.label.trim() || o.value, limit(budget, TEXT_LIMITS.choiceTitle)),
      value: o.value,
    })),
    hidden: options.length - kept.length,
  };
}

function requiredProps(required: boolean, label: string): { isRequired?: true; errorMessage?: string } {
  return required ? { isRequired: true, errorMessage: cut(`${label} is required.`, TEXT_LIMITS.title) } : {};
}

function textInput(
  key: string,
  label: string,
  options: {
    style?: TextInputJson['style'];
    value?: string | undefined;
    placeholder?: string | undefined;
    required: boolean;
  },
): TextInputJson {
  const shown = cut(label, TEXT_LIMITS.inputLabel);
  return {
    type: 'Input.Text',
    id: inputIdOf(key),
    label: shown,
    ...(options.style && options.style !== 'text' ? { style: options.style } : {}),
    ...(options.value ? { value: cut(options.value, TEXT_LIMITS.inputValue) } : {}),
    ...(options.placeholder ? { placeholder: cut(options.placeholder, TEXT_LIMITS.placeholder) } : {}),
    maxLength: TEXT_LIMITS.inputValue,
    ...requiredProps(options.required, shown),
  };
}

/** A compact Input.ChoiceSet, and how many of its options did not fit into the card. */
function choiceInput(
  budget: Budget,
  key: string,
  label: string,
  options: readonly { value: string; label: string }[],
  settings: {
    value?: string | undefined;
    multi?: boolean;
    placeholder?: string | undefined;
    required: boolean;
  },
): { input: ChoiceSetInputJson; hidden: number } {
  const shown = cut(label, TEXT_LIMITS.inputLabel);
  const wanted = splitMultiSelect(settings.value).slice(0, settings.multi ? MAX_LIST : 1);
  const { rendered, hidden } = choices(budget, options, wanted);
  const offered = new Set(rendered.map((c) => c.value));
  // Only values the list offers (Adaptive Cards joins a multi-select's values with commas).
  const value = wanted.filter((v) => offered.has(v)).join(',');
  return {
    input: {
      type: 'Input.ChoiceSet',
      id: inputIdOf(key),
      label: shown,
      style: 'compact',
      choices: rendered,
      ...(value ? { value } : {}),
      ...(settings.multi ? { isMultiSelect: true } : {}),
      ...(settings.placeholder ? { placeholder: cut(settings.placeholder, TEXT_LIMITS.placeholder) } : {}),
      ...requiredProps(settings.required, shown),
    },
    hidden,
  };
}

/** An input with what goes directly under it: its error (red), its hint, options left out. */
function inputWithNotes(
  budget: Budget,
  input: { input: CardElementJson; hidden: number },
  error: string | undefined,
  hint: string | undefined,
): CardElementJson[] {
  return [
    input.input,
    ...(error ? [errorLine(budget, error)] : []),
    ...(hint?.trim() ? [hintLine(budget, hint)] : []),
    ...(input.hidden > 0 ? [hintLine(budget, `${input.hidden} more choices are not shown here.`)] : []),
  ];
}

const TEXT_STYLE: Record<FormField['type'], TextInputJson['style']> = {
  url: 'url',
  email: 'email',
  password: 'password',
  text: 'text',
  select: 'text',
};

const SAVED_SECRET_HINT = 'Leave blank to keep the saved value.';

/** "(Jira Cloud only)": Teams has no client-side conditions, so conditional fields are all shown. */
function conditionSuffix(form: IntegrationFormView, field: FormField): string {
  if (!field.when) return '';
  const other = form.fields.find((f) => f.key === field.when?.field);
  const names = field.when.oneOf.map((v) => other?.options?.find((o) => o.value === v)?.label ?? v);
  return names.length ? ` (${names.join(' or ')} only)` : '';
}

/** A dialog form's top: the notice, then errors that belong to no input. */
function formHead(
  budget: Budget,
  form: {
    readonly notice?: NoticeView;
    readonly errors: Readonly<Record<string, string>>;
    readonly fields: readonly { readonly key: string }[];
  },
): CardElementJson[] {
  return [
    ...(form.notice ? noticeElements(budget, form.notice) : []),
    ...formLevelErrors(
      budget,
      form.errors,
      form.fields.map((f) => f.key),
    ),
  ];
}

/** The dialog's submit button (Teams merges the inputs into its data). */
function submitAction(title: string, data: DialogSubmitData): SubmitActionJson {
  return { type: 'Action.Submit', title, style: 'positive', data };
}

function integrationFormCard(budget: Budget, form: IntegrationFormView): AdaptiveCardJson {
  const body = formHead(budget, form);
  for (const field of form.fields) {
    const label = `${field.label}${conditionSuffix(form, field)}`;
    // A conditional field cannot be required in the client: it may not apply to the choice made.
    const required = field.required && !field.when && !(field.secret && field.hasSavedSecret);
    // Secrets are never pre-filled, whatever the view carries.
    const value = field.secret ? undefined : field.value;
    const input =
      field.type === 'select' && field.options?.length
        ? choiceInput(budget, field.key, label, field.options, {
            value: value ?? field.defaultValue,
            placeholder: field.placeholder,
            required,
          })
        : {
            input: textInput(field.key, label, {
              style: field.secret ? 'password' : TEXT_STYLE[field.type],
              value,
              placeholder: field.placeholder,
              required,
            }),
            hidden: 0,
          };
    const hints = [field.hint?.trim()];
    if (field.secret && field.hasSavedSecret && !field.hint?.includes(SAVED_SECRET_HINT))
      hints.push(SAVED_SECRET_HINT);
    body.push(...inputWithNotes(budget, input, form.errors[field.key], hints.filter(Boolean).join(' ')));
  }
  return card(body, [
    submitAction(form.submitLabel, { verb: VERB.dialogSubmit, form: 'integration', provider: form.provider }),
  ]);
}

function configureFormCard(budget: Budget, form: ConfigureFormView): AdaptiveCardJson {
  const body = formHead(budget, form);
  // Reload submits the form's inputs, and Teams blocks a submission while a required input is
  // empty: with a Reload button the required text fields are checked by the server instead.
  const reloadable = form.fields.some((f) => f.reloads && f.type === 'select' && f.options?.length);
  for (const field of form.fields) {
    const select = field.type === 'select' && Boolean(field.options?.length);
    const clientRequired = field.required && (select || !reloadable);
    const label = field.required && !clientRequired ? `${field.label} (required)` : field.label;
    const input = select
      ? choiceInput(budget, field.key, label, field.options ?? [], {
          value: field.value,
          required: clientRequired,
        })
      : { input: textInput(field.key, label, { value: field.value, required: clientRequired }), hidden: 0 };
    body.push(...inputWithNotes(budget, input, form.errors[field.key], field.hint));
    if (select && field.reloads)
      body.push({
        type: 'ActionSet',
        spacing: 'small',
        actions: [
          {
            type: 'Action.Submit',
            title: 'Reload',
            data: {
              verb: VERB.configureReload,
              form: 'configure',
              provider: form.provider,
              field: field.key,
            },
          },
        ],
      });
  }
  return card(body, [
    submitAction(form.submitLabel, { verb: VERB.dialogSubmit, form: 'configure', provider: form.provider }),
  ]);
}

function subscribeFormCard(budget: Budget, form: SubscribeFormView): AdaptiveCardJson {
  const body = formHead(budget, form);
  for (const field of form.fields) {
    const value = typeof field.value === 'string' ? field.value : field.value?.join(',');
    const listed = (field.type === 'select' || field.type === 'multi-select') && field.options?.length;
    const input = listed
      ? choiceInput(budget, field.key, field.label, field.options ?? [], {
          value,
          multi: field.type === 'multi-select',
          placeholder: field.placeholder ?? (field.type === 'multi-select' ? 'Any' : 'None'),
          required: false,
        })
      : {
          input: textInput(field.key, field.label, {
            value,
            placeholder: field.placeholder,
            required: false,
          }),
          hidden: 0,
        };
    body.push(...inputWithNotes(budget, input, form.errors[field.key], field.hint));
  }
  return card(body, [
    submitAction('Subscribe', { verb: VERB.dialogSubmit, form: 'subscribe', channelId: form.channelId }),
  ]);
}

function confirmCard(budget: Budget, view: ConfirmView): AdaptiveCardJson {
  return card(
    [textBlock(esc(budget, view.text, TEXT_LIMITS.details))],
    [
      {
        type: 'Action.Submit',
        title: cut(view.confirm.label, TEXT_LIMITS.buttonTitle),
        style: 'destructive',
        data: {
          verb: VERB.dialogSubmit,
          form: 'disconnect',
          ...(view.confirm.provider ? { provider: view.confirm.provider } : {}),
        },
      },
    ],
  );
}

function dialogCard(budget: Budget, view: View): AdaptiveCardJson {
  switch (view.kind) {
    case 'integration-form':
      return integrationFormCard(budget, view);
    case 'configure-form':
      return configureFormCard(budget, view);
    case 'subscribe-form':
      return subscribeFormCard(budget, view);
    case 'confirm':
      return confirmCard(budget, view);
    case 'integration-details':
      return card(detailsElements(budget, 'dialog', view));
    case 'subscriptions':
      return card(subscriptionElements(budget, 'dialog', view));
    case 'notice':
      return card(noticeElements(budget, view));
    case 'progress':
      return card([textBlock(`⏳ ${esc(budget, view.text, TEXT_LIMITS.details)}`, { isSubtle: true })]);
    case 'help':
      return card(helpElements(budget, view));
    case 'audit':
      return card(auditElements(budget, view));
    case 'status-board':
      return statusBoardCard(budget, 'dialog', view);
  }
}

function dialogTitle(view: View): string {
  switch (view.kind) {
    case 'integration-form':
    case 'configure-form':
    case 'subscribe-form':
    case 'confirm':
    case 'integration-details':
    case 'progress':
    case 'subscriptions':
    case 'status-board':
      return cut(view.title.trim() || 'CloudPi', TEXT_LIMITS.title);
    case 'audit':
      return 'Recent admin changes';
    default:
      return 'CloudPi';
  }
}

/**
 * A task module dialog: the forms, the disconnect confirmation, and what a dialog ends with
 * (details, a notice, progress). The title is plain text (Teams shows it in the dialog's frame).
 */
export function renderDialog(view: View): { title: string; card: AdaptiveCardJson } {
  return { title: dialogTitle(view), card: fitToBudget((budget) => dialogCard(budget, view)) };
}

// ---------------------------------------------------------------------------------------------
// Recommendation cards

const SEVERITY_ICON: Record<string, string> = {
  critical: '🔴',
  high: '🟠',
  medium: '🟡',
  low: '⚪',
};

/** "teams:29:1abc…" is an id, not a name: the card view carries no display name to show. */
function creatorName(createdBy: string | null): string | undefined {
  if (!createdBy?.trim()) return undefined;
  const platform = /^(teams|slack):/.exec(createdBy)?.[1];
  if (platform === 'teams') return 'a Teams user';
  if (platform === 'slack') return 'a Slack user';
  return createdBy;
}

function cardExecute(
  title: string,
  verb: CardActionData['verb'],
  recommendationId: string,
  provider?: TicketProviderKind,
  style?: ActionStyle,
): ExecuteActionJson {
  return {
    type: 'Action.Execute',
    title: cut(title, TEXT_LIMITS.buttonTitle),
    verb,
    data: { verb, recommendationId, ...(provider ? { provider } : {}) },
    ...(style ? { style } : {}),
  };
}

function recommendationCard(budget: Budget, view: RecommendationCardView): AdaptiveCardJson {
  const body: CardElementJson[] = [heading(budget, view.title)];
  const facts: [string, string | undefined][] = [
    ['Resource', view.resource],
    ['Account', view.account],
    ['Cloud', view.cloud],
    ['Category', view.category],
    ['Monthly savings', view.savings],
    ['Severity', view.severity],
  ];
  const shown = facts.filter((f): f is [string, string] => Boolean(f[1]?.trim()));
  if (shown.length)
    body.push({
      type: 'FactSet',
      facts: shown.map(([title, value]) => {
        const icon = title === 'Severity' ? SEVERITY_ICON[value.trim().toLowerCase()] : undefined;
        const text = esc(budget, value, TEXT_LIMITS.factValue);
        return { title, value: icon ? `${icon} ${text}` : text };
      }),
    });

  const ticket = view.ticket;
  const state = (text: string, color?: TextColor) =>
    textBlock(text, { spacing: 'medium', ...(color ? { color } : {}) });
  if (view.dismissed) body.push(state('🚫 Dismissed in this channel.', 'default'));
  if (ticket.kind === 'creating') body.push(state('⏳ Creating ticket…'));
  else if (ticket.kind === 'created') {
    const ref = markdownLink(ticket.url, cut(ticket.key, limit(budget, TEXT_LIMITS.title)));
    const status = ticketStatusLabel(ticket);
    const who = creatorName(ticket.createdBy);
    const parts = [
      `Ticket ${ref}`,
      esc(budget, status, TEXT_LIMITS.title),
      ...(who ? [`by ${esc(budget, who, TEXT_LIMITS.title)}`] : []),
    ].join(' · ');
    body.push(isResolved(ticket) ? state(`✅ Resolved · ${parts}`, 'good') : state(`🎫 ${parts}`));
  } else if (ticket.kind === 'failed')
    body.push(
      state(
        `⚠️ The ticket could not be created: ${esc(budget, ticket.reason, TEXT_LIMITS.details)}`,
        'attention',
      ),
    );

  // The link is a line of the card, so the buttons' row keeps room for their titles.
  const link = safeUrl(view.link);
  if (link) body.push(textBlock(`🔗 ${markdownLink(link, 'Open in CloudPi')}`, { spacing: 'small' }));
  const actions: CardActionJson[] = [];
  if (!view.dismissed) {
    if (ticket.kind === 'none') {
      const [only, ...more] = view.offeredProviders;
      if (only && more.length === 0)
        actions.push(
          cardExecute('Create ticket', VERB.cardCreate, view.recommendationId, only.kind, 'positive'),
        );
      else if (only)
        // Several Active providers: "Create ticket" shows the choice, one button each.
        actions.push({
          type: 'Action.ShowCard',
          title: 'Create ticket',
          style: 'positive',
          card: {
            type: 'AdaptiveCard',
            body: [textBlock('Where should the ticket go?', { spacing: 'none' })],
            actions: view.offeredProviders.map((p) =>
              cardExecute(p.displayName, VERB.cardCreate, view.recommendationId, p.kind),
            ),
          },
        } as unknown as CardActionJson);
    } else if (ticket.kind === 'failed')
      actions.push(cardExecute('Retry', VERB.cardRetry, view.recommendationId, ticket.provider, 'positive'));
  }
  if (!view.dismissed && ticket.kind === 'none')
    actions.push(cardExecute('Dismiss', VERB.cardDismiss, view.recommendationId));

  // A dismissed copy is final: nothing to press, nothing to refresh.
  const refresh: ExecuteActionJson | undefined = view.dismissed
    ? undefined
    : {
        type: 'Action.Execute',
        verb: VERB.cardRefresh,
        data: { verb: VERB.cardRefresh, recommendationId: view.recommendationId },
      };
  return card(body, actions, refresh);
}

/** A recommendation card (posted and updated in channels, refreshed by Teams on view). */
export function renderRecommendationCard(view: RecommendationCardView): AdaptiveCardJson {
  return fitToBudget((budget) => recommendationCard(budget, view));
}
