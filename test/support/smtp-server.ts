/**
 * A real SMTP server on loopback for the SMTP adapter's tests: nodemailer's smtp-server with a
 * self-signed certificate, one user, and the behaviours of real servers the error mapping needs.
 *
 * - `mode: 'starttls'` (the 587 kind): plain-text greeting, STARTTLS offered, AUTH advertised
 *   only after TLS (like Postfix with smtpd_tls_auth_only), mail refused before TLS.
 *   `mode: 'tls'` (the 465 kind): TLS from the first byte.
 * - AUTH PLAIN and LOGIN for one user; everything else gets 535 5.7.8.
 * - `authOptional`: a server that offers no AUTH at all and takes mail without a login; with
 *   `unauthenticatedRcpt` it refuses recipients the way servers refuse relaying for
 *   unauthenticated clients (530 5.7.0 Authentication required, 554 5.7.1 Relay access denied).
 * - `failNext('RCPT' | 'DATA', code)` answers the next RCPT TO or end of DATA with that code.
 * - Every accepted message is kept raw and parsed (mailparser's simpleParser).
 *
 * `startSilentServer()` accepts TCP connections and never says a word (no greeting, no TLS).
 */
import { once } from 'node:events';
import { type AddressInfo, createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { type ParsedMail, simpleParser } from 'mailparser';
import { generate as generateCertificate } from 'selfsigned';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';

export const TEST_USER = 'cloudpi@example.com';
export const TEST_PASSWORD = 'correct horse battery staple';

export interface TestCertificate {
  readonly key: string;
  /** PEM; trust it with the mailer's `ca` option. */
  readonly cert: string;
}

const certificates = new Map<string, Promise<TestCertificate>>();

/** A self-signed certificate for the names given (DNS names and IP addresses), cached per set. */
export function testCertificate(
  names: readonly string[] = ['localhost', '127.0.0.1'],
): Promise<TestCertificate> {
  const key = names.join(',');
  let pending = certificates.get(key);
  if (!pending) {
    const altNames = names.map((name) =>
      /^[\d.]+$|:/.test(name) ? { type: 7 as const, ip: name } : { type: 2 as const, value: name },
    );
    pending = generateCertificate([{ name: 'commonName', value: names[0] ?? 'localhost' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      extensions: [
        { name: 'basicConstraints', cA: true },
        { name: 'keyUsage', digitalSignature: true, keyCertSign: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames },
      ],
    }).then((pems) => ({ key: pems.private, cert: pems.cert }));
    certificates.set(key, pending);
  }
  return pending;
}

export interface SmtpServerOptions {
  /** starttls (default): plain greeting, then STARTTLS; tls: implicit TLS. */
  readonly mode?: 'starttls' | 'tls';
  readonly user?: string;
  readonly password?: string;
  /** No AUTH advertised at all; mail is taken without a login (see `unauthenticatedRcpt`). */
  readonly authOptional?: boolean;
  /** With `authOptional`: the answer to RCPT TO in a session without login (a relay refusal). */
  readonly unauthenticatedRcpt?: { readonly code: number; readonly message: string };
  /** false: a server without STARTTLS (starttls mode only). */
  readonly offerStartTls?: boolean;
  /** Names the certificate is issued for (default localhost and 127.0.0.1). */
  readonly certificateNames?: readonly string[];
  /** Sender addresses the user may use; others get 553 5.7.1 (default: any). */
  readonly allowedSenders?: readonly string[];
}

export interface ReceivedMessage {
  readonly raw: Buffer;
  readonly parsed: ParsedMail;
  readonly envelope: { readonly from: string; readonly to: readonly string[] };
  /** The login the message came in with, if any. */
  readonly user: string | undefined;
  readonly secure: boolean;
}

export type FailStage = 'RCPT' | 'DATA';

export interface TestSmtpServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** The server's certificate (PEM), to pass as `ca`. */
  readonly ca: string;
  readonly user: string;
  readonly password: string;
  readonly messages: ReceivedMessage[];
  /** TCP connections accepted so far. */
  readonly connections: () => number;
  /** Logins attempted (method and user name), successful or not. */
  readonly logins: { method: string; username: string | undefined; ok: boolean }[];
  /** Answers the next `count` RCPT TO commands (or ends of DATA) with `code`. */
  failNext(stage: FailStage, code: number, message?: string, count?: number): void;
  /** Resolves once `count` messages arrived. */
  waitForMessages(count: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  close(): Promise<void>;
}

/** What real servers say with these codes. */
const DEFAULT_REPLIES: Readonly<Record<number, string>> = {
  421: '4.7.0 Too many connections, try again later',
  450: '4.2.1 Mailbox temporarily unavailable, greylisted',
  451: '4.3.0 Local error in processing',
  452: '4.5.3 Too many recipients',
  550: '5.1.1 Mailbox unavailable: no such user',
  554: '5.7.1 Message rejected as spam',
};

function smtpError(code: number, message: string): Error & { responseCode: number } {
  return Object.assign(new Error(message), { responseCode: code });
}

export async function startSmtpServer(options: SmtpServerOptions = {}): Promise<TestSmtpServer> {
  const mode = options.mode ?? 'starttls';
  const user = options.user ?? TEST_USER;
  const password = options.password ?? TEST_PASSWORD;
  const certificate = await testCertificate(options.certificateNames);
  const messages: ReceivedMessage[] = [];
  const logins: TestSmtpServer['logins'] = [];
  const failures: Record<FailStage, { code: number; message: string }[]> = { RCPT: [], DATA: [] };
  const waiters = new Set<() => void>();
  let connections = 0;

  const serverDisabled = [
    ...(options.authOptional ? ['AUTH'] : []),
    ...(mode === 'starttls' && options.offerStartTls === false ? ['STARTTLS'] : []),
  ];
  const takeFailure = (stage: FailStage) => failures[stage].shift();

  const serverOptions: SMTPServerOptions = {
    secure: mode === 'tls',
    key: certificate.key,
    cert: certificate.cert,
    name: 'mx.test.local',
    banner: 'CloudPi test ESMTP',
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: options.authOptional ?? false,
    disabledCommands: serverDisabled,
    disableReverseLookup: true,
    hideDSN: true,
    // A short idle limit so that a test's stray connection does not hold close() up.
    socketTimeout: 5_000,
    closeTimeout: 200,
    onConnect(session: SMTPServerSession, callback) {
      // AUTH only over TLS (smtpd_tls_auth_only): hidden from the plain-text EHLO.
      if (mode === 'starttls' && !session.secure) session.disabledCommands = [...serverDisabled, 'AUTH'];
      callback();
    },
    onSecure(_socket, session, callback) {
      session.disabledCommands = undefined;
      callback();
    },
    onAuth(auth, _session, callback) {
      const ok = auth.username === user && auth.password === password;
      logins.push({ method: auth.method, username: auth.username, ok });
      if (!ok) {
        return callback(null, {
          responseCode: 535,
          message: '5.7.8 Error: authentication failed: Invalid username or password',
        });
      }
      callback(null, { user: auth.username });
    },
    onMailFrom(address, session, callback) {
      if (!session.secure && mode === 'starttls' && options.offerStartTls !== false) {
        return callback(smtpError(530, '5.7.0 Must issue a STARTTLS command first'));
      }
      if (session.user && options.allowedSenders && !options.allowedSenders.includes(address.address)) {
        return callback(
          smtpError(553, `5.7.1 <${address.address}>: Sender address rejected: not owned by user ${user}`),
        );
      }
      callback();
    },
    onRcptTo(_address, session, callback) {
      const failure = takeFailure('RCPT');
      if (failure) return callback(smtpError(failure.code, failure.message));
      if (!session.user && options.unauthenticatedRcpt) {
        const { code, message } = options.unauthenticatedRcpt;
        return callback(smtpError(code, message));
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const failure = takeFailure('DATA');
        if (failure) return callback(smtpError(failure.code, failure.message));
        const raw = Buffer.concat(chunks);
        const envelope = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
        };
        const sessionUser = typeof session.user === 'string' ? session.user : undefined;
        const secure = session.secure;
        simpleParser(raw).then(
          (parsed) => {
            messages.push({ raw, parsed, envelope, user: sessionUser, secure });
            for (const wake of waiters) wake();
            callback(null, 'OK: queued');
          },
          (error: Error) => callback(error),
        );
      });
    },
  };

  const server = new SMTPServer(serverOptions);
  server.on('error', () => {
    // Clients that hang up mid-handshake (TLS mismatch tests) surface here; nothing to do.
  });
  server.server.on('connection', () => {
    connections++;
  });
  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  const port = (server.server.address() as AddressInfo).port;

  return {
    host: '127.0.0.1',
    port,
    ca: certificate.cert,
    user,
    password,
    messages,
    connections: () => connections,
    logins,
    failNext(stage, code, message, count = 1) {
      const text =
        message ?? DEFAULT_REPLIES[code] ?? `${Math.floor(code / 100)}.0.0 Refused by the test server`;
      for (let i = 0; i < count; i++) failures[stage].push({ code, message: text });
    },
    async waitForMessages(count, timeoutMs = 10_000) {
      if (messages.length >= count) return messages.slice(0, count);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`only ${messages.length} of ${count} messages arrived`));
        }, timeoutMs);
        const wake = () => {
          if (messages.length < count) return;
          clearTimeout(timer);
          waiters.delete(wake);
          resolve();
        };
        waiters.add(wake);
      });
      return messages.slice(0, count);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface SilentServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly connections: () => number;
  close(): Promise<void>;
}

/** Accepts TCP connections and never answers: no greeting, no TLS handshake. */
export async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createTcpServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    host: '127.0.0.1',
    port,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createTcpServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
