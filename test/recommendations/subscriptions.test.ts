import { describe, expect, it } from 'vitest';
import {
  describeFilters,
  filtersOf,
  matches,
  parseSubscriptionForm,
} from '../../src/recommendations/subscriptions.js';

const rec = {
  id: 'r1',
  title: 'Idle VM',
  cloud: 'aws',
  account: '123456789012',
  category: 'Rightsizing',
  severity: 'high',
  monthlySavings: 120,
  currency: 'USD',
};

describe('matches', () => {
  it('lets everything through without filters', () => {
    expect(matches({}, rec)).toBe(true);
    expect(matches({}, { id: 'x', title: 'bare' })).toBe(true);
  });

  it('checks each filter, all of them together', () => {
    expect(matches({ clouds: ['aws', 'gcp'] }, rec)).toBe(true);
    expect(matches({ clouds: ['azure'] }, rec)).toBe(false);
    expect(matches({ account: ' 123456789012 ' }, rec)).toBe(true);
    expect(matches({ account: '999' }, rec)).toBe(false);
    expect(matches({ category: 'rightsizing' }, rec)).toBe(true);
    expect(matches({ category: 'idle-resource' }, rec)).toBe(false);
    expect(matches({ severities: ['critical', 'high'] }, rec)).toBe(true);
    expect(matches({ severities: ['low'] }, rec)).toBe(false);
    expect(matches({ minMonthlySavings: 120 }, rec)).toBe(true);
    expect(matches({ minMonthlySavings: 120.01 }, rec)).toBe(false);
    expect(matches({ minMonthlySavings: 0 }, { id: 'x', title: 'no savings' })).toBe(true);
    expect(
      matches(
        { clouds: ['aws'], severities: ['high'], minMonthlySavings: 100, category: 'RIGHTSIZING' },
        rec,
      ),
    ).toBe(true);
    expect(matches({ clouds: ['aws'], severities: ['critical'] }, rec)).toBe(false);
  });

  it('does not match recommendations that do not state what a filter asks about', () => {
    const bare = { id: 'x', title: 'bare' };
    expect(matches({ clouds: ['aws'] }, bare)).toBe(false);
    expect(matches({ account: '1' }, bare)).toBe(false);
    expect(matches({ category: 'c' }, bare)).toBe(false);
    expect(matches({ severities: ['info'] }, bare)).toBe(false);
    expect(matches({ minMonthlySavings: 1 }, bare)).toBe(false);
    expect(matches({ minMonthlySavings: 1 }, { ...rec, monthlySavings: '500' })).toBe(false);
  });
});

describe('parseSubscriptionForm', () => {
  it('reads filters and a ticket route of an Active provider', () => {
    const parsed = parseSubscriptionForm(
      {
        clouds: ['aws', 'azure'],
        account: ' 42 ',
        category: '',
        severities: ['high', 'critical'],
        minMonthlySavings: '1,000.50',
        provider: 'jira',
        project: 'OPS',
        ticketType: 'Task',
      },
      ['jira'],
    );
    expect(parsed).toEqual({
      ok: true,
      value: {
        filters: {
          clouds: ['aws', 'azure'],
          account: '42',
          severities: ['critical', 'high'],
          minMonthlySavings: 1000.5,
        },
        provider: 'jira',
        target: { project: 'OPS', ticketType: 'Task' },
        emailRecipients: [],
      },
    });
  });

  it('reads email recipients and a digest, refusing what is not an address', () => {
    const parsed = parseSubscriptionForm(
      { emailRecipients: 'a@example.com, b@example.com;a@example.com', emailDigest: 'daily' },
      [],
    );
    expect(parsed).toEqual({
      ok: true,
      value: {
        filters: {},
        target: { digest: 'daily' },
        emailRecipients: ['a@example.com', 'b@example.com'],
      },
    });
    // A digest without recipients is no digest.
    expect(parseSubscriptionForm({ emailDigest: 'hourly' }, [])).toMatchObject({ value: { target: {} } });
    const bad = parseSubscriptionForm(
      { emailRecipients: 'not-an-address, ok@example.com', emailDigest: 'weekly' },
      [],
    );
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(Object.keys(bad.errors).sort()).toEqual(['emailDigest', 'emailRecipients']);
  });

  it('answers field errors', () => {
    const parsed = parseSubscriptionForm(
      { clouds: ['aws', 'mars'], minMonthlySavings: '-5', provider: 'servicenow', severities: ['urgent'] },
      ['jira'],
    );
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(Object.keys(parsed.errors).sort()).toEqual([
      'clouds',
      'minMonthlySavings',
      'provider',
      'severities',
    ]);
    expect(parseSubscriptionForm({ minMonthlySavings: 'abc' }, []).ok).toBe(false);
    expect(parseSubscriptionForm({ project: 'OPS' }, []).ok).toBe(false);
    expect(parseSubscriptionForm({ account: 'x'.repeat(201) }, []).ok).toBe(false);
  });

  it('takes an empty form as "everything"', () => {
    expect(parseSubscriptionForm({ minMonthlySavings: '0' }, [])).toEqual({
      ok: true,
      value: { filters: {}, target: {}, emailRecipients: [] },
    });
  });
});

describe('filters in words and from storage', () => {
  it('describes filters', () => {
    expect(describeFilters({})).toBe('All recommendations');
    expect(
      describeFilters({ clouds: ['aws', 'gcp'], severities: ['critical'], minMonthlySavings: 100 }),
    ).toBe('AWS or Google Cloud · severity critical · saving at least 100 a month');
  });

  it('keeps only well-formed stored filters', () => {
    expect(filtersOf(null)).toEqual({});
    expect(filtersOf({ clouds: ['aws', 3, 'pluto'], severities: 'high', minMonthlySavings: '5' })).toEqual({
      clouds: ['aws'],
    });
  });
});
