/**
 * The Teams app package an admin uploads (Teams admin center > Manage apps > Upload, or Teams >
 * Apps > Manage your apps > Upload an app): manifests/teams/manifest.json with the bot's id and
 * this service's domain filled in, and the two icons, zipped at the root of the archive.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import yazl from 'yazl';
import { COMMANDS } from '../commands/grammar.js';
import { AppError, ErrorCode } from '../errors.js';
import { PROJECT_ROOT } from '../paths.js';

const TEAMS_DIR = path.join(PROJECT_ROOT, 'manifests', 'teams');
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Commands that only make sense in a channel or group chat. */
const CHANNEL_ONLY = new Set(['subscribe', 'unsubscribe']);

export interface TeamsPackageOptions {
  /** The Microsoft App ID of the Azure Bot registration. */
  readonly botId: string;
  /** The https URL Teams and browsers reach this service at. */
  readonly url: string;
  /** The Teams app id (default: the bot id, as Teams Toolkit does). */
  readonly appId?: string;
  readonly version?: string;
}

type Json = Record<string, unknown>;

/** The committed manifest, as a template. */
export function teamsManifestTemplate(): Json {
  return JSON.parse(readFileSync(path.join(TEAMS_DIR, 'manifest.json'), 'utf8')) as Json;
}

/** The command lists Teams shows, from the one command grammar (12 at most per list). */
export function teamsCommandLists(): Json[] {
  const entry = (c: (typeof COMMANDS)[number]) => ({
    title: c.name,
    description: c.description.slice(0, 4000),
  });
  return [
    { scopes: ['personal'], commands: COMMANDS.filter((c) => !CHANNEL_ONLY.has(c.name)).map(entry) },
    { scopes: ['team', 'groupChat'], commands: COMMANDS.map(entry) },
  ];
}

/** The manifest for one deployment. */
export function teamsManifest(options: TeamsPackageOptions): Json {
  const botId = options.botId.trim();
  if (!GUID.test(botId))
    throw new AppError(
      ErrorCode.VALIDATION,
      `--bot-id must be the Microsoft App ID of the Azure Bot (a GUID like 00000000-0000-0000-0000-000000000000); got "${botId.slice(0, 60)}".`,
    );
  const appId = (options.appId ?? botId).trim();
  if (!GUID.test(appId)) throw new AppError(ErrorCode.VALIDATION, '--app-id must be a GUID.');
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new AppError(
      ErrorCode.VALIDATION,
      `"${options.url}" is not a URL; give one like https://bot.example.com.`,
    );
  }
  if (url.protocol !== 'https:')
    throw new AppError(
      ErrorCode.VALIDATION,
      `Teams only calls https URLs; "${options.url}" is ${url.protocol.replace(':', '')}. Put the service behind TLS and give that URL.`,
    );
  if (url.username || url.password || url.search || url.hash)
    throw new AppError(
      ErrorCode.VALIDATION,
      'Give the plain https URL of the service, without credentials, query or fragment.',
    );
  const base = url.href.replace(/\/+$/, '');
  const template = teamsManifestTemplate();
  const [bot] = template.bots as Json[];
  return {
    ...template,
    ...(options.version ? { version: options.version } : {}),
    id: appId,
    developer: {
      ...(template.developer as Json),
      websiteUrl: `${base}/`,
      privacyUrl: `${base}/legal/privacy`,
      termsOfUseUrl: `${base}/legal/terms`,
    },
    bots: [{ ...bot, botId, commandLists: teamsCommandLists() }],
    validDomains: [url.host],
  };
}

/** The zip: manifest.json, color.png, outline.png at its root. */
export function teamsPackage(options: TeamsPackageOptions): Promise<Buffer> {
  const manifest = teamsManifest(options);
  const zip = new yazl.ZipFile();
  const mtime = new Date('2026-01-01T00:00:00Z');
  zip.addBuffer(Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), 'manifest.json', { mtime });
  for (const icon of ['color.png', 'outline.png'])
    zip.addBuffer(readFileSync(path.join(TEAMS_DIR, icon)), icon, { mtime });
  zip.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('error', reject);
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
  });
}
