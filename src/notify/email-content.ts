/**
 * Email bodies, platform-neutral, built from the same card model as the chat cards
 * (RecommendationCardView): a recommendation, a ticket created for one, a ticket's new status, a
 * digest of several, and the "Send test email" message. Each returns `{ subject, text, html }`
 * for the Mailer port.
 *
 * Both parts come from one list of blocks, so they always say the same thing. The HTML is a
 * self-contained document that email clients render alike: table layout, inline styles, no
 * scripts, no external images or stylesheets. Everything that comes from recommendations,
 * providers or callers is made one line (control and bidi characters removed), cut to a sane
 * length, then HTML-escaped (& < > " '); links are only http(s), without credentials, and
 * attribute-escaped; anything else is shown as text or left out. Subjects never carry CR/LF and
 * are cut to 200 characters.
 */
import {
  type CardTicketState,
  isResolved,
  type RecommendationCardView,
  ticketStatusLabel,
} from '../recommendations/card.js';

export interface EmailContent {
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

/** A signed one-click "Create ticket in <displayName>" URL (see signed-links.ts). */
export interface CreateTicketLink {
  /** Ticket provider kind (jira, azure-devops, servicenow). */
  readonly provider: string;
  readonly displayName: string;
  readonly url: string;
}

export interface RecommendationEmailLinks {
  /** One button each, in this order (a provider given twice gets one button). */
  readonly createTicket: readonly CreateTicketLink[];
  /** The signed unsubscribe URL, shown in the footer. */
  readonly unsubscribe: string;
  /** "Open in CloudPi" target; the recommendation's own link when not given. */
  readonly open?: string;
}

export interface TicketEmailLinks {
  readonly unsubscribe?: string;
  readonly open?: string;
}

export interface DigestItemLinks {
  readonly createTicket: readonly CreateTicketLink[];
  readonly open?: string;
}

export interface DigestPeriod {
  readonly from: Date;
  readonly to: Date;
}

export type CreatedTicket = Extract<CardTicketState, { kind: 'created' }>;

/** Lengths (characters) fields are cut to, in both parts. */
export const EMAIL_LIMITS = {
  subject: 200,
  title: 200,
  fact: 300,
  short: 80,
  reason: 500,
  ticketKey: 100,
  url: 2048,
  /** Recommendations listed in one digest; the rest are counted. */
  digestItems: 50,
} as const;

// ---------------------------------------------------------------------------------------------
// Emails

export function recommendationEmail(
  view: RecommendationCardView,
  links: RecommendationEmailLinks,
): EmailContent {
  const title = line(view.title, EMAIL_LIMITS.title) || 'Recommendation';
  const savings = line(view.savings, EMAIL_LIMITS.short);
  const blocks: Block[] = [
    { kind: 'eyebrow', text: 'New CloudPi recommendation' },
    { kind: 'title', text: title },
    ...recommendationBlocks(view, { createTicket: links.createTicket, open: links.open }),
    footer(links.unsubscribe),
  ];
  return {
    subject: subject(`CloudPi recommendation: ${title}${savings ? ` (saves ${savings}/month)` : ''}`),
    ...render(title, blocks),
  };
}

export function ticketCreatedEmail(
  view: RecommendationCardView,
  ticket: CreatedTicket,
  links: TicketEmailLinks = {},
): EmailContent {
  const title = line(view.title, EMAIL_LIMITS.title) || 'Recommendation';
  const key = line(ticket.key, EMAIL_LIMITS.ticketKey);
  const provider = providerName(view, ticket.provider);
  const blocks: Block[] = [
    { kind: 'eyebrow', text: 'Ticket created' },
    { kind: 'title', text: title },
    { kind: 'paragraph', parts: [`A ticket was created in ${provider} for this recommendation.`] },
    ...ticketBlocks(ticket, provider),
    ...factBlocks(view),
    ...openBlocks(links.open ?? view.link),
    footer(links.unsubscribe),
  ];
  return { subject: subject(`CloudPi: ticket ${key} created - ${title}`), ...render(title, blocks) };
}

/** `previousStatus`: the label or normalized status (in_progress) the ticket had before. */
export function ticketStatusEmail(
  view: RecommendationCardView,
  ticket: CreatedTicket,
  previousStatus?: string,
  links: TicketEmailLinks = {},
): EmailContent {
  const title = line(view.title, EMAIL_LIMITS.title) || 'Recommendation';
  const key = line(ticket.key, EMAIL_LIMITS.ticketKey);
  const provider = providerName(view, ticket.provider);
  const status = line(ticketStatusLabel(ticket), EMAIL_LIMITS.short);
  const previous = previousStatus
    ? line(ticketStatusLabel({ status: previousStatus, providerStatus: null }), EMAIL_LIMITS.short)
    : '';
  const resolved = isResolved(ticket);
  const blocks: Block[] = [
    { kind: 'eyebrow', text: resolved ? 'Ticket resolved' : 'Ticket status changed' },
    { kind: 'title', text: title },
    {
      kind: 'paragraph',
      parts: [
        previous
          ? `The ticket in ${provider} changed from ${previous} to ${status}.`
          : `The ticket in ${provider} is now ${status}.`,
      ],
    },
    ...ticketBlocks(ticket, provider),
    ...factBlocks(view),
    ...openBlocks(links.open ?? view.link),
    footer(links.unsubscribe),
  ];
  return {
    subject: subject(
      resolved
        ? `CloudPi: ticket ${key} resolved (${status}) - ${title}`
        : `CloudPi: ticket ${key} is now ${status} - ${title}`,
    ),
    ...render(title, blocks),
  };
}

/**
 * Several recommendations in one email. `links` is keyed by recommendation id. The totals add up
 * the views' savings per currency, read back from their formatted text (formatSavings, en-US):
 * savings that do not read as an amount are shown but not added.
 */
export function digestEmail(
  views: readonly RecommendationCardView[],
  links: ReadonlyMap<string, DigestItemLinks>,
  unsubscribe: string,
  period: DigestPeriod,
): EmailContent {
  const count = views.length;
  const heading = `${count} new recommendation${count === 1 ? '' : 's'}`;
  const blocks: Block[] = [
    { kind: 'eyebrow', text: 'CloudPi digest' },
    { kind: 'title', text: heading },
  ];
  const when = periodText(period);
  if (when) blocks.push({ kind: 'paragraph', parts: [when] });
  const totals = totalSavings(views.map((v) => v.savings));
  if (totals.length) blocks.push({ kind: 'facts', rows: [['Total monthly savings', totals.join(' · ')]] });
  if (count === 0) blocks.push({ kind: 'paragraph', parts: ['No new recommendations in this period.'] });
  for (const view of views.slice(0, EMAIL_LIMITS.digestItems)) {
    const itemLinks = links.get(view.recommendationId);
    blocks.push(
      { kind: 'divider' },
      { kind: 'subtitle', text: line(view.title, EMAIL_LIMITS.title) || 'Recommendation' },
      ...recommendationBlocks(view, { createTicket: itemLinks?.createTicket ?? [], open: itemLinks?.open }),
    );
  }
  const hidden = count - EMAIL_LIMITS.digestItems;
  if (hidden > 0)
    blocks.push(
      { kind: 'divider' },
      { kind: 'paragraph', parts: [`And ${hidden} more: see them in CloudPi.`] },
    );
  blocks.push(footer(unsubscribe));
  return { subject: subject(`CloudPi: ${heading}`), ...render(`CloudPi: ${heading}`, blocks) };
}

/** "Send test email": proves the saved SMTP settings deliver. */
export function testEmail(to: string): EmailContent {
  const recipient = line(to, EMAIL_LIMITS.fact);
  const blocks: Block[] = [
    { kind: 'title', text: 'CloudPi test email' },
    {
      kind: 'paragraph',
      parts: [
        `This is a test email from CloudPi ChatOps${recipient ? `, sent to ${recipient}` : ''} with your Email (SMTP) settings.`,
      ],
    },
    { kind: 'paragraph', parts: ['It arrived, so CloudPi can send notifications through this server.'] },
    {
      kind: 'footer',
      parts: ['An admin pressed Send test email in CloudPi ChatOps. No action is needed.'],
    },
  ];
  return { subject: 'CloudPi test email', ...render('CloudPi test email', blocks) };
}

/**
 * The RFC 2369 / RFC 8058 headers for an unsubscribe URL (its endpoint must accept a POST of
 * `List-Unsubscribe=One-Click`); none when the URL is not http(s).
 */
export function listUnsubscribeHeaders(url: string): Record<string, string> {
  const safe = safeUrl(url);
  return safe
    ? { 'List-Unsubscribe': `<${safe}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' }
    : {};
}

// ---------------------------------------------------------------------------------------------
// Content shared by the emails

const PROVIDER_NAMES: Readonly<Record<string, string>> = {
  jira: 'Jira',
  'azure-devops': 'Azure DevOps',
  servicenow: 'ServiceNow',
};

function providerName(view: RecommendationCardView, kind: string): string {
  const offered = view.offeredProviders.find((p) => p.kind === kind)?.displayName;
  return line(offered || PROVIDER_NAMES[kind] || kind, EMAIL_LIMITS.short) || 'the ticket provider';
}

function factBlocks(view: RecommendationCardView): Block[] {
  const facts: [string, string | undefined, number][] = [
    ['Resource', view.resource, EMAIL_LIMITS.fact],
    ['Account', view.account, EMAIL_LIMITS.fact],
    ['Cloud', view.cloud, EMAIL_LIMITS.short],
    ['Category', view.category, EMAIL_LIMITS.short],
    ['Monthly savings', view.savings, EMAIL_LIMITS.short],
    ['Severity', view.severity, EMAIL_LIMITS.short],
  ];
  const rows = facts
    .map(([label, value, max]): [string, string] => [label, line(value, max)])
    .filter(([, value]) => value !== '');
  return rows.length ? [{ kind: 'facts', rows }] : [];
}

function ticketBlocks(ticket: CreatedTicket, provider: string): Block[] {
  const key = line(ticket.key, EMAIL_LIMITS.ticketKey) || 'ticket';
  const url = safeUrl(ticket.url);
  const rows: [string, Inline][] = [
    ['Ticket', url ? { text: key, url } : key],
    ['Provider', provider],
    ['Status', line(ticketStatusLabel(ticket), EMAIL_LIMITS.short)],
  ];
  const blocks: Block[] = [{ kind: 'facts', rows }];
  if (isResolved(ticket))
    blocks.push({
      kind: 'paragraph',
      tone: 'good',
      parts: ['✅ Resolved: the recommendation is marked as resolved.'],
    });
  if (url) blocks.push({ kind: 'buttons', links: [{ text: `Open ${key} in ${provider}`, url }] });
  return blocks;
}

/** What the card shows: the facts, the ticket's state, Create ticket and Open in CloudPi. */
function recommendationBlocks(
  view: RecommendationCardView,
  links: { readonly createTicket: readonly CreateTicketLink[]; readonly open: string | undefined },
): Block[] {
  const blocks = factBlocks(view);
  const ticket = view.ticket;
  if (ticket.kind === 'creating')
    blocks.push({
      kind: 'paragraph',
      parts: [`⏳ Creating a ticket in ${providerName(view, ticket.provider)}…`],
    });
  else if (ticket.kind === 'created') {
    const key = line(ticket.key, EMAIL_LIMITS.ticketKey) || 'ticket';
    const url = safeUrl(ticket.url);
    const status = line(ticketStatusLabel(ticket), EMAIL_LIMITS.short);
    const resolved = isResolved(ticket);
    blocks.push({
      kind: 'paragraph',
      tone: resolved ? 'good' : undefined,
      parts: [
        resolved ? '✅ Resolved · Ticket ' : '🎫 Ticket ',
        url ? { text: key, url } : key,
        ` in ${providerName(view, ticket.provider)} · ${status}`,
      ],
    });
  } else if (ticket.kind === 'failed')
    blocks.push({
      kind: 'paragraph',
      tone: 'warning',
      parts: [
        `⚠️ The ticket could not be created: ${line(ticket.reason, EMAIL_LIMITS.reason) || 'unknown error'}`,
      ],
    });

  // As on the card: Create ticket until there is a ticket (again after a failure).
  if (ticket.kind === 'none' || ticket.kind === 'failed') {
    const seen = new Set<string>();
    const buttons: Link[] = [];
    for (const offer of links.createTicket) {
      const url = safeUrl(offer.url);
      if (!url || seen.has(offer.provider)) continue;
      seen.add(offer.provider);
      const name = line(offer.displayName, EMAIL_LIMITS.short) || providerName(view, offer.provider);
      buttons.push({ text: `Create ticket in ${name}`, url });
    }
    if (buttons.length) blocks.push({ kind: 'buttons', links: buttons });
  }
  blocks.push(...openBlocks(links.open ?? view.link));
  return blocks;
}

function openBlocks(url: string | undefined): Block[] {
  const safe = safeUrl(url);
  return safe ? [{ kind: 'paragraph', parts: ['🔗 ', { text: 'Open in CloudPi', url: safe }] }] : [];
}

function footer(unsubscribe: string | undefined): Block {
  const why = 'You receive this email because your address is on a CloudPi notification route.';
  const url = safeUrl(unsubscribe);
  return {
    kind: 'footer',
    parts: url
      ? [`${why} `, { text: 'Unsubscribe from these emails', url }, '.']
      : [`${why} To stop them, ask a CloudPi admin to remove your address from the route.`],
  };
}

function periodText(period: DigestPeriod): string {
  const format = new Intl.DateTimeFormat('en-GB', {
    dateStyle: 'medium',
    timeStyle: 'short',
    timeZone: 'UTC',
  });
  const valid = (d: Date) => d instanceof Date && Number.isFinite(d.getTime());
  if (!valid(period.from) || !valid(period.to)) return '';
  return `From ${format.format(period.from)} to ${format.format(period.to)} (UTC).`;
}

// ---------------------------------------------------------------------------------------------
// Savings totals

interface Amount {
  readonly currency: string;
  /** The currency as written, with its spacing ("CHF\u00a0"), for the total. */
  readonly prefix: string;
  readonly suffix: string;
  /** In units of 10^-digits. */
  readonly minor: bigint;
  readonly digits: number;
}

const MONEY = /^(-?)(\D*?)(\d{1,3}(?:,\d{3})*|\d+)(?:\.(\d{1,6}))?(\D*)$/;

/** "$1,234.50", "-CHF 12.00", "12.50 XYZ" -> an amount; undefined for anything else. */
function parseAmount(text: string | undefined): Amount | undefined {
  const value = line(text, EMAIL_LIMITS.short);
  const m = MONEY.exec(value);
  if (!m) return undefined;
  const [, sign = '', prefix = '', whole = '', fraction = '', suffix = ''] = m;
  const currency = `${prefix.trim()}|${suffix.trim()}`;
  if (currency === '|' || /[-+]/.test(prefix)) return undefined;
  const minor = BigInt(whole.replace(/,/g, '') + fraction) * (sign ? -1n : 1n);
  return { currency, prefix, suffix, minor, digits: fraction.length };
}

/** One formatted total per currency, in the order the currencies first appear. */
export function totalSavings(savings: readonly (string | undefined)[]): string[] {
  const totals = new Map<string, Amount>();
  for (const text of savings) {
    const amount = parseAmount(text);
    if (!amount) continue;
    const sum = totals.get(amount.currency);
    if (!sum) {
      totals.set(amount.currency, amount);
      continue;
    }
    const digits = Math.max(sum.digits, amount.digits);
    const scale = (a: Amount) => a.minor * 10n ** BigInt(digits - a.digits);
    totals.set(amount.currency, { ...sum, minor: scale(sum) + scale(amount), digits });
  }
  return [...totals.values()].map((t) => {
    const negative = t.minor < 0n;
    const digitsText = (negative ? -t.minor : t.minor).toString().padStart(t.digits + 1, '0');
    const whole = digitsText.slice(0, digitsText.length - t.digits).replace(/\B(?=(\d{3})+$)/g, ',');
    const fraction = t.digits ? `.${digitsText.slice(-t.digits)}` : '';
    return `${negative ? '-' : ''}${t.prefix}${whole}${fraction}${t.suffix}`;
  });
}

// ---------------------------------------------------------------------------------------------
// Text hygiene

/** Controls and format characters (bidi overrides, zero-width, soft hyphen); ZWJ stays for emoji. */
const CONTROL = /[[\p{Cc}\p{Cf}]--[\u200d]]/gv;

/** One line: controls, bidi overrides and zero-width characters removed, spaces collapsed, cut. */
export function line(text: string | null | undefined, max: number): string {
  if (typeof text !== 'string') return '';
  // Look at a bounded prefix only: a megabyte title costs nothing.
  const clean = text
    .slice(0, max * 4 + 64)
    .replace(/[\r\n\t\u2028\u2029]/g, ' ')
    .replace(CONTROL, '')
    .replace(/\s+/g, ' ')
    .trim();
  return cut(clean, max);
}

/** Cuts to `max` characters with an ellipsis, never inside a surrogate pair. */
export function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  let head = text.slice(0, Math.max(0, max - 1));
  if (/[\uD800-\uDBFF]$/.test(head)) head = head.slice(0, -1);
  return `${head.trimEnd()}…`;
}

function subject(text: string): string {
  return line(text, EMAIL_LIMITS.subject);
}

const ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

/** An absolute http(s) URL without credentials, normalized; undefined for anything else. */
export function safeUrl(url: string | null | undefined): string | undefined {
  if (typeof url !== 'string') return undefined;
  const trimmed = url.trim();
  if (!trimmed || trimmed.length > EMAIL_LIMITS.url || /[\s\p{Cc}\p{Cf}]/u.test(trimmed)) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(trimmed);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return undefined;
  // https://cloudpi.example@evil.example reads as CloudPi but goes elsewhere.
  if (parsed.username || parsed.password || !parsed.hostname) return undefined;
  return parsed.href.length <= EMAIL_LIMITS.url ? parsed.href : undefined;
}

// ---------------------------------------------------------------------------------------------
// Rendering: one block list, two parts

interface Link {
  readonly text: string;
  readonly url: string;
}
/** Text, or a link whose URL passed safeUrl. */
type Inline = string | Link;

type Block =
  | { readonly kind: 'eyebrow'; readonly text: string }
  | { readonly kind: 'title'; readonly text: string }
  | { readonly kind: 'subtitle'; readonly text: string }
  | {
      readonly kind: 'paragraph';
      readonly parts: readonly Inline[];
      readonly tone?: 'good' | 'warning' | undefined;
    }
  | { readonly kind: 'facts'; readonly rows: readonly (readonly [string, Inline])[] }
  | { readonly kind: 'buttons'; readonly links: readonly Link[] }
  | { readonly kind: 'divider' }
  | { readonly kind: 'footer'; readonly parts: readonly Inline[] };

function render(documentTitle: string, blocks: readonly Block[]): { text: string; html: string } {
  return { text: renderText(blocks), html: renderHtml(documentTitle, blocks) };
}

function inlineText(parts: readonly Inline[]): string {
  return parts.map((p) => (typeof p === 'string' ? p : `${p.text} (${p.url})`)).join('');
}

function renderText(blocks: readonly Block[]): string {
  const out: string[] = [];
  for (const b of blocks) {
    switch (b.kind) {
      case 'eyebrow':
      case 'subtitle':
        out.push(b.text);
        break;
      case 'title':
        out.push(`${b.text}\n${'='.repeat(Math.min(b.text.length, 60))}`);
        break;
      case 'paragraph':
        out.push(inlineText(b.parts));
        break;
      case 'facts':
        out.push(b.rows.map(([label, value]) => `${label}: ${inlineText([value])}`).join('\n'));
        break;
      case 'buttons':
        out.push(b.links.map((l) => `${l.text}: ${l.url}`).join('\n'));
        break;
      case 'divider':
        out.push('-'.repeat(40));
        break;
      case 'footer':
        out.push(`--\n${inlineText(b.parts)}`);
        break;
    }
  }
  return `${out.join('\n\n')}\n`;
}

const FONT = 'font-family:Arial,Helvetica,sans-serif;';
const COLOR = {
  text: '#172b4d',
  muted: '#5e6c84',
  link: '#0052cc',
  border: '#dfe1e6',
  good: '#006644',
  warning: '#974f0c',
};

function a(link: Link, style = `color:${COLOR.link};text-decoration:underline;`): string {
  return `<a href="${escapeHtml(link.url)}" target="_blank" rel="noopener noreferrer" style="${style}">${escapeHtml(link.text)}</a>`;
}

function inlineHtml(parts: readonly Inline[]): string {
  return parts.map((p) => (typeof p === 'string' ? escapeHtml(p) : a(p))).join('');
}

function cell(content: string, style: string): string {
  return `<tr><td style="${FONT}${style}">${content}</td></tr>`;
}

function blockHtml(b: Block): string {
  switch (b.kind) {
    case 'eyebrow':
      return cell(
        escapeHtml(b.text),
        `padding:24px 24px 0 24px;font-size:12px;line-height:16px;color:${COLOR.muted};text-transform:uppercase;letter-spacing:1px;`,
      );
    case 'title':
      return cell(
        `<h1 style="margin:0;${FONT}font-size:20px;line-height:28px;font-weight:bold;color:${COLOR.text};word-break:break-word;">${escapeHtml(b.text)}</h1>`,
        'padding:8px 24px 8px 24px;',
      );
    case 'subtitle':
      return cell(
        `<h2 style="margin:0;${FONT}font-size:16px;line-height:22px;font-weight:bold;color:${COLOR.text};word-break:break-word;">${escapeHtml(b.text)}</h2>`,
        'padding:8px 24px 4px 24px;',
      );
    case 'paragraph': {
      const color = b.tone === 'good' ? COLOR.good : b.tone === 'warning' ? COLOR.warning : COLOR.text;
      return cell(
        inlineHtml(b.parts),
        `padding:8px 24px;font-size:14px;line-height:20px;color:${color};word-break:break-word;`,
      );
    }
    case 'facts': {
      const rows = b.rows
        .map(
          ([label, value]) =>
            `<tr><td valign="top" style="${FONT}padding:3px 16px 3px 0;font-size:14px;line-height:20px;color:${COLOR.muted};white-space:nowrap;">${escapeHtml(label)}</td>` +
            `<td valign="top" style="${FONT}padding:3px 0;font-size:14px;line-height:20px;color:${COLOR.text};word-break:break-word;">${inlineHtml([value])}</td></tr>`,
        )
        .join('');
      return cell(
        `<table role="presentation" cellpadding="0" cellspacing="0" border="0" style="border-collapse:collapse;">${rows}</table>`,
        'padding:8px 24px;',
      );
    }
    case 'buttons': {
      const buttons = b.links
        .map(
          (l) =>
            `<td style="padding:0 8px 8px 0;"><table role="presentation" cellpadding="0" cellspacing="0" border="0"><tr><td bgcolor="${COLOR.link}" style="background-color:${COLOR.link};border-radius:4px;">` +
            a(
              l,
              `display:inline-block;padding:10px 16px;${FONT}font-size:14px;line-height:20px;font-weight:bold;color:#ffffff;text-decoration:none;border-radius:4px;`,
            ) +
            '</td></tr></table></td>',
        )
        .join('');
      return cell(
        `<table role="presentation" cellpadding="0" cellspacing="0" border="0"><tr>${buttons}</tr></table>`,
        'padding:8px 24px 0 24px;',
      );
    }
    case 'divider':
      return cell(
        `<div style="border-top:1px solid ${COLOR.border};font-size:0;line-height:0;">&nbsp;</div>`,
        'padding:12px 24px 0 24px;',
      );
    case 'footer':
      return cell(
        inlineHtml(b.parts),
        `padding:16px 24px 24px 24px;border-top:1px solid ${COLOR.border};font-size:12px;line-height:18px;color:${COLOR.muted};`,
      );
  }
}

function renderHtml(documentTitle: string, blocks: readonly Block[]): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en" dir="ltr">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="x-apple-disable-message-reformatting">',
    '<meta name="color-scheme" content="light">',
    `<title>${escapeHtml(documentTitle)}</title>`,
    '</head>',
    '<body style="margin:0;padding:0;background-color:#f4f5f7;">',
    '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" bgcolor="#f4f5f7" style="background-color:#f4f5f7;">',
    '<tr><td align="center" style="padding:24px 12px;">',
    `<table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" bgcolor="#ffffff" style="width:100%;max-width:600px;background-color:#ffffff;border:1px solid ${COLOR.border};border-radius:6px;">`,
    ...blocks.map(blockHtml),
    '</table>',
    '</td></tr>',
    '</table>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
