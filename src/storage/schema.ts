import { bigserial, boolean, index, jsonb, pgTable, sql, text, timestamp, uniqueIndex, uuid } from './orm.js';

/**
 * The data model of DESIGN.md. Every table but `tenants` carries `tenant_id`, and every
 * repository query filters on it. Columns named `*_secret` hold SecretBox envelopes only; the
 * rotation job finds them through SECRET_COLUMNS below.
 */

const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();
const updatedAt = () => timestamp('updated_at', { withTimezone: true }).notNull().defaultNow();
const tenantRef = () =>
  uuid('tenant_id')
    .notNull()
    .references(() => tenants.id, { onDelete: 'cascade' });

export const tenants = pgTable(
  'tenants',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** slack | teams | email */
    platform: text('platform').notNull(),
    /** Slack team or enterprise id, Teams (Entra) tenant id, or a name for email-only tenants. */
    externalId: text('external_id').notNull(),
    name: text('name').notNull().default(''),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('tenants_platform_external_id_uq').on(t.platform, t.externalId)],
);

export const installations = pgTable(
  'installations',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: tenantRef(),
    platform: text('platform').notNull(),
    /** Slack: team id, or enterprise id for org-wide installs; Teams: the bot's app id. */
    installKey: text('install_key').notNull(),
    botUserId: text('bot_user_id'),
    /** The whole installation object (tokens included), sealed. */
    installationSecret: text('installation_secret').notNull(),
    installedAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex('installations_tenant_platform_key_uq').on(t.tenantId, t.platform, t.installKey)],
);

export const integrations = pgTable(
  'integrations',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: tenantRef(),
    /** jira | azure-devops | servicenow | sso | smtp */
    kind: text('kind').notNull(),
    /** not_connected | connected | active | error */
    status: text('status').notNull().default('not_connected'),
    settings: jsonb('settings').$type<Record<string, unknown>>().notNull().default({}),
    credentialsSecret: text('credentials_secret'),
    lastVerifiedAt: timestamp('last_verified_at', { withTimezone: true }),
    lastError: text('last_error'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex('integrations_tenant_kind_uq').on(t.tenantId, t.kind)],
);

export const routes = pgTable(
  'routes',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: tenantRef(),
    name: text('name').notNull().default(''),
    filters: jsonb('filters').$type<Record<string, unknown>>().notNull().default({}),
    provider: text('provider'),
    target: jsonb('target').$type<Record<string, unknown>>().notNull().default({}),
    platform: text('platform'),
    channelId: text('channel_id'),
    emailRecipients: text('email_recipients').array().notNull().default(sql`'{}'::text[]`),
    enabled: boolean('enabled').notNull().default(true),
    createdBy: text('created_by'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index('routes_tenant_idx').on(t.tenantId)],
);

export const recommendations = pgTable(
  'recommendations',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: tenantRef(),
    externalId: text('external_id').notNull(),
    title: text('title').notNull(),
    severity: text('severity'),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    receivedAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex('recommendations_tenant_external_uq').on(t.tenantId, t.externalId)],
);

export const cards = pgTable(
  'cards',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: tenantRef(),
    recommendationId: uuid('recommendation_id')
      .notNull()
      .references(() => recommendations.id, { onDelete: 'cascade' }),
    platform: text('platform').notNull(),
    channelId: text('channel_id').notNull(),
    /** Slack message ts or Teams activity id, once posted. */
    messageRef: text('message_ref'),
    /** pending | posted | failed | dismissed */
    state: text('state').notNull().default('pending'),
    /** Why posting failed for good (state `failed`): the platform's error code, e.g. not_in_channel. */
    lastError: text('last_error'),
    /**
     * The fallback of a card that could not be delivered (state `failed`): queued | delivered |
     * unavailable (no fallback channel configured) | failed; null while chat delivery works.
     */
    fallbackState: text('fallback_state'),
    /** What the fallback did or why it could not: recipients, or the missing setting. */
    fallbackNote: text('fallback_note'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('cards_recommendation_channel_uq').on(t.recommendationId, t.platform, t.channelId),
    index('cards_tenant_idx').on(t.tenantId),
  ],
);

export const tickets = pgTable(
  'tickets',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: tenantRef(),
    recommendationId: uuid('recommendation_id')
      .notNull()
      .references(() => recommendations.id, { onDelete: 'cascade' }),
    provider: text('provider').notNull(),
    idempotencyKey: text('idempotency_key').notNull(),
    key: text('key'),
    url: text('url'),
    /** creating | open | in_progress | done | closed | failed */
    status: text('status').notNull().default('creating'),
    providerStatus: text('provider_status'),
    createdBy: text('created_by'),
    lastError: text('last_error'),
    /**
     * Where the ticket goes, chosen at the click: the subscription route of the channel it was
     * clicked in (project, type), over the provider's own routing. Empty: the provider's routing.
     */
    routing: jsonb('routing').$type<Record<string, unknown>>().notNull().default({}),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index('tickets_tenant_provider_key_idx').on(t.tenantId, t.provider, t.key),
    uniqueIndex('tickets_idempotency_key_uq').on(t.idempotencyKey),
    uniqueIndex('tickets_recommendation_provider_uq').on(t.tenantId, t.recommendationId, t.provider),
  ],
);

export const identities = pgTable(
  'identities',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: tenantRef(),
    platform: text('platform').notNull(),
    chatUserId: text('chat_user_id').notNull(),
    idpSubject: text('idp_subject'),
    email: text('email'),
    groups: text('groups').array().notNull().default(sql`'{}'::text[]`),
    roles: text('roles').array().notNull().default(sql`'{}'::text[]`),
    grantSecret: text('grant_secret'),
    linkedAt: timestamp('linked_at', { withTimezone: true }),
    loginValidUntil: timestamp('login_valid_until', { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex('identities_tenant_platform_user_uq').on(t.tenantId, t.platform, t.chatUserId)],
);

export const apiKeys = pgTable(
  'api_keys',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: tenantRef(),
    name: text('name').notNull().default(''),
    /** The public part of the key (`cpk_<prefix>_...`), used to find the row. */
    prefix: text('prefix').notNull(),
    /** SHA-256 of the whole key, hex. Keys are 256-bit random, so a fast hash is enough. */
    hash: text('hash').notNull(),
    createdAt: createdAt(),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('api_keys_prefix_uq').on(t.prefix), index('api_keys_tenant_idx').on(t.tenantId)],
);

export const auditLog = pgTable(
  'audit_log',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    tenantId: tenantRef(),
    actor: text('actor').notNull(),
    action: text('action').notNull(),
    target: text('target').notNull().default(''),
    before: jsonb('before').$type<Record<string, unknown> | null>(),
    after: jsonb('after').$type<Record<string, unknown> | null>(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('audit_log_tenant_at_idx').on(t.tenantId, t.at)],
);

/**
 * Recommendations waiting for a subscription's email digest (a route whose target says `digest`:
 * hourly or daily): gathered here, sent as one email per recipient, then deleted.
 */
export const digestItems = pgTable(
  'digest_items',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: tenantRef(),
    routeId: uuid('route_id')
      .notNull()
      .references(() => routes.id, { onDelete: 'cascade' }),
    recommendationId: uuid('recommendation_id')
      .notNull()
      .references(() => recommendations.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('digest_items_route_recommendation_uq').on(t.routeId, t.recommendationId)],
);

/**
 * SSO sign-ins: `login` in chat makes a single-use link bound to the chat user (only its SHA-256 is
 * kept); opening it starts the OpenID Connect flow, whose state, nonce and PKCE verifier are kept
 * here (the verifier sealed) and bound to the browser that opened the link by a cookie.
 */
export const ssoLogins = pgTable(
  'sso_logins',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: tenantRef(),
    platform: text('platform').notNull(),
    chatUserId: text('chat_user_id').notNull(),
    /** SHA-256 (hex) of the link token. */
    tokenHash: text('token_hash').notNull(),
    state: text('state'),
    nonce: text('nonce'),
    /** The PKCE code verifier, sealed. */
    verifierSecret: text('verifier_secret'),
    /** SHA-256 (hex) of the cookie value set by /auth/sso/start. */
    browserHash: text('browser_hash'),
    /** Where to confirm the sign-in in chat: { channelId }. */
    replyTo: jsonb('reply_to').$type<Record<string, unknown>>().notNull().default({}),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    startedAt: timestamp('started_at', { withTimezone: true }),
    completedAt: timestamp('completed_at', { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('sso_logins_token_hash_uq').on(t.tokenHash),
    uniqueIndex('sso_logins_state_uq').on(t.state),
    index('sso_logins_tenant_idx').on(t.tenantId),
  ],
);

/**
 * Conversations the bot can post into without being asked (Teams proactive messages): the
 * conversation reference Teams gave us on install, on conversationUpdate and on every message,
 * so that cards reach subscribed channels later. Slack needs none (a channel id is enough).
 */
export const conversations = pgTable(
  'conversations',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: tenantRef(),
    platform: text('platform').notNull(),
    /** Teams: the channel's thread id (19:...@thread.tacv2), a group chat or a personal chat id. */
    conversationId: text('conversation_id').notNull(),
    /** personal | channel | groupChat */
    kind: text('kind').notNull(),
    /** Teams: the team (its General channel's id) a channel belongs to. */
    teamId: text('team_id'),
    name: text('name'),
    /** The Bot Framework ConversationReference (service URL, bot, conversation), without user data. */
    reference: jsonb('reference').$type<Record<string, unknown>>().notNull(),
    /** Set when the platform said the bot was removed (uninstall, 403 from the connector). */
    removedAt: timestamp('removed_at', { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex('conversations_tenant_platform_id_uq').on(t.tenantId, t.platform, t.conversationId)],
);

/**
 * Where a provider sends status-change webhooks for one tenant: `POST /webhooks/<provider>/<public_id>`.
 * The public id finds the row; the sealed secret proves the sender (Jira: HMAC signature, Azure
 * DevOps and ServiceNow: Basic auth password).
 */
export const webhookEndpoints = pgTable(
  'webhook_endpoints',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: tenantRef(),
    /** jira | azure-devops | servicenow */
    provider: text('provider').notNull(),
    publicId: text('public_id').notNull(),
    signingSecret: text('signing_secret').notNull(),
    createdBy: text('created_by'),
    lastReceivedAt: timestamp('last_received_at', { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('webhook_endpoints_public_id_uq').on(t.publicId),
    uniqueIndex('webhook_endpoints_tenant_provider_uq').on(t.tenantId, t.provider),
  ],
);

/** Kept for schema versioning checks by `doctor`. */
export const SCHEMA_TABLES = [
  'tenants',
  'installations',
  'integrations',
  'routes',
  'recommendations',
  'cards',
  'tickets',
  'identities',
  'api_keys',
  'audit_log',
  'webhook_endpoints',
  'conversations',
  'sso_logins',
  'digest_items',
] as const;

/**
 * The secret context (AES-GCM additional data) of each sealed column: the tenant and the row's
 * natural key. Repositories seal with these, rotation re-seals with them, so a ciphertext moved
 * to another row or tenant does not decrypt.
 */
export const secretContext = {
  installation: (row: { tenantId: string; platform: string; installKey: string }) =>
    `installations.installation_secret|${row.tenantId}|${row.platform}|${row.installKey}`,
  integration: (row: { tenantId: string; kind: string }) =>
    `integrations.credentials_secret|${row.tenantId}|${row.kind}`,
  identity: (row: { tenantId: string; platform: string; chatUserId: string }) =>
    `identities.grant_secret|${row.tenantId}|${row.platform}|${row.chatUserId}`,
  ssoLogin: (row: { tenantId: string; id: string }) => `sso_logins.verifier_secret|${row.tenantId}|${row.id}`,
  webhook: (row: { tenantId: string; provider: string; publicId: string }) =>
    `webhook_endpoints.signing_secret|${row.tenantId}|${row.provider}|${row.publicId}`,
};

export const schema = {
  tenants,
  installations,
  integrations,
  routes,
  recommendations,
  cards,
  tickets,
  identities,
  apiKeys,
  auditLog,
  webhookEndpoints,
  conversations,
  ssoLogins,
  digestItems,
};
