import { Unavailable } from '../errors.js';
import { isRetryable } from './errors.js';

export interface RetryOptions {
  attempts?: number;
  baseDelayMs?: number;
}

/**
 * Runs `work` again when the database aborted it for a conflict or lost its server,
 * with bounded, jittered back-off (`work` is told which attempt it is); after the last
 * attempt the caller gets an Unavailable, never a raw driver error. A commit whose
 * reply was lost may run twice: allocation is idempotent per instance, so the second
 * run finds the first one's result.
 */
export async function withRetry<T>(work: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 8;
  const base = options.baseDelayMs ?? 5;
  for (let attempt = 1; ; attempt++) {
    try {
      return await work(attempt);
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
