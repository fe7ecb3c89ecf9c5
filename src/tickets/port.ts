/**
 * The TicketProvider port: what the core needs from Jira, Azure DevOps and ServiceNow. Adapters in
 * adapters/tickets/* implement it; the core never imports them (main.ts wires the registry).
 *
 * Errors: adapters throw AppError (src/errors.ts) with one of the provider codes: INVALID_URL,
 * UNREACHABLE, TLS_ERROR, INVALID_CREDENTIALS, EXPIRED_CREDENTIALS, FORBIDDEN, NOT_FOUND,
 * RATE_LIMITED, PROVIDER_ERROR, INVALID_INPUT, each with a sentence that tells the admin what to
 * fix; `details.field` names the form field it concerns, `details.fieldErrors` carries the
 * provider's own field errors, `details.retryAfterSeconds` a rate limit's wait. `verify` never
 * throws for those: it returns them classified.
 */
import type { AppError, ErrorCode } from '../errors.js';
import type { UrlPolicy } from '../net/url-policy.js';

export const TICKET_PROVIDER_KINDS = ['jira', 'azure-devops', 'servicenow'] as const;
export type TicketProviderKind = (typeof TICKET_PROVIDER_KINDS)[number];

export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** One input of a provider's connection form, rendered by the Slack and Teams adapters. */
export interface CredentialField {
  readonly key: string;
  readonly label: string;
  readonly hint?: string;
  readonly placeholder?: string;
  readonly required: boolean;
  /** Secret fields are sealed at rest, never pre-filled ("leave blank to keep the saved value"). */
  readonly secret: boolean;
  readonly type: 'url' | 'text' | 'email' | 'password' | 'select';
  readonly options?: readonly { readonly value: string; readonly label: string }[];
  readonly defaultValue?: string;
  /** Shown and required only when another field has one of these values (Jira Cloud vs Server). */
  readonly when?: { readonly field: string; readonly oneOf: readonly string[] };
}

export interface ProviderDescriptor {
  readonly kind: TicketProviderKind;
  /** "Jira", "Azure DevOps", "ServiceNow": the words of CloudPi's Integration page. */
  readonly displayName: string;
  readonly fields: readonly CredentialField[];
  /** The word for a ticket in this provider: issue, work item, incident. */
  readonly ticketNoun: string;
}

/** Values typed into the form: non-secret ones are stored as settings, secret ones sealed. */
export type ProviderValues = Readonly<Record<string, string>>;

/** Where and how tickets are created (configured with `configure <provider>`). */
export interface Routing {
  readonly project?: string;
  /** Jira issue type id or name, Azure DevOps work item type name. */
  readonly ticketType?: string;
  readonly areaPath?: string;
  readonly iterationPath?: string;
  /** ServiceNow assignment group sys_id or name. */
  readonly assignmentGroup?: string;
  readonly category?: string;
  /** Severity -> the provider's priority (Jira priority name, ADO 1-4, ServiceNow urgency/impact 1-3). */
  readonly priorityMap?: Readonly<Partial<Record<Severity, string>>>;
  /** Values for fields the project requires, by field key. */
  readonly fieldValues?: Readonly<Record<string, unknown>>;
}

export interface Identity {
  readonly id: string;
  readonly displayName: string;
  readonly email?: string;
}

export type VerifyResult =
  | { readonly ok: true; readonly identity: Identity; readonly summary: string }
  | {
      readonly ok: false;
      readonly code: ErrorCode;
      readonly message: string;
      readonly field?: string;
      readonly fieldErrors?: Readonly<Record<string, string>>;
    };

export interface Project {
  readonly id: string;
  readonly key: string;
  readonly name: string;
}

export interface TicketType {
  readonly id: string;
  readonly name: string;
}

export interface RequiredField {
  readonly key: string;
  readonly name: string;
  /** string, number, option, array, user, date ... as the provider describes it. */
  readonly type: string;
  readonly allowedValues?: readonly { readonly id: string; readonly name: string }[];
}

export interface TicketInput {
  readonly title: string;
  /** Plain text with paragraphs separated by blank lines; adapters convert (ADF, HTML). */
  readonly description: string;
  readonly severity: Severity;
  /** Link back to the recommendation in CloudPi. */
  readonly link?: string;
  readonly routing: Routing;
}

export interface TicketRef {
  /** Jira key (OPS-12), Azure DevOps id ("42"), ServiceNow number (INC0010001). */
  readonly key: string;
  /** Browser URL of the ticket. */
  readonly url: string;
}

export type NormalizedStatus = 'open' | 'in_progress' | 'done' | 'closed';

export interface TicketStatus {
  readonly status: NormalizedStatus;
  /** The provider's own status name ("In Progress", "Resolved", "Active"). */
  readonly providerStatus: string;
}

export interface TicketProvider {
  readonly kind: TicketProviderKind;
  /** Checks the credentials (and, with a routing, permission to create in that project). */
  verify(routing?: Routing): Promise<VerifyResult>;
  listProjects(): Promise<Project[]>;
  listTicketTypes(project: string): Promise<TicketType[]>;
  /** Fields the provider requires for this project + type beyond the ones the adapter fills. */
  describeFields(project: string, ticketType: string): Promise<RequiredField[]>;
  /** The ticket carrying this idempotency key, if one exists. */
  findTicket(idempotencyKey: string, routing: Routing): Promise<TicketRef | undefined>;
  /** Creates one ticket carrying the key, or returns the existing one that carries it. */
  createTicket(input: TicketInput, idempotencyKey: string): Promise<TicketRef>;
  getTicket(key: string): Promise<TicketStatus>;
}

/** What an adapter gets to build one tenant's instance. */
export interface ProviderContext {
  readonly values: ProviderValues;
  readonly urlPolicy: UrlPolicy;
  /** Per-call timeout; at most 10 s by default. */
  readonly timeoutMs?: number;
  /** Attempts for retryable failures (429, 5xx, connection resets); 1 disables retries. */
  readonly maxAttempts?: number;
}

/**
 * How a provider proves that a status webhook is its own: Jira signs the raw body
 * (`X-Hub-Signature: sha256=<hex HMAC>`, admin webhooks with a secret); Azure DevOps service hooks
 * and ServiceNow outbound REST messages send Basic auth (user `cloudpi`, the secret as password).
 */
export type WebhookAuth = 'hub-signature-sha256' | 'basic';

/** What the core needs to receive a provider's status webhooks; the vendor's format stays in the adapter. */
export interface WebhookSupport {
  readonly auth: WebhookAuth;
  /**
   * The tickets a delivery is about (keys as createTicket returns them), or [] for events that
   * do not concern a ticket's status. The payload is never trusted beyond this: the ticket is
   * read back from the provider before anything changes.
   */
  ticketKeys(payload: unknown): string[];
  /** Setup steps for the admin, naming where in the provider the URL and secret go. */
  instructions(url: string): string[];
}

export interface TicketProviderFactory {
  readonly descriptor: ProviderDescriptor;
  /** Status webhooks, when the provider can send them (else status comes by polling only). */
  readonly webhook?: WebhookSupport;
  /** One new instance per tenant and call site; never a shared instance mutated per call. */
  create(context: ProviderContext): TicketProvider;
}

/** The classified `verify` answer for an AppError an adapter raised on the way. */
export function verifyFailure(error: AppError): VerifyResult {
  const field = typeof error.details?.field === 'string' ? error.details.field : undefined;
  const fieldErrors = error.details?.fieldErrors as Record<string, string> | undefined;
  return {
    ok: false,
    code: error.code,
    message: error.message,
    ...(field ? { field } : {}),
    ...(fieldErrors && Object.keys(fieldErrors).length > 0 ? { fieldErrors } : {}),
  };
}
