/**
 * multi_host over a shared underlay on the real kernel (issue 17): two hosts whose
 * bridges are joined by their flat_interface on one switch. Their VMs reach each other
 * across it, and each VM leases and renews from its own host only: DHCP frames are
 * dropped where they would cross the uplink (a bridge-family nftables table), so no
 * DHCP frame of host 1's VM reaches host 2's bridge. Router advertisements too: each
 * VM has its own host as its one IPv6 router.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, Lab, type LabService, type LabVm, requireBuild } from '../../tools/lab.js';
import { callService } from '../support/serviceApi.js';

const INSTANCES = ['19191919-0000-4000-8000-000000000001', '19191919-0000-4000-8000-000000000002'];
/** A bridge-family table of the test's on host 2: counts DHCP frames each VM's MAC sends that reach its bridge. */
const CAPTURE = 'nnlab_capture';

describe('multi_host over a shared underlay: two hosts, DHCP kept on each', () => {
  let lab: Lab;
  let host2Ns: string;
  const vms: LabVm[] = [];
  const services: LabService[] = [];
  let config: string;
  let token: string;
  const leased: { address: string; gateway: string; mac: string; v6: string }[] = [];

  /** Host 2's count of DHCP frames from `mac` that reached its bridge br100. */
  const seenOnHost2 = async (mac: string) => {
    const listed = await lab.exec(host2Ns, ['nft', 'list', 'table', 'bridge', CAPTURE]);
    const line = listed.stdout.split('\n').find((entry) => entry.includes(mac));
    return Number(/counter packets (\d+)/.exec(line ?? '')?.[1] ?? 'NaN');
  };

  beforeAll(async () => {
    requireBuild();
    lab = await Lab.create({ vms: 1, underlay: true, flatInterfaceAddress: '172.31.0.10/24' });
    vms.push(lab.vms[0]!);
    host2Ns = await lab.addComputeHost('host2', '172.31.0.22/24');
    vms.push(await lab.addVm('h2vm', host2Ns));
    config = lab.writeConfig({ host: 'host1' });
    const host2Config = lab.writeConfig({ host: 'host2', my_ip: '172.31.0.22', network_host: 'false' }, { ns: host2Ns, name: 'host2' });
    token = await lab.provision(
      config,
      [
        ['db', 'sync'],
        ['network', 'create', '--label=mhu', '--fixed_range_v4=10.60.0.0/24', '--fixed_range_v6=fd00:61::/48', '--multi_host=T'],
      ],
      'p1',
    );
    for (const file of [config, host2Config]) services.push(await lab.startService(file));
  }, 120_000);

  afterAll(async () => {
    for (const service of services) await service.stop();
    await lab?.destroy();
  });

  it('leases each VM from its own host, and both bridges are joined by the underlay', async () => {
    for (const [index, host] of ['host1', 'host2'].entries()) {
      const info = await callService<{
        network_info: {
          address: string;
          network: { bridge: string; subnets: { gateway: { address: string }; ips: { address: string }[] }[] };
        }[];
      }>(services[0]!.api, token, 'POST', '/os-novanet/instances', { instance: { uuid: INSTANCES[index], project_id: 'p1', host } });
      const vif = info.network_info[0]!;
      const hostNs = vms[index]!.hostNs ?? lab.netNs;
      await eventually(
        async () => ((await lab.exec(hostNs, ['ip', 'link', 'show', 'dev', 'br100'])).code === 0 ? true : undefined),
        `br100 on ${host}`,
        5_000,
      );
      const [subnet, subnetV6] = vif.network.subnets;
      leased.push({ address: subnet!.ips[0]!.address, gateway: subnet!.gateway.address, mac: vif.address, v6: subnetV6!.ips[0]!.address });
    }
    // Counting starts before the first DHCP frame: each VM's MAC, as it reaches host 2's bridge.
    const rules = leased.map(
      (entry) =>
        `    iifname != "eth1" ether saddr ${entry.mac} udp dport 67 counter\n    iifname "eth1" ether saddr ${entry.mac} udp dport 67 counter`,
    );
    const capture = `table bridge ${CAPTURE} {\n  chain seen { type filter hook prerouting priority 0; policy accept;\n${rules.join('\n')}\n  }\n}\n`;
    expect((await lab.exec(host2Ns, ['nft', '-f', '-'], { input: capture })).code).toBe(0);
    for (const [index, vm] of vms.entries()) {
      await lab.plug(vm, 'br100', leased[index]!.mac);
      const lease = await lab.lease(vm);
      expect(lease.address, lease.output).toBe(leased[index]!.address);
      expect(lease.server).toBe(leased[index]!.gateway);
    }
    expect(leased[0]!.gateway).not.toBe(leased[1]!.gateway);
    const ping = await lab.exec(vms[0]!.ns, ['ping', '-c', '2', '-W', '2', leased[1]!.address]);
    expect(ping.code, ping.stdout + ping.stderr).toBe(0);
  });

  it('renews each lease from its own host, and no DHCP frame of host 1’s VM reaches host 2’s bridge', async () => {
    for (const [index, vm] of vms.entries()) {
      const lease = await lab.dhcp(vm, { tries: 3 });
      expect(lease.address, lease.output).toBe(leased[index]!.address);
      expect(lease.server).toBe(leased[index]!.gateway);
    }
    // Host 2's own VM: its frames are counted (the capture works); host 1's: none arrived from the underlay.
    const listed = (await lab.exec(host2Ns, ['nft', 'list', 'table', 'bridge', CAPTURE])).stdout.split('\n');
    const count = (mac: string, fromUplink: boolean) =>
      Number(/counter packets (\d+)/.exec(listed.find((line) => line.includes(mac) && line.includes('!=') !== fromUplink) ?? '')?.[1]);
    expect(count(leased[1]!.mac, false), listed.join('\n')).toBeGreaterThan(0);
    expect(count(leased[0]!.mac, true), listed.join('\n')).toBe(0);
    expect(await seenOnHost2(leased[0]!.mac)).toBe(0);
  });

  it('gives each VM its own host as its one IPv6 router: no router advertisement crosses the uplink', async () => {
    const hostNs = [lab.netNs, host2Ns];
    for (const [index, vm] of vms.entries()) {
      const bridgeLinkLocal = await lab.addressesV6(hostNs[index]!, 'br100', 'link');
      // Another host's router answers too if the solicitation (or its answer) crossed the uplink.
      const heard = await eventually(
        async () => {
          const { routers } = await lab.solicitRouters(vm);
          return routers.length > 0 ? routers : undefined;
        },
        `a router to answer ${vm.name}`,
        15_000,
      );
      expect(heard, vm.name).toEqual(bridgeLinkLocal);
    }
  });

  it('still carries IPv6 between the hosts: neighbour discovery crosses the uplink, only router and DHCPv6 messages do not', async () => {
    for (const [index, vm] of vms.entries()) {
      await eventually(
        async () => ((await lab.addressesV6(vm.ns, 'eth0', 'global')).includes(leased[index]!.v6) ? true : undefined),
        `${vm.name} to form ${leased[index]!.v6}`,
        10_000,
      );
    }
    const ping = await lab.exec(vms[0]!.ns, ['ping', '-6', '-c', '2', '-W', '2', leased[1]!.v6]);
    expect(ping.code, ping.stdout + ping.stderr).toBe(0);
  });
});
