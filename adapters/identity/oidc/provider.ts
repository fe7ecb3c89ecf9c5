/**
 * The IdentityProvider for OpenID Connect providers (Entra ID, Okta, Google, Keycloak, Auth0 ...)
 * on openid-client v6: discovery and a client check for `validate`, the authorization code flow
 * with PKCE S256, state and nonce for `loginUrl` / `callback`.
 *
 * One instance per tenant and call (IdentityProviderFactory); it discovers the provider on first
 * use and keeps that for its own lifetime only.
 */
import {
  authorizationCodeGrant,
  buildAuthorizationUrl,
  calculatePKCECodeChallenge,
  fetchUserInfo,
} from 'openid-client';
import { AppError, ErrorCode } from '../../../src/errors.js';
import type {
  IdentityProvider,
  IdentityProviderContext,
  LoginChecks,
  SsoIdentity,
  SsoVerifyResult,
} from '../../../src/identity/port.js';
import { DEFAULT_TIMEOUT_MS } from '../../../src/net/outbound.js';
import {
  connect,
  normalizeIssuerUrl,
  type OidcConnection,
  probeAuthorizationEndpoint,
  tokenEndpointCheck,
  withClientAuthFallback,
} from './client.js';
import {
  callbackFailure,
  discoveryFailure,
  type FailureContext,
  identityOf,
  isClientRejection,
  needsUserinfo,
  notAllowedMessage,
  otherAnswerMessage,
  rejectedField,
  rejectionMessage,
  scrubSecret,
  tokenCheckOutcome,
  tokenEndpointFailure,
  userinfoFailure,
} from './mapping.js';

/** The scopes of every sign-in: the ID token, the email address and the profile (name, often groups). */
export const LOGIN_SCOPE = 'openid email profile';

export function createOidcIdentityProvider(context: IdentityProviderContext): IdentityProvider {
  const { settings } = context;
  const timeoutMs = context.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const groupsClaim = context.groupsClaim ?? 'groups';
  const failureContext: FailureContext = { issuerUrl: normalizeIssuerUrl(settings.issuerUrl), timeoutMs };
  const scrub = (text: string) => scrubSecret(text, settings.clientSecret);
  /** Every AppError leaving the adapter, with the secret taken out of its message. */
  const clean = (error: AppError): AppError =>
    error.message.includes(settings.clientSecret) && settings.clientSecret.length >= 4
      ? new AppError(error.code, scrub(error.message), { cause: error.cause, details: error.details ?? {} })
      : error;
  const failed = (code: ErrorCode, message: string, field?: string): SsoVerifyResult => ({
    ok: false,
    code,
    message: scrub(message),
    ...(field ? { field } : {}),
  });

  let connection: Promise<OidcConnection> | undefined;
  const connected = (): Promise<OidcConnection> => {
    connection ??= connect({
      issuerUrl: settings.issuerUrl,
      clientId: settings.clientId,
      clientSecret: settings.clientSecret,
      policy: context.urlPolicy,
      timeoutMs,
    });
    // A failed discovery is not kept: the next call tries again.
    connection.catch(() => {
      connection = undefined;
    });
    return connection;
  };

  return {
    async validate() {
      let conn: OidcConnection;
      try {
        conn = await connected();
      } catch (error) {
        const failure = await discoveryFailure(error, failureContext);
        return failed(failure.code, failure.message, 'issuerUrl');
      }
      let answer: unknown;
      try {
        await withClientAuthFallback(conn, isClientRejection, () => tokenEndpointCheck(conn));
      } catch (error) {
        answer = error;
      }
      const outcome = await tokenCheckOutcome(answer);
      switch (outcome.kind) {
        case 'accepted':
          return {
            ok: true,
            issuer: conn.issuer,
            authorizationEndpoint: conn.authorizationEndpoint,
            summary: `Signed in to ${conn.issuer} as client ${settings.clientId}`,
          };
        case 'rejected': {
          const verdict = rejectedField(outcome.answer, undefined);
          const decided =
            verdict.field === 'either'
              ? rejectedField(outcome.answer, await probeAuthorizationEndpoint(conn, settings.clientId))
              : verdict;
          const result = rejectionMessage(decided, outcome.answer, conn.issuer, settings.clientId);
          return failed(result.code, result.message, result.field);
        }
        case 'not_allowed':
          return failed(
            ErrorCode.INVALID_CREDENTIALS,
            notAllowedMessage(outcome.answer, conn.issuer, settings.clientId),
            'clientId',
          );
        case 'other':
          return failed(ErrorCode.PROVIDER_ERROR, otherAnswerMessage(outcome.answer, conn.issuer));
        case 'failed': {
          const failure = await tokenEndpointFailure(outcome.error, conn.tokenEndpoint, timeoutMs);
          return failed(failure.code, failure.message, 'issuerUrl');
        }
      }
    },

    async loginUrl(checks: LoginChecks) {
      let conn: OidcConnection;
      try {
        conn = await connected();
      } catch (error) {
        throw clean(await discoveryFailure(error, failureContext));
      }
      return buildAuthorizationUrl(conn.config, {
        response_type: 'code',
        scope: LOGIN_SCOPE,
        redirect_uri: checks.redirectUri,
        state: checks.state,
        nonce: checks.nonce,
        code_challenge: await calculatePKCECodeChallenge(checks.codeVerifier),
        code_challenge_method: 'S256',
      });
    },

    async callback(currentUrl: URL, checks: LoginChecks): Promise<SsoIdentity> {
      let conn: OidcConnection;
      try {
        conn = await connected();
      } catch (error) {
        const failure = await discoveryFailure(error, failureContext);
        throw clean(
          new AppError(ErrorCode.UNAUTHENTICATED, `Sign-in failed: ${failure.message}`, {
            cause: error,
            details: { reason: 'unreachable' },
          }),
        );
      }
      try {
        // The token request's redirect_uri is the callback URL without its query: take the one
        // the authorization request used, whatever host or proxy the redirect came in through.
        const redirect = new URL(checks.redirectUri);
        redirect.search = currentUrl.search;
        redirect.hash = '';
        const tokens = await withClientAuthFallback(conn, isClientRejection, () =>
          authorizationCodeGrant(conn.config, redirect, {
            pkceCodeVerifier: checks.codeVerifier,
            expectedState: checks.state,
            expectedNonce: checks.nonce,
            idTokenExpected: true,
          }),
        );
        const claims = tokens.claims();
        if (!claims) throw new Error('the token response carries no ID token');
        let userinfo: Record<string, unknown> | undefined;
        if (needsUserinfo(claims, groupsClaim) && conn.config.serverMetadata().userinfo_endpoint) {
          try {
            // openid-client checks that userinfo's subject is the ID token's.
            userinfo = (await fetchUserInfo(conn.config, tokens.access_token, claims.sub)) as Record<
              string,
              unknown
            >;
          } catch (error) {
            throw await userinfoFailure(error, failureContext);
          }
        }
        return identityOf({
          claims,
          ...(userinfo ? { userinfo } : {}),
          groupsClaim,
          ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : {}),
        });
      } catch (error) {
        throw clean(await callbackFailure(error, failureContext));
      }
    },
  };
}
