import { expect } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { isAppError } from '../../src/errors.js';

/** The message with which loadConfig refuses `env`; fails the test when it accepts it. */
export function configProblems(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(isAppError(error) && error.code).toBe('CONFIG_INVALID');
    return (error as Error).message;
  }
  throw new Error('expected the configuration to be refused');
}
