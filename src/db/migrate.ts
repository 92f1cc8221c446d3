import type { Knex } from 'knex';
import * as initial from '../../migrations/001_initial.js';
import * as cluster from '../../migrations/002_cluster.js';
import * as wake from '../../migrations/003_wake.js';
import * as securityGroups from '../../migrations/004_security_groups.js';
import type { Database } from './connection.js';

interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

/** Listed here, not discovered on disk, so the same code runs from src/ and dist/. */
const MIGRATIONS: [string, Migration][] = [
  ['001_initial', initial],
  ['002_cluster', cluster],
  ['003_wake', wake],
  ['004_security_groups', securityGroups],
];

const source: Knex.MigrationSource<[string, Migration]> = {
  getMigrations: async () => MIGRATIONS,
  getMigrationName: ([name]) => name,
  getMigration: async ([, migration]) => migration,
};

const CONFIG: Knex.MigratorConfig = { migrationSource: source, tableName: 'novanet_migrations' };

/** `db sync`: applies every pending migration; returns the schema version reached. */
export async function syncSchema(db: Database): Promise<number> {
  await db.knex.migrate.latest(CONFIG);
  return schemaVersion(db);
}

/** `db version`: the number of the newest applied migration (0 for an empty database). */
export async function schemaVersion(db: Database): Promise<number> {
  const [completed] = (await db.knex.migrate.list(CONFIG)) as [{ name: string }[], unknown];
  return Math.max(0, ...completed.map((entry) => Number.parseInt(entry.name, 10)));
}

export const LATEST_SCHEMA_VERSION = MIGRATIONS.length;
