/**
 * One Slack workspace in one-workspace mode for a describe block: the strict Slack Web API fake,
 * the running service pointed at it, and the signed requests the suites send. The fake must end
 * the block with no spec violation.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { type SlackFake, type SlackFakeMessage, startSlackFake } from '../support/fakes/slack-fake.js';
import { type RunningService, useService } from '../support/service.js';
import {
  blockActionsPayload,
  postSlackCommand,
  postSlackEvent,
  postSlackInteraction,
  viewSubmissionPayload,
} from '../support/slack-requests.js';
import { waitFor } from '../support/wait.js';
import { button, eventCallback } from './helpers.js';

export const SIGNING_SECRET = 'signing-secret-for-tests-0123456789';

export interface SlackWorkspace {
  readonly slack: SlackFake;
  readonly running: RunningService;
  /** Runs `/cloudpi <text>` as `user` in `channel`; returns the trigger id it used. */
  command(text: string, user: string, channel: string, responseUrl?: string): Promise<string>;
  /** Opens App Home as `user` and returns the view published for it. */
  openHome(user: string): Promise<Record<string, unknown>>;
  /** The signed block_actions payload of `user` pressing the button `label` on `message`. */
  pressPayload(user: string, message: SlackFakeMessage, label: string): Record<string, unknown>;
  /** `user` presses the button `label` on `message` (a card as posted or updated); expects 200. */
  press(user: string, message: SlackFakeMessage, label: string): Promise<void>;
  /** Submits a modal as `user` (default: the admin); fields use the field key as block and action id. */
  submitModal(view: Record<string, unknown>, fields: Record<string, string>, user?: string): Promise<void>;
  /** The modal the command with this trigger opened, once views.open answered. */
  modalFor(triggerId: string): Promise<{ id: string; view: Record<string, unknown> }>;
}

export function useSlackWorkspace(
  extraEnv: Record<string, string> = {},
  options: Parameters<typeof useService>[2] = {},
): SlackWorkspace {
  let slack: SlackFake | undefined;
  const env: Record<string, string> = {
    CLOUDPI_ALLOW_HTTP: 'true',
    CLOUDPI_ALLOW_PRIVATE_NETWORKS: 'true',
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    ...extraEnv,
  };
  beforeAll(async () => {
    slack = await startSlackFake();
    Object.assign(env, { SLACK_API_URL: slack.apiUrl, SLACK_BOT_TOKEN: slack.botToken });
  });
  const running = useService('pglite', env, options);
  afterAll(async () => {
    expect(slack?.specViolations ?? []).toEqual([]);
    await slack?.close();
  });
  const fake = () => {
    if (!slack) throw new Error('the Slack fake is not started yet');
    return slack;
  };
  return {
    get slack() {
      return fake();
    },
    running,
    async command(text, user, channel, responseUrl) {
      const triggerId = fake().issueTriggerId(user);
      const res = await postSlackCommand(running.service.url, SIGNING_SECRET, {
        text,
        user_id: user,
        team_id: fake().teamId,
        trigger_id: triggerId,
        channel_id: channel,
        ...(responseUrl ? { response_url: responseUrl } : {}),
      });
      expect(res.status).toBe(200);
      return triggerId;
    },
    async openHome(user) {
      const published = () =>
        fake().calls.filter(
          (c) => c.method === 'views.publish' && c.status === 200 && c.body.user_id === user,
        ).length;
      const before = published();
      const res = await postSlackEvent(
        running.service.url,
        SIGNING_SECRET,
        eventCallback(fake().teamId, { type: 'app_home_opened', user, channel: 'D0HOME', tab: 'home' }),
      );
      expect(res.status).toBe(200);
      await waitFor(() => (published() > before ? true : undefined));
      return fake().homeOf(user)!;
    },
    pressPayload(user, message, label) {
      const element = button({ blocks: message.blocks }, label);
      return blockActionsPayload({
        teamId: fake().teamId,
        userId: user,
        actionId: String(element.action_id),
        triggerId: fake().issueTriggerId(user),
        message: { blocks: message.blocks, text: message.text, ts: message.ts, channel: message.channel },
        channelId: message.channel,
      });
    },
    async submitModal(view, fields, user) {
      const values = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, { [k]: v }]));
      const res = await postSlackInteraction(
        running.service.url,
        SIGNING_SECRET,
        viewSubmissionPayload({ teamId: fake().teamId, userId: user ?? fake().users.admin, view, values }),
      );
      expect(res.status).toBe(200);
    },
    async modalFor(triggerId) {
      await waitFor(() =>
        fake().calls.find((c) => c.method === 'views.open' && c.body.trigger_id === triggerId && c.status),
      );
      const id = [...fake().modals.keys()].at(-1)!;
      return { id, view: fake().modals.get(id)!.view };
    },
    async press(user, message, label) {
      const res = await postSlackInteraction(
        running.service.url,
        SIGNING_SECRET,
        this.pressPayload(user, message, label),
      );
      expect(res.status).toBe(200);
    },
  };
}
