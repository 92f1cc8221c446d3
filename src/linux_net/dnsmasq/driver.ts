import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync, existsSync, rmSync, renameSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { interfaceName } from '../../fields.js';
import type { Executor } from '../command.js';

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
  /** --dhcp-hostsdir: one file per addHosts call since the hosts file was last loaded. */
  hostsdir: string;
  opts: string;
  /** The fingerprint of the hosts and opts dnsmasq holds (started, SIGHUPed or told through hostsdir). */
  loaded: string;
}

/** dnsmasq's static host line: `MAC,hostname.domain,IP` (nova's format). */
export function hostLine(host: DhcpHost, domain: string): string {
  return `${host.mac},${host.hostname ? `${host.hostname}.${domain}` : `host-${host.address.replace(/[.:]/g, '-')}.${domain}`},${host.address}\n`;
}

export function hostsFile(hosts: DhcpHost[], domain: string): string {
  return hosts.map((host) => hostLine(host, domain)).join('');
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
    `--dhcp-hostsdir=${files.hostsdir}`,
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
 * Removals wait this long for others before their SIGHUP. A reload of 10,000 hosts
 * costs dnsmasq ~190 ms of CPU without answering DHCP; under steady churn one every
 * 5 s instead of every second. A removed host lingering that long is harmless (its
 * instance is gone); a new host that collides with one reloads at once.
 */
export const RELOAD_DELAY_MS = 5_000;

/** What this process knows dnsmasq serves on one bridge, kept from ensure() on. */
interface Served {
  network: DhcpNetwork;
  files: NetworkFiles;
  /** Host lines by MAC: the hosts file plus the hostsdir files. */
  lines: Map<string, string>;
  /** Order-independent sum of the lines' hashes: a host's add or removal costs O(1). */
  sum: HostsSum;
  optsText: string;
  /** MACs and addresses removed since dnsmasq last reloaded: it still holds them. */
  unloaded: Set<string>;
  reload: NodeJS.Timeout | undefined;
  /** The reload in progress, if any: the next waits for it. */
  reloading: Promise<void> | undefined;
}

/**
 * One dnsmasq per network. Files are rewritten only when their text changes; a
 * changed hosts or opts file is a SIGHUP; a changed command line (dhcp-range is not
 * reloaded by SIGHUP) or a dead process is a (re)start. A healthy dnsmasq with the
 * same files is left alone, so a service restart never interrupts DHCP.
 *
 * Between full ensures, hosts change one by one: new hosts are a file in the
 * hostsdir (one per call), which dnsmasq reads by inotify in milliseconds without a reload; a removed
 * one rewrites the hosts file and is loaded by one delayed SIGHUP for all removals
 * of that moment (dnsmasq cannot forget a host otherwise).
 */
export class DnsmasqDriver {
  private readonly served = new Map<string, Served>();

  constructor(
    private readonly executor: Executor,
    private readonly options: DnsmasqOptions,
  ) {}

  files(bridge: string): NetworkFiles {
    interfaceName(bridge, 'bridge');
    const base = join(this.options.statePath, 'networks', `nova-${bridge}`);
    return { conf: `${base}.conf`, pid: `${base}.pid`, hosts: `${base}.hosts`, hostsdir: `${base}.hostsdir`, opts: `${base}.opts`, loaded: `${base}.loaded` };
  }

  async ensure(network: DhcpNetwork, hosts: DhcpHost[]): Promise<DnsmasqAction> {
    const files = this.files(network.bridge);
    // dnsmasq re-reads the hosts and opts files after dropping to user nobody.
    mkdirSync(files.hostsdir, { recursive: true, mode: 0o755 });
    const argv = dnsmasqArgs(network, files, this.options);
    const lines = new Map(hosts.map((host) => [host.mac, hostLine(host, this.options.domain)]));
    const optsText = optsFile(network);
    const previous = this.served.get(network.bridge);
    if (previous?.reload) clearTimeout(previous.reload);
    // A reload still running would record its older hosts as loaded after this.
    await previous?.reloading;
    const served: Served = {
      network, files, lines, sum: HostsSum.of(lines.values()), optsText, unloaded: new Set(), reload: undefined, reloading: undefined,
    };
    this.served.set(network.bridge, served);
    await consolidate(served);
    writeIfChanged(files.opts, optsText);
    writeIfChanged(files.conf, '');
    // Compared with what dnsmasq last loaded, not with the files: a service that died
    // between writing the files and the SIGHUP still reloads them.
    const wanted = fingerprint(served);
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

  /**
   * Serves new hosts without a reload: one hostsdir file for them all (a burst of
   * allocations is one file, one inotify read). False when ensure() has not run for
   * the bridge in this process (the caller does a full ensure instead).
   */
  async addHosts(bridge: string, hosts: DhcpHost[]): Promise<boolean> {
    const served = this.served.get(bridge);
    if (!served) return false;
    let reloadNow = false;
    const added: { mac: string; line: string }[] = [];
    for (const host of hosts) {
      const line = hostLine(host, this.options.domain);
      const old = served.lines.get(host.mac);
      if (old === line) continue;
      if (old !== undefined) served.sum.remove(old);
      served.lines.set(host.mac, line);
      served.sum.add(line);
      // dnsmasq ignores a host whose MAC or address it still holds for another: that
      // one goes in through the hosts file and a reload now.
      if (old !== undefined || served.unloaded.has(host.mac) || served.unloaded.has(host.address)) reloadNow = true;
      else added.push({ mac: host.mac, line });
    }
    if (reloadNow) {
      await this.reload(served);
      return true;
    }
    // Named after its first host: a MAC is written to the hostsdir once until the next reload empties it.
    if (added.length > 0) writeAtomically(join(served.files.hostsdir, added[0]!.mac.replace(/:/g, '-')), added.map((host) => host.line).join(''));
    // With removals pending, dnsmasq holds more than these hosts: recorded at their reload.
    // In place, unread: a record torn by a crash only costs one extra reload at the next start.
    if (served.unloaded.size === 0) writeFileSync(served.files.loaded, fingerprint(served), { mode: 0o644 });
    return true;
  }

  /** Stops serving hosts: dnsmasq and its hosts file at the next reload, RELOAD_DELAY_MS on, shared with other removals. */
  async removeHosts(bridge: string, hosts: DhcpHost[]): Promise<boolean> {
    const served = this.served.get(bridge);
    if (!served) return false;
    for (const host of hosts) {
      const line = served.lines.get(host.mac);
      if (line === undefined) continue;
      served.lines.delete(host.mac);
      served.sum.remove(line);
      served.unloaded.add(host.mac).add(host.address);
    }
    if (served.unloaded.size > 0 && !served.reload) {
      served.reload = setTimeout(() => {
        served.reload = undefined;
        this.reload(served).catch(() => undefined);
      }, RELOAD_DELAY_MS);
      served.reload.unref();
    }
    return true;
  }

  /** The hosts file rewritten from what this process knows, the hostsdir emptied, and a SIGHUP; one at a time. */
  private reload(served: Served): Promise<void> {
    if (served.reload) clearTimeout(served.reload);
    served.reload = undefined;
    const run = (served.reloading ?? Promise.resolve()).then(() => this.reloadNow(served));
    const settled: Promise<void> = run.catch(() => undefined).then(() => {
      if (served.reloading === settled) served.reloading = undefined;
    });
    served.reloading = settled;
    return run;
  }

  /**
   * What is known at its start goes to dnsmasq: the hosts file is written from it and
   * the hostsdir files written so far are removed, off the event loop (hundreds of
   * files under churn), before the SIGHUP. Hosts added meanwhile go into new hostsdir
   * files, which dnsmasq reads also at the SIGHUP; hosts removed meanwhile wait for
   * the next reload.
   */
  private async reloadNow(served: Served): Promise<void> {
    const { files } = served;
    const loading = [...served.unloaded];
    const wanted = fingerprint(served);
    await consolidate(served);
    const pid = this.runningPid(files);
    // No dnsmasq: the next full reconcile starts one with these files.
    if (pid !== undefined) await this.executor.run({ argv: ['kill', '-HUP', String(pid)] });
    for (const key of loading) served.unloaded.delete(key);
    if (pid !== undefined) writeIfChanged(files.loaded, wanted);
  }

  /** Stops the network's dnsmasq and removes its files. */
  async stop(bridge: string): Promise<boolean> {
    const files = this.files(bridge);
    const served = this.served.get(bridge);
    if (served?.reload) clearTimeout(served.reload);
    this.served.delete(bridge);
    const pid = this.runningPid(files);
    if (pid !== undefined) await this.stopPid(pid);
    for (const file of Object.values(files)) rmSync(file, { force: true, recursive: true });
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
  writeAtomically(path, text);
  return true;
}

/** Written beside, then renamed: a reader never sees half a file (dnsmasq skips dotfiles in its hostsdir). */
function writeAtomically(path: string, text: string): void {
  const slash = path.lastIndexOf('/');
  const temporary = `${path.slice(0, slash + 1)}.${path.slice(slash + 1)}.tmp`;
  writeFileSync(temporary, text, { mode: 0o644 });
  renameSync(temporary, path);
}

/**
 * Every host known now back into the hosts file, the hostsdir files written so far
 * removed: what dnsmasq's next (re)load should read (it keeps what it read from the
 * hostsdir until then). Shared by ensure() and reloads.
 */
async function consolidate(served: Served): Promise<void> {
  const { hosts, hostsdir } = served.files;
  // Stopped meanwhile (a queued reload): the directory may be gone.
  const written = existsSync(hostsdir) ? readdirSync(hostsdir) : [];
  writeIfChanged(hosts, [...served.lines.values()].join(''));
  // Off the event loop: under churn these are hundreds of files.
  await Promise.all(written.map((name) => rm(join(hostsdir, name), { force: true })));
}

/** What dnsmasq should hold: the hosts (as a set) and the opts. */
function fingerprint(served: Served): string {
  return record(served.sum, served.optsText);
}

/** The `loaded` record for these host lines (in any order, each with its newline) and opts: what a reader of the state files compares. */
export function loadedRecord(hostLines: Iterable<string>, optsText: string): string {
  return record(HostsSum.of(hostLines), optsText);
}

function record(sum: HostsSum, optsText: string): string {
  return `${sum.hex()}:${createHash('sha256').update(optsText).digest('hex')}`;
}

/** A multiset hash: four 32-bit lanes, each the sum of the lines' hash words modulo 2^32. */
class HostsSum {
  private readonly lanes = new Uint32Array(4);

  static of(lines: Iterable<string>): HostsSum {
    const sum = new HostsSum();
    for (const line of lines) sum.add(line);
    return sum;
  }

  add(line: string): void {
    this.fold(line, 1);
  }

  remove(line: string): void {
    this.fold(line, -1);
  }

  hex(): string {
    return [...this.lanes].map((lane) => lane.toString(16).padStart(8, '0')).join('');
  }

  private fold(line: string, sign: 1 | -1): void {
    const digest = createHash('sha256').update(line).digest();
    for (let lane = 0; lane < 4; lane++) this.lanes[lane] = this.lanes[lane]! + sign * digest.readUInt32BE(lane * 4);
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
