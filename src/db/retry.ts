import { Unavailable } from '../errors.js';

/** Errors after which the same transaction, run again, may succeed. */
export function isRetryable(error: unknown): boolean {
  const code = (error as { code?: unknown; errno?: unknown } | null)?.code;
  return (
    code === 'ER_LOCK_DEADLOCK' || // also Galera's certification failure
    code === 'ER_LOCK_WAIT_TIMEOUT' ||
    code === 'ER_LOCK_ABORTED' ||
    code === 'SQLITE_BUSY' ||
    code === 'SQLITE_BUSY_SNAPSHOT'
  );
}

export interface RetryOptions {
  attempts?: number;
  baseDelayMs?: number;
}

/**
 * Runs `work` again when the database aborted it for a conflict, with bounded,
 * jittered back-off; after the last attempt the caller gets an Unavailable, never a raw
 * driver error.
 */
export async function withRetry<T>(work: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 8;
  const base = options.baseDelayMs ?? 5;
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!isRetryable(error)) throw error;
      if (attempt >= attempts) {
        throw new Unavailable(`database conflict persisted after ${attempts} attempts: ${(error as Error).message}`);
      }
      const delay = base * 2 ** (attempt - 1) * (0.5 + Math.random());
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
