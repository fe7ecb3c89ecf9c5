import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { expect, it } from 'vitest';
import { countByKey, rotateSecrets } from '../../src/crypto/rotate.js';
import { SecretBox } from '../../src/crypto/secret-box.js';
import { sql } from '../../src/storage/orm.js';
import { createRepositories } from '../../src/storage/repositories/index.js';
import { describeEachDatabase, PG_BIN } from '../support/databases.js';
import { masterKey } from '../support/keys.js';
import { useStore } from '../support/store.js';

const PLAINTEXTS = {
  pat: 'PLAINTEXT-PAT-7f3a9c',
  smtpPassword: 'PLAINTEXT-SMTP-PASSWORD-4b1d',
  botToken: 'xoxb-PLAINTEXT-BOT-TOKEN-91ee',
  refreshToken: 'PLAINTEXT-REFRESH-TOKEN-0c55',
};

describeEachDatabase('secrets at rest', (kind) => {
  const store = useStore(kind);
  const k1 = masterKey('k1');
  const k2 = masterKey('k2');

  async function seed(box: SecretBox, suffix: string) {
    const repos = createRepositories(store.handle.db, box);
    const t = await repos.tenants.ensure('slack', `T_SECRETS_${suffix}`);
    await repos.integrations.save(t.id, 'azure-devops', {
      status: 'active',
      settings: { organizationUrl: 'https://dev.azure.com/acme' },
      credentials: { pat: PLAINTEXTS.pat },
    });
    await repos.integrations.save(t.id, 'smtp', {
      status: 'active',
      settings: { host: 'smtp.example.com', port: 587 },
      credentials: { password: PLAINTEXTS.smtpPassword },
    });
    await repos.installations.save(t.id, 'slack', `T_SECRETS_${suffix}`, {
      bot: { token: PLAINTEXTS.botToken },
    });
    await repos.identities.link(t.id, 'slack', 'U1', {
      idpSubject: 'sub',
      email: null,
      groups: [],
      grant: { refresh_token: PLAINTEXTS.refreshToken },
      loginValidUntil: new Date(),
    });
    const webhook = await repos.webhooks.issue(t.id, 'jira', 'test');
    webhookSecrets.set(t.id, webhook.secret);
    return t;
  }
  /** Webhook secrets are generated, not chosen: kept per tenant for the checks. */
  const webhookSecrets = new Map<string, string>();

  async function readAll(box: SecretBox, tenantId: string, suffix: string) {
    const repos = createRepositories(store.handle.db, box);
    const dev = (await repos.integrations.get(tenantId, 'azure-devops'))!;
    const smtp = (await repos.integrations.get(tenantId, 'smtp'))!;
    const identity = (await repos.identities.find(tenantId, 'slack', 'U1'))!;
    return {
      pat: repos.integrations.credentials(dev)?.pat,
      smtpPassword: repos.integrations.credentials(smtp)?.password,
      botToken: (
        (await repos.installations.find(tenantId, 'slack', `T_SECRETS_${suffix}`)) as {
          bot: { token: string };
        }
      ).bot.token,
      refreshToken: repos.identities.grant(identity)?.refresh_token,
      webhook:
        (await repos.webhooks.findByPublicId('jira', (await repos.webhooks.get(tenantId, 'jira'))!.publicId))
          ?.secret === webhookSecrets.get(tenantId),
    };
  }

  it('rotation re-seals every secret with the newest key and leaves all of them readable', async () => {
    const oldBox = new SecretBox([k1]);
    const a = await seed(oldBox, 'A');
    const b = await seed(oldBox, 'B');
    expect((await countByKey(store.handle.db)).k1).toBe(10);

    const ring = new SecretBox([k2, k1]);
    // Written while rotation is pending: already on k2, must stay readable and untouched.
    const c = await seed(ring, 'C');
    const report = await rotateSecrets(store.handle.db, ring, 3);
    expect(report.rotated).toBe(10);
    expect(report.byKey).toEqual({ k2: 15 });

    // After rotation the old key can be dropped from the keyring.
    const onlyNew = new SecretBox([k2]);
    for (const [tenant, suffix] of [
      [a, 'A'],
      [b, 'B'],
      [c, 'C'],
    ] as const) {
      expect(await readAll(onlyNew, tenant.id, suffix)).toEqual({ ...PLAINTEXTS, webhook: true });
    }
    const again = await rotateSecrets(store.handle.db, ring);
    expect(again.rotated).toBe(0);
  });

  it('never overwrites a value saved while rotation runs', async () => {
    const oldBox = new SecretBox([k1]);
    const t = await seed(oldBox, 'RACE');
    const ring = new SecretBox([k2, k1]);
    const repos = createRepositories(store.handle.db, ring);
    // Interleave: a save lands between rotation's read and write of the same row.
    const rotation = rotateSecrets(store.handle.db, ring, 1);
    await repos.integrations.save(t.id, 'azure-devops', {
      status: 'active',
      settings: {},
      credentials: { pat: 'NEW-PAT-SAVED-DURING-ROTATION' },
    });
    await rotation;
    const row = (await repos.integrations.get(t.id, 'azure-devops'))!;
    expect(repos.integrations.credentials(row)).toEqual({ pat: 'NEW-PAT-SAVED-DURING-ROTATION' });
  });

  it('leaves no plaintext secret in a full dump of the database', async () => {
    const box = new SecretBox([k1]);
    const dumped = await seed(box, 'DUMP');
    let dump: Buffer;
    if (kind === 'pglite') {
      // The raw data directory: heap pages, WAL and all.
      await store.handle.pglite!.query('checkpoint');
      const blob = await store.handle.pglite!.dumpDataDir('none');
      dump = Buffer.from(await blob.arrayBuffer());
    } else {
      const url = (store.fresh.target as { url: string }).url;
      if (existsSync(`${PG_BIN}/pg_dump`)) {
        dump = execFileSync(`${PG_BIN}/pg_dump`, ['--no-owner', url], { maxBuffer: 64 * 1024 * 1024 });
      } else {
        const rows = await store.handle.rows<{ t: string }>(
          sql`select string_agg(x::text, E'\n') as t from (select row_to_json(r) x from integrations r union all select row_to_json(r) from installations r union all select row_to_json(r) from identities r union all select row_to_json(r) from audit_log r union all select row_to_json(r) from webhook_endpoints r) s`,
        );
        dump = Buffer.from(rows[0]?.t ?? '');
      }
    }
    expect(dump.length).toBeGreaterThan(1000);
    // The dump holds the non-secret settings in clear, so the search itself works...
    expect(dump.includes('smtp.example.com')).toBe(true);
    // ...and none of the secrets.
    for (const secret of [...Object.values(PLAINTEXTS), webhookSecrets.get(dumped.id)!])
      expect(dump.includes(secret), secret).toBe(false);
  });
});
