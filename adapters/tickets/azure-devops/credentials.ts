/**
 * The Azure DevOps connection form (as data) and the reading of its values: the organization URL
 * in its three spellings, and the Personal Access Token.
 */
import { AppError, ErrorCode } from '../../../src/errors.js';
import { checkUrl, type UrlPolicy } from '../../../src/net/url-policy.js';
import type { CredentialField, ProviderValues } from '../../../src/tickets/port.js';

export const ORGANIZATION_URL_FIELD = 'organizationUrl';
export const PAT_FIELD = 'personalAccessToken';

export const azureDevOpsFields: readonly CredentialField[] = [
  {
    key: ORGANIZATION_URL_FIELD,
    label: 'Organization URL',
    hint: 'https://dev.azure.com/{organization}, https://{organization}.visualstudio.com, or an Azure DevOps Server collection URL (https://tfs.example.com/tfs/DefaultCollection).',
    placeholder: 'https://dev.azure.com/your-organization',
    required: true,
    secret: false,
    type: 'url',
  },
  {
    key: PAT_FIELD,
    label: 'Personal Access Token (PAT)',
    hint: 'Create it in Azure DevOps under User settings > Personal access tokens, with the scopes Work Items (Read & Write) and Project and Team (Read).',
    required: true,
    secret: true,
    type: 'password',
  },
];

export interface AzureDevOpsCredentials {
  /** Normalized organization or collection URL, without a trailing slash. */
  readonly organizationUrl: string;
  readonly pat: string;
}

function invalidUrl(message: string): AppError {
  return new AppError(ErrorCode.INVALID_URL, message, { details: { field: ORGANIZATION_URL_FIELD } });
}

/**
 * One canonical form per organization: https://dev.azure.com/{org} for both cloud spellings
 * ({org}.visualstudio.com is the legacy host of the same organization), and any other URL (an
 * Azure DevOps Server collection, or a loopback fake) kept as typed, minus trailing slashes, query
 * and fragment. The URL goes through the SSRF policy check first.
 */
export function normalizeOrganizationUrl(raw: string, policy: UrlPolicy): string {
  if (!raw?.trim()) {
    throw invalidUrl('Enter the Organization URL, for example https://dev.azure.com/your-organization.');
  }
  const url = checkUrl(raw, policy, ORGANIZATION_URL_FIELD);
  const host = url.hostname.toLowerCase();
  const segments = url.pathname.split('/').filter(Boolean);
  if (host === 'dev.azure.com') {
    const organization = segments[0];
    if (!organization) {
      throw invalidUrl(
        'The URL https://dev.azure.com has no organization. Enter https://dev.azure.com/{organization}, with the name shown after dev.azure.com/ when you open Azure DevOps.',
      );
    }
    return `https://dev.azure.com/${organization}`;
  }
  if (host.endsWith('.visualstudio.com')) {
    const organization = host.slice(0, -'.visualstudio.com'.length);
    if (!organization || organization.includes('.')) {
      throw invalidUrl(
        `${host} is not an organization address. Enter https://{organization}.visualstudio.com or https://dev.azure.com/{organization}.`,
      );
    }
    return `https://dev.azure.com/${organization}`;
  }
  if (host === 'visualstudio.com' || host === 'azure.com') {
    throw invalidUrl(
      `${host} is not an organization address. Enter https://dev.azure.com/{organization} or https://{organization}.visualstudio.com.`,
    );
  }
  const path = url.pathname.replace(/\/+$/, '');
  return `${url.protocol}//${url.host}${path}`;
}

/**
 * The organization a cloud URL names (dev.azure.com/{org} or {org}.visualstudio.com), lower case;
 * undefined for a server URL. Both hosts serve the same organization's REST API.
 */
export function cloudOrganization(url: URL): string | undefined {
  const host = url.hostname.toLowerCase();
  if (host === 'dev.azure.com') return url.pathname.split('/').filter(Boolean)[0]?.toLowerCase();
  if (host.endsWith('.visualstudio.com')) return host.slice(0, -'.visualstudio.com'.length) || undefined;
  return undefined;
}

/** Reads and checks the form values; throws INVALID_URL / INVALID_CREDENTIALS naming the field. */
export function readCredentials(values: ProviderValues, policy: UrlPolicy): AzureDevOpsCredentials {
  const organizationUrl = normalizeOrganizationUrl(values[ORGANIZATION_URL_FIELD] ?? '', policy);
  const pat = (values[PAT_FIELD] ?? '').trim();
  if (!pat) {
    throw new AppError(
      ErrorCode.INVALID_CREDENTIALS,
      'Enter a Personal Access Token (PAT). Create one in Azure DevOps under User settings > Personal access tokens, with the scopes Work Items (Read & Write) and Project and Team (Read).',
      { details: { field: PAT_FIELD } },
    );
  }
  return { organizationUrl, pat };
}
