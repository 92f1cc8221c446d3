import { createHash } from 'node:crypto';
import type { Database } from '../../src/db/connection.js';

/** Every table of the schema that holds domain state, children before parents. */
export const TABLES = [
  'fixed_ips',
  'virtual_interfaces',
  'floating_ips',
  'api_tokens',
  'quotas',
  'networks',
  'hosts',
  'security_group_instance_association',
  'security_group_rules',
  'security_group_default_rules',
  'security_groups',
] as const;

export interface Snapshot {
  counts: Record<string, number>;
  /** sha256 over every row of every table, in id order, keys sorted. */
  hash: string;
}

function canonicalRow(row: Record<string, unknown>): string {
  return JSON.stringify(
    Object.keys(row)
      .sort()
      .map((key) => {
        const value = row[key];
        return [key, value instanceof Date ? value.toISOString() : typeof value === 'bigint' ? String(value) : value];
      }),
  );
}

/** Row counts and a hash of all rows: two equal snapshots mean nothing was written in between. */
export async function snapshot(db: Database): Promise<Snapshot> {
  const counts: Record<string, number> = {};
  const hash = createHash('sha256');
  for (const table of TABLES) {
    const rows = (await db.knex(table).select('*').orderBy('id')) as Record<string, unknown>[];
    counts[table] = rows.length;
    for (const row of rows) hash.update(`${table} ${canonicalRow(row)}\n`);
  }
  return { counts, hash: hash.digest('hex') };
}

/** Empties every table, so one migrated database can serve many tests. */
export async function wipe(db: Database): Promise<void> {
  // One transaction: one commit (and one fsync on MariaDB) instead of one per table.
  await db.knex.transaction(async (trx) => {
    for (const table of TABLES) await trx(table).delete();
  });
}
