/**
 * Azure DevOps adapter specifics the contract suite does not cover: organization URL forms, error
 * classification (401 / expired / 203 sign-in page / 404 organization / redirects / HTML answers),
 * the JSON Patch document, state normalization, rate-limit headers, the SSRF guard on the SDK's
 * own HTTP client, and the strictness of the fake itself against the published spec.
 */
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cloudOrganization,
  normalizeOrganizationUrl,
} from '../../adapters/tickets/azure-devops/credentials.js';
import { azureDevOpsProvider } from '../../adapters/tickets/azure-devops/index.js';
import {
  buildPatchDocument,
  descriptionHtml,
  fieldErrorsFrom,
  normalizeState,
  priorityFor,
  tagFor,
  wiqlForTag,
  workItemTitle,
} from '../../adapters/tickets/azure-devops/mapping.js';
import { AzureDevOpsProvider } from '../../adapters/tickets/azure-devops/provider.js';
import { isNonPublicAddress } from '../../src/net/url-policy.js';
import { PROJECT_ROOT } from '../../src/paths.js';
import type { ProviderContext, TicketInput } from '../../src/tickets/port.js';
import { errorOf } from '../support/errors.js';
import { type AzureDevOpsFake, startAzureDevOpsFake } from '../support/fakes/azure-devops-fake.js';

const LOOPBACK = { allowHttp: true, allowPrivateNetworks: true };
const STRICT = { allowHttp: false, allowPrivateNetworks: false };

function example(file: string): { responses: { '200': { body: Record<string, unknown> } } } {
  return JSON.parse(
    readFileSync(path.join(PROJECT_ROOT, 'test/fixtures/specs/azure-devops', file), 'utf8').replace(
      /^\uFEFF/,
      '',
    ),
  );
}

describe('organization URL forms', () => {
  it('normalizes dev.azure.com and visualstudio.com to https://dev.azure.com/{org}', () => {
    expect(normalizeOrganizationUrl('https://dev.azure.com/acme/', STRICT)).toBe(
      'https://dev.azure.com/acme',
    );
    expect(normalizeOrganizationUrl(' https://dev.azure.com/acme/Ops/_boards?x=1 ', STRICT)).toBe(
      'https://dev.azure.com/acme',
    );
    expect(normalizeOrganizationUrl('https://acme.visualstudio.com/', STRICT)).toBe(
      'https://dev.azure.com/acme',
    );
    expect(normalizeOrganizationUrl('https://Acme.VisualStudio.com/DefaultCollection', STRICT)).toBe(
      'https://dev.azure.com/acme',
    );
  });

  it('keeps an Azure DevOps Server collection URL as typed, without trailing slashes', () => {
    expect(normalizeOrganizationUrl('https://tfs.example.com/tfs/DefaultCollection//', STRICT)).toBe(
      'https://tfs.example.com/tfs/DefaultCollection',
    );
    expect(normalizeOrganizationUrl('https://tfs.example.com:8443/DefaultCollection#x', STRICT)).toBe(
      'https://tfs.example.com:8443/DefaultCollection',
    );
  });

  it('knows both Microsoft hosts of a cloud organization as the same organization', () => {
    expect(cloudOrganization(new URL('https://dev.azure.com/Acme/'))).toBe('acme');
    expect(cloudOrganization(new URL('https://acme.visualstudio.com/'))).toBe('acme');
    expect(cloudOrganization(new URL('https://tfs.example.com/tfs/DefaultCollection'))).toBeUndefined();
  });

  it('refuses dev.azure.com without an organization, and bare visualstudio.com, on the URL field', async () => {
    for (const url of ['https://dev.azure.com', 'https://dev.azure.com/', 'https://visualstudio.com/acme']) {
      const result = await azureDevOpsProvider
        .create({ values: { organizationUrl: url, personalAccessToken: 'x'.repeat(52) }, urlPolicy: STRICT })
        .verify();
      expect(result).toMatchObject({ ok: false, code: 'INVALID_URL', field: 'organizationUrl' });
    }
  });

  it('asks for the PAT on its field when it is empty', async () => {
    const result = await azureDevOpsProvider
      .create({
        values: { organizationUrl: 'https://dev.azure.com/acme', personalAccessToken: ' ' },
        urlPolicy: STRICT,
      })
      .verify();
    expect(result).toMatchObject({ ok: false, code: 'INVALID_CREDENTIALS', field: 'personalAccessToken' });
  });

  it('describes the form in CloudPi words', () => {
    const { descriptor } = azureDevOpsProvider;
    expect(descriptor).toMatchObject({
      kind: 'azure-devops',
      displayName: 'Azure DevOps',
      ticketNoun: 'work item',
    });
    expect(descriptor.fields.map((f) => [f.key, f.label, f.type, f.secret])).toEqual([
      ['organizationUrl', 'Organization URL', 'url', false],
      ['personalAccessToken', 'Personal Access Token (PAT)', 'password', true],
    ]);
    expect(descriptor.fields[1]!.hint).toMatch(/Work Items \(Read & Write\).*Project and Team \(Read\)/);
  });
});

describe('mapping', () => {
  const input = (over: Partial<TicketInput> = {}): TicketInput => ({
    title: 'Stop idle instance',
    description: 'Line one\nline two\n\n<b>$120</b> & "more"',
    severity: 'critical',
    link: 'https://cloudpi.example/r?a=1&b=2',
    routing: { project: 'Ops' },
    ...over,
  });

  it('builds an add-only JSON Patch document of /fields/<refName>', () => {
    const document = buildPatchDocument(
      input({
        routing: {
          project: 'Ops',
          areaPath: 'Ops\\Cloud',
          iterationPath: 'Ops\\Sprint 1',
          fieldValues: { 'Custom.CostCenter': 'FinOps', 'System.Tags': 'overridden?' },
        },
      }),
      'rec-1',
    );
    expect(document).toEqual([
      { op: 'add', path: '/fields/System.Title', value: 'Stop idle instance' },
      {
        op: 'add',
        path: '/fields/System.Description',
        value:
          '<p>Line one<br>line two</p><p>&lt;b&gt;$120&lt;/b&gt; &amp; &quot;more&quot;</p><p><a href="https://cloudpi.example/r?a=1&amp;b=2">View this recommendation in CloudPi</a></p>',
      },
      { op: 'add', path: '/fields/System.Tags', value: 'cloudpi; rec-1' },
      { op: 'add', path: '/fields/Microsoft.VSTS.Common.Priority', value: 1 },
      { op: 'add', path: '/fields/System.AreaPath', value: 'Ops\\Cloud' },
      { op: 'add', path: '/fields/System.IterationPath', value: 'Ops\\Sprint 1' },
      { op: 'add', path: '/fields/Custom.CostCenter', value: 'FinOps' },
    ]);
  });

  it('maps severities to priorities, with the routing priority map first', () => {
    expect(['critical', 'high', 'medium', 'low', 'info'].map((s) => priorityFor(s as never, {}))).toEqual([
      1, 2, 3, 4, 4,
    ]);
    expect(priorityFor('info', { priorityMap: { info: '3' } })).toBe(3);
    expect(() => priorityFor('high', { priorityMap: { high: 'P1' } })).toThrow(/1, 2, 3 or 4/);
  });

  it('keeps titles to one line of 255 characters, links only http(s), tags without separators', () => {
    const title = workItemTitle(`${'x'.repeat(300)}\nsecond line`);
    expect(title).toHaveLength(255);
    expect(title.endsWith('…')).toBe(true);
    expect(workItemTitle('a\n  b')).toBe('a b');
    expect(descriptionHtml('text', 'javascript:alert(1)')).toBe('<p>text</p>');
    expect(tagFor('a;b,c')).toBe('a-b-c');
    expect(wiqlForTag("o'brien")).toContain("CONTAINS 'o''brien'");
  });

  it('normalizes states by category, then by name', () => {
    expect(normalizeState('Proposed-ish', 'Proposed')).toBe('open');
    expect(normalizeState('Doing', 'InProgress')).toBe('in_progress');
    expect(normalizeState('Fixed', 'Resolved')).toBe('done');
    expect(normalizeState('Shipped', 'Completed')).toBe('closed');
    expect(normalizeState('Cut', 'Removed')).toBe('closed');
    expect(
      ['New', 'To Do', 'Active', 'Committed', 'Resolved', 'Done', 'Closed', 'Removed'].map((s) =>
        normalizeState(s),
      ),
    ).toEqual(['open', 'open', 'in_progress', 'in_progress', 'done', 'closed', 'closed', 'closed']);
    expect(normalizeState('Waiting for vendor')).toBe('in_progress');
    // The vendor's own example work item (GET _apis/wit/workItems/12) is Active.
    const state = example('wit/7.1/httpExamples/workItems/GET__wit_WorkItems_id.json').responses['200'].body
      .fields as Record<string, string>;
    expect(normalizeState(state['System.State']!)).toBe('in_progress');
  });

  it('reads field errors from ADO error bodies', () => {
    expect(
      fieldErrorsFrom({
        message: 'TF401320: Rule Error for field Cost Center. Error code: Required.',
        customProperties: { FieldReferenceName: 'Custom.CostCenter', ErrorMessage: 'required' },
      }),
    ).toEqual({ 'Custom.CostCenter': 'required' });
    expect(fieldErrorsFrom({ message: 'TF51535: Cannot find field Custom.Nope.' })).toEqual({
      'Custom.Nope': 'TF51535: Cannot find field Custom.Nope.',
    });
    expect(
      Object.keys(
        fieldErrorsFrom({
          message: "TF401347: Invalid tree name given for work item -1, field 'System.AreaPath'.",
        }),
      ),
    ).toEqual(['System.AreaPath']);
  });
});

describe('Azure DevOps adapter against the fake', () => {
  let fake: AzureDevOpsFake;
  const create = (over: Partial<ProviderContext> = {}) =>
    azureDevOpsProvider.create({
      values: fake.validValues,
      urlPolicy: LOOPBACK,
      timeoutMs: 2_000,
      maxAttempts: 3,
      ...over,
    });
  const input = (over: Partial<TicketInput> = {}): TicketInput => ({
    title: 'Delete unattached volume vol-1',
    description: 'It costs <b>$12</b> a month & nobody uses it.',
    severity: 'medium',
    link: 'https://cloudpi.example/recommendations/rec-9',
    routing: fake.routing,
    ...over,
  });
  const creates = () =>
    fake.requests.filter(
      (r) => r.method === 'POST' && /\/workitems\/\$/i.test(r.path) && !/validateOnly/i.test(r.path),
    );

  beforeAll(async () => {
    fake = await startAzureDevOpsFake();
  });
  afterAll(async () => {
    await fake?.close();
  });

  it('talks like azure-devops-node-api: route lookups, api-version in Accept, Basic PAT auth', async () => {
    fake.requests.length = 0;
    expect((await create().verify()).ok).toBe(true);
    const options = fake.requests.filter((r) => r.method === 'OPTIONS').map((r) => r.path);
    expect(options).toContain('/acme/_apis/Location');
    expect(options).toContain('/acme/_apis/core');
    const projects = fake.requests.find((r) => r.path.startsWith('/acme/_apis/projects'))!;
    expect(projects.headers.accept).toMatch(/^application\/json;api-version=7\.1/);
    expect(projects.headers['x-tfs-fedauthredirect']).toBe('Suppress');
    const [user, password] = Buffer.from(
      String(projects.headers.authorization).replace(/^Basic /, ''),
      'base64',
    )
      .toString()
      .split(':');
    expect(user).toBeDefined();
    expect(password).toBe(fake.pat);
  });

  it('classifies a wrong PAT, an expired PAT and a 203 sign-in page on the token field', async () => {
    const wrong = await create({ values: fake.wrongSecretValues }).verify();
    expect(wrong).toMatchObject({ ok: false, code: 'INVALID_CREDENTIALS', field: 'personalAccessToken' });
    if (!wrong.ok)
      expect(wrong.message).toMatch(
        /^The Personal Access Token \(PAT\) is invalid or has expired\. Create a new one/,
      );

    const expired = await create({ values: fake.expiredValues }).verify();
    expect(expired).toMatchObject({ ok: false, code: 'EXPIRED_CREDENTIALS', field: 'personalAccessToken' });

    fake.answerBadAuthWithSignInPage(true);
    try {
      const signIn = await create({ values: fake.wrongSecretValues }).verify();
      expect(signIn).toMatchObject({ ok: false, code: 'INVALID_CREDENTIALS', field: 'personalAccessToken' });
    } finally {
      fake.answerBadAuthWithSignInPage(false);
    }
  });

  it('says Organization not found on the URL field for an unknown collection', async () => {
    const result = await create({
      values: { ...fake.validValues, organizationUrl: fake.url.replace(/\/acme$/, '/nope') },
    }).verify();
    expect(result).toMatchObject({ ok: false, code: 'NOT_FOUND', field: 'organizationUrl' });
    if (!result.ok) expect(result.message).toMatch(/^Organization not found/);
  });

  it('checks the routed project, work item type, required fields, paths and permission', async () => {
    const provider = create();
    const noProject = await provider.verify({ ...fake.routing, project: 'Nope' });
    expect(noProject).toMatchObject({ ok: false, code: 'NOT_FOUND' });
    if (!noProject.ok) expect(noProject.message).toContain('"Nope"');

    const noType = await provider.verify({ ...fake.routing, ticketType: 'Epic' });
    expect(noType).toMatchObject({ ok: false, code: 'NOT_FOUND' });
    if (!noType.ok) expect(noType.message).toMatch(/Bug, Task/);

    const missing = await provider.verify({ project: 'Ops', ticketType: 'Bug' });
    expect(missing).toMatchObject({ ok: false, code: 'INVALID_INPUT' });
    if (!missing.ok) expect(Object.keys(missing.fieldErrors ?? {})).toEqual(['Custom.CostCenter']);

    const badArea = await provider.verify({ ...fake.routing, areaPath: 'Ops\\Nowhere' });
    expect(badArea).toMatchObject({ ok: false, code: 'INVALID_INPUT' });
    if (!badArea.ok) expect(Object.keys(badArea.fieldErrors ?? {})).toEqual(['System.AreaPath']);

    fake.denyCreate('Ops', true);
    try {
      const denied = await provider.verify(fake.routing);
      expect(denied).toMatchObject({ ok: false, code: 'FORBIDDEN' });
      if (!denied.ok) expect(denied.message).toMatch(/Work Items \(Read & Write\)/);
    } finally {
      fake.denyCreate('Ops', false);
    }
    expect(await provider.verify({ project: 'ops', ticketType: 'task' })).toMatchObject({ ok: true });
    expect(fake.ticketCount()).toBe(0);
  });

  it('lists projects, types, required fields, area and iteration paths', async () => {
    const provider = create();
    expect(await provider.listProjects()).toEqual([{ id: expect.any(String), key: 'Ops', name: 'Ops' }]);
    expect((await provider.listTicketTypes('Ops')).map((t) => t.name)).toEqual(['Bug', 'Task']);
    expect(await provider.describeFields('Ops', 'Bug')).toEqual([
      {
        key: 'Custom.CostCenter',
        name: 'Cost Center',
        type: 'option',
        allowedValues: ['FinOps', 'Platform', 'Security'].map((v) => ({ id: v, name: v })),
      },
    ]);
    expect(await provider.describeFields('Ops', 'Task')).toEqual([]);
    expect((await errorOf(provider.describeFields('Ops', 'Epic'))).code).toBe('NOT_FOUND');
    expect((await errorOf(provider.listTicketTypes('Nope'))).code).toBe('NOT_FOUND');
    // Area and iteration paths are extras of the adapter class, beyond the port.
    const adapter = new AzureDevOpsProvider({
      values: fake.validValues,
      urlPolicy: LOOPBACK,
      timeoutMs: 2_000,
    });
    expect(await adapter.listAreaPaths('Ops')).toEqual([
      'Ops',
      'Ops\\Cloud',
      'Ops\\Cloud\\Compute',
      'Ops\\Data',
    ]);
    expect(await adapter.listIterationPaths('Ops')).toEqual(['Ops', 'Ops\\Sprint 1', 'Ops\\Sprint 2']);
  });

  it('creates with a JSON Patch document the fake stores as sent', async () => {
    const provider = create();
    const ref = await provider.createTicket(
      input({ routing: { ...fake.routing, priorityMap: { medium: '1' }, iterationPath: 'Ops\\Sprint 2' } }),
      'rec-patch',
    );
    const post = creates().at(-1)!;
    expect(post.headers['content-type']).toBe('application/json-patch+json');
    expect(post.headers.accept).toMatch(/api-version=7\.1-preview\.3/);
    const stored = fake.workItems.get(Number(ref.key))!.fields;
    expect(stored).toMatchObject({
      'System.Title': 'Delete unattached volume vol-1',
      'System.Tags': 'cloudpi; rec-patch',
      'Microsoft.VSTS.Common.Priority': 1,
      'System.AreaPath': 'Ops\\Cloud',
      'System.IterationPath': 'Ops\\Sprint 2',
      'Custom.CostCenter': 'FinOps',
      'System.State': 'New',
    });
    expect(stored['System.Description']).toBe(
      '<p>It costs &lt;b&gt;$12&lt;/b&gt; a month &amp; nobody uses it.</p><p><a href="https://cloudpi.example/recommendations/rec-9">View this recommendation in CloudPi</a></p>',
    );
    expect(ref.url).toBe(`${fake.url}/Ops/_workitems/edit/${ref.key}`);
  });

  it('finds by exact tag, with quotes escaped in WIQL', async () => {
    const provider = create();
    const quoted = await provider.createTicket(input(), "rec-o'brien");
    expect(await provider.findTicket("rec-o'brien", fake.routing)).toEqual(quoted);
    const ten = await provider.createTicket(input(), 'rec-x-10');
    expect(await provider.findTicket('rec-x-1', fake.routing)).toBeUndefined();
    expect(await provider.findTicket('REC-X-10', fake.routing)).toEqual(ten);
    expect((await errorOf(provider.findTicket('k', {}))).code).toBe('INVALID_INPUT');
  });

  it('reports field errors from Azure DevOps as INVALID_INPUT with fieldErrors', async () => {
    const provider = create();
    const unknown = await errorOf(
      provider.createTicket(
        input({ routing: { ...fake.routing, fieldValues: { 'Custom.Nope': 1 } } }),
        'rec-bad-1',
      ),
    );
    expect(unknown).toMatchObject({ code: 'INVALID_INPUT', details: { status: 400 } });
    expect(unknown.details.fieldErrors).toEqual({ 'Custom.Nope': 'TF51535: Cannot find field Custom.Nope.' });
    const value = await errorOf(
      provider.createTicket(
        input({ routing: { ...fake.routing, fieldValues: { 'Custom.CostCenter': 'Marketing' } } }),
        'rec-bad-2',
      ),
    );
    expect(Object.keys(value.details.fieldErrors as object)).toEqual(['Custom.CostCenter']);
    expect((await errorOf(provider.createTicket(input({ routing: {} }), 'rec-bad-3'))).code).toBe(
      'INVALID_INPUT',
    );
  });

  it('does not repeat a creation whose answer was lost, and finds it next time', async () => {
    const provider = create();
    const before = creates().length;
    fake.loseNextCreateResponse();
    const lost = await errorOf(provider.createTicket(input(), 'rec-lost'));
    expect(lost).toMatchObject({ code: 'UNREACHABLE', details: { mayHaveBeenCreated: true } });
    expect(creates().length).toBe(before + 1);
    const found = await provider.createTicket(input(), 'rec-lost');
    expect(creates().length).toBe(before + 1);
    expect(fake.workItems.get(Number(found.key))!.fields['System.Tags']).toBe('cloudpi; rec-lost');
  });

  it('retries a creation refused with 503 after looking again, without duplicates', async () => {
    const provider = create();
    const count = fake.ticketCount();
    fake.failNext(1, 503, /\/workitems\/\$Bug$/);
    await provider.createTicket(input(), 'rec-503');
    expect(fake.ticketCount()).toBe(count + 1);
  });

  it('normalizes Resolved to done and Closed to closed, falling back to names without the categories', async () => {
    const provider = create();
    const ref = await provider.createTicket(input(), 'rec-states');
    fake.setState(ref.key, 'Resolved');
    expect(await provider.getTicket(ref.key)).toEqual({ status: 'done', providerStatus: 'Resolved' });
    fake.setState(ref.key, 'Closed');
    expect(await provider.getTicket(ref.key)).toEqual({ status: 'closed', providerStatus: 'Closed' });
    const fresh = create({ maxAttempts: 1 });
    fake.setState(ref.key, 'Active');
    fake.failNext(1, 500, /\/states/);
    expect(await fresh.getTicket(ref.key)).toEqual({ status: 'in_progress', providerStatus: 'Active' });
    expect((await errorOf(provider.getTicket('not-a-number'))).code).toBe('NOT_FOUND');
  });

  it('refuses to send the PAT to another host the server names for an area', async () => {
    fake.setLocationUrl('http://127.0.0.2:1/acme/');
    try {
      const result = await create({ maxAttempts: 1 }).verify();
      expect(result).toMatchObject({ ok: false, code: 'INVALID_URL', field: 'organizationUrl' });
      if (!result.ok) expect(result.message).toContain('http://127.0.0.2:1/acme/');
    } finally {
      fake.setLocationUrl(undefined);
    }
  });

  it('passes Retry-After on as retryAfterSeconds, and 5xx as PROVIDER_ERROR with the status', async () => {
    const once = create({ maxAttempts: 1 });
    await once.listProjects();
    fake.rateLimitNext(1, 7);
    expect(await errorOf(once.listProjects())).toMatchObject({
      code: 'RATE_LIMITED',
      details: { retryAfterSeconds: 7, status: 429 },
    });
    fake.failNext(1, 500);
    expect(await errorOf(once.listProjects())).toMatchObject({
      code: 'PROVIDER_ERROR',
      details: { status: 500 },
    });
  });

  it('leaves retries to the adapter policy: the SDK retries nothing itself', async () => {
    fake.requests.length = 0;
    fake.failNext(1, 503);
    const result = await create({ maxAttempts: 1 }).verify();
    expect(result).toMatchObject({ ok: false, code: 'PROVIDER_ERROR' });
    expect(fake.requests).toHaveLength(1);
  });

  it('answers every call within the published spec', () => {
    expect(fake.specViolations).toEqual([]);
  });
});

describe('servers that are not Azure DevOps', () => {
  let server: Server;
  let url = '';
  let hits: string[] = [];
  let answer: (path: string) => { status: number; headers: Record<string, string | undefined>; body: string };

  beforeAll(async () => {
    server = createServer((req, res) => {
      hits.push(req.url ?? '');
      const a = answer(req.url ?? '');
      res.writeHead(a.status, a.headers as Record<string, string>);
      res.end(a.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/collection`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const verify = () =>
    azureDevOpsProvider
      .create({
        values: { organizationUrl: url, personalAccessToken: 'p'.repeat(52) },
        urlPolicy: LOOPBACK,
        timeoutMs: 2_000,
        maxAttempts: 1,
      })
      .verify();

  it('says an HTML web site is not an Azure DevOps organization', async () => {
    answer = () => ({ status: 200, headers: { 'content-type': 'text/html' }, body: '<html>Welcome</html>' });
    const result = await verify();
    expect(result).toMatchObject({ ok: false, code: 'NOT_FOUND', field: 'organizationUrl' });
  });

  it('reads the wait of a 429 from X-RateLimit-Reset or X-RateLimit-Delay when Retry-After is absent', async () => {
    const provider = azureDevOpsProvider.create({
      values: { organizationUrl: url, personalAccessToken: 'p'.repeat(52) },
      urlPolicy: LOOPBACK,
      timeoutMs: 2_000,
      maxAttempts: 1,
    });
    const reset = String(Math.ceil(Date.now() / 1000) + 30);
    answer = () => ({
      status: 429,
      headers: { 'x-ratelimit-reset': reset, 'x-ratelimit-resource': 'Core' },
      body: '',
    });
    const byReset = await errorOf(provider.listProjects());
    expect(byReset.code).toBe('RATE_LIMITED');
    expect(byReset.details.retryAfterSeconds).toBeGreaterThanOrEqual(28);
    expect(byReset.details.retryAfterSeconds).toBeLessThanOrEqual(31);
    answer = () => ({ status: 429, headers: { 'x-ratelimit-delay': '3.2' }, body: '<html>throttled</html>' });
    expect(await errorOf(provider.listProjects())).toMatchObject({
      code: 'RATE_LIMITED',
      details: { retryAfterSeconds: 4 },
    });
  });

  it('reports a redirect instead of following it with the token', async () => {
    hits = [];
    answer = (p) =>
      p.startsWith('/elsewhere')
        ? { status: 200, headers: { 'content-type': 'application/json' }, body: '{"count":0,"value":[]}' }
        : { status: 302, headers: { location: '/elsewhere/_apis' }, body: '' };
    const result = await verify();
    expect(result).toMatchObject({ ok: false, code: 'PROVIDER_ERROR', field: 'organizationUrl' });
    if (!result.ok) expect(result.message).toContain('/elsewhere/_apis');
    expect(hits.some((h) => h.startsWith('/elsewhere'))).toBe(false);
  });
});

// The SDK's own HTTP client must connect through the guarded lookup: a host *name* that resolves to
// a loopback address passes the URL check (it is not an IP literal) and must be refused at connect.
const machine = hostname();
const machineAddresses = await lookup(machine, { all: true }).catch(() => []);
const resolvesPrivately =
  !/(^|\.)(localhost|localdomain|internal|local)$/i.test(machine) &&
  machineAddresses.length > 0 &&
  machineAddresses.every((a) => isNonPublicAddress(a.address)) &&
  machineAddresses.some((a) => a.address.startsWith('127.'));

describe('SSRF guard on the SDK connections', () => {
  let fake: AzureDevOpsFake;
  beforeAll(async () => {
    fake = await startAzureDevOpsFake();
  });
  afterAll(async () => {
    await fake?.close();
  });

  it.skipIf(!resolvesPrivately)(
    `refuses ${machine}, which resolves to loopback, at connect time`,
    async () => {
      const values = { ...fake.validValues, organizationUrl: fake.url.replace('127.0.0.1', machine) };
      const allowed = await azureDevOpsProvider
        .create({ values, urlPolicy: LOOPBACK, timeoutMs: 2_000, maxAttempts: 1 })
        .verify();
      expect(allowed.ok, JSON.stringify(allowed)).toBe(true);
      fake.requests.length = 0;
      const refused = await azureDevOpsProvider
        .create({
          values,
          urlPolicy: { allowHttp: true, allowPrivateNetworks: false },
          timeoutMs: 2_000,
          maxAttempts: 1,
        })
        .verify();
      expect(refused).toMatchObject({ ok: false, code: 'INVALID_URL', field: 'organizationUrl' });
      expect(fake.requests).toHaveLength(0);
    },
  );
});

describe('the fake is as strict as Azure DevOps', () => {
  let fake: AzureDevOpsFake;
  const call = async (
    method: string,
    apiPath: string,
    init: { headers?: Record<string, string>; body?: string; pat?: string } = {},
  ) => {
    const response = await fetch(`${fake.url}${apiPath}`, {
      method,
      headers: {
        authorization: `Basic ${Buffer.from(`:${init.pat ?? fake.pat}`).toString('base64')}`,
        'x-tfs-fedauthredirect': 'Suppress',
        accept: 'application/json;api-version=7.1',
        ...init.headers,
      },
      ...(init.body === undefined ? {} : { body: init.body }),
    });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {}
    return { status: response.status, contentType: response.headers.get('content-type') ?? '', body };
  };
  const patch = (ops: unknown) => ({
    headers: {
      'content-type': 'application/json-patch+json',
      accept: 'application/json;api-version=7.1-preview.3',
    },
    body: JSON.stringify(ops),
  });

  beforeAll(async () => {
    fake = await startAzureDevOpsFake();
  });
  afterAll(async () => {
    await fake?.close();
  });

  it('refuses bad auth with 401, or 203 and a sign-in page without X-TFS-FedAuthRedirect', async () => {
    expect((await call('GET', '/_apis/projects', { pat: 'nope' })).status).toBe(401);
    const signIn = await call('GET', '/_apis/projects', {
      pat: 'nope',
      headers: { 'x-tfs-fedauthredirect': '' },
    });
    expect(signIn.status).toBe(203);
    expect(signIn.contentType).toMatch(/text\/html/);
  });

  it('requires an api-version within 7.1 where the spec declares one', async () => {
    const none = await call('GET', '/_apis/projects', { headers: { accept: 'application/json' } });
    expect(none.status).toBe(400);
    expect(none.body).toMatchObject({ typeKey: 'VssVersionNotSpecifiedException' });
    const high = await call('GET', '/_apis/projects', {
      headers: { accept: 'application/json;api-version=7.2' },
    });
    expect(high.body).toMatchObject({ typeKey: 'VssVersionOutOfRangeException' });
    expect(
      (await call('GET', '/_apis/projects?api-version=7.1', { headers: { accept: 'application/json' } }))
        .status,
    ).toBe(200);
    // The Location spec declares no api-version: connectionData answers without one (WebApi.connect()).
    expect(
      (await call('GET', '/_apis/connectionData', { headers: { accept: 'application/json' } })).status,
    ).toBe(200);
  });

  it('requires application/json-patch+json to create (415) and ADO error shapes for bad fields', async () => {
    const ops = [{ op: 'add', path: '/fields/System.Title', value: 'x' }];
    const wrongType = await call('POST', '/Ops/_apis/wit/workitems/$Task', {
      ...patch(ops),
      headers: { 'content-type': 'application/json', accept: 'application/json;api-version=7.1-preview.3' },
    });
    expect(wrongType.status).toBe(415);

    const unknown = await call(
      'POST',
      '/Ops/_apis/wit/workitems/$Task',
      patch([...ops, { op: 'add', path: '/fields/X.Y', value: 1 }]),
    );
    expect(unknown.status).toBe(400);
    expect(Object.keys(unknown.body as object)).toEqual([
      '$id',
      'innerException',
      'message',
      'typeName',
      'typeKey',
      'errorCode',
      'eventId',
    ]);
    expect(unknown.body).toMatchObject({
      message: 'TF51535: Cannot find field X.Y.',
      errorCode: 0,
      eventId: 3200,
    });

    const required = await call('POST', '/Ops/_apis/wit/workitems/$Bug', patch(ops));
    expect(required.body).toMatchObject({
      typeKey: 'RuleValidationException',
      customProperties: { FieldReferenceName: 'Custom.CostCenter' },
    });
    const badOp = await call(
      'POST',
      '/Ops/_apis/wit/workitems/$Task',
      patch([{ op: 'jump', path: '/fields/System.Title' }]),
    );
    expect(badOp.status).toBe(400);
    const notArray = await call('POST', '/Ops/_apis/wit/workitems/$Task', patch({ op: 'add' }));
    expect(notArray.status).toBe(400);
    expect(fake.ticketCount()).toBe(0);
  });

  it('answers like the vendor examples', async () => {
    const created = await call(
      'POST',
      '/Ops/_apis/wit/workitems/$Task',
      patch([{ op: 'add', path: '/fields/System.Title', value: 'Sample task', from: null }]),
    );
    expect(created.status).toBe(200);
    const vendorCreated = example('wit/7.1/httpExamples/workItems/POST__wit_workitems_create.json').responses[
      '200'
    ].body;
    expect(Object.keys(created.body as object).sort()).toEqual(Object.keys(vendorCreated).sort());
    const id = (created.body as { id: number }).id;
    const got = await call('GET', `/_apis/wit/workitems/${id}`);
    const vendorGot = example('wit/7.1/httpExamples/workItems/GET__wit_WorkItems_id.json').responses['200']
      .body;
    expect(Object.keys(got.body as object).sort()).toEqual(Object.keys(vendorGot).sort());
    const projects = await call('GET', '/_apis/projects');
    const vendorProjects = example('core/7.1/httpExamples/projects/GET__projects.json').responses['200']
      .body as {
      value: object[];
    };
    expect(Object.keys(projects.body as object).sort()).toEqual(['count', 'value']);
    expect(Object.keys((projects.body as { value: object[] }).value[0]!)).toEqual(
      expect.arrayContaining(Object.keys(vendorProjects.value[0]!)),
    );
    const missing = await call('GET', '/_apis/wit/workitems/999999');
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ typeKey: 'WorkItemUnauthorizedAccessException' });
    expect(fake.specViolations).toEqual([]);
  });
});
