/**
 * The Teams bot: a teams-ai Application on botbuilder's TeamsAdapter (a CloudAdapter), mounted at
 * /api/messages. With MICROSOFT_APP_ID every request must carry a valid Bot Framework token
 * (botbuilder's JWT validation, against the Bot Connector's OpenID metadata) and every reply is
 * sent with a token for the bot (MSAL client credentials). Without it the bot runs in local
 * mode for the Bot Framework Emulator / Teams Toolkit: no tokens, so only loopback callers and
 * loopback service URLs are accepted.
 */
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { Application, TeamsAdapter } from '@microsoft/teams-ai';
import type {
  Activity,
  ConfigurationBotFrameworkAuthenticationOptions,
  InvokeResponse,
  TurnContext,
} from 'botbuilder';
import { CardFactory, StatusCodes } from 'botbuilder';
import { AuthenticationError, MsalServiceClientCredentialsFactory } from 'botframework-connector';
import { type Express, type Request, type Response, Router } from 'express';
import type { ChatCommands } from '../../../src/commands/chat-commands.js';
import type { View } from '../../../src/commands/views.js';
import type { TeamsConfig } from '../../../src/config.js';
import { jsonBody } from '../../../src/http/app.js';
import type { Logger } from '../../../src/logger.js';
import type { CardPublisher, CardService } from '../../../src/recommendations/card.js';
import type { ConversationRepository } from '../../../src/storage/repositories/conversations.js';
import type { TenantRepository } from '../../../src/storage/repositories/tenants.js';
import { registerTeamsHandlers } from './handlers.js';

export { TEAMS_PLATFORM } from './handlers.js';

import { createTeamsPublisher, type ProactiveSender } from './publisher.js';
import { renderMessageCard } from './render.js';

export const MESSAGES_PATH = '/api/messages';
/** Activities are small; a card submit with every field at its maximum stays far below this. */
const BODY_LIMIT = '512kb';

export interface TeamsAppOptions {
  readonly config: TeamsConfig;
  readonly chat: ChatCommands;
  readonly tenants: TenantRepository;
  readonly conversations: ConversationRepository;
  readonly logger: Logger;
  readonly cards?: CardService;
}

export interface TeamsApp {
  readonly mode: TeamsConfig['mode'];
  mount(app: Express): void;
  /** POST /api/messages, as one handler (what `mount` adds; the lazy loader calls it). */
  readonly router: Router;
  /** Posts and updates recommendation cards in Teams conversations (proactive messages). */
  readonly cardPublisher: CardPublisher;
  /** Sends a card into a conversation the bot knows (a sign-in confirmation). */
  notify(tenantId: string, conversationId: string, view: View): Promise<void>;
  /** Waits for work still running after an acknowledgement (slow verifications). */
  close(): Promise<void>;
}

/** botbuilder's configuration for the registration, with our overridable endpoints. */
export function botFrameworkAuthOptions(config: TeamsConfig): ConfigurationBotFrameworkAuthenticationOptions {
  if (config.mode === 'local') return {};
  return {
    MicrosoftAppId: config.appId,
    MicrosoftAppPassword: config.appPassword ?? '',
    MicrosoftAppType: config.appType,
    MicrosoftAppTenantId: config.appTenantId ?? '',
    ToChannelFromBotLoginUrl: config.loginUrl,
    ToBotFromChannelOpenIdMetadataUrl: config.openIdMetadataUrl,
    ToBotFromChannelTokenIssuer: config.tokenIssuer,
  } as ConfigurationBotFrameworkAuthenticationOptions;
}

/** jsonwebtoken's own errors: a token signed by a key not in the JWKS, malformed, or not yet valid. */
const TOKEN_ERRORS: ReadonlySet<string> = new Set([
  'JsonWebTokenError',
  'NotBeforeError',
  'TokenExpiredError',
]);

/**
 * The adapter, answering /api/messages itself instead of through CloudAdapter.process, which
 * prints every refused request's stack to stderr and answers jsonwebtoken's errors (which
 * botframework-connector lets through unwrapped: a token signed by a key not in the JWKS) with
 * 500. Here every refused token is a 401 with a JSON error and one structured log line.
 */
class CheckedTeamsAdapter extends TeamsAdapter {
  /** POST /api/messages, for a body that passed activityProblem. */
  async handle(
    req: Request,
    res: Response,
    logic: (context: TurnContext) => Promise<void>,
    log: Logger,
  ): Promise<void> {
    res.setHeader('User-Agent', this.userAgent);
    const activity = withDates(req.body as Activity & Record<string, unknown>);
    let answer: InvokeResponse | undefined;
    try {
      answer = await this.processActivity(req.get('authorization') ?? '', activity, logic);
    } catch (error) {
      const refused =
        error instanceof AuthenticationError || (error instanceof Error && TOKEN_ERRORS.has(error.name));
      if (!refused) throw error;
      log.warn({ reason: error.message }, 'Teams request refused: no valid Bot Framework token');
      res.status(StatusCodes.UNAUTHORIZED).json({
        error: { code: 'UNAUTHENTICATED', message: 'The Bot Framework token is missing or not valid.' },
      });
      return;
    }
    res.status(answer?.status ?? StatusCodes.OK);
    if (answer?.body) res.send(answer.body);
    res.end();
  }
}

/** What botbuilder's validateAndFixActivity does to a parsed activity: its times become Dates. */
function withDates(activity: Activity & Record<string, unknown>): Activity {
  for (const [key, raw] of [
    ['timestamp', 'rawTimestamp'],
    ['expiration', 'rawExpiration'],
    ['localTimestamp', 'rawLocalTimestamp'],
  ] as const) {
    const value = activity[key];
    if (typeof value === 'string') {
      activity[raw] = value;
      activity[key] = new Date(value) as never;
    }
  }
  return activity;
}

/**
 * What is wrong with a request body that is not a Bot Framework activity, or undefined. Checked
 * before botbuilder sees it, which would otherwise throw (500) or fail the turn half-way.
 */
export function activityProblem(body: unknown): string | undefined {
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(body)) return 'the body must be a JSON object';
  if (typeof body.type !== 'string' || body.type === '') return '"type" must be a non-empty string';
  if (typeof body.serviceUrl !== 'string') return '"serviceUrl" must be a string';
  if (!isObject(body.conversation) || typeof body.conversation.id !== 'string')
    return '"conversation" must be an object with a string "id"';
  for (const key of ['from', 'recipient', 'channelData'] as const)
    if (body[key] !== undefined && !isObject(body[key])) return `"${key}" must be an object`;
  return undefined;
}

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIP(plain) === 4) return plain.startsWith('127.');
  return plain === '::1';
}

export function isLoopbackUrl(url: string | undefined): boolean {
  try {
    const host = new URL(url ?? '').hostname.replace(/^\[|\]$/g, '');
    return host === 'localhost' || isLoopback(host);
  } catch {
    return false;
  }
}

/**
 * The bot's outbound credentials: MSAL client credentials against the configured authority.
 * `knownAuthorities` keeps MSAL from asking login.microsoftonline.com to vouch for the authority
 * first (instance discovery), so sovereign clouds and test authorities work the same way.
 */
function credentialsFactory(config: TeamsConfig): MsalServiceClientCredentialsFactory | undefined {
  if (config.mode === 'local' || config.appType === 'UserAssignedMSI') return undefined;
  // msal-node ships CommonJS and ESM builds; botframework-connector types against the CommonJS one.
  const msal = createRequire(import.meta.url)('@azure/msal-node') as typeof import('@azure/msal-node');
  const client = new msal.ConfidentialClientApplication({
    auth: {
      clientId: config.appId,
      clientSecret: config.appPassword ?? '',
      authority: config.loginUrl,
      knownAuthorities: [new URL(config.loginUrl).host],
    },
  });
  return new MsalServiceClientCredentialsFactory(config.appId, client as never);
}

export function createTeamsApp(options: TeamsAppOptions): TeamsApp {
  const { config, logger } = options;
  const log = logger.child({ component: 'teams' });
  const factory = credentialsFactory(config);
  const adapter = factory
    ? new CheckedTeamsAdapter(botFrameworkAuthOptions(config), factory)
    : new CheckedTeamsAdapter(botFrameworkAuthOptions(config));
  adapter.onTurnError = async (context, error) => {
    log.error({ err: error, type: context.activity.type, name: context.activity.name }, 'Teams turn failed');
  };
  const app = new Application({ adapter, removeRecipientMention: false, startTypingTimer: false });
  const botAppId = config.mode === 'authenticated' ? config.appId : '';
  /**
   * A proactive turn. Errors are caught inside the turn and thrown here: the adapter would
   * otherwise hand them to onTurnError and the caller would never learn the send failed.
   */
  async function proactive(
    reference: Parameters<ProactiveSender['send']>[0],
    logic: (context: TurnContext) => Promise<void>,
  ) {
    let failure: unknown;
    await adapter.continueConversationAsync(botAppId, reference, async (context) => {
      try {
        await logic(context);
      } catch (error) {
        failure = error;
      }
    });
    if (failure) throw failure;
  }
  const sender: ProactiveSender = {
    async send(reference, activity) {
      let id: string | undefined;
      await proactive(reference, async (context) => {
        id = (await context.sendActivity(activity))?.id;
      });
      return id;
    },
    async update(reference, activity) {
      await proactive(reference, async (context) => {
        await context.updateActivity(activity);
      });
    },
  };
  const cardPublisher = createTeamsPublisher({
    conversations: options.conversations,
    sender,
    logger: log,
  });
  const handlers = registerTeamsHandlers(app, {
    chat: options.chat,
    tenants: options.tenants,
    conversations: options.conversations,
    cards: options.cards,
    sender,
    logger: log,
    ...(config.mode === 'authenticated' && config.appType === 'SingleTenant' && config.appTenantId
      ? { onlyTenant: config.appTenantId }
      : {}),
  });

  const router = Router();
  router.post(
    MESSAGES_PATH,
    (req: Request, res: Response, next) => {
      if (config.mode === 'local' && !isLoopback(req.socket.remoteAddress)) {
        res.status(401).json({
          error: {
            code: 'UNAUTHENTICATED',
            message:
              'Teams is in local mode (no MICROSOFT_APP_ID): only requests from this machine are accepted.',
          },
        });
        return;
      }
      // With an app registration every activity carries the Bot Connector's token: one without is
      // refused on its headers, before its body is read.
      if (config.mode === 'authenticated' && !/^Bearer\s+\S+$/i.test(req.get('authorization') ?? '')) {
        res.setHeader('WWW-Authenticate', 'Bearer');
        res.status(401).json({
          error: {
            code: 'UNAUTHENTICATED',
            message: 'Send the Bot Framework token of the activity as "Authorization: Bearer <token>".',
          },
        });
        return;
      }
      next();
    },
    jsonBody(BODY_LIMIT),
    (req: Request, res: Response, next) => {
      const problem = activityProblem(req.body);
      if (problem) {
        res.status(400).json({
          error: { code: 'VALIDATION', message: `Not a Bot Framework activity: ${problem}.` },
        });
        return;
      }
      // Without tokens nothing proves where a service URL came from: never call out of this machine.
      const serviceUrl = (req.body as { serviceUrl?: string } | undefined)?.serviceUrl;
      if (config.mode === 'local' && !isLoopbackUrl(serviceUrl)) {
        res.status(400).json({
          error: {
            code: 'VALIDATION',
            message: 'Teams is in local mode: the activity must name a loopback serviceUrl.',
          },
        });
        return;
      }
      next();
    },
    async (req: Request, res: Response) => {
      await adapter.handle(req, res, (context) => app.run(context).then(() => undefined), log);
    },
  );

  return {
    mode: config.mode,
    router,
    mount(server) {
      server.use(router);
    },
    cardPublisher,
    async notify(tenantId, conversationId, view) {
      const row = await options.conversations.find(tenantId, 'teams', conversationId);
      if (!row || row.removedAt) return;
      await sender.send(row.reference as Parameters<ProactiveSender['send']>[0], {
        type: 'message',
        attachments: [CardFactory.adaptiveCard(renderMessageCard(view))],
      });
    },
    close: () => handlers.drain(),
  };
}
