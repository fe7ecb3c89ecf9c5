import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { MasterKey } from '../config.js';
import { AppError, ErrorCode } from '../errors.js';

/**
 * AES-256-GCM envelope for secrets at rest.
 *
 * Stored form: `v1.<key id>.<iv>.<ciphertext>.<tag>` (base64url parts). The key id says which
 * keyring entry decrypts it, so old ciphertexts stay readable after a new key is put first.
 * `context` is bound as additional authenticated data: a ciphertext copied to another tenant's
 * row (or another purpose) fails to decrypt instead of leaking across tenants.
 */
const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class SecretBox {
  readonly #keys: ReadonlyMap<string, Buffer>;
  readonly currentKeyId: string;

  constructor(keys: readonly MasterKey[]) {
    const first = keys[0];
    if (!first) throw new AppError(ErrorCode.CONFIG_INVALID, 'The keyring needs at least one key.');
    this.#keys = new Map(keys.map((k) => [k.id, k.key]));
    this.currentKeyId = first.id;
  }

  get keyIds(): string[] {
    return [...this.#keys.keys()];
  }

  /**
   * Keys for another purpose (signed email links), derived with HKDF so the master keys are never
   * used directly: the current key's first, then the older ones (links signed before a rotation
   * still verify).
   */
  derivedKeys(purpose: string): Buffer[] {
    const ids = [this.currentKeyId, ...[...this.#keys.keys()].filter((id) => id !== this.currentKeyId)];
    return ids.map((id) =>
      Buffer.from(hkdfSync('sha256', this.#keys.get(id)!, Buffer.alloc(0), `cloudpi:${purpose}`, 32)),
    );
  }

  encrypt(plaintext: string, context: string): string {
    const key = this.#keys.get(this.currentKeyId)!;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [VERSION, this.currentKeyId, b64(iv), b64(ciphertext), b64(tag)].join('.');
  }

  decrypt(sealed: string, context: string): string {
    const { keyId, iv, ciphertext, tag } = parseSealed(sealed);
    const key = this.#keys.get(keyId);
    if (!key) {
      throw new AppError(
        ErrorCode.SECRET_KEY_UNKNOWN,
        `A stored secret was encrypted with key "${keyId}", which is not in CLOUDPI_MASTER_KEYS. Add that key back to the keyring.`,
      );
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
    } catch (error) {
      throw new AppError(
        ErrorCode.SECRET_TAMPERED,
        `A stored secret failed its integrity check (key "${keyId}"): it was altered, moved to another record, or the key under that id changed.`,
        { cause: error },
      );
    }
  }

  /** True when the value is sealed with a key other than the current one. */
  needsRotation(sealed: string): boolean {
    return keyIdOf(sealed) !== this.currentKeyId;
  }
}

export function keyIdOf(sealed: string): string {
  return parseSealed(sealed).keyId;
}

function parseSealed(sealed: string): { keyId: string; iv: Buffer; ciphertext: Buffer; tag: Buffer } {
  const parts = sealed.split('.');
  if (parts.length !== 5 || parts[0] !== VERSION) {
    throw new AppError(ErrorCode.SECRET_MALFORMED, 'A stored secret is not in the v1 sealed format.');
  }
  const [, keyId, iv, ciphertext, tag] = parts as [string, string, string, string, string];
  const ivBytes = Buffer.from(iv, 'base64url');
  const tagBytes = Buffer.from(tag, 'base64url');
  if (ivBytes.length !== IV_BYTES || tagBytes.length !== TAG_BYTES) {
    throw new AppError(ErrorCode.SECRET_MALFORMED, 'A stored secret has a malformed IV or tag.');
  }
  return { keyId, iv: ivBytes, ciphertext: Buffer.from(ciphertext, 'base64url'), tag: tagBytes };
}

function b64(buffer: Buffer): string {
  return buffer.toString('base64url');
}

/** A fresh keyring entry, as `cloudpi keys generate` prints it. */
export function generateMasterKeyEntry(
  id = `k${new Date().toISOString().slice(0, 10).replaceAll('-', '')}`,
): string {
  return `${id}:${randomBytes(32).toString('base64')}`;
}
