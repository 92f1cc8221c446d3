import * as fixedIps from '../db/fixedIps.js';
import type { Network } from '../db/networks.js';
import { withRetry } from '../db/retry.js';
import * as secgroups from '../db/securityGroups.js';
import * as vifs from '../db/virtualInterfaces.js';
import type { HostChange } from '../host/layer.js';
import { Batcher } from './batcher.js';
import type { ManagerContext } from './context.js';
import type { FloatingIps } from './floating.js';
import { groupBy } from './instances.js';
import { type AllocationGroups, defaultGroup } from './securityGroups.js';

/** One allocation's writes: a VIF per network, a fixed IP per VIF. */
export interface AllocationWrite {
  instanceUuid: string;
  projectId: string;
  hostname: string | null;
  host: string;
  networks: Network[];
  /** Addresses the caller asked for, by network uuid; the others come from the pool. */
  addresses: Map<string, string>;
  /** Its security groups: these, and the project's `default` made in the same transaction if asked for and missing. */
  securityGroups: AllocationGroups;
  now: Date;
}

export interface AllocationWritten {
  vifs: vifs.VirtualInterface[];
  /** The fixed IP of each VIF, in the same order. */
  fixed: fixedIps.FixedIp[];
}

/** What an allocation reads first; `defaultNetworks` when it names none. */
export interface AllocationRead {
  instanceUuid: string;
  projectId: string;
  defaultNetworks: boolean;
  /** Security group names it asks for (checked). */
  securityGroups: string[];
}

/** The instance's VIFs (an allocation before), and its project's default networks if it is new and named none. */
export interface AllocationStart {
  existing: vifs.VirtualInterface[];
  defaults: Network[] | undefined;
  /** If it is new: its project's groups of the names it asks for. */
  groups: secgroups.SecurityGroup[];
}

/** One deallocation: with `onlyProject`, another project's instance is left alone. */
export interface DeallocationWrite {
  instanceUuid: string;
  onlyProject?: string;
}

/** The project of the instance found (undefined: it had no networking) and what the host layer must do. */
export interface DeallocationWritten {
  found: { projectId: string | null } | undefined;
  changes: HostChange[];
}

/**
 * Calls served together at most, and batches of one kind at once at most. One at a
 * time makes the batches as large as the load: the three kinds (first reads,
 * allocation, deallocation) then hold three of the pool's four connections, and the
 * callers wait in the service rather than in the database.
 */
export const ALLOCATION_BATCH = 32;
const ALLOCATION_WRITERS = 1;

/**
 * The database work of allocations and deallocations that arrive together, done
 * together: each kind is one transaction for a whole batch, so under contention a call
 * pays a share of a few round trips and of one commit instead of its own.
 */
export class AllocationBatches {
  private readonly reads = new Batcher<AllocationRead, AllocationStart>((items) => this.readStarts(items), {
    maxBatch: ALLOCATION_BATCH,
    maxConcurrent: ALLOCATION_WRITERS,
  });
  private readonly writes = new Batcher<AllocationWrite, AllocationWritten>((items) => this.writeAllocations(items), {
    maxBatch: ALLOCATION_BATCH,
    maxConcurrent: ALLOCATION_WRITERS,
  });
  private readonly frees = new Batcher<DeallocationWrite, DeallocationWritten>((items) => this.writeDeallocations(items), {
    maxBatch: ALLOCATION_BATCH,
    maxConcurrent: ALLOCATION_WRITERS,
  });

  constructor(
    private readonly context: ManagerContext,
    private readonly floating: FloatingIps,
  ) {}

  read(item: AllocationRead): Promise<AllocationStart> {
    return this.reads.submit(item);
  }

  write(item: AllocationWrite): Promise<AllocationWritten> {
    return this.writes.submit(item);
  }

  free(item: DeallocationWrite): Promise<DeallocationWritten> {
    return this.frees.submit(item);
  }

  /** The instances' VIFs, and for new instances that name no networks, their projects' default ones: two queries for the batch. */
  private async readStarts(items: AllocationRead[]): Promise<AllocationStart[]> {
    const { context } = this;
    const existing = groupBy(
      await vifs.listVirtualInterfaces(context.db.knex, { instanceUuids: [...new Set(items.map((item) => item.instanceUuid))] }),
      (vif) => vif.instanceUuid,
    );
    const isNew = (item: AllocationRead) => item.defaultNetworks && !existing.has(item.instanceUuid);
    const networksOf = new Map<string, Network[]>();
    for (const project of new Set(items.filter(isNew).map((item) => item.projectId))) {
      networksOf.set(project, await context.policy.defaultNetworks(context, context.db.knex, project));
    }
    // One read of the groups for all new instances of the batch.
    const fresh = items.filter((item) => !existing.has(item.instanceUuid));
    const found =
      fresh.length === 0
        ? []
        : await secgroups.listGroups(context.db.knex, {
            projectIds: [...new Set(fresh.map((item) => item.projectId))],
            names: [...new Set(fresh.flatMap((item) => item.securityGroups))],
          });
    return items.map((item) => ({
      existing: existing.get(item.instanceUuid) ?? [],
      defaults: isNew(item) ? [...networksOf.get(item.projectId)!] : undefined,
      groups: found.filter((group) => group.projectId === item.projectId && item.securityGroups.includes(group.name)),
    }));
  }

  /** One multi-row VIF insert, then per network one claim of as many free addresses as VIFs (fixedIps.claimFixedIps). */
  private writeAllocations(items: AllocationWrite[]): Promise<AllocationWritten[]> {
    const { context } = this;
    return withRetry((attempt) =>
      context.transaction(async (trx) => {
        const wanted = items.flatMap((item) => item.networks.map((network) => ({ item, network })));
        const created = await vifs.insertVirtualInterfaces(
          trx,
          wanted.map(({ item, network }) => ({
            uuid: context.newUuid(),
            networkId: network.id,
            instanceUuid: item.instanceUuid,
            projectId: item.projectId,
            hostname: item.hostname,
            host: item.host,
            createdAt: item.now,
          })),
          context.newMac,
        );
        const fixed = new Map<number, fixedIps.FixedIp>();
        const pools = new Map<number, { network: fixedIps.ClaimNetwork; claims: fixedIps.FixedIpClaim[] }>();
        for (const [index, { item, network }] of wanted.entries()) {
          const claim = { instanceUuid: item.instanceUuid, virtualInterfaceId: created[index]!.id, now: item.now };
          const address = item.addresses.get(network.uuid);
          if (address !== undefined) {
            fixed.set(claim.virtualInterfaceId, await fixedIps.claimFixedIpAddress(trx, network, address, claim));
          } else {
            const pool = pools.get(network.id) ?? { network, claims: [] };
            pools.set(network.id, pool);
            pool.claims.push(claim);
          }
        }
        for (const { network, claims } of pools.values()) {
          // After a conflict (Galera: another node took the same first free rows), a random
          // distance into the free list, up to two batches a retry: racing nodes spread out.
          const skip = attempt === 1 ? 0 : Math.floor(Math.random() * 2 * ALLOCATION_BATCH * (attempt - 1));
          for (const taken of await fixedIps.claimFixedIps(trx, network, claims, { skip })) fixed.set(taken.virtualInterfaceId!, taken);
        }
        // Members in the same transaction as their ports: a refused allocation leaves no trace.
        const memberships: secgroups.Membership[] = [];
        for (const item of items) {
          const { ids, makeDefault } = item.securityGroups;
          const made = makeDefault ? [(await defaultGroup(trx, item.projectId, item.now)).id] : [];
          for (const groupId of [...ids, ...made]) memberships.push({ groupId, instanceUuid: item.instanceUuid });
        }
        await secgroups.insertMemberships(trx, memberships, items[0]!.now);
        let next = 0;
        return items.map((item) => {
          const mine = created.slice(next, (next += item.networks.length));
          return { vifs: mine, fixed: mine.map((vif) => fixed.get(vif.id)!) };
        });
      }),
    );
  }

  /** The same few statements (besides BEGIN and COMMIT) free one instance or a whole batch. */
  private writeDeallocations(items: DeallocationWrite[]): Promise<DeallocationWritten[]> {
    const { context } = this;
    const { capabilities } = context.policy;
    return withRetry(() =>
      context.transaction(async (trx) => {
        const read = await vifs.listVirtualInterfacesWithFixedIps(trx, { instanceUuids: items.map((item) => item.instanceUuid) });
        const byInstance = groupBy(read.vifs, (vif) => vif.instanceUuid);
        // The first permitted call of an instance frees it and gets its changes; a second
        // call for it in the same batch, or another project's, gets none.
        const freedBy = new Map<string, DeallocationWrite>();
        for (const item of items) {
          const found = byInstance.get(item.instanceUuid);
          if (found && !freedBy.has(item.instanceUuid) && (item.onlyProject === undefined || found[0]!.projectId === item.onlyProject))
            freedBy.set(item.instanceUuid, item);
        }
        const freed = [...freedBy.keys()].flatMap((instance) => byInstance.get(instance)!);
        const ids = freed.map((vif) => vif.id);
        const freedIds = new Set(ids);
        const held = read.fixed.filter((fixed) => freedIds.has(fixed.virtualInterfaceId!));
        const now = context.now();
        // Fixed IPs first: their row locks order this against a concurrent association,
        // whose floating IP is then seen and detached here, in the same transaction.
        await fixedIps.deallocateFixedIps(trx, ids, { disassociate: !capabilities.dhcp, now });
        const detached = await this.floating.detachFromFixedIps(
          trx,
          held.map((fixed) => fixed.id),
          now,
        );
        await vifs.deleteVirtualInterfaces(trx, ids);
        // Its memberships go with its networking (nova: with the instance).
        await secgroups.removeInstances(trx, [...freedBy.keys()]);

        const vifOf = new Map(freed.map((vif) => [vif.id, vif]));
        const changesOf = new Map<string, HostChange[]>();
        const changesFor = (instance: string): HostChange[] => changesOf.get(instance) ?? changesOf.set(instance, []).get(instance)!;
        const heldById = new Map(held.map((fixed) => [fixed.id, fixed]));
        for (const { address, fixedIpId } of detached) {
          const vif = vifOf.get(heldById.get(fixedIpId)?.virtualInterfaceId ?? -1);
          if (vif) changesFor(vif.instanceUuid).push({ kind: 'floating-updated', address });
        }
        for (const fixed of held) {
          const vif = vifOf.get(fixed.virtualInterfaceId ?? -1);
          if (!vif) continue;
          const changes = changesFor(vif.instanceUuid);
          // Releases first: the host layer applies them before the hosts lose the entries.
          // Only a lease dnsmasq reported can be released (the rest would be a wasted command each).
          if (capabilities.dhcp && context.config.force_dhcp_release && fixed.leased) {
            changes.push({ kind: 'release-lease', networkId: fixed.networkId, address: fixed.address, mac: vif.address });
          }
          changes.push({
            kind: 'dhcp-host',
            networkId: fixed.networkId,
            action: 'remove',
            computeHost: vif.host,
            entry: { mac: vif.address, hostname: vif.hostname, address: fixed.address },
          });
        }
        return items.map((item) => {
          const found = byInstance.get(item.instanceUuid);
          const changes = freedBy.get(item.instanceUuid) === item ? (changesOf.get(item.instanceUuid) ?? []) : [];
          return { found: found === undefined ? undefined : { projectId: found[0]!.projectId }, changes };
        });
      }),
    );
  }
}
