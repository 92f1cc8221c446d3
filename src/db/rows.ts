import type { Knex } from 'knex';
import { Dialect } from './connection.js';

/** A knex instance or a transaction: every query function takes one explicitly. */
export type Queryable = Knex | Knex.Transaction;

export function dialectOf(q: Queryable): Dialect {
  const client = String((q.client as { config: { client: unknown } }).config.client);
  return client.includes('mysql') ? 'mysql' : 'sqlite';
}

/** SQLite returns 0/1 and epoch milliseconds; MySQL returns 0/1 and Dates. */
export function toBool(value: unknown): boolean {
  return value === true || value === 1 || value === '1';
}

export function toDate(value: unknown): Date | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value;
  return new Date(value as number | string);
}

export function isDuplicateKey(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ER_DUP_ENTRY' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
