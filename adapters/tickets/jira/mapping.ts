/**
 * Pure translations between CloudPi's words and Jira's: ticket text to Atlassian Document Format
 * (Cloud) or wiki text (Data Center), severities to priorities, status categories to our statuses,
 * and Jira's HTTP failures to AppError codes.
 */
import { createHash } from 'node:crypto';
import { AppError, ErrorCode } from '../../../src/errors.js';
import { retryAfterSeconds } from '../../../src/net/outbound.js';
import type {
  Identity,
  NormalizedStatus,
  RequiredField,
  Routing,
  Severity,
  TicketInput,
} from '../../../src/tickets/port.js';
import type { JiraDeployment } from './credentials.js';

// ---------------------------------------------------------------------------------------------
// Ticket text

export const SUMMARY_MAX = 255;

/** One line, at most 255 UTF-16 units (Jira's limit), cut at a character boundary with an ellipsis. */
export function summaryOf(title: string): string {
  const line = title.replace(/\s+/g, ' ').trim() || 'CloudPi recommendation';
  if (line.length <= SUMMARY_MAX) return line;
  let cut = line.slice(0, SUMMARY_MAX - 1);
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut.trimEnd()}…`;
}

export interface AdfNode {
  type: string;
  text?: string;
  content?: AdfNode[];
  marks?: { type: string; attrs?: Record<string, string> }[];
  attrs?: Record<string, unknown>;
}

export interface AdfDocument {
  type: 'doc';
  version: 1;
  content: AdfNode[];
}

function paragraphsOf(text: string): string[][] {
  return text
    .replace(/\r\n?/g, '\n')
    .split(/\n\s*\n/)
    .map((block) => block.split('\n').map((line) => line.trimEnd()))
    .filter((lines) => lines.some((line) => line.trim() !== ''));
}

/**
 * Plain text as an Atlassian Document: one paragraph per blank-line separated block, single
 * newlines as hard breaks, the CloudPi link as a link mark. Text is never interpreted, so "<b>"
 * stays "<b>". ADF forbids empty text nodes, so none are emitted.
 */
export function toAdf(description: string, link?: string): AdfDocument {
  const content: AdfNode[] = paragraphsOf(description).map((lines) => {
    const nodes: AdfNode[] = [];
    lines.forEach((line, index) => {
      if (index > 0) nodes.push({ type: 'hardBreak' });
      if (line !== '') nodes.push({ type: 'text', text: line });
    });
    return { type: 'paragraph', content: nodes };
  });
  if (link) {
    content.push({
      type: 'paragraph',
      content: [
        {
          type: 'text',
          text: 'Open this recommendation in CloudPi',
          marks: [{ type: 'link', attrs: { href: link } }],
        },
      ],
    });
  }
  if (content.length === 0) content.push({ type: 'paragraph', content: [] });
  return { type: 'doc', version: 1, content };
}

/** Characters Jira's wiki renderer reads as markup. */
const WIKI_SPECIAL = /\\|\?\?|[{}[\]|*_+^~!#-]/g;

/** One line of plain text, literal under the wiki renderer (where a double backslash is a line break). */
function wikiLiteral(line: string): string {
  return line.replace(WIKI_SPECIAL, (c) => (c === '\\' ? '&#92;' : c === '??' ? '?\\?' : `\\${c}`));
}

/**
 * Plain text for Data Center / Server, whose description is wiki markup by default: markup
 * characters are escaped so that the text shows as written.
 */
export function toWikiText(description: string, link?: string): string {
  const body = paragraphsOf(description)
    .map((lines) => lines.map(wikiLiteral).join('\n'))
    .join('\n\n');
  if (!link) return body;
  const href = link.replace(/[|\]\s]/g, (c) => encodeURIComponent(c));
  return `${body}\n\n[Open this recommendation in CloudPi|${href}]`;
}

/**
 * The Jira label carrying an idempotency key. Labels cannot contain spaces and hold at most 255
 * characters: a key that fits is used as given (CloudPi's keys, cloudpi-<id>-jira, always do);
 * any other key becomes cloudpi-<first 32 hex of its SHA-256>, the same on every call.
 */
export function labelFor(idempotencyKey: string): string {
  if (/^[^\s]{1,255}$/u.test(idempotencyKey)) return idempotencyKey;
  return `cloudpi-${createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 32)}`;
}

/** A JQL string literal. */
export function jqlString(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** JQL finding the issue that carries the key, in the routed project when there is one. */
export function jqlForKey(idempotencyKey: string, routing: Routing): string {
  const label = `labels = ${jqlString(labelFor(idempotencyKey))}`;
  return routing.project ? `project = ${jqlString(routing.project)} AND ${label}` : label;
}

export const DEFAULT_PRIORITIES: Readonly<Record<Severity, string>> = {
  critical: 'Highest',
  high: 'High',
  medium: 'Medium',
  low: 'Low',
  info: 'Lowest',
};

/** {name} for a priority name, {id} for a numeric priority id. */
export function priorityFor(severity: Severity, routing: Routing): { id: string } | { name: string } {
  const value = (routing.priorityMap?.[severity] ?? DEFAULT_PRIORITIES[severity]).trim();
  return /^\d+$/.test(value) ? { id: value } : { name: value };
}

/** {id} for a numeric value (Jira ids), {key} or {name} otherwise. */
export function reference<K extends 'key' | 'name'>(
  value: string,
  by: K,
): { id: string } | Record<K, string> {
  return /^\d+$/.test(value) ? { id: value } : ({ [by]: value } as Record<K, string>);
}

export const ADAPTER_FIELDS: readonly string[] = [
  'summary',
  'description',
  'project',
  'issuetype',
  'labels',
  'priority',
  'reporter',
];

/** The fields of one issue creation. routing.fieldValues come first; ours win, labels are merged. */
export function issueFields(
  input: TicketInput,
  idempotencyKey: string,
  deployment: JiraDeployment,
  options: { withPriority: boolean },
): Record<string, unknown> {
  const { routing } = input;
  const extra = { ...(routing.fieldValues ?? {}) };
  const extraLabels = Array.isArray(extra.labels) ? extra.labels.map(String) : [];
  delete extra.labels;
  const labels = [...new Set([...extraLabels, 'cloudpi', labelFor(idempotencyKey)])];
  return {
    ...extra,
    project: reference(routing.project ?? '', 'key'),
    issuetype: reference(routing.ticketType ?? '', 'name'),
    summary: summaryOf(input.title),
    description:
      deployment === 'cloud'
        ? toAdf(input.description, input.link)
        : toWikiText(input.description, input.link),
    labels,
    ...(options.withPriority ? { priority: priorityFor(input.severity, routing) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Reading Jira's answers

/** Jira's status category (new, indeterminate, done; "undefined" for broken workflows) as ours. */
export function normalizeStatus(categoryKey: string | undefined): NormalizedStatus {
  switch (categoryKey) {
    case 'indeterminate':
      return 'in_progress';
    case 'done':
      return 'done';
    default:
      return 'open';
  }
}

export interface JiraUser {
  accountId?: string;
  key?: string;
  name?: string;
  displayName?: string;
  emailAddress?: string;
}

export function identityOf(user: JiraUser): Identity {
  const id = user.accountId ?? user.key ?? user.name ?? '';
  return {
    id,
    displayName: user.displayName || user.name || user.emailAddress || id || 'Jira user',
    ...(user.emailAddress ? { email: user.emailAddress } : {}),
  };
}

export interface JiraFieldMeta {
  fieldId?: string;
  key?: string;
  name?: string;
  required?: boolean;
  hasDefaultValue?: boolean;
  schema?: { type?: string; items?: string; custom?: string };
  allowedValues?: unknown[];
}

/** Required fields without a default, minus those the adapter fills itself. */
export function requiredFieldsOf(fields: readonly JiraFieldMeta[]): RequiredField[] {
  const result: RequiredField[] = [];
  for (const field of fields) {
    const key = field.fieldId ?? field.key;
    if (!key || !field.required || field.hasDefaultValue || ADAPTER_FIELDS.includes(key)) continue;
    const type = field.schema?.type ?? 'string';
    const allowed = (field.allowedValues ?? [])
      .map((value) => value as { id?: unknown; name?: unknown; value?: unknown; key?: unknown })
      .filter((value) => value.id !== undefined)
      .map((value) => ({
        id: String(value.id),
        name: String(value.name ?? value.value ?? value.key ?? value.id),
      }));
    result.push({
      key,
      name: field.name ?? key,
      type,
      ...(allowed.length ? { allowedValues: allowed } : {}),
    });
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Errors

/** Jira's error body: {errorMessages: string[], errors: {field: message}}. */
export interface ErrorCollection {
  errorMessages?: string[];
  errors?: Record<string, string>;
  status?: number;
}

/** The vendor failure, kept as `cause` of the AppError the adapter throws (no headers, no secrets). */
export class JiraHttpError extends Error {
  override readonly name = 'JiraHttpError';
  constructor(
    readonly status: number,
    readonly method: string,
    readonly path: string,
    readonly body: ErrorCollection | string | undefined,
  ) {
    super(`Jira answered ${status} to ${method} ${path}`);
  }
}

export function parseErrorCollection(text: string): ErrorCollection | undefined {
  try {
    const body = JSON.parse(text) as unknown;
    if (body && typeof body === 'object' && ('errorMessages' in body || 'errors' in body)) {
      return body as ErrorCollection;
    }
  } catch {
    // not JSON: an HTML error page, a proxy's answer, or Atlassian's plain-text 401
  }
  return undefined;
}

/** Jira's own words, one sentence, bounded. */
export function jiraMessage(body: ErrorCollection | undefined): string {
  if (!body) return '';
  const parts = [
    ...(body.errorMessages ?? []),
    ...Object.entries(body.errors ?? {}).map(([field, message]) => `${field}: ${message}`),
  ].filter((part) => typeof part === 'string' && part.trim());
  const text = parts.join('; ').replace(/\s+/g, ' ').trim();
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}

function quoted(message: string): string {
  return message ? ` Jira said: "${message.replace(/[.]$/, '')}".` : '';
}

export interface ResponseContext {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly method: string;
  /** Path below the base URL, without the query. */
  readonly path: string;
  readonly deployment: JiraDeployment;
  readonly host: string;
  readonly urlField: string;
  readonly secretField: string;
}

export function notJiraError(host: string, urlField: string, what: string, cause?: unknown): AppError {
  return new AppError(
    ErrorCode.NOT_FOUND,
    `${host} ${what}, so it does not look like a Jira site. Check the Site URL: for Jira Cloud it is https://your-site.atlassian.net; for Data Center / Server it is the address you open Jira at, with its path if Jira runs under one (https://jira.example.com/jira).`,
    { cause, details: { field: urlField } },
  );
}

/** A Jira HTTP failure as our error code, with a sentence that says what to fix. */
export function errorFromResponse(ctx: ResponseContext): AppError {
  const body = parseErrorCollection(ctx.text);
  const said = jiraMessage(body);
  const cause = new JiraHttpError(
    ctx.status,
    ctx.method,
    ctx.path,
    body ?? (ctx.text.slice(0, 500) || undefined),
  );
  const status = ctx.status;
  if (status === 401) {
    if (/scope does not match/i.test(ctx.text)) {
      return new AppError(
        ErrorCode.FORBIDDEN,
        'The Jira API token has scopes that do not allow this request. Create a classic API token without scopes ("Create API token") at https://id.atlassian.com/manage-profile/security/api-tokens.',
        { cause, details: { field: ctx.secretField, status } },
      );
    }
    return new AppError(
      ErrorCode.INVALID_CREDENTIALS,
      ctx.deployment === 'cloud'
        ? 'Jira rejected the account email and API token. Check that the email is the one of the Atlassian account that created the token, and that the token was copied whole and is not revoked or expired; you can create a new one at https://id.atlassian.com/manage-profile/security/api-tokens.'
        : 'Jira rejected the personal access token. Check that it was copied whole and is not revoked or expired; create a new one in Jira under profile picture > Profile > Personal Access Tokens.',
      { cause, details: { field: ctx.secretField, status } },
    );
  }
  if (status === 403) {
    // Data Center asks for a CAPTCHA after repeated failed log-ins and refuses API calls until then.
    if (/AUTHENTICATION_DENIED/i.test(ctx.headers.get('x-seraph-loginreason') ?? '')) {
      return new AppError(
        ErrorCode.INVALID_CREDENTIALS,
        'Jira locked this account behind a CAPTCHA after failed log-ins. Log in to Jira once in a browser as that account, then try again.',
        { cause, details: { field: ctx.secretField, status } },
      );
    }
    return new AppError(
      ErrorCode.FORBIDDEN,
      `Jira refused the request: the account lacks a permission it needs.${quoted(said)} Ask a Jira administrator to grant it.`,
      { cause, details: { status } },
    );
  }
  if (status === 404) {
    if (!body)
      return notJiraError(
        ctx.host,
        ctx.urlField,
        `answered ${ctx.method} ${ctx.path} with 404 and no Jira error`,
        cause,
      );
    return new AppError(ErrorCode.NOT_FOUND, `Jira did not find what was asked for.${quoted(said)}`, {
      cause,
      details: { status },
    });
  }
  if (status === 429) {
    const wait = retryAfterSeconds(ctx.headers);
    return new AppError(
      ErrorCode.RATE_LIMITED,
      `Jira is rate-limiting this account${wait === undefined ? '' : ` for ${wait} seconds`}. CloudPi tries again later; if it keeps happening, create fewer issues at once.`,
      { cause, details: { status, ...(wait === undefined ? {} : { retryAfterSeconds: wait }) } },
    );
  }
  if (status >= 500) {
    return new AppError(
      ErrorCode.PROVIDER_ERROR,
      `Jira answered with a server error (${status}).${quoted(said)} This is usually temporary; CloudPi tries again.`,
      { cause, details: { status } },
    );
  }
  if (status === 400) {
    const fieldErrors = { ...(body?.errors ?? {}) };
    return new AppError(
      ErrorCode.INVALID_INPUT,
      `Jira rejected the request.${quoted(said) || ' It gave no reason.'} Check the project, issue type and field values in the Jira settings.`,
      { cause, details: { status, fieldErrors } },
    );
  }
  return new AppError(
    ErrorCode.PROVIDER_ERROR,
    `Jira answered ${ctx.method} ${ctx.path} with status ${status}.${quoted(said)}`,
    { cause, details: { status } },
  );
}
