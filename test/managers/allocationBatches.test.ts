/**
 * Concurrent allocation.allocate calls in one process share transactions
 * (src/managers/allocationBatches.ts over src/managers/batcher.ts): these check that
 * sharing never changes what a caller gets, also when one member of a batch fails.
 */
import { describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/connection.js';
import { claimFixedIps } from '../../src/db/fixedIps.js';
import type { NetworkManager } from '../../src/managers/manager.js';
import { createManager } from '../../src/managers/registry.js';
import { BACKENDS, freshDatabase, testConfig } from '../support/databases.js';
import { instance } from '../support/managers.js';
import { RecordingHost } from '../support/recordingHost.js';
import { withFixture } from '../support/useFixture.js';

describe.each(BACKENDS)('concurrent allocations in one process on %s', (backend) => {
  /** A FlatDHCP manager on a fresh database of `backend` for one test; the database goes afterwards, also on failure. */
  function withManager(use: (manager: NetworkManager, db: Database) => Promise<void>, newMac?: () => string): Promise<void> {
    return withFixture(
      () => freshDatabase(backend),
      ({ db }) => {
        const config = testConfig({ network_manager: 'flatdhcp', flat_interface: 'eth1' });
        return use(createManager({ db, config, host: new RecordingHost(), ...(newMac ? { newMac } : {}) }), db);
      },
    );
  }

  it('the same instance twice in one batch: one VIF, one address, the same answer to both', async () => {
    await withManager(async (manager, db) => {
      await manager.networks.create({ label: 'private', fixedRangeV4: '10.0.0.0/24' });
      const calls = [1, 2, 1, 3, 1].map((n) =>
        manager.allocation.allocate({ instanceUuid: instance(n), projectId: 'p1', host: 'compute1' }),
      );
      const [a, b, again, c, third] = await Promise.all(calls);
      expect(again).toEqual(a);
      expect(third).toEqual(a);
      const addresses = [a, b, c].map((info) => info!.network_info[0]!.network.subnets[0]!.ips[0]!.address);
      expect(new Set(addresses).size).toBe(3);
      const vifs = (await db.knex('virtual_interfaces').select('instance_uuid')) as { instance_uuid: string }[];
      expect(vifs.map((vif) => vif.instance_uuid).sort()).toEqual([instance(1), instance(2), instance(3)]);
      expect(await db.knex('fixed_ips').where('allocated', 1).count({ n: '*' })).toEqual([{ n: 3 }]);
    });
  });

  it('a taken MAC is retried with new ones, in a batch as alone', async () => {
    // The first four MACs drawn are all the same: the first VIF gets it, and every
    // insert that draws it again (a lone one or a batch's multi-row one) collides.
    let drawn = 0;
    const newMac = () => {
      drawn++;
      return drawn <= 4 ? 'fa:16:3e:00:00:01' : `fa:16:3e:00:01:${drawn.toString(16).padStart(2, '0')}`;
    };
    await withManager(async (manager, db) => {
      await manager.networks.create({ label: 'private', fixedRangeV4: '10.0.0.0/24' });
      const infos = await Promise.all(
        [4, 5, 6, 7, 8, 9].map((n) => manager.allocation.allocate({ instanceUuid: instance(n), projectId: 'p1', host: 'compute1' })),
      );
      expect(new Set(infos.map((info) => info.network_info[0]!.address)).size).toBe(6);
      expect(await db.knex('virtual_interfaces').count({ n: '*' })).toEqual([{ n: 6 }]);
    }, newMac);
  });

  it('a claim told to skip starts that far into the free list (MariaDB), or at its head when too few rows lie beyond', async () => {
    await withManager(async (manager, db) => {
      const [network] = await manager.networks.create({ label: 'private', fixedRangeV4: '10.0.0.0/27', networkSize: 32 });
      const free = (
        (await db
          .knex('fixed_ips')
          .where({ network_id: network!.id, reserved: 0 })
          .whereNull('instance_uuid')
          .orderBy('updated_at')
          .orderBy('id')
          .select('address')) as { address: string }[]
      ).map((row) => row.address);
      const claim = (n: number) => ({ instanceUuid: instance(n), virtualInterfaceId: n, now: new Date() });
      const skipped = await db.knex.transaction((trx) => claimFixedIps(trx, network!, [claim(1), claim(2)], { skip: 5 }));
      // SQLite has one writer and no conflicts to spread: it always claims from the head.
      expect(skipped.map((row) => row.address)).toEqual(backend === 'mariadb' ? free.slice(5, 7) : free.slice(0, 2));
      const left = free.filter((address) => !skipped.some((row) => row.address === address));
      const fromHead = await db.knex.transaction((trx) => claimFixedIps(trx, network!, [claim(3), claim(4)], { skip: left.length - 1 }));
      expect(fromHead.map((row) => row.address)).toEqual(left.slice(0, 2));
    });
  });
});
