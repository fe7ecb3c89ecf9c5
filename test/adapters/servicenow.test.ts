/**
 * ServiceNow adapter beyond the contract suite: the OAuth grants (token reuse, expiry, refresh,
 * a revoked token, a wrong client), verify's classifications, the incident mapping, and the
 * fake's own strictness.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clearServiceNowTokenCache, serviceNowProvider } from '../../adapters/tickets/servicenow/index.js';
import type { ProviderValues, Severity, TicketInput, TicketProvider } from '../../src/tickets/port.js';
import { errorOf } from '../support/errors.js';
import {
  type ServiceNowFake,
  type ServiceNowFakeOptions,
  startServiceNowFake,
} from '../support/fakes/servicenow-fake.js';

const LOOPBACK = { allowHttp: true, allowPrivateNetworks: true };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let fake: ServiceNowFake | undefined;
const servers: Server[] = [];

async function start(options: ServiceNowFakeOptions = {}): Promise<ServiceNowFake> {
  fake = await startServiceNowFake(options);
  return fake;
}

function provider(values: ProviderValues, maxAttempts = 3): TicketProvider {
  return serviceNowProvider.create({ values, urlPolicy: LOOPBACK, timeoutMs: 2_000, maxAttempts });
}

function input(f: ServiceNowFake, overrides: Partial<TicketInput> = {}): TicketInput {
  return {
    title: 'Stop idle instance i-0abc',
    description: 'Instance i-0abc is idle.\n\nStop it to save $120 a month.',
    severity: 'high',
    link: 'https://cloudpi.example/recommendations/rec-1',
    routing: f.routing,
    ...overrides,
  };
}

/** A plain web server standing in for "the address is not a ServiceNow instance". */
async function webServer(status: number, body: string): Promise<string> {
  const server = createServer((_req, res) => {
    res.writeHead(status, { 'Content-Type': 'text/html' });
    res.end(body);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeEach(() => clearServiceNowTokenCache());
afterEach(async () => {
  await fake?.close();
  fake = undefined;
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('ServiceNow OAuth client credentials', () => {
  it('fetches one token and reuses it across calls and instances', async () => {
    const f = await start({ auth: 'oauth_client_credentials' });
    const p = provider(f.validValues);
    const result = await p.verify(f.routing);
    expect(result.ok, JSON.stringify(result)).toBe(true);
    // The token's user, found with gs.getUserID(): the registry entry's OAuth Application User.
    if (result.ok) expect(result.identity.displayName).toBe('CloudPi Integration');
    await p.listProjects();
    const created = await p.createTicket(input(f), 'cc-reuse');
    await p.getTicket(created.key);
    await provider(f.validValues).getTicket(created.key);
    expect(f.tokenRequests.map((t) => t.grantType)).toEqual(['client_credentials']);
    const tokenCall = f.requests.find((r) => r.path === '/oauth_token.do');
    expect(tokenCall?.method).toBe('POST');
  });

  it('gets a new token shortly before the old one expires', async () => {
    const f = await start({ auth: 'oauth_client_credentials', tokenLifetimeSeconds: 2 });
    const p = provider(f.validValues);
    await p.listProjects();
    await p.listProjects();
    expect(f.tokenRequests).toHaveLength(1);
    // expires_in 1 s: the adapter stops using the token a little before that.
    await sleep(1_000);
    await p.listProjects();
    expect(f.tokenRequests.map((t) => t.grantType)).toEqual(['client_credentials', 'client_credentials']);
  });

  it('drops a token the instance refuses and retries once with a fresh one', async () => {
    const f = await start({ auth: 'oauth_client_credentials' });
    const p = provider(f.validValues);
    await p.listProjects();
    f.expireAccessTokens();
    f.requests.length = 0;
    expect((await p.listProjects()).length).toBeGreaterThan(0);
    expect(f.tokenRequests).toHaveLength(2);
    expect(f.requests.map((r) => r.path.split('?')[0])).toEqual([
      '/api/now/table/sys_user_group',
      '/oauth_token.do',
      '/api/now/table/sys_user_group',
    ]);
  });

  it('classifies a wrong client secret as INVALID_CREDENTIALS naming the Client ID and secret', async () => {
    const f = await start({ auth: 'oauth_client_credentials' });
    const result = await provider(f.wrongSecretValues).verify();
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.code).toBe('INVALID_CREDENTIALS');
    expect(result.message).toMatch(/Invalid Client ID or client secret/);
    expect(result.field).toBe('clientSecret');
    expect(result.message).not.toContain(f.wrongSecretValues.clientSecret);
    // A refused token is not retried.
    expect(f.tokenRequests).toHaveLength(1);
  });
});

describe('ServiceNow OAuth password grant', () => {
  it('fetches one token and reuses it', async () => {
    const f = await start({ auth: 'oauth_password' });
    const p = provider(f.validValues);
    expect((await p.verify()).ok).toBe(true);
    await p.listProjects();
    await p.findTicket('pw-none', f.routing);
    expect(f.tokenRequests.map((t) => t.grantType)).toEqual(['password']);
  });

  it('refreshes an expired token with the refresh token', async () => {
    const f = await start({ auth: 'oauth_password', tokenLifetimeSeconds: 2 });
    const p = provider(f.validValues);
    await p.listProjects();
    await sleep(1_000);
    await p.listProjects();
    await p.listProjects();
    expect(f.tokenRequests.map((t) => t.grantType)).toEqual(['password', 'refresh_token']);
  });

  it('signs in again when the refresh token is refused', async () => {
    const f = await start({ auth: 'oauth_password', tokenLifetimeSeconds: 2 });
    const p = provider(f.validValues);
    await p.listProjects();
    f.revokeRefreshTokens();
    await sleep(1_000);
    expect((await p.listProjects()).length).toBeGreaterThan(0);
    expect(f.tokenRequests.map((t) => t.grantType)).toEqual(['password', 'refresh_token', 'password']);
  });

  it('classifies a wrong client secret as INVALID_CREDENTIALS naming the Client ID and secret', async () => {
    const f = await start({ auth: 'oauth_password' });
    const result = await provider(f.wrongSecretValues).verify();
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.code).toBe('INVALID_CREDENTIALS');
    expect(result.message).toMatch(/Client ID/);
    expect(result.message).toMatch(/client secret/);
    expect(result.field).toBe('clientSecret');
  });

  it('classifies a wrong password as INVALID_CREDENTIALS without leaking it', async () => {
    const f = await start({ auth: 'oauth_password' });
    const result = await provider({ ...f.validValues, password: 'not-the-password' }).verify();
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.code).toBe('INVALID_CREDENTIALS');
    expect(result.message).toMatch(/password/);
    expect(result.message).not.toContain('not-the-password');
  });
});

describe('ServiceNow verify', () => {
  it('names a wrong password for Basic authentication', async () => {
    const f = await start();
    const result = await provider(f.wrongSecretValues).verify();
    expect(result).toMatchObject({ ok: false, code: 'INVALID_CREDENTIALS', field: 'password' });
    if (!result.ok) expect(result.message).toMatch(/^User name or password is wrong/);
  });

  it('names missing fields instead of connecting', async () => {
    const f = await start({ auth: 'oauth_password' });
    const { clientId: _clientId, ...values } = f.validValues;
    const result = await provider(values).verify();
    expect(result).toMatchObject({ ok: false, code: 'INVALID_INPUT', field: 'clientId' });
    expect(f.requests).toHaveLength(0);
  });

  it('says FORBIDDEN, naming the itil role, when the user may not read incidents', async () => {
    const f = await start({ roles: ['snc_internal'] });
    const result = await provider(f.validValues).verify();
    expect(result).toMatchObject({ ok: false, code: 'FORBIDDEN', field: 'username' });
    if (!result.ok) expect(result.message).toMatch(/may not read incidents.*itil/);
  });

  it('says FORBIDDEN, naming the itil role, when the user may read but not create incidents', async () => {
    const f = await start({ roles: ['snc_internal', 'sn_incident_read'] });
    const result = await provider(f.validValues).verify();
    expect(result).toMatchObject({ ok: false, code: 'FORBIDDEN', field: 'username' });
    if (!result.ok) expect(result.message).toMatch(/may not create incidents.*itil/);
  });

  it('says NOT_FOUND on the URL field for an address that is not a ServiceNow instance', async () => {
    const url = await webServer(404, '<html><body>Not here</body></html>');
    const result = await provider({
      instanceUrl: url,
      authType: 'basic',
      username: 'u',
      password: 'p',
    }).verify();
    expect(result).toMatchObject({ ok: false, code: 'NOT_FOUND', field: 'instanceUrl' });
    if (!result.ok) expect(result.message).toMatch(/This does not look like a ServiceNow instance/);
  });

  it('says when a developer instance is hibernating', async () => {
    const url = await webServer(200, '<html><body>Your instance is hibernating.</body></html>');
    const result = await provider({
      instanceUrl: url,
      authType: 'basic',
      username: 'u',
      password: 'p',
    }).verify();
    expect(result).toMatchObject({ ok: false, code: 'NOT_FOUND', field: 'instanceUrl' });
    if (!result.ok) expect(result.message).toMatch(/hibernating/);
  });

  it('checks the routed assignment group, by sys_id or by name', async () => {
    const f = await start();
    const p = provider(f.validValues);
    expect((await p.verify({ assignmentGroup: 'Cloud Operations' })).ok).toBe(true);
    const missing = await p.verify({ assignmentGroup: 'No Such Group' });
    expect(missing).toMatchObject({ ok: false, code: 'NOT_FOUND', field: 'assignmentGroup' });
    // Inactive groups are not offered as projects either.
    expect((await p.listProjects()).map((g) => g.name)).toEqual([
      'Cloud Operations',
      'Network',
      'Service Desk',
    ]);
  });
});

describe('ServiceNow incidents', () => {
  it('maps the recommendation onto incident fields and sends nothing ServiceNow would ignore', async () => {
    const f = await start();
    const p = provider(f.validValues);
    const title = `Rightsize ${'very-long-resource-name '.repeat(10)}`;
    const created = await p.createTicket(
      input(f, {
        title,
        severity: 'critical',
        routing: { ...f.routing, assignmentGroup: 'Cloud Operations' },
      }),
      'map-1',
    );
    const incident = f.incidents().find((i) => i.number === created.key)!;
    expect(created.url).toBe(`${f.url}/nav_to.do?uri=incident.do?sys_id=${incident.sys_id}`);
    expect(incident.short_description!.length).toBeLessThanOrEqual(160);
    expect(incident.short_description).toMatch(/^Rightsize very-long-resource-name .*…$/);
    expect(incident.description).toBe(
      'Instance i-0abc is idle.\n\nStop it to save $120 a month.\n\nOpen in CloudPi: https://cloudpi.example/recommendations/rec-1',
    );
    expect(incident).toMatchObject({
      urgency: '1',
      impact: '1',
      priority: '1',
      assignment_group: f.routing.assignmentGroup,
      category: 'software',
      correlation_id: 'map-1',
      correlation_display: 'CloudPi',
      u_cost_center: 'CC-1042',
      state: '1',
    });
    expect(f.ignoredFields).toEqual([]);
  });

  it('maps severities onto urgency and impact, giving priorities 1 to 5', async () => {
    const f = await start();
    const p = provider(f.validValues);
    const severities: Severity[] = ['critical', 'high', 'medium', 'low', 'info'];
    const priorities: string[] = [];
    for (const severity of severities) {
      const created = await p.createTicket(input(f, { severity }), `sev-${severity}`);
      priorities.push(f.incidents().find((i) => i.number === created.key)!.priority!);
    }
    expect(priorities).toEqual(['1', '2', '3', '4', '5']);
  });

  it('takes urgency/impact from the routing priority map, and refuses a value it cannot read', async () => {
    const f = await start();
    const p = provider(f.validValues);
    const created = await p.createTicket(
      input(f, { severity: 'low', routing: { ...f.routing, priorityMap: { low: '1/3' } } }),
      'map-priority',
    );
    expect(f.incidents().find((i) => i.number === created.key)).toMatchObject({ urgency: '1', impact: '3' });
    const before = f.ticketCount();
    const error = await errorOf(
      p.createTicket(
        input(f, { severity: 'low', routing: { ...f.routing, priorityMap: { low: 'P1' } } }),
        'bad',
      ),
    );
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toMatch(/urgency\/impact/);
    expect(f.ticketCount()).toBe(before);
  });

  it('describes mandatory fields, and reports the ones a create lacks as INVALID_INPUT', async () => {
    const f = await start();
    const p = provider(f.validValues);
    expect(await p.describeFields(f.routing.project!, 'incident')).toEqual([
      { key: 'u_cost_center', name: 'Cost center', type: 'string' },
    ]);
    f.setMandatory('u_environment', true);
    expect(await p.describeFields(f.routing.project!, 'incident')).toContainEqual({
      key: 'u_environment',
      name: 'Environment',
      type: 'option',
      allowedValues: [
        { id: 'prod', name: 'Production' },
        { id: 'nonprod', name: 'Non-production' },
      ],
    });
    const error = await errorOf(
      p.createTicket(input(f, { routing: { ...f.routing, fieldValues: {} } }), 'no-cc'),
    );
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.details.fieldErrors).toEqual({ 'Cost center': 'is mandatory', Environment: 'is mandatory' });
  });

  it('normalizes every base incident state', async () => {
    const f = await start();
    const p = provider(f.validValues);
    const { key } = await p.createTicket(input(f), 'states');
    const expected = [
      ['1', 'open', 'New'],
      ['2', 'in_progress', 'In Progress'],
      ['3', 'in_progress', 'On Hold'],
      ['6', 'done', 'Resolved'],
      ['7', 'closed', 'Closed'],
      ['8', 'closed', 'Canceled'],
    ] as const;
    for (const [state, status, providerStatus] of expected) {
      f.setState(key, state);
      expect(await p.getTicket(key)).toEqual({ status, providerStatus });
    }
    expect((await errorOf(p.getTicket('INC0999999'))).code).toBe('NOT_FOUND');
  });

  it('finds a ticket by a key that contains the query separator', async () => {
    const f = await start();
    const p = provider(f.validValues);
    const created = await p.createTicket(input(f), 'key^with^carets');
    expect(await p.findTicket('key^with^carets', f.routing)).toEqual(created);
    expect(await p.findTicket('key', f.routing)).toBeUndefined();
  });

  it('retries a rate-limited create after looking the incident up again, without a duplicate', async () => {
    const f = await start();
    const p = provider(f.validValues);
    const before = f.ticketCount();
    f.requests.length = 0;
    // Only the POST's query starts with sysparm_fields.
    f.rateLimitNext(1, 1, /^\/api\/now\/table\/incident\?sysparm_fields/);
    const created = await p.createTicket(input(f), 'rate-limited-create');
    expect(f.ticketCount()).toBe(before + 1);
    expect(await p.findTicket('rate-limited-create', f.routing)).toEqual(created);
    const calls = f.requests.map(
      (r) => `${r.method} ${r.path.split('?')[0]!.replace('/api/now/table/', '')}`,
    );
    // Find, check the assignment group, create (429), find again, create, then the test's own find.
    expect(calls).toEqual([
      'GET incident',
      'GET sys_user_group',
      'POST incident',
      'GET incident',
      'POST incident',
      'GET incident',
    ]);
  });

  it('does not repeat a create that failed with a 500 (it may have happened)', async () => {
    const f = await start();
    const p = provider(f.validValues);
    f.requests.length = 0;
    f.failNext(1, 500, /^\/api\/now\/table\/incident\?sysparm_fields/);
    const error = await errorOf(p.createTicket(input(f), 'five-hundred'));
    expect(error.code).toBe('PROVIDER_ERROR');
    expect(error.details.status).toBe(500);
    expect(f.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
  });
});

describe('ServiceNow fake strictness', () => {
  it('answers a request without credentials with ServiceNow 401 envelope', async () => {
    const f = await start();
    const response = await fetch(`${f.url}/api/now/table/incident`, {
      headers: { Accept: 'application/json' },
    });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({
      error: { message: 'User Not Authenticated', detail: 'Required to provide Auth information' },
      status: 'failure',
    });
  });

  it('refuses a POST that is not JSON, and ignores unknown fields like ServiceNow', async () => {
    const f = await start();
    const auth = `Basic ${Buffer.from(`${f.credentials.username}:${f.credentials.password}`).toString('base64')}`;
    const url = `${f.url}/api/now/table/incident`;
    const text = await fetch(url, {
      method: 'POST',
      headers: { Authorization: auth, Accept: 'application/json', 'Content-Type': 'text/plain' },
      body: '{}',
    });
    expect(text.status).toBe(415);
    const created = await fetch(url, {
      method: 'POST',
      headers: { Authorization: auth, Accept: 'application/json', 'Content-Type': 'application/json' },
      body: JSON.stringify({ short_description: 'x', u_cost_center: 'CC-1', u_no_such_field: 'y' }),
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toMatch(/\/api\/now\/table\/incident\/[0-9a-f]{32}$/);
    expect(f.ignoredFields).toEqual(['u_no_such_field']);
  });

  it('answers a refused token request with ServiceNow opaque body', async () => {
    const f = await start({ auth: 'oauth_client_credentials' });
    const response = await fetch(`${f.url}/oauth_token.do`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'x', client_secret: 'y' }),
    });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error_description: 'access_denied', error: 'server_error' });
  });
});
