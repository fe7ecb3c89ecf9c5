/**
 * Email over the tenant's SMTP server with nodemailer, as the Mailer port. main.ts registers
 * `smtpMailerFactory`; the core only sees the Mailer port.
 */
import type { MailerFactory } from '../../../src/notify/mailer.js';
import { createSmtpMailer } from './mailer.js';

export const smtpMailerFactory: MailerFactory = {
  create: (context) => createSmtpMailer(context),
};

export { createSmtpMailer, SmtpMailer, TEST_SUBJECT } from './mailer.js';
export {
  INVALID_CREDENTIALS,
  PORT_ADVICE,
  UNABLE_TO_CONNECT,
} from './mapping.js';
export {
  DEFAULT_SMTP_TIMEOUT_MS,
  POOL_MAX_CONNECTIONS,
  POOL_MAX_MESSAGES,
  smtpTransportOptions,
} from './transport.js';
