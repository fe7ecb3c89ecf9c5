/**
 * The Mailer port on nodemailer: one instance per tenant's settings (never shared, never mutated).
 *
 * verify(testRecipient?) connects, negotiates TLS and logs in with nodemailer's `verify()` on a
 * one-off transport that forces AUTH: a server that offers no password login would otherwise
 * pass without the credentials ever being checked. When that happens (or no password is set on
 * a server that asks for one) only a real message can tell whether the settings work, so with a
 * `testRecipient` a short test email goes out and its refusal is classified; without one the
 * result says the credentials could not be checked. A successful verify with a test recipient
 * sends the test email too (the summary does not repeat that; callers say it in their words).
 *
 * send(message) goes through a transport (pooled when `context.pool`) created on first use.
 */
import { createTransport, type Transporter } from 'nodemailer';
import { AppError, ErrorCode } from '../../../src/errors.js';
import type {
  MailerContext,
  Mailer as MailerPort,
  MailerVerifyResult,
  MailMessage,
  SentMail,
} from '../../../src/notify/mailer.js';
import {
  classifyConnectionError,
  classifySendError,
  classifyTestMessageError,
  errorInfo,
  isLoginNotOffered,
  isTimeout,
  type LoginOutcome,
  type SmtpErrorContext,
} from './mapping.js';
import {
  DEFAULT_SMTP_TIMEOUT_MS,
  normalizeHost,
  probeImplicitTls,
  smtpTransportOptions,
  usesImplicitTls,
} from './transport.js';

export const TEST_SUBJECT = 'CloudPi test email';

type Sender = Pick<Transporter, 'sendMail' | 'verify' | 'close'>;

/** Settings a connection cannot even be tried with. */
function invalidSettings(context: MailerContext): MailerVerifyResult | undefined {
  const { host, port, fromAddress } = context.settings;
  if (!normalizeHost(host)) {
    return { ok: false, code: ErrorCode.INVALID_INPUT, message: 'Enter the SMTP Host.', field: 'host' };
  }
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    return {
      ok: false,
      code: ErrorCode.INVALID_INPUT,
      message: `${port} is not a port number. Enter the SMTP Port: 587 for STARTTLS, 465 for implicit TLS.`,
      field: 'port',
    };
  }
  if (!/^[^\s@<>]+@[^\s@<>]+$/.test(fromAddress.trim())) {
    return {
      ok: false,
      code: ErrorCode.INVALID_INPUT,
      message: `"${fromAddress}" is not an email address. Enter the Email Address mail is sent from.`,
      field: 'fromAddress',
    };
  }
  return undefined;
}

function testMessage(context: MailerContext, to: string) {
  const host = normalizeHost(context.settings.host);
  const text = `This is a test email from CloudPi, sent to check the SMTP settings for ${host}. No action is needed.`;
  return {
    from: context.settings.fromAddress.trim(),
    to,
    subject: TEST_SUBJECT,
    text,
    html: `<p>${text}</p>`,
  };
}

export class SmtpMailer implements MailerPort {
  private readonly context: MailerContext;
  private readonly errorContext: SmtpErrorContext;
  private transporter: Sender | undefined;

  constructor(context: MailerContext) {
    this.context = context;
    const { settings } = context;
    const host = normalizeHost(settings.host);
    this.errorContext = {
      host,
      port: settings.port,
      implicitTls: usesImplicitTls(settings.security, settings.port),
      user: settings.username || settings.fromAddress,
      fromAddress: settings.fromAddress.trim(),
      timeoutMs: context.timeoutMs ?? DEFAULT_SMTP_TIMEOUT_MS,
      password: settings.password,
    };
  }

  async verify(testRecipient?: string): Promise<MailerVerifyResult> {
    const invalid = invalidSettings(this.context);
    if (invalid) return invalid;
    const recipient = testRecipient?.trim() || undefined;
    const hasPassword = this.context.settings.password !== '';
    let login: LoginOutcome = hasPassword ? 'signed-in' : 'none';

    const checker = createTransport(smtpTransportOptions(this.context, { forceAuth: true, pool: false }));
    try {
      await checker.verify();
    } catch (error) {
      const info = errorInfo(error);
      if (hasPassword && isLoginNotOffered(info)) login = 'not-offered';
      else if (!hasPassword && info.code === 'ENOAUTH') login = 'no-password';
      else {
        // A plain-text client that got no greeting may be talking to an implicit-TLS port.
        const probe =
          isTimeout(info) && !this.errorContext.implicitTls
            ? await probeImplicitTls(this.context)
            : undefined;
        return classifyConnectionError(error, { ...this.errorContext, ...(probe ? { probe } : {}) });
      }
      if (!recipient) return classifyConnectionError(error, this.errorContext);
    } finally {
      checker.close();
    }

    if (recipient) {
      const sender = createTransport(smtpTransportOptions(this.context, { pool: false }));
      try {
        await sender.sendMail(testMessage(this.context, recipient));
      } catch (error) {
        return classifyTestMessageError(error, { ...this.errorContext, login, testRecipient: recipient });
      } finally {
        sender.close();
      }
    }
    return { ok: true, summary: this.summary(login, recipient) };
  }

  /**
   * One sentence without a final period (callers append their own): "Signed in to <host>:<port>
   * as <user> (STARTTLS|TLS)" when the login was checked; otherwise what was checked instead.
   */
  private summary(login: LoginOutcome, recipient: string | undefined): string {
    const { host, port, implicitTls, user } = this.errorContext;
    const tls = implicitTls ? 'TLS' : 'STARTTLS';
    const where = `${host}:${port} (${tls})`;
    switch (login) {
      case 'signed-in':
        return `Signed in to ${host}:${port} as ${user} (${tls})`;
      case 'not-offered':
        return `Connected to ${where}: the server offers no login, so the Password is not used, and it accepted a test email to ${recipient} without one`;
      case 'no-password':
        return `Connected to ${where} without a login: it accepted a test email to ${recipient}`;
      case 'none':
        return `Connected to ${where} without a login${recipient ? `, and it accepted a test email to ${recipient}` : ''}`;
    }
  }

  async send(message: MailMessage): Promise<SentMail> {
    const invalid = invalidSettings(this.context);
    if (invalid && !invalid.ok) {
      throw new AppError(invalid.code, invalid.message, {
        details: { permanent: true, ...(invalid.field ? { field: invalid.field } : {}) },
      });
    }
    const to = message.to.map((address) => address.trim()).filter((address) => address !== '');
    if (to.length === 0) {
      throw new AppError(ErrorCode.INVALID_INPUT, 'The email has no recipients.', {
        details: { permanent: true, field: 'to' },
      });
    }
    this.transporter ??= createTransport(smtpTransportOptions(this.context));
    try {
      const info = await this.transporter.sendMail({
        from: this.errorContext.fromAddress,
        to,
        subject: message.subject,
        text: message.text,
        html: message.html,
        ...(message.headers ? { headers: { ...message.headers } } : {}),
      });
      const addresses = (list: unknown): string[] =>
        Array.isArray(list)
          ? list.map((entry) =>
              typeof entry === 'string' ? entry : String((entry as { address?: unknown }).address ?? entry),
            )
          : [];
      return {
        messageId: String(info.messageId ?? ''),
        accepted: addresses(info.accepted),
        rejected: addresses(info.rejected),
      };
    } catch (error) {
      throw classifySendError(error, this.errorContext);
    }
  }

  close(): void {
    this.transporter?.close();
    this.transporter = undefined;
  }
}

export function createSmtpMailer(context: MailerContext): SmtpMailer {
  return new SmtpMailer(context);
}
