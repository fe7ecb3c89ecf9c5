/**
 * Single sign-on (issue 7) against a real OpenID provider on loopback (oidc-provider): the SSO
 * form's live checks (wrong Client ID, wrong secret, unreachable issuer), the sign-in link and the
 * PKCE flow driven over HTTP, replays, another browser, an expired link, a nonce mismatch, the
 * admin group, allowed email domains, "require SSO for admin changes", and disabling.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../../src/commands/chat-commands.js';
import { parseCommand } from '../../src/commands/grammar.js';
import type { IntegrationDetailsView, IntegrationFormView, NoticeView } from '../../src/commands/views.js';
import { SSO_COOKIE } from '../../src/identity/sso.js';
import { sql } from '../../src/storage/orm.js';
import {
  CookieJar,
  closedPort,
  type RunningOidcProvider,
  signIn,
  startOidcProvider,
} from '../support/oidc-provider.js';
import { useService } from '../support/service.js';

const CLIENT_ID = 'cloudpi-chatops';
const CLIENT_SECRET = 'a-long-client-secret-for-the-tests-0123456789';

describe('single sign-on (OpenID Connect with PKCE)', () => {
  const running = useService('pglite', {
    CLOUDPI_ALLOW_HTTP: 'true',
    CLOUDPI_ALLOW_PRIVATE_NETWORKS: 'true',
    CLOUDPI_ADMINS: 'slack:U0BOOT',
  });
  let idp: RunningOidcProvider;
  let admin: Actor;
  let alice: Actor;
  let bob: Actor;
  let mallory: Actor;

  beforeAll(async () => {
    idp = await startOidcProvider({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      redirectUris: [running.service.sso.redirectUri()],
      claimsInIdToken: true,
      accounts: [
        {
          subject: 'sub-alice',
          login: 'alice',
          email: 'alice@example.com',
          emailVerified: true,
          groups: ['cloudpi-admins'],
        },
        {
          subject: 'sub-bob',
          login: 'bob',
          email: 'bob@example.com',
          emailVerified: true,
          groups: ['staff'],
        },
        {
          subject: 'sub-mallory',
          login: 'mallory',
          email: 'mallory@evil.example',
          emailVerified: true,
          groups: [],
        },
      ],
    });
    const tenantId = (await running.service.repositories.tenants.ensure('slack', 'T0SSO')).id;
    const actor = (userId: string): Actor => ({ tenantId, platform: 'slack', userId, platformAdmin: false });
    admin = actor('U0BOOT');
    alice = actor('U0ALICE');
    bob = actor('U0BOB');
    mallory = actor('U0MALLORY');
  });
  afterAll(async () => {
    await idp?.stop();
  });

  const values = (over: Record<string, string> = {}) => ({
    issuerUrl: idp.issuer,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    enabled: 'true',
    adminGroupClaim: 'groups',
    adminGroupValue: 'cloudpi-admins',
    allowedDomains: 'example.com',
    requireForAdmin: 'false',
    ...over,
  });

  /** What the form shows after a submission (the outcome view). */
  async function submit(over: Record<string, string>) {
    const outcome = await running.service.chat.submitIntegrationForm(admin, 'sso', values(over));
    if (outcome.type !== 'view') throw new Error('expected a view');
    return outcome.view as IntegrationFormView | IntegrationDetailsView;
  }

  it('opens the SSO form with the CloudPi fields; members are refused', async () => {
    const reply = await running.service.chat.handle(admin, parseCommand('sso'));
    expect(reply.type).toBe('open-form');
    const form = (reply as { view: IntegrationFormView }).view;
    expect(form.kind).toBe('integration-form');
    expect(form.submitLabel).toBe('Save');
    expect(form.fields.map((f) => f.label)).toEqual([
      'Issuer URL',
      'Client ID',
      'Client Secret',
      'SSO Enabled',
      'Admin group claim',
      'Admin group',
      'Allowed email domains',
      'Require SSO for admin changes',
    ]);
    expect(form.notice?.text).toContain('/auth/sso/callback');
    const refused = await running.service.chat.handle(bob, parseCommand('sso'));
    expect((refused as { view: NoticeView }).view.title).toBe('Only CloudPi admins can change integrations');
  });

  it('checks the settings live: wrong Client ID, wrong secret, unreachable issuer; nothing saved', async () => {
    const wrongId = await submit({ clientId: 'not-registered' });
    expect(wrongId.kind).toBe('integration-form');
    expect((wrongId as IntegrationFormView).errors.clientId).toMatch(/^Invalid Client ID/);

    const wrongSecret = await submit({ clientSecret: 'not-the-secret-at-all-0000' });
    expect((wrongSecret as IntegrationFormView).errors.clientSecret).toMatch(/^Invalid client secret/);
    expect(JSON.stringify(wrongSecret)).not.toContain('not-the-secret-at-all-0000');

    const port = await closedPort();
    const unreachable = await submit({ issuerUrl: `http://127.0.0.1:${port}` });
    expect((unreachable as IntegrationFormView).errors.issuerUrl).toMatch(
      /^Authorization endpoint unreachable/,
    );
    expect((unreachable as IntegrationFormView).errors.issuerUrl).toMatch(/refused/i);

    const fast = await running.service.chat.validateIntegrationForm(
      admin,
      'sso',
      values({ issuerUrl: 'not a url', allowedDomains: 'exa mple' }),
    );
    expect(Object.keys(fast).sort()).toEqual(['allowedDomains', 'issuerUrl']);
    expect((await running.service.sso.status(admin.tenantId)).configured).toBe(false);
  });

  it('saves the right settings, then shows Update with the secret kept; audited without it', async () => {
    const saved = await submit({});
    expect(saved.kind).toBe('integration-details');
    expect((saved as IntegrationDetailsView).notice?.title).toBe('SSO is configured and enabled');
    const edit = await running.service.chat.integrationForm(admin, 'sso');
    expect(edit.submitLabel).toBe('Update');
    const secret = edit.fields.find((f) => f.key === 'clientSecret')!;
    expect(secret.value).toBeUndefined();
    expect(secret.hasSavedSecret).toBe(true);
    // Update without retyping the secret keeps it.
    const updated = await submit({ clientSecret: '' });
    expect((updated as IntegrationDetailsView).notice?.tone).toBe('success');
    const audit = await running.service.repositories.audit.recent(admin.tenantId, 20);
    expect(audit.map((a) => a.action)).toEqual(expect.arrayContaining(['sso.create', 'sso.update']));
    expect(JSON.stringify(audit)).not.toContain(CLIENT_SECRET);
    const board = await running.service.chat.statusBoard(admin);
    expect(board.settings.find((s) => s.name === 'SSO')?.badge).toBe('Active');
  });

  /** `login` in chat, then the browser: the start link, the IdP, the callback. */
  async function login(actor: Actor, account: string, jar = new CookieJar()) {
    const notice = await running.service.chat.login(actor, { channelId: 'C0SSO' });
    const link = notice.link!.url;
    const started = await fetch(link, { redirect: 'manual', headers: { cookie: jar.header() } });
    jar.store(started);
    expect(started.status).toBe(302);
    const authorization = new URL(started.headers.get('location')!);
    const callback = await signIn(authorization, { login: account });
    const done = await fetch(callback, { redirect: 'manual', headers: { cookie: jar.header() } });
    return { link, authorization, callback, done, jar, text: await done.text() };
  }

  it('signs in with PKCE S256, state and nonce, and links the chat user (admin by group)', async () => {
    const { authorization, done, text } = await login(alice, 'alice');
    expect(authorization.origin).toBe(idp.issuer);
    expect(authorization.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorization.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorization.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorization.searchParams.get('nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorization.searchParams.get('redirect_uri')).toBe(running.service.sso.redirectUri());
    expect(done.status).toBe(200);
    expect(text).toContain('<h1>You are signed in</h1>');
    expect(text).toContain('alice@example.com');
    expect(text).toContain('<html lang="en">');
    const identity = (await running.service.repositories.identities.find(
      alice.tenantId,
      'slack',
      'U0ALICE',
    ))!;
    expect(identity).toMatchObject({
      idpSubject: 'sub-alice',
      email: 'alice@example.com',
      groups: ['cloudpi-admins'],
    });
    expect(identity.roles).toContain('sso-admin');
    expect(identity.loginValidUntil!.getTime()).toBeGreaterThan(Date.now());
    expect(await running.service.chat.isAdmin(alice)).toBe(true);
    // Bob is not in the admin group.
    await login(bob, 'bob');
    expect(await running.service.chat.isAdmin(bob)).toBe(false);
  });

  it('refuses a used link, a replayed callback, another browser and an expired link', async () => {
    const first = await login(bob, 'bob');
    expect(first.done.status).toBe(200);
    // The same link again.
    const again = await fetch(first.link, { redirect: 'manual' });
    expect(again.status).toBe(410);
    expect(await again.text()).toContain('already used');
    // The same callback again (state and code replayed).
    const replay = await fetch(first.callback, {
      redirect: 'manual',
      headers: { cookie: first.jar.header() },
    });
    expect([400, 410]).toContain(replay.status);

    // A link opened in one browser, finished in another (or for another chat user).
    const notice = await running.service.chat.login(bob, { channelId: 'C0SSO' });
    const jar = new CookieJar();
    const started = await fetch(notice.link!.url, { redirect: 'manual' });
    jar.store(started);
    const callback = await signIn(new URL(started.headers.get('location')!), { login: 'bob' });
    const other = await fetch(callback, {
      redirect: 'manual',
      headers: { cookie: `${SSO_COOKIE}=someone-else.x` },
    });
    expect(other.status).toBe(403);
    expect(await other.text()).toContain('another chat user or in another browser');

    // An expired link.
    const late = await running.service.chat.login(bob, { channelId: 'C0SSO' });
    await running.service.database.db.execute(
      sql`update sso_logins set expires_at = now() - interval '1 minute' where started_at is null`,
    );
    const expired = await fetch(late.link!.url, { redirect: 'manual' });
    expect(expired.status).toBe(410);
    expect(await expired.text()).toContain('expired');
  });

  it('refuses an ID token whose nonce does not match the sign-in', async () => {
    const notice = await running.service.chat.login(bob, { channelId: 'C0SSO' });
    const jar = new CookieJar();
    const started = await fetch(notice.link!.url, { redirect: 'manual' });
    jar.store(started);
    // The stored nonce changes after the IdP was asked with the original one.
    await running.service.database.db.execute(
      sql`update sso_logins set nonce = 'a-different-nonce-than-the-one-sent' where completed_at is null and started_at is not null`,
    );
    const callback = await signIn(new URL(started.headers.get('location')!), { login: 'bob' });
    const done = await fetch(callback, { redirect: 'manual', headers: { cookie: jar.header() } });
    expect(done.status).toBe(401);
    expect(await done.text()).toMatch(/nonce/i);
  });

  it('enforces the allowed email domains at link time', async () => {
    const { done, text } = await login(mallory, 'mallory');
    expect(done.status).toBe(403);
    expect(text).toContain('example.com');
    expect(
      (await running.service.repositories.identities.find(mallory.tenantId, 'slack', 'U0MALLORY'))
        ?.idpSubject ?? null,
    ).toBeNull();
  });

  it('with "require SSO for admin changes", admins need a recent sign-in; disabling stops requiring it', async () => {
    await submit({ clientSecret: '', requireForAdmin: 'true' });
    // An admin granted by the CLI who has never signed in: refused, with a sign-in link.
    const granted: Actor = { ...admin, userId: 'U0GRANTED' };
    await running.service.repositories.identities.grantRole(admin.tenantId, 'slack', 'U0GRANTED', 'admin');
    const refused = await running.service.chat.handle(granted, parseCommand('connect jira'));
    const view = (refused as { view: NoticeView }).view;
    expect(view.title).toContain('Sign in first');
    expect(view.link?.url).toContain('/auth/sso/start?t=');
    // Alice signed in a moment ago: allowed.
    expect(await running.service.chat.isAdmin(alice)).toBe(true);
    // Her sign-in runs out: refused again.
    await running.service.database.db.execute(
      sql`update identities set login_valid_until = now() - interval '1 second' where chat_user_id = 'U0ALICE'`,
    );
    expect(await running.service.chat.isAdmin(alice)).toBe(false);

    // The bootstrap admin (CLOUDPI_ADMINS) is the way back in: not held to the requirement.
    expect(await running.service.chat.isAdmin(admin)).toBe(true);
    // Disabled: links are kept, nothing is required (and group admin rights no longer count).
    const disabled = await running.service.chat.act(admin, 'pause', 'sso');
    expect((disabled as { view: NoticeView }).view.title).toBe('SSO is disabled');
    expect(await running.service.chat.isAdmin(granted)).toBe(true);
    await login(alice, 'alice').catch(() => undefined);
    expect(await running.service.chat.isAdmin(alice)).toBe(false);
    expect(
      (await running.service.repositories.identities.find(alice.tenantId, 'slack', 'U0ALICE'))?.idpSubject,
    ).toBe('sub-alice');
    const link = await running.service.chat.login(alice, {});
    expect(link.link).toBeUndefined();
    expect(link.title).toContain('SSO is not enabled');
    const audit = await running.service.repositories.audit.recent(admin.tenantId, 30);
    expect(audit.map((a) => a.action)).toEqual(expect.arrayContaining(['sso.link', 'sso.disable']));
  });
});
