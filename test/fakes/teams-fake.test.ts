/**
 * The Teams fake answers like the Microsoft side of a Teams bot, checked with botbuilder's own
 * code pointed at it: botframework-connector's token validation accepts what `signInbound` signs
 * and refuses each flawed token, MSAL (through botframework-connector's credentials) gets tokens
 * from its login, ConnectorClient / TeamsConnectorClient calls are accepted, recorded and checked
 * against the Connector API swagger, and a real teams-ai bot round-trips the builders' activities.
 */
import type { Server } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { Application, TeamsAdapter } from '@microsoft/teams-ai';
import { ConfigurationBotFrameworkAuthentication, MessageFactory, TeamsInfo } from 'botbuilder';
import { ConnectorClient, type ServiceClientCredentials, TeamsConnectorClient } from 'botframework-connector';

type PagedMembersOptions = Parameters<ConnectorClient['conversations']['getConversationPagedMembers']>[1];

import express from 'express';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createCredentialsFactory,
  type InboundTokenFlaw,
  isTrusted,
  startTeamsFake,
  type TeamsFake,
  validateActivity,
} from '../support/fakes/teams-fake.js';

// botframework-connector logs every refused token with console.error.
const quiet = (): void => {
  vi.spyOn(console, 'error').mockImplementation(() => {});
};

async function credentialsFor(fake: TeamsFake, clientSecret?: string): Promise<ServiceClientCredentials> {
  const factory = createCredentialsFactory(fake, clientSecret === undefined ? {} : { clientSecret });
  return factory.createCredentials(fake.appId, fake.oauthScope, fake.loginUrl, true);
}

async function tokenFor(fake: TeamsFake): Promise<string> {
  const credentials = (await credentialsFor(fake)) as unknown as {
    getToken(force?: boolean): Promise<string>;
  };
  return credentials.getToken(true);
}

/** A raw Connector call, for answers ConnectorClient would hide behind retries. */
async function connectorCall(
  fake: TeamsFake,
  method: string,
  path: string,
  options: { token?: string | null; body?: unknown } = {},
): Promise<{ status: number; headers: Headers; body: unknown }> {
  const token = options.token === undefined ? await tokenFor(fake) : options.token;
  const response = await fetch(new URL(path, fake.serviceUrl), {
    method,
    headers: {
      'content-type': 'application/json',
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

const message = (fake: TeamsFake, text: string): Record<string, unknown> => ({
  type: 'message',
  text,
  from: { id: fake.botId, name: fake.botName },
});

const card = {
  contentType: 'application/vnd.microsoft.card.adaptive',
  content: {
    type: 'AdaptiveCard',
    version: '1.5',
    body: [{ type: 'TextBlock', text: 'Idle VM found' }],
    actions: [{ type: 'Action.Execute', title: 'Create ticket', verb: 'createTicket', data: { rec: 'R1' } }],
  },
};

describe('Teams fake', () => {
  let fake: TeamsFake;

  beforeAll(async () => {
    fake = await startTeamsFake();
  });
  afterAll(async () => {
    await fake.close();
  });
  afterEach(() => {
    vi.restoreAllMocks();
    expect(fake.specViolations).toEqual([]);
  });

  describe('TLS', () => {
    it('serves HTTPS that fetch (undici) and node:https trust once the CA is added to the defaults', async () => {
      expect(isTrusted(fake.caPem)).toBe(true);
      const viaFetch = await fetch(fake.openIdMetadataUrl);
      expect(viaFetch.status).toBe(200);
      const viaHttps = await new Promise<number | undefined>((resolve, reject) => {
        https
          .get(fake.openIdMetadataUrl, (res) => {
            res.resume();
            resolve(res.statusCode);
          })
          .on('error', reject);
      });
      expect(viaHttps).toBe(200);
    });

    it('is not trusted by the bundled public roots alone', async () => {
      const error = await new Promise<Error>((resolve) => {
        const socket = tls.connect({
          host: '127.0.0.1',
          port: Number(new URL(fake.origin).port),
          ca: [...tls.rootCertificates],
        });
        socket.on('secureConnect', () => resolve(new Error('connected')));
        socket.on('error', resolve);
      });
      expect((error as NodeJS.ErrnoException).code).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED/);
    });
  });

  describe('channel -> bot tokens (botframework-connector validation)', () => {
    const auth = (): ConfigurationBotFrameworkAuthentication =>
      new ConfigurationBotFrameworkAuthentication(fake.botConfig(), createCredentialsFactory(fake));

    it('publishes OpenID metadata and a JWKS whose key is endorsed for msteams', async () => {
      const metadata = (await (await fetch(fake.openIdMetadataUrl)).json()) as Record<string, unknown>;
      expect(metadata).toMatchObject({
        issuer: fake.issuer,
        jwks_uri: `${fake.origin}/v1/.well-known/keys`,
        id_token_signing_alg_values_supported: ['RS256'],
      });
      const jwks = (await (await fetch(String(metadata.jwks_uri))).json()) as {
        keys: { kid: string; kty: string; n: string; e: string; endorsements: string[] }[];
      };
      expect(jwks.keys[0]).toMatchObject({ kty: 'RSA', endorsements: ['msteams'] });
    });

    it('signs tokens like the Bot Connector and botbuilder accepts them', async () => {
      const activity = fake.message('help');
      const token = await fake.signInbound(activity);
      expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'RS256', typ: 'JWT' });
      const claims = decodeJwt(token);
      expect(claims).toMatchObject({ iss: fake.issuer, aud: fake.appId, serviceurl: fake.serviceUrl });
      expect(claims.exp! - claims.nbf!).toBeGreaterThan(3000);

      const result = await auth().authenticateRequest(activity as never, `Bearer ${token}`);
      expect(result.claimsIdentity.isAuthenticated).toBe(true);
      expect(result.claimsIdentity.getClaimValue('aud')).toBe(fake.appId);
      expect(result.audience).toBe(fake.oauthScope);
    });

    it.each<[InboundTokenFlaw, RegExp]>([
      ['wrong-key', /invalid signature/],
      ['unknown-key', /Signing Key could not be retrieved/],
      ['unendorsed-key', /Could not validate endorsement/],
      ['expired', /expired/],
      ['not-yet-valid', /not active/],
      ['wrong-audience', /Invalid AppId passed on token/],
      ['wrong-issuer', /No valid identity/],
      ['missing-service-url', /ServiceUrl claim do not match/],
      ['wrong-service-url', /ServiceUrl claim do not match/],
    ])('refuses a token with flaw %s', async (flaw, reason) => {
      quiet();
      const activity = fake.message('help');
      const token = await fake.signInbound(activity, { flaw });
      await expect(auth().authenticateRequest(activity as never, `Bearer ${token}`)).rejects.toThrow(reason);
    });
  });

  describe('login (MSAL client credentials)', () => {
    it('issues an access token to MsalAppCredentials through the credentials factory', async () => {
      const before = fake.calls.length;
      const token = await tokenFor(fake);
      expect(fake.issuedTokens.map((t) => t.token)).toContain(token);
      expect(decodeJwt(token)).toMatchObject({ aud: fake.oauthScope, appid: fake.appId });
      const asked = fake.calls.slice(before).map((c) => `${c.method} ${c.path.split('?')[0]} ${c.status}`);
      expect(asked).toContain('POST /botframework.com/oauth2/v2.0/token 200');
      expect(fake.calls.slice(before).every((c) => c.operation !== 'unknown')).toBe(true);
      const tokenCall = fake.calls.slice(before).find((c) => c.operation === 'token');
      expect(tokenCall?.body).toMatchObject({
        grant_type: 'client_credentials',
        client_id: fake.appId,
        client_secret: '***',
        scope: 'https://api.botframework.com/.default',
      });
    });

    it('serves the OpenID configuration MSAL reads first', async () => {
      const config = (await (
        await fetch(`${fake.loginUrl}/v2.0/.well-known/openid-configuration`)
      ).json()) as Record<string, unknown>;
      expect(config).toMatchObject({
        token_endpoint: `${fake.loginUrl}/oauth2/v2.0/token`,
        authorization_endpoint: `${fake.loginUrl}/oauth2/v2.0/authorize`,
        jwks_uri: `${fake.loginUrl}/discovery/v2.0/keys`,
      });
      expect(config.issuer).toEqual(expect.any(String));
    });

    it('refuses a wrong client secret with AADSTS7000215 invalid_client, as Entra does', async () => {
      const credentials = (await credentialsFor(fake, 'not-the-secret')) as unknown as {
        getToken(force?: boolean): Promise<string>;
      };
      await expect(credentials.getToken(true)).rejects.toThrow(/invalid_client.*AADSTS7000215/s);
      expect(fake.calls.at(-1)).toMatchObject({ operation: 'token', status: 401 });
    });

    it('refuses an unknown client, a bad scope and an unknown tenant', async () => {
      const post = async (tenant: string, form: Record<string, string>) => {
        const response = await fetch(`${fake.origin}/${tenant}/oauth2/v2.0/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(form),
        });
        return {
          status: response.status,
          body: (await response.json()) as { error: string; error_codes: number[] },
        };
      };
      const form = {
        grant_type: 'client_credentials',
        client_id: fake.appId,
        client_secret: fake.appPassword,
        scope: 'https://api.botframework.com/.default',
      };
      expect(await post('botframework.com', { ...form, client_id: crypto.randomUUID() })).toMatchObject({
        status: 400,
        body: { error: 'unauthorized_client', error_codes: [700016] },
      });
      expect(
        await post('botframework.com', { ...form, scope: 'https://api.botframework.com' }),
      ).toMatchObject({
        status: 400,
        body: { error: 'invalid_scope', error_codes: [1002012] },
      });
      expect(
        await post('botframework.com', { ...form, scope: 'https://graph.microsoft.com/.default' }),
      ).toMatchObject({ status: 400, body: { error: 'invalid_resource', error_codes: [500011] } });
      expect(await post('contoso.example', form)).toMatchObject({
        status: 400,
        body: { error: 'invalid_tenant', error_codes: [90002] },
      });
    });

    it('documents why the factory is needed: MSAL alone asks login.microsoftonline.com for instance discovery', async () => {
      const msal = await import('@azure/msal-node');
      const asked: string[] = [];
      const refuse = async (url: string): Promise<never> => {
        asked.push(url);
        throw new Error('no network in tests');
      };
      // What MsalAppCredentials builds from ToChannelFromBotLoginUrl alone: no knownAuthorities.
      const client = new msal.ConfidentialClientApplication({
        auth: { clientId: fake.appId, clientSecret: fake.appPassword, authority: fake.loginUrl },
        system: { networkClient: { sendGetRequestAsync: refuse, sendPostRequestAsync: refuse } },
      });
      await expect(
        client.acquireTokenByClientCredential({ scopes: [`${fake.oauthScope}/.default`], skipCache: true }),
      ).rejects.toThrow(/endpoints_resolution_error/);
      expect(asked).toEqual([
        `https://login.microsoftonline.com/common/discovery/instance?api-version=1.1&authorization_endpoint=${fake.loginUrl}/oauth2/v2.0/authorize`,
      ]);
    });

    it('SingleTenant: tokens come from the tenant, not from botframework.com', async () => {
      const single = await startTeamsFake({ appType: 'SingleTenant' });
      try {
        expect(single.loginUrl).toBe(`${single.origin}/${single.tenantId}`);
        expect(single.botConfig()).toMatchObject({
          MicrosoftAppType: 'SingleTenant',
          MicrosoftAppTenantId: single.tenantId,
        });
        const token = await tokenFor(single);
        expect(single.issuedTokens[0]).toMatchObject({ token, tenant: single.tenantId });
        const credentials = (await createCredentialsFactory({
          ...single,
          loginUrl: `${single.origin}/botframework.com`,
        }).createCredentials(single.appId, single.oauthScope, single.loginUrl, true)) as unknown as {
          getToken(force?: boolean): Promise<string>;
        };
        await expect(credentials.getToken(true)).rejects.toThrow(/AADSTS700016/);
      } finally {
        await single.close();
      }
    });
  });

  describe('Connector API (botframework-connector clients)', () => {
    let client: ConnectorClient;
    let teams: TeamsConnectorClient;

    beforeAll(async () => {
      const credentials = await credentialsFor(fake);
      client = new ConnectorClient(credentials, { baseUri: fake.serviceUrl });
      teams = new TeamsConnectorClient(credentials, { baseUri: fake.serviceUrl });
    });

    it('accepts, records and answers sends, replies, updates and deletes', async () => {
      const conversationId = fake.personalConversationId('member');
      const sent = await client.conversations.sendToConversation(conversationId, {
        ...message(fake, 'Recommendations'),
        attachments: [card],
      });
      expect(sent._response.status).toBe(201);
      const reply = await client.conversations.replyToActivity(
        conversationId,
        sent.id!,
        message(fake, 'Details'),
      );
      expect(reply.id).toEqual(expect.any(String));
      await client.conversations.updateActivity(conversationId, sent.id!, {
        ...message(fake, 'Recommendations (updated)'),
        id: sent.id!,
        attachments: [card],
      });

      let state = fake.conversation(conversationId);
      expect(state.map((a) => [a.id, a.operation, a.activity.text, a.version])).toEqual([
        [sent.id, 'send', 'Recommendations (updated)', 2],
        [reply.id, 'reply', 'Details', 1],
      ]);
      expect(state[1]?.replyToId).toBe(sent.id);

      await client.conversations.deleteActivity(conversationId, reply.id!);
      state = fake.conversation(conversationId);
      expect(state.map((a) => a.id)).toEqual([sent.id]);
      expect(fake.activities.find((a) => a.id === reply.id)?.deleted).toBe(true);
      const ops = fake.calls
        .filter((c) => c.conversationId === conversationId)
        .map((c) => `${c.operation} ${c.status}`);
      expect(ops).toEqual([
        'POST /v3/conversations/{conversationId}/activities 201',
        'POST /v3/conversations/{conversationId}/activities/{activityId} 201',
        'PUT /v3/conversations/{conversationId}/activities/{activityId} 200',
        'DELETE /v3/conversations/{conversationId}/activities/{activityId} 200',
      ]);
    });

    it('threads channel posts: new threads, replies in a thread, createConversation', async () => {
      const channel = fake.team.channels.alerts.id;
      const created = await client.conversations.createConversation({
        isGroup: true,
        channelData: { channel: { id: channel } },
        activity: message(fake, 'New thread') as never,
      } as never);
      expect(created.id).toBe(`${channel};messageid=${created.activityId}`);
      const inThread = await client.conversations.sendToConversation(
        created.id!,
        message(fake, 'In the thread'),
      );
      const topLevel = await client.conversations.sendToConversation(channel, message(fake, 'Top level'));
      const state = fake.conversation(channel);
      expect(state.map((a) => [a.activity.text, a.threadId])).toEqual([
        ['New thread', created.activityId],
        ['In the thread', created.activityId],
        ['Top level', topLevel.id],
      ]);
      expect(inThread.id).toEqual(expect.any(String));
    });

    it('creates (finds) the personal conversation with a user', async () => {
      const created = await client.conversations.createConversation({
        isGroup: false,
        bot: { id: fake.botId, name: fake.botName },
        members: [{ id: fake.users.admin.id, name: fake.users.admin.name }],
        channelData: { tenant: { id: fake.tenantId } },
      } as never);
      expect(created.id).toBe(fake.personalConversationId('admin'));
      await expect(
        client.conversations.createConversation({
          isGroup: false,
          members: [{ id: '29:1unknown', name: 'Nobody' }],
          channelData: { tenant: { id: fake.tenantId } },
        } as never),
      ).rejects.toMatchObject({ statusCode: 400, code: 'BadArgument' });
    });

    it('answers members, paged members, one member, team details and channels', async () => {
      const members = await client.conversations.getConversationMembers(fake.team.id);
      expect(members.map((m) => m.name)).toEqual(['Ada Admin', 'Max Member']);
      // The client's type wants a continuation token even for the first page; it sends none when undefined.
      const firstPage = { pageSize: 1 } as PagedMembersOptions;
      const page = await client.conversations.getConversationPagedMembers(fake.team.id, firstPage);
      expect(page.members?.map((m) => m.name)).toEqual(['Ada Admin']);
      const next = await client.conversations.getConversationPagedMembers(fake.team.id, {
        pageSize: 1,
        continuationToken: page.continuationToken!,
      });
      expect(next.members?.map((m) => m.name)).toEqual(['Max Member']);
      expect(next.continuationToken).toBeUndefined();
      const one = await client.conversations.getConversationMember(fake.team.id, fake.users.member.id);
      expect(one).toMatchObject({ id: fake.users.member.id, email: fake.users.member.email });

      const details = await teams.teams.fetchTeamDetails(fake.team.id);
      expect(details).toMatchObject({ id: fake.team.id, name: 'CloudOps', aadGroupId: fake.team.aadGroupId });
      const channels = await teams.teams.fetchChannelList(fake.team.id);
      expect(channels.conversations?.map((c) => c.id)).toEqual([fake.team.id, fake.team.channels.alerts.id]);
    });

    it('answers 401 without the token the login issued', async () => {
      const conversationId = fake.personalConversationId('admin');
      const path = `v3/conversations/${encodeURIComponent(conversationId)}/activities`;
      const body = message(fake, 'hi');
      expect(await connectorCall(fake, 'POST', path, { token: null, body })).toMatchObject({
        status: 401,
        body: { message: 'Authorization has been denied for this request.' },
      });
      const forged = await fake.signInbound({ serviceUrl: fake.serviceUrl });
      expect((await connectorCall(fake, 'POST', path, { token: forged, body })).status).toBe(401);
      const stale = await startTeamsFake();
      try {
        const token = await tokenFor(stale);
        stale.advanceTime(3600_000);
        const staleId = stale.personalConversationId();
        const answer = await connectorCall(
          stale,
          'POST',
          `v3/conversations/${encodeURIComponent(staleId)}/activities`,
          {
            token,
            body: message(stale, 'late'),
          },
        );
        expect(answer.status).toBe(401);
      } finally {
        await stale.close();
      }
    });

    it('answers 404 ConversationNotFound, 403 BotNotInConversationRoster and 404 for unknown activities', async () => {
      await expect(
        client.conversations.sendToConversation('19:nope@thread.tacv2', message(fake, 'x')),
      ).rejects.toMatchObject({ statusCode: 404, code: 'ConversationNotFound' });

      const groupChat = fake.groupChatId;
      await expect(
        client.conversations.updateActivity(groupChat, '1234', { ...message(fake, 'x'), id: '1234' }),
      ).rejects.toMatchObject({ statusCode: 404, code: 'ActivityNotFoundInConversation' });

      fake.removeBot(fake.team.id);
      try {
        for (const channel of [fake.team.id, fake.team.channels.alerts.id])
          await expect(
            client.conversations.sendToConversation(channel, message(fake, 'x')),
          ).rejects.toMatchObject({
            statusCode: 403,
            code: 'BotNotInConversationRoster',
          });
        await expect(teams.teams.fetchTeamDetails(fake.team.id)).rejects.toMatchObject({ statusCode: 403 });
      } finally {
        fake.restoreBot(fake.team.id);
      }
      await client.conversations.sendToConversation(fake.team.id, message(fake, 'back'));
    });

    it('refuses bodies the swagger does not allow with ErrorResponse 400, and lists them as spec violations', async () => {
      const conversationId = fake.personalConversationId('admin');
      const path = `v3/conversations/${encodeURIComponent(conversationId)}/activities`;
      const answer = await connectorCall(fake, 'POST', path, {
        body: { type: 'message', text: 7, from: 'bot' },
      });
      expect(answer).toMatchObject({ status: 400, body: { error: { code: 'BadArgument' } } });
      expect([...fake.specViolations].sort()).toEqual([
        'request POST /v3/conversations/{conversationId}/activities: $.from: expected an object',
        'request POST /v3/conversations/{conversationId}/activities: $.text: expected a string',
      ]);
      fake.specViolations.length = 0;
    });

    it("applies Teams' rules beyond the swagger: type, Adaptive Card content, message size, no conversation listing", async () => {
      const conversationId = fake.personalConversationId('admin');
      const path = `v3/conversations/${encodeURIComponent(conversationId)}/activities`;
      expect(await connectorCall(fake, 'POST', path, { body: { text: 'no type' } })).toMatchObject({
        status: 400,
        body: { error: { code: 'BadArgument' } },
      });
      const badCard = {
        ...message(fake, ''),
        attachments: [{ contentType: card.contentType, content: { body: [] } }],
      };
      expect((await connectorCall(fake, 'POST', path, { body: badCard })).status).toBe(400);
      const huge = message(fake, 'x'.repeat(60_000));
      expect(await connectorCall(fake, 'POST', path, { body: huge })).toMatchObject({
        status: 413,
        body: { error: { code: 'MessageSizeTooBig' } },
      });
      expect((await connectorCall(fake, 'GET', 'v3/conversations')).status).toBe(405);
    });

    it('injects transient failures: ConnectorClient retries 502, surfaces 412', async () => {
      const conversationId = fake.personalConversationId('admin');
      fake.failNext(1, 502);
      const sent = await client.conversations.sendToConversation(
        conversationId,
        message(fake, 'after a 502'),
      );
      const tries = fake.calls.filter((c) => c.conversationId === conversationId).slice(-2);
      expect(tries.map((c) => c.status)).toEqual([502, 201]);
      expect(tries[0]?.response).toEqual({ error: { code: 'ServiceError', message: expect.any(String) } });
      expect(sent.id).toEqual(expect.any(String));

      fake.failNext(1, 412, '/activities');
      await expect(
        client.conversations.sendToConversation(conversationId, message(fake, 'x')),
      ).rejects.toMatchObject({
        statusCode: 412,
        code: 'PreconditionFailed',
      });
    });

    it('rateLimitNext answers 429 Throttled with Retry-After', async () => {
      fake.rateLimitNext(1, 2);
      const answer = await connectorCall(
        fake,
        'GET',
        `v3/conversations/${encodeURIComponent(fake.team.id)}/members`,
      );
      expect(answer.status).toBe(429);
      expect(answer.headers.get('retry-after')).toBe('2');
      expect(answer.body).toEqual({ error: { code: 'Throttled', message: 'Too many requests.' } });
      expect(fake.calls.at(-1)?.retryAfter).toBe(2);
    });
  });

  describe("Teams' per bot per conversation limits", () => {
    it('answers the 8th post within a second with 429 and Retry-After; ConnectorClient waits and succeeds', async () => {
      // The fake's clock stands still while the 8 posts go out, so they all fall in one second.
      let frozen: number | undefined;
      const limited = await startTeamsFake({ now: () => frozen ?? Date.now() });
      try {
        const token = await tokenFor(limited);
        const conversationId = limited.personalConversationId();
        const path = `v3/conversations/${encodeURIComponent(conversationId)}/activities`;
        frozen = Date.now();
        const statuses: number[] = [];
        let retryAfter: string | null = null;
        for (let i = 0; i < 8; i++) {
          const answer = await connectorCall(limited, 'POST', path, {
            token,
            body: message(limited, `m${i}`),
          });
          statuses.push(answer.status);
          if (answer.status === 429) retryAfter = answer.headers.get('retry-after');
        }
        expect(statuses).toEqual([201, 201, 201, 201, 201, 201, 201, 429]);
        expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
        expect(limited.conversation(conversationId)).toHaveLength(7);

        // Another conversation has its own budget.
        const other = limited.personalConversationId('member');
        const answer = await connectorCall(
          limited,
          'POST',
          `v3/conversations/${encodeURIComponent(other)}/activities`,
          {
            token,
            body: message(limited, 'elsewhere'),
          },
        );
        expect(answer.status).toBe(201);

        const client = new ConnectorClient(await credentialsFor(limited), { baseUri: limited.serviceUrl });
        frozen = undefined; // real time again: the window frees after the Retry-After the client waits for
        const started = Date.now();
        await client.conversations.sendToConversation(conversationId, message(limited, 'patient'));
        const tries = limited.calls.filter((c) => c.conversationId === conversationId).slice(-2);
        expect(tries.map((c) => c.status)).toEqual([429, 201]);
        expect(Date.now() - started).toBeGreaterThanOrEqual(500);
        expect(limited.specViolations).toEqual([]);
      } finally {
        await limited.close();
      }
    });

    it('allows 60 per 30 seconds', async () => {
      const limited = await startTeamsFake();
      try {
        const token = await tokenFor(limited);
        const conversationId = limited.personalConversationId();
        const path = `v3/conversations/${encodeURIComponent(conversationId)}/activities`;
        for (let i = 0; i < 60; i++) {
          if (i % 7 === 0) limited.advanceTime(1_001);
          expect(
            (await connectorCall(limited, 'POST', path, { token, body: message(limited, `m${i}`) })).status,
          ).toBe(201);
        }
        limited.advanceTime(1_001);
        const answer = await connectorCall(limited, 'POST', path, {
          token,
          body: message(limited, 'one too many'),
        });
        expect(answer.status).toBe(429);
        expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(1);
        limited.advanceTime(30_000);
        expect(
          (await connectorCall(limited, 'POST', path, { token, body: message(limited, 'later') })).status,
        ).toBe(201);
      } finally {
        await limited.close();
      }
    });
  });

  describe('inbound builders', () => {
    it('builds activities as Teams sends them, valid against the Bot Framework schema', () => {
      const personal = fake.message('help');
      expect(personal).toMatchObject({
        type: 'message',
        text: 'help',
        channelId: 'msteams',
        serviceUrl: fake.serviceUrl,
        from: { id: fake.users.admin.id, aadObjectId: fake.users.admin.aadObjectId },
        recipient: { id: fake.botId, name: fake.botName },
        conversation: {
          conversationType: 'personal',
          tenantId: fake.tenantId,
          id: fake.personalConversationId(),
        },
        channelData: { tenant: { id: fake.tenantId } },
      });

      const channel = fake.message('integrations', { conversation: 'channel', user: 'member' });
      expect(channel.text).toBe(`<at>${fake.botName}</at> integrations`);
      expect(channel.entities).toContainEqual({
        type: 'mention',
        text: `<at>${fake.botName}</at>`,
        mentioned: { id: fake.botId, name: fake.botName },
      });
      expect(channel.conversation).toMatchObject({
        conversationType: 'channel',
        isGroup: true,
        id: `${fake.team.id};messageid=${channel.id}`,
      });
      expect(channel.channelData).toMatchObject({
        team: { id: fake.team.id },
        channel: { id: fake.team.id },
        tenant: { id: fake.tenantId },
      });
      expect(fake.message('hi', { conversation: 'groupChat' }).conversation).toMatchObject({
        conversationType: 'groupChat',
        id: fake.groupChatId,
      });

      expect(fake.taskFetch({ verb: 'connect' })).toMatchObject({
        type: 'invoke',
        name: 'task/fetch',
        value: { data: { verb: 'connect', msteams: { type: 'task/fetch' } }, context: { theme: 'default' } },
      });
      expect(
        fake.taskSubmit({ url: 'https://jira.example' }, { actionData: { verb: 'connect', url: 'old' } })
          .value,
      ).toMatchObject({ data: { verb: 'connect', url: 'https://jira.example' } });
      expect(
        fake.adaptiveCardAction(
          { verb: 'createTicket', data: { rec: 'R1' }, inputs: { note: 'n' } },
          { replyToId: '1' },
        ),
      ).toMatchObject({
        name: 'adaptiveCard/action',
        replyToId: '1',
        value: {
          action: { type: 'Action.Execute', verb: 'createTicket', data: { rec: 'R1', note: 'n' } },
          trigger: 'manual',
        },
      });
      expect(fake.conversationUpdate()).toMatchObject({
        type: 'conversationUpdate',
        membersAdded: [{ id: fake.botId }],
        conversation: { id: fake.team.id, conversationType: 'channel' },
        channelData: { eventType: 'teamMemberAdded', team: { id: fake.team.id, name: 'CloudOps' } },
      });
      expect(fake.installationUpdate('remove', { conversation: 'personal' })).toMatchObject({
        type: 'installationUpdate',
        action: 'remove',
        conversation: { conversationType: 'personal' },
      });
    });

    it('refuses activities the schema refuses', async () => {
      const broken = { ...fake.message('x'), conversation: undefined, from: { id: 'no name' } };
      expect(validateActivity(broken)).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/conversation/),
          expect.stringMatching(/\$\/from: .*name/),
        ]),
      );
      await expect(fake.send('http://127.0.0.1:9/', broken)).rejects.toThrow(
        /not a valid Bot Framework activity/,
      );
    });
  });

  describe('a real teams-ai bot pointed at the fake', () => {
    let server: Server;
    let botUrl: string;
    const turnErrors: unknown[] = [];

    beforeAll(async () => {
      const adapter = new TeamsAdapter(fake.botConfig(), createCredentialsFactory(fake));
      adapter.onTurnError = async (_context, error) => {
        turnErrors.push(error);
      };
      const bot = new Application({ adapter, removeRecipientMention: true, startTypingTimer: false });
      bot.message(/.*/, async (context) => {
        const members = await TeamsInfo.getPagedMembers(context);
        await context.sendActivity(`echo: ${context.activity.text} (${members.members.length} members)`);
      });
      bot.adaptiveCards.actionExecute('createTicket', async (_context, _state, data) => ({
        type: 'AdaptiveCard',
        version: '1.5',
        body: [{ type: 'TextBlock', text: `Ticket for ${String((data as { rec?: string }).rec)}` }],
      }));
      bot.taskModules.fetch('connect', async () => ({
        title: 'Connect Jira',
        card: {
          contentType: 'application/vnd.microsoft.card.adaptive',
          content: { type: 'AdaptiveCard', version: '1.5' },
        },
      }));
      bot.conversationUpdate('membersAdded', async (context) => {
        await context.sendActivity(MessageFactory.text('Thanks for adding CloudPi'));
      });
      const app = express();
      app.post('/api/messages', express.json(), async (req, res) => {
        await adapter.process(req, res, (context) => bot.run(context).then(() => undefined));
      });
      server = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      botUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/messages`;
    });
    afterAll(async () => {
      await new Promise((resolve) => server.close(resolve));
    });
    afterEach(() => {
      expect(turnErrors).toEqual([]);
    });

    it('answers a channel message through the connector with a token from the login', async () => {
      const activity = fake.message('status', { conversation: 'channel', channel: 'alerts' });
      const answer = await fake.send(botUrl, activity);
      expect(answer.status).toBe(200);
      const replies = fake
        .conversation(fake.team.channels.alerts.id)
        .filter((a) => a.replyToId === activity.id);
      expect(replies.map((a) => a.activity.text)).toEqual(['echo: status (2 members)']);
      expect(replies[0]?.threadId).toBe(activity.id);
    });

    it('returns invoke responses in the HTTP body', async () => {
      const action = await fake.send(
        botUrl,
        fake.adaptiveCardAction({ verb: 'createTicket', data: { rec: 'R7' } }, { replyToId: '42' }),
      );
      expect(action.status).toBe(200);
      expect(action.body).toMatchObject({
        statusCode: 200,
        type: 'application/vnd.microsoft.card.adaptive',
        value: { body: [{ text: 'Ticket for R7' }] },
      });
      const dialog = await fake.send(botUrl, fake.taskFetch({ verb: 'connect' }));
      expect(dialog).toMatchObject({
        status: 200,
        body: { task: { type: 'continue', value: { title: 'Connect Jira' } } },
      });
    });

    it('greets when added to a team', async () => {
      const before = fake.conversation(fake.team.id).length;
      expect((await fake.send(botUrl, fake.conversationUpdate())).status).toBe(200);
      expect(
        fake
          .conversation(fake.team.id)
          .slice(before)
          .map((a) => a.activity.text),
      ).toEqual(['Thanks for adding CloudPi']);
    });

    it('is refused by the bot with flawed tokens or none', async () => {
      quiet();
      const activity = fake.message('hello');
      const status = async (token: string | null) => (await fake.send(botUrl, activity, { token })).status;
      expect(await status(null)).toBe(401);
      expect(await status(await fake.signInbound(activity, { flaw: 'wrong-audience' }))).toBe(401);
      expect(await status(await fake.signInbound(activity, { flaw: 'expired' }))).toBe(401);
      // botbuilder's CloudAdapter answers 500 (not 401) when jsonwebtoken itself throws:
      // a bad signature or a token not valid yet. Refused all the same; nothing reached the bot.
      expect(await status(await fake.signInbound(activity, { flaw: 'wrong-key' }))).toBe(500);
      expect(await status(await fake.signInbound(activity, { flaw: 'not-yet-valid' }))).toBe(500);
      expect(fake.conversation(fake.personalConversationId()).some((a) => a.replyToId === activity.id)).toBe(
        false,
      );
    });
  });
});
