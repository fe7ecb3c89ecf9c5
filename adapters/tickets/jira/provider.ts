/**
 * The Jira TicketProvider: one instance per tenant, built from that tenant's form values.
 *
 * Idempotency: every issue carries the label labelFor(key) (and "cloudpi"). createTicket searches
 * for the label first and returns the issue it finds; the create POST itself is never retried on
 * a lost answer (only on 429), so a retry by the caller finds the issue instead of duplicating it.
 * Jira Cloud's search index can lag a few seconds behind a creation; the job queue's backoff
 * (seconds to minutes) covers that window.
 */
import { AppError, ErrorCode, isAppError } from '../../../src/errors.js';
import {
  type Project,
  type ProviderContext,
  type RequiredField,
  type Routing,
  SEVERITIES,
  type Severity,
  type TicketInput,
  type TicketProvider,
  type TicketRef,
  type TicketStatus,
  type TicketType,
  type VerifyResult,
  verifyFailure,
} from '../../../src/tickets/port.js';
import {
  createJiraApi,
  detectDeployment,
  type JiraApi,
  JiraHttpClient,
  type JiraHttpOptions,
  type JiraIssueTypeRef,
} from './client.js';
import { type JiraCredentials, JiraField, parseJiraCredentials } from './credentials.js';
import {
  identityOf,
  issueFields,
  type JiraFieldMeta,
  jqlForKey,
  normalizeStatus,
  priorityFor,
  requiredFieldsOf,
} from './mapping.js';

const ISSUE_KEY = /^[A-Za-z][A-Za-z0-9_]*-[1-9]\d*$|^\d+$/;

export interface JiraProviderOptions {
  readonly schemaMismatch?: JiraHttpOptions['schemaMismatch'];
  readonly fetch?: JiraHttpOptions['fetch'];
}

interface Session {
  readonly credentials: JiraCredentials;
  readonly http: JiraHttpClient;
  readonly api: JiraApi;
}

function deploymentName(credentials: JiraCredentials): string {
  return credentials.deployment === 'cloud' ? 'Jira Cloud' : 'Jira Data Center / Server';
}

/** The same code with a sentence that names the thing; errors about the site (with a field) stay. */
function rethrow(error: unknown, code: ErrorCode, message: string): never {
  if (isAppError(error) && error.code === code && !error.details?.field) {
    throw new AppError(code, message, { cause: error, details: { ...error.details } });
  }
  throw error;
}

export class JiraTicketProvider implements TicketProvider {
  readonly kind = 'jira' as const;
  private readonly context: ProviderContext;
  private readonly options: JiraProviderOptions;
  private session: Session | undefined;

  constructor(context: ProviderContext, options: JiraProviderOptions = {}) {
    this.context = context;
    this.options = options;
  }

  /** Parsed on first use, so that a bad form value surfaces as a classified error, not at create(). */
  private connect(): Session {
    if (!this.session) {
      const credentials = parseJiraCredentials(this.context.values, this.context.urlPolicy);
      const http = new JiraHttpClient({
        baseUrl: credentials.baseUrl,
        authorization: credentials.authorization,
        deployment: credentials.deployment,
        policy: this.context.urlPolicy,
        ...(this.context.timeoutMs === undefined ? {} : { timeoutMs: this.context.timeoutMs }),
        ...(this.context.maxAttempts === undefined ? {} : { maxAttempts: this.context.maxAttempts }),
        urlField: JiraField.siteUrl,
        secretField: credentials.secretField,
        ...(this.options.schemaMismatch ? { schemaMismatch: this.options.schemaMismatch } : {}),
        ...(this.options.fetch ? { fetch: this.options.fetch } : {}),
      });
      this.session = { credentials, http, api: createJiraApi(http) };
    }
    return this.session;
  }

  async verify(routing?: Routing): Promise<VerifyResult> {
    try {
      const session = this.connect();
      const { credentials, api } = session;
      const user = await this.whoAmI(session);
      const identity = identityOf(user);
      const as = `${identity.displayName}${identity.email ? ` (${identity.email})` : ''}`;
      let summary = `Connected to ${deploymentName(credentials)} at ${credentials.baseUrl} as ${as}.`;
      if (routing?.project) {
        await this.checkProject(api, routing.project);
        summary += ` The account can create issues in project ${routing.project}.`;
        if (routing.ticketType) {
          const type = await this.checkRouting(routing);
          summary += ` Issue type: ${type.name}.`;
        }
      }
      return { ok: true, identity, summary };
    } catch (error) {
      if (isAppError(error)) return verifyFailure(error);
      throw error;
    }
  }

  /**
   * GET myself. When it is refused or missing, serverInfo tells a site of the other deployment
   * (Cloud chosen for a Data Center site, or the reverse) from a site that is not Jira at all.
   */
  private async whoAmI(session: Session) {
    const { credentials, api, http } = session;
    try {
      return await api.myself();
    } catch (error) {
      if (
        !isAppError(error) ||
        (error.code !== ErrorCode.INVALID_CREDENTIALS && error.code !== ErrorCode.NOT_FOUND)
      )
        throw error;
      const actual = await detectDeployment(http);
      if (actual && actual !== credentials.deployment) {
        const name = actual === 'cloud' ? 'Jira Cloud' : 'Jira Data Center / Server';
        throw new AppError(
          ErrorCode.INVALID_INPUT,
          `${credentials.baseUrl} is ${name}, but ${deploymentName(credentials)} is selected. Choose "${name}" and enter ${actual === 'cloud' ? 'the account email and an API token' : 'a personal access token'}.`,
          { cause: error, details: { field: JiraField.deployment } },
        );
      }
      if (error.code === ErrorCode.NOT_FOUND) {
        throw new AppError(
          ErrorCode.NOT_FOUND,
          `${credentials.baseUrl} has no Jira REST API (${credentials.deployment === 'cloud' ? '/rest/api/3' : '/rest/api/2'}/myself was not found). Check the Site URL: for Jira Cloud it is https://your-site.atlassian.net; for Data Center / Server the address you open Jira at, with its path if Jira runs under one.`,
          { cause: error, details: { field: JiraField.siteUrl } },
        );
      }
      throw error;
    }
  }

  /** CREATE_ISSUES (and BROWSE_PROJECTS, which finding issues again needs) in the project. */
  private async checkProject(api: JiraApi, project: string): Promise<void> {
    let permissions: Awaited<ReturnType<JiraApi['myPermissions']>>;
    try {
      permissions = await api.myPermissions(project, ['CREATE_ISSUES', 'BROWSE_PROJECTS']);
    } catch (error) {
      if (
        isAppError(error) &&
        (error.code === ErrorCode.NOT_FOUND || error.code === ErrorCode.INVALID_INPUT)
      ) {
        throw projectNotFound(project, error);
      }
      throw error;
    }
    const missing = [
      ['BROWSE_PROJECTS', 'Browse Projects'],
      ['CREATE_ISSUES', 'Create Issues'],
    ].filter(([key]) => permissions[key!]?.havePermission !== true);
    if (missing.length) {
      const names = missing.map(([key, name]) => `"${permissions[key!]?.name ?? name}"`).join(' and ');
      throw new AppError(
        ErrorCode.FORBIDDEN,
        `The Jira account does not have the ${names} permission in project ${project}. Ask a Jira administrator to grant it (Project settings > Permissions), or choose another project.`,
        { details: { field: 'project', missingPermissions: missing.map(([key]) => key) } },
      );
    }
  }

  /** The routed issue type exists, and every field it requires has a value in routing.fieldValues. */
  private async checkRouting(routing: Routing): Promise<JiraIssueTypeRef> {
    const project = routing.project ?? '';
    const type = await this.resolveIssueType(project, routing.ticketType ?? '');
    const { api } = this.connect();
    const fields = await api.createFields(project, type.id);
    const required = requiredFieldsOf(fields);
    const values = routing.fieldValues ?? {};
    const missing = required.filter((field) => values[field.key] === undefined || values[field.key] === '');
    if (missing.length) {
      throw new AppError(
        ErrorCode.INVALID_INPUT,
        `Issue type ${type.name} in project ${project} requires ${missing.map((f) => `"${f.name}"`).join(', ')}. Give ${missing.length === 1 ? 'it a value' : 'them values'} in the Jira settings.`,
        {
          details: {
            field: 'fieldValues',
            fieldErrors: Object.fromEntries(missing.map((f) => [f.key, `${f.name} is required.`])),
          },
        },
      );
    }
    const unknownPriorities = unavailablePriorities(fields, routing);
    if (unknownPriorities.length) {
      const allowed = priorityNames(fields);
      throw new AppError(
        ErrorCode.INVALID_INPUT,
        `Project ${project} has no priority ${unknownPriorities.map(([, name]) => `"${name}"`).join(', ')}. Map each severity to one of: ${allowed.join(', ')}.`,
        {
          details: {
            field: 'priorityMap',
            fieldErrors: Object.fromEntries(
              unknownPriorities.map(([severity, name]) => [
                `priorityMap.${severity}`,
                `Priority "${name}" does not exist.`,
              ]),
            ),
          },
        },
      );
    }
    return type;
  }

  async listProjects(): Promise<Project[]> {
    const { api } = this.connect();
    return (await api.projects()).map(({ id, key, name }) => ({ id, key, name }));
  }

  async listTicketTypes(project: string): Promise<TicketType[]> {
    return (await this.issueTypes(project)).filter((t) => !t.subtask).map(({ id, name }) => ({ id, name }));
  }

  private async issueTypes(project: string): Promise<JiraIssueTypeRef[]> {
    const { api } = this.connect();
    try {
      return await api.issueTypes(project);
    } catch (error) {
      if (
        isAppError(error) &&
        (error.code === ErrorCode.NOT_FOUND || error.code === ErrorCode.INVALID_INPUT)
      ) {
        throw projectNotFound(project, error);
      }
      throw error;
    }
  }

  /** An issue type of the project by id or name (names compared without case). */
  private async resolveIssueType(project: string, ticketType: string): Promise<JiraIssueTypeRef> {
    const types = await this.issueTypes(project);
    const wanted = ticketType.trim().toLowerCase();
    const type =
      types.find((t) => t.id === ticketType.trim()) ?? types.find((t) => t.name.toLowerCase() === wanted);
    if (!type) {
      const names = types.filter((t) => !t.subtask).map((t) => t.name);
      throw new AppError(
        ErrorCode.NOT_FOUND,
        `Project ${project} has no issue type "${ticketType}" the account can create. Choose one of: ${names.join(', ') || '(none)'}.`,
        { details: { field: 'ticketType' } },
      );
    }
    return type;
  }

  private async requiredFields(project: string, type: JiraIssueTypeRef): Promise<RequiredField[]> {
    const { api } = this.connect();
    return requiredFieldsOf(await api.createFields(project, type.id));
  }

  async describeFields(project: string, ticketType: string): Promise<RequiredField[]> {
    return this.requiredFields(project, await this.resolveIssueType(project, ticketType));
  }

  async findTicket(idempotencyKey: string, routing: Routing): Promise<TicketRef | undefined> {
    const { credentials, api } = this.connect();
    const issues = await api.search(jqlForKey(idempotencyKey, routing), ['summary'], 1);
    const key = issues[0]?.key;
    return key ? { key, url: `${credentials.baseUrl}/browse/${key}` } : undefined;
  }

  async createTicket(input: TicketInput, idempotencyKey: string): Promise<TicketRef> {
    const { routing } = input;
    if (!routing.project || !routing.ticketType) {
      throw new AppError(
        ErrorCode.INVALID_INPUT,
        'Choose the Jira project and issue type that CloudPi creates issues in (configure jira).',
        { details: { field: routing.project ? 'ticketType' : 'project' } },
      );
    }
    const existing = await this.findTicket(idempotencyKey, routing);
    if (existing) return existing;
    const { credentials, api } = this.connect();
    let created: { key: string };
    try {
      created = await api.createIssue(
        issueFields(input, idempotencyKey, credentials.deployment, { withPriority: true }),
      );
    } catch (error) {
      // Projects whose create screen has no Priority field refuse it; create without it.
      if (!isPriorityRejected(error)) throw error;
      created = await api.createIssue(
        issueFields(input, idempotencyKey, credentials.deployment, { withPriority: false }),
      );
    }
    if (!created.key) {
      throw new AppError(ErrorCode.PROVIDER_ERROR, 'Jira created the issue but did not return its key.');
    }
    return { key: created.key, url: `${credentials.baseUrl}/browse/${created.key}` };
  }

  async getTicket(key: string): Promise<TicketStatus> {
    const { api } = this.connect();
    const notFound = `Jira issue ${key} was not found, or the account cannot see it. It may have been deleted or moved.`;
    if (!ISSUE_KEY.test(key)) throw new AppError(ErrorCode.NOT_FOUND, notFound);
    let issue: Awaited<ReturnType<JiraApi['getIssue']>>;
    try {
      issue = await api.getIssue(key, ['status']);
    } catch (error) {
      rethrow(error, ErrorCode.NOT_FOUND, notFound);
    }
    const status = issue.fields?.status as { name?: string; statusCategory?: { key?: string } } | undefined;
    return {
      status: normalizeStatus(status?.statusCategory?.key),
      providerStatus: status?.name ?? 'Unknown',
    };
  }
}

function projectNotFound(project: string, cause: unknown): AppError {
  return new AppError(
    ErrorCode.NOT_FOUND,
    `Jira project ${project} was not found, or the account cannot browse it. Check the project key, and that the account has the "Browse Projects" permission in it.`,
    { cause, details: { field: 'project' } },
  );
}

function priorityNames(fields: readonly JiraFieldMeta[]): string[] {
  const priority = fields.find((f) => (f.fieldId ?? f.key) === 'priority');
  return (priority?.allowedValues ?? []).map((v) => String((v as { name?: unknown }).name ?? ''));
}

/** Severities whose priority (mapped or default) the project does not offer; none if it sets no priority. */
function unavailablePriorities(fields: readonly JiraFieldMeta[], routing: Routing): [Severity, string][] {
  const priority = fields.find((f) => (f.fieldId ?? f.key) === 'priority');
  const allowed = (priority?.allowedValues ?? []) as { id?: unknown; name?: unknown }[];
  if (allowed.length === 0) return [];
  const names = new Set(allowed.map((v) => String(v.name ?? '').toLowerCase()));
  const ids = new Set(allowed.map((v) => String(v.id ?? '')));
  return SEVERITIES.map((severity): [Severity, string] => {
    const ref = priorityFor(severity, routing);
    return [severity, 'id' in ref ? ref.id : ref.name];
  }).filter(([, value]) => !ids.has(value) && !names.has(value.toLowerCase()));
}

function isPriorityRejected(error: unknown): boolean {
  if (!isAppError(error) || error.code !== ErrorCode.INVALID_INPUT) return false;
  const fieldErrors = (error.details?.fieldErrors ?? {}) as Record<string, string>;
  return Object.keys(fieldErrors).length === 1 && /cannot be set/i.test(fieldErrors.priority ?? '');
}

/** Builds one tenant's instance; `options` are for tests (strict model checks, transport). */
export function createJiraProvider(context: ProviderContext, options?: JiraProviderOptions): TicketProvider {
  return new JiraTicketProvider(context, options);
}
