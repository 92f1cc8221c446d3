import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { interfaceName } from '../../fields.js';
import type { Executor } from '../command.js';
import {
  type DhcpHost,
  type DhcpNetwork,
  type DnsmasqOptions,
  dnsmasqArgs,
  lineAddress,
  type NetworkFiles,
  networkFiles,
} from './config.js';
import { readText, writeAtomically, writeIfChanged } from './files.js';
import { runningPid, sameCommandLine, stopDnsmasq } from './process.js';
import { addHostLines, consolidate, fingerprint, removeHostLines, type Served, servedState } from './state.js';

/** What ensure() did, for logs and metrics. */
export type DnsmasqAction = 'none' | 'started' | 'reloaded' | 'restarted';

/**
 * Removals wait this long for others before their SIGHUP: while dnsmasq reloads a
 * large hosts file it answers no DHCP, so under steady churn it reloads once every
 * 5 s instead of every second. A removed host lingering that long is harmless (its
 * instance is gone); a new host that collides with one reloads at once.
 */
export const RELOAD_DELAY_MS = 5_000;

/**
 * One dnsmasq per network. Files are rewritten only when their text changes; a
 * changed hosts or opts file is a SIGHUP; a changed command line (dhcp-range is not
 * reloaded by SIGHUP) or a dead process is a (re)start. A healthy dnsmasq with the
 * same files is left alone, so a service restart never interrupts DHCP.
 *
 * Between full ensures, hosts change one by one: new hosts are a file in the
 * hostsdir (one per call), which dnsmasq reads by inotify without a reload; a removed
 * one rewrites the hosts file and is loaded by one delayed SIGHUP for all removals
 * of that moment (dnsmasq cannot forget a host otherwise).
 */
export class DnsmasqDriver {
  private readonly served = new Map<string, Served>();

  constructor(
    private readonly executor: Executor,
    private readonly options: DnsmasqOptions,
  ) {}

  /** Where the bridge's dnsmasq files are (state_path/networks/nova-BRIDGE.*). */
  files(bridge: string): NetworkFiles {
    return networkFiles(this.options.statePath, bridge);
  }

  async ensure(network: DhcpNetwork, hosts: DhcpHost[]): Promise<DnsmasqAction> {
    const files = this.files(network.bridge);
    // dnsmasq re-reads the hosts and opts files after dropping to user nobody.
    mkdirSync(files.hostsdir, { recursive: true, mode: 0o755 });
    const argv = dnsmasqArgs(network, files, this.options);
    const served = servedState(network, files, hosts, this.options.domain);
    const previous = this.served.get(network.bridge);
    if (previous?.reload) clearTimeout(previous.reload);
    // A reload still running would record its older hosts as loaded after this.
    await previous?.reloading;
    this.served.set(network.bridge, served);
    await consolidate(served);
    writeIfChanged(files.opts, served.optsText);
    writeIfChanged(files.conf, '');
    // Compared with what dnsmasq last loaded, not with the files: a service that died
    // between writing the files and the SIGHUP still reloads them.
    const wanted = fingerprint(served);
    const pid = runningPid(files.pid);
    let action: DnsmasqAction;
    if (pid === undefined) {
      await this.executor.run({ argv });
      action = 'started';
    } else if (!sameCommandLine(pid, argv)) {
      await stopDnsmasq(this.executor, pid);
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
    const { added, reloadNow } = addHostLines(served, hosts, this.options.domain);
    if (reloadNow) {
      await this.reload(served);
      return true;
    }
    // Named after its first host: a MAC is written to the hostsdir once until the next reload empties it.
    if (added.length > 0)
      writeAtomically(join(served.files.hostsdir, added[0]!.mac.replace(/:/g, '-')), added.map((host) => host.line).join(''));
    // With removals pending, dnsmasq holds more than these hosts: recorded at their reload.
    // In place, unread: a record torn by a crash only costs one extra reload at the next start.
    if (served.unloaded.size === 0) writeFileSync(served.files.loaded, fingerprint(served), { mode: 0o644 });
    return true;
  }

  /** Stops serving hosts: dnsmasq and its hosts file at the next reload, RELOAD_DELAY_MS on, shared with other removals. */
  async removeHosts(bridge: string, hosts: DhcpHost[]): Promise<boolean> {
    const served = this.served.get(bridge);
    if (!served) return false;
    removeHostLines(served, hosts);
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
    const settled: Promise<void> = run
      .catch(() => undefined)
      .then(() => {
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
    const pid = runningPid(files.pid);
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
    const pid = runningPid(files.pid);
    if (pid !== undefined) await stopDnsmasq(this.executor, pid);
    for (const file of Object.values(files)) rmSync(file, { force: true, recursive: true });
    return pid !== undefined;
  }

  /** Whether this host runs the bridge's dnsmasq (from novanet's own state_path). */
  running(bridge: string): boolean {
    return runningPid(this.files(bridge).pid) !== undefined;
  }

  /** Tells dnsmasq a lease is gone (nova's force_dhcp_release); dnsmasq then calls `del`. */
  /**
   * The hosts this process last gave the bridge's dnsmasq that `hosts` leaves out (or
   * moves to another address): their leases are still held there, to be released
   * before the reload that forgets them.
   */
  departing(bridge: string, hosts: DhcpHost[]): { mac: string; address: string }[] {
    const served = this.served.get(bridge);
    if (!served) return [];
    const wanted = new Map(hosts.map((host) => [host.mac, host.address]));
    const gone: { mac: string; address: string }[] = [];
    for (const [mac, line] of served.lines) {
      const address = lineAddress(line);
      if (wanted.get(mac) !== address) gone.push({ mac, address });
    }
    return gone;
  }

  async release(bridge: string, address: string, mac: string): Promise<void> {
    interfaceName(bridge, 'bridge');
    await this.executor.run({ argv: ['dhcp_release', bridge, address, mac] });
  }
}
