import { describe, expect, it } from 'vitest';
import { isLoopback, isLoopbackUrl } from '../../adapters/chat/teams/app.js';
import { loadConfig } from '../../src/config.js';
import { configProblems } from '../support/config.js';

const APP_ID = '3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b';
const TENANT = '0f0e0d0c-0b0a-4909-8807-060504030201';

describe('Teams configuration', () => {
  it('runs in local mode without an app id', () => {
    expect(loadConfig({}).teams).toEqual({ mode: 'local' });
  });

  it('takes a MultiTenant registration with the Bot Framework defaults', () => {
    expect(loadConfig({ MICROSOFT_APP_ID: APP_ID, MICROSOFT_APP_PASSWORD: 'a-client-secret' }).teams).toEqual(
      {
        mode: 'authenticated',
        appId: APP_ID,
        appPassword: 'a-client-secret',
        appType: 'MultiTenant',
        appTenantId: undefined,
        loginUrl: 'https://login.microsoftonline.com/botframework.com',
        openIdMetadataUrl: 'https://login.botframework.com/v1/.well-known/openidconfiguration',
        tokenIssuer: 'https://api.botframework.com',
      },
    );
  });

  it('takes a SingleTenant registration: tokens from its own tenant', () => {
    const teams = loadConfig({
      MICROSOFT_APP_ID: APP_ID,
      MICROSOFT_APP_PASSWORD: 'a-client-secret',
      MICROSOFT_APP_TYPE: 'SingleTenant',
      MICROSOFT_APP_TENANT_ID: TENANT,
    }).teams;
    expect(teams).toMatchObject({
      appType: 'SingleTenant',
      loginUrl: `https://login.microsoftonline.com/${TENANT}`,
    });
  });

  it('names what is missing or wrong, never echoing the secret', () => {
    expect(configProblems({ MICROSOFT_APP_PASSWORD: 'a-client-secret' })).toContain('MICROSOFT_APP_ID');
    expect(configProblems({ MICROSOFT_APP_ID: 'not-a-guid', MICROSOFT_APP_PASSWORD: 'x-secret-1' })).toMatch(
      /MICROSOFT_APP_ID: expected the Microsoft App ID, a GUID.*got "not-a-guid"/,
    );
    expect(configProblems({ MICROSOFT_APP_ID: APP_ID })).toContain('MICROSOFT_APP_PASSWORD');
    expect(
      configProblems({
        MICROSOFT_APP_ID: APP_ID,
        MICROSOFT_APP_PASSWORD: 'a-client-secret',
        MICROSOFT_APP_TYPE: 'SingleTenant',
      }),
    ).toContain('MICROSOFT_APP_TENANT_ID');
    expect(
      configProblems({
        MICROSOFT_APP_ID: APP_ID,
        MICROSOFT_APP_TYPE: 'Everyone',
        MICROSOFT_APP_PASSWORD: 'sh',
      }),
    ).not.toContain('"sh"');
    // A UserAssignedMSI bot needs no password (its managed identity gets the tokens).
    expect(
      loadConfig({
        MICROSOFT_APP_ID: APP_ID,
        MICROSOFT_APP_TYPE: 'UserAssignedMSI',
        MICROSOFT_APP_TENANT_ID: TENANT,
      }).teams,
    ).toMatchObject({ mode: 'authenticated', appPassword: undefined });
  });

  it('local mode trusts loopback callers and service URLs only', () => {
    for (const ok of ['127.0.0.1', '::1', '::ffff:127.0.0.1', '127.8.9.10'])
      expect(isLoopback(ok), ok).toBe(true);
    for (const no of ['10.0.0.1', '192.168.1.4', '::ffff:10.0.0.1', '2001:db8::1', '', undefined])
      expect(isLoopback(no), String(no)).toBe(false);
    for (const ok of ['http://localhost:3979/', 'http://127.0.0.1:55001', 'https://[::1]:8443/x'])
      expect(isLoopbackUrl(ok), ok).toBe(true);
    for (const no of [
      'https://smba.trafficmanager.net/emea/',
      'http://169.254.169.254/',
      'http://localhost.evil.example/',
      'nonsense',
    ])
      expect(isLoopbackUrl(no), no).toBe(false);
  });
});
