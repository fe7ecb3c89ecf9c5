/**
 * A strict loopback Slack Web API (https://slack.com/api/<method>), following Slack's published
 * Web API description (test/fixtures/specs/slack/web-api, methods and answers) and the response
 * samples of Slack's Java SDK (test/fixtures/specs/slack/java-slack-sdk-samples/api).
 *
 * Like Slack it answers API errors with HTTP 200 and `{ ok: false, error }`: a missing token
 * (not_authed), an unknown or revoked one (invalid_auth), a JSON body without a Bearer token, a
 * trigger_id that is unknown, used or older than 3 seconds, a view or blocks that break Block Kit's
 * rules (invalid_arguments for views, invalid_blocks for messages, with `[ERROR] ... [json-pointer:...]`
 * lines in `response_metadata.messages`), a stale `hash` (hash_conflict), unknown views, users and
 * channels; and HTTP 429 with Retry-After when `rateLimitNext` says so, or, with `channelPostLimit`,
 * when chat.postMessage goes over Slack's per-channel limit (1 a second, short bursts allowed).
 *
 * Workspace T0CLOUDPI: users U0ADMIN (admin), U0OWNER (primary owner, admin too, as in Slack),
 * U0MEMBER, and the bot user U0BOT (bot B0CLOUDPI1 of app A0CLOUDPI). Conversations: every id
 * shaped like Slack's (C, G or D and 8+ capitals or digits, e.g. C0CLOUDOPS) and every user id (a
 * DM) exists, with the bot as a member, until `removeChannel`, `archiveChannel` or `leaveChannel`.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { PROJECT_ROOT } from '../../../src/paths.js';
import { readBody } from './read-body.js';

// ---------------------------------------------------------------------------------------------
// Block Kit: what Slack's Web API refuses in `view` (views.*) and `blocks` (chat.*).
//
// Limits are Slack's documented Block Kit limits. Where the wording of Slack's message is known
// from real answers it is reused ("must be less than 25 characters", "no more than 100 items
// allowed", "missing required field: text", "must provide an object", "failed to match all allowed
// schemas"); the wording of the others (duplicate ids, initial_option, unknown fields) is ours.

export type Surface = 'modal' | 'home' | 'message';
/**
 * Where an action_id must be unique. Slack's rule (its Block Kit reference: "unique among all
 * other action_ids in the containing block") is 'block'; 'surface' is stricter: unique in the
 * whole view or message.
 */
export type ActionIdScope = 'block' | 'surface';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Fields each block or element may carry (Slack refuses others). */
const BLOCK_FIELDS: Record<string, readonly string[]> = {
  section: ['type', 'block_id', 'text', 'fields', 'accessory', 'expand'],
  divider: ['type', 'block_id'],
  header: ['type', 'block_id', 'text'],
  context: ['type', 'block_id', 'elements'],
  actions: ['type', 'block_id', 'elements'],
  input: ['type', 'block_id', 'label', 'element', 'hint', 'optional', 'dispatch_action'],
  image: ['type', 'block_id', 'image_url', 'slack_file', 'alt_text', 'title'],
};

const COMMON = ['type', 'action_id', 'focus_on_load', 'placeholder'];
const ELEMENT_FIELDS: Record<string, readonly string[]> = {
  button: ['type', 'action_id', 'text', 'url', 'value', 'style', 'confirm', 'accessibility_label'],
  static_select: [...COMMON, 'options', 'option_groups', 'initial_option', 'confirm'],
  multi_static_select: [
    ...COMMON,
    'options',
    'option_groups',
    'initial_options',
    'confirm',
    'max_selected_items',
  ],
  overflow: ['type', 'action_id', 'options', 'confirm'],
  radio_buttons: ['type', 'action_id', 'options', 'initial_option', 'confirm', 'focus_on_load'],
  checkboxes: ['type', 'action_id', 'options', 'initial_options', 'confirm', 'focus_on_load'],
  plain_text_input: [
    ...COMMON,
    'initial_value',
    'multiline',
    'min_length',
    'max_length',
    'dispatch_action_config',
  ],
  email_text_input: [...COMMON, 'initial_value', 'dispatch_action_config'],
  url_text_input: [...COMMON, 'initial_value', 'dispatch_action_config'],
  number_input: [
    ...COMMON,
    'is_decimal_allowed',
    'initial_value',
    'min_value',
    'max_value',
    'dispatch_action_config',
  ],
  datepicker: [...COMMON, 'initial_date', 'confirm'],
  timepicker: [...COMMON, 'initial_time', 'confirm', 'timezone'],
  users_select: [...COMMON, 'initial_user', 'confirm'],
  conversations_select: [
    ...COMMON,
    'initial_conversation',
    'default_to_current_conversation',
    'confirm',
    'response_url_enabled',
    'filter',
  ],
  channels_select: [...COMMON, 'initial_channel', 'confirm', 'response_url_enabled'],
  image: ['type', 'image_url', 'slack_file', 'alt_text'],
};

const SELECTS = ['static_select', 'multi_static_select', 'users_select', 'conversations_select'];
const PICKERS = ['channels_select', 'datepicker', 'timepicker', 'checkboxes', 'radio_buttons'];
const ALLOWED_IN: Record<'accessory' | 'actions' | 'input', readonly string[]> = {
  accessory: ['button', 'overflow', 'image', ...SELECTS, ...PICKERS],
  actions: ['button', 'overflow', ...SELECTS, ...PICKERS],
  input: ['plain_text_input', 'email_text_input', 'url_text_input', 'number_input', ...SELECTS, ...PICKERS],
};

export const LIMITS = {
  viewBlocks: 100,
  messageBlocks: 50,
  modalTitle: 24,
  modalButton: 24,
  privateMetadata: 3000,
  callbackId: 255,
  externalId: 255,
  blockId: 255,
  actionId: 255,
  sectionText: 3000,
  sectionFields: 10,
  sectionField: 2000,
  headerText: 150,
  contextElements: 10,
  actionsElements: 25,
  inputLabel: 2000,
  inputHint: 2000,
  placeholder: 150,
  buttonText: 75,
  buttonValue: 2000,
  url: 3000,
  selectOptions: 100,
  optionText: 75,
  optionValue: 150,
  optionDescription: 75,
  radioOptions: 10,
  overflowOptions: 5,
  imageAltText: 2000,
  imageTitle: 2000,
  textInputLength: 3000,
  confirmTitle: 100,
  confirmText: 300,
  confirmButton: 30,
} as const;

/** Collects the problems of one view or one message's blocks. */
export class BlockKitValidator {
  readonly problems: string[] = [];
  private readonly actionIds = new Set<string>();
  private blockActionIds = new Set<string>();
  private readonly blockIds = new Set<string>();

  constructor(
    private readonly surface: Surface,
    private readonly actionIdScope: ActionIdScope = 'block',
  ) {}

  private problem(message: string, pointer: string): void {
    this.problems.push(`[ERROR] ${message} [json-pointer:${pointer}]`);
  }

  private onlyFields(value: Json, allowed: readonly string[], pointer: string): void {
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) this.problem(`unsupported field: ${key}`, pointer);
    }
  }

  /** A string field: `max` characters at most, `required` or not, at least `min` characters. */
  string(
    parent: Json,
    key: string,
    pointer: string,
    opts: { max: number; required?: boolean; min?: number },
  ): string | undefined {
    const value = parent[key];
    if (value === undefined) {
      if (opts.required) this.problem(`missing required field: ${key}`, pointer);
      return undefined;
    }
    const at = `${pointer}/${key}`;
    if (typeof value !== 'string') {
      this.problem('must provide a string', at);
      return undefined;
    }
    if (value.length < (opts.min ?? 0))
      this.problem(`must be more than ${(opts.min ?? 0) - 1} characters`, at);
    if (value.length > opts.max) this.problem(`must be less than ${opts.max + 1} characters`, at);
    return value;
  }

  private boolean(parent: Json, key: string, pointer: string): void {
    const value = parent[key];
    if (value !== undefined && typeof value !== 'boolean')
      this.problem('must provide a boolean', `${pointer}/${key}`);
  }

  /** A composition text object ({type: plain_text | mrkdwn, text}). */
  text(
    parent: Json,
    key: string,
    pointer: string,
    opts: { max: number; plainOnly?: boolean; required?: boolean },
  ): Json | undefined {
    const value = parent[key];
    if (value === undefined) {
      if (opts.required) this.problem(`missing required field: ${key}`, pointer);
      return undefined;
    }
    return this.textObject(value, `${pointer}/${key}`, opts);
  }

  private textObject(
    value: unknown,
    at: string,
    opts: { max: number; plainOnly?: boolean },
  ): Json | undefined {
    if (!isObject(value)) {
      this.problem('must provide an object', at);
      return undefined;
    }
    const type = value.type;
    if (type === undefined) this.problem('missing required field: type', at);
    else if (type !== 'plain_text' && (opts.plainOnly || type !== 'mrkdwn'))
      this.problem('must be a valid enum value', `${at}/type`);
    this.onlyFields(value, type === 'mrkdwn' ? ['type', 'text', 'verbatim'] : ['type', 'text', 'emoji'], at);
    this.string(value, 'text', at, { max: opts.max, required: true, min: 1 });
    this.boolean(value, type === 'mrkdwn' ? 'verbatim' : 'emoji', at);
    return value;
  }

  private uniqueActionId(element: Json, pointer: string): void {
    const id = this.string(element, 'action_id', pointer, { max: LIMITS.actionId, min: 1 });
    if (id === undefined) return;
    const seen = this.actionIdScope === 'surface' ? this.actionIds : this.blockActionIds;
    if (seen.has(id)) this.problem(`duplicate action_id: ${id}`, `${pointer}/action_id`);
    seen.add(id);
  }

  blocks(value: unknown, pointer: string): void {
    if (!Array.isArray(value)) {
      this.problem('must provide an array', pointer);
      return;
    }
    const max = this.surface === 'message' ? LIMITS.messageBlocks : LIMITS.viewBlocks;
    if (value.length > max) this.problem(`no more than ${max} items allowed`, pointer);
    value.forEach((block, i) => {
      this.block(block, `${pointer}/${i}`);
    });
  }

  hasInputBlock(blocks: unknown): boolean {
    return Array.isArray(blocks) && blocks.some((b) => isObject(b) && b.type === 'input');
  }

  private block(block: unknown, at: string): void {
    this.blockActionIds = new Set<string>();
    if (!isObject(block)) {
      this.problem('must provide an object', at);
      return;
    }
    const type = block.type;
    const fields = typeof type === 'string' ? BLOCK_FIELDS[type] : undefined;
    if (!fields) {
      if (type === undefined) this.problem('missing required field: type', at);
      this.problem('failed to match all allowed schemas', at);
      return;
    }
    this.onlyFields(block, fields, at);
    const blockId = this.string(block, 'block_id', at, { max: LIMITS.blockId, min: 1 });
    if (blockId !== undefined) {
      if (this.blockIds.has(blockId)) this.problem(`duplicate block_id: ${blockId}`, `${at}/block_id`);
      this.blockIds.add(blockId);
    }
    switch (type) {
      case 'section': {
        if (block.text === undefined && block.fields === undefined)
          this.problem('must provide either text or fields', at);
        this.text(block, 'text', at, { max: LIMITS.sectionText });
        if (block.fields !== undefined) {
          this.list(block, 'fields', at, { max: LIMITS.sectionFields, min: 1 }, (f, p) => {
            this.textObject(f, p, { max: LIMITS.sectionField });
          });
        }
        if (block.accessory !== undefined) this.element(block.accessory, `${at}/accessory`, 'accessory');
        this.boolean(block, 'expand', at);
        break;
      }
      case 'divider':
        break;
      case 'header':
        this.text(block, 'text', at, { max: LIMITS.headerText, plainOnly: true, required: true });
        break;
      case 'context':
        this.list(block, 'elements', at, { max: LIMITS.contextElements, min: 1, required: true }, (e, p) => {
          if (isObject(e) && e.type === 'image') this.element(e, p, 'context');
          else this.textObject(e, p, { max: LIMITS.sectionText });
        });
        break;
      case 'actions':
        this.list(block, 'elements', at, { max: LIMITS.actionsElements, min: 1, required: true }, (e, p) => {
          this.element(e, p, 'actions');
        });
        break;
      case 'input':
        this.text(block, 'label', at, { max: LIMITS.inputLabel, plainOnly: true, required: true });
        this.text(block, 'hint', at, { max: LIMITS.inputHint, plainOnly: true });
        this.boolean(block, 'optional', at);
        this.boolean(block, 'dispatch_action', at);
        if (block.element === undefined) this.problem('missing required field: element', at);
        else this.element(block.element, `${at}/element`, 'input');
        break;
      case 'image':
        this.imageFields(block, at);
        this.text(block, 'title', at, { max: LIMITS.imageTitle, plainOnly: true });
        break;
    }
  }

  private imageFields(value: Json, at: string): void {
    if (value.slack_file === undefined)
      this.string(value, 'image_url', at, { max: LIMITS.url, required: true, min: 1 });
    else if (!isObject(value.slack_file)) this.problem('must provide an object', `${at}/slack_file`);
    this.string(value, 'alt_text', at, { max: LIMITS.imageAltText, required: true, min: 1 });
  }

  private list(
    parent: Json,
    key: string,
    pointer: string,
    opts: { max: number; min?: number; required?: boolean },
    each: (item: unknown, at: string) => void,
  ): unknown[] | undefined {
    const value = parent[key];
    if (value === undefined) {
      if (opts.required) this.problem(`missing required field: ${key}`, pointer);
      return undefined;
    }
    const at = `${pointer}/${key}`;
    if (!Array.isArray(value)) {
      this.problem('must provide an array', at);
      return undefined;
    }
    if (value.length < (opts.min ?? 0)) this.problem(`must provide at least ${opts.min} items`, at);
    if (value.length > opts.max) this.problem(`no more than ${opts.max} items allowed`, at);
    value.forEach((item, i) => {
      each(item, `${at}/${i}`);
    });
    return value;
  }

  private element(element: unknown, at: string, where: 'accessory' | 'actions' | 'input' | 'context'): void {
    if (!isObject(element)) {
      this.problem('must provide an object', at);
      return;
    }
    const type = element.type;
    const allowed = where === 'context' ? ['image'] : ALLOWED_IN[where];
    const fields = typeof type === 'string' && allowed.includes(type) ? ELEMENT_FIELDS[type] : undefined;
    if (!fields) {
      if (type === undefined) this.problem('missing required field: type', at);
      this.problem('failed to match all allowed schemas', at);
      return;
    }
    this.onlyFields(element, fields, at);
    if (type !== 'image') this.uniqueActionId(element, at);
    if (fields.includes('placeholder'))
      this.text(element, 'placeholder', at, { max: LIMITS.placeholder, plainOnly: true });
    if (element.confirm !== undefined) this.confirm(element.confirm, `${at}/confirm`);
    this.boolean(element, 'focus_on_load', at);
    switch (type) {
      case 'image':
        this.imageFields(element, at);
        break;
      case 'button': {
        this.text(element, 'text', at, { max: LIMITS.buttonText, plainOnly: true, required: true });
        this.string(element, 'value', at, { max: LIMITS.buttonValue });
        this.string(element, 'url', at, { max: LIMITS.url, min: 1 });
        this.string(element, 'accessibility_label', at, { max: LIMITS.buttonText });
        const style = element.style;
        if (style !== undefined && style !== 'primary' && style !== 'danger')
          this.problem('must be a valid enum value', `${at}/style`);
        break;
      }
      case 'static_select':
      case 'multi_static_select': {
        const options = this.selectOptions(element, at);
        if (type === 'static_select') this.initialOption(element, 'initial_option', options, at);
        else this.initialOption(element, 'initial_options', options, at);
        break;
      }
      case 'overflow':
        this.list(element, 'options', at, { max: LIMITS.overflowOptions, min: 1, required: true }, (o, p) => {
          this.option(o, p, true);
        });
        break;
      case 'radio_buttons':
      case 'checkboxes': {
        const options = this.list(
          element,
          'options',
          at,
          { max: LIMITS.radioOptions, min: 1, required: true },
          (o, p) => {
            this.option(o, p, false);
          },
        );
        this.initialOption(
          element,
          type === 'radio_buttons' ? 'initial_option' : 'initial_options',
          options ?? [],
          at,
        );
        break;
      }
      case 'plain_text_input': {
        this.boolean(element, 'multiline', at);
        this.string(element, 'initial_value', at, { max: LIMITS.textInputLength });
        for (const key of ['min_length', 'max_length'] as const) {
          const n = element[key];
          if (n === undefined) continue;
          if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > LIMITS.textInputLength)
            this.problem(`must be an integer from 0 to ${LIMITS.textInputLength}`, `${at}/${key}`);
        }
        break;
      }
      case 'email_text_input':
      case 'url_text_input':
        this.string(element, 'initial_value', at, { max: LIMITS.textInputLength });
        break;
      case 'number_input':
        if (element.is_decimal_allowed === undefined)
          this.problem('missing required field: is_decimal_allowed', at);
        this.boolean(element, 'is_decimal_allowed', at);
        break;
      case 'datepicker': {
        const date = this.string(element, 'initial_date', at, { max: 10 });
        if (date !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(date))
          this.problem('must match the format YYYY-MM-DD', `${at}/initial_date`);
        break;
      }
    }
  }

  private selectOptions(element: Json, at: string): unknown[] {
    if (element.options === undefined && element.option_groups === undefined) {
      this.problem('must provide either options or option_groups', at);
      return [];
    }
    if (element.options !== undefined && element.option_groups !== undefined)
      this.problem('must provide either options or option_groups, not both', at);
    const options =
      this.list(element, 'options', at, { max: LIMITS.selectOptions, min: 1 }, (o, p) => {
        this.option(o, p, true);
      }) ?? [];
    const all = [...options];
    this.list(element, 'option_groups', at, { max: LIMITS.selectOptions, min: 1 }, (g, p) => {
      if (!isObject(g)) {
        this.problem('must provide an object', p);
        return;
      }
      this.onlyFields(g, ['label', 'options'], p);
      this.text(g, 'label', p, { max: LIMITS.optionText, plainOnly: true, required: true });
      all.push(
        ...(this.list(g, 'options', p, { max: LIMITS.selectOptions, min: 1, required: true }, (o, q) => {
          this.option(o, q, true);
        }) ?? []),
      );
    });
    return all;
  }

  private option(option: unknown, at: string, plainOnly: boolean): void {
    if (!isObject(option)) {
      this.problem('must provide an object', at);
      return;
    }
    this.onlyFields(option, ['text', 'value', 'description', 'url'], at);
    this.text(option, 'text', at, { max: LIMITS.optionText, plainOnly, required: true });
    this.string(option, 'value', at, { max: LIMITS.optionValue, required: true, min: 1 });
    this.text(option, 'description', at, { max: LIMITS.optionDescription, plainOnly });
    this.string(option, 'url', at, { max: LIMITS.url, min: 1 });
  }

  /** initial_option(s) must be exactly one of the element's options. */
  private initialOption(element: Json, key: string, options: unknown[], at: string): void {
    const value = element[key];
    if (value === undefined) return;
    const chosen = key.endsWith('s') ? value : [value];
    if (!Array.isArray(chosen)) {
      this.problem('must provide an array', `${at}/${key}`);
      return;
    }
    chosen.forEach((c, i) => {
      const p = key.endsWith('s') ? `${at}/${key}/${i}` : `${at}/${key}`;
      if (!options.some((o) => sameOption(o, c)))
        this.problem(`${key} must exactly match one of the provided options`, p);
    });
  }

  private confirm(value: unknown, at: string): void {
    if (!isObject(value)) {
      this.problem('must provide an object', at);
      return;
    }
    this.onlyFields(value, ['title', 'text', 'confirm', 'deny', 'style'], at);
    this.text(value, 'title', at, { max: LIMITS.confirmTitle, plainOnly: true, required: true });
    this.text(value, 'text', at, { max: LIMITS.confirmText, required: true });
    this.text(value, 'confirm', at, { max: LIMITS.confirmButton, plainOnly: true, required: true });
    this.text(value, 'deny', at, { max: LIMITS.confirmButton, plainOnly: true, required: true });
    const style = value.style;
    if (style !== undefined && style !== 'primary' && style !== 'danger')
      this.problem('must be a valid enum value', `${at}/style`);
  }
}

function sameOption(a: unknown, b: unknown): boolean {
  if (!isObject(a) || !isObject(b)) return false;
  const ta = a.text;
  const tb = b.text;
  return (
    a.value === b.value &&
    isObject(ta) &&
    isObject(tb) &&
    ta.type === tb.type &&
    ta.text === tb.text &&
    JSON.stringify(a.description ?? null) === JSON.stringify(b.description ?? null)
  );
}

const VIEW_FIELDS: Record<'modal' | 'home', readonly string[]> = {
  modal: [
    'type',
    'title',
    'blocks',
    'close',
    'submit',
    'private_metadata',
    'callback_id',
    'clear_on_close',
    'notify_on_close',
    'external_id',
    'submit_disabled',
  ],
  home: ['type', 'blocks', 'private_metadata', 'callback_id', 'external_id'],
};

/** Problems of a view (views.open/push/update/publish), with pointers under /view. */
export function validateView(
  view: unknown,
  allowedTypes: readonly ('modal' | 'home')[],
  actionIdScope: ActionIdScope = 'block',
): string[] {
  const at = '/view';
  if (!isObject(view)) return [`[ERROR] must provide an object [json-pointer:${at}]`];
  const type = view.type;
  if (type === undefined) return [`[ERROR] missing required field: type [json-pointer:${at}]`];
  if (type !== 'modal' && type !== 'home')
    return [`[ERROR] must be a valid enum value [json-pointer:${at}/type]`];
  if (!allowedTypes.includes(type))
    return [`[ERROR] must be one of: ${allowedTypes.join(', ')} [json-pointer:${at}/type]`];
  const v = new BlockKitValidator(type, actionIdScope);
  for (const key of Object.keys(view)) {
    if (!VIEW_FIELDS[type].includes(key))
      v.problems.push(`[ERROR] unsupported field: ${key} [json-pointer:${at}]`);
  }
  if (type === 'modal') {
    v.text(view, 'title', at, { max: LIMITS.modalTitle, plainOnly: true, required: true });
    v.text(view, 'close', at, { max: LIMITS.modalButton, plainOnly: true });
    v.text(view, 'submit', at, { max: LIMITS.modalButton, plainOnly: true });
    if (view.submit === undefined && v.hasInputBlock(view.blocks))
      v.problems.push(
        `[ERROR] missing required field: submit (required when blocks has an input block) [json-pointer:${at}]`,
      );
  }
  v.string(view, 'private_metadata', at, { max: LIMITS.privateMetadata });
  v.string(view, 'callback_id', at, { max: LIMITS.callbackId });
  v.string(view, 'external_id', at, { max: LIMITS.externalId, min: 1 });
  for (const key of ['clear_on_close', 'notify_on_close', 'submit_disabled']) {
    const b = view[key];
    if (b !== undefined && typeof b !== 'boolean')
      v.problems.push(`[ERROR] must provide a boolean [json-pointer:${at}/${key}]`);
  }
  if (view.blocks === undefined)
    v.problems.push(`[ERROR] missing required field: blocks [json-pointer:${at}]`);
  else v.blocks(view.blocks, `${at}/blocks`);
  return v.problems;
}

/** Problems of a message's `blocks` (chat.*), with pointers under /blocks. */
export function validateMessageBlocks(blocks: unknown[], actionIdScope: ActionIdScope = 'block'): string[] {
  const v = new BlockKitValidator('message', actionIdScope);
  v.blocks(blocks, '/blocks');
  return v.problems;
}

// ---------------------------------------------------------------------------------------------
// Slack's published Web API description (Swagger 2.0, 2020): the fake's `ok` answers are checked
// against each method's success schema, and mismatches land in `specViolations`.

interface SpecSchema {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, SpecSchema>;
  additionalProperties?: boolean | SpecSchema;
  required?: string[];
  items?: SpecSchema | SpecSchema[];
  enum?: unknown[];
  pattern?: string;
  minItems?: number;
  uniqueItems?: boolean;
}

interface WebApiSpec {
  paths: Record<string, Record<string, { responses: Record<string, { schema?: SpecSchema }> }>>;
  definitions: Record<string, SpecSchema>;
}

const SPEC_FILE = path.join(
  PROJECT_ROOT,
  'test/fixtures/specs/slack/web-api/slack_web_openapi_v2.subset.json',
);
let specCache: WebApiSpec | undefined;
function webApiSpec(): WebApiSpec {
  specCache ??= JSON.parse(readFileSync(SPEC_FILE, 'utf8')) as WebApiSpec;
  return specCache;
}

/**
 * Places where the 2020 spec is known to be wrong about today's Slack, so the fake follows Slack:
 * chat.update's `message.blocks` is an array (the spec says object).
 */
const KNOWN_SPEC_ERRORS = new Set(['chat.update $.message.blocks']);

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/** Problems of `value` against a Swagger 2.0 schema of Slack's spec, as "path: problem" lines. */
export function validateAgainstSpec(value: unknown, schema: SpecSchema, at = '$'): string[] {
  let s = schema;
  while (s.$ref) {
    const name = s.$ref.replace('#/definitions/', '');
    const next = webApiSpec().definitions[name];
    if (!next) return [`${at}: spec has no definition ${name}`];
    s = next;
  }
  // Slack's spec writes alternatives as an `items` list on non-array schemas (meaning anyOf).
  if (Array.isArray(s.items)) {
    const results = s.items.map((alt) => validateAgainstSpec(value, alt, at));
    return results.some((r) => r.length === 0) ? [] : (results.sort((a, b) => a.length - b.length)[0] ?? []);
  }
  const actual = typeOf(value);
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    const fits = types.includes(actual) || (actual === 'integer' && types.includes('number'));
    if (!fits) return [`${at}: ${actual} is not ${types.join(' or ')}`];
  }
  const problems: string[] = [];
  if (s.enum && !s.enum.includes(value))
    problems.push(`${at}: ${JSON.stringify(value)} is not one of the enum`);
  if (s.pattern && typeof value === 'string' && !new RegExp(s.pattern).test(value))
    problems.push(`${at}: ${JSON.stringify(value)} does not match ${s.pattern}`);
  if (Array.isArray(value)) {
    if (s.minItems !== undefined && value.length < s.minItems)
      problems.push(`${at}: fewer than ${s.minItems} items`);
    if (s.uniqueItems && new Set(value.map((v) => JSON.stringify(v))).size !== value.length)
      problems.push(`${at}: items are not unique`);
    if (s.items && !Array.isArray(s.items)) {
      const itemSchema = s.items;
      value.forEach((item, i) => {
        problems.push(...validateAgainstSpec(item, itemSchema, `${at}[${i}]`));
      });
    }
  }
  if (isObject(value)) {
    for (const key of s.required ?? []) if (!(key in value)) problems.push(`${at}: missing ${key}`);
    for (const [key, item] of Object.entries(value)) {
      const property = s.properties?.[key];
      if (property) problems.push(...validateAgainstSpec(item, property, `${at}.${key}`));
      else if (s.additionalProperties === false) problems.push(`${at}: unexpected property ${key}`);
      else if (isObject(s.additionalProperties))
        problems.push(...validateAgainstSpec(item, s.additionalProperties, `${at}.${key}`));
    }
  }
  return problems;
}

/** Problems of a successful answer of `method` against the spec's success schema. */
export function specProblems(method: string, answer: Json): string[] {
  const operations = webApiSpec().paths[`/${method}`];
  const operation = operations ? Object.values(operations)[0] : undefined;
  const schema = operation?.responses['200']?.schema;
  if (!schema) return [`${method}: not in the spec`];
  return validateAgainstSpec(answer, schema)
    .filter((p) => !KNOWN_SPEC_ERRORS.has(`${method} ${p.split(':')[0]}`))
    .map((p) => `${method} ${p}`);
}

// ---------------------------------------------------------------------------------------------
// The server.

export interface SlackFakeOptions {
  /** The fake's clock (trigger and OAuth code expiry, ts values). Default Date.now. */
  readonly now?: () => number;
  /** Where action_ids must be unique: 'block' (Slack's rule, default) or the whole view/message. */
  readonly actionIdScope?: ActionIdScope;
  /**
   * Applies Slack's chat.postMessage limit per channel (off by default): a post to a channel
   * whose bucket is empty answers HTTP 429 `ratelimited` with Retry-After, as Slack does.
   */
  readonly channelPostLimit?: ChannelPostLimit;
}

/**
 * Slack's documented limit for posting messages (https://docs.slack.dev/apis/web-api/rate-limits:
 * "Posting messages: 1 per second. Short bursts >1 allowed."; chat.postMessage "generally allows
 * posting one message per second per channel"), modelled as a token bucket per channel: it holds
 * `burst` posts when the channel has been quiet and refills `perSecond` posts a second. Slack does
 * not publish the burst size; the fake takes it as a parameter. Calls refused with 429 take nothing.
 */
export interface ChannelPostLimit {
  readonly perSecond: number;
  readonly burst: number;
}

/** The limit as Slack documents it, with a short burst of 3 (Slack: "short bursts >1 allowed"). */
export const SLACK_CHANNEL_POST_LIMIT: ChannelPostLimit = { perSecond: 1, burst: 3 };

/**
 * The earliest time, ms after the first post, at which a channel whose bucket starts full can have
 * accepted `count` posts under `limit`: the first `burst` at once, then one per refill.
 */
export function earliestPostsMs(limit: ChannelPostLimit, count: number): number {
  return (Math.max(0, count - limit.burst) / limit.perSecond) * 1000;
}

export interface SlackFakeCall {
  method: string;
  token: string | undefined;
  body: Record<string, unknown>;
  at: number;
  /** HTTP status answered (200, or 429 when rate limited, 404 for unknown methods). */
  status?: number;
  /** `error` of the answer when it was `ok: false`. */
  error?: string;
}

export interface SlackFakeMessage {
  method: string;
  channel: string;
  user?: string;
  text?: string;
  blocks?: unknown[];
  /** ts of the message (message_ts for ephemeral ones). */
  ts?: string;
  thread_ts?: string;
}

export interface SlackFakeUser {
  readonly id: string;
  readonly name: string;
  readonly is_admin: boolean;
  readonly is_owner: boolean;
  readonly is_primary_owner?: boolean;
  readonly is_bot?: boolean;
  readonly deleted?: boolean;
}

export interface SlackFake {
  /** Value for SLACK_API_URL, e.g. http://127.0.0.1:<port>/api/ (trailing slash; @slack/web-api appends the method name). */
  readonly apiUrl: string;
  readonly teamId: string;
  readonly teamName: string;
  /** valid xoxb- token for teamId (auth.test answers with team_id, user_id 'U0BOT', bot_id). */
  readonly botToken: string;
  readonly botUserId: string;
  readonly botId: string;
  readonly appId: string;
  /** users.info: is_admin / is_owner flags. */
  readonly users: { readonly admin: string; readonly owner: string; readonly member: string };
  /** A fresh trigger_id: valid for one views.open / views.push within 3 seconds of issuing, then expired_trigger_id / invalid_trigger_id. `userId` is the user the modal opens for (default the admin). */
  issueTriggerId(userId?: string): string;
  /** Every Web API call received: method, token used, parsed body (form or JSON; `view`, `blocks` and `attachments` decoded from their JSON strings), arrival time. */
  readonly calls: SlackFakeCall[];
  /** Open modals and their current view (after views.open / views.update / views.push), by view id. */
  readonly modals: ReadonlyMap<string, { view: Record<string, unknown>; hash: string; user: string }>;
  /** The App Home view last published for a user (views.publish). */
  homeOf(userId: string): Record<string, unknown> | undefined;
  /** chat.postEphemeral / chat.postMessage (and chat.update) calls accepted (channel, user, text, blocks). */
  readonly messages: SlackFakeMessage[];
  /** The next `count` calls of `method` answer HTTP 429 with Retry-After: seconds. */
  rateLimitNext(method: string, count: number, retryAfterSeconds: number): void;
  /**
   * The next call of `method` is held, as on a slow network, until `release` settles; it is
   * applied (and answered) after calls that arrived later.
   */
  holdNext(method: string, release: Promise<unknown>): void;
  /** chat.postMessage calls answered 429 by `channelPostLimit`, by channel. */
  readonly channelRateLimited: ReadonlyMap<string, number>;
  /**
   * Calls `listener` with every call right after its answer was written (status and error set),
   * in order. Returns the function that removes it.
   */
  onCall(listener: (call: SlackFakeCall) => void): () => void;
  /** OAuth: a code that oauth.v2.access exchanges (client id/secret checked) for an installation of `teamId` (bot token returned). Single use, 10 minutes. */
  issueOAuthCode(options?: { redirectUri?: string; userId?: string }): string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Tokens issued by oauth.v2.access, newest last. */
  readonly issuedTokens: readonly string[];
  /** Makes `token` invalid (as after an uninstall or auth.revoke): later calls answer invalid_auth. */
  revokeToken(token: string): void;
  /** Adds a workspace user (users.info, chat.postEphemeral, views.publish). */
  addUser(user: SlackFakeUser): void;
  /** Makes a conversation unknown (channel_not_found), as when it was deleted or the bot cannot see it. */
  removeChannel(channelId: string): void;
  /** Archives a conversation: posting answers is_archived. */
  archiveChannel(channelId: string): void;
  /** Removes the bot from a channel: chat.postMessage answers not_in_channel. */
  leaveChannel(channelId: string): void;
  /** Adds the bot to a channel again (after leaveChannel): conversations.info says is_member true. */
  joinChannel(channelId: string): void;
  /** The user closes a modal (and every view stacked on it): views.update on it then answers not_found. */
  closeModal(viewId: string): void;
  /** `ok` answers of the fake that do not match Slack's published Web API spec (a fake bug): must stay empty. */
  readonly specViolations: string[];
  /** Moves the fake's clock forward (trigger and OAuth code expiry) without waiting. */
  advanceTime(ms: number): void;
  close(): Promise<void>;
}

const TRIGGER_TTL_MS = 3_000;
const OAUTH_CODE_TTL_MS = 10 * 60_000;
/** Serialized views above this size answer view_too_large (our limit; Slack does not publish one). */
const MAX_VIEW_BYTES = 250_000;
const MAX_MESSAGE_TEXT = 40_000;
const MAX_BODY_BYTES = 5 * 1024 * 1024;
/** Modals stacked with views.push: Slack allows 3 views in a stack. */
const MAX_STACK = 3;
const BOT_SCOPES = 'commands,chat:write,users:read,channels:read,groups:read,im:write';

interface StoredView {
  view: Record<string, unknown>;
  hash: string;
  user: string;
  type: 'modal' | 'home';
  rootId: string;
}

class ApiError extends Error {
  constructor(
    readonly error: string,
    readonly messages?: string[],
    readonly extra?: Record<string, unknown>,
  ) {
    super(error);
  }
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
function randomId(prefix: string, length: number): string {
  let id = prefix;
  for (let i = 0; i < length; i++) id += ALNUM[randomInt(ALNUM.length)];
  return id;
}
const MIXED = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function shortId(): string {
  let id = '';
  for (let i = 0; i < 5; i++) id += MIXED[randomInt(MIXED.length)];
  return id;
}

/** Slack gives blocks without block_id and elements without action_id random ids in the stored view. */
function fillIds(blocks: unknown): unknown {
  if (!Array.isArray(blocks)) return blocks;
  return blocks.map((block) => {
    if (!isObject(block)) return block;
    const copy: Json = { ...block, block_id: block.block_id ?? shortId() };
    const withId = (e: unknown): unknown =>
      isObject(e) && e.type !== 'image' && e.action_id === undefined ? { ...e, action_id: shortId() } : e;
    if (isObject(copy.element)) copy.element = withId(copy.element);
    if (isObject(copy.accessory)) copy.accessory = withId(copy.accessory);
    if (copy.type === 'actions' && Array.isArray(copy.elements)) copy.elements = copy.elements.map(withId);
    return copy;
  });
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** A string argument (form values are strings; JSON bodies may carry numbers). */
function arg(args: Json, key: string): string | undefined {
  const value = args[key];
  if (typeof value === 'string') return value === '' ? undefined : value;
  if (typeof value === 'number') return String(value);
  return undefined;
}

/** An argument that is JSON: an object in a JSON body, a JSON string in a form body. */
function jsonArg(args: Json, key: string): { present: boolean; value?: unknown; malformed?: boolean } {
  const value = args[key];
  if (value === undefined || value === '') return { present: false };
  if (typeof value !== 'string') return { present: true, value };
  try {
    return { present: true, value: JSON.parse(value) };
  } catch {
    return { present: true, malformed: true };
  }
}

export async function startSlackFake(options: SlackFakeOptions = {}): Promise<SlackFake> {
  const baseNow = options.now ?? Date.now;
  const actionIdScope = options.actionIdScope ?? 'block';
  let offset = 0;
  const now = (): number => baseNow() + offset;

  const teamId = 'T0CLOUDPI';
  const teamName = 'CloudPi Test';
  const botUserId = 'U0BOT';
  const botId = 'B0CLOUDPI1';
  const appId = 'A0CLOUDPI';
  const botToken = `xoxb-1000000001-1000000002-${randomBytes(12).toString('hex')}`;
  const clientId = '1000000001.2000000002';
  const clientSecret = randomBytes(16).toString('hex');

  const usersById = new Map<string, SlackFakeUser>();
  const addUser = (u: SlackFakeUser): void => {
    usersById.set(u.id, u);
  };
  addUser({ id: 'U0ADMIN', name: 'ada.admin', is_admin: true, is_owner: false });
  addUser({ id: 'U0OWNER', name: 'olga.owner', is_admin: true, is_owner: true, is_primary_owner: true });
  addUser({ id: 'U0MEMBER', name: 'max.member', is_admin: false, is_owner: false });
  addUser({ id: botUserId, name: 'cloudpi', is_admin: false, is_owner: false, is_bot: true });
  const users = { admin: 'U0ADMIN', owner: 'U0OWNER', member: 'U0MEMBER' } as const;

  const validTokens = new Set<string>([botToken]);
  const issuedTokens: string[] = [];
  const triggers = new Map<string, { issuedAt: number; used: boolean; user: string }>();
  const oauthCodes = new Map<
    string,
    { issuedAt: number; used: boolean; redirectUri?: string; user: string }
  >();
  const rateLimits = new Map<string, { count: number; seconds: number }>();
  const holds = new Map<string, Promise<unknown>[]>();
  const channelPostLimit = options.channelPostLimit;
  if (channelPostLimit && !(channelPostLimit.perSecond > 0 && channelPostLimit.burst >= 1))
    throw new Error('channelPostLimit needs perSecond > 0 and burst >= 1');
  /** Per channel: posts left in the bucket, as of `at`. */
  const postBuckets = new Map<string, { tokens: number; at: number }>();
  const channelRateLimited = new Map<string, number>();
  const callListeners = new Set<(call: SlackFakeCall) => void>();
  /** Takes one post from the channel's bucket; when it is empty, the seconds until it holds one. */
  const takePost = (limit: ChannelPostLimit, channel: string): number | undefined => {
    const t = now();
    const bucket = postBuckets.get(channel) ?? { tokens: limit.burst, at: t };
    bucket.tokens = Math.min(limit.burst, bucket.tokens + ((t - bucket.at) / 1000) * limit.perSecond);
    bucket.at = t;
    postBuckets.set(channel, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return undefined;
    }
    // Retry-After is whole seconds in Slack's answers.
    return Math.max(1, Math.ceil((1 - bucket.tokens) / limit.perSecond));
  };
  const removedChannels = new Set<string>();
  const archivedChannels = new Set<string>();
  const leftChannels = new Set<string>();
  const calls: SlackFakeCall[] = [];
  const specViolations: string[] = [];
  const messages: SlackFakeMessage[] = [];
  const posted = new Map<string, SlackFakeMessage>(); // `${channel}/${ts}` → message
  const views = new Map<string, StoredView>();
  const modals = new Map<string, { view: Record<string, unknown>; hash: string; user: string }>();
  const homes = new Map<string, string>(); // user → view id
  const stacks = new Map<string, string[]>(); // root view id → stack of view ids
  const lastRootOf = new Map<string, string>(); // user → root view id of the newest modal
  let tsCounter = 0;

  const newHash = (): string => `${Math.floor(now() / 1000)}.${randomBytes(4).toString('hex')}`;
  const newTs = (): string => {
    tsCounter = (tsCounter + 1) % 1_000_000;
    return `${Math.floor(now() / 1000)}.${String(tsCounter).padStart(6, '0')}`;
  };

  const channelExists = (id: string): boolean =>
    !removedChannels.has(id) && (/^[CGD][A-Z0-9]{8,}$/.test(id) || usersById.has(id));

  const invalidArguments = (messages: string[]): ApiError => new ApiError('invalid_arguments', messages);
  const missing = (field: string): ApiError =>
    invalidArguments([`[ERROR] missing required field: ${field} [json-pointer:/]`]);

  /** Parses and validates the `view` argument; too large or invalid views are refused like Slack. */
  const readView = (args: Json, allowed: readonly ('modal' | 'home')[]): Json => {
    const view = jsonArg(args, 'view');
    if (!view.present) throw missing('view');
    if (view.malformed) throw invalidArguments(['[ERROR] must provide an object [json-pointer:/view]']);
    if (JSON.stringify(view.value).length > MAX_VIEW_BYTES) throw new ApiError('view_too_large');
    const problems = validateView(view.value, allowed, actionIdScope);
    if (problems.length > 0) throw invalidArguments(problems);
    return view.value as Json;
  };

  const takeTrigger = (args: Json): { user: string } => {
    const id = arg(args, 'trigger_id');
    if (!id) throw missing('trigger_id');
    const trigger = triggers.get(id);
    if (!trigger) throw new ApiError('invalid_trigger_id');
    if (trigger.used) throw new ApiError('exchanged_trigger_id');
    if (now() - trigger.issuedAt > TRIGGER_TTL_MS) throw new ApiError('expired_trigger_id');
    trigger.used = true;
    return { user: trigger.user };
  };

  const storeView = (
    input: Json,
    id: string,
    user: string,
    rootId: string,
    previousViewId: string | null,
  ): StoredView => {
    const type = input.type as 'modal' | 'home';
    const hash = newHash();
    const view: Json = {
      id,
      team_id: teamId,
      type,
      ...(type === 'modal'
        ? { title: input.title, close: input.close ?? null, submit: input.submit ?? null }
        : { close: null, submit: null }),
      blocks: fillIds(input.blocks),
      private_metadata: input.private_metadata ?? '',
      callback_id: input.callback_id ?? '',
      state: { values: {} },
      hash,
      clear_on_close: input.clear_on_close ?? false,
      notify_on_close: input.notify_on_close ?? false,
      ...(input.submit_disabled === undefined ? {} : { submit_disabled: input.submit_disabled }),
      root_view_id: rootId,
      previous_view_id: previousViewId,
      app_id: appId,
      external_id: input.external_id ?? '',
      app_installed_team_id: teamId,
      bot_id: botId,
    };
    const stored: StoredView = { view, hash, user, type, rootId };
    views.set(id, stored);
    if (type === 'modal') modals.set(id, { view, hash, user });
    return stored;
  };

  const externalIdInUse = (externalId: unknown, except?: string): boolean =>
    typeof externalId === 'string' &&
    [...views.entries()].some(([id, v]) => id !== except && v.view.external_id === externalId);

  const closeStack = (rootId: string): void => {
    for (const id of stacks.get(rootId) ?? []) {
      views.delete(id);
      modals.delete(id);
    }
    stacks.delete(rootId);
  };

  const userPayload = (u: SlackFakeUser): Json => ({
    id: u.id,
    team_id: teamId,
    name: u.name,
    deleted: u.deleted ?? false,
    color: '9f69e7',
    real_name: u.name,
    tz: 'Europe/Berlin',
    tz_label: 'Central European Time',
    tz_offset: 3600,
    profile: {
      title: '',
      phone: '',
      skype: '',
      real_name: u.name,
      real_name_normalized: u.name,
      display_name: u.name,
      display_name_normalized: u.name,
      fields: null,
      status_text: '',
      status_emoji: '',
      avatar_hash: 'g0123456789a',
      ...(u.is_bot
        ? { bot_id: botId, api_app_id: appId, always_active: true }
        : { email: `${u.name}@cloudpi.example` }),
      team: teamId,
    },
    is_admin: u.is_admin,
    is_owner: u.is_owner,
    is_primary_owner: u.is_primary_owner ?? false,
    is_restricted: false,
    is_ultra_restricted: false,
    is_bot: u.is_bot ?? false,
    is_app_user: false,
    updated: 1_700_000_000,
  });

  /** chat.*: text and blocks checks shared by postMessage, postEphemeral and update. */
  const readMessage = (args: Json): { text?: string; blocks?: unknown[] } => {
    const text = typeof args.text === 'string' ? args.text : undefined;
    const blocksArg = jsonArg(args, 'blocks');
    const attachments = jsonArg(args, 'attachments');
    let blocks: unknown[] | undefined;
    if (blocksArg.present) {
      if (blocksArg.malformed || !Array.isArray(blocksArg.value)) throw new ApiError('invalid_blocks_format');
      blocks = blocksArg.value;
      const problems = validateMessageBlocks(blocks, actionIdScope);
      if (problems.length > 0) {
        throw new ApiError('invalid_blocks', problems, {
          errors: problems.map((p) => p.replace(/^\[ERROR\] /, '')),
        });
      }
    }
    if (attachments.present) {
      if (attachments.malformed || !Array.isArray(attachments.value))
        throw new ApiError('invalid_attachments');
      if (attachments.value.length > 100) throw new ApiError('too_many_attachments');
    }
    if (!text && (!blocks || blocks.length === 0) && !attachments.present) throw new ApiError('no_text');
    if (text && text.length > MAX_MESSAGE_TEXT) throw new ApiError('msg_too_long');
    return { ...(text === undefined ? {} : { text }), ...(blocks === undefined ? {} : { blocks }) };
  };

  const requireChannel = (args: Json): string => {
    const channel = arg(args, 'channel');
    if (!channel || !channelExists(channel)) throw new ApiError('channel_not_found');
    return channel;
  };

  type Handler = (args: Json, token: string | undefined, req: IncomingMessage) => Json;
  const handlers: Record<string, Handler> = {
    'api.test': (args) => ({ args }),

    'auth.test': () => ({
      url: 'https://cloudpi-test.slack.com/',
      team: teamName,
      user: 'cloudpi',
      team_id: teamId,
      user_id: botUserId,
      bot_id: botId,
      is_enterprise_install: false,
    }),

    'auth.revoke': (args, token) => {
      const test = args.test === true || args.test === 'true' || args.test === '1';
      if (!test && token) validTokens.delete(token);
      return { revoked: !test };
    },

    'users.info': (args) => {
      const id = arg(args, 'user');
      const user = id ? usersById.get(id) : undefined;
      if (!user) throw new ApiError('user_not_found');
      return { user: userPayload(user) };
    },

    'conversations.info': (args) => {
      const id = requireChannel(args);
      if (id.startsWith('D') || usersById.has(id)) {
        const dm = id.startsWith('D') ? id : `D${id.slice(1)}0`;
        return {
          channel: {
            id: dm,
            created: 1_700_000_000,
            is_im: true,
            is_org_shared: false,
            is_archived: false,
            is_shared: false,
            user: usersById.has(id) ? id : users.member,
            priority: 0,
          },
        };
      }
      const name = `channel-${id.slice(1).toLowerCase()}`;
      const blank = { value: '', creator: '', last_set: 0 };
      return {
        channel: {
          id,
          name,
          name_normalized: name,
          created: 1_700_000_000,
          creator: users.admin,
          is_channel: id.startsWith('C'),
          is_group: id.startsWith('G'),
          is_im: false,
          is_mpim: false,
          is_private: id.startsWith('G'),
          is_archived: archivedChannels.has(id),
          is_general: false,
          is_member: !leftChannels.has(id),
          is_shared: false,
          is_ext_shared: false,
          is_org_shared: false,
          topic: blank,
          purpose: blank,
        },
      };
    },

    'views.open': (args) => {
      const view = readView(args, ['modal']);
      if (externalIdInUse(view.external_id)) throw new ApiError('duplicate_external_id');
      const { user } = takeTrigger(args);
      const id = randomId('V', 10);
      const stored = storeView(view, id, user, id, null);
      stacks.set(id, [id]);
      lastRootOf.set(user, id);
      return { view: stored.view };
    },

    'views.push': (args) => {
      const view = readView(args, ['modal']);
      if (externalIdInUse(view.external_id)) throw new ApiError('duplicate_external_id');
      const { user } = takeTrigger(args);
      const rootId = lastRootOf.get(user);
      const stack = rootId ? stacks.get(rootId) : undefined;
      // A trigger from a slash command or a message cannot push: there is no modal to push onto.
      if (!rootId || !stack) throw new ApiError('not_found');
      if (stack.length >= MAX_STACK) throw new ApiError('push_limit_reached');
      const id = randomId('V', 10);
      const stored = storeView(view, id, user, rootId, stack[stack.length - 1] ?? null);
      stack.push(id);
      return { view: stored.view };
    },

    'views.update': (args) => {
      const viewId = arg(args, 'view_id');
      const externalId = arg(args, 'external_id');
      if (!viewId && !externalId) throw missing('view_id or external_id');
      const view = readView(args, ['modal', 'home']);
      const id = viewId ?? [...views.entries()].find(([, v]) => v.view.external_id === externalId)?.[0];
      const current = id ? views.get(id) : undefined;
      if (!id || !current) throw new ApiError('not_found');
      if (view.type !== current.type)
        throw invalidArguments([`[ERROR] must be one of: ${current.type} [json-pointer:/view/type]`]);
      const hash = arg(args, 'hash');
      if (hash !== undefined && hash !== current.hash) throw new ApiError('hash_conflict');
      if (externalIdInUse(view.external_id, id)) throw new ApiError('duplicate_external_id');
      const stored = storeView(
        view,
        id,
        current.user,
        current.rootId,
        (current.view.previous_view_id as string | null) ?? null,
      );
      return { view: stored.view };
    },

    'views.publish': (args) => {
      const userId = arg(args, 'user_id');
      if (!userId) throw missing('user_id');
      const view = readView(args, ['home']);
      const user = usersById.get(userId);
      if (!user || user.is_bot) throw new ApiError('user_not_found');
      const existingId = homes.get(userId);
      const hash = arg(args, 'hash');
      if (hash !== undefined && (!existingId || views.get(existingId)?.hash !== hash))
        throw new ApiError('hash_conflict');
      const id = existingId ?? randomId('V', 10);
      const stored = storeView(view, id, userId, id, null);
      homes.set(userId, id);
      return { view: stored.view };
    },

    'chat.postMessage': (args) => {
      const channel = requireChannel(args);
      if (archivedChannels.has(channel)) throw new ApiError('is_archived');
      if (leftChannels.has(channel)) throw new ApiError('not_in_channel');
      const content = readMessage(args);
      const ts = newTs();
      const threadTs = arg(args, 'thread_ts');
      const message: SlackFakeMessage = {
        method: 'chat.postMessage',
        channel,
        ...content,
        ts,
        ...(threadTs ? { thread_ts: threadTs } : {}),
      };
      messages.push(message);
      posted.set(`${channel}/${ts}`, message);
      return {
        channel,
        ts,
        message: {
          type: 'message',
          subtype: 'bot_message',
          text: content.text ?? '',
          ...(content.blocks ? { blocks: content.blocks } : {}),
          ts,
          ...(threadTs ? { thread_ts: threadTs } : {}),
          bot_id: botId,
          user: botUserId,
          team: teamId,
        },
      };
    },

    'chat.postEphemeral': (args) => {
      const channel = requireChannel(args);
      if (archivedChannels.has(channel)) throw new ApiError('is_archived');
      const user = arg(args, 'user');
      if (!user || !usersById.has(user)) throw new ApiError('user_not_in_channel');
      const content = readMessage(args);
      const ts = newTs();
      const threadTs = arg(args, 'thread_ts');
      messages.push({
        method: 'chat.postEphemeral',
        channel,
        user,
        ...content,
        ts,
        ...(threadTs ? { thread_ts: threadTs } : {}),
      });
      return { message_ts: ts };
    },

    'chat.update': (args) => {
      const channel = requireChannel(args);
      const ts = arg(args, 'ts');
      const original = ts ? posted.get(`${channel}/${ts}`) : undefined;
      if (!ts || !original) throw new ApiError('message_not_found');
      const content = readMessage(args);
      const updated: SlackFakeMessage = { method: 'chat.update', channel, ...content, ts };
      messages.push(updated);
      posted.set(`${channel}/${ts}`, { ...original, ...content });
      return { channel, ts, text: content.text ?? '', message: { text: content.text ?? '', ...content } };
    },

    'oauth.v2.access': (args, _token, req) => {
      let id = arg(args, 'client_id');
      let secret = arg(args, 'client_secret');
      const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
      if (basic?.[1]) {
        const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon >= 0) {
          id = decodeURIComponent(decoded.slice(0, colon));
          secret = decodeURIComponent(decoded.slice(colon + 1));
        }
      }
      if (id !== clientId) throw new ApiError('invalid_client_id');
      if (secret !== clientSecret) throw new ApiError('bad_client_secret');
      const grantType = arg(args, 'grant_type');
      if (grantType !== undefined && grantType !== 'authorization_code')
        throw new ApiError('invalid_grant_type');
      const code = arg(args, 'code');
      const entry = code ? oauthCodes.get(code) : undefined;
      if (!entry || entry.used || now() - entry.issuedAt > OAUTH_CODE_TTL_MS)
        throw new ApiError('invalid_code');
      if (entry.redirectUri !== undefined && arg(args, 'redirect_uri') !== entry.redirectUri)
        throw new ApiError('bad_redirect_uri');
      entry.used = true;
      const accessToken = `xoxb-1000000001-${randomInt(1e9, 2e9)}-${randomBytes(12).toString('hex')}`;
      validTokens.add(accessToken);
      issuedTokens.push(accessToken);
      return {
        access_token: accessToken,
        token_type: 'bot',
        scope: BOT_SCOPES,
        bot_user_id: botUserId,
        app_id: appId,
        team: { id: teamId, name: teamName },
        enterprise: null,
        authed_user: { id: entry.user },
        is_enterprise_install: false,
      };
    },
  };
  const NO_TOKEN = new Set(['api.test', 'oauth.v2.access']);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const match = /^\/api\/([A-Za-z0-9.]+)$/.exec(url.pathname);
    const method = match?.[1] ?? url.pathname;
    const call: SlackFakeCall = { method, token: undefined, body: {}, at: now() };
    calls.push(call);
    const answer = (status: number, body: Json, headers?: Record<string, string>): void => {
      call.status = status;
      if (body.ok === false) call.error = String(body.error);
      sendJson(res, status, body, headers);
      for (const listener of callListeners) listener(call);
    };

    if (!match || !(method in handlers)) {
      answer(404, { ok: false, error: 'unknown_method', req_method: method });
      return;
    }
    const limit = rateLimits.get(method);
    if (limit && limit.count > 0) {
      limit.count -= 1;
      await readBody(req, MAX_BODY_BYTES);
      answer(429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(limit.seconds) });
      return;
    }
    const hold = holds.get(method)?.shift();
    if (hold) await hold.catch(() => {});
    if (req.method !== 'POST' && req.method !== 'GET') {
      answer(405, { ok: false, error: 'invalid_post_type' });
      return;
    }

    // Arguments: query string, then the body (form or JSON).
    const args: Json = Object.fromEntries(url.searchParams);
    const raw = await readBody(req, MAX_BODY_BYTES);
    if (raw === undefined) {
      answer(413, { ok: false, error: 'request_too_large' });
      return;
    }
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    let isJson = false;
    if (raw.length > 0) {
      if (contentType === 'application/x-www-form-urlencoded') {
        Object.assign(args, Object.fromEntries(new URLSearchParams(raw.toString('utf8'))));
      } else if (contentType === 'application/json') {
        isJson = true;
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw.toString('utf8'));
        } catch {
          answer(200, { ok: false, error: 'invalid_json' });
          return;
        }
        if (!isObject(parsed)) {
          answer(200, { ok: false, error: 'json_not_object' });
          return;
        }
        Object.assign(args, parsed);
      } else if (contentType === '') {
        answer(200, { ok: false, error: 'missing_post_type' });
        return;
      } else {
        answer(200, { ok: false, error: 'invalid_post_type' });
        return;
      }
    }
    // Recorded with JSON-valued arguments (view, blocks, attachments) decoded, as the method reads them.
    call.body = { ...args };
    for (const key of ['view', 'blocks', 'attachments']) {
      const decoded = jsonArg(args, key);
      if (decoded.present && !decoded.malformed) call.body[key] = decoded.value;
    }

    // The token: a Bearer header, or `token` in a form body (never read from a JSON body).
    const bearer = /^Bearer (.*)$/i.exec(req.headers.authorization ?? '');
    let token: string | undefined = bearer ? bearer[1]?.trim() || undefined : undefined;
    if (!token && !isJson && req.method === 'POST' && typeof args.token === 'string' && args.token !== '')
      token = args.token;
    call.token = token;
    if (!NO_TOKEN.has(method)) {
      if (!token) {
        answer(200, { ok: false, error: 'not_authed' });
        return;
      }
      if (!validTokens.has(token)) {
        answer(200, { ok: false, error: 'invalid_auth' });
        return;
      }
    }

    if (channelPostLimit && method === 'chat.postMessage') {
      const channel = arg(args, 'channel');
      const retryAfter = channel ? takePost(channelPostLimit, channel) : undefined;
      if (channel && retryAfter !== undefined) {
        channelRateLimited.set(channel, (channelRateLimited.get(channel) ?? 0) + 1);
        answer(429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(retryAfter) });
        return;
      }
    }

    try {
      const result: Json = { ok: true, ...handlers[method]!(args, token, req) };
      specViolations.push(...specProblems(method, result));
      answer(200, result);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      answer(200, {
        ok: false,
        error: error.error,
        ...error.extra,
        ...(error.messages ? { response_metadata: { messages: error.messages } } : {}),
      });
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { ok: false, error: 'fatal_error', detail: String(error) });
      else res.destroy();
    });
  });
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/`;

  return {
    apiUrl,
    teamId,
    teamName,
    botToken,
    botUserId,
    botId,
    appId,
    users,
    clientId,
    clientSecret,
    calls,
    messages,
    modals,
    issuedTokens,
    specViolations,
    issueTriggerId(userId = users.admin) {
      const id = `${randomInt(1e9, 1e10)}.${randomInt(1e9, 1e10)}.${randomBytes(16).toString('hex')}`;
      triggers.set(id, { issuedAt: now(), used: false, user: userId });
      return id;
    },
    homeOf(userId) {
      const id = homes.get(userId);
      return id ? views.get(id)?.view : undefined;
    },
    holdNext(method, release) {
      holds.set(method, [...(holds.get(method) ?? []), release]);
    },
    rateLimitNext(method, count, retryAfterSeconds) {
      rateLimits.set(method, { count, seconds: retryAfterSeconds });
    },
    channelRateLimited,
    onCall(listener) {
      callListeners.add(listener);
      return () => {
        callListeners.delete(listener);
      };
    },
    issueOAuthCode(opts = {}) {
      const code = `${randomInt(1e9, 1e10)}.${randomInt(1e9, 1e10)}.${randomBytes(32).toString('hex')}`;
      oauthCodes.set(code, {
        issuedAt: now(),
        used: false,
        user: opts.userId ?? users.admin,
        ...(opts.redirectUri === undefined ? {} : { redirectUri: opts.redirectUri }),
      });
      return code;
    },
    revokeToken(token) {
      validTokens.delete(token);
    },
    addUser,
    removeChannel(channelId) {
      removedChannels.add(channelId);
    },
    archiveChannel(channelId) {
      archivedChannels.add(channelId);
    },
    leaveChannel(channelId) {
      leftChannels.add(channelId);
    },
    joinChannel(channelId) {
      leftChannels.delete(channelId);
    },
    closeModal(viewId) {
      const root = views.get(viewId)?.rootId;
      if (root) closeStack(root);
    },
    advanceTime(ms) {
      offset += ms;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolveClose) => server.close(() => resolveClose()));
    },
  };
}

/**
 * Problems Slack would have with the HTTP answer an app gives to a view_submission (Slack reads it
 * from the ack, not through the Web API, so tests pass it here). An empty body closes the modal; a
 * `response_action` must be errors (keys: block_ids of input blocks of the submitted view, values
 * non-empty strings), update or push (with a valid modal view), or clear.
 */
export function checkViewSubmissionAnswer(submittedView: Record<string, unknown>, answer: unknown): string[] {
  if (answer === undefined || answer === null || answer === '') return [];
  if (!isObject(answer)) return ['the answer must be empty or a JSON object'];
  if (Object.keys(answer).length === 0) return [];
  const action = answer.response_action;
  switch (action) {
    case 'clear':
      return [];
    case 'update':
    case 'push':
      return validateView(answer.view, ['modal']);
    case 'errors': {
      if (!isObject(answer.errors) || Object.keys(answer.errors).length === 0)
        return ['response_action errors needs a non-empty errors object'];
      const inputs = new Set(
        (Array.isArray(submittedView.blocks) ? submittedView.blocks : [])
          .filter((b): b is Json => isObject(b) && b.type === 'input' && typeof b.block_id === 'string')
          .map((b) => String(b.block_id)),
      );
      const problems: string[] = [];
      for (const [blockId, message] of Object.entries(answer.errors)) {
        if (!inputs.has(blockId))
          problems.push(`errors.${blockId}: not the block_id of an input block of the view`);
        if (typeof message !== 'string' || message === '')
          problems.push(`errors.${blockId}: must be a non-empty string`);
      }
      return problems;
    }
    default:
      return [`unknown response_action ${JSON.stringify(action)}`];
  }
}
