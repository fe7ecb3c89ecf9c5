/**
 * The Azure DevOps TicketProvider: work items created with a JSON Patch document, found again by
 * their idempotency tag through WIQL, their state normalized through the type's state categories.
 * One instance per tenant and call site; it holds only that tenant's SDK connection and caches.
 */
import type { Identity as AdoIdentity } from 'azure-devops-node-api/interfaces/IdentitiesInterfaces.js';
import type { WorkItemClassificationNode } from 'azure-devops-node-api/interfaces/WorkItemTrackingInterfaces.js';
import { AppError, ErrorCode, isAppError } from '../../../src/errors.js';
import { withRetries } from '../../../src/net/outbound.js';
import type {
  Identity,
  Project,
  ProviderContext,
  RequiredField,
  Routing,
  TicketInput,
  TicketProvider,
  TicketRef,
  TicketStatus,
  TicketType,
  VerifyResult,
} from '../../../src/tickets/port.js';
import { verifyFailure } from '../../../src/tickets/port.js';
import {
  AzureDevOpsClient,
  invalidCredentials,
  projectNotFound,
  requestMayHaveReachedServer,
  workItemNotFound,
} from './client.js';
import { readCredentials } from './credentials.js';
import {
  buildPatchDocument,
  DEFAULT_WORK_ITEM_TYPE,
  FIELD,
  hasTag,
  normalizeState,
  requiredFieldsFrom,
  tagFor,
  wiqlForTag,
} from './mapping.js';

/** The routed project, or INVALID_INPUT telling the admin to configure one. */
function requireProject(routing: Routing): string {
  const project = routing.project?.trim();
  if (!project) {
    throw new AppError(
      ErrorCode.INVALID_INPUT,
      'No Azure DevOps project is configured for tickets. Choose one with configure azure-devops.',
      { details: { fieldErrors: { project: 'required' } } },
    );
  }
  return project;
}

function displayNameOf(user: AdoIdentity | undefined): string | undefined {
  return user?.providerDisplayName || user?.customDisplayName || undefined;
}

/** connectionData answers anonymous requests with a public-access identity instead of a 401. */
function isAnonymous(user: AdoIdentity): boolean {
  const descriptor = user.descriptor as unknown;
  const descriptorText =
    typeof descriptor === 'string'
      ? descriptor
      : String((descriptor as { identityType?: string })?.identityType ?? '');
  return (
    /PublicAccess|Unauthenticated|Anonymous/i.test(descriptorText) || displayNameOf(user) === 'Anonymous'
  );
}

function emailOf(user: AdoIdentity): string | undefined {
  const account = (user.properties as { Account?: { $value?: unknown } } | undefined)?.Account?.$value;
  return typeof account === 'string' && account.includes('@') ? account : undefined;
}

/** "Ops\Cloud\Web" paths of a classification tree, the form System.AreaPath/IterationPath take. */
function flattenPaths(node: WorkItemClassificationNode, prefix = ''): string[] {
  const path = prefix ? `${prefix}\\${node.name}` : String(node.name ?? '');
  return [path, ...(node.children ?? []).flatMap((child) => flattenPaths(child, path))];
}

function isStructure(node: WorkItemClassificationNode, kind: 'area' | 'iteration'): boolean {
  const type = node.structureType as unknown;
  // The SDK turns "area"/"iteration" into TreeNodeStructureType 0/1.
  return type === (kind === 'area' ? 0 : 1) || String(type).toLowerCase() === kind;
}

export class AzureDevOpsProvider implements TicketProvider {
  readonly kind = 'azure-devops' as const;
  private readonly context: ProviderContext;
  private connection: AzureDevOpsClient | undefined;
  /** State name (lower case) -> category, per "project\0type"; read once per instance. */
  private readonly stateCategories = new Map<string, Promise<Map<string, string>>>();

  constructor(context: ProviderContext) {
    this.context = context;
  }

  async verify(routing?: Routing): Promise<VerifyResult> {
    try {
      const client = this.client();
      const data = await this.retry(() => client.connectionData());
      const user = data?.authenticatedUser;
      const displayName = displayNameOf(user);
      if (!user?.id || !displayName || isAnonymous(user)) throw invalidCredentials();
      const identity: Identity = {
        id: user.id,
        displayName,
        ...(emailOf(user) ? { email: emailOf(user) } : {}),
      };
      const projects = await this.retry(() => client.projects());
      let summary = `Connected to ${client.organizationUrl} as ${displayName}; ${projects.length} project${projects.length === 1 ? '' : 's'} visible.`;
      if (routing?.project) {
        const wanted = routing.project.trim();
        const project = projects.find(
          (p) =>
            p.name?.toLowerCase() === wanted.toLowerCase() || p.id?.toLowerCase() === wanted.toLowerCase(),
        );
        if (!project?.name) throw projectNotFound(wanted, client.organizationUrl);
        const typeName = routing.ticketType?.trim() || DEFAULT_WORK_ITEM_TYPE;
        const types = (await this.retry(() => client.workItemTypes(project.name!))).filter(
          (t) => !t.isDisabled,
        );
        const type = types.find((t) => t.name?.toLowerCase() === typeName.toLowerCase());
        if (!type?.name) {
          throw new AppError(
            ErrorCode.NOT_FOUND,
            `Project "${project.name}" has no work item type "${typeName}". Choose one of: ${types
              .map((t) => t.name)
              .sort()
              .join(', ')} (configure azure-devops).`,
            { details: { project: project.name, ticketType: typeName } },
          );
        }
        // validateOnly runs Azure DevOps' own checks (permission, required fields, area and
        // iteration paths, field values) without saving a work item.
        const probe = buildPatchDocument(
          {
            title: 'CloudPi connection check',
            description: 'Validation only: Azure DevOps does not save this work item.',
            severity: 'medium',
            routing,
          },
          undefined,
        );
        await this.retry(() => client.createWorkItem(project.name!, type.name!, probe, true));
        summary += ` ${type.name} work items can be created in ${project.name}.`;
      }
      return { ok: true, identity, summary };
    } catch (error) {
      if (!isAppError(error)) throw error;
      return verifyFailure(error);
    }
  }

  async listProjects(): Promise<Project[]> {
    const client = this.client();
    const projects = await this.retry(() => client.projects());
    return projects
      .filter((p) => p.id && p.name)
      .map((p) => ({ id: p.id!, key: p.name!, name: p.name! }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async listTicketTypes(project: string): Promise<TicketType[]> {
    const client = this.client();
    const types = await this.retry(() => client.workItemTypes(project));
    return types
      .filter((t) => t.name && !t.isDisabled)
      .map((t) => ({ id: t.name!, name: t.name! }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async describeFields(project: string, ticketType: string): Promise<RequiredField[]> {
    const client = this.client();
    const fields = await this.retry(() => client.workItemTypeFields(project, ticketType));
    return requiredFieldsFrom(fields);
  }

  /** Area paths of a project ("Ops", "Ops\Cloud"), for routing.areaPath. */
  async listAreaPaths(project: string): Promise<string[]> {
    return this.classificationPaths(project, 'area');
  }

  /** Iteration paths of a project ("Ops", "Ops\Sprint 1"), for routing.iterationPath. */
  async listIterationPaths(project: string): Promise<string[]> {
    return this.classificationPaths(project, 'iteration');
  }

  async findTicket(idempotencyKey: string, routing: Routing): Promise<TicketRef | undefined> {
    const project = requireProject(routing);
    return this.retry(() => this.findOnce(idempotencyKey, project));
  }

  /**
   * Finds the work item carrying the key, or creates it. Each attempt looks first, so a retry after
   * a 429 or 5xx cannot duplicate. A request that got no answer at all (connection dropped or timed
   * out after sending) is not retried here: Azure DevOps may still be saving it; the error says so,
   * and the next attempt (the job's retry) finds it by its tag.
   */
  async createTicket(input: TicketInput, idempotencyKey: string): Promise<TicketRef> {
    const project = requireProject(input.routing);
    const type = input.routing.ticketType?.trim() || DEFAULT_WORK_ITEM_TYPE;
    const document = buildPatchDocument(input, idempotencyKey);
    const client = this.client();
    const outcome = await this.retry(async (): Promise<{ ref: TicketRef } | { unanswered: AppError }> => {
      const existing = await this.findOnce(idempotencyKey, project);
      if (existing) return { ref: existing };
      try {
        const created = await client.createWorkItem(project, type, document);
        if (typeof created.id !== 'number') {
          throw new AppError(
            ErrorCode.PROVIDER_ERROR,
            'Azure DevOps created the work item but did not return its id.',
          );
        }
        return { ref: this.ref(project, created.id) };
      } catch (error) {
        if (requestMayHaveReachedServer(error)) return { unanswered: error as AppError };
        throw error;
      }
    });
    if ('ref' in outcome) return outcome.ref;
    throw new AppError(
      ErrorCode.UNREACHABLE,
      `Azure DevOps did not answer the request to create the work item, so it may have been created. The next attempt looks for it by its CloudPi tag before creating another. (${outcome.unanswered.message})`,
      { cause: outcome.unanswered, details: { ...outcome.unanswered.details, mayHaveBeenCreated: true } },
    );
  }

  async getTicket(key: string): Promise<TicketStatus> {
    const trimmed = key.trim();
    if (!/^\d{1,10}$/.test(trimmed)) throw workItemNotFound(key);
    const id = Number(trimmed);
    const client = this.client();
    const item = await this.retry(() =>
      client.workItem(id, [FIELD.state, FIELD.workItemType, FIELD.teamProject]),
    );
    const state = item.fields?.[FIELD.state];
    if (typeof state !== 'string' || !state) {
      throw new AppError(ErrorCode.PROVIDER_ERROR, `Azure DevOps returned work item ${id} without a state.`);
    }
    const project = item.fields?.[FIELD.teamProject];
    const type = item.fields?.[FIELD.workItemType];
    const category =
      typeof project === 'string' && typeof type === 'string'
        ? await this.stateCategory(project, type, state)
        : undefined;
    return { status: normalizeState(state, category), providerStatus: state };
  }

  private client(): AzureDevOpsClient {
    if (!this.connection) {
      const { organizationUrl, pat } = readCredentials(this.context.values, this.context.urlPolicy);
      this.connection = new AzureDevOpsClient({
        organizationUrl,
        pat,
        policy: this.context.urlPolicy,
        ...(this.context.timeoutMs === undefined ? {} : { timeoutMs: this.context.timeoutMs }),
      });
    }
    return this.connection;
  }

  private retry<T>(operation: () => Promise<T>): Promise<T> {
    return withRetries(operation, { maxAttempts: this.context.maxAttempts ?? 3 });
  }

  private ref(project: string, id: number): TicketRef {
    return {
      key: String(id),
      url: `${this.client().organizationUrl}/${encodeURIComponent(project)}/_workitems/edit/${id}`,
    };
  }

  /**
   * One look-up, no retries: WIQL on the tag, then the candidates' tags read back, because a
   * CONTAINS match is not trusted to be an exact tag match.
   */
  private async findOnce(idempotencyKey: string, project: string): Promise<TicketRef | undefined> {
    const client = this.client();
    const tag = tagFor(idempotencyKey);
    const ids = await client.queryIds(project, wiqlForTag(tag));
    if (ids.length === 0) return undefined;
    const items = await client.workItems(
      [...ids].sort((a, b) => a - b),
      [FIELD.id, FIELD.tags],
    );
    const match = items
      .filter((w) => typeof w.id === 'number' && hasTag(w.fields?.[FIELD.tags], tag))
      .sort((a, b) => a.id! - b.id!)[0];
    return match ? this.ref(project, match.id!) : undefined;
  }

  /** The category of a state (Proposed, InProgress, Resolved, Completed, Removed); undefined if unreadable. */
  private async stateCategory(project: string, type: string, state: string): Promise<string | undefined> {
    const key = `${project}\0${type}`;
    let categories = this.stateCategories.get(key);
    if (!categories) {
      const client = this.client();
      categories = client
        .workItemTypeStates(project, type)
        .then(
          (states) =>
            new Map(states.filter((s) => s.name).map((s) => [s.name!.toLowerCase(), s.category ?? ''])),
        );
      this.stateCategories.set(key, categories);
    }
    try {
      return (await categories).get(state.toLowerCase()) || undefined;
    } catch {
      // The names decide instead (normalizeState); read again next time.
      this.stateCategories.delete(key);
      return undefined;
    }
  }

  private async classificationPaths(project: string, kind: 'area' | 'iteration'): Promise<string[]> {
    const client = this.client();
    const roots = await this.retry(() => client.rootNodes(project, 10));
    const root = roots.find((node) => isStructure(node, kind));
    return root ? flattenPaths(root) : [];
  }
}
