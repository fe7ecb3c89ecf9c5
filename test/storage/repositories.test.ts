import { expect, it } from 'vitest';
import { runMigrations } from '../../src/storage/migrate.js';
import { sql } from '../../src/storage/orm.js';
import { SCHEMA_TABLES } from '../../src/storage/schema.js';
import { describeEachDatabase } from '../support/databases.js';
import { useStore } from '../support/store.js';

describeEachDatabase('repositories', (kind) => {
  const store = useStore(kind);

  it('creates every table of the data model, each row scoped by tenant', async () => {
    const columns = await store.handle.rows<{ table_name: string; column_name: string; is_nullable: string }>(
      sql`select table_name, column_name, is_nullable from information_schema.columns where table_schema = 'public'`,
    );
    const tables = new Set(columns.map((c) => c.table_name));
    for (const table of SCHEMA_TABLES) expect(tables, table).toContain(table);
    for (const table of SCHEMA_TABLES.filter((t) => t !== 'tenants')) {
      const tenantId = columns.find((c) => c.table_name === table && c.column_name === 'tenant_id');
      expect(tenantId?.is_nullable, `${table}.tenant_id`).toBe('NO');
    }
  });

  it('applies migrations idempotently', async () => {
    await runMigrations(store.handle);
    const [row] = await store.handle.rows<{ n: number }>(
      sql`select count(*)::int as n from drizzle.__drizzle_migrations`,
    );
    expect(row?.n).toBeGreaterThan(0);
  });

  it('creates tenants once per platform and external id', async () => {
    const a = await store.repos.tenants.ensure('slack', 'T_ACME', 'Acme');
    const again = await store.repos.tenants.ensure('slack', 'T_ACME');
    expect(again.id).toBe(a.id);
    expect((await store.repos.tenants.findByRef('slack:T_ACME'))?.name).toBe('Acme');
    const teams = await store.repos.tenants.ensure('teams', 'T_ACME');
    expect(teams.id).not.toBe(a.id);
    await expect(store.repos.tenants.requireByRef('slack:T_NOPE')).rejects.toThrow(
      'Create it with: cloudpi tenant create slack:T_NOPE',
    );
    await expect(store.repos.tenants.findByRef('discord:x')).rejects.toThrow('is not a tenant reference');
  });

  it('keeps integrations apart per tenant, with credentials sealed', async () => {
    const a = await store.repos.tenants.ensure('slack', 'T_INT_A');
    const b = await store.repos.tenants.ensure('slack', 'T_INT_B');
    await store.repos.integrations.save(a.id, 'azure-devops', {
      status: 'active',
      settings: { organizationUrl: 'https://dev.azure.com/acme' },
      credentials: { pat: 'pat-of-tenant-a' },
    });
    expect(await store.repos.integrations.get(b.id, 'azure-devops')).toBeUndefined();
    expect(await store.repos.integrations.list(b.id)).toEqual([]);
    const row = (await store.repos.integrations.get(a.id, 'azure-devops'))!;
    expect(row.credentialsSecret).not.toContain('pat-of-tenant-a');
    expect(store.repos.integrations.credentials(row)).toEqual({ pat: 'pat-of-tenant-a' });

    // Saving without credentials keeps the stored ones ("leave blank to keep").
    await store.repos.integrations.save(a.id, 'azure-devops', {
      status: 'error',
      settings: { organizationUrl: 'https://dev.azure.com/acme2' },
      lastError: 'Organization not found',
    });
    const updated = (await store.repos.integrations.get(a.id, 'azure-devops'))!;
    expect(updated.id).toBe(row.id);
    expect(updated.settings).toEqual({ organizationUrl: 'https://dev.azure.com/acme2' });
    expect(updated.lastError).toBe('Organization not found');
    expect(store.repos.integrations.credentials(updated)).toEqual({ pat: 'pat-of-tenant-a' });

    // A sealed value copied into another tenant's row does not decrypt there.
    const stolen = await store.repos.integrations.save(b.id, 'azure-devops', {
      status: 'active',
      settings: {},
    });
    await store.handle.db.execute(
      sql`update integrations set credentials_secret = ${row.credentialsSecret} where id = ${stolen.id}`,
    );
    const copy = (await store.repos.integrations.get(b.id, 'azure-devops'))!;
    expect(() => store.repos.integrations.credentials(copy)).toThrow(/integrity check/);

    expect(await store.repos.integrations.remove(a.id, 'azure-devops')).toBe(true);
    expect(await store.repos.integrations.remove(a.id, 'azure-devops')).toBe(false);
  });

  it('stores installations sealed and deletes them per tenant', async () => {
    const t = await store.repos.tenants.ensure('slack', 'T_INST');
    const installation = {
      team: { id: 'T_INST' },
      bot: { token: 'xoxb-installation-token', userId: 'UBOT' },
    };
    await store.repos.installations.save(t.id, 'slack', 'T_INST', installation, 'UBOT');
    expect(await store.repos.installations.find(t.id, 'slack', 'T_INST')).toEqual(installation);
    const other = await store.repos.tenants.ensure('slack', 'T_INST_OTHER');
    expect(await store.repos.installations.find(other.id, 'slack', 'T_INST')).toBeUndefined();
    expect(await store.repos.installations.remove(other.id, 'slack', 'T_INST')).toBe(false);
    expect(await store.repos.installations.remove(t.id, 'slack', 'T_INST')).toBe(true);
    expect(await store.repos.installations.find(t.id, 'slack', 'T_INST')).toBeUndefined();
  });

  it('grants and revokes roles without duplicates', async () => {
    const t = await store.repos.tenants.ensure('teams', 'tenant-roles');
    await store.repos.identities.grantRole(t.id, 'teams', 'oid-1', 'admin');
    await store.repos.identities.grantRole(t.id, 'teams', 'oid-1', 'admin');
    expect((await store.repos.identities.find(t.id, 'teams', 'oid-1'))?.roles).toEqual(['admin']);
    expect(await store.repos.identities.hasRole(t.id, 'teams', 'oid-1', 'admin')).toBe(true);
    const other = await store.repos.tenants.ensure('teams', 'tenant-roles-2');
    expect(await store.repos.identities.hasRole(other.id, 'teams', 'oid-1', 'admin')).toBe(false);
    expect(await store.repos.identities.revokeRole(t.id, 'teams', 'oid-1', 'admin')).toBe(true);
    expect(await store.repos.identities.revokeRole(t.id, 'teams', 'oid-1', 'admin')).toBe(false);
    expect(await store.repos.identities.hasRole(t.id, 'teams', 'oid-1', 'admin')).toBe(false);
  });

  it('links an identity with its grant sealed', async () => {
    const t = await store.repos.tenants.ensure('slack', 'T_LINK');
    await store.repos.identities.link(t.id, 'slack', 'U1', {
      idpSubject: 'sub-1',
      email: 'ada@example.com',
      groups: ['cloudpi-admins'],
      grant: { refresh_token: 'refresh-secret-value' },
      loginValidUntil: new Date(Date.now() + 3_600_000),
    });
    const row = (await store.repos.identities.find(t.id, 'slack', 'U1'))!;
    expect(row.grantSecret).not.toContain('refresh-secret-value');
    expect(store.repos.identities.grant(row)).toEqual({ refresh_token: 'refresh-secret-value' });
    expect(row.groups).toEqual(['cloudpi-admins']);
  });

  it('hashes API keys, authenticates them and honours revocation', async () => {
    const t = await store.repos.tenants.ensure('email', 'keys-org');
    const { id, key, prefix } = await store.repos.apiKeys.create(t.id, 'ci');
    expect(key).toMatch(/^cpk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    const [stored] = await store.handle.rows<{ hash: string }>(
      sql`select hash from api_keys where id = ${id}`,
    );
    expect(stored?.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(stored?.hash).not.toContain(key.slice(-20));
    expect((await store.repos.apiKeys.authenticate(key))?.tenantId).toBe(t.id);
    expect(await store.repos.apiKeys.authenticate(`${key.slice(0, -1)}x`)).toBeUndefined();
    expect(await store.repos.apiKeys.authenticate('not-a-key')).toBeUndefined();
    const other = await store.repos.tenants.ensure('email', 'keys-org-2');
    expect(await store.repos.apiKeys.revoke(other.id, prefix)).toBe(false);
    expect(await store.repos.apiKeys.revoke(t.id, prefix)).toBe(true);
    expect(await store.repos.apiKeys.authenticate(key)).toBeUndefined();
    expect((await store.repos.apiKeys.list(t.id))[0]?.revokedAt).toBeInstanceOf(Date);
  });

  it('records audit entries without secrets, newest first, per tenant', async () => {
    const t = await store.repos.tenants.ensure('slack', 'T_AUDIT');
    await store.repos.audit.record(t.id, {
      actor: 'slack:U1',
      action: 'integration.connect',
      target: 'jira',
      before: null,
      after: { siteUrl: 'https://acme.atlassian.net', apiToken: 'tok-123', nested: { password: 'pw' } },
    });
    await store.repos.audit.record(t.id, {
      actor: 'slack:U1',
      action: 'integration.disconnect',
      target: 'jira',
    });
    const entries = await store.repos.audit.recent(t.id);
    expect(entries.map((e) => e.action)).toEqual(['integration.disconnect', 'integration.connect']);
    expect(entries[1]?.after).toEqual({
      siteUrl: 'https://acme.atlassian.net',
      apiToken: '[set]',
      nested: { password: '[set]' },
    });
    expect(JSON.stringify(entries)).not.toContain('tok-123');
    const other = await store.repos.tenants.ensure('slack', 'T_AUDIT_2');
    expect(await store.repos.audit.recent(other.id)).toEqual([]);
  });

  it('keeps one recommendation per external id, one card per channel, one ticket per provider', async () => {
    const t = await store.repos.tenants.ensure('slack', 'T_PIPE');
    const first = await store.repos.recommendations.upsert(t.id, {
      externalId: 'rec-1',
      title: 'Idle VM',
      severity: 'high',
      payload: { savings: 120 },
    });
    const resend = await store.repos.recommendations.upsert(t.id, {
      externalId: 'rec-1',
      title: 'Idle VM (updated)',
      payload: { savings: 150 },
    });
    expect(first.created).toBe(true);
    expect(resend.created).toBe(false);
    expect(resend.row.id).toBe(first.row.id);
    expect((await store.repos.recommendations.findByExternalId(t.id, 'rec-1'))?.title).toBe(
      'Idle VM (updated)',
    );
    const other = await store.repos.tenants.ensure('slack', 'T_PIPE_2');
    expect(await store.repos.recommendations.findByExternalId(other.id, 'rec-1')).toBeUndefined();

    const c1 = await store.repos.recommendations.ensureCard(t.id, first.row.id, 'slack', 'C1');
    const c1again = await store.repos.recommendations.ensureCard(t.id, first.row.id, 'slack', 'C1');
    expect(c1.created).toBe(true);
    expect(c1again).toEqual({ card: c1.card, created: false });
    await store.repos.recommendations.markCardPosted(t.id, c1.card.id, '1700000000.000100');
    expect((await store.repos.recommendations.cards(t.id, first.row.id))[0]?.messageRef).toBe(
      '1700000000.000100',
    );

    const claims = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        store.repos.recommendations.claimTicket(
          t.id,
          first.row.id,
          'jira',
          `cloudpi-${first.row.id}-jira`,
          `slack:U${i}`,
        ),
      ),
    );
    expect(claims.filter((c) => c.claimed)).toHaveLength(1);
    expect(new Set(claims.map((c) => c.ticket.id)).size).toBe(1);
    await store.repos.recommendations.completeTicket(t.id, claims[0]!.ticket.id, {
      key: 'OPS-1',
      url: 'https://acme.atlassian.net/browse/OPS-1',
      status: 'open',
      providerStatus: 'To Do',
    });
    const [ticket] = await store.repos.recommendations.tickets(t.id, first.row.id);
    expect(ticket).toMatchObject({ key: 'OPS-1', status: 'open', providerStatus: 'To Do' });
  });

  it('lists and removes routes per tenant and channel', async () => {
    const t = await store.repos.tenants.ensure('slack', 'T_ROUTES');
    const route = await store.repos.routes.create(t.id, {
      name: 'finops',
      filters: { severity: ['high'] },
      provider: 'jira',
      target: { project: 'OPS' },
      platform: 'slack',
      channelId: 'C1',
      emailRecipients: ['ops@example.com'],
    });
    await store.repos.routes.create(t.id, { platform: 'slack', channelId: 'C2' });
    expect((await store.repos.routes.list(t.id, { channelId: 'C1' })).map((r) => r.id)).toEqual([route.id]);
    expect(await store.repos.routes.list(t.id)).toHaveLength(2);
    const other = await store.repos.tenants.ensure('slack', 'T_ROUTES_2');
    expect(await store.repos.routes.remove(other.id, route.id)).toBe(false);
    expect(await store.repos.routes.remove(t.id, route.id)).toBe(true);
  });
});
