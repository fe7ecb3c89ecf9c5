/**
 * A strict loopback Jira, following Atlassian's published Cloud platform REST API v3
 * (test/fixtures/specs/jira/swagger-v3.subset.json, the operations the adapter uses, cut from
 * swagger-v3.v3.json). Request bodies are validated against the spec's request schemas, and every
 * JSON answer is checked against the spec's response schema (mismatches land in
 * `specViolations`, which the tests expect to stay empty).
 *
 * Like Jira it refuses: missing auth (401 + ErrorCollection; only GET serverInfo is anonymous, as
 * the spec says), wrong auth (401, Atlassian's
 * plain-text body), a POST without a JSON content type (415), fields that are not on the create
 * screen or are unknown, missing required fields, a description that is not a valid Atlassian
 * Document (Cloud) or not a string (Server), labels with spaces, unknown priorities, JQL it cannot
 * parse, and unbounded JQL on the Cloud enhanced search.
 *
 * One project "OPS" (Task 10001 requires "Cost center" customfield_10050; Bug 10002; Sub-task
 * 10003) where the account may create issues, and "DEV" where it may only browse. Statuses: To Do
 * (new), In Progress (indeterminate), Done (done).
 *
 * `{ deployment: 'server' }` turns it into Jira Data Center: REST API v2 under the context path
 * /jira, Bearer personal access tokens, plain-string descriptions, GET /project and POST /search
 * (Data Center has neither /project/search nor /search/jql).
 *
 * Webhooks (addWebhook) work like admin webhooks on either deployment: every status change
 * (setStatus) POSTs a `jira:issue_updated` event with the status changelog, signed with the hook's
 * secret in `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>` when it has one. Links in
 * the event are REST API v2 links on Cloud too, as Jira writes them in webhook bodies.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { setTimeout as sleep } from 'node:timers/promises';
import { PROJECT_ROOT } from '../../../src/paths.js';
import type { ProviderFake } from './provider-fake.js';
import { checkSchema, type Schema, type SchemaDialect } from './schema-check.js';
import { createWebhookSender, hubSignature } from './webhook-delivery.js';

export type JiraFakeDeployment = 'cloud' | 'server';

export interface JiraFakeOptions {
  readonly deployment?: JiraFakeDeployment;
}

export interface JiraFakeRequest {
  method: string;
  path: string;
  at: number;
  headers: IncomingHttpHeaders;
  body?: unknown;
}

export interface JiraFakeIssue {
  readonly id: string;
  readonly key: string;
  readonly project: string;
  readonly issueTypeId: string;
  /** The fields exactly as the client sent them. */
  readonly sent: Record<string, unknown>;
  status: 'open' | 'in_progress' | 'done';
}

export type JiraPermission = 'CREATE_ISSUES' | 'BROWSE_PROJECTS';

export interface JiraFake extends ProviderFake {
  readonly deployment: JiraFakeDeployment;
  readonly requests: JiraFakeRequest[];
  readonly issues: ReadonlyMap<string, JiraFakeIssue>;
  /** Answers of the fake that did not match the published spec (a fake bug): must stay empty. */
  readonly specViolations: string[];
  /** Grants or revokes a project permission of the account. */
  setPermission(project: string, permission: JiraPermission, granted: boolean): void;
  /** Removes a field from a create screen (to test projects without e.g. Priority). */
  removeCreateField(project: string, issueTypeId: string, fieldId: string): void;
  /**
   * For `durationMs` from now, every `every`-th request answers 429 with Retry-After:
   * `retryAfterSeconds`. Each 429 blocks its subject (the CloudPi label a search or create names,
   * else the issue in the path) until the Retry-After has passed; a request for a blocked subject
   * before then is recorded in `retryAfterViolations` (and answered normally).
   */
  rateLimitWindow(durationMs: number, retryAfterSeconds: number, every?: number): void;
  /** Requests that arrived before the Retry-After their subject was given. */
  readonly retryAfterViolations: { subject: string; at: number; allowedAt: number }[];
  /** 429 answers of rateLimitWindow so far. */
  rateLimitedCount(): number;
  /** Until `untilMs` (epoch ms; 0 ends it), every request answers 503 as a Jira that is down. */
  setOutage(untilMs: number): void;
}

const SUBJECT_LABEL = /cloudpi-[0-9a-f-]{36}-[a-z_]+/;

// ---------------------------------------------------------------------------------------------
// The published spec, and a small validator for the OpenAPI schema keywords it uses.

interface Operation {
  requestBody?: { content?: Record<string, { schema?: Schema }> };
  responses?: Record<string, { content?: Record<string, { schema?: Schema }> }>;
}

interface Spec {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

const SPEC_FILE = path.join(PROJECT_ROOT, 'test/fixtures/specs/jira/swagger-v3.subset.json');
let specCache: Spec | undefined;
function spec(): Spec {
  specCache ??= JSON.parse(readFileSync(SPEC_FILE, 'utf8')) as Spec;
  return specCache;
}

const JIRA_DIALECT: SchemaDialect = {
  resolve: (ref) => spec().components.schemas[ref.replace('#/components/schemas/', '')],
  nullable: 'declared',
  untypedObject: 'object',
};

/** Problems of `value` against `schema`, as "path: problem" lines (empty when valid). */
export function validateAgainstSchema(value: unknown, schema: Schema): string[] {
  return checkSchema(value, schema, JIRA_DIALECT);
}

/** The spec operation for a v3 request path (templated segments matched). */
function operationFor(method: string, apiPath: string): Operation | undefined {
  for (const [template, operations] of Object.entries(spec().paths)) {
    const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
    if (pattern.test(apiPath)) return operations[method.toLowerCase()];
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The Jira it pretends to be.

interface FieldMeta {
  fieldId: string;
  key: string;
  name: string;
  required: boolean;
  hasDefaultValue: boolean;
  operations: string[];
  schema: { type: string; items?: string; system?: string; custom?: string; customId?: number };
  allowedValues?: Record<string, unknown>[];
  defaultValue?: unknown;
}

interface IssueType {
  id: string;
  name: string;
  subtask: boolean;
  hierarchyLevel: number;
  fields: FieldMeta[];
}

interface FakeProject {
  id: string;
  key: string;
  name: string;
  issueTypes: IssueType[];
  permissions: Record<JiraPermission, boolean>;
  nextNumber: number;
}

const STATUSES = {
  open: {
    id: '10000',
    name: 'To Do',
    category: { id: 2, key: 'new', colorName: 'blue-gray', name: 'To Do' },
  },
  in_progress: {
    id: '3',
    name: 'In Progress',
    category: { id: 4, key: 'indeterminate', colorName: 'yellow', name: 'In Progress' },
  },
  done: { id: '10001', name: 'Done', category: { id: 3, key: 'done', colorName: 'green', name: 'Done' } },
} as const;

const PRIORITY_NAMES = ['Highest', 'High', 'Medium', 'Low', 'Lowest'];

const ACCOUNT = {
  accountId: '5b10a2844c20165700ede21g',
  displayName: 'CloudPi Bot',
  email: 'cloudpi-bot@example.com',
  serverName: 'cloudpi-bot',
  serverKey: 'JIRAUSER10100',
};

const COST_CENTER = 'customfield_10050';

function jsonHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return {
    'Content-Type': 'application/json;charset=UTF-8',
    'X-AREQUESTID': randomBytes(4).toString('hex'),
    ...extra,
  };
}

function errorCollection(errorMessages: string[], errors: Record<string, string> = {}) {
  return { errorMessages, errors };
}

/** Atlassian Document Format nodes Jira accepts (the subset a ticket description can use). */
const ADF_BLOCKS = new Set([
  'paragraph',
  'heading',
  'bulletList',
  'orderedList',
  'listItem',
  'codeBlock',
  'blockquote',
  'rule',
  'panel',
  'table',
  'tableRow',
  'tableHeader',
  'tableCell',
]);
const ADF_INLINES = new Set(['text', 'hardBreak', 'mention', 'emoji', 'inlineCard', 'date', 'status']);
const ADF_MARKS = new Set(['strong', 'em', 'code', 'link', 'strike', 'underline', 'subsup', 'textColor']);

function isValidAdfNode(node: unknown, depth: number): boolean {
  if (!node || typeof node !== 'object' || depth > 20) return false;
  const n = node as { type?: unknown; text?: unknown; content?: unknown; marks?: unknown };
  if (typeof n.type !== 'string') return false;
  if (n.type === 'text') {
    if (typeof n.text !== 'string' || n.text.length === 0) return false;
    if (n.marks === undefined) return true;
    return (
      Array.isArray(n.marks) &&
      n.marks.every((mark: { type?: unknown; attrs?: { href?: unknown } }) => {
        if (!mark || typeof mark.type !== 'string' || !ADF_MARKS.has(mark.type)) return false;
        return mark.type !== 'link' || typeof mark.attrs?.href === 'string';
      })
    );
  }
  if (!ADF_BLOCKS.has(n.type) && !ADF_INLINES.has(n.type)) return false;
  if (n.content === undefined) return true;
  return Array.isArray(n.content) && n.content.every((child) => isValidAdfNode(child, depth + 1));
}

export function isValidAdf(doc: unknown): boolean {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return false;
  const d = doc as { type?: unknown; version?: unknown; content?: unknown };
  return (
    d.type === 'doc' &&
    d.version === 1 &&
    Array.isArray(d.content) &&
    d.content.every((node) => isValidAdfNode(node, 0) && ADF_BLOCKS.has((node as { type: string }).type))
  );
}

// JQL: clauses `field = value` or `field in (v1, v2)` joined by AND, then an optional ORDER BY.
interface JqlClause {
  field: string;
  values: string[];
}

const JQL_FIELDS = new Set(['project', 'labels', 'key', 'issuetype', 'status']);

function parseJql(jql: string): JqlClause[] {
  const tokens: string[] = [];
  const re = /\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|(\(|\)|,|!=|=)|([^\s"'(),=!]+))/gy;
  const text = jql.replace(/\s+order\s+by\s+.*$/is, '').trim();
  let match: RegExpExecArray | null;
  let consumed = 0;
  // biome-ignore lint/suspicious/noAssignInExpressions: tokenizer loop
  while ((match = re.exec(text)) !== null) {
    consumed = re.lastIndex;
    if (match[1] !== undefined || match[2] !== undefined) {
      tokens.push(`"${(match[1] ?? match[2] ?? '').replace(/\\(.)/g, '$1')}`);
    } else tokens.push(match[3] ?? match[4] ?? '');
    if (re.lastIndex === text.length) break;
  }
  if (text.slice(consumed).trim())
    throw new Error(`Error in the JQL Query: the character '${text[consumed]}' is a reserved JQL character.`);
  const clauses: JqlClause[] = [];
  let i = 0;
  const value = (token: string | undefined): string => {
    if (token === undefined || token === '' || ['(', ')', ',', '=', '!='].includes(token))
      throw new Error(
        `Error in the JQL Query: Expecting either a value, list or function but got '${token ?? 'EOF'}'.`,
      );
    return token.startsWith('"') ? token.slice(1) : token;
  };
  while (i < tokens.length) {
    const field = tokens[i++]!.toLowerCase();
    if (!JQL_FIELDS.has(field))
      throw new Error(`Field '${field}' does not exist or you do not have permission to view it.`);
    const operator = tokens[i++]?.toLowerCase();
    if (operator === '=') clauses.push({ field, values: [value(tokens[i++])] });
    else if (operator === 'in') {
      if (tokens[i++] !== '(') throw new Error("Error in the JQL Query: Expecting '(' after 'in'.");
      const values: string[] = [];
      for (;;) {
        values.push(value(tokens[i++]));
        const next = tokens[i++];
        if (next === ')') break;
        if (next !== ',') throw new Error("Error in the JQL Query: Expecting ',' or ')'.");
      }
      clauses.push({ field, values });
    } else throw new Error(`Error in the JQL Query: Expecting operator but got '${operator ?? 'EOF'}'.`);
    if (i < tokens.length && tokens[i++]?.toLowerCase() !== 'and')
      throw new Error(`Error in the JQL Query: Expecting 'AND' but got '${tokens[i - 1]}'.`);
  }
  return clauses;
}

interface Answer {
  status: number;
  body?: unknown;
  text?: string;
  headers?: Record<string, string>;
  /** Drop the connection instead of answering. */
  drop?: boolean;
}

function taskFields(withCostCenter: boolean): FieldMeta[] {
  const system = (
    id: string,
    name: string,
    type: string,
    required: boolean,
    extra: Partial<FieldMeta> = {},
  ) => ({
    fieldId: id,
    key: id,
    name,
    required,
    hasDefaultValue: false,
    operations: ['set'],
    schema: { type, system: id },
    ...extra,
  });
  const fields: FieldMeta[] = [
    system('summary', 'Summary', 'string', true),
    system('issuetype', 'Issue Type', 'issuetype', true),
    system('project', 'Project', 'project', true),
    system('description', 'Description', 'string', false),
    {
      ...system('labels', 'Labels', 'array', false, { operations: ['add', 'set', 'remove'] }),
      schema: { type: 'array', items: 'string', system: 'labels' },
    },
    system('priority', 'Priority', 'priority', false, {
      hasDefaultValue: true,
      allowedValues: PRIORITY_NAMES.map((name, i) => ({
        self: `/priority/${i + 1}`,
        iconUrl: `/images/icons/priorities/${name.toLowerCase()}.svg`,
        name,
        id: String(i + 1),
      })),
      defaultValue: { self: '/priority/3', name: 'Medium', id: '3' },
    }),
    system('reporter', 'Reporter', 'user', true, { hasDefaultValue: true }),
  ];
  if (withCostCenter) {
    fields.push({
      fieldId: COST_CENTER,
      key: COST_CENTER,
      name: 'Cost center',
      required: true,
      hasDefaultValue: false,
      operations: ['set'],
      schema: {
        type: 'string',
        custom: 'com.atlassian.jira.plugin.system.customfieldtypes:textfield',
        customId: 10050,
      },
    });
  }
  return fields;
}

export async function startJiraFake(options: JiraFakeOptions = {}): Promise<JiraFake> {
  const deployment = options.deployment ?? 'cloud';
  const cloud = deployment === 'cloud';
  const contextPath = cloud ? '' : '/jira';
  const api = cloud ? '/rest/api/3' : '/rest/api/2';
  const apiToken = `ATATT3xFfGF0${randomBytes(12).toString('hex')}`;
  const pat = `NjM2${randomBytes(16).toString('base64url')}`;
  const requests: JiraFakeRequest[] = [];
  const issues = new Map<string, JiraFakeIssue>();
  const specViolations: string[] = [];
  let site = '';
  let delayMs = 0;
  let nextIssueId = 10100;
  let loseNextCreate = false;
  let rateLimit = { count: 0, seconds: 0, path: undefined as RegExp | undefined };
  let failure = { count: 0, status: 500, path: undefined as RegExp | undefined };
  let window = { until: 0, seconds: 0, every: 2, seen: 0, answered: 0 };
  let outageUntil = 0;
  const blockedUntil = new Map<string, number>();
  const retryAfterViolations: { subject: string; at: number; allowedAt: number }[] = [];
  const webhooks = createWebhookSender();
  let nextChangelogId = 10_500;

  const projects = new Map<string, FakeProject>();
  const makeProject = (
    id: string,
    key: string,
    name: string,
    costCenter: boolean,
    create: boolean,
  ): FakeProject => ({
    id,
    key,
    name,
    issueTypes: [
      { id: '10001', name: 'Task', subtask: false, hierarchyLevel: 0, fields: taskFields(costCenter) },
      { id: '10002', name: 'Bug', subtask: false, hierarchyLevel: 0, fields: taskFields(false) },
      { id: '10003', name: 'Sub-task', subtask: true, hierarchyLevel: -1, fields: taskFields(false) },
    ],
    permissions: { BROWSE_PROJECTS: true, CREATE_ISSUES: create },
    nextNumber: 1,
  });
  projects.set('OPS', makeProject('10000', 'OPS', 'Operations', true, true));
  projects.set('DEV', makeProject('10010', 'DEV', 'Development', false, false));

  const findProject = (idOrKey: string): FakeProject | undefined =>
    projects.get(idOrKey.toUpperCase()) ?? [...projects.values()].find((p) => p.id === idOrKey);
  const self = (suffix: string) => `${site}${api}${suffix}`;
  const projectJson = (p: FakeProject) => ({
    self: self(`/project/${p.id}`),
    id: p.id,
    key: p.key,
    name: p.name,
    projectTypeKey: 'software',
    simplified: false,
    style: 'classic',
    isPrivate: false,
    avatarUrls: {
      '16x16': `${site}/secure/projectavatar?size=xsmall&pid=${p.id}`,
      '24x24': `${site}/secure/projectavatar?size=small&pid=${p.id}`,
      '32x32': `${site}/secure/projectavatar?size=medium&pid=${p.id}`,
      '48x48': `${site}/secure/projectavatar?pid=${p.id}`,
    },
  });
  const issueTypeJson = (t: IssueType) => ({
    self: self(`/issuetype/${t.id}`),
    id: t.id,
    description: `A ${t.name.toLowerCase()}.`,
    iconUrl: `${site}/images/icons/issuetypes/${t.name.toLowerCase()}.svg`,
    name: t.name,
    subtask: t.subtask,
    hierarchyLevel: t.hierarchyLevel,
  });
  /** Links in the field metadata are stored relative; Jira answers with absolute ones. */
  const absolute = (value: Record<string, unknown>) => ({
    ...value,
    ...(typeof value.self === 'string' ? { self: self(value.self) } : {}),
    ...(typeof value.iconUrl === 'string' ? { iconUrl: `${site}${value.iconUrl}` } : {}),
  });
  const fieldJson = (f: FieldMeta) => ({
    ...f,
    ...(f.allowedValues ? { allowedValues: f.allowedValues.map(absolute) } : {}),
    ...(f.defaultValue && typeof f.defaultValue === 'object'
      ? { defaultValue: absolute(f.defaultValue as Record<string, unknown>) }
      : {}),
  });
  const statusJson = (status: JiraFakeIssue['status']) => {
    const s = STATUSES[status];
    return {
      self: self(`/status/${s.id}`),
      description: '',
      iconUrl: `${site}/images/icons/statuses/generic.png`,
      name: s.name,
      id: s.id,
      statusCategory: { self: self(`/statuscategory/${s.category.id}`), ...s.category },
    };
  };
  const issueFieldsJson = (issue: JiraFakeIssue): Record<string, unknown> => {
    const project = findProject(issue.project)!;
    const type = project.issueTypes.find((t) => t.id === issue.issueTypeId)!;
    const priority = issue.sent.priority as { id?: string; name?: string } | undefined;
    const priorityName =
      PRIORITY_NAMES.find((n, i) => n === priority?.name || String(i + 1) === priority?.id) ?? 'Medium';
    return {
      ...issue.sent,
      project: projectJson(project),
      issuetype: issueTypeJson(type),
      priority: { self: self(`/priority/${PRIORITY_NAMES.indexOf(priorityName) + 1}`), name: priorityName },
      status: statusJson(issue.status),
    };
  };
  const issueJson = (issue: JiraFakeIssue, fields: string[] | undefined) => {
    const all = issueFieldsJson(issue);
    const wanted = !fields?.length || fields.some((f) => f === '*all' || f === '*navigable');
    const selected = wanted
      ? all
      : Object.fromEntries(Object.entries(all).filter(([k]) => fields!.includes(k)));
    return {
      expand: 'renderedFields,names,schema,operations',
      id: issue.id,
      self: self(`/issue/${issue.id}`),
      key: issue.key,
      fields: selected,
    };
  };
  const findIssue = (idOrKey: string) =>
    issues.get(idOrKey.toUpperCase()) ?? [...issues.values()].find((i) => i.id === idOrKey);

  // ---- webhooks: the jira:issue_updated event of a status change

  const webhookEvent = (issue: JiraFakeIssue, from: JiraFakeIssue['status']) => {
    // Webhook bodies carry v2 links on Cloud as well.
    const v2 = (suffix: string) => `${site}/rest/api/2${suffix}`;
    const project = findProject(issue.project)!;
    const type = project.issueTypes.find((t) => t.id === issue.issueTypeId)!;
    const status = STATUSES[issue.status];
    return {
      timestamp: Date.now(),
      webhookEvent: 'jira:issue_updated',
      issue_event_type_name: 'issue_generic',
      user: cloud
        ? {
            self: v2(`/user?accountId=${ACCOUNT.accountId}`),
            accountId: ACCOUNT.accountId,
            displayName: ACCOUNT.displayName,
            active: true,
            timeZone: 'Europe/Berlin',
            accountType: 'atlassian',
          }
        : {
            self: v2(`/user?username=${ACCOUNT.serverName}`),
            name: ACCOUNT.serverName,
            key: ACCOUNT.serverKey,
            emailAddress: ACCOUNT.email,
            displayName: ACCOUNT.displayName,
            active: true,
            timeZone: 'Europe/Berlin',
          },
      issue: {
        id: issue.id,
        self: v2(`/issue/${issue.id}`),
        key: issue.key,
        fields: {
          summary: issue.sent.summary,
          // Jira always lists labels, empty when the issue has none.
          labels: (issue.sent.labels as string[] | undefined) ?? [],
          issuetype: {
            self: v2(`/issuetype/${type.id}`),
            id: type.id,
            name: type.name,
            subtask: type.subtask,
          },
          project: {
            self: v2(`/project/${project.id}`),
            id: project.id,
            key: project.key,
            name: project.name,
          },
          status: {
            self: v2(`/status/${status.id}`),
            description: '',
            iconUrl: `${site}/images/icons/statuses/generic.png`,
            name: status.name,
            id: status.id,
            statusCategory: { self: v2(`/statuscategory/${status.category.id}`), ...status.category },
          },
        },
      },
      changelog: {
        id: String(nextChangelogId++),
        items: [
          {
            field: 'status',
            fieldtype: 'jira',
            fieldId: 'status',
            from: STATUSES[from].id,
            fromString: STATUSES[from].name,
            to: status.id,
            toString: status.name,
          },
        ],
      },
    };
  };

  // ---- authentication, exactly as strict as Jira

  const authenticate = (headers: IncomingHttpHeaders): Answer | undefined => {
    const header = headers.authorization;
    if (!header) {
      return {
        status: 401,
        body: errorCollection([
          'You are not authenticated. Authentication required to perform this operation.',
        ]),
      };
    }
    const expected = cloud
      ? `Basic ${Buffer.from(`${ACCOUNT.email}:${apiToken}`).toString('base64')}`
      : `Bearer ${pat}`;
    if (header === expected) return undefined;
    return cloud
      ? {
          status: 401,
          text: 'Client must be authenticated to access this resource.',
          headers: {
            'Content-Type': 'text/plain;charset=UTF-8',
            'WWW-Authenticate': 'Basic realm="protected-area"',
            'X-Seraph-LoginReason': 'AUTHENTICATED_FAILED',
          },
        }
      : {
          status: 401,
          body: errorCollection([
            'You are not authenticated. Authentication required to perform this operation.',
          ]),
          headers: {
            'X-Seraph-LoginReason': 'AUTHENTICATED_FAILED',
            'WWW-Authenticate': 'OAuth realm="Jira"',
          },
        };
  };

  // ---- issue creation, validated against the project's create metadata

  const createIssue = (body: unknown): Answer => {
    const fields = (body as { fields?: Record<string, unknown> }).fields;
    if (!fields || typeof fields !== 'object' || Array.isArray(fields)) {
      return {
        status: 400,
        body: errorCollection([], {
          project: 'Specify a valid project ID or key',
          issuetype: 'Specify an issue type',
        }),
      };
    }
    const ref = (value: unknown, by: 'key' | 'name') => {
      const v = value as { id?: unknown; key?: unknown; name?: unknown } | undefined;
      return v && typeof v === 'object' ? String(v.id ?? v[by] ?? '') : '';
    };
    const project = findProject(ref(fields.project, 'key'));
    if (!project)
      return { status: 400, body: errorCollection([], { project: 'Specify a valid project ID or key' }) };
    if (!project.permissions.CREATE_ISSUES) {
      return {
        status: 400,
        body: errorCollection([], {
          project: 'You do not have permission to create issues in this project.',
        }),
      };
    }
    const typeRef = ref(fields.issuetype, 'name');
    if (!typeRef) return { status: 400, body: errorCollection([], { issuetype: 'Specify an issue type' }) };
    const type = project.issueTypes.find((t) => t.id === typeRef || t.name === typeRef);
    if (!type)
      return { status: 400, body: errorCollection([], { issuetype: 'The issue type selected is invalid.' }) };
    const errors: Record<string, string> = {};
    if (type.subtask && !fields.parent) {
      errors.issuetype = 'Issue type is a sub-task but parent issue key or id not specified.';
    }
    const screen = new Map(type.fields.map((f) => [f.fieldId, f]));
    for (const [key, value] of Object.entries(fields)) {
      const meta = screen.get(key);
      if (!meta) {
        errors[key] = `Field '${key}' cannot be set. It is not on the appropriate screen, or unknown.`;
        continue;
      }
      if (key === 'summary') {
        if (typeof value !== 'string') errors.summary = 'Operation value must be a string';
        else if (/[\r\n]/.test(value))
          errors.summary = 'The summary is invalid because it contains newline characters.';
        else if (value.length > 255) errors.summary = 'Summary must be less than 255 characters.';
        else if (!value.trim()) errors.summary = 'You must specify a summary of the issue.';
      } else if (key === 'description') {
        if (cloud && !isValidAdf(value))
          errors.description =
            'Operation value must be an Atlassian Document (see the Atlassian Document Format)';
        if (!cloud && typeof value !== 'string') errors.description = 'Operation value must be a string';
      } else if (key === 'labels') {
        if (!Array.isArray(value) || value.some((l) => typeof l !== 'string')) {
          errors.labels = 'Operation value must be an array of strings';
        } else {
          const bad = value.find((l: string) => /\s/.test(l) || l.length > 255 || !l);
          if (bad !== undefined) errors.labels = `The label '${bad}' contains spaces which is invalid.`;
        }
      } else if (key === 'priority') {
        const p = value as { id?: unknown; name?: unknown } | undefined;
        const ok = meta.allowedValues?.some((v) =>
          p?.id !== undefined ? v.id === p.id : v.name === p?.name,
        );
        if (!ok)
          errors.priority =
            p?.id !== undefined
              ? `Priority with id '${String(p.id)}' does not exist`
              : `Priority name '${String(p?.name)}' is not valid`;
      } else if (meta.schema.type === 'string' && typeof value !== 'string') {
        errors[key] = 'Operation value must be a string';
      }
    }
    for (const meta of type.fields) {
      const value = fields[meta.fieldId];
      if (meta.required && !meta.hasDefaultValue && (value === undefined || value === null || value === '')) {
        errors[meta.fieldId] ??=
          meta.fieldId === 'summary'
            ? 'You must specify a summary of the issue.'
            : `${meta.name} is required.`;
      }
    }
    if (Object.keys(errors).length) return { status: 400, body: errorCollection([], errors) };
    const id = String(nextIssueId++);
    const key = `${project.key}-${project.nextNumber++}`;
    issues.set(key, { id, key, project: project.key, issueTypeId: type.id, sent: fields, status: 'open' });
    const answer: Answer = { status: 201, body: { id, key, self: self(`/issue/${id}`) } };
    if (loseNextCreate) {
      loseNextCreate = false;
      return { ...answer, drop: true };
    }
    return answer;
  };

  const search = (jql: unknown, fields: string[] | undefined, maxResults: number): Answer => {
    if (typeof jql !== 'string' || !jql.trim()) {
      return cloud
        ? {
            status: 400,
            body: errorCollection([
              'Unbounded JQL queries are not allowed here. Please add a search restriction to your query.',
            ]),
          }
        : { status: 200, body: { expand: 'schema,names', startAt: 0, maxResults, total: 0, issues: [] } };
    }
    let clauses: JqlClause[];
    try {
      clauses = parseJql(jql);
    } catch (error) {
      return { status: 400, body: errorCollection([(error as Error).message]) };
    }
    for (const clause of clauses.filter((c) => c.field === 'project')) {
      const unknown = clause.values.find((v) => !findProject(v));
      if (unknown)
        return {
          status: 400,
          body: errorCollection([`The value '${unknown}' does not exist for the field 'project'.`]),
        };
    }
    const matches = [...issues.values()].filter((issue) =>
      clauses.every((clause) => {
        const project = findProject(issue.project)!;
        switch (clause.field) {
          case 'project':
            return clause.values.some((v) => findProject(v) === project);
          case 'labels':
            return clause.values.some((v) => ((issue.sent.labels as string[] | undefined) ?? []).includes(v));
          case 'key':
            return clause.values.some((v) => v.toUpperCase() === issue.key || v === issue.id);
          case 'issuetype': {
            const type = project.issueTypes.find((t) => t.id === issue.issueTypeId)!;
            return clause.values.some((v) => v === type.id || v.toLowerCase() === type.name.toLowerCase());
          }
          case 'status':
            return clause.values.some((v) => v.toLowerCase() === STATUSES[issue.status].name.toLowerCase());
          default:
            return false;
        }
      }),
    );
    const page = matches.slice(0, Math.max(0, maxResults));
    const idsOnly = cloud && (!fields?.length || (fields.length === 1 && fields[0] === 'id'));
    const found = page.map((issue) => (idsOnly ? { id: issue.id } : issueJson(issue, fields)));
    return cloud
      ? { status: 200, body: { issues: found, isLast: page.length === matches.length } }
      : {
          status: 200,
          body: { expand: 'schema,names', startAt: 0, maxResults, total: matches.length, issues: found },
        };
  };

  // ---- routing

  const route = (method: string, apiPath: string, query: URLSearchParams, body: unknown): Answer => {
    const notFound = (message: string): Answer => ({ status: 404, body: errorCollection([message]) });
    const list = (name: string) =>
      query
        .getAll(name)
        .flatMap((v) => v.split(','))
        .map((v) => v.trim())
        .filter(Boolean);
    const startAt = Number(query.get('startAt') ?? 0);
    const maxResults = Math.min(Number(query.get('maxResults') ?? 50), 50);
    let m: RegExpExecArray | null;

    if (method === 'GET' && apiPath === '/serverInfo') {
      return {
        status: 200,
        body: {
          baseUrl: site,
          version: cloud ? '1001.0.0-SNAPSHOT' : '9.12.2',
          versionNumbers: cloud ? [1001, 0, 0] : [9, 12, 2],
          deploymentType: cloud ? 'Cloud' : 'Server',
          buildNumber: 100_281,
          buildDate: '2025-12-01T00:00:00.000+0000',
          serverTime: new Date().toISOString().replace('Z', '+0000'),
          scmInfo: '57a0ca5b4a0bb0ac5f3fee4764acb1c14e4d7e71',
          serverTitle: 'Jira',
        },
      };
    }
    if (method === 'GET' && apiPath === '/myself') {
      return {
        status: 200,
        body: cloud
          ? {
              self: self(`/user?accountId=${ACCOUNT.accountId}`),
              accountId: ACCOUNT.accountId,
              accountType: 'atlassian',
              emailAddress: ACCOUNT.email,
              displayName: ACCOUNT.displayName,
              active: true,
              timeZone: 'Europe/Berlin',
              locale: 'en_US',
            }
          : {
              self: self(`/user?username=${ACCOUNT.serverName}`),
              key: ACCOUNT.serverKey,
              name: ACCOUNT.serverName,
              emailAddress: ACCOUNT.email,
              displayName: ACCOUNT.displayName,
              active: true,
              timeZone: 'Europe/Berlin',
              locale: 'en_US',
            },
      };
    }
    if (method === 'GET' && apiPath === '/mypermissions') {
      const keys = list('permissions');
      if (!keys.length)
        return { status: 400, body: errorCollection(["The 'permissions' query parameter is required."]) };
      const known: Record<string, [string, string]> = {
        CREATE_ISSUES: ['11', 'Create Issues'],
        BROWSE_PROJECTS: ['10', 'Browse Projects'],
      };
      const unknown = keys.find((k) => !known[k]);
      if (unknown)
        return { status: 400, body: errorCollection([`The permission '${unknown}' does not exist.`]) };
      const projectRef = query.get('projectId') ?? query.get('projectKey');
      const project = projectRef ? findProject(projectRef) : undefined;
      if (projectRef && !project) return notFound(`No project could be found with key '${projectRef}'.`);
      const permissions = Object.fromEntries(
        keys.map((k) => [
          k,
          {
            id: known[k]![0],
            key: k,
            name: known[k]![1],
            type: 'PROJECT',
            description: `Ability to ${known[k]![1].toLowerCase()}.`,
            havePermission: project ? project.permissions[k as JiraPermission] : true,
          },
        ]),
      );
      return { status: 200, body: { permissions } };
    }
    if (cloud && method === 'GET' && apiPath === '/project/search') {
      const all = [...projects.values()].sort((a, b) => a.key.localeCompare(b.key));
      const values = all.slice(startAt, startAt + maxResults);
      return {
        status: 200,
        body: {
          self: self(`/project/search?startAt=${startAt}&maxResults=${maxResults}`),
          maxResults,
          startAt,
          total: all.length,
          isLast: startAt + values.length >= all.length,
          values: values.map(projectJson),
        },
      };
    }
    if (!cloud && method === 'GET' && apiPath === '/project') {
      return { status: 200, body: [...projects.values()].map(projectJson) };
    }
    // biome-ignore lint/suspicious/noAssignInExpressions: route matching
    if (method === 'GET' && (m = /^\/issue\/createmeta\/([^/]+)\/issuetypes(?:\/([^/]+))?$/.exec(apiPath))) {
      const projectRef = decodeURIComponent(m[1]!);
      const project = findProject(projectRef);
      if (!project) return notFound(`No project could be found with key '${projectRef}'.`);
      if (m[2] === undefined) {
        const values = project.issueTypes.slice(startAt, startAt + maxResults).map(issueTypeJson);
        const total = project.issueTypes.length;
        return {
          status: 200,
          body: cloud
            ? { issueTypes: values, maxResults, startAt, total }
            : { maxResults, startAt, total, isLast: startAt + values.length >= total, values },
        };
      }
      const typeId = decodeURIComponent(m[2]);
      const type = project.issueTypes.find((t) => t.id === typeId);
      if (!type)
        return { status: 400, body: errorCollection([`The issue type with id '${typeId}' does not exist.`]) };
      const values = type.fields.slice(startAt, startAt + maxResults).map(fieldJson);
      const total = type.fields.length;
      return {
        status: 200,
        body: cloud
          ? { fields: values, maxResults, startAt, total }
          : { maxResults, startAt, total, isLast: startAt + values.length >= total, values },
      };
    }
    if (cloud && apiPath === '/search/jql' && (method === 'GET' || method === 'POST')) {
      const b = (body ?? {}) as { jql?: unknown; fields?: string[]; maxResults?: number };
      const fields = method === 'POST' ? b.fields : list('fields');
      const max = method === 'POST' ? (b.maxResults ?? 50) : Number(query.get('maxResults') ?? 50);
      return search(method === 'POST' ? b.jql : query.get('jql'), fields, max);
    }
    if (!cloud && apiPath === '/search' && (method === 'GET' || method === 'POST')) {
      const b = (body ?? {}) as { jql?: unknown; fields?: string[]; maxResults?: number };
      const fields = method === 'POST' ? b.fields : list('fields');
      const max = method === 'POST' ? (b.maxResults ?? 50) : Number(query.get('maxResults') ?? 50);
      return search(method === 'POST' ? b.jql : query.get('jql'), fields, max);
    }
    if (method === 'POST' && apiPath === '/issue') return createIssue(body);
    // biome-ignore lint/suspicious/noAssignInExpressions: route matching
    if (method === 'GET' && (m = /^\/issue\/([^/]+)$/.exec(apiPath))) {
      const issue = findIssue(decodeURIComponent(m[1]!));
      if (!issue) return notFound('Issue does not exist or you do not have permission to see it.');
      return { status: 200, body: issueJson(issue, list('fields')) };
    }
    return {
      status: 404,
      text: '<!DOCTYPE html><html><head><title>Oops, you&#39;ve found a dead link. - Jira</title></head><body></body></html>',
      headers: { 'Content-Type': 'text/html;charset=UTF-8' },
    };
  };

  const handle = async (req: IncomingMessage): Promise<Answer> => {
    const at = Date.now();
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://fake');
    const raw = await text(req);
    const entry: JiraFakeRequest = { method, path: req.url ?? '/', at, headers: req.headers };
    requests.push(entry);
    if (delayMs > 0) await sleep(delayMs);
    if (at < outageUntil) {
      return {
        status: 503,
        text: '<html><body>Service Unavailable</body></html>',
        headers: { 'Content-Type': 'text/html' },
      };
    }
    const subject =
      SUBJECT_LABEL.exec(decodeURIComponent(url.search))?.[0] ??
      SUBJECT_LABEL.exec(raw)?.[0] ??
      /\/issue\/([A-Z]+-\d+)/.exec(url.pathname)?.[1];
    if (subject) {
      const allowedAt = blockedUntil.get(subject);
      if (allowedAt !== undefined && at < allowedAt) retryAfterViolations.push({ subject, at, allowedAt });
    }
    if (at < window.until && ++window.seen % window.every === 0) {
      window.answered++;
      if (subject) blockedUntil.set(subject, Date.now() + window.seconds * 1000);
      return {
        status: 429,
        body: errorCollection(['Rate limit exceeded.']),
        headers: { 'Retry-After': String(window.seconds), 'X-RateLimit-Reason': 'jira-quota-tenant-based' },
      };
    }
    if (rateLimit.count > 0 && (!rateLimit.path || rateLimit.path.test(url.pathname))) {
      rateLimit.count--;
      return {
        status: 429,
        body: errorCollection(['Rate limit exceeded.']),
        headers: { 'Retry-After': String(rateLimit.seconds), 'X-RateLimit-Reason': 'jira-burst-based' },
      };
    }
    if (failure.count > 0 && (!failure.path || failure.path.test(url.pathname))) {
      failure.count--;
      return { status: failure.status, body: errorCollection(['Internal server error']) };
    }
    if (!url.pathname.startsWith(`${contextPath}/rest/`)) {
      return {
        status: 404,
        text: '<html><body>Not Jira</body></html>',
        headers: { 'Content-Type': 'text/html' },
      };
    }
    const restPath = url.pathname.slice(contextPath.length);
    // serverInfo "can be accessed anonymously" (spec), at v2 too on Cloud; wrong credentials still fail.
    const serverInfo =
      method === 'GET' &&
      (restPath === `${api}/serverInfo` || (cloud && restPath === '/rest/api/2/serverInfo'));
    if (!(serverInfo && !req.headers.authorization)) {
      const unauthenticated = authenticate(req.headers);
      if (unauthenticated) return unauthenticated;
    }
    if (serverInfo) return route(method, '/serverInfo', url.searchParams, undefined);
    if (!restPath.startsWith(`${api}/`))
      return route(method, '/unknown-api-version', url.searchParams, undefined);
    const apiPath = restPath.slice(api.length);
    let body: unknown;
    if (method === 'POST' || method === 'PUT') {
      if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) return { status: 415, text: '' };
      try {
        body = JSON.parse(raw);
      } catch (error) {
        return { status: 400, body: errorCollection([`Unexpected character: ${(error as Error).message}`]) };
      }
      entry.body = body;
      const schema = operationFor(method, `/rest/api/3${apiPath}`)?.requestBody?.content?.['application/json']
        ?.schema;
      const problems = schema ? validateAgainstSchema(body, schema) : [];
      if (problems.length) {
        return {
          status: 400,
          body: errorCollection([`Request body does not match the API: ${problems.join('; ')}`]),
        };
      }
    }
    const answer = route(method, apiPath, url.searchParams, body);
    // Hold the fake to the spec: every JSON answer of a documented Cloud operation must match it.
    if (cloud && answer.body !== undefined) {
      const operation = operationFor(method, `/rest/api/3${apiPath}`);
      const schema = operation?.responses?.[String(answer.status)]?.content?.['application/json']?.schema;
      if (schema) {
        for (const problem of validateAgainstSchema(answer.body, schema))
          specViolations.push(`${method} ${apiPath} ${answer.status} ${problem}`);
      }
    }
    return answer;
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    res.on('error', () => {});
    handle(req).then(
      (answer) => {
        if (answer.drop) {
          req.socket.destroy();
          return;
        }
        if (res.destroyed) return;
        const text = answer.body !== undefined ? JSON.stringify(answer.body) : (answer.text ?? '');
        res.writeHead(answer.status, {
          ...(answer.body !== undefined ? jsonHeaders() : {}),
          ...answer.headers,
        });
        res.end(text);
      },
      (error: unknown) => {
        if (res.destroyed) return;
        res.writeHead(500, jsonHeaders());
        res.end(JSON.stringify(errorCollection([`fake failure: ${String(error)}`])));
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  site = `http://127.0.0.1:${port}${contextPath}`;

  const validValues: Record<string, string> = cloud
    ? { deployment: 'cloud', siteUrl: site, email: ACCOUNT.email, apiToken }
    : { deployment: 'server', siteUrl: site, personalAccessToken: pat };
  const wrongSecretValues: Record<string, string> = cloud
    ? { ...validValues, apiToken: `ATATT3xFfGF0${randomBytes(12).toString('hex')}` }
    : { ...validValues, personalAccessToken: `NjM2${randomBytes(16).toString('base64url')}` };

  return {
    deployment,
    url: site,
    validValues,
    wrongSecretValues,
    routing: {
      project: 'OPS',
      // By name on Cloud, by id on Server: the adapter takes either.
      ticketType: cloud ? 'Task' : '10001',
      fieldValues: { [COST_CENTER]: 'FinOps-42' },
    },
    requests,
    issues,
    specViolations,
    ticketCount: () => issues.size,
    rateLimitNext(count, retryAfterSeconds, pathPattern) {
      rateLimit = { count, seconds: retryAfterSeconds, path: pathPattern };
    },
    failNext(count, status, pathPattern) {
      failure = { count, status, path: pathPattern };
    },
    rateLimitWindow(durationMs, retryAfterSeconds, every = 2) {
      window = { until: Date.now() + durationMs, seconds: retryAfterSeconds, every, seen: 0, answered: 0 };
    },
    retryAfterViolations,
    rateLimitedCount: () => window.answered,
    setOutage(untilMs) {
      outageUntil = untilMs;
    },
    loseNextCreateResponse() {
      loseNextCreate = true;
    },
    setDelay(ms) {
      delayMs = ms;
    },
    setStatus(key, status) {
      const issue = issues.get(key);
      if (!issue) throw new Error(`the Jira fake has no issue ${key}`);
      // Setting the status it already has is no transition: no changelog, no webhook.
      if (issue.status === status) return;
      const from = issue.status;
      issue.status = status;
      // One body for every hook (built now, as of this change); each hook signs it with its own secret.
      const body = JSON.stringify(webhookEvent(issue, from));
      webhooks.send(({ hook }) => ({
        body,
        headers: {
          'Content-Type': 'application/json; charset=UTF-8',
          'User-Agent': 'Atlassian Webhook HTTP Client',
          'X-Atlassian-Webhook-Identifier': randomUUID(),
          ...(cloud ? { 'X-Atlassian-Webhook-Flow': 'Primary' } : {}),
          ...(hook.secret ? { 'X-Hub-Signature': hubSignature(hook.secret, body) } : {}),
        },
      }));
    },
    addWebhook(hook) {
      webhooks.add(hook);
    },
    webhookDeliveries: webhooks.deliveries,
    webhooksSettled: () => webhooks.settled(),
    setPermission(project, permission, granted) {
      const p = findProject(project);
      if (!p) throw new Error(`the Jira fake has no project ${project}`);
      p.permissions[permission] = granted;
    },
    removeCreateField(project, issueTypeId, fieldId) {
      const type = findProject(project)?.issueTypes.find((t) => t.id === issueTypeId);
      if (!type) throw new Error(`the Jira fake has no issue type ${issueTypeId} in ${project}`);
      type.fields = type.fields.filter((f) => f.fieldId !== fieldId);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
