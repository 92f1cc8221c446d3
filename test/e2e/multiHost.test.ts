/**
 * multi_host on the real kernel: two compute hosts in their own namespaces, each
 * running its own novanet-network on one shared database. Each host serves DHCP to its
 * own VMs, NATs them, and binds their floating IPs; stopping one host's service leaves
 * the other host's VMs, and its own VMs' established traffic, untouched.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, Lab, type LabService, type LabVm, requireBuild } from '../../tools/lab.js';
import { callService } from '../support/serviceApi.js';

const ECHO_PORT = 9004;
const VM_PORT = 7002;
const INSTANCES = ['12121212-0000-4000-8000-000000000001', '12121212-0000-4000-8000-000000000002'];
/** Host 2's public side: its own subnet, routed by the outside host. */
const HOST2 = { address: '198.51.100.10', outside: '198.51.100.1', prefix: 24 };

interface Booted {
  address: string;
  gateway: string;
}

describe('multi_host in network namespaces: two compute hosts, one database', () => {
  let lab: Lab;
  let host2Ns: string;
  let vm2: LabVm;
  const configs: string[] = [];
  const services: LabService[] = [];
  let token: string;
  const booted: Booted[] = [];

  const api = <T>(method: string, path: string, body?: unknown, status = 200) =>
    callService<T>(services[0]!.api, token, method, path, body, status);
  const vms = () => [lab.vms[0]!, vm2];
  const boundOn = async (ns: string) => (await lab.exec(ns, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout;

  beforeAll(async () => {
    requireBuild();
    lab = await Lab.create({ vms: 1, flatInterfaceAddress: '172.31.0.10/24' });
    host2Ns = await lab.addHost('host2', HOST2.address, HOST2.outside, HOST2.prefix);
    vm2 = await lab.addVm('h2vm', host2Ns);
    configs.push(lab.writeConfig({ host: 'host1' }));
    configs.push(lab.writeConfig({ host: 'host2', my_ip: HOST2.address }, { ns: host2Ns, name: 'host2' }));
    token = await lab.provision(
      configs[0]!,
      [
        ['db', 'sync'],
        ['network', 'create', '--label=mh', '--fixed_range_v4=10.30.0.0/24', '--multi_host=T'],
        ['floating', 'create', '--ip_range=198.51.100.64/28', '--pool=host2-side'],
      ],
      'p1',
    );
    await lab.startEcho(ECHO_PORT);
    for (const config of configs) services.push(await lab.startService(config));
  }, 120_000);

  afterAll(async () => {
    for (const service of services) await service.stop();
    await lab?.destroy();
  });

  it("serves each VM by DHCP from its own host, both allocated through host 1's API", async () => {
    for (const [index, host] of ['host1', 'host2'].entries()) {
      const vm = vms()[index]!;
      const info = await api<{
        network_info: {
          address: string;
          network: { bridge: string; subnets: { gateway: { address: string }; ips: { address: string }[] }[] };
        }[];
      }>('POST', '/os-novanet/instances', { instance: { uuid: INSTANCES[index], project_id: 'p1', host, hostname: vm.name } });
      const vif = info.network_info[0]!;
      booted.push({ address: vif.network.subnets[0]!.ips[0]!.address, gateway: vif.network.subnets[0]!.gateway.address });
      // Host 2's service builds its bridge on hearing of its first VM through the
      // database (host 1's API took the call): within a second or so.
      const hostNs = vm.hostNs ?? lab.netNs;
      await eventually(
        async () => ((await lab.exec(hostNs, ['ip', 'link', 'show', 'dev', vif.network.bridge])).code === 0 ? true : undefined),
        `${vif.network.bridge} on ${host}`,
        5_000,
      );
      await lab.plug(vm, vif.network.bridge, vif.address);
    }
    expect(booted[0]!.gateway).not.toBe(booted[1]!.gateway);
    for (const [index, vm] of vms().entries()) {
      // Host 2 learns of its VM through the database (host 1's API took the call).
      const lease = await lab.lease(vm);
      expect(lease.address, lease.output).toBe(booted[index]!.address);
      expect(lease.server).toBe(booted[index]!.gateway);
      expect(lease.router).toBe(booted[index]!.gateway);
    }
    // Each host's gateway address is on its own bridge only.
    expect((await lab.exec(lab.netNs, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'br100'])).stdout).toContain(`${booted[0]!.gateway}/24`);
    expect((await lab.exec(host2Ns, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'br100'])).stdout).toContain(`${booted[1]!.gateway}/24`);
    expect((await lab.exec(lab.netNs, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'br100'])).stdout).not.toContain(`${booted[1]!.gateway}/`);
  });

  it("NATs each host's VMs to the outside as that host", async () => {
    expect(await lab.sourceSeenOutside(lab.vms[0]!, ECHO_PORT)).toBe(lab.publicAddress);
    expect(await lab.sourceSeenOutside(vm2, ECHO_PORT)).toBe(HOST2.address);
  });

  it('binds and NATs a floating IP of a VM on host 2 on host 2 only', async () => {
    const { floating_ip: floating } = await api<{ floating_ip: { ip: string } }>('POST', '/os-floating-ips', { pool: 'host2-side' });
    await api('POST', `/servers/${INSTANCES[1]}/action`, { addFloatingIp: { address: floating.ip } }, 202);
    await lab.startTcpServer(vm2.ns, VM_PORT, '0.0.0.0', 'h2vm ');
    // Host 2's service hears of it through the database (host 1's API took the call).
    const answer = await eventually(
      async () => {
        await lab.exec(lab.outsideNs, ['ip', 'neigh', 'flush', 'to', floating.ip]);
        const said = await lab.connect(lab.outsideNs, floating.ip, VM_PORT);
        return said.startsWith('h2vm') ? said : undefined;
      },
      'the floating IP to answer',
      15_000,
    );
    expect(answer).toBe(`h2vm ${HOST2.outside}`);
    expect(await boundOn(host2Ns)).toContain(`${floating.ip}/32`);
    expect(await boundOn(lab.netNs)).not.toContain(`${floating.ip}/32`);
    expect((await lab.exec(lab.netNs, ['iptables-save', '-t', 'nat'])).stdout).not.toContain(floating.ip);
    expect(await lab.sourceSeenOutside(vm2, ECHO_PORT)).toBe(floating.ip);
  });

  it("stopping host 1's service disturbs neither host 2's VMs nor host 1's VM's traffic", async () => {
    // 0.05 s apart across the stop; ping's own count bounds it.
    const pinging = lab.exec(lab.vms[0]!.ns, ['ping', '-i', '0.05', '-c', '60', '-W', '1', lab.outsideAddress], { timeoutMs: 30_000 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await services[0]!.stop();
    expect(await lab.sourceSeenOutside(vm2, ECHO_PORT)).not.toMatch(/^failed/);
    expect((await pinging).stdout).toMatch(/60 packets transmitted, 60 received, 0% packet loss/);
    // Back, it reconciles and serves again.
    services[0] = await lab.startService(configs[0]!);
    expect((await lab.dhcp(lab.vms[0]!)).address).toBe(booted[0]!.address);
  });

  it("moves a migrated VM's DHCP entry and floating IP to its new host", async () => {
    const floatingIp = (
      await api<{ floating_ips: { ip: string; instance_id: string | null }[] }>('GET', '/os-floating-ips')
    ).floating_ips.find((entry) => entry.instance_id === INSTANCES[1])!.ip;
    // The compute side of a migration: the VM's port now plugs into host 1, which the
    // re-allocation names.
    expect((await lab.exec(host2Ns, ['ip', 'link', 'set', vm2.tap, 'netns', lab.netNs])).code).toBe(0);
    vm2.hostNs = lab.netNs;
    const moved = await api<{
      network_info: { address: string; network: { bridge: string; subnets: { gateway: { address: string } }[] } }[];
    }>('POST', '/os-novanet/instances', { instance: { uuid: INSTANCES[1], project_id: 'p1', host: 'host1', hostname: vm2.name } });
    const vif = moved.network_info[0]!;
    expect(vif.network.subnets[0]!.gateway.address).toBe(booted[0]!.gateway);
    await lab.plug(vm2, vif.network.bridge, vif.address);
    const lease = await lab.dhcp(vm2);
    expect(lease.address, lease.output).toBe(booted[1]!.address);
    expect(lease.server).toBe(booted[0]!.gateway);
    // Host 1 binds the floating IP now; host 2, told through the database, lets it go.
    expect(await boundOn(lab.netNs)).toContain(`${floatingIp}/32`);
    await eventually(
      async () => (!(await boundOn(host2Ns)).includes(`${floatingIp}/32`) ? true : undefined),
      'host 2 to unbind the floating IP',
      5_000,
    );
    const host2Hosts = await eventually(
      async () => {
        const text = (await lab.exec(host2Ns, ['cat', `${lab.dir}/state-host2/networks/nova-br100.hosts`])).stdout;
        return text.includes(booted[1]!.address) ? undefined : text;
      },
      "host 2's dnsmasq to forget the VM",
      5_000,
    );
    expect(host2Hosts).not.toContain(vif.address);
  });
});
