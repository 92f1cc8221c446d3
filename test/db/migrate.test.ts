/**
 * Schema upgrades keep what is there: a database made by an earlier release (schema 1,
 * before the hosts table) reaches the latest version with `db sync`, its rows intact.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as initial from '../../migrations/001_initial.js';
import { type Database, openDatabase } from '../../src/db/connection.js';
import { LATEST_SCHEMA_VERSION, schemaVersion, syncSchema } from '../../src/db/migrate.js';
import { createManager } from '../../src/managers/registry.js';
import { BACKENDS, type Backend, testConfig } from '../support/databases.js';
import { createTestDatabase, mysqlServerUrl } from '../support/mariadb.js';
import { RecordingHost } from '../support/recordingHost.js';

/** An empty database of `backend`, not migrated. */
async function emptyDatabase(backend: Backend): Promise<{ db: Database; close(): Promise<void> }> {
  if (backend === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'novanet-migrate-'));
    const db = openDatabase(`sqlite://${join(dir, 'novanet.sqlite')}`);
    const close = async () => {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    };
    return { db, close };
  }
  const created = await createTestDatabase(mysqlServerUrl(), 'novanet_migrate');
  const db = openDatabase(created.url);
  const close = async () => {
    await db.close();
    await created.drop();
  };
  return { db, close };
}

describe.each(BACKENDS)('schema upgrades on %s', (backend) => {
  it('takes a schema-1 database to the latest version, keeping its networks', async () => {
    const { db, close } = await emptyDatabase(backend);
    try {
      // Schema 1 as release 0.1.0 left it: the first migration alone, recorded as knex records it.
      await initial.up(db.knex);
      await db.knex.schema.createTable('novanet_migrations', (table) => {
        table.increments('id');
        table.string('name');
        table.integer('batch');
        table.datetime('migration_time');
      });
      await db.knex('novanet_migrations').insert({ name: '001_initial', batch: 1, migration_time: new Date() });
      await db.knex.schema.createTable('novanet_migrations_lock', (table) => {
        table.increments('index');
        table.integer('is_locked');
      });
      await db.knex('novanet_migrations_lock').insert({ is_locked: 0 });
      expect(await schemaVersion(db)).toBe(1);
      const manager = createManager({
        db,
        config: testConfig({ network_manager: 'flatdhcp', flat_interface: 'eth1' }),
        host: new RecordingHost(),
      });
      const [network] = await manager.networks.create({ label: 'kept', fixedRangeV4: '10.0.0.0/28', networkSize: 16 });

      expect(await syncSchema(db)).toBe(LATEST_SCHEMA_VERSION);
      expect(LATEST_SCHEMA_VERSION).toBe(4);
      expect((await manager.networks.get({ uuid: network!.uuid })).label).toBe('kept');
      expect(await manager.securityGroups.list({ projectId: 'p1' }, { projectId: 'p1' })).toMatchObject([{ group: { name: 'default' } }]);
      expect(await manager.hosts.list()).toEqual([]);
    } finally {
      await close();
    }
  });
});
