/**
 * A lab of network namespaces for end-to-end tests and the demo: a "network host"
 * (where novanet's host layer runs, through root_helper = ip netns exec NS), VMs on
 * veth pairs that the lab plugs into novanet's bridges (the compute host's job), and
 * an "outside" host on the public side. Everything it makes is named after a unique
 * prefix and removed by destroy(), also for labs of runs that died.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, whether this runs from tools/ (tsx) or dist/tools/ (built). */
export const REPO_ROOT = ((): string => {
  const here = dirname(fileURLToPath(import.meta.url));
  return here.endsWith(join('dist', 'tools')) ? dirname(dirname(here)) : dirname(here);
})();

/** The built programs; dnsmasq runs novanet-dhcpbridge, so they must be built. */
export const BIN = {
  manage: join(REPO_ROOT, 'dist/src/cli/manage.js'),
  network: join(REPO_ROOT, 'dist/src/cli/network.js'),
  dhcpbridge: join(REPO_ROOT, 'dist/src/cli/dhcpbridge.js'),
};

export function requireBuild(): void {
  const missing = Object.values(BIN).filter((path) => !existsSync(path));
  if (missing.length > 0) throw new Error(`${missing.join(', ')} missing: run npm run build (make test and make demo do) first`);
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The environment of everything the lab starts: this process's, without NOVANET_*
 * (an exported NOVANET_ROOT_HELPER= would otherwise send a lab service's commands to
 * the machine's own namespace) and without NODE_OPTIONS.
 */
export function labEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('NOVANET_') && name !== 'NODE_OPTIONS') env[name] = value;
  }
  return { ...env, ...extra };
}

/** Runs argv (never through a shell), bounded in time; never throws on a non-zero exit. */
export function run(argv: string[], options: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      argv[0]!,
      argv.slice(1),
      { env: labEnv(), timeout: options.timeoutMs ?? 20_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

async function must(argv: string[]): Promise<string> {
  const result = await run(argv);
  if (result.code !== 0) throw new Error(`${argv.join(' ')} failed (${result.code}): ${result.stderr.trim()}`);
  return result.stdout;
}

/** A novanet-network process the lab started. */
export interface LabService {
  child: ChildProcess;
  /** `http://127.0.0.1:PORT`, as the service reported it. */
  api: string;
  stop(): Promise<void>;
}

export interface LabVm {
  name: string;
  ns: string;
  /** The veth end in the network host namespace, plugged into a bridge. */
  tap: string;
  /** Where `tap` is: another compute host's namespace (addVm), else the network host's. */
  hostNs?: string;
}

export interface LabOptions {
  vms: number;
  /** Public side: the network host's address and the outside host's address, on a /24. */
  publicAddress?: string;
  outsideAddress?: string;
  /** Give the network host a flat_interface (eth1) carrying this address, to be moved onto the bridge. */
  flatInterfaceAddress?: string;
  /**
   * Join the network host's eth1 to the underlay, a switch that compute hosts join
   * too (addComputeHost): the wire between hosts that their networks' bridges share.
   */
  underlay?: boolean;
}

const PREFIX = 'nnlab';

export class Lab {
  readonly dir: string;
  readonly netNs: string;
  readonly outsideNs: string;
  readonly vms: LabVm[] = [];
  readonly publicAddress: string;
  readonly outsideAddress: string;
  /** The public side's IPv6 /64 (documentation range), network host and outside. */
  readonly publicAddressV6 = '2001:db8:ffff::10';
  readonly outsideAddressV6 = '2001:db8:ffff::1';
  /** The underlay's switch: bridge sw0 in a namespace of its own (options.underlay). */
  readonly switchNs: string;
  private ports = 0;
  private readonly children = new Set<ChildProcess>();
  /** Namespaces added after build (more hosts, their VMs), removed by destroy() too. */
  private readonly extraNamespaces: string[] = [];
  private destroyed = false;

  private constructor(
    readonly id: string,
    options: LabOptions,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), `${PREFIX}-${id}-`));
    // dnsmasq (as nobody) must reach the state files below it.
    chmodSync(this.dir, 0o755);
    this.netNs = `${PREFIX}-${id}-net`;
    this.outsideNs = `${PREFIX}-${id}-out`;
    this.switchNs = `${PREFIX}-${id}-sw`;
    this.publicAddress = options.publicAddress ?? '192.0.2.10';
    this.outsideAddress = options.outsideAddress ?? '192.0.2.1';
    for (let index = 1; index <= options.vms; index++) {
      this.vms.push({ name: `vm${index}`, ns: `${PREFIX}-${id}-vm${index}`, tap: `tap-vm${index}` });
    }
  }

  /** Builds the namespaces and wiring; on any failure removes what it made. */
  static async create(options: LabOptions): Promise<Lab> {
    await sweepStaleLabs();
    const lab = new Lab(`${process.pid}x${Math.random().toString(36).slice(2, 6)}`, options);
    activeLabs.add(lab);
    try {
      await lab.build(options);
    } catch (error) {
      await lab.destroy();
      throw error;
    }
    return lab;
  }

  private async build(options: LabOptions): Promise<void> {
    if (options.underlay) {
      this.extraNamespaces.push(this.switchNs);
      await must(['ip', 'netns', 'add', this.switchNs]);
      await must(['ip', '-n', this.switchNs, 'link', 'add', 'sw0', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
      await must(['ip', '-n', this.switchNs, 'link', 'set', 'sw0', 'up']);
    }
    for (const ns of [this.netNs, this.outsideNs, ...this.vms.map((vm) => vm.ns)]) {
      await must(['ip', 'netns', 'add', ns]);
      await must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
    // Public side: network host eth0 <-> outside eth0.
    await must(['ip', 'link', 'add', 'nnlpub0', 'netns', this.netNs, 'type', 'veth', 'peer', 'name', 'nnlpub1', 'netns', this.outsideNs]);
    await must(['ip', '-n', this.netNs, 'link', 'set', 'nnlpub0', 'name', 'eth0']);
    await must(['ip', '-n', this.outsideNs, 'link', 'set', 'nnlpub1', 'name', 'eth0']);
    await must(['ip', '-n', this.netNs, 'addr', 'add', `${this.publicAddress}/24`, 'dev', 'eth0']);
    await must(['ip', '-n', this.outsideNs, 'addr', 'add', `${this.outsideAddress}/24`, 'dev', 'eth0']);
    await must(['ip', '-n', this.netNs, 'addr', 'add', `${this.publicAddressV6}/64`, 'dev', 'eth0', 'nodad']);
    await must(['ip', '-n', this.outsideNs, 'addr', 'add', `${this.outsideAddressV6}/64`, 'dev', 'eth0', 'nodad']);
    await must(['ip', '-n', this.netNs, 'link', 'set', 'eth0', 'up']);
    await must(['ip', '-n', this.outsideNs, 'link', 'set', 'eth0', 'up']);
    if (options.underlay) {
      await this.joinUnderlay(this.netNs, options.flatInterfaceAddress);
    } else if (options.flatInterfaceAddress) {
      await must(['ip', '-n', this.netNs, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth1p']);
      await must(['ip', '-n', this.netNs, 'addr', 'add', options.flatInterfaceAddress, 'dev', 'eth1']);
      await must(['ip', '-n', this.netNs, 'link', 'set', 'eth1', 'up']);
      await must(['ip', '-n', this.netNs, 'link', 'set', 'eth1p', 'up']);
    }
    for (const vm of this.vms) {
      await must(['ip', 'link', 'add', 'nnlvm0', 'netns', vm.ns, 'type', 'veth', 'peer', 'name', vm.tap, 'netns', this.netNs]);
      await must(['ip', '-n', vm.ns, 'link', 'set', 'nnlvm0', 'name', 'eth0']);
    }
  }

  /**
   * Another compute host (multi_host): its own namespace with eth0 on a public subnet
   * of its own towards the outside host (which routes between the two), a default
   * route there, and a flat_interface eth1 (a veth pair inside it). Returns its
   * namespace; VMs are added to it with addVm.
   */
  async addHost(name: string, publicAddress: string, outsideAddress: string, prefix: number): Promise<string> {
    const ns = `${PREFIX}-${this.id}-${name}`;
    this.extraNamespaces.push(ns);
    const outsidePort = `o-${name}`;
    await must(['ip', 'netns', 'add', ns]);
    await must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    await must(['ip', 'link', 'add', 'nnlhost0', 'netns', ns, 'type', 'veth', 'peer', 'name', outsidePort, 'netns', this.outsideNs]);
    await must(['ip', '-n', ns, 'link', 'set', 'nnlhost0', 'name', 'eth0']);
    await must(['ip', '-n', ns, 'addr', 'add', `${publicAddress}/${prefix}`, 'dev', 'eth0']);
    await must(['ip', '-n', this.outsideNs, 'addr', 'add', `${outsideAddress}/${prefix}`, 'dev', outsidePort]);
    for (const [where, device] of [
      [ns, 'eth0'],
      [this.outsideNs, outsidePort],
    ] as const)
      await must(['ip', '-n', where, 'link', 'set', device, 'up']);
    await must(['ip', '-n', ns, 'route', 'add', 'default', 'via', outsideAddress]);
    await must(['ip', '-n', ns, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth1p']);
    for (const device of ['eth1', 'eth1p']) await must(['ip', '-n', ns, 'link', 'set', device, 'up']);
    return ns;
  }

  /** Gives `ns` an eth1 whose other end is a port of the underlay's switch. */
  private async joinUnderlay(ns: string, address?: string): Promise<void> {
    const port = `swp${++this.ports}`;
    await must(['ip', 'link', 'add', 'nnlund0', 'netns', ns, 'type', 'veth', 'peer', 'name', port, 'netns', this.switchNs]);
    await must(['ip', '-n', ns, 'link', 'set', 'nnlund0', 'name', 'eth1']);
    if (address) await must(['ip', '-n', ns, 'addr', 'add', address, 'dev', 'eth1']);
    await must(['ip', '-n', ns, 'link', 'set', 'eth1', 'up']);
    await must(['ip', '-n', this.switchNs, 'link', 'set', port, 'master', 'sw0']);
    await must(['ip', '-n', this.switchNs, 'link', 'set', port, 'up']);
  }

  /**
   * A compute host of a single-host network: a namespace whose eth1 is on the
   * underlay (with `address`, its tunnel address), and nothing else: its VMs reach
   * DHCP, their gateway and the outside through the network host. Returns its namespace.
   */
  async addComputeHost(name: string, address?: string): Promise<string> {
    const ns = `${PREFIX}-${this.id}-${name}`;
    this.extraNamespaces.push(ns);
    await must(['ip', 'netns', 'add', ns]);
    await must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    await this.joinUnderlay(ns, address);
    return ns;
  }

  /** A VM whose veth ends in `hostNs` (a host from addHost), to be plugged there; `tap` names that end. */
  async addVm(name: string, hostNs: string, tap = `tap-${name}`): Promise<LabVm> {
    const vm: LabVm = { name, ns: `${PREFIX}-${this.id}-${name}`, tap, hostNs };
    this.extraNamespaces.push(vm.ns);
    await must(['ip', 'netns', 'add', vm.ns]);
    await must(['ip', '-n', vm.ns, 'link', 'set', 'lo', 'up']);
    await must(['ip', 'link', 'add', 'nnlvm0', 'netns', vm.ns, 'type', 'veth', 'peer', 'name', vm.tap, 'netns', hostNs]);
    await must(['ip', '-n', vm.ns, 'link', 'set', 'nnlvm0', 'name', 'eth0']);
    return vm;
  }

  /** root_helper that makes novanet's host layer act inside the network host namespace. */
  get rootHelper(): string {
    return `ip netns exec ${this.netNs}`;
  }

  /**
   * Writes a nova.conf for a FlatDHCP service whose host layer acts inside the
   * network host: public side eth0, flat_interface eth1, SQLite under the lab's dir
   * unless `where.database` names another database URL.
   */
  writeConfig(options: Record<string, string> = {}, where: { ns?: string; name?: string; database?: string } = {}): string {
    // Every service of the lab shares one database; each host keeps its own state.
    const database = where.database ?? `sqlite://${join(this.dir, 'state', 'novanet.sqlite')}`;
    const state = join(this.dir, where.name ? `state-${where.name}` : 'state');
    mkdirSync(join(this.dir, 'state'), { recursive: true, mode: 0o755 });
    mkdirSync(state, { recursive: true, mode: 0o755 });
    const values: Record<string, string> = {
      network_manager: 'flatdhcp',
      host: 'nethost',
      my_ip: this.publicAddress,
      public_interface: 'eth0',
      flat_interface: 'eth1',
      state_path: state,
      root_helper: where.ns ? `ip netns exec ${where.ns}` : this.rootHelper,
      dhcpbridge: BIN.dhcpbridge,
      dhcp_lease_time: '120',
      force_dhcp_release: 'true',
      // dnsmasq forwards VM DNS queries only inside the lab, never to this machine's resolver.
      dns_server: this.outsideAddress,
      reconcile_interval: '3600',
      // The services run in this namespace: wakes between them stay on loopback.
      wake_address: '127.0.0.1',
      wake_port: '0',
      ...options,
    };
    const lines = ['[DEFAULT]', ...Object.entries(values).map(([key, value]) => `${key} = ${value}`)];
    lines.push('[database]', `connection = ${database}`);
    // Port 0: the kernel picks a free port at bind time; the service logs which.
    lines.push('[api]', 'host = 127.0.0.1', 'port = 0');
    const file = join(this.dir, where.name ? `novanet-${where.name}.conf` : 'novanet.conf');
    writeFileSync(file, `${lines.join('\n')}\n`);
    return file;
  }

  /** Runs novanet-manage with `configFile`; its stdout, or an error with its stderr. */
  async manage(configFile: string, args: string[]): Promise<string> {
    const result = await run([process.execPath, BIN.manage, '--config-file', configFile, ...args], { timeoutMs: 60_000 });
    if (result.code !== 0) throw new Error(`novanet-manage ${args.join(' ')} failed (${result.code}): ${result.stderr.trim()}`);
    return result.stdout;
  }

  /** Runs each novanet-manage command (db sync, network create, ...), then returns an admin token of `project`. */
  async provision(configFile: string, commands: string[][], project: string): Promise<string> {
    for (const args of commands) await this.manage(configFile, args);
    return (await this.manage(configFile, ['token', 'create', `--project_id=${project}`, '--role=admin', '--description=lab'])).trim();
  }

  /** Runs argv inside a namespace. */
  exec(ns: string, argv: string[], options: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
    return run(['ip', 'netns', 'exec', ns, ...argv], options);
  }

  /** Starts a long-running process inside a namespace (`stdin`: piped, else none); destroy() ends it (by its PID). */
  spawn(ns: string, argv: string[], options: { stdin?: boolean } = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], {
      stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      env: labEnv(),
    });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** The hypervisor's part: the VM's interface gets its MAC and comes up. */
  async boot(vm: LabVm, mac: string): Promise<void> {
    await must(['ip', '-n', vm.ns, 'link', 'set', 'eth0', 'address', mac]);
    await must(['ip', '-n', vm.ns, 'link', 'set', 'eth0', 'up']);
  }

  /** The compute host's part done by hand: the VM booted and its veth put into the bridge. */
  async plug(vm: LabVm, bridge: string, mac: string): Promise<void> {
    await this.boot(vm, mac);
    const host = vm.hostNs ?? this.netNs;
    await must(['ip', '-n', host, 'link', 'set', vm.tap, 'master', bridge]);
    await must(['ip', '-n', host, 'link', 'set', vm.tap, 'up']);
  }

  /**
   * Takes a lease with busybox udhcpc (a real DHCP client) and configures it through
   * a script of the lab's, returning what the server offered.
   */
  async dhcp(
    vm: LabVm,
    options: { tries?: number } = {},
  ): Promise<{
    address: string;
    router: string | undefined;
    server: string | undefined;
    mtu: number | undefined;
    code: number;
    output: string;
  }> {
    const script = join(this.dir, 'udhcpc.script');
    writeFileSync(script, UDHCPC_SCRIPT);
    chmodSync(script, 0o755);
    const tries = String(options.tries ?? 5);
    const result = await this.exec(
      vm.ns,
      ['busybox', 'udhcpc', '-i', 'eth0', '-q', '-n', '-f', '-t', tries, '-T', '1', '-A', '1', '-O', 'mtu', '-s', script],
      { timeoutMs: 30_000 },
    );
    const output = result.stdout + result.stderr;
    const address = /^lease-address (\S+)$/m.exec(output)?.[1] ?? '';
    const router = /^lease-router (\S+)$/m.exec(output)?.[1];
    const server = /^lease-server (\S+)$/m.exec(output)?.[1];
    const mtu = /^lease-mtu (\d+)$/m.exec(output)?.[1];
    return { address, router, server, mtu: mtu === undefined ? undefined : Number(mtu), code: result.code, output };
  }

  /**
   * A lease, asked for again until one comes (bounded): a host that learns of the VIF
   * through the database serves it within a poll or so.
   */
  lease(vm: LabVm, timeoutMs = 15_000): ReturnType<Lab['dhcp']> {
    return eventually(
      async () => {
        const attempt = await this.dhcp(vm, { tries: 2 });
        return attempt.address === '' ? undefined : attempt;
      },
      `a lease for ${vm.name}`,
      timeoutMs,
    );
  }

  /**
   * Takes an IPv6 address by stateful DHCPv6 with ISC dhclient (a real client; busybox
   * has no udhcpc6), configured through a script of the lab's; says which servers
   * answered. The client stays on to renew, as on a VM, until the lab ends its namespace.
   */
  async dhcp6(vm: LabVm): Promise<{ address: string; servers: string[]; code: number; output: string }> {
    const script = join(this.dir, 'dhclient6.script');
    writeFileSync(script, DHCLIENT6_SCRIPT);
    chmodSync(script, 0o755);
    const files = join(this.dir, `dhclient6-${vm.name}`);
    const result = await this.exec(
      vm.ns,
      ['dhclient', '-6', '-1', '-v', '-sf', script, '-lf', `${files}.leases`, '-pf', `${files}.pid`, 'eth0'],
      { timeoutMs: 30_000 },
    );
    const output = result.stdout + result.stderr;
    // Every server whose message reached the VM (dhclient -v: "RCV: Advertise message on eth0 from fe80::...").
    const servers = [...new Set([...output.matchAll(/^RCV: \w+ message on \S+ from (\S+?)\.?$/gm)].map((match) => match[1]!))].sort();
    return { address: /^lease6-address (\S+)$/m.exec(output)?.[1] ?? '', servers, code: result.code, output };
  }

  /** The IPv6 addresses on `dev` in `ns` of `scope` that passed duplicate address detection. */
  async addressesV6(ns: string, dev: string, scope: 'global' | 'link'): Promise<string[]> {
    const shown = await this.exec(ns, ['ip', '-6', '-j', 'addr', 'show', 'dev', dev, 'scope', scope]);
    if (shown.code !== 0) throw new Error(`ip addr show dev ${dev} in ${ns}: ${shown.stderr}`);
    return (JSON.parse(shown.stdout) as { addr_info: { local?: string; tentative?: boolean }[] }[])
      .flatMap((link) => link.addr_info)
      .flatMap((entry) => (entry.local !== undefined && !entry.tentative ? [entry.local] : []));
  }

  /**
   * A router solicitation from the VM, and every advertisement that answers it within
   * 3 s (rdisc6): what they said, and the routers' link-local addresses, sorted.
   */
  async solicitRouters(vm: LabVm): Promise<{ routers: string[]; output: string }> {
    const shown = await this.exec(vm.ns, ['rdisc6', '-m', '-r', '1', '-w', '3000', 'eth0']);
    const routers = [...new Set([...shown.stdout.matchAll(/from (fe80::\S+)/g)].map((match) => match[1]!))].sort();
    return { routers, output: shown.stdout };
  }

  /** iptables-save of the network host without comments and counters, for comparisons. */
  async ruleset(): Promise<string> {
    const saved = await this.exec(this.netNs, ['iptables-save']);
    return saved.stdout
      .split('\n')
      .filter((line) => !line.startsWith('#'))
      .map((line) => line.replace(/ \[\d+:\d+\]$/, ''))
      .join('\n');
  }

  /**
   * A TCP server on the outside host that answers each connection with the address it
   * came from: how SNAT is seen at work.
   */
  startEcho(port: number): Promise<void> {
    return this.startTcpServer(this.outsideNs, port, this.outsideAddress, '');
  }

  /**
   * A TCP server in `ns` that answers each connection with `greeting` followed by the
   * peer address it saw; resolves once it listens.
   */
  startTcpServer(ns: string, port: number, address: string, greeting: string): Promise<void> {
    const code = `require('net').createServer((s)=>{s.end(${JSON.stringify(greeting)}+s.remoteAddress.replace('::ffff:','')+'\\n')}).listen(${port},'${address}',()=>console.log('listening'))`;
    const child = this.spawn(ns, [process.execPath, '-e', code]);
    return new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        if (String(chunk).includes('listening')) resolve();
      });
      child.on('exit', (exit) => reject(new Error(`TCP server on ${address}:${port} in ${ns} exited (${exit})`)));
    });
  }

  /** Connects from a VM to the echo server: the source address the outside saw, or why it failed. */
  sourceSeenOutside(vm: LabVm, port: number): Promise<string> {
    return this.connect(vm.ns, this.outsideAddress, port);
  }

  /** Connects from `ns` to ADDRESS:PORT: what the server said, or why it failed. */
  async connect(ns: string, address: string, port: number): Promise<string> {
    const code = `const s=require('net').connect(${port},'${address}');let d='';s.on('data',(c)=>d+=c);s.on('end',()=>{console.log(d.trim())});s.on('error',(e)=>{console.error(e.message);process.exit(1)});setTimeout(()=>{console.error('timed out');process.exit(2)},3000).unref()`;
    const result = await this.exec(ns, [process.execPath, '-e', code], { timeoutMs: 10_000 });
    return result.stdout.trim() || `failed: ${result.stderr.trim()}`;
  }

  /**
   * Starts novanet-network with `configFile` (whose [api] port should be 0), node
   * running with `nodeFlags`, and resolves once it logs service.started, with the
   * address its API listens on.
   * destroy() stops it if the caller has not.
   */
  startService(configFile: string, onLog?: (chunk: string) => void, nodeFlags: string[] = []): Promise<LabService> {
    const child = spawn(process.execPath, [...nodeFlags, BIN.network, '--config-file', configFile], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: labEnv(),
    });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    let log = '';
    let running = false;
    return new Promise((resolve, reject) => {
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
        onLog?.(chunk);
        // Once started, the log only goes to onLog: scanning it all again at every chunk
        // cost a busy service's caller seconds of CPU.
        if (running) return;
        log += chunk;
        const started = /^\{.*"event":"service\.started".*\}$/m.exec(log);
        if (!started) return;
        running = true;
        const api = (JSON.parse(started[0]) as { api?: string }).api ?? '';
        resolve({
          child,
          api,
          stop: async () => {
            if (child.exitCode !== null || child.signalCode !== null) return;
            const exited = new Promise((done) => child.once('exit', done));
            child.kill('SIGTERM');
            await exited;
          },
        });
      });
      child.on('exit', (code) => reject(new Error(`novanet-network exited (${code}) before starting:\n${log}`)));
    });
  }

  /** Ends the lab's processes by PID, deletes its namespaces and files. Safe to call twice. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    activeLabs.delete(this);
    for (const child of this.children) if (child.pid) killPid(child.pid);
    for (const ns of [this.netNs, this.outsideNs, ...this.vms.map((vm) => vm.ns), ...this.extraNamespaces]) await removeNamespace(ns);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** udhcpc calls this with the lease in its environment; it configures eth0 and prints the lease. */
const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/\${mask:-24}" dev "$interface"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    echo "lease-address $ip"
    for r in $router; do echo "lease-router $r"; break; done
    echo "lease-server $serverid"
    if [ -n "$mtu" ]; then ip link set "$interface" mtu "$mtu"; echo "lease-mtu $mtu"; fi
    ;;
esac
exit 0
`;

/** dhclient -6 calls this with the lease in its environment; it puts the address on eth0 and prints it. */
const DHCLIENT6_SCRIPT = `#!/bin/sh
case "$reason" in
  BOUND6|RENEW6|REBIND6)
    ip -6 addr replace "$new_ip6_address/$new_ip6_prefixlen" dev "$interface"
    echo "lease6-address $new_ip6_address"
    ;;
esac
exit 0
`;

/** Polls `probe` until it returns something other than undefined, bounded in time. */
export async function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Kills what still runs inside (all started by this lab or its service), then deletes it. */
async function removeNamespace(ns: string): Promise<void> {
  const pids = await run(['ip', 'netns', 'pids', ns]);
  if (pids.code !== 0) return;
  for (const pid of pids.stdout.split(/\s+/).filter(Boolean).map(Number)) killPid(pid);
  await run(['ip', 'netns', 'del', ns]);
}

const activeLabs = new Set<Lab>();

/** Labs left by runs whose process is gone (killed test runs) are removed. */
async function sweepStaleLabs(): Promise<void> {
  const listed = await run(['ip', 'netns', 'list']);
  for (const line of listed.stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const match = new RegExp(`^${PREFIX}-(\\d+)x`).exec(name);
    if (!match) continue;
    const owner = Number(match[1]);
    if (owner === process.pid) continue;
    let alive = true;
    try {
      process.kill(owner, 0);
    } catch {
      alive = false;
    }
    if (!alive) await removeNamespace(name);
  }
}

// Labs never outlive their process, whatever ends it.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void Promise.all([...activeLabs].map((lab) => lab.destroy())).finally(() => process.exit(130));
  });
}
