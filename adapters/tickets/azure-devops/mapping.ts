/**
 * Pure translations between CloudPi's tickets and Azure DevOps work items: the JSON Patch document
 * of a creation, the HTML description, the idempotency tag and its WIQL query, priorities, states,
 * required fields and ADO's field errors.
 */
import { AppError, ErrorCode } from '../../../src/errors.js';
import type {
  NormalizedStatus,
  RequiredField,
  Routing,
  Severity,
  TicketInput,
} from '../../../src/tickets/port.js';

/** Created when the routing names no work item type: Task exists in the Basic, Agile, Scrum and CMMI processes. */
export const DEFAULT_WORK_ITEM_TYPE = 'Task';
export const CLOUDPI_TAG = 'cloudpi';
export const TITLE_MAX_LENGTH = 255;

export const FIELD = {
  title: 'System.Title',
  description: 'System.Description',
  tags: 'System.Tags',
  priority: 'Microsoft.VSTS.Common.Priority',
  areaPath: 'System.AreaPath',
  iterationPath: 'System.IterationPath',
  state: 'System.State',
  workItemType: 'System.WorkItemType',
  teamProject: 'System.TeamProject',
  id: 'System.Id',
} as const;

/** Fields the adapter fills itself or Azure DevOps sets on its own: never asked of the admin. */
export const FILLED_FIELDS: ReadonlySet<string> = new Set([
  FIELD.title,
  FIELD.description,
  FIELD.tags,
  FIELD.priority,
  FIELD.areaPath,
  FIELD.iterationPath,
  FIELD.teamProject,
  FIELD.workItemType,
  FIELD.state,
  FIELD.id,
  'System.Reason',
  'System.Rev',
  'System.CreatedBy',
  'System.CreatedDate',
  'System.ChangedBy',
  'System.ChangedDate',
  'System.AuthorizedAs',
  'System.AuthorizedDate',
  'System.RevisedDate',
  'System.Watermark',
  'System.AreaId',
  'System.IterationId',
  'System.NodeName',
  'System.History',
  'System.CommentCount',
  'System.PersonId',
  'Microsoft.VSTS.Common.StateChangeDate',
]);

/** Fields routing.fieldValues may not override: the idempotency tag and what identifies the item. */
const PROTECTED_FIELDS: ReadonlySet<string> = new Set([
  FIELD.title,
  FIELD.description,
  FIELD.tags,
  FIELD.teamProject,
  FIELD.workItemType,
  FIELD.id,
]);

export const DEFAULT_PRIORITY: Readonly<Record<Severity, number>> = {
  critical: 1,
  high: 2,
  medium: 3,
  low: 4,
  info: 4,
};

export interface JsonPatchOperation {
  readonly op: 'add';
  readonly path: string;
  readonly value: unknown;
}

function invalidInput(message: string, fieldErrors: Record<string, string>): AppError {
  return new AppError(ErrorCode.INVALID_INPUT, message, { details: { fieldErrors } });
}

/**
 * The tag that carries an idempotency key. Azure DevOps separates tags with ";" (and refuses ","),
 * so both become "-"; tags are limited to 400 characters and compared case-insensitively.
 */
export function tagFor(idempotencyKey: string): string {
  const tag = idempotencyKey.trim().replace(/[;,]/g, '-').replace(/\s+/g, ' ');
  if (!tag) throw invalidInput('The idempotency key is empty.', { [FIELD.tags]: 'empty key' });
  return tag.slice(0, 400);
}

/** Splits a System.Tags value ("a; b; c") into tags. */
export function splitTags(value: unknown): string[] {
  if (typeof value !== 'string') return [];
  return value
    .split(';')
    .map((t) => t.trim())
    .filter(Boolean);
}

export function hasTag(value: unknown, tag: string): boolean {
  const wanted = tag.toLowerCase();
  return splitTags(value).some((t) => t.toLowerCase() === wanted);
}

/** WIQL string literal: single quotes doubled. */
export function wiqlString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** The query that finds the work item carrying a tag in the routed project (@project = the route's project). */
export function wiqlForTag(tag: string): string {
  return `SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project AND [System.Tags] CONTAINS ${wiqlString(tag)} ORDER BY [System.Id] ASC`;
}

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** Plain text (paragraphs separated by blank lines) to the HTML System.Description holds, plus the link back. */
export function descriptionHtml(description: string, link?: string): string {
  const paragraphs = description
    .replace(/\r\n?/g, '\n')
    .split(/\n[ \t]*\n/)
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => `<p>${escapeHtml(p).replace(/\n/g, '<br>')}</p>`);
  if (link && /^https?:\/\//i.test(link)) {
    paragraphs.push(`<p><a href="${escapeHtml(link)}">View this recommendation in CloudPi</a></p>`);
  }
  return paragraphs.join('');
}

/** One line, at most 255 characters (System.Title's limit). */
export function workItemTitle(title: string): string {
  const line = title.replace(/\s+/g, ' ').trim();
  return line.length <= TITLE_MAX_LENGTH ? line : `${line.slice(0, TITLE_MAX_LENGTH - 1)}…`;
}

/** The severity's Azure DevOps priority (1 highest .. 4): routing.priorityMap first, else the defaults. */
export function priorityFor(severity: Severity, routing: Routing): number {
  const configured = routing.priorityMap?.[severity];
  if (configured === undefined || configured === '') return DEFAULT_PRIORITY[severity];
  const value = Number(configured);
  if (!Number.isInteger(value) || value < 1 || value > 4) {
    throw invalidInput(
      `The priority configured for ${severity} findings is "${configured}", but Azure DevOps priorities are 1, 2, 3 or 4. Fix the priority mapping with configure azure-devops.`,
      { [FIELD.priority]: `"${configured}" is not 1, 2, 3 or 4` },
    );
  }
  return value;
}

/** The JSON Patch document that creates the work item (every operation an "add" of /fields/<refName>). */
export function buildPatchDocument(
  input: TicketInput,
  idempotencyKey: string | undefined,
): JsonPatchOperation[] {
  const routing = input.routing;
  const fields = new Map<string, unknown>();
  fields.set(FIELD.title, workItemTitle(input.title));
  fields.set(FIELD.description, descriptionHtml(input.description, input.link));
  fields.set(
    FIELD.tags,
    idempotencyKey === undefined ? CLOUDPI_TAG : `${CLOUDPI_TAG}; ${tagFor(idempotencyKey)}`,
  );
  fields.set(FIELD.priority, priorityFor(input.severity, routing));
  if (routing.areaPath) fields.set(FIELD.areaPath, routing.areaPath);
  if (routing.iterationPath) fields.set(FIELD.iterationPath, routing.iterationPath);
  for (const [key, value] of Object.entries(routing.fieldValues ?? {})) {
    if (!/^[A-Za-z_][\w.]*$/.test(key)) {
      throw invalidInput(
        `"${key}" is not an Azure DevOps field reference name (like Custom.CostCenter). Fix the field values with configure azure-devops.`,
        { [key]: 'not a field reference name' },
      );
    }
    if (PROTECTED_FIELDS.has(key) || value === undefined) continue;
    fields.set(key, value);
  }
  return [...fields].map(([field, value]) => ({ op: 'add', path: `/fields/${field}`, value }));
}

/** Azure DevOps state categories (WorkItemStateColor.category) to CloudPi's statuses. */
const CATEGORY_STATUS: Readonly<Record<string, NormalizedStatus>> = {
  proposed: 'open',
  inprogress: 'in_progress',
  resolved: 'done',
  completed: 'closed',
  removed: 'closed',
};

/** State names of the Basic, Agile, Scrum and CMMI processes, for when the categories are unknown. */
const STATE_STATUS: Readonly<Record<string, NormalizedStatus>> = {
  new: 'open',
  'to do': 'open',
  proposed: 'open',
  open: 'open',
  approved: 'open',
  design: 'open',
  active: 'in_progress',
  'in progress': 'in_progress',
  committed: 'in_progress',
  doing: 'in_progress',
  resolved: 'done',
  closed: 'closed',
  done: 'closed',
  completed: 'closed',
  removed: 'closed',
};

/**
 * Normalizes a work item state. The state's category (from the type's states) decides when known:
 * Proposed -> open, InProgress -> in_progress, Resolved -> done, Completed and Removed -> closed.
 * Without it, the state name decides (New/To Do/Proposed -> open, Active/In Progress/Committed/Doing
 * -> in_progress, Resolved -> done, Closed/Done/Removed -> closed); an unknown custom state counts
 * as in_progress (neither untouched nor finished).
 */
export function normalizeState(state: string, category?: string): NormalizedStatus {
  const byCategory = category ? CATEGORY_STATUS[category.replace(/\s+/g, '').toLowerCase()] : undefined;
  return byCategory ?? STATE_STATUS[state.trim().toLowerCase()] ?? 'in_progress';
}

export interface TypeFieldWithReferences {
  readonly referenceName?: string;
  readonly name?: string;
  readonly alwaysRequired?: boolean;
  readonly defaultValue?: unknown;
  readonly allowedValues?: readonly unknown[];
}

/** Fields the admin must supply: always required, not filled by the adapter, and without a default. */
export function requiredFieldsFrom(fields: readonly TypeFieldWithReferences[]): RequiredField[] {
  const required: RequiredField[] = [];
  for (const field of fields) {
    const key = field.referenceName;
    if (!key || !field.alwaysRequired || FILLED_FIELDS.has(key)) continue;
    if (field.defaultValue !== undefined && field.defaultValue !== null && field.defaultValue !== '')
      continue;
    const allowed = (field.allowedValues ?? []).filter((v) => v !== null && v !== undefined).map(String);
    required.push({
      key,
      name: field.name ?? key,
      type: allowed.length > 0 ? 'option' : 'string',
      ...(allowed.length > 0 ? { allowedValues: allowed.map((v) => ({ id: v, name: v })) } : {}),
    });
  }
  return required;
}

/** ADO's error body: {"$id","innerException","message","typeName","typeKey","errorCode","eventId", customProperties?}. */
export interface AdoErrorBody {
  readonly message?: string;
  readonly typeKey?: string;
  readonly typeName?: string;
  readonly customProperties?: Readonly<Record<string, unknown>>;
}

export function isAdoErrorBody(value: unknown): value is AdoErrorBody {
  return typeof value === 'object' && value !== null && typeof (value as AdoErrorBody).message === 'string';
}

/**
 * The field errors in a 400 answer: a RuleValidationException names its field in
 * customProperties.FieldReferenceName; TF51535 ("Cannot find field X.") and TF401347 ("Invalid tree
 * name given for work item -1, field 'System.AreaPath'.") name it in the message.
 */
export function fieldErrorsFrom(body: AdoErrorBody | undefined): Record<string, string> {
  if (!body?.message) return {};
  const message = body.message;
  const reference = body.customProperties?.FieldReferenceName;
  if (typeof reference === 'string' && reference) {
    const detail = body.customProperties?.ErrorMessage;
    return { [reference]: typeof detail === 'string' && detail ? detail : message };
  }
  const unknownField = /TF51535: Cannot find field ([^\s]+?)\.?$/m.exec(message);
  if (unknownField?.[1]) return { [unknownField[1]]: message };
  const fieldNamed = /field '([^']+)'/i.exec(message);
  if (fieldNamed?.[1]) return { [fieldNamed[1]]: message };
  return {};
}
