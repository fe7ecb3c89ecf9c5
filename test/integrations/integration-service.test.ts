import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { azureDevOpsProvider } from '../../adapters/tickets/azure-devops/index.js';
import { jiraProvider } from '../../adapters/tickets/jira/index.js';
import { serviceNowProvider } from '../../adapters/tickets/servicenow/index.js';
import { sql } from '../../src/storage/orm.js';
import type { TicketProviderFactory } from '../../src/tickets/port.js';
import { startAzureDevOpsFake } from '../support/fakes/azure-devops-fake.js';
import { startJiraFake } from '../support/fakes/jira-fake.js';
import type { ProviderFake } from '../support/fakes/provider-fake.js';
import { startServiceNowFake } from '../support/fakes/servicenow-fake.js';
import { useService } from '../support/service.js';
import { waitFor } from '../support/wait.js';

const PROVIDERS: [TicketProviderFactory, () => Promise<ProviderFake>][] = [
  [jiraProvider, () => startJiraFake()],
  [azureDevOpsProvider, () => startAzureDevOpsFake()],
  [serviceNowProvider, () => startServiceNowFake()],
];

describe.each(PROVIDERS)('integration and ticket services with %s', (factory, startFake) => {
  const kind = factory.descriptor.kind;
  const name = factory.descriptor.displayName;
  const running = useService('pglite', {
    CLOUDPI_ALLOW_HTTP: 'true',
    CLOUDPI_ALLOW_PRIVATE_NETWORKS: 'true',
  });
  let fake: ProviderFake;
  let tenantId: string;
  const secretField = factory.descriptor.fields.find((f) => f.secret && f.required)!.key;
  const urlField = factory.descriptor.fields.find((f) => f.type === 'url')!.key;

  beforeAll(async () => {
    fake = await startFake();
    tenantId = (await running.service.repositories.tenants.ensure('slack', `T_${kind}`)).id;
  });
  afterAll(async () => {
    await fake?.close();
  });

  it('schedules the health check once, in the database', async () => {
    const schedules = await running.service.queue.boss.getSchedules('integrations.health-check');
    expect(schedules).toEqual([
      expect.objectContaining({ name: 'integrations.health-check', cron: '7 * * * *' }),
    ]);
  });

  it('starts Not Connected', async () => {
    const view = await running.service.integrations.status(tenantId, kind);
    expect(view).toMatchObject({ status: 'not_connected', badge: 'Not Connected', displayName: name });
  });

  it('validates fields before calling the provider, and stores nothing', async () => {
    const before = fake.requests.length;
    const result = await running.service.integrations.connect(
      tenantId,
      kind,
      { [urlField]: 'not a url' },
      'slack:U1',
    );
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.fieldErrors[urlField]).toContain('is not a valid URL');
      expect(result.fieldErrors[secretField]).toMatch(/is required/);
    }
    expect(fake.requests.length).toBe(before);
    expect((await running.service.integrations.status(tenantId, kind)).status).toBe('not_connected');
  });

  it('shows the provider error on the field it concerns, and stores nothing', async () => {
    const result = await running.service.integrations.connect(
      tenantId,
      kind,
      fake.wrongSecretValues,
      'slack:U1',
    );
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(['INVALID_CREDENTIALS', 'EXPIRED_CREDENTIALS']).toContain(result.code);
      expect(Object.values(result.fieldErrors).join(' ').length).toBeGreaterThan(20);
    }
    expect(await running.service.repositories.integrations.get(tenantId, kind)).toBeUndefined();
  });

  it('connects: verified live, stored sealed, audited without the secret', async () => {
    const result = await running.service.integrations.connect(tenantId, kind, fake.validValues, 'slack:U1');
    expect(result).toMatchObject({ ok: true, status: 'active', message: `${name} is connected and active` });
    const view = await running.service.integrations.status(tenantId, kind);
    expect(view).toMatchObject({ status: 'active', badge: 'Active', paused: false });
    expect(view.savedSecrets).toContain(secretField);
    expect(Object.values(view.values)).not.toContain(fake.validValues[secretField]);
    const [row] = await running.service.database.rows<{ settings: unknown; credentials_secret: string }>(
      sql`select settings, credentials_secret from integrations where tenant_id = ${tenantId} and kind = ${kind}`,
    );
    expect(JSON.stringify(row)).not.toContain(fake.validValues[secretField]!);
    const audit = await running.service.repositories.audit.recent(tenantId, 5, 'integration.connect');
    expect(audit).toHaveLength(1);
    expect(JSON.stringify(audit)).not.toContain(fake.validValues[secretField]!);
  });

  it('keeps the saved secret when the field is left blank (Edit, then Update)', async () => {
    const result = await running.service.integrations.connect(
      tenantId,
      kind,
      { ...fake.validValues, [secretField]: '' },
      'slack:U1',
    );
    expect(result.ok).toBe(true);
    expect((await running.service.repositories.audit.recent(tenantId, 5, 'integration.update')).length).toBe(
      1,
    );
  });

  it('loses nothing saved when an update fails', async () => {
    const failed = await running.service.integrations.connect(
      tenantId,
      kind,
      fake.wrongSecretValues,
      'slack:U1',
    );
    expect(failed.ok).toBe(false);
    const { provider } = await running.service.integrations.providerFor(tenantId, kind);
    expect((await provider.verify()).ok).toBe(true);
  });

  it('configures routing after checking it with the provider', async () => {
    const bad = await running.service.integrations.configure(
      tenantId,
      kind,
      // (ServiceNow's "project" is its assignment group.)
      {
        ...fake.routing,
        project: 'NOPE-PROJECT',
        ...(fake.routing.assignmentGroup ? { assignmentGroup: 'NOPE-PROJECT' } : {}),
      },
      'slack:U1',
    );
    expect(bad.ok).toBe(false);
    const good = await running.service.integrations.configure(tenantId, kind, fake.routing, 'slack:U1');
    expect(good.ok, JSON.stringify(good)).toBe(true);
    expect((await running.service.integrations.status(tenantId, kind)).routing).toEqual(fake.routing);
  });

  it('pauses (Connected) and activates (Active)', async () => {
    const paused = await running.service.integrations.setPaused(tenantId, kind, true, 'slack:U1');
    expect(paused).toMatchObject({ status: 'connected', badge: 'Connected', paused: true });
    await expect(running.service.integrations.providerFor(tenantId, kind)).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    const active = await running.service.integrations.setPaused(tenantId, kind, false, 'slack:U1');
    expect(active).toMatchObject({ status: 'active', badge: 'Active' });
  });

  it('creates exactly one ticket for many concurrent clicks, with key, link and status', async () => {
    const { repositories, tickets } = running.service;
    const rec = await repositories.recommendations.upsert(tenantId, {
      externalId: `rec-${kind}-1`,
      title: 'Stop idle instance i-0abc',
      severity: 'high',
      payload: { resource: 'i-0abc', account: '1234', cloud: 'aws', monthlySavings: 120.5, currency: 'USD' },
    });
    const before = fake.ticketCount();
    const requests = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        tickets.createForRecommendation(tenantId, rec.row.id, kind, `slack:U${i}`),
      ),
    );
    expect(new Set(requests.map((r) => r.ticket.id)).size).toBe(1);
    expect(requests.filter((r) => r.queued)).toHaveLength(1);
    const [ticket] = await waitFor(async () => {
      const rows = await repositories.recommendations.tickets(tenantId, rec.row.id);
      return rows[0]?.key ? rows : undefined;
    });
    expect(ticket).toMatchObject({ provider: kind, status: 'open' });
    expect(ticket!.url).toMatch(/^http/);
    expect(fake.ticketCount()).toBe(before + 1);
  });

  it('recovers a lost creation answer without a second ticket', async () => {
    const { repositories, tickets } = running.service;
    const rec = await repositories.recommendations.upsert(tenantId, {
      externalId: `rec-${kind}-lost`,
      title: 'Delete unattached volume',
      severity: 'medium',
      payload: {},
    });
    const before = fake.ticketCount();
    fake.loseNextCreateResponse();
    await tickets.createForRecommendation(tenantId, rec.row.id, kind, 'slack:U1');
    await waitFor(
      async () => (await repositories.recommendations.tickets(tenantId, rec.row.id))[0]?.key,
      40_000,
    );
    expect(fake.ticketCount()).toBe(before + 1);
  });

  it('keeps the status current', async () => {
    const { repositories, tickets } = running.service;
    const rec = await repositories.recommendations.findByExternalId(tenantId, `rec-${kind}-1`);
    const [ticket] = await repositories.recommendations.tickets(tenantId, rec!.id);
    fake.setStatus(ticket!.key!, 'in_progress');
    const refreshed = await tickets.refreshStatus(tenantId, ticket!.id);
    expect(refreshed.changed).toBe(true);
    expect(refreshed.ticket.status).toBe('in_progress');
    expect((await tickets.refreshStatus(tenantId, ticket!.id)).changed).toBe(false);
  });

  it('marks Error when stored credentials stop working, and recovers', async () => {
    const { integrations, repositories } = running.service;
    // The stored secret is replaced under the service (as when a PAT expires on the provider side).
    const row = (await repositories.integrations.get(tenantId, kind))!;
    await repositories.integrations.save(tenantId, kind, {
      status: 'active',
      settings: row.settings,
      credentials: {
        ...repositories.integrations.credentials(row),
        [secretField]: fake.wrongSecretValues[secretField]!,
      },
    });
    const changes = await integrations.healthCheck(tenantId);
    expect(changes).toEqual([expect.objectContaining({ kind, from: 'active', to: 'error' })]);
    const view = await integrations.status(tenantId, kind);
    expect(view).toMatchObject({ status: 'error', badge: 'Error' });
    expect(view.lastError?.length).toBeGreaterThan(20);
    expect(view.lastVerifiedAt).toBeInstanceOf(Date);
    await repositories.integrations.save(tenantId, kind, {
      status: 'error',
      settings: row.settings,
      credentials: repositories.integrations.credentials(row),
    });
    expect(await integrations.healthCheck(tenantId)).toEqual([
      expect.objectContaining({ kind, from: 'error', to: 'active' }),
    ]);
  });

  it('disconnects: the secret is deleted, the ticket history kept', async () => {
    const { integrations, repositories } = running.service;
    expect(await integrations.disconnect(tenantId, kind, 'slack:U1')).toBe(true);
    expect((await integrations.status(tenantId, kind)).status).toBe('not_connected');
    expect(await repositories.integrations.get(tenantId, kind)).toBeUndefined();
    const rec = await repositories.recommendations.findByExternalId(tenantId, `rec-${kind}-1`);
    expect((await repositories.recommendations.tickets(tenantId, rec!.id))[0]?.key).toBeTruthy();
    expect((await repositories.audit.recent(tenantId, 1))[0]?.action).toBe('integration.disconnect');
    expect(await integrations.disconnect(tenantId, kind, 'slack:U1')).toBe(false);
  });
});
