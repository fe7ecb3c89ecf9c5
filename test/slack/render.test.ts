/**
 * Block Kit rendering: user and provider text cannot mention or link, everything fits Slack's
 * limits (checked by the Slack fake's own Block Kit validator, surface-wide unique action ids).
 */
import { describe, expect, it } from 'vitest';
import {
  cut,
  escapeMrkdwn,
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
  const card = (status: string): RecommendationCardView => ({
    recommendationId: '00000000-0000-4000-8000-000000000001',
    title: 'Rightsize i-0abc',
    ticket: {
      kind: 'created',
      provider: 'jira',
      key: 'OPS-7',
      url: 'https://jira.example/browse/OPS-7',
      status,
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
      expect(text).toContain(status);
    }
  });

  it('shows an open ticket without Resolved', () => {
    const text = textOf(renderCard(card('in_progress')).blocks);
    expect(text).toContain(':ticket: Ticket');
    expect(text).toContain('in_progress');
    expect(text).not.toContain('Resolved');
  });
});
