import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import type { SlackApp } from '../adapters/chat/slack/index.js';
import { lazyTeamsApp, type TeamsApp } from '../adapters/chat/teams/index.js';
import { ticketProviderFactories } from '../adapters/tickets/index.js';
import { ChatCommands } from './commands/chat-commands.js';
import type { AppConfig } from './config.js';
import { resolveKeyring } from './crypto/keyring.js';
import { countByKey, rotateSecrets } from './crypto/rotate.js';
import type { SecretBox } from './crypto/secret-box.js';
import { createHttpApp } from './http/app.js';
import type { FollowUpLaneOptions } from './http/follow-up-lane.js';
import { AdminPolicy } from './identity/admins.js';
import { type IdentityProviderFactory, lazyIdentityProviderFactory } from './identity/port.js';
import { SsoService } from './identity/sso.js';
import { scheduleHealthChecks } from './integrations/health-check.js';
import { createProviderRegistry, IntegrationService } from './integrations/service.js';
import { rotateSecretsJob } from './jobs/definitions.js';
import { JobQueue } from './jobs/queue.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { AdminAlerts } from './notify/admin-alerts.js';
import { EmailNotifier } from './notify/email.js';
import { cardFallbackJob } from './notify/fallback.js';
import { lazyMailerFactory, type MailerFactory } from './notify/mailer.js';
import { SmtpService } from './notify/smtp.js';
import { CardService } from './recommendations/card.js';
import { RecommendationIngest } from './recommendations/ingest.js';
import { type DatabaseHandle, openDatabase } from './storage/db.js';
import { migrationState, runMigrations } from './storage/migrate.js';
import { createRepositories, type Repositories } from './storage/repositories/index.js';
import { scheduleTicketStatusPolling } from './tickets/poll-status.js';
import type { TicketProviderFactory } from './tickets/port.js';
import { createTicketJob, TicketService } from './tickets/service.js';
import { TicketWebhooks } from './tickets/webhooks.js';

export interface Service {
  readonly config: AppConfig;
  readonly logger: Logger;
  readonly database: DatabaseHandle;
  readonly queue: JobQueue;
  readonly repositories: Repositories;
  readonly admins: AdminPolicy;
  readonly integrations: IntegrationService;
  readonly tickets: TicketService;
  /** Provider status webhooks: endpoints, secrets, deliveries. */
  readonly webhooks: TicketWebhooks;
  /** Single sign-on: settings, sign-in links, the OpenID Connect flow. */
  readonly sso: SsoService;
  /** Email (SMTP) settings. */
  readonly smtp: SmtpService;
  /** Email delivery: fallback, subscription recipients, the send job. */
  readonly email: EmailNotifier;
  /** Recommendations ingest (the API and `cloudpi recommendations push`). */
  readonly recommendations: RecommendationIngest;
  /** Recommendation cards: posting, button presses, refreshes. */
  readonly cards: CardService;
  /** The chat commands both platforms answer with. */
  readonly chat: ChatCommands;
  /** The Slack app, when SLACK_* is configured. */
  readonly slack: SlackApp | undefined;
  /** The Teams bot at /api/messages (authenticated, or local mode without MICROSOFT_APP_ID). */
  readonly teams: TeamsApp;
  readonly secretBox: SecretBox;
  readonly metrics: Metrics;
  readonly app: Express;
  readonly server: Server;
  /** The base URL the server listens on (the real port when PORT was 0). */
  readonly url: string;
  readonly draining: boolean;
  /** Graceful stop: refuse new connections, finish requests and jobs, close the database. */
  close(): Promise<void>;
}

export interface StartOptions {
  readonly logger?: Logger;
  /** pg-boss maintenance interval, shortened by tests. */
  readonly superviseIntervalSeconds?: number;
  /** Ticket provider adapters (default: Jira, Azure DevOps, ServiceNow). */
  readonly providers?: readonly TicketProviderFactory[];
  /** Per-call timeout of provider calls. */
  readonly providerTimeoutMs?: number;
  /** The clock Slack's request timestamp check uses (tests). */
  readonly now?: () => number;
  /** How Slack commands' answers yield to acknowledgements under load (tests). */
  readonly slackFollowUps?: FollowUpLaneOptions;
  /** How long a webhook delivery waits before the status read (default 2 s). */
  readonly webhookDebounceSeconds?: number;
  /** The OpenID Connect adapter (default: openid-client). */
  readonly identityProvider?: IdentityProviderFactory;
  /** The SMTP adapter (default: nodemailer). */
  readonly mailer?: MailerFactory;
  /** Extra CA certificates (PEM) for SMTP servers, beside CLOUDPI_SMTP_CA_FILE (tests). */
  readonly smtpCa?: readonly string[];
}

/** Composition root: config -> keyring -> database -> migrations -> queue -> HTTP. */
export async function startService(config: AppConfig, options: StartOptions = {}): Promise<Service> {
  const logger = options.logger ?? createLogger({ level: config.logLevel, format: config.logFormat });
  const secretBox = resolveKeyring(config, logger);
  const database = await openDatabase(config.database);
  let queue: JobQueue | undefined;
  try {
    await runMigrations(database);
    const metrics = createMetrics();
    const repositories = createRepositories(database.db, secretBox);
    let listening: AddressInfo | undefined;
    let deadLetterTickets: TicketService | undefined;
    let deadLetterAlerts: AdminAlerts | undefined;
    let deadLetterCards: CardService | undefined;
    queue = new JobQueue({
      handle: database,
      logger,
      metrics,
      superviseIntervalSeconds: options.superviseIntervalSeconds ?? config.jobs.superviseIntervalSeconds,
      heartbeatSeconds: config.jobs.heartbeatSeconds,
      outboundRetry: config.jobs.retry,
      onDeadLetter: async (letter) => {
        logger.error({ queue: letter.queue, jobId: letter.jobId }, 'job dead-lettered after its last retry');
        if (letter.queue === createTicketJob.name && deadLetterTickets) {
          const data = createTicketJob.schema.parse(letter.data);
          await deadLetterTickets.markGaveUp(data.tenantId, data.ticketId);
          await deadLetterAlerts?.ticketGaveUp(data.tenantId);
        }
        if (letter.queue === cardFallbackJob.name && deadLetterCards) {
          const data = cardFallbackJob.schema.parse(letter.data);
          await deadLetterCards.markFallbackGaveUp(data.tenantId, data.cardId);
        }
      },
    });
    await queue.start();
    const jobs = queue;
    await jobs.work(rotateSecretsJob, async () => {
      const report = await rotateSecrets(database.db, secretBox);
      logger.info(
        { rotated: report.rotated, byKey: report.byKey },
        'stored secrets re-sealed with the current key',
      );
    });
    if (database.kind === 'pglite') await queueRotationIfNeeded(database, secretBox, jobs);

    const urlPolicy = { allowHttp: config.allowHttp, allowPrivateNetworks: config.allowPrivateNetworks };
    const integrations = new IntegrationService({
      repositories,
      registry: createProviderRegistry(options.providers ?? ticketProviderFactories),
      urlPolicy,
      logger,
      ...(options.providerTimeoutMs ? { timeoutMs: options.providerTimeoutMs } : {}),
    });
    const tickets = new TicketService({
      db: database.db,
      box: secretBox,
      repositories,
      integrations,
      queue: jobs,
      logger,
    });
    deadLetterTickets = tickets;
    await tickets.work();
    const alerts = new AdminAlerts({
      db: database.db,
      repositories,
      queue: jobs,
      logger,
      bootstrapAdmins: config.admins,
    });
    deadLetterAlerts = alerts;
    await alerts.work();
    // PORT=0 (tests, ad-hoc runs): the default public URL names the port actually bound.
    const publicUrl = () =>
      listening && config.publicUrl === `http://localhost:${config.port}` && config.port === 0
        ? `http://localhost:${listening.port}`
        : config.publicUrl;
    const webhooks = new TicketWebhooks({
      db: database.db,
      repositories,
      integrations,
      tickets,
      queue: jobs,
      logger,
      publicUrl,
      ...(options.webhookDebounceSeconds !== undefined
        ? { debounceSeconds: options.webhookDebounceSeconds }
        : {}),
    });
    await webhooks.work();
    const sso = new SsoService({
      db: database.db,
      repositories,
      box: secretBox,
      // openid-client and nodemailer load on first use, not at start-up.
      factory:
        options.identityProvider ??
        lazyIdentityProviderFactory(
          async () => (await import('../adapters/identity/oidc/index.js')).oidcIdentityProvider,
        ),
      urlPolicy,
      publicUrl,
      logger,
      ...(options.providerTimeoutMs ? { timeoutMs: options.providerTimeoutMs } : {}),
    });
    const smtp = new SmtpService({
      repositories,
      factory:
        options.mailer ??
        lazyMailerFactory(async () => (await import('../adapters/email/smtp/index.js')).smtpMailerFactory),
      urlPolicy,
      logger,
      ca: [...config.smtpCa, ...(options.smtpCa ?? [])],
      ...(options.providerTimeoutMs ? { timeoutMs: options.providerTimeoutMs } : {}),
    });
    const emailLinkKeys = secretBox.derivedKeys('email-links');
    const admins = new AdminPolicy(config.admins, repositories.identities, async (tenantId) =>
      Boolean((await sso.status(tenantId)).settings?.enabled),
    );
    const chat = new ChatCommands({
      db: database.db,
      repositories,
      integrations,
      admins,
      webhooks,
      sso,
      smtp,
    });
    const cards = new CardService({
      db: database.db,
      repositories,
      integrations,
      tickets,
      queue: jobs,
      logger,
    });
    // Bolt loads only when Slack is configured.
    const slack = config.slack
      ? (await import('../adapters/chat/slack/index.js')).createSlackApp({
          config: config.slack,
          publicUrl: config.publicUrl,
          chat,
          integrations,
          tenants: repositories.tenants,
          installations: repositories.installations,
          logger,
          cards,
          ...(options.now ? { now: options.now } : {}),
          ...(options.slackFollowUps ? { followUps: options.slackFollowUps } : {}),
          metrics,
        })
      : undefined;
    // teams-ai and botbuilder load on the first Teams request or card (lazyTeamsApp).
    const teams = lazyTeamsApp({
      config: config.teams,
      chat,
      tenants: repositories.tenants,
      conversations: repositories.conversations,
      logger,
      cards,
    });
    if (config.teams.mode === 'local')
      logger.warn(
        'Teams runs WITHOUT authentication (MICROSOFT_APP_ID is not set): /api/messages accepts unsigned requests from this machine only. Set MICROSOFT_APP_ID and MICROSOFT_APP_PASSWORD before exposing it.',
      );
    // A sign-in is confirmed where `login` was typed.
    sso.onLinked(async (linked) => {
      const channelId = typeof linked.replyTo.channelId === 'string' ? linked.replyTo.channelId : undefined;
      if (!channelId) return;
      const view = {
        kind: 'notice' as const,
        tone: 'success' as const,
        title: 'You are signed in',
        text: `Your chat account is linked${linked.email ? ` to ${linked.email}` : ''}${linked.admin ? '; you are a CloudPi admin through your group' : ''}.`,
      };
      if (linked.platform === 'slack')
        await slack?.notifyUser(linked.tenantId, channelId, linked.chatUserId, view);
      else await teams.notify(linked.tenantId, channelId, view);
    });
    const email = new EmailNotifier({
      db: database.db,
      repositories,
      smtp,
      queue: jobs,
      logger,
      linkKeys: emailLinkKeys,
      publicUrl,
      viewOf: (tenantId, recommendationId) => cards.viewFor(tenantId, recommendationId, 'email', '-'),
    });
    await email.work();
    tickets.onTicketChange((ticket, change) => email.ticketChanged(ticket, change).then(() => undefined));
    cards.registerFallback(email);
    cards.registerRouteMailer(email);
    deadLetterCards = cards;
    if (slack) {
      cards.registerPublisher(slack.cardPublisher);
      alerts.registerMessenger('slack', (tenantId, userIds, view) =>
        slack.messageUsers(tenantId, userIds, view),
      );
    }
    cards.registerPublisher(teams.cardPublisher);
    await cards.work();
    await scheduleHealthChecks({
      queue: jobs,
      integrations,
      tenants: repositories.tenants,
      logger,
      cron: config.healthCheckCron,
      ...(slack ? { onChange: (tenantId: string) => slack.refreshHomes(tenantId) } : {}),
    });
    // After the card listener is registered (CardService's constructor): a status change found by
    // the poll reaches every copy of the card.
    await scheduleTicketStatusPolling({
      queue: jobs,
      db: database.db,
      tickets,
      logger,
      cron: config.ticketPollCron,
    });

    const recommendations = new RecommendationIngest({ db: database.db, logger, queue: jobs });

    let draining = false;
    const app = createHttpApp({
      logger,
      metrics,
      repositories,
      recommendations,
      webhooks,
      sso,
      email: { notifier: email, tickets, integrations, linkKeys: emailLinkKeys },
      isDraining: () => draining,
      apiRateLimitPerMinute: config.apiRateLimitPerMinute,
      metricsToken: config.metricsToken,
      mount: (express: Express) => {
        slack?.mount(express);
        teams.mount(express);
      },
      readiness: async () => {
        const checks: Record<string, string> = {};
        checks.database = await database
          .ping()
          .then(() => 'ok')
          .catch((error: Error) => `unreachable: ${error.message}`);
        if (checks.database === 'ok') {
          const state = await migrationState(database).catch(() => undefined);
          checks.migrations =
            state && state.applied >= state.known
              ? 'ok'
              : `pending: ${state ? state.known - state.applied : '?'} migration(s)`;
        }
        checks.queue = (await jobs.ping().catch(() => false)) ? 'ok' : 'not running';
        return checks;
      },
    });
    const server = await listen(app, config.port, config.host);
    server.keepAliveTimeout = 5_000;
    const address = server.address() as AddressInfo;
    listening = address;
    const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address === '0.0.0.0' ? '127.0.0.1' : address.address}:${address.port}`;
    logger.info(
      {
        url,
        database: database.kind,
        publicUrl: config.publicUrl,
        slack: slack?.mode ?? 'off',
        teams: teams.mode,
      },
      'CloudPi ChatOps is listening',
    );

    let closing: Promise<void> | undefined;
    const service: Service = {
      config,
      logger,
      database,
      queue: jobs,
      repositories,
      admins,
      integrations,
      tickets,
      webhooks,
      sso,
      smtp,
      email,
      recommendations,
      cards,
      chat,
      slack,
      teams,
      secretBox,
      metrics,
      app,
      server,
      url,
      get draining() {
        return draining;
      },
      close() {
        closing ??= (async () => {
          draining = true;
          logger.info('shutting down: no new connections; finishing requests and jobs');
          await closeServer(server, config.shutdownTimeoutMs);
          // Slack listeners and Teams submits keep working after their ack (live verify): let them end.
          {
            let timer: NodeJS.Timeout | undefined;
            await Promise.race([
              Promise.all([slack?.close(), teams.close()]),
              new Promise<void>((resolve) => {
                timer = setTimeout(resolve, config.shutdownTimeoutMs);
              }),
            ]);
            clearTimeout(timer);
          }
          await jobs.stop(config.shutdownTimeoutMs);
          email.close();
          await database.close();
          logger.info('shut down cleanly');
        })();
        return closing;
      },
    };
    return service;
  } catch (error) {
    await queue?.stop(1_000).catch(() => {});
    await database.close().catch(() => {});
    throw error;
  }
}

/**
 * Embedded mode: the operator changes keys by editing CLOUDPI_MASTER_KEYS and restarting (the
 * CLI cannot open the database while the service holds it), so the service re-seals old
 * envelopes itself. On PostgreSQL, `cloudpi keys rotate` does it once every replica has the
 * new keyring.
 */
async function queueRotationIfNeeded(
  database: DatabaseHandle,
  box: SecretBox,
  queue: JobQueue,
): Promise<void> {
  const counts = await countByKey(database.db);
  const stale = Object.entries(counts).some(([id, n]) => id !== box.currentKeyId && n > 0);
  if (stale)
    await queue.send(
      rotateSecretsJob,
      { reason: 'start-up: secrets on an older key' },
      { singletonKey: 'rotate' },
    );
}

function listen(app: Express, port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, (error?: Error) => (error ? reject(error) : resolve(server)));
    server.once('error', reject);
  });
}

/**
 * Stops accepting connections and waits for in-flight requests. Idle keep-alive sockets are
 * closed at once and busy ones as soon as their response is sent; whatever is still open at the
 * deadline is cut.
 */
function closeServer(server: Server, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const deadline = setTimeout(() => server.closeAllConnections(), timeoutMs);
    deadline.unref();
    server.on('request', (_req, res) => res.setHeader('Connection', 'close'));
    const sweep = setInterval(() => server.closeIdleConnections(), 100);
    server.close(() => {
      clearTimeout(deadline);
      clearInterval(sweep);
      resolve();
    });
    server.closeIdleConnections();
  });
}
