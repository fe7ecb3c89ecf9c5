/**
 * The Mailer port: what the core needs from an SMTP server. adapters/email/smtp implements it with
 * nodemailer; the core never imports it (main.ts wires it).
 *
 * `verify` never throws for expected failures: it returns them classified, with the form field
 * they concern. `send` throws AppError: RATE_LIMITED or UNREACHABLE for what is worth retrying
 * (421, 450, 451, 452, connection errors), PROVIDER_ERROR with `details.permanent = true` for 5xx
 * refusals that no retry cures.
 */
import type { ErrorCode } from '../errors.js';
import type { UrlPolicy } from '../net/url-policy.js';

export const SMTP_SECURITY = ['auto', 'starttls', 'tls'] as const;
/** auto: implicit TLS on 465, STARTTLS required elsewhere; starttls; tls (implicit, "SMTPS"). */
export type SmtpSecurity = (typeof SMTP_SECURITY)[number];

export interface SmtpSettings {
  readonly host: string;
  readonly port: number;
  readonly security: SmtpSecurity;
  /** The sender (From) address. */
  readonly fromAddress: string;
  /** Login name; the sender address when empty. */
  readonly username: string;
  readonly password: string;
}

export type MailerVerifyResult =
  | { readonly ok: true; readonly summary: string }
  | {
      readonly ok: false;
      readonly code: ErrorCode;
      /** "Unable to connect to SMTP server: ...", "Invalid email credentials: ...", "TLS ...: use 465 with implicit TLS or 587 with STARTTLS". */
      readonly message: string;
      /** host | port | security | username | password | fromAddress */
      readonly field?: string;
    };

export interface MailMessage {
  readonly to: readonly string[];
  readonly subject: string;
  readonly text: string;
  readonly html: string;
  /** Extra headers (List-Unsubscribe, List-Unsubscribe-Post, X-CloudPi-*). */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface SentMail {
  readonly messageId: string;
  readonly accepted: readonly string[];
  readonly rejected: readonly string[];
}

export interface Mailer {
  /**
   * Connects, negotiates TLS and authenticates. With `testRecipient`, also sends a short test
   * message (catches servers that accept the connection without checking credentials).
   */
  verify(testRecipient?: string): Promise<MailerVerifyResult>;
  send(message: MailMessage): Promise<SentMail>;
  /** Closes pooled connections. */
  close(): void;
}

export interface MailerContext {
  readonly settings: SmtpSettings;
  readonly urlPolicy: UrlPolicy;
  /** Extra trusted CA certificates (PEM), e.g. a company CA; never "trust everything". */
  readonly ca?: readonly string[];
  readonly timeoutMs?: number;
  /** Pooled connections for bulk sending (the job queue's mailer). */
  readonly pool?: boolean;
}

export interface MailerFactory {
  create(context: MailerContext): Mailer;
}

/** A factory whose adapter (nodemailer) loads on the first mailer used, not at start-up. */
export function lazyMailerFactory(load: () => Promise<MailerFactory>): MailerFactory {
  let factory: Promise<MailerFactory> | undefined;
  return {
    create(context) {
      let instance: Promise<Mailer> | undefined;
      let loaded: Mailer | undefined;
      const get = () => {
        factory ??= load();
        instance ??= factory.then((f) => {
          loaded = f.create(context);
          return loaded;
        });
        return instance;
      };
      return {
        verify: async (testRecipient) => (await get()).verify(testRecipient),
        send: async (message) => (await get()).send(message),
        close: () => loaded?.close(),
      };
    },
  };
}
