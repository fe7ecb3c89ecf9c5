/**
 * The tenant's SMTP settings (the SMTP form) and the mailer built from them. Save verifies live
 * (connect, TLS, login) and sends a short test message to the sender address, which also
 * catches servers that accept a connection without checking credentials; only a working setting
 * is stored, the password sealed.
 */
import { AppError, ErrorCode, isAppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { checkUrl, type UrlPolicy } from '../net/url-policy.js';
import type { Repositories } from '../storage/repositories/index.js';
import type { IntegrationRow } from '../storage/repositories/integrations.js';
import type { CredentialField, ProviderValues } from '../tickets/port.js';
import {
  type Mailer,
  type MailerFactory,
  SMTP_SECURITY,
  type SmtpSecurity,
  type SmtpSettings,
} from './mailer.js';

export const SMTP_FIELDS: readonly CredentialField[] = [
  {
    key: 'host',
    label: 'SMTP Host',
    type: 'text',
    required: true,
    secret: false,
    placeholder: 'smtp.example.com',
  },
  {
    key: 'port',
    label: 'SMTP Port',
    type: 'text',
    required: true,
    secret: false,
    defaultValue: '587',
    hint: '587 with STARTTLS, or 465 with implicit TLS.',
  },
  {
    key: 'security',
    label: 'Security',
    type: 'select',
    required: true,
    secret: false,
    defaultValue: 'auto',
    options: [
      { value: 'auto', label: 'Auto (TLS on 465, STARTTLS otherwise)' },
      { value: 'starttls', label: 'STARTTLS' },
      { value: 'tls', label: 'Implicit TLS' },
    ],
  },
  {
    key: 'fromAddress',
    label: 'Email Address',
    type: 'email',
    required: true,
    secret: false,
    hint: 'The sender of CloudPi emails.',
  },
  {
    key: 'username',
    label: 'Username',
    type: 'text',
    required: false,
    secret: false,
    hint: 'Leave empty to sign in with the email address.',
  },
  { key: 'password', label: 'Password', type: 'password', required: true, secret: true },
  {
    key: 'recipients',
    label: 'Fallback recipients',
    type: 'text',
    required: false,
    secret: false,
    placeholder: 'finops@example.com, ops@example.com',
    hint: 'Who gets a recommendation by email when its chat card cannot be delivered.',
  },
];

const EMAIL =
  /^[^\s@<>(),;:"[\]\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;
const HOST =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$|^\[?[0-9a-fA-F:.]+\]?$/;

export function isEmailAddress(value: string): boolean {
  return EMAIL.test(value) && value.length <= 254;
}

/** Comma, semicolon or space separated addresses, lower-cased host part, duplicates dropped. */
export function parseRecipients(value: string | undefined): { valid: string[]; invalid: string[] } {
  const all = (value ?? '')
    .split(/[\s,;]+/)
    .map((v) => v.trim())
    .filter(Boolean);
  const valid = [...new Set(all.filter(isEmailAddress))];
  return { valid, invalid: all.filter((v) => !isEmailAddress(v)) };
}

export interface SmtpStatus {
  readonly configured: boolean;
  readonly badge: 'Active' | 'Connected' | 'Not Connected' | 'Error';
  readonly values: Readonly<Record<string, string>>;
  readonly hasSecret: boolean;
  readonly recipients: readonly string[];
  readonly lastError?: string | null;
}

export type SmtpSaveResult =
  | { readonly ok: true; readonly message: string; readonly detail: string }
  | { readonly ok: false; readonly message: string; readonly fieldErrors: Readonly<Record<string, string>> };

export interface SmtpServiceOptions {
  readonly repositories: Repositories;
  readonly factory: MailerFactory;
  readonly urlPolicy: UrlPolicy;
  readonly logger: Logger;
  readonly timeoutMs?: number;
  /** Extra CAs (PEM) SMTP servers may be signed with (CLOUDPI_SMTP_CA_FILE). */
  readonly ca?: readonly string[];
}

export class SmtpService {
  readonly #o: SmtpServiceOptions;

  constructor(options: SmtpServiceOptions) {
    this.#o = options;
  }

  #settingsOf(row: IntegrationRow, password: string): SmtpSettings {
    const s = row.settings as Record<string, unknown>;
    return {
      host: String(s.host ?? ''),
      port: Number(s.port ?? 587),
      security: (SMTP_SECURITY as readonly string[]).includes(String(s.security))
        ? (s.security as SmtpSecurity)
        : 'auto',
      fromAddress: String(s.fromAddress ?? ''),
      username: String(s.username ?? ''),
      password,
    };
  }

  async status(tenantId: string): Promise<SmtpStatus> {
    const row = await this.#o.repositories.integrations.get(tenantId, 'smtp');
    if (!row)
      return { configured: false, badge: 'Not Connected', values: {}, hasSecret: false, recipients: [] };
    const s = row.settings as Record<string, unknown>;
    const recipients = Array.isArray(s.recipients) ? s.recipients.map(String) : [];
    return {
      configured: true,
      badge: row.status === 'error' ? 'Error' : row.status === 'active' ? 'Active' : 'Connected',
      values: {
        host: String(s.host ?? ''),
        port: String(s.port ?? ''),
        security: String(s.security ?? 'auto'),
        fromAddress: String(s.fromAddress ?? ''),
        username: String(s.username ?? ''),
        recipients: recipients.join(', '),
      },
      hasSecret: Boolean(row.credentialsSecret),
      recipients,
      lastError: row.lastError,
    };
  }

  /** Fast checks at the fields, before anything connects. */
  validate(values: ProviderValues, hasSavedSecret: boolean): Record<string, string> {
    const errors: Record<string, string> = {};
    const host = values.host?.trim() ?? '';
    if (!host) errors.host = 'Enter the SMTP Host, e.g. smtp.office365.com.';
    else if (!HOST.test(host) || host.includes('://'))
      errors.host = 'Enter a host name only (no https:// and no port), e.g. smtp.example.com.';
    else {
      // The SSRF guard's own rules for IP literals and local names, at the field (host names are
      // checked again on every resolved address when the connection is made).
      try {
        checkUrl(
          `https://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}/`,
          this.#o.urlPolicy,
          'host',
        );
      } catch (error) {
        errors.host = isAppError(error)
          ? error.message.replace(
              / Use the public address of the service/,
              ' Use the public address of the SMTP server',
            )
          : 'That host cannot be used.';
      }
    }
    const port = values.port?.trim() ?? '';
    if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)
      errors.port = 'Enter the SMTP Port: a number from 1 to 65535 (587 for STARTTLS, 465 for implicit TLS).';
    if (values.security && !(SMTP_SECURITY as readonly string[]).includes(values.security))
      errors.security = 'Choose Auto, STARTTLS or Implicit TLS.';
    const from = values.fromAddress?.trim() ?? '';
    if (!isEmailAddress(from))
      errors.fromAddress = 'Enter the Email Address CloudPi sends from, like cloudpi@example.com.';
    if ((values.username ?? '').length > 256) errors.username = 'Up to 256 characters.';
    if (!values.password && !hasSavedSecret) errors.password = 'Enter the Password.';
    const { invalid } = parseRecipients(values.recipients);
    if (invalid.length) errors.recipients = `Not an email address: ${invalid.slice(0, 3).join(', ')}.`;
    return errors;
  }

  /** A mailer for the tenant's saved settings (undefined when SMTP is not set up). */
  async mailerFor(tenantId: string, options: { pool?: boolean } = {}): Promise<Mailer | undefined> {
    const repo = this.#o.repositories.integrations;
    const row = await repo.get(tenantId, 'smtp');
    const password = row ? repo.credentials(row)?.password : undefined;
    if (!row || password === undefined) return undefined;
    return this.#mailer(this.#settingsOf(row, password), options.pool);
  }

  #mailer(settings: SmtpSettings, pool?: boolean): Mailer {
    return this.#o.factory.create({
      settings,
      urlPolicy: this.#o.urlPolicy,
      ...(this.#o.ca?.length ? { ca: this.#o.ca } : {}),
      ...(this.#o.timeoutMs ? { timeoutMs: this.#o.timeoutMs } : {}),
      ...(pool ? { pool } : {}),
    });
  }

  /** Save / Update: fast checks, then connect, TLS, login and a test message to the sender. */
  async save(tenantId: string, values: ProviderValues, actor: string): Promise<SmtpSaveResult> {
    const repo = this.#o.repositories.integrations;
    const existing = await repo.get(tenantId, 'smtp');
    const savedPassword = existing ? repo.credentials(existing)?.password : undefined;
    const errors = this.validate(values, savedPassword !== undefined);
    if (Object.keys(errors).length)
      return { ok: false, message: 'Some fields need a fix.', fieldErrors: errors };
    const settings: SmtpSettings = {
      host: values.host!.trim(),
      port: Number(values.port),
      security: (values.security as SmtpSecurity) || 'auto',
      fromAddress: values.fromAddress!.trim(),
      username: values.username?.trim() ?? '',
      password: values.password || savedPassword!,
    };
    const mailer = this.#mailer(settings);
    let verified: Awaited<ReturnType<Mailer['verify']>>;
    try {
      verified = await mailer.verify(settings.fromAddress);
    } finally {
      mailer.close();
    }
    if (!verified.ok)
      return {
        ok: false,
        message: verified.message,
        fieldErrors: { [verified.field ?? 'host']: verified.message },
      };
    const recipients = parseRecipients(values.recipients).valid;
    const { password, ...plain } = settings;
    await repo.save(tenantId, 'smtp', {
      status: 'active',
      settings: { ...plain, recipients },
      credentials: { password },
      lastVerifiedAt: new Date(),
      lastError: null,
    });
    await this.#o.repositories.audit.record(tenantId, {
      actor,
      action: existing ? 'smtp.update' : 'smtp.create',
      target: 'smtp',
      before: existing ? { ...(existing.settings as Record<string, unknown>) } : null,
      after: { ...plain, recipients, passwordChanged: Boolean(values.password) },
    });
    return {
      ok: true,
      message: 'Email (SMTP) is connected and active',
      detail: `${verified.summary}. A test email was sent to ${settings.fromAddress}.`,
    };
  }

  /** "Send test email": one message to `to` with the saved settings. */
  async sendTest(
    tenantId: string,
    to: string,
    content: { subject: string; text: string; html: string },
  ): Promise<string> {
    const mailer = await this.mailerFor(tenantId);
    if (!mailer)
      throw new AppError(
        ErrorCode.CONFLICT,
        'Email (SMTP) is not set up yet. An admin can set it up with: smtp.',
      );
    try {
      await mailer.send({ to: [to], ...content });
      return to;
    } catch (error) {
      throw isAppError(error)
        ? error
        : new AppError(ErrorCode.PROVIDER_ERROR, 'The test email could not be sent.', { cause: error });
    } finally {
      mailer.close();
    }
  }

  async disconnect(tenantId: string, actor: string): Promise<boolean> {
    const repo = this.#o.repositories.integrations;
    const row = await repo.get(tenantId, 'smtp');
    if (!row) return false;
    await repo.remove(tenantId, 'smtp');
    await this.#o.repositories.audit.record(tenantId, {
      actor,
      action: 'smtp.disconnect',
      target: 'smtp',
      before: { ...(row.settings as Record<string, unknown>) },
      after: null,
    });
    return true;
  }

  /** A permanent sending failure, kept where admins see it (the status board's SMTP line). */
  async recordFailure(tenantId: string, message: string): Promise<void> {
    const repo = this.#o.repositories.integrations;
    const row = await repo.get(tenantId, 'smtp');
    if (!row) return;
    await repo.save(tenantId, 'smtp', {
      status: row.status as 'active',
      settings: row.settings,
      lastVerifiedAt: row.lastVerifiedAt,
      lastError: message.slice(0, 1000),
    });
  }
}
