import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseMasterKeys, readDotEnv } from '../../src/config.js';
import { configProblems } from '../support/config.js';
import { keyEntry, masterKey } from '../support/keys.js';

describe('configuration', () => {
  it('defaults to the embedded database on port 3978 with nothing set', () => {
    const config = loadConfig({});
    expect(config.port).toBe(3978);
    expect(config.database.kind).toBe('pglite');
    expect(config.dataDir).toBe(path.resolve('.data'));
    expect(config.publicUrl).toBe('http://localhost:3978');
    expect(config.masterKeys).toBeUndefined();
    expect(config.allowHttp).toBe(false);
    expect(config.allowPrivateNetworks).toBe(false);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads every documented variable', () => {
    const k1 = masterKey('k2');
    const k0 = masterKey('k1');
    const config = loadConfig({
      PORT: '8080',
      DATABASE_URL: 'postgres://u:p@db.example:5432/cloudpi',
      CLOUDPI_DATA_DIR: '/var/lib/cloudpi',
      CLOUDPI_PUBLIC_URL: 'https://bot.example.com/',
      CLOUDPI_MASTER_KEYS: `${keyEntry(k1)}, ${keyEntry(k0)}`,
      CLOUDPI_ADMINS: 'slack:U012AB3CD, teams:6d0c2f6e-1b1a-4c3c-9d59-2a1f1d7c9e10',
      CLOUDPI_ALLOW_PRIVATE_NETWORKS: 'true',
      CLOUDPI_ALLOW_HTTP: 'yes',
      LOG_LEVEL: 'debug',
    });
    expect(config.port).toBe(8080);
    expect(config.database).toEqual({ kind: 'postgres', url: 'postgres://u:p@db.example:5432/cloudpi' });
    expect(config.publicUrl).toBe('https://bot.example.com');
    expect(config.masterKeys?.map((k) => k.id)).toEqual(['k2', 'k1']);
    expect(config.masterKeys?.[0]?.key.equals(k1.key)).toBe(true);
    expect(config.admins).toEqual([
      { platform: 'slack', userId: 'U012AB3CD' },
      { platform: 'teams', userId: '6d0c2f6e-1b1a-4c3c-9d59-2a1f1d7c9e10' },
    ]);
    expect(config.allowPrivateNetworks).toBe(true);
    expect(config.allowHttp).toBe(true);
    expect(config.logLevel).toBe('debug');
  });

  it('names the variable, what it expects and what it got', () => {
    expect(configProblems({ PORT: 'eighty' })).toContain(
      'PORT: expected a whole number from 0 to 65535, got "eighty"',
    );
    expect(configProblems({ PORT: '70000' })).toContain(
      'PORT: expected a whole number from 0 to 65535, got "70000"',
    );
    expect(configProblems({ LOG_LEVEL: 'loud' })).toMatch(
      /LOG_LEVEL: expected one of fatal, error, warn, info/,
    );
    expect(configProblems({ CLOUDPI_ALLOW_HTTP: 'maybe' })).toContain(
      'CLOUDPI_ALLOW_HTTP: expected true or false, got "maybe"',
    );
    expect(configProblems({ CLOUDPI_PUBLIC_URL: 'bot.example.com' })).toContain(
      'CLOUDPI_PUBLIC_URL: expected an http:// or https:// URL',
    );
    expect(configProblems({ CLOUDPI_ADMINS: 'slack:U1,bob' })).toContain(
      'CLOUDPI_ADMINS: "bob" is not slack:<user id> or teams:<Entra object id>',
    );
  });

  it('reports every problem at once', () => {
    const message = configProblems({ PORT: 'x', LOG_LEVEL: 'x', CLOUDPI_ALLOW_HTTP: 'x' });
    expect(message.split('\n').filter((l) => l.startsWith('  - '))).toHaveLength(3);
  });

  it('never echoes a secret variable back', () => {
    const message = configProblems({ DATABASE_URL: 'mysql://root:hunter2@db/x' });
    expect(message).toContain('DATABASE_URL: expected a postgres:// or postgresql:// URL');
    expect(message).not.toContain('hunter2');
    const keys = configProblems({ CLOUDPI_MASTER_KEYS: 'k1:c2hvcnQ=' });
    expect(keys).toContain('key "k1" decodes to 5 bytes; AES-256 needs 32');
    expect(keys).not.toContain('c2hvcnQ=');
  });

  it('refuses PostgreSQL without master keys', () => {
    expect(configProblems({ DATABASE_URL: 'postgres://db.example/cloudpi' })).toContain(
      'CLOUDPI_MASTER_KEYS: required when DATABASE_URL is set',
    );
  });

  it('refuses duplicate and malformed key entries', () => {
    const k = masterKey('same');
    expect(() => parseMasterKeys(`${keyEntry(k)},${keyEntry(k)}`)).toThrow('key id "same" appears twice');
    expect(() => parseMasterKeys('no-colon')).toThrow('entry 1 is not <id>:<base64 key>');
    expect(() => parseMasterKeys(' , ')).toThrow('expected at least one');
  });

  it('polls ticket statuses every 5 minutes unless told otherwise, and checks the cron', () => {
    expect(loadConfig({}).ticketPollCron).toBe('*/5 * * * *');
    expect(loadConfig({ CLOUDPI_TICKET_POLL_CRON: ' 0 * * * * ' }).ticketPollCron).toBe('0 * * * *');
    expect(loadConfig({ CLOUDPI_TICKET_POLL_CRON: '' }).ticketPollCron).toBe('*/5 * * * *');
    expect(configProblems({ CLOUDPI_TICKET_POLL_CRON: 'every 5 minutes please' })).toContain(
      'CLOUDPI_TICKET_POLL_CRON: expected a cron expression with 5 fields, like "7 * * * *", got "every 5 minutes please"',
    );
    expect(configProblems({ CLOUDPI_TICKET_POLL_CRON: '*/5 * * *' })).toContain('CLOUDPI_TICKET_POLL_CRON:');
  });

  it('treats empty values as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '  ' }).port).toBe(3978);
  });

  it('reads .env, with the real environment winning', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cloudpi-env-'));
    const file = path.join(dir, '.env');
    writeFileSync(file, 'PORT=4000\nLOG_LEVEL=debug\n# comment\n');
    const env = readDotEnv({ LOG_LEVEL: 'warn' }, file);
    const config = loadConfig(env);
    expect(config.port).toBe(4000);
    expect(config.logLevel).toBe('warn');
    expect(readDotEnv({ A: '1' }, path.join(dir, 'missing.env'))).toEqual({ A: '1' });
  });
});
