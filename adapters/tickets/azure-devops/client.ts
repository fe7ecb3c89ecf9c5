/**
 * Azure DevOps over azure-devops-node-api, held to CloudPi's outbound rules.
 *
 * The SDK is built on typed-rest-client, which makes its own node:http(s) requests: every API
 * object (WebApi.rest, and each CoreApi / WorkItemTrackingApi / LocationsApi, including the one
 * WebApi creates internally to look up resource areas) owns one or two `HttpClient`s (`rest.client`
 * and `http`). We cannot hand them an agent through the options: HttpClient#_getAgent picks a
 * tunnel agent when HTTP(S)_PROXY is set, a fresh global-style agent unless keepAlive is on, and
 * applies `ignoreSslError` / client-certificate options to whichever it picked. So every HttpClient
 * the SDK gives us is *guarded* right after creation (see guardHttpClient):
 *
 * - `_getAgent` is replaced to always return our SSRF-guarded agents (createGuardedAgents: the
 *   guarded DNS lookup refuses hosts resolving to private addresses at connect time). No proxy,
 *   TLS verification always on.
 * - `requestRaw` (the single place every request, including redirects and retries, goes through)
 *   is wrapped to check the request URL against the URL policy (so IP-literal hosts, which skip DNS,
 *   are refused too, e.g. a resource-area locationUrl pointing at 169.254.169.254), to give each
 *   request a hard deadline (AbortSignal, besides the SDK's idle socketTimeout), and to record the
 *   status and headers of each response in the current call's AsyncLocalStorage record.
 * - typed-rest-client's own retries and redirects are switched off: withRetries is the only
 *   retry policy, and a redirect is reported instead of followed with the PAT.
 *
 * The record exists because the SDK hides what we need to classify answers: a 404 resolves to
 * `null` (its body unread), a 203 sign-in page (what Azure DevOps answers a bad PAT on some
 * endpoints) or any HTML page resolves to `null` as well, a body cut off mid-way also resolves to
 * `null`, and error objects carry `responseHeaders` only when the body was JSON (Retry-After,
 * X-RateLimit-Reset/Delay, x-ms-continuationtoken). The record is per call, never per instance,
 * so concurrent calls on one instance do not see each other's responses.
 *
 * These are private members of typed-rest-client 3.1.2 (pinned through azure-devops-node-api
 * 17.0.1); guardHttpClient throws if they are missing, so an upgrade that renames them fails loudly
 * instead of silently bypassing the guard. Methods here make one attempt each: the provider wraps
 * them in withRetries.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingHttpHeaders, IncomingMessage, RequestOptions } from 'node:http';
import { getPersonalAccessTokenHandler, WebApi } from 'azure-devops-node-api';
import type { ClientApiBase } from 'azure-devops-node-api/ClientApiBases.js';
import { CoreApi, type ICoreApi } from 'azure-devops-node-api/CoreApi.js';
import type { TeamProjectReference } from 'azure-devops-node-api/interfaces/CoreInterfaces.js';
import type { IRequestOptions } from 'azure-devops-node-api/interfaces/common/VsoBaseInterfaces.js';
import type { ConnectionData } from 'azure-devops-node-api/interfaces/LocationsInterfaces.js';
import type {
  WorkItem,
  WorkItemClassificationNode,
  WorkItemStateColor,
  WorkItemType,
  WorkItemTypeFieldWithReferences,
} from 'azure-devops-node-api/interfaces/WorkItemTrackingInterfaces.js';
import type { ILocationsApi } from 'azure-devops-node-api/LocationsApi.js';
import { type IWorkItemTrackingApi, WorkItemTrackingApi } from 'azure-devops-node-api/WorkItemTrackingApi.js';
import { AppError, ErrorCode, isAppError } from '../../../src/errors.js';
import {
  classifyTransportError,
  createGuardedAgents,
  DEFAULT_TIMEOUT_MS,
  type GuardedAgents,
  retryAfterSeconds,
} from '../../../src/net/outbound.js';
import { checkUrl, type UrlPolicy } from '../../../src/net/url-policy.js';
import { cloudOrganization, ORGANIZATION_URL_FIELD, PAT_FIELD } from './credentials.js';
import { type AdoErrorBody, fieldErrorsFrom, isAdoErrorBody, type JsonPatchOperation } from './mapping.js';

export interface AzureDevOpsClientOptions {
  readonly organizationUrl: string;
  readonly pat: string;
  readonly policy: UrlPolicy;
  readonly timeoutMs?: number;
}

/** What a call does, for the sentences of its errors. */
export interface CallAction {
  /** "list the projects": completes "... may not <what>" and "Azure DevOps refused to <what>". */
  readonly what: string;
  /** The PAT scope the call needs, named in FORBIDDEN. */
  readonly scope?: string;
  /** The error for a 404 of the call's own resource (project, work item type, work item). */
  readonly notFound?: () => AppError;
}

interface ResponseRecord {
  readonly method: string;
  readonly url: string;
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
}

interface CallRecord {
  readonly responses: ResponseRecord[];
  bodyError?: unknown;
}

const callContext = new AsyncLocalStorage<CallRecord>();

interface Guard {
  readonly agents: GuardedAgents;
  readonly policy: UrlPolicy;
  readonly timeoutMs: number;
}

/** The typed-rest-client HttpClient members we take over (typed-rest-client 3.1.2). */
interface InternalHttpClient {
  _getAgent: (parsedUrl: URL) => unknown;
  requestRaw: (
    info: { options: RequestOptions; parsedUrl: URL },
    data: unknown,
  ) => Promise<{ message: IncomingMessage }>;
  _allowRetries: boolean;
  _maxRetries: number;
  _allowRedirects: boolean;
  _ignoreSslError: boolean;
  _socketTimeout: number | undefined;
  __cloudpiGuarded?: true;
}

function guardHttpClient(client: unknown, guard: Guard): void {
  const internal = client as InternalHttpClient | undefined;
  if (!internal || typeof internal._getAgent !== 'function' || typeof internal.requestRaw !== 'function') {
    throw new AppError(
      ErrorCode.INTERNAL,
      'The Azure DevOps SDK changed: typed-rest-client HttpClient#_getAgent/requestRaw are missing, so outbound requests cannot be guarded. Pin azure-devops-node-api to a checked version.',
    );
  }
  if (internal.__cloudpiGuarded) return;
  internal.__cloudpiGuarded = true;
  internal._allowRetries = false;
  internal._maxRetries = 0;
  internal._allowRedirects = false;
  internal._ignoreSslError = false;
  internal._socketTimeout = guard.timeoutMs;
  internal._getAgent = (parsedUrl: URL) =>
    parsedUrl.protocol === 'https:' ? guard.agents.https : guard.agents.http;
  const requestRaw = internal.requestRaw.bind(internal);
  internal.requestRaw = async (info, data) => {
    checkUrl(info.parsedUrl.href, guard.policy, ORGANIZATION_URL_FIELD);
    info.options.signal = AbortSignal.timeout(guard.timeoutMs);
    info.options.timeout = guard.timeoutMs;
    const response = await requestRaw(info, data);
    const record = callContext.getStore();
    if (record) {
      record.responses.push({
        method: String(info.options.method ?? 'GET'),
        url: info.parsedUrl.href,
        status: response.message.statusCode ?? 0,
        headers: response.message.headers,
      });
      // typed-rest-client swallows a body read error and resolves with a null result.
      response.message.once('error', (error) => {
        record.bodyError ??= error;
      });
      response.message.once('aborted', () => {
        record.bodyError ??= Object.assign(new Error('The response was cut off'), { code: 'ECONNRESET' });
      });
    }
    return response;
  };
}

function guardApi<T extends ClientApiBase>(api: T, guard: Guard): T {
  guardHttpClient(api.rest?.client, guard);
  guardHttpClient(api.http, guard);
  return api;
}

/** Caches a promise until it rejects. */
function lazy<T>(create: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= create().catch((error: unknown) => {
      pending = undefined;
      throw error;
    });
    return pending;
  };
}

function header(headers: IncomingHttpHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

function isJson(response: ResponseRecord): boolean {
  return /json/i.test(header(response.headers, 'content-type') ?? '');
}

/** The innermost transport error code (ECONNRESET, ECONNREFUSED, ...) of an error chain. */
function transportCode(error: unknown): string | undefined {
  let current = error as { code?: unknown; cause?: unknown } | undefined;
  let code: string | undefined;
  for (let depth = 0; current && depth < 8; depth++) {
    if (typeof current.code === 'string') code = current.code;
    current = current.cause as typeof current;
  }
  return code;
}

/** Failures that happen before a request is written: nothing can have been created. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPRIVATEADDRESS',
]);

/**
 * True when a failed request may still have been carried out by Azure DevOps: the connection
 * dropped or timed out after the request was sent, with no answer. Creating again at once could
 * duplicate the work item (the server may still be processing it), so callers report it instead.
 */
export function requestMayHaveReachedServer(error: unknown): boolean {
  if (!isAppError(error) || error.code !== ErrorCode.UNREACHABLE) return false;
  const code = transportCode(error);
  return !code || !NOT_SENT_CODES.has(code);
}

function truncate(text: string, max = 300): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 3)}...` : line;
}

const ALL_SCOPES = 'Work Items (Read & Write) and Project and Team (Read)';

export class AzureDevOpsClient {
  readonly organizationUrl: string;
  private readonly host: string;
  private readonly webApi: WebApi;
  private readonly guard: Guard;
  readonly core: () => Promise<ICoreApi>;
  readonly wit: () => Promise<IWorkItemTrackingApi>;
  readonly locations: () => Promise<ILocationsApi>;

  constructor(options: AzureDevOpsClientOptions) {
    this.organizationUrl = options.organizationUrl;
    this.host = new URL(options.organizationUrl).host;
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.guard = {
      agents: createGuardedAgents({ policy: options.policy, timeoutMs }),
      policy: options.policy,
      timeoutMs,
    };
    const requestOptions: IRequestOptions = {
      socketTimeout: timeoutMs,
      allowRetries: false,
      maxRetries: 0,
      allowRedirects: false,
      keepAlive: true,
      ignoreSslError: false,
    };
    // allowCrossOriginAuthentication=false: the PAT goes only to the organization's host.
    this.webApi = new WebApi(
      options.organizationUrl,
      getPersonalAccessTokenHandler(options.pat, false),
      requestOptions,
    );
    // WebApi turns ignoreSslError on from a global set by azure-pipelines-task-lib; never here.
    this.webApi.options.ignoreSslError = false;
    guardHttpClient(this.webApi.rest.client, this.guard);
    // WebApi#_getResourceAreas creates its LocationsApi through this method: guard it too, and
    // share ours with it (one route lookup for the Location area instead of two).
    const getLocationsApi = this.webApi.getLocationsApi.bind(this.webApi);
    this.locations = lazy(async () => guardApi(await getLocationsApi(), this.guard));
    this.webApi.getLocationsApi = async (serverUrl, handlers) =>
      serverUrl || handlers
        ? guardApi(await getLocationsApi(serverUrl, handlers), this.guard)
        : this.locations();
    const { authHandler, options: apiOptions, userAgent } = this.webApi;
    this.core = lazy(async () =>
      this.atOrganization(
        await this.webApi.getCoreApi(),
        (url) => new CoreApi(url, [authHandler], apiOptions, userAgent),
      ),
    );
    this.wit = lazy(async () =>
      this.atOrganization(
        await this.webApi.getWorkItemTrackingApi(),
        (url) => new WorkItemTrackingApi(url, [authHandler], apiOptions, userAgent),
      ),
    );
  }

  /**
   * The SDK sends each area to the locationUrl the server lists for it (GET _apis/resourceAreas).
   * For Core and Work Item Tracking that is the organization itself. A cloud organization may list
   * its other Microsoft host ({org}.visualstudio.com for dev.azure.com/{org}, or the reverse): both
   * serve its API, so the client is rebuilt on the URL the admin gave, where the PAT may go. Any
   * other host (an Azure DevOps Server whose public URL differs from the one typed) would not get
   * the PAT (cross-origin authentication is off): say which address to enter instead of a 401.
   */
  private atOrganization<T extends ClientApiBase>(api: T, rebuild: (url: string) => T): T {
    const expected = new URL(this.organizationUrl);
    let actual: URL | undefined;
    try {
      actual = new URL(api.baseUrl);
    } catch {
      actual = undefined;
    }
    if (actual && actual.origin === expected.origin) return guardApi(api, this.guard);
    const organization = cloudOrganization(expected);
    if (actual && organization && cloudOrganization(actual) === organization) {
      return guardApi(rebuild(`${this.organizationUrl}/`), this.guard);
    }
    throw new AppError(
      ErrorCode.INVALID_URL,
      `The server at ${expected.host} says its address is ${truncate(api.baseUrl, 120)}. Enter that address as the Organization URL.`,
      { details: { field: ORGANIZATION_URL_FIELD } },
    );
  }

  /** GET {org}/_apis/connectionData: who the PAT authenticates as. */
  async connectionData(): Promise<ConnectionData> {
    const { value } = await this.call({ what: 'read the connection data', scope: ALL_SCOPES }, async () =>
      (await this.locations()).getConnectionData(),
    );
    return value;
  }

  /** Every project the PAT's user can see (pages followed through x-ms-continuationtoken). */
  async projects(): Promise<TeamProjectReference[]> {
    const projects: TeamProjectReference[] = [];
    let continuationToken: number | undefined;
    for (let page = 0; page < 50; page++) {
      const token = continuationToken;
      const { value, last } = await this.call(
        { what: 'list the projects', scope: 'Project and Team (Read)' },
        async () => (await this.core()).getProjects(undefined, 100, undefined, token),
      );
      projects.push(...(value ?? []));
      const next = header(last?.headers, 'x-ms-continuationtoken');
      if (!next || !value?.length || !/^\d+$/.test(next)) break;
      continuationToken = Number(next);
    }
    return projects;
  }

  async workItemTypes(project: string): Promise<WorkItemType[]> {
    const { value } = await this.call(
      {
        what: `read the work item types of project ${project}`,
        scope: 'Work Items (Read)',
        notFound: () => projectNotFound(project, this.organizationUrl),
      },
      async () => (await this.wit()).getWorkItemTypes(project),
    );
    return value ?? [];
  }

  async workItemTypeFields(project: string, type: string): Promise<WorkItemTypeFieldWithReferences[]> {
    const { value } = await this.call(
      {
        what: `read the fields of work item type ${type} in project ${project}`,
        scope: 'Work Items (Read)',
        notFound: () => typeNotFound(project, type),
      },
      // 1 = WorkItemTypeFieldsExpandLevel.AllowedValues
      async () => (await this.wit()).getWorkItemTypeFieldsWithReferences(project, type, 1),
    );
    return value ?? [];
  }

  async workItemTypeStates(project: string, type: string): Promise<WorkItemStateColor[]> {
    const { value } = await this.call(
      {
        what: `read the states of work item type ${type} in project ${project}`,
        scope: 'Work Items (Read)',
        notFound: () => typeNotFound(project, type),
      },
      async () => (await this.wit()).getWorkItemTypeStates(project, type),
    );
    return value ?? [];
  }

  /** POST {project}/_apis/wit/workitems/${type} with a JSON Patch document (validateOnly saves nothing). */
  async createWorkItem(
    project: string,
    type: string,
    document: readonly JsonPatchOperation[],
    validateOnly = false,
  ): Promise<WorkItem> {
    const { value } = await this.call(
      {
        what: `create a ${type} work item in project ${project}`,
        scope: 'Work Items (Read & Write)',
        notFound: () => typeNotFound(project, type),
      },
      async () =>
        (await this.wit()).createWorkItem(
          null,
          [...document],
          project,
          type,
          validateOnly ? true : undefined,
        ),
    );
    if (!value) {
      throw new AppError(
        ErrorCode.PROVIDER_ERROR,
        `Azure DevOps answered the creation of a ${type} work item without the work item.`,
      );
    }
    return value;
  }

  /** Ids of the work items a WIQL query finds, in the project's context (@project). */
  async queryIds(project: string, query: string): Promise<number[]> {
    const { value } = await this.call(
      {
        what: `query work items in project ${project}`,
        scope: 'Work Items (Read)',
        notFound: () => projectNotFound(project, this.organizationUrl),
      },
      async () => (await this.wit()).queryByWiql({ query }, { project }),
    );
    return (value?.workItems ?? []).map((w) => w.id).filter((id): id is number => typeof id === 'number');
  }

  /** One work item; NOT_FOUND when Azure DevOps says it does not exist (404). */
  async workItem(id: number, fields?: string[]): Promise<WorkItem> {
    const { value } = await this.call(
      { what: `read work item ${id}`, scope: 'Work Items (Read)', notFound: () => workItemNotFound(id) },
      async () => (await this.wit()).getWorkItem(id, fields),
    );
    if (!value) throw workItemNotFound(id);
    return value;
  }

  /** Up to 200 work items by id; ids that no longer exist are left out (errorPolicy=omit). */
  async workItems(ids: number[], fields?: string[]): Promise<WorkItem[]> {
    if (ids.length === 0) return [];
    const { value } = await this.call({ what: 'read work items', scope: 'Work Items (Read)' }, async () =>
      // 2 = WorkItemErrorPolicy.Omit
      (await this.wit()).getWorkItems(ids.slice(0, 200), fields, undefined, undefined, 2),
    );
    return (value ?? []).filter((w): w is WorkItem => Boolean(w));
  }

  /** The area and iteration roots of a project, with children to `depth` levels. */
  async rootNodes(project: string, depth: number): Promise<WorkItemClassificationNode[]> {
    const { value } = await this.call(
      {
        what: `read the area and iteration paths of project ${project}`,
        scope: 'Work Items (Read)',
        notFound: () => projectNotFound(project, this.organizationUrl),
      },
      async () => (await this.wit()).getRootNodes(project, depth),
    );
    return value ?? [];
  }

  /** Runs one SDK call with a fresh response record, and turns whatever happened into a value or an AppError. */
  private async call<T>(
    action: CallAction,
    run: () => Promise<T>,
  ): Promise<{ value: T; last?: ResponseRecord }> {
    const record: CallRecord = { responses: [] };
    let value: T;
    try {
      value = await callContext.run(record, run);
    } catch (error) {
      throw this.translate(error, record, action);
    }
    if (record.bodyError) throw this.transport(record.bodyError);
    const last = record.responses.at(-1);
    if (last) {
      if (last.status === 203) throw invalidCredentials();
      if (last.status === 404) throw this.notFound(record, action);
      if ((value === null || value === undefined) && !isJson(last)) throw this.notAzureDevOps();
    }
    return { value, last };
  }

  private transport(error: unknown): AppError {
    const classified = classifyTransportError(error, this.host, ORGANIZATION_URL_FIELD);
    if (classified.code === ErrorCode.UNREACHABLE && transportCode(error) === 'ENOTFOUND') {
      return new AppError(
        ErrorCode.UNREACHABLE,
        `Organization not found: the host ${this.host} does not exist (DNS). Check the spelling of the Organization URL.`,
        { cause: error, details: { field: ORGANIZATION_URL_FIELD } },
      );
    }
    return classified;
  }

  private organizationNotFound(): AppError {
    return new AppError(
      ErrorCode.NOT_FOUND,
      `Organization not found at ${this.organizationUrl}. Check the Organization URL: https://dev.azure.com/{organization}, https://{organization}.visualstudio.com, or your Azure DevOps Server collection URL (https://server/tfs/DefaultCollection).`,
      { details: { field: ORGANIZATION_URL_FIELD } },
    );
  }

  private notAzureDevOps(): AppError {
    return new AppError(
      ErrorCode.NOT_FOUND,
      `Organization not found: ${this.organizationUrl} answers, but not like Azure DevOps (no JSON API). Check the Organization URL: https://dev.azure.com/{organization} or your Azure DevOps Server collection URL.`,
      { details: { field: ORGANIZATION_URL_FIELD } },
    );
  }

  /** A 404 of the organization-level lookups (locations, connection data, resource areas) means a wrong URL. */
  private notFound(record: CallRecord, action: CallAction): AppError {
    const organizationLevel = record.responses.some(
      (r) =>
        r.status === 404 &&
        (r.method === 'OPTIONS' || /\/_apis\/(connectiondata|resourceareas)/i.test(r.url)),
    );
    if (organizationLevel || !action.notFound) return this.organizationNotFound();
    return action.notFound();
  }

  private translate(error: unknown, record: CallRecord, action: CallAction): AppError {
    if (isAppError(error)) return error;
    const status = (error as { statusCode?: unknown }).statusCode;
    if (typeof status !== 'number') {
      // The SDK's own failures: its route lookup (OPTIONS {org}/_apis/{area}) found nothing usable.
      const message = error instanceof Error ? error.message : String(error);
      if (/api location|resource area/i.test(message)) {
        if (record.responses.some((r) => r.status === 404)) return this.organizationNotFound();
        const last = record.responses.at(-1);
        if (last && last.status === 203) return invalidCredentials();
        if (last && !isJson(last)) return this.notAzureDevOps();
        return new AppError(
          ErrorCode.PROVIDER_ERROR,
          `${this.organizationUrl} does not offer the Azure DevOps REST API this needs (${truncate(message, 160)}). Azure DevOps Services and Azure DevOps Server 2020 or later are supported.`,
          { cause: error, details: { field: ORGANIZATION_URL_FIELD } },
        );
      }
      return this.transport(error);
    }
    const last = record.responses.at(-1);
    const headers = last?.headers ?? (error as { responseHeaders?: IncomingHttpHeaders }).responseHeaders;
    const body = (error as { result?: unknown }).result;
    const adoError: AdoErrorBody | undefined = isAdoErrorBody(body) ? body : undefined;
    const text = adoError?.message ?? (error instanceof Error ? error.message : '');
    const vendor = adoError?.message ? ` Azure DevOps says: ${truncate(adoError.message)}` : '';

    if (status === 401) {
      if (/expired/i.test(text)) {
        return new AppError(
          ErrorCode.EXPIRED_CREDENTIALS,
          'The Personal Access Token (PAT) has expired. Create a new one in Azure DevOps (User settings > Personal access tokens) with the scopes Work Items (Read & Write) and Project and Team (Read), and enter it here.',
          { cause: error, details: { field: PAT_FIELD, status } },
        );
      }
      return invalidCredentials(error);
    }
    if (status === 203) return invalidCredentials(error);
    if (status === 403 || /TF401289/.test(text)) {
      return new AppError(
        ErrorCode.FORBIDDEN,
        `The PAT's user may not ${action.what}.${vendor} Give the token the ${action.scope ?? ALL_SCOPES} scope, and its user the permission in the project${/TF401289/.test(text) ? ' (Create tag definition, which Contributors have)' : ''}.`,
        { cause: error, details: { field: PAT_FIELD, status } },
      );
    }
    if (status === 404) return this.notFound(record, action);
    if (status === 429) {
      const delay = Number(header(headers, 'x-ratelimit-delay'));
      const wait =
        (headers ? retryAfterSeconds(headers as Record<string, string | string[] | undefined>) : undefined) ??
        (Number.isFinite(delay) && delay > 0 ? Math.ceil(delay) : undefined) ??
        (error as { rateLimit?: { retryAfter?: number } }).rateLimit?.retryAfter;
      return new AppError(
        ErrorCode.RATE_LIMITED,
        `Azure DevOps is rate limiting requests from this PAT's user${wait !== undefined ? `; it asks to wait ${wait} seconds` : ''}. CloudPi tries again on its own; if this persists, create fewer tickets at once.`,
        { cause: error, details: { status, ...(wait !== undefined ? { retryAfterSeconds: wait } : {}) } },
      );
    }
    if (status >= 300 && status < 400) {
      const location = header(headers, 'location');
      return new AppError(
        ErrorCode.PROVIDER_ERROR,
        `${this.organizationUrl} redirects${location ? ` to ${truncate(location, 120)}` : ''}. Enter the organization's final address as the Organization URL (CloudPi does not follow redirects with the token).`,
        { cause: error, details: { field: ORGANIZATION_URL_FIELD, status } },
      );
    }
    if (status === 400 || status === 409 || status === 412 || status === 422) {
      const fieldErrors = fieldErrorsFrom(adoError);
      return new AppError(
        ErrorCode.INVALID_INPUT,
        `Azure DevOps refused to ${action.what}.${vendor || ` (HTTP ${status})`}${Object.keys(fieldErrors).length > 0 ? ' Fix the field values with configure azure-devops.' : ''}`,
        { cause: error, details: { status, fieldErrors } },
      );
    }
    return new AppError(
      ErrorCode.PROVIDER_ERROR,
      `Azure DevOps failed to ${action.what} (HTTP ${status}).${vendor}${status >= 500 ? ' Try again later; if it persists, check the Azure DevOps status page.' : ''}`,
      { cause: error, details: { status } },
    );
  }
}

export function invalidCredentials(cause?: unknown): AppError {
  return new AppError(
    ErrorCode.INVALID_CREDENTIALS,
    'The Personal Access Token (PAT) is invalid or has expired. Create a new one in Azure DevOps (User settings > Personal access tokens) with the scopes Work Items (Read & Write) and Project and Team (Read), for the organization in the Organization URL, and enter it here.',
    { ...(cause === undefined ? {} : { cause }), details: { field: PAT_FIELD } },
  );
}

export function projectNotFound(project: string, organizationUrl: string): AppError {
  return new AppError(
    ErrorCode.NOT_FOUND,
    `Project "${project}" was not found in ${organizationUrl}, or the PAT's user cannot see it. Check the project name with configure azure-devops.`,
    { details: { project } },
  );
}

export function typeNotFound(project: string, type: string): AppError {
  return new AppError(
    ErrorCode.NOT_FOUND,
    `Project "${project}" or its work item type "${type}" was not found. Check both with configure azure-devops.`,
    { details: { project, ticketType: type } },
  );
}

export function workItemNotFound(id: number | string): AppError {
  return new AppError(
    ErrorCode.NOT_FOUND,
    `Work item ${id} was not found: it was deleted, or the PAT's user cannot read it.`,
    { details: { workItem: id } },
  );
}
