import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { type AppConfig, loadConfig, readDotEnv } from './config.js';
import { resolveKeyring } from './crypto/keyring.js';
import { countByKey, rotateSecrets } from './crypto/rotate.js';
import { generateMasterKeyEntry, type SecretBox } from './crypto/secret-box.js';
import { runDoctor } from './doctor.js';
import { AppError, isAppError } from './errors.js';
import { ADMIN_ROLE } from './identity/admins.js';
import { JobQueue } from './jobs/queue.js';
import { createLogger } from './logger.js';
import { startService } from './main.js';
import { createMetrics } from './metrics.js';
import { teamsPackage } from './packaging/teams-package.js';
import { PROJECT_ROOT } from './paths.js';
import {
  INGEST_BODY_LIMIT_BYTES,
  type IngestReport,
  RecommendationIngest,
} from './recommendations/ingest.js';
import { type DatabaseHandle, openDatabase } from './storage/db.js';
import { runMigrations } from './storage/migrate.js';
import { createRepositories, type Repositories } from './storage/repositories/index.js';
import { parseTenantRef, tenantRef } from './storage/repositories/tenants.js';

export interface CliIo {
  readonly env: Record<string, string | undefined>;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

const CLI_ACTOR = 'cli';

/**
 * Runs one `cloudpi` command and returns its exit code. Kept free of process.exit so tests can
 * drive it in-process; the entry point at the bottom wires it to the real process.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let exitCode = 0;
  const program = new Command('cloudpi')
    .description(
      'CloudPi ChatOps: Slack and Microsoft Teams bot for CloudPi integrations and recommendations',
    )
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError();

  const config = () => loadConfig(readDotEnv(io.env));
  const quietLogger = (cfg: AppConfig) =>
    createLogger({ level: cfg.logLevel === 'info' ? 'warn' : cfg.logLevel, format: 'json' });

  /** Opens the database (applying migrations) for one command and closes it afterwards. */
  async function withStore<T>(
    fn: (ctx: { repos: Repositories; handle: DatabaseHandle; box: SecretBox; cfg: AppConfig }) => Promise<T>,
  ): Promise<T> {
    const cfg = config();
    const box = resolveKeyring(cfg, quietLogger(cfg));
    const handle = await openDatabase(cfg.database, { maxConnections: 2 });
    try {
      await runMigrations(handle);
      return await fn({ repos: createRepositories(handle.db, box), handle, box, cfg });
    } finally {
      await handle.close();
    }
  }

  program
    .command('serve')
    .description('Start the service (HTTP server, job workers) until SIGTERM or SIGINT')
    .action(async () => {
      const service = await startService(config());
      exitCode = await new Promise<number>((resolve) => {
        let signals = 0;
        const onSignal = (signal: NodeJS.Signals) => {
          signals++;
          if (signals > 1) {
            service.logger.warn({ signal }, 'second signal: exiting at once');
            process.exit(130);
          }
          service.logger.info({ signal }, 'signal received: draining (send it again to exit at once)');
          service.close().then(
            () => resolve(0),
            (error: unknown) => {
              service.logger.error({ err: error }, 'shutdown failed');
              resolve(1);
            },
          );
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
      });
    });

  program
    .command('migrate')
    .description('Apply database migrations (tables and the job queue schema), then exit')
    .action(async () => {
      const cfg = config();
      const logger = quietLogger(cfg);
      const handle = await openDatabase(cfg.database, { maxConnections: 2 });
      try {
        await runMigrations(handle);
        const queue = new JobQueue({ handle, logger, metrics: createMetrics({ defaultMetrics: false }) });
        await queue.start();
        await queue.stop(1_000);
      } finally {
        await handle.close();
      }
      io.out(
        `Migrations applied (${cfg.database.kind === 'pglite' ? 'embedded database' : 'PostgreSQL'}).\n`,
      );
    });

  program
    .command('doctor')
    .description('Check configuration, database, job queue and what Slack and Teams still need')
    .action(async () => {
      exitCode = await runDoctor(io);
    });

  const tenant = program
    .command('tenant')
    .description('Tenants: Slack workspaces, Teams tenants, email-only orgs');
  tenant
    .command('list')
    .description('List tenants')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withStore(async ({ repos }) => {
        const rows = await repos.tenants.list();
        if (opts.json) {
          io.out(`${JSON.stringify(rows.map((t) => ({ id: t.id, ref: tenantRef(t), name: t.name })))}\n`);
          return;
        }
        if (rows.length === 0)
          io.out('No tenants yet. Create one with: cloudpi tenant create slack:<team id>\n');
        for (const t of rows) io.out(`${tenantRef(t)}\t${t.name}\t${t.id}\n`);
      });
    });
  tenant
    .command('create')
    .description('Create a tenant (idempotent): slack:<team id>, teams:<tenant id> or email:<name>')
    .argument('<ref>', 'tenant reference')
    .option('--name <name>', 'display name', '')
    .action(async (ref: string, opts: { name: string }) => {
      const { platform, externalId } = parseTenantRef(ref);
      await withStore(async ({ repos }) => {
        const existing = await repos.tenants.findByExternalId(platform, externalId);
        const row = await repos.tenants.ensure(platform, externalId, opts.name);
        if (!existing)
          await repos.audit.record(row.id, { actor: CLI_ACTOR, action: 'tenant.create', target: ref });
        io.out(`${existing ? 'Tenant already exists' : 'Created tenant'} ${tenantRef(row)} (${row.id})\n`);
      });
    });

  const apikey = program.command('apikey').description('Tenant API keys for the ingest API');
  apikey
    .command('create')
    .description('Create an API key; it is shown once and stored only as a hash')
    .requiredOption('--tenant <ref>', 'tenant reference, e.g. slack:T0123')
    .option('--name <name>', 'what the key is for', '')
    .option('--json', 'print {"key": ...} only')
    .action(async (opts: { tenant: string; name: string; json?: boolean }) => {
      await withStore(async ({ repos }) => {
        const t = await repos.tenants.requireByRef(opts.tenant);
        const created = await repos.apiKeys.create(t.id, opts.name);
        await repos.audit.record(t.id, {
          actor: CLI_ACTOR,
          action: 'apikey.create',
          target: created.prefix,
          after: { id: created.id, name: opts.name },
        });
        if (opts.json)
          io.out(`${JSON.stringify({ key: created.key, id: created.id, prefix: created.prefix })}\n`);
        else
          io.out(
            `API key for ${opts.tenant} (id ${created.id}, prefix ${created.prefix}):\n\n  ${created.key}\n\nIt is shown only now; store it in your secret manager.\n`,
          );
      });
    });
  apikey
    .command('revoke')
    .description('Revoke an API key by id or prefix')
    .argument('<key>', 'key id or 12-character prefix')
    .requiredOption('--tenant <ref>', 'tenant reference')
    .action(async (key: string, opts: { tenant: string }) => {
      await withStore(async ({ repos }) => {
        const t = await repos.tenants.requireByRef(opts.tenant);
        if (!(await repos.apiKeys.revoke(t.id, key))) {
          throw new AppError('NOT_FOUND', `No active API key ${key} in tenant ${opts.tenant}.`);
        }
        await repos.audit.record(t.id, { actor: CLI_ACTOR, action: 'apikey.revoke', target: key });
        io.out(`Revoked API key ${key}.\n`);
      });
    });
  apikey
    .command('list')
    .description("List a tenant's API keys (never the keys themselves)")
    .requiredOption('--tenant <ref>', 'tenant reference')
    .action(async (opts: { tenant: string }) => {
      await withStore(async ({ repos }) => {
        const t = await repos.tenants.requireByRef(opts.tenant);
        for (const k of await repos.apiKeys.list(t.id)) {
          io.out(`${k.prefix}\t${k.id}\t${k.name}\t${k.revokedAt ? 'revoked' : 'active'}\n`);
        }
      });
    });

  const admin = program.command('admin').description('CloudPi admins of a tenant (chat users)');
  for (const action of ['grant', 'revoke'] as const) {
    admin
      .command(action)
      .description(
        action === 'grant'
          ? 'Make a chat user an admin of the tenant'
          : "Take a chat user's admin rights away",
      )
      .argument('<user>', 'slack:<user id> or teams:<Entra object id>')
      .requiredOption('--tenant <ref>', 'tenant reference')
      .action(async (user: string, opts: { tenant: string }) => {
        const match = /^(slack|teams):([A-Za-z0-9._-]{1,128})$/.exec(user);
        if (!match)
          throw new AppError('VALIDATION', `"${user}" is not slack:<user id> or teams:<Entra object id>.`);
        const platform = match[1] as 'slack' | 'teams';
        await withStore(async ({ repos }) => {
          const t = await repos.tenants.requireByRef(opts.tenant);
          if (action === 'grant') {
            await repos.identities.grantRole(t.id, platform, match[2]!, ADMIN_ROLE);
          } else if (!(await repos.identities.revokeRole(t.id, platform, match[2]!, ADMIN_ROLE))) {
            throw new AppError('NOT_FOUND', `${user} is not an admin of ${opts.tenant}.`);
          }
          await repos.audit.record(t.id, { actor: CLI_ACTOR, action: `admin.${action}`, target: user });
          io.out(
            action === 'grant'
              ? `${user} is now an admin of ${opts.tenant}.\n`
              : `${user} is no longer an admin of ${opts.tenant}.\n`,
          );
        });
      });
  }

  const recommendations = program
    .command('recommendations')
    .description('Recommendations: push a file of them into a tenant (trials, scripts)');
  recommendations
    .command('push')
    .description(
      'Store the recommendations of a JSON file (one object, an array, or {"recommendations": [...]}) directly in the database, like POST /api/v1/recommendations; exit code 1 when an item is invalid',
    )
    .argument('<file>', 'JSON file')
    .requiredOption('--tenant <ref>', 'tenant reference, e.g. slack:T0123')
    .option('--json', 'print the per-item results as JSON')
    .action(async (file: string, opts: { tenant: string; json?: boolean }) => {
      const body = readJsonFile(file);
      await withStore(async ({ repos, handle, cfg }) => {
        const t = await repos.tenants.requireByRef(opts.tenant);
        const ingest = new RecommendationIngest({ db: handle.db, logger: quietLogger(cfg) });
        const report = await ingest.ingestRecommendations(t.id, body, 'cli');
        io.out(opts.json ? `${JSON.stringify(report)}\n` : formatIngestReport(report, opts.tenant));
        if (report.summary.invalid > 0) exitCode = 1;
      });
    });

  const keys = program.command('keys').description('Master keys that encrypt secrets at rest');
  keys
    .command('generate')
    .description('Print a new keyring entry to put first in CLOUDPI_MASTER_KEYS')
    .option('--id <id>', 'key id (letters, digits, - and _)')
    .action((opts: { id?: string }) => {
      io.out(`${generateMasterKeyEntry(opts.id)}\n`);
    });
  keys
    .command('rotate')
    .description(
      'Re-encrypt every stored secret with the first key of CLOUDPI_MASTER_KEYS (safe while the service runs)',
    )
    .action(async () => {
      await withStore(async ({ handle, box }) => {
        const report = await rotateSecrets(handle.db, box);
        io.out(
          `Re-encrypted ${report.rotated} secret(s) with key "${box.currentKeyId}"` +
            `${report.skipped ? `; ${report.skipped} changed meanwhile and were left to their writer` : ''}.\n` +
            `Secrets per key now: ${formatCounts(report.byKey)}\n`,
        );
      });
    });
  keys
    .command('status')
    .description('How many stored secrets each key protects')
    .action(async () => {
      await withStore(async ({ handle, box }) => {
        io.out(
          `Current key: ${box.currentKeyId}\nSecrets per key: ${formatCounts(await countByKey(handle.db))}\n`,
        );
      });
    });

  const slack = program.command('slack').description('Slack app setup');
  slack
    .command('manifest')
    .description(
      "Print the Slack app manifest with this service's URLs filled in (paste it at api.slack.com/apps > Create New App > From a manifest)",
    )
    .option('--url <url>', 'the https URL Slack reaches this service at (default: CLOUDPI_PUBLIC_URL)')
    .option('--name <name>', 'the app name shown in Slack (default: CloudPi)')
    .action((opts: { url?: string; name?: string }) => {
      const url = opts.url ?? readDotEnv(io.env).CLOUDPI_PUBLIC_URL;
      if (!url) {
        throw new AppError(
          'VALIDATION',
          'Give the https URL Slack reaches this service at: cloudpi slack manifest --url https://bot.example.com',
        );
      }
      io.out(`${JSON.stringify(slackManifest(url, opts.name), null, 2)}\n`);
    });

  const teams = program.command('teams').description('Microsoft Teams app setup');
  teams
    .command('package')
    .description(
      'Write the Teams app package (manifest with your bot id and URL, and the icons) to upload in Teams or the Teams admin center',
    )
    .requiredOption('--bot-id <id>', 'the Microsoft App ID of the Azure Bot registration (MICROSOFT_APP_ID)')
    .option('--url <url>', 'the https URL Teams reaches this service at (default: CLOUDPI_PUBLIC_URL)')
    .option('--app-id <id>', 'the Teams app id, a GUID (default: the bot id)')
    .option('--out <file>', 'where to write the zip', 'cloudpi-teams.zip')
    .action(async (opts: { botId: string; url?: string; appId?: string; out: string }) => {
      const url = opts.url ?? readDotEnv(io.env).CLOUDPI_PUBLIC_URL;
      if (!url)
        throw new AppError(
          'VALIDATION',
          'Give the https URL Teams reaches this service at: cloudpi teams package --bot-id <id> --url https://bot.example.com',
        );
      const zip = await teamsPackage({
        botId: opts.botId,
        url,
        ...(opts.appId ? { appId: opts.appId } : {}),
      });
      writeFileSync(opts.out, zip);
      io.out(
        `Wrote ${opts.out} (${zip.length} bytes). Upload it in Teams (Apps > Manage your apps > Upload an app) or the Teams admin center (Teams apps > Manage apps > Upload new app).\n`,
      );
    });

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode;
    }
    io.err(`${describeError(error)}\n`);
    return 1;
  }
}

/**
 * manifests/slack/manifest.json with the request URLs (slash command, interactivity, events) and
 * the OAuth redirect URL on `baseUrl`. Slack only calls https URLs.
 */
export function slackManifest(baseUrl: string, name?: string): Record<string, unknown> {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new AppError('VALIDATION', `"${baseUrl}" is not a URL; give one like https://bot.example.com.`);
  }
  if (url.protocol !== 'https:') {
    throw new AppError(
      'VALIDATION',
      `Slack only sends requests to https URLs; "${baseUrl}" is ${url.protocol.replace(':', '')}. Put the service behind TLS (a reverse proxy or tunnel) and give that URL.`,
    );
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new AppError(
      'VALIDATION',
      `Give the service's base URL without credentials, query or fragment: ${url.origin}.`,
    );
  }
  const base = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  const manifest = JSON.parse(
    readFileSync(path.join(PROJECT_ROOT, 'manifests', 'slack', 'manifest.json'), 'utf8'),
  ) as {
    display_information: { name: string };
    features: { bot_user: { display_name: string }; slash_commands: { url: string }[] };
    oauth_config: { redirect_urls: string[] };
    settings: { event_subscriptions: { request_url: string }; interactivity: { request_url: string } };
  };
  const events = `${base}/slack/events`;
  for (const command of manifest.features.slash_commands) command.url = events;
  manifest.settings.event_subscriptions.request_url = events;
  manifest.settings.interactivity.request_url = events;
  manifest.oauth_config.redirect_urls = [`${base}/slack/oauth_redirect`];
  if (name !== undefined) {
    const trimmed = name.trim();
    if (!trimmed || trimmed.length > 35)
      throw new AppError('VALIDATION', 'The app name must be 1 to 35 characters.');
    manifest.display_information.name = trimmed;
    manifest.features.bot_user.display_name = trimmed;
  }
  return manifest;
}

function readJsonFile(file: string): unknown {
  let text: string;
  try {
    if (statSync(file).size > INGEST_BODY_LIMIT_BYTES) {
      throw new AppError(
        'PAYLOAD_TOO_LARGE',
        `${file} is larger than ${INGEST_BODY_LIMIT_BYTES} bytes; split it into files of at most 500 recommendations.`,
      );
    }
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if (isAppError(error)) throw error;
    throw new AppError('VALIDATION', `Cannot read ${file}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new AppError('VALIDATION', `${file} is not valid JSON: ${(error as Error).message}`);
  }
}

/** One line per item, then the counts. */
function formatIngestReport(report: IngestReport, tenant: string): string {
  const lines = report.results.map((r) => {
    const label = `#${r.index}${r.id !== undefined ? ` ${JSON.stringify(r.id)}` : ''}`;
    const errors = r.errors?.map((e) => `${e.field || '(item)'}: ${e.message}`).join('; ');
    const ignored = r.ignoredFields?.length ? ` (ignored fields: ${r.ignoredFields.join(', ')})` : '';
    return `${r.status.padEnd(9)} ${label}${errors ? `: ${errors}` : ''}${ignored}`;
  });
  const s = report.summary;
  lines.push(
    `${s.received} received for ${tenant}: ${s.created} created, ${s.updated} updated, ${s.unchanged} unchanged, ${s.invalid} invalid.`,
  );
  return `${lines.join('\n')}\n`;
}

function formatCounts(counts: Record<string, number>): string {
  const entries = Object.entries(counts);
  return entries.length === 0 ? 'none stored' : entries.map(([id, n]) => `${id}=${n}`).join(', ');
}

function describeError(error: unknown): string {
  if (isAppError(error)) return `Error (${error.code}): ${error.message}`;
  return `Error: ${(error as Error)?.message ?? String(error)}`;
}
