import type { Config } from '../config/options.js';
import type { Database } from '../db/connection.js';
import { listDeletedNetworks, listNetworks, type Network } from '../db/networks.js';
import { Unavailable } from '../errors.js';
import { parseAddress } from '../ipam/address.js';
import { containsAddress, parseCidr } from '../ipam/cidr.js';
import { CommandFailed } from '../linux_net/command.js';
import type { DnsmasqDriver } from '../linux_net/dnsmasq/index.js';
import type { FirewallDriver, FirewallState } from '../linux_net/firewall/state.js';
import type { FloatingDriver } from '../linux_net/floating.js';
import type { LinkDriver } from '../linux_net/links.js';
import { type DesiredHost, loadDesired, type ServedNetwork, servedHere } from './desired.js';
import { FloatingBindings } from './floating.js';
import type { Capabilities, HostChange, HostLayer } from './layer.js';

type DhcpHostChange = Extract<HostChange, { kind: 'dhcp-host' }>;

/** dhcp_release commands run together: a burst of deallocations is not one command after another. */
const RELEASES_AT_ONCE = 8;

async function inBatches<T>(items: T[], size: number, work: (item: T) => Promise<void>): Promise<void> {
  for (let start = 0; start < items.length; start += size) await Promise.all(items.slice(start, start + size).map(work));
}

export interface HostDrivers {
  links: LinkDriver;
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
  onReport?: (report: ReconcileReport) => void;
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
  /** The networks this process built, to tear down when this host no longer serves them. */
  private readonly built = new Map<number, Network>();
  private readonly uplinkReported = new Set<number>();

  constructor(private readonly deps: ReconcilerDeps) {
    this.floating = new FloatingBindings(deps.config, deps.drivers.floating);
  }

  reconcileAll(): Promise<ReconcileReport> {
    return this.serialised(() =>
      this.run('full', async (changes, errors) => {
        const { desired, dhcp } = await this.converge(undefined, [], changes, errors);
        try {
          const tornDown = await this.teardownDeleted(desired, changes, errors);
          if (!this.deps.capabilities.createsBridge) return;
          await this.floating.syncAll(this.deps.db.knex, changes, errors);
          await this.applyRules(desired, tornDown, changes, errors, (state) => this.deps.drivers.firewall.sync(state));
        } finally {
          await dhcp;
        }
      }),
    );
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
      // DHCP hosts alone change neither links nor rules.
      if (updated.size === 0 && deleted.length === 0 && floating.length === 0) return;
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
    const network = this.built.get(networkId);
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
    if (desired.servedBridges.size > 0 || desired.firewall.floating.length > 0 || tornDown || this.rulesInstalled) {
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
    const dhcp: Promise<void>[] = [];
    for (const served of desired.networks) {
      await this.guard(errors, served.network, () => this.ensureNetwork(served, changes, only === undefined));
      if (served.dhcp && this.built.has(served.network.id)) {
        const network = served.dhcp;
        dhcp.push(
          this.guard(errors, served.network, async () => {
            const action = await this.deps.drivers.dnsmasq.ensure(network, served.hosts);
            if (action !== 'none') changes.push(`dnsmasq ${action} on ${network.bridge}`);
          }),
        );
      }
    }
    // Deleted networks, and networks that moved away (scrubbed, another --host).
    const movedAway = desired.notServed.filter((network) => this.builtHere(network, only === undefined));
    for (const network of [
      ...deleted.filter((candidate) => candidate.host === this.deps.config.host || this.builtHere(candidate, false)),
      ...movedAway,
    ]) {
      this.built.delete(network.id);
      await this.guard(errors, network, () => this.teardown(network, desired, changes));
    }
    return { desired, dhcp: Promise.all(dhcp) };
  }

  /**
   * Whether this host built `network`: this process did, or (at a full reconcile,
   * knowing nothing of earlier runs) a dnsmasq of ours serves its bridge. A scrub clears
   * the host column, so that alone would miss a scrubbed network.
   */
  private builtHere(network: Network, full: boolean): boolean {
    return this.built.has(network.id) || (full && network.bridge !== null && this.deps.drivers.dnsmasq.running(network.bridge));
  }

  /** `full`: a full reconcile, which reports a missing VLAN uplink again (a partial one, once per network). */
  private async ensureNetwork(served: ServedNetwork, changes: string[], full: boolean): Promise<void> {
    const { links } = this.deps.drivers;
    const bridge = served.network.bridge!;
    let slave = served.bridgeInterface;
    // Without 802.1Q the network still works on this host (its bridge, DHCP and rules),
    // only without its uplink to other hosts; the error is reported once the rest is built.
    let uplinkMissing: Error | undefined;
    if (served.vlan) {
      try {
        const vlan = await links.ensureVlan(served.vlan.id, served.vlan.parent, served.network.mtu);
        changes.push(...vlan.changes);
        slave = vlan.name;
      } catch (error) {
        if (!(error instanceof Unavailable)) throw error;
        uplinkMissing = error;
      }
    }
    changes.push(...(await links.ensureBridge(bridge, { interface: slave, mtu: served.network.mtu })));
    changes.push(...(await links.ensureFirstAddress(bridge, served.gateway.address, served.gateway.prefix)));
    this.built.set(served.network.id, served.network);
    if (uplinkMissing && (full || !this.uplinkReported.has(served.network.id))) {
      this.uplinkReported.add(served.network.id);
      throw uplinkMissing;
    }
  }

  /** Undoes what a deleted network left on this host, unless a network still served shares its bridge. */
  private async teardown(network: Network, desired: DesiredHost, changes: string[]): Promise<void> {
    if (!network.bridge || desired.servedBridges.has(network.bridge)) return;
    const { links, dnsmasq } = this.deps.drivers;
    if (await dnsmasq.stop(network.bridge)) changes.push(`dnsmasq stopped on ${network.bridge}`);
    const link = await links.show(network.bridge);
    if (link && network.cidr) {
      // Ours are the addresses inside the network: its gateway, or this host's own
      // address in a multi_host network.
      const cidr = parseCidr(network.cidr, 'cidr');
      const addresses = (link.addr_info ?? []).filter((entry) => entry.family === 'inet');
      const ours = addresses.filter((entry) => containsAddress(cidr, parseAddress(entry.local, 'address', 4)));
      for (const entry of ours) {
        await links.removeAddress(network.bridge, entry.local, cidr.prefix);
        changes.push(`removed ${entry.local}/${cidr.prefix} from ${network.bridge}`);
      }
      // A bridge that carries the host's own addresses (moved from flat_interface) stays.
      if (ours.length === addresses.length && (await links.deleteBridge(network.bridge))) {
        changes.push(`deleted bridge ${network.bridge}`);
      }
    }
    if (this.deps.capabilities.vlan && network.vlan !== null && (await links.deleteVlan(network.vlan))) {
      changes.push(`deleted vlan${network.vlan}`);
    }
  }

  /** Returns whether this host served any of the deleted networks. */
  private async teardownDeleted(desired: DesiredHost, changes: string[], errors: string[]): Promise<boolean> {
    const seen = new Set<string>();
    for (const network of await listDeletedNetworks(this.deps.db.knex)) {
      if (!network.bridge || seen.has(network.bridge) || (network.host !== this.deps.config.host && !this.builtHere(network, true)))
        continue;
      seen.add(network.bridge);
      await this.guard(errors, network, () => this.teardown(network, desired, changes));
    }
    return seen.size > 0;
  }

  private async release(
    network: Network | undefined,
    change: Extract<HostChange, { kind: 'release-lease' }>,
    errors: string[],
  ): Promise<void> {
    const served =
      network && servedHere(network, this.deps.config) && network.bridge !== null && this.deps.capabilities.dhcp && network.enableDhcp;
    if (!served || !change.mac) return;
    try {
      await this.deps.drivers.dnsmasq.release(network.bridge!, change.address, change.mac);
    } catch (error) {
      errors.push(
        error instanceof CommandFailed && error.notInstalled
          ? 'dhcp_release is not installed (Debian: dnsmasq-utils); leases are freed by expiry or fixed_ip_disassociate_timeout instead'
          : `dhcp_release ${change.address}: ${(error as Error).message}`,
      );
    }
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
    this.deps.onReport?.(report);
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
