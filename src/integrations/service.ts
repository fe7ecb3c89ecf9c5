import { AppError, ErrorCode, isAppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { checkUrl, type UrlPolicy } from '../net/url-policy.js';
import type { Repositories } from '../storage/repositories/index.js';
import type { IntegrationRow, IntegrationStatus } from '../storage/repositories/integrations.js';
import type {
  CredentialField,
  ProviderDescriptor,
  ProviderValues,
  Routing,
  TicketProvider,
  TicketProviderFactory,
  TicketProviderKind,
  WebhookSupport,
} from '../tickets/port.js';
import { TICKET_PROVIDER_KINDS } from '../tickets/port.js';

/** The words CloudPi's Integration page uses for each state. */
export const STATUS_BADGES: Record<IntegrationStatus, string> = {
  active: 'Active',
  connected: 'Connected',
  not_connected: 'Not Connected',
  error: 'Error',
};

export type ProviderRegistry = ReadonlyMap<TicketProviderKind, TicketProviderFactory>;

export function createProviderRegistry(factories: readonly TicketProviderFactory[]): ProviderRegistry {
  return new Map(factories.map((f) => [f.descriptor.kind, f]));
}

export interface ProviderStatusView {
  readonly kind: TicketProviderKind;
  readonly displayName: string;
  readonly status: IntegrationStatus;
  readonly badge: string;
  /** Non-secret values of the form, for pre-filling it (secrets never leave the store). */
  readonly values: Record<string, string>;
  /** Which secret fields have a saved value ("leave blank to keep"). */
  readonly savedSecrets: readonly string[];
  readonly routing: Routing;
  readonly paused: boolean;
  readonly lastVerifiedAt: Date | null;
  readonly lastError: string | null;
}

export type ConnectResult =
  | {
      readonly ok: true;
      readonly status: IntegrationStatus;
      readonly message: string;
      readonly identity: string;
    }
  | {
      readonly ok: false;
      readonly code: string;
      readonly message: string;
      /** Field key -> message, to show next to the input it concerns. */
      readonly fieldErrors: Readonly<Record<string, string>>;
    };

interface StoredSettings {
  values: Record<string, string>;
  routing: Routing;
  paused: boolean;
}

function storedSettings(row: IntegrationRow | undefined): StoredSettings {
  const raw = (row?.settings ?? {}) as Partial<StoredSettings>;
  return { values: raw.values ?? {}, routing: raw.routing ?? {}, paused: raw.paused ?? false };
}

function isShown(field: CredentialField, values: ProviderValues): boolean {
  if (!field.when) return true;
  const other = values[field.when.field] ?? '';
  return field.when.oneOf.includes(other);
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export interface IntegrationServiceOptions {
  readonly repositories: Repositories;
  readonly registry: ProviderRegistry;
  readonly urlPolicy: UrlPolicy;
  readonly logger: Logger;
  /** Per-call timeout for provider calls made from here. */
  readonly timeoutMs?: number;
}

/**
 * Connect, status, configure, pause / activate, disconnect and health checks of the ticket
 * providers of a tenant. Chat surfaces call this; nothing here knows Slack or Teams.
 */
export class IntegrationService {
  readonly #o: IntegrationServiceOptions;

  constructor(options: IntegrationServiceOptions) {
    this.#o = options;
  }

  descriptor(kind: TicketProviderKind): ProviderDescriptor {
    return this.#factory(kind).descriptor;
  }

  /** How the provider sends status webhooks, if it can. */
  webhookSupport(kind: TicketProviderKind): WebhookSupport | undefined {
    return this.#o.registry.get(kind)?.webhook;
  }

  #factory(kind: TicketProviderKind): TicketProviderFactory {
    const factory = this.#o.registry.get(kind);
    if (!factory) throw new AppError(ErrorCode.NOT_FOUND, `Unknown provider "${kind}".`);
    return factory;
  }

  #instance(kind: TicketProviderKind, values: ProviderValues): TicketProvider {
    return this.#factory(kind).create({
      values,
      urlPolicy: this.#o.urlPolicy,
      ...(this.#o.timeoutMs ? { timeoutMs: this.#o.timeoutMs } : {}),
    });
  }

  async statusBoard(tenantId: string): Promise<ProviderStatusView[]> {
    const rows = await this.#o.repositories.integrations.list(tenantId);
    return TICKET_PROVIDER_KINDS.filter((kind) => this.#o.registry.has(kind)).map((kind) => {
      const row = rows.find((r) => r.kind === kind);
      return this.#view(kind, row);
    });
  }

  async status(tenantId: string, kind: TicketProviderKind): Promise<ProviderStatusView> {
    return this.#view(kind, await this.#o.repositories.integrations.get(tenantId, kind));
  }

  #view(kind: TicketProviderKind, row: IntegrationRow | undefined): ProviderStatusView {
    const descriptor = this.descriptor(kind);
    const settings = storedSettings(row);
    const secrets = row ? Object.keys(this.#o.repositories.integrations.credentials(row) ?? {}) : [];
    const status = (row?.status ?? 'not_connected') as IntegrationStatus;
    return {
      kind,
      displayName: descriptor.displayName,
      status,
      badge: STATUS_BADGES[status],
      values: settings.values,
      savedSecrets: secrets,
      routing: settings.routing,
      paused: settings.paused,
      lastVerifiedAt: row?.lastVerifiedAt ?? null,
      lastError: row?.lastError ?? null,
    };
  }

  /**
   * Checks the form without calling the provider (required fields, URLs through the SSRF
   * check, emails, choices), filling blank secret fields from the saved values. Fast enough for
   * Slack's 3-second view_submission answer.
   */
  async validate(
    tenantId: string,
    kind: TicketProviderKind,
    input: ProviderValues,
  ): Promise<{
    values: Record<string, string>;
    fieldErrors: Record<string, string>;
    existing: IntegrationRow | undefined;
  }> {
    const descriptor = this.descriptor(kind);
    const existing = await this.#o.repositories.integrations.get(tenantId, kind);
    const savedSecrets = existing ? (this.#o.repositories.integrations.credentials(existing) ?? {}) : {};
    const values: Record<string, string> = {};
    const fieldErrors: Record<string, string> = {};
    const trimmed: Record<string, string> = Object.fromEntries(
      Object.entries(input).map(([k, v]) => [k, (v ?? '').trim()]),
    );
    for (const field of descriptor.fields) {
      if (!trimmed[field.key] && field.defaultValue) trimmed[field.key] = field.defaultValue;
    }
    for (const field of descriptor.fields) {
      if (!isShown(field, trimmed)) continue;
      let value = trimmed[field.key] ?? '';
      if (!value && field.secret && savedSecrets[field.key]) value = savedSecrets[field.key]!;
      if (!value) {
        if (field.required) fieldErrors[field.key] = `${field.label} is required.`;
        continue;
      }
      const problem = this.#validateField(field, value);
      if (problem) fieldErrors[field.key] = problem;
      values[field.key] = value;
    }
    return { values, fieldErrors, existing };
  }

  /**
   * Validates the form, fills blank secrets from the saved ones, verifies live, and only then
   * stores: a failed attempt leaves what was saved before untouched.
   */
  async connect(
    tenantId: string,
    kind: TicketProviderKind,
    input: ProviderValues,
    actor: string,
  ): Promise<ConnectResult> {
    const descriptor = this.descriptor(kind);
    const { values, fieldErrors, existing } = await this.validate(tenantId, kind, input);
    if (Object.keys(fieldErrors).length > 0) {
      return { ok: false, code: ErrorCode.VALIDATION, message: 'Some fields need attention.', fieldErrors };
    }
    const settings = storedSettings(existing);
    const result = await this.#instance(kind, values).verify();
    if (!result.ok) {
      const field = result.field ?? descriptor.fields.find((f) => f.secret)?.key;
      return {
        ok: false,
        code: result.code,
        message: result.message,
        fieldErrors: { ...(result.fieldErrors ?? {}), ...(field ? { [field]: result.message } : {}) },
      };
    }
    const secretValues = Object.fromEntries(
      descriptor.fields.filter((f) => f.secret && values[f.key]).map((f) => [f.key, values[f.key]!]),
    );
    const plainValues = Object.fromEntries(
      descriptor.fields.filter((f) => !f.secret && values[f.key]).map((f) => [f.key, values[f.key]!]),
    );
    await this.#o.repositories.integrations.save(tenantId, kind, {
      status: 'active',
      settings: { values: plainValues, routing: settings.routing, paused: false },
      credentials: secretValues,
      lastVerifiedAt: new Date(),
      lastError: null,
    });
    await this.#o.repositories.audit.record(tenantId, {
      actor,
      action: existing ? 'integration.update' : 'integration.connect',
      target: kind,
      before: existing ? { ...settings.values, status: existing.status } : null,
      after: {
        ...plainValues,
        status: 'active',
        ...Object.fromEntries(Object.keys(secretValues).map((k) => [k, '[set]'])),
      },
    });
    return {
      ok: true,
      status: 'active',
      message: `${descriptor.displayName} is connected and active`,
      identity: result.identity.displayName,
    };
  }

  #validateField(field: CredentialField, value: string): string | undefined {
    if (value.length > 2_000) return `${field.label} is too long.`;
    if (field.type === 'url') {
      try {
        checkUrl(value, this.#o.urlPolicy, field.key);
      } catch (error) {
        return (error as Error).message;
      }
    }
    if (field.type === 'email' && !EMAIL.test(value))
      return `${field.label} must be an email address, like ops@example.com.`;
    if (field.type === 'select' && field.options && !field.options.some((o) => o.value === value)) {
      return `Choose one of: ${field.options.map((o) => o.label).join(', ')}.`;
    }
    return undefined;
  }

  /** Saves routing after checking it with the provider (project exists, may create there). */
  async configure(
    tenantId: string,
    kind: TicketProviderKind,
    routing: Routing,
    actor: string,
  ): Promise<ConnectResult> {
    const row = await this.#requireConnected(tenantId, kind);
    const settings = storedSettings(row);
    const provider = this.#instance(kind, {
      ...settings.values,
      ...(this.#o.repositories.integrations.credentials(row) ?? {}),
    });
    const result = await provider.verify(routing);
    if (!result.ok) {
      return {
        ok: false,
        code: result.code,
        message: result.message,
        fieldErrors: {
          ...(result.fieldErrors ?? {}),
          ...(result.field ? { [result.field]: result.message } : { project: result.message }),
        },
      };
    }
    await this.#o.repositories.integrations.save(tenantId, kind, {
      status: row.status as IntegrationStatus,
      settings: { ...settings, routing },
      lastVerifiedAt: new Date(),
      lastError: row.lastError,
    });
    await this.#o.repositories.audit.record(tenantId, {
      actor,
      action: 'integration.configure',
      target: kind,
      before: { routing: settings.routing },
      after: { routing },
    });
    return {
      ok: true,
      status: row.status as IntegrationStatus,
      message: `${this.descriptor(kind).displayName} routing saved`,
      identity: result.identity.displayName,
    };
  }

  /** Pause (Connected: credentials kept, no tickets offered) or activate (Active). */
  async setPaused(
    tenantId: string,
    kind: TicketProviderKind,
    paused: boolean,
    actor: string,
  ): Promise<ProviderStatusView> {
    const row = await this.#requireConnected(tenantId, kind);
    const settings = storedSettings(row);
    const status: IntegrationStatus = row.status === 'error' ? 'error' : paused ? 'connected' : 'active';
    await this.#o.repositories.integrations.save(tenantId, kind, {
      status,
      settings: { ...settings, paused },
      lastVerifiedAt: row.lastVerifiedAt,
      lastError: row.lastError,
    });
    await this.#o.repositories.audit.record(tenantId, {
      actor,
      action: paused ? 'integration.pause' : 'integration.activate',
      target: kind,
      before: { status: row.status },
      after: { status },
    });
    return this.status(tenantId, kind);
  }

  /** Deletes the stored credentials and settings; tickets already created keep their history. */
  async disconnect(tenantId: string, kind: TicketProviderKind, actor: string): Promise<boolean> {
    const row = await this.#o.repositories.integrations.get(tenantId, kind);
    if (!row) return false;
    await this.#o.repositories.integrations.remove(tenantId, kind);
    // Its webhook secret goes too: a reconnect issues a new one.
    await this.#o.repositories.webhooks.remove(tenantId, kind);
    await this.#o.repositories.audit.record(tenantId, {
      actor,
      action: 'integration.disconnect',
      target: kind,
      before: { ...storedSettings(row).values, status: row.status },
      after: null,
    });
    return true;
  }

  /**
   * The provider to create tickets with: only an Active integration offers tickets. With
   * `includePaused`, a Connected (paused) integration answers too: reading the status of tickets
   * created earlier goes on while creation is paused.
   */
  async providerFor(
    tenantId: string,
    kind: TicketProviderKind,
    options: { readonly includePaused?: boolean } = {},
  ): Promise<{ provider: TicketProvider; routing: Routing }> {
    const row = await this.#o.repositories.integrations.get(tenantId, kind);
    const name = this.descriptor(kind).displayName;
    if (!row)
      throw new AppError(
        ErrorCode.NOT_FOUND,
        `${name} is not connected. An admin can connect it with /cloudpi connect ${kind}.`,
      );
    if (row.status === 'connected' && !options.includePaused)
      throw new AppError(ErrorCode.FORBIDDEN, `${name} is paused by an admin; ticket creation is off.`);
    const settings = storedSettings(row);
    const provider = this.#instance(kind, {
      ...settings.values,
      ...(this.#o.repositories.integrations.credentials(row) ?? {}),
    });
    return { provider, routing: settings.routing };
  }

  async #requireConnected(tenantId: string, kind: TicketProviderKind): Promise<IntegrationRow> {
    const row = await this.#o.repositories.integrations.get(tenantId, kind);
    if (!row) {
      throw new AppError(
        ErrorCode.NOT_FOUND,
        `${this.descriptor(kind).displayName} is not connected. Connect it first with /cloudpi connect ${kind}.`,
      );
    }
    return row;
  }

  /**
   * Re-verifies stored credentials. A failure marks the integration Error with the reason and
   * time (credentials kept); a later success restores Active or Connected. Returns the
   * integrations whose state changed.
   */
  async healthCheck(
    tenantId: string,
  ): Promise<{ kind: TicketProviderKind; from: IntegrationStatus; to: IntegrationStatus; error?: string }[]> {
    const changes: {
      kind: TicketProviderKind;
      from: IntegrationStatus;
      to: IntegrationStatus;
      error?: string;
    }[] = [];
    for (const row of await this.#o.repositories.integrations.list(tenantId)) {
      const kind = row.kind as TicketProviderKind;
      if (!this.#o.registry.has(kind)) continue;
      const settings = storedSettings(row);
      let result: Awaited<ReturnType<TicketProvider['verify']>>;
      try {
        result = await this.#instance(kind, {
          ...settings.values,
          ...(this.#o.repositories.integrations.credentials(row) ?? {}),
        }).verify(settings.routing.project ? settings.routing : undefined);
      } catch (error) {
        result = {
          ok: false,
          code: isAppError(error) ? error.code : ErrorCode.INTERNAL,
          message: (error as Error).message,
        };
      }
      const from = row.status as IntegrationStatus;
      const to: IntegrationStatus = result.ok ? (settings.paused ? 'connected' : 'active') : 'error';
      const lastError = result.ok ? null : result.message;
      await this.#o.repositories.integrations.save(tenantId, kind, {
        status: to,
        settings: { ...settings },
        lastVerifiedAt: new Date(),
        lastError,
      });
      if (from !== to) {
        changes.push({ kind, from, to, ...(lastError ? { error: lastError } : {}) });
        await this.#o.repositories.audit.record(tenantId, {
          actor: 'health-check',
          action: to === 'error' ? 'integration.health.failed' : 'integration.health.recovered',
          target: kind,
          before: { status: from },
          after: { status: to, ...(lastError ? { error: lastError } : {}) },
        });
        this.#o.logger.warn({ tenantId, kind, from, to, error: lastError }, 'integration health changed');
      }
    }
    return changes;
  }
}
