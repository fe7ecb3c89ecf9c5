/**
 * OpenID Connect SSO (Entra ID, Okta, Google, Keycloak, Auth0 ...) as an IdentityProvider.
 * main.ts registers `oidcIdentityProvider`; the core only sees the IdentityProvider port.
 */
import type { IdentityProviderFactory } from '../../../src/identity/port.js';
import { createOidcIdentityProvider } from './provider.js';

export const oidcIdentityProvider: IdentityProviderFactory = {
  create: (context) => createOidcIdentityProvider(context),
};

export { normalizeIssuerUrl } from './client.js';
export { VALIDATION_REDIRECT_URI } from './mapping.js';
export { createOidcIdentityProvider, LOGIN_SCOPE } from './provider.js';
