import type { Config } from '../config/options.js';
import type { Database } from '../db/connection.js';
import { listDeletedNetworks, listNetworks, type Network } from '../db/networks.js';
import { CommandFailed } from '../linux_net/command.js';
import type { DhcpIsolation } from '../linux_net/dhcpIsolation.js';
import type { DnsmasqDriver } from '../linux_net/dnsmasq/index.js';
import type { FirewallDriver, FirewallState } from '../linux_net/firewall/state.js';
import type { FloatingDriver } from '../linux_net/floating.js';
import type { LinkDriver } from '../linux_net/links.js';
import type { PortGuard } from '../linux_net/portGuard.js';
import type { VxlanDriver } from '../linux_net/vxlan.js';
import { BridgeFilters } from './bridgeFilters.js';
import { type DesiredHost, loadDesired, servedHere } from './desired.js';
import { FloatingBindings } from './floating.js';
import type { Capabilities, HostChange, HostLayer } from './layer.js';
import { NetworkBuilds } from './networks.js';
import { TapPlugging } from './taps.js';

type DhcpHostChange = Extract<HostChange, { kind: 'dhcp-host' }>;

/** dhcp_release commands run together: a burst of deallocations is not one command after another. */
const RELEASES_AT_ONCE = 8;

async function inBatches<T>(items: T[], size: number, work: (item: T) => Promise<void>): Promise<void> {
  for (let start = 0; start < items.length; start += size) await Promise.all(items.slice(start, start + size).map(work));
}

export interface HostDrivers {
  links: LinkDriver;
  vxlan: VxlanDriver;
  dhcpIsolation: DhcpIsolation;
  portGuard: PortGuard;
  firewall: FirewallDriver;
  dnsmasq: DnsmasqDriver;
  floating: FloatingDriver;
}

/** What one reconcile did; `changes` on a healthy host after start-up is empty. */
export interface ReconcileReport {
  kind: 'full' | 'partial';
  finishedAt: Date;
  durationMs: number;
  changes: string[];
  errors: string[];
}

export interface ReconcilerDeps {
  db: Database;
  config: Config;
  capabilities: Capabilities;
  drivers: HostDrivers;
  log: (event: string, fields?: Record<string, unknown>) => void;
  /** Awaited before the reconcile's callers are released (the hosts table's built networks go in here). */
  onReport?: (report: ReconcileReport) => void | Promise<void>;
}

/**
 * Makes this host's kernel state match the database. Full reconciles (start, schedule)
 * read the kernel and repair any drift; partial ones (after a change) touch only the
 * networks named and the chains that differ. One at a time: a change waits for the
 * reconcile in progress instead of racing it.
 */
export class Reconciler implements HostLayer {
  private queue: Promise<unknown> = Promise.resolve();
  /** Changes waiting for the next partial reconcile, with their callers. */
  private readonly pending: { changes: HostChange[]; resolve: () => void }[] = [];
  lastReport: ReconcileReport | undefined;
  lastFullAt: Date | undefined;
  /** Whether this process has put novanet's rules in place (a host serving nothing gets none). */
  private rulesInstalled = false;
  /** Changes made by full reconciles after the first: drift found and repaired. */
  repairs = 0;
  private readonly floating: FloatingBindings;
  private readonly builds: NetworkBuilds;
  private readonly filters: BridgeFilters;
  private readonly taps: TapPlugging;

  constructor(private readonly deps: ReconcilerDeps) {
    this.floating = new FloatingBindings(deps.config, deps.drivers.floating);
    this.builds = new NetworkBuilds(deps.config, deps.capabilities, deps.drivers);
    this.taps = new TapPlugging(deps.drivers.links);
    this.filters = new BridgeFilters(deps.drivers, deps.config);
  }

  reconcileAll(): Promise<ReconcileReport> {
    return this.serialised(() =>
      this.run('full', async (changes, errors) => {
        const { desired, dhcp } = await this.converge(undefined, [], changes, errors);
        try {
          const deleted = this.builds.deletedHere(await listDeletedNetworks(this.deps.db.knex));
          for (const network of deleted) await this.guard(errors, network, () => this.builds.teardown(network, desired, changes));
          const tornDown = deleted.length > 0;
          if (!this.deps.capabilities.createsBridge) return;
          await this.floating.syncAll(this.deps.db.knex, changes, errors);
          await this.applyRules(desired, tornDown, changes, errors, (state) => this.deps.drivers.firewall.sync(state));
        } finally {
          await dhcp;
        }
      }),
    );
  }

  /** The uuids of the networks whose bridge this host has built. */
  builtNetworks(): string[] {
    return this.builds.builtUuids();
  }

  /** Whether this host carries the floating IP `address` now (the watcher's filter). */
  holdsFloating(address: string): boolean {
    return this.floating.holds(address);
  }

  /**
   * HostLayer: what the managers changed, applied now. Changes that arrive while a
   * reconcile runs are applied together by the next one (a burst of allocations is one
   * dnsmasq reload, not one each); every caller waits for the run that covers its change.
   */
  apply(changes: HostChange[]): Promise<void> {
    if (!this.deps.capabilities.createsBridge) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const first = this.pending.length === 0;
      this.pending.push({ changes, resolve });
      if (!first) return;
      void this.serialised(async () => {
        const batch = this.pending.splice(0);
        // A failure is in the run's report (run() catches it): every caller is released either way.
        await this.applyNow(batch.flatMap((entry) => entry.changes)).finally(() => {
          for (const entry of batch) entry.resolve();
        });
      });
    });
  }

  private async applyNow(changes: HostChange[]): Promise<void> {
    await this.run('partial', async (done, errors) => {
      const updated = new Set<number>();
      const deleted: Network[] = [];
      const releases: Extract<HostChange, { kind: 'release-lease' }>[] = [];
      const floating: string[] = [];
      const hosts = new Map<number, DhcpHostChange[]>();
      for (const change of changes) {
        if (change.kind === 'release-lease') releases.push(change);
        else if (change.kind === 'network-updated') updated.add(change.networkId);
        else if (change.kind === 'floating-updated') floating.push(change.address);
        else if (change.kind === 'dhcp-host') {
          const group = hosts.get(change.networkId) ?? [];
          group.push(change);
          hosts.set(change.networkId, group);
        } else deleted.push(change.network);
      }
      // Releases go before the hosts file loses their entries: at that reload dnsmasq may
      // drop such a lease silently, and then ignores the release (the address would stay
      // held until fixed_ip_disassociate_timeout).
      if (releases.length > 0) {
        const released = await listNetworks(this.deps.db.knex, { ids: [...new Set(releases.map((change) => change.networkId))] });
        const byId = new Map(released.map((network) => [network.id, network]));
        await inBatches(releases, RELEASES_AT_ONCE, (change) => this.release(byId.get(change.networkId), change, errors));
      }
      for (const [networkId, group] of hosts) {
        if (!updated.has(networkId) && !(await this.applyHosts(networkId, group, done))) updated.add(networkId);
      }
      // DHCP hosts alone change neither links nor rules; a port of this host's own is plugged and guarded now.
      if (updated.size === 0 && deleted.length === 0 && floating.length === 0) {
        const own = [...hosts.values()].flat().filter((change) => change.action === 'add' && change.computeHost === this.deps.config.host);
        if (own.length > 0) await this.ownPortsAdded([...new Set(own.map((change) => change.networkId))], done, errors);
        return;
      }
      const { desired, dhcp } = await this.converge([...updated], deleted, done, errors);
      try {
        const { bind } = floating.length > 0 ? await this.floating.update(this.deps.db.knex, floating, done, errors) : { bind: undefined };
        await this.applyRules(desired, deleted.length > 0, done, errors, (state) => this.deps.drivers.firewall.apply(state), bind);
      } finally {
        await dhcp;
      }
    });
  }

  /**
   * DHCP hosts added or removed in a network this process built, straight to its
   * dnsmasq (no database read, no reload for an addition). False when the network
   * needs a full look instead.
   */
  private async applyHosts(networkId: number, group: DhcpHostChange[], changes: string[]): Promise<boolean> {
    const network = this.builds.get(networkId);
    if (!network?.bridge) return false;
    if (!this.deps.capabilities.dhcp || !network.enableDhcp) return true;
    // multi_host: this host's dnsmasq serves this host's instances only.
    const mine = group.filter((change) => !network.multiHost || change.computeHost === this.deps.config.host);
    // In order: an instance allocated and deallocated within one batch ends up gone.
    const runs: { action: DhcpHostChange['action']; entries: DhcpHostChange['entry'][] }[] = [];
    for (const change of mine) {
      const last = runs.at(-1);
      if (last?.action === change.action) last.entries.push(change.entry);
      else runs.push({ action: change.action, entries: [change.entry] });
    }
    const { dnsmasq } = this.deps.drivers;
    for (const { action, entries } of runs) {
      const applied =
        action === 'add' ? await dnsmasq.addHosts(network.bridge, entries) : await dnsmasq.removeHosts(network.bridge, entries);
      if (!applied) return false;
      changes.push(
        ...entries.map((entry) => `dhcp host ${entry.mac} ${entry.address} ${action === 'add' ? 'added' : 'removed'} on ${network.bridge}`),
      );
    }
    return true;
  }

  /**
   * The rules for what `desired` and the floating bindings hold, then the new floating
   * addresses bound (`bind`, from FloatingBindings.update, which says why after), then
   * the conntrack flush of floating addresses that moved or went (after: no old rule
   * re-creates an entry). A failed bind is out of the rules again: they are rewritten.
   * A host that serves nothing and never did is left alone (no chains, no jumps).
   */
  private async applyRules(
    desired: DesiredHost,
    tornDown: boolean,
    changes: string[],
    errors: string[],
    write: (state: FirewallState) => Promise<string[]>,
    bind?: () => Promise<boolean>,
  ): Promise<void> {
    await this.writeRules(desired, tornDown, changes, write);
    if (bind && (await bind())) await this.writeRules(desired, false, changes, write);
    await this.floating.flushStale(errors);
  }

  private async writeRules(
    desired: DesiredHost,
    tornDown: boolean,
    changes: string[],
    write: (state: FirewallState) => Promise<string[]>,
  ): Promise<void> {
    desired.firewall.floating = this.floating.list();
    // A compute host that only plugs bridges routes and NATs nothing: it gets no rules.
    if (desired.firewall.networks.length > 0 || desired.firewall.floating.length > 0 || tornDown || this.rulesInstalled) {
      this.rulesInstalled = true;
      changes.push(...(await write(desired.firewall)).map((chain) => `rules ${chain}`));
    }
  }

  /**
   * The steps full and partial reconciles share: forwarding on, the networks asked for
   * (all when `only` is undefined) built, the deleted ones torn down. Each network's
   * dnsmasq is (re)started in the background (`dhcp`, which never rejects): its start
   * waits for its lease script, while floating addresses and rules need only the links.
   */
  private async converge(
    only: number[] | undefined,
    deleted: Network[],
    changes: string[],
    errors: string[],
  ): Promise<{ desired: DesiredHost; dhcp: Promise<unknown> }> {
    const desired = await loadDesired(this.deps.db.knex, this.deps.config, this.deps.capabilities, only);
    for (const { network, reason } of desired.refused) errors.push(`network ${network.label} (${network.cidr}) is not served: ${reason}`);
    for (const { network, reason } of desired.withoutUplink) {
      errors.push(`network ${network.label} (${network.cidr}) is built without an uplink: ${reason}`);
    }
    if (desired.networks.length > 0 && (await this.deps.drivers.links.ensureForwarding())) changes.push('ip_forward on');
    if (desired.networks.some((served) => served.gatewayV6) && (await this.deps.drivers.links.ensureForwardingV6()))
      changes.push('IPv6 forwarding on');
    const dhcp: Promise<void>[] = [];
    for (const served of desired.networks) {
      await this.guard(errors, served.network, () => this.builds.ensure(served, changes, only === undefined));
      if (served.dhcp && this.builds.get(served.network.id)) {
        const network = served.dhcp;
        dhcp.push(
          this.guard(errors, served.network, async () => {
            // Instances deallocated through another service: their leases live in this
            // dnsmasq, and are released here, before the reload that forgets them.
            if (this.deps.config.force_dhcp_release) {
              const gone = this.deps.drivers.dnsmasq.departing(network.bridge, served.hosts);
              if (gone.length > 0) {
                await inBatches(gone, RELEASES_AT_ONCE, (host) => this.releaseOn(network.bridge, host.address, host.mac, errors));
              }
            }
            const action = await this.deps.drivers.dnsmasq.ensure(network, served.hosts);
            if (action !== 'none') changes.push(`dnsmasq ${action} on ${network.bridge}`);
          }),
        );
      }
    }
    this.taps.update(desired, deleted, only === undefined);
    await this.taps.attachLoose(changes, errors);
    // Deleted networks, and networks that moved away (scrubbed, another --host).
    const movedAway = await this.builds.leftHere(desired.notServed, only === undefined);
    for (const network of [
      ...deleted.filter((candidate) => candidate.host === this.deps.config.host || this.builds.builtHere(candidate, false)),
      ...movedAway,
    ]) {
      await this.guard(errors, network, () => this.builds.teardown(network, desired, changes));
    }
    const isolated = this.deps.capabilities.dhcp ? this.builds.isolatedUplinks() : [];
    await this.filters.isolateDhcp(isolated, only === undefined, changes, errors);
    await this.filters.guardPorts(desired.guardedPorts, only === undefined, changes, errors);
    return { desired, dhcp: Promise.all(dhcp) };
  }

  private async release(
    network: Network | undefined,
    change: Extract<HostChange, { kind: 'release-lease' }>,
    errors: string[],
  ): Promise<void> {
    const served =
      network && servedHere(network, this.deps.config) && network.bridge !== null && this.deps.capabilities.dhcp && network.enableDhcp;
    if (!served || !change.mac) return;
    await this.releaseOn(network.bridge!, change.address, change.mac, errors);
  }

  private async releaseOn(bridge: string, address: string, mac: string, errors: string[]): Promise<void> {
    try {
      await this.deps.drivers.dnsmasq.release(bridge, address, mac);
    } catch (error) {
      errors.push(
        error instanceof CommandFailed && error.notInstalled
          ? 'dhcp_release is not installed (Debian: dnsmasq-utils); leases are freed by expiry or fixed_ip_disassociate_timeout instead'
          : `dhcp_release ${address}: ${(error as Error).message}`,
      );
    }
  }

  /** Every second (the service's tick): taps of this host's instances that appeared go into their bridges (taps.ts). */
  plugTaps(): Promise<void> {
    if (!this.taps.any()) return Promise.resolve();
    return this.serialised(async () => {
      const loose = await this.taps.loose();
      if (loose.length > 0) await this.run('partial', (changes, errors) => this.taps.attach(loose, changes, errors));
    });
  }

  /**
   * New ports of this host's own in networks it already built: their taps are plugged
   * once they appear, and guarded, without the network's rebuild (no link or dnsmasq work).
   */
  private async ownPortsAdded(networkIds: number[], changes: string[], errors: string[]): Promise<void> {
    const desired = await loadDesired(this.deps.db.knex, this.deps.config, this.deps.capabilities, networkIds);
    this.taps.update(desired, [], false);
    await this.taps.attachLoose(changes, errors);
    await this.filters.guardPorts(desired.guardedPorts, false, changes, errors);
  }

  /** A failure in one network is logged and the others go on (one bad VLAN must not stop DHCP elsewhere). */
  private async guard(errors: string[], network: Network, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      errors.push(`network ${network.label} (${network.cidr}): ${(error as Error).message}`);
    }
  }

  private async run(kind: 'full' | 'partial', work: (changes: string[], errors: string[]) => Promise<void>): Promise<ReconcileReport> {
    const started = Date.now();
    const changes: string[] = [];
    const errors: string[] = [];
    try {
      await work(changes, errors);
    } catch (error) {
      errors.push((error as Error).message);
    }
    const report: ReconcileReport = { kind, finishedAt: new Date(), durationMs: Date.now() - started, changes, errors };
    if (kind === 'full') {
      if (this.lastFullAt) this.repairs += changes.length;
      this.lastFullAt = report.finishedAt;
    }
    if (changes.length > 0 || errors.length > 0 || kind === 'full') {
      this.deps.log(errors.length > 0 ? 'reconcile.errors' : 'reconcile.done', { ...report, finishedAt: report.finishedAt.toISOString() });
    }
    this.lastReport = report;
    await this.deps.onReport?.(report);
    return report;
  }

  /** Resolves once every reconcile queued so far has finished. */
  async reconcileIdle(): Promise<void> {
    await this.queue;
  }

  private serialised<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }
}
