/** Web API client options: Retry-After waited out, timeouts, per-workspace tier limits. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { webApi } from '@slack/bolt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChannelSpacer, slackClientOptions, TierLimiter } from '../../adapters/chat/slack/web-client.js';
import { type SlackFake, startSlackFake } from '../support/fakes/slack-fake.js';

describe('Slack Web API client', () => {
  let slack: SlackFake;
  beforeAll(async () => {
    slack = await startSlackFake();
  });
  afterAll(async () => {
    await slack?.close();
  });

  it('waits out Retry-After on 429 and then succeeds', async () => {
    const client = new webApi.WebClient(slack.botToken, slackClientOptions({ apiUrl: slack.apiUrl }));
    slack.rateLimitNext('auth.test', 2, 1);
    const started = Date.now();
    const result = await client.auth.test();
    expect(result.team_id).toBe(slack.teamId);
    const calls = slack.calls.filter((c) => c.method === 'auth.test' && c.at >= started);
    expect(calls.map((c) => c.status)).toEqual([429, 429, 200]);
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(1_000);
    expect(calls[2]!.at - calls[1]!.at).toBeGreaterThanOrEqual(1_000);
  });

  it('gives up on a call that does not answer within the timeout', async () => {
    const sockets = new Set<import('node:net').Socket>();
    const silent = createServer(() => {});
    silent.on('connection', (s) => sockets.add(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const apiUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/api/`;
    const client = new webApi.WebClient(
      'xoxb-1-2-3',
      slackClientOptions({ apiUrl, timeoutMs: 200, retries: 1 }),
    );
    const started = Date.now();
    await expect(client.auth.test()).rejects.toMatchObject({ code: 'slack_webapi_request_error' });
    expect(Date.now() - started).toBeLessThan(5_000);
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  it('keeps each workspace under its method tier, without slowing another workspace', async () => {
    let now = 0;
    const limiter = new TierLimiter(() => now);
    // users.info is tier 4: 100 a minute per token.
    for (let i = 0; i < 100; i++) await limiter.acquire('Bearer a', 'users.info');
    let done = false;
    const waiting = limiter.acquire('Bearer a', 'users.info').then(() => {
      done = true;
    });
    await limiter.acquire('Bearer b', 'users.info');
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(done).toBe(false);
    now = 60_001;
    await waiting;
    expect(done).toBe(true);
  });

  it('reserves turns: a reserved call waits in line with the others, and goes without waiting when it is made', async () => {
    let now = 0;
    const limiter = new TierLimiter(() => now);
    // chat.update is tier 3: 50 a minute per token.
    for (let i = 0; i < 49; i++) await limiter.acquire('xoxb-a', 'chat.update');
    await limiter.reserve('xoxb-a', 'chat.update', 1); // the 50th turn
    let reservedSecond = false;
    const second = limiter.reserve('xoxb-a', 'chat.update', 1).then(() => {
      reservedSecond = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(reservedSecond).toBe(false); // the window is full: it waits like any call
    // The reserved call does not wait, and is not counted twice.
    expect(await limiter.acquire('xoxb-a', 'chat.update')).toBe(false);
    now = 60_001;
    await second;
    expect(await limiter.acquire('xoxb-a', 'chat.update')).toBe(false);
  });

  it('spaces posts to one channel of a workspace a second apart; other channels are not delayed', async () => {
    const spacer = new ChannelSpacer(200);
    const start = Date.now();
    const doneAt: Record<string, number> = {};
    const mark = (name: string) => () => {
      doneAt[name] = Date.now() - start;
    };
    await Promise.all([
      spacer.acquire('T1', 'C1').then(mark('first')),
      spacer.acquire('T1', 'C1').then(mark('second')),
      spacer.acquire('T1', 'C1').then(mark('third')),
      spacer.acquire('T1', 'C2').then(mark('otherChannel')),
      spacer.acquire('T2', 'C1').then(mark('otherWorkspace')),
    ]);
    expect(doneAt.first).toBeLessThan(100);
    expect(doneAt.otherChannel).toBeLessThan(100);
    expect(doneAt.otherWorkspace).toBeLessThan(100);
    expect(doneAt.second).toBeGreaterThanOrEqual(190);
    expect(doneAt.third).toBeGreaterThanOrEqual(390);
  });
});
