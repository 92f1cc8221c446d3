/**
 * Anti-spoofing at each VM's port on the real kernel (issue 19): two VMs whose taps
 * are named as network_info's devname, plugged by the service of their host. VM A
 * tries to send as another address or MAC, to answer ARP for B's address, to answer
 * DHCP, and to advertise itself as an IPv6 router; none of it gets through, while its
 * own traffic with its real addresses flows. The guard is a bridge-family table, the
 * same under either firewall backend.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, Lab, type LabService, type LabVm, requireBuild } from '../../tools/lab.js';
import { callService } from '../support/serviceApi.js';

interface NetworkInfo {
  network_info: {
    address: string;
    devname: string;
    network: { bridge: string; subnets: { version: number; ips: { address: string }[] }[] };
  }[];
}

interface Booted {
  vm: LabVm;
  mac: string;
  address: string;
  v6: string;
}

describe.each(['iptables', 'nftables'])('anti-spoofing at VM ports (%s)', (backend) => {
  let lab: Lab;
  let service: LabService;
  let a: Booted;
  let b: Booted;
  let config: string;
  let log = '';
  const start = async () => {
    service = await lab.startService(config, (chunk) => {
      log += chunk;
    });
  };

  const inVm = (who: Booted, argv: string[], timeoutMs = 10_000) => lab.exec(who.vm.ns, argv, { timeoutMs });
  const pings = async (from: Booted, to: string, source?: string) =>
    (await inVm(from, ['ping', '-c', '1', '-W', '1', ...(source ? ['-I', source] : []), to])).code === 0;

  beforeAll(async () => {
    requireBuild();
    lab = await Lab.create({ vms: 0, flatInterfaceAddress: '172.31.0.10/24' });
    config = lab.writeConfig({ reconcile_interval: '2', firewall_backend: backend });
    const token = await lab.provision(
      config,
      [
        ['db', 'sync'],
        ['network', 'create', '--label=guarded', '--fixed_range_v4=10.71.0.0/24', '--fixed_range_v6=fd00:71::/48', '--bridge=br100'],
      ],
      'p1',
    );
    await start();
    const booted: Booted[] = [];
    for (const [index, name] of ['a', 'b'].entries()) {
      const info = await callService<NetworkInfo>(service.api, token, 'POST', '/os-novanet/instances', {
        instance: { uuid: `19191919-5555-4000-8000-00000000000${index + 1}`, project_id: 'p1', host: 'nethost', hostname: name },
      });
      const vif = info.network_info[0]!;
      // The hypervisor's part: a tap under the VIF's devname; the service plugs it.
      const vm = await lab.addVm(name, lab.netNs, vif.devname);
      await lab.boot(vm, vif.address);
      await lab.exec(lab.netNs, ['ip', 'link', 'set', vif.devname, 'up']);
      const [v4, v6] = vif.network.subnets;
      booted.push({ vm, mac: vif.address, address: v4!.ips[0]!.address, v6: v6!.ips[0]!.address });
    }
    [a, b] = booted as [Booted, Booted];
    for (const entry of booted) {
      // Leases pass the guard: a DHCP request from 0.0.0.0, the server's reply from the bridge.
      const lease = await lab.lease(entry.vm);
      expect(lease.address, lease.output).toBe(entry.address);
      await eventually(
        async () => ((await lab.addressesV6(entry.vm.ns, 'eth0', 'global')).includes(entry.v6) ? true : undefined),
        `${entry.vm.name} to form ${entry.v6}`,
        10_000,
      );
    }
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    await lab?.destroy();
  });

  it('lets a VM talk with its own MAC and addresses', async () => {
    expect(await pings(a, b.address)).toBe(true);
    expect(await pings(a, lab.outsideAddress)).toBe(true);
    expect((await inVm(a, ['ping', '-6', '-c', '1', '-W', '2', b.v6])).code).toBe(0);
  });

  it('drops IPv4 and IPv6 from an address that is not the VM’s', async () => {
    await inVm(a, ['ip', 'addr', 'add', '10.71.0.200/24', 'dev', 'eth0']);
    await inVm(a, ['ip', 'addr', 'add', 'fd00:71::bad/64', 'dev', 'eth0', 'nodad']);
    try {
      expect(await pings(a, b.address, '10.71.0.200')).toBe(false);
      expect((await inVm(a, ['ping', '-6', '-c', '1', '-W', '1', '-I', 'fd00:71::bad', b.v6])).code).not.toBe(0);
      expect(await pings(a, b.address, a.address)).toBe(true);
    } finally {
      await inVm(a, ['ip', 'addr', 'del', '10.71.0.200/24', 'dev', 'eth0']);
      await inVm(a, ['ip', 'addr', 'del', 'fd00:71::bad/64', 'dev', 'eth0']);
    }
  });

  it('drops every frame from another MAC', async () => {
    await inVm(a, ['ip', 'link', 'set', 'eth0', 'address', 'fa:16:3e:99:99:99']);
    await inVm(b, ['ip', 'neigh', 'flush', 'dev', 'eth0']);
    try {
      expect(await pings(a, b.address)).toBe(false);
    } finally {
      await inVm(a, ['ip', 'link', 'set', 'eth0', 'address', a.mac]);
    }
    await inVm(b, ['ip', 'neigh', 'flush', 'dev', 'eth0']);
    expect(await pings(a, b.address)).toBe(true);
  });

  it("keeps a VM from answering ARP for its neighbour's address", async () => {
    // The host knows B's MAC; A claims B's address, unasked and as a reply.
    expect((await lab.exec(lab.netNs, ['ping', '-c', '1', '-W', '1', b.address])).code).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // past the kernel's ARP locktime
    await inVm(a, ['ip', 'addr', 'add', `${b.address}/32`, 'dev', 'eth0']);
    try {
      await inVm(a, ['arping', '-U', '-c', '2', '-w', '3', '-I', 'eth0', '-s', b.address, b.address]);
      await inVm(a, ['arping', '-A', '-c', '2', '-w', '3', '-I', 'eth0', '-s', b.address, b.address]);
    } finally {
      await inVm(a, ['ip', 'addr', 'del', `${b.address}/32`, 'dev', 'eth0']);
    }
    const neigh = JSON.parse((await lab.exec(lab.netNs, ['ip', '-j', 'neigh', 'show', b.address, 'dev', 'br100'])).stdout) as {
      lladdr?: string;
    }[];
    expect(neigh.map((entry) => entry.lladdr)).toEqual([b.mac]);
  });

  it('drops DHCP server replies from a VM, and nothing else of its UDP', async () => {
    // python3 is there with the openstack client: a UDP listener and sender that bind the ports asked.
    const listen =
      'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("", 68)); s.settimeout(3)\ntry: print(s.recv(100).decode())\nexcept OSError: pass';
    const send = (port: number) =>
      `import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("", ${port})); [s.sendto(b"offer", ("${b.address}", 68)) for _ in range(3)]`;
    const received = async (sourcePort: number) => {
      const listening = inVm(b, ['python3', '-c', listen]);
      await new Promise((resolve) => setTimeout(resolve, 500));
      await inVm(a, ['python3', '-c', send(sourcePort)]);
      return (await listening).stdout;
    };
    expect(await received(1234)).toContain('offer');
    expect(await received(67)).toBe('');
  });

  it('drops router advertisements from a VM: its neighbours hear the host only', async () => {
    // A router of A's own: dnsmasq advertising a prefix on A's eth0.
    await inVm(a, ['ip', 'addr', 'add', 'fd99::1/64', 'dev', 'eth0', 'nodad']);
    const pidFile = `${lab.dir}/rogue-ra.pid`;
    const started = await inVm(a, [
      'dnsmasq',
      '--port=0',
      '--bind-interfaces',
      '--interface=eth0',
      '--enable-ra',
      '--dhcp-range=::,constructor:eth0,ra-only',
      '--no-hosts',
      '--no-resolv',
      '--leasefile-ro',
      `--pid-file=${pidFile}`,
    ]);
    expect(started.code, started.stderr).toBe(0);
    const [hostRouter] = await lab.addressesV6(lab.netNs, 'br100', 'link');
    const { routers, output } = await lab.solicitRouters(b.vm);
    expect(routers, output).toEqual([hostRouter]);
    expect(output).not.toMatch(/fd99::/);
  });

  it('keeps the guards across a restart without rewriting them, and puts back a deleted table at the next reconcile', async () => {
    const listing = async () =>
      (await lab.exec(lab.netNs, ['nft', 'list', 'table', 'bridge', 'novanet_ports'])).stdout.replace(/packets \d+ bytes \d+/g, '');
    const before = await listing();
    for (const { vm, mac } of [a, b]) expect(before).toContain(`"${vm.tap}" . ${mac}`);
    await service.stop();
    const since = log.length;
    await start();
    expect(await listing()).toBe(before);
    expect(log.slice(since)).not.toMatch(/ports guarded/);
    expect((await lab.exec(lab.netNs, ['nft', 'delete', 'table', 'bridge', 'novanet_ports'])).code).toBe(0);
    await eventually(
      async () => ((await listing()) === before ? true : undefined),
      'the next full reconcile to put the guards back',
      10_000,
    );
    expect(await pings(a, b.address, '10.71.0.200')).toBe(false);
  });

  it('removes the guards at the start of a service with anti_spoofing turned off', async () => {
    await service.stop();
    config = lab.writeConfig({ reconcile_interval: '2', firewall_backend: backend, anti_spoofing: 'false' });
    await start();
    expect((await lab.exec(lab.netNs, ['nft', 'list', 'table', 'bridge', 'novanet_ports'])).code).not.toBe(0);
  });
});
