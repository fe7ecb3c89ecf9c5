/**
 * Hostile input against one real `cloudpi serve` process on PostgreSQL: forged, tampered, stale
 * and replayed Slack requests; Teams activities without a valid Bot Framework token; oversized,
 * malformed and polluting ingest bodies; chat markup and HTML in every text field of a
 * recommendation; SSRF addresses in every admin-entered URL and host. Each is refused with a clear
 * status or message, nothing is stored (the database is compared table by table), nothing reaches
 * Slack or Teams, no connection is made, and the process keeps serving without logging an error.
 * Last, authentic (signed) Slack payloads of shapes Slack never sends: answered without a 5xx.
 *
 * Needs TEST_DATABASE_URL (a PostgreSQL server on which the test creates and drops a database).
 */
import { type AddressInfo, createServer, type Server } from 'node:net';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEAMS_VERBS } from '../../adapters/chat/teams/render.js';
import { isNonPublicAddress } from '../../src/net/url-policy.js';
import type { Tenant } from '../../src/storage/repositories/tenants.js';
import { eventCallback } from '../slack/helpers.js';
import { validateAdaptiveCard } from '../support/adaptive-cards.js';
import { TEST_DATABASE_URL } from '../support/databases.js';
import { checkViewSubmissionAnswer, validateMessageBlocks } from '../support/fakes/slack-fake.js';
import type { InboundTokenFlaw, Json } from '../support/fakes/teams-fake.js';
import {
  blockActionsPayload,
  fakeTriggerId,
  postSlackCommand,
  signSlackRequest,
  slashCommandForm,
  viewSubmissionPayload,
} from '../support/slack-requests.js';
import { waitFor } from '../support/wait.js';
import { HOSTILE_SMTP_HOSTS, HOSTILE_URLS, MARKUP, MARKUP_SHORT, RAW_CONTROL } from './hostile/payloads.js';
import {
  type HostileService,
  logLinesAtLeast,
  SIGNING_SECRET,
  startHostileService,
} from './hostile/service.js';
import { type Snapshot, snapshot } from './hostile/snapshot.js';

const SKIP_REASON =
  'skipped: TEST_DATABASE_URL is not set (a PostgreSQL server on which this test may create a database)';

if (!TEST_DATABASE_URL) console.warn(`hostile-input.test.ts ${SKIP_REASON}`);

/** Unix seconds. */
const now = () => Math.floor(Date.now() / 1000);

describe.skipIf(!TEST_DATABASE_URL)(
  TEST_DATABASE_URL
    ? 'hostile input against one service process on PostgreSQL'
    : `hostile input (${SKIP_REASON})`,
  () => {
    let svc: HostileService;
    let slackTenant: Tenant;
    let apiKey: string;
    /** The one Slack channel subscribed to every recommendation. */
    const CHANNEL = 'C0HOSTILE1';
    /** A user whose App Home opening is the "everything before has been handled" marker. */
    const BARRIER_USER = 'U0BARRIER1';

    beforeAll(async () => {
      svc = await startHostileService();
      slackTenant = await svc.repos.tenants.ensure('slack', svc.slack.teamId, 'Hostile workspace');
      apiKey = (await svc.repos.apiKeys.create(slackTenant.id, 'hostile-input test')).key;
      svc.slack.addUser({ id: BARRIER_USER, name: 'barrier', is_admin: false, is_owner: false });
      svc.slack.joinChannel(CHANNEL);
      await svc.repos.routes.create(slackTenant.id, {
        platform: 'slack',
        channelId: CHANNEL,
        filters: {},
        createdBy: 'test',
      });
    }, 120_000);

    afterAll(async () => {
      await svc?.stop();
    });

    // -------------------------------------------------------------------------------------------
    // Shared checks.

    async function expectNothingStored(before: Snapshot): Promise<void> {
      expect(await snapshot(svc.handle)).toEqual(before);
    }

    /** Slack Web API calls that do something (auth.test and the barrier's own calls left out). */
    function slackEffects() {
      return svc.slack.calls.filter(
        (c) => c.method !== 'auth.test' && c.body.user !== BARRIER_USER && c.body.user_id !== BARRIER_USER,
      );
    }

    /**
     * A valid Events API callback (App Home opened by the barrier user) and its views.publish: every
     * request sent before it has been dispatched, so the absence of effects after it means something.
     */
    async function slackBarrier(): Promise<void> {
      const published = () =>
        svc.slack.calls.filter(
          (c) => c.method === 'views.publish' && c.body.user_id === BARRIER_USER && c.status === 200,
        ).length;
      const before = published();
      const raw = JSON.stringify(
        eventCallback(svc.slack.teamId, {
          type: 'app_home_opened',
          user: BARRIER_USER,
          channel: 'D0BARRIER1',
          tab: 'home',
        }),
      );
      const res = await postSlack(raw, 'application/json', signed(raw));
      expect(res.status).toBe(200);
      await waitFor(() => published() > before);
    }

    function signed(raw: string, ts = now(), secret = SIGNING_SECRET): Record<string, string> {
      return {
        'x-slack-request-timestamp': String(ts),
        'x-slack-signature': signSlackRequest(secret, ts, raw),
      };
    }

    function postSlack(
      raw: string | Buffer,
      contentType: string,
      headers: Record<string, string>,
    ): Promise<Response> {
      return fetch(`${svc.url}/slack/events`, {
        method: 'POST',
        headers: { 'content-type': contentType, ...headers },
        body: raw,
      });
    }

    // -------------------------------------------------------------------------------------------
    describe('Slack: /slack/events (commands, interactivity and events on one URL)', () => {
      type Kind = 'command' | 'interaction' | 'event';
      const KINDS: readonly Kind[] = ['command', 'interaction', 'event'];
      const FORM = 'application/x-www-form-urlencoded';

      /** A request of each kind that would act (answer, open a modal, publish a view) if accepted. */
      function genuine(kind: Kind): { raw: string; contentType: string } {
        const { teamId, users } = svc.slack;
        if (kind === 'command') {
          return {
            raw: slashCommandForm({
              text: 'integrations',
              user_id: users.admin,
              team_id: teamId,
              trigger_id: fakeTriggerId(),
              channel_id: 'C0GENERAL',
              response_url: svc.responses.url(),
            }).toString(),
            contentType: FORM,
          };
        }
        if (kind === 'interaction') {
          const payload = blockActionsPayload({
            teamId,
            userId: users.admin,
            actionId: 'cloudpi.connect.jira',
            triggerId: svc.slack.issueTriggerId(users.admin),
            channelId: 'C0GENERAL',
            responseUrl: svc.responses.url(),
          });
          return {
            raw: new URLSearchParams({ payload: JSON.stringify(payload) }).toString(),
            contentType: FORM,
          };
        }
        return {
          raw: JSON.stringify(
            eventCallback(teamId, {
              type: 'app_home_opened',
              user: users.admin,
              channel: 'D0ADMIN1',
              tab: 'home',
            }),
          ),
          contentType: 'application/json',
        };
      }

      it('refuses a bad signature, missing headers and a body altered after signing with 401, and acts on none', async () => {
        const before = await snapshot(svc.handle);
        const effects = slackEffects().length;
        const posts = svc.responses.posts.length;
        const statuses: Record<string, number> = {};
        for (const kind of KINDS) {
          const { raw, contentType } = genuine(kind);
          const ts = now();
          const cases: Record<string, { body: string; headers: Record<string, string> }> = {
            'signed with another secret': { body: raw, headers: signed(raw, ts, 'not-the-signing-secret') },
            'made-up signature': {
              body: raw,
              headers: {
                'x-slack-request-timestamp': String(ts),
                'x-slack-signature': `v0=${'0'.repeat(64)}`,
              },
            },
            'v1 signature': {
              body: raw,
              headers: {
                'x-slack-request-timestamp': String(ts),
                'x-slack-signature': signSlackRequest(SIGNING_SECRET, ts, raw).replace(/^v0=/, 'v1='),
              },
            },
            'empty signature': {
              body: raw,
              headers: { 'x-slack-request-timestamp': String(ts), 'x-slack-signature': '' },
            },
            'no signature': { body: raw, headers: { 'x-slack-request-timestamp': String(ts) } },
            'no timestamp': {
              body: raw,
              headers: { 'x-slack-signature': signSlackRequest(SIGNING_SECRET, ts, raw) },
            },
            'no headers': { body: raw, headers: {} },
            'body altered after signing': { body: `${raw}&x=1`, headers: signed(raw, ts) },
            'body cut after signing': { body: raw.slice(0, -3), headers: signed(raw, ts) },
            'signed for another timestamp': {
              body: raw,
              headers: {
                'x-slack-request-timestamp': String(ts - 1),
                'x-slack-signature': signSlackRequest(SIGNING_SECRET, ts, raw),
              },
            },
          };
          for (const [name, c] of Object.entries(cases)) {
            statuses[`${kind}: ${name}`] = (await postSlack(c.body, contentType, c.headers)).status;
          }
        }
        expect(statuses).toEqual(Object.fromEntries(Object.keys(statuses).map((k) => [k, 401])));
        await slackBarrier();
        expect(slackEffects()).toHaveLength(effects);
        expect(svc.responses.posts).toHaveLength(posts);
        await expectNothingStored(before);

        // The same requests signed right do act: what was refused above would have done something.
        for (const kind of KINDS) {
          const { raw, contentType } = genuine(kind);
          expect((await postSlack(raw, contentType, signed(raw))).status, kind).toBe(200);
        }
        await waitFor(() => {
          const calls = slackEffects().slice(effects);
          return (
            calls.some((c) => c.method === 'views.open') &&
            calls.some((c) => c.method === 'views.publish' && c.body.user_id === svc.slack.users.admin) &&
            svc.responses.posts.length > posts
          );
        });
      });

      it('refuses timestamps more than five minutes off, and ones that are not Unix seconds, with 401', async () => {
        const before = await snapshot(svc.handle);
        const effects = slackEffects().length;
        const statuses: Record<string, number> = {};
        for (const kind of KINDS) {
          const { raw, contentType } = genuine(kind);
          for (const [name, ts] of [
            ['six minutes old', now() - 6 * 60],
            ['a day old', now() - 86_400],
            ['six minutes ahead', now() + 6 * 60],
            ['zero', 0],
          ] as const) {
            statuses[`${kind}: ${name}`] = (await postSlack(raw, contentType, signed(raw, ts))).status;
          }
          // Signed over the number Bolt would read from the header, so only the header's form is wrong.
          for (const header of [
            'abc',
            '-1',
            '1e9',
            `${now()}.5`,
            `0x${now().toString(16)}`,
            '9'.repeat(40),
          ]) {
            const asNumber = Number(header);
            const headers = {
              'x-slack-request-timestamp': header,
              'x-slack-signature': signSlackRequest(
                SIGNING_SECRET,
                Number.isFinite(asNumber) ? asNumber : now(),
                raw,
              ),
            };
            statuses[`${kind}: timestamp ${JSON.stringify(header)}`] = (
              await postSlack(raw, contentType, headers)
            ).status;
          }
        }
        expect(statuses).toEqual(Object.fromEntries(Object.keys(statuses).map((k) => [k, 401])));
        await slackBarrier();
        expect(slackEffects()).toHaveLength(effects);
        await expectNothingStored(before);
      });

      it('answers a genuine request, and refuses the same bytes replayed once its timestamp is five minutes old', async () => {
        const responseUrl = svc.responses.url();
        const path = new URL(responseUrl).pathname;
        const raw = slashCommandForm({
          text: 'help',
          user_id: svc.slack.users.member,
          team_id: svc.slack.teamId,
          trigger_id: fakeTriggerId(),
          channel_id: 'C0GENERAL',
          response_url: responseUrl,
        }).toString();
        // Stamped 293 s ago: inside Slack's window now, outside it a few seconds later.
        const ts = now() - 293;
        const headers = signed(raw, ts);
        expect((await postSlack(raw, FORM, headers)).status).toBe(200);
        await waitFor(() => svc.responses.posts.find((p) => p.path === path));

        while (now() - ts <= 301) await sleep(250);
        const before = await snapshot(svc.handle);
        const effects = slackEffects().length;
        expect((await postSlack(raw, FORM, headers)).status).toBe(401);
        await slackBarrier();
        expect(svc.responses.posts.filter((p) => p.path === path)).toHaveLength(1);
        expect(slackEffects()).toHaveLength(effects);
        await expectNothingStored(before);
      });

      it('refuses bodies over 4 MB with 413, signed or not, before verifying them', async () => {
        const before = await snapshot(svc.handle);
        const huge = `text=${'a'.repeat(5 * 1024 * 1024)}`;
        expect((await postSlack(huge, FORM, signed(huge))).status).toBe(413);
        expect((await postSlack(huge, FORM, { 'x-slack-request-timestamp': String(now()) })).status).toBe(
          413,
        );
        const hugeJson = JSON.stringify({ type: 'event_callback', pad: 'x'.repeat(5 * 1024 * 1024) });
        expect((await postSlack(hugeJson, 'application/json', signed(hugeJson))).status).toBe(413);
        // Without a current timestamp it is refused before the body is read at all.
        expect((await postSlack(huge, FORM, {})).status).toBe(401);
        await slackBarrier();
        await expectNothingStored(before);
      });

      it('refuses signed bodies that are neither form nor JSON, or whose payload is not JSON, with 400', async () => {
        const before = await snapshot(svc.handle);
        const effects = slackEffects().length;
        const cases: [string, string, string][] = [
          ['plain text', 'text/plain', 'hello, is this Slack?'],
          ['XML', 'application/xml', '<?xml version="1.0"?><payload type="block_actions"/>'],
          [
            'multipart',
            'multipart/form-data; boundary=x',
            '--x\r\nContent-Disposition: form-data; name="payload"\r\n\r\n{}\r\n--x--',
          ],
          ['interaction payload not JSON', FORM, 'payload=%7Bnot-json'],
          [
            'interaction payload cut',
            FORM,
            `payload=${encodeURIComponent('{"type":"block_actions","actions":[')}`,
          ],
          ['event body not JSON', 'application/json', '{"type":"event_callback",'],
          ['empty JSON body', 'application/json', ''],
          ['binary', 'application/octet-stream', '\u0000\u0001\u0002\u00ff'],
        ];
        const statuses: Record<string, number> = {};
        for (const [name, contentType, raw] of cases)
          statuses[name] = (await postSlack(raw, contentType, signed(raw))).status;
        expect(statuses).toEqual(Object.fromEntries(cases.map(([name]) => [name, 400])));
        await slackBarrier();
        expect(slackEffects()).toHaveLength(effects);
        await expectNothingStored(before);
      });
    });

    // -------------------------------------------------------------------------------------------
    describe('Teams: /api/messages', () => {
      const FLAWS: readonly InboundTokenFlaw[] = [
        'wrong-key',
        'unknown-key',
        'unendorsed-key',
        'expired',
        'not-yet-valid',
        'wrong-audience',
        'wrong-issuer',
        'missing-service-url',
        'wrong-service-url',
      ];

      function postTeams(body: string, headers: Record<string, string>): Promise<Response> {
        return fetch(`${svc.url}/api/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
          body,
        });
      }

      it('refuses activities without a valid Bot Framework token with 401 and a JSON error, and answers none', async () => {
        const before = await snapshot(svc.handle);
        const sent = svc.teams.activities.length;
        const activity = svc.teams.message('integrations', { conversation: 'personal', user: 'admin' });
        const body = JSON.stringify(activity);
        const unsigned = (claims: Json) =>
          `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
        const statuses: Record<string, number> = {};
        const anonymous = await postTeams(body, {});
        statuses['no Authorization'] = anonymous.status;
        expect(await anonymous.json()).toMatchObject({
          error: { code: 'UNAUTHENTICATED', message: expect.stringContaining('Authorization: Bearer') },
        });
        statuses['Basic scheme'] = (
          await postTeams(body, { authorization: `Basic ${Buffer.from('app:secret').toString('base64')}` })
        ).status;
        statuses['Bearer without token'] = (await postTeams(body, { authorization: 'Bearer' })).status;
        statuses['Bearer garbage'] = (await postTeams(body, { authorization: 'Bearer not.a.jwt' })).status;
        statuses['alg none'] = (
          await postTeams(body, {
            authorization: `Bearer ${unsigned({ iss: svc.teams.issuer, aud: svc.teams.appId, serviceurl: activity.serviceUrl, exp: now() + 600 })}`,
          })
        ).status;
        for (const flaw of FLAWS) {
          const token = await svc.teams.signInbound(activity, { flaw });
          const res = await postTeams(body, { authorization: `Bearer ${token}` });
          statuses[flaw] = res.status;
          expect(((await res.json()) as { error?: { code?: string } }).error?.code, flaw).toBe(
            'UNAUTHENTICATED',
          );
        }
        expect(statuses).toEqual(Object.fromEntries(Object.keys(statuses).map((k) => [k, 401])));

        // Still answering: a genuine activity gets its reply.
        await expectNothingStored(before);
        expect(svc.teams.activities).toHaveLength(sent);
        const ok = await svc.teams.send(
          svc.url,
          svc.teams.message('help', { conversation: 'personal', user: 'member' }),
        );
        expect(ok.status).toBe(200);
        await waitFor(() => svc.teams.activities.length > sent);
      });

      it('refuses malformed and oversized activities with 4xx, never 500', async () => {
        const activity = svc.teams.message('help', { conversation: 'personal', user: 'member' });
        const token = await svc.teams.signInbound(activity);
        const before = await snapshot(svc.handle);
        const sent = svc.teams.activities.length;
        const big = JSON.stringify({ ...activity, text: 'x'.repeat(600 * 1024) });
        const cases: [string, string, Record<string, string>, number[]][] = [
          ['not JSON, no token', '{"type":', {}, [401]],
          ['not JSON', '{"type":', { authorization: `Bearer ${token}` }, [400]],
          ['JSON array', '[]', { authorization: `Bearer ${token}` }, [400]],
          ['JSON string', '"message"', { authorization: `Bearer ${token}` }, [400]],
          [
            'type is a number',
            JSON.stringify({ ...activity, type: 5 }),
            { authorization: `Bearer ${token}` },
            [400],
          ],
          [
            'no type',
            JSON.stringify({ ...activity, type: undefined }),
            { authorization: `Bearer ${token}` },
            [400],
          ],
          [
            'conversation is a string',
            JSON.stringify({ ...activity, conversation: 'x' }),
            { authorization: `Bearer ${token}` },
            [400],
          ],
          ['over 512 KB, no token', big, {}, [401]],
          ['over 512 KB', big, { authorization: `Bearer ${token}` }, [413]],
        ];
        const statuses: Record<string, number> = {};
        for (const [name, body, headers] of cases) statuses[name] = (await postTeams(body, headers)).status;
        for (const [name, , , allowed] of cases)
          expect(allowed, `${name}: ${statuses[name]}`).toContain(statuses[name]);
        await expectNothingStored(before);
        expect(svc.teams.activities).toHaveLength(sent);
        expect(svc.exited()).toBe(false);
      });
    });

    // -------------------------------------------------------------------------------------------
    describe('Ingest API: POST /api/v1/recommendations', () => {
      const endpoint = () => `${svc.url}/api/v1/recommendations`;
      function ingest(body: string | Buffer | ReadableStream, headers: Record<string, string> = {}) {
        return fetch(endpoint(), {
          method: 'POST',
          headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', ...headers },
          body,
          ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
        } as RequestInit);
      }
      async function errorOf(
        res: Response,
      ): Promise<{ status: number; code: string; message: string; body: Json }> {
        expect(res.headers.get('content-type')).toMatch(/^application\/json/);
        const body = (await res.json()) as { error: { code: string; message: string } } & Json;
        expect(body.error, `${res.status} ${JSON.stringify(body).slice(0, 300)}`).toBeDefined();
        return { status: res.status, code: body.error.code, message: body.error.message, body };
      }
      const cardsPosted = () => svc.slack.messages.filter((m) => m.channel === CHANNEL).length;

      let before: Snapshot;
      let posted: number;
      beforeAll(async () => {
        before = await snapshot(svc.handle);
        posted = cardsPosted();
      });

      it('refuses callers without a valid API key with 401, before reading the body', async () => {
        const valid = { id: 'rec-auth-1', title: 'Delete idle volume' };
        const wrongKey = `cpk_${'a'.repeat(12)}_${'b'.repeat(43)}`;
        const cases: [string, Record<string, string>][] = [
          ['no Authorization', { authorization: '' }],
          ['Basic scheme', { authorization: `Basic ${Buffer.from(`x:${apiKey}`).toString('base64')}` }],
          ['Bearer without key', { authorization: 'Bearer ' }],
          ['unknown key', { authorization: `Bearer ${wrongKey}` }],
          [
            'key with a changed character',
            { authorization: `Bearer ${apiKey.slice(0, -1)}${apiKey.endsWith('A') ? 'B' : 'A'}` },
          ],
          ['key with a suffix', { authorization: `Bearer ${apiKey}x` }],
        ];
        for (const [name, headers] of cases) {
          const res = await ingest(JSON.stringify(valid), headers);
          const error = await errorOf(res);
          expect(error.status, name).toBe(401);
          expect(error.code, name).toBe('UNAUTHENTICATED');
          expect(error.message, name).toMatch(/Authorization: Bearer <key>|not valid or has been revoked/);
          expect(res.headers.get('www-authenticate'), name).toMatch(/^Bearer realm="cloudpi"/);
        }
        // An anonymous 11 MB body is refused on its headers (401), not parsed (413).
        const res = await ingest(Buffer.alloc(11 * 1024 * 1024, 0x20), {
          authorization: `Bearer ${wrongKey}`,
        });
        expect((await errorOf(res)).status).toBe(401);
      });

      it('refuses bodies over the 10 MB limit with 413 naming the limit, however they are sent', async () => {
        const padded = (bytes: number) => {
          const head = '{"id":"rec-big-1","title":"Big","description":"';
          return `${head}${'x'.repeat(bytes - head.length - 2)}"}`;
        };
        const limit = 10 * 1024 * 1024;
        const declared = await errorOf(await ingest(padded(limit + 1)));
        expect(declared).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' });
        expect(declared.message).toBe(`The request body is larger than the ${limit} byte limit.`);

        // Chunked (no Content-Length): cut off once it passes the limit.
        const chunk = new TextEncoder().encode('x'.repeat(1024 * 1024));
        let sentChunks = 0;
        const stream = new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(new TextEncoder().encode('{"id":"rec-big-2","title":"Big","description":"'));
          },
          pull(controller) {
            if (sentChunks++ < 12) controller.enqueue(chunk);
            else {
              controller.enqueue(new TextEncoder().encode('"}'));
              controller.close();
            }
          },
        });
        const chunked = await errorOf(await ingest(stream));
        expect(chunked).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' });
        expect(sentChunks).toBeGreaterThan(10);

        // A gzip bomb: 64 MB of zeros in a few KB; the limit counts the inflated bytes.
        const bomb = gzipSync(Buffer.from(padded(64 * 1024 * 1024)));
        expect(bomb.length).toBeLessThan(1024 * 1024);
        const inflated = await errorOf(await ingest(bomb, { 'content-encoding': 'gzip' }));
        expect(inflated).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' });
      });

      it('refuses batches over 500 recommendations with 413 naming the batch limit', async () => {
        const items = Array.from({ length: 501 }, (_, i) => ({ id: `rec-batch-${i}`, title: `Batch ${i}` }));
        for (const body of [items, { recommendations: items }]) {
          const error = await errorOf(await ingest(JSON.stringify(body)));
          expect(error).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' });
          expect(error.message).toContain('A batch holds at most 500 recommendations; this one has 501.');
          expect((error.body.error as Json).details).toEqual({ maxBatch: 500, received: 501 });
        }
      });

      it('refuses malformed JSON, other content types and encodings with 400 saying what to send', async () => {
        const cases: [string, string | Buffer, Record<string, string>, RegExp][] = [
          ['cut JSON', '{"id":"rec-1","title":', {}, /not valid JSON/],
          ['single quotes', "{'id':'rec-1','title':'x'}", {}, /not valid JSON/],
          ['trailing comma', '{"id":"rec-1","title":"x",}', {}, /not valid JSON/],
          ['a bare number', '42', {}, /must be a JSON object or array/],
          ['a bare string', '"rec-1"', {}, /must be a JSON object or array/],
          ['null', 'null', {}, /must be a JSON object or array/],
          [
            'form-encoded',
            'id=rec-1&title=x',
            { 'content-type': 'application/x-www-form-urlencoded' },
            /Content-Type: application\/json/,
          ],
          [
            'text/plain',
            '{"id":"rec-1","title":"x"}',
            { 'content-type': 'text/plain' },
            /Content-Type: application\/json/,
          ],
          [
            'no content type',
            '{"id":"rec-1","title":"x"}',
            { 'content-type': '' },
            /Content-Type: application\/json/,
          ],
          [
            'XML',
            '<recommendation id="rec-1"/>',
            { 'content-type': 'application/xml' },
            /Content-Type: application\/json/,
          ],
          [
            'Latin-1',
            Buffer.from('{"id":"rec-1","title":"caf\u00e9"}', 'latin1'),
            { 'content-type': 'application/json; charset=iso-8859-1' },
            /encoding is not supported/,
          ],
          [
            'unknown charset',
            '{"id":"rec-1","title":"x"}',
            { 'content-type': 'application/json; charset=klingon' },
            /encoding is not supported/,
          ],
          [
            'unknown content encoding',
            '{"id":"rec-1","title":"x"}',
            { 'content-encoding': 'compress' },
            /encoding is not supported/,
          ],
          [
            'gzip header, not gzip',
            '{"id":"rec-1","title":"x"}',
            { 'content-encoding': 'gzip' },
            /could not be read \(incorrect header check\)/,
          ],
        ];
        for (const [name, body, headers, says] of cases) {
          const error = await errorOf(await ingest(body, headers));
          expect([error.status, error.code], name).toEqual([400, 'VALIDATION']);
          expect(error.message, name).toMatch(says);
        }
      });

      it('refuses deeply nested bodies with 400, without exhausting the stack', async () => {
        const nested = (depth: number) =>
          `{"id":"rec-deep","title":"Deep","tags":${'['.repeat(depth)}${']'.repeat(depth)}}`;
        for (const depth of [10, 1_000, 100_000]) {
          const error = await errorOf(await ingest(nested(depth)));
          expect([error.status, error.code], `depth ${depth}`).toEqual([400, 'VALIDATION']);
          expect(error.message, `depth ${depth}`).toMatch(/nested more than 8 levels deep/);
        }
        const objects = `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`;
        expect((await errorOf(await ingest(objects))).message).toMatch(/nested more than 8 levels deep/);
      });

      it('refuses items with huge strings, wrong types and unstorable text, naming every field', async () => {
        const item = (fields: Json, id = 'rec-bad') => ({ id, title: 'A title', ...fields });
        const cases: [string, Json, string, RegExp][] = [
          ['title of 9 MB', item({ title: 't'.repeat(9 * 1024 * 1024) }), 'title', /at most 500 characters/],
          [
            'description over 10000',
            item({ description: 'd'.repeat(10_001) }),
            'description',
            /at most 10000 characters/,
          ],
          [
            'resource over 2000',
            item({ resource: 'r'.repeat(2_001) }),
            'resource',
            /at most 2000 characters/,
          ],
          ['account over 200', item({ account: 'a'.repeat(201) }), 'account', /at most 200 characters/],
          ['region over 100', item({ region: 'r'.repeat(101) }), 'region', /at most 100 characters/],
          ['id over 200', item({ id: 'i'.repeat(201) }), 'id', /at most 200 characters/],
          [
            '51 tags',
            item({ tags: Array.from({ length: 51 }, (_, i) => `t${i}`) }),
            'tags',
            /at most 50 tags/,
          ],
          ['tag over 64', item({ tags: ['ok', 'x'.repeat(65)] }), 'tags[1]', /at most 64 characters/],
          ['title a number', item({ title: 123 }), 'title', /./],
          ['title missing', { id: 'rec-bad' }, 'title', /./],
          ['id missing', { title: 'x' }, 'id', /./],
          ['id an object', item({ id: { $gt: '' } }), 'id', /./],
          ['savings a string', item({ monthlySavings: '12' }), 'monthlySavings', /./],
          ['savings negative', item({ monthlySavings: -1 }), 'monthlySavings', /0 or more/],
          ['savings huge', item({ monthlySavings: 1e308 }), 'monthlySavings', /at most 1e12/],
          ['cloud upper case', item({ cloud: 'AWS' }), 'cloud', /./],
          ['severity unknown', item({ severity: 'urgent' }), 'severity', /./],
          ['currency lower case', item({ currency: 'usd' }), 'currency', /ISO 4217/],
          ['tags a string', item({ tags: 'a,b' }), 'tags', /./],
          ['tags of objects', item({ tags: [{ a: 1 }] }), 'tags[0]', /./],
          ['javascript link', item({ link: 'javascript:alert(1)' }), 'link', /http or https URL/],
          [
            'data link',
            item({ link: 'data:text/html,<script>alert(1)</script>' }),
            'link',
            /http or https URL/,
          ],
          ['file link', item({ link: 'file:///etc/passwd' }), 'link', /http or https URL/],
          ['NUL in title', item({ title: 'a\u0000b' }), 'title', /NUL/],
          ['lone surrogate', item({ description: 'a\ud800b' }), 'description', /surrogates/],
          ['control character in id', item({ id: 'rec\u0007' }), 'id', /control characters/],
          ['id with spaces around', item({ id: ' rec ' }), 'id', /whitespace/],
        ];
        for (const [name, body, field, says] of cases) {
          const error = await errorOf(await ingest(JSON.stringify(body)));
          expect([error.status, error.code], name).toEqual([400, 'VALIDATION']);
          const [result] = (
            error.body as { results: { status: string; errors: { field: string; message: string }[] }[] }
          ).results;
          expect(result?.status, name).toBe('invalid');
          const found = result?.errors.find((e) => e.field === field);
          expect(found, `${name}: ${JSON.stringify(result?.errors)}`).toBeDefined();
          expect(found!.message, name).toMatch(says);
        }
        // A batch of nothing but invalid items, each named at its index.
        const batch = await errorOf(
          await ingest(JSON.stringify([{ id: 'rec-b1' }, 'not an object', null, 7, [], { title: 'x' }])),
        );
        expect(batch.status).toBe(400);
        expect((batch.body as { summary: Json }).summary).toEqual({
          received: 6,
          created: 0,
          updated: 0,
          unchanged: 0,
          invalid: 6,
        });
        // Neither one object, nor an array, nor {"recommendations": [...]}.
        const shape = await errorOf(await ingest(JSON.stringify({ recommendations: 'rec-1' })));
        expect([shape.status, shape.message]).toEqual([
          400,
          '"recommendations" must be an array of recommendations.',
        ]);
      });

      it('takes nothing from __proto__ or constructor keys and stays unpolluted', async () => {
        const pollute = [
          '{"id":"rec-proto-1","__proto__":{"title":"from the prototype","isAdmin":true}}',
          '{"id":"rec-proto-2","constructor":{"prototype":{"title":"from the constructor"}}}',
          '{"recommendations":[{"id":"rec-proto-3"}],"__proto__":{"recommendations":[{"id":"x","title":"y"}]}}',
          '[{"id":"rec-proto-4","__proto__":[]}]',
        ];
        for (const body of pollute) {
          const error = await errorOf(await ingest(body));
          expect([error.status, error.code], body).toEqual([400, 'VALIDATION']);
          const [result] = (error.body as { results: { errors: { field: string }[] }[] }).results;
          expect(
            result?.errors.map((e) => e.field),
            body,
          ).toContain('title');
        }
        // Had any of them reached Object.prototype, this item would now have a title.
        const plain = await errorOf(await ingest('{"id":"rec-proto-5"}'));
        expect(plain.status).toBe(400);
        const tenant = await fetch(`${svc.url}/api/v1/tenant`, {
          headers: { authorization: `Bearer ${apiKey}` },
        });
        expect(((await tenant.json()) as Json).isAdmin).toBeUndefined();
      });

      it('stored nothing and posted no card for any of it', async () => {
        await expectNothingStored(before);
        // The cards job would have posted a card for anything stored; give it a barrier first.
        await slackBarrier();
        expect(cardsPosted()).toBe(posted);
      });

      it('refuses an address that keeps presenting wrong keys with 429, and still lets a valid key in', async () => {
        const tenantUrl = `${svc.url}/api/v1/tenant`;
        const wrong = { authorization: `Bearer cpk_${'c'.repeat(12)}_${'d'.repeat(43)}` };
        const statuses: number[] = [];
        for (let i = 0; i < 35; i++) {
          const res = await fetch(tenantUrl, { headers: wrong });
          await res.arrayBuffer();
          statuses.push(res.status);
        }
        expect(statuses.slice(-5)).toEqual([429, 429, 429, 429, 429]);
        const limited = await fetch(tenantUrl, { headers: wrong });
        expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        expect((await errorOf(limited)).code).toBe('RATE_LIMITED');
        // The same address with the tenant's key: someone else's bad keys lock nobody out.
        const valid = await fetch(tenantUrl, { headers: { authorization: `Bearer ${apiKey}` } });
        expect(valid.status).toBe(200);
        expect(await valid.json()).toMatchObject({ id: slackTenant.id });
      });

      it('stores only the known fields of a valid item that carries __proto__ and constructor keys', async () => {
        const res = await ingest(
          '{"id":"rec-proto-ok","title":"Valid with extras","__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"toString":"x"}',
        );
        expect(res.status).toBe(200);
        const report = (await res.json()) as { results: { status: string; ignoredFields?: string[] }[] };
        expect(report.results[0]).toMatchObject({ status: 'created' });
        expect(report.results[0]!.ignoredFields).toEqual(
          expect.arrayContaining(['__proto__', 'constructor', 'toString']),
        );
        const row = await svc.repos.recommendations.findByExternalId(slackTenant.id, 'rec-proto-ok');
        expect(row?.payload).toEqual({ id: 'rec-proto-ok', title: 'Valid with extras', currency: 'USD' });
        expect(Object.getPrototypeOf(row?.payload)).toBe(Object.prototype);
      });
    });

    // -------------------------------------------------------------------------------------------
    describe('Injection: markup and HTML in every text field reach chat as text', () => {
      const hostileRecommendation = (id: string) => ({
        id,
        title: `Resize ${MARKUP}`.slice(0, 500),
        description: `${MARKUP}\n<b>bold</b> <a href="https://evil.example">link</a> <iframe src="https://evil.example">`,
        resource: `arn:aws:ec2:eu-west-1:123456789012:instance/${MARKUP}`,
        account: MARKUP,
        region: MARKUP_SHORT,
        category: MARKUP,
        cloud: 'aws',
        severity: 'high',
        monthlySavings: 1234.5,
        currency: 'USD',
        link: 'https://cloudpi.example/r/1?next=<!channel>&u=<@U0ADMIN>|<https://evil.example|x>',
        tags: ['<!channel>', '<@U0ADMIN>', '<script>alert(1)</script>', '*bold* `code`'],
      });

      /** Slack's three escapes undone: what a reader of the message sees. */
      const unescapeSlack = (text: string) =>
        text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

      function textObjects(value: unknown, out: { type: string; text: string; verbatim?: boolean }[] = []) {
        if (Array.isArray(value)) for (const v of value) textObjects(v, out);
        else if (value && typeof value === 'object') {
          const o = value as Json;
          if ((o.type === 'mrkdwn' || o.type === 'plain_text') && typeof o.text === 'string')
            out.push({
              type: o.type,
              text: o.text,
              ...(typeof o.verbatim === 'boolean' ? { verbatim: o.verbatim } : {}),
            });
          for (const child of Object.values(o)) textObjects(child, out);
        }
        return out;
      }

      it('keeps the test markup within the field limits', () => {
        expect(MARKUP.length).toBeLessThanOrEqual(200);
        expect(MARKUP_SHORT.length).toBeLessThanOrEqual(100);
      });

      it('posts valid Block Kit to the subscribed Slack channel that mentions, broadcasts and links nothing', async () => {
        const rec = hostileRecommendation('rec-inject-slack');
        const res = await fetch(`${svc.url}/api/v1/recommendations`, {
          method: 'POST',
          headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify(rec),
        });
        expect(res.status).toBe(200);
        const call = await waitFor(() =>
          svc.slack.calls.find(
            (c) =>
              c.method === 'chat.postMessage' &&
              c.body.channel === CHANNEL &&
              c.status === 200 &&
              JSON.stringify(c.body).includes('Resize'),
          ),
        );
        // The fake validates Block Kit and would have answered invalid_blocks.
        expect(call.error).toBeUndefined();
        const blocks = call.body.blocks as unknown[];
        expect(validateMessageBlocks(blocks)).toEqual([]);
        // Nothing asks Slack to parse names or links in the message.
        expect(call.body.link_names).toBeFalsy();
        expect(call.body.parse).not.toBe('full');
        expect(call.body.mrkdwn === undefined || call.body.mrkdwn === true).toBe(true);

        const texts = textObjects(blocks);
        const mrkdwn = texts.filter((t) => t.type === 'mrkdwn');
        expect(mrkdwn.length).toBeGreaterThan(0);
        for (const t of [...mrkdwn, { type: 'mrkdwn', text: String(call.body.text), verbatim: true }]) {
          // Escaped the way Slack asks: no raw < or >, every & starts one of the three entities.
          expect(t.text, t.text).not.toMatch(/[<>]/);
          expect(t.text, t.text).not.toMatch(/&(?!amp;|lt;|gt;)/);
          for (const raw of RAW_CONTROL) expect(t.text).not.toContain(raw);
        }
        // No auto-linking of URLs and names in the text.
        for (const t of mrkdwn) expect(t.verbatim, t.text).toBe(true);
        // The only link is the Open in CloudPi button, to the recommendation's own http(s) URL.
        const urls = JSON.stringify(blocks).match(/"url":"[^"]*"/g) ?? [];
        expect(urls).toEqual([`"url":${JSON.stringify(new URL(rec.link).href)}`]);

        // What people read is the text as it was sent.
        const shown = [...texts.map((t) => (t.type === 'mrkdwn' ? unescapeSlack(t.text) : t.text))].join(
          '\n',
        );
        expect(shown).toContain(rec.account);
        expect(shown).toContain(rec.category);
        expect(shown).toContain(rec.resource);
        expect(shown).toContain('Resize <!channel> <!here>');
        expect(unescapeSlack(String(call.body.text))).toContain('<!channel>');
      });

      it('posts a valid Adaptive Card to a subscribed Teams channel that shows the markup as text', async () => {
        const { teams, repos } = svc;
        expect((await teams.send(svc.url, teams.conversationUpdate())).status).toBe(200);
        const tenant = await waitFor(() => repos.tenants.findByExternalId('teams', teams.tenantId));
        const channel = teams.team.channels.general.id;
        await waitFor(() => repos.conversations.find(tenant.id, 'teams', channel));
        await repos.routes.create(tenant.id, {
          platform: 'teams',
          channelId: channel,
          filters: {},
          createdBy: 'test',
        });
        const teamsKey = (await repos.apiKeys.create(tenant.id, 'hostile-input test')).key;
        const rec = hostileRecommendation('rec-inject-teams');
        const res = await fetch(`${svc.url}/api/v1/recommendations`, {
          method: 'POST',
          headers: { authorization: `Bearer ${teamsKey}`, 'content-type': 'application/json' },
          body: JSON.stringify(rec),
        });
        expect(res.status).toBe(200);
        const sent = await waitFor(() =>
          teams
            .conversation(channel)
            .find((m) => JSON.stringify(m.activity.attachments ?? []).includes('Resize')),
        );
        const [card] = ((sent.activity.attachments as { contentType: string; content: Json }[]) ?? [])
          .filter((a) => a.contentType === 'application/vnd.microsoft.card.adaptive')
          .map((a) => a.content);
        expect(card).toBeDefined();
        expect(validateAdaptiveCard(card, { verbs: TEAMS_VERBS })).toEqual([]);
        // No mention entity, no <at>, no HTML, and no markdown link but our own.
        expect(JSON.stringify(sent.activity.entities ?? [])).not.toContain('mention');
        const markdown: string[] = [];
        const walk = (v: unknown): void => {
          if (Array.isArray(v)) v.forEach(walk);
          else if (v && typeof v === 'object') {
            const o = v as Json;
            if (o.type === 'TextBlock' && typeof o.text === 'string') markdown.push(o.text);
            if (Array.isArray(o.facts))
              for (const f of o.facts as { title?: string; value?: string }[])
                markdown.push(String(f.value ?? ''));
            for (const [k, child] of Object.entries(o)) if (k !== 'data') walk(child);
          }
        };
        walk(card);
        const all = markdown.join('\n');
        expect(all).not.toMatch(/<(?!\/?at>)/);
        expect(all).not.toContain('<at>');
        for (const raw of RAW_CONTROL) expect(all).not.toContain(raw);
        const links = all.match(/(?<!\\)\[[^\]]*(?<!\\)\]\((?!\\)[^)]*\)/g) ?? [];
        for (const link of links) expect(link).toMatch(/^\[Open in CloudPi\]\(https:\/\/cloudpi\.example\//);
        // Read back as text (entities decoded, backslash escapes dropped), the markup is all there.
        const shown = all
          .replace(/\\(.)/g, '$1')
          .replace(/&lt;/g, '<')
          .replace(/&gt;/g, '>')
          .replace(/&amp;/g, '&');
        expect(shown).toContain('<!channel> <!here>');
        expect(shown).toContain('[click](https://evil.example)');
      });
    });

    // -------------------------------------------------------------------------------------------
    describe('SSRF: every admin-entered URL and host, submitted through the Slack modals', () => {
      // A listener on every local address: the hostile loopback URLs and hosts below name its port,
      // so any connection the service made to them would show here.
      let canary: Server;
      let canaryPort = 0;
      let canaryConnections = 0;
      beforeAll(async () => {
        canary = createServer((socket) => {
          canaryConnections++;
          socket.destroy();
        });
        await new Promise<void>((resolve) =>
          canary.listen({ port: 0, host: '::', ipv6Only: false }, resolve),
        );
        canaryPort = (canary.address() as AddressInfo).port;
      });
      afterAll(async () => {
        await new Promise<void>((resolve) => (canary ? canary.close(() => resolve()) : resolve()));
      });
      /** The hostile URLs, plus loopback ones at the canary's port. */
      const hostileUrls = () => [
        ...HOSTILE_URLS,
        ...[
          `https://127.0.0.1:${canaryPort}/`,
          `https://[::1]:${canaryPort}/`,
          `https://localhost:${canaryPort}/`,
          `https://2130706433:${canaryPort}/`,
        ].map((url) => ({ url, says: /is a private, loopback or link-local address/ })),
      ];
      interface UrlForm {
        readonly command: string;
        readonly field: string;
        /** Valid values for the other fields, so that only the URL can be wrong. */
        readonly others: Record<string, string>;
      }
      const URL_FORMS: readonly UrlForm[] = [
        {
          command: 'connect jira',
          field: 'siteUrl',
          others: { deployment: 'cloud', email: 'ops@example.com', apiToken: 'jira-api-token-123' },
        },
        {
          command: 'connect azure-devops',
          field: 'organizationUrl',
          others: { personalAccessToken: 'ado-pat-1234567890' },
        },
        {
          command: 'connect servicenow',
          field: 'instanceUrl',
          others: { authType: 'basic', username: 'cloudpi.svc', password: 'sn-password-123' },
        },
        {
          command: 'sso',
          field: 'issuerUrl',
          others: { clientId: 'cloudpi-chatops', clientSecret: 'sso-client-secret-123' },
        },
      ];

      /** Opens the form as the admin (a real /cloudpi command) and returns the modal Slack holds. */
      async function openForm(command: string): Promise<{ id: string; view: Json }> {
        const admin = svc.slack.users.admin;
        const triggerId = svc.slack.issueTriggerId(admin);
        const res = await postSlackCommand(svc.url, SIGNING_SECRET, {
          text: command,
          user_id: admin,
          team_id: svc.slack.teamId,
          trigger_id: triggerId,
          channel_id: 'C0GENERAL',
          response_url: svc.responses.url(),
        });
        expect(res.status).toBe(200);
        const call = await waitFor(() =>
          svc.slack.calls.find(
            (c) => c.method === 'views.open' && c.body.trigger_id === triggerId && c.status,
          ),
        );
        expect(call.error).toBeUndefined();
        const id = [...svc.slack.modals.keys()].at(-1)!;
        return { id, view: svc.slack.modals.get(id)!.view };
      }

      const inputIds = (view: Json) =>
        new Set(
          ((view.blocks as Json[] | undefined) ?? [])
            .filter((b) => b.type === 'input')
            .map((b) => String(b.block_id)),
        );

      /** Submits the modal with `fields` (those the view has); returns Slack's answer (the ack body). */
      async function submit(view: Json, fields: Record<string, string>): Promise<Json> {
        const ids = inputIds(view);
        const values = Object.fromEntries(
          Object.entries(fields)
            .filter(([k]) => ids.has(k))
            .map(([k, v]) => [k, { [k]: v }]),
        );
        const raw = new URLSearchParams({
          payload: JSON.stringify(
            viewSubmissionPayload({ teamId: svc.slack.teamId, userId: svc.slack.users.admin, view, values }),
          ),
        }).toString();
        const res = await postSlack(raw, 'application/x-www-form-urlencoded', signed(raw));
        expect(res.status).toBe(200);
        const text = await res.text();
        const answer = text ? (JSON.parse(text) as Json) : {};
        expect(checkViewSubmissionAnswer(view, answer)).toEqual([]);
        return answer;
      }

      for (const form of URL_FORMS) {
        it(`${form.command}: refuses every hostile ${form.field} at that field, and stores nothing`, async () => {
          const { view } = await openForm(form.command);
          expect(inputIds(view).has(form.field)).toBe(true);
          const before = await snapshot(svc.handle);
          const updates = svc.slack.calls.filter((c) => c.method === 'views.update').length;
          const refused: Record<string, string> = {};
          const urls = hostileUrls();
          for (const { url, says } of urls) {
            const answer = await submit(view, { ...form.others, [form.field]: url });
            expect(answer.response_action, url).toBe('errors');
            const errors = answer.errors as Record<string, string>;
            expect(Object.keys(errors), `${url}: ${JSON.stringify(errors)}`).toEqual([form.field]);
            expect(errors[form.field], url).toMatch(says);
            refused[url] = errors[form.field]!;
          }
          expect(Object.keys(refused)).toHaveLength(urls.length);
          // Refused on the spot: no "Verifying…" step, no connection attempt, nothing saved.
          expect(svc.slack.calls.filter((c) => c.method === 'views.update')).toHaveLength(updates);
          await expectNothingStored(before);
        });
      }

      /** The modal after the next views.update of `viewId` (the live check's outcome). */
      async function nextUpdate(viewId: string, since: number): Promise<Json> {
        const call = await waitFor(() =>
          svc.slack.calls
            .slice(since)
            .find((c) => c.method === 'views.update' && c.body.view_id === viewId && c.status),
        );
        expect(call.error).toBeUndefined();
        return svc.slack.modals.get(viewId)!.view;
      }

      const fieldError = (view: Json, field: string) => {
        const block = ((view.blocks as Json[] | undefined) ?? []).find(
          (b) => b.block_id === `${field}.error`,
        );
        return block ? JSON.stringify(block) : undefined;
      };

      it('smtp: refuses SMTP Hosts on this machine, its metadata service or private networks at the field', async () => {
        const opened = await openForm('smtp');
        const id = opened.id;
        let view = opened.view;
        expect(inputIds(view).has('host')).toBe(true);
        const before = await snapshot(svc.handle);
        const others = {
          port: String(canaryPort),
          security: 'starttls',
          fromAddress: 'cloudpi@example.com',
          password: 'smtp-password-123',
        };
        for (const host of HOSTILE_SMTP_HOSTS) {
          const since = svc.slack.calls.length;
          const answer = await submit(view, { ...others, host });
          if (answer.response_action === 'errors') {
            // Refused by the form check itself.
            expect(Object.keys(answer.errors as Json), host).toEqual(['host']);
            continue;
          }
          // Refused by the live check, which resolves the host and connects only to public addresses.
          expect(answer.response_action, host).toBe('update');
          view = await nextUpdate(id, since);
          expect(fieldError(view, 'host'), host).toMatch(
            /private, loopback or link-local address, which this server does not connect to/,
          );
        }
        await expectNothingStored(before);
      });

      // This machine's own name resolves to a loopback or private address (/etc/hosts): a name the
      // form check cannot know is local, refused when connecting.
      const ownName = hostname();
      it(`refuses at connect time a host name that resolves to this machine (${ownName}), in every form`, async (ctx) => {
        const { lookup } = await import('node:dns/promises');
        const addresses = await lookup(ownName, { all: true }).catch(() => []);
        if (addresses.length === 0 || !addresses.some((a) => isNonPublicAddress(a.address))) {
          ctx.skip(`${ownName} does not resolve to a private address here`);
          return;
        }
        const before = await snapshot(svc.handle);
        for (const form of URL_FORMS) {
          const { id, view } = await openForm(form.command);
          const since = svc.slack.calls.length;
          const answer = await submit(view, {
            ...form.others,
            [form.field]: `https://${ownName}:${canaryPort}/`,
          });
          expect(answer.response_action, form.command).toBe('update');
          const updated = await nextUpdate(id, since);
          expect(
            `${fieldError(updated, form.field)} ${JSON.stringify(updated.blocks)}`,
            form.command,
          ).toMatch(/private, loopback or link-local/);
        }
        {
          const { id, view } = await openForm('smtp');
          const since = svc.slack.calls.length;
          const answer = await submit(view, {
            host: ownName,
            port: String(canaryPort),
            security: 'starttls',
            fromAddress: 'cloudpi@example.com',
            password: 'smtp-password-123',
          });
          expect(answer.response_action).toBe('update');
          expect(fieldError(await nextUpdate(id, since), 'host')).toMatch(/private, loopback or link-local/);
        }
        await expectNothingStored(before);
      });

      it('never connected to any of them', () => {
        expect(canaryConnections).toBe(0);
      });
    });

    // -------------------------------------------------------------------------------------------
    describe('afterwards', () => {
      it('the process is alive and ready, and logged no error', async () => {
        expect(svc.exited()).toBe(false);
        const ready = await fetch(`${svc.url}/readyz`);
        expect(ready.status).toBe(200);
        expect(await ready.json()).toMatchObject({ status: 'ready' });
        const output = `${svc.proc.stdout()}\n${svc.proc.stderr()}`;
        expect(output).not.toMatch(/uncaught|unhandled rejection|FATAL/i);
        const errors = logLinesAtLeast(svc.proc, 50).map((l) =>
          `${String(l.msg)} ${JSON.stringify(l.err ?? '')}`.slice(0, 300),
        );
        expect(errors).toEqual([]);
        // No secret in the log either.
        expect(output).not.toContain(SIGNING_SECRET);
        expect(output).not.toContain(svc.slack.botToken);
        expect(output).not.toContain(svc.teams.appPassword);
        expect(output).not.toContain(apiKey);
      });
    });
    // -------------------------------------------------------------------------------------------
    // Signed, so only Slack could send them; Slack never does. Run after the log check above:
    // Bolt logs its own errors for these (see the report of this suite).
    describe('Slack: authentic payloads of a shape Slack never sends', () => {
      const FORM = 'application/x-www-form-urlencoded';
      it('answers them without a 5xx and stores nothing', async () => {
        const before = await snapshot(svc.handle);
        const payload = (body: Json) => `payload=${encodeURIComponent(JSON.stringify(body))}`;
        const team = { id: svc.slack.teamId };
        const user = { id: svc.slack.users.admin };
        const cases: [string, string, string][] = [
          ['JSON null', 'application/json', 'null'],
          ['JSON array', 'application/json', '[]'],
          ['payload null', FORM, 'payload=null'],
          ['view_submission without view', FORM, payload({ type: 'view_submission', team, user })],
          ['block_actions without actions', FORM, payload({ type: 'block_actions', team, user })],
          ['command without fields', FORM, 'command=%2Fcloudpi'],
        ];
        const statuses: Record<string, number> = {};
        for (const [name, contentType, raw] of cases)
          statuses[name] = (await postSlack(raw, contentType, signed(raw))).status;
        await slackBarrier();
        await expectNothingStored(before);
        expect(Object.entries(statuses).filter(([, status]) => status >= 500)).toEqual([]);
      });
    });

    describe('at the end', () => {
      it('the process has not exited and is ready', async () => {
        expect(svc.exited()).toBe(false);
        expect((await fetch(`${svc.url}/readyz`)).status).toBe(200);
      });
    });
  },
);
