/**
 * Slash commands under load: while the service is saturated with acknowledgements, an answer
 * given at the response_url waits its turn, but a command that opens a modal is answered at
 * once (its trigger_id is good for three seconds only).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { useSlackWorkspace } from './harness.js';
import { type ResponseUrls, startResponseUrls, textOf } from './helpers.js';

describe('Slack slash commands while the service is saturated', () => {
  let saturated = true;
  const workspace = useSlackWorkspace(
    {},
    {
      // The lane's own look at the load is replaced: saturated until the test says otherwise.
      slackFollowUps: { saturated: () => saturated, busyConcurrency: 0, maxWaitMs: 10 * 60_000 },
    },
  );
  let responses: ResponseUrls;
  beforeAll(async () => {
    responses = await startResponseUrls();
  });
  afterAll(async () => {
    await responses?.close();
  });

  /** What /metrics says of the answers waiting. */
  async function waitingGauge(): Promise<number> {
    const text = await (await fetch(workspace.running.url('/metrics'))).text();
    const line = text.split('\n').find((l) => l.startsWith('cloudpi_slack_answers_waiting '));
    return Number(line?.split(' ')[1]);
  }

  it('answers /cloudpi status after the load, and opens the connect form at once during it', async () => {
    const { slack } = workspace;
    const statusUrl = responses.url();
    await workspace.command('status', slack.users.admin, 'C0GENERAL', statusUrl);
    const connect = await workspace.command('connect jira', slack.users.admin, 'C0GENERAL');
    const modal = await workspace.modalFor(connect);
    expect(JSON.stringify(modal.view)).toContain('Jira');
    await sleep(300);
    const path = new URL(statusUrl).pathname;
    expect(responses.posts.find((p) => p.path === path)).toBeUndefined();
    expect(await waitingGauge()).toBe(1);

    saturated = false;
    const answer = await waitFor(() => responses.posts.find((p) => p.path === path));
    expect(textOf((answer.body as { blocks: unknown[] }).blocks)).toContain('Integration settings');
    expect(await waitingGauge()).toBe(0);
  });
});
