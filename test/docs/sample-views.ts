/**
 * Realistic sample views for the Teams card pictures in the README (docs/teams/*.png), made by
 * test/docs/render-card-pictures.ts and checked by test/docs/card-pictures.test.ts.
 *
 * The views are what the core builds (src/commands/chat-commands.ts, src/recommendations/card.ts),
 * from the real data where it is plain data: the command list (COMMANDS), the Azure DevOps
 * connection form (azureDevOpsFields), the subscribe form's fields, clouds and severities.
 * Everything else (sites, projects, tickets, recommendations) is made up but shaped as the core
 * shapes it: normalized ticket statuses, provider kinds, `teams:<id>` creators, raw severities.
 */
import { createHash } from 'node:crypto';
import {
  type AdaptiveCardJson,
  renderDialog,
  renderMessageCard,
  renderRecommendationCard,
} from '../../adapters/chat/teams/render.js';
import { azureDevOpsFields, PAT_FIELD } from '../../adapters/tickets/azure-devops/credentials.js';
import { COMMANDS } from '../../src/commands/grammar.js';
import type {
  ActionButton,
  HelpView,
  IntegrationFormView,
  StatusBoardView,
  SubscribeFormView,
  View,
} from '../../src/commands/views.js';
import type { RecommendationCardView } from '../../src/recommendations/card.js';
import { CLOUDS } from '../../src/recommendations/ingest.js';
import { CLOUD_LABELS, SUBSCRIBE_FIELDS } from '../../src/recommendations/subscriptions.js';
import { SEVERITIES, type TicketProviderKind } from '../../src/tickets/port.js';

/** Where a view is shown in Teams, and so which renderer draws it. */
export type Sample =
  | { readonly surface: 'message'; readonly view: View }
  | { readonly surface: 'dialog'; readonly view: View }
  | { readonly surface: 'recommendation'; readonly view: RecommendationCardView };

/** `help`: what ChatCommands.help() answers (the command list of the grammar). */
export const helpView: HelpView = {
  kind: 'help',
  intro: 'CloudPi brings your Integration settings and cost recommendations into chat. Commands:',
  commands: COMMANDS.map((c) => ({ usage: `/cloudpi ${c.usage}`, description: c.description })),
};

/** The buttons ChatCommands gives an admin for a connected provider. */
function connectedActions(provider: TicketProviderKind, paused = false): ActionButton[] {
  return [
    { action: 'edit', label: 'Edit', provider },
    { action: 'configure', label: 'Configure', provider },
    paused
      ? { action: 'activate', label: 'Activate', provider }
      : { action: 'pause', label: 'Pause', provider },
    { action: 'disconnect', label: 'Disconnect Provider', provider, style: 'danger' },
  ];
}

/** `integrations` for an admin: two Active providers, one not connected, SSO and SMTP, tickets. */
export const statusBoardView: StatusBoardView = {
  kind: 'status-board',
  title: 'Integration settings',
  providers: [
    {
      provider: 'jira',
      displayName: 'Jira',
      badge: 'Active',
      status: 'active',
      details: ['https://acme.atlassian.net', 'Tickets go to OPS (Task)'],
      actions: connectedActions('jira'),
    },
    {
      provider: 'azure-devops',
      displayName: 'Azure DevOps',
      badge: 'Active',
      status: 'active',
      details: ['https://dev.azure.com/acme'],
      actions: connectedActions('azure-devops'),
    },
    {
      provider: 'servicenow',
      displayName: 'ServiceNow',
      badge: 'Not Connected',
      status: 'not_connected',
      details: [],
      actions: [{ action: 'connect', label: 'Connect', provider: 'servicenow', style: 'primary' }],
    },
  ],
  settings: [
    {
      name: 'SSO',
      badge: 'Not Connected',
      details: ['Single sign-on (OpenID Connect) comes in a later version.'],
      actions: [],
    },
    {
      name: 'SMTP',
      badge: 'Not Connected',
      details: ['Email notifications come in a later version.'],
      actions: [],
    },
  ],
  recentTickets: [
    {
      key: 'OPS-1423',
      url: 'https://acme.atlassian.net/browse/OPS-1423',
      provider: 'jira',
      providerName: 'Jira',
      providerStatus: 'In Progress',
      title: 'Rightsize underutilized EC2 instance web-prod-07',
      status: 'in_progress',
    },
    {
      key: '4821',
      url: 'https://dev.azure.com/acme/Cloud%20Cost/_workitems/edit/4821',
      provider: 'azure-devops',
      providerName: 'Azure DevOps',
      providerStatus: 'Closed',
      title: 'Delete unattached managed disk data-disk-archive-02',
      status: 'done',
    },
    {
      key: 'OPS-1419',
      url: 'https://acme.atlassian.net/browse/OPS-1419',
      provider: 'jira',
      providerName: 'Jira',
      providerStatus: 'To Do',
      title: 'Buy a 1-year Savings Plan for steady Lambda usage',
      status: 'open',
    },
  ],
  deliveryProblems: [],
  canEdit: true,
};

/** `connect azure-devops`: the form of a new integration (Save). */
export const connectDialogView: IntegrationFormView = {
  kind: 'integration-form',
  provider: 'azure-devops',
  title: 'Connect Azure DevOps',
  submitLabel: 'Save',
  fields: azureDevOpsFields.map((field) => ({ ...field })),
  errors: {},
};

/** The same form shown again after Azure DevOps refused the token: the error under the PAT. */
export const connectDialogErrorView: IntegrationFormView = {
  ...connectDialogView,
  fields: azureDevOpsFields.map((field) =>
    field.secret ? { ...field } : { ...field, value: 'https://dev.azure.com/acme' },
  ),
  errors: {
    [PAT_FIELD]:
      'Invalid credentials: Azure DevOps refused the personal access token. Create a new PAT under User settings > Personal access tokens with the scopes Work Items (Read & Write) and Project and Team (Read), and enter it here.',
  },
  notice: {
    kind: 'notice',
    tone: 'error',
    title: 'Azure DevOps could not be connected',
    text: 'Nothing was saved. Fix the field marked below and save again.',
  },
};

/** `subscribe` in a channel, with Jira and Azure DevOps Active (so the ticket route is offered). */
export const subscribeDialogView: SubscribeFormView = {
  kind: 'subscribe-form',
  title: 'Subscribe channel',
  channelId: '19:4f1c2b7e9d3a4c55b0e6a1f2d3c4b5a6@thread.tacv2',
  fields: [
    {
      key: SUBSCRIBE_FIELDS.clouds,
      label: 'Clouds',
      type: 'multi-select',
      options: CLOUDS.map((c) => ({ value: c, label: CLOUD_LABELS[c] })),
      hint: 'Leave empty for every cloud.',
    },
    {
      key: SUBSCRIBE_FIELDS.account,
      label: 'Account',
      type: 'text',
      placeholder: 'Account, subscription or project id',
    },
    { key: SUBSCRIBE_FIELDS.category, label: 'Category', type: 'text', placeholder: 'e.g. rightsizing' },
    {
      key: SUBSCRIBE_FIELDS.severities,
      label: 'Severities',
      type: 'multi-select',
      options: SEVERITIES.map((s) => ({ value: s, label: s[0]!.toUpperCase() + s.slice(1) })),
      hint: 'Leave empty for every severity.',
    },
    {
      key: SUBSCRIBE_FIELDS.minMonthlySavings,
      label: 'Minimum monthly savings',
      type: 'text',
      placeholder: 'e.g. 100',
      hint: 'Only recommendations saving at least this much a month. Leave empty for any.',
    },
    {
      key: SUBSCRIBE_FIELDS.provider,
      label: 'Ticket provider',
      type: 'select',
      options: [
        { value: 'jira', label: 'Jira' },
        { value: 'azure-devops', label: 'Azure DevOps' },
      ],
      hint: "Where this channel's tickets go. Leave empty for the provider's own routing.",
    },
    { key: SUBSCRIBE_FIELDS.project, label: 'Project', type: 'text' },
    { key: SUBSCRIBE_FIELDS.ticketType, label: 'Ticket type', type: 'text' },
  ],
  errors: {},
};

/** A new recommendation, no ticket yet: a Create button for each of the two Active providers. */
export const recommendationCardView: RecommendationCardView = {
  recommendationId: '0b7d5e2a-3c41-4f8e-9a6d-2f1e8c7b4a90',
  title: 'Rightsize underutilized EC2 instance web-prod-07',
  resource: 'i-0a1b2c3d4e5f67890 (m5.2xlarge, 6% average CPU)',
  account: '123456789012 (prod)',
  cloud: 'AWS',
  category: 'rightsizing',
  savings: '$412.80',
  severity: 'high',
  link: 'https://app.cloudpi.example/recommendations/0b7d5e2a-3c41-4f8e-9a6d-2f1e8c7b4a90',
  ticket: { kind: 'none' },
  offeredProviders: [
    { kind: 'jira', displayName: 'Jira' },
    { kind: 'azure-devops', displayName: 'Azure DevOps' },
  ],
  dismissed: false,
};

/** The same card after someone pressed Create ticket in Jira: the ticket is In Progress. */
export const recommendationCardTicketView: RecommendationCardView = {
  ...recommendationCardView,
  ticket: {
    kind: 'created',
    provider: 'jira',
    key: 'OPS-1423',
    url: 'https://acme.atlassian.net/browse/OPS-1423',
    status: 'in_progress',
    providerStatus: 'In Progress',
    createdBy: 'teams:29:1a2B3c4D5e6F7g8H9i0JkLmNoPqRsTuVwXyZ',
  },
};

/** Another recommendation whose Azure DevOps work item was closed: the card shows it resolved. */
export const recommendationCardResolvedView: RecommendationCardView = {
  recommendationId: '6c2f9a14-8b3e-4d27-a5c1-93e0f7d8b612',
  title: 'Delete unattached managed disk data-disk-archive-02',
  resource: 'data-disk-archive-02 (Premium SSD P30, 1 TiB)',
  account: 'Contoso Production (8f3e2d1c-…-4b5a)',
  cloud: 'Azure',
  category: 'idle-resource',
  savings: '$135.17',
  severity: 'medium',
  link: 'https://app.cloudpi.example/recommendations/6c2f9a14-8b3e-4d27-a5c1-93e0f7d8b612',
  ticket: {
    kind: 'created',
    provider: 'azure-devops',
    key: '4821',
    url: 'https://dev.azure.com/acme/Cloud%20Cost/_workitems/edit/4821',
    status: 'done',
    providerStatus: 'Done',
    createdBy: 'teams:29:9z8Y7x6W5v4U3t2S1r0QpOnMlKjIhGfEdCbA',
  },
  offeredProviders: [
    { kind: 'jira', displayName: 'Jira' },
    { kind: 'azure-devops', displayName: 'Azure DevOps' },
  ],
  dismissed: false,
};

/** Every picture: its file name (docs/teams/<name>.png) and what it shows. */
export const SAMPLES = {
  help: { surface: 'message', view: helpView },
  'status-board': { surface: 'message', view: statusBoardView },
  'connect-dialog': { surface: 'dialog', view: connectDialogView },
  'connect-dialog-error': { surface: 'dialog', view: connectDialogErrorView },
  'subscribe-dialog': { surface: 'dialog', view: subscribeDialogView },
  'recommendation-card': { surface: 'recommendation', view: recommendationCardView },
  'recommendation-card-ticket': { surface: 'recommendation', view: recommendationCardTicketView },
  'recommendation-card-resolved': { surface: 'recommendation', view: recommendationCardResolvedView },
} as const satisfies Record<string, Sample>;

export type SampleName = keyof typeof SAMPLES;

export const SAMPLE_NAMES = Object.keys(SAMPLES) as SampleName[];

/** A sample as Teams gets it: the card, and for a dialog the title Teams shows in its frame. */
export interface RenderedSample {
  readonly surface: Sample['surface'];
  readonly card: AdaptiveCardJson;
  readonly title?: string;
}

export function renderSample(sample: Sample): RenderedSample {
  switch (sample.surface) {
    case 'message':
      return { surface: sample.surface, card: renderMessageCard(sample.view) };
    case 'dialog': {
      const { title, card } = renderDialog(sample.view);
      return { surface: sample.surface, card, title };
    }
    case 'recommendation':
      return { surface: sample.surface, card: renderRecommendationCard(sample.view) };
  }
}

/** What docs/teams/cards.json records of a card: the sha256 of its JSON. */
export function cardHash(card: AdaptiveCardJson): string {
  return createHash('sha256').update(JSON.stringify(card)).digest('hex');
}

/** docs/teams/cards.json: one entry per picture. */
export interface PictureRecord {
  readonly sha256: string;
  /** The PNG's size in pixels (CSS pixels × the device scale factor). */
  readonly width: number;
  readonly height: number;
  /** A dialog's title, drawn in the picture's frame. */
  readonly title?: string;
}

export type PictureIndex = Readonly<Record<string, PictureRecord>>;

/** Where the pictures go, relative to the repository root. */
export const PICTURE_DIR = 'docs/teams';
export const PICTURE_INDEX = `${PICTURE_DIR}/cards.json`;
