/**
 * Provider status webhooks over HTTP, on PGlite and PostgreSQL: each provider's own delivery
 * (sent by its fake, signed or authenticated as the real service does) leads to a status read
 * from the provider; forged, tampered, replayed-elsewhere and misdirected deliveries change
 * nothing; a burst for one ticket collapses into one read.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Service } from '../../src/main.js';
import { sql } from '../../src/storage/orm.js';
import type { TicketProviderKind } from '../../src/tickets/port.js';
import { refreshTicketStatusJob } from '../../src/tickets/webhooks.js';
import { describeEachDatabase } from '../support/databases.js';
import { type AzureDevOpsFake, startAzureDevOpsFake } from '../support/fakes/azure-devops-fake.js';
import { type JiraFake, startJiraFake } from '../support/fakes/jira-fake.js';
import type { ProviderFake } from '../support/fakes/provider-fake.js';
import { type ServiceNowFake, startServiceNowFake } from '../support/fakes/servicenow-fake.js';
import { useService } from '../support/service.js';
import { waitFor } from '../support/wait.js';

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const sign = (secret: string, body: string) =>
  `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

describeEachDatabase('ticket status webhooks', (kind) => {
  const running = useService(
    kind,
    {
      CLOUDPI_ALLOW_HTTP: 'true',
      CLOUDPI_ALLOW_PRIVATE_NETWORKS: 'true',
      CLOUDPI_TICKET_POLL_CRON: '0 0 1 1 *',
    },
    { webhookDebounceSeconds: 1 },
  );
  let jira: JiraFake;
  let ado: AzureDevOpsFake;
  let snow: ServiceNowFake;
  let service: Service;
  let tenantId: string;
  let otherTenantId: string;
  const keys: Partial<Record<TicketProviderKind, string>> = {};
  const fakes = (): Record<TicketProviderKind, ProviderFake> => ({
    jira,
    'azure-devops': ado,
    servicenow: snow,
  });

  async function ticketOf(tenant: string, provider: TicketProviderKind, externalId: string) {
    const rec = await service.repositories.recommendations.findByExternalId(tenant, externalId);
    const rows = await service.repositories.recommendations.tickets(tenant, rec!.id);
    return rows.find((t) => t.provider === provider);
  }

  async function createTicket(tenant: string, provider: TicketProviderKind, externalId: string) {
    await service.recommendations.ingestRecommendations(tenant, {
      id: externalId,
      title: `Delete idle volume ${externalId}`,
      cloud: 'aws',
      severity: 'medium',
    });
    const rec = await service.repositories.recommendations.findByExternalId(tenant, externalId);
    await service.tickets.createForRecommendation(tenant, rec!.id, provider, 'slack:U0TEST');
    return waitFor(async () => {
      const t = await ticketOf(tenant, provider, externalId);
      return t?.key ? t : undefined;
    });
  }

  beforeAll(async () => {
    [jira, ado, snow] = await Promise.all([startJiraFake(), startAzureDevOpsFake(), startServiceNowFake()]);
    service = running.service;
    tenantId = (await service.repositories.tenants.ensure('slack', 'T0HOOKS')).id;
    otherTenantId = (await service.repositories.tenants.ensure('slack', 'T0OTHER')).id;
    for (const [provider, fake] of Object.entries(fakes()) as [TicketProviderKind, ProviderFake][]) {
      for (const tenant of [tenantId, otherTenantId]) {
        expect((await service.integrations.connect(tenant, provider, fake.validValues, 'test')).ok).toBe(
          true,
        );
        expect((await service.integrations.configure(tenant, provider, fake.routing, 'test')).ok).toBe(true);
      }
      keys[provider] = (await createTicket(tenantId, provider, `rec-${provider}`)).key!;
    }
  });
  afterAll(async () => {
    await Promise.all([jira?.close(), ado?.close(), snow?.close()]);
  });

  it.each([
    ['jira', 'Done'],
    ['azure-devops', 'Closed'],
    ['servicenow', 'Resolved'],
  ] as const)('%s: its own delivery brings the new status (%s) from the provider', async (provider, name) => {
    const setup = await service.webhooks.issue(tenantId, provider, 'slack:U0ADMIN');
    expect(setup.url).toMatch(new RegExp(`/webhooks/${provider}/[A-Za-z0-9_-]{22}$`));
    expect(setup.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(setup.instructions.join('\n')).toContain(setup.url);
    const fake = fakes()[provider];
    fake.addWebhook(
      provider === 'jira'
        ? { url: setup.url, secret: setup.secret! }
        : { url: setup.url, username: 'cloudpi', password: setup.secret! },
    );
    const before = fake.webhookDeliveries.length;
    fake.setStatus(keys[provider]!, 'done');
    await fake.webhooksSettled();
    const deliveries = fake.webhookDeliveries.slice(before);
    expect(deliveries.map((d) => d.status)).toEqual([202]);
    const ticket = await waitFor(async () => {
      const t = await ticketOf(tenantId, provider, `rec-${provider}`);
      return t && ['done', 'closed'].includes(t.status) ? t : undefined;
    });
    expect(ticket.providerStatus).toBe(name);
    // The secret is sealed at rest, and shown again nowhere.
    const shown = await service.webhooks.show(tenantId, provider);
    expect(shown?.secret).toBeUndefined();
    expect(shown?.lastReceivedAt).toBeInstanceOf(Date);
    const stored = await service.database.db.execute(
      sql`select signing_secret from webhook_endpoints where provider = ${provider}`,
    );
    expect(JSON.stringify(stored)).not.toContain(setup.secret!);
  });

  it('refuses forged, tampered and misdirected Jira deliveries, and changes nothing', async () => {
    const { url, secret } = await service.webhooks.issue(tenantId, 'jira', 'slack:U0ADMIN');
    const key = keys.jira!;
    jira.setStatus(key, 'in_progress');
    const body = JSON.stringify({ webhookEvent: 'jira:issue_updated', issue: { key } });
    const post = (headers: Record<string, string>, payload = body, to = url) =>
      fetch(to, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: payload,
      });
    const reads = () =>
      jira.requests.filter((r) => r.method === 'GET' && r.path.includes(`/issue/${key}`)).length;
    const readsBefore = reads();

    expect((await post({})).status).toBe(401); // no signature
    expect((await post({ 'x-hub-signature': sign('not-the-secret', body) })).status).toBe(401);
    expect((await post({ 'x-hub-signature': sign(secret!, body) }, `${body} `)).status).toBe(401); // tampered
    expect((await post({ 'x-hub-signature': 'sha1=abc' })).status).toBe(401);
    // The right signature on another provider's path, or on an unknown id.
    const adoPath = url.replace('/webhooks/jira/', '/webhooks/azure-devops/');
    expect((await post({ 'x-hub-signature': sign(secret!, body) }, body, adoPath)).status).toBe(401);
    const unknown = url.replace(/[A-Za-z0-9_-]{22}$/, 'A'.repeat(22));
    const res = await post({ 'x-hub-signature': sign(secret!, body) }, body, unknown);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
    expect((await post({}, body, url.replace(/\/[^/]+$/, '/../../readyz'))).status).not.toBe(202);

    // Signed but not JSON: refused; signed and valid: accepted.
    expect((await post({ 'x-hub-signature': sign(secret!, 'not json') }, 'not json')).status).toBe(400);
    const ok = await post({ 'x-hub-signature': sign(secret!, body) });
    expect(ok.status).toBe(202);
    expect(await ok.json()).toEqual({ queued: [key], ignored: [] });
    await waitFor(async () =>
      (await ticketOf(tenantId, 'jira', 'rec-jira'))?.status === 'in_progress' ? true : undefined,
    );
    // Only the accepted delivery made a read.
    expect(reads() - readsBefore).toBe(1);
  });

  it('trusts the provider, not the body: a delivery claiming Done leaves an open ticket open', async () => {
    const { url, secret } = await service.webhooks.issue(tenantId, 'jira', 'slack:U0ADMIN');
    const key = keys.jira!;
    jira.setStatus(key, 'open');
    await waitFor(async () => {
      // Sync the stored status first through a real delivery.
      const body = JSON.stringify({ webhookEvent: 'jira:issue_updated', issue: { key } });
      await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-hub-signature': sign(secret!, body) },
        body,
      });
      return (await ticketOf(tenantId, 'jira', 'rec-jira'))?.status === 'open' ? true : undefined;
    });
    const lie = JSON.stringify({
      webhookEvent: 'jira:issue_updated',
      issue: { key, fields: { status: { name: 'Done', statusCategory: { key: 'done' } } } },
    });
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-hub-signature': sign(secret!, lie) },
      body: lie,
    });
    expect(res.status).toBe(202);
    await waitFor(async () =>
      (await service.queue.counts(refreshTicketStatusJob.name)).queued === 0 &&
      (await service.queue.counts(refreshTicketStatusJob.name)).active === 0
        ? true
        : undefined,
    );
    expect((await ticketOf(tenantId, 'jira', 'rec-jira'))?.status).toBe('open');
  });

  it("never touches another tenant's ticket, even with a valid delivery naming its key", async () => {
    const other = await createTicket(otherTenantId, 'azure-devops', 'rec-other');
    const { url, secret } = await service.webhooks.issue(tenantId, 'azure-devops', 'slack:U0ADMIN');
    ado.setStatus(other.key!, 'in_progress');
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basic('cloudpi', secret!) },
      body: JSON.stringify({ eventType: 'workitem.updated', resource: { workItemId: Number(other.key) } }),
    });
    expect(res.status).toBe(202);
    const receipt = (await res.json()) as { queued: string[]; ignored: string[] };
    // Keys of both tenants' tickets may coincide; the other tenant's row is never queued.
    const own = keys['azure-devops'] === other.key;
    expect(receipt.queued).toEqual(own ? [other.key] : []);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await ticketOf(otherTenantId, 'azure-devops', 'rec-other'))?.status).toBe('open');
  });

  it('checks Basic auth before reading the body, and slows down an address that keeps failing', async () => {
    const { url, secret } = await service.webhooks.issue(tenantId, 'servicenow', 'slack:U0ADMIN');
    const huge = 'x'.repeat(6 * 1024 * 1024);
    const wrong = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basic('cloudpi', 'wrong') },
      body: huge,
    });
    expect(wrong.status).toBe(401);
    const wrongUser = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basic('admin', secret!) },
      body: '{}',
    });
    expect(wrongUser.status).toBe(401);
    const tooBig = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basic('cloudpi', secret!) },
      body: huge,
    });
    expect(tooBig.status).toBe(413);
    // Another event or table: accepted, nothing queued.
    const other = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basic('cloudpi', secret!) },
      body: JSON.stringify({ table: 'change_request', number: 'CHG0000001' }),
    });
    expect(await other.json()).toEqual({ queued: [], ignored: [] });
  });

  it('collapses a burst of deliveries for one ticket into one provider read', async () => {
    const { url, secret } = await service.webhooks.issue(tenantId, 'azure-devops', 'slack:U0ADMIN');
    const key = keys['azure-devops']!;
    ado.setStatus(key, 'in_progress');
    const reads = () =>
      ado.requests.filter((r) => r.method === 'GET' && new RegExp(`/workitems/${key}(\\?|$)`).test(r.path))
        .length;
    const before = reads();
    const body = JSON.stringify({ eventType: 'workitem.updated', resource: { workItemId: Number(key) } });
    const answers = await Promise.all(
      Array.from({ length: 8 }, () =>
        fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: basic('cloudpi', secret!) },
          body,
        }).then((r) => r.status),
      ),
    );
    expect(answers).toEqual(Array(8).fill(202));
    await waitFor(async () =>
      (await ticketOf(tenantId, 'azure-devops', 'rec-azure-devops'))?.status === 'in_progress'
        ? true
        : undefined,
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect(reads() - before).toBe(1);
  });

  it('rotation retires the old URL; disconnecting the provider removes its webhook', async () => {
    const first = await service.webhooks.issue(tenantId, 'jira', 'slack:U0ADMIN');
    const second = await service.webhooks.issue(tenantId, 'jira', 'slack:U0ADMIN');
    expect(second.url).not.toBe(first.url);
    const body = JSON.stringify({ webhookEvent: 'jira:issue_updated', issue: { key: keys.jira } });
    const send = (url: string, secret: string) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-hub-signature': sign(secret, body) },
        body,
      }).then((r) => r.status);
    expect(await send(first.url, first.secret!)).toBe(401);
    expect(await send(second.url, second.secret!)).toBe(202);
    const audit = await service.repositories.audit.recent(tenantId, 50);
    expect(audit.map((a) => a.action)).toContain('webhook.rotate');
    expect(JSON.stringify(audit)).not.toContain(second.secret!);

    expect(await service.integrations.disconnect(tenantId, 'jira', 'slack:U0ADMIN')).toBe(true);
    expect(await send(second.url, second.secret!)).toBe(401);
    expect(await service.webhooks.show(tenantId, 'jira')).toBeUndefined();
    await expect(service.webhooks.issue(tenantId, 'jira', 'slack:U0ADMIN')).rejects.toThrow(/not connected/);
  });
});
