/**
 * CloudPi <-> ServiceNow incident fields: severity to urgency/impact, the incident body, state
 * normalization and browser URLs.
 */
import { AppError, ErrorCode } from '../../../src/errors.js';
import type { NormalizedStatus, Routing, Severity, TicketInput } from '../../../src/tickets/port.js';

/** short_description is a 160-character string in the base incident table. */
export const SHORT_DESCRIPTION_MAX = 160;
export const CORRELATION_DISPLAY = 'CloudPi';

export interface UrgencyImpact {
  readonly urgency: '1' | '2' | '3';
  readonly impact: '1' | '2' | '3';
}

/**
 * Defaults chosen so that ServiceNow's base priority matrix (priority = f(impact, urgency)) gives
 * critical -> 1 Critical, high -> 2 High, medium -> 3 Moderate, low -> 4 Low, info -> 5 Planning.
 */
export const DEFAULT_URGENCY_IMPACT: Readonly<Record<Severity, UrgencyImpact>> = {
  critical: { urgency: '1', impact: '1' },
  high: { urgency: '2', impact: '1' },
  medium: { urgency: '2', impact: '2' },
  low: { urgency: '3', impact: '2' },
  info: { urgency: '3', impact: '3' },
};

/**
 * routing.priorityMap values: "<urgency>/<impact>" ("2/1"; "," or ":" also work) or one digit
 * used for both ("2" -> urgency 2, impact 2). Each is 1 (High), 2 (Medium) or 3 (Low).
 */
export function urgencyImpactFor(severity: Severity, routing: Routing): UrgencyImpact {
  const configured = routing.priorityMap?.[severity];
  if (configured === undefined || configured.trim() === '') return DEFAULT_URGENCY_IMPACT[severity];
  const match = /^\s*([123])\s*(?:[/,:]\s*([123])\s*)?$/.exec(configured);
  if (!match) {
    throw new AppError(
      ErrorCode.INVALID_INPUT,
      `The ServiceNow priority for ${severity} findings is "${configured}", which is not an urgency/impact pair. Use "urgency/impact" with values 1 (High), 2 (Medium) or 3 (Low), for example "2/1".`,
      {
        details: {
          field: 'priorityMap',
          fieldErrors: { [`priorityMap.${severity}`]: 'Use "urgency/impact", e.g. "2/1".' },
        },
      },
    );
  }
  const urgency = match[1] as UrgencyImpact['urgency'];
  const impact = (match[2] ?? match[1]) as UrgencyImpact['impact'];
  return { urgency, impact };
}

/** One line, at most 160 characters, cut at a word boundary when one is near. */
export function shortDescription(title: string): string {
  const line = title.replace(/\s+/g, ' ').trim() || 'CloudPi recommendation';
  if (line.length <= SHORT_DESCRIPTION_MAX) return line;
  const room = SHORT_DESCRIPTION_MAX - 1;
  const cut = line.slice(0, room);
  const space = cut.lastIndexOf(' ');
  return `${(space > room - 30 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

/** The description is a plain-text field: the text as written, then the link back to CloudPi. */
export function incidentDescription(input: TicketInput): string {
  const text = input.description.replace(/\r\n/g, '\n').trim();
  return input.link ? `${text}\n\nOpen in CloudPi: ${input.link}` : text;
}

const SYS_ID = /^[0-9a-f]{32}$/i;

export function isSysId(value: string): boolean {
  return SYS_ID.test(value);
}

/** The POST /api/now/table/incident body. */
export function incidentBody(
  input: TicketInput,
  idempotencyKey: string,
  assignmentGroupSysId: string | undefined,
): Record<string, string> {
  const { urgency, impact } = urgencyImpactFor(input.severity, input.routing);
  const body: Record<string, string> = {
    short_description: shortDescription(input.title),
    description: incidentDescription(input),
    urgency,
    impact,
  };
  if (assignmentGroupSysId) body.assignment_group = assignmentGroupSysId;
  if (input.routing.category) body.category = input.routing.category;
  for (const [key, value] of Object.entries(input.routing.fieldValues ?? {})) {
    if (value === undefined || value === null) continue;
    body[key] =
      typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
  // The idempotency key goes last so that no routing field value can overwrite it.
  body.correlation_id = idempotencyKey;
  body.correlation_display = CORRELATION_DISPLAY;
  return body;
}

/** Incident state values of the base system and what they mean to CloudPi. */
const STATES: Readonly<Record<string, NormalizedStatus>> = {
  '1': 'open', // New
  '2': 'in_progress', // In Progress
  '3': 'in_progress', // On Hold
  '6': 'done', // Resolved
  '7': 'closed', // Closed
  '8': 'closed', // Canceled
};

const STATE_NAMES: Readonly<Record<string, string>> = {
  '1': 'New',
  '2': 'In Progress',
  '3': 'On Hold',
  '6': 'Resolved',
  '7': 'Closed',
  '8': 'Canceled',
};

/** Custom states fall back on the record's active flag. */
export function normalizeState(state: string, active: string | undefined): NormalizedStatus {
  return STATES[state] ?? (active === 'false' ? 'closed' : 'in_progress');
}

export function stateName(state: string, displayValue: string | undefined): string {
  return displayValue?.trim() || STATE_NAMES[state] || `State ${state}`;
}

/** A field read with sysparm_display_value=all: {display_value, value}, or a bare string. */
export function valueAndDisplay(field: unknown): { value: string; display: string | undefined } {
  if (field && typeof field === 'object') {
    const { value, display_value } = field as { value?: unknown; display_value?: unknown };
    return {
      value: value === undefined || value === null ? '' : String(value),
      display: display_value === undefined || display_value === null ? undefined : String(display_value),
    };
  }
  return { value: field === undefined || field === null ? '' : String(field), display: undefined };
}

export function incidentUrl(origin: string, sysId: string): string {
  return `${origin}/nav_to.do?uri=incident.do?sys_id=${sysId}`;
}

/** A value inside an encoded query: "^" separates conditions and is written "^^" inside one. */
export function queryValue(value: string): string {
  return value.replace(/\^/g, '^^');
}

/** Field types as the port describes them, from sys_dictionary internal_type. */
export function fieldType(internalType: string): string {
  switch (internalType) {
    case 'integer':
    case 'decimal':
    case 'float':
    case 'longint':
    case 'currency':
    case 'price':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'reference':
      return 'reference';
    case 'glide_date':
    case 'glide_date_time':
    case 'due_date':
      return 'date';
    case 'choice':
      return 'option';
    case 'glide_list':
      return 'array';
    default:
      return 'string';
  }
}

/** Fields the adapter fills itself, so never asked of the admin. */
export const FILLED_FIELDS = new Set([
  'short_description',
  'description',
  'urgency',
  'impact',
  'priority',
  'assignment_group',
  'category',
  'correlation_id',
  'correlation_display',
  'number',
  'state',
  'incident_state',
  'opened_by',
  'opened_at',
  'active',
]);
