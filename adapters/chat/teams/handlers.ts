/**
 * What the Teams bot answers: commands typed to it (personal chat, or with an @mention in a channel
 * or group chat), dialogs (task/fetch opens one, task/submit answers its form), Universal Actions
 * (adaptiveCard/action: status board buttons, recommendation card buttons and their refresh) and
 * installation events (conversation references for proactive cards).
 *
 * Invokes must be answered within Teams' few seconds: a live provider check that takes longer
 * answers with "Verifying…" and posts its outcome into the conversation when it is done.
 */
import type { Application } from '@microsoft/teams-ai';
import {
  type Activity,
  CardFactory,
  type ConversationReference,
  type TaskModuleTaskInfo,
  TurnContext,
} from 'botbuilder';
import type { Actor, ChatCommands, FormOutcome, Reply } from '../../../src/commands/chat-commands.js';
import { parseCommand } from '../../../src/commands/grammar.js';
import {
  isSettingsKind,
  type NoticeView,
  type SettingsKind,
  type View,
} from '../../../src/commands/views.js';
import type { Logger } from '../../../src/logger.js';
import { type CardAction, type CardService, isProviderKind } from '../../../src/recommendations/card.js';
import type { ConversationRepository } from '../../../src/storage/repositories/conversations.js';
import type { TenantRepository } from '../../../src/storage/repositories/tenants.js';
import type { TicketProviderKind } from '../../../src/tickets/port.js';
import type { OutgoingActivity, ProactiveSender } from './publisher.js';
import {
  formValuesOf,
  renderDialog,
  renderMessageCard,
  renderRecommendationCard,
  subscribeValuesOf,
} from './render.js';

export const TEAMS_PLATFORM = 'teams';
/** How long a dialog submit waits for the live check before answering "Verifying…". */
const SUBMIT_BUDGET_MS = 4_000;
const DIALOG_FORMS = new Set(['connect', 'edit', 'configure', 'disconnect', 'subscribe']);

export interface TeamsHandlerDeps {
  readonly chat: ChatCommands;
  readonly tenants: TenantRepository;
  readonly conversations: ConversationRepository;
  readonly cards?: CardService | undefined;
  readonly sender: ProactiveSender;
  readonly logger: Logger;
  /** SingleTenant bots answer their own tenant only. */
  readonly onlyTenant?: string;
}

interface TurnInfo {
  readonly tenantId: string;
  readonly actor: Actor;
  /** The conversation as a channel id (a channel's thread suffix removed). */
  readonly channelId: string;
  readonly kind: string;
  readonly reference: Partial<ConversationReference>;
}

const TURN_KEY = Symbol('cloudpi.teams.turn');

type Data = Record<string, unknown>;

/** A channel message's conversation id carries `;messageid=<thread>`: the channel is the part before. */
export function channelIdOf(activity: Partial<Activity>): string {
  return String(activity.conversation?.id ?? '').split(';')[0]!;
}

/** The text a person typed, without the bot's @mention and Teams' HTML. */
export function commandTextOf(activity: Partial<Activity>): string {
  const text = TurnContext.removeRecipientMention(activity as Activity) ?? activity.text ?? '';
  return text
    .replace(/<at>[^<]*<\/at>/gi, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&nbsp;/gi, ' ')
    .replace(/&amp;/gi, '&')
    .replace(/&lt;/gi, '<')
    .replace(/&gt;/gi, '>')
    .trim();
}

function cardActivity(card: object, summary?: string): OutgoingActivity {
  return {
    type: 'message',
    attachments: [CardFactory.adaptiveCard(card)],
    ...(summary ? { summary: summary.slice(0, 200) } : {}),
  };
}

function notice(tone: NoticeView['tone'], title: string, text?: string): NoticeView {
  return { kind: 'notice', tone, title, ...(text ? { text } : {}) };
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value);
}

export function registerTeamsHandlers(app: Application, deps: TeamsHandlerDeps): { drain(): Promise<void> } {
  const { chat, logger: log } = deps;
  const pending = new Set<Promise<unknown>>();
  const track = (work: Promise<unknown>) => {
    const settled = work.catch((error: unknown) => log.error({ err: error }, 'Teams background work failed'));
    pending.add(settled);
    void settled.finally(() => pending.delete(settled));
  };
  const turn = (context: TurnContext) => context.turnState.get(TURN_KEY) as TurnInfo | undefined;
  // Every activity names its tenant and conversation; both change rarely, so the database is
  // asked at most once a minute per tenant and per conversation (not on every invoke).
  const tenantIds = new Map<string, { id: string; until: number }>();
  const remembered = new Map<string, { reference: string; until: number }>();
  const FRESH_MS = 60_000;

  // Every activity: which tenant and person, and remember the conversation for proactive cards.
  app.turn('beforeTurn', async (context) => {
    const activity = context.activity;
    const channelData = (activity.channelData ?? {}) as {
      tenant?: { id?: string };
      team?: { id?: string };
      channel?: { id?: string; name?: string };
    };
    const teamsTenant = channelData.tenant?.id ?? activity.conversation?.tenantId;
    if (!teamsTenant || (deps.onlyTenant && teamsTenant !== deps.onlyTenant)) {
      log.warn({ type: activity.type }, 'Teams activity without an allowed tenant; ignored');
      return false;
    }
    const now = Date.now();
    let cachedTenant = tenantIds.get(teamsTenant);
    if (!cachedTenant || cachedTenant.until < now) {
      cachedTenant = { id: (await deps.tenants.ensure('teams', teamsTenant)).id, until: now + FRESH_MS };
      tenantIds.set(teamsTenant, cachedTenant);
    }
    const tenant = { id: cachedTenant.id };
    const channelId = channelIdOf(activity);
    const kind = activity.conversation?.conversationType ?? 'personal';
    const reference = TurnContext.getConversationReference(activity);
    const stored: Partial<ConversationReference> = {
      ...reference,
      // A proactive post goes to the channel itself (a new thread), never into a person's name.
      conversation: { ...reference.conversation!, id: channelId },
      user: undefined as never,
    };
    delete (stored as { activityId?: string }).activityId;
    delete (stored as { user?: unknown }).user;
    const seen = remembered.get(`${tenant.id}|${channelId}`);
    const referenceText = JSON.stringify(stored);
    // Removal events must reach the database at once; other activities refresh it once a minute.
    const removal = activity.type === 'installationUpdate' || activity.type === 'conversationUpdate';
    if (removal || !seen || seen.until < now || seen.reference !== referenceText) {
      await deps.conversations.remember(tenant.id, TEAMS_PLATFORM, {
        conversationId: channelId,
        kind,
        teamId: channelData.team?.id ?? null,
        name: channelData.channel?.name ?? activity.conversation?.name ?? null,
        reference: stored as Record<string, unknown>,
      });
      remembered.set(`${tenant.id}|${channelId}`, { reference: referenceText, until: now + FRESH_MS });
    }
    const info: TurnInfo = {
      tenantId: tenant.id,
      actor: {
        tenantId: tenant.id,
        platform: 'teams',
        userId: activity.from?.aadObjectId ?? activity.from?.id ?? 'unknown',
        platformAdmin: false,
      },
      channelId,
      kind,
      reference: stored,
    };
    context.turnState.set(TURN_KEY, info);
    return true;
  });

  // ---- Commands ---------------------------------------------------------------------------
  app.activity('message', async (context) => {
    const info = turn(context);
    if (!info) return;
    // Card buttons are Action.Execute / task/fetch: a message with a value and no text is not ours.
    const typed = commandTextOf(context.activity);
    if (!typed && context.activity.value) return;
    try {
      const reply = await chat.handle(info.actor, parseCommand(typed), {
        channelId: info.kind === 'personal' ? undefined : info.channelId,
        replyTo: info.channelId,
      });
      await context.sendActivity(cardActivity(await replyCard(reply, info)));
    } catch (error) {
      log.error({ err: error }, 'Teams command failed');
      await context.sendActivity(
        cardActivity(renderMessageCard(notice('error', 'Something went wrong on our side. Try again.'))),
      );
    }
  });

  /**
   * What a command answers with. A form cannot open by itself in Teams (dialogs open from card
   * buttons): the renderer makes it a card whose button opens the dialog.
   */
  async function replyCard(reply: Reply, info: TurnInfo): Promise<object> {
    switch (reply.type) {
      case 'message':
      case 'open-form':
        return renderMessageCard(reply.view);
      case 'open-configure': {
        const view = await chat.configureForm(info.actor, reply.provider);
        return renderMessageCard(view);
      }
      case 'open-subscribe':
        return renderMessageCard(await chat.subscribeForm(info.actor, reply.channelId));
    }
  }

  // ---- Dialogs ----------------------------------------------------------------------------
  function dialog(view: View): TaskModuleTaskInfo {
    const { title, card } = renderDialog(view as Parameters<typeof renderDialog>[0]);
    return { title, card: CardFactory.adaptiveCard(card), width: 'medium', height: 'medium' };
  }

  /** The settings a form or button is about: a ticket provider or SSO. */
  function settingsOf(data: Data): SettingsKind | undefined {
    const p = text(data.provider);
    return isSettingsKind(p) ? p : undefined;
  }

  function providerOf(data: Data): TicketProviderKind | undefined {
    const p = text(data.provider);
    return isProviderKind(p) ? p : undefined;
  }

  async function openDialog(info: TurnInfo, data: Data): Promise<TaskModuleTaskInfo> {
    const form = text(data.form);
    const settings = settingsOf(data);
    const provider = providerOf(data);
    const needs = form === 'configure' ? provider : form === 'subscribe' ? 'none' : settings;
    if (!DIALOG_FORMS.has(form) || !needs)
      return dialog(notice('warning', 'That button is out of date. Ask for it again with the command.'));
    if (!(await chat.isAdmin(info.actor))) return dialog(await chat.refusalFor(info.actor));
    switch (form) {
      case 'connect':
      case 'edit':
        return dialog(await chat.integrationForm(info.actor, settings!));
      case 'configure':
        return dialog(await chat.configureForm(info.actor, provider!));
      case 'disconnect':
        return dialog(chat.confirmDisconnect(settings!));
      default:
        if (info.kind === 'personal')
          return dialog(notice('warning', 'Use subscribe in the channel it is for.'));
        return dialog(await chat.subscribeForm(info.actor, info.channelId));
    }
  }

  app.taskModules.fetch('cloudpi.dialog.open', async (context, _state, data: Data) =>
    openDialog(turn(context)!, data),
  );

  async function outcomeDialog(outcome: FormOutcome, form: () => Promise<View>): Promise<TaskModuleTaskInfo> {
    return outcome.type === 'errors' ? dialog(await form()) : dialog(outcome.view);
  }

  // Inside a dialog every button is an Action.Submit (Teams runs no task/fetch or Execute
  // there): the details' Edit / Configure and the board buttons arrive here too.
  const SUBMIT_VERBS = ['cloudpi.dialog.submit', 'cloudpi.dialog.configure-reload', 'cloudpi.dialog.open'];
  app.taskModules.submit([...SUBMIT_VERBS, /^cloudpi\.board\./], async (context, _state, data: Data) => {
    const info = turn(context)!;
    const provider = providerOf(data);
    const values = formValuesOf(data);
    const form = text(data.form);
    const verb = text(data.verb);
    try {
      if (verb === 'cloudpi.dialog.open') return await openDialog(info, data);
      if (verb.startsWith('cloudpi.board.')) return dialog(await boardAction(info, verb, data));
      const settings = settingsOf(data);
      if (form === 'integration' && settings) return await submitIntegration(info, settings, values);
      if (form === 'configure' && provider) {
        const selection = {
          ...(values.project ? { project: values.project } : {}),
          ...(values.ticketType ? { ticketType: values.ticketType } : {}),
        };
        if (data.verb === 'cloudpi.dialog.configure-reload')
          return dialog(await chat.configureForm(info.actor, provider, {}, selection));
        const outcome = await chat.submitConfigureForm(info.actor, provider, values);
        return outcomeDialog(outcome, () =>
          chat.configureForm(
            info.actor,
            provider,
            outcome.type === 'errors' ? outcome.errors : {},
            selection,
          ),
        );
      }
      if (form === 'subscribe') {
        const submitted = subscribeValuesOf(data);
        const outcome = await chat.submitSubscribeForm(info.actor, info.channelId, submitted);
        return outcomeDialog(outcome, () =>
          chat.subscribeForm(
            info.actor,
            info.channelId,
            outcome.type === 'errors' ? outcome.errors : {},
            submitted,
          ),
        );
      }
      if (form === 'disconnect' && settings) {
        const reply = await chat.act(info.actor, 'confirm-disconnect', settings);
        return dialog(reply.type === 'message' ? reply.view : notice('info', 'Done.'));
      }
      return dialog(notice('warning', 'That form is out of date. Open it again.'));
    } catch (error) {
      log.error({ err: error, form }, 'Teams dialog submit failed');
      return dialog(notice('error', 'Something went wrong on our side. Try again.'));
    }
  });

  /**
   * Fast checks first (errors at their inputs), then the live check within the invoke budget; a
   * slower one answers "Verifying…" and posts the outcome in the conversation.
   */
  async function submitIntegration(
    info: TurnInfo,
    provider: SettingsKind,
    values: Record<string, string>,
  ): Promise<TaskModuleTaskInfo> {
    const secretKeys = chat.secretKeys(provider);
    const typed = Object.fromEntries(Object.entries(values).filter(([k]) => !secretKeys.has(k)));
    const errors = await chat.validateIntegrationForm(info.actor, provider, values);
    if (Object.keys(errors).length > 0) {
      if (errors._ && Object.keys(errors).length === 1) return dialog(await chat.refusalFor(info.actor));
      return dialog(await chat.integrationForm(info.actor, provider, errors, typed));
    }
    const outcome = chat.submitIntegrationForm(info.actor, provider, values);
    let timer: NodeJS.Timeout | undefined;
    const quick = await Promise.race([
      outcome,
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), SUBMIT_BUDGET_MS);
      }),
    ]);
    clearTimeout(timer);
    if (quick)
      return dialog(
        quick.type === 'view'
          ? quick.view
          : await chat.integrationForm(info.actor, provider, quick.errors, typed),
      );
    track(
      outcome.then(async (late) => {
        const view = late.type === 'view' ? late.view : notice('error', 'The settings were not saved.');
        await deps.sender.send(info.reference, cardActivity(renderMessageCard(view)));
      }),
    );
    return dialog({
      kind: 'progress',
      title: 'Verifying…',
      text: 'CloudPi is checking the connection with the provider. The result will be posted in this chat.',
    });
  }

  // ---- Universal Actions: status board buttons --------------------------------------------
  /** A status board, details or subscription list button: the view to show afterwards. */
  async function boardAction(info: TurnInfo, verb: string, data: Data): Promise<View> {
    const action = verb.slice('cloudpi.board.'.length);
    if (action === 'unsubscribe') {
      const result = await chat.unsubscribe(info.actor, text(data.subscriptionId));
      return chat.subscriptions(info.actor, info.channelId, result);
    }
    if (action === 'refresh') return chat.statusBoard(info.actor);
    const provider = settingsOf(data);
    if (!provider || !['pause', 'activate', 'confirm-disconnect', 'test-email'].includes(action))
      return notice('warning', 'That button is out of date.');
    const reply = await chat.act(
      info.actor,
      action as 'pause' | 'activate' | 'confirm-disconnect' | 'test-email',
      provider,
    );
    if (action === 'test-email' && reply.type === 'message') return reply.view;
    if (reply.type === 'message' && reply.view.kind === 'notice' && reply.view.tone === 'error')
      return reply.view;
    // The board again, now showing the change.
    return chat.statusBoard(info.actor);
  }

  app.adaptiveCards.actionExecute(/^cloudpi\.board\./, async (context, _state, data: Data) => {
    const info = turn(context)!;
    const verb = text((context.activity.value as { action?: { verb?: string } })?.action?.verb);
    try {
      return respond(context, renderMessageCard(await boardAction(info, verb, data)));
    } catch (error) {
      log.error({ err: error, verb }, 'Teams board action failed');
      return respond(
        context,
        renderMessageCard(notice('error', 'Something went wrong on our side. Try again.')),
      );
    }
  });

  // ---- Universal Actions: recommendation cards --------------------------------------------
  app.adaptiveCards.actionExecute(/^cloudpi\.card\./, async (context, _state, data: Data) => {
    const info = turn(context)!;
    const verb = text((context.activity.value as { action?: { verb?: string } })?.action?.verb);
    const recommendationId = text(data.recommendationId);
    const cards = deps.cards;
    if (!cards || !/^[0-9a-f-]{36}$/i.test(recommendationId)) return 'This card is out of date.';
    const provider = providerOf(data);
    let action: CardAction | undefined;
    if (verb === 'cloudpi.card.dismiss') action = { kind: 'dismiss', recommendationId };
    else if ((verb === 'cloudpi.card.create' || verb === 'cloudpi.card.retry') && provider)
      action = { kind: verb === 'cloudpi.card.create' ? 'create' : 'retry', recommendationId, provider };
    let problem: string | undefined;
    if (action)
      problem = await cards.act(
        info.tenantId,
        TEAMS_PLATFORM,
        info.channelId,
        `teams:${info.actor.userId}`,
        action,
        {
          awaitRefresh: false,
        },
      );
    if (problem) return problem;
    const view = await cards.viewFor(info.tenantId, recommendationId, TEAMS_PLATFORM, info.channelId);
    if (!view) return 'This recommendation no longer exists.';
    return respond(context, renderRecommendationCard(view));
  });

  /**
   * Answers the invoke with the card ourselves: teams-ai would otherwise also update the message
   * through the connector for cards with a refresh, inside the invoke's deadline; CardService
   * updates the other copies.
   */
  async function respond(context: TurnContext, card: { type?: string }) {
    await context.sendActivity({
      type: 'invokeResponse',
      value: {
        status: 200,
        body: { statusCode: 200, type: 'application/vnd.microsoft.card.adaptive', value: card },
      },
    });
    return card as { type: 'AdaptiveCard' };
  }

  // ---- Installation --------------------------------------------------------------------
  app.activity('conversationUpdate', async (context) => {
    const info = turn(context);
    if (!info) return;
    const activity = context.activity;
    const botId = activity.recipient?.id;
    const channelData = (activity.channelData ?? {}) as {
      eventType?: string;
      team?: { id?: string };
      channel?: { id?: string };
    };
    if (activity.membersRemoved?.some((m) => m.id === botId)) {
      const teamId = channelData.team?.id;
      await deps.conversations.markRemoved(
        info.tenantId,
        TEAMS_PLATFORM,
        teamId ? { teamId } : { conversationId: info.channelId },
      );
      return;
    }
    if (channelData.eventType === 'channelDeleted' && channelData.channel?.id) {
      await deps.conversations.markRemoved(info.tenantId, TEAMS_PLATFORM, {
        conversationId: channelData.channel.id,
      });
      return;
    }
    if (activity.membersAdded?.some((m) => m.id === botId)) {
      await context.sendActivity(
        cardActivity(
          renderMessageCard({
            ...chat.help(),
            intro:
              info.kind === 'channel'
                ? 'CloudPi is here. Mention @CloudPi with a command; an admin can subscribe this channel to recommendations with @CloudPi subscribe.'
                : 'CloudPi brings your Integration settings and cost recommendations into Teams. Commands:',
          }),
        ),
      );
    }
  });

  app.activity('installationUpdate', async (context) => {
    const info = turn(context);
    if (!info) return;
    const action = text((context.activity as { action?: string }).action);
    if (action.startsWith('remove')) {
      const teamId = (context.activity.channelData as { team?: { id?: string } } | undefined)?.team?.id;
      await deps.conversations.markRemoved(
        info.tenantId,
        TEAMS_PLATFORM,
        teamId ? { teamId } : { conversationId: info.channelId },
      );
    }
  });

  return {
    async drain() {
      await Promise.all([...pending]);
    },
  };
}
