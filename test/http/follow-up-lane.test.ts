/**
 * The follow-up lane: work owed after an acknowledgement waits while the process is saturated
 * with requests, and only then.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { FollowUpLane, type FollowUpLaneOptions } from '../../src/http/follow-up-lane.js';
import { memoryLogger } from '../support/logs.js';
import { waitFor } from '../support/wait.js';

/** A follow-up that records when it started and finishes when told to. */
function gate() {
  const started: number[] = [];
  const releases: (() => void)[] = [];
  let running = 0;
  let most = 0;
  const task = (id: number) => async () => {
    started.push(id);
    running++;
    most = Math.max(most, running);
    await new Promise<void>((resolve) => releases.push(resolve));
    running--;
  };
  return {
    started,
    task,
    releaseAll: () => {
      for (const release of releases.splice(0)) release();
    },
    mostAtOnce: () => most,
  };
}

/** Blocks the event loop 20 ms out of every ~21 (calling `each` every time) until stopped. */
function spin(each: () => void): () => void {
  const timer = setInterval(() => {
    each();
    const until = performance.now() + 20;
    while (performance.now() < until) {
      // busy
    }
  }, 1);
  return () => clearInterval(timer);
}

/** Queues `n` follow-ups that only count themselves; returns how many have run so far. */
function queueCounted(l: FollowUpLane, n: number): () => number {
  let ran = 0;
  for (let i = 0; i < n; i++)
    l.run(async () => {
      ran++;
    });
  return () => ran;
}

function lane(options: FollowUpLaneOptions) {
  const logs = memoryLogger('info');
  return { lane: new FollowUpLane(logs.logger, { intervalMs: 5, ...options }), logs };
}

describe('FollowUpLane', () => {
  it('starts a follow-up at once when the process is not saturated', async () => {
    const { lane: l } = lane({ saturated: () => false });
    const g = gate();
    l.run(g.task(1));
    await Promise.resolve();
    await Promise.resolve();
    expect(g.started).toEqual([1]);
    g.releaseAll();
    await l.drain();
  });

  it('runs busyConcurrency at a time, first come first served, while saturated; all of them once it is not', async () => {
    let saturated = true;
    const { lane: l } = lane({ saturated: () => saturated, concurrency: 4, busyConcurrency: 1 });
    const g = gate();
    await sleep(20); // the lane has looked at the load (saturated) before the first follow-up
    for (let i = 1; i <= 6; i++) l.run(g.task(i));
    await sleep(50);
    expect(g.started).toEqual([1]);
    expect(l.waiting).toBe(5);
    g.releaseAll();
    await waitFor(() => (g.started.length === 2 ? true : undefined));
    await sleep(30);
    expect(g.started).toEqual([1, 2]);
    saturated = false;
    await waitFor(() => (g.started.length === 5 ? true : undefined));
    expect(g.started).toEqual([1, 2, 3, 4, 5]);
    expect(g.mostAtOnce()).toBe(4);
    g.releaseAll();
    await waitFor(() => (g.started.length === 6 ? true : undefined));
    g.releaseAll();
    await l.drain();
    expect(l.running).toBe(0);
  });

  it('starts a follow-up that waited maxWaitMs whatever the load', async () => {
    const { lane: l } = lane({ saturated: () => true, busyConcurrency: 0, maxWaitMs: 150 });
    const g = gate();
    await sleep(20);
    const queued = performance.now();
    l.run(g.task(1));
    l.run(g.task(2));
    await sleep(60);
    expect(g.started).toEqual([]);
    await waitFor(() => (g.started.length === 2 ? true : undefined));
    expect(performance.now() - queued).toBeGreaterThanOrEqual(140);
    g.releaseAll();
    await l.drain();
  });

  it('runs a follow-up at once when maxWaiting are already waiting: nothing is dropped', async () => {
    const { lane: l } = lane({ saturated: () => true, busyConcurrency: 0, maxWaiting: 3, maxWaitMs: 60_000 });
    const g = gate();
    await sleep(20);
    for (let i = 1; i <= 4; i++) l.run(g.task(i));
    await sleep(20);
    expect(g.started).toEqual([4]);
    expect(l.waiting).toBe(3);
    const drained = l.drain();
    await waitFor(() => (g.started.length === 4 ? true : undefined));
    g.releaseAll();
    await drained;
    expect(l.waiting + l.running).toBe(0);
  });

  it('drain runs what waits even while saturated and resolves once everything has finished', async () => {
    const { lane: l } = lane({ saturated: () => true, busyConcurrency: 0, maxWaitMs: 60_000 });
    const done: number[] = [];
    await sleep(20);
    for (let i = 1; i <= 20; i++)
      l.run(async () => {
        await sleep(5);
        done.push(i);
      });
    await sleep(30);
    expect(done).toEqual([]);
    await l.drain();
    expect(done.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('logs a follow-up that throws and goes on with the next', async () => {
    const { lane: l, logs } = lane({ saturated: () => false, concurrency: 1 });
    let ran = false;
    l.run(async () => {
      throw new Error('the board could not be read');
    });
    l.run(async () => {
      ran = true;
    });
    await l.drain();
    expect(ran).toBe(true);
    expect(logs.text()).toContain('follow-up work failed');
    expect(logs.text()).toContain('the board could not be read');
  });

  it('by default, holds follow-ups while requests arrive and the event loop stays busy, not after', async () => {
    const { lane: l } = lane({ busyConcurrency: 0, maxWaitMs: 60_000, intervalMs: 25 });
    // A saturating load: a request each time the loop is blocked.
    const stop = spin(() => l.noteRequest());
    try {
      await sleep(100);
      const ran = queueCounted(l, 5);
      await sleep(300);
      expect(ran()).toBe(0);
      stop();
      await waitFor(() => (ran() === 5 ? true : undefined), 2_000);
    } finally {
      stop();
    }
    await l.drain();
  });

  it('by default, does not hold follow-ups when the event loop is busy with no requests arriving', async () => {
    const { lane: l } = lane({ busyConcurrency: 0, maxWaitMs: 60_000, intervalMs: 25 });
    // Busy with something else (its own follow-ups, say): no request arrives.
    const stop = spin(() => {});
    try {
      await sleep(100);
      const ran = queueCounted(l, 5);
      await waitFor(() => (ran() === 5 ? true : undefined), 1_000);
    } finally {
      stop();
    }
    await l.drain();
  });
});
