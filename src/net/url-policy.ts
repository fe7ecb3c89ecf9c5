import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { AppError, ErrorCode } from '../errors.js';

/** How far admin-entered URLs may reach (from CLOUDPI_ALLOW_HTTP / CLOUDPI_ALLOW_PRIVATE_NETWORKS). */
export interface UrlPolicy {
  readonly allowHttp: boolean;
  readonly allowPrivateNetworks: boolean;
}

const blocked = new BlockList();
// IPv4: this network, private, carrier-grade NAT, loopback, link-local (cloud metadata), IETF,
// documentation, benchmarking, multicast, reserved and broadcast.
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
// IPv6: unspecified, loopback, discard, documentation, unique-local, link-local, site-local, multicast.
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

/** The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4), if any. */
function embeddedIpv4(address: string): string | undefined {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:(?:0:)?|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1];
  const groups = expandIpv6(lower);
  if (!groups) return undefined;
  const toV4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zeros = (n: number) => groups.slice(0, n).every((g) => g === 0);
  if (zeros(5) && groups[5] === 0xffff) return toV4(groups[6]!, groups[7]!); // ::ffff:a.b.c.d
  if (zeros(4) && groups[4] === 0xffff && groups[5] === 0) return toV4(groups[6]!, groups[7]!); // ::ffff:0:a.b.c.d
  if (zeros(6) && (groups[6]! !== 0 || groups[7]! > 1)) return toV4(groups[6]!, groups[7]!); // ::a.b.c.d
  if (groups[0] === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((g) => g === 0))
    return toV4(groups[6]!, groups[7]!); // NAT64
  if (groups[0] === 0x2002) return toV4(groups[1]!, groups[2]!); // 6to4
  return undefined;
}

function expandIpv6(address: string): number[] | undefined {
  let text = address.split('%')[0]!;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const parts = v4[1]!.split('.').map(Number);
    text = `${text.slice(0, -v4[1]!.length)}${((parts[0]! << 8) | parts[1]!).toString(16)}:${((parts[2]! << 8) | parts[3]!).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill('0');
  const all = [...h, ...fill, ...t];
  if (all.length !== 8) return undefined;
  return all.map((g) => Number.parseInt(g || '0', 16));
}

/** True for loopback, private, link-local, unique-local and other non-public addresses. */
export function isNonPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIpv4(address);
    if (v4 !== undefined && isIP(v4) === 4) return blocked.check(v4, 'ipv4') || isNonPublicAddress(v4);
    return blocked.check(address.split('%')[0]!, 'ipv6');
  }
  return true; // not an IP at all: refuse rather than guess
}

function invalidUrl(message: string, field?: string): AppError {
  return new AppError(ErrorCode.INVALID_URL, message, { details: field ? { field } : {} });
}

/**
 * Parses and checks an admin-entered URL: http(s) only, https unless allowed, no credentials in
 * it, and an IP-literal host (any spelling: WHATWG parsing turns 2130706433, 0x7f.1 and 0177.0.0.1
 * into dotted form first) must be public unless private networks are allowed. Host names are
 * checked again at connect time by guardedLookup, on every resolved address.
 */
export function checkUrl(raw: string, policy: UrlPolicy, field?: string): URL {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw invalidUrl(
      `"${truncate(raw)}" is not a valid URL. Enter the full address, starting with https://.`,
      field,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw invalidUrl(`Only https:// URLs are allowed (got ${url.protocol}//).`, field);
  }
  if (url.protocol === 'http:' && !policy.allowHttp) {
    throw invalidUrl(
      'Only https:// URLs are allowed. Use the https address of the server (the operator can allow plain http with CLOUDPI_ALLOW_HTTP=true).',
      field,
    );
  }
  if (url.username || url.password) {
    throw invalidUrl(
      'The URL must not contain a user name or password; enter credentials in their own fields.',
      field,
    );
  }
  // Brackets of IPv6 literals and a trailing dot (an absolute name: "localhost.") are dropped.
  const host = url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '');
  if (!host) throw invalidUrl('The URL has no host name.', field);
  if (isIP(host)) {
    if (!policy.allowPrivateNetworks && isNonPublicAddress(host)) throw privateAddress(host, field);
  } else if (!policy.allowPrivateNetworks && /(^|\.)(localhost|localdomain|internal|local)$/i.test(host)) {
    throw privateAddress(host, field);
  }
  return url;
}

function privateAddress(host: string, field?: string): AppError {
  return invalidUrl(
    `${host} is a private, loopback or link-local address, which this server does not connect to. Use the public address of the service (the operator can allow private networks with CLOUDPI_ALLOW_PRIVATE_NETWORKS=true for on-premises servers).`,
    field,
  );
}

function truncate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A dns.lookup replacement for sockets: resolves every address of the host and refuses the
 * connection if any of them is non-public (a host that answers with a mix is a rebinding
 * attempt). Used as `lookup` by the undici dispatcher and the https agents, so the check holds at
 * connect time, for every connection and every redirect hop.
 */
export function guardedLookup(policy: UrlPolicy) {
  return (
    hostname: string,
    options: { all?: boolean; family?: number } | number,
    callback: LookupCallback,
  ): void => {
    const opts = typeof options === 'number' ? { family: options } : (options ?? {});
    dnsLookup(hostname, { all: true, ...(opts.family ? { family: opts.family } : {}) }, (err, addresses) => {
      if (err) return callback(err, []);
      const list = addresses as LookupAddress[];
      if (!policy.allowPrivateNetworks) {
        const bad = list.find((a) => isNonPublicAddress(a.address));
        if (bad) {
          const error = new Error(
            `${hostname} resolves to ${bad.address}, a private, loopback or link-local address`,
          ) as NodeJS.ErrnoException;
          error.code = 'EPRIVATEADDRESS';
          return callback(error, []);
        }
      }
      if (opts.all) return callback(null, list);
      const first = list[0];
      if (!first)
        return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), []);
      callback(null, first.address, first.family);
    });
  };
}
