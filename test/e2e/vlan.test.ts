/**
 * VLAN mode on the real kernel: the novanet-network binary in a lab of namespaces, two
 * projects with two VMs each. Each project's network is claimed on first use and built
 * with its own bridge and dnsmasq; the projects' segments are isolated; SNAT, a
 * floating IP and the cloudpipe VPN forward work; scrub and delete take one project's
 * network down and leave the other's alone. Where the kernel has no 802.1Q, the service
 * must say so, naming the module, and build everything else.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, eventually, Lab, type LabService, type LabVm, requireBuild, run } from '../../tools/lab.js';
import { callService } from '../support/serviceApi.js';

const ECHO_PORT = 9003;
const VM_PORT = 7001;
/** vm1, vm2 in project A; vm3, vm4 in project B; vm5 stands in for A's cloudpipe VPN instance. */
const PROJECTS = ['pa', 'pa', 'pb', 'pb'];
const INSTANCES = [1, 2, 3, 4].map((n) => `eeeeeeee-0000-4000-8000-00000000000${n}`);

interface NetworkView {
  id: string;
  cidr: string;
  bridge: string;
  vlan: number;
  project_id: string | null;
  gateway: string;
  vpn_public_address: string;
  vpn_public_port: number;
  vpn_private_address: string;
}

/** Whether this kernel can make an 802.1Q interface (tried in a scratch namespace). */
function kernelHasVlan(): { ok: boolean; reason: string } {
  const ns = `nnvlanprobe-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['-n', ns, 'link', 'add', 'probe0', 'type', 'veth', 'peer', 'name', 'probe1']);
    execFileSync('ip', ['-n', ns, 'link', 'add', 'link', 'probe0', 'name', 'probe0.7', 'type', 'vlan', 'id', '7'], { stdio: 'pipe' });
    return { ok: true, reason: '' };
  } catch (error) {
    return { ok: false, reason: String((error as { stderr?: Buffer }).stderr ?? error).trim() };
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

describe('VLAN mode in network namespaces', () => {
  let lab: Lab;
  let configFile: string;
  let service: LabService | undefined;
  let log = '';
  const tokens: Record<string, string> = {};
  const fixed: string[] = [];
  const nets: Record<string, NetworkView> = {};
  const vlanSupport = kernelHasVlan();

  async function manage(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return run([process.execPath, BIN.manage, '--config-file', configFile, ...args]);
  }

  const api = <T>(method: string, path: string, token: string, body?: unknown, status = 200) =>
    callService<T>(service!.api, token, method, path, body, status);

  const vm = (index: number): LabVm => lab.vms[index]!;
  const inNet = (argv: string[]) => lab.exec(lab.netNs, argv);
  const links = async () =>
    JSON.parse((await inNet(['ip', '-d', '-j', 'link', 'show'])).stdout) as {
      ifname: string;
      master?: string;
      linkinfo?: { info_kind?: string; info_data?: { id?: number } };
    }[];

  async function pings(from: LabVm, address: string): Promise<boolean> {
    await lab.exec(from.ns, ['ip', 'neigh', 'flush', 'to', address]);
    return (await lab.exec(from.ns, ['ping', '-c', '1', '-W', '1', address], { timeoutMs: 10_000 })).code === 0;
  }

  beforeAll(async () => {
    requireBuild();
    lab = await Lab.create({ vms: 5, flatInterfaceAddress: '172.31.0.10/24' });
    configFile = lab.writeConfig({ network_manager: 'vlan', vlan_interface: 'eth1' });
    expect((await manage(['db', 'sync'])).code).toBe(0);
    const created = await manage([
      'network',
      'create',
      '--label=tenant',
      '--fixed_range_v4=10.20.0.0/23',
      '--num_networks=2',
      '--network_size=256',
      '--vlan_start=100',
      '--vpn=1000',
    ]);
    expect(created.code, created.stderr).toBe(0);
    expect((await manage(['floating', 'create', '--ip_range=192.0.2.80/29'])).code).toBe(0);
    for (const project of ['pa', 'pb']) tokens[project] = (await manage(['token', 'create', `--project_id=${project}`])).stdout.trim();
    tokens.admin = (await manage(['token', 'create', '--project_id=ops', '--role=admin'])).stdout.trim();
    await lab.startEcho(ECHO_PORT);
    service = await lab.startService(configFile, (chunk) => {
      log += chunk;
    });
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    await lab?.destroy();
  });

  it('builds nothing before a project uses a network, then claims one network per project on first boot', async () => {
    expect((await links()).filter((link) => /^(br|vlan)1\d\d$/.test(link.ifname))).toEqual([]);
    for (const [index, project] of PROJECTS.entries()) {
      const info = await api<{
        network_info: { address: string; network: { bridge: string; subnets: { ips: { address: string }[] }[] } }[];
      }>('POST', '/os-novanet/instances', tokens.admin!, {
        instance: { uuid: INSTANCES[index], project_id: project, host: 'compute1', hostname: vm(index).name },
      });
      const vif = info.network_info[0]!;
      fixed[index] = vif.network.subnets[0]!.ips[0]!.address;
      await lab.plug(vm(index), vif.network.bridge, vif.address);
    }
    for (const project of ['pa', 'pb']) {
      const { networks } = await api<{ networks: NetworkView[] }>('GET', '/os-networks', tokens.admin!);
      nets[project] = networks.find((network) => network.project_id === project)!;
      expect(nets[project], JSON.stringify(networks)).toBeDefined();
      // A member sees its project's network only.
      const mine = await api<{ networks: { id: string }[] }>('GET', '/os-networks', tokens[project]!);
      expect(mine.networks.map((network) => network.id)).toEqual([nets[project]!.id]);
    }
    expect(new Set([nets.pa!.bridge, nets.pb!.bridge]).size).toBe(2);
    expect([nets.pa!.vlan, nets.pb!.vlan].sort()).toEqual([100, 101]);
  });

  it("gives each VM its project's address by DHCP from its own network's dnsmasq", async () => {
    for (const [index, project] of PROJECTS.entries()) {
      const lease = await lab.dhcp(vm(index));
      expect(lease.address, lease.output).toBe(fixed[index]);
      expect(lease.server).toBe(nets[project]!.gateway);
      expect(lease.router).toBe(nets[project]!.gateway);
    }
    for (const project of ['pa', 'pb']) {
      expect(existsSync(`${lab.dir}/state/networks/nova-${nets[project]!.bridge}.pid`)).toBe(true);
    }
  });

  it('builds vlanNNN into brNNN, or, on a kernel without 802.1Q, says so naming the module', async () => {
    const found = await links();
    if (vlanSupport.ok) {
      for (const project of ['pa', 'pb']) {
        const vlan = found.find((link) => link.ifname === `vlan${nets[project]!.vlan}`);
        expect(vlan?.linkinfo).toMatchObject({ info_kind: 'vlan', info_data: { id: nets[project]!.vlan } });
        expect(vlan?.master).toBe(nets[project]!.bridge);
      }
    } else {
      // Reported as the issue asks: the VLAN interface step is skipped, for this reason.
      console.log(`VLAN interface step skipped: this kernel has no 802.1Q (${vlanSupport.reason})`);
      expect(found.some((link) => /^vlan1\d\d$/.test(link.ifname))).toBe(false);
      expect(log).toMatch(/"event":"reconcile\.errors"[^\n]*the kernel has no 802\.1Q support \(load the 8021q module\)/);
    }
  });

  it("lets VMs of one project reach each other, and no VM see the other project's segment", async () => {
    expect(await pings(vm(0), fixed[1]!)).toBe(true);
    expect(await pings(vm(2), fixed[3]!)).toBe(true);
    // No ARP reply from B's VMs to A's VM, nor the other way round: different segments.
    for (const [from, to] of [
      [0, 2],
      [0, 3],
      [2, 0],
    ] as const) {
      const arping = await lab.exec(vm(from).ns, ['arping', '-c', '2', '-w', '3', '-I', 'eth0', fixed[to]!], { timeoutMs: 10_000 });
      expect(arping.code, arping.stdout).not.toBe(0);
      expect(arping.stdout).toMatch(/Received 0 response/);
    }
    // A DHCP client on A's segment hears only A's server (a second try, to be sure).
    const again = await lab.dhcp(vm(0));
    expect(again.server).toBe(nets.pa!.gateway);
  });

  it("takes each project's VMs to the outside through SNAT", async () => {
    expect(await lab.sourceSeenOutside(vm(0), ECHO_PORT)).toBe(lab.publicAddress);
    expect(await lab.sourceSeenOutside(vm(2), ECHO_PORT)).toBe(lab.publicAddress);
  });

  it('gives a VLAN-mode VM a working floating IP', async () => {
    const { floating_ip: floating } = await api<{ floating_ip: { ip: string } }>('POST', '/os-floating-ips', tokens.pa!, {});
    await api('POST', `/servers/${INSTANCES[0]}/action`, tokens.pa!, { addFloatingIp: { address: floating.ip } }, 202);
    await lab.startTcpServer(vm(0).ns, VM_PORT, '0.0.0.0', 'vm1 ');
    expect(await lab.connect(lab.outsideNs, floating.ip, VM_PORT)).toBe(`vm1 ${lab.outsideAddress}`);
    expect(await lab.sourceSeenOutside(vm(0), ECHO_PORT)).toBe(floating.ip);
  });

  it("forwards the cloudpipe VPN port to the VPN address of the project's network", async () => {
    const net = nets.pa!;
    expect(net.vpn_public_address).toBe(lab.publicAddress);
    expect(await lab.ruleset()).toContain(
      `-A nova-network-PREROUTING -d ${net.vpn_public_address}/32 -p udp -m udp --dport ${net.vpn_public_port} -j DNAT --to-destination ${net.vpn_private_address}:1194`,
    );
    // vm5 plays A's cloudpipe instance, on A's bridge at the VPN address.
    const vpn = vm(4);
    await lab.plug(vpn, net.bridge, '02:00:00:00:00:55');
    const prefix = net.cidr.split('/')[1];
    for (const argv of [
      ['ip', 'addr', 'add', `${net.vpn_private_address}/${prefix}`, 'dev', 'eth0'],
      ['ip', 'route', 'add', 'default', 'via', net.gateway],
    ]) {
      expect((await lab.exec(vpn.ns, argv)).code).toBe(0);
    }
    const server = lab.spawn(vpn.ns, [
      process.execPath,
      '-e',
      "const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send('vpn '+r.address,r.port,r.address));s.bind(1194,()=>console.log('listening'))",
    ]);
    await new Promise<void>((resolve) =>
      server.stdout?.on('data', (chunk: Buffer) => {
        if (String(chunk).includes('listening')) resolve();
      }),
    );
    const client = `const s=require('dgram').createSocket('udp4');s.on('message',(m)=>{console.log(String(m));process.exit(0)});s.send('hello',${net.vpn_public_port},'${net.vpn_public_address}');setTimeout(()=>{console.error('no answer');process.exit(2)},3000)`;
    const answer = await lab.exec(lab.outsideNs, [process.execPath, '-e', client], { timeoutMs: 10_000 });
    expect(answer.stdout.trim(), answer.stderr).toBe(`vpn ${lab.outsideAddress}`);
  });

  it("scrub and delete of project B's network remove its bridge, VLAN, dnsmasq and every rule, and nothing of A's", async () => {
    const b = nets.pb!;
    const a = nets.pa!;
    const before = (await lab.ruleset()).split('\n');
    const ofB = (line: string) =>
      line.includes(b.cidr) ||
      line.includes(` ${b.bridge} `) ||
      line.endsWith(` ${b.bridge}`) ||
      line.includes(`${b.vpn_private_address}/32`) ||
      line.includes(`${b.vpn_private_address}:1194`);
    expect(before.some(ofB)).toBe(true);
    for (const index of [2, 3]) await api('DELETE', `/os-novanet/instances/${INSTANCES[index]}`, tokens.admin!, undefined, 204);
    // The held addresses keep the network in use until dnsmasq reports them released.
    let scrub = await manage(['project', 'scrub', '--project=pb']);
    await eventually(
      async () => {
        scrub = await manage(['project', 'scrub', '--project=pb']);
        return scrub.code === 0 ? true : undefined;
      },
      'project B to be scrubbable',
      15_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}: ${scrub.stderr.trim()}`);
    });
    const deleted = await manage(['network', 'delete', `--fixed_range=${b.cidr}`]);
    expect(deleted.code, deleted.stderr).toBe(0);
    await eventually(async () => {
      const gone = !(await links()).some((link) => link.ifname === b.bridge || link.ifname === `vlan${b.vlan}`);
      const rulesGone = !(await lab.ruleset()).split('\n').some(ofB);
      return gone && rulesGone && !existsSync(`${lab.dir}/state/networks/nova-${b.bridge}.pid`) ? true : undefined;
    }, "project B's bridge, VLAN, dnsmasq and rules to be gone");
    // Every line of A's is still there, and A's VMs still talk.
    const after = (await lab.ruleset()).split('\n');
    for (const line of before.filter((text) => text.startsWith('-A') && !ofB(text))) expect(after).toContain(line);
    expect((await links()).some((link) => link.ifname === a.bridge)).toBe(true);
    expect(existsSync(`${lab.dir}/state/networks/nova-${a.bridge}.pid`)).toBe(true);
    expect(await pings(vm(0), fixed[1]!)).toBe(true);
    expect(await lab.sourceSeenOutside(vm(1), ECHO_PORT)).toBe(lab.publicAddress);
  });
});
