import type { Knex } from 'knex';
import type { Dialect } from './connection.js';

/** A knex instance or a transaction: every query function takes one explicitly. */
export type Queryable = Knex | Knex.Transaction;

export function dialectOf(q: Queryable): Dialect {
  // knex's dialect name, not the configured client: a Galera host list configures a class (connection.ts).
  return (q.client as { dialect: string }).dialect === 'mysql' ? 'mysql' : 'sqlite';
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

/** Rows per INSERT: larger batches gain nothing on MariaDB (bench/createNetwork.ts measures the insert). */
export const INSERT_BATCH = 1000;

/**
 * Inserts rows as multi-row INSERTs of INSERT_BATCH rows, built directly (knex's
 * builder costs more than the database at a million rows). Each row gives one value
 * per column, in order. Call inside a transaction: one commit for the whole range.
 */
export async function insertBatched(
  q: Queryable,
  table: string,
  columns: readonly string[],
  rows: Iterable<readonly Knex.RawBinding[]>,
  onProgress?: (inserted: number) => void,
): Promise<number> {
  const tuple = `(${columns.map(() => '?').join(', ')})`;
  const statements = new Map<number, string>();
  const sql = (count: number) => {
    let statement = statements.get(count);
    if (statement === undefined) {
      statement = `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${Array(count).fill(tuple).join(', ')}`;
      statements.set(count, statement);
    }
    return statement;
  };
  let bindings: Knex.RawBinding[] = [];
  let pending = 0;
  let inserted = 0;
  const flush = async () => {
    if (pending === 0) return;
    await q.raw(sql(pending), bindings);
    inserted += pending;
    bindings = [];
    pending = 0;
    onProgress?.(inserted);
  };
  for (const row of rows) {
    if (row.length !== columns.length) throw new Error(`insert into ${table}: ${row.length} values for ${columns.length} columns`);
    bindings.push(...row);
    pending += 1;
    if (pending === INSERT_BATCH) await flush();
  }
  await flush();
  return inserted;
}

/** Claims that find free rows locked by concurrent claimers look again this often. */
const CLAIM_ATTEMPTS = 20;

/**
 * The read half of a claim: up to `wanted` free rows, locked for this transaction.
 * `free()` builds the SELECT of free rows in claim order (a new builder each call).
 *
 * MySQL/MariaDB: FOR UPDATE SKIP LOCKED (MariaDB 10.6+, MySQL 8.0+), so concurrent
 * claimers each lock different rows instead of queueing on the same first one. Rows
 * locked by claimers that have not committed yet may still roll back, and a plain read
 * still sees them as free: then wait for them a little before giving up. SQLite has one
 * writer at a time: the transaction alone keeps claims apart. Throws `exhausted()`
 * when fewer rows than wanted are free. The caller then updates the rows it got,
 * conditionally, and checks the affected count.
 */
export async function lockFreeRows<T>(
  q: Queryable,
  free: () => Knex.QueryBuilder,
  wanted: number,
  exhausted: () => Error,
  options: { skip?: number } = {},
): Promise<T[]> {
  const locking = dialectOf(q) === 'mysql';
  // Past the first `skip` free rows, where another Galera node's claims are likely not
  // to be; from the head when too few of them are still there. Found by a plain read
  // and then locked by id: FOR UPDATE with OFFSET would lock the skipped rows too.
  if (locking && options.skip) {
    const ids = ((await free().clearSelect().select('id').offset(options.skip).limit(wanted)) as { id: number }[]).map((row) => row.id);
    const spread = ids.length === wanted ? ((await free().whereIn('id', ids).forUpdate().skipLocked()) as T[]) : [];
    if (spread.length === wanted) return spread;
  }
  let rows = (await (locking ? free().limit(wanted).forUpdate().skipLocked() : free().limit(wanted))) as T[];
  for (let attempt = 1; rows.length < wanted; attempt++) {
    const visible = locking ? ((await free().limit(wanted)) as unknown[]).length : rows.length;
    if (visible <= rows.length || attempt >= CLAIM_ATTEMPTS) throw exhausted();
    await new Promise((resolve) => setTimeout(resolve, attempt));
    rows = (await free().limit(wanted).forUpdate().skipLocked()) as T[];
  }
  return rows;
}
