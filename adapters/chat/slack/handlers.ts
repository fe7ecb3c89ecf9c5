/**
 * What the Slack app does with each request: the /cloudpi slash command, modal submissions
 * (view_submission), button presses (block_actions), App Home (app_home_opened) and the
 * installation's end (app_uninstalled, tokens_revoked). Every handler acknowledges first and works
 * after; the core (ChatCommands) decides, this file only transports and renders.
 */
import type {
  AllMiddlewareArgs,
  App,
  BlockAction,
  Context,
  RespondFn,
  SlackActionMiddlewareArgs,
  SlackCommandMiddlewareArgs,
  SlackEventMiddlewareArgs,
  SlackViewMiddlewareArgs,
  ViewOutput,
  ViewSubmitAction,
  webApi,
} from '@slack/bolt';
import type { Actor, ChatCommands, Reply } from '../../../src/commands/chat-commands.js';
import { mayOpenForm, parseCommand } from '../../../src/commands/grammar.js';
import type { ActionName, NoticeView, SettingsKind, View } from '../../../src/commands/views.js';
import type { FollowUpLane } from '../../../src/http/follow-up-lane.js';
import type { IntegrationService } from '../../../src/integrations/service.js';
import type { Logger } from '../../../src/logger.js';
import { type CardAction, type CardService, isProviderKind } from '../../../src/recommendations/card.js';
import type { TenantRepository } from '../../../src/storage/repositories/tenants.js';
import { installKey, SLACK_PLATFORM, type SlackInstallationStore } from './installation-store.js';
import {
  ACTION_ID_PATTERN,
  CALLBACK,
  CARD_ACTION_PATTERN,
  cut,
  decodeMeta,
  escapeMrkdwn,
  type ModalContent,
  type ModalMeta,
  parseActionId,
  parseCardAction,
  progressView,
  renderHome,
  renderMessage,
  renderModal,
} from './render.js';

type WebClient = webApi.WebClient;
type CommandArgs = SlackCommandMiddlewareArgs & AllMiddlewareArgs;
type ViewArgs = SlackViewMiddlewareArgs<ViewSubmitAction> & AllMiddlewareArgs;
type BlockActionArgs = SlackActionMiddlewareArgs<BlockAction> & AllMiddlewareArgs;
type EventArgs<T extends string> = SlackEventMiddlewareArgs<T> & AllMiddlewareArgs;

/** A pattern matching exactly these strings. */
function oneOf(values: readonly string[]): RegExp {
  return new RegExp(`^(?:${values.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})$`);
}

export interface SlackHandlerDeps {
  readonly chat: ChatCommands;
  readonly integrations: IntegrationService;
  readonly tenants: TenantRepository;
  /** OAuth mode: where installations live. Undefined in one-workspace mode. */
  readonly store: SlackInstallationStore | undefined;
  readonly logger: Logger;
  /** Recommendation cards (Create ticket, Retry, Dismiss). */
  readonly cards?: CardService;
  /** How long a users.info answer (workspace admin or not) is trusted. */
  readonly adminCacheMs?: number;
  /** Where a command's answer waits while the service is saturated with acknowledgements. */
  readonly followUps?: FollowUpLane;
}

/** Actions after which App Home shows something else. */
const CHANGING: ReadonlySet<ActionName> = new Set(['pause', 'activate', 'confirm-disconnect']);
const HOME_VIEWERS_PER_TENANT = 50;

/** Where an answer goes: a new modal (trigger_id), the modal the button was in, or App Home. */
type Surface =
  | { readonly kind: 'new' }
  | { readonly kind: 'modal'; readonly viewId: string }
  | { readonly kind: 'home' };

/** The workspace a request came from (Bolt's context has more). */
type Workspace = Pick<Context, 'teamId' | 'enterpriseId' | 'isEnterpriseInstall'>;

interface Target {
  readonly client: WebClient;
  readonly user: string;
  readonly triggerId?: string | undefined;
  readonly channel?: string | undefined;
  readonly respond?: RespondFn | undefined;
}

function notice(tone: NoticeView['tone'], title: string, text?: string): NoticeView {
  return { kind: 'notice', tone, title, ...(text ? { text } : {}) };
}

/** Field values of a submitted modal, by block id (the field key). */
export function readValues(state: ViewOutput['state']['values']): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [blockId, actions] of Object.entries(state ?? {})) {
    const action = Object.values(actions ?? {})[0] as
      | { value?: string | null; selected_option?: { value?: string } | null }
      | undefined;
    const value = action?.selected_option?.value ?? action?.value ?? '';
    values[blockId] = typeof value === 'string' ? value : '';
  }
  return values;
}

/** Like readValues, with the chosen values of multi-selects and checkboxes as arrays. */
export function readFormValues(state: ViewOutput['state']['values']): Record<string, string | string[]> {
  const values: Record<string, string | string[]> = readValues(state);
  for (const [blockId, actions] of Object.entries(state ?? {})) {
    const action = Object.values(actions ?? {})[0] as
      | { selected_options?: { value?: string }[] | null }
      | undefined;
    if (Array.isArray(action?.selected_options))
      values[blockId] = action.selected_options
        .map((o) => o.value)
        .filter((v): v is string => typeof v === 'string');
  }
  return values;
}

function inputBlocks(view: ViewOutput): { id: string; label: string; optional: boolean }[] {
  return (view.blocks as unknown as Record<string, unknown>[])
    .filter((b) => b.type === 'input' && typeof b.block_id === 'string')
    .map((b) => ({
      id: b.block_id as string,
      label: ((b.label as { text?: string } | undefined)?.text ?? b.block_id) as string,
      optional: b.optional === true,
    }));
}

/** response_action errors must name input blocks of the view; others go to the first input. */
function errorsByBlock(errors: Readonly<Record<string, string>>, view: ViewOutput): Record<string, string> {
  const ids = inputBlocks(view).map((b) => b.id);
  const result: Record<string, string> = {};
  for (const [key, message] of Object.entries(errors)) {
    const id = ids.includes(key) ? key : ids[0];
    if (!id) continue;
    result[id] = result[id] ? `${result[id]} ${message}` : message;
  }
  for (const id of Object.keys(result)) result[id] = result[id]!.slice(0, 2000);
  return result;
}

/** Registers every listener on the Bolt app. */
export function registerHandlers(app: App, deps: SlackHandlerDeps): SlackHandlers {
  const { chat, logger } = deps;
  const log = logger.child({ component: 'slack' });
  const adminCacheMs = deps.adminCacheMs ?? 60_000;
  // Promises, so that a burst of first requests from a workspace or a user shares one lookup
  // instead of each asking on its own (users.info is a tier 4 method: 100 a minute per workspace;
  // the 101st concurrent lookup would wait a minute in the client's limiter).
  const tenantIds = new Map<string, Promise<string>>();
  const workspaceAdmins = new Map<string, { admin: Promise<boolean>; at: number }>();
  const homeViewers = new Map<string, Map<string, Actor>>();

  async function tenantIdOf(context: Workspace, name = ''): Promise<{ tenantId: string; key: string }> {
    const key = installKey({
      teamId: context.teamId,
      enterpriseId: context.enterpriseId,
      isEnterpriseInstall: context.isEnterpriseInstall,
    });
    let tenantId = tenantIds.get(key);
    if (!tenantId) {
      const ensured = deps.tenants.ensure(SLACK_PLATFORM, key, name).then((tenant) => tenant.id);
      tenantId = ensured;
      tenantIds.set(key, ensured);
      ensured.catch(() => {
        if (tenantIds.get(key) === ensured) tenantIds.delete(key);
      });
    }
    return { tenantId: await tenantId, key };
  }

  async function lookUpWorkspaceAdmin(client: WebClient, userId: string): Promise<boolean> {
    const { user } = await client.users.info({ user: userId });
    return Boolean(
      user &&
        !user.deleted &&
        !user.is_restricted &&
        !user.is_ultra_restricted &&
        (user.is_admin || user.is_owner || user.is_primary_owner),
    );
  }

  /** Workspace admins and owners are CloudPi admins (users.info, cached for a minute). */
  async function isWorkspaceAdmin(client: WebClient, key: string, userId: string): Promise<boolean> {
    const cacheKey = `${key}|${userId}`;
    const cached = workspaceAdmins.get(cacheKey);
    if (cached && Date.now() - cached.at < adminCacheMs) return cached.admin;
    const entry = { admin: lookUpWorkspaceAdmin(client, userId), at: Date.now() };
    workspaceAdmins.set(cacheKey, entry);
    if (workspaceAdmins.size > 10_000) workspaceAdmins.delete(workspaceAdmins.keys().next().value!);
    try {
      return await entry.admin;
    } catch (error) {
      // Not cached: the next request asks again.
      if (workspaceAdmins.get(cacheKey) === entry) workspaceAdmins.delete(cacheKey);
      log.warn({ err: error, user: userId }, 'users.info failed: treating the user as not a workspace admin');
      return false;
    }
  }

  async function actorOf(
    client: WebClient,
    context: Workspace,
    userId: string,
    name?: string,
  ): Promise<Actor> {
    const { tenantId, key } = await tenantIdOf(context, name);
    return {
      tenantId,
      platform: 'slack',
      userId,
      platformAdmin: await isWorkspaceAdmin(client, key, userId),
    };
  }

  function rememberHomeViewer(actor: Actor): void {
    let viewers = homeViewers.get(actor.tenantId);
    if (!viewers) {
      viewers = new Map();
      homeViewers.set(actor.tenantId, viewers);
    }
    viewers.delete(actor.userId);
    viewers.set(actor.userId, actor);
    if (viewers.size > HOME_VIEWERS_PER_TENANT) viewers.delete(viewers.keys().next().value!);
  }

  async function publishHome(client: WebClient, actor: Actor): Promise<void> {
    const board = await chat.statusBoard(actor);
    await client.views.publish({ user_id: actor.userId, view: renderHome(board) });
  }

  /** App Home for the acting user and everyone of the tenant who opened it lately. */
  async function republish(client: WebClient, actor: Actor): Promise<void> {
    rememberHomeViewer(actor);
    for (const viewer of homeViewers.get(actor.tenantId)?.values() ?? []) {
      try {
        await publishHome(client, viewer);
      } catch (error) {
        log.warn({ err: error, user: viewer.userId }, 'App Home could not be republished');
      }
    }
  }

  /** Whether the bot can post in a conversation: the subscribe form is only offered where it can. */
  async function channelAccess(
    client: WebClient,
    channelId: string,
  ): Promise<'member' | 'not-member' | 'direct' | 'missing-scope'> {
    try {
      const { channel } = await client.conversations.info({ channel: channelId });
      if (channel?.is_im || channel?.is_mpim) return 'direct';
      return channel?.is_member ? 'member' : 'not-member';
    } catch (error) {
      const code = (error as { data?: { error?: string } }).data?.error;
      if (code === 'channel_not_found') return 'not-member';
      if (code === 'missing_scope') return 'missing-scope';
      throw error;
    }
  }

  function accessNotice(where: 'not-member' | 'direct' | 'missing-scope'): NoticeView {
    switch (where) {
      case 'not-member':
        return notice(
          'warning',
          'CloudPi is not in this channel yet',
          'Invite it first: type /invite @CloudPi in this channel, then /cloudpi subscribe again.',
        );
      case 'direct':
        return notice(
          'warning',
          'Subscriptions are for channels',
          'Use /cloudpi subscribe in the channel that should receive recommendations.',
        );
      case 'missing-scope':
        return notice(
          'error',
          'CloudPi cannot see channels yet',
          'The app needs the channels:read and groups:read scopes: an admin reinstalls it from the updated manifest (cloudpi slack manifest).',
        );
    }
  }

  async function ephemeral(target: Target, view: View): Promise<void> {
    const message = renderMessage(view);
    if (target.respond) {
      try {
        await target.respond({ response_type: 'ephemeral', replace_original: false, ...message });
        return;
      } catch (error) {
        log.warn({ err: error }, 'response_url failed; answering with chat.postEphemeral');
      }
    }
    if (target.channel) {
      await target.client.chat.postEphemeral({ channel: target.channel, user: target.user, ...message });
    } else if (target.triggerId) {
      await target.client.views.open({ trigger_id: target.triggerId, view: renderModal(view) });
    }
  }

  /** Opens a new modal (trigger_id) or replaces the one the user is looking at. */
  async function show(
    target: Target,
    surface: Surface,
    content: ModalContent,
    meta: ModalMeta,
  ): Promise<{ id: string; hash?: string | undefined } | undefined> {
    const view = renderModal(content, meta);
    if (surface.kind === 'modal') {
      const result = await target.client.views.update({ view_id: surface.viewId, view });
      return { id: result.view?.id ?? surface.viewId, hash: result.view?.hash };
    }
    if (!target.triggerId) return undefined;
    const result = await target.client.views.open({ trigger_id: target.triggerId, view });
    return result.view?.id ? { id: result.view.id, hash: result.view.hash } : undefined;
  }

  async function deliver(reply: Reply, actor: Actor, target: Target, surface: Surface): Promise<void> {
    const meta: ModalMeta = target.channel ? { channel: target.channel } : {};
    switch (reply.type) {
      case 'message':
        if (surface.kind === 'modal') await show(target, surface, reply.view, meta);
        else if (surface.kind === 'home') {
          // App Home shows the new state itself; only problems need a word.
          if (reply.view.kind === 'notice' && reply.view.tone !== 'success')
            await show(target, surface, reply.view, meta);
        } else await ephemeral(target, reply.view);
        return;
      case 'open-form':
        await show(target, surface, reply.view, meta);
        return;
      case 'open-subscribe': {
        const where = await channelAccess(target.client, reply.channelId);
        if (where !== 'member') {
          await ephemeral(target, accessNotice(where));
          return;
        }
        const form = await chat.subscribeForm(actor, reply.channelId);
        await show(target, surface, form, { channel: reply.channelId });
        return;
      }
      case 'open-configure': {
        // Listing projects calls the provider: open at once, fill in when the data is there.
        const name = deps.integrations.descriptor(reply.provider).displayName;
        const opened = await show(
          target,
          surface,
          progressView(`Configure ${name}`, `Loading… CloudPi is reading the projects of ${name}.`),
          { ...meta, provider: reply.provider },
        );
        if (!opened) return;
        const form = await chat.configureForm(actor, reply.provider);
        await target.client.views.update({
          view_id: opened.id,
          ...(opened.hash ? { hash: opened.hash } : {}),
          view: renderModal(form, { ...meta, provider: reply.provider }),
        });
        return;
      }
    }
  }

  app.error(async (error) => {
    log.error({ err: error, code: (error as { code?: string }).code }, 'Slack listener failed');
  });

  // ---- /cloudpi ---------------------------------------------------------------------------
  const onCommand = async ({ command, ack, client, context, respond }: CommandArgs) => {
    await ack();
    // What the answer needs, and no more: under load it may wait (see below), and thousands of
    // waiting answers should not keep thousands of request bodies and Bolt contexts alive.
    const target: Target = {
      client,
      user: command.user_id,
      triggerId: command.trigger_id,
      channel: command.channel_id,
      respond: command.response_url ? respond : undefined,
    };
    const workspace: Workspace = {
      teamId: context.teamId,
      enterpriseId: context.enterpriseId,
      isEnterpriseInstall: context.isEnterpriseInstall,
    };
    const teamDomain = command.team_domain;
    const parsed = parseCommand(command.text ?? '');
    const answer = async () => {
      try {
        const actor = await actorOf(target.client, workspace, target.user, teamDomain);
        const reply = await chat.handle(actor, parsed, { channelId: target.channel });
        await deliver(reply, actor, target, { kind: 'new' });
      } catch (error) {
        log.error({ err: error }, '/cloudpi failed');
        await ephemeral(
          target,
          notice('error', 'Something went wrong', 'CloudPi could not answer. Try again.'),
        ).catch(() => {});
      }
    };
    // A form opens with the command's trigger_id, which Slack honours for three seconds: those
    // commands answer now. The others answer at their response_url, good for thirty minutes, and
    // let the acknowledgements behind them go first when the service is saturated.
    if (deps.followUps && !mayOpenForm(parsed)) deps.followUps.run(answer);
    else await answer();
  };

  // ---- Connection form -------------------------------------------------------------------
  const onIntegrationSubmit = async ({ ack, body, view, client, context }: ViewArgs) => {
    const meta = decodeMeta(view.private_metadata);
    const provider = meta.provider;
    if (!provider) {
      await ack();
      return;
    }
    const values = readValues(view.state.values);
    const actor = await actorOf(client, context, body.user.id);
    const errors = await chat.validateIntegrationForm(actor, provider, values);
    if (Object.keys(errors).length > 0) {
      await ack({ response_action: 'errors', errors: errorsByBlock(errors, view) });
      return;
    }
    const name = chat.displayName(provider);
    await ack({
      response_action: 'update',
      view: renderModal(
        progressView(view.title.text, `Verifying… CloudPi is checking the connection to ${name}.`),
        meta,
      ),
    });
    let content: ModalContent;
    try {
      const outcome = await chat.submitIntegrationForm(actor, provider, values);
      content =
        outcome.type === 'view'
          ? outcome.view
          : await chat.integrationForm(
              actor,
              provider,
              outcome.errors,
              withoutSecrets(deps, provider, values),
            );
    } catch (error) {
      log.error({ err: error, provider }, 'connecting failed');
      content = notice('error', `${name} could not be saved`, 'Something went wrong on our side. Try again.');
    }
    await client.views.update({ view_id: view.id, view: renderModal(content, meta) });
    await republish(client, actor);
  };

  // ---- Routing form ----------------------------------------------------------------------
  const onConfigureSubmit = async ({ ack, body, view, client, context }: ViewArgs) => {
    const meta = decodeMeta(view.private_metadata);
    const provider = meta.provider;
    if (!provider || provider === 'sso' || provider === 'smtp') {
      await ack();
      return;
    }
    const values = readValues(view.state.values);
    const missing = Object.fromEntries(
      inputBlocks(view)
        .filter((b) => !b.optional && !values[b.id]?.trim())
        .map((b) => [b.id, `${b.label} is required.`]),
    );
    if (Object.keys(missing).length > 0) {
      await ack({ response_action: 'errors', errors: missing });
      return;
    }
    const actor = await actorOf(client, context, body.user.id);
    const name = deps.integrations.descriptor(provider).displayName;
    await ack({
      response_action: 'update',
      view: renderModal(
        progressView(view.title.text, `Saving… CloudPi is checking the routing with ${name}.`),
        meta,
      ),
    });
    let content: ModalContent;
    try {
      const outcome = await chat.submitConfigureForm(actor, provider, values);
      if (outcome.type === 'errors')
        content = await chat.configureForm(actor, provider, { ...outcome.errors });
      else if (outcome.view.kind === 'notice' && outcome.view.tone === 'error') {
        // The form again, with the provider's answer at the project.
        const form = await chat.configureForm(actor, provider, { project: outcome.view.title });
        content = form.kind === 'configure-form' ? { ...form, notice: outcome.view } : outcome.view;
      } else content = outcome.view;
    } catch (error) {
      log.error({ err: error, provider }, 'configuring failed');
      content = notice(
        'error',
        `${name} routing could not be saved`,
        'Something went wrong on our side. Try again.',
      );
    }
    await client.views.update({ view_id: view.id, view: renderModal(content, meta) });
    await republish(client, actor);
  };

  // A new project or type changes the routing form's other fields: rebuild it for the choice.
  const onRoutingChoice = async ({ ack, body, action, client, context }: BlockActionArgs) => {
    await ack();
    const view = body.view;
    const provider = decodeMeta(view?.private_metadata).provider;
    if (!view || !provider || provider === 'sso' || provider === 'smtp') return;
    const values = readValues(view.state.values);
    const changed = action as { block_id?: string; selected_option?: { value?: string } | null };
    if (changed.block_id && changed.selected_option?.value)
      values[changed.block_id] = changed.selected_option.value;
    try {
      const actor = await actorOf(client, context, body.user.id);
      const form = await chat.configureForm(
        actor,
        provider,
        {},
        {
          ...(values.project ? { project: values.project } : {}),
          ...(values.ticketType ? { ticketType: values.ticketType } : {}),
        },
      );
      await client.views.update({
        view_id: view.id,
        hash: view.hash,
        view: renderModal(form, decodeMeta(view.private_metadata)),
      });
    } catch (error) {
      log.warn({ err: error, provider }, 'routing form could not be rebuilt');
    }
  };

  // ---- Subscribe form ----------------------------------------------------------------------
  const onSubscribeSubmit = async ({ ack, body, view, client, context }: ViewArgs) => {
    const meta = decodeMeta(view.private_metadata);
    if (!meta.channel) {
      await ack();
      return;
    }
    const values = readFormValues(view.state.values);
    const actor = await actorOf(client, context, body.user.id);
    let content: ModalContent;
    try {
      const outcome = await chat.submitSubscribeForm(actor, meta.channel, values);
      if (outcome.type === 'errors') {
        await ack({ response_action: 'errors', errors: errorsByBlock(outcome.errors, view) });
        return;
      }
      content = outcome.view;
    } catch (error) {
      log.error({ err: error }, 'subscribing failed');
      content = notice(
        'error',
        'The subscription could not be saved',
        'Something went wrong on our side. Try again.',
      );
    }
    await ack({ response_action: 'update', view: renderModal(content, meta) });
  };

  // ---- Disconnect confirmation -----------------------------------------------------------
  const onConfirmSubmit = async ({ ack, body, view, client, context }: ViewArgs) => {
    const meta = decodeMeta(view.private_metadata);
    if (!meta.provider) {
      await ack();
      return;
    }
    const actor = await actorOf(client, context, body.user.id);
    const reply = await chat.act(actor, 'confirm-disconnect', meta.provider);
    const content = reply.type === 'message' ? reply.view : notice('info', 'Nothing to do.');
    await ack({ response_action: 'update', view: renderModal(content, meta) });
    await republish(client, actor);
  };

  // ---- Buttons (App Home, modals, ephemeral messages) ------------------------------------
  const onButton = async ({ ack, body, action, client, context, respond }: BlockActionArgs) => {
    await ack();
    const parsed = parseActionId((action as { action_id: string }).action_id);
    if (!parsed) return;
    const container = body.view;
    const surface: Surface =
      container?.type === 'modal'
        ? { kind: 'modal', viewId: container.id }
        : container?.type === 'home'
          ? { kind: 'home' }
          : { kind: 'new' };
    const target: Target = {
      client,
      user: body.user.id,
      triggerId: body.trigger_id,
      channel: body.channel?.id ?? decodeMeta(container?.private_metadata).channel,
      respond: body.response_url ? respond : undefined,
    };
    try {
      const actor = await actorOf(client, context, body.user.id);
      if (parsed.action === 'unsubscribe') {
        const id = (action as { value?: string }).value ?? '';
        const outcome = await chat.unsubscribe(actor, id);
        await ephemeral(
          target,
          target.channel && outcome.tone === 'success'
            ? await chat.subscriptions(actor, target.channel, outcome)
            : outcome,
        );
        return;
      }
      const provider: SettingsKind | undefined =
        parsed.provider ?? decodeMeta(container?.private_metadata).provider;
      if (parsed.action === 'refresh' || !provider) {
        if (surface.kind === 'home') await republish(client, actor);
        else await ephemeral(target, await chat.statusBoard(actor));
        return;
      }
      const reply = await chat.act(actor, parsed.action, provider);
      await deliver(reply, actor, target, surface);
      if (CHANGING.has(parsed.action)) await republish(client, actor);
    } catch (error) {
      log.error({ err: error, action: parsed.action }, 'button press failed');
    }
  };

  // ---- Recommendation cards (anyone in the channel may create the ticket) -------------------
  const onCardButton = async ({ ack: slackAck, body, action, client, context }: BlockActionArgs) => {
    // Acknowledged once the press is recorded (a few milliseconds: the ticket claim and its
    // job, committed), not before: Slack does not redeliver an acknowledged press, so a replica
    // dying in between must not have said yes. Slack's redelivery of an unacknowledged one
    // claims the same ticket (idempotent).
    let acked = false;
    const ack = async () => {
      if (acked) return;
      acked = true;
      await slackAck();
    };
    const cards = deps.cards;
    const raw = action as { action_id: string; value?: string };
    const parsed = parseCardAction(raw.action_id, raw.value);
    const channel = body.channel?.id;
    if (!cards || !parsed || !channel) return ack();
    let cardAction: CardAction;
    if (parsed.action === 'dismiss')
      cardAction = { kind: 'dismiss', recommendationId: parsed.recommendationId };
    else if (parsed.provider && isProviderKind(parsed.provider))
      cardAction = {
        kind: parsed.action,
        recommendationId: parsed.recommendationId,
        provider: parsed.provider,
      };
    else return ack();
    try {
      const { tenantId } = await tenantIdOf(context);
      const problem = await cards.act(
        tenantId,
        SLACK_PLATFORM,
        channel,
        `slack:${body.user.id}`,
        cardAction,
        { onRecorded: ack },
      );
      if (problem)
        await client.chat.postEphemeral({
          channel,
          user: body.user.id,
          text: cut(escapeMrkdwn(problem), 3000),
        });
    } catch (error) {
      log.error({ err: error, action: parsed.action }, 'card button press failed');
    } finally {
      await ack();
    }
  };

  // ---- App Home --------------------------------------------------------------------------
  const onHomeOpened = async ({ event, client, context }: EventArgs<'app_home_opened'>) => {
    if (event.tab !== 'home') return;
    const actor = await actorOf(client, context, event.user);
    rememberHomeViewer(actor);
    await publishHome(client, actor);
  };

  // ---- End of an installation ------------------------------------------------------------
  async function forgetInstallation(context: Context, reason: string): Promise<void> {
    const query = {
      teamId: context.teamId,
      enterpriseId: context.enterpriseId,
      isEnterpriseInstall: context.isEnterpriseInstall,
    };
    const key = installKey(query);
    for (const cacheKey of workspaceAdmins.keys())
      if (cacheKey.startsWith(`${key}|`)) workspaceAdmins.delete(cacheKey);
    const tenantId = await tenantIds.get(key)?.catch(() => undefined);
    if (tenantId) homeViewers.delete(tenantId);
    if (!deps.store) {
      log.warn({ workspace: key, reason }, 'Slack app removed from the workspace; remove SLACK_BOT_TOKEN');
      return;
    }
    const removed = await deps.store.remove(query);
    log.info({ workspace: key, reason, removed }, 'Slack installation deleted');
  }

  const onUninstalled = async ({ context }: EventArgs<'app_uninstalled'>) => {
    await forgetInstallation(context, 'app_uninstalled');
  };

  const onTokensRevoked = async ({ event, context }: EventArgs<'tokens_revoked'>) => {
    // The bot token is the installation; user tokens are not stored (the app asks for none).
    if ((event.tokens.bot ?? []).length > 0) await forgetInstallation(context, 'tokens_revoked');
  };

  // ---- Listeners -------------------------------------------------------------------------
  // One Bolt listener per kind of request, which picks the handler. Bolt runs the middleware
  // chain of every registered listener for every request, each with its own copy of the
  // arguments, whether or not it matches: with eleven listeners that was a sixth of what a button
  // press allocated. Each handler runs to its end before the service closes the database under it
  // (drain).
  const running = new Set<Promise<unknown>>();
  async function tracked(work: Promise<unknown>): Promise<void> {
    running.add(work);
    try {
      await work;
    } finally {
      running.delete(work);
    }
  }

  // Any command name: the app has one, and an admin may have renamed it in the manifest.
  app.command(/^\/.+/, (args) => tracked(onCommand(args)));

  const submissions = new Map<string, (args: ViewArgs) => Promise<void>>([
    [CALLBACK.integration, onIntegrationSubmit],
    [CALLBACK.configure, onConfigureSubmit],
    [CALLBACK.subscribe, onSubscribeSubmit],
    [CALLBACK.confirm, onConfirmSubmit],
  ]);
  // A submission of another view matches no listener: Bolt answers it as unhandled.
  app.view<ViewSubmitAction>(
    { type: 'view_submission', callback_id: oneOf([...submissions.keys()]) },
    (args) => tracked(submissions.get(args.view.callback_id)?.(args) ?? Promise.resolve()),
  );

  // A press may concern more than one handler (a button inside the routing form); each that
  // matches runs, as separate listeners did. A press none matches stays unacknowledged.
  app.action({ type: 'block_actions' }, (args) => {
    const actionId = (args.action as { action_id?: string }).action_id ?? '';
    const callbackId = args.body.view?.callback_id ?? (args.body as { callback_id?: string }).callback_id;
    const handlers: ((a: BlockActionArgs) => Promise<void>)[] = [];
    if (callbackId === CALLBACK.configure) handlers.push(onRoutingChoice);
    if (ACTION_ID_PATTERN.test(actionId)) handlers.push(onButton);
    if (CARD_ACTION_PATTERN.test(actionId)) handlers.push(onCardButton);
    return tracked(Promise.all(handlers.map((handler) => handler(args))));
  });

  app.event(/^(?:app_home_opened|app_uninstalled|tokens_revoked)$/, (args) => {
    const event = args as unknown as EventArgs<'app_home_opened' | 'app_uninstalled' | 'tokens_revoked'>;
    if (event.event.type === 'app_home_opened')
      return tracked(onHomeOpened(event as EventArgs<'app_home_opened'>));
    if (event.event.type === 'app_uninstalled')
      return tracked(onUninstalled(event as EventArgs<'app_uninstalled'>));
    return tracked(onTokensRevoked(event as EventArgs<'tokens_revoked'>));
  });

  return {
    republish,
    async refreshTenant(client: WebClient, tenantId: string) {
      for (const viewer of homeViewers.get(tenantId)?.values() ?? []) {
        try {
          await publishHome(client, viewer);
        } catch (error) {
          log.warn({ err: error, user: viewer.userId }, 'App Home could not be republished');
        }
      }
    },
    drain: async () => {
      while (running.size > 0) await Promise.allSettled([...running]);
      await deps.followUps?.drain();
    },
  };
}

export interface SlackHandlers {
  /** Publishes App Home again for the actor and the tenant's recent viewers. */
  republish(client: WebClient, actor: Actor): Promise<void>;
  /** Publishes App Home again for the tenant's recent viewers (a status changed without them). */
  refreshTenant(client: WebClient, tenantId: string): Promise<void>;
  /**
   * Resolves when no listener and no follow-up is running (shutdown waits for it before closing
   * the database); follow-ups still waiting run first.
   */
  drain(): Promise<void>;
}

function withoutSecrets(
  deps: SlackHandlerDeps,
  provider: SettingsKind,
  values: Record<string, string>,
): Record<string, string> {
  const secret = deps.chat.secretKeys(provider);
  return Object.fromEntries(Object.entries(values).filter(([k]) => !secret.has(k)));
}
