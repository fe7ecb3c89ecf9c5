/**
 * The IdentityProvider port: what the core needs from an OpenID Connect provider (Entra ID, Okta,
 * Google, Keycloak ...). adapters/identity/oidc implements it with openid-client; the core never
 * imports it (main.ts wires it).
 *
 * Errors: `validate` never throws for expected failures; it returns them classified, with the
 * form field they concern. `loginUrl` and `callback` throw AppError (src/errors.ts).
 */
import type { ErrorCode } from '../errors.js';
import type { UrlPolicy } from '../net/url-policy.js';

/** What an admin enters in the SSO form (the secret sealed at rest). */
export interface SsoClientSettings {
  /** The issuer (discovery at <issuer>/.well-known/openid-configuration). */
  readonly issuerUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
}

export type SsoVerifyResult =
  | {
      readonly ok: true;
      /** The issuer as the discovery document states it. */
      readonly issuer: string;
      readonly authorizationEndpoint: string;
      readonly summary: string;
    }
  | {
      readonly ok: false;
      readonly code: ErrorCode;
      /** "Authorization endpoint unreachable: ...", "Invalid Client ID: ...", "Invalid client secret: ...". */
      readonly message: string;
      /** issuerUrl | clientId | clientSecret */
      readonly field?: string;
    };

/** One sign-in: PKCE S256 verifier, state and nonce, made and kept by the core. */
export interface LoginChecks {
  readonly redirectUri: string;
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
}

/** Who signed in, from the validated ID token (and userinfo when the token lacks email/groups). */
export interface SsoIdentity {
  readonly subject: string;
  readonly issuer: string;
  readonly email?: string;
  readonly emailVerified?: boolean;
  readonly name?: string;
  /** Values of the configured groups claim (string or array in the token). */
  readonly groups: readonly string[];
  /** Until when the IdP vouches for this sign-in (the ID token's exp). */
  readonly expiresAt: Date;
  /** The refresh token, when the IdP issued one (sealed at rest by the core). */
  readonly refreshToken?: string;
}

export interface IdentityProvider {
  /** Discovery (issuer reachable, a real OpenID provider) and the client (token endpoint test). */
  validate(): Promise<SsoVerifyResult>;
  /** The authorization request URL: code flow, PKCE S256, state and nonce, scope openid email profile. */
  loginUrl(checks: LoginChecks): Promise<URL>;
  /**
   * The redirect back: checks state, exchanges the code (with the PKCE verifier), validates the ID
   * token (issuer, audience, nonce, expiry, signature). Throws AppError UNAUTHENTICATED with a
   * sentence for whatever does not match (replayed or forged state, wrong nonce, error from the IdP).
   */
  callback(currentUrl: URL, checks: LoginChecks): Promise<SsoIdentity>;
}

export interface IdentityProviderContext {
  readonly settings: SsoClientSettings;
  readonly urlPolicy: UrlPolicy;
  /** Per-call timeout; 10 s by default. */
  readonly timeoutMs?: number;
  /** The claim that carries group names or ids (default "groups"). */
  readonly groupsClaim?: string;
}

export interface IdentityProviderFactory {
  /** One new instance per tenant and call; never a shared instance mutated per call. */
  create(context: IdentityProviderContext): IdentityProvider;
}

/** A factory whose adapter (openid-client) loads on the first call, not at start-up. */
export function lazyIdentityProviderFactory(
  load: () => Promise<IdentityProviderFactory>,
): IdentityProviderFactory {
  let factory: Promise<IdentityProviderFactory> | undefined;
  return {
    create(context) {
      let instance: Promise<IdentityProvider> | undefined;
      const get = () => {
        factory ??= load();
        instance ??= factory.then((f) => f.create(context));
        return instance;
      };
      return {
        validate: async () => (await get()).validate(),
        loginUrl: async (checks) => (await get()).loginUrl(checks),
        callback: async (url, checks) => (await get()).callback(url, checks),
      };
    },
  };
}
