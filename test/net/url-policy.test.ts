import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAppError } from '../../src/errors.js';
import { classifyTransportError, createOutboundFetch } from '../../src/net/outbound.js';
import { checkUrl, guardedLookup, isNonPublicAddress } from '../../src/net/url-policy.js';

const STRICT = { allowHttp: false, allowPrivateNetworks: false };

function refusal(url: string, policy = STRICT): string | undefined {
  try {
    checkUrl(url, policy, 'siteUrl');
    return undefined;
  } catch (error) {
    expect(isAppError(error) && error.code).toBe('INVALID_URL');
    expect(isAppError(error) && error.details?.field).toBe('siteUrl');
    return (error as Error).message;
  }
}

// At least 40 ways people try to reach internal addresses through a URL field.
const BYPASS_ATTEMPTS: [string, string][] = [
  ['plain http', 'http://jira.example.com/'],
  ['loopback', 'https://127.0.0.1/'],
  ['loopback, other address', 'https://127.8.9.10/'],
  ['short form 127.1', 'https://127.1/'],
  ['decimal', 'https://2130706433/'],
  ['hex', 'https://0x7f000001/'],
  ['hex dotted', 'https://0x7f.0x0.0x0.0x1/'],
  ['octal dotted', 'https://0177.0.0.1/'],
  ['octal whole', 'https://017700000001/'],
  ['mixed radix', 'https://0x7f.1/'],
  ['IPv6 loopback', 'https://[::1]/'],
  ['IPv6 loopback long', 'https://[0:0:0:0:0:0:0:1]/'],
  ['IPv4-mapped IPv6', 'https://[::ffff:127.0.0.1]/'],
  ['IPv4-mapped IPv6 hex', 'https://[::ffff:7f00:1]/'],
  ['IPv4-mapped long form', 'https://[0:0:0:0:0:ffff:127.0.0.1]/'],
  ['IPv4-compatible IPv6', 'https://[::127.0.0.1]/'],
  ['NAT64 of loopback', 'https://[64:ff9b::7f00:1]/'],
  ['6to4 of loopback', 'https://[2002:7f00:1::]/'],
  ['cloud metadata', 'https://169.254.169.254/latest/meta-data/'],
  ['cloud metadata decimal', 'https://2852039166/'],
  ['cloud metadata mapped', 'https://[::ffff:169.254.169.254]/'],
  ['cloud metadata name', 'https://metadata.google.internal/computeMetadata/v1/'],
  ['link-local', 'https://169.254.1.1/'],
  ['IPv6 link-local', 'https://[fe80::1]/'],
  ['unique local fd', 'https://[fd00::1]/'],
  ['unique local fc', 'https://[fc00::abcd]/'],
  ['site-local', 'https://[fec0::1]/'],
  ['private 10/8', 'https://10.0.0.1/'],
  ['private 172.16/12 low', 'https://172.16.0.1/'],
  ['private 172.16/12 high', 'https://172.31.255.255/'],
  ['private 192.168/16', 'https://192.168.1.1/'],
  ['mapped private', 'https://[::ffff:10.1.2.3]/'],
  ['carrier-grade NAT', 'https://100.64.0.1/'],
  ['this network', 'https://0.0.0.0/'],
  ['zero shorthand', 'https://0/'],
  ['IPv6 unspecified', 'https://[::]/'],
  ['multicast', 'https://224.0.0.1/'],
  ['broadcast', 'https://255.255.255.255/'],
  ['benchmarking range', 'https://198.18.0.1/'],
  ['localhost', 'https://localhost/'],
  ['localhost, trailing dot', 'https://localhost./'],
  ['localhost, upper case', 'https://LOCALHOST/'],
  ['subdomain of localhost', 'https://jira.localhost/'],
  ['credentials in URL', 'https://admin:secret@jira.example.com/'],
  ['user only in URL', 'https://admin@jira.example.com/'],
  ['file scheme', 'file:///etc/passwd'],
  ['ftp scheme', 'ftp://jira.example.com/'],
  ['gopher scheme', 'gopher://127.0.0.1:6379/_INFO'],
  ['javascript scheme', 'javascript:alert(1)'],
  ['data scheme', 'data:text/plain,hello'],
  ['no scheme', 'acme.atlassian.net'],
  ['garbage', 'https://'],
];

describe('SSRF guard: URL check', () => {
  it.each(BYPASS_ATTEMPTS)('refuses %s: %s', (_name, url) => {
    const message = refusal(url);
    expect(message).toBeDefined();
    expect(message!.length).toBeGreaterThan(20);
  });

  it('has a table of at least 40 attempts', () => {
    expect(BYPASS_ATTEMPTS.length).toBeGreaterThanOrEqual(40);
  });

  it('accepts public https URLs', () => {
    expect(refusal('https://acme.atlassian.net')).toBeUndefined();
    expect(refusal('https://dev.azure.com/acme/')).toBeUndefined();
    expect(refusal('https://1.1.1.1/')).toBeUndefined();
    expect(refusal('https://[2606:4700:4700::1111]/')).toBeUndefined();
    expect(checkUrl('  https://acme.service-now.com  ', STRICT).host).toBe('acme.service-now.com');
  });

  it('says what to do in the message', () => {
    expect(refusal('http://jira.example.com/')).toContain('CLOUDPI_ALLOW_HTTP');
    expect(refusal('https://10.0.0.1/')).toContain('CLOUDPI_ALLOW_PRIVATE_NETWORKS');
    expect(refusal('acme.atlassian.net')).toContain('starting with https://');
  });

  it('lets operators allow http and private networks', () => {
    const open = { allowHttp: true, allowPrivateNetworks: true };
    expect(refusal('http://10.0.0.5:8080/jira', open)).toBeUndefined();
    expect(refusal('http://localhost:8080/', open)).toBeUndefined();
    // Allowing private networks never allows other schemes or credentials in the URL.
    expect(refusal('file:///etc/passwd', open)).toBeDefined();
    expect(refusal('https://a:b@10.0.0.5/', open)).toBeDefined();
  });

  it('classifies addresses', () => {
    for (const address of [
      '127.0.0.1',
      '::1',
      '::ffff:127.0.0.1',
      '169.254.169.254',
      'fd12::1',
      '10.255.0.1',
      'not-an-ip',
    ]) {
      expect(isNonPublicAddress(address), address).toBe(true);
    }
    for (const address of [
      '8.8.8.8',
      '2606:4700:4700::1111',
      '::ffff:8.8.8.8',
      '172.32.0.1',
      '192.169.0.1',
    ]) {
      expect(isNonPublicAddress(address), address).toBe(false);
    }
  });
});

describe('SSRF guard: at connect time', () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/to-file') res.writeHead(302, { location: 'file:///etc/passwd' }).end();
      else if (req.url === '/to-credentials')
        res.writeHead(302, { location: `http://a:b@127.0.0.1:${port}/ok` }).end();
      else if (req.url === '/to-metadata')
        res.writeHead(301, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
      else if (req.url === '/loop') res.writeHead(302, { location: '/loop' }).end();
      else if (req.url === '/to-ok') res.writeHead(302, { location: '/ok' }).end();
      else if (req.url === '/slow') setTimeout(() => res.end('late'), 1_000);
      else res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => {
    server.close();
  });

  it('refuses a host name that resolves to loopback, on every resolved address', async () => {
    const lookup = guardedLookup(STRICT);
    const error = await new Promise<NodeJS.ErrnoException | null>((resolve) =>
      lookup('localhost', { all: true }, (err) => resolve(err)),
    );
    expect(error?.code).toBe('EPRIVATEADDRESS');
    expect(classifyTransportError(error, 'localhost').code).toBe('INVALID_URL');
    const allowed = guardedLookup({ allowHttp: true, allowPrivateNetworks: true });
    const address = await new Promise<string>((resolve) =>
      allowed('localhost', {}, (_e, a) => resolve(String(a))),
    );
    expect(['127.0.0.1', '::1']).toContain(address);
  });

  it('checks every redirect hop', async () => {
    const open = createOutboundFetch({
      policy: { allowHttp: true, allowPrivateNetworks: true },
      timeoutMs: 2_000,
    });
    expect(await (await open(`http://127.0.0.1:${port}/to-ok`)).text()).toBe('ok');
    await expect(open(`http://127.0.0.1:${port}/to-file`)).rejects.toMatchObject({ code: 'INVALID_URL' });
    await expect(open(`http://127.0.0.1:${port}/to-credentials`)).rejects.toMatchObject({
      code: 'INVALID_URL',
    });
    await expect(open(`http://127.0.0.1:${port}/loop`)).rejects.toThrow('Too many redirects');
    const httpsOnly = createOutboundFetch({
      policy: { allowHttp: false, allowPrivateNetworks: true },
      timeoutMs: 2_000,
    });
    await expect(httpsOnly(`http://127.0.0.1:${port}/ok`)).rejects.toMatchObject({ code: 'INVALID_URL' });
    const publicOnly = createOutboundFetch({
      policy: { allowHttp: true, allowPrivateNetworks: false },
      timeoutMs: 2_000,
    });
    await expect(publicOnly(`http://127.0.0.1:${port}/to-metadata`)).rejects.toMatchObject({
      code: 'INVALID_URL',
    });
  });

  it('times out a slow answer', async () => {
    const quick = createOutboundFetch({
      policy: { allowHttp: true, allowPrivateNetworks: true },
      timeoutMs: 200,
    });
    const error = await quick(`http://127.0.0.1:${port}/slow`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(classifyTransportError(error, `127.0.0.1:${port}`).code).toBe('UNREACHABLE');
  });

  it('names refused connections and unknown hosts', async () => {
    const open = createOutboundFetch({
      policy: { allowHttp: true, allowPrivateNetworks: true },
      timeoutMs: 2_000,
    });
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const refused = await open(`http://127.0.0.1:${closedPort}/`).catch((e: unknown) =>
      classifyTransportError(e, `127.0.0.1:${closedPort}`),
    );
    expect(refused).toMatchObject({ code: 'UNREACHABLE' });
    expect((refused as Error).message).toContain('refused the connection');
    const unknown = await open('http://no-such-host.invalid/').catch((e: unknown) =>
      classifyTransportError(e, 'no-such-host.invalid'),
    );
    expect((unknown as Error).message).toContain('was not found (DNS)');
  });
});
