/**
 * Channel subscriptions, platform-neutral (Slack now, Teams later): which recommendations a chat
 * channel receives, and where their tickets go. A subscription is a row of `routes` (platform,
 * channel, filters, provider, target); this module parses the subscribe form, describes filters
 * in words, and decides whether a recommendation matches them.
 */

import { parseRecipients } from '../notify/smtp.js';
import {
  SEVERITIES,
  type Severity,
  TICKET_PROVIDER_KINDS,
  type TicketProviderKind,
} from '../tickets/port.js';
import { CLOUDS, type Cloud } from './ingest.js';

/** What a channel wants to see. A filter left out (or empty) lets every recommendation through. */
export interface SubscriptionFilters {
  readonly clouds?: readonly Cloud[];
  /** Cloud account, subscription or project id (compared ignoring case). */
  readonly account?: string;
  /** E.g. rightsizing (compared ignoring case). */
  readonly category?: string;
  readonly severities?: readonly Severity[];
  /** Recommendations saving less per month (or not saying) are left out. */
  readonly minMonthlySavings?: number;
}

/** Where tickets for the channel's recommendations go (routing of `provider`). */
export interface SubscriptionTarget {
  readonly project?: string;
  readonly ticketType?: string;
  /** Email recipients get one digest per interval instead of one email per recommendation. */
  readonly digest?: 'hourly' | 'daily';
}

export interface ParsedSubscription {
  readonly filters: SubscriptionFilters;
  readonly provider?: TicketProviderKind;
  readonly target: SubscriptionTarget;
  /** Also sent by email to these addresses. */
  readonly emailRecipients: readonly string[];
}

/** The subscribe form's field keys (block ids in Slack, input ids in Teams). */
export const SUBSCRIBE_FIELDS = {
  clouds: 'clouds',
  account: 'account',
  category: 'category',
  severities: 'severities',
  minMonthlySavings: 'minMonthlySavings',
  provider: 'provider',
  project: 'project',
  ticketType: 'ticketType',
  emailRecipients: 'emailRecipients',
  emailDigest: 'emailDigest',
} as const;

export const CLOUD_LABELS: Record<Cloud, string> = {
  aws: 'AWS',
  azure: 'Azure',
  gcp: 'Google Cloud',
  oci: 'Oracle Cloud',
  other: 'Other',
};

/** A submitted form value: text, one option, or several options. */
export type SubmittedValue = string | readonly string[];

const MAX_TEXT = 200;
const MAX_SAVINGS = 1e12;

function list(value: SubmittedValue | undefined): string[] {
  if (value === undefined) return [];
  return (typeof value === 'string' ? [value] : [...value]).map((v) => v.trim()).filter(Boolean);
}

function single(value: SubmittedValue | undefined): string {
  return (typeof value === 'string' ? value : (value?.[0] ?? '')).trim();
}

/**
 * Reads and checks a submitted subscribe form. `activeProviders` are the tenant's Active ticket
 * providers: only those may be chosen. Errors are keyed by field.
 */
export function parseSubscriptionForm(
  values: Readonly<Record<string, SubmittedValue>>,
  activeProviders: readonly TicketProviderKind[],
): { ok: true; value: ParsedSubscription } | { ok: false; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const f = SUBSCRIBE_FIELDS;

  const cloudValues = list(values[f.clouds]);
  const clouds = CLOUDS.filter((c) => cloudValues.includes(c));
  if (clouds.length !== new Set(cloudValues).size) errors[f.clouds] = `Choose among ${CLOUDS.join(', ')}.`;

  const severityValues = list(values[f.severities]);
  const severities = SEVERITIES.filter((s) => severityValues.includes(s));
  if (severities.length !== new Set(severityValues).size)
    errors[f.severities] = `Choose among ${SEVERITIES.join(', ')}.`;

  const account = single(values[f.account]);
  if (account.length > MAX_TEXT) errors[f.account] = `At most ${MAX_TEXT} characters.`;
  const category = single(values[f.category]);
  if (category.length > MAX_TEXT) errors[f.category] = `At most ${MAX_TEXT} characters.`;

  const savingsText = single(values[f.minMonthlySavings]).replace(/[\s,]/g, '');
  let minMonthlySavings: number | undefined;
  if (savingsText) {
    const n = /^\d+(\.\d+)?$/.test(savingsText) ? Number(savingsText) : Number.NaN;
    if (!Number.isFinite(n) || n < 0 || n > MAX_SAVINGS)
      errors[f.minMonthlySavings] = 'Enter an amount of 0 or more, e.g. 100 or 250.50.';
    else minMonthlySavings = n;
  }

  const providerValue = single(values[f.provider]);
  const provider = TICKET_PROVIDER_KINDS.find((k) => k === providerValue);
  if (providerValue && (!provider || !activeProviders.includes(provider)))
    errors[f.provider] = 'Choose a provider that is connected and Active (/cloudpi integrations).';

  const project = single(values[f.project]);
  const ticketType = single(values[f.ticketType]);
  if (project.length > MAX_TEXT) errors[f.project] = `At most ${MAX_TEXT} characters.`;
  if (ticketType.length > MAX_TEXT) errors[f.ticketType] = `At most ${MAX_TEXT} characters.`;
  if (!providerValue && project) errors[f.project] = 'Choose the ticket provider this project belongs to.';
  if (!providerValue && ticketType) errors[f.ticketType] = 'Choose the ticket provider this type belongs to.';

  const digestValue = single(values[f.emailDigest]);
  const digest = digestValue === 'hourly' || digestValue === 'daily' ? digestValue : undefined;
  if (digestValue && digestValue !== 'each' && !digest)
    errors[f.emailDigest] = 'Choose each, hourly or daily.';
  const { valid: emailRecipients, invalid } = parseRecipients(single(values[f.emailRecipients]));
  if (invalid.length) errors[f.emailRecipients] = `Not an email address: ${invalid.slice(0, 3).join(', ')}.`;
  else if (emailRecipients.length > 50) errors[f.emailRecipients] = 'At most 50 recipients.';

  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return {
    ok: true,
    value: {
      emailRecipients,
      filters: {
        ...(clouds.length ? { clouds } : {}),
        ...(account ? { account } : {}),
        ...(category ? { category } : {}),
        ...(severities.length ? { severities } : {}),
        ...(minMonthlySavings !== undefined && minMonthlySavings > 0 ? { minMonthlySavings } : {}),
      },
      ...(provider ? { provider } : {}),
      target: {
        ...(project ? { project } : {}),
        ...(ticketType ? { ticketType } : {}),
        ...(digest && emailRecipients.length ? { digest } : {}),
      },
    },
  };
}

/** The filters of a stored route (jsonb), keeping only what is well-formed. */
export function filtersOf(raw: unknown): SubscriptionFilters {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return {};
  const r = raw as Record<string, unknown>;
  const strings = (v: unknown) =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  const clouds = CLOUDS.filter((c) => strings(r.clouds).includes(c));
  const severities = SEVERITIES.filter((s) => strings(r.severities).includes(s));
  return {
    ...(clouds.length ? { clouds } : {}),
    ...(typeof r.account === 'string' && r.account ? { account: r.account } : {}),
    ...(typeof r.category === 'string' && r.category ? { category: r.category } : {}),
    ...(severities.length ? { severities } : {}),
    ...(typeof r.minMonthlySavings === 'number' && Number.isFinite(r.minMonthlySavings)
      ? { minMonthlySavings: r.minMonthlySavings }
      : {}),
  };
}

function same(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}

/**
 * Whether a recommendation (its stored payload) passes a channel's filters. Every filter given
 * must pass; a recommendation that does not state what a filter asks about does not pass it.
 */
export function matches(filters: SubscriptionFilters, payload: Readonly<Record<string, unknown>>): boolean {
  const { cloud, account, category, severity, monthlySavings } = payload;
  if (filters.clouds?.length && !(typeof cloud === 'string' && filters.clouds.some((c) => c === cloud)))
    return false;
  if (filters.account && !(typeof account === 'string' && same(account, filters.account))) return false;
  if (filters.category && !(typeof category === 'string' && same(category, filters.category))) return false;
  if (
    filters.severities?.length &&
    !(typeof severity === 'string' && filters.severities.some((s) => s === severity))
  )
    return false;
  if (
    filters.minMonthlySavings !== undefined &&
    filters.minMonthlySavings > 0 &&
    !(typeof monthlySavings === 'number' && monthlySavings >= filters.minMonthlySavings)
  )
    return false;
  return true;
}

/** The filters in words: "AWS or Azure · severity critical or high · saving at least 100 a month". */
export function describeFilters(filters: SubscriptionFilters): string {
  const parts: string[] = [];
  if (filters.clouds?.length) parts.push(filters.clouds.map((c) => CLOUD_LABELS[c]).join(' or '));
  if (filters.account) parts.push(`account ${filters.account}`);
  if (filters.category) parts.push(`category ${filters.category}`);
  if (filters.severities?.length) parts.push(`severity ${filters.severities.join(' or ')}`);
  if (filters.minMonthlySavings !== undefined)
    parts.push(`saving at least ${filters.minMonthlySavings} a month`);
  return parts.length ? parts.join(' · ') : 'All recommendations';
}
