import { describe, expect, it } from 'vitest';
import { memoryLogger } from '../support/logs.js';

describe('log redaction', () => {
  it('logs JSON and keeps tokens, passwords and secrets out at every depth', () => {
    const { logger, lines, text } = memoryLogger();
    const token = 'xoxb-1111-2222-SECRETTOKEN';
    logger.info(
      {
        token,
        req: { headers: { authorization: `Bearer ${token}`, cookie: `s=${token}`, 'x-api-key': token } },
        integration: { kind: 'azure-devops', credentials: { pat: token, password: token } },
        smtp: { host: 'smtp.example.com', password: token },
        sso: { clientSecret: token, client_secret: token },
        slack: { botToken: token, signingSecret: token },
        teams: { appPassword: token, MicrosoftAppPassword: token },
        webhook: { headers: { 'x-hub-signature': `sha256=${token}` } },
        oidc: { codeVerifier: token },
        ado: { personalAccessToken: token },
      },
      'saving integration',
    );
    expect(text()).not.toContain('SECRETTOKEN');
    const entry = JSON.parse(lines()[0]!) as Record<string, unknown>;
    expect(entry.msg).toBe('saving integration');
    expect(entry.token).toBe('[redacted]');
    expect((entry.smtp as Record<string, unknown>).host).toBe('smtp.example.com');
  });
});
