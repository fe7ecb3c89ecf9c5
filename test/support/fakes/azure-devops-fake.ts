/**
 * A strict loopback Azure DevOps (an Azure DevOps Server-style collection at
 * http://127.0.0.1:<port>/acme), following Microsoft's published REST specs in
 * test/fixtures/specs/azure-devops: Work Item Tracking 7.1, Core 7.1 and Location 4.0 (see its
 * README). The spec drives the fake: the routes it serves are the spec's paths, path parameters
 * marked `x-ms-required: false` are optional segments, required query parameters and enums are
 * checked, an api-version is required where the operation declares one (in the Accept header, as
 * the SDK sends it, or the query string) and must be within 7.1 (with "-preview" for preview
 * operations), a body must have a content type the operation `consumes` (415 otherwise) and match
 * its schema, and every JSON answer is checked against the operation's response schema (mismatches
 * land in `specViolations`, which tests expect to stay empty).
 *
 * What azure-devops-node-api asks before any call is served too: `OPTIONS /acme/_apis/{area}`
 * (the VsoClient's route lookup) answers the location ids the SDK uses, each with the spec path of
 * its operation as the route template, and `GET /acme/_apis/resourceAreas` answers the Core and WIT
 * areas with this collection as their locationUrl.
 *
 * Like Azure DevOps it refuses: requests without Basic auth carrying the PAT (any user name, the
 * token as password, as the spec's securityDefinitions say) with 401, or with 203 and an HTML
 * sign-in page when the client did not send `X-TFS-FedAuthRedirect: Suppress`; an expired PAT with
 * 401 "Access Denied: The Personal Access Token used has expired."; unknown fields (TF51535), JSON
 * Patch operations other than add/replace of /fields/*, missing required fields and values outside
 * a field's allowed values (RuleValidationException, TF401320, naming the field in
 * customProperties.FieldReferenceName), unknown area/iteration paths (TF401347), read-only fields,
 * WIQL it cannot parse, unknown projects (TF200016) and work items (TF401232), all with ADO's error
 * shape {"$id","innerException","message","typeName","typeKey","errorCode","eventId"}. Error codes
 * and messages are ADO's as far as known; where the exact wording is not published, the text is
 * ours in ADO's shape.
 *
 * One project "Ops" (process like Agile): work item types Task and Bug, states New (Proposed),
 * Active (InProgress), Resolved (Resolved), Closed (Completed); Bug requires the custom field
 * Custom.CostCenter (FinOps, Platform or Security). Area paths Ops, Ops\Cloud, Ops\Cloud\Compute,
 * Ops\Data; iterations Ops, Ops\Sprint 1, Ops\Sprint 2. setStatus: open -> New, in_progress ->
 * Active, done -> Closed (setState sets any state name; setting the current state changes nothing).
 *
 * Webhooks (addWebhook) stand for service hook subscriptions to "Work item updated" with the "Web
 * Hooks" consumer: every state change POSTs a `workitem.updated` event (the update's changed
 * fields, and the whole revision), with Basic authentication when the hook has a user name or
 * password.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { setTimeout as sleep } from 'node:timers/promises';
import { PROJECT_ROOT } from '../../../src/paths.js';
import type { ProviderFake } from './provider-fake.js';
import { checkSchema, type Schema, type SchemaDialect } from './schema-check.js';
import { basicAuthorization, createWebhookSender } from './webhook-delivery.js';

export interface AzureDevOpsFakeRequest {
  method: string;
  path: string;
  at: number;
  headers: IncomingHttpHeaders;
  body?: unknown;
}

export interface AzureDevOpsFakeWorkItem {
  readonly id: number;
  readonly projectId: string;
  rev: number;
  readonly fields: Record<string, unknown>;
}

export interface AzureDevOpsFake extends ProviderFake {
  readonly organization: string;
  readonly pat: string;
  /** The valid values with a PAT that has expired. */
  readonly expiredValues: Readonly<Record<string, string>>;
  readonly requests: AzureDevOpsFakeRequest[];
  readonly workItems: ReadonlyMap<number, AzureDevOpsFakeWorkItem>;
  /** Answers of the fake that did not match the published spec (a fake bug): must stay empty. */
  readonly specViolations: string[];
  /** Sets a work item's System.State by name (New, Active, Resolved, Closed). */
  setState(key: string, state: string): void;
  /** Wrong credentials answer 203 + an HTML sign-in page even with X-TFS-FedAuthRedirect: Suppress. */
  answerBadAuthWithSignInPage(enabled: boolean): void;
  /** Denies (403) creating work items in a project, as for a reader-only account. */
  denyCreate(project: string, denied: boolean): void;
  /** The locationUrl of the Core and WIT resource areas (default: the address the client used). */
  setLocationUrl(url: string | undefined): void;
}

// ---------------------------------------------------------------------------------------------
// The published specs, and a small validator for the Swagger 2.0 schema keywords they use.

interface Parameter {
  $ref?: string;
  name: string;
  in: 'path' | 'query' | 'body' | 'header';
  required?: boolean;
  'x-ms-required'?: boolean;
  type?: string;
  enum?: string[];
  schema?: Schema;
}

interface SpecOperation {
  operationId: string;
  parameters?: Parameter[];
  consumes?: string[];
  responses?: Record<string, { schema?: Schema }>;
  'x-ms-vss-resource'?: string;
}

interface Spec {
  paths: Record<string, Record<string, SpecOperation>>;
  definitions: Record<string, Schema>;
  parameters?: Record<string, Parameter>;
}

type SpecName = 'wit' | 'core' | 'location';

const SPEC_DIR = path.join(PROJECT_ROOT, 'test/fixtures/specs/azure-devops');
const SPEC_FILES: Record<SpecName, string> = {
  wit: 'wit/7.1/workItemTracking.json',
  core: 'core/7.1/core.json',
  location: 'location/4.0/Locations.json',
};
const specCache = new Map<SpecName, Spec>();

/** A spec file (the three start with a UTF-8 BOM, which JSON.parse refuses). */
export function loadAzureDevOpsSpec(name: SpecName): Spec {
  let spec = specCache.get(name);
  if (!spec) {
    spec = JSON.parse(
      readFileSync(path.join(SPEC_DIR, SPEC_FILES[name]), 'utf8').replace(/^\uFEFF/, ''),
    ) as Spec;
    specCache.set(name, spec);
  }
  return spec;
}

/** Swagger 2 as Azure DevOps writes it: null for absent values, untyped objects are JTokens. */
function adoDialect(spec: Spec): SchemaDialect {
  return {
    resolve: (ref) => spec.definitions[ref.replace('#/definitions/', '')],
    nullable: 'always',
    untypedObject: 'any-json',
  };
}

function resolveSchema(spec: Spec, schema: Schema): Schema {
  let current = schema;
  for (let depth = 0; current.$ref && depth < 20; depth++) {
    const next = spec.definitions[current.$ref.replace('#/definitions/', '')];
    if (!next) throw new Error(`spec has no definition ${current.$ref}`);
    current = next;
  }
  return current;
}

function validate(spec: Spec, value: unknown, schema: Schema): string[] {
  return checkSchema(value, schema, adoDialect(spec));
}

function parametersOf(spec: Spec, operation: SpecOperation): { parameter: Parameter; ref?: string }[] {
  return (operation.parameters ?? []).map((p) => {
    if (!p.$ref) return { parameter: p };
    const ref = p.$ref.replace('#/parameters/', '');
    const parameter = spec.parameters?.[ref];
    if (!parameter) throw new Error(`spec has no parameter ${ref}`);
    return { parameter, ref };
  });
}

// ---------------------------------------------------------------------------------------------
// Routes: the spec operations the fake serves, and the SDK location ids they stand for.

interface Location {
  /** The id azure-devops-node-api asks the route of (its generated clients carry these constants). */
  readonly id: string;
  readonly area: 'Location' | 'core' | 'wit';
  readonly spec: SpecName;
  /** The spec path whose template is published (the operation with the most route values). */
  readonly specPath: string;
  readonly method: string;
  readonly resourceVersion: number;
}

const LOCATIONS: readonly Location[] = [
  {
    id: '00d9565f-ed9c-4a06-9a50-00e7896ccab4',
    area: 'Location',
    spec: 'location',
    specPath: '/_apis/connectiondata',
    method: 'get',
    resourceVersion: 1,
  },
  {
    id: 'e81700f7-3be2-46de-8624-2eb35882fcaa',
    area: 'Location',
    spec: 'location',
    specPath: '/_apis/resourceareas/{areaId}',
    method: 'get',
    resourceVersion: 1,
  },
  {
    id: '603fe2ac-9723-48b9-88ad-09305aa6c6e1',
    area: 'core',
    spec: 'core',
    specPath: '/{organization}/_apis/projects/{projectId}',
    method: 'get',
    resourceVersion: 4,
  },
  {
    id: '7c8d7a76-4a09-43e8-b5df-bd792f4ac6aa',
    area: 'wit',
    spec: 'wit',
    specPath: '/{organization}/{project}/_apis/wit/workitemtypes/{type}',
    method: 'get',
    resourceVersion: 2,
  },
  {
    id: 'bd293ce5-3d25-4192-8e67-e8092e879efb',
    area: 'wit',
    spec: 'wit',
    specPath: '/{organization}/{project}/_apis/wit/workitemtypes/{type}/fields/{field}',
    method: 'get',
    resourceVersion: 3,
  },
  {
    id: '7c9d7a76-4a09-43e8-b5df-bd792f4ac6aa',
    area: 'wit',
    spec: 'wit',
    specPath: '/{organization}/{project}/_apis/wit/workitemtypes/{type}/states',
    method: 'get',
    resourceVersion: 1,
  },
  {
    id: '62d3d110-0047-428c-ad3c-4fe872c91c74',
    area: 'wit',
    spec: 'wit',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the spec's path is literally workitems/${type}
    specPath: '/{organization}/{project}/_apis/wit/workitems/${type}',
    method: 'post',
    resourceVersion: 3,
  },
  {
    id: '72c7ddf8-2cdc-4f60-90cd-ab71c14a399b',
    area: 'wit',
    spec: 'wit',
    specPath: '/{organization}/{project}/_apis/wit/workitems/{id}',
    method: 'get',
    resourceVersion: 3,
  },
  {
    id: '1a9c53f7-f243-4447-b110-35ef023636e4',
    area: 'wit',
    spec: 'wit',
    specPath: '/{organization}/{project}/{team}/_apis/wit/wiql/{id}',
    method: 'get',
    resourceVersion: 2,
  },
  {
    id: 'a70579d1-f53a-48ee-a5be-7be8659023b9',
    area: 'wit',
    spec: 'wit',
    specPath: '/{organization}/{project}/_apis/wit/classificationnodes',
    method: 'get',
    resourceVersion: 2,
  },
];

const RESOURCE_AREAS = [
  { id: '79134c72-4a58-4b42-976c-04e7115f32bf', name: 'core' },
  { id: '5264459e-e5e0-4bd8-b118-0985e68a4ec5', name: 'wit' },
];

/** The highest REST version this "server" speaks (the SDK negotiates down to it). */
const MAX_VERSION = 7.1;

interface Ctx {
  /** The collection URL as the client addressed it (Host header). */
  readonly requestBase: string;
  readonly params: Record<string, string | undefined>;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  readonly body: unknown;
}

interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Perform, then drop the connection without answering. */
  drop?: boolean;
}

interface Route {
  readonly spec: SpecName;
  readonly method: string;
  readonly specPath: string;
  readonly operation: SpecOperation;
  readonly pattern: RegExp;
  readonly names: string[];
  readonly handle: (ctx: Ctx) => Answer;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A spec path as a case-insensitive regex; x-ms-required=false path parameters are optional segments. */
function compilePath(
  spec: Spec,
  operation: SpecOperation,
  specPath: string,
): { pattern: RegExp; names: string[] } {
  const optional = new Set(
    parametersOf(spec, operation)
      .map((p) => p.parameter)
      .filter((p) => p.in === 'path' && p['x-ms-required'] === false)
      .map((p) => p.name),
  );
  const names: string[] = [];
  const full = specPath.startsWith('/{organization}') ? specPath : `/{organization}${specPath}`;
  let source = '';
  for (const segment of full.split('/').filter(Boolean)) {
    const param = /^(\$?)\{([^}]+)\}$/.exec(segment);
    if (param) {
      names.push(param[2]!);
      const capture = `${escapeRegex(param[1]!)}([^/]+)`;
      source += optional.has(param[2]!) ? `(?:/${capture})?` : `/${capture}`;
    } else {
      source += `/${escapeRegex(segment)}`;
    }
  }
  return { pattern: new RegExp(`^${source}/?$`, 'i'), names };
}

// ---------------------------------------------------------------------------------------------
// The Azure DevOps it pretends to be.

interface FieldDef {
  readonly referenceName: string;
  readonly name: string;
  readonly readOnly?: boolean;
}

interface TypeField {
  readonly ref: string;
  readonly alwaysRequired?: boolean;
  readonly defaultValue?: unknown;
  readonly allowedValues?: readonly unknown[];
  readonly helpText?: string;
}

interface WorkItemTypeDef {
  readonly name: string;
  readonly referenceName: string;
  readonly color: string;
  readonly icon: string;
  readonly description: string;
  readonly fields: readonly TypeField[];
}

interface FakeProject {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly types: readonly WorkItemTypeDef[];
  readonly areas: ClassificationNode;
  readonly iterations: ClassificationNode;
  createDenied: boolean;
}

interface ClassificationNode {
  readonly id: number;
  readonly identifier: string;
  readonly name: string;
  readonly children: ClassificationNode[];
}

const CATALOG: readonly FieldDef[] = [
  { referenceName: 'System.Id', name: 'ID', readOnly: true },
  { referenceName: 'System.Rev', name: 'Rev', readOnly: true },
  { referenceName: 'System.TeamProject', name: 'Team Project', readOnly: true },
  { referenceName: 'System.WorkItemType', name: 'Work Item Type', readOnly: true },
  { referenceName: 'System.CreatedBy', name: 'Created By', readOnly: true },
  { referenceName: 'System.CreatedDate', name: 'Created Date', readOnly: true },
  { referenceName: 'System.ChangedBy', name: 'Changed By', readOnly: true },
  { referenceName: 'System.ChangedDate', name: 'Changed Date', readOnly: true },
  { referenceName: 'System.Title', name: 'Title' },
  { referenceName: 'System.Description', name: 'Description' },
  { referenceName: 'System.Tags', name: 'Tags' },
  { referenceName: 'System.State', name: 'State' },
  { referenceName: 'System.Reason', name: 'Reason' },
  { referenceName: 'System.AreaPath', name: 'Area Path' },
  { referenceName: 'System.IterationPath', name: 'Iteration Path' },
  { referenceName: 'System.AssignedTo', name: 'Assigned To' },
  { referenceName: 'System.History', name: 'History' },
  { referenceName: 'Microsoft.VSTS.Common.Priority', name: 'Priority' },
  { referenceName: 'Microsoft.VSTS.Common.Severity', name: 'Severity' },
  { referenceName: 'Microsoft.VSTS.Common.ValueArea', name: 'Value Area' },
  { referenceName: 'Microsoft.VSTS.Scheduling.RemainingWork', name: 'Remaining Work' },
  { referenceName: 'Microsoft.VSTS.TCM.ReproSteps', name: 'Repro Steps' },
  { referenceName: 'Custom.CostCenter', name: 'Cost Center' },
];

const STATES = [
  { name: 'New', color: 'b2b2b2', category: 'Proposed' },
  { name: 'Active', color: '007acc', category: 'InProgress' },
  { name: 'Resolved', color: 'ff9d00', category: 'Resolved' },
  { name: 'Closed', color: '339933', category: 'Completed' },
];

const COMMON_FIELDS: readonly TypeField[] = [
  { ref: 'System.Id' },
  { ref: 'System.Rev' },
  { ref: 'System.TeamProject' },
  { ref: 'System.WorkItemType' },
  { ref: 'System.CreatedBy' },
  { ref: 'System.CreatedDate' },
  { ref: 'System.ChangedBy' },
  { ref: 'System.ChangedDate' },
  { ref: 'System.Title', alwaysRequired: true },
  { ref: 'System.Description' },
  { ref: 'System.Tags' },
  {
    ref: 'System.State',
    alwaysRequired: true,
    defaultValue: 'New',
    allowedValues: STATES.map((s) => s.name),
  },
  { ref: 'System.Reason', alwaysRequired: true, defaultValue: 'New' },
  { ref: 'System.AreaPath', alwaysRequired: true, defaultValue: 'Ops' },
  { ref: 'System.IterationPath', alwaysRequired: true, defaultValue: 'Ops' },
  { ref: 'System.AssignedTo' },
  { ref: 'System.History' },
  {
    ref: 'Microsoft.VSTS.Common.Priority',
    alwaysRequired: true,
    defaultValue: 2,
    allowedValues: [1, 2, 3, 4],
  },
];

const TYPES: readonly WorkItemTypeDef[] = [
  {
    name: 'Task',
    referenceName: 'Microsoft.VSTS.WorkItemTypes.Task',
    color: 'F2CB1D',
    icon: 'icon_clipboard',
    description: 'Tracks work that needs to be done.',
    fields: [...COMMON_FIELDS, { ref: 'Microsoft.VSTS.Scheduling.RemainingWork' }],
  },
  {
    name: 'Bug',
    referenceName: 'Microsoft.VSTS.WorkItemTypes.Bug',
    color: 'CC293D',
    icon: 'icon_insect',
    description: 'Describes a divergence between required and actual behavior.',
    fields: [
      ...COMMON_FIELDS,
      { ref: 'Microsoft.VSTS.TCM.ReproSteps' },
      {
        ref: 'Microsoft.VSTS.Common.Severity',
        alwaysRequired: true,
        defaultValue: '3 - Medium',
        allowedValues: ['1 - Critical', '2 - High', '3 - Medium', '4 - Low'],
      },
      {
        ref: 'Custom.CostCenter',
        alwaysRequired: true,
        allowedValues: ['FinOps', 'Platform', 'Security'],
        helpText: 'The cost center that pays for the fix.',
      },
    ],
  },
];

const IDENTITY_ID = '6b2a4c1e-9f1d-4a4e-8d55-2f1f0c6d7e11';
const IDENTITY = {
  displayName: 'CloudPi Bot',
  uniqueName: 'cloudpi-bot@acme.example',
};

function node(id: number, name: string, children: ClassificationNode[] = []): ClassificationNode {
  return { id, identifier: randomUUID(), name, children };
}

function adoError(message: string, typeKey: string, extra: Record<string, unknown> = {}, eventId = 3000) {
  return {
    $id: '1',
    ...extra,
    innerException: null,
    message,
    typeName: `Microsoft.TeamFoundation.WorkItemTracking.Server.${typeKey}, Microsoft.TeamFoundation.WorkItemTracking.Server`,
    typeKey,
    errorCode: 0,
    eventId,
  };
}

function vssError(status: number, message: string, typeKey: string): Answer {
  return {
    status,
    body: {
      $id: '1',
      innerException: null,
      message,
      typeName: `Microsoft.VisualStudio.Services.WebApi.${typeKey}, Microsoft.VisualStudio.Services.WebApi`,
      typeKey,
      errorCode: 0,
      eventId: 3000,
    },
  };
}

function ruleError(field: FieldDef, flags: string): Answer {
  const message = `TF401320: Rule Error for field ${field.name}. Error code: ${flags}.`;
  return {
    status: 400,
    body: adoError(
      message,
      'RuleValidationException',
      {
        customProperties: {
          FieldReferenceName: field.referenceName,
          FieldStatusFlags: flags.toLowerCase(),
          ErrorMessage: message,
          RuleValidationErrors: [
            {
              fieldReferenceName: field.referenceName,
              fieldStatusFlags: flags.toLowerCase(),
              errorMessage: message,
              fieldStatusCode: 0,
              ruleValidationErrors: null,
            },
          ],
        },
      },
      3200,
    ),
  };
}

function cannotFindField(name: string): Answer {
  return {
    status: 400,
    body: adoError(
      `TF51535: Cannot find field ${name}.`,
      'Metadata.WorkItemTrackingFieldDefinitionNotFoundException',
      {},
      3200,
    ),
  };
}

const SIGN_IN_PAGE =
  '<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head><body><form id="signin" action="https://app.vssps.visualstudio.com/_signin">Sign in to your account</form></body></html>';

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Identity fields in a service hook's revision read "Display Name <unique name>", not IdentityRefs. */
function identityText(value: unknown): unknown {
  if (!value || typeof value !== 'object' || !('uniqueName' in value)) return value;
  const identity = value as { displayName?: unknown; uniqueName?: unknown };
  return `${String(identity.displayName)} <${String(identity.uniqueName)}>`;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

interface Fault {
  count: number;
  path?: RegExp;
}

export async function startAzureDevOpsFake(): Promise<AzureDevOpsFake> {
  const organization = 'acme';
  const pat = `pat${randomUUID().replace(/-/g, '')}`;
  const expiredPat = `expired${randomUUID().replace(/-/g, '')}`;
  const collectionId = randomUUID();
  const accountId = randomUUID();
  const webhooks = createWebhookSender();
  const requests: AzureDevOpsFakeRequest[] = [];
  const specViolations: string[] = [];
  const workItems = new Map<number, AzureDevOpsFakeWorkItem>();
  let nextId = 1;
  let delayMs = 0;
  let loseNextCreate = false;
  let signInPageForBadAuth = false;
  let locationUrl: string | undefined;
  const rateLimit: Fault & { seconds: number } = { count: 0, seconds: 0 };
  const failure: Fault & { status: number } = { count: 0, status: 503 };

  const projects: FakeProject[] = [
    {
      id: 'eb6e4656-77fc-42a1-9181-4c6d8e9da5d1',
      name: 'Ops',
      description: 'Operations work tracked from CloudPi.',
      types: TYPES,
      areas: node(1, 'Ops', [node(2, 'Cloud', [node(3, 'Compute')]), node(4, 'Data')]),
      iterations: node(5, 'Ops', [node(6, 'Sprint 1'), node(7, 'Sprint 2')]),
      createDenied: false,
    },
  ];

  let base = '';
  const identityRef = () => ({
    displayName: IDENTITY.displayName,
    url: `${base}/_apis/Identities/${IDENTITY_ID}`,
    _links: { avatar: { href: `${base}/_apis/GraphProfile/MemberAvatars/aad.${IDENTITY_ID}` } },
    id: IDENTITY_ID,
    uniqueName: IDENTITY.uniqueName,
    imageUrl: `${base}/_api/_common/identityImage?id=${IDENTITY_ID}`,
    descriptor: `aad.${Buffer.from(IDENTITY_ID).toString('base64url')}`,
  });

  const findProject = (nameOrId: string | undefined): FakeProject | undefined =>
    nameOrId === undefined
      ? undefined
      : projects.find(
          (p) =>
            p.name.toLowerCase() === nameOrId.toLowerCase() || p.id.toLowerCase() === nameOrId.toLowerCase(),
        );
  const projectNotFound = (name: string): Answer => ({
    status: 404,
    body: adoError(
      `TF200016: The following project does not exist: ${name}. Verify that the name of the project is correct and that the project exists on the specified Azure DevOps Server.`,
      'ProjectDoesNotExistWithNameException',
      {},
      3000,
    ),
  });
  const workItemNotFound = (id: string | number): Answer => ({
    status: 404,
    body: adoError(
      `TF401232: Work item ${id} does not exist, or you do not have permissions to read it.`,
      'WorkItemUnauthorizedAccessException',
      {},
      3200,
    ),
  });
  const findType = (project: FakeProject, name: string | undefined) =>
    project.types.find((t) => t.name.toLowerCase() === (name ?? '').toLowerCase());
  const typeNotFound = (project: FakeProject, name: string): Answer => ({
    status: 404,
    body: adoError(
      `VS402323: Work item type ${name} does not exist in project ${project.name} or you do not have permission to access it.`,
      'WorkItemTypeNotFoundException',
      {},
      3200,
    ),
  });
  const fieldDef = (name: string) =>
    CATALOG.find((f) => f.referenceName.toLowerCase() === name.toLowerCase());
  const fieldRef = (f: FieldDef) => ({
    referenceName: f.referenceName,
    name: f.name,
    url: `${base}/_apis/wit/fields/${f.referenceName}`,
  });

  const treePaths = (root: ClassificationNode): string[] => {
    const walk = (n: ClassificationNode, prefix: string): string[] => {
      const p = prefix ? `${prefix}\\${n.name}` : n.name;
      return [p, ...n.children.flatMap((c) => walk(c, p))];
    };
    return walk(root, '');
  };

  const workItemJson = (item: AzureDevOpsFakeWorkItem, fields?: string[]) => {
    const selected = fields
      ? Object.fromEntries(
          fields.map((f) => [fieldDef(f)?.referenceName ?? f, item.fields[fieldDef(f)?.referenceName ?? f]]),
        )
      : item.fields;
    const url = `${base}/${item.projectId}/_apis/wit/workItems/${item.id}`;
    return {
      id: item.id,
      rev: item.rev,
      fields: Object.fromEntries(Object.entries(selected).filter(([, v]) => v !== undefined)),
      ...(fields
        ? {}
        : {
            _links: {
              self: { href: url },
              workItemUpdates: { href: `${url}/updates` },
              workItemRevisions: { href: `${url}/revisions` },
              html: { href: `${base}/web/wi.aspx?pcguid=${collectionId}&id=${item.id}` },
              workItemType: {
                href: `${base}/${item.projectId}/_apis/wit/workItemTypes/${String(item.fields['System.WorkItemType'])}`,
              },
              fields: { href: `${base}/_apis/wit/fields` },
            },
          }),
      url,
    };
  };

  const wrap = (value: unknown[]) => ({ count: value.length, value });

  const typeJson = (project: FakeProject, type: WorkItemTypeDef) => ({
    name: type.name,
    referenceName: type.referenceName,
    description: type.description,
    color: type.color,
    icon: { id: type.icon, url: `${base}/_apis/wit/workItemIcons/${type.icon}?color=${type.color}&v=2` },
    isDisabled: false,
    xmlForm: '<FORM><Layout /></FORM>',
    fields: type.fields.map((f) => ({
      ...fieldRef(fieldDef(f.ref)!),
      alwaysRequired: Boolean(f.alwaysRequired),
    })),
    fieldInstances: type.fields.map((f) => ({
      ...fieldRef(fieldDef(f.ref)!),
      alwaysRequired: Boolean(f.alwaysRequired),
      ...(f.defaultValue === undefined ? {} : { defaultValue: String(f.defaultValue) }),
      ...(f.helpText ? { helpText: f.helpText } : {}),
    })),
    states: STATES,
    transitions: {},
    url: `${base}/${project.id}/_apis/wit/workItemTypes/${type.name}`,
    _links: {},
  });

  const nodeJson = (
    n: ClassificationNode,
    structure: 'area' | 'iteration',
    parentPath: string,
    depth: number,
  ) => {
    const nodePath = `${parentPath}\\${n.name}`;
    const json: Record<string, unknown> = {
      id: n.id,
      identifier: n.identifier,
      name: n.name,
      structureType: structure,
      hasChildren: n.children.length > 0,
      path: nodePath,
      url: `${base}/_apis/wit/classificationNodes/${structure === 'area' ? 'Areas' : 'Iterations'}`,
    };
    if (depth > 0 && n.children.length > 0) {
      json.children = n.children.map((c) => nodeJson(c, structure, nodePath, depth - 1));
    }
    return json;
  };

  // -------------------------------------------------------------------------------------------
  // Operation handlers, by spec operationId.

  const handlers: Record<string, (ctx: Ctx) => Answer> = {
    getConnectionData: () => ({
      status: 200,
      body: {
        authenticatedUser: {
          id: IDENTITY_ID,
          descriptor: {
            identityType: 'Microsoft.IdentityModel.Claims.ClaimsIdentity',
            identifier: `${IDENTITY_ID}\\${IDENTITY.uniqueName}`,
          },
          providerDisplayName: IDENTITY.displayName,
          isActive: true,
          isContainer: false,
          properties: { Account: { $type: 'System.String', $value: IDENTITY.uniqueName } },
          resourceVersion: 2,
          metaTypeId: 0,
        },
        authorizedUser: {
          id: IDENTITY_ID,
          providerDisplayName: IDENTITY.displayName,
          isActive: true,
          resourceVersion: 2,
          metaTypeId: 0,
        },
        instanceId: collectionId,
        deploymentId: '0e8c7a3f-62b4-4a5d-9f54-0c2a1b3d4e5f',
        deploymentType: 'onPremises',
        locationServiceData: {
          serviceOwner: '00025394-6065-48ca-87d9-7f5672854ef7',
          defaultAccessMappingMoniker: 'PublicAccessMapping',
          lastChangeId: 1,
          lastChangeId64: 1,
        },
        webApplicationRelativeDirectory: `/${organization}/`,
      },
    }),

    // Like an access mapping that answers with the address the client used (unless overridden).
    getResourceAreas: (ctx) => ({
      status: 200,
      body: wrap(RESOURCE_AREAS.map((a) => ({ ...a, locationUrl: locationUrl ?? `${ctx.requestBase}/` }))),
    }),

    getResourceArea: (ctx) => {
      const area = RESOURCE_AREAS.find((a) => a.id === ctx.params.areaId?.toLowerCase());
      if (!area)
        return vssError(
          404,
          `No resource area with id ${ctx.params.areaId}.`,
          'VssResourceNotFoundException',
        );
      return { status: 200, body: { ...area, locationUrl: locationUrl ?? `${ctx.requestBase}/` } };
    },

    Projects_List: (ctx) => {
      const top = Number(ctx.query.get('$top') ?? 100);
      const skip = Number(ctx.query.get('continuationToken') ?? ctx.query.get('$skip') ?? 0);
      const all = projects.map((p, i) => ({
        id: p.id,
        name: p.name,
        description: p.description,
        url: `${base}/_apis/projects/${p.id}`,
        state: 'wellFormed',
        revision: 10 + i,
        visibility: 'private',
        lastUpdateTime: '2026-01-05T10:00:00.000Z',
      }));
      const page = all.slice(skip, skip + top);
      const more = skip + top < all.length;
      return {
        status: 200,
        body: wrap(page),
        ...(more ? { headers: { 'x-ms-continuationtoken': String(skip + top) } } : {}),
      };
    },

    Projects_Get: (ctx) => {
      const project = findProject(ctx.params.projectId);
      if (!project) return projectNotFound(ctx.params.projectId ?? '');
      return {
        status: 200,
        body: {
          id: project.id,
          name: project.name,
          description: project.description,
          url: `${base}/_apis/projects/${project.id}`,
          state: 'wellFormed',
          revision: 10,
          visibility: 'private',
          lastUpdateTime: '2026-01-05T10:00:00.000Z',
        },
      };
    },

    'Work Item Types_List': (ctx) => {
      const project = findProject(ctx.params.project);
      if (!project) return projectNotFound(ctx.params.project ?? '');
      return { status: 200, body: wrap(project.types.map((t) => typeJson(project, t))) };
    },

    'Work Item Types_Get': (ctx) => {
      const project = findProject(ctx.params.project);
      if (!project) return projectNotFound(ctx.params.project ?? '');
      const type = findType(project, ctx.params.type);
      if (!type) return typeNotFound(project, ctx.params.type ?? '');
      return { status: 200, body: typeJson(project, type) };
    },

    'Work Item Types Field_List': (ctx) => {
      const project = findProject(ctx.params.project);
      if (!project) return projectNotFound(ctx.params.project ?? '');
      const type = findType(project, ctx.params.type);
      if (!type) return typeNotFound(project, ctx.params.type ?? '');
      // $expand: the SDK sends WorkItemTypeFieldsExpandLevel as its number (1 = allowedValues).
      const expand = (ctx.query.get('$expand') ?? 'none').toLowerCase();
      const withAllowed = ['allowedvalues', 'all', '1', '3'].includes(expand);
      return {
        status: 200,
        body: wrap(
          type.fields.map((f) => ({
            ...fieldRef(fieldDef(f.ref)!),
            alwaysRequired: Boolean(f.alwaysRequired),
            defaultValue: f.defaultValue ?? null,
            dependentFields: [],
            ...(f.helpText ? { helpText: f.helpText } : {}),
            ...(withAllowed ? { allowedValues: (f.allowedValues ?? []).map(String) } : {}),
          })),
        ),
      };
    },

    'Work Item Type States_List': (ctx) => {
      const project = findProject(ctx.params.project);
      if (!project) return projectNotFound(ctx.params.project ?? '');
      const type = findType(project, ctx.params.type);
      if (!type) return typeNotFound(project, ctx.params.type ?? '');
      return { status: 200, body: wrap(STATES) };
    },

    'Classification Nodes_Get Root Nodes': (ctx) => {
      const project = findProject(ctx.params.project);
      if (!project) return projectNotFound(ctx.params.project ?? '');
      const depth = Number(ctx.query.get('$depth') ?? 0);
      return {
        status: 200,
        body: wrap([
          nodeJson(project.areas, 'area', '', depth),
          nodeJson(project.iterations, 'iteration', '', depth),
        ]),
      };
    },

    'Work Items_Create': (ctx) => {
      const project = findProject(ctx.params.project);
      if (!project) return projectNotFound(ctx.params.project ?? '');
      const type = findType(project, ctx.params.type);
      if (!type) return typeNotFound(project, ctx.params.type ?? '');
      if (project.createDenied) {
        return {
          status: 403,
          body: adoError(
            `TF237111: The current user does not have permissions to save work items under the specified area path.`,
            'WorkItemSecurityException',
            {},
            3200,
          ),
        };
      }
      const values = new Map<string, unknown>();
      for (const operation of ctx.body as { op: string; path: string; value?: unknown }[]) {
        if (operation.op !== 'add' && operation.op !== 'replace' && operation.op !== 'test') {
          return vssError(
            400,
            `The operation "${operation.op}" is not supported when creating a work item; use "add".`,
            'VssPropertyValidationException',
          );
        }
        const fieldPath = /^\/fields\/(.+)$/.exec(operation.path);
        if (!fieldPath) {
          return vssError(
            400,
            `The path "${operation.path}" is not a valid work item path.`,
            'VssPropertyValidationException',
          );
        }
        if (operation.op === 'test') continue;
        const def = fieldDef(fieldPath[1]!);
        if (!def || !type.fields.some((f) => f.ref === def.referenceName))
          return cannotFindField(fieldPath[1]!);
        values.set(def.referenceName, operation.value);
      }
      const fields: Record<string, unknown> = {};
      for (const field of type.fields) {
        const def = fieldDef(field.ref)!;
        const given = values.get(def.referenceName);
        if (given !== undefined && def.readOnly) return ruleError(def, 'ReadOnly');
        const value = given ?? field.defaultValue;
        if (field.alwaysRequired && (value === undefined || value === null || value === '')) {
          return ruleError(
            def,
            field.allowedValues
              ? 'Required, HasValues, LimitedToValues, InvalidEmpty'
              : 'Required, InvalidEmpty',
          );
        }
        if (value === undefined) continue;
        if (field.allowedValues && !field.allowedValues.some((a) => String(a) === String(value))) {
          return ruleError(def, 'HasValues, LimitedToValues, InvalidListValue');
        }
        fields[def.referenceName] = value;
      }
      const title = fields['System.Title'];
      if (typeof title !== 'string' || title.length > 255)
        return ruleError(fieldDef('System.Title')!, 'InvalidTooLong');
      if (fields['System.State'] !== 'New') return ruleError(fieldDef('System.State')!, 'InvalidListValue');
      for (const [ref, root] of [
        ['System.AreaPath', project.areas],
        ['System.IterationPath', project.iterations],
      ] as const) {
        const paths = treePaths(root).map((p) => p.toLowerCase());
        if (typeof fields[ref] !== 'string' || !paths.includes(String(fields[ref]).toLowerCase())) {
          return {
            status: 400,
            body: adoError(
              `TF401347: Invalid tree name given for work item -1, field '${ref}'.`,
              'WorkItemFieldInvalidTreeNameException',
              {},
              3200,
            ),
          };
        }
      }
      if (fields['System.Tags'] !== undefined) {
        if (typeof fields['System.Tags'] !== 'string')
          return ruleError(fieldDef('System.Tags')!, 'InvalidType');
        const seen = new Map<string, string>();
        for (const tag of fields['System.Tags']
          .split(';')
          .map((t) => t.trim())
          .filter(Boolean)) {
          if (tag.includes(',')) return ruleError(fieldDef('System.Tags')!, 'InvalidCharacters');
          if (!seen.has(tag.toLowerCase())) seen.set(tag.toLowerCase(), tag);
        }
        fields['System.Tags'] = [...seen.values()].sort((a, b) => a.localeCompare(b)).join('; ');
      }
      const now = new Date().toISOString();
      Object.assign(fields, {
        'System.TeamProject': project.name,
        'System.WorkItemType': type.name,
        'System.Reason': 'New',
        'System.CreatedBy': identityRef(),
        'System.CreatedDate': now,
        'System.ChangedBy': identityRef(),
        'System.ChangedDate': now,
        'Microsoft.VSTS.Common.StateChangeDate': now,
      });
      if (ctx.query.get('validateOnly')?.toLowerCase() === 'true') {
        return { status: 200, body: { rev: 0, fields, url: `${base}/${project.id}/_apis/wit/workItems` } };
      }
      const id = nextId++;
      const item: AzureDevOpsFakeWorkItem = {
        id,
        projectId: project.id,
        rev: 1,
        fields: { 'System.Id': id, ...fields },
      };
      workItems.set(id, item);
      if (loseNextCreate) {
        loseNextCreate = false;
        return { status: 200, drop: true };
      }
      return { status: 200, body: workItemJson(item) };
    },

    'Work Items_Get Work Item': (ctx) => {
      const id = ctx.params.id ?? '';
      if (!/^\d+$/.test(id)) {
        return vssError(
          400,
          `The value "${id}" is not a valid work item id.`,
          'VssPropertyValidationException',
        );
      }
      const item = workItems.get(Number(id));
      const project = ctx.params.project ? findProject(ctx.params.project) : undefined;
      if (ctx.params.project && !project) return projectNotFound(ctx.params.project);
      if (!item || (project && item.projectId !== project.id)) return workItemNotFound(id);
      const fields = ctx.query.get('fields');
      if (fields && ctx.query.get('$expand')) {
        return vssError(
          400,
          'The expand parameter can not be used with the fields parameter.',
          'VssPropertyValidationException',
        );
      }
      const names = fields ? fields.split(',').map((f) => f.trim()) : undefined;
      for (const name of names ?? []) if (!fieldDef(name)) return cannotFindField(name);
      return { status: 200, body: workItemJson(item, names) };
    },

    'Work Items_List': (ctx) => {
      const ids = (ctx.query.get('ids') ?? '').split(',').filter(Boolean);
      if (ids.length === 0 || ids.some((i) => !/^\d+$/.test(i))) {
        return vssError(400, 'The ids parameter must list work item ids.', 'VssPropertyValidationException');
      }
      if (ids.length > 200)
        return vssError(400, 'At most 200 work items can be read at once.', 'VssPropertyValidationException');
      const fields = ctx.query
        .get('fields')
        ?.split(',')
        .map((f) => f.trim());
      for (const name of fields ?? []) if (!fieldDef(name)) return cannotFindField(name);
      const omit = ['omit', '2'].includes((ctx.query.get('errorPolicy') ?? '').toLowerCase());
      const value: unknown[] = [];
      for (const id of ids) {
        const item = workItems.get(Number(id));
        if (!item) {
          if (!omit) return workItemNotFound(id);
          value.push(null);
          continue;
        }
        value.push(workItemJson(item, fields));
      }
      return { status: 200, body: wrap(value) };
    },

    'Wiql_Query By Wiql': (ctx) => {
      const query = (ctx.body as { query?: unknown }).query;
      if (typeof query !== 'string' || !query.trim()) {
        return vssError(400, 'The WIQL query is empty.', 'VssPropertyValidationException');
      }
      const project = ctx.params.project ? findProject(ctx.params.project) : undefined;
      if (ctx.params.project && !project) return projectNotFound(ctx.params.project);
      const parsed = parseWiql(query);
      if (typeof parsed === 'string') {
        return {
          status: 400,
          body: adoError(`TF51005: ${parsed}`, 'Query.QuerySyntaxException', {}, 3200),
        };
      }
      let ids: number[] = [];
      for (const item of workItems.values()) {
        let ok = true;
        for (const condition of parsed.conditions) {
          let literal = condition.value;
          if (literal === '@project') {
            if (!project) {
              return {
                status: 400,
                body: adoError(
                  'TF51011: The @project macro requires the project in the request route.',
                  'Query.QuerySyntaxException',
                  {},
                  3200,
                ),
              };
            }
            literal = project.name;
          }
          const actual = item.fields[condition.field];
          if (!matches(condition.field, condition.operator, actual, literal)) ok = false;
        }
        if (ok) ids.push(item.id);
      }
      ids.sort((a, b) => (parsed.descending ? b - a : a - b));
      const top = ctx.query.get('$top');
      if (top) ids = ids.slice(0, Number(top));
      const idField = fieldRef(fieldDef('System.Id')!);
      return {
        status: 200,
        body: {
          queryType: 'flat',
          queryResultType: 'workItem',
          asOf: new Date().toISOString(),
          columns: parsed.columns.map((c) => fieldRef(fieldDef(c)!)),
          sortColumns: [{ field: idField, descending: parsed.descending }],
          workItems: ids.map((id) => ({ id, url: `${base}/_apis/wit/workItems/${id}` })),
        },
      };
    },
  };

  // -------------------------------------------------------------------------------------------
  // Routing from the specs.

  const routes: Route[] = [];
  for (const name of ['location', 'core', 'wit'] as const) {
    const spec = loadAzureDevOpsSpec(name);
    for (const [specPath, operations] of Object.entries(spec.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const handle = handlers[operation.operationId];
        if (!handle) continue;
        const { pattern, names } = compilePath(spec, operation, specPath);
        routes.push({
          spec: name,
          method: method.toUpperCase(),
          specPath,
          operation,
          pattern,
          names,
          handle,
        });
      }
    }
  }
  const missing = Object.keys(handlers).filter((id) => !routes.some((r) => r.operation.operationId === id));
  if (missing.length > 0) throw new Error(`the specs have no operations ${missing.join(', ')}`);

  const locationJson = (location: Location) => {
    const spec = loadAzureDevOpsSpec(location.spec);
    const operation = spec.paths[location.specPath]?.[location.method];
    if (!operation) throw new Error(`spec ${location.spec} has no ${location.method} ${location.specPath}`);
    return {
      id: location.id,
      area: location.area,
      resourceName:
        operation['x-ms-vss-resource'] ??
        location.specPath
          .split('/')
          .filter((s) => !s.startsWith('{'))
          .at(-1),
      routeTemplate: location.specPath.replace(/^\/(\{organization\}\/)?/, ''),
      resourceVersion: location.resourceVersion,
      minVersion: '1.0',
      maxVersion: String(MAX_VERSION),
      releasedVersion: String(MAX_VERSION),
    };
  };

  // -------------------------------------------------------------------------------------------
  // The HTTP server.

  type Authorization = 'ok' | 'expired' | 'bad';
  const authorize = (headers: IncomingHttpHeaders): Authorization => {
    const value = header(headers, 'authorization') ?? '';
    const basic = /^Basic\s+(.+)$/i.exec(value);
    if (!basic) return 'bad';
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return 'bad';
    const password = decoded.slice(colon + 1);
    if (password === pat) return 'ok';
    if (password === expiredPat) return 'expired';
    return 'bad';
  };

  const dispatch = (req: IncomingMessage, url: URL, rawBody: string): Answer => {
    const segments = url.pathname.split('/').filter(Boolean);
    if (segments[0]?.toLowerCase() !== organization) {
      return vssError(
        404,
        `The collection or organization '${segments[0] ?? ''}' was not found on this server.`,
        'HostNotFoundException',
      );
    }
    const auth = authorize(req.headers);
    if (auth === 'expired') {
      return {
        status: 401,
        body: 'Access Denied: The Personal Access Token used has expired.',
        headers: { 'content-type': 'text/plain; charset=utf-8', 'www-authenticate': `Basic realm="${base}"` },
      };
    }
    if (auth === 'bad') {
      if (signInPageForBadAuth || header(req.headers, 'x-tfs-fedauthredirect') !== 'Suppress') {
        return { status: 203, body: SIGN_IN_PAGE, headers: { 'content-type': 'text/html; charset=utf-8' } };
      }
      return {
        status: 401,
        body: '',
        headers: {
          'www-authenticate': `Bearer authorization_uri=https://login.microsoftonline.com/common, Basic realm="${base}", TFS-Federated`,
        },
      };
    }
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') {
      // The VsoClient's route lookup: OPTIONS {collection}/_apis[/{area}].
      if (segments[1]?.toLowerCase() !== '_apis' || segments.length > 3) {
        return vssError(404, 'No API resource is registered at this path.', 'VssResourceNotFoundException');
      }
      const area = segments[2]?.toLowerCase();
      const locations = LOCATIONS.filter((l) => !area || l.area.toLowerCase() === area).map(locationJson);
      return { status: 200, body: wrap(locations) };
    }
    const route = routes.find((r) => r.method === method && r.pattern.test(url.pathname));
    if (!route) {
      return vssError(
        404,
        `No API resource is registered for ${method} ${url.pathname}.`,
        'VssResourceNotFoundException',
      );
    }
    const spec = loadAzureDevOpsSpec(route.spec);
    const match = route.pattern.exec(url.pathname)!;
    const params: Record<string, string | undefined> = {};
    route.names.forEach((name, i) => {
      const value = match[i + 1];
      params[name] = value === undefined ? undefined : decodeURIComponent(value);
    });

    // api-version: Accept header (application/json;api-version=7.1-preview.3) or query string.
    const parameters = parametersOf(spec, route.operation);
    const versionParameter = parameters.find((p) => p.parameter.name === 'api-version');
    const version =
      /api-version=([^;,\s]+)/i.exec(header(req.headers, 'accept') ?? '')?.[1] ??
      url.searchParams.get('api-version');
    if (!version && versionParameter?.parameter.required) {
      return vssError(
        400,
        `No api-version was supplied for the "${method}" request. An api-version is required for this resource, for example api-version=${MAX_VERSION}.`,
        'VssVersionNotSpecifiedException',
      );
    }
    if (version) {
      const parsed = /^(\d+\.\d+)(-preview(\.\d+)?)?$/.exec(version);
      if (!parsed)
        return vssError(400, `The api-version "${version}" is not valid.`, 'VssInvalidApiVersionException');
      if (Number(parsed[1]) > MAX_VERSION) {
        return vssError(
          400,
          `The requested REST API version of ${parsed[1]} is out of range for this server. The latest REST API version this server supports is ${MAX_VERSION}.`,
          'VssVersionOutOfRangeException',
        );
      }
      if (versionParameter?.ref?.includes('preview') && !parsed[2]) {
        return vssError(
          400,
          `The requested version "${version}" of the resource is under preview. The -preview flag must be supplied in the api-version for such requests. For example: "${parsed[1]}-preview"`,
          'VssInvalidPreviewVersionException',
        );
      }
    }

    for (const { parameter } of parameters) {
      if (parameter.in === 'query' && parameter.name !== 'api-version') {
        const value = url.searchParams.get(parameter.name);
        if (value === null) {
          if (parameter.required) {
            return vssError(
              400,
              `The query parameter ${parameter.name} is required.`,
              'VssPropertyValidationException',
            );
          }
          continue;
        }
        // Enums bind by name (case-insensitive) or by number, as ASP.NET does.
        if (
          parameter.enum &&
          !/^\d+$/.test(value) &&
          !parameter.enum.some((e) => e.toLowerCase() === value.toLowerCase())
        ) {
          return vssError(
            400,
            `The value "${value}" is not valid for ${parameter.name} (one of ${parameter.enum.join(', ')}).`,
            'VssPropertyValidationException',
          );
        }
        if (parameter.type === 'boolean' && !/^(true|false)$/i.test(value)) {
          return vssError(
            400,
            `The value "${value}" is not valid for ${parameter.name}.`,
            'VssPropertyValidationException',
          );
        }
        if (parameter.type === 'integer' && !/^-?\d+$/.test(value)) {
          return vssError(
            400,
            `The value "${value}" is not valid for ${parameter.name}.`,
            'VssPropertyValidationException',
          );
        }
      }
      if (parameter.in === 'path' && parameter.type === 'integer' && params[parameter.name] !== undefined) {
        if (!/^\d+$/.test(params[parameter.name]!)) {
          return vssError(
            400,
            `The value "${params[parameter.name]}" is not valid for ${parameter.name}.`,
            'VssPropertyValidationException',
          );
        }
      }
    }

    let body: unknown;
    const bodyParameter = parameters.find((p) => p.parameter.in === 'body')?.parameter;
    if (bodyParameter) {
      const consumes = route.operation.consumes ?? ['application/json'];
      const contentType = (header(req.headers, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
      if (!consumes.includes(contentType)) {
        return vssError(
          415,
          `The request indicated a Content-Type of "${contentType || 'none'}" for method type "${method}" which is not supported. Valid content types for this method are: ${consumes.join(', ')}.`,
          'VssRequestContentTypeNotSupportedException',
        );
      }
      try {
        body = JSON.parse(rawBody);
      } catch {
        return vssError(400, 'The request body is not valid JSON.', 'VssPropertyValidationException');
      }
      const problems = bodyParameter.schema ? validate(spec, body, bodyParameter.schema) : [];
      if (bodyParameter.required && (body === null || body === undefined)) problems.push('$: required');
      if (problems.length > 0) {
        return vssError(
          400,
          `The request body does not match ${bodyParameter.schema?.$ref ?? 'the schema'}: ${problems.slice(0, 5).join('; ')}`,
          'VssPropertyValidationException',
        );
      }
    }

    const requestBase = `http://${header(req.headers, 'host') ?? '127.0.0.1'}/${segments[0]}`;
    const answer = route.handle({ requestBase, params, query: url.searchParams, headers: req.headers, body });
    const schema = route.operation.responses?.['200']?.schema;
    if (answer.status === 200 && schema && answer.body !== undefined) {
      const resolved = resolveSchema(spec, schema);
      const wrapped =
        resolved.type === 'array' && answer.body && typeof answer.body === 'object' && 'value' in answer.body;
      const checked = wrapped
        ? (answer.body as { value: unknown[] }).value.filter((v) => v !== null)
        : answer.body;
      for (const problem of validate(spec, checked, schema)) {
        specViolations.push(`${route.operation.operationId}: ${problem}`);
      }
    }
    return { ...answer, headers: { ...answer.headers, 'x-fake-api-version': version ?? '' } };
  };

  const server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify(vssError(500, `Fake failure: ${String(error)}`, 'VssServiceException').body));
      }
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const entry: AzureDevOpsFakeRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      at: Date.now(),
      headers: req.headers,
    };
    requests.push(entry);
    const rawBody = await text(req);
    if (rawBody) {
      try {
        entry.body = JSON.parse(rawBody);
      } catch {
        entry.body = rawBody;
      }
    }
    if (delayMs > 0) await sleep(delayMs);
    if (res.destroyed) return;

    const send = (answer: Answer) => {
      if (res.destroyed) return;
      if (answer.drop) {
        req.socket.destroy();
        return;
      }
      const headers: Record<string, string> = {
        'x-tfs-processid': collectionId,
        activityid: randomUUID(),
        ...answer.headers,
      };
      delete headers['x-fake-api-version'];
      let payload = '';
      if (typeof answer.body === 'string') {
        payload = answer.body;
        headers['content-type'] ??= 'text/html; charset=utf-8';
      } else if (answer.body !== undefined) {
        payload = JSON.stringify(answer.body);
        headers['content-type'] ??= 'application/json; charset=utf-8';
      }
      res.writeHead(answer.status, headers);
      res.end(payload);
    };

    const target = entry.path;
    if (rateLimit.count > 0 && (!rateLimit.path || rateLimit.path.test(target))) {
      rateLimit.count--;
      const reset = Math.ceil(Date.now() / 1000) + rateLimit.seconds;
      send({
        status: 429,
        headers: {
          'retry-after': String(rateLimit.seconds),
          'x-ratelimit-resource': 'Core',
          'x-ratelimit-delay': '0',
          'x-ratelimit-limit': '200',
          'x-ratelimit-remaining': '0',
          'x-ratelimit-reset': String(reset),
        },
        body: vssError(
          429,
          "TF400733: The request has been canceled: Request was blocked due to exceeding usage of resource 'Core' in namespace 'User'.",
          'RequestBlockedException',
        ).body,
      });
      return;
    }
    if (failure.count > 0 && (!failure.path || failure.path.test(target))) {
      failure.count--;
      send(
        vssError(
          failure.status,
          'The service is temporarily unavailable. Try again later.',
          'VssServiceUnavailableException',
        ),
      );
      return;
    }
    send(dispatch(req, new URL(target, 'http://fake.invalid'), rawBody));
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  base = `http://127.0.0.1:${port}/${organization}`;

  const itemFor = (key: string): AzureDevOpsFakeWorkItem => {
    const item = workItems.get(Number(key));
    if (!item) throw new Error(`the fake has no work item ${key}`);
    return item;
  };
  /** The workitem.updated event of the update that made `item` its current revision. */
  const workItemUpdated = (
    item: AzureDevOpsFakeWorkItem,
    changed: Record<string, { oldValue: unknown; newValue: unknown }>,
    subscriptionId: string,
    notificationId: number,
  ) => {
    const itemUrl = `${base}/${item.projectId}/_apis/wit/workItems/${item.id}`;
    const html = `${base}/web/wi.aspx?pcguid=${collectionId}&id=${item.id}`;
    const name = `${String(item.fields['System.WorkItemType'])} #${item.id}`;
    const title = String(item.fields['System.Title']);
    const state = String(item.fields['System.State']);
    const by = IDENTITY.displayName;
    const text = `${name} (${title}) transitioned to ${state} by ${by}\r\n(${html})`;
    const htmlText = `<a href="${escapeHtml(html)}">${escapeHtml(name)}</a> (${escapeHtml(title)}) transitioned to ${escapeHtml(state)} by ${escapeHtml(by)}`;
    const markdown = `[${name}](${html}) (${title}) transitioned to ${state} by ${by}`;
    const container = (id: string) => ({ id, baseUrl: `${base}/` });
    return {
      subscriptionId,
      notificationId,
      id: randomUUID(),
      eventType: 'workitem.updated',
      publisherId: 'tfs',
      message: { text, html: htmlText, markdown },
      detailedMessage: {
        text: `${text}\r\n\r\n- New State: ${state}\r\n`,
        html: `${htmlText}<ul>\r\n<li>New State: ${escapeHtml(state)}</li></ul>`,
        markdown: `${markdown}\r\n\r\n* New State: ${state}\r\n`,
      },
      resource: {
        // Update n made revision n: update 1 is the creation.
        id: item.rev,
        workItemId: item.id,
        rev: item.rev,
        revisedBy: { ...identityRef(), name: `${IDENTITY.displayName} <${IDENTITY.uniqueName}>` },
        // The update's revision is the current one, which Azure DevOps dates "until the end of time".
        revisedDate: '9999-01-01T00:00:00Z',
        fields: changed,
        _links: {
          self: { href: `${itemUrl}/updates/${item.rev}` },
          workItemUpdates: { href: `${itemUrl}/updates` },
          parent: { href: itemUrl },
          html: { href: html },
        },
        url: `${itemUrl}/updates/${item.rev}`,
        revision: {
          id: item.id,
          rev: item.rev,
          // A revision's fields leave out System.Id (it is `id`) and write identities as text.
          fields: Object.fromEntries(
            Object.entries(item.fields)
              .filter(([ref]) => ref !== 'System.Id')
              .map(([ref, value]) => [ref, identityText(value)]),
          ),
          _links: {
            self: { href: `${itemUrl}/revisions/${item.rev}` },
            workItemRevisions: { href: `${itemUrl}/revisions` },
            parent: { href: itemUrl },
          },
          url: `${itemUrl}/revisions/${item.rev}`,
        },
      },
      resourceVersion: '1.0-preview.2',
      resourceContainers: {
        collection: container(collectionId),
        account: container(accountId),
        project: container(item.projectId),
      },
      createdDate: new Date().toISOString(),
    };
  };

  const setState = (key: string, state: string) => {
    const item = itemFor(key);
    if (!STATES.some((s) => s.name === state)) throw new Error(`unknown state ${state}`);
    // Saving a work item without a change makes no revision, so no update and no event.
    if (item.fields['System.State'] === state) return;
    const now = new Date().toISOString();
    const next: Record<string, unknown> = {
      'System.State': state,
      'System.Reason': state === 'New' ? 'New' : `Moved to state ${state}`,
      'System.ChangedDate': now,
      'Microsoft.VSTS.Common.StateChangeDate': now,
    };
    const changed: Record<string, { oldValue: unknown; newValue: unknown }> = {
      'System.Rev': { oldValue: item.rev, newValue: item.rev + 1 },
    };
    for (const [ref, value] of Object.entries(next)) {
      changed[ref] = { oldValue: item.fields[ref], newValue: value };
      item.fields[ref] = value;
    }
    item.rev++;
    webhooks.send(({ hook, id, sent }) => ({
      body: JSON.stringify(workItemUpdated(item, changed, id, sent)),
      headers: { 'Content-Type': 'application/json; charset=utf-8', ...basicAuthorization(hook) },
    }));
  };

  return {
    url: base,
    organization,
    pat,
    validValues: { organizationUrl: base, personalAccessToken: pat },
    wrongSecretValues: {
      organizationUrl: base,
      personalAccessToken: `wrong${randomUUID().replace(/-/g, '')}`,
    },
    expiredValues: { organizationUrl: base, personalAccessToken: expiredPat },
    routing: {
      project: 'Ops',
      ticketType: 'Bug',
      areaPath: 'Ops\\Cloud',
      fieldValues: { 'Custom.CostCenter': 'FinOps' },
    },
    requests,
    workItems,
    specViolations,
    ticketCount: () => workItems.size,
    rateLimitNext(count, retryAfterSeconds, pathPattern) {
      rateLimit.count = count;
      rateLimit.seconds = retryAfterSeconds;
      rateLimit.path = pathPattern;
    },
    failNext(count, status, pathPattern) {
      failure.count = count;
      failure.status = status;
      failure.path = pathPattern;
    },
    loseNextCreateResponse() {
      loseNextCreate = true;
    },
    setDelay(ms) {
      delayMs = ms;
    },
    setStatus(key, status) {
      setState(key, status === 'open' ? 'New' : status === 'in_progress' ? 'Active' : 'Closed');
    },
    setState,
    addWebhook(hook) {
      webhooks.add(hook);
    },
    webhookDeliveries: webhooks.deliveries,
    webhooksSettled: () => webhooks.settled(),
    answerBadAuthWithSignInPage(enabled) {
      signInPageForBadAuth = enabled;
    },
    setLocationUrl(url) {
      locationUrl = url;
    },
    denyCreate(projectName, denied) {
      const project = findProject(projectName);
      if (!project) throw new Error(`the fake has no project ${projectName}`);
      project.createDenied = denied;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// WIQL: the subset the adapter sends (SELECT [f], ... FROM WorkItems WHERE <cond> AND <cond> ORDER BY [f]).

interface WiqlCondition {
  field: string;
  operator: '=' | '<>' | 'CONTAINS' | 'NOT CONTAINS';
  value: string;
}

interface WiqlQuery {
  columns: string[];
  conditions: WiqlCondition[];
  descending: boolean;
}

const WIQL_FIELDS = new Set([
  'System.Id',
  'System.TeamProject',
  'System.Tags',
  'System.WorkItemType',
  'System.State',
  'System.Title',
]);

function tokenize(query: string): string[] | string {
  const tokens: string[] = [];
  const pattern = /\s*(\[[^\]]+\]|'(?:[^']|'')*'|@\w+|<>|=|,|\w+)/y;
  let index = 0;
  while (index < query.length) {
    if (/^\s*$/.test(query.slice(index))) break;
    pattern.lastIndex = index;
    const match = pattern.exec(query);
    if (!match) return `Unexpected text in the query at position ${index}: ${query.slice(index, index + 20)}`;
    tokens.push(match[1]!);
    index = pattern.lastIndex;
  }
  return tokens;
}

function parseWiql(query: string): WiqlQuery | string {
  const tokens = tokenize(query);
  if (typeof tokens === 'string') return tokens;
  let i = 0;
  const peek = () => tokens[i]?.toUpperCase();
  const field = (): string | undefined => {
    const token = tokens[i];
    if (!token?.startsWith('[')) return undefined;
    i++;
    const name = token.slice(1, -1);
    return WIQL_FIELDS.has(name) ? name : `!${name}`;
  };
  if (peek() !== 'SELECT') return 'Expecting SELECT.';
  i++;
  const columns: string[] = [];
  for (;;) {
    const column = field();
    if (!column) return 'Expecting a field in the SELECT list.';
    if (column.startsWith('!'))
      return `The query references the field ${column.slice(1)}, which does not exist.`;
    columns.push(column);
    if (tokens[i] !== ',') break;
    i++;
  }
  if (peek() !== 'FROM') return 'Expecting FROM.';
  i++;
  if (peek() !== 'WORKITEMS') return 'Expecting WorkItems after FROM.';
  i++;
  const conditions: WiqlCondition[] = [];
  if (peek() === 'WHERE') {
    i++;
    for (;;) {
      const name = field();
      if (!name) return 'Expecting a field in the WHERE clause.';
      if (name.startsWith('!'))
        return `The query references the field ${name.slice(1)}, which does not exist.`;
      let operator: WiqlCondition['operator'];
      if (tokens[i] === '=' || tokens[i] === '<>') operator = tokens[i++] as '=' | '<>';
      else if (peek() === 'CONTAINS') {
        operator = 'CONTAINS';
        i++;
      } else if (peek() === 'NOT' && tokens[i + 1]?.toUpperCase() === 'CONTAINS') {
        operator = 'NOT CONTAINS';
        i += 2;
      } else return `Expecting an operator after [${name}].`;
      const literal = tokens[i++];
      if (!literal) return 'Expecting a value.';
      let value: string;
      if (literal.startsWith("'")) value = literal.slice(1, -1).replace(/''/g, "'");
      else if (literal.toLowerCase() === '@project') value = '@project';
      else if (/^\d+$/.test(literal)) value = literal;
      else return `The value ${literal} is not supported.`;
      conditions.push({ field: name, operator, value });
      if (peek() !== 'AND') break;
      i++;
    }
  }
  let descending = false;
  if (peek() === 'ORDER') {
    i++;
    if (peek() !== 'BY') return 'Expecting BY after ORDER.';
    i++;
    const order = field();
    if (order !== 'System.Id') return 'Only ORDER BY [System.Id] is supported.';
    if (peek() === 'ASC' || peek() === 'DESC') descending = tokens[i++]!.toUpperCase() === 'DESC';
  }
  if (i < tokens.length) return `Unexpected ${tokens[i]} in the query.`;
  return { columns, conditions, descending };
}

/** Tags CONTAINS matches a whole tag (case-insensitive); other strings compare case-insensitively. */
function matches(
  field: string,
  operator: WiqlCondition['operator'],
  actual: unknown,
  value: string,
): boolean {
  const text = actual === undefined || actual === null ? '' : String(actual);
  if (operator === '=' || operator === '<>') {
    const equal = text.toLowerCase() === value.toLowerCase();
    return operator === '=' ? equal : !equal;
  }
  const contains =
    field === 'System.Tags'
      ? text
          .split(';')
          .map((t) => t.trim().toLowerCase())
          .includes(value.toLowerCase())
      : text.toLowerCase().includes(value.toLowerCase());
  return operator === 'CONTAINS' ? contains : !contains;
}
