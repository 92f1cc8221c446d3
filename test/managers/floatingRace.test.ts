/**
 * Floating-IP allocation under concurrency on MariaDB: two managers, each with its own
 * connection pool (two services on one database), allocate from one pool at once.
 * No address may be handed out twice, and the losers get NoMoreFloatingIps.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/db/connection.js';
import { NoMoreFloatingIps, QuotaExceeded } from '../../src/errors.js';
import { createManager } from '../../src/managers/registry.js';
import { freshDatabase, type TestDatabase, testConfig } from '../support/databases.js';
import { RecordingHost } from '../support/recordingHost.js';

const ADDRESSES = 30; // a /27 less its network and broadcast addresses
const CALLERS = 40;

describe('floating IP allocation on mariadb', () => {
  let opened: TestDatabase | undefined;
  let second: Database | undefined;

  afterEach(async () => {
    await second?.close();
    await opened?.close();
  });

  /** Two services, each with its own pool of 4 connections, on one fresh database holding the /27 pool; and that database. */
  async function twoServices(quotaFloatingIps: string) {
    opened = await freshDatabase('mariadb', { maxPoolSize: 4 });
    second = openDatabase(opened.url, { maxPoolSize: 4 });
    const config = testConfig({ network_manager: 'flatdhcp', flat_interface: 'eth1', quota_floating_ips: quotaFloatingIps });
    const managers = [opened.db, second].map((db) => createManager({ db, config, host: new RecordingHost(), log: () => undefined }));
    await managers[0]!.floating.createRange('198.51.100.0/27');
    return { managers, db: opened.db };
  }

  it('never hands out one address twice when two services race for one pool', async () => {
    const { managers, db } = await twoServices('-1');

    const results = await Promise.allSettled(
      Array.from({ length: CALLERS }, (_, n) => managers[n % 2]!.floating.allocate(`project-${n % 7}`)),
    );

    const won = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value.address] : []));
    const lost = results.flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
    expect(won.length).toBe(ADDRESSES);
    expect(new Set(won).size).toBe(ADDRESSES);
    expect(lost.every((reason) => reason instanceof NoMoreFloatingIps)).toBe(true);
    const rows = (await db.knex('floating_ips').whereNotNull('project_id').select('address')) as { address: string }[];
    expect(rows.map((row) => row.address).sort()).toEqual([...won].sort());
  });

  it('holds a project to its quota when its allocations race at the limit', async () => {
    const { managers, db } = await twoServices('5');

    const results = await Promise.allSettled(Array.from({ length: 16 }, (_, n) => managers[n % 2]!.floating.allocate('racer')));

    const won = results.filter((result) => result.status === 'fulfilled');
    const lost = results.flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
    expect(won).toHaveLength(5);
    expect(
      lost.every((reason) => reason instanceof QuotaExceeded),
      String(lost.find((reason) => !(reason instanceof QuotaExceeded))),
    ).toBe(true);
    expect(await db.knex('floating_ips').where('project_id', 'racer').count({ n: '*' }).first()).toMatchObject({ n: 5 });
  });
});
