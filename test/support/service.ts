import { afterAll, beforeAll } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { type Service, type StartOptions, startService } from '../../src/main.js';
import { type DatabaseKind, type FreshDatabase, freshDatabase } from './databases.js';
import { keyEntry, masterKey } from './keys.js';
import { memoryLogger } from './logs.js';

export interface RunningService {
  service: Service;
  fresh: FreshDatabase;
  logs: () => string;
  url: (path: string) => string;
}

/** The real service (HTTP, jobs, database) in this process on a free port, for one describe block. */
export function useService(
  kind: DatabaseKind,
  env: Record<string, string> = {},
  options: Omit<StartOptions, 'logger'> = {},
): RunningService {
  const running = {} as RunningService;
  beforeAll(async () => {
    running.fresh = await freshDatabase(kind);
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      CLOUDPI_DATA_DIR: running.fresh.dir,
      CLOUDPI_MASTER_KEYS: keyEntry(masterKey('test')),
      ...(running.fresh.target.kind === 'postgres' ? { DATABASE_URL: running.fresh.target.url } : {}),
      ...env,
    });
    const { logger, text } = memoryLogger('info');
    running.logs = text;
    running.service = await startService(config, { ...options, logger });
    running.url = (path) => `${running.service.url}${path}`;
  });
  afterAll(async () => {
    await running.service?.close();
    await running.fresh?.drop();
  });
  return running;
}
