/** SLACK_* variables: one workspace, OAuth, off, and partial settings named in the error. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { configProblems } from '../support/config.js';

const SINGLE = { SLACK_SIGNING_SECRET: 'signing-secret-123', SLACK_BOT_TOKEN: 'xoxb-1-2-abc' };
const OAUTH = {
  SLACK_SIGNING_SECRET: 'signing-secret-123',
  SLACK_CLIENT_ID: '1000000001.2000000002',
  SLACK_CLIENT_SECRET: 'client-secret-abc',
  SLACK_STATE_SECRET: 'state-secret-0123456789',
};

describe('Slack configuration', () => {
  it('is off when nothing is set, and the service config still loads', () => {
    expect(loadConfig({}).slack).toBeUndefined();
    expect(loadConfig({ SLACK_API_URL: 'https://slack.example.com/api' }).slack).toBeUndefined();
  });

  it('one workspace: bot token and signing secret', () => {
    expect(loadConfig(SINGLE).slack).toEqual({
      mode: 'single',
      signingSecret: 'signing-secret-123',
      botToken: 'xoxb-1-2-abc',
      apiUrl: 'https://slack.com/api/',
    });
  });

  it('OAuth: client id, client secret, state secret and signing secret; SLACK_API_URL keeps one slash', () => {
    expect(loadConfig({ ...OAUTH, SLACK_API_URL: 'https://gateway.example.com/api//' }).slack).toEqual({
      mode: 'oauth',
      signingSecret: 'signing-secret-123',
      clientId: '1000000001.2000000002',
      clientSecret: 'client-secret-abc',
      stateSecret: 'state-secret-0123456789',
      apiUrl: 'https://gateway.example.com/api/',
    });
  });

  it('names what a partial setting is missing', () => {
    expect(configProblems({ SLACK_BOT_TOKEN: 'xoxb-1-2-abc' })).toContain(
      'SLACK_SIGNING_SECRET: Slack one-workspace mode (SLACK_BOT_TOKEN set) also needs SLACK_SIGNING_SECRET',
    );
    expect(configProblems({ SLACK_CLIENT_ID: '1.2', SLACK_SIGNING_SECRET: 'signing-secret-123' })).toContain(
      'also needs SLACK_CLIENT_SECRET, SLACK_STATE_SECRET',
    );
    expect(configProblems({ SLACK_SIGNING_SECRET: 'signing-secret-123' })).toContain(
      'SLACK_SIGNING_SECRET: set, but Slack also needs SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID',
    );
    expect(configProblems({ ...OAUTH, SLACK_BOT_TOKEN: 'xoxb-1-2-abc' })).toContain('not both');
  });

  it('checks formats without echoing secrets', () => {
    const message = configProblems({
      SLACK_SIGNING_SECRET: 'signing-secret-123',
      SLACK_BOT_TOKEN: 'xoxp-user-token',
    });
    expect(message).toContain('SLACK_BOT_TOKEN: expected a bot token starting with xoxb-');
    expect(message).not.toContain('xoxp-user-token');
    expect(configProblems({ ...OAUTH, SLACK_STATE_SECRET: 'short' })).toContain(
      'SLACK_STATE_SECRET: expected at least 16 characters',
    );
    expect(configProblems({ ...SINGLE, SLACK_API_URL: 'slack.com/api' })).toContain('SLACK_API_URL');
  });
});
