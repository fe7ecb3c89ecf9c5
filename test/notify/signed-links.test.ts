import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type ActionClaims,
  deriveKey,
  MAX_TOKEN_LENGTH,
  SIGNED_LINK_PURPOSES,
  signAction,
  signUnsubscribe,
  verifyAction,
  verifyUnsubscribe,
} from '../../src/notify/signed-links.js';

const master = Buffer.alloc(32, 7);
const key = deriveKey(master, SIGNED_LINK_PURPOSES.action);
const unsubscribeKey = deriveKey(master, SIGNED_LINK_PURPOSES.unsubscribe);
const NOW = Date.parse('2025-06-01T12:00:00Z');

const TENANT_A = '0b7f6c1e-3a2d-4c5b-9e8f-1a2b3c4d5e6f';
const TENANT_B = '9c8d7e6f-5a4b-4c3d-8e2f-1a0b9c8d7e6f';

function claims(overrides: Partial<ActionClaims> = {}): ActionClaims {
  return {
    tenantId: TENANT_A,
    recommendationId: '4d3c2b1a-0f9e-4d8c-b7a6-5f4e3d2c1b0a',
    provider: 'jira',
    action: 'create-ticket',
    expiresAt: new Date(NOW + 3_600_000),
    ...overrides,
  };
}

/** Flips one bit of the byte at `index` of a base64url string's decoded bytes. */
function flipBit(part: string, index: number): string {
  const bytes = Buffer.from(part, 'base64url');
  bytes[index] = (bytes[index] ?? 0) ^ 1;
  return bytes.toString('base64url');
}

describe('action links', () => {
  it('round-trips the claims in a compact URL-safe token', () => {
    const token = signAction(key, claims());
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    // UUIDs packed in binary: well under what the same claims take as JSON.
    expect(token.length).toBeLessThan(140);
    expect(token.length).toBeLessThan(Buffer.from(JSON.stringify(claims())).toString('base64url').length);
    expect(verifyAction(key, token, NOW)).toEqual({ ok: true, claims: claims() });
    expect(encodeURIComponent(token)).toBe(token);
  });

  it('carries a version byte and the claims in the payload', () => {
    const [payload] = signAction(key, claims()).split('.');
    const bytes = Buffer.from(payload ?? '', 'base64url');
    expect(bytes[0]).toBe(1);
    expect(bytes.includes(Buffer.from('jira'))).toBe(true);
    expect(bytes.includes(Buffer.from('create-ticket'))).toBe(true);
  });

  it('round-trips ids that are not UUIDs, upper-case UUIDs and non-ASCII text exactly', () => {
    const odd = claims({
      tenantId: 'T0123ABC',
      recommendationId: '4D3C2B1A-0F9E-4D8C-B7A6-5F4E3D2C1B0A',
      provider: 'azure-devops',
      expiresAt: new Date(NOW + 1234),
    });
    expect(verifyAction(key, signAction(key, odd), NOW)).toEqual({ ok: true, claims: odd });
    const unicode = claims({ tenantId: 'tenant-ü-🚀' });
    expect(verifyAction(key, signAction(key, unicode), NOW)).toEqual({ ok: true, claims: unicode });
  });

  it('refuses a tampered payload', () => {
    const token = signAction(key, claims());
    const [payload = '', mac = ''] = token.split('.');
    for (let i = 0; i < Buffer.from(payload, 'base64url').length; i++) {
      expect(verifyAction(key, `${flipBit(payload, i)}.${mac}`, NOW)).toEqual({
        ok: false,
        reason: 'bad-signature',
      });
    }
  });

  it('refuses a tampered or truncated MAC', () => {
    const [payload = '', mac = ''] = signAction(key, claims()).split('.');
    expect(verifyAction(key, `${payload}.${flipBit(mac, 0)}`, NOW)).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
    expect(verifyAction(key, `${payload}.${flipBit(mac, 31)}`, NOW)).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
    const short = Buffer.from(mac, 'base64url').subarray(0, 16).toString('base64url');
    expect(verifyAction(key, `${payload}.${short}`, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('refuses truncated and malformed tokens', () => {
    const token = signAction(key, claims());
    const [payload = '', mac = ''] = token.split('.');
    for (const bad of [
      '',
      '.',
      payload,
      `${payload}.`,
      `.${mac}`,
      `${payload}.${mac}.x`,
      `${payload}=.${mac}`,
      `${payload}.${mac}=`,
      `${payload.slice(0, -1)}%.${mac}`,
      `${payload} .${mac}`,
      'x'.repeat(MAX_TOKEN_LENGTH + 1),
    ])
      expect(verifyAction(key, bad, NOW).ok, bad).toBe(false);
    expect(verifyAction(key, `${payload}.${mac}x`, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(verifyAction(key, `${payload}.${mac}xy`, NOW)).toEqual({ ok: false, reason: 'malformed' });
    // A token cut anywhere is never accepted.
    for (let i = 1; i < token.length; i++) expect(verifyAction(key, token.slice(0, i), NOW).ok).toBe(false);
    // A shorter payload that still decodes is refused by its MAC.
    const cutPayload = Buffer.from(payload, 'base64url').subarray(0, 10).toString('base64url');
    expect(verifyAction(key, `${cutPayload}.${mac}`, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('refuses a non-canonical base64url spelling of the same token', () => {
    const [payload = '', mac = ''] = signAction(key, claims()).split('.');
    // The last character of a 43-character MAC carries 2 unused bits; setting them changes the
    // text but not the bytes.
    const last = mac.at(-1) ?? 'A';
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const twin = alphabet[alphabet.indexOf(last) ^ 1] ?? 'A';
    const variant = `${payload}.${mac.slice(0, -1)}${twin}`;
    expect(Buffer.from(variant.split('.')[1] ?? '', 'base64url')).toEqual(Buffer.from(mac, 'base64url'));
    expect(verifyAction(key, variant, NOW)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('refuses an expired token, and accepts it until its expiry', () => {
    const token = signAction(key, claims({ expiresAt: new Date(NOW) }));
    expect(verifyAction(key, token, NOW - 1).ok).toBe(true);
    expect(verifyAction(key, token, NOW)).toEqual({ ok: false, reason: 'expired' });
    expect(verifyAction(key, token, NOW + 86_400_000)).toEqual({ ok: false, reason: 'expired' });
    expect(verifyAction(key, token, Number.NaN)).toEqual({ ok: false, reason: 'expired' });
  });

  it('uses the current time by default', () => {
    const past = signAction(key, claims({ expiresAt: new Date(Date.now() - 1000) }));
    const future = signAction(key, claims({ expiresAt: new Date(Date.now() + 60_000) }));
    expect(verifyAction(key, past)).toEqual({ ok: false, reason: 'expired' });
    expect(verifyAction(key, future).ok).toBe(true);
  });

  it('refuses a token signed with another key', () => {
    const token = signAction(key, claims());
    expect(verifyAction(randomBytes(32), token, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(verifyAction(deriveKey(Buffer.alloc(32, 8), SIGNED_LINK_PURPOSES.action), token, NOW)).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
    expect(verifyAction(master, token, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('does not let claims be swapped between tenants', () => {
    const a = signAction(key, claims({ tenantId: TENANT_A }));
    const b = signAction(key, claims({ tenantId: TENANT_B }));
    const [payloadA = '', macA = ''] = a.split('.');
    const [payloadB = '', macB = ''] = b.split('.');
    expect(payloadA).not.toBe(payloadB);
    expect(verifyAction(key, `${payloadB}.${macA}`, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(verifyAction(key, `${payloadA}.${macB}`, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
    // Rewriting tenant A's id into tenant B's inside the signed payload is refused too.
    const bytesA = Buffer.from(payloadA, 'base64url');
    const idA = Buffer.from(TENANT_A.replace(/-/g, ''), 'hex');
    const at = bytesA.indexOf(idA);
    expect(at).toBeGreaterThan(0);
    Buffer.from(TENANT_B.replace(/-/g, ''), 'hex').copy(bytesA, at);
    expect(verifyAction(key, `${bytesA.toString('base64url')}.${macA}`, NOW)).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
    const good = verifyAction(key, b, NOW);
    expect(good.ok && good.claims.tenantId).toBe(TENANT_B);
  });

  it('does not accept an unsubscribe token as an action, even under the same key', () => {
    const token = signUnsubscribe(key, { tenantId: TENANT_A, routeId: 'r1', recipient: 'ops@example.com' });
    expect(verifyAction(key, token, NOW)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyUnsubscribe(key, signAction(key, claims()))).toEqual({ ok: false, reason: 'malformed' });
  });

  it('refuses to sign bad claims or with a weak key', () => {
    expect(() => signAction(Buffer.alloc(8), claims())).toThrow(RangeError);
    expect(() => signAction(key, claims({ tenantId: '' }))).toThrow(RangeError);
    expect(() => signAction(key, claims({ provider: 'x'.repeat(400) }))).toThrow(RangeError);
    expect(() => signAction(key, claims({ expiresAt: new Date(Number.NaN) }))).toThrow(RangeError);
    expect(() => signAction(key, { ...claims(), action: 'delete' as 'create-ticket' })).toThrow(RangeError);
    expect(() => verifyAction(Buffer.alloc(0), 'a.b', NOW)).toThrow(RangeError);
  });
});

describe('unsubscribe links', () => {
  const claimsU = {
    tenantId: TENANT_A,
    routeId: '7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d',
    recipient: 'Ops@Example.com',
  };

  it('round-trips, with no expiry', () => {
    const token = signUnsubscribe(unsubscribeKey, claimsU);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(verifyUnsubscribe(unsubscribeKey, token)).toEqual({ ok: true, claims: claimsU });
  });

  it('refuses tampering, another key and other recipients', () => {
    const token = signUnsubscribe(unsubscribeKey, claimsU);
    const [payload = '', mac = ''] = token.split('.');
    expect(verifyUnsubscribe(unsubscribeKey, `${flipBit(payload, 5)}.${mac}`)).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
    expect(verifyUnsubscribe(unsubscribeKey, `${payload}.${flipBit(mac, 3)}`)).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
    expect(verifyUnsubscribe(key, token)).toEqual({ ok: false, reason: 'bad-signature' });
    const other = signUnsubscribe(unsubscribeKey, { ...claimsU, recipient: 'eve@example.com' });
    expect(verifyUnsubscribe(unsubscribeKey, `${other.split('.')[0]}.${mac}`)).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
    expect(verifyUnsubscribe(unsubscribeKey, token.slice(0, -2))).toMatchObject({ ok: false });
    expect(verifyUnsubscribe(unsubscribeKey, 'garbage')).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('deriveKey', () => {
  it('derives distinct 32-byte keys per purpose and master key, deterministically', () => {
    expect(key).toHaveLength(32);
    expect(key.equals(deriveKey(master, SIGNED_LINK_PURPOSES.action))).toBe(true);
    expect(key.equals(unsubscribeKey)).toBe(false);
    expect(key.equals(master)).toBe(false);
    expect(key.equals(deriveKey(Buffer.alloc(32, 8), SIGNED_LINK_PURPOSES.action))).toBe(false);
  });

  it('refuses short master keys and empty purposes', () => {
    expect(() => deriveKey(Buffer.alloc(4), 'x')).toThrow(RangeError);
    expect(() => deriveKey(master, '')).toThrow(RangeError);
  });
});
