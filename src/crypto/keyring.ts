import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type AppConfig, type MasterKey, parseMasterKeys } from '../config.js';
import type { Logger } from '../logger.js';
import { generateMasterKeyEntry, SecretBox } from './secret-box.js';

export const GENERATED_KEY_FILE = 'master.key';

/**
 * The keyring the service runs with.
 *
 * - CLOUDPI_MASTER_KEYS set: those keys (newest first). In embedded mode a key generated earlier
 *   into the data dir is kept at the end of the ring, so secrets sealed before the operator set
 *   the variable stay readable until rotation re-seals them.
 * - Embedded mode without keys: a key generated once into `<data dir>/master.key` (mode 0600).
 * - PostgreSQL without keys never gets here: loadConfig refuses it.
 */
export function resolveKeyring(config: AppConfig, logger: Logger): SecretBox {
  const file = path.join(config.dataDir, GENERATED_KEY_FILE);
  if (config.masterKeys) {
    const keys: MasterKey[] = [...config.masterKeys];
    if (config.database.kind === 'pglite' && existsSync(file)) {
      for (const key of readKeyFile(file)) {
        if (!keys.some((k) => k.id === key.id)) keys.push(key);
      }
    }
    return new SecretBox(keys);
  }
  if (config.database.kind !== 'pglite') {
    throw new Error('CLOUDPI_MASTER_KEYS is required with DATABASE_URL');
  }
  if (!existsSync(file)) {
    mkdirSync(config.dataDir, { recursive: true });
    writeFileSync(file, `${generateMasterKeyEntry('local')}\n`, { mode: 0o600, flag: 'wx' });
    logger.warn(
      { file },
      'CLOUDPI_MASTER_KEYS is not set: generated a master key into the data directory. Anyone who can read that file can decrypt the stored secrets; set CLOUDPI_MASTER_KEYS for production.',
    );
  } else {
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077) {
      chmodSync(file, 0o600);
      logger.warn(
        { file, mode: mode.toString(8) },
        'master key file was readable by others; reset it to 0600',
      );
    }
    logger.info({ file }, 'CLOUDPI_MASTER_KEYS is not set: using the generated key in the data directory');
  }
  return new SecretBox(readKeyFile(file));
}

function readKeyFile(file: string): MasterKey[] {
  return parseMasterKeys(readFileSync(file, 'utf8').trim());
}
