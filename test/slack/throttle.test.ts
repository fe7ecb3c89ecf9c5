import { describe, expect, it } from 'vitest';
import { ChannelPostThrottle, LEADING_HOLD_MS } from '../../adapters/chat/slack/throttle.js';

/** A promise with its resolve, for a post whose answer the test releases. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const tick = () => new Promise((r) => setTimeout(r, 20));

describe("ChannelPostThrottle (Slack's per-channel posting limit)", () => {
  it('lets a burst of 3 through, then one a second, counted from the answers', async () => {
    // A clock that moves only while a post waits for its token.
    let now = 0;
    const throttle = new ChannelPostThrottle(undefined, {
      now: () => now,
      sleep: async (ms) => {
        now += ms;
      },
    });
    const times: number[] = [];
    await Promise.all(
      Array.from({ length: 10 }, () =>
        throttle.run('T1|C1', async () => {
          times.push(now);
          now += 5; // Slack's answer takes 5 ms
        }),
      ),
    );
    // First answer at 5 ms: the bucket refills from there, one token a second.
    expect(times.slice(0, 3)).toEqual([0, 5, 10]);
    for (let i = 3; i < 10; i++) expect(times[i]).toBeGreaterThanOrEqual(5 + (i - 2) * 1000);
    expect(times[9]).toBeLessThan(5 + 7 * 1000 + 20);
  });

  it("sends another channel's first post before this channel's burst posts", async () => {
    const throttle = new ChannelPostThrottle();
    const order: string[] = [];
    const b1 = deferred();
    // B's first post is on its way (no answer yet).
    const b = throttle.run('T1|B', async () => {
      order.push('B1 sent');
      await b1.promise;
    });
    // A's first post goes at once (A's bucket is full); its second would use a burst token.
    const a = Promise.all([
      throttle.run('T1|A', async () => {
        order.push('A1 sent');
      }),
      throttle.run('T1|A', async () => {
        order.push('A2 sent');
      }),
    ]);
    await tick();
    expect(order).toEqual(['B1 sent', 'A1 sent']);
    b1.resolve();
    await Promise.all([a, b]);
    expect(order).toEqual(['B1 sent', 'A1 sent', 'A2 sent']);
  });

  it('holds a burst post for other first posts at most LEADING_HOLD_MS, and never a paced one', async () => {
    const slept: number[] = [];
    let now = 0;
    const throttle = new ChannelPostThrottle(
      { perSecond: 1, burst: 3 },
      {
        now: () => now,
        sleep: async (ms) => {
          slept.push(ms);
          if (ms !== LEADING_HOLD_MS) now += ms;
        },
      },
    );
    const never = deferred();
    // B's first post never answers while A posts.
    void throttle.run('T1|B', () => never.promise);
    const sent: number[] = [];
    for (let i = 0; i < 5; i++)
      await throttle.run('T1|A', async () => {
        sent.push(now);
      });
    // A2 and A3 (burst tokens) waited once each for B, up to the hold; A4 and A5 waited for
    // their tokens only.
    expect(slept.filter((ms) => ms === LEADING_HOLD_MS)).toHaveLength(2);
    expect(sent).toHaveLength(5);
    expect(sent[3]).toBeGreaterThanOrEqual(1000);
    expect(sent[4]).toBeGreaterThanOrEqual(2000);
    never.resolve();
  });
});
