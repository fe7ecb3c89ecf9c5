/**
 * The Slack app in the running service (one-workspace mode), driven with signed requests shaped
 * like Slack's own payloads, against the strict loopback Slack Web API and Azure DevOps fakes.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { healthCheckJob } from '../../src/integrations/health-check.js';
import { sql } from '../../src/storage/orm.js';
import { type AzureDevOpsFake, startAzureDevOpsFake } from '../support/fakes/azure-devops-fake.js';
import { type SlackFake, startSlackFake } from '../support/fakes/slack-fake.js';
import { useService } from '../support/service.js';
import {
  blockActionsPayload,
  postSlackCommand,
  postSlackEvent,
  postSlackInteraction,
  signSlackRequest,
  viewSubmissionPayload,
} from '../support/slack-requests.js';
import { waitFor } from '../support/wait.js';
import {
  blockById,
  button,
  eventCallback,
  inputBlock,
  type ResponseUrls,
  startResponseUrls,
  textOf,
} from './helpers.js';

type Json = Record<string, unknown>;

const SIGNING_SECRET = 'signing-secret-for-tests-0123456789';

describe('Slack app (one workspace)', () => {
  let slack: SlackFake;
  let ado: AzureDevOpsFake;
  let responses: ResponseUrls;
  const env: Record<string, string> = {
    CLOUDPI_ALLOW_HTTP: 'true',
    CLOUDPI_ALLOW_PRIVATE_NETWORKS: 'true',
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
  };
  beforeAll(async () => {
    slack = await startSlackFake();
    ado = await startAzureDevOpsFake();
    responses = await startResponseUrls();
    Object.assign(env, { SLACK_API_URL: slack.apiUrl, SLACK_BOT_TOKEN: slack.botToken });
  });
  const running = useService('pglite', env);
  afterAll(async () => {
    await slack?.close();
    await ado?.close();
    await responses?.close();
  });

  const base = () => running.service.url;

  /** Runs /cloudpi <text> as `user`; returns the trigger it used and its response_url. */
  async function command(text: string, user: string, opts: { responseUrl?: string } = {}) {
    const triggerId = slack.issueTriggerId(user);
    const responseUrl = opts.responseUrl ?? responses.url();
    const res = await postSlackCommand(base(), SIGNING_SECRET, {
      text,
      user_id: user,
      team_id: slack.teamId,
      trigger_id: triggerId,
      channel_id: 'C0GENERAL',
      response_url: responseUrl,
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
    return { triggerId, responseUrl };
  }

  async function answerAt(responseUrl: string): Promise<Json> {
    const path = new URL(responseUrl).pathname;
    return (await waitFor(() => responses.posts.find((p) => p.path === path))).body;
  }

  /** The modal opened with this trigger: views.open answered ok, so it is the newest one. */
  async function modalOpenedWith(triggerId: string): Promise<{ id: string; view: Json }> {
    const call = await waitFor(() =>
      slack.calls.find((c) => c.method === 'views.open' && c.body.trigger_id === triggerId && c.status),
    );
    expect(call.error).toBeUndefined();
    const id = [...slack.modals.keys()].at(-1)!;
    return { id, view: slack.modals.get(id)!.view };
  }

  /** Submits a modal; form fields have the field key as block_id and action_id. */
  async function submit(view: Json, user: string, fields: Record<string, string>) {
    const values = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, { [k]: v }]));
    const res = await postSlackInteraction(
      base(),
      SIGNING_SECRET,
      viewSubmissionPayload({ teamId: slack.teamId, userId: user, view, values }),
    );
    expect(res.status).toBe(200);
    const text = await res.text();
    return text ? (JSON.parse(text) as Json) : {};
  }

  async function press(user: string, view: Json, label: string, blockId?: string) {
    const element = button(view, label, blockId);
    const triggerId = slack.issueTriggerId(user);
    const res = await postSlackInteraction(
      base(),
      SIGNING_SECRET,
      blockActionsPayload({
        teamId: slack.teamId,
        userId: user,
        actionId: String(element.action_id),
        triggerId,
        view,
      }),
    );
    expect(res.status).toBe(200);
    return triggerId;
  }

  async function openHome(user: string): Promise<Json> {
    const before = slack.calls.filter((c) => c.method === 'views.publish').length;
    const res = await postSlackEvent(
      base(),
      SIGNING_SECRET,
      eventCallback(slack.teamId, { type: 'app_home_opened', user, channel: 'D0HOME', tab: 'home' }),
    );
    expect(res.status).toBe(200);
    await waitFor(
      () =>
        slack.calls.filter((c) => c.method === 'views.publish' && c.status === 200 && c.body.user_id === user)
          .length > 0 && slack.calls.filter((c) => c.method === 'views.publish').length > before,
    );
    return slack.homeOf(user)!;
  }

  function viewOf(id: string): Json {
    return slack.modals.get(id)!.view;
  }

  async function tenantId(): Promise<string> {
    return (await running.service.repositories.tenants.findByExternalId('slack', slack.teamId))!.id;
  }

  it('end to end: connect Azure DevOps (wrong PAT, then the right one), see it Active, disconnect', async () => {
    const admin = slack.users.admin;

    // /cloudpi connect azure-devops opens the connection form within the trigger's 3 seconds.
    const { triggerId } = await command('connect azure-devops', admin);
    const opened = await modalOpenedWith(triggerId);
    const form = opened.view;
    expect((form.title as Json).text).toBe('Connect Azure DevOps');
    expect((form.submit as Json).text).toBe('Save');
    expect(form.callback_id).toBe('cloudpi.integration');
    const pat = inputBlock(form, 'personalAccessToken');
    expect((pat.label as Json).text).toBe('Personal Access Token (PAT)');
    expect((pat.element as Json).initial_value).toBeUndefined();
    expect((inputBlock(form, 'organizationUrl').label as Json).text).toBe('Organization URL');

    // Field validation answers at once with response_action errors keyed by block id.
    const invalid = await submit(form, admin, {
      organizationUrl: 'not a url',
      personalAccessToken: 'x',
    });
    expect(invalid.response_action).toBe('errors');
    expect(Object.keys(invalid.errors as Json)).toEqual(['organizationUrl']);

    // A wrong PAT: "Verifying…" at once, then the form again with the error at the PAT field.
    const verifying = await submit(form, admin, {
      organizationUrl: ado.validValues.organizationUrl!,
      personalAccessToken: ado.wrongSecretValues.personalAccessToken!,
    });
    expect(verifying.response_action).toBe('update');
    expect(textOf(verifying.view)).toContain('Verifying…');
    const failed = await waitFor(() => {
      const view = viewOf(opened.id);
      return blockById(view, 'personalAccessToken.error') ? view : undefined;
    });
    expect(textOf(blockById(failed, 'personalAccessToken.error'))).toMatch(
      /:warning: The Personal Access Token \(PAT\) is invalid/,
    );
    expect(textOf(blockById(failed, 'notice'))).toContain(':x:');
    expect((inputBlock(failed, 'organizationUrl').element as Json).initial_value).toBe(
      ado.validValues.organizationUrl!,
    );
    expect((inputBlock(failed, 'personalAccessToken').element as Json).initial_value).toBeUndefined();
    expect(
      await running.service.repositories.integrations.get(await tenantId(), 'azure-devops'),
    ).toBeUndefined();

    // The right PAT: connected and active, with a green check.
    const verifying2 = await submit(failed, admin, {
      organizationUrl: ado.validValues.organizationUrl!,
      personalAccessToken: ado.validValues.personalAccessToken!,
    });
    expect(verifying2.response_action).toBe('update');
    const connected = await waitFor(() => {
      const view = viewOf(opened.id);
      return textOf(view).includes('Azure DevOps is connected and active') ? view : undefined;
    });
    expect(textOf(connected)).toContain(':white_check_mark: *Azure DevOps is connected and active*');
    expect(textOf(connected)).toContain('Active');

    // App Home was republished with the new state; `integrations` shows it too.
    const home = await waitFor(() => {
      const view = slack.homeOf(admin);
      return view && textOf(blockById(view, 'provider.azure-devops')).includes('Active') ? view : undefined;
    });
    expect(textOf(blockById(home, 'provider.azure-devops'))).toContain(':large_green_circle: Active');
    const { responseUrl } = await command('integrations', admin);
    const board = await answerAt(responseUrl);
    expect(board.response_type).toBe('ephemeral');
    expect(textOf(board.blocks)).toMatch(/\*Azure DevOps\*\s+:large_green_circle: Active/);
    expect(textOf(board.blocks)).toMatch(/\*Jira\*\s+:white_circle: Not Connected/);

    // A configured integration: connect shows its details with Edit; Edit shows the form with
    // Update, the PAT blank ("leave blank to keep"); Update with a blank PAT keeps it.
    const again = await command('connect azure-devops', admin);
    const details = await modalOpenedWith(again.triggerId);
    expect(details.view.callback_id).toBe('cloudpi.details');
    await press(admin, details.view, 'Edit');
    const editForm = await waitFor(() => {
      const view = viewOf(details.id);
      return view.callback_id === 'cloudpi.integration' ? view : undefined;
    });
    expect((editForm.submit as Json).text).toBe('Update');
    const savedPat = inputBlock(editForm, 'personalAccessToken');
    expect((savedPat.element as Json).initial_value).toBeUndefined();
    expect((savedPat.hint as Json).text).toContain('Leave blank to keep the saved value.');
    expect(savedPat.optional).toBe(true);
    await submit(editForm, admin, { organizationUrl: ado.validValues.organizationUrl! });
    await waitFor(() => textOf(viewOf(details.id)).includes('Azure DevOps is connected and active'));

    // Configure: the modal opens at once ("Loading…"), then lists the provider's projects.
    const configure = await command('configure azure-devops', admin);
    const routing = await modalOpenedWith(configure.triggerId);
    const opening = slack.calls.find(
      (c) => c.method === 'views.open' && c.body.trigger_id === configure.triggerId,
    );
    expect(JSON.stringify(opening?.body.view)).toContain('Loading…');
    const routingForm = await waitFor(() => {
      const view = viewOf(routing.id);
      return view.callback_id === 'cloudpi.configure' ? view : undefined;
    });
    const project = inputBlock(routingForm, 'project').element as Json;
    expect((project.options as Json[]).map((o) => o.value)).toContain('Ops');
    // Bug (the first type) asks for the project's required field; choosing Task rebuilds the form.
    expect(inputBlock(routingForm, 'ticketType').dispatch_action).toBe(true);
    expect(((inputBlock(routingForm, 'ticketType').element as Json).initial_option as Json).value).toBe(
      'Bug',
    );
    expect(textOf(inputBlock(routingForm, 'field:Custom.CostCenter'))).toContain('Cost Center');
    const chosen = await postSlackInteraction(
      base(),
      SIGNING_SECRET,
      blockActionsPayload({
        teamId: slack.teamId,
        userId: admin,
        actionId: 'ticketType',
        value: 'Task',
        triggerId: slack.issueTriggerId(admin),
        view: routingForm,
      }),
    );
    expect(chosen.status).toBe(200);
    const taskForm = await waitFor(() => {
      const view = viewOf(routing.id);
      return blockById(view, 'field:Custom.CostCenter') ? undefined : view;
    });
    expect(((inputBlock(taskForm, 'ticketType').element as Json).initial_option as Json).value).toBe('Task');
    const saved = await submit(taskForm, admin, { project: 'Ops', ticketType: 'Task' });
    expect(saved.response_action, JSON.stringify(saved)).toBe('update');
    await waitFor(() => textOf(viewOf(routing.id)).includes('Azure DevOps routing saved'));

    // Disconnect from App Home: button, then the confirmation.
    const homeNow = await openHome(admin);
    await press(admin, homeNow, 'Disconnect Provider', 'actions.azure-devops');
    const confirm = await waitFor(() =>
      [...slack.modals.values()].find((m) => m.view.callback_id === 'cloudpi.confirm' && m.user === admin),
    );
    const done = await submit(confirm.view, admin, {});
    expect(done.response_action).toBe('update');
    expect(textOf(done.view)).toContain('Azure DevOps is disconnected');
    await waitFor(() => {
      const view = slack.homeOf(admin);
      return view && textOf(blockById(view, 'provider.azure-devops')).includes('Not Connected');
    });
    const { responseUrl: afterUrl } = await command('integrations', admin);
    expect(textOf((await answerAt(afterUrl)).blocks)).toMatch(
      /\*Azure DevOps\*\s+:white_circle: Not Connected/,
    );

    // The secret is gone from the database; every change was audited.
    const rows = await running.service.database.db.execute(
      sql`select count(*)::int as n from integrations where tenant_id = ${await tenantId()}`,
    );
    expect(JSON.stringify(rows)).toContain('"n":0');
    const audit = await running.service.repositories.audit.recent(await tenantId(), 20);
    expect(audit.map((a) => a.action)).toEqual(
      expect.arrayContaining([
        'integration.connect',
        'integration.update',
        'integration.configure',
        'integration.disconnect',
      ]),
    );
    expect(audit.every((a) => a.actor === `slack:${admin}`)).toBe(true);
    expect(JSON.stringify(audit)).not.toContain(ado.validValues.personalAccessToken);
  });

  it('answers unknown input with help and the closest command', async () => {
    const { responseUrl } = await command('integratoins', slack.users.member);
    const answer = await answerAt(responseUrl);
    expect(answer.response_type).toBe('ephemeral');
    expect(textOf(answer.blocks)).toContain('Did you mean `/cloudpi integrations`?');
    expect(textOf(answer.blocks)).toContain('`/cloudpi connect jira|azure-devops|servicenow`');
  });

  it('refuses non-admins with an ephemeral message and opens nothing', async () => {
    const { triggerId, responseUrl } = await command('connect jira', slack.users.member);
    const answer = await answerAt(responseUrl);
    expect(textOf(answer.blocks)).toContain('Only CloudPi admins can change integrations');
    expect(slack.calls.some((c) => c.method === 'views.open' && c.body.trigger_id === triggerId)).toBe(false);
    // A submission forged for a member is refused at the field too.
    const res = await postSlackInteraction(
      base(),
      SIGNING_SECRET,
      viewSubmissionPayload({
        teamId: slack.teamId,
        userId: slack.users.member,
        view: {
          type: 'modal',
          callback_id: 'cloudpi.integration',
          private_metadata: JSON.stringify({ provider: 'azure-devops' }),
          title: { type: 'plain_text', text: 'Connect Azure DevOps' },
          blocks: [
            {
              type: 'input',
              block_id: 'organizationUrl',
              label: { type: 'plain_text', text: 'Organization URL' },
              element: { type: 'plain_text_input', action_id: 'organizationUrl' },
            },
          ],
        },
        values: { organizationUrl: { organizationUrl: ado.validValues.organizationUrl! } },
      }),
    );
    const body = (await res.json()) as Json;
    expect(body.response_action).toBe('errors');
    expect(textOf(body.errors)).toContain('Workspace admins and owners are CloudPi admins');
  });

  it('treats workspace owners as admins and shows members App Home without buttons', async () => {
    const { triggerId } = await command('connect servicenow', slack.users.owner);
    await modalOpenedWith(triggerId);
    const home = await openHome(slack.users.member);
    expect(textOf(home)).toContain('Only CloudPi admins can change these settings');
    expect(JSON.stringify(home)).not.toContain('"type":"button"');
    const adminHome = await openHome(slack.users.admin);
    expect(button(adminHome, 'Connect', 'actions.jira').style).toBe('primary');
  });

  it('republishes App Home when an admin pauses and activates a provider', async () => {
    const connected = await running.service.integrations.connect(
      await tenantId(),
      'azure-devops',
      ado.validValues,
      'test',
    );
    expect(connected.ok).toBe(true);
    const admin = slack.users.admin;
    const home = await openHome(admin);
    expect(textOf(blockById(home, 'provider.azure-devops'))).toContain(':large_green_circle: Active');
    await press(admin, home, 'Pause', 'actions.azure-devops');
    const paused = await waitFor(() => {
      const view = slack.homeOf(admin);
      return view && textOf(blockById(view, 'provider.azure-devops')).includes('Connected')
        ? view
        : undefined;
    });
    expect(textOf(blockById(paused, 'provider.azure-devops'))).toContain(':large_blue_circle: Connected');
    expect(textOf(blockById(paused, 'provider.azure-devops'))).toContain('Ticket creation is paused.');
    await press(admin, paused, 'Activate', 'actions.azure-devops');
    await waitFor(() => textOf(blockById(slack.homeOf(admin), 'provider.azure-devops')).includes('Active'));
    await running.service.integrations.disconnect(await tenantId(), 'azure-devops', 'test');
  });

  it('republishes App Home when the health check finds expired credentials', async () => {
    const { integrations, repositories, queue } = running.service;
    const tenant = await tenantId();
    expect((await integrations.connect(tenant, 'azure-devops', ado.validValues, 'test')).ok).toBe(true);
    const admin = slack.users.admin;
    await openHome(admin);
    // The PAT stops working on the provider's side (as when it expires).
    const row = (await repositories.integrations.get(tenant, 'azure-devops'))!;
    await repositories.integrations.save(tenant, 'azure-devops', {
      status: 'active',
      settings: row.settings,
      credentials: { personalAccessToken: ado.wrongSecretValues.personalAccessToken! },
    });
    await queue.send(healthCheckJob, {});
    const home = await waitFor(() => {
      const view = slack.homeOf(admin);
      return view && textOf(blockById(view, 'provider.azure-devops')).includes('Error') ? view : undefined;
    });
    expect(textOf(blockById(home, 'provider.azure-devops'))).toContain('Last check failed');
    await integrations.disconnect(tenant, 'azure-devops', 'test');
  });

  it('falls back to chat.postEphemeral when the response_url does not take the answer', async () => {
    await command('help', slack.users.member, { responseUrl: responses.expiredUrl() });
    const message = await waitFor(() =>
      slack.messages.find((m) => m.method === 'chat.postEphemeral' && m.user === slack.users.member),
    );
    expect(message.channel).toBe('C0GENERAL');
    expect(textOf(message.blocks)).toContain('/cloudpi help');
  });

  it('waits out Retry-After when Slack rate-limits a call', async () => {
    slack.rateLimitNext('views.publish', 1, 1);
    const started = Date.now();
    await openHome(slack.users.owner);
    const publishes = slack.calls.filter((c) => c.method === 'views.publish' && c.at >= started);
    expect(publishes[0]?.status).toBe(429);
    const ok = publishes.find((c) => c.status === 200)!;
    expect(ok.at - publishes[0]!.at).toBeGreaterThanOrEqual(1_000);
  });

  it('logged no listener failure and no secret', () => {
    const logs = running.logs();
    expect(logs).not.toContain('Slack listener failed');
    expect(logs).not.toMatch(/"level":50/);
    expect(logs).not.toContain(slack.botToken);
    expect(logs).not.toContain(SIGNING_SECRET);
    expect(logs).not.toContain(ado.validValues.personalAccessToken);
  });

  describe('request verification', () => {
    const body = () =>
      new URLSearchParams({
        team_id: slack.teamId,
        user_id: slack.users.admin,
        command: '/cloudpi',
        text: 'help',
        trigger_id: slack.issueTriggerId(),
        channel_id: 'C0GENERAL',
        response_url: responses.url(),
      }).toString();
    const post = (raw: string, timestamp: number, signature: string) =>
      fetch(`${base()}/slack/events`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-slack-request-timestamp': String(timestamp),
          'x-slack-signature': signature,
        },
        body: raw,
      });
    const now = () => Math.floor(Date.now() / 1000);

    it('refuses a forged signature with 401', async () => {
      const raw = body();
      const res = await post(raw, now(), signSlackRequest('not-the-signing-secret', now(), raw));
      expect(res.status).toBe(401);
      const tampered = await post(`${raw}&x=1`, now(), signSlackRequest(SIGNING_SECRET, now(), raw));
      expect(tampered.status).toBe(401);
      const missing = await fetch(`${base()}/slack/events`, { method: 'POST', body: raw });
      expect(missing.status).toBe(401);
    });

    it('refuses timestamps more than five minutes off in either direction', async () => {
      const raw = body();
      for (const ts of [now() - 6 * 60, now() + 6 * 60]) {
        const res = await post(raw, ts, signSlackRequest(SIGNING_SECRET, ts, raw));
        expect(res.status).toBe(401);
      }
      const recent = now() - 4 * 60;
      expect((await post(raw, recent, signSlackRequest(SIGNING_SECRET, recent, raw))).status).toBe(200);
    });

    it('answers the Events API URL check', async () => {
      const res = await postSlackEvent(base(), SIGNING_SECRET, {
        type: 'url_verification',
        challenge: 'c-123',
      });
      expect(await res.json()).toEqual({ challenge: 'c-123' });
    });

    it('ignores requests from a workspace the bot token does not belong to', async () => {
      const responseUrl = responses.url();
      const res = await postSlackCommand(base(), SIGNING_SECRET, {
        text: 'integrations',
        user_id: 'U0STRANGER',
        team_id: 'T0ELSEWHERE',
        trigger_id: slack.issueTriggerId(),
        response_url: responseUrl,
      });
      // Bolt acknowledges (so Slack does not retry) and calls no listener.
      expect(res.status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(responses.posts.some((p) => p.path === new URL(responseUrl).pathname)).toBe(false);
      expect(slack.calls.some((c) => c.body.user === 'U0STRANGER')).toBe(false);
      expect(
        await running.service.repositories.tenants.findByExternalId('slack', 'T0ELSEWHERE'),
      ).toBeUndefined();
    });

    it('leaves a submission or a press no CloudPi handler knows unacknowledged (404 after 3 s)', async () => {
      const strangeView = {
        type: 'modal',
        callback_id: 'someone.else',
        title: { type: 'plain_text', text: 'Other' },
        blocks: [],
      };
      const [submission, press] = await Promise.all([
        postSlackInteraction(
          base(),
          SIGNING_SECRET,
          viewSubmissionPayload({ teamId: slack.teamId, userId: 'U0ADMIN', view: strangeView, values: {} }),
        ),
        postSlackInteraction(
          base(),
          SIGNING_SECRET,
          blockActionsPayload({
            teamId: slack.teamId,
            userId: 'U0ADMIN',
            actionId: 'someone_else.button',
            triggerId: slack.issueTriggerId('U0ADMIN'),
          }),
        ),
      ]);
      expect(submission.status).toBe(404);
      expect(press.status).toBe(404);
      // A CloudPi view id with a callback of its own is handled (acknowledged at once).
      const known = await postSlackInteraction(
        base(),
        SIGNING_SECRET,
        viewSubmissionPayload({
          teamId: slack.teamId,
          userId: 'U0ADMIN',
          view: { ...strangeView, callback_id: 'cloudpi.confirm' },
          values: {},
        }),
      );
      expect(known.status).toBe(200);
    }, 20_000);
  });
});
