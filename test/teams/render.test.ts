/**
 * Adaptive Card rendering for Teams: every view renders to a card Microsoft's object model accepts
 * (test/support/adaptive-cards.ts, with the bot's verbs), user and provider text is shown
 * literally, secrets are never pre-filled, errors sit under their fields, cards stay under Teams'
 * 28 KB, and the action encoding is the one the Teams wiring parses.
 */
import { describe, expect, it } from 'vitest';
import {
  CARD_MAX_BYTES,
  cardByteLength,
  escapeMarkdown,
  fieldKeyOf,
  formValuesOf,
  inputIdOf,
  markdownLink,
  renderDialog,
  renderMessageCard,
  renderRecommendationCard,
  subscribeValuesOf,
  TEAMS_VERBS,
  VERB,
} from '../../adapters/chat/teams/render.js';
import { JIRA_FIELDS } from '../../adapters/tickets/jira/credentials.js';
import type {
  AuditView,
  ConfigureFormView,
  ConfirmView,
  HelpView,
  IntegrationDetailsView,
  IntegrationFormView,
  NoticeView,
  ProgressView,
  StatusBoardView,
  SubscribeFormView,
  SubscriptionListView,
  View,
} from '../../src/commands/views.js';
import type { RecommendationCardView } from '../../src/recommendations/card.js';
import { MAX_CARD_BYTES, validateAdaptiveCard } from '../support/adaptive-cards.js';

type Json = Record<string, unknown>;

const HOSTILE =
  '<at>x</at> [click](https://evil.example) **bold** <script>alert(1)</script> &amp; _it_ `code`';
const REC_ID = '0b8e4a52-8f0c-4d7e-9d8e-1d2f3a4b5c6d';

// ---------------------------------------------------------------------------------------------
// Helpers

const valid = (card: unknown) => validateAdaptiveCard(card, { verbs: TEAMS_VERBS });

/** Every object in a card, depth first. */
function nodesOf(value: unknown): Json[] {
  if (Array.isArray(value)) return value.flatMap(nodesOf);
  if (value && typeof value === 'object') {
    const o = value as Json;
    return [o, ...Object.entries(o).flatMap(([k, v]) => (k === 'data' ? [] : nodesOf(v)))];
  }
  return [];
}

/** The markdown strings of a card: TextBlock texts and FactSet titles and values. */
function markdownOf(card: unknown): string[] {
  return nodesOf(card).flatMap((n) => {
    if (n.type === 'TextBlock') return [String(n.text)];
    if (n.type === 'FactSet')
      return (n.facts as { title: string; value: string }[]).flatMap((f) => [f.title, f.value]);
    return [];
  });
}

function actionsOf(card: unknown): Json[] {
  return nodesOf(card).filter((n) => typeof n.type === 'string' && n.type.startsWith('Action.'));
}

/** What a CommonMark renderer shows for our escaped text: backslash escapes and entities undone. */
function shown(markdown: string): string {
  return markdown
    .replace(/\\([!-/:-@[-`{-~])/g, '$1')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** Markdown characters that would format or link: any left unescaped in `markdown`. */
function unescapedSpecials(markdown: string): string[] {
  const found: string[] = [];
  for (let i = 0; i < markdown.length; i++) {
    const c = markdown[i]!;
    if (c === '\\') {
      i++;
      continue;
    }
    if ('*_[]()`<>#~'.includes(c)) found.push(c);
    if (c === '&' && !/^&(amp|lt|gt);/.test(markdown.slice(i))) found.push(c);
  }
  return found;
}

/** Our own ticket links, taken out so the rest can be checked for injected markup. */
const OUR_LINK = /\[(?:[^\]\\]|\\.)*\]\(https:\/\/(?:jira\.example\.com|app\.cloudpi\.example)\/[^)\s]*\)/g;

function expectLiteral(card: unknown): void {
  const texts = markdownOf(card);
  for (const text of texts) expect(unescapedSpecials(text.replace(OUR_LINK, '')), text).toEqual([]);
  expect(texts.map(shown).join('\n')).toContain(HOSTILE);
  const json = JSON.stringify(card);
  expect(json).not.toContain('<at>');
  expect(json).not.toContain('<script>');
  expect(json).not.toContain('](https://evil.example)');
}

function bodyIndexOfInput(card: { body: readonly unknown[] }, key: string): number {
  return card.body.findIndex((e) => (e as { id?: unknown }).id === inputIdOf(key));
}

// ---------------------------------------------------------------------------------------------
// Fixtures

const notice = (text = 'Signed in as bot@example.com.'): NoticeView => ({
  kind: 'notice',
  tone: 'success',
  title: 'Azure DevOps is connected and active',
  text,
});

const help: HelpView = {
  kind: 'help',
  intro: 'CloudPi brings your Integration settings and cost recommendations into chat. Commands:',
  commands: [
    { usage: '/cloudpi integrations', description: 'Integration settings and status' },
    { usage: '/cloudpi connect <provider>', description: 'Connect Jira, Azure DevOps or ServiceNow' },
  ],
  suggestion: '/cloudpi integrations',
};

function board(overrides: Partial<StatusBoardView> = {}): StatusBoardView {
  return {
    kind: 'status-board',
    title: 'Integration settings',
    providers: [
      {
        provider: 'jira',
        displayName: 'Jira',
        badge: 'Active',
        status: 'active',
        details: ['https://acme.atlassian.net', 'Tickets go to OPS (Task)'],
        actions: [
          { action: 'edit', label: 'Edit', provider: 'jira' },
          { action: 'configure', label: 'Configure', provider: 'jira' },
          { action: 'pause', label: 'Pause', provider: 'jira' },
          { action: 'disconnect', label: 'Disconnect Provider', provider: 'jira', style: 'danger' },
        ],
      },
      {
        provider: 'azure-devops',
        displayName: 'Azure DevOps',
        badge: 'Connected',
        status: 'connected',
        details: ['Ticket creation is paused.'],
        actions: [{ action: 'activate', label: 'Activate', provider: 'azure-devops' }],
      },
      {
        provider: 'servicenow',
        displayName: 'ServiceNow',
        badge: 'Error',
        status: 'error',
        details: ['Last check failed at 2026-01-02T03:04:05.000Z: Invalid credentials'],
        actions: [{ action: 'connect', label: 'Connect', provider: 'servicenow', style: 'primary' }],
      },
    ],
    settings: [
      { name: 'SSO', badge: 'Not Connected', details: ['Single sign-on comes later.'], actions: [] },
      { name: 'SMTP', badge: 'Not Connected', details: ['Email comes later.'], actions: [] },
    ],
    recentTickets: [
      {
        key: 'OPS-1',
        url: 'https://jira.example.com/browse/OPS-1',
        provider: 'jira',
        title: 'Rightsize db-1',
        status: 'open',
      },
      {
        key: 'OPS-2',
        url: 'javascript:alert(1)',
        provider: 'jira',
        title: 'Delete idle disk',
        status: 'done',
      },
    ],
    deliveryProblems: [
      {
        channelId: '19:abc@thread.tacv2',
        platform: 'teams',
        title: 'Rightsize db-1',
        reason: 'ConversationNotFound',
        at: new Date('2026-01-02T03:04:05Z'),
        fallback: 'Fallback: Sent by email to ops@example.com.',
      },
    ],
    canEdit: true,
    ...overrides,
  };
}

function integrationForm(overrides: Partial<IntegrationFormView> = {}): IntegrationFormView {
  return {
    kind: 'integration-form',
    provider: 'jira',
    title: 'Connect Jira',
    submitLabel: 'Save',
    fields: JIRA_FIELDS.map((f) => (f.key === 'siteUrl' ? { ...f, value: 'https://acme.atlassian.net' } : f)),
    errors: {},
    ...overrides,
  };
}

const details: IntegrationDetailsView = {
  kind: 'integration-details',
  provider: 'azure-devops',
  title: 'Azure DevOps',
  badge: 'Active',
  details: ['https://dev.azure.com/acme'],
  actions: [
    { action: 'edit', label: 'Edit', provider: 'azure-devops' },
    { action: 'configure', label: 'Configure', provider: 'azure-devops' },
    { action: 'pause', label: 'Pause', provider: 'azure-devops' },
    { action: 'disconnect', label: 'Disconnect Provider', provider: 'azure-devops', style: 'danger' },
  ],
  notice: notice(),
};

const configure: ConfigureFormView = {
  kind: 'configure-form',
  provider: 'jira',
  title: 'Configure Jira',
  submitLabel: 'Update',
  fields: [
    {
      key: 'project',
      label: 'Project',
      required: true,
      type: 'select',
      options: [
        { value: 'OPS', label: 'Operations' },
        { value: 'FIN', label: 'FinOps' },
      ],
      value: 'OPS',
      reloads: true,
    },
    {
      key: 'ticketType',
      label: 'Issue type',
      required: true,
      type: 'select',
      options: [{ value: 'Task', label: 'Task' }],
      value: 'Task',
      reloads: true,
    },
    { key: 'field:customfield_1', label: 'Team', required: true, type: 'text' },
  ],
  errors: { 'field:customfield_1': 'Team is required.' },
};

const confirm: ConfirmView = {
  kind: 'confirm',
  title: 'Disconnect Jira?',
  text: 'CloudPi will delete the saved Jira credentials and stop creating tickets there.',
  confirm: { action: 'confirm-disconnect', label: 'Disconnect Provider', provider: 'jira', style: 'danger' },
};

const audit: AuditView = {
  kind: 'audit',
  entries: [
    {
      at: new Date('2026-01-02T03:04:05Z'),
      actor: 'teams:29:1abc',
      action: 'integration.connect',
      target: 'jira',
    },
  ],
};

const progress: ProgressView = { kind: 'progress', title: 'Connect Jira', text: 'Verifying…' };

const subscribe: SubscribeFormView = {
  kind: 'subscribe-form',
  title: 'Subscribe channel',
  channelId: '19:abc@thread.tacv2',
  fields: [
    {
      key: 'clouds',
      label: 'Clouds',
      type: 'multi-select',
      options: [
        { value: 'aws', label: 'AWS' },
        { value: 'azure', label: 'Azure' },
        { value: 'gcp', label: 'Google Cloud' },
      ],
      value: ['aws', 'gcp'],
      hint: 'Leave empty for every cloud.',
    },
    { key: 'account', label: 'Account', type: 'text', placeholder: 'Account id', value: '1234' },
    {
      key: 'provider',
      label: 'Ticket provider',
      type: 'select',
      options: [{ value: 'jira', label: 'Jira' }],
    },
  ],
  errors: { account: 'Use an account id.', _: 'Something is off.' },
};

const subscriptions: SubscriptionListView = {
  kind: 'subscriptions',
  title: 'Subscriptions of this channel',
  channelId: '19:abc@thread.tacv2',
  items: [
    {
      id: '7c1f4a52-8f0c-4d7e-9d8e-1d2f3a4b5c6d',
      filters: 'AWS, severity high or critical',
      tickets: 'Tickets: Jira, project OPS (Task)',
      createdBy: 'teams:29:1abc',
      actions: [
        {
          action: 'unsubscribe',
          label: 'Unsubscribe',
          subscriptionId: '7c1f4a52-8f0c-4d7e-9d8e-1d2f3a4b5c6d',
          style: 'danger',
        },
      ],
    },
  ],
  empty: 'This channel has no subscriptions.',
};

function rec(overrides: Partial<RecommendationCardView> = {}): RecommendationCardView {
  return {
    recommendationId: REC_ID,
    title: 'Rightsize db-1',
    resource: 'arn:aws:rds:eu-west-1:123:db:db-1',
    account: '123456789012',
    cloud: 'aws',
    category: 'rightsizing',
    savings: '$1,234.50',
    severity: 'high',
    link: 'https://app.cloudpi.example/recommendations/1',
    ticket: { kind: 'none' },
    offeredProviders: [{ kind: 'jira', displayName: 'Jira' }],
    dismissed: false,
    ...overrides,
  };
}

const ALL_VIEWS: View[] = [
  notice(),
  help,
  { ...help, commands: [], suggestion: undefined },
  board(),
  board({ canEdit: false, deliveryProblems: undefined, recentTickets: [] }),
  integrationForm(),
  details,
  configure,
  confirm,
  audit,
  { kind: 'audit', entries: [] },
  progress,
  subscribe,
  subscriptions,
  { ...subscriptions, items: [], notice: notice() },
];

// ---------------------------------------------------------------------------------------------

describe('Teams rendering: validity', () => {
  it('renders every view kind as a message card the object model accepts', () => {
    for (const view of ALL_VIEWS) {
      const card = renderMessageCard(view);
      expect(valid(card), view.kind).toEqual([]);
      expect(card.version).toBe('1.5');
      expect(card.$schema).toBe('http://adaptivecards.io/schemas/adaptive-card.json');
    }
  });

  it('renders every view kind as a dialog the object model accepts', () => {
    for (const view of ALL_VIEWS) {
      const { title, card } = renderDialog(view);
      expect(valid(card), view.kind).toEqual([]);
      expect(title.length).toBeGreaterThan(0);
    }
    expect(renderDialog(integrationForm()).title).toBe('Connect Jira');
    expect(renderDialog(notice()).title).toBe('CloudPi');
  });

  it('renders every ticket state of a recommendation card validly', () => {
    const states: RecommendationCardView[] = [
      rec(),
      rec({
        offeredProviders: [
          { kind: 'jira', displayName: 'Jira' },
          { kind: 'azure-devops', displayName: 'Azure DevOps' },
        ],
      }),
      rec({ ticket: { kind: 'creating', provider: 'jira' } }),
      rec({
        ticket: {
          kind: 'created',
          provider: 'jira',
          key: 'OPS-7',
          url: 'https://jira.example.com/browse/OPS-7',
          status: 'in_progress',
          providerStatus: 'In Review',
          createdBy: 'alice@example.com',
        },
      }),
      rec({ ticket: { kind: 'failed', provider: 'jira', reason: 'Project OPS does not exist.' } }),
      rec({ dismissed: true }),
      rec({ link: 'javascript:alert(1)', resource: undefined, severity: undefined }),
    ];
    for (const view of states) expect(valid(renderRecommendationCard(view))).toEqual([]);
  });
});

describe('Teams rendering: text is shown literally', () => {
  it('escapes markdown, mentions, HTML and entities', () => {
    expect(shown(escapeMarkdown(HOSTILE))).toBe(HOSTILE);
    expect(unescapedSpecials(escapeMarkdown(HOSTILE))).toEqual([]);
    const lines = '- item\n+ plus\n1. first\n> quote\n# heading\n    code';
    const escaped = escapeMarkdown(lines);
    expect(escaped.split('\n\n')).toEqual([
      '\\- item',
      '\\+ plus',
      '1\\. first',
      '&gt; quote',
      '\\# heading',
      'code',
    ]);
    expect(escapeMarkdown('a \\*b\\*')).toBe('a \\\\\\*b\\\\\\*');
  });

  it('builds links only to http(s) URLs, with the text escaped', () => {
    expect(markdownLink('https://jira.example.com/browse/OPS-1', 'OPS-1')).toBe(
      '[OPS-1](https://jira.example.com/browse/OPS-1)',
    );
    expect(markdownLink('javascript:alert(1)', 'OPS-1')).toBe('OPS-1');
    expect(markdownLink('https://x.example/a_(b) c', '[x](y)')).toBe(
      '[\\[x\\]\\(y\\)](https://x.example/a_%28b%29%20c)',
    );
    expect(markdownLink(`https://x.example/${'a'.repeat(2001)}`, 'long')).toBe('long');
  });

  it('shows hostile text literally on every surface', () => {
    const hostileBoard = board({
      title: HOSTILE,
      providers: board().providers.map((p) => ({
        ...p,
        displayName: HOSTILE,
        badge: HOSTILE,
        details: [HOSTILE],
      })),
      settings: [{ name: HOSTILE, badge: 'Not Connected', details: [HOSTILE], actions: [] }],
      recentTickets: [
        {
          key: HOSTILE,
          url: 'https://jira.example.com/browse/OPS-1',
          provider: HOSTILE,
          title: HOSTILE,
          status: HOSTILE,
        },
      ],
      deliveryProblems: [
        {
          channelId: HOSTILE,
          platform: 'teams',
          title: HOSTILE,
          reason: HOSTILE,
          at: new Date(),
          fallback: HOSTILE,
        },
      ],
    });
    const cards = [
      renderMessageCard(hostileBoard),
      renderMessageCard({ kind: 'notice', tone: 'error', title: HOSTILE, text: HOSTILE }),
      renderMessageCard({ ...help, intro: HOSTILE, suggestion: HOSTILE }),
      renderMessageCard({
        ...audit,
        entries: [{ at: new Date(), actor: HOSTILE, action: HOSTILE, target: HOSTILE }],
      }),
      renderMessageCard({ ...details, details: [HOSTILE], notice: notice(HOSTILE) }),
      renderMessageCard({
        ...subscriptions,
        items: [{ ...subscriptions.items[0]!, filters: HOSTILE, tickets: HOSTILE, createdBy: HOSTILE }],
      }),
      renderDialog(integrationForm({ errors: { siteUrl: HOSTILE, _: HOSTILE }, notice: notice(HOSTILE) }))
        .card,
      renderDialog({ ...confirm, text: HOSTILE }).card,
      renderRecommendationCard(
        rec({
          title: HOSTILE,
          resource: HOSTILE,
          account: HOSTILE,
          category: HOSTILE,
          ticket: {
            kind: 'created',
            provider: 'jira',
            key: HOSTILE,
            url: 'https://jira.example.com/browse/OPS-1',
            status: 'open',
            providerStatus: HOSTILE,
            createdBy: HOSTILE,
          },
        }),
      ),
      renderRecommendationCard(rec({ ticket: { kind: 'failed', provider: 'jira', reason: HOSTILE } })),
    ];
    for (const card of cards) {
      expect(valid(card)).toEqual([]);
      expectLiteral(card);
    }
  });

  it('links recent tickets with http(s) URLs only', () => {
    const texts = markdownOf(renderMessageCard(board())).join('\n');
    expect(texts).toContain('[OPS-1](https://jira.example.com/browse/OPS-1) · Rightsize db-1');
    expect(texts).not.toContain('javascript:');
    expect(texts).toContain('OPS-2 · Delete idle disk');
  });
});

describe('Teams rendering: message cards', () => {
  it('shows a notice with its tone as icon and color', () => {
    const card = renderMessageCard({
      kind: 'notice',
      tone: 'error',
      title: 'Invalid Client ID',
      text: 'Check it.',
    });
    expect(card.body[0]).toMatchObject({
      type: 'TextBlock',
      text: '❌ Invalid Client ID',
      color: 'attention',
    });
    expect(renderMessageCard(notice()).body[0]).toMatchObject({ color: 'good' });
  });

  it('shows help with Teams commands and the suggestion', () => {
    const texts = markdownOf(renderMessageCard(help));
    expect(texts[0]).toBe('🤔 Did you mean integrations?');
    expect(texts).toContain('connect &lt;provider&gt;');
  });

  it('shows a badge per provider in its color, delivery problems with the fallback, and buttons', () => {
    const card = renderMessageCard(board());
    const badges = nodesOf(card).filter((n) => n.type === 'TextBlock' && String(n.text).startsWith('● '));
    expect(badges.map((b) => [b.text, b.color])).toEqual([
      ['● Active', 'good'],
      ['● Connected', 'accent'],
      ['● Error', 'attention'],
      ['● Not Connected', 'default'],
      ['● Not Connected', 'default'],
    ]);
    const texts = markdownOf(card).map(shown);
    expect(texts).toContain('Delivery problems');
    expect(texts).toContain('Fallback: Sent by email to ops@example.com.');
    expect(texts.some((t) => t.startsWith('19:abc@thread.tacv2 · ConversationNotFound'))).toBe(true);

    const actions = actionsOf(card);
    expect(actions.find((a) => a.title === 'Edit')).toEqual({
      type: 'Action.Submit',
      title: 'Edit',
      data: { msteams: { type: 'task/fetch' }, verb: 'cloudpi.dialog.open', form: 'edit', provider: 'jira' },
    });
    expect(actions.find((a) => a.title === 'Disconnect Provider')).toMatchObject({
      type: 'Action.Submit',
      style: 'destructive',
      data: { verb: 'cloudpi.dialog.open', form: 'disconnect', provider: 'jira' },
    });
    expect(actions.find((a) => a.title === 'Pause')).toEqual({
      type: 'Action.Execute',
      title: 'Pause',
      verb: 'cloudpi.board.pause',
      data: { verb: 'cloudpi.board.pause', provider: 'jira' },
    });
    expect(actions.find((a) => a.title === 'Connect')).toMatchObject({
      style: 'positive',
      data: { form: 'connect', provider: 'servicenow' },
    });
    expect(card.actions).toEqual([
      {
        type: 'Action.Execute',
        title: 'Refresh',
        verb: 'cloudpi.board.refresh',
        data: { verb: 'cloudpi.board.refresh' },
      },
    ]);
  });

  it('shows non-admins no buttons and no delivery problems', () => {
    const card = renderMessageCard(board({ canEdit: false, deliveryProblems: undefined }));
    expect(actionsOf(card).map((a) => a.title)).toEqual(['Refresh']);
    expect(markdownOf(card).join('\n')).toContain('Only CloudPi admins can change these settings');
    expect(markdownOf(card)).not.toContain('Delivery problems');
  });

  it('gives each subscription an Unsubscribe button carrying its id', () => {
    const unsubscribe = actionsOf(renderMessageCard(subscriptions)).find((a) => a.title === 'Unsubscribe');
    expect(unsubscribe).toEqual({
      type: 'Action.Execute',
      title: 'Unsubscribe',
      verb: 'cloudpi.board.unsubscribe',
      data: { verb: 'cloudpi.board.unsubscribe', subscriptionId: '7c1f4a52-8f0c-4d7e-9d8e-1d2f3a4b5c6d' },
      style: 'destructive',
    });
  });

  it('asks for the disconnect confirmation in a message with an Execute button', () => {
    expect(renderMessageCard(confirm).actions).toEqual([
      {
        type: 'Action.Execute',
        title: 'Disconnect Provider',
        verb: 'cloudpi.board.confirm-disconnect',
        data: { verb: 'cloudpi.board.confirm-disconnect', provider: 'jira' },
        style: 'destructive',
      },
    ]);
  });

  it('offers a form asked for in a message as a button that opens the dialog', () => {
    expect(renderMessageCard(integrationForm({ submitLabel: 'Update' })).actions?.[0]).toMatchObject({
      type: 'Action.Submit',
      title: 'Edit',
      data: { msteams: { type: 'task/fetch' }, verb: 'cloudpi.dialog.open', form: 'edit', provider: 'jira' },
    });
    expect(renderMessageCard(subscribe).actions?.[0]).toMatchObject({
      data: { verb: 'cloudpi.dialog.open', form: 'subscribe' },
    });
  });
});

describe('Teams rendering: dialogs', () => {
  it('renders the connection form from the fields, Save for new and Update for configured', () => {
    const { card } = renderDialog(integrationForm());
    const byId = Object.fromEntries(card.body.filter((e) => 'id' in e).map((e) => [e.id, e]));
    expect(byId.f_deployment).toMatchObject({
      type: 'Input.ChoiceSet',
      style: 'compact',
      value: 'cloud',
      isRequired: true,
      errorMessage: 'Jira deployment is required.',
      choices: [
        { title: 'Jira Cloud', value: 'cloud' },
        { title: 'Jira Data Center / Server', value: 'server' },
      ],
    });
    expect(byId.f_siteUrl).toMatchObject({
      type: 'Input.Text',
      style: 'url',
      value: 'https://acme.atlassian.net',
      isRequired: true,
    });
    // Conditional fields are all shown, named after the choice they belong to, not required.
    expect(byId.f_email).toMatchObject({ style: 'email', label: 'Account email (Jira Cloud only)' });
    expect(byId.f_email).not.toHaveProperty('isRequired');
    expect(byId.f_personalAccessToken).toMatchObject({
      style: 'password',
      label: 'Personal access token (Jira Data Center / Server only)',
    });
    expect(card.actions).toEqual([
      {
        type: 'Action.Submit',
        title: 'Save',
        style: 'positive',
        data: { verb: 'cloudpi.dialog.submit', form: 'integration', provider: 'jira' },
      },
    ]);
    expect(renderDialog(integrationForm({ submitLabel: 'Update' })).card.actions?.[0]).toMatchObject({
      title: 'Update',
    });
  });

  it('never pre-fills a secret, even when the view carries a value for it', () => {
    const form = integrationForm({
      fields: [
        {
          key: 'pat',
          label: 'Personal Access Token (PAT)',
          required: false,
          secret: true,
          type: 'password',
          value: 's3cret-value',
          defaultValue: 's3cret-default',
          hasSavedSecret: true,
        },
        { key: 'token', label: 'Token', required: true, secret: true, type: 'text', value: 'other-s3cret' },
      ],
    });
    const { card } = renderDialog(form);
    const json = JSON.stringify(card);
    expect(json).not.toContain('s3cret');
    const pat = card.body[bodyIndexOfInput(card, 'pat')];
    expect(pat).toMatchObject({ type: 'Input.Text', style: 'password' });
    expect(pat).not.toHaveProperty('value');
    expect(pat).not.toHaveProperty('isRequired');
    expect(card.body[bodyIndexOfInput(card, 'pat') + 1]).toMatchObject({
      type: 'TextBlock',
      text: 'Leave blank to keep the saved value.',
    });
    expect(card.body[bodyIndexOfInput(card, 'token')]).toMatchObject({ style: 'password', isRequired: true });
    expect(valid(card)).toEqual([]);
  });

  it('shows a field error directly under its input, form errors and the notice above the inputs', () => {
    const { card } = renderDialog(
      integrationForm({
        errors: { siteUrl: 'Authorization endpoint unreachable', _: 'Invalid Client ID' },
        notice: { kind: 'notice', tone: 'error', title: 'Unable to connect' },
      }),
    );
    const at = bodyIndexOfInput(card, 'siteUrl');
    expect(card.body[at + 1]).toMatchObject({
      type: 'TextBlock',
      color: 'attention',
      text: '⚠️ Authorization endpoint unreachable',
    });
    const first = card.body.findIndex((e) => 'id' in e);
    const above = card.body.slice(0, first).map((e) => ('text' in e ? e.text : undefined));
    expect(above).toEqual(['❌ Unable to connect', '⚠️ Invalid Client ID']);
  });

  it('renders the configure form with ChoiceSets and a Reload button per reloading field', () => {
    const { card } = renderDialog(configure);
    expect(valid(card)).toEqual([]);
    const project = bodyIndexOfInput(card, 'project');
    expect(card.body[project]).toMatchObject({ type: 'Input.ChoiceSet', style: 'compact', value: 'OPS' });
    expect(card.body[project + 1]).toEqual({
      type: 'ActionSet',
      spacing: 'small',
      actions: [
        {
          type: 'Action.Submit',
          title: 'Reload',
          data: {
            verb: 'cloudpi.dialog.configure-reload',
            form: 'configure',
            provider: 'jira',
            field: 'project',
          },
        },
      ],
    });
    // A required text field is checked by the server, so that Reload is never blocked by it.
    const team = bodyIndexOfInput(card, 'field:customfield_1');
    expect(card.body[team]).toMatchObject({ type: 'Input.Text', label: 'Team (required)' });
    expect(card.body[team]).not.toHaveProperty('isRequired');
    expect(card.body[team + 1]).toMatchObject({ color: 'attention', text: '⚠️ Team is required.' });
    expect(card.actions?.[0]).toMatchObject({
      title: 'Update',
      data: { verb: 'cloudpi.dialog.submit', form: 'configure', provider: 'jira' },
    });
  });

  it('renders the subscribe form with multi-selects as comma-joined values', () => {
    const { card } = renderDialog(subscribe);
    expect(card.body[bodyIndexOfInput(card, 'clouds')]).toMatchObject({
      type: 'Input.ChoiceSet',
      isMultiSelect: true,
      value: 'aws,gcp',
    });
    expect(card.body[bodyIndexOfInput(card, 'account') + 1]).toMatchObject({ text: '⚠️ Use an account id.' });
    expect(card.body[0]).toMatchObject({ text: '⚠️ Something is off.' });
    expect(card.actions?.[0]).toEqual({
      type: 'Action.Submit',
      title: 'Subscribe',
      style: 'positive',
      data: { verb: 'cloudpi.dialog.submit', form: 'subscribe', channelId: '19:abc@thread.tacv2' },
    });
    // What Teams submits comes back as the core reads it.
    expect(
      subscribeValuesOf({
        verb: 'cloudpi.dialog.submit',
        form: 'subscribe',
        channelId: 'x',
        f_clouds: 'aws,gcp',
        f_provider: 'jira',
        f_account: '',
      }),
    ).toEqual({ clouds: ['aws', 'gcp'], provider: 'jira', account: '' });
  });

  it('confirms a disconnect with a destructive submit', () => {
    const { title, card } = renderDialog(confirm);
    expect(title).toBe('Disconnect Jira?');
    expect(card.actions).toEqual([
      {
        type: 'Action.Submit',
        title: 'Disconnect Provider',
        style: 'destructive',
        data: { verb: 'cloudpi.dialog.submit', form: 'disconnect', provider: 'jira' },
      },
    ]);
  });

  it('uses plain submits inside a dialog (Teams runs no Execute or task/fetch there)', () => {
    for (const view of [details, board(), subscriptions, confirm, configure]) {
      const inDialog = renderDialog(view).card;
      expect(actionsOf(inDialog).every((a) => a.type === 'Action.Submit')).toBe(true);
      expect(JSON.stringify(inDialog)).not.toContain('task/fetch');
    }
    const { card } = renderDialog(details);
    const actions = actionsOf(card);
    expect(actions.find((a) => a.title === 'Pause')).toEqual({
      type: 'Action.Submit',
      title: 'Pause',
      data: { verb: 'cloudpi.board.pause', provider: 'azure-devops' },
    });
    expect(actions.find((a) => a.title === 'Edit')).toEqual({
      type: 'Action.Submit',
      title: 'Edit',
      data: { verb: 'cloudpi.dialog.open', form: 'edit', provider: 'azure-devops' },
    });
  });

  it('maps input ids back to field keys without colliding with action data', () => {
    for (const key of ['verb', 'form', 'provider', 'channelId', 'msteams', 'field:customfield_1'])
      expect(fieldKeyOf(inputIdOf(key))).toBe(key);
    expect(fieldKeyOf('verb')).toBeUndefined();
    expect(
      formValuesOf({
        verb: 'cloudpi.dialog.submit',
        form: 'integration',
        provider: 'jira',
        f_provider: 'x',
        f_n: 3,
      }),
    ).toEqual({ provider: 'x', n: '3' });
  });
});

describe('Teams rendering: recommendation cards', () => {
  it('shows the facts and opens CloudPi by http(s) link only', () => {
    const card = renderRecommendationCard(rec());
    expect(card.body[1]).toEqual({
      type: 'FactSet',
      facts: [
        { title: 'Resource', value: 'arn:aws:rds:eu-west-1:123:db:db-1' },
        { title: 'Account', value: '123456789012' },
        { title: 'Cloud', value: 'aws' },
        { title: 'Category', value: 'rightsizing' },
        { title: 'Monthly savings', value: '$1,234.50' },
        { title: 'Severity', value: '🟠 high' },
      ],
    });
    // The link is a line of the card (the button row keeps room for its titles).
    expect(markdownOf(card)).toContain('🔗 [Open in CloudPi](https://app.cloudpi.example/recommendations/1)');
    const unsafe = renderRecommendationCard(rec({ link: 'javascript:alert(1)' }));
    expect(JSON.stringify(unsafe)).not.toContain('javascript:');
    expect(markdownOf(unsafe).some((t) => t.includes('Open in CloudPi'))).toBe(false);
    const long = renderRecommendationCard(rec({ link: `https://app.cloudpi.example/${'a'.repeat(2000)}` }));
    expect(markdownOf(long).some((t) => t.includes('Open in CloudPi'))).toBe(false);
  });

  it('offers Create ticket per provider (named when several), and Dismiss', () => {
    const one = renderRecommendationCard(rec());
    expect(one.actions?.[0]).toEqual({
      type: 'Action.Execute',
      title: 'Create ticket',
      verb: 'cloudpi.card.create',
      data: { verb: 'cloudpi.card.create', recommendationId: REC_ID, provider: 'jira' },
      style: 'positive',
    });
    const several = renderRecommendationCard(
      rec({
        offeredProviders: [
          { kind: 'jira', displayName: 'Jira' },
          { kind: 'azure-devops', displayName: 'Azure DevOps' },
          { kind: 'servicenow', displayName: 'ServiceNow' },
        ],
      }),
    );
    // Two buttons that fit the card's width: "Create ticket" shows the providers, and Dismiss.
    expect(several.actions?.map((a) => [a.type, a.title])).toEqual([
      ['Action.ShowCard', 'Create ticket'],
      ['Action.Execute', 'Dismiss'],
    ]);
    const choice = (
      several.actions![0] as unknown as { card: { actions: { title: string; data: unknown }[] } }
    ).card;
    expect(choice.actions.map((a) => [a.title, a.data])).toEqual([
      ['Jira', { verb: 'cloudpi.card.create', recommendationId: REC_ID, provider: 'jira' }],
      ['Azure DevOps', { verb: 'cloudpi.card.create', recommendationId: REC_ID, provider: 'azure-devops' }],
      ['ServiceNow', { verb: 'cloudpi.card.create', recommendationId: REC_ID, provider: 'servicenow' }],
    ]);
    expect(validateAdaptiveCard(several, { verbs: TEAMS_VERBS })).toEqual([]);
  });

  it('asks Teams to refresh the card with its recommendation id', () => {
    expect(renderRecommendationCard(rec()).refresh).toEqual({
      action: {
        type: 'Action.Execute',
        verb: 'cloudpi.card.refresh',
        data: { verb: 'cloudpi.card.refresh', recommendationId: REC_ID },
      },
    });
  });

  it('shows the ticket being created, then its link, status and creator', () => {
    const creating = renderRecommendationCard(rec({ ticket: { kind: 'creating', provider: 'jira' } }));
    expect(markdownOf(creating)).toContain('⏳ Creating ticket…');
    expect((creating.actions ?? []).filter((a) => a.type === 'Action.Execute')).toEqual([]);
    const created = renderRecommendationCard(
      rec({
        ticket: {
          kind: 'created',
          provider: 'jira',
          key: 'OPS-7',
          url: 'https://jira.example.com/browse/OPS-7',
          status: 'in_progress',
          providerStatus: null,
          createdBy: 'alice@example.com',
        },
      }),
    );
    expect(markdownOf(created)).toContain(
      '🎫 Ticket [OPS-7](https://jira.example.com/browse/OPS-7) · In progress · by alice@example.com',
    );
  });

  it('marks a done or closed ticket as Resolved', () => {
    for (const status of ['done', 'closed']) {
      const card = renderRecommendationCard(
        rec({
          ticket: {
            kind: 'created',
            provider: 'jira',
            key: 'OPS-7',
            url: 'https://jira.example.com/browse/OPS-7',
            status,
            providerStatus: status === 'done' ? 'Done' : null,
            createdBy: 'teams:29:1abc',
          },
        }),
      );
      const line = markdownOf(card).find((t) => t.includes('Resolved'));
      expect(line).toBe(
        `✅ Resolved · Ticket [OPS-7](https://jira.example.com/browse/OPS-7) · ${status === 'done' ? 'Done' : 'Closed'} · by a Teams user`,
      );
      expect(actionsOf(card).filter((a) => a.verb === 'cloudpi.card.create')).toEqual([]);
    }
  });

  it('shows why a ticket failed with a Retry button', () => {
    const card = renderRecommendationCard(
      rec({ ticket: { kind: 'failed', provider: 'azure-devops', reason: 'Project OPS does not exist.' } }),
    );
    expect(markdownOf(card)).toContain('⚠️ The ticket could not be created: Project OPS does not exist.');
    expect(card.actions?.[0]).toEqual({
      type: 'Action.Execute',
      title: 'Retry',
      verb: 'cloudpi.card.retry',
      data: { verb: 'cloudpi.card.retry', recommendationId: REC_ID, provider: 'azure-devops' },
      style: 'positive',
    });
  });

  it('shows a dismissed copy without buttons to press or a refresh', () => {
    const card = renderRecommendationCard(rec({ dismissed: true }));
    expect(markdownOf(card)).toContain('🚫 Dismissed in this channel.');
    expect(JSON.stringify(card)).not.toContain('Action.Execute');
    expect(card.refresh).toBeUndefined();
  });
});

describe('Teams rendering: size', () => {
  const long = (c: string, n: number) => c.repeat(n);

  it('keeps an oversized status board under 28 KB, dropping what does not fit', () => {
    const huge = board({
      providers: board().providers.map((p) => ({ ...p, details: [long('<', 5000), long('x', 5000)] })),
      recentTickets: Array.from({ length: 500 }, (_, i) => ({
        key: `OPS-${i}`,
        url: `https://jira.example.com/browse/OPS-${i}`,
        provider: 'jira',
        title: long('t', 300),
        status: 'open',
      })),
      deliveryProblems: Array.from({ length: 500 }, (_, i) => ({
        channelId: `19:${i}@thread.tacv2`,
        platform: 'teams',
        title: long('<', 300),
        reason: 'ConversationNotFound',
        at: new Date(),
        fallback: long('f', 3000),
      })),
    });
    const card = renderMessageCard(huge);
    expect(cardByteLength(card)).toBeLessThanOrEqual(CARD_MAX_BYTES);
    expect(CARD_MAX_BYTES).toBeLessThan(MAX_CARD_BYTES);
    expect(valid(card)).toEqual([]);
    const texts = markdownOf(card);
    expect(texts.some((t) => /^… \d+ more not shown here/.test(t))).toBe(true);
    expect(texts.some((t) => t.startsWith('[OPS-0]('))).toBe(true);
    // Strings are cut to their limits.
    expect(Math.max(...texts.map((t) => shown(t).length))).toBeLessThanOrEqual(2000);
  });

  it('keeps long lists and long values under 28 KB on every surface', () => {
    const cards = [
      renderMessageCard({
        kind: 'audit',
        entries: Array.from({ length: 1000 }, () => ({
          at: new Date(),
          actor: long('&', 300),
          action: 'integration.connect',
          target: long('t', 300),
        })),
      }),
      renderMessageCard({
        ...subscriptions,
        items: Array.from({ length: 40 }, (_, i) => ({
          ...subscriptions.items[0]!,
          id: `id-${i}`,
          filters: long('*', 3000),
        })),
      }),
      renderMessageCard({
        ...help,
        commands: Array.from({ length: 300 }, () => ({
          usage: long('u', 300),
          description: long('d', 2000),
        })),
      }),
      renderRecommendationCard(
        rec({
          title: long('<', 1000),
          resource: long('<', 5000),
          account: long('<', 5000),
          cloud: long('<', 5000),
          category: long('<', 5000),
          savings: long('<', 5000),
          severity: long('<', 5000),
          ticket: { kind: 'failed', provider: 'jira', reason: long('>', 10000) },
        }),
      ),
      renderDialog(
        integrationForm({ errors: Object.fromEntries(JIRA_FIELDS.map((f) => [f.key, long('<', 5000)])) }),
      ).card,
    ];
    for (const card of cards) {
      expect(cardByteLength(card)).toBeLessThanOrEqual(CARD_MAX_BYTES);
      expect(valid(card)).toEqual([]);
    }
  });
  it('keeps a configure form with long option lists under 28 KB, the chosen options included', () => {
    const options = Array.from({ length: 100 }, (_, i) => ({
      value: `P${i}`,
      label: `${'p'.repeat(70)}${i}`,
    }));
    const { card } = renderDialog({
      ...configure,
      fields: Array.from({ length: 4 }, (_, n) => ({
        key: `f${n}`,
        label: `Field ${n}`,
        required: true,
        type: 'select' as const,
        options,
        value: 'P99',
        reloads: n === 0,
      })),
      errors: {},
    });
    expect(cardByteLength(card)).toBeLessThanOrEqual(CARD_MAX_BYTES);
    expect(valid(card)).toEqual([]);
    const sets = card.body.filter((e) => e.type === 'Input.ChoiceSet');
    expect(sets).toHaveLength(4);
    for (const set of sets) {
      expect(set).toMatchObject({ value: 'P99' });
      expect(set.type === 'Input.ChoiceSet' && set.choices.some((c) => c.value === 'P99')).toBe(true);
    }
    expect(markdownOf(card).some((t) => /^\d+ more choices are not shown here\.$/.test(t))).toBe(true);
  });
});

describe('Adaptive Card validator', () => {
  const base = () => ({
    type: 'AdaptiveCard',
    $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
    version: '1.5',
    msteams: { width: 'Full' },
    body: [{ type: 'TextBlock', text: 'Hello', wrap: true }] as Json[],
    actions: [
      { type: 'Action.Execute', title: 'Go', verb: VERB.boardRefresh, data: { verb: VERB.boardRefresh } },
      {
        type: 'Action.Submit',
        title: 'Open',
        data: { msteams: { type: 'task/fetch' }, verb: VERB.dialogOpen },
      },
    ] as Json[],
  });

  it('accepts a valid card with Teams extensions', () => {
    expect(valid(base())).toEqual([]);
  });

  it('rejects an unknown element type', () => {
    const card = base();
    card.body.push({ type: 'Carousel2', items: [] });
    expect(valid(card).join('\n')).toMatch(/Unknown element type "Carousel2"/);
  });

  it('rejects an unknown action type', () => {
    const card = base();
    card.actions.push({ type: 'Action.Launch', title: 'x' });
    expect(valid(card).join('\n')).toMatch(/Unknown action type "Action\.Launch"/);
  });

  it('rejects an unknown property, also in nested objects', () => {
    const card = base();
    card.body[0] = { type: 'TextBlock', text: 'Hello', wrap: true, markdown: false };
    card.body.push({ type: 'FactSet', facts: [{ title: 'a', value: 'b', link: 'x' }] });
    expect(valid(card)).toEqual([
      'body[0]: unknown property "markdown".',
      'body[1].facts[0]: unknown property "link".',
    ]);
  });

  it('accepts declared properties that hold their default value', () => {
    const card = base();
    card.body[0] = { type: 'TextBlock', text: 'Hello', wrap: false, isSubtle: false, color: 'default' };
    expect(valid(card)).toEqual([]);
  });

  it('rejects duplicate input ids and inputs without an id', () => {
    const card = base();
    card.body.push(
      { type: 'Input.Text', id: 'f_a', label: 'A' },
      { type: 'Container', items: [{ type: 'Input.Toggle', id: 'f_a', title: 'B', label: 'B' }] },
      { type: 'Input.Text', label: 'C' },
    );
    const problems = valid(card).join('\n');
    expect(problems).toMatch(/Duplicate Id "f_a"/);
    expect(problems).toMatch(/input id "f_a" is used twice/);
    expect(problems).toMatch(/Input\.Text has no id/);
  });

  it('rejects an unknown verb on Action.Execute, Action.Submit and refresh', () => {
    const card: Json = base();
    (card.actions as Json[]).push(
      { type: 'Action.Execute', title: 'x', verb: 'cloudpi.nope', data: {} },
      { type: 'Action.Submit', title: 'y', data: { verb: 'cloudpi.other' } },
      { type: 'Action.Submit', title: 'z', data: {} },
    );
    card.refresh = { action: { type: 'Action.Execute', verb: 'cloudpi.stale', data: {} } };
    expect(valid(card)).toEqual([
      'actions[2]: unknown verb "cloudpi.nope".',
      'actions[3]: unknown data.verb "cloudpi.other".',
      'actions[4]: Action.Submit has no data.verb.',
      'refresh.action: unknown verb "cloudpi.stale".',
    ]);
  });

  it('rejects a card newer than 1.5, and 1.6 properties in a 1.5 card', () => {
    expect(valid({ ...base(), version: '1.6' })).toContain(
      '(card): version 1.6 is newer than 1.5, the newest Teams renders.',
    );
    expect(valid({ ...base(), version: undefined }).join('\n')).toMatch(/version must be/);
    const card = base();
    card.actions.push({ type: 'Action.OpenUrl', title: 'x', url: 'https://x.example', menuActions: [] });
    expect(valid(card).join('\n')).toMatch(/menuActions/);
  });

  it('rejects a javascript: OpenUrl', () => {
    const card = base();
    card.actions.push({ type: 'Action.OpenUrl', title: 'x', url: 'javascript:alert(1)' });
    expect(valid(card)).toEqual([
      'actions[2]: Action.OpenUrl url must be http(s), not "javascript:alert(1)".',
    ]);
  });

  it('rejects invalid values and cards over 28 KB', () => {
    const card = base();
    card.body.push({ type: 'TextBlock', text: 'x'.repeat(29 * 1024), color: 'purple' });
    const problems = valid(card).join('\n');
    expect(problems).toMatch(/Invalid value "purple" for property "color"/);
    expect(problems).toMatch(/bytes, over Teams' 28672/);
    expect(validateAdaptiveCard('nope')).toEqual(['The card is not a JSON object.']);
  });
});
