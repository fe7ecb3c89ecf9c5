import { statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliIo, runCli } from '../../src/cli.js';
import { parseMasterKeys } from '../../src/config.js';
import { SecretBox } from '../../src/crypto/secret-box.js';
import { openDatabase } from '../../src/storage/db.js';
import { createRepositories } from '../../src/storage/repositories/index.js';
import { describeEachDatabase, type FreshDatabase, freshDatabase } from '../support/databases.js';
import { keyEntry, masterKey } from '../support/keys.js';

interface Result {
  code: number;
  out: string;
  err: string;
}

async function cli(env: Record<string, string | undefined>, ...argv: string[]): Promise<Result> {
  let out = '';
  let err = '';
  const io: CliIo = { env, out: (t) => (out += t), err: (t) => (err += t) };
  const code = await runCli(argv, io);
  return { code, out, err };
}

describe('cloudpi --help', () => {
  it('documents every command', async () => {
    const top = await cli({}, '--help');
    expect(top.code).toBe(0);
    for (const command of [
      'serve',
      'migrate',
      'doctor',
      'tenant',
      'apikey',
      'admin',
      'keys',
      'recommendations',
    ]) {
      expect(top.out).toContain(command);
    }
    for (const [command, words] of [
      ['tenant', ['list', 'create']],
      ['apikey', ['create', 'revoke', 'list']],
      ['admin', ['grant', 'revoke']],
      ['keys', ['generate', 'rotate', 'status']],
      ['recommendations', ['push']],
    ] as const) {
      const help = await cli({}, command, '--help');
      expect(help.code, command).toBe(0);
      for (const word of words) expect(help.out, `${command} ${word}`).toContain(word);
    }
    const create = await cli({}, 'apikey', 'create', '--help');
    expect(create.out).toContain('--tenant <ref>');
    expect(create.out).toContain('--json');
  });

  it('says what is wrong with a command line', async () => {
    const missing = await cli({}, 'apikey', 'create');
    expect(missing.code).toBe(1);
    expect(missing.err).toContain("required option '--tenant <ref>' not specified");
    const unknown = await cli({}, 'tenants');
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain("unknown command 'tenants'");
  });
});

describeEachDatabase('cloudpi commands', (kind) => {
  let fresh: FreshDatabase;
  let env: Record<string, string>;
  const k1 = masterKey('k1');

  beforeAll(async () => {
    fresh = await freshDatabase(kind);
    env = {
      CLOUDPI_DATA_DIR: fresh.dir,
      LOG_LEVEL: 'error',
      ...(fresh.target.kind === 'postgres'
        ? { DATABASE_URL: fresh.target.url, CLOUDPI_MASTER_KEYS: keyEntry(k1) }
        : {}),
    };
  });
  afterAll(async () => {
    await fresh?.drop();
  });

  /** Opens the same database the CLI uses, after the CLI has closed it. */
  async function withRepos<T>(
    keys: string,
    fn: (repos: ReturnType<typeof createRepositories>) => Promise<T>,
  ) {
    const handle = await openDatabase(fresh.target);
    try {
      return await fn(createRepositories(handle.db, new SecretBox(parseMasterKeys(keys))));
    } finally {
      await handle.close();
    }
  }

  it('migrates', async () => {
    const result = await cli(env, 'migrate');
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    expect(result.out).toContain('Migrations applied');
  });

  it('creates and lists tenants, idempotently', async () => {
    const created = await cli(env, 'tenant', 'create', 'slack:T0CLI', '--name', 'Acme');
    expect(created.code).toBe(0);
    expect(created.out).toMatch(/^Created tenant slack:T0CLI \(/);
    if (kind === 'pglite') {
      // Embedded mode without keys generated one, readable by the owner only.
      expect(statSync(path.join(fresh.dir, 'master.key')).mode & 0o777).toBe(0o600);
    }
    const again = await cli(env, 'tenant', 'create', 'slack:T0CLI');
    expect(again.out).toMatch(/^Tenant already exists slack:T0CLI/);
    await cli(env, 'tenant', 'create', 'teams:6d0c2f6e-1b1a-4c3c-9d59-2a1f1d7c9e10');
    await cli(env, 'tenant', 'create', 'email:finance-team');
    const list = await cli(env, 'tenant', 'list', '--json');
    const rows = JSON.parse(list.out) as { ref: string; name: string }[];
    expect(rows.map((r) => r.ref)).toEqual([
      'email:finance-team',
      'slack:T0CLI',
      'teams:6d0c2f6e-1b1a-4c3c-9d59-2a1f1d7c9e10',
    ]);
    const bad = await cli(env, 'tenant', 'create', 'discord:abc');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('use slack:<team id>, teams:<tenant id> or email:<name>');
  });

  it('creates an API key shown once, stored hashed, and revokes it', async () => {
    const created = await cli(
      env,
      'apikey',
      'create',
      '--tenant',
      'slack:T0CLI',
      '--name',
      'ingest',
      '--json',
    );
    expect(created.code).toBe(0);
    const { key, prefix } = JSON.parse(created.out) as { key: string; prefix: string };
    expect(key).toMatch(/^cpk_/);
    const keys = kind === 'postgres' ? keyEntry(k1) : undefined;
    const ring =
      keys ?? (await import('node:fs')).readFileSync(path.join(fresh.dir, 'master.key'), 'utf8').trim();
    expect(await withRepos(ring, async (repos) => (await repos.apiKeys.authenticate(key))?.prefix)).toBe(
      prefix,
    );
    const listed = await cli(env, 'apikey', 'list', '--tenant', 'slack:T0CLI');
    expect(listed.out).toContain(`${prefix}\t`);
    expect(listed.out).not.toContain(key);

    const revoked = await cli(env, 'apikey', 'revoke', prefix, '--tenant', 'slack:T0CLI');
    expect(revoked.code).toBe(0);
    expect(await withRepos(ring, (repos) => repos.apiKeys.authenticate(key))).toBeUndefined();
    const twice = await cli(env, 'apikey', 'revoke', prefix, '--tenant', 'slack:T0CLI');
    expect(twice.code).toBe(1);
    expect(twice.err).toContain(`No active API key ${prefix} in tenant slack:T0CLI.`);

    const human = await cli(env, 'apikey', 'create', '--tenant', 'slack:T0CLI');
    expect(human.out).toContain('It is shown only now');
    const nobody = await cli(env, 'apikey', 'create', '--tenant', 'slack:T0NOPE');
    expect(nobody.code).toBe(1);
    expect(nobody.err).toContain(
      'No tenant slack:T0NOPE. Create it with: cloudpi tenant create slack:T0NOPE',
    );
  });

  it('grants and revokes admin rights, audited', async () => {
    const granted = await cli(env, 'admin', 'grant', 'slack:U0ADMIN', '--tenant', 'slack:T0CLI');
    expect(granted.out).toBe('slack:U0ADMIN is now an admin of slack:T0CLI.\n');
    const revoked = await cli(env, 'admin', 'revoke', 'slack:U0ADMIN', '--tenant', 'slack:T0CLI');
    expect(revoked.code).toBe(0);
    const again = await cli(env, 'admin', 'revoke', 'slack:U0ADMIN', '--tenant', 'slack:T0CLI');
    expect(again.code).toBe(1);
    expect(again.err).toContain('slack:U0ADMIN is not an admin of slack:T0CLI.');
    const bad = await cli(env, 'admin', 'grant', 'U0ADMIN', '--tenant', 'slack:T0CLI');
    expect(bad.err).toContain('is not slack:<user id> or teams:<Entra object id>');
  });

  it('generates keys and rotates every stored secret to the newest one', async () => {
    const generated = await cli(env, 'keys', 'generate', '--id', 'k2');
    const entry = generated.out.trim();
    expect(parseMasterKeys(entry)[0]?.id).toBe('k2');

    const oldRing = kind === 'postgres' ? keyEntry(k1) : undefined;
    const baseEnv = oldRing ? env : { ...env };
    // Store a secret with the current keyring.
    const current =
      oldRing ?? (await import('node:fs')).readFileSync(path.join(fresh.dir, 'master.key'), 'utf8').trim();
    const tenantId = await withRepos(current, async (repos) => {
      const t = await repos.tenants.requireByRef('slack:T0CLI');
      await repos.integrations.save(t.id, 'jira', {
        status: 'active',
        settings: {},
        credentials: { apiToken: 'tok' },
      });
      return t.id;
    });
    const rotatedEnv = { ...baseEnv, CLOUDPI_MASTER_KEYS: `${entry},${current}` };
    const status = await cli(rotatedEnv, 'keys', 'status');
    expect(status.out).toContain('Current key: k2');
    const rotated = await cli(rotatedEnv, 'keys', 'rotate');
    expect(rotated.code).toBe(0);
    expect(rotated.out).toContain('Re-encrypted 1 secret(s) with key "k2"');
    expect(rotated.out).toContain('Secrets per key now: k2=1');
    const token = await withRepos(entry, async (repos) => {
      const row = (await repos.integrations.get(tenantId, 'jira'))!;
      return repos.integrations.credentials(row)?.apiToken;
    });
    expect(token).toBe('tok');
  });

  it('doctor checks configuration, database and queue, and says what Slack and Teams need', async () => {
    const result = await cli(env, 'doctor');
    expect(result.code).toBe(0);
    expect(result.out).toContain('[ok]   Configuration: valid');
    expect(result.out).toMatch(/\[ok\] {3}Database: reachable \(PostgreSQL \d+/);
    expect(result.out).toMatch(/\[ok\] {3}Migrations: (\d+)\/\1 applied/);
    expect(result.out).toMatch(/\[ok\] {3}Job queue: pg-boss schema version \d+ installed/);
    expect(result.out).toContain(
      '[warn] Slack: not configured. One workspace needs SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET',
    );
    expect(result.out).toContain(
      '[warn] Microsoft Teams: local mode: /api/messages is unauthenticated and answers this machine only. For Teams, set MICROSOFT_APP_ID, MICROSOFT_APP_PASSWORD',
    );
    const slack = await cli({ ...env, SLACK_BOT_TOKEN: 'xoxb-1', SLACK_SIGNING_SECRET: 's' }, 'doctor');
    expect(slack.out).toContain('[ok]   Slack: single-workspace mode');
  });
});

describe('cloudpi doctor failures', () => {
  it('fails on a bad variable and names it', async () => {
    const result = await cli({ PORT: 'http', CLOUDPI_DATA_DIR: '/tmp/cloudpi-doctor-bad' }, 'doctor');
    expect(result.code).toBe(1);
    expect(result.out).toContain('[FAIL] Configuration: Invalid configuration:');
    expect(result.out).toContain('PORT: expected a whole number from 0 to 65535, got "http"');
  });

  it('fails when PostgreSQL cannot be reached', async () => {
    const result = await cli(
      { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', CLOUDPI_MASTER_KEYS: keyEntry(masterKey('k')) },
      'doctor',
    );
    expect(result.code).toBe(1);
    expect(result.out).toContain(
      '[FAIL] Database: cannot reach PostgreSQL at DATABASE_URL: connect ECONNREFUSED 127.0.0.1:1\n',
    );
  });
});
