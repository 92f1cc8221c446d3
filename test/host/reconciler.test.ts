/**
 * The reconciler's decisions, with drivers that only record what they are asked:
 * which networks it builds, which it refuses, what it tears down and what it leaves.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import * as fixedIps from '../../src/db/fixedIps.js';
import * as networks from '../../src/db/networks.js';
import { Conflict, Unavailable } from '../../src/errors.js';
import { loadDesired } from '../../src/host/desired.js';
import { type HostDrivers, Reconciler } from '../../src/host/reconciler.js';
import { NetworkWatcher } from '../../src/host/watch.js';
import { renderRules } from '../../src/linux_net/firewall/iptables/render.js';
import type { FirewallState } from '../../src/linux_net/firewall/state.js';
import type { NetworkManager } from '../../src/managers/manager.js';
import { createManager } from '../../src/managers/registry.js';
import { freshDatabase, type TestDatabase, testConfig } from '../support/databases.js';

/** A DHCP host as the dnsmasq driver takes it. */
interface DhcpEntry {
  mac: string;
  address: string;
}

class FakeDrivers {
  readonly calls: string[] = [];
  vlanSupported = true;
  /** A VLAN id whose vlanNNN exists as another interface (LinkDriver's Conflict). */
  vlanTaken: number | undefined;
  /** How many hosts the last dnsmasq.ensure was given. */
  lastHosts = 0;
  /** The /32 addresses "on" each device, as the floating driver would find them. */
  readonly bound = new Map<string, Set<string>>();
  /** Each device's own addresses (any other prefix), as the floating driver would find them. */
  readonly own = new Map<string, Set<string>>();
  /** The address each bridge was given (what `show` reports). */
  readonly gateways = new Map<string, string>();
  /** Each bridge's DHCP hosts as the fake dnsmasq holds them (MAC to address). */
  readonly dhcpHosts = new Map<string, Map<string, string>>();
  /** Bridges whose dnsmasq ensure() was given its hosts (what lets the real driver add and remove hosts). */
  readonly dnsmasqEnsured = new Set<string>();
  /** The bridges that exist, and devices in them other than the uplink (a VM's tap). */
  readonly bridges = new Set<string>();
  readonly ports = new Map<string, string[]>();
  /** Links that exist, with the bridge each is in (what the tap watch lists). */
  readonly links = new Map<string, string | undefined>();
  /** Bridges whose dnsmasq a "previous run" left running. */
  readonly dnsmasqRunning = new Set<string>();
  /** The floating DNAT rules of the last ruleset written. */
  dnat: string[] = [];
  /** The taps the port guard holds. */
  guarded = '';
  /** While set, floating binds wait for it. */
  bindHold: Promise<void> | undefined;
  /** The floating DNAT rules written when the last bind was asked for. */
  dnatAtBind: string[] | undefined;
  /** A floating address whose bind fails. */
  bindFails: string | undefined;

  drivers(): HostDrivers {
    const calls = this.calls;
    const drivers = {
      links: {
        ensureForwarding: async () => false,
        ensureVlan: async (id: number, parent: string) => {
          calls.push(`vlan ${id} on ${parent}`);
          if (!this.vlanSupported)
            throw new Unavailable(`the kernel has no 802.1Q support (load the 8021q module): cannot create vlan${id}`);
          if (this.vlanTaken === id)
            throw new Conflict(`vlan${id} exists but is not VLAN ${id} on ${parent} (dummy id - on -); remove it or fix the network`);
          return { name: `vlan${id}`, changes: [] };
        },
        ensureBridge: async (bridge: string, options: { interface?: string | null }) => {
          calls.push(`bridge ${bridge} with ${options.interface ?? 'nothing'}`);
          this.bridges.add(bridge);
          return [];
        },
        bridgeNames: async () => new Set(this.bridges),
        masters: async () => new Map(this.links),
        attach: async (device: string, bridge: string) => {
          calls.push(`plug ${device} into ${bridge}`);
          this.links.set(device, bridge);
        },
        ports: async (bridge: string) => [...(this.ports.get(bridge) ?? [])],
        ensureFirstAddress: async (bridge: string, address: string, prefix: number) => {
          calls.push(`address ${address}/${prefix} first on ${bridge}`);
          this.gateways.set(bridge, address);
          return [];
        },
        show: async (name: string) => ({
          ifname: name,
          flags: ['UP'],
          mtu: 1500,
          addr_info: [{ family: 'inet', local: this.gateways.get(name) ?? '10.0.0.1', prefixlen: 24 }],
        }),
        removeAddress: async (device: string, address: string) => {
          calls.push(`remove ${address} from ${device}`);
        },
        deleteBridge: async (bridge: string) => {
          calls.push(`delete bridge ${bridge}`);
          this.bridges.delete(bridge);
          return true;
        },
        deleteVlan: async (id: number) => {
          calls.push(`delete vlan${id}`);
          return true;
        },
      },
      firewall: { sync: async (state: FirewallState) => this.rules(state), apply: async (state: FirewallState) => this.rules(state) },
      floating: {
        bound: async (device: string) => new Set(this.bound.get(device) ?? []),
        addresses: async (device: string) => ({ bound: new Set(this.bound.get(device) ?? []), own: new Set(this.own.get(device) ?? []) }),
        bind: async (address: string, device: string) => {
          this.dnatAtBind = [...this.dnat];
          if (this.bindHold) await this.bindHold;
          if (this.bindFails === address) throw new Error('RTNETLINK answers: Cannot assign requested address');
          this.bindOn([address], device);
        },
        unbind: async (address: string, device: string) => this.unbindFrom([address], device),
        bindAll: async (addresses: string[], device: string) => this.bindOn(addresses, device),
        unbindAll: async (addresses: string[], device: string) => this.unbindFrom(addresses, device),
        forget: async (address: string) => {
          calls.push(`flush conntrack of ${address}`);
        },
      },
      portGuard: {
        sync: async (ports: { tap: string }[]) => {
          const taps = ports.map((port) => port.tap).join(',');
          if (taps !== this.guarded) calls.push(`guard ${taps}`);
          this.guarded = taps;
          return [];
        },
      },
      dnsmasq: {
        ensure: async (network: { bridge: string }, hosts: DhcpEntry[]) => {
          calls.push(`dnsmasq on ${network.bridge}`);
          this.lastHosts = hosts.length;
          this.dnsmasqEnsured.add(network.bridge);
          this.dhcpHosts.set(network.bridge, new Map(hosts.map((host) => [host.mac, host.address])));
          return 'none';
        },
        addHosts: async (bridge: string, hosts: DhcpEntry[]) => {
          calls.push(...hosts.map((host) => `dhcp host ${host.address} added on ${bridge}`));
          for (const host of hosts) this.dhcpHosts.get(bridge)?.set(host.mac, host.address);
          return this.dnsmasqEnsured.has(bridge);
        },
        removeHosts: async (bridge: string, hosts: DhcpEntry[]) => {
          calls.push(...hosts.map((host) => `dhcp host ${host.address} removed on ${bridge}`));
          for (const host of hosts) this.dhcpHosts.get(bridge)?.delete(host.mac);
          return this.dnsmasqEnsured.has(bridge);
        },
        departing: (bridge: string, hosts: DhcpEntry[]) => {
          const wanted = new Map(hosts.map((host) => [host.mac, host.address]));
          return [...(this.dhcpHosts.get(bridge) ?? [])]
            .filter(([mac, address]) => wanted.get(mac) !== address)
            .map(([mac, address]) => ({ mac, address }));
        },
        stop: async (bridge: string) => {
          calls.push(`stop dnsmasq on ${bridge}`);
          return true;
        },
        running: (bridge: string) => this.dnsmasqRunning.has(bridge),
        release: async (bridge: string, address: string) => {
          calls.push(`release ${address} on ${bridge}`);
        },
      },
    };
    return drivers as unknown as HostDrivers;
  }

  private bindOn(addresses: string[], device: string): void {
    for (const address of addresses) {
      this.calls.push(`bind ${address} on ${device}`);
      this.bound.set(device, (this.bound.get(device) ?? new Set()).add(address));
    }
  }

  private unbindFrom(addresses: string[], device: string): void {
    for (const address of addresses) {
      this.calls.push(`unbind ${address} from ${device}`);
      this.bound.get(device)?.delete(address);
    }
  }

  private rules(state: FirewallState): string[] {
    const ruleset = renderRules(state);
    const dnat = Object.entries(ruleset.nat).flatMap(([chain, rules]) => (chain.startsWith('nova-float-dnat-') ? rules : []));
    if (dnat.join() !== this.dnat.join()) this.calls.push('rules');
    this.dnat = dnat;
    return [];
  }
}

describe('Reconciler with recording drivers', () => {
  let database: TestDatabase;
  let fake: FakeDrivers;

  beforeEach(async () => {
    database = await freshDatabase('sqlite');
    fake = new FakeDrivers();
  });
  afterEach(async () => {
    await database.close();
  });

  function setup(
    mode: 'flatdhcp' | 'vlan',
    overrides: Record<string, string> = {},
  ): { manager: NetworkManager; reconciler: Reconciler; errors: string[] } {
    const config = testConfig({ network_manager: mode, flat_interface: 'eth1', vlan_interface: 'eth2', ...overrides });
    const errors: string[] = [];
    let reconciler: Reconciler | undefined;
    const manager = createManager({ db: database.db, config, host: { apply: (changes) => reconciler!.apply(changes) } });
    reconciler = new Reconciler({
      db: database.db,
      config,
      capabilities: manager.capabilities,
      drivers: fake.drivers(),
      log: (_event, fields) => errors.push(...((fields?.errors as string[] | undefined) ?? [])),
    });
    return { manager, reconciler, errors };
  }

  const boot = (manager: NetworkManager, n: number, project = 'p1') =>
    manager.allocation.allocate({ instanceUuid: `cccccccc-0000-4000-8000-00000000000${n}`, projectId: project, host: 'compute1' });

  it('builds a network only once it has a host, with flat_interface in its bridge', async () => {
    const { manager, reconciler } = setup('flatdhcp');
    await manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24' });
    await reconciler.reconcileAll();
    expect(fake.calls).toEqual([]);
    await boot(manager, 1);
    expect(fake.calls).toEqual(['bridge br100 with eth1', 'address 10.0.0.1/24 first on br100', 'dnsmasq on br100']);
  });

  describe('on a compute host (issue 17)', () => {
    /** A compute host's service: its own name, never a network host. */
    const compute = (mode: 'flatdhcp' | 'vlan') => setup(mode, { host: 'compute1', network_host: 'false' });
    const served = async (manager: NetworkManager) => {
      const [network] = await manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24' });
      await manager.networks.modify({ uuid: network!.uuid }, { host: 'nethost' });
      return network!;
    };

    it.each([
      ['flatdhcp', ['bridge br100 with eth1']],
      ['vlan', ['vlan 100 on eth2', 'bridge br100 with vlan100']],
    ] as const)('%s: builds the bridge and uplink of an instance here, and nothing of the network host', async (mode, built) => {
      const { manager, reconciler } = compute(mode);
      await served(manager);
      await reconciler.reconcileAll();
      expect(fake.calls, 'no instance here yet: nothing').toEqual([]);
      const info = await boot(manager, 1);
      // No address, no dnsmasq, no rules: the network host routes, serves DHCP and NATs. The VM's port is guarded here.
      expect(fake.calls).toEqual([...built, `guard ${info.network_info[0]!.devname}`]);
      fake.calls.length = 0;
      await reconciler.reconcileAll();
      expect(fake.calls.filter((call) => !call.startsWith('vlan') && !call.startsWith('bridge'))).toEqual([]);
    });

    it('puts a tap named after a VIF of this host into its bridge when it appears, and leaves one in a bridge alone', async () => {
      const { manager, reconciler } = compute('flatdhcp');
      await served(manager);
      const info = await boot(manager, 1);
      const devname = info.network_info[0]!.devname;
      fake.calls.length = 0;
      await reconciler.plugTaps();
      expect(fake.calls, 'no tap yet').toEqual([]);
      fake.links.set(devname, undefined);
      fake.links.set('tap-of-nobody', undefined);
      await reconciler.plugTaps();
      expect(fake.calls).toEqual([`plug ${devname} into br100`]);
      fake.calls.length = 0;
      await reconciler.plugTaps();
      expect(fake.calls, 'in its bridge: nothing more').toEqual([]);
      // A hypervisor that put it into a bridge itself is left alone, even another one.
      fake.links.set(devname, 'br-other');
      await reconciler.reconcileAll();
      expect(fake.calls.filter((call) => call.startsWith('plug'))).toEqual([]);
    });

    it('leaves an instance of another host alone, and builds nothing for it', async () => {
      const { manager, reconciler } = compute('flatdhcp');
      await served(manager);
      await manager.allocation.allocate({ instanceUuid: 'cccccccc-0000-4000-8000-000000000009', projectId: 'p1', host: 'compute2' });
      await reconciler.reconcileAll();
      expect(fake.calls).toEqual([]);
    });

    it('removes bridge and VLAN when the last instance leaves, not before', async () => {
      const { manager } = compute('vlan');
      await served(manager);
      await boot(manager, 1);
      await boot(manager, 2);
      fake.calls.length = 0;
      await manager.allocation.deallocate('cccccccc-0000-4000-8000-000000000001');
      expect(fake.calls.filter((call) => call.startsWith('delete'))).toEqual([]);
      await manager.allocation.deallocate('cccccccc-0000-4000-8000-000000000002');
      expect(fake.calls.filter((call) => call.startsWith('delete'))).toEqual(['delete bridge br100', 'delete vlan100']);
    });

    it('leaves a bridge with a device it did not plug in place, and says so, until the device is gone', async () => {
      const { manager, reconciler, errors } = compute('flatdhcp');
      await served(manager);
      await boot(manager, 1);
      fake.ports.set('br100', ['eth1', 'tap-by-hand']);
      await manager.allocation.deallocate('cccccccc-0000-4000-8000-000000000001');
      await reconciler.reconcileAll();
      expect(fake.calls.filter((call) => call.startsWith('delete'))).toEqual([]);
      expect(errors).toContain(
        'network a (10.0.0.0/24): no instance of it is on this host any more, but bridge br100 still has tap-by-hand in it; left in place',
      );
      fake.ports.set('br100', ['eth1']);
      await reconciler.reconcileAll();
      expect(fake.calls.filter((call) => call.startsWith('delete'))).toEqual(['delete bridge br100']);
    });

    it('a restarted service removes a bridge it plugged whose last instance left while it was down', async () => {
      const { manager } = compute('flatdhcp');
      await served(manager);
      await boot(manager, 1);
      await manager.allocation.deallocate('cccccccc-0000-4000-8000-000000000001');
      // What a previous run left: the bridge is there, this process never built it.
      fake.bridges.add('br100');
      fake.calls.length = 0;
      await compute('flatdhcp').reconciler.reconcileAll();
      expect(fake.calls).toEqual(['delete bridge br100']);
    });

    it("the network host releases, within one poll, the lease of an instance another host's service deallocated", async () => {
      const net = setup('flatdhcp');
      await served(net.manager);
      const other = createManager({
        db: database.db,
        config: testConfig({ network_manager: 'flatdhcp', flat_interface: 'eth1', host: 'compute2', network_host: 'false' }),
        host: { apply: async () => undefined },
      });
      const info = await other.allocation.allocate({
        instanceUuid: 'cccccccc-0000-4000-8000-000000000007',
        projectId: 'p1',
        host: 'compute2',
      });
      const watcher = new NetworkWatcher(database.db, net.reconciler, 'nethost');
      await watcher.poll();
      await net.reconciler.reconcileAll();
      const address = info.network_info[0]!.network.subnets[0]!.ips[0]!.address;
      await net.manager.leases.lease(address, info.network_info[0]!.address);
      fake.calls.length = 0;
      await other.allocation.deallocate('cccccccc-0000-4000-8000-000000000007');
      expect(await watcher.poll()).toBe(1);
      // Before the reload that forgets the host: dnsmasq ignores a release of a lease it no longer knows.
      expect(fake.calls.filter((call) => call.startsWith('release') || call.startsWith('dnsmasq'))).toEqual([
        `release ${address} on br100`,
        'dnsmasq on br100',
      ]);
    });

    it("the network host's watcher serves a VIF another host's service allocated within one poll", async () => {
      const net = setup('flatdhcp');
      const network = await served(net.manager);
      await boot(net.manager, 1);
      const watcher = new NetworkWatcher(database.db, net.reconciler, 'nethost');
      await watcher.poll();
      fake.calls.length = 0;
      // Through a compute host's service, whose host layer is not this one.
      const other = createManager({
        db: database.db,
        config: testConfig({ network_manager: 'flatdhcp', flat_interface: 'eth1', host: 'compute2', network_host: 'false' }),
        host: { apply: async () => undefined },
      });
      await other.allocation.allocate({ instanceUuid: 'cccccccc-0000-4000-8000-000000000007', projectId: 'p1', host: 'compute2' });
      expect(await watcher.poll()).toBe(1);
      expect(fake.calls).toContain('dnsmasq on br100');
      expect(fake.lastHosts).toBe(2);
      expect((await net.manager.networks.get({ uuid: network.uuid })).host).toBe('nethost');
    });
  });

  it('builds only the oldest of two networks on one bridge and says why the other is not served', async () => {
    const { manager, reconciler } = setup('flatdhcp');
    const [a, b] = await manager.networks.create({ label: 'n', fixedRangeV4: '10.0.0.0/24', numNetworks: 2, networkSize: 128 });
    for (const network of [a!, b!]) await manager.networks.modify({ uuid: network.uuid }, { host: 'nethost' });
    fake.calls.length = 0;
    const report = await reconciler.reconcileAll();
    expect(fake.calls.filter((call) => call.startsWith('address'))).toEqual(['address 10.0.0.1/25 first on br100']);
    expect(report.errors).toEqual([
      `network n_1 (10.0.0.128/25) is not served: shares bridge br100 with network n_0 (10.0.0.0/25); give each network its own --bridge (and, in the flat modes, its own --bridge_interface)`,
    ]);
  });

  // Issue 16, cause 3: each reconcile moved eth1 from one bridge to the other, forever.
  it('gives an interface to one bridge only: the newer network on another bridge is built without it, says why, and nothing moves', async () => {
    const { manager, reconciler } = setup('flatdhcp');
    const [old] = await manager.networks.create({ label: 'old', fixedRangeV4: '10.0.0.0/24' });
    const [other] = await manager.networks.create({ label: 'other', fixedRangeV4: '10.41.0.0/24', bridge: 'br41' });
    for (const network of [old!, other!]) await manager.networks.modify({ uuid: network.uuid }, { host: 'nethost' });
    const why =
      'network other (10.41.0.0/24) is built without an uplink: eth1 is already the uplink of bridge br100 (network old, 10.0.0.0/24); give this network its own --bridge_interface';
    for (let pass = 0; pass < 3; pass++) {
      fake.calls.length = 0;
      const report = await reconciler.reconcileAll();
      expect(fake.calls.filter((call) => call.startsWith('bridge'))).toEqual(['bridge br100 with eth1', 'bridge br41 with nothing']);
      expect(report.errors).toEqual([why]);
    }
    fake.calls.length = 0;
    await reconciler.apply([{ kind: 'network-updated', networkId: other!.id }]);
    expect(fake.calls.filter((call) => call.startsWith('bridge'))).toEqual(['bridge br41 with nothing']);
  });

  it('leaves a bridge in use when a spare network that named it is deleted', async () => {
    const { manager } = setup('flatdhcp');
    await manager.networks.create({ label: 'live', fixedRangeV4: '10.0.0.0/24' });
    await boot(manager, 1);
    const [spare] = await manager.networks.create({ label: 'spare', fixedRangeV4: '10.1.0.0/24' });
    await manager.networks.modify({ uuid: spare!.uuid }, { host: 'nethost' });
    fake.calls.length = 0;
    await manager.networks.delete({ uuid: spare!.uuid });
    expect(fake.calls.filter((call) => /stop|remove|delete/.test(call))).toEqual([]);
  });

  it("plugs and guards the port of a VM of the network host's own at its allocation, not at the next full reconcile", async () => {
    const { manager, reconciler } = setup('flatdhcp', { host: 'nethost' });
    await manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24' });
    const own = (n: number) =>
      manager.allocation.allocate({ instanceUuid: `cccccccc-0000-4000-8000-00000000000${n}`, projectId: 'p1', host: 'nethost' });
    const first = await own(1);
    await reconciler.reconcileAll();
    fake.calls.length = 0;
    // The second one reaches the host as a DHCP host alone (no rebuild of the network).
    const second = await own(2);
    const taps = [first, second].map((info) => info.network_info[0]!.devname);
    expect(fake.calls).toEqual([
      `dhcp host ${second.network_info[0]!.network.subnets[0]!.ips[0]!.address} added on br100`,
      `guard ${taps.join(',')}`,
    ]);
    // Its tap, once the hypervisor makes it, goes into the bridge at the next second's look.
    fake.calls.length = 0;
    fake.links.set(taps[1]!, undefined);
    await reconciler.plugTaps();
    expect(fake.calls).toEqual([`plug ${taps[1]} into br100`]);
  });

  it('sends dhcp_release before dnsmasq drops the host (a reload may drop the lease silently)', async () => {
    const { manager } = setup('flatdhcp');
    await manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24' });
    const info = await boot(manager, 1);
    const address = info.network_info[0]!.network.subnets[0]!.ips[0]!.address;
    await manager.leases.lease(address);
    fake.calls.length = 0;
    await manager.allocation.deallocate('cccccccc-0000-4000-8000-000000000001');
    expect(fake.calls.filter((call) => /release|dnsmasq|dhcp host/.test(call))).toEqual([
      `release ${address} on br100`,
      `dhcp host ${address} removed on br100`,
    ]);
  });

  it('tears a deleted network down: dnsmasq, gateway address, bridge', async () => {
    const { manager } = setup('flatdhcp');
    const [network] = await manager.networks.create({ label: 'gone', fixedRangeV4: '10.0.0.0/24' });
    await boot(manager, 1);
    await manager.allocation.deallocate('cccccccc-0000-4000-8000-000000000001');
    await manager.leases.release('10.0.0.2');
    fake.calls.length = 0;
    await manager.networks.delete({ uuid: network!.uuid });
    expect(fake.calls).toEqual(['stop dnsmasq on br100', 'remove 10.0.0.1 from br100', 'delete bridge br100']);
  });

  it('ignores a deleted network this host never served', async () => {
    const { manager, reconciler } = setup('flatdhcp');
    const [network] = await manager.networks.create({ label: 'elsewhere', fixedRangeV4: '10.0.0.0/24' });
    await manager.networks.modify({ uuid: network!.uuid }, { host: 'otherhost' });
    await manager.networks.delete({ uuid: network!.uuid });
    await reconciler.reconcileAll();
    expect(fake.calls).toEqual([]);
  });

  it('VLAN mode: builds vlanNNN on vlan_interface and puts it, not the NIC, in brNNN', async () => {
    const { manager } = setup('vlan');
    await manager.networks.create({ label: 'v', fixedRangeV4: '10.0.0.0/24' });
    await boot(manager, 1);
    expect(fake.calls).toEqual(['vlan 100 on eth2', 'bridge br100 with vlan100', 'address 10.0.0.1/24 first on br100', 'dnsmasq on br100']);
    const desired = await loadDesired(
      database.db.knex,
      testConfig({ network_manager: 'vlan', vlan_interface: 'eth2' }),
      manager.capabilities,
    );
    expect(desired.networks[0]).toMatchObject({ vlan: { id: 100, parent: 'eth2' }, bridgeInterface: null });
  });

  it('VLAN mode without 802.1Q in the kernel: each network reports the reason and is built without its uplink', async () => {
    const { manager, reconciler } = setup('vlan');
    await manager.networks.create({ label: 'v', fixedRangeV4: '10.0.0.0/24', numNetworks: 2, networkSize: 128 });
    await boot(manager, 1, 'p1');
    await boot(manager, 2, 'p2');
    fake.vlanSupported = false;
    fake.calls.length = 0;
    const report = await reconciler.reconcileAll();
    expect(report.errors).toEqual([
      'network v_0 (10.0.0.0/25): the kernel has no 802.1Q support (load the 8021q module): cannot create vlan100',
      'network v_1 (10.0.0.128/25): the kernel has no 802.1Q support (load the 8021q module): cannot create vlan101',
    ]);
    expect(fake.calls).toEqual([
      'vlan 100 on eth2',
      'bridge br100 with nothing',
      'address 10.0.0.1/25 first on br100',
      'dnsmasq on br100',
      'vlan 101 on eth2',
      'bridge br101 with nothing',
      'address 10.0.0.129/25 first on br101',
      'dnsmasq on br101',
    ]);
  });

  it('VLAN mode with vlanNNN taken by another interface: reports it and builds nothing of that network', async () => {
    const { manager, reconciler } = setup('vlan');
    fake.vlanTaken = 100;
    await manager.networks.create({ label: 'v', fixedRangeV4: '10.0.0.0/24', numNetworks: 2, networkSize: 128 });
    await boot(manager, 1, 'p1');
    await boot(manager, 2, 'p2');
    fake.calls.length = 0;
    const report = await reconciler.reconcileAll();
    expect(report.errors).toEqual([
      'network v_0 (10.0.0.0/25): vlan100 exists but is not VLAN 100 on eth2 (dummy id - on -); remove it or fix the network',
    ]);
    expect(fake.calls.filter((call) => !call.startsWith('rules'))).toEqual([
      'vlan 100 on eth2',
      'vlan 101 on eth2',
      'bridge br101 with vlan101',
      'address 10.0.0.129/25 first on br101',
      'dnsmasq on br101',
    ]);
  });

  it.each([true, false])(
    'tears down a network scrubbed from its project, and one a previous run built before moving (802.1Q: %s)',
    async (vlanSupported) => {
      const { manager } = setup('vlan');
      fake.vlanSupported = vlanSupported;
      const [a, b] = await manager.networks.create({ label: 'v', fixedRangeV4: '10.0.0.0/24', numNetworks: 2, networkSize: 128 });
      await boot(manager, 1, 'p1');
      await boot(manager, 2, 'p2');
      await manager.allocation.deallocate('cccccccc-0000-4000-8000-000000000002');
      await manager.leases.release(
        (await manager.fixedIps.list()).find((fixed) => fixed.network === b!.cidr && fixed.instanceUuid !== null)!.address,
      );
      fake.calls.length = 0;
      await manager.networks.scrub('p2');
      expect(fake.calls.filter((call) => !call.startsWith('vlan'))).toEqual([
        'stop dnsmasq on br101',
        'remove 10.0.0.129 from br101',
        'delete bridge br101',
        'delete vlan101',
      ]);
      // A restarted service knows nothing it built: a dnsmasq of its own on a bridge it no
      // longer serves is how it tells.
      await manager.networks.modify({ uuid: a!.uuid }, { host: 'elsewhere' });
      const restarted = setup('vlan').reconciler;
      fake.dnsmasqRunning.add('br100');
      fake.calls.length = 0;
      await restarted.reconcileAll();
      expect(fake.calls.filter((call) => !/^(vlan|bridge|address|dnsmasq on)/.test(call))).toEqual([
        'stop dnsmasq on br100',
        'remove 10.0.0.1 from br100',
        'delete bridge br100',
        'delete vlan100',
      ]);
    },
  );

  it('tears down a network scrubbed and deleted between two looks (it arrives deleted, its host already cleared)', async () => {
    const { manager, reconciler } = setup('vlan');
    const [network] = await manager.networks.create({ label: 'v', fixedRangeV4: '10.0.0.0/24' });
    await boot(manager, 1, 'p1');
    // What novanet-manage did meanwhile, seen by the watcher only once both were done.
    await networks.updateNetwork(database.db.knex, network!.id, { projectId: null, host: null }, new Date());
    await networks.softDeleteNetwork(database.db.knex, network!.id, new Date());
    fake.calls.length = 0;
    await reconciler.apply([{ kind: 'network-deleted', network: await networks.getDeletedNetwork(database.db.knex, network!.id) }]);
    expect(fake.calls).toEqual(['stop dnsmasq on br100', 'remove 10.0.0.1 from br100', 'delete bridge br100', 'delete vlan100']);
  });

  describe('floating IPs', () => {
    const uuid = (n: number) => `cccccccc-0000-4000-8000-00000000000${n}`;

    async function withFloating(): Promise<{ manager: NetworkManager; reconciler: Reconciler; address: string; errors: string[] }> {
      const { manager, reconciler, errors } = setup('flatdhcp');
      await manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24' });
      await manager.floating.createRange('192.0.2.64/29');
      await boot(manager, 1);
      await boot(manager, 2);
      const { address } = await manager.floating.allocate('p1');
      fake.calls.length = 0;
      return { manager, reconciler, address, errors };
    }

    it('rules an association, then binds it, then flushes flows that predate the rule; on disassociation unbinds, then flushes conntrack once the rule is gone', async () => {
      const { manager, address } = await withFloating();
      await manager.floating.associate({ address, instanceUuid: uuid(1), actor: { projectId: 'p1' } });
      expect(fake.calls).toEqual(['rules', `bind ${address} on eth0`, `flush conntrack of ${address}`]);
      expect(fake.dnat).toEqual([`-d ${address}/32 -j DNAT --to-destination 10.0.0.2`]);
      fake.calls.length = 0;
      await manager.floating.disassociate(address, { projectId: 'p1' });
      expect(fake.calls).toEqual([`unbind ${address} from eth0`, 'rules', `flush conntrack of ${address}`]);
      expect(fake.dnat).toEqual([]);
    });

    it('binds a new address only once its DNAT rule is written (the host would answer for it itself); a failed bind takes it out of the rules again', async () => {
      const { manager, address, errors } = await withFloating();
      let release!: () => void;
      fake.bindHold = new Promise((resolve) => (release = resolve));
      const associating = manager.floating.associate({ address, instanceUuid: uuid(1), actor: { projectId: 'p1' } });
      await vi.waitFor(() => expect(fake.dnatAtBind).toEqual([`-d ${address}/32 -j DNAT --to-destination 10.0.0.2`]));
      expect(fake.calls).toEqual(['rules']);
      fake.bindFails = address;
      release();
      await associating;
      expect(fake.calls).toEqual(['rules', 'rules', `flush conntrack of ${address}`]);
      expect(fake.dnat).toEqual([]);
      expect(errors).toEqual([`floating ${address}: RTNETLINK answers: Cannot assign requested address`]);
    });

    it('moves an address to another instance without rebinding it, flushing its old flows after the new rule', async () => {
      const { manager, address } = await withFloating();
      await manager.floating.associate({ address, instanceUuid: uuid(1), actor: { projectId: 'p1' } });
      fake.calls.length = 0;
      await manager.floating.associate({ address, instanceUuid: uuid(2), actor: { projectId: 'p1' }, allowMove: true });
      expect(fake.calls).toEqual(['rules', `flush conntrack of ${address}`]);
      expect(fake.dnat).toEqual([`-d ${address}/32 -j DNAT --to-destination 10.0.0.3`]);
    });

    it("binds on the pool's own interface when it has one", async () => {
      const { manager } = setup('flatdhcp');
      await manager.networks.create({ label: 'a', fixedRangeV4: '10.0.0.0/24' });
      await manager.floating.createRange('198.51.100.9', 'other', 'eth3');
      await boot(manager, 1);
      await manager.floating.allocate('p1', 'other');
      fake.calls.length = 0;
      await manager.floating.associate({ address: '198.51.100.9', instanceUuid: uuid(1), actor: { projectId: 'p1' } });
      expect(fake.calls).toEqual(['rules', 'bind 198.51.100.9 on eth3', 'flush conntrack of 198.51.100.9']);
    });

    it('after a restart binds every association again, once; a stale floating address goes, a foreign /32 stays', async () => {
      const { manager, address } = await withFloating();
      await manager.floating.associate({ address, instanceUuid: uuid(1), actor: { projectId: 'p1' } });
      // The kernel as a crash left it: our address gone, a floating IP no longer
      // associated still bound, and an operator's own /32.
      fake.bound.set('eth0', new Set(['192.0.2.70', '203.0.113.9']));
      const restarted = setup('flatdhcp').reconciler;
      fake.calls.length = 0;
      fake.dnat = [];
      const report = await restarted.reconcileAll();
      expect(report.errors).toEqual([]);
      expect(fake.calls.filter((call) => !/bridge|address|dnsmasq/.test(call))).toEqual([
        'unbind 192.0.2.70 from eth0',
        `bind ${address} on eth0`,
        'rules',
        'flush conntrack of 192.0.2.70',
      ]);
      expect([...fake.bound.get('eth0')!].sort()).toEqual([address, '203.0.113.9'].sort());
      fake.calls.length = 0;
      await restarted.reconcileAll();
      expect(fake.calls.filter((call) => !/bridge|address|dnsmasq/.test(call))).toEqual([]);
    });

    // Issue 16, cause 4: rows made before the managers refused such addresses (or by hand).
    it.each([
      ['127.0.0.1', 'it is in loopback (127.0.0.0/8)'],
      ['224.0.0.1', 'it is in multicast (224.0.0.0/4)'],
      ['169.254.169.254', 'it is in link-local (169.254.0.0/16, the metadata address among them)'],
      ['192.0.2.10', "it is this host's my_ip"],
      ['198.51.100.20', 'it is an address of eth0 itself'],
    ])('neither binds nor NATs %s, and says why, even when the database holds its association', async (address, reason) => {
      const { manager, reconciler, errors } = await withFloating();
      fake.own.set('eth0', new Set(['198.51.100.20']));
      await reconciler.reconcileAll();
      const [fixed] = await fixedIps.listFixedIps(database.db.knex, {
        networkIds: [(await manager.networks.list())[0]!.id],
        associated: true,
      });
      await database.db.knex('floating_ips').insert({
        address,
        pool: 'nova',
        project_id: 'p1',
        fixed_ip_id: fixed!.id,
        host: 'nethost',
        auto_assigned: false,
        created_at: new Date(),
        updated_at: new Date(),
      });
      errors.length = 0;
      fake.calls.length = 0;
      await reconciler.apply([{ kind: 'floating-updated', address }]);
      expect(fake.calls.filter((call) => call.startsWith('bind'))).toEqual([]);
      expect(fake.dnat).toEqual([]);
      expect(errors).toEqual([`floating ${address} is not bound: ${reason}`]);
      errors.length = 0;
      const report = await reconciler.reconcileAll();
      expect(report.errors).toEqual([`floating ${address} is not bound: ${reason}`]);
      expect(fake.dnat).toEqual([]);
    });

    it('keeps the rules in address order whatever the order of association', async () => {
      const { manager } = await withFloating();
      const second = await manager.floating.allocate('p1');
      await manager.floating.associate({ address: second.address, instanceUuid: uuid(2), actor: { projectId: 'p1' } });
      const first = (await manager.floating.list({ projectId: 'p1' })).find((entry) => entry.address !== second.address)!;
      await manager.floating.associate({ address: first.address, instanceUuid: uuid(1), actor: { projectId: 'p1' } });
      expect(fake.dnat).toEqual([
        `-d ${first.address}/32 -j DNAT --to-destination 10.0.0.2`,
        `-d ${second.address}/32 -j DNAT --to-destination 10.0.0.3`,
      ]);
    });
  });
});

describe('Reconciler and multi_host networks', () => {
  it('each compute host builds the network with its own address, serving only its own instances', async () => {
    const database = await freshDatabase('sqlite');
    try {
      const api = testConfig({ network_manager: 'flatdhcp', flat_interface: 'eth1', host: 'apihost' });
      const manager = createManager({ db: database.db, config: api, host: { apply: async () => undefined } });
      await manager.networks.create({ label: 'mh', fixedRangeV4: '10.0.0.0/24', multiHost: true });
      const hosts = ['compute1', 'compute2'].map((host) => {
        const fake = new FakeDrivers();
        const config = testConfig({ network_manager: 'flatdhcp', flat_interface: 'eth1', host });
        return {
          fake,
          reconciler: new Reconciler({
            db: database.db,
            config,
            capabilities: manager.capabilities,
            drivers: fake.drivers(),
            log: () => undefined,
          }),
        };
      });
      const boot = (n: number, host: string) =>
        manager.allocation.allocate({ instanceUuid: `ffffffff-0000-4000-8000-00000000000${n}`, projectId: 'p1', host });
      // Nothing anywhere before an instance lands.
      for (const { reconciler } of hosts) await reconciler.reconcileAll();
      expect(hosts.flatMap(({ fake }) => fake.calls)).toEqual([]);

      const first = await boot(1, 'compute1');
      const second = await boot(2, 'compute1');
      const subnet = first.network_info[0]!.network.subnets[0]!;
      // compute1 took the first free address as its own: the VMs' gateway and DHCP server.
      expect(subnet.gateway?.address).toBe('10.0.0.3');
      expect(subnet.meta).toEqual({ dhcp_server: '10.0.0.3' });
      for (const { reconciler } of hosts) await reconciler.reconcileAll();
      const taps = [first, second].map((info) => info.network_info[0]!.devname).join(',');
      expect(hosts[0]!.fake.calls).toEqual([
        'bridge br100 with eth1',
        'address 10.0.0.3/24 first on br100',
        'dnsmasq on br100',
        `guard ${taps}`,
      ]);
      expect(hosts[0]!.fake.lastHosts).toBe(2);
      expect(hosts[1]!.fake.calls).toEqual([]);

      const third = await boot(3, 'compute2');
      expect(third.network_info[0]!.network.subnets[0]!.gateway?.address).not.toBe('10.0.0.3');
      const own = third.network_info[0]!.network.subnets[0]!.gateway!.address;
      for (const { reconciler } of hosts) await reconciler.reconcileAll();
      expect(hosts[1]!.fake.calls).toEqual([
        'bridge br100 with eth1',
        `address ${own}/24 first on br100`,
        'dnsmasq on br100',
        `guard ${third.network_info[0]!.devname}`,
      ]);
      expect(hosts[1]!.fake.lastHosts).toBe(1);
      // Reading it again gives the same answer, and compute1 still serves its two only.
      expect(
        (await manager.allocation.networkInfo('ffffffff-0000-4000-8000-000000000003')).network_info[0]!.network.subnets[0]!.gateway
          ?.address,
      ).toBe(own);
      expect(hosts[0]!.fake.lastHosts).toBe(2);

      // Deleted: each host removes its own address (not the network's gateway) and its bridge.
      for (const n of [1, 2, 3]) await manager.allocation.deallocate(`ffffffff-0000-4000-8000-00000000000${n}`);
      for (const fixed of (await manager.fixedIps.list()).filter((entry) => entry.instanceUuid !== null))
        await manager.leases.release(fixed.address);
      await manager.networks.delete({ cidr: '10.0.0.0/24' });
      for (const { fake, reconciler } of hosts) {
        fake.calls.length = 0;
        await reconciler.reconcileAll();
      }
      // Their last ports gone, the port guards go too.
      expect(hosts[0]!.fake.calls).toEqual(['guard ', 'stop dnsmasq on br100', 'remove 10.0.0.3 from br100', 'delete bridge br100']);
      expect(hosts[1]!.fake.calls).toEqual(['guard ', 'stop dnsmasq on br100', `remove ${own} from br100`, 'delete bridge br100']);
    } finally {
      await database.close();
    }
  });
});

describe('Reconciler under a burst of changes', () => {
  it('applies changes that arrive during a reconcile together, and every caller waits for its own', async () => {
    const database = await freshDatabase('sqlite');
    try {
      const config = testConfig({ network_manager: 'flatdhcp', flat_interface: 'eth1' });
      const fake = new FakeDrivers();
      let reconciler: Reconciler | undefined;
      const manager = createManager({ db: database.db, config, host: { apply: (changes) => reconciler!.apply(changes) } });
      reconciler = new Reconciler({
        db: database.db,
        config,
        capabilities: manager.capabilities,
        drivers: fake.drivers(),
        log: () => undefined,
      });
      await manager.networks.create({ label: 'burst', fixedRangeV4: '10.0.0.0/24' });
      const boots = Array.from({ length: 10 }, (_, n) =>
        manager.allocation.allocate({
          instanceUuid: `dddddddd-0000-4000-8000-0000000000${String(n).padStart(2, '0')}`,
          projectId: 'p1',
          host: 'compute1',
        }),
      );
      await Promise.all(boots);
      const runs = fake.calls.filter((call) => call.startsWith('dnsmasq')).length;
      // The first allocation's reconcile runs alone; the rest wait and share far fewer runs.
      expect(runs).toBeGreaterThanOrEqual(1);
      expect(runs).toBeLessThan(10);
      // Whatever the batching, the last run saw every VIF.
      expect(fake.lastHosts).toBe(10);
      expect(reconciler.lastReport?.errors).toEqual([]);
    } finally {
      await database.close();
    }
  });
});
