import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync, rmSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { interfaceName } from '../config/options.js';
import type { Executor } from './executor.js';

/** One network as dnsmasq serves it. */
export interface DhcpNetwork {
  id: number;
  bridge: string;
  dhcpServer: string;
  dhcpStart: string;
  netmask: string;
  gateway: string | null;
  /** Number of addresses of the subnet (dnsmasq's lease limit). */
  size: number;
  mtu: number | null;
  dns: string[];
}

export interface DhcpHost {
  mac: string;
  hostname: string | null;
  address: string;
}

export interface DnsmasqOptions {
  statePath: string;
  domain: string;
  leaseTime: number;
  /** dns_server: upstream servers; none means dnsmasq reads resolv.conf. */
  dnsServers: string[];
  /** argv that runs novanet-dhcpbridge (dnsmasq's --dhcp-script). */
  dhcpScript: string;
  /** Passed to the script so it finds the same database. */
  configFile: string | undefined;
}

export interface NetworkFiles {
  conf: string;
  pid: string;
  hosts: string;
  opts: string;
  /** The hosts and opts text dnsmasq was last told to load (started or SIGHUPed with). */
  loaded: string;
}

/** dnsmasq's static host lines: `MAC,hostname.domain,IP` (nova's format). */
export function hostsFile(hosts: DhcpHost[], domain: string): string {
  return hosts.map((host) => `${host.mac},${host.hostname ? `${host.hostname}.${domain}` : `host-${host.address.replace(/[.:]/g, '-')}.${domain}`},${host.address}\n`).join('');
}

/** DHCP options: the router (3) and, when set, the MTU (26) and DNS servers (6). */
export function optsFile(network: DhcpNetwork): string {
  const lines: string[] = [];
  if (network.gateway) lines.push(`tag:net${network.id},option:router,${network.gateway}`);
  else lines.push(`tag:net${network.id},option:router`);
  if (network.mtu) lines.push(`tag:net${network.id},option:mtu,${network.mtu}`);
  // The network's dns1/dns2; without them VMs use dnsmasq itself (the DHCP server).
  if (network.dns.length > 0) lines.push(`tag:net${network.id},option:dns-server,${network.dns.join(',')}`);
  return `${lines.join('\n')}\n`;
}

/** nova's dnsmasq command line, with the tag named after the network id. */
export function dnsmasqArgs(network: DhcpNetwork, files: NetworkFiles, options: DnsmasqOptions): string[] {
  const env = ['env', `NETWORK_ID=${network.id}`, ...(options.configFile ? [`NOVANET_CONFIG_FILE=${options.configFile}`] : [])];
  return [
    ...env,
    'dnsmasq',
    '--strict-order',
    '--bind-interfaces',
    `--conf-file=${files.conf}`,
    `--pid-file=${files.pid}`,
    `--dhcp-optsfile=${files.opts}`,
    `--listen-address=${network.dhcpServer}`,
    // One interface: dnsmasq binds its DHCP socket to the bridge (SO_BINDTODEVICE).
    // Without it every dnsmasq of the host shares 0.0.0.0:67, and a unicast packet (a
    // dhcp_release) reaches only one of them, often another bridge's: lost.
    `--interface=${network.bridge}`,
    '--except-interface=lo',
    `--dhcp-range=set:net${network.id},${network.dhcpStart},static,${network.netmask},${options.leaseTime}s`,
    `--dhcp-lease-max=${network.size}`,
    `--dhcp-hostsfile=${files.hosts}`,
    `--dhcp-script=${options.dhcpScript}`,
    '--no-hosts',
    '--leasefile-ro',
    `--domain=${options.domain}`,
    ...(options.dnsServers.length > 0 ? ['--no-resolv', ...options.dnsServers.map((server) => `--server=${server}`)] : []),
  ];
}

/** What ensure() did, for logs and metrics. */
export type DnsmasqAction = 'none' | 'started' | 'reloaded' | 'restarted';

/**
 * One dnsmasq per network. Files are rewritten only when their text changes; a
 * changed hosts or opts file is a SIGHUP; a changed command line (dhcp-range is not
 * reloaded by SIGHUP) or a dead process is a (re)start. A healthy dnsmasq with the
 * same files is left alone, so a service restart never interrupts DHCP.
 */
export class DnsmasqDriver {
  constructor(
    private readonly executor: Executor,
    private readonly options: DnsmasqOptions,
  ) {}

  files(bridge: string): NetworkFiles {
    interfaceName(bridge, 'bridge');
    const base = join(this.options.statePath, 'networks', `nova-${bridge}`);
    return { conf: `${base}.conf`, pid: `${base}.pid`, hosts: `${base}.hosts`, opts: `${base}.opts`, loaded: `${base}.loaded` };
  }

  async ensure(network: DhcpNetwork, hosts: DhcpHost[]): Promise<DnsmasqAction> {
    const files = this.files(network.bridge);
    // dnsmasq re-reads the hosts and opts files after dropping to user nobody.
    mkdirSync(join(this.options.statePath, 'networks'), { recursive: true, mode: 0o755 });
    const argv = dnsmasqArgs(network, files, this.options);
    const hostsText = hostsFile(hosts, this.options.domain);
    const optsText = optsFile(network);
    writeIfChanged(files.hosts, hostsText);
    writeIfChanged(files.opts, optsText);
    writeIfChanged(files.conf, '');
    // Compared with what dnsmasq last loaded, not with the previous files: a service
    // that died between writing the files and the SIGHUP still reloads them.
    const wanted = createHash('sha256').update(hostsText).update('\0').update(optsText).digest('hex');
    const pid = this.runningPid(files);
    let action: DnsmasqAction;
    if (pid === undefined) {
      await this.executor.run({ argv });
      action = 'started';
    } else if (!sameCommandLine(pid, argv)) {
      await this.stopPid(pid);
      await this.executor.run({ argv });
      action = 'restarted';
    } else if (readText(files.loaded) !== wanted) {
      await this.executor.run({ argv: ['kill', '-HUP', String(pid)] });
      action = 'reloaded';
    } else {
      return 'none';
    }
    writeIfChanged(files.loaded, wanted);
    return action;
  }

  /** Stops the network's dnsmasq and removes its files. */
  async stop(bridge: string): Promise<boolean> {
    const files = this.files(bridge);
    const pid = this.runningPid(files);
    if (pid !== undefined) await this.stopPid(pid);
    for (const file of Object.values(files)) rmSync(file, { force: true });
    return pid !== undefined;
  }

  /** Whether this host runs the bridge's dnsmasq (from novanet's own state_path). */
  running(bridge: string): boolean {
    return this.runningPid(this.files(bridge)) !== undefined;
  }

  /** Tells dnsmasq a lease is gone (nova's force_dhcp_release); dnsmasq then calls `del`. */
  async release(bridge: string, address: string, mac: string): Promise<void> {
    interfaceName(bridge, 'bridge');
    await this.executor.run({ argv: ['dhcp_release', bridge, address, mac] });
  }

  /** The pid from the pid file, if that process is alive and is this network's dnsmasq. */
  runningPid(files: NetworkFiles): number | undefined {
    if (!existsSync(files.pid)) return undefined;
    const pid = Number(readFileSync(files.pid, 'utf8').trim());
    if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
    // A stale pid file may name a reused pid: it must be a dnsmasq given this pid file.
    return dnsmasqArguments(readCmdline(pid))?.includes(`--pid-file=${files.pid}`) ? pid : undefined;
  }

  /**
   * Stops a dnsmasq and waits until it has let go of its sockets, or its successor
   * could not bind ("Address already in use"). SIGKILL if SIGTERM was not enough.
   */
  private async stopPid(pid: number): Promise<void> {
    for (const signal of ['-TERM', '-KILL']) {
      await this.executor.run({ argv: ['kill', signal, String(pid)], accept: [0, 1] });
      for (let attempt = 0; attempt < 50; attempt++) {
        if (!holdsResources(pid)) return;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }
}

/**
 * Whether the process still exists and is not a zombie. Its cmdline is no test: an
 * exiting process loses it (its memory) before it closes its files.
 */
function holdsResources(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function readCmdline(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((part) => part !== '');
  } catch {
    return undefined;
  }
}

/**
 * The arguments after the `dnsmasq` word of a command line (`env ... dnsmasq ARGS`, or
 * /proc's `dnsmasq ARGS`: dnsmasq keeps its argv as given, also once daemonised), or
 * undefined when there is no such word. The word may be a path to the binary.
 */
function dnsmasqArguments(argv: string[] | undefined): string[] | undefined {
  const index = argv?.findIndex((part) => part === 'dnsmasq' || (part.startsWith('/') && part.endsWith('/dnsmasq'))) ?? -1;
  return index === -1 ? undefined : argv!.slice(index + 1);
}

/** The running process's dnsmasq arguments equal those of `argv`. */
function sameCommandLine(pid: number, argv: string[]): boolean {
  const running = dnsmasqArguments(readCmdline(pid));
  const wanted = dnsmasqArguments(argv) ?? [];
  return running !== undefined && running.join('\0') === wanted.join('\0');
}

/** Atomic write (rename), skipped when the text is unchanged; returns whether it wrote. */
function writeIfChanged(path: string, text: string): boolean {
  try {
    if (readFileSync(path, 'utf8') === text) return false;
  } catch {
    // missing: write it
  }
  const temporary = `${path}.tmp`;
  writeFileSync(temporary, text, { mode: 0o644 });
  renameSync(temporary, path);
  return true;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
