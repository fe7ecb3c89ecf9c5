import { simpleParser } from 'mailparser';
import MailComposer from 'nodemailer/lib/mail-composer';
import { describe, expect, it } from 'vitest';
import {
  type CreatedTicket,
  type DigestItemLinks,
  digestEmail,
  EMAIL_LIMITS,
  type EmailContent,
  escapeHtml,
  listUnsubscribeHeaders,
  recommendationEmail,
  safeUrl,
  testEmail,
  ticketCreatedEmail,
  ticketStatusEmail,
  totalSavings,
} from '../../src/notify/email-content.js';
import { formatSavings, type RecommendationCardView } from '../../src/recommendations/card.js';

// ---------------------------------------------------------------------------------------------
// A small HTML check: every tag is one we emit, every attribute is double-quoted, no event
// handlers, links are http(s) only, no scripts, styles or external resources.

const ALLOWED_TAGS = new Set([
  'html',
  'head',
  'meta',
  'title',
  'body',
  'table',
  'tr',
  'td',
  'h1',
  'h2',
  'a',
  'div',
]);

function unescapeHtml(text: string): string {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

interface Tag {
  readonly name: string;
  readonly closing: boolean;
  readonly attributes: ReadonlyMap<string, string>;
}

function tagsOf(html: string): Tag[] {
  const tags: Tag[] = [];
  const body = html.replace(/^<!DOCTYPE html>\n/, '');
  expect(body).not.toMatch(/<!/); // no comments, no conditional comments, no second doctype
  for (const m of body.matchAll(/<(\/?)([a-zA-Z][a-zA-Z0-9]*)([^>]*)>/g)) {
    const [, slash = '', name = '', rest = ''] = m;
    const attributes = new Map<string, string>();
    const leftover = rest.replace(/\s+([a-zA-Z-]+)="([^"<>]*)"/g, (_all, attr: string, value: string) => {
      expect(attributes.has(attr.toLowerCase()), `duplicate ${attr}`).toBe(false);
      attributes.set(attr.toLowerCase(), unescapeHtml(value));
      return '';
    });
    expect(leftover.trim(), `unparsed attributes in <${name}${rest}>`).toBe('');
    if (slash) expect(rest, `attributes on </${name}>`).toBe('');
    tags.push({ name: name.toLowerCase(), closing: Boolean(slash), attributes });
  }
  return tags;
}

function expectInertHtml(html: string): Tag[] {
  expect(html.startsWith('<!DOCTYPE html>\n<html lang="en"')).toBe(true);
  expect(html).not.toMatch(/<script/i);
  expect(html).not.toMatch(/<img|<iframe|<style|<link|<object|<embed|<form|<svg/i);
  // Every '<' is the start of one of our tags.
  expect(html.replace(/^<!DOCTYPE html>/, '')).not.toMatch(/<(?![a-zA-Z/])/);
  const tags = tagsOf(html);
  for (const tag of tags) {
    expect(ALLOWED_TAGS.has(tag.name), `tag <${tag.name}>`).toBe(true);
    for (const [attr, value] of tag.attributes) {
      expect(attr.startsWith('on'), `event handler ${attr}`).toBe(false);
      expect(['src', 'srcset', 'background', 'action', 'formaction'].includes(attr)).toBe(false);
      if (attr === 'href') expect(value).toMatch(/^https?:\/\/[^\s]+$/);
      if (attr === 'style') expect(value).not.toMatch(/url\(|expression|javascript|@import/i);
      expect(value).not.toMatch(/javascript:/i);
    }
  }
  return tags;
}

function hrefsOf(html: string): string[] {
  return tagsOf(html)
    .filter((t) => t.name === 'a' && !t.closing)
    .map((t) => t.attributes.get('href') ?? '');
}

function expectPlainText(text: string): void {
  expect(text).not.toMatch(/<(a|td|tr|table|h1|h2|div|html|body)[\s>]/);
  expect(text).not.toMatch(/&(amp|lt|gt|quot|#39);/);
  expect(text.endsWith('\n')).toBe(true);
}

function expectSafeSubject(subject: string): void {
  expect(subject).not.toMatch(/[\r\n]/);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: that is exactly what is checked
  expect(subject).not.toMatch(/[\u0000-\u001f\u007f]/);
  expect(subject.length).toBeLessThanOrEqual(200);
}

/** Both parts show each of `needles` (the HTML escaped), and each link in both. */
function expectBoth(email: EmailContent, needles: readonly string[]): void {
  for (const needle of needles) {
    expect(email.text, needle).toContain(needle);
    expect(email.html, needle).toContain(escapeHtml(needle));
  }
  const hrefs = hrefsOf(email.html);
  for (const href of hrefs) expect(email.text).toContain(href);
}

// ---------------------------------------------------------------------------------------------
// Fixtures

const HOSTILE = {
  script: '<script>alert(1)</script>',
  img: '"><img src=x onerror=alert(1)>',
  quote: "x' onmouseover='alert(1)",
  js: 'javascript:alert(document.cookie)',
  crlf: 'Idle VM\r\nBcc: victim@example.com\r\n\r\n<b>injected</b>',
};

const CLOUDPI = 'https://app.cloudpi.example/recommendations/42?tab=details&x=1';
const UNSUBSCRIBE = 'https://bot.example/unsubscribe?t=abc.def';
const JIRA_LINK = 'https://bot.example/a/jira-token';
const ADO_LINK = 'https://bot.example/a/ado-token';

function baseView(overrides: Partial<RecommendationCardView> = {}): RecommendationCardView {
  return {
    recommendationId: 'rec-1',
    title: 'Rightsize idle VM web-01',
    resource: 'vm/web-01',
    account: 'prod (123456789012)',
    cloud: 'AWS',
    category: 'Compute',
    savings: formatSavings(1234.5, 'USD'),
    severity: 'high',
    link: CLOUDPI,
    ticket: { kind: 'none' },
    offeredProviders: [
      { kind: 'jira', displayName: 'Jira' },
      { kind: 'azure-devops', displayName: 'Azure DevOps' },
    ],
    dismissed: false,
    ...overrides,
  };
}

function hostileView(overrides: Partial<RecommendationCardView> = {}): RecommendationCardView {
  return baseView({
    title: `${HOSTILE.crlf} ${HOSTILE.script}`,
    resource: HOSTILE.img,
    account: HOSTILE.quote,
    cloud: HOSTILE.script,
    category: HOSTILE.img,
    savings: HOSTILE.script,
    severity: HOSTILE.img,
    link: HOSTILE.js,
    ...overrides,
  });
}

const created = (overrides: Partial<CreatedTicket> = {}): CreatedTicket => ({
  kind: 'created',
  provider: 'jira',
  key: 'OPS-12',
  url: 'https://acme.atlassian.net/browse/OPS-12',
  status: 'in_progress',
  providerStatus: 'In Review',
  createdBy: 'slack:U123',
  ...overrides,
});

const links = {
  createTicket: [
    { provider: 'jira', displayName: 'Jira', url: JIRA_LINK },
    { provider: 'azure-devops', displayName: 'Azure DevOps', url: ADO_LINK },
  ],
  unsubscribe: UNSUBSCRIBE,
};

/** Every email kind, built from hostile input wherever the input is free text. */
function hostileEmails(): [string, EmailContent][] {
  const ticket = created({ key: HOSTILE.img, providerStatus: HOSTILE.script, url: HOSTILE.js });
  return [
    [
      'recommendation',
      recommendationEmail(hostileView(), {
        createTicket: [
          { provider: 'jira', displayName: HOSTILE.script, url: HOSTILE.js },
          { provider: 'azure-devops', displayName: HOSTILE.img, url: `${ADO_LINK}?q="><script>` },
        ],
        unsubscribe: 'javascript:alert(1)',
        open: 'data:text/html,<script>alert(1)</script>',
      }),
    ],
    ['recommendation with ticket', recommendationEmail(hostileView({ ticket }), links)],
    [
      'recommendation with failed ticket',
      recommendationEmail(
        hostileView({ ticket: { kind: 'failed', provider: 'jira', reason: HOSTILE.img } }),
        links,
      ),
    ],
    ['ticket created', ticketCreatedEmail(hostileView(), ticket, { unsubscribe: HOSTILE.js })],
    ['ticket status', ticketStatusEmail(hostileView(), ticket, HOSTILE.script, { unsubscribe: UNSUBSCRIBE })],
    [
      'digest',
      digestEmail(
        [hostileView(), hostileView({ recommendationId: 'rec-2', ticket })],
        new Map([
          ['rec-1', { createTicket: [{ provider: 'jira', displayName: HOSTILE.img, url: HOSTILE.js }] }],
        ]),
        HOSTILE.js,
        { from: new Date('2025-06-01T00:00:00Z'), to: new Date('2025-06-02T00:00:00Z') },
      ),
    ],
    ['test', testEmail(`${HOSTILE.img}@example.com`)],
  ];
}

// ---------------------------------------------------------------------------------------------

describe('every email kind', () => {
  it.each(hostileEmails())('%s: hostile text comes out inert in both parts', (_name, email) => {
    expectInertHtml(email.html);
    expectPlainText(email.text);
    expectSafeSubject(email.subject);
    expect(email.html).not.toContain('<img');
    expect(email.html).not.toContain('<b>');
    for (const href of hrefsOf(email.html)) expect(href).not.toMatch(/javascript|data:|"|<|>/i);
    expect(email.text).not.toMatch(/javascript:alert\(1\)|data:text/);
    // The hostile text is there, escaped, not dropped.
    expect(email.html).toMatch(/&lt;script&gt;|&quot;&gt;&lt;img/);
  });

  it.each(hostileEmails())('%s: no CR/LF makes it into a header or a line', (_name, email) => {
    expect(email.subject).not.toMatch(/Bcc:.*\r|\n/);
    // Free text never starts a new line in the text part (where "Bcc:" could pose as a header).
    expect(email.text).not.toMatch(/^Bcc:/m);
  });

  it('every field of a recommendation is escaped where it shows', () => {
    const email = recommendationEmail(hostileView(), links);
    expectInertHtml(email.html);
    for (const value of [HOSTILE.img, HOSTILE.quote, HOSTILE.script]) {
      expect(email.html).toContain(escapeHtml(value));
      expect(email.text).toContain(value);
    }
    expect(email.html).toContain('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;');
    expect(email.html).toContain('x&#39; onmouseover=&#39;alert(1)');
    expect(email.html).toContain('<title>Idle VM Bcc: victim@example.com &lt;b&gt;injected&lt;/b&gt;');
  });

  it('cuts very long fields, and subjects to 200 characters', () => {
    const long = 'A'.repeat(100_000);
    const view = baseView({ title: long, resource: long, account: long, savings: long, severity: long });
    for (const email of [
      recommendationEmail(view, links),
      ticketCreatedEmail(view, created({ key: long, providerStatus: long })),
      ticketStatusEmail(view, created({ key: long, providerStatus: long }), long),
      digestEmail([view], new Map(), UNSUBSCRIBE, { from: new Date(0), to: new Date(1) }),
      testEmail(long),
    ]) {
      expect(email.subject.length).toBeLessThanOrEqual(EMAIL_LIMITS.subject);
      expect(email.text.length).toBeLessThan(5_000);
      expect(email.html.length).toBeLessThan(30_000);
      expect(email.html).not.toContain('A'.repeat(EMAIL_LIMITS.fact + 1));
      expectInertHtml(email.html);
    }
    // Cut with an ellipsis, never mid surrogate pair.
    const emoji = recommendationEmail(baseView({ title: '🚀'.repeat(500) }), links);
    expect(emoji.subject).toMatch(/…$/);
    expect(emoji.subject).not.toMatch(/[\uD800-\uDBFF]…/);
  });

  it('strips bidi overrides and zero-width characters from text', () => {
    const email = recommendationEmail(baseView({ title: 'evil\u202Efdp.exe\u200B\u0007' }), links);
    expect(email.subject).toBe('CloudPi recommendation: evilfdp.exe (saves $1,234.50/month)');
    for (const c of ['\u202E', '\u200B', '\u0007']) expect(email.text).not.toContain(c);
  });
});

describe('recommendationEmail', () => {
  const email = recommendationEmail(baseView(), links);

  it('shows what the card shows, in both parts', () => {
    expectInertHtml(email.html);
    expectPlainText(email.text);
    expect(email.subject).toBe('CloudPi recommendation: Rightsize idle VM web-01 (saves $1,234.50/month)');
    expectBoth(email, [
      'Rightsize idle VM web-01',
      'vm/web-01',
      'prod (123456789012)',
      'AWS',
      'Compute',
      '$1,234.50',
      'high',
      'Create ticket in Jira',
      'Create ticket in Azure DevOps',
      'Open in CloudPi',
      'Unsubscribe',
    ]);
    expect(email.text).toContain('Resource: vm/web-01');
    expect(email.text).toContain('Monthly savings: $1,234.50');
    expect(email.text).toContain(`Create ticket in Jira: ${JIRA_LINK}`);
    expect(email.text).toContain(`Create ticket in Azure DevOps: ${ADO_LINK}`);
    expect(email.text).toContain(`Open in CloudPi (${CLOUDPI})`);
    expect(email.text).toContain(`Unsubscribe from these emails (${UNSUBSCRIBE}).`);
  });

  it('links the one-click URLs, CloudPi and unsubscribe, attribute-escaped', () => {
    expect(hrefsOf(email.html)).toEqual([JIRA_LINK, ADO_LINK, CLOUDPI, UNSUBSCRIBE]);
    expect(email.html).toContain(`href="${CLOUDPI.replace('&', '&amp;')}"`);
    // The unsubscribe link sits in the footer, after everything else.
    const footer = email.html.lastIndexOf('border-top');
    expect(email.html.indexOf(`href="${UNSUBSCRIBE}"`)).toBeGreaterThan(footer);
    expect(email.text).toMatch(
      /\n--\nYou receive this email because .* Unsubscribe from these emails \(https:\/\/bot\.example/,
    );
  });

  it('links only http(s): other schemes, credentials and junk are left out', () => {
    for (const bad of [
      'javascript:alert(1)',
      'JavaScript:alert(1)',
      ' javascript:alert(1)',
      'java\nscript:alert(1)',
      'data:text/html,hi',
      'vbscript:msgbox',
      'file:///etc/passwd',
      'mailto:x@example.com',
      '//evil.example/x',
      '/relative',
      'https://app.cloudpi.example@evil.example/',
      'https://user:pw@evil.example/',
      `https://example.com/${'a'.repeat(3000)}`,
      'not a url',
    ]) {
      const e = recommendationEmail(baseView({ link: bad }), {
        createTicket: [{ provider: 'jira', displayName: 'Jira', url: bad }],
        unsubscribe: bad,
        open: bad,
      });
      expect(hrefsOf(e.html), bad).toEqual([]);
      expect(e.text).not.toContain('Create ticket in Jira');
      expect(e.text).not.toContain('Open in CloudPi');
      expect(e.text).toContain('ask a CloudPi admin to remove your address');
      expectInertHtml(e.html);
    }
    expect(safeUrl('http://example.com/a b')).toBeUndefined();
    expect(safeUrl('http://example.com/"x"')).toBe('http://example.com/%22x%22');
  });

  it('prefers links.open over the recommendation link, and one button per provider', () => {
    const e = recommendationEmail(baseView(), {
      createTicket: [...links.createTicket, { provider: 'jira', displayName: 'Jira again', url: JIRA_LINK }],
      unsubscribe: UNSUBSCRIBE,
      open: 'https://track.example/o?id=1',
    });
    expect(hrefsOf(e.html)).toEqual([JIRA_LINK, ADO_LINK, 'https://track.example/o?id=1', UNSUBSCRIBE]);
    expect(e.text).not.toContain('Jira again');
  });

  it('shows the ticket state instead of Create ticket once there is one', () => {
    const open = recommendationEmail(baseView({ ticket: created() }), links);
    expectBoth(open, ['OPS-12', 'In Review', 'Jira']);
    expect(open.text).toContain(
      '🎫 Ticket OPS-12 (https://acme.atlassian.net/browse/OPS-12) in Jira · In Review',
    );
    expect(open.text).not.toContain('Resolved');
    expect(open.text).not.toContain('Create ticket in');
    expect(hrefsOf(open.html)).toContain('https://acme.atlassian.net/browse/OPS-12');

    const done = recommendationEmail(
      baseView({ ticket: created({ status: 'done', providerStatus: 'Done' }) }),
      links,
    );
    expectBoth(done, ['Resolved', 'Done', 'OPS-12']);
    const closed = recommendationEmail(
      baseView({ ticket: created({ status: 'closed', providerStatus: null }) }),
      links,
    );
    expect(closed.text).toContain('✅ Resolved · Ticket OPS-12');
    expect(closed.text).toContain('· Closed');

    const creating = recommendationEmail(
      baseView({ ticket: { kind: 'creating', provider: 'azure-devops' } }),
      links,
    );
    expect(creating.text).toContain('Creating a ticket in Azure DevOps');
    expect(creating.text).not.toContain('Create ticket in');

    const failed = recommendationEmail(
      baseView({ ticket: { kind: 'failed', provider: 'jira', reason: 'Project OPS does not exist.' } }),
      links,
    );
    expectBoth(failed, [
      'The ticket could not be created: Project OPS does not exist.',
      'Create ticket in Jira',
    ]);

    const noUrl = recommendationEmail(baseView({ ticket: created({ url: 'javascript:alert(1)' }) }), links);
    expect(noUrl.text).toContain('🎫 Ticket OPS-12 in Jira');
    expect(hrefsOf(noUrl.html)).toEqual([CLOUDPI, UNSUBSCRIBE]);
  });

  it('leaves out facts that are not stated', () => {
    const e = recommendationEmail(
      {
        recommendationId: 'r',
        title: 'Only a title',
        ticket: { kind: 'none' },
        offeredProviders: [],
        dismissed: false,
      },
      { createTicket: [], unsubscribe: UNSUBSCRIBE },
    );
    expect(e.subject).toBe('CloudPi recommendation: Only a title');
    expect(e.text).not.toMatch(/Resource:|Monthly savings:|Severity:/);
    expectInertHtml(e.html);
  });
});

describe('ticket emails', () => {
  it('ticketCreatedEmail: key, link, status, title', () => {
    const e = ticketCreatedEmail(baseView(), created(), { unsubscribe: UNSUBSCRIBE });
    expect(e.subject).toBe('CloudPi: ticket OPS-12 created - Rightsize idle VM web-01');
    expectInertHtml(e.html);
    expectPlainText(e.text);
    expectBoth(e, [
      'OPS-12',
      'In Review',
      'Rightsize idle VM web-01',
      'A ticket was created in Jira',
      'Unsubscribe',
    ]);
    expect(e.text).toContain('Ticket: OPS-12 (https://acme.atlassian.net/browse/OPS-12)');
    expect(e.text).toContain('Status: In Review');
    expect(e.text).toContain('Open OPS-12 in Jira: https://acme.atlassian.net/browse/OPS-12');
    expect(e.text).not.toContain('Resolved');
    expect(hrefsOf(e.html)).toEqual([
      'https://acme.atlassian.net/browse/OPS-12',
      'https://acme.atlassian.net/browse/OPS-12',
      CLOUDPI,
      UNSUBSCRIBE,
    ]);
  });

  it('ticketCreatedEmail without an unsubscribe link still has a footer', () => {
    const e = ticketCreatedEmail(baseView(), created({ provider: 'servicenow', key: 'INC0010001' }));
    expect(e.text).toContain('A ticket was created in ServiceNow');
    expect(e.text).toMatch(/\n--\nYou receive this email because .* ask a CloudPi admin/);
  });

  it("ticketStatusEmail: the provider's word, the change, Resolved when done or closed", () => {
    const moved = ticketStatusEmail(baseView(), created(), 'open', { unsubscribe: UNSUBSCRIBE });
    expect(moved.subject).toBe('CloudPi: ticket OPS-12 is now In Review - Rightsize idle VM web-01');
    expectBoth(moved, [
      'The ticket in Jira changed from Open to In Review.',
      'OPS-12',
      'Rightsize idle VM web-01',
    ]);
    expect(moved.text).not.toContain('Resolved');

    const done = ticketStatusEmail(
      baseView(),
      created({ status: 'done', providerStatus: 'Done' }),
      'In Review',
    );
    expect(done.subject).toBe('CloudPi: ticket OPS-12 resolved (Done) - Rightsize idle VM web-01');
    expectBoth(done, ['Ticket resolved', 'changed from In Review to Done', 'Resolved']);

    const closed = ticketStatusEmail(baseView(), created({ status: 'closed', providerStatus: null }));
    expect(closed.subject).toContain('resolved (Closed)');
    expectBoth(closed, ['The ticket in Jira is now Closed.', 'Resolved']);
    for (const e of [moved, done, closed]) {
      expectInertHtml(e.html);
      expectPlainText(e.text);
    }
  });
});

describe('digestEmail', () => {
  const period = { from: new Date('2025-06-01T09:00:00Z'), to: new Date('2025-06-02T09:00:00Z') };
  const views = [
    baseView({ recommendationId: 'a', title: 'One', savings: formatSavings(100, 'USD') }),
    baseView({ recommendationId: 'b', title: 'Two', savings: formatSavings(1050.25, 'USD') }),
    baseView({ recommendationId: 'c', title: 'Three', savings: formatSavings(10, 'EUR') }),
    baseView({ recommendationId: 'd', title: 'Four', savings: formatSavings(0.5, 'EUR'), ticket: created() }),
    baseView({ recommendationId: 'e', title: 'Five', savings: formatSavings(1500, 'JPY') }),
    baseView({ recommendationId: 'f', title: 'Six', savings: formatSavings(12.5, 'CHF') }),
    baseView({ recommendationId: 'g', title: 'Seven', savings: undefined }),
    baseView({ recommendationId: 'h', title: 'Eight', savings: 'about a lot' }),
  ];
  const perView = new Map<string, DigestItemLinks>(
    views.map((v) => [
      v.recommendationId,
      {
        createTicket: [{ provider: 'jira', displayName: 'Jira', url: `${JIRA_LINK}/${v.recommendationId}` }],
      },
    ]),
  );
  const email = digestEmail(views, perView, UNSUBSCRIBE, period);

  it('gathers the recommendations under one subject', () => {
    expect(email.subject).toBe('CloudPi: 8 new recommendations');
    expectInertHtml(email.html);
    expectPlainText(email.text);
    expectBoth(email, [
      'One',
      'Two',
      'Three',
      'Four',
      'Five',
      'Six',
      'Seven',
      'Eight',
      '$1,050.25',
      'about a lot',
    ]);
    expect(email.text).toContain('From 1 Jun 2025, 09:00 to 2 Jun 2025, 09:00 (UTC).');
  });

  it('totals the monthly savings per currency', () => {
    expect(email.text).toContain('Total monthly savings: $1,150.25 · €10.50 · ¥1,500 · CHF 12.50');
    expect(email.html).toContain('$1,150.25 · €10.50 · ¥1,500 · CHF 12.50');
    expect(totalSavings(['$0.10', '$0.20', '-$0.05', 'CA$1.00', undefined, 'free'])).toEqual([
      '$0.25',
      'CA$1.00',
    ]);
    expect(totalSavings(['12.50 XYZ', '1.25 XYZ'])).toEqual(['13.75 XYZ']);
    expect(totalSavings([formatSavings(999_999.99, 'USD'), formatSavings(0.01, 'USD')])).toEqual([
      '$1,000,000.00',
    ]);
  });

  it('gives each recommendation its savings and one-click links', () => {
    const hrefs = hrefsOf(email.html);
    for (const v of views.filter((v) => v.ticket.kind === 'none'))
      expect(hrefs).toContain(`${JIRA_LINK}/${v.recommendationId}`);
    // Four has a ticket: its state, no Create ticket.
    expect(hrefs).not.toContain(`${JIRA_LINK}/d`);
    expect(email.text).toContain('🎫 Ticket OPS-12');
    expect(email.text).toMatch(/Three\n\nResource: vm\/web-01[\s\S]*Monthly savings: €10\.00/);
    expect(hrefs.at(-1)).toBe(UNSUBSCRIBE);
  });

  it('says one recommendation, none, and caps a long list', () => {
    expect(digestEmail([views[0] as RecommendationCardView], perView, UNSUBSCRIBE, period).subject).toBe(
      'CloudPi: 1 new recommendation',
    );
    const none = digestEmail([], new Map(), UNSUBSCRIBE, period);
    expect(none.subject).toBe('CloudPi: 0 new recommendations');
    expect(none.text).toContain('No new recommendations in this period.');
    const many = Array.from({ length: 60 }, (_, i) =>
      baseView({ recommendationId: `r${i}`, title: `Item ${i}` }),
    );
    const big = digestEmail(many, new Map(), UNSUBSCRIBE, period);
    expect(big.subject).toBe('CloudPi: 60 new recommendations');
    expect(big.text).toContain('Item 49');
    expect(big.text).not.toContain('Item 50');
    expect(big.text).toContain('And 10 more: see them in CloudPi.');
    expect(big.text).toContain('Total monthly savings: $74,070.00');
  });
});

describe('testEmail', () => {
  it('is the short CloudPi test email', () => {
    const e = testEmail('admin@example.com');
    expect(e.subject).toBe('CloudPi test email');
    expectInertHtml(e.html);
    expectPlainText(e.text);
    expectBoth(e, [
      'CloudPi test email',
      'sent to admin@example.com',
      'Email (SMTP) settings',
      'No action is needed.',
    ]);
    expect(hrefsOf(e.html)).toEqual([]);
  });
});

describe('as a MIME message', () => {
  async function roundTrip(email: EmailContent, headers: Record<string, string> = {}) {
    const raw = await new MailComposer({
      from: 'CloudPi <cloudpi@example.com>',
      to: 'ops@example.com',
      subject: email.subject,
      text: email.text,
      html: email.html,
      headers,
    })
      .compile()
      .build();
    return { raw: raw.toString('utf8'), parsed: await simpleParser(raw) };
  }

  it.each([
    ['recommendation', recommendationEmail(baseView(), links)],
    [
      'ticket status',
      ticketStatusEmail(baseView(), created({ status: 'done', providerStatus: 'Done' }), 'open'),
    ],
    ['digest', digestEmail([baseView()], new Map(), UNSUBSCRIBE, { from: new Date(0), to: new Date(1) })],
    ['test', testEmail('admin@example.com')],
    ...hostileEmails(),
  ])('%s: headers and both parts survive', async (_name, email) => {
    const { raw, parsed } = await roundTrip(email, listUnsubscribeHeaders(UNSUBSCRIBE));
    expect(raw).toMatch(/^Content-Type: multipart\/alternative;/m);
    expect(parsed.subject).toBe(email.subject);
    expect(parsed.text?.replace(/\r\n/g, '\n').trimEnd()).toBe(email.text.trimEnd());
    expect(parsed.html).toBe(email.html);
    expect(parsed.to && !Array.isArray(parsed.to) ? parsed.to.value.map((a) => a.address) : []).toEqual([
      'ops@example.com',
    ]);
    // Nothing from the content became a header.
    expect(parsed.bcc).toBeUndefined();
    expect(parsed.headers.has('bcc')).toBe(false);
    // mailparser gathers the List-* headers into one structured `list` header.
    expect(parsed.headers.get('list')).toEqual({
      unsubscribe: { url: UNSUBSCRIBE },
      'unsubscribe-post': { name: 'List-Unsubscribe=One-Click' },
    });
    expect(parsed.headerLines.filter((h) => h.key === 'subject')).toHaveLength(1);
  });

  it('gives List-Unsubscribe headers only for an http(s) URL', () => {
    expect(listUnsubscribeHeaders(UNSUBSCRIBE)).toEqual({
      'List-Unsubscribe': `<${UNSUBSCRIBE}>`,
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
    });
    expect(listUnsubscribeHeaders('javascript:alert(1)')).toEqual({});
    expect(listUnsubscribeHeaders('https://x.example/\r\nBcc: a@b')).toEqual({});
  });
});
