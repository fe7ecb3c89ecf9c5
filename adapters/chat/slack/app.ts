/**
 * The Bolt app over HTTP, mounted on the service's Express app at /slack/events (commands,
 * interactivity and events on one URL), plus /slack/install and /slack/oauth_redirect in OAuth
 * mode. Bolt checks each request's signature (HMAC-SHA256 with the signing secret) and refuses
 * timestamps older than five minutes; it does not refuse timestamps from the future, so a guard in
 * front of it refuses any timestamp more than five minutes off in either direction.
 */
import type { ServerResponse } from 'node:http';
import {
  App,
  type Authorize,
  type Logger as BoltLogger,
  ExpressReceiver,
  HTTPModuleFunctions,
  type Installation,
  LogLevel,
  webApi,
} from '@slack/bolt';
import express, { type Express, type RequestHandler } from 'express';
import { Gauge } from 'prom-client';
import type { ChatCommands } from '../../../src/commands/chat-commands.js';
import type { View } from '../../../src/commands/views.js';
import type { SlackConfig } from '../../../src/config.js';
import { AppError, ErrorCode } from '../../../src/errors.js';
import { FollowUpLane, type FollowUpLaneOptions } from '../../../src/http/follow-up-lane.js';
import type { IntegrationService } from '../../../src/integrations/service.js';
import type { Logger } from '../../../src/logger.js';
import type { Metrics } from '../../../src/metrics.js';
import {
  CardDeliveryError,
  type CardPublisher,
  type CardService,
} from '../../../src/recommendations/card.js';
import type { InstallationRepository } from '../../../src/storage/repositories/installations.js';
import type { Tenant, TenantRepository } from '../../../src/storage/repositories/tenants.js';
import { registerHandlers, type SlackHandlers } from './handlers.js';
import { SLACK_PLATFORM, SlackInstallationStore } from './installation-store.js';
import { renderCard, renderMessage } from './render.js';
import { ChannelPostThrottle } from './throttle.js';
import { slackClientOptions, TierLimiter } from './web-client.js';

/** The least the app needs: the slash command, posting answers, users.info for is_admin, conversations.info (is the bot in the channel?) for public and private channels. */
export const BOT_SCOPES = ['commands', 'chat:write', 'users:read', 'channels:read', 'groups:read'] as const;

export const EVENTS_PATH = '/slack/events';
export const INSTALL_PATH = '/slack/install';
export const REDIRECT_PATH = '/slack/oauth_redirect';

/**
 * chat.postMessage errors no retry can cure: the channel is gone, archived or the bot is not in
 * it, or the workspace's token no longer works. A card meeting one is marked failed.
 */
export const PERMANENT_POST_ERRORS: ReadonlySet<string> = new Set([
  'channel_not_found',
  'not_in_channel',
  'is_archived',
  'account_inactive',
  'token_revoked',
  'invalid_auth',
]);

/** The Slack error code of a Web API platform error (`ok: false`), if it is one. */
function platformErrorOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, data } = error as { code?: unknown; data?: { error?: unknown } };
  return code === webApi.ErrorCode.PlatformError && typeof data?.error === 'string' ? data.error : undefined;
}

/** Slack's replay window: requests stamped further from now than this are refused. */
const MAX_CLOCK_SKEW_SECONDS = 5 * 60;

export interface SlackAppOptions {
  readonly config: SlackConfig;
  /** The https address Slack reaches this service at (CLOUDPI_PUBLIC_URL). */
  readonly publicUrl: string;
  readonly chat: ChatCommands;
  readonly integrations: IntegrationService;
  readonly tenants: TenantRepository;
  readonly installations: InstallationRepository;
  readonly logger: Logger;
  /** Recommendation cards: button presses go here. */
  readonly cards?: CardService;
  /** Web API call timeout. Default 10 s. */
  readonly timeoutMs?: number;
  /** The clock the timestamp check uses. */
  readonly now?: () => number;
  /** How slash commands' answers yield to acknowledgements under load (src/http/follow-up-lane.ts). */
  readonly followUps?: FollowUpLaneOptions;
  /** Where the lane's backlog is shown (/metrics). */
  readonly metrics?: Metrics;
}

export interface SlackApp {
  readonly mode: SlackConfig['mode'];
  /** Adds the Slack routes to the service's Express app (before its JSON body parser). */
  mount(app: Express): void;
  /** Republishes App Home for a tenant's recent viewers (after a health check changed a status). */
  refreshHomes(tenantId: string): Promise<void>;
  /** Posts and updates recommendation cards (chat.postMessage, chat.update). */
  readonly cardPublisher: CardPublisher;
  /** Tells one person something in a channel only they see (chat.postEphemeral): a sign-in confirmation. */
  notifyUser(tenantId: string, channelId: string, userId: string, view: View): Promise<void>;
  /** A direct message from the app to each user (its Messages tab); returns the users reached. */
  messageUsers(tenantId: string, userIds: readonly string[], view: View): Promise<string[]>;
  /** Waits for listeners still working after their acknowledgement. */
  close(): Promise<void>;
}

/** Refuses requests whose X-Slack-Request-Timestamp is more than five minutes off, either way. */
export function requestTimestampGuard(now: () => number = Date.now): RequestHandler {
  return (req, res, next) => {
    const header = req.get('x-slack-request-timestamp') ?? '';
    const skew = Math.abs(now() / 1000 - Number(header));
    if (!/^\d{1,12}$/.test(header) || skew > MAX_CLOCK_SKEW_SECONDS) {
      res.status(401).end();
      return;
    }
    next();
  };
}

/**
 * Bolt's logger over pino. Bolt's debug lines carry request bodies (the OAuth client secret is not
 * among what it redacts), so they are dropped whatever LOG_LEVEL says.
 */
function boltLogger(logger: Logger): BoltLogger {
  const log = logger.child({ component: 'slack-bolt' });
  let level = LogLevel.INFO;
  const text = (msg: unknown[]) => msg.map((m) => (m instanceof Error ? m.message : String(m))).join(' ');
  return {
    debug: () => {},
    info: (...msg: unknown[]) => log.info(text(msg)),
    warn: (...msg: unknown[]) => log.warn(text(msg)),
    error: (...msg: unknown[]) => log.error(text(msg)),
    setLevel: (next: LogLevel) => {
      level = next;
    },
    getLevel: () => level,
    setName: () => {},
  };
}

/**
 * One workspace: the bot token's own workspace (auth.test, asked once) is the only one served; a
 * request signed for another workspace is refused.
 */
function singleWorkspaceAuthorize(client: webApi.WebClient, botToken: string): Authorize<boolean> {
  let identity: Promise<webApi.AuthTestResponse> | undefined;
  return async (source) => {
    identity ??= client.auth.test({ token: botToken }).catch((error: unknown) => {
      identity = undefined;
      throw error;
    });
    const me = await identity;
    const sameTeam = source.teamId !== undefined && source.teamId === me.team_id;
    const sameOrg = Boolean(source.enterpriseId) && source.enterpriseId === me.enterprise_id;
    if (!sameTeam && !sameOrg) {
      throw new Error(
        `SLACK_BOT_TOKEN belongs to workspace ${me.team_id}; a request came from ${source.teamId ?? source.enterpriseId}.`,
      );
    }
    return {
      botToken,
      ...(me.user_id ? { botUserId: me.user_id } : {}),
      ...(me.bot_id ? { botId: me.bot_id } : {}),
      teamId: source.teamId ?? me.team_id,
      ...(me.enterprise_id ? { enterpriseId: me.enterprise_id } : {}),
    };
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(res: ServerResponse, status: number, title: string, body: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'",
  });
  res.end(
    `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>` +
      `<body style="font-family:sans-serif;max-width:40em;margin:3em auto"><h1>${escapeHtml(title)}</h1><p>${body}</p></body></html>`,
  );
}

export function createSlackApp(options: SlackAppOptions): SlackApp {
  const { config, logger } = options;
  const bolt = boltLogger(logger);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const limiter = new TierLimiter();
  const webApiOptions = slackClientOptions({ apiUrl: config.apiUrl, timeoutMs }, limiter);
  const webApiFetch = webApiOptions.fetch ?? fetch;
  const clientOptions: webApi.WebClientOptions = {
    ...webApiOptions,
    // Bolt's respond() posts to response_url with this fetch too. A response_url is no Web API
    // method: it belongs to one command or press (Slack takes five answers on it), so it must not
    // queue in the workspace's tier window (all of them shared one "unknown method" window of 50
    // a minute, across workspaces). Only Web API calls go through the limiter.
    fetch: (url, init) =>
      String(url).startsWith(config.apiUrl)
        ? webApiFetch(url, init)
        : fetch(url, { ...(init as RequestInit), signal: init?.signal ?? AbortSignal.timeout(timeoutMs) }),
  };
  const router = express.Router();
  const store =
    config.mode === 'oauth' ? new SlackInstallationStore(options.tenants, options.installations) : undefined;

  const receiver = new ExpressReceiver({
    signingSecret: config.signingSecret,
    logger: bolt,
    router,
    endpoints: EVENTS_PATH,
    processBeforeResponse: false,
    // A signed body of a shape Slack never sends (null, a view_submission without a view) makes
    // Bolt throw a TypeError: that is the caller's fault, 400 and a warning, not a 500.
    processEventErrorHandler: async (args) => {
      if (!args.response.headersSent && args.error instanceof TypeError) {
        logger.warn({ err: args.error }, 'Slack request refused: not a Slack payload');
        args.response.writeHead(400);
        args.response.end();
        return true;
      }
      return HTTPModuleFunctions.defaultProcessEventErrorHandler(args);
    },
    unhandledRequestHandler: ({ response }) => {
      logger.warn('no listener acknowledged this Slack request within 3 seconds');
      if (!response.headersSent) {
        response.writeHead(404);
        response.end();
      }
    },
    ...(config.mode === 'oauth'
      ? {
          clientId: config.clientId,
          clientSecret: config.clientSecret,
          stateSecret: config.stateSecret,
          installationStore: store,
          scopes: [...BOT_SCOPES],
          redirectUri: `${options.publicUrl}${REDIRECT_PATH}`,
          installerOptions: {
            installPath: INSTALL_PATH,
            redirectUriPath: REDIRECT_PATH,
            // /slack/install goes straight to Slack's consent screen.
            directInstall: true,
            // Slack's authorize page sits beside its Web API (slack.com, slack-gov.com, a gateway).
            authorizationUrl: new URL('../oauth/v2/authorize', config.apiUrl).href,
            clientOptions,
            callbackOptions: {
              success: (
                installation: Installation,
                _options: unknown,
                _req: unknown,
                res: ServerResponse,
              ) => {
                const name = installation.isEnterpriseInstall
                  ? installation.enterprise?.name
                  : installation.team?.name;
                logger.info(
                  {
                    workspace: installation.isEnterpriseInstall
                      ? installation.enterprise?.id
                      : installation.team?.id,
                  },
                  'Slack app installed',
                );
                page(
                  res,
                  200,
                  'CloudPi is installed',
                  `CloudPi is installed in ${escapeHtml(name ?? 'your workspace')}. Open Slack and type <code>/cloudpi help</code>, or open the CloudPi app's Home tab for the Integration settings.`,
                );
              },
              failure: (
                error: { code?: string; message: string },
                _options: unknown,
                _req: unknown,
                res: ServerResponse,
              ) => {
                logger.warn({ code: error.code, message: error.message }, 'Slack installation failed');
                page(
                  res,
                  400,
                  'CloudPi was not installed',
                  `Slack did not complete the installation (${escapeHtml(error.code ?? 'error')}). Start again from <a href="${INSTALL_PATH}">${INSTALL_PATH}</a>.`,
                );
              },
            },
          },
        }
      : {}),
  });

  const app = new App({
    receiver,
    logger: bolt,
    clientOptions,
    // No listener keeps conversation state, and Bolt's default in-memory store answers every
    // request of a conversation it has not seen by building (and dropping) an Error: about a
    // tenth of a button press's acknowledgement.
    convoStore: false,
    ...(config.mode === 'single'
      ? {
          authorize: singleWorkspaceAuthorize(
            new webApi.WebClient(undefined, clientOptions),
            config.botToken,
          ),
        }
      : {}),
  });

  const followUps = new FollowUpLane(logger.child({ component: 'slack' }), options.followUps);
  if (options.metrics)
    new Gauge({
      name: 'cloudpi_slack_answers_waiting',
      help: 'Slack command answers waiting for the acknowledgements to let up (follow-up lane)',
      registers: [options.metrics.registry],
      collect() {
        this.set(followUps.waiting);
      },
    });
  const handlers: SlackHandlers = registerHandlers(app, {
    followUps,
    chat: options.chat,
    integrations: options.integrations,
    tenants: options.tenants,
    store,
    logger,
    ...(options.cards ? { cards: options.cards } : {}),
  });

  // A tenant's platform and workspace id never change: asked at most once a minute per tenant,
  // not on every card post (a fan-out posts hundreds a second).
  const tenantCache = new Map<string, { tenant: Tenant; until: number }>();
  async function tenantOf(tenantId: string): Promise<Tenant | undefined> {
    const now = Date.now();
    const cached = tenantCache.get(tenantId);
    if (cached && cached.until > now) return cached.tenant;
    const tenant = await options.tenants.get(tenantId);
    if (tenantCache.size >= 1_000) tenantCache.clear();
    if (tenant) tenantCache.set(tenantId, { tenant, until: now + 60_000 });
    return tenant;
  }

  async function tokenFor(tenantId: string): Promise<string | undefined> {
    const tenant = await tenantOf(tenantId);
    if (tenant?.platform !== 'slack') return undefined;
    return config.mode === 'single'
      ? config.botToken
      : (await options.installations.find<Installation>(tenant.id, 'slack', tenant.externalId))?.bot?.token;
  }

  async function clientFor(tenantId: string): Promise<webApi.WebClient | undefined> {
    const token = await tokenFor(tenantId);
    return token ? new webApi.WebClient(token, clientOptions) : undefined;
  }

  // Card posts and updates borrow a client from a pool per token instead of building one per
  // call (a WebClient binds every Web API method when built; a fan-out makes a call per card).
  // A client serves one call at a time: on a 429 it pauses its own queue (Retry-After), which
  // must hold up that call only, not the workspace's other channels.
  const pools = new Map<string, webApi.WebClient[]>();
  async function withClient<T>(tenantId: string, use: (client: webApi.WebClient) => Promise<T>): Promise<T> {
    const token = await tokenFor(tenantId);
    if (!token) throw new Error('Slack is not installed for this tenant.');
    let pool = pools.get(token);
    if (!pool) {
      if (pools.size >= 1_000) pools.clear();
      pool = [];
      pools.set(token, pool);
    }
    const client = pool.pop() ?? new webApi.WebClient(token, clientOptions);
    try {
      return await use(client);
    } finally {
      client.removeAllListeners();
      if (pool.length < 200) pool.push(client);
    }
  }

  // Slack's limit of about one post a second per channel, kept in this process only: replicas
  // posting to one channel meet Slack's 429, which the client waits out (throttle.ts).
  const throttle = new ChannelPostThrottle();
  const cardPublisher: CardPublisher = {
    platform: SLACK_PLATFORM,
    async post(tenantId, channelId, view) {
      const answer = await throttle.run(`${tenantId}|${channelId}`, (rateLimited) =>
        withClient(tenantId, async (client) => {
          let retryAfterSeconds: number | undefined;
          client.on(webApi.WebClientEvent.RATE_LIMITED, (seconds: number) => {
            retryAfterSeconds = seconds;
            rateLimited();
          });
          try {
            return await client.chat.postMessage({ channel: channelId, ...renderCard(view) });
          } catch (error) {
            const code = platformErrorOf(error);
            if (code && PERMANENT_POST_ERRORS.has(code)) throw new CardDeliveryError(code, { cause: error });
            // Still 429 after the client's retries: the job runs again after Retry-After.
            if (!code && retryAfterSeconds !== undefined)
              throw new AppError(ErrorCode.RATE_LIMITED, 'Slack is rate limiting posts to this channel.', {
                cause: error,
                details: { retryAfterSeconds },
              });
            throw error;
          }
        }),
      );
      if (!answer.ts) throw new Error('chat.postMessage answered without a ts.');
      return answer.ts;
    },
    async update(tenantId, channelId, messageRef, view) {
      await withClient(tenantId, (client) =>
        client.chat.update({ channel: channelId, ts: messageRef, ...renderCard(view) }),
      );
    },
    // chat.update is Tier 3 (about 50 a minute per workspace): a refresh waits for its turns
    // first and reads the card's state after, so what it sends is current when Slack shows it.
    async reserveUpdates(tenantId, count) {
      const token = await tokenFor(tenantId);
      if (token) await limiter.reserve(token, 'chat.update', count);
    },
  };

  return {
    mode: config.mode,
    mount(server: Express) {
      const timestampGuard = requestTimestampGuard(options.now);
      server.post(EVENTS_PATH, (req, res, next) => {
        followUps.noteRequest();
        timestampGuard(req, res, next);
      });
      server.use(router);
    },
    async refreshHomes(tenantId: string) {
      const client = await clientFor(tenantId);
      if (client) await handlers.refreshTenant(client, tenantId);
    },
    async notifyUser(tenantId, channelId, userId, view) {
      const client = await clientFor(tenantId);
      if (!client) return;
      await client.chat.postEphemeral({ channel: channelId, user: userId, ...renderMessage(view) });
      await handlers.refreshTenant(client, tenantId);
    },
    async messageUsers(tenantId, userIds, view) {
      const client = await clientFor(tenantId);
      if (!client) return [];
      const reached: string[] = [];
      for (const userId of userIds) {
        try {
          await client.chat.postMessage({ channel: userId, ...renderMessage(view) });
          reached.push(userId);
        } catch (error) {
          logger.warn({ err: error, tenantId, userId }, 'could not send a direct message');
        }
      }
      return reached;
    },
    cardPublisher,
    close: () => handlers.drain(),
  };
}
