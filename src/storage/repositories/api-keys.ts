import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Database } from '../db.js';
import { and, desc, eq, isNull } from '../orm.js';
import { apiKeys } from '../schema.js';

export type ApiKey = typeof apiKeys.$inferSelect;

/** `cpk_<12 hex prefix>_<43 base64url chars of secret>`: the prefix finds the row, the hash proves it. */
const KEY_FORMAT = /^cpk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export class ApiKeyRepository {
  constructor(private readonly db: Database) {}

  /** Returns the key in clear once; only its hash is stored. */
  async create(tenantId: string, name = ''): Promise<{ id: string; key: string; prefix: string }> {
    const prefix = randomBytes(6).toString('hex');
    const key = `cpk_${prefix}_${randomBytes(32).toString('base64url')}`;
    const [row] = await this.db
      .insert(apiKeys)
      .values({ tenantId, name, prefix, hash: hashKey(key) })
      .returning({ id: apiKeys.id });
    return { id: row!.id, key, prefix };
  }

  /**
   * The active key matching `presented`, or undefined. The hash comparison runs in constant
   * time; a malformed or unknown key costs the same hash as a real one.
   */
  async authenticate(presented: string): Promise<ApiKey | undefined> {
    const match = KEY_FORMAT.exec(presented);
    const presentedHash = Buffer.from(hashKey(presented), 'hex');
    if (!match) {
      timingSafeEqual(presentedHash, presentedHash);
      return undefined;
    }
    const [row] = await this.db
      .select()
      .from(apiKeys)
      .where(and(eq(apiKeys.prefix, match[1]!), isNull(apiKeys.revokedAt)));
    const storedHash = Buffer.from(row?.hash ?? '0'.repeat(64), 'hex');
    const equal = timingSafeEqual(presentedHash, storedHash);
    return row && equal ? row : undefined;
  }

  async touch(id: string): Promise<void> {
    await this.db.update(apiKeys).set({ lastUsedAt: new Date() }).where(eq(apiKeys.id, id));
  }

  /** Revokes by id or by prefix; false when the tenant has no such active key. */
  async revoke(tenantId: string, idOrPrefix: string): Promise<boolean> {
    const column = /^[0-9a-f]{12}$/.test(idOrPrefix) ? apiKeys.prefix : apiKeys.id;
    if (column === apiKeys.id && !/^[0-9a-f-]{36}$/.test(idOrPrefix)) return false;
    const rows = await this.db
      .update(apiKeys)
      .set({ revokedAt: new Date() })
      .where(and(eq(apiKeys.tenantId, tenantId), eq(column, idOrPrefix), isNull(apiKeys.revokedAt)))
      .returning({ id: apiKeys.id });
    return rows.length > 0;
  }

  async list(tenantId: string): Promise<Omit<ApiKey, 'hash'>[]> {
    return this.db
      .select({
        id: apiKeys.id,
        tenantId: apiKeys.tenantId,
        name: apiKeys.name,
        prefix: apiKeys.prefix,
        createdAt: apiKeys.createdAt,
        lastUsedAt: apiKeys.lastUsedAt,
        revokedAt: apiKeys.revokedAt,
      })
      .from(apiKeys)
      .where(eq(apiKeys.tenantId, tenantId))
      .orderBy(desc(apiKeys.createdAt));
  }
}
