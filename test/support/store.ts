import { afterAll, beforeAll } from 'vitest';
import { SecretBox } from '../../src/crypto/secret-box.js';
import { type DatabaseHandle, openDatabase } from '../../src/storage/db.js';
import { runMigrations } from '../../src/storage/migrate.js';
import { createRepositories, type Repositories } from '../../src/storage/repositories/index.js';
import { type DatabaseKind, type FreshDatabase, freshDatabase } from './databases.js';
import { masterKey } from './keys.js';

export interface Store {
  handle: DatabaseHandle;
  repos: Repositories;
  box: SecretBox;
  fresh: FreshDatabase;
}

/** A migrated database of `kind` for the enclosing describe block, dropped afterwards. */
export function useStore(kind: DatabaseKind): Store {
  const store = {} as Store;
  beforeAll(async () => {
    store.fresh = await freshDatabase(kind);
    store.handle = await openDatabase(store.fresh.target);
    await runMigrations(store.handle);
    store.box = new SecretBox([masterKey('test')]);
    store.repos = createRepositories(store.handle.db, store.box);
  });
  afterAll(async () => {
    await store.handle?.close();
    await store.fresh?.drop();
  });
  return store;
}
