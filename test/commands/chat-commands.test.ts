import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Actor, ChatCommands, type Reply } from '../../src/commands/chat-commands.js';
import { parseCommand } from '../../src/commands/grammar.js';
import type {
  IntegrationDetailsView,
  IntegrationFormView,
  NoticeView,
  StatusBoardView,
  View,
} from '../../src/commands/views.js';
import { startAzureDevOpsFake } from '../support/fakes/azure-devops-fake.js';
import type { ProviderFake } from '../support/fakes/provider-fake.js';
import { useService } from '../support/service.js';

/** The view a reply carries (every reply here does; open-configure would fail the test). */
function viewOf(reply: Reply): View {
  if (!('view' in reply)) throw new Error(`expected a view, got ${reply.type}`);
  return reply.view;
}

describe('chat commands (platform-neutral)', () => {
  const running = useService('pglite', {
    CLOUDPI_ALLOW_HTTP: 'true',
    CLOUDPI_ALLOW_PRIVATE_NETWORKS: 'true',
    CLOUDPI_ADMINS: 'slack:U0BOOT',
  });
  let fake: ProviderFake;
  let commands: ChatCommands;
  let admin: Actor;
  let member: Actor;
  let bootstrap: Actor;

  beforeAll(async () => {
    fake = await startAzureDevOpsFake();
    const { service } = running;
    commands = new ChatCommands({
      db: service.database.db,
      repositories: service.repositories,
      integrations: service.integrations,
      admins: service.admins,
      webhooks: service.webhooks,
    });
    const tenantId = (await service.repositories.tenants.ensure('slack', 'T0CHAT')).id;
    admin = { tenantId, platform: 'slack', userId: 'U0ADMIN', platformAdmin: true };
    member = { tenantId, platform: 'slack', userId: 'U0MEMBER', platformAdmin: false };
    bootstrap = { tenantId, platform: 'slack', userId: 'U0BOOT', platformAdmin: false };
  });
  afterAll(async () => {
    await fake?.close();
  });

  it('answers help, and unknown input with help and the closest command', async () => {
    const help = await commands.handle(member, parseCommand('help'));
    expect(help.type).toBe('message');
    const unknown = await commands.handle(member, parseCommand('integratons'));
    expect(unknown).toMatchObject({
      type: 'message',
      view: { kind: 'help', suggestion: '/cloudpi integrations' },
    });
  });

  it('refuses admin commands to members, and lets bootstrap admins in', async () => {
    const refused = await commands.handle(member, parseCommand('connect azure-devops'));
    expect(refused).toMatchObject({
      type: 'message',
      view: { kind: 'notice', tone: 'error', title: 'Only CloudPi admins can change integrations' },
    });
    const allowed = await commands.handle(bootstrap, parseCommand('connect azure-devops'));
    expect(allowed.type).toBe('open-form');
  });

  it('opens the Save form for a new integration, secrets empty', async () => {
    const reply = await commands.handle(admin, parseCommand('connect azure-devops'));
    expect(reply.type).toBe('open-form');
    const form = viewOf(reply) as IntegrationFormView;
    expect(form).toMatchObject({ kind: 'integration-form', provider: 'azure-devops', submitLabel: 'Save' });
    expect(form.fields.map((f) => f.label)).toEqual(['Organization URL', 'Personal Access Token (PAT)']);
    expect(form.fields.find((f) => f.secret)?.value).toBeUndefined();
  });

  it('validates fields fast, then shows the provider error at the field, never echoing the secret', async () => {
    const fieldErrors = await commands.validateIntegrationForm(admin, 'azure-devops', {
      organizationUrl: 'ftp://x',
    });
    expect(Object.keys(fieldErrors).sort()).toEqual(['organizationUrl', 'personalAccessToken'].sort());
    const wrong = await commands.submitIntegrationForm(admin, 'azure-devops', fake.wrongSecretValues);
    expect(wrong.type).toBe('view');
    const view = (wrong as { view: IntegrationFormView }).view;
    expect(view.kind).toBe('integration-form');
    expect(view.errors.personalAccessToken).toMatch(/Personal Access Token/);
    expect(view.notice?.tone).toBe('error');
    expect(JSON.stringify(view)).not.toContain(fake.wrongSecretValues.personalAccessToken);
  });

  it('connects and says so in CloudPi words', async () => {
    const outcome = await commands.submitIntegrationForm(admin, 'azure-devops', fake.validValues);
    const view = (outcome as { view: IntegrationDetailsView }).view;
    expect(view).toMatchObject({ kind: 'integration-details', badge: 'Active' });
    expect(view.notice).toMatchObject({ tone: 'success', title: 'Azure DevOps is connected and active' });
    expect(view.actions.map((a) => a.label)).toEqual(['Edit', 'Configure', 'Pause', 'Disconnect Provider']);
  });

  it('shows a configured integration with Edit, then the form with Update and the secret kept', async () => {
    const entry = await commands.handle(admin, parseCommand('connect azure-devops'));
    expect(viewOf(entry).kind).toBe('integration-details');
    const edit = await commands.act(admin, 'edit', 'azure-devops');
    const form = viewOf(edit) as IntegrationFormView;
    expect(form.submitLabel).toBe('Update');
    const pat = form.fields.find((f) => f.key === 'personalAccessToken')!;
    expect(pat).toMatchObject({
      hasSavedSecret: true,
      required: false,
      hint: 'Leave blank to keep the saved value.',
    });
    expect(pat.value).toBeUndefined();
    expect(form.fields.find((f) => f.key === 'organizationUrl')?.value).toBe(
      fake.validValues.organizationUrl,
    );
  });

  it('shows the status board: badges for all, buttons for admins only', async () => {
    const mine = viewOf(await commands.handle(admin, parseCommand('integrations'))) as StatusBoardView;
    expect(mine.providers.map((p) => [p.displayName, p.badge])).toEqual([
      ['Jira', 'Not Connected'],
      ['Azure DevOps', 'Active'],
      ['ServiceNow', 'Not Connected'],
    ]);
    expect(mine.canEdit).toBe(true);
    const theirs = viewOf(await commands.handle(member, parseCommand('integrations'))) as StatusBoardView;
    expect(theirs.canEdit).toBe(false);
    expect(theirs.providers.every((p) => p.actions.length === 0)).toBe(true);
    const other = await running.service.repositories.tenants.ensure('slack', 'T0OTHER');
    const elsewhere = (await commands.statusBoard({ ...admin, tenantId: other.id })) as StatusBoardView;
    expect(elsewhere.providers.find((p) => p.provider === 'azure-devops')?.badge).toBe('Not Connected');
  });

  it('pauses and activates', async () => {
    const paused = await commands.act(admin, 'pause', 'azure-devops');
    expect((viewOf(paused) as NoticeView).title).toBe('Azure DevOps is paused (Connected)');
    const board = await commands.statusBoard(admin);
    expect(board.providers.find((p) => p.provider === 'azure-devops')?.badge).toBe('Connected');
    await commands.act(admin, 'activate', 'azure-devops');
  });

  it('subscribes a channel with a ticket route to an Active provider, lists and unsubscribes it', async () => {
    expect(await commands.handle(admin, parseCommand('subscribe'))).toMatchObject({
      type: 'message',
      view: { kind: 'notice', tone: 'warning' },
    });
    expect(await commands.handle(admin, parseCommand('subscribe'), { channelId: 'C0CORE' })).toEqual({
      type: 'open-subscribe',
      channelId: 'C0CORE',
    });
    const form = await commands.subscribeForm(admin, 'C0CORE');
    if (form.kind !== 'subscribe-form') throw new Error('expected the form');
    expect(form.fields.find((f) => f.key === 'provider')?.options).toEqual([
      { value: 'azure-devops', label: 'Azure DevOps' },
    ]);
    const bad = await commands.submitSubscribeForm(admin, 'C0CORE', { provider: 'jira' });
    expect(bad).toMatchObject({ type: 'errors', errors: { provider: expect.any(String) } });
    const ok = await commands.submitSubscribeForm(admin, 'C0CORE', {
      severities: ['critical'],
      provider: 'azure-devops',
      project: 'FinOps',
      ticketType: 'Task',
    });
    expect(ok).toMatchObject({ type: 'view', view: { tone: 'success' } });
    const list = await commands.subscriptions(admin, 'C0CORE');
    expect(list.items).toHaveLength(1);
    expect(list.items[0]).toMatchObject({
      filters: 'severity critical',
      tickets: 'Tickets: Azure DevOps, project FinOps (Task)',
      actions: [{ action: 'unsubscribe', label: 'Unsubscribe' }],
    });
    expect((await commands.subscriptions(member, 'C0CORE')).items[0]?.actions).toEqual([]);
    expect((await commands.unsubscribe(member, list.items[0]!.id)).tone).toBe('error');
    expect((await commands.unsubscribe(admin, list.items[0]!.id)).title).toBe('Unsubscribed');
    expect((await commands.subscriptions(admin, 'C0CORE')).items).toEqual([]);
    expect((await commands.unsubscribe(admin, 'not-an-id')).tone).toBe('info');
  });

  it('sets up the status webhook: URL and secret once, then the URL only; rotate makes new ones', async () => {
    expect(viewOf(await commands.handle(member, parseCommand('webhook azure-devops')))).toMatchObject({
      tone: 'error',
    });
    const notConnected = viewOf(await commands.handle(admin, parseCommand('webhook jira'))) as NoticeView;
    expect(notConnected).toMatchObject({ tone: 'error' });
    expect(notConnected.title).toContain('Jira is not connected');

    const first = viewOf(await commands.handle(admin, parseCommand('webhook azure-devops'))) as NoticeView;
    expect(first).toMatchObject({ tone: 'success', title: 'Azure DevOps webhook ready' });
    const secret = /shown only now[^:]*: (\S+)/.exec(first.text ?? '')?.[1];
    const url = /URL: (\S+)/.exec(first.text ?? '')?.[1];
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url).toMatch(/\/webhooks\/azure-devops\/[A-Za-z0-9_-]{22}$/);
    expect(first.text).toContain('Basic authentication username: cloudpi');

    const again = viewOf(await commands.handle(admin, parseCommand('webhook azure-devops'))) as NoticeView;
    expect(again.text).toContain(url!);
    expect(again.text).not.toContain(secret!);
    expect(again.text).toContain('No delivery has arrived yet.');

    const rotated = viewOf(await commands.handle(admin, parseCommand('webhook ado rotate'))) as NoticeView;
    expect(rotated.text).not.toContain(secret!);
    expect(rotated.text).not.toContain(url!);
    expect(rotated.text).toMatch(/shown only now/);
  });

  it('asks before disconnecting, then disconnects and audits', async () => {
    const confirm = await commands.handle(admin, parseCommand('disconnect azure-devops'));
    expect(viewOf(confirm)).toMatchObject({
      kind: 'confirm',
      confirm: { action: 'confirm-disconnect', label: 'Disconnect Provider' },
    });
    expect((await commands.integrationEntry(admin, 'azure-devops')).kind).toBe('integration-details');
    const done = await commands.act(admin, 'confirm-disconnect', 'azure-devops');
    expect((viewOf(done) as NoticeView).title).toBe('Azure DevOps is disconnected');
    expect(
      (await commands.statusBoard(admin)).providers.find((p) => p.provider === 'azure-devops')?.badge,
    ).toBe('Not Connected');
    const audit = await commands.audit(admin);
    expect(audit.entries.map((e) => e.action)).toEqual(
      expect.arrayContaining([
        'integration.connect',
        'integration.pause',
        'integration.activate',
        'integration.disconnect',
      ]),
    );
    expect(audit.entries.find((e) => e.action === 'integration.disconnect')?.actor).toBe('slack:U0ADMIN');
  });

  it('refuses button presses from members', async () => {
    const reply = await commands.act(member, 'confirm-disconnect', 'azure-devops');
    expect((viewOf(reply) as NoticeView).title).toBe('Only CloudPi admins can change integrations');
  });
});
