/**
 * Small helpers of the Slack suites: a loopback stand-in for Slack's response_url endpoint,
 * finders for blocks and buttons in rendered views, and Events API bodies shaped like the Java
 * SDK's samples (AppHomeOpenedPayload, AppUninstalledPayload, TokensRevokedPayload).
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

type Json = Record<string, unknown>;

export interface ResponseUrls {
  /** A fresh response_url; posts to it are recorded under its id. */
  url(): string;
  /** A response_url that answers 404 (expired), to test the fallback. */
  expiredUrl(): string;
  readonly posts: { path: string; body: Json }[];
  close(): Promise<void>;
}

/** Slack's response_url endpoint: accepts JSON posts (200 "ok"), records them. */
export async function startResponseUrls(): Promise<ResponseUrls> {
  const posts: { path: string; body: Json }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url?.startsWith('/expired/')) {
        res.writeHead(404).end('expired_url');
        return;
      }
      posts.push({ path: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json });
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: () => `${base}/commands/${randomBytes(6).toString('hex')}`,
    expiredUrl: () => `${base}/expired/${randomBytes(6).toString('hex')}`,
    posts,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export function blocksOf(view: Json | undefined): Json[] {
  return Array.isArray(view?.blocks) ? (view.blocks as Json[]) : [];
}

/** All text of a view or message (section, header, context, button, label texts), joined. */
export function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(textOf).join('\n');
  if (value && typeof value === 'object') {
    const o = value as Json;
    return Object.entries(o)
      .filter(([k]) => k !== 'private_metadata' && k !== 'action_id' && k !== 'block_id')
      .map(([, v]) => textOf(v))
      .join('\n');
  }
  return '';
}

export function blockById(view: Json | undefined, blockId: string): Json | undefined {
  return blocksOf(view).find((b) => b.block_id === blockId);
}

/** The button whose label is `label` (in the block `blockId` if given). */
export function button(view: Json | undefined, label: string, blockId?: string): Json {
  for (const block of blocksOf(view)) {
    if (blockId && block.block_id !== blockId) continue;
    const elements = Array.isArray(block.elements) ? (block.elements as Json[]) : [];
    const found = elements.find((e) => e.type === 'button' && (e.text as Json | undefined)?.text === label);
    if (found) return found;
  }
  throw new Error(`no button "${label}"${blockId ? ` in ${blockId}` : ''}`);
}

export function inputBlock(view: Json | undefined, blockId: string): Json {
  const block = blockById(view, blockId);
  if (block?.type !== 'input') throw new Error(`no input block ${blockId}`);
  return block;
}

/** An Events API callback (event_callback) for `event`, as Slack posts it. */
export function eventCallback(teamId: string, event: Json): Json {
  return {
    token: 'verification-token-unused',
    team_id: teamId,
    api_app_id: 'A0CLOUDPI',
    event: { event_ts: `${Math.floor(Date.now() / 1000)}.000100`, ...event },
    type: 'event_callback',
    event_id: `Ev${randomBytes(5).toString('hex').toUpperCase()}`,
    event_time: Math.floor(Date.now() / 1000),
    authorizations: [
      { enterprise_id: null, team_id: teamId, user_id: 'U0BOT', is_bot: true, is_enterprise_install: false },
    ],
    is_ext_shared_channel: false,
  };
}
