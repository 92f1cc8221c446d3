import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type DhcpHost, type DhcpNetwork, hostLine, type NetworkFiles, optsFile } from './config.js';
import { writeIfChanged } from './files.js';

/**
 * What this process knows one dnsmasq holds, kept up to date host by host between
 * full ensures, and the `loaded` record that says it: a fingerprint of the hosts (as
 * a set) and the opts, cheap to update by one host, so a restarted service can tell
 * whether dnsmasq already holds what the database wants.
 */

/** What this process knows dnsmasq serves on one bridge, kept from ensure() on. */
export interface Served {
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

/** A bridge's state as a full ensure sets it: exactly these hosts, nothing pending. */
export function servedState(network: DhcpNetwork, files: NetworkFiles, hosts: DhcpHost[], domain: string): Served {
  const lines = new Map(hosts.map((host) => [host.mac, hostLine(host, domain)]));
  return {
    network,
    files,
    lines,
    sum: HostsSum.of(lines.values()),
    optsText: optsFile(network),
    unloaded: new Set(),
    reload: undefined,
    reloading: undefined,
  };
}

/**
 * Records new or changed hosts. `added`: the lines dnsmasq can take from a hostsdir
 * file. `reloadNow`: a host dnsmasq would ignore that way (it changed, or its MAC or
 * address is still held for a removed host), which only a reload of the hosts file
 * brings in.
 */
export function addHostLines(
  served: Served,
  hosts: DhcpHost[],
  domain: string,
): { added: { mac: string; line: string }[]; reloadNow: boolean } {
  let reloadNow = false;
  const added: { mac: string; line: string }[] = [];
  for (const host of hosts) {
    const line = hostLine(host, domain);
    const old = served.lines.get(host.mac);
    if (old === line) continue;
    if (old !== undefined) served.sum.remove(old);
    served.lines.set(host.mac, line);
    served.sum.add(line);
    if (old !== undefined || served.unloaded.has(host.mac) || served.unloaded.has(host.address)) reloadNow = true;
    else added.push({ mac: host.mac, line });
  }
  return { added, reloadNow };
}

/** Forgets hosts; dnsmasq keeps their MACs and addresses (`unloaded`) until its next reload. */
export function removeHostLines(served: Served, hosts: DhcpHost[]): void {
  for (const host of hosts) {
    const line = served.lines.get(host.mac);
    if (line === undefined) continue;
    served.lines.delete(host.mac);
    served.sum.remove(line);
    served.unloaded.add(host.mac).add(host.address);
  }
}

/**
 * Every host known now back into the hosts file, the hostsdir files written so far
 * removed: what dnsmasq's next (re)load should read (it keeps what it read from the
 * hostsdir until then). Shared by ensure() and reloads.
 */
export async function consolidate(served: Served): Promise<void> {
  const { hosts, hostsdir } = served.files;
  // Stopped meanwhile (a queued reload): the directory may be gone.
  const written = existsSync(hostsdir) ? readdirSync(hostsdir) : [];
  writeIfChanged(hosts, [...served.lines.values()].join(''));
  // Off the event loop: under churn these are hundreds of files.
  await Promise.all(written.map((name) => rm(join(hostsdir, name), { force: true })));
}

/** What dnsmasq should hold: the hosts (as a set) and the opts. */
export function fingerprint(served: Served): string {
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
