import { z } from 'zod/v4';
import { defineJob } from './queue.js';

/** Re-seal stored secrets with the current master key (queued at start-up when some are not). */
export const rotateSecretsJob = defineJob({
  name: 'secrets.rotate',
  schema: z.object({ reason: z.string().max(200) }),
  retryLimit: 3,
  expireInSeconds: 600,
});
