/**
 * The Jira connection form as data, and how its values become a base URL and an Authorization
 * header. Jira Cloud authenticates with the account's email and an API token (HTTP Basic); Jira
 * Data Center / Server with a personal access token (Bearer, Jira 8.14 and later).
 */
import { AppError, ErrorCode } from '../../../src/errors.js';
import { checkUrl, type UrlPolicy } from '../../../src/net/url-policy.js';
import type { CredentialField, ProviderValues } from '../../../src/tickets/port.js';

export type JiraDeployment = 'cloud' | 'server';

/** Form field keys: stored settings and sealed secrets are keyed by them, so never rename one. */
export const JiraField = {
  deployment: 'deployment',
  siteUrl: 'siteUrl',
  email: 'email',
  apiToken: 'apiToken',
  personalAccessToken: 'personalAccessToken',
} as const;

const cloudOnly = { field: JiraField.deployment, oneOf: ['cloud'] } as const;
const serverOnly = { field: JiraField.deployment, oneOf: ['server'] } as const;

export const JIRA_FIELDS: readonly CredentialField[] = [
  {
    key: JiraField.deployment,
    label: 'Jira deployment',
    hint: 'Jira Cloud if your Jira address ends in .atlassian.net; otherwise Jira Data Center / Server.',
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
    key: JiraField.siteUrl,
    label: 'Site URL',
    hint: 'The address you open Jira at. Jira Cloud: https://your-site.atlassian.net. Data Center / Server: the base URL, with its path if Jira runs under one (https://jira.example.com/jira).',
    placeholder: 'https://your-site.atlassian.net',
    required: true,
    secret: false,
    type: 'url',
  },
  {
    key: JiraField.email,
    label: 'Account email',
    hint: 'The email of the Atlassian account CloudPi creates issues as (a dedicated account that can create issues in the project is best).',
    placeholder: 'cloudpi-bot@example.com',
    required: true,
    secret: false,
    type: 'email',
    when: cloudOnly,
  },
  {
    key: JiraField.apiToken,
    label: 'API token',
    hint: 'Logged in as that account, create one at https://id.atlassian.com/manage-profile/security/api-tokens ("Create API token", without scopes) and paste it here.',
    required: true,
    secret: true,
    type: 'password',
    when: cloudOnly,
  },
  {
    key: JiraField.personalAccessToken,
    label: 'Personal access token',
    hint: 'In Jira, logged in as the account CloudPi creates issues as: profile picture > Profile > Personal Access Tokens > Create token (Jira 8.14 or later).',
    required: true,
    secret: true,
    type: 'password',
    when: serverOnly,
  },
];

export interface JiraCredentials {
  readonly deployment: JiraDeployment;
  /** Base URL without a trailing slash; keeps a Data Center context path (https://host/jira). */
  readonly baseUrl: string;
  readonly authorization: string;
  /** The form field a rejected credential concerns. */
  readonly secretField: string;
  readonly email?: string;
}

function missing(field: string, label: string, where: string): AppError {
  return new AppError(ErrorCode.INVALID_INPUT, `Enter the ${label} ${where}.`, {
    details: { field, fieldErrors: { [field]: `${label} is required.` } },
  });
}

/**
 * What the admin typed, minus the Jira page they copied it from (/browse/OPS-1, /jira/your-work
 * ...). Atlassian-hosted sites always sit at the root; elsewhere a context path (/jira) is kept.
 */
export function normalizeSiteUrl(url: URL, deployment: JiraDeployment): string {
  if (deployment === 'cloud' && /(^|\.)(atlassian\.net|jira\.com)$/i.test(url.hostname)) return url.origin;
  const path = url.pathname.replace(
    /\/(secure|browse|projects|issues|plugins|rest|servicedesk|login\.jsp|Dashboard\.jspa)(\/.*)?$/i,
    '',
  );
  return `${url.origin}${path.replace(/\/+$/, '')}`;
}

export function parseDeployment(value: string | undefined): JiraDeployment {
  const text = (value ?? 'cloud').trim().toLowerCase();
  if (text === '' || text === 'cloud') return 'cloud';
  if (text === 'server' || text === 'datacenter' || text === 'data-center') return 'server';
  throw new AppError(
    ErrorCode.INVALID_INPUT,
    'Choose the Jira deployment: Jira Cloud, or Jira Data Center / Server.',
    { details: { field: JiraField.deployment } },
  );
}

/**
 * Checks the form values and the URL against the policy (INVALID_URL before any connection), and
 * builds the Authorization header. Throws AppError naming the field to fix.
 */
export function parseJiraCredentials(values: ProviderValues, policy: UrlPolicy): JiraCredentials {
  const deployment = parseDeployment(values[JiraField.deployment]);
  const rawUrl = values[JiraField.siteUrl]?.trim() ?? '';
  if (!rawUrl) throw missing(JiraField.siteUrl, 'Site URL', 'of your Jira (https://your-site.atlassian.net)');
  const baseUrl = normalizeSiteUrl(checkUrl(rawUrl, policy, JiraField.siteUrl), deployment);
  if (deployment === 'cloud') {
    const email = values[JiraField.email]?.trim() ?? '';
    const token = values[JiraField.apiToken]?.trim() ?? '';
    if (!email)
      throw missing(JiraField.email, 'Account email', 'of the Atlassian account that owns the API token');
    if (!token) throw missing(JiraField.apiToken, 'API token', 'created for that Atlassian account');
    return {
      deployment,
      baseUrl,
      authorization: `Basic ${Buffer.from(`${email}:${token}`, 'utf8').toString('base64')}`,
      secretField: JiraField.apiToken,
      email,
    };
  }
  const pat = values[JiraField.personalAccessToken]?.trim() ?? '';
  if (!pat)
    throw missing(JiraField.personalAccessToken, 'Personal access token', 'created in your Jira profile');
  return {
    deployment,
    baseUrl,
    authorization: `Bearer ${pat}`,
    secretField: JiraField.personalAccessToken,
  };
}
