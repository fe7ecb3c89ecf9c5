/**
 * Transport for jira.js, and the handful of Jira operations the adapter uses.
 *
 * jira.js 6 calls the global fetch itself, with no way to pass a dispatcher, so its own client
 * cannot go through our SSRF guard. Its endpoint functions accept any `Client` (one
 * `sendRequest` method), though: JiraHttpClient is that Client, built on createOutboundFetch
 * (guarded lookup, timeout, redirects re-checked), with our auth header, retries and error codes.
 *
 * jira.js 6 only covers the Cloud platform API (v3). Data Center / Server has no jira.js surface,
 * and lacks two Cloud endpoints the adapter uses (GET /project/search and POST /search/jql), so
 * the server operations call /rest/api/2 directly through the same Client.
 */
import type { CreatedIssue, Issue, SearchAndReconcileResults } from 'jira.js/cloud';
import type { Client, SendRequestOptions } from 'jira.js/core';
import { AppError, ErrorCode, isAppError } from '../../../src/errors.js';
import {
  classifyTransportError,
  createOutboundFetch,
  type OutboundFetch,
  withRetries,
} from '../../../src/net/outbound.js';
import type { UrlPolicy } from '../../../src/net/url-policy.js';
import type { JiraDeployment } from './credentials.js';
import { errorFromResponse, type JiraFieldMeta, type JiraUser, notJiraError } from './mapping.js';

type CloudApi = typeof import('jira.js/cloud');
let cloudApi: Promise<CloudApi> | undefined;

/**
 * jira.js/cloud loads ~1,400 endpoint functions and their zod models (about 80 MB and 0.4 s), so
 * it is imported on the first Jira Cloud call, not at start-up.
 */
function loadCloudApi(): Promise<CloudApi> {
  cloudApi ??= import('jira.js/cloud');
  return cloudApi;
}

export interface JiraHttpOptions {
  readonly baseUrl: string;
  /** Omitted for anonymous calls (GET serverInfo). */
  readonly authorization?: string;
  readonly deployment: JiraDeployment;
  readonly policy: UrlPolicy;
  readonly timeoutMs?: number;
  readonly maxAttempts?: number;
  /** Form fields that transport and credential errors concern. */
  readonly urlField: string;
  readonly secretField: string;
  /**
   * 'ignore' (default) hands back an answer that does not match jira.js's model unvalidated, as
   * jira.js's own 'warn' does; 'throw' turns it into PROVIDER_ERROR (the tests use it to hold the
   * fake to the published models).
   */
  readonly schemaMismatch?: 'ignore' | 'throw';
  /** Transport override (tests); defaults to createOutboundFetch with the policy. */
  readonly fetch?: OutboundFetch;
}

/** Thrown inside withRetries to stop retrying an error that is otherwise retryable. */
class DoNotRetry extends Error {
  constructor(readonly error: unknown) {
    super('not retried');
  }
}

/** Searches are POSTs that change nothing; every other POST creates something. */
function isIdempotent(method: string, path: string): boolean {
  if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return true;
  return method === 'POST' && /\/rest\/api\/[23]\/search(\/jql)?$/.test(path);
}

/** Query string the way jira.js builds it: arrays as repeated parameters, objects as JSON. */
function withSearchParams(url: string, params: Record<string, unknown> | undefined): string {
  if (!params) return url;
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) {
      for (const item of value) if (item !== undefined && item !== null) search.append(key, String(item));
    } else if (typeof value === 'object') {
      search.set(key, JSON.stringify(value));
    } else {
      search.set(key, String(value));
    }
  }
  const query = search.toString();
  return query ? `${url}${url.includes('?') ? '&' : '?'}${query}` : url;
}

function withField(error: AppError, field: string): AppError {
  if (error.details?.field) return error;
  return new AppError(error.code, error.message, {
    cause: error.cause ?? error,
    details: { ...error.details, field },
  });
}

/** The jira.js Client on our outbound transport. */
export class JiraHttpClient implements Client {
  readonly baseUrl: string;
  readonly deployment: JiraDeployment;
  private readonly options: JiraHttpOptions;
  private readonly fetch: OutboundFetch;
  private readonly host: string;

  constructor(options: JiraHttpOptions) {
    this.options = options;
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.deployment = options.deployment;
    this.host = new URL(this.baseUrl).host;
    this.fetch =
      options.fetch ?? createOutboundFetch({ policy: options.policy, timeoutMs: options.timeoutMs });
  }

  /** The same site without credentials and without retries, for GET serverInfo (anonymous in Jira). */
  anonymous(): JiraHttpClient {
    const { authorization: _authorization, ...rest } = this.options;
    return new JiraHttpClient({ ...rest, maxAttempts: 1, fetch: this.fetch });
  }

  async sendRequest<T>(request: SendRequestOptions<T>): Promise<T> {
    const method = request.method ?? 'GET';
    const path = request.url.startsWith('/') ? request.url : `/${request.url}`;
    const idempotent = isIdempotent(method, path);
    const attempt = async (): Promise<T> => {
      try {
        return await this.once(method, path, request);
      } catch (error) {
        // A create whose answer was lost may have happened: never repeat it blindly (the caller
        // looks for the issue first). A 429 is safe to repeat: Jira did not process the request.
        if (!idempotent && !(isAppError(error) && error.code === ErrorCode.RATE_LIMITED))
          throw new DoNotRetry(error);
        throw error;
      }
    };
    try {
      return await withRetries(attempt, { maxAttempts: this.options.maxAttempts ?? 3 });
    } catch (error) {
      throw error instanceof DoNotRetry ? error.error : error;
    }
  }

  private async once<T>(method: string, path: string, request: SendRequestOptions<T>): Promise<T> {
    const url = withSearchParams(`${this.baseUrl}${path}`, request.searchParams);
    const headers: Record<string, string> = {
      Accept: 'application/json',
      ...(this.options.authorization ? { Authorization: this.options.authorization } : {}),
      // Data Center's XSRF check would otherwise refuse some POSTs from non-browser clients.
      'X-Atlassian-Token': 'no-check',
      ...request.headers,
    };
    let body: string | undefined;
    if (request.body !== undefined && request.body !== null) {
      body = JSON.stringify(request.body);
      headers['Content-Type'] = 'application/json';
    }
    let status: number;
    let responseHeaders: Headers;
    let text: string;
    try {
      const response = await this.fetch(url, { method, headers, ...(body === undefined ? {} : { body }) });
      status = response.status;
      // undici's own Headers class is not the global one; hand the mapping code the global class.
      responseHeaders = new Headers(response.headers);
      text = await response.text();
    } catch (error) {
      throw withField(classifyTransportError(error, this.host, this.options.urlField), this.options.urlField);
    }
    if (status < 200 || status >= 300) {
      throw errorFromResponse({
        status,
        headers: responseHeaders,
        text,
        method,
        path,
        deployment: this.deployment,
        host: this.host,
        urlField: this.options.urlField,
        secretField: this.options.secretField,
      });
    }
    if (status === 204 || text.trim() === '') return undefined as T;
    const contentType = responseHeaders.get('content-type') ?? '';
    let data: unknown;
    try {
      if (!/json/i.test(contentType)) throw new Error(`content type ${contentType || 'missing'}`);
      data = JSON.parse(text);
    } catch (error) {
      throw notJiraError(
        this.host,
        this.options.urlField,
        `answered ${method} ${path} with a web page instead of Jira's REST API`,
        error,
      );
    }
    if (request.schema) {
      const parsed = request.schema.safeParse(data);
      if (parsed.success) return parsed.data;
      if (this.options.schemaMismatch === 'throw') {
        throw new AppError(
          ErrorCode.PROVIDER_ERROR,
          `Jira's answer to ${method} ${path} does not have the documented shape.`,
          { cause: parsed.error },
        );
      }
    }
    return data as T;
  }
}

// ---------------------------------------------------------------------------------------------
// The operations the adapter needs, on Cloud (jira.js, /rest/api/3) and Server (/rest/api/2).

export interface JiraProjectRef {
  id: string;
  key: string;
  name: string;
}

export interface JiraIssueTypeRef {
  id: string;
  name: string;
  subtask?: boolean;
}

export interface JiraIssueRef {
  id?: string;
  key?: string;
  fields?: Record<string, unknown>;
}

export interface JiraServerInfo {
  baseUrl?: string;
  deploymentType?: string;
  version?: string;
  serverTitle?: string;
}

export type PermissionMap = Record<string, { havePermission?: boolean; name?: string } | undefined>;

export interface JiraApi {
  myself(): Promise<JiraUser>;
  myPermissions(projectKey: string, permissions: readonly string[]): Promise<PermissionMap>;
  projects(): Promise<JiraProjectRef[]>;
  issueTypes(project: string): Promise<JiraIssueTypeRef[]>;
  createFields(project: string, issueTypeId: string): Promise<JiraFieldMeta[]>;
  search(jql: string, fields: readonly string[], maxResults: number): Promise<JiraIssueRef[]>;
  createIssue(fields: Record<string, unknown>): Promise<{ id: string; key: string }>;
  getIssue(key: string, fields: readonly string[]): Promise<JiraIssueRef>;
}

const PAGE = 50;
/** Upper bound on pages fetched for one listing (a broken server must not loop forever). */
const MAX_PAGES = 100;

interface Page<T> {
  values?: T[];
  issueTypes?: T[];
  fields?: T[];
  results?: T[];
  isLast?: boolean;
  startAt?: number;
  total?: number;
}

/** Walks a startAt/maxResults listing until isLast, total, or a short page. */
async function allPages<T>(fetchPage: (startAt: number) => Promise<Page<T>>, pick: (page: Page<T>) => T[]) {
  const items: T[] = [];
  for (let page = 0, startAt = 0; page < MAX_PAGES; page++) {
    const result = await fetchPage(startAt);
    const values = pick(result);
    items.push(...values);
    startAt += values.length;
    if (values.length === 0 || result.isLast === true) break;
    if (
      typeof result.total === 'number'
        ? startAt >= result.total
        : result.isLast !== false && values.length < PAGE
    )
      break;
  }
  return items;
}

const segment = (value: string) => encodeURIComponent(value);

function projectRefs(values: readonly { id?: unknown; key?: unknown; name?: unknown }[]): JiraProjectRef[] {
  return values
    .filter((p) => p.key !== undefined)
    .map((p) => ({ id: String(p.id ?? ''), key: String(p.key), name: String(p.name ?? p.key) }));
}

function issueTypeRefs(
  values: readonly { id?: unknown; name?: unknown; subtask?: unknown }[],
): JiraIssueTypeRef[] {
  return values
    .filter((t) => t.id !== undefined)
    .map((t) => ({ id: String(t.id), name: String(t.name ?? t.id), subtask: t.subtask === true }));
}

function issueRef(issue: Issue | JiraIssueRef): JiraIssueRef {
  return {
    ...(issue.id === undefined ? {} : { id: String(issue.id) }),
    ...(issue.key === undefined ? {} : { key: String(issue.key) }),
    ...(issue.fields ? { fields: issue.fields as Record<string, unknown> } : {}),
  };
}

/** Jira Cloud through jira.js's v3 endpoint functions. */
export function createCloudApi(http: JiraHttpClient): JiraApi {
  return {
    async myself() {
      const api = await loadCloudApi();
      return (await api.getCurrentUser(http)) as JiraUser;
    },
    async myPermissions(projectKey, permissions) {
      const api = await loadCloudApi();
      const result = await api.getMyPermissions(http, { projectKey, permissions: permissions.join(',') });
      return (result.permissions ?? {}) as PermissionMap;
    },
    async projects() {
      const api = await loadCloudApi();
      const values = await allPages(
        (startAt) => api.searchProjects(http, { startAt, maxResults: PAGE, orderBy: 'key' }),
        (page) => page.values ?? [],
      );
      return projectRefs(values);
    },
    async issueTypes(project) {
      const api = await loadCloudApi();
      const values = await allPages(
        (startAt) =>
          api.getCreateIssueMetaIssueTypes(http, {
            projectIdOrKey: segment(project),
            startAt,
            maxResults: PAGE,
          }),
        (page) => page.issueTypes ?? page.values ?? [],
      );
      return issueTypeRefs(values);
    },
    async createFields(project, issueTypeId) {
      const api = await loadCloudApi();
      const values = await allPages(
        (startAt) =>
          api.getCreateIssueMetaIssueTypeId(http, {
            projectIdOrKey: segment(project),
            issueTypeId: segment(issueTypeId),
            startAt,
            maxResults: PAGE,
          }),
        (page) => page.fields ?? page.results ?? page.values ?? [],
      );
      return values as JiraFieldMeta[];
    },
    async search(jql, fields, maxResults) {
      const api = await loadCloudApi();
      const result: SearchAndReconcileResults = await api.searchAndReconsileIssuesUsingJqlPost(http, {
        jql,
        fields: [...fields],
        maxResults,
      });
      return (result.issues ?? []).map(issueRef);
    },
    async createIssue(fields) {
      const api = await loadCloudApi();
      const created: CreatedIssue = await api.createIssue(http, { fields });
      return { id: String(created.id), key: String(created.key) };
    },
    async getIssue(key, fields) {
      const api = await loadCloudApi();
      return issueRef(await api.getIssue(http, { issueIdOrKey: segment(key), fields: [...fields] }));
    },
  };
}

/** Jira Data Center / Server: REST API v2 through the same Client (jira.js has no Server surface). */
export function createServerApi(http: JiraHttpClient): JiraApi {
  const get = <T>(url: string, searchParams?: Record<string, unknown>) =>
    http.sendRequest<T>({ url, method: 'GET', ...(searchParams ? { searchParams } : {}) });
  return {
    myself: () => get<JiraUser>('/rest/api/2/myself'),
    async myPermissions(projectKey, permissions) {
      const result = await get<{ permissions?: PermissionMap }>('/rest/api/2/mypermissions', {
        projectKey,
        permissions: permissions.join(','),
      });
      return result.permissions ?? {};
    },
    async projects() {
      // Data Center has no /project/search; /project lists every project the account can browse.
      return projectRefs(await get<{ id?: string; key?: string; name?: string }[]>('/rest/api/2/project'));
    },
    async issueTypes(project) {
      const values = await allPages(
        (startAt) =>
          get<Page<{ id?: string; name?: string; subtask?: boolean }>>(
            `/rest/api/2/issue/createmeta/${segment(project)}/issuetypes`,
            { startAt, maxResults: PAGE },
          ),
        (page) => page.values ?? page.issueTypes ?? [],
      );
      return issueTypeRefs(values);
    },
    async createFields(project, issueTypeId) {
      return allPages(
        (startAt) =>
          get<Page<JiraFieldMeta>>(
            `/rest/api/2/issue/createmeta/${segment(project)}/issuetypes/${segment(issueTypeId)}`,
            {
              startAt,
              maxResults: PAGE,
            },
          ),
        (page) => page.values ?? page.fields ?? [],
      );
    },
    async search(jql, fields, maxResults) {
      const result = await http.sendRequest<{ issues?: JiraIssueRef[] }>({
        url: '/rest/api/2/search',
        method: 'POST',
        body: { jql, fields: [...fields], maxResults },
      });
      return (result.issues ?? []).map(issueRef);
    },
    async createIssue(fields) {
      const created = await http.sendRequest<{ id?: string; key?: string }>({
        url: '/rest/api/2/issue',
        method: 'POST',
        body: { fields },
      });
      return { id: String(created.id ?? ''), key: String(created.key ?? '') };
    },
    async getIssue(key, fields) {
      return issueRef(
        await get<JiraIssueRef>(`/rest/api/2/issue/${segment(key)}`, { fields: fields.join(',') }),
      );
    },
  };
}

/**
 * Which Jira answers at the site, asked anonymously (serverInfo needs no login on Cloud or Data
 * Center) at /rest/api/2, which both serve. Undefined when the site does not say.
 */
export async function detectDeployment(http: JiraHttpClient): Promise<JiraDeployment | undefined> {
  try {
    const info = await http
      .anonymous()
      .sendRequest<JiraServerInfo>({ url: '/rest/api/2/serverInfo', method: 'GET' });
    const type = info?.deploymentType?.toLowerCase();
    if (!type) return undefined;
    return type === 'cloud' ? 'cloud' : 'server';
  } catch {
    return undefined;
  }
}

export function createJiraApi(http: JiraHttpClient): JiraApi {
  return http.deployment === 'cloud' ? createCloudApi(http) : createServerApi(http);
}
