import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { z } from 'zod/v4';
import { AppError, ErrorCode } from './errors.js';

/**
 * Every environment variable the service reads, with what it expects. The README's table is
 * generated from the same words; keep them in step.
 */
export const ENV_DOCS: Record<string, string> = {
  PORT: 'HTTP port to listen on (0-65535; 0 picks a free port). Default 3978.',
  HOST: 'Interface to bind. Default 0.0.0.0 (all IPv4 interfaces).',
  DATABASE_URL:
    'PostgreSQL connection string (postgres://user:pass@host:5432/db). Unset: the embedded PGlite database in CLOUDPI_DATA_DIR.',
  CLOUDPI_DATA_DIR: 'Directory for the embedded database and the generated master key. Default ./.data.',
  CLOUDPI_PUBLIC_URL:
    'The https URL Slack, Teams and browsers reach this service at. Default http://localhost:$PORT.',
  CLOUDPI_MASTER_KEYS:
    'Keyring for secrets at rest: comma-separated <id>:<base64 32-byte key> entries, newest first. Required with DATABASE_URL.',
  CLOUDPI_ADMINS:
    'Bootstrap admins: comma-separated slack:<user id> and teams:<Entra object id> entries. Admins in every tenant of that platform.',
  CLOUDPI_ALLOW_PRIVATE_NETWORKS:
    'true lets admin-entered URLs reach private, loopback and link-local addresses (on-premises Jira, Azure DevOps Server). Default false.',
  CLOUDPI_ALLOW_HTTP: 'true lets admin-entered URLs use plain http. Default false.',
  CLOUDPI_API_RATE_LIMIT: 'Requests per minute allowed per API key. Default 600.',
  CLOUDPI_METRICS_TOKEN: 'When set, GET /metrics requires Authorization: Bearer <token>.',
  CLOUDPI_SHUTDOWN_TIMEOUT_MS:
    'How long SIGTERM waits for in-flight requests and jobs before closing anyway. Default 25000.',
  CLOUDPI_HEALTH_CHECK_CRON:
    'When stored provider credentials are re-verified (cron, UTC, 5 fields). Default "7 * * * *": hourly.',
  CLOUDPI_TICKET_POLL_CRON:
    'When the status of open tickets is read back from their providers, so cards show Resolved (cron, UTC, 5 fields). Default "*/5 * * * *": every 5 minutes.',
  CLOUDPI_JOB_SUPERVISE_SECONDS:
    'Seconds between job-queue maintenance passes, which also retry the jobs of a replica that died. Default 60.',
  CLOUDPI_JOB_HEARTBEAT_SECONDS:
    'A running job whose replica sent no heartbeat for this long (it was killed) is retried elsewhere. Default 30, minimum 10.',
  CLOUDPI_RETRY_LIMIT:
    'Retries of a job that calls Jira, Azure DevOps, ServiceNow, Slack, Teams or SMTP before it is given up and admins are told. Default per job (ticket creation 8).',
  CLOUDPI_RETRY_DELAY_SECONDS:
    'First delay of those retries; each next one doubles, with jitter. Default per job (ticket creation 5). Rate limits wait for the Retry-After instead.',
  CLOUDPI_RETRY_DELAY_MAX_SECONDS:
    'Longest delay between those retries. Default per job (ticket creation 600).',
  CLOUDPI_SMTP_CA_FILE:
    'A PEM file of extra CA certificates SMTP servers may be signed with (a company CA). TLS verification is never turned off.',
  LOG_LEVEL: 'fatal, error, warn, info, debug, trace or silent. Default info.',
  LOG_FORMAT: 'json or pretty. Default: pretty on a terminal, json otherwise.',
  SLACK_SIGNING_SECRET:
    'Slack app Signing Secret (Basic Information > App Credentials): every request from Slack is checked with it. Needed in both Slack modes.',
  SLACK_BOT_TOKEN:
    'One-workspace mode: the Bot User OAuth Token (xoxb-...) from OAuth & Permissions after installing the app.',
  SLACK_CLIENT_ID:
    'OAuth mode (many workspaces): the app Client ID. Needs SLACK_CLIENT_SECRET and SLACK_STATE_SECRET too.',
  SLACK_CLIENT_SECRET: 'OAuth mode: the app Client Secret.',
  SLACK_STATE_SECRET:
    'OAuth mode: a random string of 16+ characters that signs the OAuth state parameter (openssl rand -hex 32).',
  SLACK_API_URL:
    'Base URL of the Slack Web API. Default https://slack.com/api/ (override for Enterprise gateways and tests).',
  MICROSOFT_APP_ID:
    'Teams: the Microsoft App ID of the Azure Bot registration (a GUID). Unset: /api/messages runs unauthenticated, for local testing from this machine only.',
  MICROSOFT_APP_PASSWORD:
    'Teams: a client secret of that app registration (Certificates & secrets). Needed unless MICROSOFT_APP_TYPE is UserAssignedMSI.',
  MICROSOFT_APP_TYPE:
    'Teams: MultiTenant, SingleTenant or UserAssignedMSI, as the Azure Bot registration says. Default MultiTenant.',
  MICROSOFT_APP_TENANT_ID: 'Teams: the Entra tenant id (GUID) of a SingleTenant or UserAssignedMSI bot.',
  MICROSOFT_LOGIN_URL:
    'Teams: the authority the bot gets its tokens from. Default https://login.microsoftonline.com/botframework.com (MultiTenant) or https://login.microsoftonline.com/<tenant id> (override for sovereign clouds and tests).',
  MICROSOFT_OPENID_METADATA_URL:
    "Teams: the Bot Connector's OpenID metadata used to check inbound tokens. Default https://login.botframework.com/v1/.well-known/openidconfiguration.",
  MICROSOFT_TOKEN_ISSUER:
    'Teams: the issuer of inbound Bot Connector tokens. Default https://api.botframework.com.',
};

/** A 5-field cron expression (pg-boss schedules, UTC). */
function cronExpression(defaultValue: string) {
  return z
    .string()
    .trim()
    .regex(/^(\S+\s+){4}\S+$/, { message: 'expected a cron expression with 5 fields, like "7 * * * *"' })
    .default(defaultValue);
}

const booleanFlag = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ['true', 'false', '1', '0', 'yes', 'no', ''].includes(v), {
    message: 'expected true or false',
  })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const integerIn = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, { message: `expected a whole number from ${min} to ${max}` })
    .transform(Number)
    .refine((n) => n >= min && n <= max, { message: `expected a whole number from ${min} to ${max}` });

const postgresUrl = z
  .string()
  .trim()
  .refine(
    (v) => {
      try {
        const u = new URL(v);
        return (u.protocol === 'postgres:' || u.protocol === 'postgresql:') && u.hostname !== '';
      } catch {
        return false;
      }
    },
    { message: 'expected a postgres:// or postgresql:// URL with a host' },
  );

const httpUrl = z
  .string()
  .trim()
  .refine(
    (v) => {
      try {
        const u = new URL(v);
        return u.protocol === 'http:' || u.protocol === 'https:';
      } catch {
        return false;
      }
    },
    { message: 'expected an http:// or https:// URL' },
  )
  .transform((v) => v.replace(/\/+$/, ''));

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const MASTER_KEY_ENTRY = /^([A-Za-z0-9_-]{1,32}):([A-Za-z0-9+/=_-]+)$/;

export interface MasterKey {
  readonly id: string;
  readonly key: Buffer;
}

/** Parses `id:base64,id:base64`; every key must be 32 bytes and ids unique. */
export function parseMasterKeys(value: string): MasterKey[] {
  const entries = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (entries.length === 0) throw new Error('expected at least one <id>:<base64 key> entry');
  const seen = new Set<string>();
  return entries.map((entry, index) => {
    const match = MASTER_KEY_ENTRY.exec(entry);
    if (!match) {
      throw new Error(
        `entry ${index + 1} is not <id>:<base64 key> (id: letters, digits, - and _, up to 32 characters)`,
      );
    }
    const [, id, encoded] = match as unknown as [string, string, string];
    const key = Buffer.from(encoded, encoded.includes('-') || encoded.includes('_') ? 'base64url' : 'base64');
    if (key.length !== 32) {
      throw new Error(
        `key "${id}" decodes to ${key.length} bytes; AES-256 needs 32 (generate one with: cloudpi keys generate)`,
      );
    }
    if (seen.has(id)) throw new Error(`key id "${id}" appears twice`);
    seen.add(id);
    return { id, key };
  });
}

const ADMIN_ENTRY = /^(slack|teams):([A-Za-z0-9._-]{1,128})$/;

export interface BootstrapAdmin {
  readonly platform: 'slack' | 'teams';
  readonly userId: string;
}

export function parseAdmins(value: string): BootstrapAdmin[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const match = ADMIN_ENTRY.exec(entry);
      if (!match) throw new Error(`"${entry}" is not slack:<user id> or teams:<Entra object id>`);
      return { platform: match[1] as 'slack' | 'teams', userId: match[2]! };
    });
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const envSchema = z.object({
  PORT: integerIn(0, 65535).default(3978),
  HOST: z.string().trim().min(1).default('0.0.0.0'),
  DATABASE_URL: postgresUrl.optional(),
  CLOUDPI_DATA_DIR: z.string().trim().min(1).default('./.data'),
  CLOUDPI_PUBLIC_URL: httpUrl.optional(),
  CLOUDPI_MASTER_KEYS: z.string().optional(),
  CLOUDPI_ADMINS: z.string().default(''),
  CLOUDPI_ALLOW_PRIVATE_NETWORKS: booleanFlag.default(false),
  CLOUDPI_ALLOW_HTTP: booleanFlag.default(false),
  CLOUDPI_API_RATE_LIMIT: integerIn(1, 1_000_000).default(600),
  CLOUDPI_METRICS_TOKEN: z.string().min(16, { message: 'expected at least 16 characters' }).optional(),
  CLOUDPI_SHUTDOWN_TIMEOUT_MS: integerIn(0, 600_000).default(25_000),
  CLOUDPI_HEALTH_CHECK_CRON: cronExpression('7 * * * *'),
  CLOUDPI_TICKET_POLL_CRON: cronExpression('*/5 * * * *'),
  CLOUDPI_JOB_SUPERVISE_SECONDS: integerIn(1, 3600).default(60),
  CLOUDPI_JOB_HEARTBEAT_SECONDS: integerIn(10, 3600).default(30),
  CLOUDPI_RETRY_LIMIT: integerIn(0, 100).optional(),
  CLOUDPI_RETRY_DELAY_SECONDS: integerIn(1, 86_400).optional(),
  CLOUDPI_RETRY_DELAY_MAX_SECONDS: integerIn(1, 86_400).optional(),
  CLOUDPI_SMTP_CA_FILE: z.string().trim().min(1).optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS, { message: `expected one of ${LOG_LEVELS.join(', ')}` }).default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty'], { message: 'expected json or pretty' }).optional(),
  SLACK_SIGNING_SECRET: z
    .string()
    .trim()
    .min(8, { message: 'expected the Signing Secret (at least 8 characters)' })
    .optional(),
  SLACK_BOT_TOKEN: z
    .string()
    .trim()
    .regex(/^xoxb-[A-Za-z0-9-]+$/, { message: 'expected a bot token starting with xoxb-' })
    .optional(),
  SLACK_CLIENT_ID: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9._-]{1,100}$/, { message: 'expected the Client ID, like 1234567890.1234567890' })
    .optional(),
  SLACK_CLIENT_SECRET: z.string().trim().min(8, { message: 'expected the Client Secret' }).optional(),
  SLACK_STATE_SECRET: z.string().trim().min(16, { message: 'expected at least 16 characters' }).optional(),
  SLACK_API_URL: httpUrl.transform((v) => `${v}/`).optional(),
  MICROSOFT_APP_ID: z
    .string()
    .trim()
    .regex(GUID, {
      message: 'expected the Microsoft App ID, a GUID like 00000000-0000-0000-0000-000000000000',
    })
    .optional(),
  MICROSOFT_APP_PASSWORD: z.string().trim().min(8, { message: 'expected the client secret' }).optional(),
  MICROSOFT_APP_TYPE: z
    .enum(['MultiTenant', 'SingleTenant', 'UserAssignedMSI'], {
      message: 'expected MultiTenant, SingleTenant or UserAssignedMSI',
    })
    .optional(),
  MICROSOFT_APP_TENANT_ID: z
    .string()
    .trim()
    .regex(GUID, { message: 'expected the Entra tenant id, a GUID' })
    .optional(),
  MICROSOFT_LOGIN_URL: httpUrl.optional(),
  MICROSOFT_OPENID_METADATA_URL: httpUrl.optional(),
  MICROSOFT_TOKEN_ISSUER: httpUrl.optional(),
});

/** Slack: one workspace (a bot token) or OAuth distribution to many; undefined when not configured. */
export type SlackConfig =
  | {
      readonly mode: 'single';
      readonly signingSecret: string;
      readonly botToken: string;
      /** Web API base URL, with a trailing slash. */
      readonly apiUrl: string;
    }
  | {
      readonly mode: 'oauth';
      readonly signingSecret: string;
      readonly clientId: string;
      readonly clientSecret: string;
      readonly stateSecret: string;
      readonly apiUrl: string;
    };

const SLACK_OAUTH = ['SLACK_CLIENT_ID', 'SLACK_CLIENT_SECRET', 'SLACK_STATE_SECRET'] as const;

/**
 * Picks the Slack mode from which variables are set. Nothing set: Slack is off and the service
 * runs without it. A partial setting is an error that names what is missing, so a typo does not
 * silently switch Slack off.
 */
function slackConfig(env: Env, data: z.infer<typeof envSchema>): SlackConfig | undefined | string {
  const oauthSet = SLACK_OAUTH.filter((n) => env[n] !== undefined);
  const apiUrl = data.SLACK_API_URL ?? 'https://slack.com/api/';
  if (oauthSet.length > 0) {
    if (env.SLACK_BOT_TOKEN !== undefined) {
      return `SLACK_BOT_TOKEN: set either SLACK_BOT_TOKEN (one workspace) or ${SLACK_OAUTH.join(', ')} (OAuth, many workspaces), not both`;
    }
    const missing = [...SLACK_OAUTH, 'SLACK_SIGNING_SECRET'].filter((n) => env[n] === undefined);
    if (missing.length > 0) {
      return `${missing[0]}: Slack OAuth mode (${oauthSet.join(', ')} set) also needs ${missing.join(', ')}`;
    }
    return {
      mode: 'oauth',
      signingSecret: data.SLACK_SIGNING_SECRET!,
      clientId: data.SLACK_CLIENT_ID!,
      clientSecret: data.SLACK_CLIENT_SECRET!,
      stateSecret: data.SLACK_STATE_SECRET!,
      apiUrl,
    };
  }
  if (env.SLACK_BOT_TOKEN !== undefined) {
    if (env.SLACK_SIGNING_SECRET === undefined) {
      return "SLACK_SIGNING_SECRET: Slack one-workspace mode (SLACK_BOT_TOKEN set) also needs SLACK_SIGNING_SECRET, from the app's Basic Information page";
    }
    return {
      mode: 'single',
      signingSecret: data.SLACK_SIGNING_SECRET!,
      botToken: data.SLACK_BOT_TOKEN!,
      apiUrl,
    };
  }
  if (env.SLACK_SIGNING_SECRET !== undefined) {
    return `SLACK_SIGNING_SECRET: set, but Slack also needs SLACK_BOT_TOKEN (one workspace) or ${SLACK_OAUTH.join(', ')} (OAuth, many workspaces)`;
  }
  return undefined;
}

/**
 * Teams: `authenticated` with an Azure Bot registration (every request must carry a valid Bot
 * Framework token), or `local` without one (no tokens either way; only loopback callers and
 * loopback service URLs, for the Bot Framework Emulator / Teams Toolkit on this machine).
 */
export type TeamsConfig =
  | {
      readonly mode: 'authenticated';
      readonly appId: string;
      readonly appPassword: string | undefined;
      readonly appType: 'MultiTenant' | 'SingleTenant' | 'UserAssignedMSI';
      readonly appTenantId: string | undefined;
      readonly loginUrl: string;
      readonly openIdMetadataUrl: string;
      readonly tokenIssuer: string;
    }
  | { readonly mode: 'local' };

const TEAMS_DEFAULTS = {
  loginBase: 'https://login.microsoftonline.com',
  openIdMetadataUrl: 'https://login.botframework.com/v1/.well-known/openidconfiguration',
  tokenIssuer: 'https://api.botframework.com',
};

function teamsConfig(env: Env, data: z.infer<typeof envSchema>): TeamsConfig | string {
  if (data.MICROSOFT_APP_ID === undefined) {
    const stray = ['MICROSOFT_APP_PASSWORD', 'MICROSOFT_APP_TENANT_ID', 'MICROSOFT_APP_TYPE'].find(
      (n) => env[n] !== undefined,
    );
    if (stray) return `MICROSOFT_APP_ID: ${stray} is set, but the bot's Microsoft App ID is missing`;
    return { mode: 'local' };
  }
  const appType = data.MICROSOFT_APP_TYPE ?? 'MultiTenant';
  if (appType !== 'UserAssignedMSI' && data.MICROSOFT_APP_PASSWORD === undefined)
    return `MICROSOFT_APP_PASSWORD: a ${appType} bot needs the client secret of its app registration`;
  if (appType !== 'MultiTenant' && data.MICROSOFT_APP_TENANT_ID === undefined)
    return `MICROSOFT_APP_TENANT_ID: a ${appType} bot needs the Entra tenant id of its app registration`;
  return {
    mode: 'authenticated',
    appId: data.MICROSOFT_APP_ID,
    appPassword: data.MICROSOFT_APP_PASSWORD,
    appType,
    appTenantId: data.MICROSOFT_APP_TENANT_ID,
    loginUrl:
      data.MICROSOFT_LOGIN_URL ??
      `${TEAMS_DEFAULTS.loginBase}/${appType === 'MultiTenant' ? 'botframework.com' : data.MICROSOFT_APP_TENANT_ID}`,
    openIdMetadataUrl: data.MICROSOFT_OPENID_METADATA_URL ?? TEAMS_DEFAULTS.openIdMetadataUrl,
    tokenIssuer: data.MICROSOFT_TOKEN_ISSUER ?? TEAMS_DEFAULTS.tokenIssuer,
  };
}

export interface AppConfig {
  readonly port: number;
  readonly host: string;
  readonly database:
    | { readonly kind: 'pglite'; readonly dataDir: string }
    | { readonly kind: 'postgres'; readonly url: string };
  readonly dataDir: string;
  readonly publicUrl: string;
  /** Newest first. Undefined when not configured (embedded mode then generates one). */
  readonly masterKeys: readonly MasterKey[] | undefined;
  readonly admins: readonly BootstrapAdmin[];
  readonly allowPrivateNetworks: boolean;
  readonly allowHttp: boolean;
  readonly apiRateLimitPerMinute: number;
  readonly metricsToken: string | undefined;
  readonly shutdownTimeoutMs: number;
  readonly healthCheckCron: string;
  /** When open tickets' statuses are polled from their providers. */
  readonly ticketPollCron: string;
  /** Extra CA certificates (PEM) for SMTP servers. */
  readonly smtpCa: readonly string[];
  readonly jobs: {
    readonly superviseIntervalSeconds: number;
    readonly heartbeatSeconds: number;
    /** Overrides of the outbound jobs' retry policy (unset: each job's own). */
    readonly retry: {
      readonly retryLimit?: number;
      readonly retryDelaySeconds?: number;
      readonly retryDelayMaxSeconds?: number;
    };
  };
  readonly logLevel: (typeof LOG_LEVELS)[number];
  readonly logFormat: 'json' | 'pretty' | undefined;
  /** Undefined: Slack is not configured (the service runs without it). */
  readonly slack: SlackConfig | undefined;
  readonly teams: TeamsConfig;
}

type Env = Record<string, string | undefined>;

/**
 * Reads `.env` in the working directory when present. Variables already in the environment win,
 * so a deployment can override a checked-out file.
 */
export function readDotEnv(env: Env, file = path.resolve('.env')): Env {
  if (!existsSync(file)) return env;
  const parsed = parseEnv(readFileSync(file, 'utf8'));
  return { ...parsed, ...env };
}

/** Empty strings count as unset, as most shells and .env files write "FOO=". */
function withoutEmpty(env: Env): Env {
  return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''));
}

/**
 * Parses the environment once, at start-up. A wrong value throws an AppError whose message names
 * each variable, what it expects and what it got (secrets are not echoed).
 */
export function loadConfig(rawEnv: Env = process.env): AppConfig {
  const env = withoutEmpty(rawEnv);
  const result = envSchema.safeParse(env);
  const problems: string[] = [];
  if (!result.success) {
    for (const issue of result.error.issues) {
      const name = String(issue.path[0] ?? '?');
      const problem = describeProblem(name, issue.message, env[name]);
      if (!problems.includes(problem)) problems.push(problem);
    }
  }
  let masterKeys: MasterKey[] | undefined;
  if (env.CLOUDPI_MASTER_KEYS !== undefined) {
    try {
      masterKeys = parseMasterKeys(env.CLOUDPI_MASTER_KEYS);
    } catch (error) {
      problems.push(describeProblem('CLOUDPI_MASTER_KEYS', (error as Error).message, undefined));
    }
  }
  let admins: BootstrapAdmin[] = [];
  try {
    admins = parseAdmins(env.CLOUDPI_ADMINS ?? '');
  } catch (error) {
    problems.push(describeProblem('CLOUDPI_ADMINS', (error as Error).message, undefined));
  }
  if (result.success && result.data.DATABASE_URL && env.CLOUDPI_MASTER_KEYS === undefined) {
    problems.push(
      'CLOUDPI_MASTER_KEYS: required when DATABASE_URL is set, so that secrets stored in PostgreSQL are encrypted with a key you keep (generate one with: cloudpi keys generate)',
    );
  }
  let smtpCa: string[] = [];
  if (result.success && result.data.CLOUDPI_SMTP_CA_FILE) {
    try {
      const pem = readFileSync(result.data.CLOUDPI_SMTP_CA_FILE, 'utf8');
      smtpCa = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
      if (smtpCa.length === 0) problems.push('CLOUDPI_SMTP_CA_FILE: the file holds no PEM certificate');
    } catch (error) {
      problems.push(
        `CLOUDPI_SMTP_CA_FILE: cannot read ${result.data.CLOUDPI_SMTP_CA_FILE} (${(error as Error).message})`,
      );
    }
  }
  const slackResult = result.success ? slackConfig(env, result.data) : undefined;
  if (typeof slackResult === 'string') problems.push(slackResult);
  const slack = typeof slackResult === 'string' ? undefined : slackResult;
  const teamsResult = result.success ? teamsConfig(env, result.data) : undefined;
  if (typeof teamsResult === 'string') problems.push(teamsResult);
  if (problems.length > 0 || !result.success) {
    throw new AppError(
      ErrorCode.CONFIG_INVALID,
      `Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
      { details: { problems } },
    );
  }
  const data = result.data;
  const dataDir = path.resolve(data.CLOUDPI_DATA_DIR);
  return Object.freeze({
    port: data.PORT,
    host: data.HOST,
    database: data.DATABASE_URL
      ? Object.freeze({ kind: 'postgres' as const, url: data.DATABASE_URL })
      : Object.freeze({ kind: 'pglite' as const, dataDir: path.join(dataDir, 'pglite') }),
    dataDir,
    publicUrl: data.CLOUDPI_PUBLIC_URL ?? `http://localhost:${data.PORT}`,
    masterKeys: masterKeys ? Object.freeze(masterKeys) : undefined,
    admins: Object.freeze(admins),
    allowPrivateNetworks: data.CLOUDPI_ALLOW_PRIVATE_NETWORKS,
    allowHttp: data.CLOUDPI_ALLOW_HTTP,
    apiRateLimitPerMinute: data.CLOUDPI_API_RATE_LIMIT,
    metricsToken: data.CLOUDPI_METRICS_TOKEN,
    shutdownTimeoutMs: data.CLOUDPI_SHUTDOWN_TIMEOUT_MS,
    healthCheckCron: data.CLOUDPI_HEALTH_CHECK_CRON,
    ticketPollCron: data.CLOUDPI_TICKET_POLL_CRON,
    smtpCa: Object.freeze(smtpCa),
    jobs: {
      superviseIntervalSeconds: data.CLOUDPI_JOB_SUPERVISE_SECONDS,
      heartbeatSeconds: data.CLOUDPI_JOB_HEARTBEAT_SECONDS,
      retry: {
        ...(data.CLOUDPI_RETRY_LIMIT !== undefined ? { retryLimit: data.CLOUDPI_RETRY_LIMIT } : {}),
        ...(data.CLOUDPI_RETRY_DELAY_SECONDS !== undefined
          ? { retryDelaySeconds: data.CLOUDPI_RETRY_DELAY_SECONDS }
          : {}),
        ...(data.CLOUDPI_RETRY_DELAY_MAX_SECONDS !== undefined
          ? { retryDelayMaxSeconds: data.CLOUDPI_RETRY_DELAY_MAX_SECONDS }
          : {}),
      },
    },
    logLevel: data.LOG_LEVEL,
    logFormat: data.LOG_FORMAT,
    slack: slack ? Object.freeze(slack) : undefined,
    teams: Object.freeze(teamsResult as TeamsConfig),
  });
}

const SECRET_VARIABLES = new Set([
  'CLOUDPI_MASTER_KEYS',
  'CLOUDPI_METRICS_TOKEN',
  'DATABASE_URL',
  'SLACK_SIGNING_SECRET',
  'SLACK_BOT_TOKEN',
  'SLACK_CLIENT_SECRET',
  'SLACK_STATE_SECRET',
  'MICROSOFT_APP_PASSWORD',
]);

function describeProblem(name: string, expected: string, got: string | undefined): string {
  if (got === undefined || SECRET_VARIABLES.has(name)) return `${name}: ${expected}`;
  const shown = got.length > 60 ? `${got.slice(0, 57)}...` : got;
  return `${name}: ${expected}, got "${shown}"`;
}
