import { type AppConfig, loadConfig, readDotEnv } from './config.js';
import { GENERATED_KEY_FILE } from './crypto/keyring.js';
import { type AppError, ErrorCode, isAppError } from './errors.js';
import { openDatabase } from './storage/db.js';
import { migrationState } from './storage/migrate.js';
import { sql } from './storage/orm.js';

type Level = 'ok' | 'warn' | 'fail';
interface Check {
  level: Level;
  name: string;
  detail: string;
}

const MARK: Record<Level, string> = { ok: '[ok]  ', warn: '[warn]', fail: '[FAIL]' };

/**
 * `cloudpi doctor`: what works, what is missing, and what to do about it. Exit code 1 when the
 * service could not run as configured; warnings (such as Slack not set up yet) do not fail it.
 */
export async function runDoctor(io: {
  env: Record<string, string | undefined>;
  out: (text: string) => void;
}): Promise<number> {
  const checks: Check[] = [];
  const env = readDotEnv(io.env);
  let config: AppConfig | undefined;
  try {
    config = loadConfig(env);
    checks.push({
      level: 'ok',
      name: 'Configuration',
      detail: `valid; database: ${config.database.kind === 'pglite' ? `embedded (${config.database.dataDir})` : 'PostgreSQL'}`,
    });
  } catch (error) {
    checks.push({ level: 'fail', name: 'Configuration', detail: (error as Error).message });
  }

  if (config) {
    checks.push(masterKeyCheck(config));
    checks.push(publicUrlCheck(config));
    checks.push(...(await databaseChecks(config)));
  }
  checks.push(slackCheck(env), teamsCheck(env));

  for (const check of checks) io.out(`${MARK[check.level]} ${check.name}: ${check.detail}\n`);
  const failed = checks.filter((c) => c.level === 'fail').length;
  io.out(failed ? `\n${failed} problem(s) to fix before the service can run.\n` : '\nReady to run.\n');
  return failed ? 1 : 0;
}

function masterKeyCheck(config: AppConfig): Check {
  if (config.masterKeys) {
    return {
      level: 'ok',
      name: 'Master keys',
      detail: `${config.masterKeys.length} key(s) from CLOUDPI_MASTER_KEYS; new secrets use "${config.masterKeys[0]!.id}"`,
    };
  }
  return {
    level: 'warn',
    name: 'Master keys',
    detail: `CLOUDPI_MASTER_KEYS is not set; the embedded mode uses a key generated into ${config.dataDir}/${GENERATED_KEY_FILE}. Set CLOUDPI_MASTER_KEYS for production (cloudpi keys generate).`,
  };
}

function publicUrlCheck(config: AppConfig): Check {
  const url = new URL(config.publicUrl);
  if (url.protocol === 'https:') return { level: 'ok', name: 'Public URL', detail: config.publicUrl };
  return {
    level: 'warn',
    name: 'Public URL',
    detail: `${config.publicUrl} is not https; Slack and Teams only call https endpoints. Set CLOUDPI_PUBLIC_URL to the address of your TLS proxy or tunnel.`,
  };
}

async function databaseChecks(config: AppConfig): Promise<Check[]> {
  let handle: Awaited<ReturnType<typeof openDatabase>>;
  try {
    handle = await openDatabase(config.database, { maxConnections: 1, connectTimeoutSeconds: 5 });
  } catch (error) {
    if (isAppError(error) && error.code === ErrorCode.DATABASE_LOCKED) {
      return [await runningServiceCheck(config, error)];
    }
    return [{ level: 'fail', name: 'Database', detail: describe(error) }];
  }
  const checks: Check[] = [];
  try {
    await handle.ping();
  } catch (error) {
    await handle.close().catch(() => {});
    const where =
      config.database.kind === 'postgres' ? 'PostgreSQL at DATABASE_URL' : 'the embedded database';
    return [{ level: 'fail', name: 'Database', detail: `cannot reach ${where}: ${describe(error)}` }];
  }
  try {
    const [version] = await handle.rows<{ v: string }>(sql`select current_setting('server_version') as v`);
    checks.push({
      level: 'ok',
      name: 'Database',
      detail: `reachable (PostgreSQL ${version?.v ?? '?'}, ${handle.kind})`,
    });
    const state = await migrationState(handle);
    checks.push(
      state.applied >= state.known
        ? { level: 'ok', name: 'Migrations', detail: `${state.applied}/${state.known} applied` }
        : {
            level: 'warn',
            name: 'Migrations',
            detail: `${state.applied}/${state.known} applied; run: cloudpi migrate (the service also applies them at start-up)`,
          },
    );
    const [queue] = await handle.rows<{ version: number | null }>(
      sql`select case when to_regclass('pgboss.version') is null then null else (select version from pgboss.version limit 1) end as version`,
    );
    checks.push(
      queue?.version
        ? { level: 'ok', name: 'Job queue', detail: `pg-boss schema version ${queue.version} installed` }
        : {
            level: 'warn',
            name: 'Job queue',
            detail: 'pg-boss schema not installed yet; run: cloudpi migrate',
          },
    );
  } catch (error) {
    checks.push({ level: 'fail', name: 'Database', detail: describe(error) });
  } finally {
    await handle.close();
  }
  return checks;
}

/** The embedded database is held by the running service: ask it instead. */
async function runningServiceCheck(config: AppConfig, lockError: AppError): Promise<Check> {
  try {
    const response = await fetch(`http://127.0.0.1:${config.port}/readyz`, {
      signal: AbortSignal.timeout(3_000),
    });
    const body = (await response.json()) as { status: string; checks: Record<string, string> };
    return {
      level: response.ok ? 'ok' : 'fail',
      name: 'Database and job queue',
      detail: `held by the running service, which reports ${body.status}: ${Object.entries(body.checks)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    };
  } catch {
    return { level: 'fail', name: 'Database', detail: lockError.message };
  }
}

function slackCheck(env: Record<string, string | undefined>): Check {
  const has = (name: string) => Boolean(env[name]?.trim());
  const single = ['SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET'];
  const oauth = ['SLACK_CLIENT_ID', 'SLACK_CLIENT_SECRET', 'SLACK_STATE_SECRET', 'SLACK_SIGNING_SECRET'];
  if (single.every(has)) return { level: 'ok', name: 'Slack', detail: 'single-workspace mode (bot token)' };
  if (oauth.every(has)) return { level: 'ok', name: 'Slack', detail: 'OAuth distribution mode' };
  const missingSingle = single.filter((n) => !has(n));
  const missingOauth = oauth.filter((n) => !has(n));
  return {
    level: 'warn',
    name: 'Slack',
    detail: `not configured. One workspace needs ${missingSingle.join(', ')}; distribution to many needs ${missingOauth.join(', ')}. Create the app from manifests/slack.`,
  };
}

function teamsCheck(env: Record<string, string | undefined>): Check {
  const has = (name: string) => Boolean(env[name]?.trim());
  if (has('MICROSOFT_APP_ID') && has('MICROSOFT_APP_PASSWORD')) {
    return {
      level: 'ok',
      name: 'Microsoft Teams',
      detail: `bot ${env.MICROSOFT_APP_ID} (${env.MICROSOFT_APP_TYPE ?? 'MultiTenant'})`,
    };
  }
  const missing = ['MICROSOFT_APP_ID', 'MICROSOFT_APP_PASSWORD'].filter((n) => !has(n));
  return {
    level: 'warn',
    name: 'Microsoft Teams',
    detail: `local mode: /api/messages is unauthenticated and answers this machine only. For Teams, set ${missing.join(', ')} (and MICROSOFT_APP_TENANT_ID / MICROSOFT_APP_TYPE for single-tenant bots) from your Azure Bot registration.`,
  };
}

/** The root cause of a failure, in one line (driver errors wrap the socket error). */
function describe(error: unknown): string {
  let root = error as { message?: string; cause?: unknown; code?: string } | undefined;
  while (root?.cause) root = root.cause as typeof root;
  const first = ((error as Error)?.message ?? String(error)).split('\n')[0]!;
  const cause = root && root !== error ? root.message || root.code : undefined;
  return cause ? `${first} (${cause})` : first;
}
