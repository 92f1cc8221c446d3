/**
 * Concurrent allocation.allocate calls in one process share transactions
 * (src/managers/batcher.ts): these check that sharing never changes what a caller
 * gets, also when one member of a batch fails.
 */
import { describe, expect, it } from 'vitest';
import { claimFixedIps } from '../../src/db/fixedIps.js';
import { Batcher } from '../../src/managers/batcher.js';
import { createManager } from '../../src/managers/registry.js';
import { BACKENDS, freshDatabase, testConfig } from '../support/databases.js';
import { RecordingHost } from '../support/recordingHost.js';

describe('Batcher', () => {
  /** A batcher whose work records its batches and finishes when the test says so. */
  function recording(options = { maxBatch: 3, maxConcurrent: 1 }) {
    const batches: number[][] = [];
    const gates: (() => void)[] = [];
    const batcher = new Batcher<number, string>(async (items) => {
      batches.push(items);
      await new Promise<void>((resolve) => gates.push(resolve));
      if (items.includes(13) && items.length > 1) throw new Error('batch refused');
      if (items.includes(13)) throw new Error('13 refused');
      return items.map((item) => `done ${item}`);
    }, options);
    const openAll = async () => {
      for (let round = 0; round < 20 && gates.length > 0; round++) {
        for (const open of gates.splice(0)) open();
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    };
    return { batcher, batches, openAll };
  }

  const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

  it('starts a batch one turn after its first call, with every call of that turn, and coalesces the calls that arrive meanwhile', async () => {
    const { batcher, batches, openAll } = recording();
    const first = [1, 2].map((item) => batcher.submit(item));
    expect(batches).toEqual([]);
    await nextTurn();
    expect(batches).toEqual([[1, 2]]);
    const later = [3, 4, 5, 6].map((item) => batcher.submit(item));
    await openAll();
    expect(await Promise.all([...first, ...later])).toEqual(['done 1', 'done 2', 'done 3', 'done 4', 'done 5', 'done 6']);
    expect(batches).toEqual([[1, 2], [3, 4, 5], [6]]);
  });

  it('a lone call runs in the next turn, without waiting for others', async () => {
    const { batcher, batches, openAll } = recording();
    const lone = batcher.submit(7);
    await nextTurn();
    expect(batches).toEqual([[7]]);
    await openAll();
    expect(await lone).toBe('done 7');
  });

  it('runs at most maxConcurrent batches at once', async () => {
    const { batcher, batches, openAll } = recording({ maxBatch: 2, maxConcurrent: 2 });
    const results = [1, 2, 3, 4, 5].map((item) => batcher.submit(item));
    await nextTurn();
    expect(batches).toEqual([
      [1, 2],
      [3, 4],
    ]);
    await openAll();
    await Promise.all(results);
    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('retries a failed batch item by item: each caller gets its own result or error', async () => {
    const { batcher, batches, openAll } = recording();
    const first = batcher.submit(1);
    await nextTurn();
    const rest = [12, 13, 14].map((item) =>
      batcher.submit(item).then(
        (value) => value,
        (error: Error) => error.message,
      ),
    );
    await openAll();
    expect(await first).toBe('done 1');
    expect(await Promise.all(rest)).toEqual(['done 12', '13 refused', 'done 14']);
    expect(batches).toEqual([[1], [12, 13, 14], [12], [13], [14]]);
  });

  it('runs a failed batch again beside the next batch: the callers queued behind it do not wait for its items', async () => {
    const { batcher, batches, openAll } = recording({ maxBatch: 3, maxConcurrent: 1 });
    const first = batcher.submit(1);
    await nextTurn();
    const failing = [12, 13, 14].map((item) =>
      batcher.submit(item).then(
        (value) => value,
        (error: Error) => error.message,
      ),
    );
    const behind = [5, 6].map((item) => batcher.submit(item));
    await openAll();
    expect(await Promise.all([first, ...failing, ...behind])).toEqual(['done 1', 'done 12', '13 refused', 'done 14', 'done 5', 'done 6']);
    // [5, 6] starts as soon as [12, 13, 14] has failed, before its items run alone.
    expect(batches).toEqual([[1], [12, 13, 14], [5, 6], [12], [13], [14]]);
  });
});

const instance = (n: number) => `00000000-0000-4000-8000-${n.toString().padStart(12, '0')}`;

describe.each(BACKENDS)('concurrent allocations in one process on %s', (backend) => {
  it('the same instance twice in one batch: one VIF, one address, the same answer to both', async () => {
    const { db, close } = await freshDatabase(backend);
    try {
      const manager = createManager({
        db,
        config: testConfig({ network_manager: 'flatdhcp', flat_interface: 'eth1' }),
        host: new RecordingHost(),
      });
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
    } finally {
      await close();
    }
  });

  it('a taken MAC is retried with new ones, in a batch as alone', async () => {
    const { db, close } = await freshDatabase(backend);
    try {
      // The first four MACs drawn are all the same: the first VIF gets it, and every
      // insert that draws it again (a lone one or a batch's multi-row one) collides.
      let drawn = 0;
      const newMac = () => {
        drawn++;
        return drawn <= 4 ? 'fa:16:3e:00:00:01' : `fa:16:3e:00:01:${drawn.toString(16).padStart(2, '0')}`;
      };
      const manager = createManager({
        db,
        config: testConfig({ network_manager: 'flatdhcp', flat_interface: 'eth1' }),
        host: new RecordingHost(),
        newMac,
      });
      await manager.networks.create({ label: 'private', fixedRangeV4: '10.0.0.0/24' });
      const infos = await Promise.all(
        [4, 5, 6, 7, 8, 9].map((n) => manager.allocation.allocate({ instanceUuid: instance(n), projectId: 'p1', host: 'compute1' })),
      );
      expect(new Set(infos.map((info) => info.network_info[0]!.address)).size).toBe(6);
      expect(await db.knex('virtual_interfaces').count({ n: '*' })).toEqual([{ n: 6 }]);
    } finally {
      await close();
    }
  });

  it('a claim told to skip starts that far into the free list (MariaDB), or at its head when too few rows lie beyond', async () => {
    const { db, close } = await freshDatabase(backend);
    try {
      const manager = createManager({
        db,
        config: testConfig({ network_manager: 'flatdhcp', flat_interface: 'eth1' }),
        host: new RecordingHost(),
      });
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
      const skipped = await db.knex.transaction((trx) => claimFixedIps(trx, network!.id, [claim(1), claim(2)], { skip: 5 }));
      // SQLite has one writer and no conflicts to spread: it always claims from the head.
      expect(skipped.map((row) => row.address)).toEqual(backend === 'mariadb' ? free.slice(5, 7) : free.slice(0, 2));
      const left = free.filter((address) => !skipped.some((row) => row.address === address));
      const fromHead = await db.knex.transaction((trx) => claimFixedIps(trx, network!.id, [claim(3), claim(4)], { skip: left.length - 1 }));
      expect(fromHead.map((row) => row.address)).toEqual(left.slice(0, 2));
    } finally {
      await close();
    }
  });
});
