/**
 * A cluster on the real kernel (issue 17): a network host and two compute hosts, each
 * a namespace running its own novanet-network on one database, their eth1 joined by
 * an underlay (a switch). FlatDHCP, single-host: each compute host builds the bridge
 * and its uplink for its own VMs when they are allocated through its own API; DHCP,
 * the gateway, SNAT and floating IPs stay on the network host, across the underlay.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/connection.js';
import { BIN, eventually, Lab, type LabService, type LabVm, requireBuild, run } from '../../tools/lab.js';
import { callService } from '../support/serviceApi.js';

const ECHO_PORT = 9005;
const VM_PORT = 7005;
const NETWORK = { cidr: '10.40.0.0/24', gateway: '10.40.0.1' };
const COMPUTE = [
  { name: 'compute1', address: '172.31.0.21', instance: '17171717-0000-4000-8000-000000000001' },
  { name: 'compute2', address: '172.31.0.22', instance: '17171717-0000-4000-8000-000000000002' },
];

interface NetworkInfo {
  network_info: { address: string; network: { bridge: string; subnets: { ips: { address: string }[] }[] } }[];
}

describe.each(['iptables', 'nftables'])('a network host and two compute hosts on one underlay (FlatDHCP, single-host, %s)', (backend) => {
  let lab: Lab;
  const hostNs: string[] = [];
  const vms: LabVm[] = [];
  /** nethost, compute1, compute2. */
  const services: LabService[] = [];
  let netConfig: string;
  const configs: string[] = [];
  let token: string;
  const addresses: string[] = [];

  const manage = (args: string[]) => run([process.execPath, BIN.manage, '--config-file', netConfig, ...args]);
  /** A call to compute host `index`'s own API. */
  const computeApi = <T>(index: number, method: string, path: string, body?: unknown, status = 200) =>
    callService<T>(services[index + 1]!.api, token, method, path, body, status);
  const link = async (ns: string, device: string) => {
    const shown = await lab.exec(ns, ['ip', '-j', '-d', 'addr', 'show', 'dev', device]);
    return shown.code === 0
      ? (JSON.parse(shown.stdout) as { master?: string; addr_info: { family: string; local: string }[] }[])[0]
      : undefined;
  };

  beforeAll(async () => {
    requireBuild();
    lab = await Lab.create({ vms: 0, underlay: true, flatInterfaceAddress: '172.31.0.10/24' });
    netConfig = lab.writeConfig({ host: 'nethost', tunnel_ip: '172.31.0.10', firewall_backend: backend });
    configs.push(netConfig);
    for (const compute of COMPUTE) {
      const ns = await lab.addComputeHost(compute.name, `${compute.address}/24`);
      hostNs.push(ns);
      vms.push(await lab.addVm(`${compute.name}vm`, ns));
      configs.push(
        lab.writeConfig(
          { host: compute.name, network_host: 'false', my_ip: compute.address, firewall_backend: backend },
          { ns, name: compute.name },
        ),
      );
    }
    token = await lab.provision(
      netConfig,
      [
        ['db', 'sync'],
        ['network', 'create', '--label=cluster', `--fixed_range_v4=${NETWORK.cidr}`],
        ['floating', 'create', '--ip_range=192.0.2.64/28'],
      ],
      'p1',
    );
    await lab.startEcho(ECHO_PORT);
    // The network host first: a compute host's first allocation needs one up.
    for (const config of configs) services.push(await lab.startService(config));
  }, 120_000);

  afterAll(async () => {
    for (const service of services) await service.stop();
    await lab?.destroy();
  });

  it("builds each compute host's bridge before its own API answers, and each VM leases from the network host", async () => {
    for (const [index, compute] of COMPUTE.entries()) {
      const info = await computeApi<NetworkInfo>(index, 'POST', '/os-novanet/instances', {
        instance: { uuid: compute.instance, project_id: 'p1', host: compute.name, hostname: vms[index]!.name },
      });
      const vif = info.network_info[0]!;
      addresses.push(vif.network.subnets[0]!.ips[0]!.address);
      // Built when the 200 came back: the bridge with the underlay in it (its address moved
      // onto the bridge), and no address in the network: the gateway is the network host's.
      const bridge = await link(hostNs[index]!, vif.network.bridge);
      expect(bridge, `${vif.network.bridge} on ${compute.name}`).toBeDefined();
      expect(bridge!.addr_info.filter((entry) => entry.family === 'inet').map((entry) => entry.local)).toEqual([compute.address]);
      expect((await link(hostNs[index]!, 'eth1'))?.master).toBe(vif.network.bridge);
      await lab.plug(vms[index]!, vif.network.bridge, vif.address);
    }
    for (const [index, vm] of vms.entries()) {
      // The network host hears of the VIF through the database (a compute host's API took the call).
      const lease = await lab.lease(vm);
      expect(lease.address, lease.output).toBe(addresses[index]);
      expect(lease.server).toBe(NETWORK.gateway);
      expect(lease.router).toBe(NETWORK.gateway);
    }
    // Nothing of the network host's on the compute hosts: no dnsmasq, no rules; only the guards of their own VMs' ports.
    for (const ns of hostNs) {
      expect((await lab.exec(ns, ['iptables-save'])).stdout).not.toContain('nova-network');
      expect((await lab.exec(ns, ['nft', 'list', 'tables'])).stdout).toBe('table bridge novanet_ports\n');
      const pids = (await run(['ip', 'netns', 'pids', ns])).stdout.split(/\s+/).filter(Boolean);
      const commands = pids.map((pid) => (existsSync(`/proc/${pid}/comm`) ? readFileSync(`/proc/${pid}/comm`, 'utf8').trim() : ''));
      expect(commands).not.toContain('dnsmasq');
    }
  });

  it('VMs on different compute hosts reach each other across the underlay, and the outside through SNAT on the network host', async () => {
    const ping = await lab.exec(vms[0]!.ns, ['ping', '-c', '2', '-W', '2', addresses[1]!]);
    expect(ping.code, ping.stdout + ping.stderr).toBe(0);
    for (const vm of vms) expect(await lab.sourceSeenOutside(vm, ECHO_PORT)).toBe(lab.publicAddress);
  });

  it("a floating IP of compute 2's VM answers from outside, NATed on the network host", async () => {
    const { floating_ip: floating } = await callService<{ floating_ip: { ip: string } }>(
      services[0]!.api,
      token,
      'POST',
      '/os-floating-ips',
      {},
    );
    await callService(
      services[0]!.api,
      token,
      'POST',
      `/servers/${COMPUTE[1]!.instance}/action`,
      { addFloatingIp: { address: floating.ip } },
      202,
    );
    await lab.startTcpServer(vms[1]!.ns, VM_PORT, '0.0.0.0', 'compute2vm ');
    const answer = await eventually(
      async () => {
        const said = await lab.connect(lab.outsideNs, floating.ip, VM_PORT);
        return said.startsWith('compute2vm') ? said : undefined;
      },
      'the floating IP to answer',
      10_000,
    );
    expect(answer).toBe(`compute2vm ${lab.outsideAddress}`);
  });

  it("puts a VM's tap, named as network_info's devname and made after the allocation, into its bridge within a second", async () => {
    const info = await computeApi<NetworkInfo & { network_info: { devname: string }[] }>(0, 'POST', '/os-novanet/instances', {
      instance: { uuid: '17171717-0000-4000-8000-000000000004', project_id: 'p1', host: 'compute1', hostname: 'late' },
    });
    const vif = info.network_info[0]!;
    // The hypervisor makes the tap only now, under the VIF's devname, and plugs it nowhere.
    const vm = await lab.addVm('late', hostNs[0]!, vif.devname);
    await lab.boot(vm, vif.address);
    await lab.exec(hostNs[0]!, ['ip', 'link', 'set', vif.devname, 'up']);
    await eventually(
      async () => ((await link(hostNs[0]!, vif.devname))?.master === 'br100' ? true : undefined),
      `${vif.devname} in br100`,
      3_000,
    );
    const lease = await lab.lease(vm);
    expect(lease.address).toBe(vif.network.subnets[0]!.ips[0]!.address);
  });

  it("says when a VIF's host has built it, for an allocation another host's service took", async () => {
    const uuid = '17171717-0000-4000-8000-000000000005';
    // Through the network host's API, for compute 2: compute 2 hears of it through the database.
    await callService(services[0]!.api, token, 'POST', '/os-novanet/instances', { instance: { uuid, project_id: 'p1', host: 'compute2' } });
    const active = await eventually(
      async () => {
        const info = await computeApi<{ network_info: { active?: boolean }[] }>(1, 'GET', `/os-novanet/instances/${uuid}`);
        return info.network_info[0]?.active === true ? true : undefined;
      },
      'compute 2 to report the network built',
      5_000,
    );
    expect(active).toBe(true);
    await computeApi(1, 'DELETE', `/os-novanet/instances/${uuid}`, undefined, 204);
  });

  it('host list shows the three services with their roles, up', async () => {
    const listed = await manage(['host', 'list']);
    expect(listed.code, listed.stderr).toBe(0);
    const rows = listed.stdout
      .trimEnd()
      .split('\n')
      .slice(1)
      .map((line) => line.split(/ {2,}/).slice(0, 4));
    expect(rows).toEqual([
      ['compute1', 'compute', 'up', '172.31.0.21'],
      ['compute2', 'compute', 'up', '172.31.0.22'],
      ['nethost', 'network', 'up', '172.31.0.10'],
    ]);
  });

  it("restarting compute 2's service loses no echo of a ping stream across the hosts", async () => {
    // 60 echoes 50 ms apart: the restart (a new process, its start-up reconcile) happens inside.
    const stream = lab.exec(vms[1]!.ns, ['ping', '-c', '60', '-i', '0.05', '-W', '1', addresses[0]!], { timeoutMs: 30_000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await services[2]!.stop();
    services[2] = await lab.startService(configs[2]!);
    const pinged = await stream;
    expect(pinged.stdout, pinged.stderr).toMatch(/60 packets transmitted, 60 received, 0% packet loss/);
  });

  it("deallocating through compute 1's API a VM leased from the network host's dnsmasq frees its address there, reusable at once", async () => {
    const database = openDatabase(`sqlite://${join(lab.dir, 'state', 'novanet.sqlite')}`);
    try {
      await lab.exec(hostNs[0]!, ['ip', 'link', 'del', vms[0]!.tap]);
      await computeApi(0, 'DELETE', `/os-novanet/instances/${COMPUTE[0]!.instance}`, undefined, 204);
      // The network host hears of it within a poll and releases the lease it holds; dnsmasq's del frees the row.
      await eventually(
        async () => {
          const row = (await database.knex('fixed_ips').where('address', addresses[0]!).first()) as {
            leased: unknown;
            instance_uuid: unknown;
          };
          return !Number(row.leased) && row.instance_uuid === null ? true : undefined;
        },
        `the lease of ${addresses[0]} released on the network host`,
        5_000,
      );
      const info = await computeApi<NetworkInfo>(0, 'POST', '/os-novanet/instances', {
        instance: {
          uuid: '17171717-0000-4000-8000-000000000003',
          project_id: 'p1',
          host: 'compute1',
          requested_networks: [{ uuid: (await database.knex('networks').first('uuid')).uuid, fixed_ip: addresses[0] }],
        },
      });
      expect(info.network_info[0]!.network.subnets[0]!.ips[0]!.address).toBe(addresses[0]);
    } finally {
      await database.close();
    }
  });

  it("deallocating compute 2's last VM, once the VM is gone, removes compute 2's bridge", async () => {
    const { instance } = COMPUTE[1]!;
    // The hypervisor's part: the VM is destroyed, its tap with it.
    await lab.exec(hostNs[1]!, ['ip', 'link', 'del', vms[1]!.tap]);
    await computeApi(1, 'DELETE', `/os-novanet/instances/${instance}`, undefined, 204);
    expect(await link(hostNs[1]!, 'br100')).toBeUndefined();
    // Compute 1 still has its VM, and its bridge.
    expect(await link(hostNs[0]!, 'br100')).toBeDefined();
  });
});
