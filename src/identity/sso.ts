/**
 * Single sign-on: the tenant's OpenID Connect settings (the SSO form), and the sign-in that links
 * a chat user to their organization identity.
 *
 * Sign-in: `login` in chat makes a link, valid ten minutes and usable once, bound to that chat
 * user. /auth/sso/start (opening it) makes state, nonce and a PKCE verifier, binds them to the
 * browser with a cookie and redirects to the IdP; /auth/sso/callback checks the cookie and the
 * state, lets the adapter exchange the code and validate the ID token (issuer, audience, nonce,
 * expiry), enforces the allowed email domains, and links the identity (subject, email, groups,
 * the grant sealed). Members of the admin group get the `sso-admin` role.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SecretBox } from '../crypto/secret-box.js';
import { AppError, ErrorCode, isAppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { checkUrl, type UrlPolicy } from '../net/url-policy.js';
import type { Database } from '../storage/db.js';
import { and, eq, gt, isNull } from '../storage/orm.js';
import type { Repositories } from '../storage/repositories/index.js';
import type { IntegrationRow } from '../storage/repositories/integrations.js';
import { secretContext, ssoLogins } from '../storage/schema.js';
import type { CredentialField, ProviderValues } from '../tickets/port.js';
import { SSO_ADMIN_ROLE } from './admins.js';
import type { IdentityProvider, IdentityProviderFactory, LoginChecks, SsoIdentity } from './port.js';

export { SSO_ADMIN_ROLE };
/** How long a sign-in link can be opened. */
export const LOGIN_LINK_TTL_MS = 10 * 60_000;
/** The longest a sign-in counts for "require SSO for admin changes", whatever the ID token says. */
export const LOGIN_VALID_MAX_MS = 12 * 3600_000;
export const SSO_COOKIE = 'cloudpi_sso';
export const SSO_START_PATH = '/auth/sso/start';
export const SSO_CALLBACK_PATH = '/auth/sso/callback';

const YES_NO = [
  { value: 'true', label: 'Yes' },
  { value: 'false', label: 'No' },
] as const;

/** The SSO form, in CloudPi's words, as data both chat platforms render. */
export const SSO_FIELDS: readonly CredentialField[] = [
  {
    key: 'issuerUrl',
    label: 'Issuer URL',
    type: 'url',
    required: true,
    secret: false,
    placeholder: 'https://login.microsoftonline.com/<tenant id>/v2.0',
    hint: "Your identity provider's OpenID Connect issuer; CloudPi reads <issuer>/.well-known/openid-configuration.",
  },
  { key: 'clientId', label: 'Client ID', type: 'text', required: true, secret: false },
  {
    key: 'clientSecret',
    label: 'Client Secret',
    type: 'password',
    required: true,
    secret: true,
    hint: "From the app registration. Its redirect URI must be this service's /auth/sso/callback.",
  },
  {
    key: 'enabled',
    label: 'SSO Enabled',
    type: 'select',
    required: true,
    secret: false,
    options: YES_NO,
    defaultValue: 'true',
  },
  {
    key: 'adminGroupClaim',
    label: 'Admin group claim',
    type: 'text',
    required: false,
    secret: false,
    defaultValue: 'groups',
    hint: 'The ID token claim that lists the groups (Entra ID and Okta: groups).',
  },
  {
    key: 'adminGroupValue',
    label: 'Admin group',
    type: 'text',
    required: false,
    secret: false,
    hint: 'Members of this group (its name or object id, as the claim carries it) are CloudPi admins. Empty: none by group.',
  },
  {
    key: 'allowedDomains',
    label: 'Allowed email domains',
    type: 'text',
    required: false,
    secret: false,
    placeholder: 'example.com, example.org',
    hint: 'Only accounts with a verified email in these domains can link. Empty: any.',
  },
  {
    key: 'requireForAdmin',
    label: 'Require SSO for admin changes',
    type: 'select',
    required: true,
    secret: false,
    options: YES_NO,
    defaultValue: 'false',
    hint: 'Admins then need a sign-in of the last 12 hours (type login) before they change settings.',
  },
];

export interface SsoSettings {
  readonly issuerUrl: string;
  readonly clientId: string;
  readonly enabled: boolean;
  readonly adminGroupClaim: string;
  readonly adminGroupValue: string;
  readonly allowedDomains: readonly string[];
  readonly requireForAdmin: boolean;
}

export interface SsoStatus {
  readonly configured: boolean;
  /** Active (enabled), Connected (saved, disabled), Not Connected. */
  readonly badge: 'Active' | 'Connected' | 'Not Connected';
  readonly settings?: SsoSettings;
  /** Form values (no secret) for Edit. */
  readonly values: Readonly<Record<string, string>>;
  readonly hasSecret: boolean;
}

export type SsoSaveResult =
  | { readonly ok: true; readonly message: string; readonly detail: string }
  | { readonly ok: false; readonly message: string; readonly fieldErrors: Readonly<Record<string, string>> };

/** A sign-in failure shown as a page in the browser: status, heading, what to do. */
export class SsoPageError extends Error {
  readonly status: number;
  readonly title: string;

  constructor(status: number, title: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SsoPageError';
    this.status = status;
    this.title = title;
  }
}

export interface LinkedNotice {
  readonly tenantId: string;
  readonly platform: 'slack' | 'teams';
  readonly chatUserId: string;
  readonly replyTo: Readonly<Record<string, unknown>>;
  readonly email?: string;
  readonly admin: boolean;
}

export interface SsoServiceOptions {
  readonly db: Database;
  readonly repositories: Repositories;
  readonly box: SecretBox;
  readonly factory: IdentityProviderFactory;
  readonly urlPolicy: UrlPolicy;
  /** Where browsers reach this service (CLOUDPI_PUBLIC_URL). */
  readonly publicUrl: () => string;
  readonly logger: Logger;
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest('hex');

function yes(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  return value === 'true';
}

export function parseDomains(value: string | undefined): string[] {
  return [
    ...new Set(
      (value ?? '')
        .split(/[\s,;]+/)
        .map((d) => d.trim().toLowerCase().replace(/^@/, ''))
        .filter(Boolean),
    ),
  ];
}

const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

export class SsoService {
  readonly #o: SsoServiceOptions;
  readonly #log: Logger;
  readonly #listeners: ((notice: LinkedNotice) => Promise<void>)[] = [];

  constructor(options: SsoServiceOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'sso' });
  }

  #now(): number {
    return this.#o.now?.() ?? Date.now();
  }

  /** Called after a chat user linked their identity (the chat adapters confirm it there). */
  onLinked(listener: (notice: LinkedNotice) => Promise<void>): void {
    this.#listeners.push(listener);
  }

  redirectUri(): string {
    return new URL(SSO_CALLBACK_PATH, `${this.#o.publicUrl().replace(/\/+$/, '')}/`).href;
  }

  #settingsOf(row: IntegrationRow): SsoSettings {
    const s = row.settings as Record<string, unknown>;
    return {
      issuerUrl: String(s.issuerUrl ?? ''),
      clientId: String(s.clientId ?? ''),
      enabled: s.enabled === true,
      adminGroupClaim: String(s.adminGroupClaim ?? 'groups') || 'groups',
      adminGroupValue: String(s.adminGroupValue ?? ''),
      allowedDomains: Array.isArray(s.allowedDomains) ? s.allowedDomains.map(String) : [],
      requireForAdmin: s.requireForAdmin === true,
    };
  }

  async status(tenantId: string): Promise<SsoStatus> {
    const row = await this.#o.repositories.integrations.get(tenantId, 'sso');
    if (!row) return { configured: false, badge: 'Not Connected', values: {}, hasSecret: false };
    const settings = this.#settingsOf(row);
    return {
      configured: true,
      badge: settings.enabled ? 'Active' : 'Connected',
      settings,
      values: {
        issuerUrl: settings.issuerUrl,
        clientId: settings.clientId,
        enabled: String(settings.enabled),
        adminGroupClaim: settings.adminGroupClaim,
        adminGroupValue: settings.adminGroupValue,
        allowedDomains: settings.allowedDomains.join(', '),
        requireForAdmin: String(settings.requireForAdmin),
      },
      hasSecret: Boolean(row.credentialsSecret),
    };
  }

  /** Fast checks at the fields (before anything is fetched); `saved` tells whether a secret is kept. */
  validate(values: ProviderValues, hasSavedSecret: boolean): Record<string, string> {
    const errors: Record<string, string> = {};
    const issuer = values.issuerUrl?.trim() ?? '';
    if (!issuer) errors.issuerUrl = 'Enter the Issuer URL of your identity provider.';
    else {
      try {
        checkUrl(issuer, this.#o.urlPolicy, 'issuerUrl');
      } catch (error) {
        errors.issuerUrl = isAppError(error) ? error.message : 'This is not a valid URL.';
      }
    }
    const clientId = values.clientId?.trim() ?? '';
    if (!clientId) errors.clientId = 'Enter the Client ID of the app registration.';
    else if (clientId.length > 255 || /\s/.test(clientId))
      errors.clientId = 'Invalid Client ID: it has spaces or is too long.';
    if (!values.clientSecret && !hasSavedSecret) errors.clientSecret = 'Enter the Client Secret.';
    if (values.clientSecret && values.clientSecret.length > 1024)
      errors.clientSecret = 'The Client Secret is too long.';
    const claim = values.adminGroupClaim?.trim() ?? '';
    if (claim && !/^[A-Za-z0-9_:.\-/]{1,100}$/.test(claim))
      errors.adminGroupClaim = 'A claim name is letters, digits and _ : . - / (up to 100).';
    if ((values.adminGroupValue ?? '').length > 256) errors.adminGroupValue = 'Up to 256 characters.';
    const bad = parseDomains(values.allowedDomains).filter((d) => !DOMAIN.test(d));
    if (bad.length)
      errors.allowedDomains = `Not a domain: ${bad.slice(0, 3).join(', ')}. Write domains like example.com.`;
    for (const key of ['enabled', 'requireForAdmin'] as const)
      if (values[key] && !['true', 'false'].includes(values[key]!)) errors[key] = 'Choose Yes or No.';
    return errors;
  }

  #provider(settings: {
    issuerUrl: string;
    clientId: string;
    clientSecret: string;
    groupsClaim?: string;
  }): IdentityProvider {
    return this.#o.factory.create({
      settings: {
        issuerUrl: settings.issuerUrl,
        clientId: settings.clientId,
        clientSecret: settings.clientSecret,
      },
      urlPolicy: this.#o.urlPolicy,
      ...(this.#o.timeoutMs ? { timeoutMs: this.#o.timeoutMs } : {}),
      ...(settings.groupsClaim ? { groupsClaim: settings.groupsClaim } : {}),
    });
  }

  /**
   * Save / Update: fast checks, then discovery and the client check with openid-client. Only a
   * successful check is stored (nothing saved before is touched otherwise); audited without the
   * secret.
   */
  async save(tenantId: string, values: ProviderValues, actor: string): Promise<SsoSaveResult> {
    const repo = this.#o.repositories.integrations;
    const existing = await repo.get(tenantId, 'sso');
    const savedSecret = existing ? repo.credentials(existing)?.clientSecret : undefined;
    const errors = this.validate(values, Boolean(savedSecret));
    if (Object.keys(errors).length)
      return { ok: false, message: 'Some fields need a fix.', fieldErrors: errors };
    const clientSecret = values.clientSecret || savedSecret!;
    const settings: SsoSettings = {
      issuerUrl: values.issuerUrl!.trim().replace(/\/+$/, ''),
      clientId: values.clientId!.trim(),
      enabled: yes(values.enabled, true),
      adminGroupClaim: values.adminGroupClaim?.trim() || 'groups',
      adminGroupValue: values.adminGroupValue?.trim() ?? '',
      allowedDomains: parseDomains(values.allowedDomains),
      requireForAdmin: yes(values.requireForAdmin, false),
    };
    const verified = await this.#provider({ ...settings, clientSecret }).validate();
    if (!verified.ok)
      return {
        ok: false,
        message: verified.message,
        fieldErrors: { [verified.field ?? 'issuerUrl']: verified.message },
      };
    await repo.save(tenantId, 'sso', {
      status: settings.enabled ? 'active' : 'connected',
      settings: { ...settings },
      credentials: { clientSecret },
      lastVerifiedAt: new Date(),
      lastError: null,
    });
    await this.#o.repositories.audit.record(tenantId, {
      actor,
      action: existing ? 'sso.update' : 'sso.create',
      target: 'sso',
      before: existing ? { ...(existing.settings as Record<string, unknown>) } : null,
      after: { ...settings, clientSecretChanged: Boolean(values.clientSecret) },
    });
    return {
      ok: true,
      message: settings.enabled ? 'SSO is configured and enabled' : 'SSO settings are saved; SSO is disabled',
      detail: `${verified.summary}. People link their chat account with: login.`,
    };
  }

  /** Disable keeps the settings and every link, and stops requiring sign-ins. */
  async setEnabled(tenantId: string, enabled: boolean, actor: string): Promise<boolean> {
    const repo = this.#o.repositories.integrations;
    const row = await repo.get(tenantId, 'sso');
    if (!row) return false;
    const settings = { ...(row.settings as Record<string, unknown>), enabled };
    await repo.save(tenantId, 'sso', {
      status: enabled ? 'active' : 'connected',
      settings,
      lastVerifiedAt: row.lastVerifiedAt,
      lastError: row.lastError,
    });
    await this.#o.repositories.audit.record(tenantId, {
      actor,
      action: enabled ? 'sso.enable' : 'sso.disable',
      target: 'sso',
      before: { enabled: (row.settings as Record<string, unknown>).enabled === true },
      after: { enabled },
    });
    return true;
  }

  /** Deletes the settings and the client secret; linked identities stay. */
  async disconnect(tenantId: string, actor: string): Promise<boolean> {
    const repo = this.#o.repositories.integrations;
    const row = await repo.get(tenantId, 'sso');
    if (!row) return false;
    await repo.remove(tenantId, 'sso');
    await this.#o.repositories.audit.record(tenantId, {
      actor,
      action: 'sso.disconnect',
      target: 'sso',
      before: { ...(row.settings as Record<string, unknown>) },
      after: null,
    });
    return true;
  }

  /** Whether admin changes in this tenant need a recent sign-in (SSO enabled and required). */
  async requiredForAdmin(tenantId: string): Promise<boolean> {
    const status = await this.status(tenantId);
    return Boolean(status.settings?.enabled && status.settings.requireForAdmin);
  }

  /** The chat user signed in through SSO recently enough to count. */
  async hasValidLogin(tenantId: string, platform: 'slack' | 'teams', chatUserId: string): Promise<boolean> {
    const row = await this.#o.repositories.identities.find(tenantId, platform, chatUserId);
    return Boolean(row?.idpSubject && row.loginValidUntil && row.loginValidUntil.getTime() > this.#now());
  }

  /** `login`: a single-use link for this chat user, valid ten minutes. */
  async createLoginLink(
    tenantId: string,
    platform: 'slack' | 'teams',
    chatUserId: string,
    replyTo: Record<string, unknown>,
  ): Promise<{ url: string; expiresAt: Date }> {
    const status = await this.status(tenantId);
    if (!status.settings?.enabled)
      throw new AppError(
        ErrorCode.CONFLICT,
        'SSO is not enabled in this workspace. An admin can set it up with: sso.',
      );
    const token = randomBytes(32).toString('base64url');
    const expiresAt = new Date(this.#now() + LOGIN_LINK_TTL_MS);
    await this.#o.db.insert(ssoLogins).values({
      tenantId,
      platform,
      chatUserId,
      tokenHash: sha256(token),
      replyTo,
      expiresAt,
    });
    const url = new URL(SSO_START_PATH, `${this.#o.publicUrl().replace(/\/+$/, '')}/`);
    url.searchParams.set('t', token);
    return { url: url.href, expiresAt };
  }

  /**
   * Opening the link: single use (the first opening claims it), not expired. Returns where to
   * send the browser and the cookie that binds this sign-in to it.
   */
  async start(token: string): Promise<{ redirect: URL; cookie: string }> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(token))
      throw new SsoPageError(400, 'This sign-in link is not valid', 'Type login in chat for a new link.');
    const [login] = await this.#o.db
      .select()
      .from(ssoLogins)
      .where(eq(ssoLogins.tokenHash, sha256(token)));
    if (!login)
      throw new SsoPageError(404, 'This sign-in link is not valid', 'Type login in chat for a new link.');
    if (login.startedAt)
      throw new SsoPageError(
        410,
        'This sign-in link was already used',
        'Each link works once. Type login in chat for a new one.',
      );
    if (login.expiresAt.getTime() <= this.#now())
      throw new SsoPageError(
        410,
        'This sign-in link has expired',
        'Links work for ten minutes. Type login in chat for a new one.',
      );
    const { settings, clientSecret } = await this.#activeSettings(login.tenantId);
    const state = randomBytes(32).toString('base64url');
    const nonce = randomBytes(32).toString('base64url');
    const codeVerifier = randomBytes(48).toString('base64url');
    const browser = randomBytes(32).toString('base64url');
    // Claim the link: a second opening (or a concurrent one) finds it started.
    const claimed = await this.#o.db
      .update(ssoLogins)
      .set({
        state,
        nonce,
        verifierSecret: this.#o.box.encrypt(codeVerifier, secretContext.ssoLogin(login)),
        browserHash: sha256(browser),
        startedAt: new Date(this.#now()),
      })
      .where(and(eq(ssoLogins.id, login.id), isNull(ssoLogins.startedAt)))
      .returning({ id: ssoLogins.id });
    if (claimed.length === 0)
      throw new SsoPageError(
        410,
        'This sign-in link was already used',
        'Each link works once. Type login in chat for a new one.',
      );
    const redirect = await this.#provider({ ...settings, clientSecret }).loginUrl({
      redirectUri: this.redirectUri(),
      state,
      nonce,
      codeVerifier,
    });
    return { redirect, cookie: `${login.id}.${browser}` };
  }

  async #activeSettings(tenantId: string): Promise<{ settings: SsoSettings; clientSecret: string }> {
    const repo = this.#o.repositories.integrations;
    const row = await repo.get(tenantId, 'sso');
    const settings = row ? this.#settingsOf(row) : undefined;
    const clientSecret = row ? repo.credentials(row)?.clientSecret : undefined;
    if (!row || !settings?.enabled || !clientSecret)
      throw new SsoPageError(
        409,
        'SSO is not enabled',
        'An admin turned single sign-on off for this workspace.',
      );
    return { settings, clientSecret };
  }

  /**
   * The IdP's redirect back: the state names the sign-in, the cookie proves it is the browser that
   * opened the link; each sign-in completes once. Then the identity is linked to the chat user.
   */
  async callback(currentUrl: URL, cookie: string | undefined): Promise<LinkedNotice> {
    const state = currentUrl.searchParams.get('state') ?? '';
    const [login] = state ? await this.#o.db.select().from(ssoLogins).where(eq(ssoLogins.state, state)) : [];
    if (!login)
      throw new SsoPageError(
        400,
        'This sign-in is not known',
        'The answer from your identity provider does not belong to a sign-in started here, or it was already used. Type login in chat for a new link.',
      );
    const [cookieId, browser] = (cookie ?? '').split('.');
    const sameBrowser =
      cookieId === login.id &&
      Boolean(browser) &&
      Boolean(login.browserHash) &&
      timingSafeEqual(Buffer.from(sha256(browser!)), Buffer.from(login.browserHash!));
    if (!sameBrowser)
      throw new SsoPageError(
        403,
        'This sign-in was started for another chat user or in another browser',
        'Open the sign-in link in the same browser you sign in with, and only your own link. Type login in chat for a new one.',
      );
    // Complete once: a replayed callback finds it completed.
    const completed = await this.#o.db
      .update(ssoLogins)
      .set({ completedAt: new Date(this.#now()) })
      .where(
        and(
          eq(ssoLogins.id, login.id),
          isNull(ssoLogins.completedAt),
          gt(ssoLogins.expiresAt, new Date(this.#now() - LOGIN_LINK_TTL_MS)),
        ),
      )
      .returning({ id: ssoLogins.id });
    if (completed.length === 0)
      throw new SsoPageError(
        410,
        'This sign-in was already completed or has expired',
        'Each sign-in completes once. Type login in chat for a new link.',
      );
    const { settings, clientSecret } = await this.#activeSettings(login.tenantId);
    const checks: LoginChecks = {
      redirectUri: this.redirectUri(),
      state,
      nonce: login.nonce!,
      codeVerifier: this.#o.box.decrypt(login.verifierSecret!, secretContext.ssoLogin(login)),
    };
    let identity: SsoIdentity;
    try {
      identity = await this.#provider({
        ...settings,
        clientSecret,
        groupsClaim: settings.adminGroupClaim,
      }).callback(currentUrl, checks);
    } catch (error) {
      this.#log.warn({ err: error, tenantId: login.tenantId }, 'SSO callback refused');
      throw new SsoPageError(
        401,
        'Sign-in failed',
        `${isAppError(error) ? error.message : "The identity provider's answer could not be checked."} Type login in chat to try again.`,
        { cause: error },
      );
    }
    if (settings.allowedDomains.length) {
      const domain = identity.email?.split('@')[1]?.toLowerCase();
      if (!domain || identity.emailVerified === false || !settings.allowedDomains.includes(domain))
        throw new SsoPageError(
          403,
          'This account cannot be linked',
          `Only accounts with a verified email in ${settings.allowedDomains.join(', ')} can link here${identity.email ? `; you signed in as ${identity.email}` : ''}. Sign in with your work account.`,
        );
    }
    const admin = Boolean(settings.adminGroupValue) && identity.groups.includes(settings.adminGroupValue);
    const platform = login.platform as 'slack' | 'teams';
    const validUntil = new Date(Math.min(identity.expiresAt.getTime(), this.#now() + LOGIN_VALID_MAX_MS));
    const identities = this.#o.repositories.identities;
    await identities.link(login.tenantId, platform, login.chatUserId, {
      idpSubject: identity.subject,
      email: identity.email ?? null,
      groups: [...identity.groups],
      grant: {
        issuer: identity.issuer,
        ...(identity.refreshToken ? { refresh_token: identity.refreshToken } : {}),
      },
      loginValidUntil: validUntil,
    });
    if (admin) await identities.grantRole(login.tenantId, platform, login.chatUserId, SSO_ADMIN_ROLE);
    else await identities.revokeRole(login.tenantId, platform, login.chatUserId, SSO_ADMIN_ROLE);
    await this.#o.repositories.audit.record(login.tenantId, {
      actor: `${platform}:${login.chatUserId}`,
      action: 'sso.link',
      target: `${platform}:${login.chatUserId}`,
      after: { subject: identity.subject, email: identity.email ?? null, admin },
    });
    const notice: LinkedNotice = {
      tenantId: login.tenantId,
      platform,
      chatUserId: login.chatUserId,
      replyTo: login.replyTo,
      ...(identity.email ? { email: identity.email } : {}),
      admin,
    };
    for (const listener of this.#listeners)
      await listener(notice).catch((error: unknown) =>
        this.#log.warn({ err: error }, 'sign-in confirmation failed'),
      );
    return notice;
  }
}
