/**
 * Teams without an app registration (local mode, for the Bot Framework Emulator / Teams Toolkit):
 * unsigned activities are answered, but only with a loopback service URL, and start-up says
 * loudly that nothing is authenticated.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useService } from '../support/service.js';
import { waitFor } from '../support/wait.js';

describe('Teams local mode (no MICROSOFT_APP_ID)', () => {
  const running = useService('pglite');
  let connector: Server;
  let connectorUrl: string;
  const received: { path: string; auth: string | undefined; body: Record<string, unknown> }[] = [];
  beforeAll(async () => {
    // The Emulator's connector side: records what the bot sends.
    connector = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({
          path: req.url ?? '',
          auth: req.headers.authorization,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>,
        });
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ id: `act-${received.length}` }));
      });
    });
    await new Promise<void>((resolve) => connector.listen(0, '127.0.0.1', resolve));
    connectorUrl = `http://127.0.0.1:${(connector.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => connector.close(() => resolve()));
  });

  const activity = (serviceUrl: string) => ({
    type: 'message',
    id: `m-${Math.random().toString(36).slice(2)}`,
    timestamp: new Date().toISOString(),
    channelId: 'msteams',
    serviceUrl,
    from: { id: '29:local-user', name: 'Local User', aadObjectId: '6d0c2f6e-1b1a-4c3c-9d59-2a1f1d7c9e10' },
    conversation: {
      id: 'a:local-chat',
      conversationType: 'personal',
      tenantId: '11111111-2222-4333-8444-555555555555',
    },
    recipient: { id: '28:local-bot', name: 'CloudPi' },
    text: 'help',
    channelData: { tenant: { id: '11111111-2222-4333-8444-555555555555' } },
  });

  it('says at start-up that Teams is not authenticated', () => {
    expect(running.logs()).toContain('Teams runs WITHOUT authentication');
    expect(running.service.teams.mode).toBe('local');
  });

  it('answers an unsigned activity whose service URL is on this machine', async () => {
    const res = await fetch(running.url('/api/messages'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(activity(connectorUrl)),
    });
    expect(res.status).toBe(200);
    const reply = await waitFor(() =>
      received.find((r) => r.path.includes('/v3/conversations/a%3Alocal-chat/activities')),
    );
    expect(reply.auth).toBeUndefined();
    expect(JSON.stringify(reply.body)).toContain('application/vnd.microsoft.card.adaptive');
  });

  it('refuses a service URL off this machine (nothing proves where it came from)', async () => {
    const before = received.length;
    const res = await fetch(running.url('/api/messages'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(activity('https://smba.trafficmanager.net/emea/')),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain(
      'loopback serviceUrl',
    );
    expect(received.length).toBe(before);
  });

  it('refuses a body that is not JSON or too large', async () => {
    const bad = await fetch(running.url('/api/messages'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"type":',
    });
    expect(bad.status).toBe(400);
    const big = await fetch(running.url('/api/messages'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...activity(connectorUrl), text: 'x'.repeat(600 * 1024) }),
    });
    expect(big.status).toBe(413);
  });
});
