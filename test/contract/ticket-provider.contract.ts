/**
 * The one contract suite of the TicketProvider port. Each adapter runs it against its strict
 * loopback fake (test/contract/<provider>.test.ts), like drizzle's pg-common tests():
 *
 *   ticketProviderContract({ factory: jiraProvider, startFake: startJiraFake });
 *
 * `skip` lists what an adapter cannot do, with the reason next to it.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TicketInput, TicketProvider, TicketProviderFactory } from '../../src/tickets/port.js';
import { errorOf } from '../support/errors.js';
import type { ProviderFake } from '../support/fakes/provider-fake.js';

export interface ContractOptions {
  readonly factory: TicketProviderFactory;
  readonly startFake: () => Promise<ProviderFake>;
  readonly skip?: readonly string[];
}

const LOOPBACK = { allowHttp: true, allowPrivateNetworks: true };

/** A port nothing listens on (taken, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export function ticketProviderContract(options: ContractOptions): void {
  const { factory } = options;
  const kind = factory.descriptor.kind;
  const maybe = (name: string) => (options.skip?.includes(name) ? it.skip : it);

  describe(`TicketProvider contract: ${kind}`, () => {
    let fake: ProviderFake;
    let provider: TicketProvider;
    const input = (title: string): TicketInput => ({
      title,
      description: 'Instance i-0abc is idle.\n\nStop it to save <b>$120</b> a month & more.',
      severity: 'high',
      link: 'https://cloudpi.example/recommendations/rec-1',
      routing: fake.routing,
    });

    beforeAll(async () => {
      fake = await options.startFake();
      provider = factory.create({
        values: fake.validValues,
        urlPolicy: LOOPBACK,
        timeoutMs: 2_000,
        maxAttempts: 3,
      });
    });
    afterAll(async () => {
      await fake?.close();
    });

    it('describes its credential fields as data', () => {
      const { fields, displayName } = factory.descriptor;
      expect(displayName.length).toBeGreaterThan(0);
      expect(fields.length).toBeGreaterThan(1);
      for (const field of fields) {
        expect(field.key).toMatch(/^[a-zA-Z][a-zA-Z0-9]*$/);
        expect(field.label.length).toBeGreaterThan(0);
      }
      expect(fields.some((f) => f.secret)).toBe(true);
      expect(fields.filter((f) => f.type === 'url').length).toBeGreaterThanOrEqual(1);
    });

    it('verifies valid credentials and names who it is', async () => {
      const result = await provider.verify();
      expect(result.ok, JSON.stringify(result)).toBe(true);
      if (result.ok) expect(result.identity.displayName.length).toBeGreaterThan(0);
    });

    it('verifies permission to create in the routed project', async () => {
      const result = await provider.verify(fake.routing);
      expect(result.ok, JSON.stringify(result)).toBe(true);
    });

    it('classifies a wrong secret as INVALID_CREDENTIALS, without throwing', async () => {
      const wrong = factory.create({ values: fake.wrongSecretValues, urlPolicy: LOOPBACK, timeoutMs: 2_000 });
      const result = await wrong.verify();
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect(['INVALID_CREDENTIALS', 'EXPIRED_CREDENTIALS']).toContain(result.code);
        expect(result.message.length).toBeGreaterThan(20);
        expect(result.message).not.toContain(Object.values(fake.wrongSecretValues).join(''));
      }
    });

    it('classifies an unreachable server as UNREACHABLE', async () => {
      const values = { ...fake.validValues };
      const urlKey = factory.descriptor.fields.find((f) => f.type === 'url')!.key;
      const port = await closedPort();
      const result = await factory
        .create({
          values: { ...values, [urlKey]: `http://127.0.0.1:${port}/` },
          urlPolicy: LOOPBACK,
          timeoutMs: 2_000,
          maxAttempts: 1,
        })
        .verify();
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect(result.code).toBe('UNREACHABLE');
        expect(result.field).toBe(urlKey);
      }
    });

    it('refuses private addresses unless allowed, and plain http unless allowed', async () => {
      const strict = factory.create({
        values: fake.validValues,
        urlPolicy: { allowHttp: true, allowPrivateNetworks: false },
      });
      const result = await strict.verify();
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.code).toBe('INVALID_URL');
      const https = factory.create({
        values: fake.validValues,
        urlPolicy: { allowHttp: false, allowPrivateNetworks: true },
      });
      const httpResult = await https.verify();
      expect(httpResult.ok).toBe(false);
      if (!httpResult.ok) expect(httpResult.code).toBe('INVALID_URL');
    });

    it('lists projects, ticket types and required fields', async () => {
      const projects = await provider.listProjects();
      expect(projects.length).toBeGreaterThan(0);
      const project = fake.routing.project;
      if (project) {
        expect(projects.some((p) => p.key === project || p.id === project || p.name === project)).toBe(true);
        const types = await provider.listTicketTypes(project);
        expect(types.length).toBeGreaterThan(0);
        const fields = await provider.describeFields(project, fake.routing.ticketType ?? types[0]!.name);
        expect(Array.isArray(fields)).toBe(true);
      }
    });

    it('creates a ticket that carries the idempotency key, and finds it again', async () => {
      const key = `cloudpi-contract-${kind}-1`;
      const before = fake.ticketCount();
      const created = await provider.createTicket(input('Stop idle instance i-0abc'), key);
      expect(created.key.length).toBeGreaterThan(0);
      expect(created.url).toMatch(/^https?:\/\//);
      expect(fake.ticketCount()).toBe(before + 1);
      expect(await provider.findTicket(key, fake.routing)).toEqual(created);
      const again = await provider.createTicket(input('Stop idle instance i-0abc'), key);
      expect(again).toEqual(created);
      expect(fake.ticketCount()).toBe(before + 1);
      expect(await provider.findTicket(`cloudpi-contract-${kind}-none`, fake.routing)).toBeUndefined();
    });

    it('reads and normalizes the ticket status', async () => {
      const created = await provider.createTicket(input('Status check'), `cloudpi-contract-${kind}-status`);
      expect((await provider.getTicket(created.key)).status).toBe('open');
      fake.setStatus(created.key, 'in_progress');
      expect((await provider.getTicket(created.key)).status).toBe('in_progress');
      fake.setStatus(created.key, 'done');
      const done = await provider.getTicket(created.key);
      expect(['done', 'closed']).toContain(done.status);
      expect(done.providerStatus.length).toBeGreaterThan(0);
    });

    it('says NOT_FOUND for a ticket that does not exist', async () => {
      const error = await errorOf(
        provider.getTicket(kind === 'azure-devops' ? '999999' : kind === 'jira' ? 'OPS-99999' : 'INC9999999'),
      );
      expect(error.code).toBe('NOT_FOUND');
    });

    maybe('recovers a ticket whose creation answer was lost')(
      'recovers a ticket whose creation answer was lost',
      async () => {
        const key = `cloudpi-contract-${kind}-lost`;
        const before = fake.ticketCount();
        fake.loseNextCreateResponse();
        await expect(provider.createTicket(input('Lost answer'), key)).rejects.toThrow();
        expect(fake.ticketCount()).toBe(before + 1);
        const retried = await provider.createTicket(input('Lost answer'), key);
        expect(fake.ticketCount()).toBe(before + 1);
        expect(retried.key.length).toBeGreaterThan(0);
      },
    );

    it('waits out 429 with Retry-After and succeeds', async () => {
      fake.requests.length = 0;
      fake.rateLimitNext(1, 1);
      const started = Date.now();
      const projects = await provider.listProjects();
      expect(projects.length).toBeGreaterThan(0);
      const times = fake.requests.map((r) => r.at);
      expect(times.length).toBeGreaterThanOrEqual(2);
      // The retry arrives no earlier than the Retry-After the fake asked for.
      expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(950);
      expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    });

    it('retries a 503 and succeeds', async () => {
      fake.failNext(1, 503);
      expect((await provider.listProjects()).length).toBeGreaterThan(0);
    });

    it('reports RATE_LIMITED when the limit outlasts the attempts', async () => {
      const once = factory.create({
        values: fake.validValues,
        urlPolicy: LOOPBACK,
        timeoutMs: 2_000,
        maxAttempts: 2,
      });
      fake.rateLimitNext(5, 1);
      const error = await errorOf(once.listProjects());
      expect(error.code).toBe('RATE_LIMITED');
      fake.rateLimitNext(0, 0);
    });

    it('times out a slow server with UNREACHABLE', async () => {
      const quick = factory.create({
        values: fake.validValues,
        urlPolicy: LOOPBACK,
        timeoutMs: 300,
        maxAttempts: 1,
      });
      fake.setDelay(1_000);
      try {
        const result = await quick.verify();
        expect(result.ok).toBe(false);
        if (!result.ok) expect(result.code).toBe('UNREACHABLE');
      } finally {
        fake.setDelay(0);
      }
    });
  });
}
