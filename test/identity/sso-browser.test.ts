/**
 * One pass of the SSO sign-in in a real browser (headless Chromium with playwright-core): the
 * link from chat, the identity provider's login page, the callback page. Skipped, saying so, when
 * Debian's chromium is not installed (`apt-get install chromium`; .ci/run installs it).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../../src/commands/chat-commands.js';
import { type RunningOidcProvider, startOidcProvider } from '../support/oidc-provider.js';
import { useService } from '../support/service.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available)
  console.warn(`SSO browser test skipped: no Chromium at ${CHROMIUM} (apt-get install chromium).`);

describe.skipIf(!available)('SSO sign-in in headless Chromium', () => {
  const running = useService('pglite', {
    CLOUDPI_ALLOW_HTTP: 'true',
    CLOUDPI_ALLOW_PRIVATE_NETWORKS: 'true',
  });
  let idp: RunningOidcProvider;
  let profile: string;
  beforeAll(async () => {
    idp = await startOidcProvider({
      clientId: 'cloudpi-browser',
      clientSecret: 'browser-client-secret-0123456789abcdef',
      redirectUris: [running.service.sso.redirectUri()],
      claimsInIdToken: true,
      accounts: [{ subject: 'sub-carol', login: 'carol', email: 'carol@example.com', emailVerified: true }],
    });
    profile = mkdtempSync(path.join(tmpdir(), 'cloudpi-chromium-'));
  });
  afterAll(async () => {
    await idp?.stop();
    rmSync(profile, { recursive: true, force: true });
  });

  it('follows the link, signs in at the IdP and lands on the confirmation page', async () => {
    const { repositories, sso, chat } = running.service;
    const tenantId = (await repositories.tenants.ensure('slack', 'T0BROWSER')).id;
    const saved = await sso.save(
      tenantId,
      {
        issuerUrl: idp.issuer,
        clientId: 'cloudpi-browser',
        clientSecret: 'browser-client-secret-0123456789abcdef',
      },
      'test',
    );
    expect(saved.ok).toBe(true);
    const carol: Actor = { tenantId, platform: 'slack', userId: 'U0CAROL', platformAdmin: false };
    const link = (await chat.login(carol, { channelId: 'C0BROWSER' })).link!.url;

    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const page = await browser.newPage();
      await page.goto(link);
      // The identity provider's login page.
      expect(new URL(page.url()).origin).toBe(idp.issuer);
      await page.fill('input[name=login]', 'carol');
      await page.click('button:has-text("Sign in")');
      // Consent, when the provider asks for it.
      if (
        !page.url().startsWith(running.service.sso.redirectUri()) &&
        (await page.$('button:has-text("Continue")'))
      )
        await page.click('button:has-text("Continue")');
      await page.waitForURL((url) => url.href.startsWith(running.service.sso.redirectUri()));
      expect(await page.textContent('h1')).toBe('You are signed in');
      expect(await page.textContent('main')).toContain('carol@example.com');
      expect(await page.getAttribute('html', 'lang')).toBe('en');
    } finally {
      await browser.close();
    }
    const identity = await repositories.identities.find(tenantId, 'slack', 'U0CAROL');
    expect(identity?.idpSubject).toBe('sub-carol');
  }, 60_000);
});
