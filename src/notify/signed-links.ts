/**
 * One-click links in emails: "Create ticket in Jira" and "Unsubscribe". Stateless: the token in
 * the URL carries its own claims and an HMAC-SHA256 over them, so a click is checked without a
 * database row, and a token cannot be altered, moved to another tenant, recommendation or route,
 * or used for another kind of action.
 *
 * Token: base64url(payload) + '.' + base64url(HMAC-SHA256(key, payload)). The payload is binary:
 * a version byte, a kind byte (action / unsubscribe), then the claims as length-prefixed fields
 * (canonical lowercase UUIDs packed into 16 bytes, other strings as UTF-8). Actions carry their
 * expiry in milliseconds; unsubscribe links never expire (List-Unsubscribe must keep working).
 *
 * Keys come from the caller; take them from `deriveKey(masterKey, SIGNED_LINK_PURPOSES.x)` so a
 * link key never is the master key and the two kinds of links never share one.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

export const SIGNED_LINK_PURPOSES = {
  action: 'notify.links.action',
  unsubscribe: 'notify.links.unsubscribe',
} as const;

export const TOKEN_VERSION = 1;
const KIND_ACTION = 1;
const KIND_UNSUBSCRIBE = 2;

const FIELD_TEXT = 0;
const FIELD_UUID = 1;

/** HMAC keys shorter than this are refused: a link key is derived, never typed in. */
export const MIN_KEY_BYTES = 32;
/** Each claim, in UTF-8 bytes (ids, provider kinds and email addresses fit many times over). */
export const MAX_CLAIM_BYTES = 320;
/** Longer tokens are refused unread. */
export const MAX_TOKEN_LENGTH = 2048;
const MAC_BYTES = 32;

export const LINK_ACTIONS = ['create-ticket'] as const;
export type LinkAction = (typeof LINK_ACTIONS)[number];

export interface ActionClaims {
  readonly tenantId: string;
  readonly recommendationId: string;
  /** Ticket provider kind (jira, azure-devops, servicenow). */
  readonly provider: string;
  readonly action: LinkAction;
  readonly expiresAt: Date;
}

export interface UnsubscribeClaims {
  readonly tenantId: string;
  readonly routeId: string;
  /** The address the email went to, as it was sent. */
  readonly recipient: string;
}

export type VerifyFailureReason = 'malformed' | 'bad-signature' | 'expired';

export type VerifyResult<T> =
  | { readonly ok: true; readonly claims: T }
  | { readonly ok: false; readonly reason: VerifyFailureReason };

/** A key for one purpose (HKDF-SHA256, 32 bytes), so links never use the master key directly. */
export function deriveKey(masterKey: Buffer, purpose: string): Buffer {
  if (masterKey.length < 16) throw new RangeError('deriveKey: the master key must have at least 16 bytes.');
  if (!purpose) throw new RangeError('deriveKey: a purpose is required.');
  return Buffer.from(hkdfSync('sha256', masterKey, 'cloudpi.signed-links', `cloudpi:${purpose}`, 32));
}

export function signAction(key: Buffer, claims: ActionClaims): string {
  if (!LINK_ACTIONS.includes(claims.action))
    throw new RangeError(`signAction: unknown action ${claims.action}.`);
  const expires = claims.expiresAt.getTime();
  if (!Number.isSafeInteger(expires) || expires < 0 || expires >= 2 ** 48)
    throw new RangeError('signAction: expiresAt must be a valid date.');
  const time = Buffer.alloc(6);
  time.writeUIntBE(expires, 0, 6);
  return sign(key, KIND_ACTION, [
    time,
    field(claims.tenantId, 'tenantId'),
    field(claims.recommendationId, 'recommendationId'),
    field(claims.provider, 'provider'),
    field(claims.action, 'action'),
  ]);
}

export function verifyAction(
  key: Buffer,
  token: string,
  now: number = Date.now(),
): VerifyResult<ActionClaims> {
  const opened = open(key, token, KIND_ACTION);
  if (!opened.ok) return opened;
  const reader = new Reader(opened.claims);
  const expires = reader.time();
  const tenantId = reader.field();
  const recommendationId = reader.field();
  const provider = reader.field();
  const action = reader.field();
  if (
    expires === undefined ||
    tenantId === undefined ||
    recommendationId === undefined ||
    provider === undefined ||
    !reader.done()
  )
    return MALFORMED;
  const known = LINK_ACTIONS.find((a) => a === action);
  if (!known) return MALFORMED;
  // Written so that a NaN clock fails closed.
  if (!(now < expires)) return { ok: false, reason: 'expired' };
  return {
    ok: true,
    claims: { tenantId, recommendationId, provider, action: known, expiresAt: new Date(expires) },
  };
}

export function signUnsubscribe(key: Buffer, claims: UnsubscribeClaims): string {
  return sign(key, KIND_UNSUBSCRIBE, [
    field(claims.tenantId, 'tenantId'),
    field(claims.routeId, 'routeId'),
    field(claims.recipient, 'recipient'),
  ]);
}

export function verifyUnsubscribe(key: Buffer, token: string): VerifyResult<UnsubscribeClaims> {
  const opened = open(key, token, KIND_UNSUBSCRIBE);
  if (!opened.ok) return opened;
  const reader = new Reader(opened.claims);
  const tenantId = reader.field();
  const routeId = reader.field();
  const recipient = reader.field();
  if (tenantId === undefined || routeId === undefined || recipient === undefined || !reader.done())
    return MALFORMED;
  return { ok: true, claims: { tenantId, routeId, recipient } };
}

// ---------------------------------------------------------------------------------------------

const MALFORMED = { ok: false, reason: 'malformed' } as const;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

function checkKey(key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length < MIN_KEY_BYTES)
    throw new RangeError(`Signed links need a key of at least ${MIN_KEY_BYTES} bytes (use deriveKey).`);
}

/** One claim: a canonical UUID in 16 bytes (exact round trip), anything else as UTF-8. */
function field(value: string, name: string): Buffer {
  if (typeof value !== 'string' || value.length === 0)
    throw new RangeError(`Signed link claim ${name} must be a non-empty string.`);
  if (UUID.test(value))
    return Buffer.concat([Buffer.of(FIELD_UUID), Buffer.from(value.replace(/-/g, ''), 'hex')]);
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > MAX_CLAIM_BYTES)
    throw new RangeError(`Signed link claim ${name} is longer than ${MAX_CLAIM_BYTES} bytes.`);
  if (bytes.toString('utf8') !== value) throw new RangeError(`Signed link claim ${name} is not valid text.`);
  const length = Buffer.alloc(2);
  length.writeUInt16BE(bytes.length);
  return Buffer.concat([Buffer.of(FIELD_TEXT), length, bytes]);
}

function mac(key: Buffer, payload: Buffer): Buffer {
  return createHmac('sha256', key).update(payload).digest();
}

function sign(key: Buffer, kind: number, parts: readonly Buffer[]): string {
  checkKey(key);
  const payload = Buffer.concat([Buffer.of(TOKEN_VERSION, kind), ...parts]);
  return `${payload.toString('base64url')}.${mac(key, payload).toString('base64url')}`;
}

/** Strict base64url: the one canonical spelling of some bytes, so a token has no look-alikes. */
function decode(text: string): Buffer | undefined {
  if (!BASE64URL.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : undefined;
}

/** Checks shape, then the MAC, and only then reads the version and kind. */
function open(key: Buffer, token: string, kind: number): VerifyResult<Buffer> {
  checkKey(key);
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return MALFORMED;
  const parts = token.split('.');
  if (parts.length !== 2) return MALFORMED;
  const payload = decode(parts[0] ?? '');
  const given = decode(parts[1] ?? '');
  if (!payload || !given || payload.length < 2) return MALFORMED;
  if (given.length !== MAC_BYTES) return { ok: false, reason: 'bad-signature' };
  if (!timingSafeEqual(given, mac(key, payload))) return { ok: false, reason: 'bad-signature' };
  if (payload[0] !== TOKEN_VERSION || payload[1] !== kind) return MALFORMED;
  return { ok: true, claims: payload.subarray(2) };
}

class Reader {
  readonly #bytes: Buffer;
  #at = 0;

  constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }

  time(): number | undefined {
    if (this.#at + 6 > this.#bytes.length) return undefined;
    const value = this.#bytes.readUIntBE(this.#at, 6);
    this.#at += 6;
    return value;
  }

  field(): string | undefined {
    const tag = this.#bytes[this.#at];
    if (tag === FIELD_UUID) {
      if (this.#at + 17 > this.#bytes.length) return undefined;
      const hex = this.#bytes.toString('hex', this.#at + 1, this.#at + 17);
      this.#at += 17;
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    }
    if (tag !== FIELD_TEXT || this.#at + 3 > this.#bytes.length) return undefined;
    const length = this.#bytes.readUInt16BE(this.#at + 1);
    const start = this.#at + 3;
    if (length === 0 || length > MAX_CLAIM_BYTES || start + length > this.#bytes.length) return undefined;
    this.#at = start + length;
    return this.#bytes.toString('utf8', start, start + length);
  }

  done(): boolean {
    return this.#at === this.#bytes.length;
  }
}
