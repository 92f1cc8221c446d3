import type { Database } from '../db/connection.js';
import { getDeletedNetwork, listNetworkStamps } from '../db/networks.js';
import type { HostChange, HostLayer } from '../managers/types.js';

/**
 * Notices network changes made by other processes (novanet-manage, another service)
 * through the database: a poll of the small networks table, and a partial apply of the
 * networks whose updated_at moved. The first poll only takes note: the full
 * reconcile at start has covered everything.
 */
export class NetworkWatcher {
  private seen: Map<number, number> | undefined;

  constructor(
    private readonly db: Database,
    private readonly host: HostLayer,
  ) {}

  async poll(): Promise<number> {
    const stamps = await listNetworkStamps(this.db.knex);
    const previous = this.seen;
    this.seen = new Map(stamps.map((stamp) => [stamp.id, stamp.updatedAt]));
    if (!previous) return 0;
    const changes: HostChange[] = [];
    for (const stamp of stamps) {
      if (previous.get(stamp.id) === stamp.updatedAt) continue;
      if (!stamp.deleted) changes.push({ kind: 'network-updated', networkId: stamp.id });
      else if (previous.has(stamp.id)) changes.push({ kind: 'network-deleted', network: await getDeletedNetwork(this.db.knex, stamp.id) });
    }
    if (changes.length > 0) await this.host.apply(changes);
    return changes.length;
  }
}
