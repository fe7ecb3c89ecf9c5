import { AppError, ErrorCode, isAppError } from '../errors.js';
import type { AdminPolicy } from '../identity/admins.js';
import { SSO_FIELDS, type SsoService, type SsoStatus } from '../identity/sso.js';
import type { IntegrationService, ProviderStatusView } from '../integrations/service.js';
import { testEmail } from '../notify/email-content.js';
import { SMTP_FIELDS, type SmtpService, type SmtpStatus } from '../notify/smtp.js';
import { CLOUDS } from '../recommendations/ingest.js';
import {
  CLOUD_LABELS,
  describeFilters,
  filtersOf,
  parseSubscriptionForm,
  SUBSCRIBE_FIELDS,
  type SubmittedValue,
} from '../recommendations/subscriptions.js';
import type { Database } from '../storage/db.js';
import { desc, eq } from '../storage/orm.js';
import type { Repositories } from '../storage/repositories/index.js';
import type { RouteRow } from '../storage/repositories/routes.js';
import { recommendations, tickets } from '../storage/schema.js';
import type { CredentialField, ProviderValues, Routing, TicketProviderKind } from '../tickets/port.js';
import { SEVERITIES, TICKET_PROVIDER_KINDS } from '../tickets/port.js';
import type { TicketWebhooks, WebhookSetup } from '../tickets/webhooks.js';
import { COMMANDS, type Command, type CommandName } from './grammar.js';
import { SharedReads } from './shared-reads.js';
import type {
  ActionButton,
  AuditView,
  ConfigureFormView,
  ConfirmView,
  FormField,
  HelpView,
  IntegrationDetailsView,
  IntegrationFormView,
  NoticeView,
  ProviderSection,
  SettingSection,
  SettingsKind,
  StatusBoardView,
  SubscribeFormView,
  SubscriptionListView,
  View,
} from './views.js';

/** Who is asking, as the chat platform adapter established it. */
export interface Actor {
  readonly tenantId: string;
  readonly platform: 'slack' | 'teams';
  readonly userId: string;
  /** Workspace admin / owner (Slack), as the platform reports it. */
  readonly platformAdmin: boolean;
}

/** What to do with a command's answer: a message (ephemeral) or a form to open. */
export type Reply =
  | { readonly type: 'message'; readonly view: View }
  | { readonly type: 'open-form'; readonly view: IntegrationFormView | IntegrationDetailsView | ConfirmView }
  | { readonly type: 'open-configure'; readonly provider: TicketProviderKind }
  /**
   * Open the subscribe form for the conversation the command came from, once the adapter checked
   * the bot can post there (`subscribeForm`).
   */
  | { readonly type: 'open-subscribe'; readonly channelId: string };

/** Where a command was typed, as far as the platform says. */
export interface CommandContext {
  /** The channel / conversation id (a channel that can be subscribed). */
  readonly channelId?: string | undefined;
  /** Where to answer later (a sign-in confirmation), when not the channel: a personal chat. */
  readonly replyTo?: string | undefined;
}

export type FormOutcome =
  /** Show these at the fields, keep the form open (Slack: response_action errors). */
  | { readonly type: 'errors'; readonly errors: Readonly<Record<string, string>> }
  /** Replace the form with this view (success notice, or the form again with the error). */
  | { readonly type: 'view'; readonly view: View };

export interface ChatCommandsOptions {
  readonly db: Database;
  readonly repositories: Repositories;
  readonly integrations: IntegrationService;
  readonly admins: AdminPolicy;
  /** Provider status webhooks (`webhook <provider>`). */
  readonly webhooks?: TicketWebhooks;
  /** Single sign-on settings and sign-in links (`sso`, `login`). */
  readonly sso?: SsoService;
  /** Email (SMTP) settings (`smtp`) and the test email. */
  readonly smtp?: SmtpService;
}

const ADMIN_ONLY = new Set<CommandName>(COMMANDS.filter((c) => c.adminOnly).map((c) => c.name));

function notice(tone: NoticeView['tone'], title: string, text?: string): NoticeView {
  return { kind: 'notice', tone, title, ...(text ? { text } : {}) };
}

function providerKindOf(value: string | null): TicketProviderKind | undefined {
  return TICKET_PROVIDER_KINDS.find((k) => k === value);
}

function actorName(actor: Actor): string {
  return `${actor.platform}:${actor.userId}`;
}

/**
 * The commands and forms of both chat platforms. Methods return view models; the adapters
 * decide how to show them (ephemeral message, modal, App Home, Adaptive Card).
 */
/**
 * What the status board shows of a tenant, whoever asks, read together (an answer to a slash
 * command is waited for). A burst of requests for one tenant's board shares these reads.
 */
async function readBoardState(o: ChatCommandsOptions, tenantId: string) {
  const [board, recent, ssoStatus, smtpStatus, deliveryProblems] = await Promise.all([
    o.integrations.statusBoard(tenantId),
    o.db
      .select({
        key: tickets.key,
        url: tickets.url,
        provider: tickets.provider,
        status: tickets.status,
        providerStatus: tickets.providerStatus,
        title: recommendations.title,
      })
      .from(tickets)
      .innerJoin(recommendations, eq(recommendations.id, tickets.recommendationId))
      .where(eq(tickets.tenantId, tenantId))
      .orderBy(desc(tickets.createdAt))
      .limit(5),
    o.sso?.status(tenantId),
    o.smtp?.status(tenantId),
    o.repositories.recommendations.failedCards(tenantId),
  ]);
  return { board, recent, ssoStatus, smtpStatus, deliveryProblems };
}

type BoardState = Awaited<ReturnType<typeof readBoardState>>;

export class ChatCommands {
  readonly #o: ChatCommandsOptions;
  readonly #boardReads = new SharedReads<BoardState>();

  constructor(options: ChatCommandsOptions) {
    this.#o = options;
  }

  /**
   * An admin of the tenant (platform admin, bootstrap, granted, or in the SSO admin group) who,
   * when the tenant requires SSO for admin changes, signed in recently (`login`).
   */
  async isAdmin(actor: Actor): Promise<boolean> {
    const admin =
      actor.platformAdmin || (await this.#o.admins.isAdmin(actor.tenantId, actor.platform, actor.userId));
    if (!admin || !this.#o.sso) return admin;
    // Bootstrap admins (CLOUDPI_ADMINS, set by the operator) are the way back in when the IdP
    // is down or misconfigured: the requirement does not apply to them.
    if (this.#o.admins.isBootstrapAdmin(actor.platform, actor.userId)) return true;
    if (!(await this.#o.sso.requiredForAdmin(actor.tenantId))) return true;
    return this.#o.sso.hasValidLogin(actor.tenantId, actor.platform, actor.userId);
  }

  /** Why an admin command is refused: not an admin, or an admin who must sign in first. */
  async refusalFor(actor: Actor): Promise<NoticeView> {
    const admin =
      actor.platformAdmin || (await this.#o.admins.isAdmin(actor.tenantId, actor.platform, actor.userId));
    if (
      admin &&
      this.#o.sso &&
      !this.#o.admins.isBootstrapAdmin(actor.platform, actor.userId) &&
      (await this.#o.sso.requiredForAdmin(actor.tenantId))
    ) {
      const link = await this.#o.sso
        .createLoginLink(actor.tenantId, actor.platform, actor.userId, {})
        .catch(() => undefined);
      return {
        ...notice(
          'warning',
          'Sign in first: admin changes need single sign-on',
          'This workspace requires a recent sign-in with your organization account for admin changes. Open the link (it works once, for ten minutes), then try again.',
        ),
        ...(link ? { link: { url: link.url, label: 'Sign in' } } : {}),
      };
    }
    return this.#refusal();
  }

  #refusal(): NoticeView {
    return notice(
      'error',
      'Only CloudPi admins can change integrations',
      'Workspace admins and owners are CloudPi admins, and so are people an admin granted it to (cloudpi admin grant). Ask one of them.',
    );
  }

  help(suggestion?: string): HelpView {
    return {
      kind: 'help',
      intro: 'CloudPi brings your Integration settings and cost recommendations into chat. Commands:',
      commands: COMMANDS.map((c) => ({ usage: `/cloudpi ${c.usage}`, description: c.description })),
      ...(suggestion ? { suggestion: `/cloudpi ${suggestion}` } : {}),
    };
  }

  /** Answers a parsed command. Forms that need provider data come back as `open-configure`. */
  async handle(actor: Actor, command: Command, where: CommandContext = {}): Promise<Reply> {
    if (command.name === 'unknown') return { type: 'message', view: this.help(command.suggestion) };
    if (command.name === 'usage') return { type: 'message', view: notice('warning', command.message) };
    if (ADMIN_ONLY.has(command.name) && !(await this.isAdmin(actor))) {
      return { type: 'message', view: await this.refusalFor(actor) };
    }
    switch (command.name) {
      case 'help':
        return { type: 'message', view: this.help() };
      case 'integrations':
        return { type: 'message', view: await this.statusBoard(actor) };
      case 'connect':
        return { type: 'open-form', view: await this.integrationEntry(actor, command.provider) };
      case 'configure':
        return { type: 'open-configure', provider: command.provider };
      case 'disconnect':
        return { type: 'open-form', view: this.confirmDisconnect(command.provider) };
      case 'audit':
        return { type: 'message', view: await this.audit(actor) };
      case 'webhook':
        return { type: 'message', view: await this.webhook(actor, command.provider, command.rotate) };
      case 'subscribe':
      case 'unsubscribe':
        if (!where.channelId)
          return {
            type: 'message',
            view: notice('warning', `Use /cloudpi ${command.name} in the channel it is for.`),
          };
        return command.name === 'subscribe'
          ? { type: 'open-subscribe', channelId: where.channelId }
          : { type: 'message', view: await this.subscriptions(actor, where.channelId) };
      case 'sso':
        if (this.#o.sso) return { type: 'open-form', view: await this.integrationEntry(actor, 'sso') };
        return {
          type: 'message',
          view: notice('info', 'Single sign-on is not available in this deployment.'),
        };
      case 'login':
        return { type: 'message', view: await this.login(actor, where) };
      case 'smtp':
        if (this.#o.smtp) return { type: 'open-form', view: await this.integrationEntry(actor, 'smtp') };
        return { type: 'message', view: notice('info', 'Email (SMTP) is not available in this deployment.') };
    }
  }

  #section(view: ProviderStatusView, canEdit: boolean): ProviderSection {
    const details: string[] = [];
    const site = Object.entries(view.values).find(([k]) => /url/i.test(k))?.[1];
    if (site) details.push(site);
    if (view.status === 'error' && view.lastError) {
      details.push(
        `Last check failed${view.lastVerifiedAt ? ` at ${view.lastVerifiedAt.toISOString()}` : ''}: ${view.lastError}`,
      );
    }
    if (view.routing.project)
      details.push(
        `Tickets go to ${view.routing.project}${view.routing.ticketType ? ` (${view.routing.ticketType})` : ''}`,
      );
    if (view.status === 'connected') details.push('Ticket creation is paused.');
    const p = view.kind;
    const actions: ActionButton[] = !canEdit
      ? []
      : view.status === 'not_connected'
        ? [{ action: 'connect', label: 'Connect', provider: p, style: 'primary' }]
        : [
            { action: 'edit', label: 'Edit', provider: p },
            { action: 'configure', label: 'Configure', provider: p },
            view.paused
              ? { action: 'activate', label: 'Activate', provider: p }
              : { action: 'pause', label: 'Pause', provider: p },
            { action: 'disconnect', label: 'Disconnect Provider', provider: p, style: 'danger' },
          ];
    return {
      provider: p,
      displayName: view.displayName,
      badge: view.badge,
      status: view.status,
      details,
      actions,
    };
  }

  /** The Integration settings page (App Home, `integrations`). */
  async statusBoard(actor: Actor): Promise<StatusBoardView> {
    const [canEdit, { board, recent, ssoStatus, smtpStatus, deliveryProblems }] = await Promise.all([
      this.isAdmin(actor),
      this.#boardReads.read(actor.tenantId, () => readBoardState(this.#o, actor.tenantId)),
    ]);
    return {
      kind: 'status-board',
      title: 'Integration settings',
      providers: board.map((view) => this.#section(view, canEdit)),
      settings: [
        await this.#ssoSection(actor, canEdit, ssoStatus),
        await this.#smtpSection(actor, canEdit, smtpStatus),
      ],
      recentTickets: recent
        .filter((t) => t.key && t.url)
        .map((t) => {
          const kind = providerKindOf(t.provider);
          return {
            key: t.key!,
            url: t.url!,
            provider: t.provider,
            ...(kind ? { providerName: this.#o.integrations.descriptor(kind).displayName } : {}),
            providerStatus: t.providerStatus,
            title: t.title,
            status: t.status,
          };
        }),
      ...(canEdit
        ? {
            deliveryProblems: deliveryProblems.map((c) => ({
              channelId: c.channelId,
              platform: c.platform,
              title: c.title,
              reason: c.lastError ?? 'unknown',
              at: c.updatedAt,
              ...(c.fallbackState ? { fallback: fallbackText(c.fallbackState, c.fallbackNote) } : {}),
            })),
          }
        : {}),
      canEdit,
    };
  }

  /** `connect <provider>`: the form for a new integration, the details (with Edit) for a configured one. */
  async integrationEntry(
    actor: Actor,
    provider: SettingsKind,
  ): Promise<IntegrationFormView | IntegrationDetailsView> {
    if (provider === 'sso') {
      const status = await this.#sso().status(actor.tenantId);
      return status.configured ? this.ssoDetails(actor) : this.integrationForm(actor, 'sso');
    }
    if (provider === 'smtp') {
      const status = await this.#smtp().status(actor.tenantId);
      return status.configured ? this.smtpDetails(actor) : this.integrationForm(actor, 'smtp');
    }
    const view = await this.#o.integrations.status(actor.tenantId, provider);
    if (view.status === 'not_connected') return this.integrationForm(actor, provider);
    return this.integrationDetails(view);
  }

  integrationDetails(view: ProviderStatusView, message?: NoticeView): IntegrationDetailsView {
    const section = this.#section(view, true);
    return {
      kind: 'integration-details',
      provider: view.kind,
      title: view.displayName,
      badge: view.badge,
      details: section.details,
      actions: section.actions,
      ...(message ? { notice: message } : {}),
    };
  }

  /** The connection form: Save when new, Update when configured; secrets never pre-filled. */
  async integrationForm(
    actor: Actor,
    provider: SettingsKind,
    errors: Readonly<Record<string, string>> = {},
    typed: ProviderValues = {},
    message?: NoticeView,
  ): Promise<IntegrationFormView> {
    if (provider === 'sso') return this.#ssoForm(actor, errors, typed, message);
    if (provider === 'smtp') return this.#smtpForm(actor, errors, typed, message);
    const descriptor = this.#o.integrations.descriptor(provider);
    const view = await this.#o.integrations.status(actor.tenantId, provider);
    const configured = view.status !== 'not_connected';
    const fields: FormField[] = descriptor.fields.map((field) => {
      const value = field.secret
        ? undefined
        : (typed[field.key] ?? view.values[field.key] ?? field.defaultValue);
      const hasSavedSecret = field.secret && view.savedSecrets.includes(field.key);
      return {
        ...field,
        ...(value ? { value } : {}),
        ...(hasSavedSecret
          ? { hasSavedSecret: true, required: false, hint: 'Leave blank to keep the saved value.' }
          : {}),
      };
    });
    return {
      kind: 'integration-form',
      provider,
      title: `${configured ? 'Edit' : 'Connect'} ${descriptor.displayName}`.slice(0, 24),
      submitLabel: configured ? 'Update' : 'Save',
      fields,
      errors,
      ...(message ? { notice: message } : {}),
    };
  }

  /** First step of a submission, fast: field problems to show at once, or none. */
  async validateIntegrationForm(
    actor: Actor,
    provider: SettingsKind,
    values: ProviderValues,
  ): Promise<Record<string, string>> {
    if (!(await this.isAdmin(actor))) return { _: (await this.refusalFor(actor)).text ?? '' };
    if (provider === 'sso')
      return this.#sso().validate(values, (await this.#sso().status(actor.tenantId)).hasSecret);
    if (provider === 'smtp')
      return this.#smtp().validate(values, (await this.#smtp().status(actor.tenantId)).hasSecret);
    return (await this.#o.integrations.validate(actor.tenantId, provider, values)).fieldErrors;
  }

  /** Second step: verify live and save; the outcome replaces the "Verifying…" view. */
  async submitIntegrationForm(
    actor: Actor,
    provider: SettingsKind,
    values: ProviderValues,
  ): Promise<FormOutcome> {
    if (!(await this.isAdmin(actor))) return { type: 'view', view: await this.refusalFor(actor) };
    if (provider === 'sso') {
      const saved = await this.#sso().save(actor.tenantId, values, actorName(actor));
      const { clientSecret: _secret, ...typed } = values;
      return {
        type: 'view',
        view: saved.ok
          ? await this.ssoDetails(actor, notice('success', saved.message, saved.detail))
          : await this.integrationForm(
              actor,
              'sso',
              saved.fieldErrors,
              typed,
              notice('error', saved.message),
            ),
      };
    }
    if (provider === 'smtp') {
      const saved = await this.#smtp().save(actor.tenantId, values, actorName(actor));
      const { password: _password, ...typed } = values;
      return {
        type: 'view',
        view: saved.ok
          ? await this.smtpDetails(actor, notice('success', saved.message, saved.detail))
          : await this.integrationForm(
              actor,
              'smtp',
              saved.fieldErrors,
              typed,
              notice('error', saved.message),
            ),
      };
    }
    const result = await this.#o.integrations.connect(actor.tenantId, provider, values, actorName(actor));
    if (result.ok) {
      const view = await this.#o.integrations.status(actor.tenantId, provider);
      return {
        type: 'view',
        view: this.integrationDetails(
          view,
          notice('success', result.message, `Signed in as ${result.identity}.`),
        ),
      };
    }
    const safeValues = Object.fromEntries(
      Object.entries(values).filter(
        ([k]) => !this.#o.integrations.descriptor(provider).fields.find((f) => f.key === k)?.secret,
      ),
    );
    return {
      type: 'view',
      view: await this.integrationForm(
        actor,
        provider,
        result.fieldErrors,
        safeValues,
        notice('error', result.message),
      ),
    };
  }

  /** "Jira", "Azure DevOps", "ServiceNow", "SSO". */
  displayName(kind: SettingsKind): string {
    return kind === 'sso'
      ? 'SSO'
      : kind === 'smtp'
        ? 'Email (SMTP)'
        : this.#o.integrations.descriptor(kind).displayName;
  }

  /** The keys of a form's secret fields (never shown back). */
  secretKeys(kind: SettingsKind): Set<string> {
    const fields =
      kind === 'sso'
        ? SSO_FIELDS
        : kind === 'smtp'
          ? SMTP_FIELDS
          : this.#o.integrations.descriptor(kind).fields;
    return new Set(fields.filter((f) => f.secret).map((f) => f.key));
  }

  // ---- Email (SMTP) -----------------------------------------------------------------------

  #smtp(): SmtpService {
    if (!this.#o.smtp)
      throw new AppError(ErrorCode.NOT_FOUND, 'Email (SMTP) is not available in this deployment.');
    return this.#o.smtp;
  }

  async #smtpForm(
    actor: Actor,
    errors: Readonly<Record<string, string>>,
    typed: ProviderValues,
    message?: NoticeView,
  ): Promise<IntegrationFormView> {
    const status = await this.#smtp().status(actor.tenantId);
    return settingsForm('smtp', 'SMTP', SMTP_FIELDS, status, errors, typed, message);
  }

  async smtpDetails(actor: Actor, message?: NoticeView): Promise<IntegrationDetailsView> {
    const section = await this.#smtpSection(actor, true);
    return {
      kind: 'integration-details',
      provider: 'smtp',
      title: 'Email (SMTP)',
      badge: section.badge,
      details: section.details,
      actions: section.actions,
      ...(message ? { notice: message } : {}),
    };
  }

  async #smtpSection(actor: Actor, canEdit: boolean, read?: SmtpStatus): Promise<SettingSection> {
    if (!this.#o.smtp)
      return { name: 'SMTP', badge: 'Not Connected', details: ['Email is not available here.'], actions: [] };
    const status = read ?? (await this.#o.smtp.status(actor.tenantId));
    const v = status.values;
    const details = status.configured
      ? [
          `${v.host}:${v.port} (${v.security === 'tls' ? 'implicit TLS' : v.security === 'starttls' ? 'STARTTLS' : 'auto'}), from ${v.fromAddress}`,
          status.recipients.length
            ? `Fallback recipients: ${status.recipients.join(', ')}`
            : "No fallback recipients: undeliverable cards go to the subscriptions' recipients only.",
          ...(status.lastError ? [`Last sending problem: ${status.lastError}`] : []),
        ]
      : ['Email is the fallback when a card cannot be delivered in chat.'];
    const actions: ActionButton[] = !canEdit
      ? []
      : !status.configured
        ? [{ action: 'connect', label: 'Connect', provider: 'smtp', style: 'primary' }]
        : [
            { action: 'edit', label: 'Edit', provider: 'smtp' },
            { action: 'test-email', label: 'Send test email', provider: 'smtp' },
            { action: 'disconnect', label: 'Disconnect Provider', provider: 'smtp', style: 'danger' },
          ];
    return { name: 'SMTP', badge: status.badge, details, actions };
  }

  async #smtpAct(actor: Actor, action: ActionButton['action']): Promise<Reply> {
    const smtp = this.#smtp();
    switch (action) {
      case 'connect':
      case 'edit':
        return { type: 'open-form', view: await this.integrationForm(actor, 'smtp') };
      case 'test-email': {
        // To the admin's organization email when they linked it (SSO), else to the sender address.
        const identity = await this.#o.repositories.identities.find(
          actor.tenantId,
          actor.platform,
          actor.userId,
        );
        const to = identity?.email ?? (await smtp.status(actor.tenantId)).values.fromAddress;
        if (!to) return { type: 'message', view: notice('warning', 'Email (SMTP) is not set up yet.') };
        try {
          await smtp.sendTest(actor.tenantId, to, testEmail(to));
          return {
            type: 'message',
            view: notice('success', 'Test email sent', `CloudPi sent a test email to ${to}.`),
          };
        } catch (error) {
          return {
            type: 'message',
            view: notice(
              'error',
              'The test email could not be sent',
              isAppError(error) ? error.message : undefined,
            ),
          };
        }
      }
      case 'disconnect':
        return { type: 'open-form', view: this.confirmDisconnect('smtp') };
      case 'confirm-disconnect': {
        const removed = await smtp.disconnect(actor.tenantId, actorName(actor));
        return {
          type: 'message',
          view: removed
            ? notice('success', 'SMTP is disconnected', 'Its settings and password were deleted.')
            : notice('info', 'SMTP was not set up.'),
        };
      }
      default:
        return { type: 'message', view: notice('warning', 'That button is out of date.') };
    }
  }

  // ---- Single sign-on ---------------------------------------------------------------------

  #sso(): SsoService {
    if (!this.#o.sso)
      throw new AppError(ErrorCode.NOT_FOUND, 'Single sign-on is not available in this deployment.');
    return this.#o.sso;
  }

  /** The SSO form: Save when new, Update when configured; the client secret never pre-filled. */
  async #ssoForm(
    actor: Actor,
    errors: Readonly<Record<string, string>>,
    typed: ProviderValues,
    message?: NoticeView,
  ): Promise<IntegrationFormView> {
    const status = await this.#sso().status(actor.tenantId);
    return settingsForm(
      'sso',
      'SSO',
      SSO_FIELDS,
      status,
      errors,
      typed,
      message ??
        notice(
          'info',
          'OpenID Connect with PKCE',
          `Register CloudPi in your identity provider as a web app with the redirect URI ${this.#sso().redirectUri()}`,
        ),
    );
  }

  /** The saved SSO settings with Edit, Enable / Disable and Disconnect. */
  async ssoDetails(actor: Actor, message?: NoticeView): Promise<IntegrationDetailsView> {
    const section = await this.#ssoSection(actor, true);
    return {
      kind: 'integration-details',
      provider: 'sso',
      title: 'SSO',
      badge: section.badge,
      details: section.details,
      actions: section.actions,
      ...(message ? { notice: message } : {}),
    };
  }

  async #ssoSection(actor: Actor, canEdit: boolean, read?: SsoStatus): Promise<SettingSection> {
    if (!this.#o.sso)
      return {
        name: 'SSO',
        badge: 'Not Connected',
        details: ['Single sign-on is not available here.'],
        actions: [],
      };
    const status = read ?? (await this.#o.sso.status(actor.tenantId));
    const s = status.settings;
    const details = s
      ? [
          `Issuer ${s.issuerUrl}, client ${s.clientId}`,
          s.adminGroupValue
            ? `Members of ${s.adminGroupValue} (${s.adminGroupClaim} claim) are CloudPi admins.`
            : 'No admin group.',
          s.allowedDomains.length
            ? `Allowed email domains: ${s.allowedDomains.join(', ')}`
            : 'Any email domain can link.',
          s.requireForAdmin ? 'Admin changes need a recent sign-in.' : 'Admin changes do not need a sign-in.',
          ...(s.enabled ? [] : ['SSO is disabled: links are kept, sign-ins are not required.']),
        ]
      : ['Let people link their chat account to your identity provider (OpenID Connect).'];
    const actions: ActionButton[] = !canEdit
      ? []
      : !status.configured
        ? [{ action: 'connect', label: 'Connect', provider: 'sso', style: 'primary' }]
        : [
            { action: 'edit', label: 'Edit', provider: 'sso' },
            s?.enabled
              ? { action: 'pause', label: 'Disable', provider: 'sso' }
              : { action: 'activate', label: 'Enable', provider: 'sso' },
            { action: 'disconnect', label: 'Disconnect Provider', provider: 'sso', style: 'danger' },
          ];
    return { name: 'SSO', badge: status.badge, details, actions };
  }

  async #ssoAct(actor: Actor, action: ActionButton['action']): Promise<Reply> {
    const sso = this.#sso();
    switch (action) {
      case 'connect':
      case 'edit':
        return { type: 'open-form', view: await this.integrationForm(actor, 'sso') };
      case 'pause':
      case 'activate': {
        const changed = await sso.setEnabled(actor.tenantId, action === 'activate', actorName(actor));
        return {
          type: 'message',
          view: changed
            ? notice(
                'success',
                action === 'activate' ? 'SSO is enabled' : 'SSO is disabled',
                action === 'activate'
                  ? undefined
                  : 'Linked accounts are kept; sign-ins are no longer required.',
              )
            : notice('info', 'SSO is not set up yet.'),
        };
      }
      case 'disconnect':
        return { type: 'open-form', view: this.confirmDisconnect('sso') };
      case 'confirm-disconnect': {
        const removed = await sso.disconnect(actor.tenantId, actorName(actor));
        return {
          type: 'message',
          view: removed
            ? notice(
                'success',
                'SSO is disconnected',
                'Its settings and client secret were deleted; linked accounts are kept.',
              )
            : notice('info', 'SSO was not set up.'),
        };
      }
      default:
        return { type: 'message', view: notice('warning', 'That button is out of date.') };
    }
  }

  /** `login`: a sign-in link bound to the person who asked, for this conversation's confirmation. */
  async login(actor: Actor, where: CommandContext = {}): Promise<NoticeView> {
    if (!this.#o.sso) return notice('info', 'Single sign-on is not available in this deployment.');
    try {
      const replyTo = where.replyTo ?? where.channelId;
      const link = await this.#o.sso.createLoginLink(actor.tenantId, actor.platform, actor.userId, {
        ...(replyTo ? { channelId: replyTo } : {}),
      });
      return {
        ...notice(
          'info',
          'Sign in with your organization account',
          'The link is yours alone: it works once, for ten minutes. CloudPi confirms here when you are signed in.',
        ),
        link: { url: link.url, label: 'Sign in' },
      };
    } catch (error) {
      if (isAppError(error)) return notice('warning', error.message);
      throw error;
    }
  }

  /** Routing form, with projects and types listed from the provider. May be slow: open a placeholder first. */
  async configureForm(
    actor: Actor,
    provider: TicketProviderKind,
    errors: Record<string, string> = {},
    /** What the admin chose so far in an open form (its `reloads` fields), over the saved routing. */
    selection: { readonly project?: string; readonly ticketType?: string } = {},
  ): Promise<ConfigureFormView | NoticeView> {
    if (!(await this.isAdmin(actor))) return await this.refusalFor(actor);
    const name = this.#o.integrations.descriptor(provider).displayName;
    let provided: Awaited<ReturnType<IntegrationService['providerFor']>>;
    try {
      provided = await this.#o.integrations.providerFor(actor.tenantId, provider);
    } catch (error) {
      return notice('error', isAppError(error) ? error.message : `${name} cannot be configured right now.`);
    }
    const { provider: adapter, routing } = provided;
    try {
      const projects = await adapter.listProjects();
      const project = selection.project ?? routing.project ?? projects[0]?.key;
      const types = project ? await adapter.listTicketTypes(project) : [];
      const wanted = selection.ticketType ?? routing.ticketType;
      const ticketType = types.some((t) => t.name === wanted) ? wanted : types[0]?.name;
      const required = project && ticketType ? await adapter.describeFields(project, ticketType) : [];
      return {
        kind: 'configure-form',
        provider,
        title: `Configure ${name}`.slice(0, 24),
        submitLabel: routing.project ? 'Update' : 'Save',
        fields: [
          {
            key: 'project',
            label: provider === 'servicenow' ? 'Assignment group' : 'Project',
            required: true,
            type: 'select',
            options: projects.slice(0, 100).map((p) => ({ value: p.key, label: p.name.slice(0, 75) })),
            ...(project ? { value: project } : {}),
            reloads: true,
          },
          {
            key: 'ticketType',
            label:
              provider === 'azure-devops' ? 'Work item type' : provider === 'jira' ? 'Issue type' : 'Type',
            required: true,
            type: 'select',
            options: types.slice(0, 100).map((t) => ({ value: t.name, label: t.name.slice(0, 75) })),
            ...(ticketType ? { value: ticketType } : {}),
            reloads: true,
          },
          ...required.map((f) => ({
            key: `field:${f.key}`,
            label: f.name.slice(0, 48),
            required: true,
            type: f.allowedValues?.length ? ('select' as const) : ('text' as const),
            ...(f.allowedValues?.length
              ? {
                  options: f.allowedValues
                    .slice(0, 100)
                    .map((v) => ({ value: v.id, label: v.name.slice(0, 75) })),
                }
              : {}),
            ...(routing.fieldValues?.[f.key] !== undefined
              ? { value: String(routing.fieldValues[f.key]) }
              : {}),
          })),
        ],
        errors,
      };
    } catch (error) {
      return notice('error', isAppError(error) ? error.message : `Could not read ${name}'s projects.`);
    }
  }

  async submitConfigureForm(
    actor: Actor,
    provider: TicketProviderKind,
    values: Record<string, string>,
  ): Promise<FormOutcome> {
    if (!(await this.isAdmin(actor))) return { type: 'view', view: await this.refusalFor(actor) };
    const fieldValues = Object.fromEntries(
      Object.entries(values)
        .filter(([k, v]) => k.startsWith('field:') && v)
        .map(([k, v]) => [k.slice('field:'.length), v]),
    );
    const routing: Routing = {
      ...(values.project ? { project: values.project } : {}),
      ...(values.ticketType ? { ticketType: values.ticketType } : {}),
      ...(provider === 'servicenow' && values.project ? { assignmentGroup: values.project } : {}),
      ...(Object.keys(fieldValues).length ? { fieldValues } : {}),
    };
    if (!routing.project) return { type: 'errors', errors: { project: 'Choose where tickets go.' } };
    const result = await this.#o.integrations.configure(actor.tenantId, provider, routing, actorName(actor));
    if (!result.ok) return { type: 'view', view: notice('error', result.message) };
    const view = await this.#o.integrations.status(actor.tenantId, provider);
    return { type: 'view', view: this.integrationDetails(view, notice('success', result.message)) };
  }

  confirmDisconnect(provider: SettingsKind): ConfirmView {
    if (provider === 'smtp')
      return {
        kind: 'confirm',
        title: 'Disconnect SMTP?',
        text: 'CloudPi will delete the SMTP settings and password and stop sending email (undeliverable cards then stay in chat only).',
        confirm: {
          action: 'confirm-disconnect',
          label: 'Disconnect Provider',
          provider: 'smtp',
          style: 'danger',
        },
      };
    if (provider === 'sso')
      return {
        kind: 'confirm',
        title: 'Disconnect SSO?',
        text: 'CloudPi will delete the SSO settings and client secret and stop offering sign-in. Linked accounts are kept.',
        confirm: {
          action: 'confirm-disconnect',
          label: 'Disconnect Provider',
          provider: 'sso',
          style: 'danger',
        },
      };
    const name = this.#o.integrations.descriptor(provider).displayName;
    return {
      kind: 'confirm',
      title: `Disconnect ${name}?`.slice(0, 24),
      text: `CloudPi will delete the saved ${name} credentials and stop creating tickets there. Tickets already created stay as they are.`,
      confirm: { action: 'confirm-disconnect', label: 'Disconnect Provider', provider, style: 'danger' },
    };
  }

  /** A button press on a view (App Home, details, confirmation). */
  async act(actor: Actor, action: ActionButton['action'], provider: SettingsKind): Promise<Reply> {
    if (action === 'refresh') return { type: 'message', view: await this.statusBoard(actor) };
    if (!(await this.isAdmin(actor))) return { type: 'message', view: await this.refusalFor(actor) };
    if (provider === 'sso') return this.#ssoAct(actor, action);
    if (provider === 'smtp') return this.#smtpAct(actor, action);
    const name = this.#o.integrations.descriptor(provider).displayName;
    switch (action) {
      case 'connect':
      case 'edit':
        return { type: 'open-form', view: await this.integrationForm(actor, provider) };
      case 'configure':
        return { type: 'open-configure', provider };
      case 'disconnect':
        return { type: 'open-form', view: this.confirmDisconnect(provider) };
      case 'confirm-disconnect': {
        const removed = await this.#o.integrations.disconnect(actor.tenantId, provider, actorName(actor));
        return {
          type: 'message',
          view: removed
            ? notice('success', `${name} is disconnected`, 'Its credentials were deleted.')
            : notice('info', `${name} was not connected.`),
        };
      }
      case 'pause':
      case 'activate': {
        try {
          const view = await this.#o.integrations.setPaused(
            actor.tenantId,
            provider,
            action === 'pause',
            actorName(actor),
          );
          return {
            type: 'message',
            view: notice(
              'success',
              action === 'pause' ? `${name} is paused (Connected)` : `${name} is connected and active`,
              view.badge,
            ),
          };
        } catch (error) {
          if (isAppError(error)) return { type: 'message', view: notice('error', error.message) };
          throw error;
        }
      }
    }
    throw new AppError(ErrorCode.VALIDATION, `Unknown action ${action}.`);
  }

  // ---- Subscriptions ----------------------------------------------------------------------

  async #activeProviders(actor: Actor): Promise<{ kind: TicketProviderKind; displayName: string }[]> {
    return (await this.#o.integrations.statusBoard(actor.tenantId))
      .filter((v) => v.status === 'active')
      .map((v) => ({ kind: v.kind, displayName: v.displayName }));
  }

  /** The subscribe form for a channel; `typed` keeps what was entered when it is shown again. */
  async subscribeForm(
    actor: Actor,
    channelId: string,
    errors: Readonly<Record<string, string>> = {},
    typed: Readonly<Record<string, SubmittedValue>> = {},
  ): Promise<SubscribeFormView | NoticeView> {
    if (!(await this.isAdmin(actor))) return await this.refusalFor(actor);
    const f = SUBSCRIBE_FIELDS;
    const providers = await this.#activeProviders(actor);
    const text = (key: string) => {
      const v = typed[key];
      return typeof v === 'string' && v ? { value: v } : {};
    };
    const many = (key: string) => {
      const v = typed[key];
      return v && typeof v !== 'string' && v.length ? { value: v } : {};
    };
    return {
      kind: 'subscribe-form',
      title: 'Subscribe channel',
      channelId,
      fields: [
        {
          key: f.clouds,
          label: 'Clouds',
          type: 'multi-select',
          options: CLOUDS.map((c) => ({ value: c, label: CLOUD_LABELS[c] })),
          hint: 'Leave empty for every cloud.',
          ...many(f.clouds),
        },
        {
          key: f.account,
          label: 'Account',
          type: 'text',
          placeholder: 'Account, subscription or project id',
          ...text(f.account),
        },
        {
          key: f.category,
          label: 'Category',
          type: 'text',
          placeholder: 'e.g. rightsizing',
          ...text(f.category),
        },
        {
          key: f.severities,
          label: 'Severities',
          type: 'multi-select',
          options: SEVERITIES.map((s) => ({ value: s, label: s[0]!.toUpperCase() + s.slice(1) })),
          hint: 'Leave empty for every severity.',
          ...many(f.severities),
        },
        {
          key: f.minMonthlySavings,
          label: 'Minimum monthly savings',
          type: 'text',
          placeholder: 'e.g. 100',
          hint: 'Only recommendations saving at least this much a month. Leave empty for any.',
          ...text(f.minMonthlySavings),
        },
        ...(providers.length
          ? [
              {
                key: f.provider,
                label: 'Ticket provider',
                type: 'select' as const,
                options: providers.map((p) => ({ value: p.kind, label: p.displayName })),
                hint: "Where this channel's tickets go. Leave empty for the provider's own routing.",
                ...text(f.provider),
              },
              { key: f.project, label: 'Project', type: 'text' as const, ...text(f.project) },
              { key: f.ticketType, label: 'Ticket type', type: 'text' as const, ...text(f.ticketType) },
            ]
          : []),
        {
          key: f.emailRecipients,
          label: 'Email recipients',
          type: 'text',
          placeholder: 'finops@example.com, ops@example.com',
          hint: 'Also send these recommendations by email (needs /cloudpi smtp). Leave empty for chat only.',
          ...text(f.emailRecipients),
        },
        {
          key: f.emailDigest,
          label: 'Email digest',
          type: 'select',
          options: [
            { value: 'each', label: 'One email per recommendation' },
            { value: 'hourly', label: 'Hourly digest' },
            { value: 'daily', label: 'Daily digest' },
          ],
          hint: 'How the email recipients get them.',
          ...text(f.emailDigest),
        },
      ],
      errors,
    };
  }

  /** Checks and saves a subscription (audited). Field problems come back as `errors`. */
  async submitSubscribeForm(
    actor: Actor,
    channelId: string,
    values: Readonly<Record<string, SubmittedValue>>,
  ): Promise<FormOutcome> {
    if (!(await this.isAdmin(actor))) return { type: 'view', view: await this.refusalFor(actor) };
    const active = (await this.#activeProviders(actor)).map((p) => p.kind);
    const parsed = parseSubscriptionForm(values, active);
    if (!parsed.ok) return { type: 'errors', errors: parsed.errors };
    const { filters, provider, target, emailRecipients } = parsed.value;
    const row = await this.#o.repositories.routes.create(actor.tenantId, {
      emailRecipients: [...emailRecipients],
      name: describeFilters(filters).slice(0, 200),
      platform: actor.platform,
      channelId,
      filters: { ...filters },
      provider: provider ?? null,
      target: { ...target },
      createdBy: actorName(actor),
    });
    await this.#o.repositories.audit.record(actor.tenantId, {
      actor: actorName(actor),
      action: 'subscription.create',
      target: `${actor.platform}:${channelId}`,
      after: { id: row.id, filters: row.filters, provider: row.provider, target: row.target },
    });
    return {
      type: 'view',
      view: notice(
        'success',
        'This channel is subscribed',
        `${describeFilters(filters)}${this.#ticketsText(row) ? `. ${this.#ticketsText(row)}` : ''}. Unsubscribe with /cloudpi unsubscribe.`,
      ),
    };
  }

  #ticketsText(row: RouteRow): string | undefined {
    const kind = providerKindOf(row.provider);
    if (!kind) return undefined;
    const t = row.target as { project?: unknown; ticketType?: unknown };
    const name = this.#o.integrations.descriptor(kind).displayName;
    const project = typeof t.project === 'string' ? `, project ${t.project}` : '';
    const type = typeof t.ticketType === 'string' ? ` (${t.ticketType})` : '';
    return `Tickets: ${name}${project}${type}`;
  }

  /** A channel's subscriptions with Unsubscribe buttons. */
  async subscriptions(actor: Actor, channelId: string, message?: NoticeView): Promise<SubscriptionListView> {
    const rows = await this.#o.repositories.routes.list(actor.tenantId, {
      platform: actor.platform,
      channelId,
    });
    const canEdit = await this.isAdmin(actor);
    return {
      kind: 'subscriptions',
      title: 'Subscriptions of this channel',
      channelId,
      items: rows.slice(0, 40).map((row) => {
        const tickets = this.#ticketsText(row);
        return {
          id: row.id,
          filters: describeFilters(filtersOf(row.filters)),
          ...(tickets ? { tickets } : {}),
          ...(row.createdBy ? { createdBy: row.createdBy } : {}),
          actions: canEdit
            ? [{ action: 'unsubscribe', label: 'Unsubscribe', subscriptionId: row.id, style: 'danger' }]
            : [],
        };
      }),
      empty: 'This channel has no subscriptions. Add one with /cloudpi subscribe.',
      ...(message ? { notice: message } : {}),
    };
  }

  /** Removes a subscription of the actor's tenant (no confirmation; audited). */
  async unsubscribe(actor: Actor, subscriptionId: string): Promise<NoticeView> {
    if (!(await this.isAdmin(actor))) return await this.refusalFor(actor);
    const row = /^[0-9a-f-]{36}$/i.test(subscriptionId)
      ? (await this.#o.repositories.routes.list(actor.tenantId)).find((r) => r.id === subscriptionId)
      : undefined;
    if (!row || !(await this.#o.repositories.routes.remove(actor.tenantId, subscriptionId)))
      return notice('info', 'That subscription was already removed.');
    await this.#o.repositories.audit.record(actor.tenantId, {
      actor: actorName(actor),
      action: 'subscription.delete',
      target: `${row.platform ?? ''}:${row.channelId ?? ''}`,
      before: { id: row.id, filters: row.filters, provider: row.provider, target: row.target },
    });
    return notice(
      'success',
      'Unsubscribed',
      `No more recommendations here for: ${describeFilters(filtersOf(row.filters))}.`,
    );
  }

  /**
   * `webhook <provider> [rotate]`: the first time (or with rotate) a new URL and secret, shown
   * once to the admin who asked; afterwards the URL and setup steps without the secret.
   */
  async webhook(actor: Actor, provider: TicketProviderKind, rotate: boolean): Promise<NoticeView> {
    if (!(await this.isAdmin(actor))) return await this.refusalFor(actor);
    const name = this.#o.integrations.descriptor(provider).displayName;
    const webhooks = this.#o.webhooks;
    if (!webhooks || !this.#o.integrations.webhookSupport(provider))
      return notice('info', `${name} status webhooks are not available; ticket status is polled instead.`);
    try {
      const existing = rotate ? undefined : await webhooks.show(actor.tenantId, provider);
      if (existing) return webhookNotice(name, provider, existing);
      return webhookNotice(name, provider, await webhooks.issue(actor.tenantId, provider, actorName(actor)));
    } catch (error) {
      if (isAppError(error)) return notice('error', error.message);
      throw error;
    }
  }

  async audit(actor: Actor): Promise<AuditView> {
    const entries = await this.#o.repositories.audit.recent(actor.tenantId, 20);
    return {
      kind: 'audit',
      entries: entries.map((e) => ({ at: e.at, actor: e.actor, action: e.action, target: e.target })),
    };
  }
}

function webhookNotice(name: string, provider: TicketProviderKind, setup: WebhookSetup): NoticeView {
  const lines = [...setup.instructions];
  if (setup.secret) {
    lines.push(
      `Secret (shown only now, copy it into ${name}): ${setup.secret}`,
      `Lost it? /cloudpi webhook ${provider} rotate makes a new URL and secret; the old ones stop working.`,
    );
  } else {
    lines.push(
      setup.lastReceivedAt
        ? `Last delivery: ${setup.lastReceivedAt.toISOString()}.`
        : `No delivery has arrived yet.`,
      `The secret was shown when it was made. /cloudpi webhook ${provider} rotate makes a new URL and secret; the old ones stop working.`,
    );
  }
  return notice('success', setup.secret ? `${name} webhook ready` : `${name} webhook`, lines.join('\n'));
}

function fallbackText(state: string, note: string | null): string {
  switch (state) {
    case 'queued':
      return 'Fallback: pending.';
    case 'delivered':
      return `Fallback: ${note ?? 'delivered'}.`;
    case 'failed':
      return `Fallback failed${note ? `: ${note}` : '.'}`;
    default:
      return `Fallback not possible: ${note ?? 'no fallback channel is set up.'}`;
  }
}

/**
 * A settings form (SSO, SMTP) from its field data and what is saved: Save when new, Update when
 * configured; secret fields never pre-filled ("leave blank to keep").
 */
function settingsForm(
  kind: 'sso' | 'smtp',
  name: string,
  fieldData: readonly CredentialField[],
  status: {
    readonly configured: boolean;
    readonly values: Readonly<Record<string, string>>;
    readonly hasSecret: boolean;
  },
  errors: Readonly<Record<string, string>>,
  typed: ProviderValues,
  message?: NoticeView,
): IntegrationFormView {
  const fields: FormField[] = fieldData.map((field) => {
    const value = field.secret
      ? undefined
      : (typed[field.key] ?? status.values[field.key] ?? field.defaultValue);
    return {
      ...field,
      ...(value ? { value } : {}),
      ...(field.secret && status.hasSecret
        ? { hasSavedSecret: true, required: false, hint: 'Leave blank to keep the saved value.' }
        : {}),
    };
  });
  return {
    kind: 'integration-form',
    provider: kind,
    title: status.configured ? `Edit ${name}` : `Set up ${name}`,
    submitLabel: status.configured ? 'Update' : 'Save',
    fields,
    errors,
    ...(message ? { notice: message } : {}),
  };
}
