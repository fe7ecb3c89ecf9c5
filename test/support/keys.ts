import { randomBytes } from 'node:crypto';
import type { MasterKey } from '../../src/config.js';

export function masterKey(id: string): MasterKey {
  return { id, key: randomBytes(32) };
}

export function keyEntry(key: MasterKey): string {
  return `${key.id}:${key.key.toString('base64')}`;
}
