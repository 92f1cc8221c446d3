import type { Database } from '../db/connection.js';
import { listChangedSince } from '../db/floatingIps.js';
import { getDeletedNetwork, listNetworkStamps } from '../db/networks.js';
import { vifStamps } from '../db/virtualInterfaces.js';
import type { HostChange, HostLayer } from './layer.js';

/**
 * Notices network changes made by other processes (novanet-manage, another service)
 * through the database: a poll of the small networks table, and a partial apply of the
 * networks whose updated_at moved; and of the VIFs this host must act on, which another
 * service may have allocated: its own instances' (multi_host DHCP, a compute host's
 * bridges) and every VIF of the single-host networks it is the network host of (their
 * DHCP hosts). The first poll only takes note: the full reconcile at start has covered
 * everything.
 */
export class NetworkWatcher {
  private seen: Map<number, number> | undefined;
  /** Per network, the stamp of the VIFs this host watches in it. */
  private vifs: Map<number, string> | undefined;
  /** Floating rows seen changed: the newest change, and the addresses changed at that instant. */
  private floating: { since: Date; atSince: Set<string> } | undefined;

  /**
   * `hostName`: this host, whose instances other services may allocate (multi_host).
   * `host.holdsFloating`, when the host layer can say: whether it has that floating IP
   * bound now. A row neither associated with this host nor held here cannot change it.
   */
  constructor(
    private readonly db: Database,
    private readonly host: HostLayer & { holdsFloating?(address: string): boolean },
    private readonly hostName?: string,
    /** VXLAN: watch every VIF of the networks this host holds (their hosts are its flood peers). */
    private readonly options: { everyHolder?: boolean } = {},
  ) {}

  /** The poll running now, and one asked for meanwhile, which waits for it. */
  private running: Promise<number> | undefined;
  private queued: Promise<number> | undefined;

  /**
   * Polls once; returns how many changes it applied. Never two at once: asked while
   * one runs, it runs once more after it, and every ask meanwhile shares that one.
   */
  poll(): Promise<number> {
    if (this.queued) return this.queued;
    if (!this.running) return this.start();
    const next = this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.start();
      });
    this.queued = next;
    return next;
  }

  private start(): Promise<number> {
    const run = this.pollOnce().finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }

  private async pollOnce(): Promise<number> {
    const stamps = await listNetworkStamps(this.db.knex);
    const previous = this.seen;
    this.seen = new Map(stamps.map((stamp) => [stamp.id, stamp.updatedAt]));
    const vifsBefore = this.vifs;
    if (this.hostName !== undefined) {
      const served = stamps.filter((stamp) => !stamp.deleted && !stamp.multiHost && stamp.host === this.hostName);
      this.vifs = await vifStamps(
        this.db.knex,
        this.hostName,
        served.map((stamp) => stamp.id),
        this.options,
      );
    }
    const floating = await this.floatingChanges(previous === undefined);
    if (!previous) return 0;
    const changes: HostChange[] = floating.map((address) => ({ kind: 'floating-updated', address }));
    // Instances allocated or deallocated through another service: the networks whose
    // watched VIFs moved are rebuilt here.
    const updated = new Set<number>();
    if (vifsBefore && this.vifs) {
      for (const id of new Set([...vifsBefore.keys(), ...this.vifs.keys()])) if (vifsBefore.get(id) !== this.vifs.get(id)) updated.add(id);
    }
    for (const stamp of stamps) {
      if (previous.get(stamp.id) === stamp.updatedAt) continue;
      if (!stamp.deleted) updated.add(stamp.id);
      else if (previous.has(stamp.id)) {
        updated.delete(stamp.id);
        changes.push({ kind: 'network-deleted', network: await getDeletedNetwork(this.db.knex, stamp.id) });
      }
    }
    for (const networkId of updated) changes.push({ kind: 'network-updated', networkId });
    if (changes.length > 0) await this.host.apply(changes);
    return changes.length;
  }

  /**
   * Floating IPs (dis)associated through another service: bound or unbound here when
   * they are (or were) this host's. Rows changed since the newest change seen; those at
   * that very instant already passed on are skipped, so nothing is applied twice. Rows
   * that are not this host's, before or after (an address allocated to a project, or
   * associated elsewhere), are left out: applying them did nothing, but took the
   * reconciler from a change of its own for a few ms.
   */
  private async floatingChanges(first: boolean): Promise<string[]> {
    const since = this.floating?.since ?? new Date(0);
    const rows = await listChangedSince(this.db.knex, since);
    const fresh = rows.filter((row) => !(row.updatedAt === since.getTime() && this.floating?.atSince.has(row.address)));
    const newest = rows.reduce((latest, row) => Math.max(latest, row.updatedAt), since.getTime());
    this.floating = { since: new Date(newest), atSince: new Set(rows.filter((row) => row.updatedAt === newest).map((row) => row.address)) };
    const holds = this.host.holdsFloating?.bind(this.host);
    const ours = holds ? fresh.filter((row) => row.host === this.hostName || holds(row.address)) : fresh;
    return first ? [] : ours.map((row) => row.address);
  }
}
