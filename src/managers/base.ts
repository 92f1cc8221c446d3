import type { Config, Mode } from '../config/options.js';
import type { Database } from '../db/connection.js';
import * as fixedIps from '../db/fixedIps.js';
import * as networks from '../db/networks.js';
import type { Network } from '../db/networks.js';
import { withRetry } from '../db/retry.js';
import { isDuplicateKey } from '../db/errors.js';
import type { Queryable } from '../db/rows.js';
import * as vifs from '../db/virtualInterfaces.js';
import {
  Conflict, FixedIpNotFound, Invalid, NetworkHasProject, NetworkInUse, NoMoreNetworks, NotFound,
} from '../errors.js';
import { addressText, parseCidr } from '../ipam/cidr.js';
import { isMac, randomMac } from '../ipam/mac.js';
import { randomUUID } from 'node:crypto';
import { Batcher } from './batcher.js';
import { FloatingIps } from './floating.js';
import { groupBy, listInstances } from './instances.js';
import { buildNetworkInfo, injectedInterfaces, type NetworkInfoParts } from './networkInfo.js';
import { CreateRules, ModeFields, planNetworks } from './plan.js';
import type {
  AllocateRequest, AssociateFloatingIpRequest, Capabilities, CreateNetworksRequest, FixedIpListing, FloatingActor,
  FloatingIpListing, FloatingRangeCreated, HostChange, HostLayer, InstanceListing, InstanceNetworkInfo, Lease, ModifyNetworkRequest, NetworkManager,
  NetworkSelector, RequestedNetwork,
} from './types.js';
import { hostnameField, projectIdField, uuidField } from '../fields.js';
import { canonicalAddress } from '../ipam/address.js';

/** What every manager needs; clock, ids and MACs are injectable for tests. */
export interface ManagerDeps {
  db: Database;
  config: Config;
  host: HostLayer;
  now?: () => Date;
  newUuid?: () => string;
  newMac?: () => string;
  log?: (message: string) => void;
}

/** One allocateForInstance call's writes: a VIF per network, a fixed IP per VIF. */
interface AllocationWrite {
  instanceUuid: string;
  projectId: string;
  hostname: string | null;
  host: string;
  networks: Network[];
  /** Addresses the caller asked for, by network uuid; the others come from the pool. */
  addresses: Map<string, string>;
  now: Date;
}

/** What an allocateForInstance call reads first; `defaultNetworks` when it names none. */
interface AllocationRead {
  instanceUuid: string;
  projectId: string;
  defaultNetworks: boolean;
}

/** The instance's VIFs (an allocation before), and its project's default networks if it is new and named none. */
interface AllocationStart {
  existing: vifs.VirtualInterface[];
  defaults: Network[] | undefined;
}

/** One deallocateForInstance call: with `onlyProject`, another project's instance is left alone. */
interface DeallocationWrite {
  instanceUuid: string;
  onlyProject?: string;
}

/** The project of the instance found (undefined: it had no networking) and what the host layer must do. */
interface DeallocationWritten {
  found: { projectId: string | null } | undefined;
  changes: HostChange[];
}

interface AllocationWritten {
  vifs: vifs.VirtualInterface[];
  /** The fixed IP of each VIF, in the same order. */
  fixed: fixedIps.FixedIp[];
}

/**
 * Calls served together at most, and batches of one kind at once at most. One at a
 * time makes the batches as large as the load: under 64 API clients the three kinds
 * (first reads, allocation, deallocation) hold three of the pool's four connections,
 * and queries per call fall by half against two at a time (scale bench).
 * Waiting callers queue in the service, not in the database (measured-limits.md).
 */
const ALLOCATION_BATCH = 32;
const ALLOCATION_WRITERS = 1;

/**
 * The shared logic of all three modes. A mode supplies its capabilities, its create
 * rules and mode fields, and how an instance's networks are chosen; nothing else.
 */
export abstract class BaseNetworkManager implements NetworkManager {
  abstract readonly mode: Mode;
  abstract readonly capabilities: Capabilities;
  protected abstract readonly createRules: CreateRules;

  protected readonly db: Database;
  protected readonly config: Config;
  protected readonly host: HostLayer;
  protected readonly now: () => Date;
  protected readonly newUuid: () => string;
  protected readonly newMac: () => string;
  protected readonly log: (message: string) => void;
  /** Floating IPs: a composed service (floating.ts); the methods below delegate to it. */
  private readonly floating: FloatingIps;
  private readonly allocations = new Batcher<AllocationWrite, AllocationWritten>(
    (items) => this.writeAllocations(items),
    { maxBatch: ALLOCATION_BATCH, maxConcurrent: ALLOCATION_WRITERS },
  );
  /**
   * The reads an allocation starts with (the instance's VIFs; for a new instance that
   * names no networks, its project's default ones), shared by the calls that arrive
   * together: two queries answer them all.
   */
  private readonly allocationReads = new Batcher<AllocationRead, AllocationStart>(async (items) => {
    const existing = groupBy(await vifs.listVirtualInterfaces(this.db.knex, { instanceUuids: [...new Set(items.map((item) => item.instanceUuid))] }), (vif) => vif.instanceUuid);
    const isNew = (item: AllocationRead) => item.defaultNetworks && !existing.has(item.instanceUuid);
    const networksOf = new Map<string, Network[]>();
    for (const project of new Set(items.filter(isNew).map((item) => item.projectId))) networksOf.set(project, await this.defaultNetworks(this.db.knex, project));
    return items.map((item) => ({ existing: existing.get(item.instanceUuid) ?? [], defaults: isNew(item) ? [...networksOf.get(item.projectId)!] : undefined }));
  }, { maxBatch: ALLOCATION_BATCH, maxConcurrent: ALLOCATION_WRITERS });
  private readonly deallocations = new Batcher<DeallocationWrite, DeallocationWritten>(
    (items) => this.writeDeallocations(items),
    { maxBatch: ALLOCATION_BATCH, maxConcurrent: ALLOCATION_WRITERS },
  );

  constructor(deps: ManagerDeps) {
    this.db = deps.db;
    this.config = deps.config;
    this.host = deps.host;
    this.now = deps.now ?? (() => new Date());
    this.newUuid = deps.newUuid ?? randomUUID;
    this.newMac = deps.newMac ?? (() => randomMac());
    this.log = deps.log ?? ((message) => process.stderr.write(`${message}\n`));
    this.floating = new FloatingIps({ db: this.db, config: this.config, now: this.now, log: this.log, notify: (changes) => this.notify(changes) });
  }

  /** Mode fields of new networks (bridge, VLAN, VPN); may read the database. */
  protected abstract modeFields(request: CreateNetworksRequest, count: number, q: Queryable): Promise<ModeFields>;

  /** The networks an instance gets when it names none. */
  protected abstract defaultNetworks(q: Queryable, projectId: string): Promise<Network[]>;

  /** Whether `projectId` may put an instance on `network`. */
  protected abstract mayUse(network: Network, projectId: string): boolean;

  // ---- networks -------------------------------------------------------------

  async createNetworks(request: CreateNetworksRequest): Promise<Network[]> {
    const now = this.now();
    const created = await this.transaction(async (trx) => {
      const existing = await networks.listNetworks(trx);
      const count = request.numNetworks ?? this.config.num_networks;
      const fields = await this.modeFields(request, count, trx);
      const planned = planNetworks(request, { config: this.config, existing, rules: this.createRules, newUuid: this.newUuid }, fields);
      for (const plan of planned) if (plan.network.cidr !== null) await this.floating.refuseOverlap(trx, plan.network.cidr);
      const total = planned.reduce((sum, plan) => sum + plan.size, 0);
      let written = 0;
      const result: Network[] = [];
      for (const plan of planned) {
        const id = await networks.insertNetwork(trx, plan.network, now);
        const before = written;
        await fixedIps.insertFixedIps(trx, id, plan.addresses(), now, (inserted) => {
          written = before + inserted;
          request.onProgress?.(written, total);
        });
        result.push({ ...plan.network, id, createdAt: now, updatedAt: now });
      }
      return result;
    }, (error) => {
      // Two creates raced for the same space: the database's unique keys decided.
      if (isDuplicateKey(error)) return new Conflict(`another network took part of this range or VLAN meanwhile; nothing was created (${(error as Error).message.slice(0, 120)})`);
      return undefined;
    });
    await this.notify(created.map((network) => ({ kind: 'network-updated', networkId: network.id })));
    return created;
  }

  listNetworks(filter: { projectId?: string; visibleTo?: string } = {}): Promise<Network[]> {
    return networks.listNetworks(this.db.knex, {
      ...(filter.projectId === undefined ? {} : { projectId: filter.projectId }),
      ...(filter.visibleTo === undefined ? {} : { visibleTo: filter.visibleTo }),
    });
  }

  getNetwork(selector: NetworkSelector): Promise<Network> {
    return networks.getNetwork(this.db.knex, this.normalise(selector));
  }

  async deleteNetwork(selector: NetworkSelector): Promise<Network> {
    const network = await this.transaction(async (trx) => {
      const found = await networks.getNetwork(trx, this.normalise(selector));
      if (found.projectId !== null) {
        throw new NetworkHasProject(`network ${found.cidr ?? found.uuid} is associated with project ${found.projectId}; disassociate it first (network modify --disassociate-project or project scrub)`);
      }
      await this.assertUnused(trx, found);
      await fixedIps.deleteFixedIps(trx, found.id);
      await networks.softDeleteNetwork(trx, found.id, this.now());
      return found;
    });
    await this.notify([{ kind: 'network-deleted', network }]);
    return network;
  }

  async modifyNetwork(selector: NetworkSelector, request: ModifyNetworkRequest): Promise<Network> {
    if (request.project !== undefined && request.disassociateProject) {
      throw new Invalid('--project and --disassociate-project contradict each other');
    }
    if (request.host !== undefined && request.disassociateHost) {
      throw new Invalid('--host and --disassociate-host contradict each other');
    }
    const project = request.project === undefined ? undefined : projectIdField(request.project, 'project');
    const host = request.host === undefined ? undefined : hostnameField(request.host, 'host');
    if (project === undefined && host === undefined && !request.disassociateProject && !request.disassociateHost) {
      throw new Invalid('nothing to modify: give --project, --host, --disassociate-project or --disassociate-host');
    }
    const updated = await this.transaction(async (trx) => {
      const network = await networks.getNetwork(trx, this.normalise(selector));
      const patch: Partial<Network> = {};
      if (project !== undefined && network.projectId !== project) {
        if (network.projectId !== null) {
          throw new NetworkHasProject(`network ${network.cidr} already belongs to project ${network.projectId}; disassociate it first`);
        }
        patch.projectId = project;
      }
      if (request.disassociateProject && network.projectId !== null) {
        await this.assertUnused(trx, network);
        patch.projectId = null;
      }
      if (host !== undefined) patch.host = host;
      if (request.disassociateHost) patch.host = null;
      await networks.updateNetwork(trx, network.id, patch, this.now());
      return { ...network, ...patch };
    });
    await this.notify([{ kind: 'network-updated', networkId: updated.id }]);
    return updated;
  }

  async scrubProject(projectId: string): Promise<Network[]> {
    projectIdField(projectId, 'project');
    const scrubbed = await this.transaction(async (trx) => {
      const owned = await networks.listNetworks(trx, { projectId });
      for (const network of owned) await this.assertUnused(trx, network);
      // As nova's network_disassociate: project and host, so the host tears it down.
      for (const network of owned) await networks.updateNetwork(trx, network.id, { projectId: null, host: null }, this.now());
      return owned;
    });
    await this.notify(scrubbed.map((network) => ({ kind: 'network-updated', networkId: network.id })));
    return scrubbed;
  }

  // ---- instances ------------------------------------------------------------

  async allocateForInstance(request: AllocateRequest): Promise<InstanceNetworkInfo> {
    const instanceUuid = uuidField(request.instanceUuid, 'instance_uuid');
    const projectId = projectIdField(request.projectId);
    const host = hostnameField(request.host, 'host');
    const hostname = request.hostname === undefined ? null : hostnameField(request.hostname);
    const requested = this.checkRequested(request.requestedNetworks);

    const { existing, defaults } = await this.allocationReads.submit({ instanceUuid, projectId, defaultNetworks: requested === undefined });
    if (existing.length > 0) {
      // Allocated before: idempotent, unless the instance now runs on another host.
      if (existing.some((vif) => vif.host !== host)) await this.moveInstance(existing, host);
      return this.getInstanceNwInfo(instanceUuid);
    }

    const chosen = requested === undefined ? defaults! : await this.requestedNetworks(requested, projectId);
    if (chosen.length === 0) {
      throw new NoMoreNetworks(`no network is available to project ${projectId}; create one with novanet-manage network create`);
    }
    const now = this.now();
    let written: AllocationWritten | undefined;
    try {
      written = await this.allocations.submit({
        instanceUuid, projectId, hostname, host, networks: chosen, now,
        addresses: new Map((requested ?? []).flatMap((entry) => (entry.address === undefined ? [] : [[entry.networkUuid, entry.address]]))),
      });
    } catch (error) {
      // A concurrent call for the same instance won the unique (instance, network) key.
      if (!vifs.isDuplicateInstanceVif(error)) throw error;
    }
    // The network host of a single-host network; in a multi_host one, the compute host's
    // own address (its gateway and DHCP server there), before its service is told.
    const hostAddressOf = new Map<number, string>();
    for (const network of chosen) {
      // A lone write, but across Galera nodes it can still lose a certification: retried.
      if (!network.multiHost && network.host === null) await withRetry(() => networks.claimNetworkHost(this.db.knex, network.id, this.config.host, now));
      if (network.multiHost) {
        hostAddressOf.set(network.id, await withRetry(() => this.transaction((trx) => fixedIps.claimHostAddress(trx, network.id, host, now))));
      }
    }
    await this.notify(this.allocationChanges(chosen, written));
    const autoAssigned = await this.floating.afterAllocate(instanceUuid, projectId, written?.fixed[0]);
    // What this call wrote is in hand: no read-back.
    if (written === undefined) return this.getInstanceNwInfo(instanceUuid);
    const floatingOf = new Map(autoAssigned === undefined ? [] : [[written.fixed[0]!.id, [autoAssigned]]]);
    return this.describe(instanceUuid, { vifs: written.vifs, networks: chosen, fixedIps: written.fixed, floatingOf, hostAddressOf });
  }

  /**
   * The writes of allocateForInstance calls that run at the same time, in one
   * transaction: one multi-row VIF insert, then per network one claim of as many free
   * addresses as VIFs (fixedIps.claimFixedIps). Under contention each allocation thus
   * pays a fraction of five round trips and of one commit, which is what keeps a
   * 2-core host above 1,000 allocations a second (bench/allocate.ts).
   */
  private writeAllocations(items: AllocationWrite[]): Promise<AllocationWritten[]> {
    return withRetry((attempt) => this.transaction(async (trx) => {
      const wanted = items.flatMap((item) => item.networks.map((network) => ({ item, network })));
      const created = await vifs.insertVirtualInterfaces(trx, wanted.map(({ item, network }) => ({
        uuid: this.newUuid(), networkId: network.id, instanceUuid: item.instanceUuid, projectId: item.projectId, hostname: item.hostname, host: item.host, createdAt: item.now,
      })), this.newMac);
      const fixed = new Map<number, fixedIps.FixedIp>();
      const pools = new Map<number, fixedIps.FixedIpClaim[]>();
      for (const [index, { item, network }] of wanted.entries()) {
        const claim = { instanceUuid: item.instanceUuid, virtualInterfaceId: created[index]!.id, now: item.now };
        const address = item.addresses.get(network.uuid);
        if (address !== undefined) {
          fixed.set(claim.virtualInterfaceId, await fixedIps.claimFixedIpAddress(trx, network.id, address, claim));
        } else {
          const pool = pools.get(network.id) ?? [];
          pools.set(network.id, pool);
          pool.push(claim);
        }
      }
      for (const [networkId, claims] of pools) {
        // After a conflict (Galera: another node took the same first free rows), a random
        // distance into the free list, up to two batches a retry: racing nodes spread out.
        const skip = attempt === 1 ? 0 : Math.floor(Math.random() * 2 * ALLOCATION_BATCH * (attempt - 1));
        for (const taken of await fixedIps.claimFixedIps(trx, networkId, claims, { skip })) fixed.set(taken.virtualInterfaceId!, taken);
      }
      let next = 0;
      return items.map((item) => {
        const mine = created.slice(next, next += item.networks.length);
        return { vifs: mine, fixed: mine.map((vif) => fixed.get(vif.id)!) };
      });
    }));
  }

  /**
   * What an allocation changes on the network hosts: each new address as one DHCP host,
   * or the whole network where that is not enough (its first instance on a network
   * host, a multi_host network, a write that lost to a concurrent one).
   */
  private allocationChanges(chosen: Network[], written: AllocationWritten | undefined): HostChange[] {
    const whole = new Set(chosen.filter((network) => written === undefined || network.multiHost || network.host === null).map((network) => network.id));
    const changes: HostChange[] = [...whole].map((networkId) => ({ kind: 'network-updated', networkId }));
    for (const [index, vif] of (written?.vifs ?? []).entries()) {
      const fixed = written!.fixed[index]!;
      if (whole.has(vif.networkId)) continue;
      changes.push({ kind: 'dhcp-host', networkId: vif.networkId, action: 'add', computeHost: vif.host, entry: { mac: vif.address, hostname: vif.hostname, address: fixed.address } });
    }
    return changes;
  }

  async deallocateForInstance(instanceUuid: string, options: { onlyProject?: string } = {}): Promise<{ projectId: string | null } | undefined> {
    const uuid = uuidField(instanceUuid, 'instance_uuid');
    const { found, changes } = await this.deallocations.submit({ instanceUuid: uuid, ...options });
    await this.notify(changes);
    return found;
  }

  /**
   * The deallocations of calls that run at the same time, in one transaction (as
   * writeAllocations): the same four statements (besides BEGIN and COMMIT) free one
   * instance or thirty-two.
   */
  private writeDeallocations(items: DeallocationWrite[]): Promise<DeallocationWritten[]> {
    return withRetry(() => this.transaction(async (trx) => {
      const read = await vifs.listVirtualInterfacesWithFixedIps(trx, { instanceUuids: items.map((item) => item.instanceUuid) });
      const byInstance = groupBy(read.vifs, (vif) => vif.instanceUuid);
      // The first permitted call of an instance frees it and gets its changes; a second
      // call for it in the same batch, or another project's, gets none.
      const freedBy = new Map<string, DeallocationWrite>();
      for (const item of items) {
        const found = byInstance.get(item.instanceUuid);
        if (found && !freedBy.has(item.instanceUuid) && (item.onlyProject === undefined || found[0]!.projectId === item.onlyProject)) freedBy.set(item.instanceUuid, item);
      }
      const freed = [...freedBy.keys()].flatMap((instance) => byInstance.get(instance)!);
      const ids = freed.map((vif) => vif.id);
      const freedIds = new Set(ids);
      const held = read.fixed.filter((fixed) => freedIds.has(fixed.virtualInterfaceId!));
      const now = this.now();
      // Fixed IPs first: their row locks order this against a concurrent association,
      // whose floating IP is then seen and detached here, in the same transaction.
      await fixedIps.deallocateFixedIps(trx, ids, { disassociate: !this.capabilities.dhcp, now });
      const detached = await this.floating.detachFromFixedIps(trx, held.map((fixed) => fixed.id), now);
      await vifs.deleteVirtualInterfaces(trx, ids);

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
        if (this.capabilities.dhcp && this.config.force_dhcp_release && fixed.leased) {
          changes.push({ kind: 'release-lease', networkId: fixed.networkId, address: fixed.address, mac: vif.address });
        }
        changes.push({ kind: 'dhcp-host', networkId: fixed.networkId, action: 'remove', computeHost: vif.host, entry: { mac: vif.address, hostname: vif.hostname, address: fixed.address } });
      }
      return items.map((item) => {
        const found = byInstance.get(item.instanceUuid);
        const changes = freedBy.get(item.instanceUuid) === item ? changesOf.get(item.instanceUuid) ?? [] : [];
        return { found: found === undefined ? undefined : { projectId: found[0]!.projectId }, changes };
      });
    }));
  }

  /**
   * An instance re-allocated on another compute host (migration): its VIFs move, and
   * in multi_host networks the new host takes its own address there and binds the
   * instance's floating IPs; both hosts' services rebuild DHCP and rules (the old one
   * through its watcher).
   */
  private async moveInstance(found: vifs.VirtualInterface[], host: string): Promise<void> {
    const now = this.now();
    const floatingMoved = await withRetry(() => this.transaction(async (trx) => {
      await vifs.setHost(trx, found.map((vif) => vif.id), host);
      const multiHost = (await networks.listNetworks(trx, { ids: [...new Set(found.map((vif) => vif.networkId))] })).filter((network) => network.multiHost);
      for (const network of multiHost) await fixedIps.claimHostAddress(trx, network.id, host, now);
      const multiHostIds = new Set(multiHost.map((network) => network.id));
      const held = await fixedIps.listFixedIps(trx, { virtualInterfaceIds: found.filter((vif) => multiHostIds.has(vif.networkId)).map((vif) => vif.id) });
      return this.floating.moveToHost(trx, held.map((fixed) => fixed.id), host, now);
    }));
    await this.notify([
      ...[...new Set(found.map((vif) => vif.networkId))].map((networkId) => ({ kind: 'network-updated' as const, networkId })),
      ...floatingMoved.map((address) => ({ kind: 'floating-updated' as const, address })),
    ]);
  }

  async getInstanceNwInfo(instanceUuid: string): Promise<InstanceNetworkInfo> {
    const uuid = uuidField(instanceUuid, 'instance_uuid');
    const q = this.db.knex;
    const { vifs: found, fixed: held } = await vifs.listVirtualInterfacesWithFixedIps(q, { instanceUuid: uuid });
    if (found.length === 0) return this.describe(uuid, { vifs: [], networks: [], fixedIps: [], floatingOf: new Map(), hostAddressOf: new Map() });
    const used = await networks.listNetworks(q, { ids: [...new Set(found.map((vif) => vif.networkId))] });
    const hostAddresses = await fixedIps.listHostAddresses(q, used.filter((network) => network.multiHost).map((network) => network.id));
    const hostAddressOf = new Map(found.flatMap((vif) => {
      const address = vif.host === null ? undefined : hostAddresses.get(vif.networkId)?.get(vif.host);
      return address === undefined ? [] : [[vif.networkId, address] as const];
    }));
    return this.describe(uuid, { vifs: found, networks: used, fixedIps: held, floatingOf: await this.floating.byFixedIp(held.map((fixed) => fixed.id)), hostAddressOf });
  }

  listInstances(filter: { projectId?: string; instanceUuid?: string } = {}): Promise<InstanceListing[]> {
    return listInstances(this.db.knex, {
      ...(filter.projectId === undefined ? {} : { projectId: projectIdField(filter.projectId) }),
      ...(filter.instanceUuid === undefined ? {} : { instanceUuid: uuidField(filter.instanceUuid, 'instance_uuid') }),
    });
  }

  /** network_info from the instance's VIFs, networks, fixed IPs, floating IPs and (multi_host) its host's addresses. */
  private describe(instanceUuid: string, parts: NetworkInfoParts): InstanceNetworkInfo {
    const info = buildNetworkInfo(parts, this.capabilities);
    const result: InstanceNetworkInfo = { instance_uuid: instanceUuid, project_id: parts.vifs[0]?.projectId ?? null, network_info: info };
    if (parts.networks.some((network) => network.injected)) result.injected_config = injectedInterfaces(info);
    return result;
  }

  // ---- DHCP leases ----------------------------------------------------------

  async leaseFixedIp(address: string, mac?: string): Promise<void> {
    const fixed = await this.leaseTarget(address, mac);
    if (!fixed) return;
    if (!fixed.allocated) this.log(`lease of ${fixed.address} reported, but it is not allocated to an instance`);
    await fixedIps.setLeased(this.db.knex, fixed.id, true, this.now());
    await this.notify([{ kind: 'network-updated', networkId: fixed.networkId }]);
  }

  async releaseFixedIp(address: string, mac?: string): Promise<void> {
    const fixed = await this.leaseTarget(address, mac);
    if (!fixed) return;
    const now = this.now();
    await this.transaction(async (trx) => {
      await fixedIps.setLeased(trx, fixed.id, false, now);
      if (!fixed.allocated) await fixedIps.disassociateFixedIp(trx, fixed.id, now);
    });
    await this.notify([{ kind: 'network-updated', networkId: fixed.networkId }]);
  }

  async listLeases(networkId: number): Promise<Lease[]> {
    const q = this.db.knex;
    const leased = (await fixedIps.listFixedIps(q, { networkIds: [networkId] })).filter((fixed) => fixed.leased && fixed.virtualInterfaceId !== null);
    const byId = new Map((await vifs.listVirtualInterfaces(q, { ids: leased.map((fixed) => fixed.virtualInterfaceId!) })).map((vif) => [vif.id, vif]));
    return leased.flatMap((fixed) => {
      const vif = byId.get(fixed.virtualInterfaceId!);
      if (!vif) return [];
      const renewed = fixed.updatedAt ?? this.now();
      return [{ expiresAt: new Date(renewed.getTime() + this.config.dhcp_lease_time * 1000), mac: vif.address, address: fixed.address, hostname: vif.hostname }];
    });
  }

  async disassociateStaleFixedIps(): Promise<number> {
    if (!this.capabilities.dhcp) return 0;
    const now = this.now();
    const olderThan = new Date(now.getTime() - this.config.fixed_ip_disassociate_timeout * 1000);
    const all = await networks.listNetworks(this.db.knex);
    return fixedIps.disassociateStale(this.db.knex, all.map((network) => network.id), olderThan, now);
  }

  // ---- fixed IPs ------------------------------------------------------------

  async listFixedIps(filter: { host?: string } = {}): Promise<FixedIpListing[]> {
    // A filter is input too: a host no host could be named is refused, not "none found".
    if (filter.host !== undefined) hostnameField(filter.host, 'host');
    const q = this.db.knex;
    const all = await networks.listNetworks(q);
    const byId = new Map(all.map((network) => [network.id, network]));
    const rows = await fixedIps.listFixedIps(q, { networkIds: all.map((network) => network.id) });
    const vifIds = rows.flatMap((row) => (row.virtualInterfaceId === null ? [] : [row.virtualInterfaceId]));
    const vifById = new Map((await vifs.listVirtualInterfaces(q, { ids: vifIds })).map((vif) => [vif.id, vif]));
    const listing = rows.map((row) => this.fixedListing(
      row, byId.get(row.networkId), row.virtualInterfaceId === null ? undefined : vifById.get(row.virtualInterfaceId),
    ));
    return filter.host === undefined ? listing : listing.filter((row) => row.host === filter.host);
  }

  async getFixedIp(address: string): Promise<FixedIpListing> {
    const canonical = canonicalAddress(address, 'address');
    const q = this.db.knex;
    const fixed = await fixedIps.findFixedIp(q, canonical);
    if (!fixed) throw new FixedIpNotFound(`fixed IP ${canonical} not found in any network`);
    const network = await networks.findNetwork(q, { id: fixed.networkId });
    const [vif] = fixed.virtualInterfaceId === null ? [] : await vifs.listVirtualInterfaces(q, { ids: [fixed.virtualInterfaceId] });
    return this.fixedListing(fixed, network, vif);
  }

  async usage(): Promise<{ network: Network; usage: fixedIps.NetworkUsage }[]> {
    const all = await networks.listNetworks(this.db.knex);
    const counts = await fixedIps.usageByNetwork(this.db.knex);
    return all.map((network) => ({ network, usage: counts.get(network.id) ?? { total: 0, reserved: 0, associated: 0, allocated: 0, leased: 0 } }));
  }

  async reserveFixedIp(address: string): Promise<fixedIps.FixedIp> {
    return this.setReserved(address, true);
  }

  async unreserveFixedIp(address: string): Promise<fixedIps.FixedIp> {
    return this.setReserved(address, false);
  }

  // ---- floating IPs (floating.ts) -------------------------------------------

  createFloatingRange(ipRange: string, pool?: string, iface?: string): Promise<FloatingRangeCreated> { return this.floating.createRange(ipRange, pool, iface); }
  deleteFloatingRange(ipRange: string): Promise<number> { return this.floating.deleteRange(ipRange); }
  listFloatingIps(filter?: { host?: string; projectId?: string }): Promise<FloatingIpListing[]> { return this.floating.list(filter); }
  listFloatingPools(): Promise<string[]> { return this.floating.listPools(); }
  getFloatingIp(idOrAddress: string, actor: FloatingActor): Promise<FloatingIpListing> { return this.floating.get(idOrAddress, actor); }
  allocateFloatingIp(projectId: string, pool?: string): Promise<FloatingIpListing> { return this.floating.allocate(projectId, pool); }
  releaseFloatingIp(address: string, actor: FloatingActor, options?: { disassociate?: boolean }): Promise<void> { return this.floating.release(address, actor, options); }
  associateFloatingIp(request: AssociateFloatingIpRequest): Promise<FloatingIpListing> { return this.floating.associate(request); }
  disassociateFloatingIp(address: string, actor: FloatingActor, options?: { instanceUuid?: string }): Promise<FloatingIpListing> { return this.floating.disassociate(address, actor, options); }

  // ---- shared helpers -------------------------------------------------------

  /** A fixed IP with the hostname and host of the instance holding it. */
  private fixedListing(row: fixedIps.FixedIp, network: Network | undefined, vif: vifs.VirtualInterface | undefined): FixedIpListing {
    return {
      network: network?.cidr ?? String(row.networkId),
      address: row.address,
      hostname: vif?.hostname ?? null,
      host: vif?.host ?? row.host ?? (row.instanceUuid ? network?.host ?? null : null),
      instanceUuid: row.instanceUuid,
      reserved: row.reserved,
      allocated: row.allocated,
      leased: row.leased,
    };
  }

  private async setReserved(address: string, reserved: boolean): Promise<fixedIps.FixedIp> {
    const canonical = canonicalAddress(address, 'address');
    const result = await this.transaction(async (trx) => {
      const fixed = await fixedIps.findFixedIp(trx, canonical);
      if (!fixed) throw new FixedIpNotFound(`fixed IP ${canonical} not found in any network`);
      if (reserved && fixed.instanceUuid !== null) {
        throw new Conflict(`fixed IP ${canonical} is in use by instance ${fixed.instanceUuid}; deallocate it first`);
      }
      if (!reserved) {
        const network = await networks.getNetwork(trx, { id: fixed.networkId });
        const structural = this.structuralAddresses(network);
        if (structural.has(canonical)) {
          throw new Conflict(`fixed IP ${canonical} is the ${structural.get(canonical)} of network ${network.cidr}; it stays reserved`);
        }
      }
      await fixedIps.setReserved(trx, fixed.id, reserved, this.now());
      return { ...fixed, reserved };
    });
    await this.notify([{ kind: 'network-updated', networkId: result.networkId }]);
    return result;
  }

  /** Addresses instances must never get, whatever an operator unreserves. */
  private structuralAddresses(network: Network): Map<string, string> {
    const found = new Map<string, string>();
    if (network.cidr) {
      const cidr = parseCidr(network.cidr, 'cidr');
      found.set(addressText(cidr, 0n), 'network address');
      found.set(addressText(cidr, -1n), 'broadcast address');
    }
    const add = (address: string | null, role: string) => {
      if (address && !found.has(address)) found.set(address, role);
    };
    add(network.gateway, 'gateway');
    add(network.dhcpServer, 'DHCP server');
    add(network.vpnPrivateAddress, 'VPN address');
    return found;
  }

  private async assertUnused(q: Queryable, network: Network): Promise<void> {
    const usage = await fixedIps.networkUsage(q, network.id);
    if (usage.associated > 0) {
      throw new NetworkInUse(`network ${network.cidr ?? network.uuid} still has ${usage.associated} fixed IP(s) held by instances (${usage.allocated} allocated); deallocate them first`);
    }
  }

  private async leaseTarget(address: string, mac: string | undefined): Promise<fixedIps.FixedIp | undefined> {
    const canonical = canonicalAddress(address, 'address');
    if (mac !== undefined && !isMac(mac.toLowerCase())) throw new Invalid(`MAC must look like fa:16:3e:00:00:01, got ${JSON.stringify(mac.slice(0, 40))}`);
    const fixed = await fixedIps.findFixedIp(this.db.knex, canonical);
    if (!fixed) throw new FixedIpNotFound(`fixed IP ${canonical} not found`);
    if (mac !== undefined && fixed.virtualInterfaceId !== null) {
      const [vif] = await vifs.listVirtualInterfaces(this.db.knex, { ids: [fixed.virtualInterfaceId] });
      // The address now belongs to another instance's VIF: this report is about the old one.
      if (vif && vif.address !== mac.toLowerCase()) {
        this.log(`lease report for ${canonical} from ${mac} ignored: the address now belongs to ${vif.address}`);
        return undefined;
      }
    }
    return fixed;
  }

  private checkRequested(requested: RequestedNetwork[] | undefined): RequestedNetwork[] | undefined {
    if (requested === undefined) return undefined;
    const seen = new Set<string>();
    return requested.map((entry, index) => {
      const networkUuid = uuidField(entry.networkUuid, `requested_networks[${index}].uuid`);
      if (seen.has(networkUuid)) throw new Invalid(`requested_networks names network ${networkUuid} twice`);
      seen.add(networkUuid);
      const address = entry.address === undefined ? undefined : canonicalAddress(entry.address, `requested_networks[${index}].fixed_ip`, 4);
      return { networkUuid, address };
    });
  }

  private async requestedNetworks(requested: RequestedNetwork[], projectId: string): Promise<Network[]> {
    const found = await networks.listNetworks(this.db.knex, { uuids: requested.map((entry) => entry.networkUuid) });
    return requested.map((entry) => {
      const network = found.find((candidate) => candidate.uuid === entry.networkUuid);
      if (!network || !this.mayUse(network, projectId)) {
        throw new NotFound(`network ${entry.networkUuid} not found for project ${projectId}`);
      }
      return network;
    });
  }

  private normalise(selector: NetworkSelector): NetworkSelector {
    if ('uuid' in selector) return { uuid: uuidField(selector.uuid, 'uuid') };
    if ('cidr' in selector) return { cidr: selector.cidr.trim() };
    return selector;
  }

  /** Runs `work` in one transaction; `mapError` may turn a driver error into a domain one. */
  protected async transaction<T>(work: (trx: Queryable) => Promise<T>, mapError?: (error: unknown) => Error | undefined): Promise<T> {
    try {
      return await this.db.knex.transaction(work);
    } catch (error) {
      throw mapError?.(error) ?? error;
    }
  }

  protected async notify(changes: HostChange[]): Promise<void> {
    if (changes.length > 0) await this.host.apply(changes);
  }
}
