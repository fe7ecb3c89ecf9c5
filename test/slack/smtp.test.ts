/**
 * SMTP from Slack: `/cloudpi smtp` opens the SMTP modal (SMTP Host, SMTP Port, Security, Email
 * Address, Username, Password, Fallback recipients); a wrong password shows "Invalid email
 * credentials" at the Password; the right settings show "Email (SMTP) is connected and active";
 * App Home then has Send test email, which sends one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockActionsPayload, postSlackInteraction } from '../support/slack-requests.js';
import { startSmtpServer, type TestSmtpServer, testCertificate } from '../support/smtp-server.js';
import { waitFor } from '../support/wait.js';
import { SIGNING_SECRET, useSlackWorkspace } from './harness.js';
import { button, textOf } from './helpers.js';

describe('SMTP from Slack', () => {
  const startOptions: { smtpCa: string[] } = { smtpCa: [] };
  beforeAll(async () => {
    startOptions.smtpCa.push((await testCertificate()).cert);
  });
  const ws = useSlackWorkspace({}, startOptions);
  let smtp: TestSmtpServer;
  // biome-ignore lint/suspicious/noDuplicateTestHooks: the first hook makes the certificate the service trusts at start-up
  beforeAll(async () => {
    smtp = await startSmtpServer();
  });
  afterAll(async () => {
    await smtp?.close();
  });

  it('sets up SMTP in a modal with live checks, then sends a test email from App Home', async () => {
    const trigger = await ws.command('smtp', ws.slack.users.admin, 'C0SMTP');
    const { id, view } = await ws.modalFor(trigger);
    for (const label of [
      'SMTP Host',
      'SMTP Port',
      'Security',
      'Email Address',
      'Username',
      'Password',
      'Fallback recipients',
    ])
      expect(textOf(view), label).toContain(label);
    const fields = {
      host: 'localhost',
      port: String(smtp.port),
      security: 'starttls',
      fromAddress: smtp.user,
      password: 'definitely wrong',
    };
    await ws.submitModal(view, fields);
    const wrong = await waitFor(() => {
      const v = ws.slack.modals.get(id)?.view;
      return v && textOf(v).includes('Invalid email credentials') ? v : undefined;
    });
    expect(JSON.stringify(wrong)).not.toContain('definitely wrong');
    await ws.submitModal(wrong, { ...fields, password: smtp.password });
    await waitFor(() =>
      textOf(ws.slack.modals.get(id)?.view).includes('Email (SMTP) is connected and active')
        ? true
        : undefined,
    );

    const home = await ws.openHome(ws.slack.users.admin);
    expect(textOf(home)).toContain('Send test email');
    const before = smtp.messages.length;
    const element = button(home, 'Send test email');
    const res = await postSlackInteraction(
      ws.running.service.url,
      SIGNING_SECRET,
      blockActionsPayload({
        teamId: ws.slack.teamId,
        userId: ws.slack.users.admin,
        actionId: String(element.action_id),
        triggerId: ws.slack.issueTriggerId(ws.slack.users.admin),
        view: home,
      }),
    );
    expect(res.status).toBe(200);
    const all = await smtp.waitForMessages(before + 1, 20_000);
    expect(all.at(-1)!.parsed.subject).toBe('CloudPi test email');
    expect(ws.slack.specViolations).toEqual([]);
  });
});
