/**
 * IPv6 on the real kernel (issue 18): a FlatDHCP network with a /64. The network
 * host puts the network's v6 gateway on the bridge, forwards IPv6, and its dnsmasq
 * advertises the prefix (SLAAC) with the MTU and itself as DNS server. A VM namespace
 * with the kernel's default IPv6 settings forms exactly the address network_info gave
 * it, routes through the host's link-local address, and reaches the outside (and is
 * reached from it) over routed IPv6, no NAT. Restarts lose no echo; drift is repaired.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vifAddressV6 } from '../../src/ipam/ipv6.js';
import { eventually, Lab, type LabService, type LabVm, requireBuild } from '../../tools/lab.js';
import { callService } from '../support/serviceApi.js';

const V6_RANGE = 'fd00:60::/48';
const V6_PREFIX = 'fd00:60::/64';
const INSTANCE = '18181818-6666-4000-8000-000000000001';

interface NetworkInfo {
  network_info: {
    address: string;
    network: { bridge: string; subnets: { cidr: string; gateway: { address: string } | null; ips: { address: string }[] }[] };
  }[];
}

/** What each firewall backend holds of IPv6, and the change line a rewrite of it logs. */
const BACKENDS = [
  { backend: 'iptables', listing: ['ip6tables-save'], changed: '"ip6 filter' },
  { backend: 'nftables', listing: ['nft', 'list', 'table', 'ip6', 'novanet'], changed: '"ip6 novanet' },
];

describe.each(BACKENDS)('IPv6: a FlatDHCP network with a /64 ($backend)', ({ backend, listing, changed }) => {
  let lab: Lab;
  let service: LabService;
  let vm: LabVm;
  let bridge: string;
  let v6: string;
  let gatewayV6: string;
  let mac: string;
  let token: string;
  let config: string;
  let log = '';
  const start = async () => {
    service = await lab.startService(config, (chunk) => {
      log += chunk;
    });
  };

  const json = async <T>(ns: string, argv: string[]): Promise<T> => {
    const result = await lab.exec(ns, argv);
    if (result.code !== 0) throw new Error(`${argv.join(' ')}: ${result.stderr}`);
    return JSON.parse(result.stdout) as T;
  };
  /** The VM's global IPv6 addresses that passed duplicate address detection. */
  const globalAddresses = () => lab.addressesV6(vm.ns, 'eth0', 'global');

  beforeAll(async () => {
    requireBuild();
    lab = await Lab.create({ vms: 1, flatInterfaceAddress: '172.31.0.10/24' });
    vm = lab.vms[0]!;
    config = lab.writeConfig({ reconcile_interval: '2', firewall_backend: backend });
    token = await lab.provision(
      config,
      [
        ['db', 'sync'],
        ['network', 'create', '--label=v6net', '--fixed_range_v4=10.60.0.0/24', `--fixed_range_v6=${V6_RANGE}`, '--bridge=br100'],
      ],
      'p1',
    );
    await start();
    const info = await callService<NetworkInfo>(service.api, token, 'POST', '/os-novanet/instances', {
      instance: { uuid: INSTANCE, project_id: 'p1', host: 'nethost', hostname: 'v6vm' },
    });
    const vif = info.network_info[0]!;
    mac = vif.address;
    bridge = vif.network.bridge;
    const subnetV6 = vif.network.subnets.find((subnet) => subnet.cidr.includes(':'))!;
    v6 = subnetV6.ips[0]!.address;
    gatewayV6 = subnetV6.gateway!.address;
    await lab.plug(vm, bridge, vif.address);
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    await lab?.destroy();
  });

  it("forms by SLAAC exactly the address network_info gave, routed through the host's link-local address", async () => {
    expect(`${v6.split(':').slice(0, 2).join(':')}::/64`).toBe(V6_PREFIX);
    await eventually(async () => ((await globalAddresses()).includes(v6) ? true : undefined), `the VM to form ${v6}`, 10_000);
    expect(await globalAddresses()).toEqual([v6]);
    const [hostLinkLocal] = await lab.addressesV6(lab.netNs, bridge, 'link');
    expect(hostLinkLocal).toMatch(/^fe80::/);
    const routes = await json<{ dst: string; gateway?: string }[]>(vm.ns, ['ip', '-6', '-j', 'route', 'show', 'default']);
    expect(routes.map((route) => route.gateway)).toEqual([hostLinkLocal]);
    // The bridge holds the network's gateway address.
    const onBridge = await lab.addressesV6(lab.netNs, bridge, 'global');
    expect(onBridge).toEqual([gatewayV6]);
  });

  it('advertises the MTU and the host as DNS server', async () => {
    const shown = await lab.exec(vm.ns, ['rdisc6', '-1', '-r', '3', 'eth0']);
    expect(shown.code, shown.stderr).toBe(0);
    const mtu = (await json<{ mtu: number }[]>(lab.netNs, ['ip', '-j', 'link', 'show', 'dev', bridge]))[0]!.mtu;
    expect(shown.stdout).toMatch(new RegExp(`MTU\\s+:\\s+${mtu} bytes`));
    expect(shown.stdout).toMatch(new RegExp(`Prefix\\s+:\\s+${V6_PREFIX.replace('/', '\\/')}`));
    const from = /from (fe80::\S+)/.exec(shown.stdout)?.[1];
    expect(shown.stdout).toMatch(new RegExp(`Recursive DNS server\\s+:\\s+${from}`));
  });

  it('reaches the outside over routed IPv6, and is reached from it (iptables: through an ip6tables FORWARD that drops)', async () => {
    const rules = (await lab.exec(lab.netNs, listing)).stdout;
    if (backend === 'iptables') {
      // Only novanet's rules (ip6tables' nova-network-FORWARD) let the VM's traffic through.
      expect((await lab.exec(lab.netNs, ['ip6tables', '-P', 'FORWARD', 'DROP'])).code).toBe(0);
      expect(rules).toContain('-A nova-network-FORWARD -i br100 -j ACCEPT');
      expect(rules).toContain('-A FORWARD -j nova-filter-top');
    } else {
      // An accept in novanet's table overrides no other table's drop (as for IPv4): the rules are there.
      expect(rules).toMatch(/iifname "br100" accept comment/);
      expect(rules).toMatch(/iifname "br100" udp dport 547 accept comment/);
    }
    // No NAT: the outside sees the VM's own address, and reaches the /64 by a route via the network host.
    await lab.exec(lab.outsideNs, ['ip', '-6', 'route', 'replace', V6_PREFIX, 'via', lab.publicAddressV6]);
    const out = await lab.exec(vm.ns, ['ping', '-6', '-c', '2', '-W', '2', lab.outsideAddressV6]);
    expect(out.code, out.stdout + out.stderr).toBe(0);
    const back = await lab.exec(lab.outsideNs, ['ping', '-6', '-c', '2', '-W', '2', v6]);
    expect(back.code, back.stdout + back.stderr).toBe(0);
  });

  it('restarts twice without losing an echo of a VM pinging the outside over IPv6', async () => {
    // 0.05 s apart for the length of two restarts; ping's own count bounds it.
    const pinging = lab.exec(vm.ns, ['ping', '-6', '-i', '0.05', '-c', '80', '-W', '1', lab.outsideAddressV6], { timeoutMs: 60_000 });
    const before = (await lab.exec(lab.netNs, listing)).stdout.replace(/^#.*\n/gm, '');
    for (let restart = 0; restart < 2; restart++) {
      await service.stop();
      await start();
    }
    expect((await pinging).stdout).toMatch(/80 packets transmitted, 80 received, 0% packet loss/);
    // The restarts found the IPv6 rules as they wrote them: nothing rewritten.
    expect((await lab.exec(lab.netNs, listing)).stdout.replace(/^#.*\n/gm, '')).toBe(before);
    expect(log).not.toMatch(new RegExp(`"kind":"full"[^\\n]*${changed}`));
  });

  it('puts back a removed v6 gateway and a killed dnsmasq at the next reconcile', async () => {
    const pidFile = join(lab.dir, 'state', 'networks', `nova-${bridge}.pid`);
    const killed = Number(readFileSync(pidFile, 'utf8').trim());
    expect((await lab.exec(lab.netNs, ['ip', '-6', 'addr', 'del', `${gatewayV6}/64`, 'dev', bridge])).code).toBe(0);
    // The dnsmasq our service started for this lab, by its PID.
    process.kill(killed, 'SIGKILL');
    const since = log.length;
    await eventually(
      async () => (/"kind":"full"[^\n]*gateway fd00:60::1\/64 on br100/.test(log.slice(since)) ? true : undefined),
      'a full reconcile to put the v6 gateway back',
      10_000,
    );
    const restarted = Number(readFileSync(pidFile, 'utf8').trim());
    expect(restarted).not.toBe(killed);
    // Advertising again: the VM hears the prefix.
    const shown = await lab.exec(vm.ns, ['rdisc6', '-1', '-r', '3', 'eth0']);
    expect(shown.stdout).toMatch(/Prefix\s+:\s+fd00:60::\/64/);
  });

  it("account_identifier: hands the VM nova's project-and-MAC address by DHCPv6, and routes it", async () => {
    await service.stop();
    config = lab.writeConfig({ reconcile_interval: '2', firewall_backend: backend, ipv6_backend: 'account_identifier' });
    await start();
    const expected = vifAddressV6('account_identifier', V6_PREFIX, mac, 'p1');
    expect(expected).not.toBe(v6);
    const info = await callService<NetworkInfo>(service.api, token, 'GET', `/os-novanet/instances/${INSTANCE}`);
    const subnetV6 = info.network_info[0]!.network.subnets.find((subnet) => subnet.cidr.includes(':'))!;
    expect(subnetV6.ips.map((ip) => ip.address)).toEqual([expected]);
    // The advertisement now says: addresses from DHCPv6, not SLAAC.
    const shown = await lab.exec(vm.ns, ['rdisc6', '-1', '-r', '3', 'eth0']);
    expect(shown.stdout).toMatch(/Stateful address conf\.\s+:\s+Yes/);
    expect(shown.stdout).toMatch(/Autonomous address conf\.\s*:\s+No/);
    const lease = await lab.dhcp6(vm);
    expect(lease.address, lease.output).toBe(expected);
    await eventually(async () => ((await globalAddresses()).includes(expected) ? true : undefined), `${expected} to pass DAD`, 5_000);
    const out = await lab.exec(vm.ns, ['ping', '-6', '-c', '2', '-W', '2', '-I', expected, lab.outsideAddressV6]);
    expect(out.code, out.stdout + out.stderr).toBe(0);
    const back = await lab.exec(lab.outsideNs, ['ping', '-6', '-c', '2', '-W', '2', expected]);
    expect(back.code, back.stdout + back.stderr).toBe(0);
  });
});
