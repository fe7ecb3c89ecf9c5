import { describe, expect, it } from 'vitest';
import { keyIdOf, SecretBox } from '../../src/crypto/secret-box.js';
import { masterKey } from '../support/keys.js';

const CONTEXT = 'integrations.credentials_secret|tenant-a|jira';

function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

describe('secret box', () => {
  it('round-trips and stores the key id with every ciphertext', () => {
    const box = new SecretBox([masterKey('k1')]);
    const sealed = box.encrypt('s3cr3t-token', CONTEXT);
    expect(sealed).not.toContain('s3cr3t');
    expect(sealed.startsWith('v1.k1.')).toBe(true);
    expect(keyIdOf(sealed)).toBe('k1');
    expect(box.decrypt(sealed, CONTEXT)).toBe('s3cr3t-token');
  });

  it('uses a fresh IV each time', () => {
    const box = new SecretBox([masterKey('k1')]);
    expect(box.encrypt('same', CONTEXT)).not.toBe(box.encrypt('same', CONTEXT));
  });

  it('rejects tampered ciphertext, tag and IV', () => {
    const box = new SecretBox([masterKey('k1')]);
    const sealed = box.encrypt('s3cr3t-token', CONTEXT);
    const parts = sealed.split('.');
    for (const index of [2, 3, 4]) {
      const bytes = Buffer.from(parts[index]!, 'base64url');
      bytes[0] = bytes[0]! ^ 0x01;
      const tampered = parts.map((p, i) => (i === index ? bytes.toString('base64url') : p)).join('.');
      expect(errorCode(() => box.decrypt(tampered, CONTEXT))).toBe('SECRET_TAMPERED');
    }
  });

  it('rejects a ciphertext moved to another tenant or purpose', () => {
    const box = new SecretBox([masterKey('k1')]);
    const sealed = box.encrypt('s3cr3t-token', CONTEXT);
    expect(errorCode(() => box.decrypt(sealed, 'integrations.credentials_secret|tenant-b|jira'))).toBe(
      'SECRET_TAMPERED',
    );
  });

  it('rejects the wrong key under the same id, and an unknown key id', () => {
    const sealed = new SecretBox([masterKey('k1')]).encrypt('s3cr3t-token', CONTEXT);
    expect(errorCode(() => new SecretBox([masterKey('k1')]).decrypt(sealed, CONTEXT))).toBe(
      'SECRET_TAMPERED',
    );
    expect(errorCode(() => new SecretBox([masterKey('k2')]).decrypt(sealed, CONTEXT))).toBe(
      'SECRET_KEY_UNKNOWN',
    );
  });

  it('encrypts with the newest key and decrypts with every listed key', () => {
    const k1 = masterKey('k1');
    const k2 = masterKey('k2');
    const old = new SecretBox([k1]).encrypt('old secret', CONTEXT);
    const ring = new SecretBox([k2, k1]);
    expect(ring.decrypt(old, CONTEXT)).toBe('old secret');
    expect(ring.needsRotation(old)).toBe(true);
    const fresh = ring.encrypt('new secret', CONTEXT);
    expect(keyIdOf(fresh)).toBe('k2');
    expect(ring.needsRotation(fresh)).toBe(false);
  });

  it('rejects malformed envelopes', () => {
    const box = new SecretBox([masterKey('k1')]);
    expect(errorCode(() => box.decrypt('plain text', CONTEXT))).toBe('SECRET_MALFORMED');
    expect(errorCode(() => box.decrypt('v1.k1.AAAA.AAAA.AAAA', CONTEXT))).toBe('SECRET_MALFORMED');
  });
});
