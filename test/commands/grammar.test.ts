import { describe, expect, it } from 'vitest';
import { COMMANDS, closestCommand, parseCommand } from '../../src/commands/grammar.js';

describe('command grammar', () => {
  it('parses every documented command', () => {
    for (const name of [
      'help',
      'integrations',
      'sso',
      'smtp',
      'subscribe',
      'unsubscribe',
      'login',
      'audit',
    ]) {
      expect(parseCommand(name)).toEqual({ name });
    }
    expect(parseCommand('connect jira')).toEqual({ name: 'connect', provider: 'jira' });
    expect(parseCommand('configure azure-devops')).toEqual({ name: 'configure', provider: 'azure-devops' });
    expect(parseCommand('disconnect servicenow')).toEqual({ name: 'disconnect', provider: 'servicenow' });
  });

  it('parses webhook <provider> [rotate]', () => {
    expect(parseCommand('webhook jira')).toEqual({ name: 'webhook', provider: 'jira', rotate: false });
    expect(parseCommand('webhook Azure DevOps rotate')).toEqual({
      name: 'webhook',
      provider: 'azure-devops',
      rotate: true,
    });
    expect(parseCommand('webhooks snow')).toEqual({ name: 'webhook', provider: 'servicenow', rotate: false });
    expect(parseCommand('webhook rotate')).toMatchObject({ name: 'usage', command: 'webhook' });
    expect(parseCommand('webhook')).toMatchObject({ name: 'usage', command: 'webhook' });
  });

  it('accepts spacing, case and provider spellings people use', () => {
    expect(parseCommand('  CONNECT   Azure DevOps ')).toEqual({ name: 'connect', provider: 'azure-devops' });
    expect(parseCommand('connect ado')).toEqual({ name: 'connect', provider: 'azure-devops' });
    expect(parseCommand('connect snow')).toEqual({ name: 'connect', provider: 'servicenow' });
    expect(parseCommand('connect\u00a0jira')).toEqual({ name: 'connect', provider: 'jira' });
    expect(parseCommand('')).toEqual({ name: 'help' });
    expect(parseCommand('status')).toEqual({ name: 'integrations' });
  });

  it('says which provider is missing or wrong', () => {
    expect(parseCommand('connect')).toEqual({
      name: 'usage',
      command: 'connect',
      message: 'Which provider? Use: connect jira|azure-devops|servicenow',
    });
    expect(parseCommand('disconnect github')).toMatchObject({
      name: 'usage',
      message: '"github" is not a provider. Use: disconnect jira|azure-devops|servicenow',
    });
  });

  it('answers unknown input with the closest command', () => {
    expect(parseCommand('integratons')).toEqual({
      name: 'unknown',
      input: 'integratons',
      suggestion: 'integrations',
    });
    expect(parseCommand('conect jira')).toMatchObject({
      name: 'unknown',
      suggestion: 'connect jira|azure-devops|servicenow',
    });
    expect(parseCommand('halp')).toMatchObject({ suggestion: 'help' });
    expect(parseCommand('integ')).toMatchObject({ suggestion: 'integrations' });
    expect(parseCommand('xyzzy plugh')).toEqual({ name: 'unknown', input: 'xyzzy plugh' });
    expect(closestCommand('')).toBeUndefined();
  });

  it('keeps hostile input short and inert', () => {
    const long = `<!channel> ${'x'.repeat(5_000)}`;
    const parsed = parseCommand(long);
    expect(parsed.name).toBe('unknown');
    if (parsed.name === 'unknown') expect(parsed.input.length).toBeLessThanOrEqual(100);
  });

  it('lists each command once with usage and description', () => {
    const names = COMMANDS.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const c of COMMANDS) expect(c.description.length).toBeGreaterThan(5);
  });
});
