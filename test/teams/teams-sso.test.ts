/**
 * SSO from Teams: `sso` offers the SSO dialog (the same fields and live checks as in Slack, the
 * error next to the input), `login` answers with a Sign in button (Action.OpenUrl) for the person
 * who asked, and the sign-in is confirmed in that chat.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../support/fakes/teams-fake.js';
import { CookieJar, type RunningOidcProvider, signIn, startOidcProvider } from '../support/oidc-provider.js';
import { waitFor } from '../support/wait.js';
import { actionsTitled, cardOfInvoke, cardsOfActivity, cardText, useTeamsBot } from './harness.js';

const CLIENT_SECRET = 'teams-sso-client-secret-0123456789abcdef';

describe('SSO from Teams', () => {
  const bot = useTeamsBot();
  let idp: RunningOidcProvider;
  beforeAll(async () => {
    idp = await startOidcProvider({
      clientId: 'cloudpi-teams',
      clientSecret: CLIENT_SECRET,
      redirectUris: [bot.running.service.sso.redirectUri()],
      claimsInIdToken: true,
      accounts: [{ subject: 'sub-erin', login: 'erin', email: 'erin@example.com', emailVerified: true }],
    });
  });
  afterAll(async () => {
    await idp?.stop();
  });

  const lastCard = async (conversationId: string, since: number) =>
    waitFor(() =>
      bot.fake.activities
        .slice(since)
        .filter((a) => a.conversationId === conversationId)
        .flatMap((a) => cardsOfActivity(a.activity))
        .at(-1),
    );

  it('sets up SSO in a dialog, then signs a member in and confirms it in the chat', async () => {
    const adminChat = bot.fake.personalConversationId('admin');
    let since = bot.fake.activities.length;
    await bot.send(bot.fake.message('sso', { conversation: 'personal', user: 'admin' }));
    const launcher = await lastCard(adminChat, since);
    const [open] = actionsTitled(launcher, /Connect|Set up|Open/);
    const form = cardOfInvoke(
      (await bot.send(bot.fake.taskFetch(open!.data as Json, { conversation: 'personal', user: 'admin' })))
        .body,
    );
    expect(cardText(form)).toContain('Issuer URL');
    expect(cardText(form)).toContain('Require SSO for admin changes');
    const [save] = actionsTitled(form, 'Save');
    const inputs = {
      f_issuerUrl: idp.issuer,
      f_clientId: 'cloudpi-teams',
      f_clientSecret: 'wrong-secret-wrong-secret',
      f_enabled: 'true',
      f_requireForAdmin: 'false',
    };
    const wrong = cardOfInvoke(
      (
        await bot.send(
          bot.fake.taskSubmit(inputs, {
            conversation: 'personal',
            user: 'admin',
            actionData: save!.data as Json,
          }),
        )
      ).body,
    );
    const body = wrong.body as Json[];
    const at = body.findIndex((e) => e.id === 'f_clientSecret');
    expect(String(body[at + 1]?.text)).toMatch(/Invalid client secret/);
    const right = cardOfInvoke(
      (
        await bot.send(
          bot.fake.taskSubmit(
            { ...inputs, f_clientSecret: CLIENT_SECRET },
            { conversation: 'personal', user: 'admin', actionData: save!.data as Json },
          ),
        )
      ).body,
    );
    expect(cardText(right)).toContain('SSO is configured and enabled');

    // A member asks for a sign-in link in their chat.
    const memberChat = bot.fake.personalConversationId('member');
    since = bot.fake.activities.length;
    await bot.send(bot.fake.message('login', { conversation: 'personal', user: 'member' }));
    const card = await lastCard(memberChat, since);
    const [signInButton] = actionsTitled(card, 'Sign in');
    expect(signInButton).toMatchObject({ type: 'Action.OpenUrl' });
    const jar = new CookieJar();
    const started = await fetch(String(signInButton!.url), { redirect: 'manual' });
    jar.store(started);
    const callback = await signIn(new URL(started.headers.get('location')!), { login: 'erin' });
    since = bot.fake.activities.length;
    const done = await fetch(callback, { redirect: 'manual', headers: { cookie: jar.header() } });
    expect(done.status).toBe(200);
    const confirmation = await lastCard(memberChat, since);
    expect(cardText(confirmation)).toContain('You are signed in');
    expect(cardText(confirmation)).toContain('erin@example.com');
  });
});
