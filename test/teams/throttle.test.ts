import { describe, expect, it } from 'vitest';
import { ConversationThrottle } from '../../adapters/chat/teams/throttle.js';

describe("ConversationThrottle (Teams' per-conversation limits)", () => {
  it('lets 7 sends a second and 60 in 30 seconds through per conversation, never more', async () => {
    // A clock that moves only while a send waits.
    let now = 0;
    const throttle = new ConversationThrottle(undefined, {
      now: () => now,
      sleep: async (ms) => {
        now += ms;
      },
    });
    const times: number[] = [];
    for (let i = 0; i < 130; i++) {
      await throttle.acquire('19:a@thread.tacv2');
      times.push(now);
    }
    const within = (from: number, ms: number) => times.filter((t) => t >= from && t < from + ms).length;
    for (const t of times) {
      expect(within(t, 1_000)).toBeLessThanOrEqual(7);
      expect(within(t, 30_000)).toBeLessThanOrEqual(60);
    }
    expect(times.slice(0, 7)).toEqual(Array(7).fill(0));
    expect(times[7]).toBeGreaterThan(1_000);
    // The 61st send waits for the first 30-second window to pass, and so on.
    expect(times[60]! - times[0]!).toBeGreaterThan(30_000);
    expect(times[120]! - times[60]!).toBeGreaterThan(30_000);
    // Not slower than the limits need: 130 sends fit in a little over 60 seconds.
    expect(times.at(-1)!).toBeLessThan(70_000);
  });

  it('keeps conversations apart', async () => {
    const throttle = new ConversationThrottle([{ count: 1, windowMs: 60_000 }]);
    await throttle.acquire('a');
    const other = await Promise.race([
      throttle.acquire('b').then(() => 'sent'),
      new Promise((r) => setTimeout(() => r('waited'), 200)),
    ]);
    expect(other).toBe('sent');
  });
});
