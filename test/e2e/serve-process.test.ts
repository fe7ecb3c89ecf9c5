import { existsSync, statSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type FreshDatabase, freshDatabase, TEST_DATABASE_URL, tempDir } from '../support/databases.js';
import { keyEntry, masterKey } from '../support/keys.js';
import { freePort, type ServiceProcess, spawnCli, waitUntilReady } from '../support/process.js';

/** A request whose body arrives only when `finish` is called: in flight until then. */
function slowRequest(port: number) {
  let finish!: () => void;
  const response = new Promise<number>((resolve, reject) => {
    const body = '{"slow":true}';
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/api/v1/tenant',
        headers: {
          'content-type': 'application/json',
          'content-length': body.length,
          authorization: 'Bearer x',
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.write(body.slice(0, 3));
    finish = () => req.end(body.slice(3));
  });
  return { response, finish: () => finish() };
}

describe('cloudpi serve (embedded database)', { timeout: 180_000 }, () => {
  const dirs: string[] = [];
  const procs: ServiceProcess[] = [];
  afterAll(() => {
    for (const p of procs) p.child.kill('SIGKILL');
  });

  async function start(env: Record<string, string> = {}) {
    const dir = tempDir();
    dirs.push(dir);
    const proc = spawnCli(['serve'], { CLOUDPI_DATA_DIR: dir, ...env }, await freePort());
    procs.push(proc);
    // Generous: a first PGlite start takes 20 s and more on a loaded 2-core machine (the bench tracks the time).
    await waitUntilReady(proc, 90_000);
    return { proc, dir };
  }

  it('starts with nothing configured: creates the database, generates a key, answers /healthz and /readyz', async () => {
    const { proc, dir } = await start();
    expect(existsSync(path.join(dir, 'pglite', 'PG_VERSION'))).toBe(true);
    expect(statSync(path.join(dir, 'master.key')).mode & 0o777).toBe(0o600);
    expect(proc.stdout()).toContain('generated a master key into the data directory');
    const ready = await fetch(`http://127.0.0.1:${proc.port}/readyz`);
    expect(await ready.json()).toEqual({
      status: 'ready',
      checks: { database: 'ok', migrations: 'ok', queue: 'ok' },
    });
    const live = await fetch(`http://127.0.0.1:${proc.port}/healthz`);
    expect(((await live.json()) as { status: string }).status).toBe('ok');

    // A second process on the same data directory is refused, and says by whom.
    const second = spawnCli(['serve'], { CLOUDPI_DATA_DIR: dir }, await freePort());
    const { code } = await second.exited;
    expect(code).toBe(1);
    expect(second.stderr()).toContain(`is in use by process ${proc.child.pid}`);

    // SIGTERM: the request in flight still gets its answer, then the process exits cleanly.
    const slow = slowRequest(proc.port);
    await new Promise((r) => setTimeout(r, 200));
    proc.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    const draining = await fetch(`http://127.0.0.1:${proc.port}/readyz`).then(
      (r) => r.status,
      () => 'refused',
    );
    expect(draining).toBe('refused');
    slow.finish();
    expect(await slow.response).toBe(401);
    expect(await proc.exited).toEqual({ code: 0, signal: null });
    expect(proc.stdout()).toContain('shut down cleanly');
    expect(existsSync(path.join(dir, 'pglite', 'cloudpi.lock'))).toBe(false);
  });

  it('restarts on the same data directory with the same key', async () => {
    const { proc, dir } = await start();
    proc.child.kill('SIGTERM');
    await proc.exited;
    const again = spawnCli(['serve'], { CLOUDPI_DATA_DIR: dir }, await freePort());
    procs.push(again);
    await waitUntilReady(again, 90_000);
    expect(again.stdout()).not.toContain('generated a master key');
    again.child.kill('SIGTERM');
    expect((await again.exited).code).toBe(0);
  });

  it('exits at once on a second SIGTERM', async () => {
    const { proc } = await start({ CLOUDPI_SHUTDOWN_TIMEOUT_MS: '60000' });
    const slow = slowRequest(proc.port);
    slow.response.catch(() => {});
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    proc.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    proc.child.kill('SIGTERM');
    const { code } = await proc.exited;
    expect(code).toBe(130);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(proc.stdout()).toContain('second signal: exiting at once');
  });

  it('refuses to start on a wrong value and names the variable', async () => {
    const proc = spawnCli(['serve'], { CLOUDPI_DATA_DIR: tempDir(), PORT: 'eighty' });
    const { code } = await proc.exited;
    expect(code).toBe(1);
    expect(proc.stderr()).toContain('PORT: expected a whole number from 0 to 65535, got "eighty"');
  });

  it('refuses PostgreSQL without master keys', async () => {
    const proc = spawnCli(['serve'], { DATABASE_URL: 'postgres://localhost:5432/cloudpi' });
    const { code } = await proc.exited;
    expect(code).toBe(1);
    expect(proc.stderr()).toContain('CLOUDPI_MASTER_KEYS: required when DATABASE_URL is set');
  });
});

describe.skipIf(!TEST_DATABASE_URL)('cloudpi serve (PostgreSQL)', () => {
  let fresh: FreshDatabase;
  afterAll(async () => {
    await fresh?.drop();
  });

  it('migrates and becomes ready; two replicas share one database', async () => {
    fresh = await freshDatabase('postgres');
    const env = {
      DATABASE_URL: (fresh.target as { url: string }).url,
      CLOUDPI_MASTER_KEYS: keyEntry(masterKey('ci')),
      CLOUDPI_DATA_DIR: fresh.dir,
    };
    // Started together: both race to migrate; the advisory lock makes one wait for the other.
    const a = spawnCli(['serve'], env, await freePort());
    const b = spawnCli(['serve'], env, await freePort());
    try {
      await Promise.all([waitUntilReady(a), waitUntilReady(b)]);
      expect(existsSync(path.join(fresh.dir, 'master.key'))).toBe(false);
      for (const p of [a, b]) p.child.kill('SIGTERM');
      expect((await a.exited).code).toBe(0);
      expect((await b.exited).code).toBe(0);
    } finally {
      a.child.kill('SIGKILL');
      b.child.kill('SIGKILL');
    }
  });
});
