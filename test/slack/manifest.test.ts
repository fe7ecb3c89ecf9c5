/**
 * manifests/slack/manifest.json against Slack's app manifest schema (slackapi/manifest-schema,
 * copied to test/fixtures/specs/slack/manifest-schema), and `cloudpi slack manifest`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BOT_SCOPES } from '../../adapters/chat/slack/app.js';
import { runCli } from '../../src/cli.js';
import { PROJECT_ROOT } from '../../src/paths.js';

type Schema = Record<string, unknown> | boolean;
type Json = Record<string, unknown>;

const SPECS = path.join(PROJECT_ROOT, 'test', 'fixtures', 'specs', 'slack', 'manifest-schema');
const REMOTE = 'https://raw.githubusercontent.com/slackapi/manifest-schema/v0.5.0/';
const load = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Json;
const root = load(path.join(SPECS, 'manifest.schema.json'));
const documents: Record<string, Json> = {
  [`${REMOTE}schemas/manifest.schema.1.0.0.json`]: load(
    path.join(SPECS, 'schemas', 'manifest.schema.1.0.0.json'),
  ),
  [`${REMOTE}schemas/manifest.schema.2.0.0.json`]: load(
    path.join(SPECS, 'schemas', 'manifest.schema.2.0.0.json'),
  ),
};

const typeOf = (v: unknown) =>
  v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v;

/**
 * The draft-07 keywords the manifest schemas use: $ref (local and the two remote documents),
 * type, enum, const, properties, patternProperties, additionalProperties, required, items,
 * min/maxItems, uniqueItems, min/maxLength, pattern, min/maxProperties, allOf, anyOf, oneOf, not.
 * Annotations (title, description, default, format, and Slack's non-standard "regex") are ignored.
 */
function validate(schema: Schema, value: unknown, at: string, doc: Json): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${at}: not allowed`];
  const errors: string[] = [];
  if (typeof schema.$ref === 'string') {
    const [base, pointer = ''] = schema.$ref.split('#');
    const target = base ? documents[base] : doc;
    if (!target) return [`${at}: unknown $ref ${schema.$ref}`];
    const resolved = pointer
      .split('/')
      .filter(Boolean)
      .reduce<unknown>((node, key) => (node as Json)[key.replace(/~1/g, '/').replace(/~0/g, '~')], target);
    errors.push(...validate(resolved as Schema, value, at, target));
  }
  const t = typeOf(value);
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((x) => x === t || (x === 'number' && t === 'integer')))
      return [`${at}: expected ${types}`];
  }
  if (schema.enum && !(schema.enum as unknown[]).some((e) => JSON.stringify(e) === JSON.stringify(value)))
    errors.push(`${at}: not one of ${JSON.stringify(schema.enum)}`);
  if ('const' in schema && JSON.stringify(schema.const) !== JSON.stringify(value))
    errors.push(`${at}: expected ${JSON.stringify(schema.const)}`);
  if (t === 'string') {
    const s = value as string;
    if (typeof schema.minLength === 'number' && s.length < schema.minLength) errors.push(`${at}: too short`);
    if (typeof schema.maxLength === 'number' && s.length > schema.maxLength) errors.push(`${at}: too long`);
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(s))
      errors.push(`${at}: does not match ${schema.pattern}`);
  }
  if (t === 'array') {
    const a = value as unknown[];
    if (typeof schema.minItems === 'number' && a.length < schema.minItems)
      errors.push(`${at}: too few items`);
    if (typeof schema.maxItems === 'number' && a.length > schema.maxItems)
      errors.push(`${at}: too many items`);
    if (schema.uniqueItems && new Set(a.map((x) => JSON.stringify(x))).size !== a.length)
      errors.push(`${at}: items not unique`);
    if (schema.items && !Array.isArray(schema.items))
      a.forEach((item, i) => {
        errors.push(...validate(schema.items as Schema, item, `${at}/${i}`, doc));
      });
  }
  if (t === 'object') {
    const o = value as Json;
    const keys = Object.keys(o);
    if (typeof schema.minProperties === 'number' && keys.length < schema.minProperties)
      errors.push(`${at}: too few properties`);
    if (typeof schema.maxProperties === 'number' && keys.length > schema.maxProperties)
      errors.push(`${at}: too many properties`);
    for (const key of (schema.required as string[] | undefined) ?? [])
      if (!(key in o)) errors.push(`${at}: missing ${key}`);
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    const patterns = Object.entries((schema.patternProperties ?? {}) as Record<string, Schema>);
    for (const key of keys) {
      let matched = false;
      if (key in properties) {
        matched = true;
        errors.push(...validate(properties[key]!, o[key], `${at}/${key}`, doc));
      }
      for (const [pattern, sub] of patterns) {
        if (new RegExp(pattern, 'u').test(key)) {
          matched = true;
          errors.push(...validate(sub, o[key], `${at}/${key}`, doc));
        }
      }
      if (!matched && schema.additionalProperties !== undefined)
        errors.push(...validate(schema.additionalProperties as Schema, o[key], `${at}/${key}`, doc));
    }
  }
  for (const sub of (schema.allOf as Schema[] | undefined) ?? [])
    errors.push(...validate(sub, value, at, doc));
  if (schema.anyOf && !(schema.anyOf as Schema[]).some((s) => validate(s, value, at, doc).length === 0))
    errors.push(`${at}: matches none of anyOf`);
  if (schema.oneOf) {
    const results = (schema.oneOf as Schema[]).map((s) => validate(s, value, at, doc));
    const passing = results.filter((r) => r.length === 0).length;
    if (passing !== 1)
      errors.push(`${at}: matches ${passing} of oneOf, expected exactly 1 (${results.flat().join('; ')})`);
  }
  if (schema.not && validate(schema.not as Schema, value, at, doc).length === 0)
    errors.push(`${at}: matches not`);
  return errors;
}

const validateManifest = (manifest: unknown) => validate(root, manifest, '', root);
const template = load(path.join(PROJECT_ROOT, 'manifests', 'slack', 'manifest.json'));

async function cli(args: string[], env: Record<string, string> = {}) {
  let out = '';
  let err = '';
  const code = await runCli(args, { env, out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

describe('Slack app manifest', () => {
  it('the validator catches what the schema forbids', () => {
    expect(validateManifest({ display_information: { name: 'x' } })).toEqual([]);
    expect(validateManifest({})).not.toEqual([]);
    expect(validateManifest({ ...template, unknown: true })).not.toEqual([]);
    const tooLong = structuredClone(template) as { display_information: { name: string } };
    tooLong.display_information.name = 'x'.repeat(36);
    expect(validateManifest(tooLong).join()).toContain('too long');
    const badUrl = structuredClone(template) as { settings: { interactivity: { request_url: string } } };
    badUrl.settings.interactivity.request_url = 'ftp://x';
    expect(validateManifest(badUrl).join()).toContain('does not match');
  });

  it('is valid against the Slack app manifest schema', () => {
    expect(validateManifest(template)).toEqual([]);
  });

  it('declares /cloudpi, interactivity, App Home, the events and the least bot scopes', () => {
    const m = template as {
      features: { app_home: Json; slash_commands: Json[]; bot_user: Json };
      oauth_config: { scopes: { bot: string[]; user?: string[] }; redirect_urls: string[] };
      settings: { event_subscriptions: { bot_events: string[]; request_url: string }; interactivity: Json };
    };
    expect(m.features.slash_commands.map((c) => c.command)).toEqual(['/cloudpi']);
    expect(m.features.app_home.home_tab_enabled).toBe(true);
    expect(m.settings.interactivity.is_enabled).toBe(true);
    expect(m.settings.event_subscriptions.bot_events.sort()).toEqual(
      ['app_home_opened', 'app_uninstalled', 'tokens_revoked'].sort(),
    );
    expect(m.oauth_config.scopes.bot).toEqual([...BOT_SCOPES]);
    expect(m.oauth_config.scopes.user).toBeUndefined();
  });

  it('`cloudpi slack manifest --url` fills in the URLs and stays valid', async () => {
    const { code, out } = await cli(['slack', 'manifest', '--url', 'https://bot.example.com/']);
    expect(code).toBe(0);
    const m = JSON.parse(out) as {
      features: { slash_commands: { url: string }[] };
      settings: { event_subscriptions: { request_url: string }; interactivity: { request_url: string } };
      oauth_config: { redirect_urls: string[] };
    };
    expect(validateManifest(m)).toEqual([]);
    expect(m.features.slash_commands[0]!.url).toBe('https://bot.example.com/slack/events');
    expect(m.settings.event_subscriptions.request_url).toBe('https://bot.example.com/slack/events');
    expect(m.settings.interactivity.request_url).toBe('https://bot.example.com/slack/events');
    expect(m.oauth_config.redirect_urls).toEqual(['https://bot.example.com/slack/oauth_redirect']);

    const behindPath = JSON.parse(
      (
        await cli([
          'slack',
          'manifest',
          '--url',
          'https://tools.example.com/cloudpi',
          '--name',
          'Acme CloudPi',
        ])
      ).out,
    ) as typeof m & { display_information: { name: string } };
    expect(behindPath.settings.interactivity.request_url).toBe(
      'https://tools.example.com/cloudpi/slack/events',
    );
    expect(behindPath.display_information.name).toBe('Acme CloudPi');
    expect(validateManifest(behindPath)).toEqual([]);

    const fromEnv = await cli(['slack', 'manifest'], { CLOUDPI_PUBLIC_URL: 'https://env.example.com' });
    expect(fromEnv.out).toContain('https://env.example.com/slack/events');
  });

  it('refuses URLs Slack cannot call', async () => {
    const http = await cli(['slack', 'manifest', '--url', 'http://bot.example.com']);
    expect(http.code).toBe(1);
    expect(http.err).toContain('Slack only sends requests to https URLs');
    const none = await cli(['slack', 'manifest']);
    expect(none.code).toBe(1);
    expect(none.err).toContain('cloudpi slack manifest --url https://bot.example.com');
  });
});
