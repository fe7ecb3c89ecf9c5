/**
 * The SMTP adapter against a real SMTP server (smtp-server) on loopback: verify's classification
 * field by field (what nodemailer and OpenSSL really report for each mistake is pinned here),
 * the SSRF guard, and send() with its retryable and permanent refusals, pooled too.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  INVALID_CREDENTIALS,
  PORT_ADVICE,
  smtpMailerFactory,
  smtpTransportOptions,
  TEST_SUBJECT,
  UNABLE_TO_CONNECT,
} from '../../adapters/email/smtp/index.js';
import { classifyConnectionError } from '../../adapters/email/smtp/mapping.js';
import { ErrorCode, isAppError } from '../../src/errors.js';
import { isRetryable } from '../../src/net/outbound.js';
import type { UrlPolicy } from '../../src/net/url-policy.js';
import type { MailerContext, MailerVerifyResult, SmtpSettings } from '../../src/notify/mailer.js';
import { errorOf } from '../support/errors.js';
import {
  closedPort,
  type SilentServer,
  startSilentServer,
  startSmtpServer,
  TEST_PASSWORD,
  TEST_USER,
  type TestSmtpServer,
} from '../support/smtp-server.js';

const LOOPBACK: UrlPolicy = { allowHttp: false, allowPrivateNetworks: true };
const PUBLIC_ONLY: UrlPolicy = { allowHttp: false, allowPrivateNetworks: false };

function settingsFor(server: { port: number }, overrides: Partial<SmtpSettings> = {}): SmtpSettings {
  return {
    host: 'localhost',
    port: server.port,
    security: 'starttls',
    fromAddress: TEST_USER,
    username: '',
    password: TEST_PASSWORD,
    ...overrides,
  };
}

function mailer(
  server: { port: number; ca?: string },
  overrides: Partial<SmtpSettings> = {},
  context: Partial<MailerContext> = {},
) {
  return smtpMailerFactory.create({
    settings: settingsFor(server, overrides),
    urlPolicy: LOOPBACK,
    ...(server.ca ? { ca: [server.ca] } : {}),
    timeoutMs: 5_000,
    ...context,
  });
}

function failed(result: MailerVerifyResult) {
  if (result.ok) throw new Error(`expected a failure, got: ${result.summary}`);
  return result;
}

const message = {
  to: ['finops@example.org'],
  subject: 'Idle VM: vm-build-07 (save $212/month)',
  text: 'vm-build-07 has been idle for 14 days.\n\nOpen in CloudPi: https://app.cloudpi.example/r/42',
  html: '<p><b>vm-build-07</b> has been idle for 14 days.</p><p><a href="https://app.cloudpi.example/r/42">Open in CloudPi</a></p>',
  headers: {
    'List-Unsubscribe': '<https://app.cloudpi.example/unsubscribe?t=abc123>',
    'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
    'X-CloudPi-Recommendation': 'rec-42',
  },
};

let starttls: TestSmtpServer;
let implicit: TestSmtpServer;

beforeAll(async () => {
  [starttls, implicit] = await Promise.all([startSmtpServer(), startSmtpServer({ mode: 'tls' })]);
});

afterAll(async () => {
  await Promise.all([starttls?.close(), implicit?.close()]);
});

describe('verify: success', () => {
  it('signs in over STARTTLS (the 587 kind), with security starttls and auto', async () => {
    for (const security of ['starttls', 'auto'] as const) {
      const result = await mailer(starttls, { security }).verify();
      expect(result).toEqual({
        ok: true,
        summary: `Signed in to localhost:${starttls.port} as ${TEST_USER} (STARTTLS)`,
      });
    }
    expect(starttls.logins.at(-1)).toEqual({ method: 'PLAIN', username: TEST_USER, ok: true });
  });

  it('signs in over implicit TLS (the 465 kind)', async () => {
    const result = await mailer(implicit, { security: 'tls' }).verify();
    expect(result).toEqual({
      ok: true,
      summary: `Signed in to localhost:${implicit.port} as ${TEST_USER} (TLS)`,
    });
  });

  it('logs in with the username when one is set, and sends the test email when asked', async () => {
    const server = await startSmtpServer({ user: 'smtp-user-7' });
    try {
      const result = await mailer(server, { username: 'smtp-user-7' }).verify('admin@example.org');
      expect(result).toEqual({
        ok: true,
        summary: `Signed in to localhost:${server.port} as smtp-user-7 (STARTTLS)`,
      });
      const [received] = await server.waitForMessages(1);
      expect(received!.parsed.subject).toBe(TEST_SUBJECT);
      expect(received!.envelope).toEqual({ from: TEST_USER, to: ['admin@example.org'] });
      expect(received!.user).toBe('smtp-user-7');
    } finally {
      await server.close();
    }
  });
});

describe('verify: connection failures', () => {
  it('wrong password: Invalid email credentials at the password, without the password in it', async () => {
    const result = failed(await mailer(starttls, { password: 'Tr0ub4dor&3-wrong' }).verify());
    expect(result).toEqual({
      ok: false,
      code: ErrorCode.INVALID_CREDENTIALS,
      field: 'password',
      message: `${INVALID_CREDENTIALS}: the server refused the login for ${TEST_USER} (535 5.7.8 Error: authentication failed: Invalid username or password). Check the Email Address / username and Password.`,
    });
    expect(result.message).not.toContain('Tr0ub4dor');
  });

  it('unknown host: host not found, at the host', async () => {
    const result = failed(await mailer({ port: 587 }, { host: 'name.invalid' }).verify());
    expect(result).toEqual({
      ok: false,
      code: ErrorCode.UNREACHABLE,
      field: 'host',
      message: `${UNABLE_TO_CONNECT}: the host name.invalid was not found. Check the SMTP Host.`,
    });
  });

  it('closed port: refused, at the port', async () => {
    const port = await closedPort();
    const result = failed(await mailer({ port }).verify());
    expect(result).toEqual({
      ok: false,
      code: ErrorCode.UNREACHABLE,
      field: 'port',
      message: `${UNABLE_TO_CONNECT}: localhost:${port} refused the connection. Check the SMTP Port (587 for STARTTLS, 465 for implicit TLS).`,
    });
  });

  describe('a server that accepts TCP and never greets', () => {
    let silent: SilentServer;
    beforeAll(async () => {
      silent = await startSilentServer();
    });
    afterAll(async () => {
      await silent.close();
    });

    it('times out at the port, over STARTTLS and implicit TLS', async () => {
      for (const security of ['starttls', 'tls'] as const) {
        const started = Date.now();
        const result = failed(await mailer(silent, { security }, { timeoutMs: 300 }).verify());
        expect(result.code).toBe(ErrorCode.UNREACHABLE);
        expect(result.field).toBe('port');
        expect(result.message).toMatch(
          new RegExp(`^${UNABLE_TO_CONNECT}: no answer from localhost:${silent.port} within 0\\.3 s`),
        );
        expect(result.message).toContain('Check the SMTP Host and Port');
        expect(Date.now() - started).toBeLessThan(3_000);
      }
    });
  });

  it("security 'tls' against a STARTTLS port: the mismatch, at the security", async () => {
    const result = failed(await mailer(starttls, { security: 'tls' }).verify());
    expect(result.code).toBe(ErrorCode.TLS_ERROR);
    expect(result.field).toBe('security');
    expect(result.message).toBe(
      `${UNABLE_TO_CONNECT}: localhost:${starttls.port} does not speak implicit TLS: it answered in plain text, as STARTTLS ports do (ERR_SSL_WRONG_VERSION_NUMBER). Set the security to STARTTLS for this port, or ${PORT_ADVICE}.`,
    );
  });

  it("security 'starttls' (and 'auto' off 465) against an implicit-TLS port: the mismatch, at the security", async () => {
    for (const security of ['starttls', 'auto'] as const) {
      const result = failed(await mailer(implicit, { security }, { timeoutMs: 500 }).verify());
      expect(result).toEqual({
        ok: false,
        code: ErrorCode.TLS_ERROR,
        field: 'security',
        message: `${UNABLE_TO_CONNECT}: localhost:${implicit.port} expects implicit TLS: it sent no plain-text greeting for STARTTLS, but answered a TLS handshake. Set the security to TLS for this port, or ${PORT_ADVICE}.`,
      });
    }
  });

  it('a server without STARTTLS: refused rather than logging in in clear, at the security', async () => {
    const server = await startSmtpServer({ offerStartTls: false });
    try {
      const result = failed(await mailer(server).verify());
      expect(result.code).toBe(ErrorCode.TLS_ERROR);
      expect(result.field).toBe('security');
      expect(result.message).toBe(
        `${UNABLE_TO_CONNECT}: localhost:${server.port} does not offer STARTTLS (it answered "500 Error: command not recognized"), and the password is never sent unencrypted. Use the server's submission port: ${PORT_ADVICE}.`,
      );
      expect(server.logins).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('a self-signed certificate without its CA: TLS_ERROR naming the problem, at the host', async () => {
    const logins = starttls.logins.length + implicit.logins.length;
    for (const [server, security] of [
      [starttls, 'starttls'],
      [implicit, 'tls'],
    ] as const) {
      const result = failed(await mailer({ port: server.port }, { security }).verify());
      expect(result).toEqual({
        ok: false,
        code: ErrorCode.TLS_ERROR,
        field: 'host',
        message: `${UNABLE_TO_CONNECT}: the TLS certificate of localhost could not be verified: it is self-signed (DEPTH_ZERO_SELF_SIGNED_CERT). TLS verification stays on; add the server's CA or fix its certificate.`,
      });
    }
    // Nothing was sent over the unverified connection.
    expect(starttls.logins.length + implicit.logins.length).toBe(logins);
  });

  it('a certificate for another name: TLS_ERROR naming the mismatch, at the host', async () => {
    const server = await startSmtpServer({ certificateNames: ['mail.other.example'] });
    try {
      const result = failed(await mailer(server).verify());
      expect(result.code).toBe(ErrorCode.TLS_ERROR);
      expect(result.field).toBe('host');
      expect(result.message).toContain(
        'could not be verified: it is not issued for localhost (ERR_TLS_CERT_ALTNAME_INVALID',
      );
      expect(result.message).toContain('DNS:mail.other.example');
      expect(server.logins).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('no Password on a server that asks for a login: at the password', async () => {
    const result = failed(await mailer(starttls, { password: '' }).verify());
    expect(result).toEqual({
      ok: false,
      code: ErrorCode.INVALID_CREDENTIALS,
      field: 'password',
      message: `${INVALID_CREDENTIALS}: localhost:${starttls.port} asks for a login, and no Password is set. Enter the Password of ${TEST_USER}.`,
    });
  });

  it('settings no connection can be tried with', async () => {
    expect(failed(await mailer(starttls, { host: ' ' }).verify()).field).toBe('host');
    expect(failed(await mailer({ port: 70_000 }).verify()).field).toBe('port');
    expect(failed(await mailer(starttls, { fromAddress: 'not an address' }).verify()).field).toBe(
      'fromAddress',
    );
  });
});

describe('messages never carry the password', () => {
  it('scrubs it, plain and base64, from server replies', () => {
    const password = 'S3cr3t-pa55';
    const base64 = Buffer.from(password).toString('base64');
    const error = Object.assign(new Error('Invalid login'), {
      code: 'EAUTH',
      command: 'AUTH PLAIN',
      responseCode: 535,
      response: `535 5.7.8 login failed for password ${password} (${base64})`,
    });
    const result = classifyConnectionError(error, {
      host: 'smtp.example.com',
      port: 587,
      implicitTls: false,
      user: TEST_USER,
      fromAddress: TEST_USER,
      timeoutMs: 10_000,
      password,
    });
    expect(result.code).toBe(ErrorCode.INVALID_CREDENTIALS);
    expect(result.message).not.toContain(password);
    expect(result.message).not.toContain(base64);
    expect(result.message).toContain('login failed for password *** (***)');
  });
});

describe('SSRF guard', () => {
  it('refuses a host that resolves to a private address, before connecting', async () => {
    const before = starttls.connections();
    const refused = mailer(starttls, {}, { urlPolicy: PUBLIC_ONLY });
    const result = failed(await refused.verify('admin@example.org'));
    expect(result).toEqual({
      ok: false,
      code: ErrorCode.INVALID_URL,
      field: 'host',
      message: `${UNABLE_TO_CONNECT}: localhost resolves to 127.0.0.1, a private, loopback or link-local address, which this server does not connect to. Use the public address of the SMTP server (the operator can allow private networks with CLOUDPI_ALLOW_PRIVATE_NETWORKS=true).`,
    });
    const error = await errorOf(refused.send(message));
    expect(error.code).toBe(ErrorCode.INVALID_URL);
    expect(error.details.field).toBe('host');
    expect(starttls.connections()).toBe(before);
  });

  it('refuses private IP literals in any spelling', async () => {
    const before = starttls.connections();
    for (const host of ['127.0.0.1', '[::ffff:127.0.0.1]', '169.254.169.254', '10.0.0.25']) {
      const result = failed(await mailer(starttls, { host }, { urlPolicy: PUBLIC_ONLY }).verify());
      expect(result.code).toBe(ErrorCode.INVALID_URL);
      expect(result.field).toBe('host');
      expect(result.message).toContain('a private, loopback or link-local address');
    }
    expect(starttls.connections()).toBe(before);
  });

  it('connects to the checked address but verifies the certificate against the name', async () => {
    // The certificate names localhost and 127.0.0.1; a client that checked the address instead
    // of the name would accept a certificate for 127.0.0.1 when the admin typed another name.
    const server = await startSmtpServer({ certificateNames: ['127.0.0.1'] });
    try {
      const byAddress = await mailer(server, { host: '127.0.0.1' }).verify();
      expect(byAddress.ok).toBe(true);
      const byName = failed(await mailer(server, { host: 'localhost' }).verify());
      expect(byName.code).toBe(ErrorCode.TLS_ERROR);
      expect(byName.message).toContain('not issued for localhost');
    } finally {
      await server.close();
    }
  });
});

describe('transport options', () => {
  const base = (overrides: Partial<SmtpSettings> = {}, context: Partial<MailerContext> = {}) =>
    smtpTransportOptions({
      settings: settingsFor({ port: 587 }, { host: 'smtp.example.com', ...overrides }),
      urlPolicy: PUBLIC_ONLY,
      ...context,
    });

  it('keeps TLS verification on and adds the CA to the default ones', () => {
    const options = base({}, { ca: ['-----BEGIN CERTIFICATE-----\nCOMPANY\n-----END CERTIFICATE-----'] });
    expect(options.tls?.rejectUnauthorized).toBe(true);
    expect(options.tls?.servername).toBe('smtp.example.com');
    expect(options.servername).toBe('smtp.example.com');
    const ca = options.tls?.ca as string[];
    expect(ca).toContain('-----BEGIN CERTIFICATE-----\nCOMPANY\n-----END CERTIFICATE-----');
    expect(ca.length).toBeGreaterThanOrEqual(rootCertificates.length + 1);
    expect(base().tls?.ca).toBeUndefined();
  });

  it('never turns verification off in the adapter source', () => {
    const dir = new URL('../../adapters/email/smtp/', import.meta.url);
    for (const file of readdirSync(dir)) {
      const source = readFileSync(new URL(file, dir), 'utf8');
      expect(source, file).not.toMatch(/rejectUnauthorized\s*:\s*false/);
      expect(source, file).not.toMatch(/NODE_TLS_REJECT_UNAUTHORIZED/);
      expect(source, file).not.toMatch(/ignoreTLS\s*:\s*true/);
    }
  });

  it('maps the security setting: tls and 465 implicit, STARTTLS required elsewhere', () => {
    expect(base({ security: 'tls', port: 2465 })).toMatchObject({ secure: true, requireTLS: false });
    expect(base({ security: 'starttls', port: 465 })).toMatchObject({ secure: false, requireTLS: true });
    expect(base({ security: 'auto', port: 465 })).toMatchObject({ secure: true, requireTLS: false });
    expect(base({ security: 'auto', port: 587 })).toMatchObject({ secure: false, requireTLS: true });
    expect(base({ security: 'auto', port: 25 })).toMatchObject({ secure: false, requireTLS: true });
  });

  it('timeouts, pool and auth', () => {
    const options = base({}, { timeoutMs: 4_000, pool: true });
    expect(options).toMatchObject({
      connectionTimeout: 4_000,
      greetingTimeout: 4_000,
      socketTimeout: 4_000,
      pool: true,
      maxConnections: 2,
      maxMessages: 100,
      auth: { user: TEST_USER, pass: TEST_PASSWORD },
    });
    expect(base()).toMatchObject({
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 10_000,
    });
    expect(base().pool).toBeUndefined();
    expect(base({ username: 'relay-user' }).auth?.user).toBe('relay-user');
    expect(base({ password: '' }).auth).toBeUndefined();
    expect(typeof base().getSocket).toBe('function');
  });
});

describe('a server that accepts the connection without offering AUTH', () => {
  it('verify() says the credentials could not be checked', async () => {
    const server = await startSmtpServer({ authOptional: true });
    try {
      const result = failed(await mailer(server).verify());
      expect(result.code).toBe(ErrorCode.PROVIDER_ERROR);
      expect(result.field).toBe('password');
      expect(result.message).toBe(
        `The email credentials could not be checked: localhost:${server.port} offers no password login over STARTTLS (it answered AUTH with "500 Error: command not recognized"). Send a test email to check that it takes mail from ${TEST_USER}, or use the server's submission port (587 or 465), where it accepts a login.`,
      );
    } finally {
      await server.close();
    }
  });

  it('verify(testRecipient) catches a server that refuses mail without a login', async () => {
    for (const refusal of [
      { code: 530, message: '5.7.0 Authentication required' },
      { code: 554, message: '5.7.1 <admin@example.org>: Relay access denied' },
    ]) {
      const server = await startSmtpServer({ authOptional: true, unauthenticatedRcpt: refusal });
      try {
        const result = failed(await mailer(server).verify('admin@example.org'));
        expect(result).toEqual({
          ok: false,
          code: ErrorCode.INVALID_CREDENTIALS,
          field: 'password',
          message: `${INVALID_CREDENTIALS}: localhost:${server.port} offers no password login over STARTTLS and refused the test email without one (${refusal.code} ${refusal.message}). Check the SMTP Host and Port: use the server's submission port (587 with STARTTLS or 465 with implicit TLS), where the Email Address and Password are accepted.`,
        });
        expect(server.messages).toEqual([]);
      } finally {
        await server.close();
      }
    }
  });

  it('verify(testRecipient) passes when the server delivers without a login, and says so', async () => {
    const server = await startSmtpServer({ authOptional: true });
    try {
      const result = await mailer(server).verify('admin@example.org');
      expect(result).toEqual({
        ok: true,
        summary: `Connected to localhost:${server.port} (STARTTLS): the server offers no login, so the Password is not used, and it accepted a test email to admin@example.org without one`,
      });
      const [received] = await server.waitForMessages(1);
      expect(received!.parsed.subject).toBe(TEST_SUBJECT);
      expect(received!.secure).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('without a Password either, verify passes and says no login was used', async () => {
    const server = await startSmtpServer({ authOptional: true });
    try {
      expect(await mailer(server, { password: '' }).verify()).toEqual({
        ok: true,
        summary: `Connected to localhost:${server.port} (STARTTLS) without a login`,
      });
    } finally {
      await server.close();
    }
  });

  it('the test email classifies a refused recipient: at the Email Address when it is the sender', async () => {
    starttls.failNext('RCPT', 550);
    expect(failed(await mailer(starttls).verify(TEST_USER))).toEqual({
      ok: false,
      code: ErrorCode.INVALID_INPUT,
      field: 'fromAddress',
      message: `The server refused the test recipient ${TEST_USER} (550 5.1.1 Mailbox unavailable: no such user). Check the address.`,
    });
  });

  it('the test email classifies a sender the login may not use, at the Email Address', async () => {
    const server = await startSmtpServer({ allowedSenders: ['alerts@example.com'] });
    try {
      const result = failed(await mailer(server).verify('admin@example.org'));
      expect(result).toEqual({
        ok: false,
        code: ErrorCode.INVALID_INPUT,
        field: 'fromAddress',
        message: `The server refused to send as ${TEST_USER} (553 5.7.1 <${TEST_USER}>: Sender address rejected: not owned by user ${TEST_USER}). Use an Email Address that ${TEST_USER} may send as.`,
      });
    } finally {
      await server.close();
    }
  });
});

describe('send', () => {
  it('delivers both parts, the headers and the From address', async () => {
    const sent = await mailer(starttls).send(message);
    expect(sent.accepted).toEqual(['finops@example.org']);
    expect(sent.rejected).toEqual([]);
    expect(sent.messageId).toMatch(/^<.+@.+>$/);
    const received = starttls.messages.find((m) => m.parsed.messageId === sent.messageId);
    expect(received).toBeDefined();
    const { parsed } = received!;
    expect(parsed.from?.value).toEqual([{ address: TEST_USER, name: '' }]);
    expect(parsed.subject).toBe(message.subject);
    expect(parsed.text?.trim()).toBe(message.text);
    expect(parsed.html).toContain('<b>vm-build-07</b>');
    // mailparser folds List-* headers into one `list` object, so the raw message is checked.
    const raw = received!.raw.toString();
    expect(raw).toMatch(/^List-Unsubscribe: <https:\/\/app\.cloudpi\.example\/unsubscribe\?t=abc123>\r$/m);
    expect(raw).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r$/m);
    expect(parsed.headers.get('x-cloudpi-recommendation')).toBe('rec-42');
    expect(received!.user).toBe(TEST_USER);
    expect(received!.secure).toBe(true);
  });

  it('delivers over implicit TLS', async () => {
    const sent = await mailer(implicit, { security: 'tls' }).send(message);
    expect(implicit.messages.some((m) => m.parsed.messageId === sent.messageId)).toBe(true);
  });

  it.each([
    ['RCPT', 421],
    ['RCPT', 450],
    ['RCPT', 451],
    ['RCPT', 452],
    ['DATA', 421],
    ['DATA', 451],
  ] as const)('%s answered %i: RATE_LIMITED, retryable', async (stage, code) => {
    starttls.failNext(stage, code);
    const thrown = await mailer(starttls)
      .send(message)
      .catch((e: unknown) => e);
    expect(isRetryable(thrown)).toBe(true);
    const error = await errorOf(Promise.reject(thrown));
    expect(error.code).toBe(ErrorCode.RATE_LIMITED);
    expect(error.details).toMatchObject({ permanent: false, responseCode: code });
    expect(error.message).toMatch(new RegExp(`^The SMTP server localhost deferred the message \\(${code} `));
  });

  it.each([
    [
      'RCPT',
      550,
      'refused every recipient (550 5.1.1 Mailbox unavailable: no such user): finops@example.org.',
    ],
    ['DATA', 554, 'refused the message (554 5.7.1 Message rejected as spam).'],
    ['DATA', 550, 'refused the message (550 5.1.1 Mailbox unavailable: no such user).'],
  ] as const)('%s answered %i: PROVIDER_ERROR, permanent', async (stage, code, words) => {
    starttls.failNext(stage, code);
    const thrown = await mailer(starttls)
      .send(message)
      .catch((e: unknown) => e);
    expect(isAppError(thrown)).toBe(true);
    expect(isRetryable(thrown)).toBe(false);
    const error = await errorOf(Promise.reject(thrown));
    expect(error.code).toBe(ErrorCode.PROVIDER_ERROR);
    expect(error.details).toMatchObject({ permanent: true, responseCode: code });
    expect(error.message).toBe(`The SMTP server localhost ${words}`);
  });

  it('one refused recipient of two: sent, with the refusal listed', async () => {
    starttls.failNext('RCPT', 550);
    const sent = await mailer(starttls).send({ ...message, to: ['gone@example.org', 'finops@example.org'] });
    expect(sent.rejected).toEqual(['gone@example.org']);
    expect(sent.accepted).toEqual(['finops@example.org']);
  });

  it('connection failures: UNREACHABLE, retryable', async () => {
    const port = await closedPort();
    const thrown = await mailer({ port })
      .send(message)
      .catch((e: unknown) => e);
    expect(isRetryable(thrown)).toBe(true);
    const error = await errorOf(Promise.reject(thrown));
    expect(error.code).toBe(ErrorCode.UNREACHABLE);
    expect(error.message).toContain('refused the connection');
  });

  it('a wrong password: INVALID_CREDENTIALS, not retried', async () => {
    const thrown = await mailer(starttls, { password: 'nope' })
      .send(message)
      .catch((e: unknown) => e);
    expect(isRetryable(thrown)).toBe(false);
    const error = await errorOf(Promise.reject(thrown));
    expect(error.code).toBe(ErrorCode.INVALID_CREDENTIALS);
    expect(error.details).toMatchObject({ permanent: true, field: 'password', responseCode: 535 });
  });

  it('pooled: 20 messages over at most 2 connections', async () => {
    const server = await startSmtpServer();
    const pooled = mailer(server, {}, { pool: true });
    try {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => pooled.send({ ...message, subject: `Pooled ${i}` })),
      );
      expect(new Set(results.map((r) => r.messageId)).size).toBe(20);
      const received = await server.waitForMessages(20);
      expect(new Set(received.map((m) => m.parsed.subject))).toEqual(
        new Set(Array.from({ length: 20 }, (_, i) => `Pooled ${i}`)),
      );
      expect(server.connections()).toBeLessThanOrEqual(2);
    } finally {
      pooled.close();
      await server.close();
    }
  });
});
