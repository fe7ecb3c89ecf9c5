import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli.js';
import { loadConfig } from '../../src/config.js';
import { countByKey } from '../../src/crypto/rotate.js';
import { SecretBox } from '../../src/crypto/secret-box.js';
import { startService } from '../../src/main.js';
import { createRepositories } from '../../src/storage/repositories/index.js';
import {
  describeEachDatabase,
  type FreshDatabase,
  freshDatabase,
  TEST_DATABASE_URL,
} from '../support/databases.js';
import { keyEntry, masterKey } from '../support/keys.js';
import { memoryLogger } from '../support/logs.js';
import { useService } from '../support/service.js';

describeEachDatabase('admins', (kind) => {
  const running = useService(kind, { CLOUDPI_ADMINS: 'slack:U0BOOT,teams:oid-boot' });

  it('recognises bootstrap admins in every tenant of their platform, and granted admins in theirs', async () => {
    const { repositories, admins } = running.service;
    const a = await repositories.tenants.ensure('slack', 'T_ADMINS_A');
    const b = await repositories.tenants.ensure('slack', 'T_ADMINS_B');
    expect(await admins.isAdmin(a.id, 'slack', 'U0BOOT')).toBe(true);
    expect(await admins.isAdmin(b.id, 'slack', 'U0BOOT')).toBe(true);
    expect(await admins.isAdmin(a.id, 'teams', 'U0BOOT')).toBe(false);
    expect(await admins.isAdmin(a.id, 'slack', 'U0GRANTED')).toBe(false);
    await repositories.identities.grantRole(a.id, 'slack', 'U0GRANTED', 'admin');
    expect(await admins.isAdmin(a.id, 'slack', 'U0GRANTED')).toBe(true);
    expect(await admins.isAdmin(b.id, 'slack', 'U0GRANTED')).toBe(false);
  });
});

describe('key rotation while the service runs', () => {
  const k1 = masterKey('k1');
  const k2 = masterKey('k2');
  const cleanup: FreshDatabase[] = [];
  afterAll(async () => {
    for (const f of cleanup) await f.drop();
  });

  it('embedded: restarting with a new key first re-seals old secrets in the background', async () => {
    const fresh = await freshDatabase('pglite');
    cleanup.push(fresh);
    const base = { PORT: '0', HOST: '127.0.0.1', CLOUDPI_DATA_DIR: fresh.dir };
    const first = await startService(loadConfig({ ...base, CLOUDPI_MASTER_KEYS: keyEntry(k1) }), {
      logger: memoryLogger('fatal').logger,
    });
    const t = await first.repositories.tenants.ensure('slack', 'T_ROT');
    await first.repositories.integrations.save(t.id, 'jira', {
      status: 'active',
      settings: {},
      credentials: { apiToken: 'jira-token' },
    });
    await first.close();

    const second = await startService(
      loadConfig({ ...base, CLOUDPI_MASTER_KEYS: `${keyEntry(k2)},${keyEntry(k1)}` }),
      {
        logger: memoryLogger('fatal').logger,
      },
    );
    try {
      const deadline = Date.now() + 20_000;
      while ((await countByKey(second.database.db)).k1 && Date.now() < deadline) await sleep(100);
      expect(await countByKey(second.database.db)).toEqual({ k2: 1 });
      const row = (await second.repositories.integrations.get(t.id, 'jira'))!;
      expect(second.repositories.integrations.credentials(row)).toEqual({ apiToken: 'jira-token' });
    } finally {
      await second.close();
    }
  });

  describe.skipIf(!TEST_DATABASE_URL)('PostgreSQL', () => {
    const running = useService('postgres', { CLOUDPI_MASTER_KEYS: `${keyEntry(k2)},${keyEntry(k1)}` });

    it('cloudpi keys rotate re-seals everything while the service keeps reading and writing', async () => {
      const { repositories, config } = running.service;
      // Secrets written by replicas that still had only k1.
      const oldRepos = createRepositories(running.service.database.db, new SecretBox([k1]));
      const tenants = [];
      for (let i = 0; i < 20; i++) {
        const t = await oldRepos.tenants.ensure('slack', `T_ONLINE_${i}`);
        await oldRepos.integrations.save(t.id, 'jira', {
          status: 'active',
          settings: {},
          credentials: { apiToken: `tok-${i}` },
        });
        tenants.push(t);
      }
      const env = {
        DATABASE_URL: (config.database as { url: string }).url,
        CLOUDPI_MASTER_KEYS: `${keyEntry(k2)},${keyEntry(k1)}`,
        LOG_LEVEL: 'error',
      };
      let out = '';
      const rotation = runCli(['keys', 'rotate'], { env, out: (s) => (out += s), err: (s) => (out += s) });
      // The service keeps saving (new secrets go out under k2) and reading during the run.
      for (const [i, t] of tenants.entries()) {
        if (i % 2 === 0) {
          await repositories.integrations.save(t.id, 'jira', {
            status: 'active',
            settings: {},
            credentials: { apiToken: `new-${i}` },
          });
        }
      }
      expect(await rotation).toBe(0);
      expect(out).toContain('Secrets per key now: k2=20');
      for (const [i, t] of tenants.entries()) {
        const row = (await repositories.integrations.get(t.id, 'jira'))!;
        expect(repositories.integrations.credentials(row)?.apiToken).toBe(
          i % 2 === 0 ? `new-${i}` : `tok-${i}`,
        );
      }
    });
  });
});
