/**
 * OAuth distribution: /slack/install → Slack's consent → /slack/oauth_redirect with a code the
 * fake exchanges; the installation is stored sealed per workspace (each one a tenant), used for
 * that workspace's requests, and deleted on app_uninstalled and tokens_revoked.
 */

import type { Installation } from '@slack/bolt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SlackInstallationStore } from '../../adapters/chat/slack/installation-store.js';
import { sql } from '../../src/storage/orm.js';
import { type AzureDevOpsFake, startAzureDevOpsFake } from '../support/fakes/azure-devops-fake.js';
import { type SlackFake, startSlackFake } from '../support/fakes/slack-fake.js';
import { useService } from '../support/service.js';
import { postSlackCommand, postSlackEvent } from '../support/slack-requests.js';
import { waitFor } from '../support/wait.js';
import { eventCallback, type ResponseUrls, startResponseUrls, textOf } from './helpers.js';

type Json = Record<string, unknown>;

const SIGNING_SECRET = 'oauth-signing-secret-0123456789';
const PUBLIC_URL = 'https://bot.example.com';

describe('Slack app (OAuth distribution)', () => {
  let slack: SlackFake;
  let ado: AzureDevOpsFake;
  let responses: ResponseUrls;
  const env: Record<string, string> = {
    CLOUDPI_ALLOW_HTTP: 'true',
    CLOUDPI_ALLOW_PRIVATE_NETWORKS: 'true',
    CLOUDPI_PUBLIC_URL: PUBLIC_URL,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_STATE_SECRET: 'state-secret-for-tests-0123456789',
  };
  beforeAll(async () => {
    slack = await startSlackFake();
    ado = await startAzureDevOpsFake();
    responses = await startResponseUrls();
    Object.assign(env, {
      SLACK_API_URL: slack.apiUrl,
      SLACK_CLIENT_ID: slack.clientId,
      SLACK_CLIENT_SECRET: slack.clientSecret,
    });
  });
  const running = useService('pglite', env);
  afterAll(async () => {
    await slack?.close();
    await ado?.close();
    await responses?.close();
  });

  const url = (path: string) => running.url(path);

  /** /slack/install: the redirect to Slack's consent screen and the state cookie. */
  async function startInstall(): Promise<{ state: string; cookie: string; location: URL }> {
    const res = await fetch(url('/slack/install'), { redirect: 'manual' });
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get('location')!);
    const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
    return { state: location.searchParams.get('state')!, cookie, location };
  }

  async function installationRows(teamId: string) {
    return running.service.database.db.execute(
      sql`select i.install_key, i.installation_secret, i.bot_user_id from installations i
          join tenants t on t.id = i.tenant_id where t.platform = 'slack' and t.external_id = ${teamId}`,
    );
  }

  function rowsOf(result: unknown): Json[] {
    return (Array.isArray(result) ? result : ((result as { rows: Json[] }).rows ?? [])) as Json[];
  }

  async function command(text: string, user: string, teamId = slack.teamId) {
    const responseUrl = responses.url();
    const res = await postSlackCommand(running.service.url, SIGNING_SECRET, {
      text,
      user_id: user,
      team_id: teamId,
      trigger_id: slack.issueTriggerId(user),
      response_url: responseUrl,
    });
    return { res, responseUrl };
  }

  async function answerAt(responseUrl: string): Promise<Json> {
    const path = new URL(responseUrl).pathname;
    return (await waitFor(() => responses.posts.find((p) => p.path === path))).body;
  }

  it('sends /slack/install to Slack with the bot scopes, the redirect URL and a state', async () => {
    const { state, cookie, location } = await startInstall();
    expect(location.pathname).toBe('/oauth/v2/authorize');
    expect(location.origin).toBe(new URL(slack.apiUrl).origin);
    expect(location.searchParams.get('client_id')).toBe(slack.clientId);
    expect(location.searchParams.get('scope')).toBe(
      'commands,chat:write,users:read,channels:read,groups:read',
    );
    expect(location.searchParams.get('redirect_uri')).toBe(`${PUBLIC_URL}/slack/oauth_redirect`);
    expect(state).toBeTruthy();
    expect(cookie).toBe(`slack-app-oauth-state=${state}`);
  });

  it('refuses a callback whose state does not match the cookie, storing nothing', async () => {
    const { state } = await startInstall();
    const code = slack.issueOAuthCode();
    const res = await fetch(url(`/slack/oauth_redirect?code=${code}&state=${state}`), {
      headers: { cookie: 'slack-app-oauth-state=someone-elses-state' },
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('CloudPi was not installed');
    expect(rowsOf(await installationRows(slack.teamId))).toHaveLength(0);
  });

  it('stores the installation sealed for the workspace and serves its requests with that token', async () => {
    const { state, cookie } = await startInstall();
    const code = slack.issueOAuthCode({ redirectUri: `${PUBLIC_URL}/slack/oauth_redirect` });
    const res = await fetch(url(`/slack/oauth_redirect?code=${encodeURIComponent(code)}&state=${state}`), {
      headers: { cookie },
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain(`CloudPi is installed in ${slack.teamName}`);

    const token = slack.issuedTokens.at(-1)!;
    const [row] = rowsOf(await installationRows(slack.teamId));
    expect(row?.install_key).toBe(slack.teamId);
    expect(row?.bot_user_id).toBe(slack.botUserId);
    expect(String(row?.installation_secret)).toMatch(/^v1\./);
    expect(String(row?.installation_secret)).not.toContain(token);
    const tenant = (await running.service.repositories.tenants.findByExternalId('slack', slack.teamId))!;
    expect(tenant.name).toBe(slack.teamName);
    const stored = await running.service.repositories.installations.find<Installation>(
      tenant.id,
      'slack',
      slack.teamId,
    );
    expect(stored?.bot?.token).toBe(token);
    expect(stored?.bot?.scopes).toEqual(expect.arrayContaining(['commands', 'chat:write', 'users:read']));

    const { res: answered, responseUrl } = await command('integrations', slack.users.admin);
    expect(answered.status).toBe(200);
    expect(textOf((await answerAt(responseUrl)).blocks)).toContain('Integration settings');
    const usersInfo = slack.calls.filter((c) => c.method === 'users.info').at(-1)!;
    expect(usersInfo.token).toBe(token);
  });

  it('keeps each workspace a tenant: nothing of one is visible from another', async () => {
    // A second workspace with its own installation.
    const second = 'T0SECOND';
    const store = new SlackInstallationStore(
      running.service.repositories.tenants,
      running.service.repositories.installations,
    );
    await store.storeInstallation({
      team: { id: second, name: 'Second' },
      enterprise: undefined,
      user: { id: slack.users.admin, token: undefined, scopes: undefined },
      bot: { token: slack.botToken, scopes: ['commands'], id: slack.botId, userId: slack.botUserId },
      isEnterpriseInstall: false,
      authVersion: 'v2',
    } as Installation);
    const first = (await running.service.repositories.tenants.findByExternalId('slack', slack.teamId))!;
    const result = await running.service.integrations.connect(
      first.id,
      'azure-devops',
      ado.validValues,
      'test',
    );
    expect(result.ok).toBe(true);

    const mine = await command('integrations', slack.users.admin);
    expect(textOf((await answerAt(mine.responseUrl)).blocks)).toMatch(
      /\*Azure DevOps\*\s+:large_green_circle: Active/,
    );
    const theirs = await command('integrations', slack.users.admin, second);
    const board = textOf((await answerAt(theirs.responseUrl)).blocks);
    expect(board).toMatch(/\*Azure DevOps\*\s+:white_circle: Not Connected/);
    expect(board).not.toContain(ado.validValues.organizationUrl);
    const audit = await command('audit', slack.users.admin, second);
    expect(textOf((await answerAt(audit.responseUrl)).blocks)).toContain('No admin changes yet.');
  });

  it('deletes the installation on tokens_revoked and app_uninstalled', async () => {
    const revoked = await postSlackEvent(
      running.service.url,
      SIGNING_SECRET,
      eventCallback('T0SECOND', { type: 'tokens_revoked', tokens: { oauth: [], bot: ['U0BOT'] } }),
    );
    expect(revoked.status).toBe(200);
    await waitFor(async () => rowsOf(await installationRows('T0SECOND')).length === 0);

    const uninstalled = await postSlackEvent(
      running.service.url,
      SIGNING_SECRET,
      eventCallback(slack.teamId, { type: 'app_uninstalled' }),
    );
    expect(uninstalled.status).toBe(200);
    await waitFor(async () => rowsOf(await installationRows(slack.teamId)).length === 0);

    // Without an installation the workspace's requests are not served.
    const before = slack.calls.length;
    const { res, responseUrl } = await command('integrations', slack.users.admin);
    expect(res.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(responses.posts.some((p) => p.path === new URL(responseUrl).pathname)).toBe(false);
    expect(slack.calls.length).toBe(before);
  });
});
