/**
 * Jira-specific behaviour beyond the port's contract: what goes over the wire (auth headers, API
 * versions, ADF vs wiki text, labels, priorities), permission and routing checks in verify, the
 * error mapping, and the fake's answers against jira.js's published models.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { normalizeSiteUrl, parseJiraCredentials } from '../../adapters/tickets/jira/credentials.js';
import { jiraProvider } from '../../adapters/tickets/jira/index.js';
import {
  errorFromResponse,
  jqlForKey,
  labelFor,
  normalizeStatus,
  requiredFieldsOf,
  summaryOf,
  toAdf,
  toWikiText,
} from '../../adapters/tickets/jira/mapping.js';
import { createJiraProvider } from '../../adapters/tickets/jira/provider.js';
import { isAppError } from '../../src/errors.js';
import type { TicketInput } from '../../src/tickets/port.js';
import { errorOf } from '../support/errors.js';
import { isValidAdf, type JiraFake, startJiraFake } from '../support/fakes/jira-fake.js';

const LOOPBACK = { allowHttp: true, allowPrivateNetworks: true };

function ticket(fake: JiraFake, overrides: Partial<TicketInput> = {}): TicketInput {
  return {
    title: 'Stop idle instance i-0abc',
    description:
      'Instance i-0abc is idle.\nRegion: eu-west-1\n\nStop it to save <b>$120</b> a month & more [*really*].',
    severity: 'high',
    link: 'https://cloudpi.example/recommendations/rec-1',
    routing: fake.routing,
    ...overrides,
  };
}

describe('Jira Cloud adapter', () => {
  let fake: JiraFake;
  beforeAll(async () => {
    fake = await startJiraFake();
  });
  afterAll(async () => {
    expect(fake.specViolations).toEqual([]);
    await fake.close();
  });
  afterEach(() => {
    fake.requests.length = 0;
  });
  const provider = () =>
    createJiraProvider({ values: fake.validValues, urlPolicy: LOOPBACK, timeoutMs: 2_000, maxAttempts: 1 });

  it('sends Basic email:token on /rest/api/3, an ADF description, the key as a label and the mapped priority', async () => {
    const key = 'cloudpi-rec-42-jira';
    const created = await provider().createTicket(ticket(fake, { severity: 'critical' }), key);
    expect(created.url).toBe(`${fake.url}/browse/${created.key}`);
    const expected = `Basic ${Buffer.from(`${fake.validValues.email}:${fake.validValues.apiToken}`).toString('base64')}`;
    for (const request of fake.requests) {
      expect(request.headers.authorization).toBe(expected);
      expect(request.path).toMatch(/^\/rest\/api\/3\//);
    }
    const create = fake.requests.find((r) => r.method === 'POST' && r.path.startsWith('/rest/api/3/issue'));
    expect(create?.headers['content-type']).toBe('application/json');
    const sent = fake.issues.get(created.key)!.sent;
    expect(isValidAdf(sent.description)).toBe(true);
    expect(JSON.stringify(sent.description)).toContain('<b>$120</b> a month & more [*really*].');
    expect(sent.labels).toEqual(['cloudpi', key]);
    expect(sent.priority).toEqual({ name: 'Highest' });
    expect(sent.customfield_10050).toBe('FinOps-42');
    expect(sent.project).toEqual({ key: 'OPS' });
    expect(sent.issuetype).toEqual({ name: 'Task' });
    // The search ran before the create, as JQL on the enhanced search endpoint.
    const search = fake.requests.find((r) => r.path === '/rest/api/3/search/jql');
    expect(search?.body).toMatchObject({ jql: `project = "OPS" AND labels = "${key}"` });
  });

  it('maps severities through routing.priorityMap, and accepts priority ids', async () => {
    const routing = { ...fake.routing, priorityMap: { low: '2', high: 'Medium' } };
    const high = await provider().createTicket(
      ticket(fake, { routing, severity: 'high' }),
      'cloudpi-prio-high',
    );
    const low = await provider().createTicket(ticket(fake, { routing, severity: 'low' }), 'cloudpi-prio-low');
    const info = await provider().createTicket(
      ticket(fake, { routing, severity: 'info' }),
      'cloudpi-prio-info',
    );
    expect(fake.issues.get(high.key)!.sent.priority).toEqual({ name: 'Medium' });
    expect(fake.issues.get(low.key)!.sent.priority).toEqual({ id: '2' });
    expect(fake.issues.get(info.key)!.sent.priority).toEqual({ name: 'Lowest' });
  });

  it('cuts the summary to 255 characters on one line', async () => {
    const title = `Line one\nline two ${'x'.repeat(400)}`;
    const created = await provider().createTicket(ticket(fake, { title }), 'cloudpi-long-title');
    const summary = fake.issues.get(created.key)!.sent.summary as string;
    expect(summary.length).toBe(255);
    expect(summary).toMatch(/^Line one line two x+…$/);
  });

  it('creates without a priority where the create screen has none', async () => {
    fake.removeCreateField('OPS', '10002', 'priority');
    const created = await provider().createTicket(
      ticket(fake, { routing: { project: 'OPS', ticketType: 'Bug' } }),
      'cloudpi-no-priority',
    );
    expect(fake.issues.get(created.key)!.sent.priority).toBeUndefined();
  });

  it("surfaces Jira's field errors as INVALID_INPUT with fieldErrors", async () => {
    const error = await errorOf(
      provider().createTicket(
        ticket(fake, { routing: { project: 'OPS', ticketType: 'Task' } }),
        'cloudpi-missing',
      ),
    );
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.details.fieldErrors).toEqual({ customfield_10050: 'Cost center is required.' });
    expect(error.message).toContain('Cost center is required');
    const unknown = await errorOf(
      provider().createTicket(
        ticket(fake, {
          routing: { ...fake.routing, fieldValues: { ...fake.routing.fieldValues, customfield_99: 'x' } },
        }),
        'cloudpi-unknown-field',
      ),
    );
    expect(unknown.details.fieldErrors).toEqual({
      customfield_99:
        "Field 'customfield_99' cannot be set. It is not on the appropriate screen, or unknown.",
    });
  });

  it('describes the required fields it does not fill itself', async () => {
    expect(await provider().describeFields('OPS', 'Task')).toEqual([
      { key: 'customfield_10050', name: 'Cost center', type: 'string' },
    ]);
    expect(await provider().describeFields('OPS', '10002')).toEqual([]);
    expect((await provider().listTicketTypes('OPS')).map((t) => t.name)).toEqual(['Task', 'Bug']);
    expect((await errorOf(provider().listTicketTypes('NOPE'))).code).toBe('NOT_FOUND');
    expect((await errorOf(provider().describeFields('OPS', 'Epic'))).code).toBe('NOT_FOUND');
  });

  it('verify names the missing "Create Issues" permission in the project', async () => {
    const result = await provider().verify({ project: 'DEV', ticketType: 'Task' });
    expect(result).toMatchObject({ ok: false, code: 'FORBIDDEN', field: 'project' });
    if (!result.ok) expect(result.message).toContain('"Create Issues" permission in project DEV');
    expect(fake.requests.some((r) => r.path.includes('/mypermissions?projectKey=DEV'))).toBe(true);
  });

  it('verify says NOT_FOUND for an unknown project', async () => {
    const result = await provider().verify({ project: 'NOPE' });
    expect(result).toMatchObject({ ok: false, code: 'NOT_FOUND', field: 'project' });
  });

  it('verify checks the issue type, the required field values and the priorities', async () => {
    const ok = await provider().verify(fake.routing);
    expect(ok.ok).toBe(true);
    if (ok.ok) expect(ok.summary).toContain('create issues in project OPS');
    const missing = await provider().verify({ project: 'OPS', ticketType: 'Task' });
    expect(missing).toMatchObject({
      ok: false,
      code: 'INVALID_INPUT',
      fieldErrors: { customfield_10050: 'Cost center is required.' },
    });
    const type = await provider().verify({ ...fake.routing, ticketType: 'Epic' });
    expect(type).toMatchObject({ ok: false, code: 'NOT_FOUND', field: 'ticketType' });
    const priorities = await provider().verify({ ...fake.routing, priorityMap: { critical: 'P1' } });
    expect(priorities).toMatchObject({ ok: false, code: 'INVALID_INPUT', field: 'priorityMap' });
    if (!priorities.ok) expect(priorities.message).toContain('"P1"');
  });

  it('verify says when the site is Jira Cloud but Data Center is selected', async () => {
    const wrong = jiraProvider.create({
      values: { deployment: 'server', siteUrl: fake.url, personalAccessToken: 'not-a-pat' },
      urlPolicy: LOOPBACK,
      timeoutMs: 2_000,
    });
    const result = await wrong.verify();
    expect(result).toMatchObject({ ok: false, code: 'INVALID_INPUT', field: 'deployment' });
    if (!result.ok) expect(result.message).toContain('Choose "Jira Cloud"');
  });

  it('verify returns a missing credential as INVALID_INPUT on its field', async () => {
    const result = await jiraProvider
      .create({ values: { ...fake.validValues, apiToken: '' }, urlPolicy: LOOPBACK })
      .verify();
    expect(result).toMatchObject({ ok: false, code: 'INVALID_INPUT', field: 'apiToken' });
  });

  it('the fake answers match the models jira.js validates against', async () => {
    const strict = createJiraProvider(
      { values: fake.validValues, urlPolicy: LOOPBACK, timeoutMs: 2_000, maxAttempts: 1 },
      { schemaMismatch: 'throw' },
    );
    expect((await strict.verify(fake.routing)).ok).toBe(true);
    expect((await strict.listProjects()).map((p) => p.key)).toEqual(['DEV', 'OPS']);
    await strict.describeFields('OPS', 'Task');
    const created = await strict.createTicket(ticket(fake), 'cloudpi-strict-models');
    expect(await strict.findTicket('cloudpi-strict-models', fake.routing)).toEqual(created);
    expect((await strict.getTicket(created.key)).providerStatus).toBe('To Do');
  });

  it('does not repeat a create whose answer was lost, and finds it on the next call', async () => {
    const retrying = createJiraProvider({
      values: fake.validValues,
      urlPolicy: LOOPBACK,
      timeoutMs: 2_000,
      maxAttempts: 3,
    });
    const before = fake.ticketCount();
    fake.loseNextCreateResponse();
    const error = await errorOf(retrying.createTicket(ticket(fake), 'cloudpi-lost-once'));
    expect(error.code).toBe('UNREACHABLE');
    expect(fake.requests.filter((r) => r.method === 'POST' && r.path === '/rest/api/3/issue')).toHaveLength(
      1,
    );
    expect(fake.ticketCount()).toBe(before + 1);
    const again = await retrying.createTicket(ticket(fake), 'cloudpi-lost-once');
    expect(fake.ticketCount()).toBe(before + 1);
    expect(fake.issues.has(again.key)).toBe(true);
  });

  it('retries a rate-limited create', async () => {
    const retrying = createJiraProvider({
      values: fake.validValues,
      urlPolicy: LOOPBACK,
      timeoutMs: 2_000,
      maxAttempts: 2,
    });
    fake.rateLimitNext(1, 0, /\/rest\/api\/3\/issue$/);
    const created = await retrying.createTicket(ticket(fake), 'cloudpi-rate-limited-create');
    expect(fake.requests.filter((r) => r.method === 'POST' && r.path === '/rest/api/3/issue')).toHaveLength(
      2,
    );
    expect(fake.issues.has(created.key)).toBe(true);
  });
});

describe('Jira Data Center / Server adapter', () => {
  let fake: JiraFake;
  beforeAll(async () => {
    fake = await startJiraFake({ deployment: 'server' });
  });
  afterAll(async () => {
    await fake.close();
  });

  it('sends Authorization: Bearer <pat> on /rest/api/2 under the context path, with a plain-string description', async () => {
    const provider = jiraProvider.create({ values: fake.validValues, urlPolicy: LOOPBACK, timeoutMs: 2_000 });
    expect(fake.url).toMatch(/\/jira$/);
    const verified = await provider.verify(fake.routing);
    expect(verified.ok).toBe(true);
    const created = await provider.createTicket(ticket(fake), 'cloudpi-rec-7-jira');
    expect(created.url).toBe(`${fake.url}/browse/${created.key}`);
    expect(fake.requests.length).toBeGreaterThan(3);
    for (const request of fake.requests) {
      expect(request.headers.authorization).toBe(`Bearer ${fake.validValues.personalAccessToken}`);
      expect(request.path).toMatch(/^\/jira\/rest\/api\/2\//);
    }
    const sent = fake.issues.get(created.key)!.sent;
    expect(typeof sent.description).toBe('string');
    expect(sent.description).toBe(
      'Instance i\\-0abc is idle.\nRegion: eu\\-west\\-1\n\nStop it to save <b>$120</b> a month & more \\[\\*really\\*\\].\n\n[Open this recommendation in CloudPi|https://cloudpi.example/recommendations/rec-1]',
    );
    expect(sent.issuetype).toEqual({ id: '10001' });
    expect(fake.requests.some((r) => r.path === '/jira/rest/api/2/search' && r.method === 'POST')).toBe(true);
  });

  it('says when the site is Data Center but Jira Cloud is selected', async () => {
    const wrong = jiraProvider.create({
      values: { deployment: 'cloud', siteUrl: fake.url, email: 'someone@example.com', apiToken: 'token' },
      urlPolicy: LOOPBACK,
      timeoutMs: 2_000,
    });
    const result = await wrong.verify();
    expect(result).toMatchObject({ ok: false, code: 'INVALID_INPUT', field: 'deployment' });
  });
});

describe('a site that is not Jira', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url?.startsWith('/rest/api/3/myself')) {
        res.writeHead(200, { 'Content-Type': 'text/html' });
        res.end('<html><body>Welcome to our intranet</body></html>');
        return;
      }
      res.writeHead(404, { 'Content-Type': 'text/html' });
      res.end('<html><body>Not found</body></html>');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('is NOT_FOUND on the Site URL field, for an HTML page or a 404', async () => {
    for (const [deployment, extra] of [
      ['cloud', { email: 'a@example.com', apiToken: 't' }],
      ['server', { personalAccessToken: 'p' }],
    ] as const) {
      const result = await jiraProvider
        .create({ values: { deployment, siteUrl: url, ...extra }, urlPolicy: LOOPBACK, timeoutMs: 2_000 })
        .verify();
      expect(result).toMatchObject({ ok: false, code: 'NOT_FOUND', field: 'siteUrl' });
      if (!result.ok) expect(result.message).toContain('Site URL');
    }
  });
});

describe('the Jira fake is as strict as Jira', () => {
  let fake: JiraFake;
  beforeAll(async () => {
    fake = await startJiraFake();
  });
  afterAll(async () => {
    await fake.close();
  });
  const basic = () =>
    `Basic ${Buffer.from(`${fake.validValues.email}:${fake.validValues.apiToken}`).toString('base64')}`;
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${fake.url}${path}`, {
      method: 'POST',
      headers: { Authorization: basic(), 'Content-Type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  it('answers 401 without auth (ErrorCollection) and with a wrong token (plain text)', async () => {
    const none = await fetch(`${fake.url}/rest/api/3/myself`);
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({
      errorMessages: ['You are not authenticated. Authentication required to perform this operation.'],
      errors: {},
    });
    const wrong = await fetch(`${fake.url}/rest/api/3/myself`, {
      headers: { Authorization: `Basic ${Buffer.from(`${fake.validValues.email}:nope`).toString('base64')}` },
    });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toBe('Client must be authenticated to access this resource.');
    expect((await fetch(`${fake.url}/rest/api/3/serverInfo`)).status).toBe(200);
  });

  it('answers 415 to a POST that is not JSON, and 400 to unknown search properties', async () => {
    const form = await post('/rest/api/3/issue', 'fields=1', {
      'Content-Type': 'application/x-www-form-urlencoded',
    });
    expect(form.status).toBe(415);
    const search = await post('/rest/api/3/search/jql', { jql: 'labels = "x"', startAt: 0 });
    expect(search.status).toBe(400);
  });

  it('rejects a plain-string description, labels with spaces and unknown priorities', async () => {
    const fields = {
      project: { key: 'OPS' },
      issuetype: { id: '10002' },
      summary: 'x',
      description: 'plain text',
      labels: ['has space'],
      priority: { name: 'Urgent' },
    };
    const answer = await post('/rest/api/3/issue', { fields });
    expect(answer.status).toBe(400);
    expect(await answer.json()).toEqual({
      errorMessages: [],
      errors: {
        description: 'Operation value must be an Atlassian Document (see the Atlassian Document Format)',
        labels: "The label 'has space' contains spaces which is invalid.",
        priority: "Priority name 'Urgent' is not valid",
      },
    });
    expect(fake.ticketCount()).toBe(0);
  });

  it('answers JQL it cannot parse with 400, and unbounded JQL too', async () => {
    expect((await post('/rest/api/3/search/jql', { jql: 'labels ~ "x"' })).status).toBe(400);
    expect((await post('/rest/api/3/search/jql', { jql: 'assignee = x' })).status).toBe(400);
    expect((await post('/rest/api/3/search/jql', { jql: '' })).status).toBe(400);
    const found = await post('/rest/api/3/search/jql', { jql: 'labels in ("a", "b") AND project = OPS' });
    expect(await found.json()).toEqual({ issues: [], isLast: true });
  });
});

describe('Jira credentials', () => {
  const policy = { allowHttp: false, allowPrivateNetworks: false };

  it('keeps only the site of a Cloud URL, and the context path of a Data Center URL', () => {
    expect(normalizeSiteUrl(new URL('https://acme.atlassian.net/jira/software/projects/OPS'), 'cloud')).toBe(
      'https://acme.atlassian.net',
    );
    expect(normalizeSiteUrl(new URL('https://jira.example.com/jira/browse/OPS-1'), 'server')).toBe(
      'https://jira.example.com/jira',
    );
    expect(normalizeSiteUrl(new URL('https://jira.example.com/secure/Dashboard.jspa'), 'server')).toBe(
      'https://jira.example.com',
    );
    expect(normalizeSiteUrl(new URL('https://jira.example.com/'), 'server')).toBe('https://jira.example.com');
  });

  it('builds Basic email:token for Cloud and Bearer for Data Center', () => {
    const cloud = parseJiraCredentials(
      { deployment: 'cloud', siteUrl: 'https://acme.atlassian.net/', email: 'bot@acme.com', apiToken: 'tok' },
      policy,
    );
    expect(cloud.authorization).toBe(`Basic ${Buffer.from('bot@acme.com:tok').toString('base64')}`);
    expect(cloud.secretField).toBe('apiToken');
    const server = parseJiraCredentials(
      { deployment: 'server', siteUrl: 'https://jira.example.com/jira', personalAccessToken: 'pat' },
      policy,
    );
    expect(server).toMatchObject({ authorization: 'Bearer pat', baseUrl: 'https://jira.example.com/jira' });
  });

  it('refuses plain http and private addresses on the Site URL field', () => {
    for (const siteUrl of ['http://acme.atlassian.net', 'https://10.0.0.5', 'https://169.254.169.254']) {
      try {
        parseJiraCredentials({ deployment: 'server', siteUrl, personalAccessToken: 'pat' }, policy);
        expect.unreachable();
      } catch (error) {
        expect(isAppError(error) && error.code).toBe('INVALID_URL');
        expect(isAppError(error) && error.details?.field).toBe('siteUrl');
      }
    }
  });
});

describe('Jira mapping', () => {
  it('turns plain text into valid ADF: paragraphs, hard breaks, a link, no empty text nodes', () => {
    const doc = toAdf('First line\nsecond line\n\n\n<b>kept</b>\n\n', 'https://cloudpi.example/r/1');
    expect(isValidAdf(doc)).toBe(true);
    expect(doc.content).toEqual([
      {
        type: 'paragraph',
        content: [
          { type: 'text', text: 'First line' },
          { type: 'hardBreak' },
          { type: 'text', text: 'second line' },
        ],
      },
      { type: 'paragraph', content: [{ type: 'text', text: '<b>kept</b>' }] },
      {
        type: 'paragraph',
        content: [
          {
            type: 'text',
            text: 'Open this recommendation in CloudPi',
            marks: [{ type: 'link', attrs: { href: 'https://cloudpi.example/r/1' } }],
          },
        ],
      },
    ]);
    expect(isValidAdf(toAdf(''))).toBe(true);
    expect(isValidAdf(toAdf('a\n\nb'))).toBe(true);
  });

  it('escapes wiki markup for Data Center', () => {
    expect(toWikiText('*bold* _em_ {code} [link|x] a\\b ??cite??')).toBe(
      '\\*bold\\* \\_em\\_ \\{code\\} \\[link\\|x\\] a&#92;b ?\\?cite?\\?',
    );
  });

  it('keeps summaries within 255 UTF-16 units without splitting a character', () => {
    expect(summaryOf('  Short  title ')).toBe('Short title');
    expect(summaryOf('')).toBe('CloudPi recommendation');
    const emoji = `${'a'.repeat(253)}😀😀`;
    const cut = summaryOf(emoji);
    expect(cut.length).toBeLessThanOrEqual(255);
    expect(cut).toBe(`${'a'.repeat(253)}…`);
  });

  it('uses keys without spaces as labels, and hashes the others deterministically', () => {
    expect(labelFor('cloudpi-123-jira')).toBe('cloudpi-123-jira');
    const spaced = labelFor('key with spaces');
    expect(spaced).toMatch(/^cloudpi-[0-9a-f]{32}$/);
    expect(labelFor('key with spaces')).toBe(spaced);
    expect(labelFor('x'.repeat(300))).toMatch(/^cloudpi-[0-9a-f]{32}$/);
    expect(jqlForKey('a"b\\c', {})).toBe('labels = "a\\"b\\\\c"');
  });

  it('normalizes status categories', () => {
    expect(normalizeStatus('new')).toBe('open');
    expect(normalizeStatus('indeterminate')).toBe('in_progress');
    expect(normalizeStatus('done')).toBe('done');
    expect(normalizeStatus(undefined)).toBe('open');
  });

  it('lists required fields without defaults, with their allowed values', () => {
    expect(
      requiredFieldsOf([
        { fieldId: 'summary', name: 'Summary', required: true, schema: { type: 'string' } },
        {
          fieldId: 'reporter',
          name: 'Reporter',
          required: true,
          hasDefaultValue: true,
          schema: { type: 'user' },
        },
        {
          fieldId: 'customfield_1',
          name: 'Team',
          required: true,
          schema: { type: 'option' },
          allowedValues: [{ id: '1', value: 'Red' }],
        },
        { fieldId: 'customfield_2', name: 'Optional', required: false, schema: { type: 'string' } },
      ]),
    ).toEqual([
      { key: 'customfield_1', name: 'Team', type: 'option', allowedValues: [{ id: '1', name: 'Red' }] },
    ]);
  });

  describe('errors', () => {
    const base = {
      method: 'GET',
      path: '/rest/api/3/myself',
      deployment: 'cloud' as const,
      host: 'acme.atlassian.net',
      urlField: 'siteUrl',
      secretField: 'apiToken',
    };
    const json = (body: unknown) => JSON.stringify(body);

    it('401 is INVALID_CREDENTIALS on the token field, with the vendor error as cause', () => {
      const error = errorFromResponse({
        ...base,
        status: 401,
        headers: new Headers(),
        text: 'Client must be authenticated to access this resource.',
      });
      expect(error.code).toBe('INVALID_CREDENTIALS');
      expect(error.details).toMatchObject({ field: 'apiToken', status: 401 });
      expect(error.message).toContain('https://id.atlassian.com/manage-profile/security/api-tokens');
      expect((error.cause as Error).name).toBe('JiraHttpError');
    });

    it('403 is FORBIDDEN with Jira words, or INVALID_CREDENTIALS behind a CAPTCHA', () => {
      const forbidden = errorFromResponse({
        ...base,
        status: 403,
        headers: new Headers(),
        text: json({ errorMessages: ['You do not have permission to browse projects.'], errors: {} }),
      });
      expect(forbidden.code).toBe('FORBIDDEN');
      expect(forbidden.message).toContain('You do not have permission to browse projects');
      const captcha = errorFromResponse({
        ...base,
        status: 403,
        headers: new Headers({ 'X-Seraph-LoginReason': 'AUTHENTICATION_DENIED' }),
        text: '',
      });
      expect(captcha.code).toBe('INVALID_CREDENTIALS');
      expect(captcha.message).toContain('CAPTCHA');
    });

    it('404 is NOT_FOUND: of the thing with a Jira body, of the site without one', () => {
      const issue = errorFromResponse({
        ...base,
        status: 404,
        headers: new Headers(),
        text: json({
          errorMessages: ['Issue does not exist or you do not have permission to see it.'],
          errors: {},
        }),
      });
      expect(issue.code).toBe('NOT_FOUND');
      expect(issue.details?.field).toBeUndefined();
      const site = errorFromResponse({ ...base, status: 404, headers: new Headers(), text: '<html></html>' });
      expect(site.code).toBe('NOT_FOUND');
      expect(site.details?.field).toBe('siteUrl');
    });

    it('429 carries retryAfterSeconds; 5xx is PROVIDER_ERROR with the status', () => {
      const limited = errorFromResponse({
        ...base,
        status: 429,
        headers: new Headers({ 'Retry-After': '7' }),
        text: '',
      });
      expect(limited.code).toBe('RATE_LIMITED');
      expect(limited.details?.retryAfterSeconds).toBe(7);
      const down = errorFromResponse({ ...base, status: 503, headers: new Headers(), text: '' });
      expect(down.code).toBe('PROVIDER_ERROR');
      expect(down.details?.status).toBe(503);
    });

    it('400 is INVALID_INPUT with the ErrorCollection as fieldErrors', () => {
      const error = errorFromResponse({
        ...base,
        method: 'POST',
        path: '/rest/api/3/issue',
        status: 400,
        headers: new Headers(),
        text: json({ errorMessages: [], errors: { customfield_10050: 'Cost center is required.' } }),
      });
      expect(error.code).toBe('INVALID_INPUT');
      expect(error.details?.fieldErrors).toEqual({ customfield_10050: 'Cost center is required.' });
    });

    it('a scoped token refused for scope is FORBIDDEN', () => {
      const error = errorFromResponse({
        ...base,
        status: 401,
        headers: new Headers(),
        text: json({ code: 401, message: 'Unauthorized; scope does not match' }),
      });
      expect(error.code).toBe('FORBIDDEN');
    });
  });
});
