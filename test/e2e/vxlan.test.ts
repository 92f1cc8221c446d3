/**
 * VLAN mode over VXLAN on the real kernel (issue 17): a network host and two compute
 * hosts on one IPv4 underlay, `vlan_transport = vxlan`, two projects with a VM of each
 * on both compute hosts. Each project's network is a vxlan<VLAN id> on every host that
 * holds it, flooding to exactly the others; DHCP comes from the network host across
 * it, with the MTU 50 bytes below the underlay's. Each network has a /64 as well (issue
 * 18): advertised by the network host across VXLAN to its own project only, routed
 * out and in, isolated between projects, and (account_identifier) by DHCPv6.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vifAddressV6 } from '../../src/ipam/ipv6.js';
import { eventually, Lab, type LabService, type LabVm, requireBuild } from '../../tools/lab.js';
import { callService } from '../support/serviceApi.js';

const HOSTS = [
  { name: 'compute1', address: '172.31.0.21' },
  { name: 'compute2', address: '172.31.0.22' },
];
const NET_HOST = '172.31.0.10';
const PROJECTS = [
  { project: 'p1', cidr: '10.50.0.0/24', cidrV6: 'fd00:50::/64', vlan: 100 },
  { project: 'p2', cidr: '10.51.0.0/24', cidrV6: 'fd00:51::/64', vlan: 101 },
];

interface NetworkInfo {
  network_info: {
    address: string;
    network: { bridge: string; subnets: { version: number; gateway: { address: string }; ips: { address: string }[] }[] };
  }[];
}

interface Booted {
  vm: LabVm;
  project: number;
  host: number;
  uuid: string;
  mac: string;
  bridge: string;
  address: string;
  gateway: string;
  v6: string;
}

describe('VLAN mode over VXLAN: two projects on two compute hosts', () => {
  let lab: Lab;
  const hostNs: string[] = [];
  const services: LabService[] = [];
  let netConfig: string;
  let token: string;
  const booted: Booted[] = [];

  /** The flood peers of vxlan<VNI> in `ns`, sorted. */
  const floodPeers = async (ns: string, vni: number) => {
    const shown = await lab.exec(ns, ['bridge', '-j', 'fdb', 'show', 'dev', `vxlan${vni}`]);
    if (shown.code !== 0) return undefined;
    return (JSON.parse(shown.stdout) as { mac: string; dst?: string }[])
      .filter((entry) => entry.mac === '00:00:00:00:00:00')
      .map((entry) => entry.dst)
      .sort();
  };
  const options = (host: string, address: string) => ({
    host,
    network_manager: 'vlan',
    vlan_interface: 'eth1',
    vlan_transport: 'vxlan',
    tunnel_ip: address,
  });

  beforeAll(async () => {
    requireBuild();
    lab = await Lab.create({ vms: 0, underlay: true, flatInterfaceAddress: `${NET_HOST}/24` });
    netConfig = lab.writeConfig(options('nethost', NET_HOST));
    const configs = [netConfig];
    for (const host of HOSTS) {
      const ns = await lab.addComputeHost(host.name, `${host.address}/24`);
      hostNs.push(ns);
      configs.push(
        lab.writeConfig({ ...options(host.name, host.address), network_host: 'false', my_ip: host.address }, { ns, name: host.name }),
      );
    }
    token = await lab.provision(
      netConfig,
      [
        ['db', 'sync'],
        ...PROJECTS.map(({ project, cidr, cidrV6, vlan }) => [
          'network',
          'create',
          `--label=${project}net`,
          `--fixed_range_v4=${cidr}`,
          `--fixed_range_v6=${cidrV6}`,
          `--vlan=${vlan}`,
          `--project_id=${project}`,
        ]),
      ],
      'ops',
    );
    for (const config of configs) services.push(await lab.startService(config));
  }, 120_000);

  afterAll(async () => {
    for (const service of services) await service.stop();
    await lab?.destroy();
  });

  it("leases each VM its address from its project's network host across VXLAN, with MTU 1450", async () => {
    let n = 0;
    for (const [project] of PROJECTS.entries()) {
      for (const [host, { name }] of HOSTS.entries()) {
        n += 1;
        const uuid = `18181818-0000-4000-8000-00000000000${n}`;
        const vm = await lab.addVm(`p${project + 1}h${host + 1}`, hostNs[host]!);
        const info = await callService<NetworkInfo>(services[host + 1]!.api, token, 'POST', '/os-novanet/instances', {
          instance: { uuid, project_id: PROJECTS[project]!.project, host: name, hostname: vm.name },
        });
        const vif = info.network_info[0]!;
        const [subnet, subnetV6] = vif.network.subnets;
        await lab.plug(vm, vif.network.bridge, vif.address);
        booted.push({
          vm,
          project,
          host,
          uuid,
          mac: vif.address,
          bridge: vif.network.bridge,
          address: subnet!.ips[0]!.address,
          gateway: subnet!.gateway.address,
          v6: subnetV6!.ips[0]!.address,
        });
      }
    }
    for (const entry of booted) {
      const lease = await lab.lease(entry.vm);
      expect(lease.address, lease.output).toBe(entry.address);
      expect(lease.server).toBe(entry.gateway);
      expect(lease.mtu).toBe(1450);
    }
  });

  it("floods each network's VXLAN to exactly the other hosts that hold it", async () => {
    const wanted = [
      [lab.netNs, HOSTS.map((host) => host.address)],
      [hostNs[0]!, [NET_HOST, HOSTS[1]!.address]],
      [hostNs[1]!, [NET_HOST, HOSTS[0]!.address]],
    ] as const;
    // A host learns that another one joined a network when woken, or at its next poll
    // (a host that joined within the last second may not have been woken): a second.
    await eventually(
      async () => {
        for (const { vlan } of PROJECTS) {
          for (const [ns, peers] of wanted) if ((await floodPeers(ns, vlan))?.join() !== peers.join()) return undefined;
        }
        return true;
      },
      'every flood list to be complete',
      2_000,
    );
    for (const { vlan } of PROJECTS) for (const [ns, peers] of wanted) expect(await floodPeers(ns, vlan)).toEqual(peers);
  });

  it("gives each VM its project's IPv6 by SLAAC from the network host's advertisements across VXLAN, and only those", async () => {
    // Side by side: each solicitation listens 3 s for every answer.
    await Promise.all(
      booted.map(async (entry) => {
        const { cidrV6 } = PROJECTS[entry.project]!;
        await eventually(
          async () => ((await lab.addressesV6(entry.vm.ns, 'eth0', 'global')).includes(entry.v6) ? true : undefined),
          `${entry.vm.name} to form ${entry.v6}`,
          15_000,
        );
        expect(await lab.addressesV6(entry.vm.ns, 'eth0', 'global')).toEqual([entry.v6]);
        // One router answers: the network host, on this project's bridge; with the VXLAN's
        // MTU, itself as DNS server, and this project's prefix only.
        const router = await lab.addressesV6(lab.netNs, entry.bridge, 'link');
        const { routers, output } = await lab.solicitRouters(entry.vm);
        expect(routers, output).toEqual(router);
        expect(output).toMatch(/MTU\s+:\s+1450 bytes/);
        expect(output).toMatch(new RegExp(`Recursive DNS server\\s+:\\s+${router[0]}`));
        expect([...new Set([...output.matchAll(/Prefix\s+:\s+(\S+)/g)].map((match) => match[1]))]).toEqual([cidrV6]);
        const routes = JSON.parse((await lab.exec(entry.vm.ns, ['ip', '-6', '-j', 'route', 'show', 'default'])).stdout) as {
          gateway?: string;
        }[];
        expect(routes.map((route) => route.gateway)).toEqual(router);
      }),
    );
    // Routed, not NATed: the outside reaches each /64 through the network host.
    for (const { cidrV6 } of PROJECTS) await lab.exec(lab.outsideNs, ['ip', '-6', 'route', 'replace', cidrV6, 'via', lab.publicAddressV6]);
    for (const entry of booted) {
      const out = await lab.exec(entry.vm.ns, ['ping', '-6', '-c', '1', '-W', '2', lab.outsideAddressV6]);
      expect(out.code, out.stdout + out.stderr).toBe(0);
      const back = await lab.exec(lab.outsideNs, ['ping', '-6', '-c', '1', '-W', '2', entry.v6]);
      expect(back.code, back.stdout + back.stderr).toBe(0);
    }
  });

  it('carries a project across hosts, 1422 bytes with DF set but not 1423, and nothing of it reaches the other project', async () => {
    const [p1h1, p1h2, p2h1] = booted;
    const ping = await lab.exec(p1h1!.vm.ns, ['ping', '-c', '2', '-W', '2', p1h2!.address]);
    expect(ping.code, ping.stdout + ping.stderr).toBe(0);
    const fits = await lab.exec(p1h1!.vm.ns, ['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1422', p1h2!.address]);
    expect(fits.code, fits.stdout + fits.stderr).toBe(0);
    const over = await lab.exec(p1h1!.vm.ns, ['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1423', p1h2!.address]);
    expect(over.code).not.toBe(0);
    // Another project's VM on the same compute host is on another bridge: no ARP answer reaches it.
    const arp = await lab.exec(p1h1!.vm.ns, ['arping', '-c', '2', '-w', '3', '-I', 'eth0', p2h1!.address]);
    expect(arp.code, arp.stdout).not.toBe(0);
  });

  it('routes nothing between projects through the network host, with either firewall backend', async () => {
    const [p1h1, p1h2, p2h1, p2h2] = booted;
    // ping picks the family from the address.
    const reaches = async (from: Booted, to: string) => (await lab.exec(from.vm.ns, ['ping', '-c', '1', '-W', '1', to])).code === 0;
    for (const backend of ['iptables', 'nftables']) {
      if (backend !== 'iptables') {
        // A restart on the other backend: it replaces the first one's rules.
        await services[0]!.stop();
        services[0] = await lab.startService(lab.writeConfig({ ...options('nethost', NET_HOST), firewall_backend: backend }));
      }
      // Each VM's gateway is the network host: it still routes them out, but not to each other.
      const cases: [string, Booted, string, boolean][] = [
        ['same project', p1h1!, p1h2!.address, true],
        ['outside', p1h1!, lab.outsideAddress, true],
        ['p1 to p2, same compute host', p1h1!, p2h1!.address, false],
        ['p2 to p1', p2h2!, p1h2!.address, false],
        ['p2 to p1, across hosts', p2h2!, p1h1!.address, false],
        ['same project, IPv6', p1h1!, p1h2!.v6, true],
        ['outside, IPv6', p1h1!, lab.outsideAddressV6, true],
        ['p1 to p2, same compute host, IPv6', p1h1!, p2h1!.v6, false],
        ['p2 to p1, across hosts, IPv6', p2h2!, p1h1!.v6, false],
      ];
      // Side by side: each refused ping waits its second out.
      const reached = await Promise.all(cases.map(([, from, to]) => reaches(from, to)));
      for (const [index, [what, , , expected]] of cases.entries()) expect(reached[index], `${backend}: ${what}`).toBe(expected);
    }
  });

  it("drops a host out of every peer's flood list when its last VM of a network leaves", async () => {
    const leaving = booted.find((entry) => entry.project === 0 && entry.host === 1)!;
    await lab.exec(hostNs[1]!, ['ip', 'link', 'del', leaving.vm.tap]);
    await callService(services[2]!.api, token, 'DELETE', `/os-novanet/instances/${leaving.uuid}`, undefined, 204);
    const vni = PROJECTS[0]!.vlan;
    await eventually(
      async () => ((await floodPeers(lab.netNs, vni))?.join() === HOSTS[0]!.address ? true : undefined),
      'the network host to stop flooding to compute2',
      5_000,
    );
    await eventually(
      async () => ((await floodPeers(hostNs[0]!, vni))?.join() === NET_HOST ? true : undefined),
      'compute1 to stop flooding to compute2',
      5_000,
    );
    expect(await floodPeers(hostNs[1]!, vni)).toBeUndefined();
    // The other project's network on compute2 is untouched.
    expect(await floodPeers(hostNs[1]!, PROJECTS[1]!.vlan)).toEqual([NET_HOST, HOSTS[0]!.address]);
  });

  it('floods to a multicast group instead, once every host is configured with one', async () => {
    const group = '239.1.1.1';
    // And DHCPv6 addresses (account_identifier), for the last test.
    const changed = { vxlan_group: group, ipv6_backend: 'account_identifier' };
    for (const service of services) await service.stop();
    services[0] = await lab.startService(lab.writeConfig({ ...options('nethost', NET_HOST), ...changed }));
    for (const [index, host] of HOSTS.entries()) {
      const config = lab.writeConfig(
        { ...options(host.name, host.address), network_host: 'false', my_ip: host.address, ...changed },
        { ns: hostNs[index]!, name: host.name },
      );
      services[index + 1] = await lab.startService(config);
    }
    // Each host's start rebuilt its vxlan<VNI> with the group: the group is its one flood entry.
    const vni = PROJECTS[1]!.vlan;
    for (const ns of [lab.netNs, ...hostNs]) expect(await floodPeers(ns, vni)).toEqual([group]);
    const p2 = booted.filter((entry) => entry.project === 1);
    const ping = await lab.exec(p2[0]!.vm.ns, ['ping', '-c', '2', '-W', '2', p2[1]!.address]);
    expect(ping.code, ping.stdout + ping.stderr).toBe(0);
    // DHCP's broadcasts cross by the group too.
    const lease = await lab.lease(p2[1]!.vm);
    expect(lease.address, lease.output).toBe(p2[1]!.address);
    expect(lease.server).toBe(p2[1]!.gateway);
  });

  it("hands each VM its account_identifier address by DHCPv6 from its own project's network only", async () => {
    // Both projects' dnsmasqs now answer DHCPv6 (to a client they do not know as well): a
    // message from p1's would mean its bridge and p2's share a segment.
    const entry = booted.find((candidate) => candidate.project === 1 && candidate.host === 1)!;
    const expected = vifAddressV6('account_identifier', PROJECTS[1]!.cidrV6, entry.mac, PROJECTS[1]!.project);
    const lease = await lab.dhcp6(entry.vm);
    expect(lease.address, lease.output).toBe(expected);
    expect(lease.servers, lease.output).toEqual(await lab.addressesV6(lab.netNs, entry.bridge, 'link'));
    await eventually(
      async () => ((await lab.addressesV6(entry.vm.ns, 'eth0', 'global')).includes(expected) ? true : undefined),
      `${expected} to pass DAD`,
      5_000,
    );
    const out = await lab.exec(entry.vm.ns, ['ping', '-6', '-c', '1', '-W', '2', '-I', expected, lab.outsideAddressV6]);
    expect(out.code, out.stdout + out.stderr).toBe(0);
  });
});
