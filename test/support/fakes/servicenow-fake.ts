/**
 * A strict loopback ServiceNow instance: the Table API (/api/now/table/{table}) over a handful of
 * tables (incident, sys_user, sys_user_role, sys_user_has_role, sys_user_group, sys_dictionary,
 * sys_choice) and the OAuth token endpoint (/oauth_token.do). ServiceNow publishes no machine-
 * readable spec; the behaviour follows its documentation, listed with sources in
 * test/fixtures/specs/servicenow/README.md. Where the real instance is lenient (unknown fields on
 * insert, unknown fields in sysparm_fields or sysparm_query, choice values) the fake is lenient in
 * the same way, and records what it ignored so tests can assert the adapter sent nothing wasted.
 *
 * Webhooks (addWebhook) stand for what an admin builds on an instance, which has no webhook of its
 * own: a business rule "after update" on incident, condition "State changes", that sends an
 * outbound REST message (POST, Content-Type application/json, Basic auth profile when the hook has
 * a user name or password) with the record's table, sys_id, number, state, correlation_id and
 * sys_updated_on, all strings as GlideRecord's getValue gives them.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Routing } from '../../../src/tickets/port.js';
import type { ProviderFake } from './provider-fake.js';
import { basicAuthorization, createWebhookSender } from './webhook-delivery.js';

export type ServiceNowAuth = 'basic' | 'oauth_client_credentials' | 'oauth_password';

export interface ServiceNowFakeOptions {
  /** Which credentials validValues carry (the instance accepts Basic and Bearer either way). */
  readonly auth?: ServiceNowAuth;
  /** Access token lifetime; ServiceNow's default is 1800 s. Short values exercise refresh. */
  readonly tokenLifetimeSeconds?: number;
  /** Roles of the integration user (default itil). */
  readonly roles?: readonly string[];
}

type Row = Record<string, string>;

interface FieldDef {
  readonly type: 'string' | 'integer' | 'boolean' | 'reference' | 'glide_date_time';
  readonly label: string;
  readonly ref?: string;
  readonly maxLength?: number;
  /** Choice list: value -> label. */
  readonly choices?: Readonly<Record<string, string>>;
}

const STATE_CHOICES = {
  '1': 'New',
  '2': 'In Progress',
  '3': 'On Hold',
  '6': 'Resolved',
  '7': 'Closed',
  '8': 'Canceled',
};
const LEVEL_CHOICES = { '1': '1 - High', '2': '2 - Medium', '3': '3 - Low' };
const PRIORITY_CHOICES = {
  '1': '1 - Critical',
  '2': '2 - High',
  '3': '3 - Moderate',
  '4': '4 - Low',
  '5': '5 - Planning',
};
const CATEGORY_CHOICES = {
  inquiry: 'Inquiry / Help',
  software: 'Software',
  hardware: 'Hardware',
  network: 'Network',
  database: 'Database',
};

const ENVIRONMENT_CHOICES = { prod: 'Production', nonprod: 'Non-production' };

const s = (label: string, maxLength?: number): FieldDef => ({
  type: 'string',
  label,
  ...(maxLength ? { maxLength } : {}),
});
const b = (label: string): FieldDef => ({ type: 'boolean', label });
const ref = (label: string, table: string): FieldDef => ({ type: 'reference', label, ref: table });
const SYS = {
  sys_id: s('Sys ID', 32),
  sys_created_on: { type: 'glide_date_time', label: 'Created' },
  sys_updated_on: { type: 'glide_date_time', label: 'Updated' },
  sys_created_by: s('Created by'),
} satisfies Record<string, FieldDef>;

const SCHEMA: Readonly<Record<string, Readonly<Record<string, FieldDef>>>> = {
  incident: {
    ...SYS,
    number: s('Number', 40),
    short_description: s('Short description', 160),
    description: s('Description', 4000),
    urgency: { type: 'integer', label: 'Urgency', choices: LEVEL_CHOICES },
    impact: { type: 'integer', label: 'Impact', choices: LEVEL_CHOICES },
    priority: { type: 'integer', label: 'Priority', choices: PRIORITY_CHOICES },
    state: { type: 'integer', label: 'State', choices: STATE_CHOICES },
    incident_state: { type: 'integer', label: 'Incident state', choices: STATE_CHOICES },
    category: { type: 'string', label: 'Category', choices: CATEGORY_CHOICES },
    subcategory: s('Subcategory'),
    assignment_group: ref('Assignment group', 'sys_user_group'),
    assigned_to: ref('Assigned to', 'sys_user'),
    caller_id: ref('Caller', 'sys_user'),
    opened_by: ref('Opened by', 'sys_user'),
    correlation_id: s('Correlation ID', 100),
    correlation_display: s('Correlation display', 100),
    active: b('Active'),
    contact_type: s('Channel'),
    comments: s('Additional comments'),
    work_notes: s('Work notes'),
    close_code: s('Resolution code'),
    close_notes: s('Resolution notes'),
    u_cost_center: s('Cost center', 40),
    u_environment: { type: 'string', label: 'Environment', choices: ENVIRONMENT_CHOICES },
    sys_class_name: s('Task type'),
  },
  sys_user: {
    ...SYS,
    user_name: s('User ID'),
    name: s('Name'),
    email: s('Email'),
    active: b('Active'),
    web_service_access_only: b('Web service access only'),
  },
  sys_user_role: { ...SYS, name: s('Name') },
  sys_user_has_role: {
    ...SYS,
    user: ref('User', 'sys_user'),
    role: ref('Role', 'sys_user_role'),
    state: s('State'),
    inherited: b('Inherited'),
  },
  sys_user_group: { ...SYS, name: s('Name'), active: b('Active'), description: s('Description') },
  sys_dictionary: {
    ...SYS,
    name: s('Table'),
    element: s('Column name'),
    column_label: s('Column label'),
    internal_type: s('Type'),
    mandatory: b('Mandatory'),
    active: b('Active'),
    choice: { type: 'integer', label: 'Choice' },
    max_length: { type: 'integer', label: 'Max length' },
  },
  sys_choice: {
    ...SYS,
    name: s('Table'),
    element: s('Element'),
    value: s('Value'),
    label: s('Label'),
    sequence: { type: 'integer', label: 'Sequence' },
    inactive: b('Inactive'),
    language: s('Language'),
  },
};

/** Which field names a record of each table (for reference display values). */
const DISPLAY_FIELD: Readonly<Record<string, string>> = {
  incident: 'number',
  sys_user: 'name',
  sys_user_role: 'name',
  sys_user_group: 'name',
  sys_user_has_role: 'sys_id',
  sys_dictionary: 'column_label',
  sys_choice: 'label',
};

const READ_INCIDENT_ROLES = [
  'itil',
  'sn_incident_read',
  'sn_incident_write',
  'incident_manager',
  'itil_admin',
  'admin',
];
const CREATE_INCIDENT_ROLES = ['itil', 'sn_incident_write', 'incident_manager', 'itil_admin', 'admin'];
const MAX_BODY = 10 * 1024 * 1024;

/** ServiceNow's base priority matrix: priority from impact and urgency. */
function priorityOf(impact: string, urgency: string): string {
  const i = Number(impact) || 3;
  const u = Number(urgency) || 3;
  return String(Math.min(5, Math.max(1, i + u - 1)));
}

function sysId(): string {
  return randomBytes(16).toString('hex');
}

function timestamp(date = new Date()): string {
  return date.toISOString().replace('T', ' ').slice(0, 19);
}

export interface TokenRequest {
  readonly grantType: string;
  readonly at: number;
}

export interface ServiceNowFake extends ProviderFake {
  /** Credentials the fake accepts. */
  readonly credentials: {
    readonly username: string;
    readonly password: string;
    readonly clientId: string;
    readonly clientSecret: string;
  };
  /** Every POST /oauth_token.do with its grant_type (refused ones included). */
  readonly tokenRequests: TokenRequest[];
  /** Fields a POST carried that the table does not have (real ServiceNow ignores them). */
  readonly ignoredFields: string[];
  /** Copies of the incident records, as stored (actual values). */
  incidents(): Row[];
  /** Revokes every access token: the next Table API call with one answers 401. */
  expireAccessTokens(): void;
  /** Revokes every refresh token. */
  revokeRefreshTokens(): void;
  /** Sets an incident's state value directly (1, 2, 3, 6, 7, 8). */
  setState(number: string, state: keyof typeof STATE_CHOICES): void;
  /** Replaces the integration user's roles. */
  setRoles(roles: readonly string[]): void;
  /** Marks an incident dictionary field mandatory (or not), enforced on insert like a data policy. */
  setMandatory(element: string, mandatory: boolean): void;
}

interface Fault {
  remaining: number;
  readonly path?: RegExp;
}

export async function startServiceNowFake(options: ServiceNowFakeOptions = {}): Promise<ServiceNowFake> {
  const auth = options.auth ?? 'basic';
  const lifetime = options.tokenLifetimeSeconds ?? 1_800;
  const tables = new Map<string, Map<string, Row>>(Object.keys(SCHEMA).map((t) => [t, new Map()]));
  const credentials = {
    username: 'cloudpi.integration',
    password: 'Sn0w-Integration!2024',
    clientId: '9f2c4e1a7b3d48c6a5e0f1b2c3d4e5f6',
    clientSecret: 'Cl1ent-S3cret.value',
  };
  const passwords = new Map<string, string>([
    [credentials.username, credentials.password],
    ['abel.tuter', 'Abel-Pass-1'],
  ]);

  const insertRow = (table: string, values: Row): Row => {
    const now = timestamp();
    const row: Row = { sys_id: sysId(), sys_created_on: now, sys_updated_on: now, sys_created_by: 'admin' };
    for (const field of Object.keys(SCHEMA[table]!)) row[field] ??= '';
    Object.assign(row, values);
    tables.get(table)!.set(row.sys_id!, row);
    return row;
  };
  const rows = (table: string) => [...tables.get(table)!.values()];

  // Seed data -----------------------------------------------------------------------------------
  const integrationUser = insertRow('sys_user', {
    user_name: credentials.username,
    name: 'CloudPi Integration',
    email: 'cloudpi.integration@example.com',
    active: 'true',
    web_service_access_only: 'true',
  });
  insertRow('sys_user', {
    user_name: 'abel.tuter',
    name: 'Abel Tuter',
    email: 'abel.tuter@example.com',
    active: 'true',
  });
  const roleId = (name: string): string => {
    const found = rows('sys_user_role').find((r) => r.name === name);
    return found ? found.sys_id! : insertRow('sys_user_role', { name }).sys_id!;
  };
  for (const name of ['admin', 'itil', 'incident_manager', 'sn_incident_write', 'snc_internal', 'catalog'])
    roleId(name);
  const setRoles = (roles: readonly string[]) => {
    const table = tables.get('sys_user_has_role')!;
    for (const row of [...table.values()]) if (row.user === integrationUser.sys_id) table.delete(row.sys_id!);
    for (const role of roles) {
      insertRow('sys_user_has_role', {
        user: integrationUser.sys_id!,
        role: roleId(role),
        state: 'active',
        inherited: 'false',
      });
    }
  };
  setRoles(options.roles ?? ['itil', 'snc_internal']);

  const cloudOps = insertRow('sys_user_group', {
    name: 'Cloud Operations',
    active: 'true',
    description: 'Runs the cloud estate',
  });
  insertRow('sys_user_group', { name: 'Service Desk', active: 'true' });
  insertRow('sys_user_group', { name: 'Network', active: 'true' });
  insertRow('sys_user_group', { name: 'Legacy Team', active: 'false' });

  const dictionary = (name: string, element: string, extra: Row) =>
    insertRow('sys_dictionary', {
      name,
      element,
      column_label: element ? (SCHEMA[name]?.[element]?.label ?? element) : '',
      internal_type: element ? (SCHEMA[name]?.[element]?.type ?? 'string') : 'collection',
      mandatory: 'false',
      active: 'true',
      choice: SCHEMA[name]?.[element]?.choices ? '3' : '0',
      ...extra,
    });
  dictionary('task', '', {});
  dictionary('incident', '', {});
  dictionary('task', 'number', {});
  dictionary('task', 'short_description', { mandatory: 'true' });
  dictionary('incident', 'urgency', {});
  dictionary('incident', 'category', { choice: '1' });
  dictionary('incident', 'u_cost_center', { mandatory: 'true' });
  dictionary('incident', 'u_environment', {});
  dictionary('incident', 'u_legacy_code', {
    mandatory: 'true',
    active: 'false',
    column_label: 'Legacy code',
  });
  for (const [element, choices] of [
    ['state', STATE_CHOICES],
    ['urgency', LEVEL_CHOICES],
    ['impact', LEVEL_CHOICES],
    ['priority', PRIORITY_CHOICES],
    ['category', CATEGORY_CHOICES],
    ['u_environment', ENVIRONMENT_CHOICES],
  ] as const) {
    Object.entries(choices).forEach(([value, label], index) => {
      insertRow('sys_choice', {
        name: 'incident',
        element,
        value,
        label,
        sequence: String(index + 1),
        inactive: 'false',
        language: 'en',
      });
    });
  }

  let nextNumber = 10_001;
  const newNumber = () => `INC${String(nextNumber++).padStart(7, '0')}`;
  insertRow('incident', {
    number: newNumber(),
    short_description: 'Email server is down',
    urgency: '1',
    impact: '1',
    priority: '1',
    state: '2',
    incident_state: '2',
    category: 'hardware',
    active: 'true',
    opened_by: integrationUser.sys_id!,
    sys_class_name: 'incident',
  });

  // Tokens ----------------------------------------------------------------------------------------
  const accessTokens = new Map<string, { user: string; expiresAt: number }>();
  const refreshTokens = new Map<string, string>();

  // Faults ----------------------------------------------------------------------------------------
  const requests: { method: string; path: string; at: number }[] = [];
  const tokenRequests: TokenRequest[] = [];
  const ignoredFields: string[] = [];
  let rateLimit: (Fault & { seconds: number }) | undefined;
  let failure: (Fault & { status: number }) | undefined;
  let loseNextCreate = false;
  let delayMs = 0;
  let baseUrl = '';
  const webhooks = createWebhookSender();

  const matches = (fault: Fault | undefined, path: string) =>
    fault !== undefined && fault.remaining > 0 && (!fault.path || fault.path.test(path));

  // Responses -------------------------------------------------------------------------------------
  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    if (res.destroyed) return;
    res.writeHead(status, { 'Content-Type': 'application/json;charset=UTF-8', ...headers });
    res.end(JSON.stringify(body));
  };
  const failure_ = (
    res: ServerResponse,
    status: number,
    message: string,
    detail: string | null,
    headers = {},
  ) => json(res, status, { error: { message, detail }, status: 'failure' }, headers);
  const html = (res: ServerResponse, status: number, title: string) => {
    if (res.destroyed) return;
    res.writeHead(status, { 'Content-Type': 'text/html;charset=UTF-8' });
    res.end(`<html><head><title>${title}</title></head><body><h1>${title}</h1></body></html>`);
  };

  /** The user a request authenticates as, or undefined (then 401). */
  const authenticate = (req: IncomingMessage): Row | undefined => {
    const header = req.headers.authorization ?? '';
    const [scheme, value = ''] = header.split(' ', 2) as [string, string | undefined];
    if (/^basic$/i.test(scheme)) {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return undefined;
      const user = decoded.slice(0, colon);
      const password = decoded.slice(colon + 1);
      if (passwords.get(user) !== password) return undefined;
      return rows('sys_user').find((r) => r.user_name === user && r.active === 'true');
    }
    if (/^bearer$/i.test(scheme)) {
      const token = accessTokens.get(value);
      if (!token || token.expiresAt <= Date.now()) return undefined;
      return tables.get('sys_user')!.get(token.user);
    }
    return undefined;
  };

  const rolesOf = (user: Row) =>
    rows('sys_user_has_role')
      .filter((r) => r.user === user.sys_id)
      .map((r) => tables.get('sys_user_role')!.get(r.role!)?.name ?? '');

  // Encoded queries ---------------------------------------------------------------------------------
  /** Resolves "field" or "ref.field" on a row; undefined when the path names no field. */
  const resolve = (
    table: string,
    row: Row | undefined,
    path: string,
  ): { table: string; field: string; value: string } | undefined => {
    const parts = path.split('.');
    let currentTable = table;
    let current = row;
    for (let i = 0; i < parts.length; i++) {
      const field = parts[i]!;
      const def = SCHEMA[currentTable]?.[field];
      if (!def) return undefined;
      const value = current?.[field] ?? '';
      if (i === parts.length - 1) return { table: currentTable, field, value };
      if (def.type !== 'reference' || !def.ref) return undefined;
      current = tables.get(def.ref)?.get(value);
      currentTable = def.ref;
    }
    return undefined;
  };

  type Condition = (row: Row) => boolean;
  const parseQuery = (table: string, query: string, user: Row) => {
    const terms: string[] = [];
    let term = '';
    for (let i = 0; i < query.length; i++) {
      const ch = query[i];
      if (ch === '^' && query[i + 1] === '^') {
        term += '^';
        i++;
      } else if (ch === '^') {
        terms.push(term);
        term = '';
      } else term += ch;
    }
    terms.push(term);
    const groups: Condition[][] = [];
    const order: { field: string; desc: boolean }[] = [];
    for (const raw of terms) {
      if (!raw) continue;
      const sort = /^ORDERBY(DESC)?(.+)$/.exec(raw);
      if (sort) {
        if (resolve(table, undefined, sort[2]!)) order.push({ field: sort[2]!, desc: Boolean(sort[1]) });
        continue;
      }
      // Field names are lower case, so a term starting with "OR" is an OR condition.
      const or = raw.startsWith('OR');
      const text = or ? raw.slice(2) : raw;
      const match =
        /^([a-z_][a-z0-9_.]*?)(=|!=|NOT IN|IN|NOTLIKE|LIKE|STARTSWITH|ENDSWITH|ISNOTEMPTY|ISEMPTY)(.*)$/s.exec(
          text,
        );
      // Invalid parts of a query (unknown fields, unknown operators) are ignored, as documented.
      if (!match || !resolve(table, undefined, match[1]!)) continue;
      const [, path, op, rawValue = ''] = match as unknown as [string, string, string, string];
      const value = rawValue === 'javascript:gs.getUserID()' ? user.sys_id! : rawValue;
      const list = value.split(',');
      const condition: Condition = (row) => {
        const actual = resolve(table, row, path)?.value ?? '';
        switch (op) {
          case '=':
            return actual === value;
          case '!=':
            return actual !== value;
          case 'IN':
            return list.includes(actual);
          case 'NOT IN':
            return !list.includes(actual);
          case 'LIKE':
            return actual.toLowerCase().includes(value.toLowerCase());
          case 'NOTLIKE':
            return !actual.toLowerCase().includes(value.toLowerCase());
          case 'STARTSWITH':
            return actual.toLowerCase().startsWith(value.toLowerCase());
          case 'ENDSWITH':
            return actual.toLowerCase().endsWith(value.toLowerCase());
          case 'ISEMPTY':
            return actual === '';
          case 'ISNOTEMPTY':
            return actual !== '';
          default:
            return true;
        }
      };
      const last = groups[groups.length - 1];
      if (or && last) last.push(condition);
      else groups.push([condition]);
    }
    const filter = (row: Row) => groups.every((group) => group.some((c) => c(row)));
    return { filter, order };
  };

  // Presentation ----------------------------------------------------------------------------------
  const displayOf = (table: string, field: string, value: string): string => {
    const def = SCHEMA[table]?.[field];
    if (!def || value === '') return value;
    if (def.choices) return def.choices[value] ?? value;
    if (def.type === 'reference' && def.ref) {
      const target = tables.get(def.ref)?.get(value);
      return target ? (target[DISPLAY_FIELD[def.ref] ?? 'sys_id'] ?? '') : '';
    }
    return value;
  };
  const present = (
    table: string,
    row: Row,
    fields: string[] | undefined,
    mode: string,
    excludeLink: boolean,
  ) => {
    const out: Record<string, unknown> = {};
    for (const path of fields ?? Object.keys(SCHEMA[table]!)) {
      const resolved = resolve(table, row, path);
      if (!resolved) continue; // invalid fields are ignored
      const def = SCHEMA[resolved.table]![resolved.field]!;
      const value = resolved.value;
      const display = displayOf(resolved.table, resolved.field, value);
      if (def.type === 'reference' && value !== '') {
        const link = `${baseUrl}/api/now/table/${def.ref}/${value}`;
        if (mode === 'true') out[path] = excludeLink ? display : { display_value: display, link };
        else if (mode === 'all')
          out[path] = excludeLink
            ? { display_value: display, value }
            : { display_value: display, link, value };
        else out[path] = excludeLink ? value : { link, value };
      } else if (mode === 'true') out[path] = display;
      else if (mode === 'all') out[path] = { display_value: display, value };
      else out[path] = value;
    }
    return out;
  };

  // Handlers --------------------------------------------------------------------------------------
  const readBody = (req: IncomingMessage): Promise<string | undefined> =>
    new Promise((resolveBody, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_BODY) chunks.push(chunk);
      });
      req.on('end', () => resolveBody(size > MAX_BODY ? undefined : Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });

  const handleToken = async (req: IncomingMessage, res: ServerResponse) => {
    const text = await readBody(req);
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (req.method !== 'POST' || type !== 'application/x-www-form-urlencoded' || text === undefined) {
      tokenRequests.push({ grantType: '(malformed)', at: Date.now() });
      return json(res, 400, { error: 'invalid_request', error_description: 'invalid_request' });
    }
    const form = new URLSearchParams(text);
    const grantType = form.get('grant_type') ?? '';
    tokenRequests.push({ grantType, at: Date.now() });
    // ServiceNow answers every refused token request with the same opaque body.
    const denied = () => json(res, 401, { error_description: 'access_denied', error: 'server_error' });
    if (
      form.get('client_id') !== credentials.clientId ||
      form.get('client_secret') !== credentials.clientSecret
    ) {
      return denied();
    }
    let user: string | undefined;
    let refresh: string | undefined;
    if (grantType === 'client_credentials') {
      user = integrationUser.sys_id; // the registry entry's OAuth Application User
    } else if (grantType === 'password') {
      const name = form.get('username') ?? '';
      if (passwords.get(name) !== (form.get('password') ?? '') || !passwords.has(name)) return denied();
      user = rows('sys_user').find((r) => r.user_name === name)?.sys_id;
      refresh = randomBytes(24).toString('base64url');
      if (user) refreshTokens.set(refresh, user);
    } else if (grantType === 'refresh_token') {
      refresh = form.get('refresh_token') ?? '';
      user = refreshTokens.get(refresh);
    }
    if (!user) return denied();
    const token = randomBytes(32).toString('base64url');
    accessTokens.set(token, { user, expiresAt: Date.now() + lifetime * 1000 });
    return json(res, 200, {
      access_token: token,
      ...(refresh ? { refresh_token: refresh } : {}),
      scope: 'useraccount',
      token_type: 'Bearer',
      expires_in: Math.max(1, lifetime - 1),
    });
  };

  const handleTable = async (
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    table: string,
    id?: string,
  ) => {
    const user = authenticate(req);
    if (!user) {
      return failure_(res, 401, 'User Not Authenticated', 'Required to provide Auth information', {
        'WWW-Authenticate': 'BASIC realm="Service-now"',
      });
    }
    const accept = req.headers.accept;
    if (!accept) return failure_(res, 400, 'Bad Request', 'The Accept header is required');
    if (!/application\/json|application\/xml|\*\/\*|application\/\*/i.test(accept)) {
      return failure_(res, 406, 'Not Acceptable', `Cannot produce ${accept}`);
    }
    const schema = SCHEMA[table];
    if (!schema) return failure_(res, 400, `Invalid table ${table}`, null);
    const params = url.searchParams;
    const mode = (params.get('sysparm_display_value') ?? 'false').toLowerCase();
    const excludeLink = params.get('sysparm_exclude_reference_link') === 'true';
    const fields = params
      .get('sysparm_fields')
      ?.split(',')
      .map((f) => f.trim())
      .filter(Boolean);
    const roles = rolesOf(user);

    if (req.method === 'GET') {
      if (table === 'incident' && !roles.some((r) => READ_INCIDENT_ROLES.includes(r))) {
        return failure_(res, 403, 'Insufficient rights to query records', null);
      }
      if (id !== undefined) {
        const row = tables.get(table)!.get(id);
        if (!row)
          return failure_(
            res,
            404,
            'No Record found',
            "Record doesn't exist or ACL restricts the record retrieval",
          );
        return json(res, 200, { result: present(table, row, fields, mode, excludeLink) });
      }
      const { filter, order } = parseQuery(table, params.get('sysparm_query') ?? '', user);
      const offset = Number(params.get('sysparm_offset') ?? 0);
      if (!Number.isInteger(offset) || offset < 0) {
        return failure_(
          res,
          400,
          `offset is ${params.get('sysparm_offset')}`,
          'Negative offset is not supported',
        );
      }
      const limitParam = Number(params.get('sysparm_limit') ?? 10_000);
      const limit = Number.isInteger(limitParam) && limitParam > 0 ? limitParam : 10_000;
      const matched = rows(table).filter(filter);
      for (const { field, desc } of [...order].reverse()) {
        matched.sort((x, y) => {
          const a = resolve(table, x, field)?.value ?? '';
          const c = resolve(table, y, field)?.value ?? '';
          const cmp = /^\d+$/.test(a) && /^\d+$/.test(c) ? Number(a) - Number(c) : a.localeCompare(c);
          return desc ? -cmp : cmp;
        });
      }
      const page = matched.slice(offset, offset + limit);
      return json(
        res,
        200,
        { result: page.map((row) => present(table, row, fields, mode, excludeLink)) },
        params.get('sysparm_no_count') === 'true' ? {} : { 'X-Total-Count': String(matched.length) },
      );
    }

    if (req.method === 'POST' && id === undefined) {
      const type = req.headers['content-type'];
      if (!type) return failure_(res, 400, 'Bad Request', 'The Content-Type header is required');
      if (!/^application\/json\s*(;|$)/i.test(type)) {
        return failure_(
          res,
          415,
          'Unsupported Media Type',
          `Content-Type ${type} is not supported, use application/json`,
        );
      }
      const text = await readBody(req);
      if (text === undefined) {
        return failure_(
          res,
          400,
          'Exception while reading request',
          `Rejected large REST payload. Max allowed: ${MAX_BODY} bytes.`,
        );
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return failure_(res, 400, 'Exception while reading request', 'The payload is not valid JSON.');
      }
      // Only the first record of an array is processed, as documented.
      const body = Array.isArray(parsed) ? parsed[0] : parsed;
      if (!body || typeof body !== 'object') {
        return failure_(res, 400, 'Exception while reading request', 'The payload is not a JSON object.');
      }
      if (table !== 'incident' || !roles.some((r) => CREATE_INCIDENT_ROLES.includes(r))) {
        return failure_(
          res,
          403,
          'Operation Failed',
          'ACL Exception Insert Failed due to security constraints',
        );
      }
      const values: Row = {};
      for (const [field, raw] of Object.entries(body as Record<string, unknown>)) {
        const def = schema[field];
        // Unknown fields are silently ignored by ServiceNow; so are system (sys_) fields.
        if (!def || field.startsWith('sys_') || field === 'number') {
          ignoredFields.push(field);
          continue;
        }
        let value =
          raw === null || raw === undefined
            ? ''
            : typeof raw === 'object'
              ? JSON.stringify(raw)
              : String(raw);
        if (def.maxLength && value.length > def.maxLength) value = value.slice(0, def.maxLength);
        values[field] = value;
      }
      const missing = rows('sys_dictionary')
        .filter(
          (d) =>
            (d.name === 'incident' || d.name === 'task') &&
            d.element &&
            d.mandatory === 'true' &&
            d.active === 'true',
        )
        .filter((d) => !values[d.element!])
        .map((d) => d.column_label!);
      if (missing.length > 0) {
        return failure_(
          res,
          403,
          'Operation Failed',
          `Data Policy Exception: \n\tThe following fields are mandatory: ${missing.join(', ')}\n`,
        );
      }
      const state = values.state || '1';
      const row = insertRow('incident', {
        ...values,
        number: newNumber(),
        urgency: values.urgency || '3',
        impact: values.impact || '3',
        state,
        incident_state: state,
        active: ['7', '8'].includes(state) ? 'false' : 'true',
        opened_by: user.sys_id!,
        sys_created_by: user.user_name!,
        sys_class_name: 'incident',
      });
      row.priority = priorityOf(row.impact!, row.urgency!);
      if (loseNextCreate) {
        loseNextCreate = false;
        req.socket.destroy();
        return;
      }
      return json(
        res,
        201,
        { result: present(table, row, fields, mode, excludeLink) },
        {
          Location: `${baseUrl}/api/now/table/${table}/${row.sys_id}`,
        },
      );
    }
    return failure_(
      res,
      405,
      'Method not Supported',
      `${req.method} is not supported for this resource by this fake`,
    );
  };

  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    requests.push({ method: req.method ?? 'GET', path, at: Date.now() });
    void (async () => {
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      if (res.destroyed) return;
      if (matches(failure, path)) {
        failure!.remaining -= 1;
        return html(res, failure!.status, 'Service Unavailable');
      }
      if (matches(rateLimit, path)) {
        rateLimit!.remaining -= 1;
        const seconds = rateLimit!.seconds;
        return failure_(
          res,
          429,
          'Rate limit exceeded',
          'Rate limit of 10 requests per hour for Table API exceeded',
          {
            'Retry-After': String(seconds),
            'X-RateLimit-Limit': '10',
            'X-RateLimit-Reset': String(Math.ceil(Date.now() / 1000) + seconds),
            'X-RateLimit-Rule': 'f1c2d3e4a5b6c7d8e9f0a1b2c3d4e5f6',
          },
        );
      }
      const url = new URL(path, 'http://fake.invalid');
      if (url.pathname === '/oauth_token.do') return handleToken(req, res);
      const tableMatch = /^\/api\/now\/(?:v[12]\/)?table\/([a-z0-9_]+)(?:\/([0-9a-f]{32}))?\/?$/i.exec(
        url.pathname,
      );
      if (tableMatch) return handleTable(req, res, url, tableMatch[1]!, tableMatch[2]);
      if (url.pathname.startsWith('/api/')) {
        if (!authenticate(req)) {
          return failure_(res, 401, 'User Not Authenticated', 'Required to provide Auth information');
        }
        return failure_(res, 400, 'Requested URI does not represent any resource', null);
      }
      return html(res, 404, 'Page not found');
    })().catch(() => {
      if (!res.headersSent && !res.destroyed) html(res, 500, 'Internal Server Error');
    });
  });

  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const valuesFor = (kind: ServiceNowAuth, secret: 'right' | 'wrong'): Record<string, string> => {
    const wrong = (value: string) => (secret === 'wrong' ? `${value}-wrong` : value);
    switch (kind) {
      case 'basic':
        return {
          instanceUrl: baseUrl,
          authType: kind,
          username: credentials.username,
          password: wrong(credentials.password),
        };
      case 'oauth_client_credentials':
        return {
          instanceUrl: baseUrl,
          authType: kind,
          clientId: credentials.clientId,
          clientSecret: wrong(credentials.clientSecret),
        };
      case 'oauth_password':
        return {
          instanceUrl: baseUrl,
          authType: kind,
          username: credentials.username,
          password: credentials.password,
          clientId: credentials.clientId,
          clientSecret: wrong(credentials.clientSecret),
        };
    }
  };
  const routing: Routing = {
    project: cloudOps.sys_id!,
    ticketType: 'incident',
    assignmentGroup: cloudOps.sys_id!,
    category: 'software',
    fieldValues: { u_cost_center: 'CC-1042' },
  };
  const incidentByNumber = (number: string) => {
    const row = rows('incident').find((r) => r.number === number);
    if (!row) throw new Error(`the fake has no incident ${number}`);
    return row;
  };
  const setState = (number: string, state: keyof typeof STATE_CHOICES) => {
    const row = incidentByNumber(number);
    // An update that changes nothing is not written (sys_updated_on stays), and the rule's condition
    // "State changes" is false: nothing is sent.
    if (row.state === state) return;
    row.state = state;
    row.incident_state = state;
    row.active = state === '7' || state === '8' ? 'false' : 'true';
    row.sys_updated_on = timestamp();
    const body = JSON.stringify({
      table: 'incident',
      sys_id: row.sys_id ?? '',
      number: row.number ?? '',
      state: row.state,
      correlation_id: row.correlation_id ?? '',
      sys_updated_on: row.sys_updated_on,
    });
    webhooks.send(({ hook }) => ({
      body,
      headers: { 'Content-Type': 'application/json', ...basicAuthorization(hook) },
    }));
  };

  return {
    url: baseUrl,
    validValues: valuesFor(auth, 'right'),
    wrongSecretValues: valuesFor(auth, 'wrong'),
    routing,
    credentials,
    requests,
    tokenRequests,
    ignoredFields,
    ticketCount: () => tables.get('incident')!.size,
    incidents: () => rows('incident').map((row) => ({ ...row })),
    rateLimitNext(count, retryAfterSeconds, path) {
      rateLimit = { remaining: count, seconds: retryAfterSeconds, ...(path ? { path } : {}) };
    },
    failNext(count, status, path) {
      failure = { remaining: count, status, ...(path ? { path } : {}) };
    },
    loseNextCreateResponse() {
      loseNextCreate = true;
    },
    setDelay(ms) {
      delayMs = ms;
    },
    setStatus(key, status) {
      setState(key, status === 'open' ? '1' : status === 'in_progress' ? '2' : '6');
    },
    setState,
    addWebhook(hook) {
      webhooks.add(hook);
    },
    webhookDeliveries: webhooks.deliveries,
    webhooksSettled: () => webhooks.settled(),
    setRoles,
    setMandatory(element, mandatory) {
      const row = rows('sys_dictionary').find((d) => d.name === 'incident' && d.element === element);
      if (row) row.mandatory = String(mandatory);
      else dictionary('incident', element, { mandatory: String(mandatory) });
    },
    expireAccessTokens() {
      accessTokens.clear();
    },
    revokeRefreshTokens() {
      refreshTokens.clear();
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolveClose) => server.close(() => resolveClose()));
    },
  };
}
