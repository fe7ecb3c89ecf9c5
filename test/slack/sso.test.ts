/**
 * SSO from Slack: `/cloudpi sso` opens the SSO modal (the same fields and live checks as every
 * form), a wrong Client ID shows at its field, the right settings show "SSO is configured and
 * enabled"; `/cloudpi login` answers with a Sign in button only its user sees; after the sign-in
 * in the browser the user is told in the channel (ephemeral) that they are linked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CookieJar, type RunningOidcProvider, signIn, startOidcProvider } from '../support/oidc-provider.js';
import { waitFor } from '../support/wait.js';
import { useSlackWorkspace } from './harness.js';
import { type ResponseUrls, startResponseUrls, textOf } from './helpers.js';

const CLIENT_SECRET = 'slack-sso-client-secret-0123456789abcdef';

describe('SSO from Slack', () => {
  const ws = useSlackWorkspace();
  let idp: RunningOidcProvider;
  let responses: ResponseUrls;
  beforeAll(async () => {
    idp = await startOidcProvider({
      clientId: 'cloudpi-slack',
      clientSecret: CLIENT_SECRET,
      redirectUris: [ws.running.service.sso.redirectUri()],
      claimsInIdToken: true,
      accounts: [{ subject: 'sub-dana', login: 'dana', email: 'dana@example.com', emailVerified: true }],
    });
    responses = await startResponseUrls();
  });
  afterAll(async () => {
    await Promise.all([idp?.stop(), responses?.close()]);
  });

  it('configures SSO in a modal: the error at the Client ID, then "SSO is configured and enabled"', async () => {
    const trigger = await ws.command('sso', ws.slack.users.admin, 'C0SSO');
    const { id, view } = await ws.modalFor(trigger);
    expect(textOf(view)).toContain('Issuer URL');
    expect(textOf(view)).toContain('SSO Enabled');
    const fields = {
      issuerUrl: idp.issuer,
      clientId: 'cloudpi-slack',
      clientSecret: CLIENT_SECRET,
      enabled: 'true',
      requireForAdmin: 'false',
    };
    await ws.submitModal(view, { ...fields, clientId: 'someone-else' });
    const wrong = await waitFor(() => {
      const v = ws.slack.modals.get(id)?.view;
      return v && textOf(v).includes('Invalid Client ID') ? v : undefined;
    });
    expect(JSON.stringify(wrong)).not.toContain(CLIENT_SECRET);
    await ws.submitModal(wrong, fields);
    await waitFor(() =>
      textOf(ws.slack.modals.get(id)?.view).includes('SSO is configured and enabled') ? true : undefined,
    );
    expect(ws.slack.specViolations).toEqual([]);
  });

  it('login gives a Sign in button; after the browser sign-in the user is told in the channel', async () => {
    const responseUrl = responses.url();
    await ws.command('login', ws.slack.users.member, 'C0SSO', responseUrl);
    const answer = await waitFor(() => responses.posts.find((p) => p.path === new URL(responseUrl).pathname));
    const button = JSON.stringify(answer.body).match(
      /"url":"(http[^"]+\/auth\/sso\/start\?t=[A-Za-z0-9_-]{43})"/,
    )?.[1];
    expect(button).toBeDefined();
    const jar = new CookieJar();
    const started = await fetch(button!, { redirect: 'manual' });
    jar.store(started);
    const callback = await signIn(new URL(started.headers.get('location')!), { login: 'dana' });
    const done = await fetch(callback, { redirect: 'manual', headers: { cookie: jar.header() } });
    expect(done.status).toBe(200);
    const confirmation = await waitFor(() =>
      ws.slack.calls.find(
        (c) =>
          c.method === 'chat.postEphemeral' &&
          c.body.user === ws.slack.users.member &&
          JSON.stringify(c.body).includes('You are signed in'),
      ),
    );
    expect(confirmation.body.channel).toBe('C0SSO');
    expect(JSON.stringify(confirmation.body)).toContain('dana@example.com');
  });
});
