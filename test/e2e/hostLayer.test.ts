/**
 * The host layer on the real kernel: a service (in this process) whose commands run
 * inside a lab network namespace, VMs taking leases with busybox udhcpc from the
 * dnsmasq novanet started, traffic to an outside host through SNAT, and drift repair;
 * once per firewall backend, with the same assertions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Service, startService } from '../../src/cli/network/service.js';
import { loadConfig } from '../../src/config/load.js';
import { openDatabase } from '../../src/db/connection.js';
import { listFixedIps } from '../../src/db/fixedIps.js';
import { syncSchema } from '../../src/db/migrate.js';
import type { InstanceNetworkInfo } from '../../src/managers/views.js';
import { eventually, Lab, requireBuild } from '../../tools/lab.js';
import { FIREWALL_READERS } from '../support/firewall.js';

const INSTANCES = ['aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000002'];
const ECHO_PORT = 9000;

describe.each(FIREWALL_READERS)('FlatDHCP host layer in network namespaces ($backend)', (firewall) => {
  let lab: Lab;
  let configFile: string;
  let service: Service | undefined;
  const infos: InstanceNetworkInfo[] = [];
  const events: { event: string; fields: Record<string, unknown> }[] = [];

  async function start(): Promise<Service> {
    const config = loadConfig({ file: configFile, env: {}, warn: () => undefined });
    service = await startService({ config, configFile, api: false, log: (event, fields = {}) => events.push({ event, fields }) });
    return service;
  }

  async function leased(address: string): Promise<boolean> {
    const [row] = (await listFixedIps(service!.db.knex, {})).filter((fixed) => fixed.address === address);
    return row?.leased ?? false;
  }

  beforeAll(async () => {
    requireBuild();
    lab = await Lab.create({ vms: 2, flatInterfaceAddress: '172.31.0.10/24' });
    configFile = lab.writeConfig({ firewall_backend: firewall.backend });
    // A foreign chain and rules, as Docker or an admin would leave them.
    for (const argv of [
      ['iptables', '-t', 'nat', '-N', 'FOREIGN'],
      ['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-j', 'FOREIGN'],
      ['iptables', '-t', 'nat', '-A', 'FOREIGN', '-s', '198.51.100.7/32', '-j', 'RETURN'],
      ['iptables', '-A', 'FORWARD', '-s', '198.51.100.8/32', '-j', 'DROP'],
    ])
      expect((await lab.exec(lab.netNs, argv)).code).toBe(0);
    const config = loadConfig({ file: configFile, env: {}, warn: () => undefined });
    const db = openDatabase(config.connection);
    await syncSchema(db);
    await db.close();
    await lab.startEcho(ECHO_PORT);
    await start();
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    await lab?.destroy();
  });

  it('builds nothing before a network is used', async () => {
    await service!.manager.networks.create({ label: 'private', fixedRangeV4: '10.0.0.0/24' });
    expect((await lab.exec(lab.netNs, ['ip', 'link', 'show', 'br100'])).code).not.toBe(0);
  });

  it('gives two VMs by DHCP exactly the addresses allocated to them', async () => {
    for (const [index, vm] of lab.vms.entries()) {
      const info = await service!.manager.allocation.allocate({
        instanceUuid: INSTANCES[index]!,
        projectId: 'p1',
        host: 'compute1',
        hostname: vm.name,
      });
      infos.push(info);
      const vif = info.network_info[0]!;
      await lab.plug(vm, vif.network.bridge!, vif.address);
      const lease = await lab.dhcp(vm);
      expect(lease.address, lease.output).toBe(vif.network.subnets[0]!.ips[0]!.address);
      expect(lease.router).toBe('10.0.0.1');
    }
    expect(infos.map((info) => info.network_info[0]!.network.subnets[0]!.ips[0]!.address)).toEqual(['10.0.0.2', '10.0.0.3']);
  });

  it('built the bridge as nova did: flat_interface enslaved, its address moved, gateway first', async () => {
    const shown = JSON.parse((await lab.exec(lab.netNs, ['ip', '-j', 'addr', 'show', 'dev', 'br100'])).stdout) as {
      addr_info: { family: string; local: string }[];
    }[];
    const ipv4 = shown[0]!.addr_info.filter((entry) => entry.family === 'inet').map((entry) => entry.local);
    expect(ipv4).toEqual(['10.0.0.1', '172.31.0.10']);
    expect((await lab.exec(lab.netNs, ['ip', '-j', 'link', 'show', 'dev', 'eth1'])).stdout).toContain('"master":"br100"');
  });

  it('records the leases in the database through novanet-dhcpbridge', async () => {
    for (const info of infos) {
      const address = info.network_info[0]!.network.subnets[0]!.ips[0]!.address;
      await eventually(async () => ((await leased(address)) ? true : undefined), `lease of ${address} in the database`);
    }
  });

  it('lets the VMs reach each other and the outside, SNATed to routing_source_ip', async () => {
    expect((await lab.exec(lab.vms[0]!.ns, ['ping', '-c', '2', '-W', '2', '10.0.0.3'])).code).toBe(0);
    expect(await lab.sourceSeenOutside(lab.vms[0]!, ECHO_PORT)).toBe(lab.publicAddress);
    expect(await lab.sourceSeenOutside(lab.vms[1]!, ECHO_PORT)).toBe(lab.publicAddress);
  });

  it('installs the metadata DNAT and keeps the foreign chain and rules', async () => {
    const rules = await firewall.ruleset(lab);
    expect(rules).toContain(firewall.metadataRule(lab.publicAddress, 8775));
    expect(rules).toContain('-A POSTROUTING -j FOREIGN');
    expect(rules).toContain('-A FOREIGN -s 198.51.100.7/32 -j RETURN');
    expect(rules).toContain('-A FORWARD -s 198.51.100.8/32 -j DROP');
  });

  if (firewall.backend === 'iptables') {
    it('still forwards VM traffic with the FORWARD policy at DROP (as Docker sets it)', async () => {
      expect((await lab.exec(lab.netNs, ['iptables', '-P', 'FORWARD', 'DROP'])).code).toBe(0);
      expect(await lab.sourceSeenOutside(lab.vms[0]!, ECHO_PORT)).toBe(lab.publicAddress);
    });
  } else {
    // nftables: an accept ends only its own chain; another table's DROP policy at the same
    // hook still drops (docs/decisions/firewall-backends.md). Such a host accepts the
    // bridge in its own firewall, and novanet's table must then forward and NAT as usual.
    it("forwards VM traffic with the FORWARD policy at DROP once the host's own firewall accepts the bridge", async () => {
      expect((await lab.exec(lab.netNs, ['iptables', '-P', 'FORWARD', 'DROP'])).code).toBe(0);
      for (const direction of ['-i', '-o'])
        expect((await lab.exec(lab.netNs, ['iptables', '-A', 'FORWARD', direction, 'br100', '-j', 'ACCEPT'])).code).toBe(0);
      expect(await lab.sourceSeenOutside(lab.vms[0]!, ECHO_PORT)).toBe(lab.publicAddress);
    });
  }

  it('leaves exactly the same ruleset after three restarts', async () => {
    const before = await firewall.ruleset(lab);
    for (let restart = 0; restart < 3; restart++) {
      await service!.stop();
      const restarted = await start();
      expect(restarted.reconciler.lastReport?.changes).toEqual([]);
    }
    expect(await firewall.ruleset(lab)).toBe(before);
  });

  it('repairs a deleted rule, a removed gateway address and a killed dnsmasq at the next reconcile', async () => {
    await firewall.deleteSnat(lab, '10.0.0.0/24', lab.publicAddress);
    expect((await lab.exec(lab.netNs, ['ip', 'addr', 'del', '10.0.0.1/24', 'dev', 'br100'])).code).toBe(0);
    const pidFile = `${lab.dir}/state/networks/nova-br100.pid`;
    const pid = Number((await import('node:fs')).readFileSync(pidFile, 'utf8'));
    process.kill(pid, 'SIGKILL');
    const report = await service!.reconciler.reconcileAll();
    expect(report.errors).toEqual([]);
    expect(report.changes).toEqual(
      expect.arrayContaining(['gateway 10.0.0.1/24 on br100', 'dnsmasq started on br100', firewall.snatRepair]),
    );
    expect(await lab.sourceSeenOutside(lab.vms[1]!, ECHO_PORT)).toBe(lab.publicAddress);
    // dnsmasq serves again: a renewed lease comes back.
    const lease = await lab.dhcp(lab.vms[1]!);
    expect(lease.address).toBe('10.0.0.3');
  });

  it('frees the address of a deallocated instance through dhcp_release', async () => {
    await service!.manager.allocation.deallocate(INSTANCES[1]!);
    await eventually(async () => {
      const [row] = (await listFixedIps(service!.db.knex, {})).filter((fixed) => fixed.address === '10.0.0.3');
      return row && row.instanceUuid === null && !row.leased ? true : undefined;
    }, 'dnsmasq to report the release of 10.0.0.3 and novanet to free it');
  });
});
