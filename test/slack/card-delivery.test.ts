/**
 * Card delivery problems (issue 5 point 6): a channel the bot was removed from answers
 * not_in_channel, which no retry cures: that card is marked failed with the reason and audited,
 * the other channel still gets its card, and admins see the problem on App Home. A 429 on
 * chat.postMessage is waited out (Retry-After) and the card is posted.
 */
import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { useSlackWorkspace } from './harness.js';
import { textOf } from './helpers.js';

const GONE = 'C0DELIVGONE';
const KEPT = 'C0DELIVKEPT';

describe('Slack card delivery problems', () => {
  const ws = useSlackWorkspace();
  const running = ws.running;

  async function ingest(id: string): Promise<void> {
    const { repositories } = running.service;
    const tenant = await repositories.tenants.ensure('slack', ws.slack.teamId, 'Test');
    const key = (await repositories.apiKeys.create(tenant.id, `ingest-${id}`)).key;
    const res = await fetch(`${running.service.url}/api/v1/recommendations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id, title: `Delete idle volume ${id}`, cloud: 'aws', monthlySavings: 12 }),
    });
    expect(res.status).toBe(200);
  }

  it('marks the card of a channel the bot left as failed, posts the other, shows it to admins', async () => {
    const { repositories } = running.service;
    const tenant = await repositories.tenants.ensure('slack', ws.slack.teamId, 'Test');
    for (const channel of [GONE, KEPT]) {
      ws.slack.joinChannel(channel);
      await repositories.routes.create(tenant.id, {
        platform: 'slack',
        channelId: channel,
        filters: { clouds: ['aws'] },
        createdBy: 'slack:U0ADMIN',
      });
    }
    ws.slack.leaveChannel(GONE);

    await ingest('rec-delivery-1');
    const rec = await waitFor(async () => {
      const row = await repositories.recommendations.findByExternalId(tenant.id, 'rec-delivery-1');
      if (!row) return undefined;
      const rows = await repositories.recommendations.cards(tenant.id, row.id);
      return rows.length === 2 && rows.every((c) => c.state !== 'pending') ? row : undefined;
    });
    const rows = await repositories.recommendations.cards(tenant.id, rec.id);
    const gone = rows.find((c) => c.channelId === GONE)!;
    const kept = rows.find((c) => c.channelId === KEPT)!;
    expect(gone).toMatchObject({ state: 'failed', lastError: 'not_in_channel', messageRef: null });
    expect(kept.state).toBe('posted');
    expect(kept.fallbackState).toBeNull();
    // Handed to the fallback; with no fallback channel set up, that is recorded for admins.
    const handed = await waitFor(async () => {
      const row = (await repositories.recommendations.cards(tenant.id, rec.id)).find((c) => c.id === gone.id);
      return row?.fallbackState === 'unavailable' ? row : undefined;
    });
    expect(handed.fallbackNote).toContain('/cloudpi smtp');
    const fallbackAudit = await repositories.audit.recent(tenant.id, 20, 'card.fallback_unavailable');
    expect(fallbackAudit.map((a) => a.target)).toEqual([`slack:${GONE}`]);
    const posts = ws.slack.messages.filter((m) => m.method === 'chat.postMessage');
    expect(posts.map((m) => m.channel)).toEqual([KEPT]);
    // Not retried: exactly one attempt at the channel the bot left.
    const attempts = ws.slack.calls.filter((c) => c.method === 'chat.postMessage' && c.body.channel === GONE);
    expect(attempts.map((c) => c.error)).toEqual(['not_in_channel']);

    const audit = await repositories.audit.recent(tenant.id, 20, 'card.delivery_failed');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: 'system', target: `slack:${GONE}` });
    expect(audit[0]!.after).toMatchObject({ reason: 'not_in_channel', cardId: gone.id });

    // Admins see the problem on App Home; members do not.
    const adminHome = JSON.stringify(await ws.openHome(ws.slack.users.admin));
    expect(adminHome).toContain('Delivery problems');
    expect(adminHome).toContain(`<#${GONE}>`);
    expect(adminHome).toContain('not_in_channel');
    expect(adminHome).toContain('Fallback not possible');
    const memberHome = await ws.openHome(ws.slack.users.member);
    expect(textOf((memberHome as { blocks?: unknown }).blocks)).not.toContain('Delivery problems');
  });

  it('waits out a 429 on chat.postMessage (Retry-After) and posts the card', async () => {
    const { repositories } = running.service;
    const tenant = await repositories.tenants.ensure('slack', ws.slack.teamId, 'Test');
    const before = ws.slack.messages.filter((m) => m.method === 'chat.postMessage').length;
    ws.slack.rateLimitNext('chat.postMessage', 1, 1);
    await ingest('rec-delivery-2');
    const posted = await waitFor(() => {
      const all = ws.slack.messages.filter((m) => m.method === 'chat.postMessage');
      return all.length > before ? all.slice(before) : undefined;
    });
    expect(posted.map((m) => m.channel)).toEqual([KEPT]);
    const calls = ws.slack.calls.filter((c) => c.method === 'chat.postMessage' && c.body.channel !== GONE);
    const limited = calls.find((c) => c.status === 429)!;
    const accepted = calls.filter((c) => c.status === 200).at(-1)!;
    expect(limited).toBeDefined();
    expect(accepted.at - limited.at).toBeGreaterThanOrEqual(900);
    const rec = await repositories.recommendations.findByExternalId(tenant.id, 'rec-delivery-2');
    const rows = await waitFor(async () => {
      const r = await repositories.recommendations.cards(tenant.id, rec!.id);
      return r.find((c) => c.channelId === KEPT)?.state === 'posted' ? r : undefined;
    });
    expect(rows.find((c) => c.channelId === KEPT)?.messageRef).toBe(posted[0]!.ts);
    // The channel the bot left fails again for the new card, without a retry.
    expect(rows.find((c) => c.channelId === GONE)).toMatchObject({
      state: 'failed',
      lastError: 'not_in_channel',
    });
  });

  it('posts a request of 25 new recommendations in batches, each card once, when some posts are refused on the way', async () => {
    const { repositories } = running.service;
    const tenant = await repositories.tenants.ensure('slack', ws.slack.teamId, 'Test');
    const key = (await repositories.apiKeys.create(tenant.id, 'ingest-batch')).key;
    const before = ws.slack.messages.filter(
      (m) => m.method === 'chat.postMessage' && m.channel === KEPT,
    ).length;
    // Two jobs (20 + 5), each card at the channel's pace (one a second). More 429s than the
    // client retries: a card of the batch waits for its job's next run.
    ws.slack.rateLimitNext('chat.postMessage', 6, 1);
    const items = Array.from({ length: 25 }, (_, i) => ({
      id: `rec-batch-${i}`,
      title: `Delete idle snapshot snap-batch-${i}`,
      cloud: 'aws',
      monthlySavings: 3,
    }));
    const res = await fetch(`${running.service.url}/api/v1/recommendations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(items),
    });
    expect(res.status).toBe(200);
    const posted = await waitFor(() => {
      const all = ws.slack.messages.filter((m) => m.method === 'chat.postMessage' && m.channel === KEPT);
      return all.length >= before + 25 ? all.slice(before) : undefined;
    }, 90_000);
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // a second post of any would show now
    const all = ws.slack.messages.filter((m) => m.method === 'chat.postMessage' && m.channel === KEPT);
    expect(all.slice(before)).toHaveLength(25);
    const titles = posted.map((m) => /snap-batch-(\d+)/.exec(String(m.text))?.[1]);
    expect(new Set(titles).size).toBe(25);
    // Every card row holds the ts of its one post; the channel the bot left failed for each.
    const ids = (
      await repositories.recommendations.findManyByExternalIds(
        tenant.id,
        items.map((i) => i.id),
      )
    ).map((r) => r.id);
    const rows = await waitFor(async () => {
      const found = await repositories.recommendations.cardsOf(tenant.id, ids);
      const gone = found.filter((c) => c.channelId === GONE);
      return gone.length === 25 && gone.every((c) => c.state === 'failed') ? found : undefined;
    }, 30_000);
    const kept = rows.filter((c) => c.channelId === KEPT);
    expect(kept).toHaveLength(25);
    expect(kept.every((c) => c.state === 'posted')).toBe(true);
    expect(new Set(kept.map((c) => c.messageRef))).toEqual(new Set(posted.map((m) => m.ts)));
  }, 120_000);
});
