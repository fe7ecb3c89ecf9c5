/**
 * nodemailer's errors in CloudPi's words: "Unable to connect to SMTP server: <cause>. <what to
 * do>" and "Invalid email credentials: <cause>. <what to do>", each with the form field it
 * concerns (host | port | security | password | fromAddress).
 *
 * Errors are recognised by nodemailer's codes (ECONNECTION, ETIMEDOUT + timeoutType, ESOCKET,
 * ETLS, EAUTH, ENOAUTH, EENVELOPE, EMESSAGE, EPROTOCOL), the Node/OpenSSL code nodemailer keeps
 * as `originalCode` (ERR_SSL_WRONG_VERSION_NUMBER, DEPTH_ZERO_SELF_SIGNED_CERT, ...), the raw
 * socket errors of the guarded connect (ENOTFOUND, ECONNREFUSED, EPRIVATEADDRESS) and the SMTP
 * reply (`responseCode`, `response`, `command`). No message carries the password: replies are
 * cut to one line and scrubbed of it.
 */
import { AppError, ErrorCode } from '../../../src/errors.js';
import type { MailerVerifyResult } from '../../../src/notify/mailer.js';
import { PRIVATE_ADDRESS_CODE, type TlsProbeResult } from './transport.js';

export const UNABLE_TO_CONNECT = 'Unable to connect to SMTP server';
export const INVALID_CREDENTIALS = 'Invalid email credentials';
/** The advice every TLS-mode mismatch ends with. */
export const PORT_ADVICE = 'use port 587 with STARTTLS, or port 465 with implicit TLS';

type Failure = Extract<MailerVerifyResult, { ok: false }>;

/** What the mapping needs to know about the attempt (never the password itself, except to scrub it). */
export interface SmtpErrorContext {
  readonly host: string;
  readonly port: number;
  /** Implicit TLS (true) or STARTTLS (false). */
  readonly implicitTls: boolean;
  /** The login name (username, or the sender address). */
  readonly user: string;
  readonly fromAddress: string;
  readonly timeoutMs: number;
  /** Scrubbed from every message. */
  readonly password: string;
  /** After a plain-text client saw no greeting: what a TLS handshake on the same port found. */
  readonly probe?: TlsProbeResult;
  /** The test message's recipient (verify with a test email). */
  readonly testRecipient?: string;
  /** How the session before the test email went (verify with a test email). */
  readonly login?: LoginOutcome;
}

/**
 * signed-in: the login succeeded; not-offered: a password is set but the server offers no
 * password login; no-password: the server offers one but no password is set; none: neither.
 */
export type LoginOutcome = 'signed-in' | 'not-offered' | 'no-password' | 'none';

/** The fields of a nodemailer (or Node socket) error this mapping reads. */
export interface SmtpErrorInfo {
  readonly code: string;
  readonly originalCode: string;
  readonly message: string;
  readonly responseCode: number | undefined;
  readonly response: string;
  readonly command: string;
  readonly timeoutType: string;
  readonly address: string;
  readonly rejected: readonly string[];
}

export function errorInfo(error: unknown): SmtpErrorInfo {
  const e = (error ?? {}) as Record<string, unknown>;
  const text = (value: unknown) => (typeof value === 'string' ? value : '');
  // Node's happy-eyeballs AggregateError carries the attempts' errors; the first one has the code.
  const inner = Array.isArray(e.errors) ? ((e.errors[0] ?? {}) as Record<string, unknown>) : {};
  return {
    code: text(e.code) || text(inner.code),
    originalCode: text(e.originalCode),
    message: text(e.message) || text(inner.message) || String(error),
    responseCode: typeof e.responseCode === 'number' ? e.responseCode : undefined,
    response: text(e.response),
    command: text(e.command),
    timeoutType: text(e.timeoutType),
    address: text(e.address),
    rejected: Array.isArray(e.rejected) ? e.rejected.map(String) : [],
  };
}

/** The text without the password (plain or base64). */
export function redact(text: string, password: string): string {
  let clean = text;
  if (password) {
    for (const secret of [password, Buffer.from(password).toString('base64')]) {
      clean = clean.split(secret).join('***');
    }
  }
  return clean;
}

/** A server reply or error message for a sentence: one line, at most 200 characters, redacted. */
export function scrub(text: string, password: string): string {
  const line = redact(text.replace(/\s+/g, ' ').trim(), password);
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}

function seconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

function mode(context: SmtpErrorContext): string {
  return context.implicitTls ? 'implicit TLS' : 'STARTTLS';
}

const TIMEOUT_TYPES = new Set(['CONNECT_TIMEOUT', 'GREETING_TIMEOUT', 'UPGRADE_TIMEOUT', 'SOCKET_TIMEOUT']);
const MISMATCH_TEXT =
  /wrong version number|ssl3_get_record|unknown protocol|packet length too long|record layer failure|http request|tls_validate_record_header/i;
const MISMATCH_CODES = new Set([
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'ERR_SSL_UNKNOWN_PROTOCOL',
  'ERR_SSL_HTTP_REQUEST',
  'ERR_SSL_RECORD_LAYER_FAILURE',
  'EPROTO',
]);
const CERTIFICATE_CODE =
  /^(CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH|INVALID_CA|INVALID_PURPOSE)/;
const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'ENODATA', 'EDNS']);
const UNREACHABLE_CODES = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN']);
/** Replies that mean "no such command": the server offers no (password) AUTH. */
const NOT_OFFERED_REPLIES = new Set([500, 502, 503, 504]);
/** Replies that mean "log in first": 530 and the 5.7.0/5.7.1 "authentication required" family. */
const AUTH_REQUIRED = /\b(5\.7\.0|5\.7\.57|authenticat|log ?in|relay)/i;

/** Error text that is not a server reply (nodemailer appends the reply to its messages). */
function ownText(info: SmtpErrorInfo): string {
  return info.responseCode === undefined ? info.message : '';
}

export function isTimeout(info: SmtpErrorInfo): boolean {
  return (
    info.code === 'ETIMEDOUT' ||
    TIMEOUT_TYPES.has(info.timeoutType) ||
    /greeting never received|timed? ?out/i.test(ownText(info))
  );
}

function isCertificateError(info: SmtpErrorInfo): boolean {
  return (
    CERTIFICATE_CODE.test(info.originalCode) ||
    CERTIFICATE_CODE.test(info.code) ||
    /certificate|altnames/i.test(ownText(info))
  );
}

function isTlsMismatch(info: SmtpErrorInfo): boolean {
  return (
    MISMATCH_CODES.has(info.originalCode) ||
    MISMATCH_CODES.has(info.code) ||
    MISMATCH_TEXT.test(ownText(info))
  );
}

/** The server refused AUTH as a command (it offers no password login): only verify forces AUTH. */
export function isLoginNotOffered(info: SmtpErrorInfo): boolean {
  return (
    info.code === 'EAUTH' &&
    info.responseCode !== undefined &&
    NOT_OFFERED_REPLIES.has(info.responseCode) &&
    info.command.startsWith('AUTH')
  );
}

/** A certificate problem in words an admin can act on. */
function certificateReason(info: SmtpErrorInfo, host: string): string {
  const code = info.originalCode || info.code;
  switch (code) {
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      return `it is self-signed (${code})`;
    case 'SELF_SIGNED_CERT_IN_CHAIN':
      return `it is signed by a self-signed CA that is not trusted (${code})`;
    case 'CERT_HAS_EXPIRED':
      return `it has expired (${code})`;
    case 'CERT_NOT_YET_VALID':
      return `it is not valid yet (${code})`;
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
    case 'HOSTNAME_MISMATCH':
      return `it is not issued for ${host} (${code}: ${info.message.replace(/^Hostname\/IP does not match certificate's altnames: /, '')})`;
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
      return `it is signed by an authority this server does not know (${code})`;
    default:
      return code ? `${code}: ${info.message}` : info.message;
  }
}

function failure(code: ErrorCode, message: string, field: string | undefined, password: string): Failure {
  const text = redact(message.replace(/\s+/g, ' ').trim(), password);
  return field ? { ok: false, code, message: text, field } : { ok: false, code, message: text };
}

/**
 * Connection, TLS and login failures (verify, and the transport side of send): the sentence, the
 * code and the field.
 */
export function classifyConnectionError(error: unknown, context: SmtpErrorContext): Failure {
  const info = errorInfo(error);
  const { host, port, password } = context;
  const where = `${host}:${port}`;
  const reply = () => scrub(info.response || info.message, password);

  if (info.code === PRIVATE_ADDRESS_CODE) {
    const target =
      info.address && info.address !== host ? `${host} resolves to ${info.address},` : `${host} is`;
    return failure(
      ErrorCode.INVALID_URL,
      `${UNABLE_TO_CONNECT}: ${target} a private, loopback or link-local address, which this server does not connect to. Use the public address of the SMTP server (the operator can allow private networks with CLOUDPI_ALLOW_PRIVATE_NETWORKS=true).`,
      'host',
      password,
    );
  }
  if (DNS_CODES.has(info.code) || DNS_CODES.has(info.originalCode)) {
    return failure(
      ErrorCode.UNREACHABLE,
      `${UNABLE_TO_CONNECT}: the host ${host} was not found. Check the SMTP Host.`,
      'host',
      password,
    );
  }
  if (info.code === 'ECONNREFUSED' || info.originalCode === 'ECONNREFUSED') {
    return failure(
      ErrorCode.UNREACHABLE,
      `${UNABLE_TO_CONNECT}: ${where} refused the connection. Check the SMTP Port (587 for STARTTLS, 465 for implicit TLS).`,
      'port',
      password,
    );
  }
  if (UNREACHABLE_CODES.has(info.code) || UNREACHABLE_CODES.has(info.originalCode)) {
    return failure(
      ErrorCode.UNREACHABLE,
      `${UNABLE_TO_CONNECT}: ${where} cannot be reached from this server (${info.originalCode || info.code}). Check the SMTP Host, and that a firewall lets this server reach it.`,
      'host',
      password,
    );
  }
  if (isTimeout(info)) {
    if (!context.implicitTls && context.probe === 'tls') {
      return failure(
        ErrorCode.TLS_ERROR,
        `${UNABLE_TO_CONNECT}: ${where} expects implicit TLS: it sent no plain-text greeting for STARTTLS, but answered a TLS handshake. Set the security to TLS for this port, or ${PORT_ADVICE}.`,
        'security',
        password,
      );
    }
    const accepted =
      info.timeoutType === 'CONNECT_TIMEOUT'
        ? ''
        : info.timeoutType === 'UPGRADE_TIMEOUT'
          ? ' (the connection was accepted, but the TLS handshake did not finish)'
          : info.timeoutType === 'GREETING_TIMEOUT'
            ? ' (the connection was accepted, but no SMTP greeting came)'
            : ' (the connection was accepted, but the server stopped answering)';
    return failure(
      ErrorCode.UNREACHABLE,
      `${UNABLE_TO_CONNECT}: no answer from ${where} within ${seconds(context.timeoutMs)}${accepted}. Check the SMTP Host and Port (587 for STARTTLS, 465 for implicit TLS), and that a firewall lets this server reach it.`,
      'port',
      password,
    );
  }
  if (isCertificateError(info)) {
    return failure(
      ErrorCode.TLS_ERROR,
      `${UNABLE_TO_CONNECT}: the TLS certificate of ${host} could not be verified: ${certificateReason(info, host)}. TLS verification stays on; add the server's CA or fix its certificate.`,
      'host',
      password,
    );
  }
  if (isTlsMismatch(info)) {
    return failure(
      ErrorCode.TLS_ERROR,
      context.implicitTls
        ? `${UNABLE_TO_CONNECT}: ${where} does not speak implicit TLS: it answered in plain text, as STARTTLS ports do (${info.originalCode || 'wrong version number'}). Set the security to STARTTLS for this port, or ${PORT_ADVICE}.`
        : `${UNABLE_TO_CONNECT}: the TLS handshake with ${where} failed after STARTTLS (${info.originalCode || info.message}). Check the security setting: ${PORT_ADVICE}.`,
      'security',
      password,
    );
  }
  if (
    (info.code === 'ETLS' && info.command === 'STARTTLS' && info.responseCode !== undefined) ||
    /does not support required STARTTLS/i.test(info.message)
  ) {
    return failure(
      ErrorCode.TLS_ERROR,
      `${UNABLE_TO_CONNECT}: ${where} does not offer STARTTLS (it answered "${reply()}"), and the password is never sent unencrypted. Use the server's submission port: ${PORT_ADVICE}.`,
      'security',
      password,
    );
  }
  if (info.code === 'ETLS') {
    return failure(
      ErrorCode.TLS_ERROR,
      `${UNABLE_TO_CONNECT}: the TLS handshake with ${where} failed (${scrub(info.message, password)}). Check the security setting: ${PORT_ADVICE}.`,
      'security',
      password,
    );
  }
  if (info.code === 'ENOAUTH') {
    return failure(
      ErrorCode.INVALID_CREDENTIALS,
      `${INVALID_CREDENTIALS}: ${where} asks for a login, and no Password is set. Enter the Password of ${context.user}.`,
      'password',
      password,
    );
  }
  if (info.code === 'EAUTH') {
    if (info.responseCode === 538) {
      return failure(
        ErrorCode.TLS_ERROR,
        `${UNABLE_TO_CONNECT}: ${where} only accepts a login over TLS (${reply()}). Check the security setting: ${PORT_ADVICE}.`,
        'security',
        password,
      );
    }
    if (info.responseCode !== undefined && info.responseCode >= 400 && info.responseCode < 500) {
      return failure(
        ErrorCode.UNREACHABLE,
        `${UNABLE_TO_CONNECT}: ${where} could not check the login right now (${reply()}). Try again in a few minutes.`,
        'password',
        password,
      );
    }
    if (isLoginNotOffered(info)) {
      return failure(
        ErrorCode.PROVIDER_ERROR,
        `The email credentials could not be checked: ${where} offers no password login over ${mode(context)} (it answered AUTH with "${reply()}"). Send a test email to check that it takes mail from ${context.fromAddress}, or use the server's submission port (587 or 465), where it accepts a login.`,
        'password',
        password,
      );
    }
    return failure(
      ErrorCode.INVALID_CREDENTIALS,
      `${INVALID_CREDENTIALS}: the server refused the login for ${context.user} (${reply()}). Check the Email Address / username and Password.`,
      'password',
      password,
    );
  }
  if (info.code === 'EPROTOCOL' && /invalid greeting/i.test(info.message)) {
    return failure(
      ErrorCode.UNREACHABLE,
      `${UNABLE_TO_CONNECT}: ${where} is not an SMTP server (it greeted with "${reply()}"). Check the SMTP Port (587 for STARTTLS, 465 for implicit TLS).`,
      'port',
      password,
    );
  }
  if (info.responseCode === 421 || /^421/.test(info.response)) {
    return failure(
      ErrorCode.RATE_LIMITED,
      `${UNABLE_TO_CONNECT}: ${where} is not taking connections right now (${reply()}). Try again in a few minutes.`,
      'host',
      password,
    );
  }
  if (info.code === 'ECONNECTION' || info.code === 'ECONNRESET' || info.originalCode === 'ECONNRESET') {
    return failure(
      ErrorCode.UNREACHABLE,
      context.implicitTls
        ? `${UNABLE_TO_CONNECT}: ${where} closed the connection during the TLS handshake. If this port uses STARTTLS, set the security to STARTTLS; otherwise ${PORT_ADVICE}.`
        : `${UNABLE_TO_CONNECT}: ${where} closed the connection before the SMTP session was set up. Check the SMTP Port (587 for STARTTLS, 465 for implicit TLS).`,
      context.implicitTls ? 'security' : 'port',
      password,
    );
  }
  return failure(
    ErrorCode.PROVIDER_ERROR,
    `${UNABLE_TO_CONNECT}: ${where} failed: ${scrub(info.response || info.message, password)}.`,
    'host',
    password,
  );
}

/** True for the errors of sending (envelope, message) as opposed to connecting and logging in. */
function isDeliveryError(info: SmtpErrorInfo): boolean {
  return info.code === 'EENVELOPE' || info.code === 'EMESSAGE';
}

/** The test email of verify: refusals of the sender, the recipient, or of mail without a login. */
export function classifyTestMessageError(error: unknown, context: SmtpErrorContext): Failure {
  const info = errorInfo(error);
  if (!isDeliveryError(info) || info.responseCode === undefined)
    return classifyConnectionError(error, context);
  const { host, port, password } = context;
  const where = `${host}:${port}`;
  const reply = scrub(info.response || info.message, password);
  const code = info.responseCode;
  if (code >= 400 && code < 500) {
    return failure(
      ErrorCode.RATE_LIMITED,
      `The SMTP server deferred the test email (${reply}). Try again in a few minutes.`,
      undefined,
      password,
    );
  }
  const wantsLogin = code === 530 || AUTH_REQUIRED.test(reply);
  if (wantsLogin && context.login === 'no-password') {
    return failure(
      ErrorCode.INVALID_CREDENTIALS,
      `${INVALID_CREDENTIALS}: ${where} refused the test email without a login (${reply}), and no Password is set. Enter the Password of ${context.user}.`,
      'password',
      password,
    );
  }
  if (wantsLogin && (context.login === 'not-offered' || context.login === 'none')) {
    return failure(
      ErrorCode.INVALID_CREDENTIALS,
      `${INVALID_CREDENTIALS}: ${where} offers no password login over ${mode(context)} and refused the test email without one (${reply}). Check the SMTP Host and Port: use the server's submission port (587 with STARTTLS or 465 with implicit TLS), where the Email Address and Password are accepted.`,
      'password',
      password,
    );
  }
  if (info.command === 'MAIL FROM' || wantsLogin) {
    return failure(
      ErrorCode.INVALID_INPUT,
      `The server refused to send as ${context.fromAddress} (${reply}). Use an Email Address that ${context.user} may send as.`,
      'fromAddress',
      password,
    );
  }
  if (info.command === 'RCPT TO') {
    return failure(
      ErrorCode.INVALID_INPUT,
      `The server refused the test recipient ${context.testRecipient ?? ''} (${reply}). Check the address.`,
      // The form has no test recipient field; the sender is the usual test recipient.
      context.testRecipient === context.fromAddress ? 'fromAddress' : undefined,
      password,
    );
  }
  return failure(
    ErrorCode.PROVIDER_ERROR,
    `The server refused the test email (${reply}).`,
    undefined,
    password,
  );
}

/** Rate limits and transient refusals: 421 (closing), 450 (mailbox busy, greylisting), 451 (local error), 452 (storage, too many recipients). */
const DEFERRAL_CODES = new Set([421, 450, 451, 452]);

/**
 * send(): AppError RATE_LIMITED (421/45x) or UNREACHABLE (connection, timeout) for what a retry
 * can cure; PROVIDER_ERROR with details.permanent for 5xx refusals; the connection classification
 * (INVALID_CREDENTIALS, TLS_ERROR, INVALID_URL) for settings that need fixing.
 */
export function classifySendError(error: unknown, context: SmtpErrorContext): AppError {
  const info = errorInfo(error);
  const { host, password } = context;
  const reply = scrub(info.response || info.message, password);
  const responseCode = info.responseCode;
  const smtp = responseCode === undefined ? {} : { responseCode, response: reply };

  if (
    responseCode !== undefined &&
    (DEFERRAL_CODES.has(responseCode) || (responseCode >= 400 && responseCode < 500))
  ) {
    return new AppError(
      ErrorCode.RATE_LIMITED,
      `The SMTP server ${host} deferred the message (${reply}). It will be sent again later.`,
      { cause: error, details: { permanent: false, retryable: true, ...smtp } },
    );
  }
  if (isDeliveryError(info) && responseCode === undefined) {
    return new AppError(ErrorCode.PROVIDER_ERROR, `Sending through ${host} failed: ${reply}.`, {
      cause: error,
      details: { permanent: true },
    });
  }
  if (isDeliveryError(info) && responseCode !== undefined && responseCode >= 500) {
    const permanent = responseCode !== 503; // 503: bad sequence, a new session may cure it
    const message =
      info.command === 'MAIL FROM'
        ? `The SMTP server ${host} refused to send as ${context.fromAddress} (${reply}). Use an Email Address the account may send as.`
        : info.rejected.length > 0 || /all recipients were rejected/i.test(info.message)
          ? `The SMTP server ${host} refused every recipient (${reply}): ${info.rejected.join(', ')}.`
          : `The SMTP server ${host} refused the message (${reply}).`;
    return new AppError(ErrorCode.PROVIDER_ERROR, redact(message, password), {
      cause: error,
      details: {
        permanent,
        ...smtp,
        ...(info.rejected.length > 0 ? { rejected: info.rejected } : {}),
      },
    });
  }
  const classified = classifyConnectionError(error, context);
  const retryable = classified.code === ErrorCode.UNREACHABLE || classified.code === ErrorCode.RATE_LIMITED;
  return new AppError(classified.code, classified.message, {
    cause: error,
    details: {
      permanent: !retryable,
      retryable,
      ...(classified.field ? { field: classified.field } : {}),
      ...smtp,
    },
  });
}
