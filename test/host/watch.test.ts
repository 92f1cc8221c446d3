/**
 * The watcher: what another process changed in the database reaches this host's
 * reconciler within a poll (the service polls every second).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NetworkWatcher } from '../../src/host/watch.js';
import type { NetworkManager } from '../../src/managers/manager.js';
import { createManager } from '../../src/managers/registry.js';
import { freshDatabase, type TestDatabase, testConfig } from '../support/databases.js';
import { RecordingHost } from '../support/recordingHost.js';

describe('NetworkWatcher', () => {
  let database: TestDatabase;
  let manager: NetworkManager;
  let here: RecordingHost;

  beforeEach(async () => {
    database = await freshDatabase('sqlite');
    // Another service (its own host layer, not ours) makes every change.
    manager = createManager({
      db: database.db,
      config: testConfig({ network_manager: 'flatdhcp', flat_interface: 'eth1', host: 'apihost' }),
      host: new RecordingHost(),
    });
    here = new RecordingHost();
  });
  afterEach(async () => {
    await database.close();
  });

  it('takes note at its first poll, then passes on network changes and deletions', async () => {
    const [network] = await manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24' });
    const watcher = new NetworkWatcher(database.db, here, 'compute2');
    expect(await watcher.poll()).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await manager.networks.modify({ uuid: network!.uuid }, { host: 'nethost' });
    expect(await watcher.poll()).toBe(1);
    expect(here.changes).toEqual([{ kind: 'network-updated', networkId: network!.id }]);
    expect(await watcher.poll()).toBe(0);
  });

  it("passes on this host's instances allocated and deallocated by another service (multi_host)", async () => {
    const [network] = await manager.networks.create({ label: 'mh', fixedRangeV4: '10.0.0.0/24', multiHost: true });
    const watcher = new NetworkWatcher(database.db, here, 'compute2');
    await watcher.poll();
    const boot = (n: number, host: string) =>
      manager.allocation.allocate({ instanceUuid: `abababab-0000-4000-8000-00000000000${n}`, projectId: 'p1', host });
    // Another host's instance is not this host's business.
    await boot(1, 'compute1');
    expect(await watcher.poll()).toBe(0);
    await boot(2, 'compute2');
    expect(await watcher.poll()).toBe(1);
    expect(here.changes).toEqual([{ kind: 'network-updated', networkId: network!.id }]);
    here.clear();
    await manager.allocation.deallocate('abababab-0000-4000-8000-000000000002');
    expect(await watcher.poll()).toBe(1);
    expect(here.changes).toEqual([{ kind: 'network-updated', networkId: network!.id }]);
  });
});

describe('NetworkWatcher and floating IPs', () => {
  it('passes on each floating IP changed by another service once', async () => {
    await withFloatingWorld('apihost', async (database, manager) => {
      const here = new RecordingHost();
      const watcher = new NetworkWatcher(database.db, here, 'nethost');
      expect(await watcher.poll()).toBe(0);
      const { address } = await manager.floating.allocate('p1');
      here.clear();
      await manager.floating.associate({ address, instanceUuid: INSTANCE, actor: { projectId: 'p1' } });
      await watcher.poll();
      expect(here.changes).toContainEqual({ kind: 'floating-updated', address });
      here.clear();
      expect(await watcher.poll()).toBe(0);
      await manager.floating.disassociate(address, { projectId: 'p1' });
      await watcher.poll();
      expect(here.changes).toEqual([{ kind: 'floating-updated', address }]);
    });
  });

  it("leaves out rows that are not this host's, before or after, when the host layer says what it holds", async () => {
    // This service's own manager: the association claims the network for this host.
    await withFloatingWorld('nethost', async (database, manager) => {
      const here = new HoldingHost();
      const watcher = new NetworkWatcher(database.db, here, 'nethost');
      await watcher.poll();
      const floatingChanges = () => here.changes.filter((change) => change.kind === 'floating-updated');
      // Allocated to a project: bound nowhere, held nowhere.
      const { address } = await manager.floating.allocate('p1');
      await watcher.poll();
      expect(floatingChanges()).toEqual([]);
      // Associated with this host: passed on.
      await manager.floating.associate({ address, instanceUuid: INSTANCE, actor: { projectId: 'p1' } });
      await watcher.poll();
      expect(floatingChanges()).toEqual([{ kind: 'floating-updated', address }]);
      here.clear();
      // Disassociated while held here: passed on, to be unbound.
      here.held.add(address);
      await manager.floating.disassociate(address, { projectId: 'p1' });
      await watcher.poll();
      expect(floatingChanges()).toEqual([{ kind: 'floating-updated', address }]);
      here.clear();
      // Released once unbound: nobody's business any more.
      here.held.delete(address);
      await manager.floating.release(address, { projectId: 'p1' });
      await watcher.poll();
      expect(floatingChanges()).toEqual([]);
    });
  });
});

/** A host layer that also says which floating IPs it has bound, as the reconciler does. */
class HoldingHost extends RecordingHost {
  readonly held = new Set<string>();

  holdsFloating(address: string): boolean {
    return this.held.has(address);
  }
}

const INSTANCE = 'abababab-0000-4000-8000-000000000009';

/** A fresh database with a network, a floating range and one instance (INSTANCE), made through a manager of host `host`. */
async function withFloatingWorld(host: string, work: (database: TestDatabase, manager: NetworkManager) => Promise<void>): Promise<void> {
  const database = await freshDatabase('sqlite');
  try {
    const manager = createManager({
      db: database.db,
      config: testConfig({ network_manager: 'flatdhcp', flat_interface: 'eth1', host }),
      host: new RecordingHost(),
    });
    await manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24' });
    await manager.floating.createRange('203.0.113.0/29');
    await manager.allocation.allocate({ instanceUuid: INSTANCE, projectId: 'p1', host: 'compute1' });
    await work(database, manager);
  } finally {
    await database.close();
  }
}
