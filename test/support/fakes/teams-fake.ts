/**
 * A strict loopback Microsoft side of a Teams bot, on one HTTPS server (self-signed CA, see
 * `caPem`): the Bot Framework channel's OpenID metadata and signing keys (channel -> bot tokens),
 * an Entra ID token endpoint for the bot's client-credentials grant (what MSAL asks for), and the
 * Bot Connector API v3 with Teams' extensions under `serviceUrl`.
 *
 * Built from the vendors' published descriptions (test/fixtures/specs/botframework): every
 * Connector request body is checked against the Connector API swagger (botbuilder-js
 * `ConnectorAPI.json`) and refused with the connector's ErrorResponse (400 BadArgument) when it
 * does not match; every answer of the fake is checked against the response schema of its status.
 * Both kinds of mismatch land in `specViolations`, which tests expect to stay empty. Inbound
 * activities (the builders, `send`) are checked against the Bot Framework protocol JSON Schema
 * (`botframework-activity.schema.json`) and throw when invalid.
 *
 * Like Teams it answers: 401 without a token the login issued (or with an expired one), 404
 * ConversationNotFound, 403 BotNotInConversationRoster after `removeBot`, 404
 * ActivityNotFoundInConversation for updates/deletes of messages the bot did not send, 413
 * MessageSizeTooBig above Teams' documented 100 KB (UTF-16) message limit, 405 for GET
 * /v3/conversations (Teams does not list conversations), and 429 Throttled with Retry-After beyond
 * 7 operations per second or 60 per 30 seconds per bot per conversation (sends, replies, updates,
 * new threads). `failNext` and `rateLimitNext` inject Teams' transient failures.
 *
 * MSAL (inside botframework-connector) cannot use this login on its own: with an authority it does
 * not know it first asks https://login.microsoftonline.com/common/discovery/instance (no network
 * here). Build the ConfidentialClientApplication with `knownAuthorities: [fake.origin]` and hand it
 * to botbuilder through `MsalServiceClientCredentialsFactory` (`createCredentialsFactory(fake)`
 * does exactly that); then MSAL asks GET {loginUrl}/v2.0/.well-known/openid-configuration and POST
 * {loginUrl}/oauth2/v2.0/token, both served here.
 *
 * Clocks: connector-side time (call times, rate windows, access-token expiry) follows `now` and
 * `advanceTime`; inbound tokens (`signInbound`) use the real clock, because the bot checks them
 * against its own.
 */
import { randomBytes, randomInt, randomUUID, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { ConfigurationBotFrameworkAuthenticationOptions } from 'botbuilder';
import { MsalServiceClientCredentialsFactory } from 'botframework-connector';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { generate as generateCertificate } from 'selfsigned';
import { PROJECT_ROOT } from '../../../src/paths.js';
import { readBody } from './read-body.js';
import { checkSchema, type Schema, type SchemaDialect } from './schema-check.js';

export type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

// ---------------------------------------------------------------------------------------------
// Specs.

const SPEC_DIR = path.join(PROJECT_ROOT, 'test/fixtures/specs/botframework');

interface Swagger {
  paths: Record<string, Record<string, { responses: Record<string, { schema?: Schema }> }>>;
  definitions: Record<string, Schema>;
}

let connectorSpec: Swagger | undefined;
function spec(): Swagger {
  connectorSpec ??= JSON.parse(readFileSync(path.join(SPEC_DIR, 'ConnectorAPI.json'), 'utf8')) as Swagger;
  return connectorSpec;
}

/**
 * Teams' extension answers have no published swagger; these follow botframework-schema's
 * TeamsChannelAccount, TeamDetails, ConversationList and ChannelInfo (botbuilder-js, MIT), the
 * types botbuilder deserializes them into.
 */
const TEAMS_SCHEMAS: Record<string, Schema> = {
  TeamsChannelAccount: {
    type: 'object',
    properties: {
      id: { type: 'string' },
      name: { type: 'string' },
      aadObjectId: { type: 'string' },
      role: { type: 'string' },
      givenName: { type: 'string' },
      surname: { type: 'string' },
      email: { type: 'string' },
      userPrincipalName: { type: 'string' },
      tenantId: { type: 'string' },
      userRole: { type: 'string' },
    },
    required: ['id', 'name'],
    additionalProperties: false,
  },
  TeamsPagedMembersResult: {
    type: 'object',
    properties: {
      continuationToken: { type: 'string' },
      members: { type: 'array', items: { $ref: '#/teams/TeamsChannelAccount' } },
    },
    required: ['members'],
    additionalProperties: false,
  },
  TeamDetails: {
    type: 'object',
    properties: {
      id: { type: 'string' },
      name: { type: 'string' },
      aadGroupId: { type: 'string' },
      channelCount: { type: 'integer' },
      memberCount: { type: 'integer' },
      type: { type: 'string', enum: ['standard', 'sharedChannel', 'privateChannel'] },
    },
    required: ['id'],
    additionalProperties: false,
  },
  ConversationList: {
    type: 'object',
    properties: { conversations: { type: 'array', items: { $ref: '#/teams/ChannelInfo' } } },
    required: ['conversations'],
    additionalProperties: false,
  },
  ChannelInfo: {
    type: 'object',
    properties: { id: { type: 'string' }, name: { type: 'string' }, type: { type: 'string' } },
    required: ['id'],
    additionalProperties: false,
  },
};

const dialect: SchemaDialect = {
  resolve(ref) {
    if (ref.startsWith('#/definitions/')) return spec().definitions[ref.slice('#/definitions/'.length)];
    if (ref.startsWith('#/teams/')) return TEAMS_SCHEMAS[ref.slice('#/teams/'.length)];
    return undefined;
  },
  nullable: 'always',
  untypedObject: 'any-json',
};

export function checkConnectorSchema(value: unknown, ref: string): string[] {
  return checkSchema(value, { $ref: ref }, dialect);
}

let activityValidators: { activity: ValidateFunction; mention: ValidateFunction } | undefined;
function activitySchema(): { activity: ValidateFunction; mention: ValidateFunction } {
  if (!activityValidators) {
    const schema = JSON.parse(
      readFileSync(path.join(SPEC_DIR, 'botframework-activity.schema.json'), 'utf8'),
    ) as Json;
    const ajv = new Ajv({
      allErrors: true,
      strict: false,
      formats: { 'date-time': { type: 'string', validate: (s: string) => !Number.isNaN(Date.parse(s)) } },
    });
    ajv.addSchema(schema, 'botframework');
    activityValidators = {
      activity: ajv.compile({ $ref: 'botframework#/definitions/Activity' }),
      mention: ajv.compile({ $ref: 'botframework#/definitions/Mention' }),
    };
  }
  return activityValidators;
}

const ajvProblems = (errors: ErrorObject[] | null | undefined, at: string): string[] =>
  (errors ?? []).map((e) => `${at}${e.instancePath || ''}: ${e.message ?? e.keyword}`);

/**
 * Problems of an activity against the Bot Framework protocol JSON Schema (Activity; mention
 * entities also against Mention). Empty when valid.
 */
export function validateActivity(activity: unknown): string[] {
  const { activity: validate, mention } = activitySchema();
  const problems = validate(activity) ? [] : ajvProblems(validate.errors, '$');
  if (isObject(activity) && Array.isArray(activity.entities)) {
    activity.entities.forEach((entity, i) => {
      if (isObject(entity) && entity.type === 'mention' && !mention(entity))
        problems.push(...ajvProblems(mention.errors, `$.entities[${i}]`));
    });
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// TLS and keys (made once per process: key generation is the slow part of starting a fake).

interface Certificate {
  readonly caPem: string;
  readonly key: string;
  readonly cert: string;
}

let certificate: Promise<Certificate> | undefined;
function serverCertificate(): Promise<Certificate> {
  certificate ??= (async () => {
    const notBeforeDate = new Date(Date.now() - 24 * 3600_000);
    const notAfterDate = new Date(Date.now() + 30 * 24 * 3600_000);
    const ca = await generateCertificate([{ name: 'commonName', value: 'Teams fake test CA' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      notBeforeDate,
      notAfterDate,
      extensions: [
        { name: 'basicConstraints', cA: true, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
      ],
    });
    const leaf = await generateCertificate([{ name: 'commonName', value: '127.0.0.1' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      notBeforeDate,
      notAfterDate,
      ca: { key: ca.private, cert: ca.cert },
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: [
            { type: 7, ip: '127.0.0.1' },
            { type: 7, ip: '::1' },
            { type: 2, value: 'localhost' },
          ],
        },
      ],
    });
    return { caPem: ca.cert, key: leaf.private, cert: leaf.cert };
  })();
  return certificate;
}

/**
 * Makes this process's TLS clients (node:https, undici/fetch, MSAL, node-fetch, @azure/core-rest-pipeline)
 * trust `caPem` besides the default CAs (Node 24 `tls.setDefaultCACertificates`). Idempotent.
 */
export function trustCertificate(caPem: string): void {
  if (isTrusted(caPem)) return;
  tls.setDefaultCACertificates([...tls.getCACertificates('default'), caPem]);
}

/** Whether `caPem` is among this process's default CAs (Node re-encodes the PEMs it lists). */
export function isTrusted(caPem: string): boolean {
  const fingerprint = new X509Certificate(caPem).fingerprint256;
  return tls
    .getCACertificates('default')
    .some((pem) => new X509Certificate(pem).fingerprint256 === fingerprint);
}

interface SigningKey {
  readonly kid: string;
  readonly privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  readonly jwk: JWK;
}

async function signingKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { modulusLength: 2048 });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, use: 'sig', alg: 'RS256' } };
}

interface Keys {
  /** Endorsed for msteams, in the channel JWKS. */
  readonly channel: SigningKey;
  /** In the channel JWKS, endorsed for another channel only. */
  readonly otherChannel: SigningKey;
  /** Not published: same kid as `channel`, other key material. */
  readonly rogue: SigningKey;
  /** Signs the access tokens the login issues. */
  readonly login: SigningKey;
}

let keys: Promise<Keys> | undefined;
function signingKeys(): Promise<Keys> {
  keys ??= (async () => {
    const channelKid = randomBytes(12).toString('base64url');
    const [channel, otherChannel, rogue, login] = await Promise.all([
      signingKey(channelKid),
      signingKey(randomBytes(12).toString('base64url')),
      signingKey(channelKid),
      signingKey(randomBytes(12).toString('base64url')),
    ]);
    return { channel, otherChannel, rogue, login };
  })();
  return keys;
}

// ---------------------------------------------------------------------------------------------
// Public types.

export type TeamsAppType = 'MultiTenant' | 'SingleTenant';
export type TeamsConversationKind = 'personal' | 'channel' | 'groupChat';
export type InjectedStatus = 412 | 500 | 502 | 503 | 504;

export interface TeamsFakeOptions {
  /** The bot's Microsoft App ID. Default: a fresh GUID per fake (see `appId`). */
  readonly appId?: string;
  /** The client secret the login accepts. Default: random. */
  readonly appPassword?: string;
  /** MultiTenant (default): tokens from the botframework.com tenant; SingleTenant: only from `tenantId`. */
  readonly appType?: TeamsAppType;
  /** The Microsoft 365 tenant (channelData.tenant.id, conversation.tenantId; the app's home tenant). Default: a fresh GUID. */
  readonly tenantId?: string;
  /** The bot's display name (recipient.name, `<at>` mentions). Default 'CloudPi'. */
  readonly botName?: string;
  /** The resource the bot asks tokens for (ToChannelFromBotOAuthScope). Default https://api.botframework.com. */
  readonly oauthScope?: string;
  /** Teams' per bot per conversation limits. Default { perSecond: 7, per30Seconds: 60 }. */
  readonly limits?: { readonly perSecond?: number; readonly per30Seconds?: number };
  /** Largest accepted activity, in UTF-16 bytes of its JSON. Default 100 KB (Teams' documented limit). */
  readonly maxMessageBytes?: number;
  /** Lifetime of issued access tokens. Default 3599 s, as Entra answers. */
  readonly tokenLifetimeSeconds?: number;
  /** Connector-side clock. Default Date.now. */
  readonly now?: () => number;
  /** Call `trustCertificate(caPem)` on start. Default true. */
  readonly trustCertificate?: boolean;
}

export interface TeamsUser {
  /** Teams user id ("29:1..."), what from.id carries. */
  readonly id: string;
  readonly name: string;
  readonly aadObjectId: string;
  readonly givenName: string;
  readonly surname: string;
  readonly email: string;
  readonly userPrincipalName: string;
  readonly tenantId: string;
  readonly userRole: 'user';
}

export interface TeamsChannel {
  readonly id: string;
  /** Undefined for General, as Teams answers. */
  readonly name?: string;
}

export interface TeamsTeam {
  /** The team id, which is also the id of its General channel. */
  readonly id: string;
  readonly name: string;
  readonly aadGroupId: string;
  readonly channels: { readonly general: TeamsChannel; readonly alerts: TeamsChannel };
}

export interface TeamsFakeCall {
  readonly method: string;
  /** Path and query as received. */
  readonly path: string;
  /** What was asked: 'POST /v3/conversations/{conversationId}/activities', 'token', 'openid-configuration', ... */
  readonly operation: string;
  /** Base conversation id (without ";messageid=") for Connector calls about one conversation. */
  readonly conversationId?: string;
  /** Parsed request body (JSON, or the form of a token request with client_secret masked). */
  readonly body: unknown;
  readonly at: number;
  status: number;
  response?: unknown;
  /** Retry-After seconds of a 429. */
  retryAfter?: number;
}

export interface TeamsSentActivity {
  /** The id the connector gave the activity. */
  readonly id: string;
  /** Base conversation id (a channel's id without ";messageid="). */
  readonly conversationId: string;
  /** Channels: the id of the thread's root message (the activity's own id for a new post). */
  readonly threadId?: string;
  /** The activity id it replies to (replyToActivity). */
  readonly replyToId?: string;
  readonly operation: 'send' | 'reply' | 'createConversation';
  /** The activity as last sent (updates replace it). */
  activity: Json;
  /** 1 + the number of updates. */
  version: number;
  deleted: boolean;
  readonly at: number;
  updatedAt?: number;
}

export interface IssuedToken {
  readonly token: string;
  readonly appId: string;
  readonly tenant: string;
  readonly scope: string;
  readonly at: number;
  readonly expiresAt: number;
}

/** A flaw to put in an inbound token, for negative tests. */
export type InboundTokenFlaw =
  /** signed by a key that is not published, under the published key's kid: bad signature */
  | 'wrong-key'
  /** a kid the JWKS does not have */
  | 'unknown-key'
  /** signed by a published key whose endorsements lack msteams */
  | 'unendorsed-key'
  /** expired an hour ago (beyond botbuilder's 5 minutes of clock tolerance) */
  | 'expired'
  /** valid only from an hour from now */
  | 'not-yet-valid'
  /** aud is another app id */
  | 'wrong-audience'
  /** iss is the real Bot Framework issuer, not the fake's */
  | 'wrong-issuer'
  /** no serviceurl claim */
  | 'missing-service-url'
  /** a serviceurl claim that differs from activity.serviceUrl */
  | 'wrong-service-url';

export interface InboundActivity {
  type: string;
  id: string;
  channelId: 'msteams';
  serviceUrl: string;
  timestamp: string;
  from: Json;
  recipient: Json;
  conversation: Json;
  channelData: Json;
  [key: string]: unknown;
}

export interface InboundOptions {
  /** Where it happens. Default 'personal'. */
  readonly conversation?: TeamsConversationKind;
  /** Who acts. Default the admin. */
  readonly user?: TeamsUser | 'admin' | 'member';
  /** Channel conversations: which channel. Default General. */
  readonly channel?: 'general' | 'alerts';
  /** Channel conversations: the root message id of the thread (default: the activity starts its own thread). */
  readonly threadId?: string;
  /** Invokes from a card: the id of the message carrying the card. */
  readonly replyToId?: string;
  readonly locale?: string;
}

export interface MessageOptions extends InboundOptions {
  /** `<at>Bot</at>` in the text plus a mention entity. Default true in channels and group chats, false in personal chats. */
  readonly mention?: boolean;
  /** Action.Submit data (a message with a value). */
  readonly value?: Json;
}

export interface SendResult {
  readonly status: number;
  /** Parsed JSON body (text when not JSON, undefined when empty). */
  readonly body: unknown;
  readonly headers: Headers;
  /** How long the bot took to answer. */
  readonly ms: number;
}

export interface TeamsFake {
  /** https://127.0.0.1:<port> */
  readonly origin: string;
  /** The CA that signed the server certificate (PEM). */
  readonly caPem: string;
  /** The service URL the fake puts in inbound activities: `${origin}/teams/` (trailing slash, as Teams'). */
  readonly serviceUrl: string;
  /** ToBotFromChannelOpenIdMetadataUrl */
  readonly openIdMetadataUrl: string;
  /** ToBotFromChannelTokenIssuer (the `iss` of inbound tokens): the origin. */
  readonly issuer: string;
  /** ToChannelFromBotLoginUrl / the MSAL authority: `${origin}/botframework.com` (MultiTenant) or `${origin}/<tenantId>` (SingleTenant). */
  readonly loginUrl: string;
  /** ToChannelFromBotOAuthScope */
  readonly oauthScope: string;
  /** For MSAL's `knownAuthorities`: [origin]. */
  readonly knownAuthorities: readonly string[];
  readonly appId: string;
  readonly appPassword: string;
  readonly appType: TeamsAppType;
  readonly tenantId: string;
  /** "28:<appId>", the bot's account id in Teams. */
  readonly botId: string;
  readonly botName: string;
  readonly team: TeamsTeam;
  readonly users: { readonly admin: TeamsUser; readonly member: TeamsUser };
  /** Personal (1:1) conversation id of a user with the bot. */
  personalConversationId(user?: TeamsUser | 'admin' | 'member'): string;
  /** The group chat (admin, member and the bot). */
  readonly groupChatId: string;
  /** Adds a user to the tenant, the team, the group chat and gives them a personal chat. */
  addUser(name: string): TeamsUser;

  /** ConfigurationBotFrameworkAuthentication options that point a bot at this fake. */
  botConfig(): ConfigurationBotFrameworkAuthenticationOptions & Record<string, string>;

  /** A token as the Bot Connector signs it for `activity` (serviceurl = activity.serviceUrl, aud = appId). */
  signInbound(
    activity: { serviceUrl?: unknown },
    options?: { flaw?: InboundTokenFlaw; claims?: Json },
  ): Promise<string>;
  /** POSTs `activity` to the bot with `Authorization: Bearer <signInbound(activity)>` (or `token`; null: no header). */
  send(
    botUrl: string,
    activity: InboundActivity | Json,
    options?: { token?: string | null; validate?: boolean; timeoutMs?: number },
  ): Promise<SendResult>;

  message(text: string, options?: MessageOptions): InboundActivity;
  /** task/fetch: `data` is the Action.Submit's data (`msteams: { type: 'task/fetch' }` added when missing). */
  taskFetch(data?: Json, options?: InboundOptions): InboundActivity;
  /** task/submit: value.data is the submitted action's data merged with the dialog's inputs. */
  taskSubmit(inputs: Json, options?: InboundOptions & { actionData?: Json }): InboundActivity;
  /** adaptiveCard/action (Action.Execute): value.action.data is `data` merged with `inputs`. */
  adaptiveCardAction(
    action: { verb: string; data?: Json; inputs?: Json; trigger?: 'manual' | 'automatic' },
    options?: InboundOptions,
  ): InboundActivity;
  /** Any other invoke. */
  invoke(name: string, value: unknown, options?: InboundOptions): InboundActivity;
  /** conversationUpdate: by default the bot added to the team (membersAdded [bot], eventType teamMemberAdded). */
  conversationUpdate(options?: {
    conversation?: TeamsConversationKind;
    membersAdded?: 'bot' | TeamsUser[];
    membersRemoved?: 'bot' | TeamsUser[];
    user?: TeamsUser | 'admin' | 'member';
  }): InboundActivity;
  /** installationUpdate add / remove, in the team (default), a group chat or a personal chat. */
  installationUpdate(action: 'add' | 'remove', options?: InboundOptions): InboundActivity;

  /** Every request received, in order (login, metadata and Connector). */
  readonly calls: TeamsFakeCall[];
  /** Every activity the bot sent (sends, replies, initial activities of new conversations, typing), in order. */
  readonly activities: TeamsSentActivity[];
  /** The messages of a conversation as they stand now (updated, not deleted, no typing), in order. */
  conversation(conversationId: string): TeamsSentActivity[];
  /** Access tokens the login issued. */
  readonly issuedTokens: IssuedToken[];
  /** Mismatches with the published specs (requests refused with 400, and fake bugs): must stay empty. */
  readonly specViolations: string[];

  /** The bot was removed from a conversation (a team: every channel of it; a personal chat: uninstalled). */
  removeBot(conversationId: string): void;
  /** Undoes removeBot. */
  restoreBot(conversationId: string): void;
  /** The next `count` Connector calls (or requests whose path contains `path`) answer `status` with Teams' error body. */
  failNext(count: number, status: InjectedStatus, path?: string): void;
  /** The next `count` Connector calls answer 429 Throttled with Retry-After: seconds. */
  rateLimitNext(count: number, retryAfterSeconds: number): void;
  /** Moves the connector-side clock forward (rate windows, token expiry). */
  advanceTime(ms: number): void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Wiring helpers.

/**
 * The credentials factory a bot needs to get tokens from the fake: botframework-connector's
 * MsalServiceClientCredentialsFactory over an MSAL ConfidentialClientApplication whose authority
 * is the fake's login and which knows it (`knownAuthorities`), so MSAL skips the instance
 * discovery it would otherwise ask login.microsoftonline.com for.
 * Pass it as the second argument of `new TeamsAdapter(botConfig, factory)` /
 * `new ConfigurationBotFrameworkAuthentication(botConfig, factory)`.
 */
export function createCredentialsFactory(
  fake: Pick<TeamsFake, 'appId' | 'appPassword' | 'loginUrl' | 'knownAuthorities'>,
  overrides: { clientSecret?: string } = {},
): MsalServiceClientCredentialsFactory {
  const client = new msal.ConfidentialClientApplication({
    auth: {
      clientId: fake.appId,
      clientSecret: overrides.clientSecret ?? fake.appPassword,
      authority: fake.loginUrl,
      knownAuthorities: [...fake.knownAuthorities],
    },
  });
  return new MsalServiceClientCredentialsFactory(fake.appId, client);
}

/**
 * @azure/msal-node is a dual package: `import` gives its ESM build, whose class types do not match
 * the CommonJS build botframework-connector requires (and types its parameters with). Loading the
 * CommonJS build gives botbuilder the very class it expects.
 */
const msal = createRequire(import.meta.url)('@azure/msal-node') as typeof import('@azure/msal-node', { with: {
  'resolution-mode': 'require',
}});

// ---------------------------------------------------------------------------------------------
// The server.

const BOTFRAMEWORK_TENANT = 'botframework.com';
/** The botframework.com tenant's id, as Entra puts it in `tid` and `iss`. */
const BOTFRAMEWORK_TENANT_ID = 'd6d49420-f39b-4df7-a1dc-d59a935871db';
const REAL_CHANNEL_ISSUER = 'https://api.botframework.com';
const MAX_BODY_BYTES = 4 * 1024 * 1024;
const SERVICE_PATH = '/teams/';

const TRANSIENT: Record<InjectedStatus, { code: string; message: string }> = {
  412: { code: 'PreconditionFailed', message: 'Precondition failed, please try again.' },
  500: { code: 'InternalServerError', message: 'An internal server error occurred.' },
  502: { code: 'ServiceError', message: 'Bad gateway: the service is temporarily unavailable.' },
  503: { code: 'ServiceUnavailable', message: 'Service unavailable.' },
  504: { code: 'GatewayTimeout', message: 'Gateway timeout.' },
};

class ConnectorError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

interface Conversation {
  readonly id: string;
  readonly kind: TeamsConversationKind;
  readonly members: TeamsUser[];
  readonly teamId?: string;
}

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
/** Teams' ids of invokes and conversation updates ("f:" and digits). */
const invokeId = (): string => `f:${randomInt(1e14, 2e14)}${randomInt(1e5, 1e6)}`;
const baseConversationId = (id: string): string => id.split(';messageid=')[0] ?? id;
const threadOf = (id: string): string | undefined => id.split(';messageid=')[1];

function teamsUserId(): string {
  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  let id = '29:1';
  for (let i = 0; i < 60; i++) id += ALPHABET[randomInt(ALPHABET.length)];
  return id;
}

export async function startTeamsFake(options: TeamsFakeOptions = {}): Promise<TeamsFake> {
  const [cert, key] = await Promise.all([serverCertificate(), signingKeys()]);
  if (options.trustCertificate ?? true) trustCertificate(cert.caPem);

  const baseNow = options.now ?? Date.now;
  let offset = 0;
  const now = (): number => baseNow() + offset;

  const appId = options.appId ?? randomUUID();
  const appPassword = options.appPassword ?? randomBytes(24).toString('base64url');
  const appType = options.appType ?? 'MultiTenant';
  const tenantId = options.tenantId ?? randomUUID();
  const botName = options.botName ?? 'CloudPi';
  const botId = `28:${appId}`;
  const oauthScope = (options.oauthScope ?? 'https://api.botframework.com').replace(/\/$/, '');
  const perSecond = options.limits?.perSecond ?? 7;
  const per30Seconds = options.limits?.per30Seconds ?? 60;
  const maxMessageBytes = options.maxMessageBytes ?? 100 * 1024;
  const tokenLifetime = options.tokenLifetimeSeconds ?? 3599;

  const calls: TeamsFakeCall[] = [];
  const activities: TeamsSentActivity[] = [];
  const issuedTokens: IssuedToken[] = [];
  const tokens = new Map<string, IssuedToken>();
  const specViolations: string[] = [];
  const removed = new Set<string>();
  const conversations = new Map<string, Conversation>();
  const personal = new Map<string, string>(); // user id -> personal conversation id
  const failures: { count: number; status: InjectedStatus; path?: string }[] = [];
  let rateLimit: { count: number; seconds: number } | undefined;
  const windows = new Map<string, number[]>(); // base conversation id -> times of counted operations
  const sentById = new Map<string, TeamsSentActivity>();
  let lastMessageId = 0;

  const nextMessageId = (): string => {
    lastMessageId = Math.max(Date.now(), lastMessageId + 1);
    return String(lastMessageId);
  };

  const users: TeamsUser[] = [];
  const teamId = `19:${hex(16)}@thread.tacv2`;
  const team: TeamsTeam = {
    id: teamId,
    name: 'CloudOps',
    aadGroupId: randomUUID(),
    channels: { general: { id: teamId }, alerts: { id: `19:${hex(16)}@thread.tacv2`, name: 'Alerts' } },
  };
  const groupChatId = `19:${hex(16)}@thread.v2`;
  const teamMembers: TeamsUser[] = [];
  const groupMembers: TeamsUser[] = [];
  conversations.set(team.id, { id: team.id, kind: 'channel', members: teamMembers, teamId: team.id });
  conversations.set(team.channels.alerts.id, {
    id: team.channels.alerts.id,
    kind: 'channel',
    members: teamMembers,
    teamId: team.id,
  });
  conversations.set(groupChatId, { id: groupChatId, kind: 'groupChat', members: groupMembers });

  const addUser = (name: string): TeamsUser => {
    const [givenName = name, ...rest] = name.split(' ');
    const login = name.toLowerCase().replace(/[^a-z]+/g, '.');
    const user: TeamsUser = {
      id: teamsUserId(),
      name,
      aadObjectId: randomUUID(),
      givenName,
      surname: rest.join(' '),
      email: `${login}@cloudpi.example`,
      userPrincipalName: `${login}@cloudpi.example`,
      tenantId,
      userRole: 'user',
    };
    users.push(user);
    teamMembers.push(user);
    groupMembers.push(user);
    const personalId = `a:1${randomBytes(48).toString('base64url')}`;
    personal.set(user.id, personalId);
    conversations.set(personalId, { id: personalId, kind: 'personal', members: [user] });
    return user;
  };
  const admin = addUser('Ada Admin');
  const member = addUser('Max Member');

  const userOf = (u: TeamsUser | 'admin' | 'member' | undefined): TeamsUser =>
    u === undefined || u === 'admin' ? admin : u === 'member' ? member : u;
  const personalConversationId = (u?: TeamsUser | 'admin' | 'member'): string => {
    const id = personal.get(userOf(u).id);
    if (!id) throw new Error(`no personal conversation for ${userOf(u).name}`);
    return id;
  };

  const server = createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent)
        sendJson(res, 500, { error: { code: 'InternalServerError', message: String(error) } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const serviceUrl = `${origin}${SERVICE_PATH}`;
  const issuer = origin;
  const homeTenant = appType === 'SingleTenant' ? tenantId : BOTFRAMEWORK_TENANT;
  const loginUrl = `${origin}/${homeTenant}`;
  const openIdMetadataUrl = `${origin}/v1/.well-known/openidconfiguration`;

  function sendJson(
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, {
      ...(body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }),
      'content-length': String(Buffer.byteLength(text)),
      ...headers,
    });
    res.end(text);
  }

  const takeFailure = (pathname: string, connector: boolean): InjectedStatus | undefined => {
    const index = failures.findIndex((f) => (f.path === undefined ? connector : pathname.includes(f.path)));
    const failure = failures[index];
    if (!failure) return undefined;
    failure.count -= 1;
    if (failure.count <= 0) failures.splice(index, 1);
    return failure.status;
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', origin);
    const method = req.method ?? 'GET';
    const raw = await readBody(req, MAX_BODY_BYTES);
    const call: TeamsFakeCall = {
      method,
      path: url.pathname + url.search,
      operation: '',
      body: undefined,
      at: now(),
      status: 0,
    };
    calls.push(call);
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      call.status = status;
      call.response = body;
      sendJson(res, status, body, headers);
    };
    if (raw === undefined) {
      (call as { operation: string }).operation = 'too large';
      answer(413, { error: { code: 'MessageSizeTooBig', message: 'Request entity too large.' } });
      return;
    }
    const pathname = url.pathname;

    if (pathname.startsWith(SERVICE_PATH)) {
      await connector(req, url, method, raw, call, answer);
      return;
    }

    const injected = takeFailure(pathname, false);
    if (injected) {
      (call as { operation: string }).operation = 'injected failure';
      answer(injected, { error: TRANSIENT[injected] });
      return;
    }

    // Bot Framework channel -> bot: OpenID metadata and keys (as login.botframework.com/v1 serves them).
    if (method === 'GET' && pathname === '/v1/.well-known/openidconfiguration') {
      (call as { operation: string }).operation = 'channel openid-configuration';
      answer(200, {
        issuer,
        authorization_endpoint: 'https://invalid.botframework.com',
        jwks_uri: `${origin}/v1/.well-known/keys`,
        id_token_signing_alg_values_supported: ['RS256'],
        token_endpoint_auth_methods_supported: ['private_key_jwt'],
      });
      return;
    }
    if (method === 'GET' && pathname === '/v1/.well-known/keys') {
      (call as { operation: string }).operation = 'channel keys';
      answer(200, {
        keys: [
          { ...key.channel.jwk, endorsements: ['msteams'] },
          { ...key.otherChannel.jwk, endorsements: ['webchat'] },
        ],
      });
      return;
    }

    // Entra ID (what MSAL asks for).
    if (method === 'GET' && pathname === '/common/discovery/instance') {
      (call as { operation: string }).operation = 'instance discovery';
      const host = new URL(origin).host;
      answer(200, {
        tenant_discovery_endpoint: `${origin}/{tenant}/v2.0/.well-known/openid-configuration`,
        'api-version': '1.1',
        metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
      });
      return;
    }
    const login =
      /^\/([^/]+)\/(v2\.0\/\.well-known\/openid-configuration|discovery\/v2\.0\/keys|oauth2\/v2\.0\/token)$/.exec(
        pathname,
      );
    if (login) {
      const tenant = decodeURIComponent(login[1] ?? '');
      const what = login[2] ?? '';
      const known = [BOTFRAMEWORK_TENANT, BOTFRAMEWORK_TENANT_ID, tenantId, 'common', 'organizations'];
      if (!known.includes(tenant.toLowerCase())) {
        (call as { operation: string }).operation = 'login unknown tenant';
        const e = entraError(
          400,
          'invalid_tenant',
          90002,
          `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`,
        );
        answer(e.status, e.body);
        return;
      }
      if (what.endsWith('openid-configuration') && method === 'GET') {
        (call as { operation: string }).operation = 'openid-configuration';
        answer(200, loginMetadata(tenant));
        return;
      }
      if (what.endsWith('keys') && method === 'GET') {
        (call as { operation: string }).operation = 'login keys';
        answer(200, { keys: [key.login.jwk] });
        return;
      }
      if (what.endsWith('token') && method === 'POST') {
        (call as { operation: string }).operation = 'token';
        const form = new URLSearchParams(raw.toString('utf8'));
        (call as { body: unknown }).body = Object.fromEntries(
          [...form.entries()].map(([k, v]) => [k, k === 'client_secret' ? '***' : v]),
        );
        const result = await issueToken(tenant, form);
        answer(result.status, result.body);
        return;
      }
    }
    (call as { operation: string }).operation = 'unknown';
    answer(404, {
      error: { code: 'NotFound', message: `${method} ${pathname} is not served by the Teams fake.` },
    });
  }

  // --- Login ------------------------------------------------------------------------------------

  function loginMetadata(tenant: string): Json {
    const base = `${origin}/${tenant}`;
    const tid = tenant === BOTFRAMEWORK_TENANT ? BOTFRAMEWORK_TENANT_ID : tenant;
    return {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: `${origin}/${tid}/v2.0`,
      request_uri_parameter_supported: false,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      tenant_region_scope: 'WW',
    };
  }

  function entraError(
    status: number,
    error: string,
    code: number,
    description: string,
  ): { status: number; body: Json } {
    const traceId = randomUUID();
    const correlationId = randomUUID();
    const timestamp = `${new Date(now()).toISOString().slice(0, 19).replace('T', ' ')}Z`;
    return {
      status,
      body: {
        error,
        error_description: `AADSTS${code}: ${description} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
        error_codes: [code],
        timestamp,
        trace_id: traceId,
        correlation_id: correlationId,
        error_uri: `${origin}/error?code=${code}`,
      },
    };
  }

  async function issueToken(tenant: string, form: URLSearchParams): Promise<{ status: number; body: Json }> {
    const grant = form.get('grant_type');
    const clientId = form.get('client_id');
    const secret = form.get('client_secret');
    const scope = form.get('scope') ?? '';
    if (!grant)
      return entraError(
        400,
        'invalid_request',
        900144,
        "The request body must contain the following parameter: 'grant_type'.",
      );
    if (grant !== 'client_credentials')
      return entraError(
        400,
        'unsupported_grant_type',
        70003,
        `The app requested an unsupported grant type '${grant}'.`,
      );
    if (!clientId)
      return entraError(
        400,
        'invalid_request',
        900144,
        "The request body must contain the following parameter: 'client_id'.",
      );
    const tenantOfApp = tenant === BOTFRAMEWORK_TENANT_ID ? BOTFRAMEWORK_TENANT : tenant;
    const appTenants = appType === 'SingleTenant' ? [tenantId] : [BOTFRAMEWORK_TENANT, tenantId];
    if (clientId !== appId || !appTenants.includes(tenantOfApp))
      return entraError(
        400,
        'unauthorized_client',
        700016,
        `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
      );
    if (!secret && !form.get('client_assertion'))
      return entraError(
        401,
        'invalid_client',
        7000216,
        "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
      );
    if (secret !== appPassword)
      return entraError(
        401,
        'invalid_client',
        7000215,
        `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${appId}'.`,
      );
    const scopes = scope.split(' ').filter(Boolean);
    const resource = scopes[0]?.replace(/\/\.default$/, '');
    if (scopes.length !== 1 || !scopes[0]?.endsWith('/.default'))
      return entraError(
        400,
        'invalid_scope',
        1002012,
        `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
      );
    if (resource !== oauthScope)
      return entraError(
        400,
        'invalid_resource',
        500011,
        `The resource principal named ${resource} was not found in the tenant named ${tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.`,
      );
    const issuedAt = Math.floor(now() / 1000);
    const tid = tenantOfApp === BOTFRAMEWORK_TENANT ? BOTFRAMEWORK_TENANT_ID : tenantOfApp;
    const token = await new SignJWT({
      appid: appId,
      appidacr: '1',
      tid,
      ver: '1.0',
      idp: `https://sts.windows.net/${tid}/`,
      oid: randomUUID(),
      sub: appId,
    })
      .setProtectedHeader({ alg: 'RS256', kid: key.login.kid, typ: 'JWT' })
      .setIssuer(`https://sts.windows.net/${tid}/`)
      .setAudience(resource)
      .setIssuedAt(issuedAt)
      .setNotBefore(issuedAt)
      .setExpirationTime(issuedAt + tokenLifetime)
      .setJti(randomUUID())
      .sign(key.login.privateKey);
    const record: IssuedToken = {
      token,
      appId,
      tenant: tenantOfApp,
      scope: scopes[0] ?? '',
      at: now(),
      expiresAt: now() + tokenLifetime * 1000,
    };
    issuedTokens.push(record);
    tokens.set(token, record);
    return {
      status: 200,
      body: {
        token_type: 'Bearer',
        expires_in: tokenLifetime,
        ext_expires_in: tokenLifetime,
        access_token: token,
      },
    };
  }

  // --- Connector ----------------------------------------------------------------------------------

  interface Route {
    readonly operation: string;
    /** The operation's path in the Connector API swagger (request and answer schemas). */
    readonly specPath?: string;
    readonly requestRef?: string;
    /** A schema the answer must also match (Teams' extension types, TEAMS_SCHEMAS). */
    readonly answerRef?: string;
    readonly conversationId?: string;
    readonly run: () => { status: number; body?: unknown };
  }

  async function connector(
    req: IncomingMessage,
    url: URL,
    method: string,
    raw: Buffer,
    call: TeamsFakeCall,
    answer: (status: number, body: unknown, headers?: Record<string, string>) => void,
  ): Promise<void> {
    const mutable = call as { operation: string; conversationId?: string; body: unknown };
    const relative = url.pathname.slice(SERVICE_PATH.length - 1); // keeps the leading '/'
    const segments = relative.split('/').slice(1).map(decodeURIComponent);
    let body: unknown;
    let malformed = false;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        malformed = true;
        body = raw.toString('utf8');
      }
    }
    mutable.body = body;

    const fail = (error: ConnectorError, ref = '#/definitions/ErrorResponse'): void => {
      const errorBody = { error: { code: error.code, message: error.message } };
      checkAnswer(mutable.operation || `${method} ${relative}`, error.status, errorBody, ref);
      if (error.headers['retry-after']) call.retryAfter = Number(error.headers['retry-after']);
      answer(error.status, errorBody, error.headers);
    };

    // Authorization first, as the connector does.
    const auth = req.headers.authorization ?? '';
    const token = /^Bearer (.+)$/.exec(auth)?.[1];
    const issued = token ? tokens.get(token) : undefined;
    if (!issued || issued.expiresAt <= now()) {
      mutable.operation = `${method} ${relative} (unauthorized)`;
      answer(401, { message: 'Authorization has been denied for this request.' });
      return;
    }

    let route: Route;
    try {
      route = routeOf(method, segments, body, url.searchParams);
    } catch (error) {
      if (error instanceof ConnectorError) {
        mutable.operation = `${method} ${relative}`;
        fail(error);
        return;
      }
      throw error;
    }
    mutable.operation = route.operation;
    if (route.conversationId) mutable.conversationId = route.conversationId;

    const injected = takeFailure(url.pathname, true);
    if (injected) {
      fail(new ConnectorError(injected, TRANSIENT[injected].code, TRANSIENT[injected].message));
      return;
    }
    if (rateLimit) {
      const seconds = rateLimit.seconds;
      rateLimit.count -= 1;
      if (rateLimit.count <= 0) rateLimit = undefined;
      fail(new ConnectorError(429, 'Throttled', 'Too many requests.', { 'retry-after': String(seconds) }));
      return;
    }
    if (malformed) {
      fail(new ConnectorError(400, 'BadSyntax', 'The request body is not valid JSON.'));
      return;
    }
    if (route.requestRef) {
      const problems = checkConnectorSchema(body ?? {}, route.requestRef);
      if (body === undefined) problems.push('$: a body is required');
      if (problems.length > 0) {
        specViolations.push(...problems.map((p) => `request ${route.operation}: ${p}`));
        fail(new ConnectorError(400, 'BadArgument', problems.join('; ')));
        return;
      }
    }
    try {
      const result = route.run();
      if (result.body !== undefined) {
        const specRef = route.specPath ? responseRef(route.specPath, method, result.status) : undefined;
        if (specRef) checkAnswer(route.operation, result.status, result.body, specRef);
        if (route.answerRef) checkAnswer(route.operation, result.status, result.body, route.answerRef);
      }
      answer(result.status, result.body);
    } catch (error) {
      if (error instanceof ConnectorError) {
        fail(error);
        return;
      }
      throw error;
    }
  }

  function responseRef(specPath: string, method: string, status: number): string | undefined {
    const op = spec().paths[specPath]?.[method.toLowerCase()];
    const schema = op?.responses[String(status)]?.schema;
    if (!op) return undefined;
    if (!schema) return undefined;
    if (schema.$ref) return schema.$ref;
    // Inline array of refs (members).
    return `inline:${specPath}:${method.toLowerCase()}:${status}`;
  }

  function checkAnswer(operation: string, status: number, body: unknown, ref: string): void {
    let problems: string[];
    if (ref.startsWith('inline:')) {
      const [, specPath = '', method = '', code = ''] = ref.split(':');
      const schema = spec().paths[specPath]?.[method]?.responses[code]?.schema;
      problems = schema ? checkSchema(body, schema, dialect) : [];
    } else {
      problems = checkConnectorSchema(body, ref);
    }
    specViolations.push(...problems.map((p) => `response ${operation} ${status}: ${p}`));
  }

  /** The conversation a path names, with Teams' answers for unknown ones and for removed bots. */
  function conversationFor(id: string): Conversation {
    const conversation = conversations.get(baseConversationId(id));
    if (!conversation) throw new ConnectorError(404, 'ConversationNotFound', 'Conversation not found.');
    if (removed.has(conversation.id) || (conversation.teamId && removed.has(conversation.teamId)))
      throw new ConnectorError(
        403,
        'BotNotInConversationRoster',
        'The bot is not part of the conversation roster.',
      );
    return conversation;
  }

  /** Counts a message operation against Teams' per bot per conversation limits. */
  function countOperation(conversationId: string): void {
    const t = now();
    const times = (windows.get(conversationId) ?? []).filter((at) => at > t - 30_000);
    windows.set(conversationId, times);
    const lastSecond = times.filter((at) => at > t - 1_000);
    let waitMs = 0;
    if (lastSecond.length >= perSecond) waitMs = (lastSecond[lastSecond.length - perSecond] ?? t) + 1_000 - t;
    if (times.length >= per30Seconds)
      waitMs = Math.max(waitMs, (times[times.length - per30Seconds] ?? t) + 30_000 - t);
    if (waitMs > 0)
      throw new ConnectorError(429, 'Throttled', 'Too many requests.', {
        'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))),
      });
    times.push(t);
  }

  /** Teams' checks of an activity the bot sends, beyond the swagger. */
  function checkOutbound(activity: Json, forUpdate: boolean): void {
    if (typeof activity.type !== 'string')
      throw new ConnectorError(400, 'BadArgument', 'Activity type is required.');
    if (forUpdate && activity.type !== 'message')
      throw new ConnectorError(400, 'BadArgument', 'Only message activities can be updated.');
    const bytes = JSON.stringify(activity).length * 2;
    if (bytes > maxMessageBytes)
      throw new ConnectorError(
        413,
        'MessageSizeTooBig',
        `Message size ${bytes} exceeds ${maxMessageBytes} bytes.`,
      );
    for (const [i, attachment] of (Array.isArray(activity.attachments)
      ? activity.attachments
      : []
    ).entries()) {
      if (!isObject(attachment) || typeof attachment.contentType !== 'string')
        throw new ConnectorError(400, 'BadArgument', `attachments[${i}].contentType is required.`);
      if (attachment.contentType === 'application/vnd.microsoft.card.adaptive') {
        const card = attachment.content;
        if (!isObject(card) || card.type !== 'AdaptiveCard' || typeof card.version !== 'string')
          throw new ConnectorError(
            400,
            'BadArgument',
            `attachments[${i}].content must be an Adaptive Card object with type "AdaptiveCard" and a version.`,
          );
      }
    }
  }

  function record(
    conversation: Conversation,
    conversationId: string,
    activity: Json,
    operation: TeamsSentActivity['operation'],
    replyToId?: string,
  ): TeamsSentActivity {
    const id = nextMessageId();
    let threadId: string | undefined;
    if (conversation.kind === 'channel')
      threadId =
        threadOf(conversationId) ?? (replyToId ? (sentById.get(replyToId)?.threadId ?? replyToId) : id);
    const sent: TeamsSentActivity = {
      id,
      conversationId: conversation.id,
      ...(threadId ? { threadId } : {}),
      ...(replyToId ? { replyToId } : {}),
      operation,
      activity: structuredClone(activity),
      version: 1,
      deleted: false,
      at: now(),
    };
    activities.push(sent);
    sentById.set(id, sent);
    return sent;
  }

  function sentIn(conversation: Conversation, activityId: string): TeamsSentActivity {
    const sent = sentById.get(activityId);
    if (!sent || sent.deleted || sent.conversationId !== conversation.id)
      throw new ConnectorError(
        404,
        'ActivityNotFoundInConversation',
        'The activity was not found in the conversation.',
      );
    return sent;
  }

  const toAccount = (u: TeamsUser): Json => ({ ...u });

  function routeOf(method: string, segments: string[], body: unknown, query: URLSearchParams): Route {
    const [v3, collection, id, sub, subId, ...rest] = segments;
    if (v3 !== 'v3' || rest.length > 0) throw new ConnectorError(404, 'NotFound', 'No such resource.');
    const activityBody = (): Json => (isObject(body) ? body : {});

    if (collection === 'conversations' && id === undefined) {
      if (method === 'GET')
        throw new ConnectorError(
          405,
          'MethodNotAllowed',
          "The requested resource does not support http method 'GET'.",
        );
      if (method !== 'POST') throw new ConnectorError(405, 'MethodNotAllowed', `${method} is not supported.`);
      return {
        operation: 'POST /v3/conversations',
        specPath: '/v3/conversations',
        requestRef: '#/definitions/ConversationParameters',
        run: () => createConversation(activityBody()),
      };
    }

    if (collection === 'conversations' && id !== undefined) {
      const conversationId = baseConversationId(id);
      if (sub === 'activities' && subId === undefined && method === 'POST')
        return {
          operation: 'POST /v3/conversations/{conversationId}/activities',
          specPath: '/v3/conversations/{conversationId}/activities',
          requestRef: '#/definitions/Activity',
          conversationId,
          run: () => {
            const conversation = conversationFor(id);
            const activity = activityBody();
            checkOutbound(activity, false);
            countOperation(conversation.id);
            const sent = record(conversation, id, activity, 'send');
            return { status: 201, body: { id: sent.id } };
          },
        };
      if (sub === 'activities' && subId !== undefined) {
        const specPath = '/v3/conversations/{conversationId}/activities/{activityId}';
        if (method === 'POST')
          return {
            operation: `POST ${specPath}`,
            specPath,
            requestRef: '#/definitions/Activity',
            conversationId,
            run: () => {
              const conversation = conversationFor(id);
              const activity = activityBody();
              checkOutbound(activity, false);
              countOperation(conversation.id);
              const sent = record(conversation, id, activity, 'reply', subId);
              return { status: 201, body: { id: sent.id } };
            },
          };
        if (method === 'PUT')
          return {
            operation: `PUT ${specPath}`,
            specPath,
            requestRef: '#/definitions/Activity',
            conversationId,
            run: () => {
              const conversation = conversationFor(id);
              const sent = sentIn(conversation, subId);
              const activity = activityBody();
              checkOutbound(activity, true);
              countOperation(conversation.id);
              sent.activity = structuredClone(activity);
              sent.version += 1;
              sent.updatedAt = now();
              return { status: 200, body: { id: sent.id } };
            },
          };
        if (method === 'DELETE')
          return {
            operation: `DELETE ${specPath}`,
            specPath,
            conversationId,
            run: () => {
              const conversation = conversationFor(id);
              sentIn(conversation, subId).deleted = true;
              return { status: 200 };
            },
          };
      }
      if (sub === 'members' && subId === undefined && method === 'GET')
        return {
          operation: 'GET /v3/conversations/{conversationId}/members',
          specPath: '/v3/conversations/{conversationId}/members',
          conversationId,
          run: () => ({ status: 200, body: conversationFor(id).members.map(toAccount) }),
        };
      if (sub === 'members' && subId !== undefined && method === 'GET')
        return {
          operation: 'GET /v3/conversations/{conversationId}/members/{memberId}',
          answerRef: '#/teams/TeamsChannelAccount',
          conversationId,
          run: () => {
            const found = conversationFor(id).members.find((m) => m.id === subId || m.aadObjectId === subId);
            if (!found)
              throw new ConnectorError(
                404,
                'MemberNotFoundInConversation',
                'The member was not found in the conversation.',
              );
            return { status: 200, body: toAccount(found) };
          },
        };
      if (sub === 'pagedmembers' && subId === undefined && method === 'GET')
        return {
          operation: 'GET /v3/conversations/{conversationId}/pagedmembers',
          specPath: '/v3/conversations/{conversationId}/pagedmembers',
          answerRef: '#/teams/TeamsPagedMembersResult',
          conversationId,
          run: () => pagedMembers(conversationFor(id), query),
        };
    }

    if (
      collection === 'teams' &&
      id !== undefined &&
      method === 'GET' &&
      (sub === undefined || sub === 'conversations') &&
      subId === undefined
    ) {
      const teamRoute = sub === undefined ? 'GET /v3/teams/{teamId}' : 'GET /v3/teams/{teamId}/conversations';
      return {
        operation: teamRoute,
        answerRef: sub === undefined ? '#/teams/TeamDetails' : '#/teams/ConversationList',
        conversationId: id,
        run: () => {
          if (id !== team.id) throw new ConnectorError(404, 'NotFound', 'Team not found.');
          if (removed.has(team.id))
            throw new ConnectorError(
              403,
              'BotNotInConversationRoster',
              'The bot is not part of the conversation roster.',
            );
          if (sub === undefined)
            return {
              status: 200,
              body: {
                id: team.id,
                name: team.name,
                aadGroupId: team.aadGroupId,
                channelCount: 2,
                memberCount: teamMembers.length,
                type: 'standard',
              },
            };
          return {
            status: 200,
            body: { conversations: [{ id: team.channels.general.id }, { ...team.channels.alerts }] },
          };
        },
      };
    }
    throw new ConnectorError(404, 'NotFound', 'No such resource.');
  }

  const pageTokens = new Map<string, number>();
  function pagedMembers(conversation: Conversation, query: URLSearchParams): { status: number; body: Json } {
    const pageSize = Math.min(500, Math.max(1, Number(query.get('pageSize') ?? 200) || 200));
    const continuation = query.get('continuationToken');
    let start = 0;
    if (continuation) {
      const at = pageTokens.get(continuation);
      if (at === undefined) throw new ConnectorError(400, 'BadArgument', 'Invalid continuation token.');
      start = at;
    }
    const members = conversation.members.slice(start, start + pageSize).map(toAccount);
    const body: Json = { members };
    if (start + pageSize < conversation.members.length) {
      const next = randomBytes(12).toString('base64url');
      pageTokens.set(next, start + pageSize);
      body.continuationToken = next;
    }
    return { status: 200, body };
  }

  function createConversation(parameters: Json): { status: number; body: Json } {
    const channelData = isObject(parameters.channelData) ? parameters.channelData : {};
    const channelId = isObject(channelData.channel) ? channelData.channel.id : undefined;
    const tenant =
      (isObject(channelData.tenant) ? channelData.tenant.id : undefined) ?? parameters.tenantId ?? undefined;
    if (tenant !== undefined && tenant !== tenantId)
      throw new ConnectorError(403, 'Forbidden', 'The bot is not installed in the given tenant.');
    const initial = isObject(parameters.activity) ? parameters.activity : undefined;
    if (typeof channelId === 'string') {
      // A new thread in a channel.
      const conversation = conversationFor(channelId);
      if (conversation.kind !== 'channel') throw new ConnectorError(400, 'BadArgument', 'Not a channel.');
      if (!initial)
        throw new ConnectorError(400, 'BadArgument', 'An activity is required to start a channel thread.');
      checkOutbound(initial, false);
      countOperation(conversation.id);
      const sent = record(conversation, channelId, initial, 'createConversation');
      return { status: 201, body: { id: `${conversation.id};messageid=${sent.id}`, activityId: sent.id } };
    }
    const members = Array.isArray(parameters.members) ? parameters.members : [];
    if (parameters.isGroup === true || members.length !== 1)
      throw new ConnectorError(
        400,
        'BadArgument',
        'Bots can only create one-on-one conversations or channel threads.',
      );
    if (tenant === undefined) throw new ConnectorError(400, 'BadArgument', 'A tenant id is required.');
    const memberId = isObject(members[0]) ? members[0].id : undefined;
    const user = users.find((u) => u.id === memberId || u.aadObjectId === memberId);
    if (!user) throw new ConnectorError(400, 'BadArgument', 'Failed to decrypt pairwise id');
    const id = personalConversationId(user);
    const conversation = conversationFor(id);
    if (!initial) return { status: 201, body: { id } };
    checkOutbound(initial, false);
    countOperation(conversation.id);
    const sent = record(conversation, id, initial, 'createConversation');
    return { status: 201, body: { id, activityId: sent.id } };
  }

  // --- Inbound ------------------------------------------------------------------------------------

  const botAccount = (): Json => ({ id: botId, name: botName });
  const fromAccount = (u: TeamsUser): Json => ({ id: u.id, name: u.name, aadObjectId: u.aadObjectId });
  const clientInfo = (locale: string): Json => ({
    locale,
    country: 'US',
    platform: 'Web',
    timezone: 'UTC',
    type: 'clientInfo',
  });

  /** conversation + channelData for where an activity happens. */
  function where(options: InboundOptions, messageId: string): { conversation: Json; channelData: Json } {
    const kind = options.conversation ?? 'personal';
    const tenant = { id: tenantId };
    if (kind === 'personal')
      return {
        conversation: { conversationType: 'personal', tenantId, id: personalConversationId(options.user) },
        channelData: { tenant },
      };
    if (kind === 'groupChat')
      return {
        conversation: { isGroup: true, conversationType: 'groupChat', tenantId, id: groupChatId },
        channelData: { tenant },
      };
    const channel = options.channel === 'alerts' ? team.channels.alerts : team.channels.general;
    return {
      conversation: {
        isGroup: true,
        conversationType: 'channel',
        tenantId,
        id: `${channel.id};messageid=${options.threadId ?? messageId}`,
      },
      channelData: {
        teamsChannelId: channel.id,
        teamsTeamId: team.id,
        channel: { id: channel.id },
        team: { id: team.id },
        tenant,
      },
    };
  }

  function validated(activity: InboundActivity): InboundActivity {
    const problems = validateActivity(activity);
    if (problems.length > 0)
      throw new Error(
        `the ${activity.type} activity is not a valid Bot Framework activity:\n${problems.join('\n')}`,
      );
    return activity;
  }

  function inbound(type: string, options: InboundOptions, messageId = nextMessageId()): InboundActivity {
    const locale = options.locale ?? 'en-US';
    const { conversation, channelData } = where(options, messageId);
    const at = new Date();
    return {
      type,
      id: messageId,
      timestamp: at.toISOString(),
      localTimestamp: at.toISOString().replace('Z', '+00:00'),
      localTimezone: 'UTC',
      serviceUrl,
      channelId: 'msteams',
      from: fromAccount(userOf(options.user)),
      conversation,
      recipient: botAccount(),
      entities: [clientInfo(locale)],
      channelData,
      locale,
    };
  }

  const invokeBase = (name: string, value: unknown, options: InboundOptions): InboundActivity => {
    const activity = inbound('invoke', options, invokeId());
    activity.name = name;
    activity.value = value;
    if (options.replyToId) activity.replyToId = options.replyToId;
    activity.channelData = {
      ...activity.channelData,
      source: { name: options.replyToId ? 'message' : 'compose' },
    };
    return activity;
  };

  const fake: TeamsFake = {
    origin,
    caPem: cert.caPem,
    serviceUrl,
    openIdMetadataUrl,
    issuer,
    loginUrl,
    oauthScope,
    knownAuthorities: [origin],
    appId,
    appPassword,
    appType,
    tenantId,
    botId,
    botName,
    team,
    users: { admin, member },
    personalConversationId,
    groupChatId,
    addUser,

    botConfig() {
      return {
        MicrosoftAppId: appId,
        MicrosoftAppPassword: appPassword,
        MicrosoftAppType: appType,
        ...(appType === 'SingleTenant' ? { MicrosoftAppTenantId: tenantId } : {}),
        ToBotFromChannelOpenIdMetadataUrl: openIdMetadataUrl,
        ToBotFromChannelTokenIssuer: issuer,
        ToChannelFromBotLoginUrl: loginUrl,
        ToChannelFromBotOAuthScope: oauthScope,
      };
    },

    async signInbound(activity, signOptions = {}) {
      const flaw = signOptions.flaw;
      const seconds = Math.floor(Date.now() / 1000);
      const claims: Json = {};
      if (flaw !== 'missing-service-url')
        claims.serviceurl =
          flaw === 'wrong-service-url' ? 'https://smba.trafficmanager.net/amer/' : activity.serviceUrl;
      Object.assign(claims, signOptions.claims ?? {});
      const signer =
        flaw === 'wrong-key' ? key.rogue : flaw === 'unendorsed-key' ? key.otherChannel : key.channel;
      const kid = flaw === 'unknown-key' ? randomBytes(12).toString('base64url') : signer.kid;
      const [nbf, exp] =
        flaw === 'expired'
          ? [seconds - 7200, seconds - 3600]
          : flaw === 'not-yet-valid'
            ? [seconds + 3600, seconds + 7200]
            : [seconds - 60, seconds + 3600];
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
        .setIssuer(flaw === 'wrong-issuer' ? REAL_CHANNEL_ISSUER : issuer)
        .setAudience(flaw === 'wrong-audience' ? randomUUID() : appId)
        .setNotBefore(nbf)
        .setExpirationTime(exp)
        .sign(signer.privateKey);
    },

    async send(botUrl, activity, sendOptions = {}) {
      if (sendOptions.validate ?? true) validated(activity as InboundActivity);
      const target = new URL(botUrl);
      if (target.pathname === '/' || target.pathname === '') target.pathname = '/api/messages';
      const token = sendOptions.token === undefined ? await fake.signInbound(activity) : sendOptions.token;
      const started = performance.now();
      const response = await fetch(target, {
        method: 'POST',
        headers: {
          'content-type': 'application/json; charset=utf-8',
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        },
        body: JSON.stringify(activity),
        signal: AbortSignal.timeout(sendOptions.timeoutMs ?? 15_000),
      });
      const text = await response.text();
      let body: unknown;
      if (text) {
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
      }
      return { status: response.status, body, headers: response.headers, ms: performance.now() - started };
    },

    message(text, messageOptions = {}) {
      const kind = messageOptions.conversation ?? 'personal';
      const mention = messageOptions.mention ?? kind !== 'personal';
      const activity = inbound('message', messageOptions);
      const atBot = `<at>${botName}</at>`;
      activity.text = mention ? `${atBot} ${text}` : text;
      activity.textFormat = 'plain';
      if (mention)
        activity.entities = [
          { type: 'mention', text: atBot, mentioned: botAccount() },
          ...(activity.entities as Json[]),
        ];
      if (messageOptions.value) activity.value = messageOptions.value;
      if (messageOptions.replyToId) activity.replyToId = messageOptions.replyToId;
      return validated(activity);
    },

    taskFetch(data = {}, inboundOptions = {}) {
      const withType = isObject(data.msteams) ? data : { ...data, msteams: { type: 'task/fetch' } };
      return validated(
        invokeBase('task/fetch', { data: withType, context: { theme: 'default' } }, inboundOptions),
      );
    },

    taskSubmit(inputs, inboundOptions = {}) {
      const { actionData, ...rest } = inboundOptions;
      return validated(
        invokeBase(
          'task/submit',
          { data: { ...(actionData ?? {}), ...inputs }, context: { theme: 'default' } },
          rest,
        ),
      );
    },

    adaptiveCardAction(action, inboundOptions = {}) {
      return validated(
        invokeBase(
          'adaptiveCard/action',
          {
            action: {
              type: 'Action.Execute',
              id: action.verb,
              verb: action.verb,
              data: { ...(action.data ?? {}), ...(action.inputs ?? {}) },
            },
            trigger: action.trigger ?? 'manual',
          },
          inboundOptions,
        ),
      );
    },

    invoke(name, value, inboundOptions = {}) {
      return validated(invokeBase(name, value, inboundOptions));
    },

    conversationUpdate(updateOptions = {}) {
      const kind = updateOptions.conversation ?? 'channel';
      const activity = inbound(
        'conversationUpdate',
        { conversation: kind, user: updateOptions.user },
        invokeId(),
      );
      if (kind === 'channel') {
        activity.conversation = { ...activity.conversation, id: team.id };
        activity.channelData = {
          team: { aadGroupId: team.aadGroupId, name: team.name, id: team.id },
          tenant: { id: tenantId },
          settings: { selectedChannel: { id: team.id } },
        };
      }
      delete activity.entities;
      delete activity.localTimestamp;
      delete activity.localTimezone;
      delete activity.locale;
      const accounts = (v: 'bot' | TeamsUser[] | undefined): Json[] | undefined =>
        v === undefined ? undefined : v === 'bot' ? [botAccount()] : v.map(fromAccount);
      const added = accounts(
        updateOptions.membersAdded ?? (updateOptions.membersRemoved === undefined ? 'bot' : undefined),
      );
      const removedAccounts = accounts(updateOptions.membersRemoved);
      if (added) activity.membersAdded = added;
      if (removedAccounts) activity.membersRemoved = removedAccounts;
      if (kind === 'channel')
        activity.channelData = {
          ...activity.channelData,
          eventType: removedAccounts ? 'teamMemberRemoved' : 'teamMemberAdded',
        };
      return validated(activity);
    },

    installationUpdate(action, inboundOptions = {}) {
      const kind = inboundOptions.conversation ?? 'channel';
      const activity = inbound('installationUpdate', { ...inboundOptions, conversation: kind }, invokeId());
      activity.action = action;
      if (kind === 'channel') {
        activity.conversation = { ...activity.conversation, id: team.id };
        activity.channelData = {
          settings: { selectedChannel: { id: team.id } },
          channel: { id: team.id },
          team: { aadGroupId: team.aadGroupId, name: team.name, id: team.id },
          tenant: { id: tenantId },
          source: { name: 'message' },
        };
      } else {
        activity.channelData = { ...activity.channelData, source: { name: 'message' } };
      }
      return validated(activity);
    },

    calls,
    activities,
    conversation(conversationId) {
      const id = baseConversationId(conversationId);
      return activities.filter((a) => a.conversationId === id && !a.deleted && a.activity.type !== 'typing');
    },
    issuedTokens,
    specViolations,

    removeBot(conversationId) {
      removed.add(baseConversationId(conversationId));
    },
    restoreBot(conversationId) {
      removed.delete(baseConversationId(conversationId));
    },
    failNext(count, status, failPath) {
      failures.push({ count, status, ...(failPath === undefined ? {} : { path: failPath }) });
    },
    rateLimitNext(count, retryAfterSeconds) {
      rateLimit = { count, seconds: retryAfterSeconds };
    },
    advanceTime(ms) {
      offset += ms;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return fake;
}
