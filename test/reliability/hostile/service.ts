/**
 * One real `cloudpi serve` process on a fresh PostgreSQL database, wired to the strict Slack fake
 * (one-workspace mode) and the strict Bot Framework fake (a real app registration: tokens are
 * checked), with the SSRF guard on: neither CLOUDPI_ALLOW_PRIVATE_NETWORKS nor CLOUDPI_ALLOW_HTTP
 * is set. The fakes themselves are operator-configured endpoints (SLACK_API_URL, MICROSOFT_*),
 * which the guard does not cover, so the process still reaches them on loopback.
 *
 * The test process opens the same database with the same master key, to set up what a tenant
 * would have (tenant, API key, subscriptions) and to check that nothing else was stored.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { SecretBox } from '../../../src/crypto/secret-box.js';
import { type DatabaseHandle, openDatabase } from '../../../src/storage/db.js';
import { createRepositories, type Repositories } from '../../../src/storage/repositories/index.js';
import { type ResponseUrls, startResponseUrls } from '../../slack/helpers.js';
import { type FreshDatabase, freshDatabase } from '../../support/databases.js';
import { type SlackFake, startSlackFake } from '../../support/fakes/slack-fake.js';
import { startTeamsFake, type TeamsFake } from '../../support/fakes/teams-fake.js';
import { keyEntry, masterKey } from '../../support/keys.js';
import { freePort, type ServiceProcess, spawnCli, waitUntilReady } from '../../support/process.js';

export const SIGNING_SECRET = 'hostile-signing-secret-0123456789abcdef';

export interface HostileService {
  readonly proc: ServiceProcess;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly slack: SlackFake;
  readonly teams: TeamsFake;
  /** Slack's response_url endpoint on loopback. */
  readonly responses: ResponseUrls;
  readonly handle: DatabaseHandle;
  readonly repos: Repositories;
  /** Whether the process has exited (it never should here). */
  exited(): boolean;
  stop(): Promise<void>;
}

export async function startHostileService(): Promise<HostileService> {
  const fresh: FreshDatabase = await freshDatabase('postgres');
  const cleanups: (() => Promise<unknown> | unknown)[] = [() => fresh.drop()];
  const stopAll = async () => {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
  };
  try {
    const [slack, teams, responses] = await Promise.all([
      startSlackFake(),
      startTeamsFake(),
      startResponseUrls(),
    ]);
    cleanups.push(
      () => slack.close(),
      () => teams.close(),
      () => responses.close(),
    );
    // The spawned process trusts the Bot Framework fake's CA the way an operator would make it trust
    // a corporate proxy's: NODE_EXTRA_CA_CERTS.
    const caFile = path.join(fresh.dir, 'teams-fake-ca.pem');
    writeFileSync(caFile, teams.caPem);
    const key = masterKey('hostile');
    const url = (fresh.target as { url: string }).url;
    const proc = spawnCli(
      ['serve'],
      {
        DATABASE_URL: url,
        CLOUDPI_MASTER_KEYS: keyEntry(key),
        CLOUDPI_DATA_DIR: fresh.dir,
        LOG_LEVEL: 'info',
        // No background checks or polls while the test runs.
        CLOUDPI_HEALTH_CHECK_CRON: '0 0 1 1 *',
        CLOUDPI_TICKET_POLL_CRON: '0 0 1 1 *',
        SLACK_SIGNING_SECRET: SIGNING_SECRET,
        SLACK_BOT_TOKEN: slack.botToken,
        SLACK_API_URL: slack.apiUrl,
        MICROSOFT_APP_ID: teams.appId,
        MICROSOFT_APP_PASSWORD: teams.appPassword,
        MICROSOFT_APP_TYPE: teams.appType,
        MICROSOFT_LOGIN_URL: teams.loginUrl,
        MICROSOFT_OPENID_METADATA_URL: teams.openIdMetadataUrl,
        MICROSOFT_TOKEN_ISSUER: teams.issuer,
        CLOUDPI_ADMINS: `teams:${teams.users.admin.aadObjectId}`,
        NODE_EXTRA_CA_CERTS: caFile,
      },
      await freePort(),
    );
    let hasExited = false;
    void proc.exited.then(() => (hasExited = true));
    cleanups.push(async () => {
      if (hasExited) return;
      proc.child.kill('SIGTERM');
      const timer = setTimeout(() => proc.child.kill('SIGKILL'), 15_000);
      await proc.exited;
      clearTimeout(timer);
    });
    await waitUntilReady(proc, 60_000);
    const handle = await openDatabase(fresh.target, { maxConnections: 2 });
    cleanups.push(() => handle.close());
    const repos = createRepositories(handle.db, new SecretBox([key]));
    return {
      proc,
      url: `http://127.0.0.1:${proc.port}`,
      slack,
      teams,
      responses,
      handle,
      repos,
      exited: () => hasExited,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** The JSON log lines of the process (stdout and stderr) at or above `level` (pino: 50 error, 60 fatal). */
export function logLinesAtLeast(proc: ServiceProcess, level: number): Record<string, unknown>[] {
  return `${proc.stdout()}\n${proc.stderr()}`
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    })
    .filter((entry) => typeof entry.level === 'number' && entry.level >= level);
}
