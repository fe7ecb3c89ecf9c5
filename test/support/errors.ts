import { isAppError } from '../../src/errors.js';

/** The AppError a promise rejects with, as plain data; fails when it resolves instead. */
export async function errorOf(
  promise: Promise<unknown>,
): Promise<{ code: string; message: string; details: Record<string, unknown> }> {
  try {
    await promise;
  } catch (error) {
    if (!isAppError(error)) throw error;
    return { code: error.code, message: error.message, details: error.details ?? {} };
  }
  throw new Error('expected the call to fail');
}
