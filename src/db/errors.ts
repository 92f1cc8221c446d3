/**
 * What a database driver's error means, for whoever must decide what to do with it: run
 * the transaction again, answer 503 instead of 500, or tell an operator to sync the
 * schema. Written once: the API, the CLI and the retry loop all ask here.
 */

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
 * dead connection and opens the next one on a node that answers (connection.ts).
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

/** No connection can be had at all: the server is unknown, full, refuses us, or the file cannot be opened. */
const CANNOT_CONNECT = new Set(['ENOTFOUND', 'ER_CON_COUNT_ERROR', 'ER_ACCESS_DENIED_ERROR', 'ER_BAD_DB_ERROR', 'SQLITE_CANTOPEN']);

const DUPLICATE_KEY = new Set(['ER_DUP_ENTRY', 'SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY']);

interface DriverError {
  code?: unknown;
  errno?: unknown;
  name?: unknown;
  syscall?: unknown;
  message?: unknown;
}

function fieldsOf(error: unknown): DriverError {
  return (typeof error === 'object' && error !== null ? error : {}) as DriverError;
}

/** The server is gone or not serving: another node may answer the same statement. */
export function isConnectionLost(error: unknown): boolean {
  const { code, errno } = fieldsOf(error);
  return (typeof code === 'string' && CONNECTION_LOST.has(code)) || errno === CONNECTION_KILLED;
}

/**
 * A row another transaction wrote meanwhile (a unique key it took first): the same
 * transaction, run again, finds that row and goes on from there.
 */
export class WrittenMeanwhile extends Error {}

/** Errors after which the same transaction, run again, may succeed. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof WrittenMeanwhile) return true;
  const { code } = fieldsOf(error);
  return (typeof code === 'string' && CONFLICTS.has(code)) || isConnectionLost(error);
}

/** The database cannot be reached (or not by us): an outage to report, not a bug in novanet. */
export function isDatabaseOutage(error: unknown): boolean {
  const { code, name, syscall } = fieldsOf(error);
  if (isRetryable(error)) return true;
  if (typeof code === 'string' && CANNOT_CONNECT.has(code)) return true;
  // A unix socket that is not there: mysql2 reports the connect's ENOENT.
  if (code === 'ENOENT' && syscall === 'connect') return true;
  // KnexTimeoutError: no pool connection within acquireConnectionTimeout.
  return name === 'KnexTimeoutError';
}

/** The database answers but has no novanet tables: `db sync` was never run. */
export function isMissingSchema(error: unknown): boolean {
  const { code, message } = fieldsOf(error);
  return code === 'ER_NO_SUCH_TABLE' || (typeof message === 'string' && /no such table/.test(message));
}

/** A unique key refused the row. */
export function isDuplicateKey(error: unknown): boolean {
  const { code } = fieldsOf(error);
  return typeof code === 'string' && DUPLICATE_KEY.has(code);
}
