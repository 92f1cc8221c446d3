import type { Database } from '../db/connection.js';
import { listChangedSince } from '../db/floatingIps.js';
import { getDeletedNetwork, listNetworkStamps } from '../db/networks.js';
import { hostVifStamp } from '../db/virtualInterfaces.js';
import type { HostChange, HostLayer } from './layer.js';

/**
 * Notices network changes made by other processes (novanet-manage, another service)
 * through the database: a poll of the small networks table, and a partial apply of the
 * networks whose updated_at moved; and of this host's VIFs, which another service
 * may have allocated (multi_host). The first poll only takes note: the full
 * reconcile at start has covered everything.
 */
export class NetworkWatcher {
  private seen: Map<number, number> | undefined;
  private vifs: { stamp: string; networkIds: number[] } | undefined;
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
  ) {}

  async poll(): Promise<number> {
    const stamps = await listNetworkStamps(this.db.knex);
    const previous = this.seen;
    this.seen = new Map(stamps.map((stamp) => [stamp.id, stamp.updatedAt]));
    const vifsBefore = this.vifs;
    if (this.hostName !== undefined) this.vifs = await hostVifStamp(this.db.knex, this.hostName);
    const floating = await this.floatingChanges(previous === undefined);
    if (!previous) return 0;
    const changes: HostChange[] = floating.map((address) => ({ kind: 'floating-updated', address }));
    // Instances of this host allocated or deallocated through another service: the
    // networks they are (or were) in are rebuilt here (multi_host DHCP hosts).
    if (vifsBefore && this.vifs && vifsBefore.stamp !== this.vifs.stamp) {
      for (const networkId of new Set([...vifsBefore.networkIds, ...this.vifs.networkIds]))
        changes.push({ kind: 'network-updated', networkId });
    }
    for (const stamp of stamps) {
      if (previous.get(stamp.id) === stamp.updatedAt) continue;
      if (!stamp.deleted) changes.push({ kind: 'network-updated', networkId: stamp.id });
      else if (previous.has(stamp.id)) changes.push({ kind: 'network-deleted', network: await getDeletedNetwork(this.db.knex, stamp.id) });
    }
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
