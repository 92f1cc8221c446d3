import { Unavailable } from '../errors.js';

/** Aborted for a conflict: the database rolled the transaction back. */
const CONFLICTS = new Set([
  'ER_LOCK_DEADLOCK', // 1213; also Galera's certification failure at commit
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_LOCK_ABORTED',
  'SQLITE_BUSY',
  'SQLITE_BUSY_SNAPSHOT',
]);

/**
 * The server went away (a Galera node stopped or left the cluster): the pool drops the
 * dead connection and opens the next one on a node that answers (connection.ts). A
 * commit whose reply was lost may run twice; allocation is idempotent per instance
 * (docs/decisions.md, Data), so a second run finds the first one's result.
 */
const CONNECTION_LOST = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'ER_SERVER_SHUTDOWN', // 1053
  'ER_UNKNOWN_COM_ERROR', // 1047, "WSREP has not yet prepared node for application use"
]);

/** MariaDB's ER_CONNECTION_KILLED (ending client threads at shutdown): mysql2 has no name for it. */
const CONNECTION_KILLED = 1927;

function codeOf(error: unknown): { code?: unknown; errno?: unknown } {
  return (error ?? {}) as { code?: unknown; errno?: unknown };
}

/** The server is gone or not serving: another node may answer the same statement. */
export function isConnectionLost(error: unknown): boolean {
  const { code, errno } = codeOf(error);
  return (typeof code === 'string' && CONNECTION_LOST.has(code)) || errno === CONNECTION_KILLED;
}

/** Errors after which the same transaction, run again, may succeed. */
export function isRetryable(error: unknown): boolean {
  const { code } = codeOf(error);
  return (typeof code === 'string' && CONFLICTS.has(code)) || isConnectionLost(error);
}

export interface RetryOptions {
  attempts?: number;
  baseDelayMs?: number;
}

/**
 * Runs `work` again when the database aborted it for a conflict, with bounded,
 * jittered back-off (`work` is told which attempt it is); after the last attempt the caller gets an Unavailable, never a raw
 * driver error.
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
