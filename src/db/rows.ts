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

export interface ClaimSpec {
  table: string;
  /** Columns to set on the claimed row. */
  set: Record<string, Knex.RawBinding>;
  /** Raw SQL condition with `?` bindings selecting claimable rows. */
  where: string;
  bindings: Knex.RawBinding[];
  orderBy: string;
}

/**
 * Takes one row matching `where` by a single conditional UPDATE, returning its id or
 * undefined when none is left. No SELECT ... FOR UPDATE (broken on Galera, slow under
 * contention); the UPDATE re-checks the condition on the row it locks, so two callers
 * can never take the same row.
 */
export async function claimOne(q: Queryable, spec: ClaimSpec): Promise<number | undefined> {
  const columns = Object.keys(spec.set);
  const assignments = columns.map((column) => `${column} = ?`).join(', ');
  const values = columns.map((column) => spec.set[column]) as Knex.RawBinding[];
  if (dialectOf(q) === 'mysql') {
    // LAST_INSERT_ID(id) hands the claimed id back in the OK packet: no read-back query.
    const [result] = (await q.raw(
      `UPDATE ${spec.table} SET ${assignments}, id = LAST_INSERT_ID(id) WHERE ${spec.where} ORDER BY ${spec.orderBy} LIMIT 1`,
      [...values, ...spec.bindings],
    )) as [{ affectedRows: number; insertId: number }];
    return result.affectedRows === 1 ? result.insertId : undefined;
  }
  // SQLite has one writer at a time, so the subquery and the update cannot interleave.
  const rows = (await q.raw(
    `UPDATE ${spec.table} SET ${assignments} WHERE id = (SELECT id FROM ${spec.table} WHERE ${spec.where} ORDER BY ${spec.orderBy} LIMIT 1) RETURNING id`,
    [...values, ...spec.bindings],
  )) as { id: number }[];
  return rows[0]?.id;
}
