/**
 * Block Kit rendering: user and provider text cannot mention or link, everything fits Slack's
 * limits (checked by the Slack fake's own Block Kit validator, surface-wide unique action ids).
 */
import { describe, expect, it } from 'vitest';
import {
  cut,
  escapeMrkdwn,
  LIMITS,
  renderCard,
  renderHome,
  renderMessage,
  renderModal,
} from '../../adapters/chat/slack/render.js';
import type { ConfigureFormView, IntegrationFormView, StatusBoardView } from '../../src/commands/views.js';
import type { RecommendationCardView } from '../../src/recommendations/card.js';
import { validateMessageBlocks, validateView } from '../support/fakes/slack-fake.js';
import { textOf } from './helpers.js';

const HOSTILE = '<!channel> <@U0ADMIN> <https://evil.example|click here> & *bold* https://evil.example';

function board(overrides: Partial<StatusBoardView> = {}): StatusBoardView {
  return {
    kind: 'status-board',
    title: 'Integration settings',
    providers: (['jira', 'azure-devops', 'servicenow'] as const).map((provider) => ({
      provider,
      displayName: provider,
      badge: 'Error',
      status: 'error' as const,
      details: [HOSTILE, 'x'.repeat(5000)],
      actions: [
        { action: 'edit' as const, label: 'Edit', provider },
        {
          action: 'disconnect' as const,
          label: 'Disconnect Provider'.repeat(10),
          provider,
          style: 'danger' as const,
        },
        { action: 'edit' as const, label: 'Edit again', provider },
      ],
    })),
    settings: [{ name: 'SSO', badge: 'Not Connected', details: [HOSTILE], actions: [] }],
    recentTickets: Array.from({ length: 40 }, (_, i) => ({
      key: `OPS-${i}`,
      url: i === 0 ? 'javascript:alert(1)' : `https://jira.example.com/browse/OPS-${i}?a=1&b=<2>|x`,
      provider: 'jira',
      title: `${HOSTILE} ${'t'.repeat(200)}`,
      status: 'open',
    })),
    canEdit: true,
    ...overrides,
  };
}

/** No mention, broadcast or link markup survives from user text: only escaped forms. */
function expectNoInjection(json: string): void {
  expect(json).not.toContain('<!channel>');
  expect(json).not.toContain('<@U0ADMIN>');
  expect(json).not.toContain('<https://evil.example|');
  expect(json).not.toContain('javascript:');
  expect(json).toContain('&lt;!channel&gt;');
}

describe('Block Kit rendering', () => {
  it('escapes &, < and > and cuts without breaking an entity', () => {
    expect(escapeMrkdwn('a & <b> c')).toBe('a &amp; &lt;b&gt; c');
    expect(cut('abc', 3)).toBe('abc');
    expect(cut('abcdef', 4)).toBe('abc…');
    expect(cut('ab&amp;cd', 5)).toBe('ab…');
    expect(cut('😀b', 2)).toBe('…');
  });

  it('renders App Home within Slack limits, with user text inert', () => {
    const home = renderHome(board());
    expect(validateView(home, ['home'], 'surface')).toEqual([]);
    const json = JSON.stringify(home);
    expectNoInjection(json);
    expect(json).toContain('"verbatim":true');
    // Our own ticket links are links; a non-http URL is only text.
    expect(json).toContain('<https://jira.example.com/browse/OPS-1?a=1&amp;b=%3C2%3E%7Cx|OPS-1>');
    expect(json).not.toContain('|OPS-0>');
  });

  it('caps a message at 50 blocks and a view at 100', () => {
    const many = board({
      settings: Array.from({ length: 60 }, (_, i) => ({
        name: `Setting ${i}`,
        badge: 'Active',
        details: [],
        actions: [{ action: 'refresh' as const, label: 'Refresh' }],
      })),
    });
    const message = renderMessage(many);
    expect(message.blocks).toHaveLength(50);
    expect(validateMessageBlocks(message.blocks, 'surface')).toEqual([]);
    const home = renderHome(many);
    expect(home.blocks).toHaveLength(100);
    expect(validateView(home, ['home'], 'surface')).toEqual([]);
  });

  it('renders forms: secrets never pre-filled, errors at their field, long labels cut', () => {
    const form: IntegrationFormView = {
      kind: 'integration-form',
      provider: 'jira',
      title: 'Connect Jira with a very long title',
      submitLabel: 'Update',
      fields: [
        { key: 'siteUrl', label: 'Site URL', required: true, secret: false, type: 'url', value: HOSTILE },
        {
          key: 'apiToken',
          label: 'API token',
          required: false,
          secret: true,
          type: 'password',
          value: 'must-never-show',
          hasSavedSecret: true,
          hint: 'Leave blank to keep the saved value.',
        },
        {
          key: 'deployment',
          label: 'Deployment',
          required: true,
          secret: false,
          type: 'select',
          options: [
            { value: 'cloud', label: 'Jira Cloud' },
            { value: 'server', label: 'Jira Data Center / Server' },
          ],
          defaultValue: 'cloud',
        },
        {
          key: 'email',
          label: 'Email',
          required: true,
          secret: false,
          type: 'email',
          when: { field: 'deployment', oneOf: ['cloud'] },
        },
      ],
      errors: { apiToken: HOSTILE, elsewhere: 'A problem without a field' },
      notice: { kind: 'notice', tone: 'error', title: 'Invalid API token', text: HOSTILE },
    };
    const modal = renderModal(form);
    expect(validateView(modal, ['modal'], 'surface')).toEqual([]);
    const json = JSON.stringify(modal);
    expect(json).not.toContain('must-never-show');
    // A typed value comes back as the input's text (inert); everywhere else it is escaped.
    expect(JSON.stringify(modal.blocks.find((b) => b.block_id === 'siteUrl'))).toContain(
      '"initial_value":"<!channel>',
    );
    expectNoInjection(JSON.stringify(modal.blocks.filter((b) => b.block_id !== 'siteUrl')));
    expect(modal.title.text).toHaveLength(24);
    expect(modal.submit?.text).toBe('Update');
    const blockIds = modal.blocks.map((b) => b.block_id);
    expect(blockIds.indexOf('apiToken.error')).toBe(blockIds.indexOf('apiToken') + 1);
    expect(textOf(modal.blocks)).toContain('A problem without a field');
    expect(textOf(modal.blocks)).toContain('Only when Deployment is Jira Cloud.');
  });

  it('renders the routing form with selects that reload and an exact initial option', () => {
    const form: ConfigureFormView = {
      kind: 'configure-form',
      provider: 'azure-devops',
      title: 'Configure Azure DevOps',
      submitLabel: 'Save',
      fields: [
        {
          key: 'project',
          label: 'Project',
          required: true,
          type: 'select',
          options: Array.from({ length: 150 }, (_, i) => ({
            value: `p${i}`.repeat(40),
            label: `P${i}`.repeat(40),
          })),
          value: `p3`.repeat(40),
          reloads: true,
        },
        {
          key: 'ticketType',
          label: 'Work item type',
          required: true,
          type: 'select',
          options: [],
          reloads: true,
        },
        { key: 'field:Custom.CostCenter', label: 'Cost Center', required: true, type: 'text' },
      ],
      errors: { project: 'TF200016: The project does not exist' },
    };
    const modal = renderModal(form);
    expect(validateView(modal, ['modal'], 'surface')).toEqual([]);
    const project = modal.blocks.find((b) => b.block_id === 'project') as unknown as {
      dispatch_action: boolean;
      element: { options: unknown[]; initial_option: { value: string } };
    };
    expect(project.dispatch_action).toBe(true);
    expect(project.element.options).toHaveLength(100);
    expect(project.element.initial_option.value).toHaveLength(80);
    // An empty list is a text input (a select needs options).
    expect(JSON.stringify(modal.blocks.find((b) => b.block_id === 'ticketType'))).toContain(
      'plain_text_input',
    );
  });
});

describe('renderCard ticket status', () => {
  const card = (status: string, providerStatus: string | null = null): RecommendationCardView => ({
    recommendationId: '00000000-0000-4000-8000-000000000001',
    title: 'Rightsize i-0abc',
    ticket: {
      kind: 'created',
      provider: 'jira',
      key: 'OPS-7',
      url: 'https://jira.example/browse/OPS-7',
      status,
      providerStatus,
      createdBy: 'slack:U0ADMIN',
    },
    offeredProviders: [],
    dismissed: false,
  });

  it('shows a done or closed ticket as resolved, with its status', () => {
    for (const status of ['done', 'closed']) {
      const { blocks } = renderCard(card(status));
      expect(validateMessageBlocks(blocks)).toEqual([]);
      const text = textOf(blocks);
      expect(text).toContain(':white_check_mark: Resolved');
      expect(text).toContain('OPS-7');
      expect(text).toContain(status === 'done' ? 'Done' : 'Closed');
    }
  });

  it('shows an open ticket without Resolved', () => {
    const text = textOf(renderCard(card('in_progress')).blocks);
    expect(text).toContain(':ticket: Ticket');
    expect(text).toContain('In progress');
    expect(text).not.toContain('Resolved');
  });

  it("shows the provider's own status name, escaped", () => {
    const text = textOf(renderCard(card('in_progress', 'In Review <!here>')).blocks);
    expect(text).toContain('In Review &lt;!here&gt;');
    expect(text).not.toContain('<!here>');
  });
});

describe('renderCard limits', () => {
  type Json = Record<string, unknown>;
  const REC_ID = '00000000-0000-4000-8000-0000000000c4';
  /** Every kind of markup Slack gives meaning to in mrkdwn, and some it auto-links without `verbatim`. */
  const HOSTILE =
    '<!channel> <!here> <@U123> <https://evil.example|click> &lt; *bold* `code` ```block``` @channel #general https://evil.example';
  /** HOSTILE as it must appear in mrkdwn: &, < and > escaped, nothing else changed. */
  const HOSTILE_ESCAPED =
    '&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &lt;https://evil.example|click&gt; &amp;lt; *bold* `code` ```block``` @channel #general https://evil.example';
  const pad = (prefix: string, length: number) => (prefix + 'x'.repeat(length)).slice(0, length);
  const repeat = (text: string, length: number) =>
    text.repeat(Math.ceil(length / text.length)).slice(0, length);
  const ALL_PROVIDERS = [
    { kind: 'jira' as const, displayName: 'Jira' },
    { kind: 'azure-devops' as const, displayName: 'Azure DevOps' },
    { kind: 'servicenow' as const, displayName: 'ServiceNow' },
  ];

  /** A view with every field at `scale` times the ingest maxima, each starting with HOSTILE. */
  function bigView(scale = 1, overrides: Partial<RecommendationCardView> = {}): RecommendationCardView {
    return {
      recommendationId: REC_ID,
      title: pad(`T ${HOSTILE} `, 500 * scale),
      resource: pad(`R ${HOSTILE} `, 2000 * scale),
      account: pad(`A ${HOSTILE} `, 200 * scale),
      cloud: pad(`C ${HOSTILE} `, 200 * scale),
      category: pad(`K ${HOSTILE} `, 200 * scale),
      savings: '$1,000,000,000,000.00',
      severity: pad(`S ${HOSTILE} `, 200 * scale),
      link: `https://cloudpi.example/r/${'a'.repeat(2000 - 'https://cloudpi.example/r/'.length)}`,
      ticket: { kind: 'none' },
      offeredProviders: ALL_PROVIDERS,
      dismissed: false,
      ...overrides,
    };
  }

  /** Every text object ({type: plain_text | mrkdwn, text}) anywhere in the blocks. */
  function textObjects(blocks: unknown[]): Json[] {
    const found: Json[] = [];
    const walk = (value: unknown): void => {
      if (Array.isArray(value)) {
        for (const v of value) walk(v);
      } else if (value && typeof value === 'object') {
        const o = value as Json;
        if ((o.type === 'mrkdwn' || o.type === 'plain_text') && typeof o.text === 'string') found.push(o);
        else for (const v of Object.values(o)) walk(v);
      }
    };
    walk(blocks);
    return found;
  }
  const mrkdwn = (blocks: unknown[]) => textObjects(blocks).filter((o) => o.type === 'mrkdwn');
  const buttonsOf = (blocks: unknown[]): Json[] =>
    (blocks as Json[]).flatMap((b) =>
      b.type === 'actions' ? (b.elements as Json[]).filter((e) => e.type === 'button') : [],
    );
  const factsOf = (blocks: unknown[]): string[] =>
    (((blocks as Json[]).find((b) => b.block_id === 'card.facts')?.fields as Json[] | undefined) ?? []).map(
      (f) => String(f.text),
    );
  const ticketLine = (blocks: unknown[]): string => {
    const block = (blocks as Json[]).find((b) => b.block_id === 'card.ticket');
    return String(((block?.elements as Json[] | undefined)?.[0] as Json | undefined)?.text ?? '');
  };
  /** The `<…>` sequences Slack would parse in a mrkdwn text: mentions, links, commands. */
  const markupOf = (text: string) => text.match(/<[^>]*>/g) ?? [];

  /** Slack's limits, per text and surface; the fake's validator must agree. */
  function expectWithinLimits(card: { text: string; blocks: unknown[] }): void {
    expect(validateMessageBlocks(card.blocks, 'surface')).toEqual([]);
    expect(card.blocks.length).toBeLessThanOrEqual(50);
    expect(card.text.length).toBeGreaterThan(0);
    expect(card.text.length).toBeLessThanOrEqual(Math.min(LIMITS.messageText, 40_000));
    for (const block of card.blocks as Json[]) {
      if (block.type === 'header') {
        const text = (block.text as Json).text as string;
        expect(text.length).toBeLessThanOrEqual(150);
        expect(text.length).toBeLessThanOrEqual(LIMITS.headerText);
      }
      if (block.type === 'section') {
        for (const field of (block.fields as Json[] | undefined) ?? [])
          expect(String(field.text).length).toBeLessThanOrEqual(2000);
        expect(((block.fields as unknown[] | undefined) ?? []).length).toBeLessThanOrEqual(10);
      }
      if (block.type === 'context')
        for (const element of block.elements as Json[])
          expect(String(element.text).length).toBeLessThanOrEqual(LIMITS.contextText);
    }
    for (const b of buttonsOf(card.blocks)) {
      expect(((b.text as Json).text as string).length).toBeLessThanOrEqual(75);
      expect((b.text as Json).type).toBe('plain_text');
      if (b.url !== undefined) expect(String(b.url).length).toBeLessThanOrEqual(3000);
      if (b.value !== undefined) expect(String(b.value).length).toBeLessThanOrEqual(LIMITS.buttonValue);
    }
    // No text cut in the middle of an escape entity (a dangling "&am…" shows as garbage).
    for (const object of textObjects(card.blocks))
      expect(String(object.text)).not.toMatch(/&(?:a|am|amp|l|lt|g|gt)?…/);
    // Every mrkdwn text is verbatim: Slack neither auto-links URLs and #channels nor parses
    // "@channel" in it; only explicit markup we build (<@U…>, <url|key>) is live.
    for (const object of mrkdwn(card.blocks)) expect(object.verbatim).toBe(true);
  }

  it('keeps every text within Block Kit limits at and beyond the ingest maxima', () => {
    for (const scale of [1, 5]) {
      const card = renderCard(bigView(scale));
      expectWithinLimits(card);
      const [header] = card.blocks as unknown as Json[];
      expect(header).toMatchObject({ type: 'header', text: { type: 'plain_text' } });
      expect(((header!.text as Json).text as string).endsWith('…')).toBe(true);
      // Resource, Account, Cloud, Category, Monthly savings, Severity.
      const facts = factsOf(card.blocks);
      expect(facts).toHaveLength(6);
      expect(facts[0]!.endsWith('…')).toBe(true);
      expect(facts[0]!.length).toBe(2000);
      // One Create ticket button per provider (labels name them), Open in CloudPi, Dismiss.
      expect(buttonsOf(card.blocks).map((b) => (b.text as Json).text)).toEqual([
        'Create ticket in Jira',
        'Create ticket in Azure DevOps',
        'Create ticket in ServiceNow',
        'Open in CloudPi',
        'Dismiss',
      ]);
    }
  });

  it('cuts escaped text at any offset without leaving half an entity', () => {
    for (let offset = 0; offset < 6; offset++) {
      const card = renderCard(
        bigView(1, {
          title: `${'t'.repeat(offset)}${'&<>'.repeat(200)}`.slice(0, 500),
          resource: `${'r'.repeat(offset)}${'&'.repeat(2000)}`.slice(0, 2000),
          account: `${'a'.repeat(offset)}${'<'.repeat(200)}`.slice(0, 200),
          category: `${'k'.repeat(offset)}${'>&'.repeat(100)}`.slice(0, 200),
        }),
      );
      expectWithinLimits(card);
      for (const fact of factsOf(card.blocks)) expect(fact).not.toMatch(/&(?!amp;|lt;|gt;)/);
      expect(card.text).not.toMatch(/&(?!amp;|lt;|gt;)/);
    }
  });

  it('shows hostile text in every field escaped, never as a live mention or link', () => {
    const view = bigView(1, {
      title: `T ${HOSTILE}`,
      resource: `R ${HOSTILE}`,
      account: `A ${HOSTILE}`,
      cloud: `C ${HOSTILE}`,
      category: `K ${HOSTILE}`,
      savings: `$ ${HOSTILE}`,
      severity: `S ${HOSTILE}`,
    });
    const card = renderCard(view);
    expectWithinLimits(card);
    const facts = factsOf(card.blocks);
    expect(facts).toEqual([
      `*Resource*\nR ${HOSTILE_ESCAPED}`,
      `*Account*\nA ${HOSTILE_ESCAPED}`,
      `*Cloud*\nC ${HOSTILE_ESCAPED}`,
      `*Category*\nK ${HOSTILE_ESCAPED}`,
      `*Monthly savings*\n$ ${HOSTILE_ESCAPED}`,
      `*Severity*\nS ${HOSTILE_ESCAPED}`,
    ]);
    for (const object of mrkdwn(card.blocks)) expect(markupOf(String(object.text))).toEqual([]);
    // The title is a header: plain text, which Slack shows as it is (no mentions, no links).
    const [header] = card.blocks as unknown as Json[];
    expect(header).toMatchObject({ type: 'header', text: { type: 'plain_text', text: `T ${HOSTILE}` } });
    // The notification text is mrkdwn too: escaped.
    expect(card.text).toBe(`Recommendation: T ${HOSTILE_ESCAPED}`);
    expect(markupOf(card.text)).toEqual([]);
    // Nothing hostile outside the header.
    const rest = JSON.stringify(card.blocks.slice(1));
    for (const live of ['<!channel>', '<!here>', '<@U123>', '<https://evil.example|'])
      expect(rest).not.toContain(live);
    expect(JSON.stringify(card)).not.toContain('"url":"https://evil.example');
  });

  it('renders a javascript:, non-http or overlong link as no URL button', () => {
    for (const link of [
      'javascript:alert(1)',
      'JavaScript:alert(document.cookie)//https://x',
      'data:text/html,<script>alert(1)</script>',
      'ftp://cloudpi.example/r',
      `https://cloudpi.example/${'a'.repeat(3000)}`,
    ]) {
      const card = renderCard(bigView(1, { link }));
      expectWithinLimits(card);
      expect(buttonsOf(card.blocks).some((b) => b.url !== undefined)).toBe(false);
      expect(JSON.stringify(card.blocks)).not.toContain(link.slice(0, 40));
    }
    // A link at the ingest maximum (2000 characters) is a URL button, unchanged.
    const view = bigView(1);
    const open = buttonsOf(renderCard(view).blocks).find((b) => b.url !== undefined);
    expect(open).toMatchObject({ text: { text: 'Open in CloudPi' }, url: view.link });
  });

  it('keeps a ticket key with | or > (and a hostile URL) from breaking the ticket link', () => {
    const created = (key: string, url: string | null, createdBy: string | null = 'slack:U0ADMIN') =>
      renderCard(
        bigView(1, {
          ticket: {
            kind: 'created',
            provider: 'jira',
            key,
            url,
            status: 'in_progress',
            providerStatus: null,
            createdBy,
          },
        }),
      );
    const card = created('OPS-1|<!channel>>x', 'https://jira.example/browse/OPS-1?a=|b>c<d&e');
    expectWithinLimits(card);
    const line = ticketLine(card.blocks);
    // Exactly two live sequences: the ticket link (one |, ending the URL) and the creator.
    expect(markupOf(line)).toEqual([
      '<https://jira.example/browse/OPS-1?a=%7Cb%3Ec%3Cd&amp;e|OPS-1&lt;!channel&gt;&gt;x>',
      '<@U0ADMIN>',
    ]);
    // Without a URL the key is text only.
    const bare = ticketLine(created('OPS-2|<https://evil.example|x>', null).blocks);
    expect(markupOf(bare)).toEqual(['<@U0ADMIN>']);
    expect(bare).toContain('OPS-2&lt;https://evil.example');
    // A non-http URL is no link; a creator that is not a Slack user is text.
    const other = created('OPS-3', 'javascript:alert(1)', 'teams:<!channel>');
    expectWithinLimits(other);
    expect(markupOf(ticketLine(other.blocks))).toEqual([]);
    expect(ticketLine(other.blocks)).toContain('by teams:&lt;!channel&gt;');
    expect(JSON.stringify(other.blocks)).not.toContain('javascript:');
    // A long key and URL with an overlong hostile provider status: the line is cut after the
    // link, which stays whole (every `<` left opens a complete link or mention).
    const long = renderCard(
      bigView(1, {
        ticket: {
          kind: 'created',
          provider: 'jira',
          key: repeat('K|>', 255),
          url: `https://jira.example/browse/${'k'.repeat(2000 - 'https://jira.example/browse/'.length)}`,
          status: 'in_progress',
          providerStatus: repeat(`${HOSTILE} `, 5000),
          createdBy: 'slack:U0ADMIN',
        },
      }),
    );
    expectWithinLimits(long);
    const longLine = ticketLine(long.blocks);
    expect(longLine.length).toBeLessThanOrEqual(LIMITS.contextText);
    expect(longLine.endsWith('…')).toBe(true);
    expect(markupOf(longLine)).toHaveLength(1);
    expect(markupOf(longLine)[0]).toMatch(/^<https:\/\/jira\.example\/browse\/k+\|(?:K&gt;)+>$/);
    expect(longLine.replace(/<[^<>]*>/g, '')).not.toMatch(/[<>]/);
    // An absurd key and URL (thousands of characters) are bounded on their own: no link is
    // split by the line's cut, the overlong URL is simply not linked.
    const absurd = renderCard(
      bigView(1, {
        ticket: {
          kind: 'created',
          provider: 'jira',
          key: repeat('K|>', 5000),
          url: `https://jira.example/browse/${'k'.repeat(5000)}`,
          status: 'open',
          providerStatus: null,
          createdBy: 'slack:U0ADMIN',
        },
      }),
    );
    expectWithinLimits(absurd);
    const absurdLine = ticketLine(absurd.blocks);
    expect(markupOf(absurdLine)).toEqual(['<@U0ADMIN>']);
    expect(absurdLine).not.toContain('https://jira.example');
  });

  it('escapes and cuts the failed-ticket reason, with a Retry button', () => {
    const card = renderCard(
      bigView(1, {
        ticket: { kind: 'failed', provider: 'azure-devops', reason: repeat(`${HOSTILE} `, 10_000) },
      }),
    );
    expectWithinLimits(card);
    const line = ticketLine(card.blocks);
    expect(line.startsWith(`:warning: The ticket could not be created: ${HOSTILE_ESCAPED}`)).toBe(true);
    expect(line.endsWith('…')).toBe(true);
    expect(line.length).toBeLessThanOrEqual(LIMITS.contextText);
    expect(markupOf(line)).toEqual([]);
    expect(buttonsOf(card.blocks).map((b) => (b.text as Json).text)).toEqual(['Retry', 'Open in CloudPi']);
  });

  it('renders a dismissed copy valid in every ticket state, without Create ticket buttons', () => {
    const states: RecommendationCardView['ticket'][] = [
      { kind: 'none' },
      { kind: 'creating', provider: 'jira' },
      {
        kind: 'created',
        provider: 'jira',
        key: 'OPS-9',
        url: 'https://jira.example/browse/OPS-9',
        status: 'done',
        providerStatus: `Done ${HOSTILE}`,
        createdBy: 'slack:U0MEMBER',
      },
      { kind: 'failed', provider: 'jira', reason: `Refused ${HOSTILE}` },
    ];
    for (const ticket of states) {
      const card = renderCard(bigView(1, { ticket, dismissed: true }));
      expectWithinLimits(card);
      expect(textOf(card.blocks)).toContain('Dismissed in this channel.');
      const labels = buttonsOf(card.blocks).map((b) => (b.text as Json).text);
      expect(labels).toEqual(['Open in CloudPi']);
      for (const object of mrkdwn(card.blocks))
        expect(
          markupOf(String(object.text)).filter(
            (m) => m !== '<@U0MEMBER>' && m !== '<https://jira.example/browse/OPS-9|OPS-9>',
          ),
        ).toEqual([]);
    }
  });
});
