/**
 * One Teams bot for a describe block: the strict fake Bot Framework (login, OpenID metadata,
 * Connector API over HTTPS with its own CA trusted in-process) and the running service pointed at
 * it with a real app registration (MICROSOFT_APP_ID ...). Every card the bot sends or answers with
 * is checked against the Adaptive Cards object model; the fake must end with no spec violation.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { TEAMS_VERBS } from '../../adapters/chat/teams/render.js';
import { validateAdaptiveCard } from '../support/adaptive-cards.js';
import {
  type InboundActivity,
  type Json,
  type SendResult,
  startTeamsFake,
  type TeamsFake,
  type TeamsFakeOptions,
} from '../support/fakes/teams-fake.js';
import { type RunningService, useService } from '../support/service.js';

export interface TeamsBot {
  readonly fake: TeamsFake;
  readonly running: RunningService;
  /** Sends an activity to the bot, signed as the Bot Connector signs it. */
  send(activity: InboundActivity | Json, options?: Parameters<TeamsFake['send']>[2]): Promise<SendResult>;
  /** Every Adaptive Card in the bot's sent activities, in order. */
  sentCards(conversationId?: string): Json[];
}

/** The Adaptive Card in an invoke answer: a dialog (task module) or an Action.Execute answer. */
export function cardOfInvoke(body: unknown): Json {
  const b = body as {
    task?: { value?: { card?: { content?: Json } } };
    value?: Json;
    type?: string;
  };
  const card =
    b.task?.value?.card?.content ??
    (b.type === 'application/vnd.microsoft.card.adaptive' ? b.value : undefined);
  if (!card) throw new Error(`no card in the invoke answer: ${JSON.stringify(body).slice(0, 400)}`);
  return card;
}

export function cardsOfActivity(activity: Json): Json[] {
  return ((activity.attachments as { contentType?: string; content?: Json }[] | undefined) ?? [])
    .filter((a) => a.contentType === 'application/vnd.microsoft.card.adaptive')
    .map((a) => a.content!);
}

/** Every text of a card, joined (TextBlocks, facts, action titles, input labels). */
export function cardText(card: unknown): string {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as Json;
      for (const key of ['text', 'title', 'label', 'value', 'placeholder', 'errorMessage'])
        if (typeof o[key] === 'string') out.push(o[key] as string);
      for (const [k, child] of Object.entries(o)) if (k !== 'data') walk(child);
    }
  };
  walk(card);
  return out.join('\n');
}

/** The actions (anywhere in the card) whose title is `title`. */
export function actionsTitled(card: unknown, title: string | RegExp): Json[] {
  const found: Json[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as Json;
      if (typeof o.type === 'string' && o.type.startsWith('Action.') && typeof o.title === 'string') {
        if (typeof title === 'string' ? o.title === title : title.test(o.title)) found.push(o);
      }
      for (const [k, child] of Object.entries(o)) if (k !== 'data') walk(child);
    }
  };
  walk(card);
  return found;
}

export function expectValidCard(card: unknown): void {
  expect(validateAdaptiveCard(card, { verbs: TEAMS_VERBS })).toEqual([]);
}

export function useTeamsBot(
  extraEnv: Record<string, string> = {},
  fakeOptions: TeamsFakeOptions = {},
  startOptions: Parameters<typeof useService>[2] = {},
): TeamsBot {
  let fake: TeamsFake | undefined;
  const env: Record<string, string> = {
    CLOUDPI_ALLOW_HTTP: 'true',
    CLOUDPI_ALLOW_PRIVATE_NETWORKS: 'true',
    ...extraEnv,
  };
  beforeAll(async () => {
    fake = await startTeamsFake(fakeOptions);
    Object.assign(env, {
      MICROSOFT_APP_ID: fake.appId,
      MICROSOFT_APP_PASSWORD: fake.appPassword,
      MICROSOFT_APP_TYPE: fake.appType,
      ...(fake.appType === 'SingleTenant' ? { MICROSOFT_APP_TENANT_ID: fake.tenantId } : {}),
      MICROSOFT_LOGIN_URL: fake.loginUrl,
      MICROSOFT_OPENID_METADATA_URL: fake.openIdMetadataUrl,
      MICROSOFT_TOKEN_ISSUER: fake.issuer,
      CLOUDPI_ADMINS: [`teams:${fake.users.admin.aadObjectId}`, env.CLOUDPI_ADMINS].filter(Boolean).join(','),
    });
  });
  const running = useService('pglite', env, startOptions);
  const the = () => {
    if (!fake) throw new Error('the Teams fake is not started yet');
    return fake;
  };
  afterAll(async () => {
    if (fake) {
      // Every card the bot sent is a valid Adaptive Card with known verbs.
      for (const sent of fake.activities)
        for (const card of cardsOfActivity(sent.activity)) expectValidCard(card);
      expect(fake.specViolations).toEqual([]);
    }
    await fake?.close();
  });
  return {
    get fake() {
      return the();
    },
    running,
    async send(activity, options) {
      const result = await the().send(running.service.url, activity, options);
      // Dialogs and Action.Execute answers carry cards too: check them on the way.
      if (result.status === 200 && result.body && typeof result.body === 'object') {
        const b = result.body as { task?: { value?: { card?: unknown } }; type?: string; value?: unknown };
        if (b.task?.value?.card || b.type === 'application/vnd.microsoft.card.adaptive')
          expectValidCard(cardOfInvoke(b));
      }
      return result;
    },
    sentCards(conversationId) {
      return the()
        .activities.filter((a) => !conversationId || a.conversationId === conversationId)
        .flatMap((a) => cardsOfActivity(a.activity));
    },
  };
}
