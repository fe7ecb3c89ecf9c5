/**
 * manifests/teams/manifest.json against the Teams app manifest schema (v1.29, the newest the
 * schema file declares; copied to test/fixtures/specs/teams), its icons, and the package that
 * `cloudpi teams package` writes.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import yauzl from 'yauzl';
import { runCli } from '../../src/cli.js';
import { COMMANDS } from '../../src/commands/grammar.js';
import { teamsCommandLists, teamsManifest } from '../../src/packaging/teams-package.js';
import { PROJECT_ROOT } from '../../src/paths.js';

type Json = Record<string, unknown>;
const TEAMS = path.join(PROJECT_ROOT, 'manifests', 'teams');
const schema = JSON.parse(
  readFileSync(
    path.join(PROJECT_ROOT, 'test', 'fixtures', 'specs', 'teams', 'MicrosoftTeams.schema.json'),
    'utf8',
  ),
) as Json;
interface Validator {
  (value: unknown): boolean;
  errors?: { instancePath: string; message?: string; params: unknown }[] | null;
}
// CommonJS packages with default exports: loaded as they are.
const require = createRequire(import.meta.url);
const Ajv = (require('ajv-draft-04') as { default: new (o: object) => { compile(s: object): Validator } })
  .default;
const addFormats = (require('ajv-formats') as { default: (ajv: unknown) => void }).default;
const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);
const validateManifest = ajv.compile(schema);
const errorsOf = (manifest: unknown) =>
  validateManifest(manifest)
    ? []
    : (validateManifest.errors ?? []).map(
        (e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`,
      );
const committed = () => JSON.parse(readFileSync(path.join(TEAMS, 'manifest.json'), 'utf8')) as Json;
const BOT_ID = '3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b';

function unzip(zip: Buffer): Promise<Record<string, Buffer>> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(zip, { lazyEntries: true }, (error, archive) => {
      if (error || !archive) return reject(error);
      const files: Record<string, Buffer> = {};
      archive.on('entry', (entry: yauzl.Entry) => {
        archive.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(e);
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => {
            files[entry.fileName] = Buffer.concat(chunks);
            archive.readEntry();
          });
        });
      });
      archive.on('end', () => resolve(files));
      archive.readEntry();
    });
  });
}

describe('Teams app manifest', () => {
  it('is valid against the newest manifest schema the schema file declares', () => {
    const declared = ((schema.properties as Json).manifestVersion as Json).const;
    expect(declared).toBe('1.29');
    const manifest = committed();
    expect(manifest.manifestVersion).toBe(declared);
    expect(errorsOf(manifest)).toEqual([]);
    // The validator does refuse what the schema refuses.
    expect(errorsOf({ ...manifest, manifestVersion: '1.30' })).not.toEqual([]);
    expect(errorsOf({ ...manifest, bots: [{ botId: 'x', scopes: ['everywhere'] }] })).not.toEqual([]);
    expect(errorsOf({ ...manifest, unknownProperty: true })).not.toEqual([]);
  });

  it('lists the chat commands of the one grammar (12 at most per list)', () => {
    const [bot] = committed().bots as Json[];
    expect(bot!.commandLists).toEqual(teamsCommandLists());
    const lists = teamsCommandLists() as { scopes: string[]; commands: { title: string }[] }[];
    for (const list of lists) expect(list.commands.length).toBeLessThanOrEqual(12);
    const channel = lists.find((l) => l.scopes.includes('team'))!;
    expect(channel.commands.map((c) => c.title)).toEqual(COMMANDS.map((c) => c.name));
    expect(lists.find((l) => l.scopes.includes('personal'))!.commands.map((c) => c.title)).not.toContain(
      'subscribe',
    );
  });

  it('has a 192×192 color icon and a 32×32 transparent white outline icon', () => {
    const color = PNG.sync.read(readFileSync(path.join(TEAMS, 'color.png')));
    expect([color.width, color.height]).toEqual([192, 192]);
    const outline = PNG.sync.read(readFileSync(path.join(TEAMS, 'outline.png')));
    expect([outline.width, outline.height]).toEqual([32, 32]);
    let transparent = 0;
    let opaque = 0;
    for (let i = 0; i < outline.data.length; i += 4) {
      const [r, g, b, a] = [
        outline.data[i]!,
        outline.data[i + 1]!,
        outline.data[i + 2]!,
        outline.data[i + 3]!,
      ];
      if (a === 0) transparent++;
      else {
        opaque++;
        // Teams requires the outline to be white (any alpha) on transparency.
        expect([r, g, b]).toEqual([255, 255, 255]);
      }
    }
    expect(transparent).toBeGreaterThan(100);
    expect(opaque).toBeGreaterThan(50);
  });

  it('fills in the bot id and the service URL, and refuses what Teams would refuse', () => {
    const manifest = teamsManifest({ botId: BOT_ID, url: 'https://bot.example.com/base/' });
    expect(errorsOf(manifest)).toEqual([]);
    expect(manifest.id).toBe(BOT_ID);
    expect((manifest.bots as Json[])[0]!.botId).toBe(BOT_ID);
    expect(manifest.validDomains).toEqual(['bot.example.com']);
    expect((manifest.developer as Json).privacyUrl).toBe('https://bot.example.com/base/legal/privacy');
    expect(() => teamsManifest({ botId: 'not-a-guid', url: 'https://bot.example.com' })).toThrow(/GUID/);
    expect(() => teamsManifest({ botId: BOT_ID, url: 'http://bot.example.com' })).toThrow(/https/);
    expect(() => teamsManifest({ botId: BOT_ID, url: 'https://u:p@bot.example.com' })).toThrow(/credentials/);
    expect(() => teamsManifest({ botId: BOT_ID, url: 'bot.example.com' })).toThrow(/not a URL/);
  });

  it('cloudpi teams package writes the zip an admin uploads', async () => {
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'cloudpi-teams-')), 'app.zip');
    const output: string[] = [];
    const io = { out: (s: string) => output.push(s), err: (s: string) => output.push(s), env: {} };
    const code = await runCli(
      ['teams', 'package', '--bot-id', BOT_ID, '--url', 'https://bot.example.com', '--out', out],
      io,
    );
    expect(code, output.join('')).toBe(0);
    expect(output.join('')).toContain('Upload');
    const files = await unzip(readFileSync(out));
    expect(Object.keys(files).sort()).toEqual(['color.png', 'manifest.json', 'outline.png']);
    const manifest = JSON.parse(files['manifest.json']!.toString('utf8')) as Json;
    expect(errorsOf(manifest)).toEqual([]);
    expect(manifest.id).toBe(BOT_ID);
    expect(files['color.png']!.equals(readFileSync(path.join(TEAMS, 'color.png')))).toBe(true);

    const bad: string[] = [];
    const refused = await runCli(
      ['teams', 'package', '--bot-id', 'nope', '--url', 'https://bot.example.com'],
      {
        out: (s) => bad.push(s),
        err: (s) => bad.push(s),
        env: {},
      },
    );
    expect(refused).toBe(1);
    expect(bad.join('')).toContain('GUID');
  });
});
