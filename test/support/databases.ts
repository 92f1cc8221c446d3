import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/options.js';
import { type Database, openDatabase } from '../../src/db/connection.js';
import { syncSchema } from '../../src/db/migrate.js';
import { createTestDatabase, mysqlServerUrl } from './mariadb.js';

export type Backend = 'sqlite' | 'mariadb';
export const BACKENDS: Backend[] = ['sqlite', 'mariadb'];

export interface TestDatabase {
  db: Database;
  url: string;
  close(): Promise<void>;
}

/** A fresh, migrated database of either backend; each call is isolated from the others. */
export async function freshDatabase(backend: Backend, options: { maxPoolSize?: number } = {}): Promise<TestDatabase> {
  if (backend === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'novanet-sqlite-'));
    const url = `sqlite://${join(dir, 'novanet.sqlite')}`;
    const db = openDatabase(url);
    await syncSchema(db);
    return {
      db,
      url,
      close: async () => {
        await db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const created = await createTestDatabase(mysqlServerUrl(), 'novanet_t');
  const db = openDatabase(created.url, options);
  await syncSchema(db);
  return {
    db,
    url: created.url,
    close: async () => {
      await db.close();
      await created.drop();
    },
  };
}

/** Defaults plus overrides, without reading /etc or the environment. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  const env: Record<string, string> = {
    NOVANET_HOST: 'nethost',
    NOVANET_MY_IP: '192.0.2.10',
    NOVANET_STATE_PATH: '/tmp/novanet-test',
    NOVANET_WAKE_ADDRESS: '127.0.0.1',
    NOVANET_WAKE_PORT: '0',
  };
  for (const [name, value] of Object.entries(overrides)) env[`NOVANET_${name.toUpperCase()}`] = value;
  return loadConfig({ file: '/dev/null', env, warn: () => undefined });
}
