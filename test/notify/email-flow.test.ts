/**
 * Email end to end (issue 8) against a real SMTP server on loopback (smtp-server, STARTTLS with a
 * self-signed certificate trusted through configuration, AUTH PLAIN / LOGIN): the SMTP form's live
 * checks, "Send test email", a card the bot could not post going by email to the subscription's
 * and the fallback recipients, the signed one-click Create ticket link (confirmation page, one
 * ticket, tampered and expired links refused), List-Unsubscribe one-click, and the retry policy
 * (451 retried, 550 recorded for admins, not retried).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../../src/commands/chat-commands.js';
import type { IntegrationDetailsView, IntegrationFormView } from '../../src/commands/views.js';
import { sendEmailJob } from '../../src/notify/email.js';
import { signAction } from '../../src/notify/signed-links.js';
import { useSlackWorkspace } from '../slack/harness.js';
import { type AzureDevOpsFake, startAzureDevOpsFake } from '../support/fakes/azure-devops-fake.js';
import {
  type ReceivedMessage,
  startSmtpServer,
  type TestSmtpServer,
  testCertificate,
} from '../support/smtp-server.js';
import { waitFor } from '../support/wait.js';

const GONE = 'C0MAILGONE';

describe('email over the tenant SMTP settings', () => {
  const startOptions: { smtpCa: string[] } = { smtpCa: [] };
  beforeAll(async () => {
    startOptions.smtpCa.push((await testCertificate()).cert);
  });
  const ws = useSlackWorkspace({ CLOUDPI_TICKET_POLL_CRON: '0 0 1 1 *' }, startOptions);
  let smtp: TestSmtpServer;
  let ado: AzureDevOpsFake;
  let admin: Actor;
  // biome-ignore lint/suspicious/noDuplicateTestHooks: the first hook makes the certificate the service trusts at start-up; this one needs the service
  beforeAll(async () => {
    [smtp, ado] = await Promise.all([startSmtpServer(), startAzureDevOpsFake()]);
    const tenantId = (await ws.running.service.repositories.tenants.ensure('slack', ws.slack.teamId, 'Test'))
      .id;
    admin = { tenantId, platform: 'slack', userId: ws.slack.users.admin, platformAdmin: true };
  });
  afterAll(async () => {
    await Promise.all([smtp?.close(), ado?.close()]);
  });

  const settings = (over: Record<string, string> = {}) => ({
    host: 'localhost',
    port: String(smtp.port),
    security: 'starttls',
    fromAddress: smtp.user,
    username: '',
    password: smtp.password,
    recipients: 'finops@example.com',
    ...over,
  });
  async function save(over: Record<string, string> = {}) {
    const outcome = await ws.running.service.chat.submitIntegrationForm(admin, 'smtp', settings(over));
    if (outcome.type !== 'view') throw new Error('expected a view');
    return outcome.view as IntegrationFormView | IntegrationDetailsView;
  }
  const to = (m: ReceivedMessage) => m.envelope.to.join(',');

  it('checks the settings live and names what is wrong; nothing is saved until they work', async () => {
    const wrongPassword = await save({ password: 'not the password' });
    expect((wrongPassword as IntegrationFormView).errors.password).toMatch(/^Invalid email credentials/);
    expect(JSON.stringify(wrongPassword)).not.toContain('not the password');
    const unknownHost = await save({ host: 'smtp.name.invalid' });
    expect((unknownHost as IntegrationFormView).errors.host).toMatch(/^Unable to connect to SMTP server/);
    const fast = await ws.running.service.chat.validateIntegrationForm(
      admin,
      'smtp',
      settings({ port: '99999', fromAddress: 'nope' }),
    );
    expect(Object.keys(fast).sort()).toEqual(['fromAddress', 'port']);
    expect((await ws.running.service.smtp.status(admin.tenantId)).configured).toBe(false);
  });

  it('saves working settings (a test message to the sender), and Send test email sends one', async () => {
    const before = smtp.messages.length;
    const saved = await save();
    expect(saved.kind).toBe('integration-details');
    expect((saved as IntegrationDetailsView).notice?.title).toBe('Email (SMTP) is connected and active');
    const [check] = await smtp.waitForMessages(before + 1);
    expect(check).toBeDefined();
    const form = await ws.running.service.chat.integrationForm(admin, 'smtp');
    expect(form.submitLabel).toBe('Update');
    expect(form.fields.find((f) => f.key === 'password')?.value).toBeUndefined();
    const reply = await ws.running.service.chat.act(admin, 'test-email', 'smtp');
    expect((reply as { view: { title: string } }).view.title).toBe('Test email sent');
    const all = await smtp.waitForMessages(before + 2);
    const test = all.at(-1)!;
    expect(test.parsed.subject).toMatch(/CloudPi test email/i);
    expect(test.secure).toBe(true);
    expect(test.user).toBe(smtp.user);
    const audit = await ws.running.service.repositories.audit.recent(admin.tenantId, 20);
    expect(JSON.stringify(audit)).not.toContain(smtp.password);
  });

  let oneClick: string;
  let unsubscribe: string;

  it('sends a card the bot could not post by email, with one-click links and List-Unsubscribe', async () => {
    const { repositories, integrations } = ws.running.service;
    expect((await integrations.connect(admin.tenantId, 'azure-devops', ado.validValues, 'test')).ok).toBe(
      true,
    );
    expect((await integrations.configure(admin.tenantId, 'azure-devops', ado.routing, 'test')).ok).toBe(true);
    ws.slack.joinChannel(GONE);
    await repositories.routes.create(admin.tenantId, {
      platform: 'slack',
      channelId: GONE,
      filters: {},
      emailRecipients: ['owner@example.com'],
      createdBy: 'test',
    });
    ws.slack.leaveChannel(GONE);
    const before = smtp.messages.length;
    await ws.running.service.recommendations.ingestRecommendations(admin.tenantId, {
      id: 'rec-mail-1',
      title: 'Delete idle <script>alert(1)</script> disk',
      cloud: 'aws',
      monthlySavings: 55,
      link: 'https://cloudpi.example/r/1',
    });
    // The subscription's recipient (its own email) and, for the undeliverable card, both recipients.
    const received = await smtp.waitForMessages(before + 3, 20_000);
    const mails = received.slice(before);
    expect(mails.map(to).sort()).toEqual(['finops@example.com', 'owner@example.com', 'owner@example.com']);
    const mail = mails.find((m) => to(m) === 'finops@example.com')!;
    expect(mail.parsed.subject).toContain('Delete idle');
    expect(mail.parsed.text).toContain('Delete idle');
    expect(mail.parsed.html).toBeTruthy();
    expect(String(mail.parsed.html)).not.toContain('<script>');
    const listUnsubscribe = mail.parsed.headers.get('list-unsubscribe') ?? mail.parsed.headers.get('list');
    expect(JSON.stringify(listUnsubscribe)).toContain('/email/unsubscribe?t=');
    oneClick = String(mail.parsed.text).match(/https?:\/\/\S+\/email\/ticket\?t=[A-Za-z0-9_.-]+/)![0];
    unsubscribe = String(mail.parsed.text).match(/https?:\/\/\S+\/email\/unsubscribe\?t=[A-Za-z0-9_.-]+/)![0];

    const rec = (await repositories.recommendations.findByExternalId(admin.tenantId, 'rec-mail-1'))!;
    const card = await waitFor(async () => {
      const c = (await repositories.recommendations.cards(admin.tenantId, rec.id)).find(
        (x) => x.channelId === GONE,
      );
      return c?.fallbackState === 'delivered' ? c : undefined;
    });
    expect(card.fallbackNote).toContain('finops@example.com');
    const home = JSON.stringify(await ws.openHome(ws.slack.users.admin));
    expect(home).toContain('sent by email');
  });

  it('the one-click link confirms first, creates one ticket, and refuses tampering and expiry', async () => {
    const page = await fetch(oneClick);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<form method="post"');
    expect(ado.ticketCount()).toBe(0);
    const [first, second] = await Promise.all([
      fetch(oneClick, { method: 'POST' }),
      fetch(oneClick, { method: 'POST' }),
    ]);
    expect([first.status, second.status]).toEqual([200, 200]);
    await waitFor(() => (ado.ticketCount() === 1 ? true : undefined));
    // The subscription's recipient is told the ticket exists, with its key.
    const rec0 = (await ws.running.service.repositories.recommendations.findByExternalId(
      admin.tenantId,
      'rec-mail-1',
    ))!;
    const ticket = await waitFor(async () => {
      const [row] = await ws.running.service.repositories.recommendations.tickets(admin.tenantId, rec0.id);
      return row?.key ? row : undefined;
    });
    const told = await waitFor(() =>
      smtp.messages.find((m) => to(m) === 'owner@example.com' && String(m.parsed.text).includes(ticket.key!)),
    );
    expect(String(told.parsed.html)).toContain(ticket.key!);
    const again = await fetch(oneClick, { method: 'POST' });
    expect(again.status).toBe(200);
    await new Promise((r) => setTimeout(r, 500));
    expect(ado.ticketCount()).toBe(1);

    const tampered = oneClick.replace(/t=([A-Za-z0-9_-])/, (_m, c: string) => `t=${c === 'A' ? 'B' : 'A'}`);
    expect((await fetch(tampered, { method: 'POST' })).status).toBe(400);
    const rec = (await ws.running.service.repositories.recommendations.findByExternalId(
      admin.tenantId,
      'rec-mail-1',
    ))!;
    const expiredToken = signAction(ws.running.service.secretBox.derivedKeys('email-links')[0]!, {
      tenantId: admin.tenantId,
      recommendationId: rec.id,
      provider: 'azure-devops',
      action: 'create-ticket',
      expiresAt: new Date(Date.now() - 1000),
    });
    const expired = new URL(oneClick);
    expired.searchParams.set('t', expiredToken);
    expect((await fetch(expired, { method: 'POST' })).status).toBe(410);
  });

  it('List-Unsubscribe one-click removes the recipient from that subscription', async () => {
    const res = await fetch(unsubscribe, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    expect(res.status).toBe(200);
    const routes = await ws.running.service.repositories.routes.list(admin.tenantId, {
      platform: 'slack',
      channelId: GONE,
    });
    expect(routes[0]!.emailRecipients).toEqual(['owner@example.com']);
    const status = await ws.running.service.smtp.status(admin.tenantId);
    // The link in finops' email was for the fallback list: that address is gone from it.
    expect(status.recipients).not.toContain('finops@example.com');
  });

  it('gathers a digest subscription into one email per recipient per interval', async () => {
    const { repositories, email } = ws.running.service;
    await repositories.routes.create(admin.tenantId, {
      filters: { clouds: ['gcp'] },
      emailRecipients: ['digest-a@example.com', 'digest-b@example.com'],
      target: { digest: 'hourly' },
      createdBy: 'test',
    });
    const before = smtp.messages.length;
    for (const id of ['rec-digest-1', 'rec-digest-2'])
      await ws.running.service.recommendations.ingestRecommendations(admin.tenantId, {
        id,
        title: `Idle GCP VM ${id}`,
        cloud: 'gcp',
        monthlySavings: 10,
      });
    await waitFor(async () => {
      const recs = await Promise.all(
        ['rec-digest-1', 'rec-digest-2'].map((id) =>
          repositories.recommendations.findByExternalId(admin.tenantId, id),
        ),
      );
      return recs.every(Boolean) ? true : undefined;
    });
    await new Promise((r) => setTimeout(r, 1500));
    // Nothing per recommendation for the digest's recipients.
    expect(smtp.messages.slice(before).filter((m) => to(m).startsWith('digest-'))).toEqual([]);
    const now = new Date();
    expect(await email.sendDueDigests(now)).toBe(2);
    const forA = await waitFor(() =>
      smtp.messages.slice(before).find((m) => to(m) === 'digest-a@example.com'),
    );
    await waitFor(() => smtp.messages.slice(before).find((m) => to(m) === 'digest-b@example.com'));
    expect(forA.parsed.subject).toMatch(/2 new recommendations/);
    expect(String(forA.parsed.text)).toContain('rec-digest-1');
    expect(String(forA.parsed.text)).toContain('rec-digest-2');
    expect(forA.parsed.headers.has('list-unsubscribe') || forA.parsed.headers.has('list')).toBe(true);
    // Sent once: the items are gone, and the interval has not passed yet.
    await ws.running.service.recommendations.ingestRecommendations(admin.tenantId, {
      id: 'rec-digest-3',
      title: 'Idle GCP VM rec-digest-3',
      cloud: 'gcp',
      monthlySavings: 10,
    });
    await new Promise((r) => setTimeout(r, 1500));
    expect(await email.sendDueDigests(new Date(now.getTime() + 60_000))).toBe(0);
    expect(await email.sendDueDigests(new Date(now.getTime() + 3600_000 + 1000))).toBe(2);
    await waitFor(() =>
      smtp.messages.filter((m) => to(m).startsWith('digest-')).length >= 4 ? true : undefined,
    );
    // One per recipient per interval, never one per recommendation.
    await new Promise((r) => setTimeout(r, 1000));
    expect(smtp.messages.filter((m) => to(m).startsWith('digest-'))).toHaveLength(4);
    expect(smtp.messages.filter((m) => to(m) === 'digest-a@example.com')).toHaveLength(2);
  });

  it('sends every new recommendation of a tenant without a chat platform to its fallback recipients', async () => {
    const { repositories, smtp: smtpSettings, recommendations } = ws.running.service;
    const tenant = await repositories.tenants.ensure('email', 'acme-finance', 'Acme Finance');
    const saved = await smtpSettings.save(tenant.id, { ...settings(), recipients: 'cfo@example.com' }, 'cli');
    expect(saved.ok).toBe(true);
    const before = smtp.messages.length;
    await recommendations.ingestRecommendations(tenant.id, {
      id: 'rec-email-only',
      title: 'Buy a savings plan',
      cloud: 'aws',
    });
    const mail = await waitFor(() => smtp.messages.slice(before).find((m) => to(m) === 'cfo@example.com'));
    expect(mail.parsed.subject).toContain('Buy a savings plan');
  });

  it('retries a 451 until it is delivered; records a 550 for admins without retrying', async () => {
    const { queue, repositories, smtp: smtpSettings } = ws.running.service;
    const job = (address: string) => ({
      tenantId: admin.tenantId,
      to: [address],
      subject: 'CloudPi retry check',
      text: 'retry check',
      html: '<p>retry check</p>',
      purpose: 'test',
    });
    const before = smtp.messages.length;
    smtp.failNext('RCPT', 451, undefined, 1);
    await queue.send(sendEmailJob, job('retry@example.com'));
    const delivered = await waitFor(
      () => smtp.messages.slice(before).find((m) => to(m) === 'retry@example.com'),
      40_000,
    );
    expect(delivered.parsed.subject).toBe('CloudPi retry check');

    smtp.failNext('RCPT', 550, undefined, 1);
    await queue.send(sendEmailJob, job('nobody@example.com'));
    const failed = await waitFor(async () => {
      const entries = await repositories.audit.recent(admin.tenantId, 50, 'email.failed');
      return entries.length ? entries : undefined;
    }, 30_000);
    expect(failed[0]!.target).toBe('nobody@example.com');
    expect((await smtpSettings.status(admin.tenantId)).lastError).toMatch(/550|refused|rejected/i);
    // Not retried: one attempt only.
    await new Promise((r) => setTimeout(r, 7_000));
    expect(smtp.messages.filter((m) => to(m) === 'nobody@example.com')).toEqual([]);
    expect(JSON.stringify(await ws.openHome(ws.slack.users.admin))).toContain('Last sending problem');
  }, 90_000);
});
