/**
 * Wakes: the service that took a change tells the hosts it concerns to poll now (one
 * datagram on loopback here), and nobody else; a woken host's poll never overlaps
 * another.
 */
import { createSocket } from 'node:dgram';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { recordBuilt, registerHost } from '../../src/db/hosts.js';
import type { HostChange } from '../../src/host/layer.js';
import { listenForWakes, type WakeListener, WakingHostLayer } from '../../src/host/wake.js';
import { NetworkWatcher } from '../../src/host/watch.js';
import type { NetworkManager } from '../../src/managers/manager.js';
import { createManager } from '../../src/managers/registry.js';
import { freshDatabase, type TestDatabase, testConfig } from '../support/databases.js';
import { RecordingHost } from '../support/recordingHost.js';

const WAKE = Buffer.from('novanet-wake\n');

function datagram(address: string, payload: Buffer): Promise<void> {
  const socket = createSocket('udp4');
  const colon = address.lastIndexOf(':');
  return new Promise((resolve, reject) =>
    socket.send(payload, Number(address.slice(colon + 1)), address.slice(0, colon), (error) => {
      socket.close();
      if (error) reject(error);
      else resolve();
    }),
  );
}

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('listenForWakes', () => {
  let listener: WakeListener | undefined;
  afterEach(async () => {
    await listener?.close();
    listener = undefined;
  });

  it('calls back for each wake, not for other datagrams, and spaces a burst out', async () => {
    let woken = 0;
    listener = await listenForWakes('127.0.0.1', 0, () => {
      woken += 1;
    });
    expect(listener.address).toMatch(/^127\.0\.0\.1:\d+$/);
    await datagram(listener.address, Buffer.from('novanet-wake'));
    await datagram(listener.address, Buffer.from('GET / HTTP/1.0\r\n\r\n'));
    await settle(50);
    expect(woken).toBe(0);
    await datagram(listener.address, WAKE);
    await settle(50);
    expect(woken).toBe(1);
    // 200 wakes at once: polls at most every 20 ms, so a handful, not 200.
    await Promise.all(Array.from({ length: 200 }, () => datagram(listener!.address, WAKE)));
    await settle(100);
    expect(woken).toBeGreaterThan(1);
    expect(woken).toBeLessThan(10);
  });

  it('fails to start on an address that is not this host’s', async () => {
    await expect(listenForWakes('192.0.2.77', 0, () => undefined)).rejects.toThrow(/EADDRNOTAVAIL/);
  });
});

describe('WakingHostLayer', () => {
  let database: TestDatabase;
  let manager: NetworkManager;
  const listeners: WakeListener[] = [];
  const woken: string[] = [];
  let local: RecordingHost;
  let layer: WakingHostLayer;

  /** A host registered with a wake listener of its own, recording into `woken`. */
  async function host(name: string, built: string[] = []): Promise<void> {
    const listener = await listenForWakes('127.0.0.1', 0, () => woken.push(name));
    listeners.push(listener);
    const now = new Date();
    await registerHost(database.db.knex, { name, role: 'network', tunnelIp: null, wakeAddress: listener.address, version: 't', now });
    await recordBuilt(database.db.knex, name, built);
  }

  beforeEach(async () => {
    database = await freshDatabase('sqlite');
    local = new RecordingHost();
    // Every change reads the hosts table afresh (the service keeps it a second).
    layer = new WakingHostLayer(local, database.db, 'apihost', () => undefined, 0);
    manager = createManager({
      db: database.db,
      config: testConfig({ network_manager: 'flatdhcp', flat_interface: 'eth1', host: 'apihost' }),
      host: layer,
    });
    woken.length = 0;
  });
  afterEach(async () => {
    layer.close();
    for (const listener of listeners.splice(0)) await listener.close();
    await database.close();
  });

  it("wakes the network's network host, the hosts holding it and the instance's host, never itself or a stranger", async () => {
    const [network, other] = await manager.networks.create({
      label: 'a',
      fixedRangeV4: '10.0.0.0/24',
      numNetworks: 2,
      networkSize: 128,
      host: 'nethost',
    });
    await host('apihost', [network!.uuid]);
    await host('nethost');
    await host('holder', [network!.uuid]);
    await host('stranger', [other!.uuid]);
    await host('compute9');
    local.clear();
    const change: HostChange = {
      kind: 'dhcp-host',
      networkId: network!.id,
      action: 'add',
      computeHost: 'compute9',
      entry: { mac: 'fa:16:3e:00:00:01', hostname: null, address: '10.0.0.5' },
    };
    await layer.apply([change]);
    await settle(50);
    expect(woken.sort()).toEqual(['compute9', 'holder', 'nethost']);
    // ...and applies the change here too.
    expect(local.changes).toEqual([change]);
  });

  it('reads the hosts table at most once per freshness period', async () => {
    const queries: string[] = [];
    database.db.knex.on('query', (query: { sql: string }) => queries.push(query.sql));
    const cached = new WakingHostLayer(local, database.db, 'apihost', () => undefined, 60_000);
    await host('nethost');
    const change: HostChange = { kind: 'network-updated', networkId: 1 };
    for (let n = 0; n < 5; n++) await cached.apply([change]);
    expect(queries.filter((sql) => /from [`"]hosts[`"]/.test(sql))).toHaveLength(1);
    cached.close();
  });

  it('wakes nobody for a floating IP change, and still applies it', async () => {
    await host('nethost');
    await layer.apply([{ kind: 'floating-updated', address: '192.0.2.5' }]);
    await settle(50);
    expect(woken).toEqual([]);
    expect(local.kinds()).toEqual(['floating-updated']);
  });

  it('wakes the network host when an instance is allocated through another service', async () => {
    await manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24', host: 'nethost' });
    await host('nethost');
    await manager.allocation.allocate({ instanceUuid: 'abababab-0000-4000-8000-000000000001', projectId: 'p1', host: 'apihost' });
    await settle(50);
    expect(woken).toEqual(['nethost']);
  });
});

describe('NetworkWatcher.poll', () => {
  it('never runs two polls at once: asks meanwhile share one more poll after it', async () => {
    const database = await freshDatabase('sqlite');
    try {
      let inside = 0;
      let most = 0;
      const host = {
        apply: async () => undefined,
      };
      const watcher = new NetworkWatcher(database.db, host, 'nethost');
      // Count overlapping polls through the database calls they make.
      const knex = database.db.knex;
      knex.on('query', () => {
        inside += 1;
        most = Math.max(most, inside);
      });
      knex.on('query-response', () => {
        inside -= 1;
      });
      const first = watcher.poll();
      const second = watcher.poll();
      const third = watcher.poll();
      expect(third).toBe(second);
      expect(second).not.toBe(first);
      await Promise.all([first, second, third]);
      expect(most).toBe(1);
    } finally {
      await database.close();
    }
  });
});
