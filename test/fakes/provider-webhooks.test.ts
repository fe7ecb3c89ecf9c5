/**
 * The ticket-provider fakes deliver their vendor's status-change webhook, as the real service
 * does: a status change (setStatus, setState) POSTs once to every registered hook with the
 * vendor's headers and body, signed (Jira) or with Basic auth (Azure DevOps, ServiceNow); a
 * change to the status a ticket already has sends nothing; failures are recorded, not retried.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createNetServer } from 'node:net';
import { buffer } from 'node:stream/consumers';
import { afterEach, describe, expect, it } from 'vitest';
import { azureDevOpsProvider } from '../../adapters/tickets/azure-devops/index.js';
import { jiraProvider } from '../../adapters/tickets/jira/index.js';
import { serviceNowProvider } from '../../adapters/tickets/servicenow/index.js';
import type { TicketProviderFactory } from '../../src/tickets/port.js';
import { type AzureDevOpsFake, startAzureDevOpsFake } from '../support/fakes/azure-devops-fake.js';
import { type JiraFake, type JiraFakeDeployment, startJiraFake } from '../support/fakes/jira-fake.js';
import type { ProviderFake } from '../support/fakes/provider-fake.js';
import { type ServiceNowFake, startServiceNowFake } from '../support/fakes/servicenow-fake.js';

const LOOPBACK = { allowHttp: true, allowPrivateNetworks: true };

interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly raw: Buffer;
}

interface Receiver {
  readonly url: string;
  readonly received: Received[];
  close(): Promise<void>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A loopback webhook receiver answering `status` to everything, keeping the raw bytes it got. */
async function startReceiver(status = 204): Promise<Receiver> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    buffer(req).then(
      (raw) => {
        received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, raw });
        res.writeHead(status).end();
      },
      () => res.destroy(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const receiver: Receiver = {
    url: `http://127.0.0.1:${port}/hooks/tickets`,
    received,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  cleanups.push(receiver.close);
  return receiver;
}

/** A port nothing listens on (taken, then released). */
async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Creates a ticket the way the service does: through the adapter, with the fake's routing. */
async function createTicket(
  factory: TicketProviderFactory,
  fake: ProviderFake,
  name: string,
): Promise<string> {
  const provider = factory.create({ values: fake.validValues, urlPolicy: LOOPBACK, maxAttempts: 1 });
  const ref = await provider.createTicket(
    {
      title: `Stop idle instance (${name})`,
      description: 'Instance i-0abc is idle.',
      severity: 'high',
      link: 'https://cloudpi.example/recommendations/rec-1',
      routing: fake.routing,
    },
    `cloudpi-webhook-${name}`,
  );
  return ref.key;
}

function verifiesHubSignature(raw: Buffer, header: string | string[] | undefined, secret: string): boolean {
  if (typeof header !== 'string' || !header.startsWith('sha256=')) return false;
  const expected = createHmac('sha256', secret).update(raw).digest();
  const given = Buffer.from(header.slice('sha256='.length), 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function basicCredentials(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string' || !header.startsWith('Basic ')) return undefined;
  return Buffer.from(header.slice('Basic '.length), 'base64').toString('utf8');
}

function json(received: Received): Record<string, unknown> {
  return JSON.parse(received.raw.toString('utf8')) as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// What every fake does the same way.

interface FakeCase {
  readonly name: string;
  readonly factory: TicketProviderFactory;
  readonly start: () => Promise<ProviderFake>;
}

const CASES: readonly FakeCase[] = [
  { name: 'Jira Cloud', factory: jiraProvider, start: () => startJiraFake({ deployment: 'cloud' }) },
  { name: 'Jira Server', factory: jiraProvider, start: () => startJiraFake({ deployment: 'server' }) },
  { name: 'Azure DevOps', factory: azureDevOpsProvider, start: startAzureDevOpsFake },
  { name: 'ServiceNow', factory: serviceNowProvider, start: () => startServiceNowFake() },
];

async function started(c: FakeCase): Promise<{ fake: ProviderFake; key: string }> {
  const fake = await c.start();
  cleanups.push(() => fake.close());
  return { fake, key: await createTicket(c.factory, fake, 'common') };
}

describe.each(CASES)('$name webhooks', (c) => {
  it('sends nothing without a hook, and nothing for a change to the status a ticket already has', async () => {
    const { fake, key } = await started(c);
    fake.setStatus(key, 'in_progress');
    await fake.webhooksSettled();
    expect(fake.webhookDeliveries).toEqual([]);

    const receiver = await startReceiver();
    fake.addWebhook({ url: receiver.url, secret: 's3cret', username: 'cloudpi', password: 'pw' });
    fake.setStatus(key, 'in_progress');
    await fake.webhooksSettled();
    expect(receiver.received).toEqual([]);
    expect(fake.webhookDeliveries).toEqual([]);
  });

  it('delivers once to every registered hook per change, in the background of setStatus', async () => {
    const { fake, key } = await started(c);
    const first = await startReceiver();
    const second = await startReceiver(200);
    fake.addWebhook({ url: first.url, secret: 'one', username: 'cloudpi', password: 'one' });
    fake.addWebhook({ url: second.url, secret: 'two', username: 'cloudpi', password: 'two' });
    fake.setStatus(key, 'done');
    // setStatus returned before any receiver was reached.
    expect(first.received).toEqual([]);
    await fake.webhooksSettled();
    expect(first.received).toHaveLength(1);
    expect(second.received).toHaveLength(1);
    expect(first.received[0]!.method).toBe('POST');
    expect(first.received[0]!.url).toBe('/hooks/tickets');
    expect(fake.webhookDeliveries.map((d) => [d.url, d.status]).sort()).toEqual(
      [
        [first.url, 204],
        [second.url, 200],
      ].sort(),
    );
    for (const delivery of fake.webhookDeliveries) expect(delivery.error).toBeUndefined();

    fake.setStatus(key, 'open');
    await fake.webhooksSettled();
    expect(first.received).toHaveLength(2);
    expect(fake.webhookDeliveries).toHaveLength(4);
  });

  it('records a receiver answering 500 with its status, without retrying', async () => {
    const { fake, key } = await started(c);
    const receiver = await startReceiver(500);
    fake.addWebhook({ url: receiver.url, secret: 's', username: 'u', password: 'p' });
    fake.setStatus(key, 'in_progress');
    await fake.webhooksSettled();
    expect(receiver.received).toHaveLength(1);
    expect(fake.webhookDeliveries).toHaveLength(1);
    const [delivery] = fake.webhookDeliveries;
    expect(delivery).toMatchObject({ url: receiver.url, status: 500 });
    expect(delivery!.error).toBeUndefined();
    expect(delivery!.body).toBe(receiver.received[0]!.raw.toString('utf8'));
  });

  it('records a closed port with no status and the connection error', async () => {
    const { fake, key } = await started(c);
    const url = `http://127.0.0.1:${await closedPort()}/hooks/tickets`;
    fake.addWebhook({ url, secret: 's', username: 'u', password: 'p' });
    const before = Date.now();
    fake.setStatus(key, 'done');
    await fake.webhooksSettled();
    expect(fake.webhookDeliveries).toHaveLength(1);
    const [delivery] = fake.webhookDeliveries;
    expect(delivery!.url).toBe(url);
    expect(delivery!.status).toBeUndefined();
    expect(delivery!.error).toMatch(/ECONNREFUSED/);
    expect(delivery!.at).toBeGreaterThanOrEqual(before);
    expect(JSON.parse(delivery!.body)).toBeTypeOf('object');
  });
});

// ---------------------------------------------------------------------------------------------
// Each vendor's format.

describe.each<JiraFakeDeployment>(['cloud', 'server'])('Jira %s issue_updated webhook', (deployment) => {
  it('posts the signed jira:issue_updated event with the status changelog', async () => {
    const fake: JiraFake = await startJiraFake({ deployment });
    cleanups.push(() => fake.close());
    const key = await createTicket(jiraProvider, fake, 'jira');
    const receiver = await startReceiver();
    const before = Date.now();
    fake.addWebhook({ url: receiver.url, secret: 'It5-a-Jira-secret' });
    fake.setStatus(key, 'in_progress');
    await fake.webhooksSettled();

    expect(receiver.received).toHaveLength(1);
    const [request] = receiver.received;
    expect(request!.method).toBe('POST');
    expect(request!.headers['content-type']).toBe('application/json; charset=UTF-8');
    expect(request!.headers['user-agent']).toBe('Atlassian Webhook HTTP Client');
    expect(request!.headers['x-atlassian-webhook-identifier']).toMatch(/\S/);
    expect(request!.headers.authorization).toBeUndefined();
    expect(verifiesHubSignature(request!.raw, request!.headers['x-hub-signature'], 'It5-a-Jira-secret')).toBe(
      true,
    );
    expect(verifiesHubSignature(request!.raw, request!.headers['x-hub-signature'], 'another-secret')).toBe(
      false,
    );

    const body = json(request!);
    const issue = fake.issues.get(key)!;
    expect(body).toMatchObject({
      webhookEvent: 'jira:issue_updated',
      issue_event_type_name: 'issue_generic',
      issue: {
        id: issue.id,
        key,
        self: `${fake.url}/rest/api/2/issue/${issue.id}`,
        fields: {
          summary: issue.sent.summary,
          labels: issue.sent.labels ?? [],
          status: {
            id: '3',
            name: 'In Progress',
            statusCategory: { id: 4, key: 'indeterminate', name: 'In Progress' },
          },
        },
      },
      changelog: {
        items: [
          {
            field: 'status',
            fieldtype: 'jira',
            fieldId: 'status',
            from: '10000',
            fromString: 'To Do',
            to: '3',
            toString: 'In Progress',
          },
        ],
      },
    });
    expect(body.timestamp).toBeGreaterThanOrEqual(before);
    expect((body.changelog as { id: unknown }).id).toMatch(/^\d+$/);
    expect(body.user).toMatchObject(
      deployment === 'cloud'
        ? { accountId: expect.any(String), displayName: 'CloudPi Bot' }
        : { name: 'cloudpi-bot', displayName: 'CloudPi Bot' },
    );

    // Every delivery has its own identifier.
    fake.setStatus(key, 'done');
    await fake.webhooksSettled();
    expect(receiver.received).toHaveLength(2);
    expect(receiver.received[1]!.headers['x-atlassian-webhook-identifier']).not.toBe(
      request!.headers['x-atlassian-webhook-identifier'],
    );
    expect(json(receiver.received[1]!)).toMatchObject({
      issue: { key, fields: { status: { id: '10001', name: 'Done', statusCategory: { key: 'done' } } } },
      changelog: { items: [{ from: '3', fromString: 'In Progress', to: '10001', toString: 'Done' }] },
    });
  });

  it('sends no signature for a hook without a secret', async () => {
    const fake = await startJiraFake({ deployment });
    cleanups.push(() => fake.close());
    const key = await createTicket(jiraProvider, fake, 'jira-unsigned');
    const receiver = await startReceiver();
    fake.addWebhook({ url: receiver.url });
    fake.setStatus(key, 'done');
    await fake.webhooksSettled();
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]!.headers['x-hub-signature']).toBeUndefined();
  });
});

describe('Azure DevOps workitem.updated webhook', () => {
  it('posts the workitem.updated event of the state change with Basic auth', async () => {
    const fake: AzureDevOpsFake = await startAzureDevOpsFake();
    cleanups.push(() => fake.close());
    const key = await createTicket(azureDevOpsProvider, fake, 'ado');
    const item = fake.workItems.get(Number(key))!;
    const receiver = await startReceiver();
    fake.addWebhook({ url: receiver.url, username: 'cloudpi', password: 'Ado-hook-secret:with-colon' });
    fake.setState(key, 'Resolved');
    await fake.webhooksSettled();

    expect(receiver.received).toHaveLength(1);
    const [request] = receiver.received;
    expect(request!.method).toBe('POST');
    expect(request!.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(basicCredentials(request!.headers.authorization)).toBe('cloudpi:Ado-hook-secret:with-colon');
    expect(request!.headers['x-hub-signature']).toBeUndefined();

    const body = json(request!);
    expect(body).toMatchObject({
      subscriptionId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      notificationId: 1,
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      eventType: 'workitem.updated',
      publisherId: 'tfs',
      message: {
        text: expect.stringContaining(`Bug #${key}`),
        html: expect.stringContaining(`Bug #${key}</a>`),
        markdown: expect.stringContaining(`[Bug #${key}]`),
      },
      detailedMessage: { text: expect.stringContaining('New State: Resolved') },
      resource: {
        id: 2,
        workItemId: Number(key),
        rev: 2,
        revisedBy: { displayName: 'CloudPi Bot', uniqueName: 'cloudpi-bot@acme.example' },
        fields: {
          'System.State': { oldValue: 'New', newValue: 'Resolved' },
          'System.Rev': { oldValue: 1, newValue: 2 },
          'System.ChangedDate': {
            oldValue: expect.any(String),
            newValue: item.fields['System.ChangedDate'],
          },
        },
        url: `${fake.url}/${item.projectId}/_apis/wit/workItems/${key}/updates/2`,
        revision: {
          id: Number(key),
          rev: 2,
          fields: {
            'System.State': 'Resolved',
            'System.Title': item.fields['System.Title'],
            'System.WorkItemType': 'Bug',
            'Custom.CostCenter': 'FinOps',
            'System.CreatedBy': 'CloudPi Bot <cloudpi-bot@acme.example>',
          },
        },
      },
      resourceVersion: '1.0-preview.2',
      resourceContainers: {
        collection: { id: expect.any(String) },
        account: { id: expect.any(String) },
        project: { id: item.projectId },
      },
      createdDate: expect.any(String),
    });
    expect(item.rev).toBe(2);

    // setStatus goes the same way; the next notification of the subscription counts on.
    fake.setStatus(key, 'done');
    await fake.webhooksSettled();
    expect(receiver.received).toHaveLength(2);
    const next = json(receiver.received[1]!);
    expect(next).toMatchObject({
      subscriptionId: body.subscriptionId,
      notificationId: 2,
      resource: {
        id: 3,
        workItemId: Number(key),
        fields: { 'System.State': { oldValue: 'Resolved', newValue: 'Closed' } },
      },
    });
    expect(next.id).not.toBe(body.id);
  });

  it('sends no Authorization for a hook without credentials', async () => {
    const fake = await startAzureDevOpsFake();
    cleanups.push(() => fake.close());
    const key = await createTicket(azureDevOpsProvider, fake, 'ado-anonymous');
    const receiver = await startReceiver();
    fake.addWebhook({ url: receiver.url });
    fake.setStatus(key, 'in_progress');
    await fake.webhooksSettled();
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]!.headers.authorization).toBeUndefined();
  });
});

describe('ServiceNow business-rule webhook', () => {
  it('posts the incident number, sys_id and new state with Basic auth', async () => {
    const fake: ServiceNowFake = await startServiceNowFake();
    cleanups.push(() => fake.close());
    const key = await createTicket(serviceNowProvider, fake, 'snow');
    const receiver = await startReceiver();
    fake.addWebhook({ url: receiver.url, username: 'cloudpi', password: 'Sn-hook-secret' });
    fake.setStatus(key, 'in_progress');
    await fake.webhooksSettled();

    expect(receiver.received).toHaveLength(1);
    const [request] = receiver.received;
    expect(request!.method).toBe('POST');
    expect(request!.headers['content-type']).toBe('application/json');
    expect(basicCredentials(request!.headers.authorization)).toBe('cloudpi:Sn-hook-secret');

    const incident = fake.incidents().find((row) => row.number === key)!;
    expect(json(request!)).toEqual({
      table: 'incident',
      sys_id: incident.sys_id,
      number: key,
      state: '2',
      correlation_id: incident.correlation_id,
      sys_updated_on: incident.sys_updated_on,
    });
    expect(incident.sys_updated_on).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);

    // setState sends too, with the state value (here On Hold, which setStatus cannot reach).
    fake.setState(key, '3');
    await fake.webhooksSettled();
    expect(receiver.received).toHaveLength(2);
    expect(json(receiver.received[1]!)).toMatchObject({ number: key, state: '3' });
  });
});
