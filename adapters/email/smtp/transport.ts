/**
 * nodemailer transport options for one tenant's SMTP settings, and the guarded socket every
 * connection goes through.
 *
 * SSRF and DNS rebinding: nodemailer is never given a host name to resolve. Its `getSocket` hook
 * is ours: for every connection (pooled ones too) it resolves the host once (all addresses),
 * refuses the lot if any address is private, loopback or link-local (unless the operator allows
 * private networks), and connects to exactly those addresses. nodemailer then speaks SMTP over
 * that socket, and TLS (implicit or STARTTLS) verifies the certificate against the host name the
 * admin entered (`servername`), never against the address.
 *
 * TLS: `rejectUnauthorized` stays true; `ca` adds the operator's CAs to the default ones (Node's
 * `ca` option replaces them otherwise). STARTTLS is required on every port but 465, so a password
 * never crosses the network in clear.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import * as tls from 'node:tls';
import type { SMTPPoolOptions } from 'nodemailer/lib/smtp-pool';
import type { SMTPTransportOptions } from 'nodemailer/lib/smtp-transport';
import { isNonPublicAddress, type UrlPolicy } from '../../../src/net/url-policy.js';
import type { MailerContext, SmtpSecurity } from '../../../src/notify/mailer.js';

export const DEFAULT_SMTP_TIMEOUT_MS = 10_000;
/** Pooled sending (the job queue): few connections, so as not to trip per-client limits. */
export const POOL_MAX_CONNECTIONS = 2;
export const POOL_MAX_MESSAGES = 100;

/** The code of the error the guard fails a connection with (the same as guardedLookup's). */
export const PRIVATE_ADDRESS_CODE = 'EPRIVATEADDRESS';

/** Error codes nodemailer and Node use, plus the fields this module adds. */
export interface SocketError extends Error {
  code?: string;
  timeoutType?: string;
  address?: string;
  hostname?: string;
}

/** Host as typed, without brackets around an IPv6 literal and without a trailing dot. */
export function normalizeHost(host: string): string {
  return host
    .trim()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '');
}

/** Implicit TLS on connect: 'tls', and 'auto' on port 465. */
export function usesImplicitTls(security: SmtpSecurity, port: number): boolean {
  return security === 'tls' || (security === 'auto' && port === 465);
}

function privateAddressError(hostname: string, address: string): SocketError {
  const error: SocketError = new Error(
    hostname === address
      ? `${address} is a private, loopback or link-local address`
      : `${hostname} resolves to ${address}, a private, loopback or link-local address`,
  );
  error.code = PRIVATE_ADDRESS_CODE;
  error.address = address;
  error.hostname = hostname;
  return error;
}

/**
 * Every address of `host`, checked against the policy: one non-public address refuses them all
 * (a name that answers with a mix is a rebinding attempt). IP literals are checked as they are.
 */
export function resolveSmtpHost(
  host: string,
  policy: UrlPolicy,
  timeoutMs: number,
): Promise<LookupAddress[]> {
  const name = normalizeHost(host);
  const check = (addresses: LookupAddress[]): LookupAddress[] => {
    if (!policy.allowPrivateNetworks) {
      const bad = addresses.find((a) => isNonPublicAddress(a.address));
      if (bad) throw privateAddressError(name, bad.address);
    }
    return addresses;
  };
  const family = isIP(name);
  if (family !== 0) return Promise.resolve().then(() => check([{ address: name, family }]));
  return new Promise<LookupAddress[]>((resolve, reject) => {
    // getaddrinfo has no timeout of its own.
    const timer = setTimeout(() => {
      const error: SocketError = new Error(`DNS lookup for ${name} timed out`);
      error.code = 'EAI_AGAIN';
      error.hostname = name;
      reject(error);
    }, timeoutMs);
    dnsLookup(name, { all: true }, (err, addresses) => {
      clearTimeout(timer);
      if (err) return reject(err);
      if (addresses.length === 0) {
        return reject(
          Object.assign(new Error(`no address for ${name}`), { code: 'ENOTFOUND', hostname: name }),
        );
      }
      try {
        resolve(check(addresses));
      } catch (error) {
        reject(error);
      }
    });
  });
}

export interface GuardedSocketOptions {
  readonly host: string;
  readonly port: number;
  readonly policy: UrlPolicy;
  readonly timeoutMs: number;
}

/**
 * A TCP connection to one of the checked addresses of the host. With several, Node tries them in
 * turn (happy eyeballs across families); the lookup it is given only ever returns the checked list.
 */
export async function connectGuarded(options: GuardedSocketOptions): Promise<Socket> {
  const started = Date.now();
  const addresses = await resolveSmtpHost(options.host, options.policy, options.timeoutMs);
  const remaining = Math.max(options.timeoutMs - (Date.now() - started), 1);
  return new Promise<Socket>((resolve, reject) => {
    const first = addresses[0]!;
    const socket =
      addresses.length === 1
        ? netConnect({ host: first.address, port: options.port })
        : netConnect({
            host: normalizeHost(options.host),
            port: options.port,
            autoSelectFamily: true,
            autoSelectFamilyAttemptTimeout: Math.max(Math.floor(remaining / addresses.length), 250),
            lookup: (_hostname, lookupOptions, callback) => {
              if ((lookupOptions as { all?: boolean }).all) return callback(null, addresses);
              callback(null, first.address, first.family);
            },
          });
    const timer = setTimeout(() => {
      const error: SocketError = new Error('Connection timeout');
      error.code = 'ETIMEDOUT';
      error.timeoutType = 'CONNECT_TIMEOUT';
      socket.destroy(error);
    }, remaining);
    const onError = (error: Error) => {
      clearTimeout(timer);
      reject(error);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeListener('error', onError);
      resolve(socket);
    });
  });
}

/** The default trusted CAs (with NODE_EXTRA_CA_CERTS where Node exposes them) plus the given ones. */
export function trustedCas(extra: readonly string[]): string[] {
  const defaults =
    typeof tls.getCACertificates === 'function' ? tls.getCACertificates('default') : tls.rootCertificates;
  return [...defaults, ...extra];
}

/** TLS options shared by the transport and the probe: verification on, the admin's host name. */
export function tlsOptions(host: string, ca: readonly string[] | undefined): tls.ConnectionOptions {
  const name = normalizeHost(host);
  return {
    // SNI and the certificate check use the name entered, not the address connected to. An IP
    // literal is checked as an IP (SNI must not carry one).
    ...(isIP(name) === 0 ? { servername: name } : {}),
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    ...(ca && ca.length > 0 ? { ca: trustedCas(ca) } : {}),
  };
}

export interface TransportOverrides {
  /** Try AUTH even when the server does not offer it (verify: to notice a server that takes no login). */
  readonly forceAuth?: boolean;
  /** Overrides `context.pool`. */
  readonly pool?: boolean;
}

export type SmtpOptions = SMTPTransportOptions & SMTPPoolOptions;

/** nodemailer options for the context: guarded socket, TLS mode, timeouts, auth, pool. */
export function smtpTransportOptions(
  context: MailerContext,
  overrides: TransportOverrides = {},
): SmtpOptions {
  const { settings } = context;
  const timeoutMs = context.timeoutMs ?? DEFAULT_SMTP_TIMEOUT_MS;
  const host = normalizeHost(settings.host);
  const secure = usesImplicitTls(settings.security, settings.port);
  const tlsConnection = tlsOptions(host, context.ca);
  const pool = overrides.pool ?? context.pool ?? false;
  const getSocket: NonNullable<SMTPTransportOptions['getSocket']> = (_options, callback) => {
    connectGuarded({ host, port: settings.port, policy: context.urlPolicy, timeoutMs }).then(
      (socket) => callback(null, { connection: socket }),
      (error: Error) => callback(error),
    );
  };
  return {
    host,
    port: settings.port,
    secure,
    // STARTTLS is mandatory without implicit TLS: nodemailer fails instead of going on in clear.
    requireTLS: !secure,
    ...(tlsConnection.servername ? { servername: tlsConnection.servername } : {}),
    tls: tlsConnection,
    getSocket,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    dnsTimeout: timeoutMs,
    ...(settings.password
      ? { auth: { user: settings.username || settings.fromAddress, pass: settings.password } }
      : {}),
    ...(overrides.forceAuth ? { forceAuth: true } : {}),
    ...(pool ? { pool: true, maxConnections: POOL_MAX_CONNECTIONS, maxMessages: POOL_MAX_MESSAGES } : {}),
    // Messages are built from our own text: no local files, no URL fetching for attachments.
    disableFileAccess: true,
    disableUrlAccess: true,
    logger: false,
  };
}

/** What answers on a port that sent no SMTP greeting: a TLS server, a plain-text one, or nothing. */
export type TlsProbeResult = 'tls' | 'plain' | 'silent' | 'unknown';

const CERTIFICATE_CODES =
  /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH/;

/**
 * Opens one more connection and starts a TLS handshake, to tell an implicit-TLS port (465) from
 * a silent one after a plain-text client waited for a greeting in vain. A certificate the client
 * does not trust still counts as "tls": the server answered the handshake. Nothing is sent after
 * the handshake; verification stays on.
 */
export async function probeImplicitTls(context: MailerContext): Promise<TlsProbeResult> {
  const timeoutMs = context.timeoutMs ?? DEFAULT_SMTP_TIMEOUT_MS;
  const { host, port } = context.settings;
  let socket: Socket;
  try {
    socket = await connectGuarded({ host, port, policy: context.urlPolicy, timeoutMs });
  } catch {
    return 'unknown';
  }
  return new Promise<TlsProbeResult>((resolve) => {
    const secure = tls.connect({ ...tlsOptions(host, context.ca), socket });
    const done = (result: TlsProbeResult) => {
      clearTimeout(timer);
      secure.removeAllListeners();
      secure.on('error', () => {});
      secure.destroy();
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done('silent'), timeoutMs);
    secure.once('secureConnect', () => done('tls'));
    secure.once('error', (error: SocketError) => {
      done(CERTIFICATE_CODES.test(error.code ?? '') ? 'tls' : 'plain');
    });
  });
}
