import { describe, expect, it } from 'vitest';
import { SharedReads } from '../../src/commands/shared-reads.js';

/** A store whose reads take a turn of the event loop, counting the reads it served. */
function store() {
  let value = 0;
  let reads = 0;
  return {
    write: (next: number) => {
      value = next;
    },
    read: async () => {
      reads++;
      const seen = value;
      await new Promise((resolve) => setImmediate(resolve));
      return seen;
    },
    reads: () => reads,
  };
}

describe('SharedReads', () => {
  it('serves a burst of callers with at most two reads', async () => {
    const s = store();
    const shared = new SharedReads<number>();
    const answers = await Promise.all(Array.from({ length: 50 }, () => shared.read('t1', s.read)));
    expect(answers).toEqual(Array(50).fill(0));
    expect(s.reads()).toBeLessThanOrEqual(2);
    expect(shared.size).toBe(0);
  });

  it('never hands a caller a read that began before it asked', async () => {
    const s = store();
    const shared = new SharedReads<number>();
    const first = shared.read('t1', s.read);
    await Promise.resolve(); // the first read has begun (it starts on the next microtask)
    expect(s.reads()).toBe(1);
    s.write(1); // a change made after the first read began, before the second caller asks
    const second = shared.read('t1', s.read);
    const third = shared.read('t1', s.read);
    expect(await first).toBe(0);
    expect(await second).toBe(1);
    expect(await third).toBe(1);
    expect(s.reads()).toBe(2);
  });

  it('keeps keys apart and passes a failed read to the callers that shared it only', async () => {
    const shared = new SharedReads<string>();
    let fail = true;
    const load = async () => {
      await new Promise((resolve) => setImmediate(resolve));
      if (fail) throw new Error('database unavailable');
      return 'board';
    };
    const a = shared.read('t1', load);
    const other = shared.read('t2', async () => 'other tenant');
    await expect(a).rejects.toThrow('database unavailable');
    expect(await other).toBe('other tenant');
    fail = false;
    expect(await shared.read('t1', load)).toBe('board');
    expect(shared.size).toBe(0);
  });
});
