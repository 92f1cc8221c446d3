import * as fixedIps from '../db/fixedIps.js';
import type { Network } from '../db/networks.js';
import * as networks from '../db/networks.js';
import { withRetry } from '../db/retry.js';
import * as vifs from '../db/virtualInterfaces.js';
import { Invalid, NoMoreNetworks, NotFound } from '../errors.js';
import { hostnameField, projectIdField, uuidField } from '../fields.js';
import { dhcpEntry, type HostChange } from '../host/layer.js';
import { canonicalAddress } from '../ipam/address.js';
import type { Ipv6Backend } from '../ipam/ipv6.js';
import { AllocationBatches, type AllocationWritten } from './allocationBatches.js';
import type { ManagerContext } from './context.js';
import type { FloatingIps } from './floating.js';
import type { Hosts } from './hosts.js';
import { listInstances } from './instances.js';
import { buildNetworkInfo, injectedInterfaces, type NetworkInfoParts } from './networkInfo.js';
import type { AllocateRequest, RequestedNetwork } from './requests.js';
import { allocationGroupNames, allocationGroups, type SecurityGroups } from './securityGroups.js';
import type { InstanceListing, InstanceNetworkInfo } from './views.js';

/**
 * Instances' networking, as compute hosts ask for it: allocation (a VIF and a fixed IP
 * per network), deallocation, the move of an instance to another host, and nova's
 * network_info. Calls that arrive together share their database work (allocationBatches.ts).
 */
export class Allocation {
  private readonly batches: AllocationBatches;

  constructor(
    private readonly context: ManagerContext,
    private readonly floating: FloatingIps,
    private readonly hosts: Hosts,
    private readonly securityGroups: SecurityGroups,
  ) {
    this.batches = new AllocationBatches(context, floating);
  }

  /** Idempotent per instance: a second call returns the first one's network_info (after a move, if the host changed). */
  async allocate(request: AllocateRequest): Promise<InstanceNetworkInfo> {
    const { context } = this;
    const instanceUuid = uuidField(request.instanceUuid, 'instance_uuid');
    const projectId = projectIdField(request.projectId);
    const host = hostnameField(request.host, 'host');
    const hostname = request.hostname === undefined ? null : hostnameField(request.hostname);
    const requested = checkRequested(request.requestedNetworks);
    const q = context.db.knex;

    const groupNames = allocationGroupNames(request.securityGroups);
    const {
      existing,
      defaults,
      groups: found,
    } = await this.batches.read({
      instanceUuid,
      projectId,
      defaultNetworks: requested === undefined,
      securityGroups: groupNames,
    });
    if (existing.length > 0) {
      if (existing.some((vif) => vif.host !== host)) await this.move(existing, host);
      return this.networkInfo(instanceUuid);
    }

    const chosen = requested === undefined ? defaults! : await this.requestedNetworks(requested, projectId);
    if (chosen.length === 0) {
      throw new NoMoreNetworks(`no network is available to project ${projectId}; create one with novanet-manage network create`);
    }
    // Single-host networks at their first use get their network host before anything is
    // written: when none can take one, the call changes nothing.
    const networkHostOf = new Map<number, string>();
    for (const network of chosen) {
      if (!network.multiHost && network.host === null)
        networkHostOf.set(network.id, await this.hosts.networkHostForFirstUse(network.label));
    }
    // Checked before anything is written; the members are written with the ports.
    const groups = allocationGroups(groupNames, found);
    const now = context.now();
    let written: AllocationWritten | undefined;
    try {
      written = await this.batches.write({
        instanceUuid,
        projectId,
        hostname,
        host,
        networks: chosen,
        now,
        addresses: new Map((requested ?? []).flatMap((entry) => (entry.address === undefined ? [] : [[entry.networkUuid, entry.address]]))),
        securityGroups: groups,
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
      const networkHost = networkHostOf.get(network.id);
      if (networkHost !== undefined) await withRetry(() => networks.claimNetworkHost(context.db.knex, network.id, networkHost, now));
      if (network.multiHost) {
        hostAddressOf.set(
          network.id,
          await withRetry(() => context.transaction((trx) => fixedIps.claimHostAddress(trx, network, host, now))),
        );
      }
    }
    await context.notify(allocationChanges(chosen, written, context.config.ipv6_backend));
    const autoAssigned = await this.floating.afterAllocate(instanceUuid, projectId, written?.fixed[0]);
    // What this call wrote is in hand: no read-back.
    if (written === undefined) return this.networkInfo(instanceUuid);
    const floatingOf = new Map(autoAssigned === undefined ? [] : [[written.fixed[0]!.id, [autoAssigned]]]);
    return this.describe(
      instanceUuid,
      { vifs: written.vifs, networks: chosen, fixedIps: written.fixed, floatingOf, hostAddressOf },
      groups.names,
    );
  }

  /**
   * Frees the instance's networking and returns its project (undefined: it had none).
   * With `onlyProject`, another project's instance is left as it is (its project is
   * still returned, for the caller's refusal).
   */
  async deallocate(instanceUuid: string, options: { onlyProject?: string } = {}): Promise<{ projectId: string | null } | undefined> {
    const uuid = uuidField(instanceUuid, 'instance_uuid');
    const { found, changes } = await this.batches.free({ instanceUuid: uuid, ...options });
    await this.context.notify(changes);
    return found;
  }

  /** nova's network_info of the instance (empty when it has no VIF). */
  async networkInfo(instanceUuid: string): Promise<InstanceNetworkInfo> {
    const uuid = uuidField(instanceUuid, 'instance_uuid');
    const q = this.context.db.knex;
    const { vifs: found, fixed: held } = await vifs.listVirtualInterfacesWithFixedIps(q, { instanceUuid: uuid });
    if (found.length === 0)
      return this.describe(uuid, { vifs: [], networks: [], fixedIps: [], floatingOf: new Map(), hostAddressOf: new Map() }, []);
    const used = await networks.listNetworks(q, { ids: [...new Set(found.map((vif) => vif.networkId))] });
    const hostAddresses = await fixedIps.listHostAddresses(
      q,
      used.filter((network) => network.multiHost).map((network) => network.id),
    );
    const hostAddressOf = new Map(
      found.flatMap((vif) => {
        const address = vif.host === null ? undefined : hostAddresses.get(vif.networkId)?.get(vif.host);
        return address === undefined ? [] : [[vif.networkId, address] as const];
      }),
    );
    return this.describe(
      uuid,
      {
        vifs: found,
        networks: used,
        fixedIps: held,
        floatingOf: await this.floating.byFixedIp(held.map((fixed) => fixed.id)),
        hostAddressOf,
      },
      (await this.securityGroups.ofInstance(uuid)).map((view) => view.group.name),
    );
  }

  /** Instances that have networking, oldest first; `projectId` or `instanceUuid` narrow it. */
  listInstances(filter: { projectId?: string; instanceUuid?: string } = {}): Promise<InstanceListing[]> {
    return listInstances(this.context.db.knex, this.context.config.ipv6_backend, {
      ...(filter.projectId === undefined ? {} : { projectId: projectIdField(filter.projectId) }),
      ...(filter.instanceUuid === undefined ? {} : { instanceUuid: uuidField(filter.instanceUuid, 'instance_uuid') }),
    });
  }

  /**
   * An instance re-allocated on another compute host (migration): its VIFs move, and
   * in multi_host networks the new host takes its own address there and binds the
   * instance's floating IPs; both hosts' services rebuild DHCP and rules (the old one
   * through its watcher).
   */
  private async move(found: vifs.VirtualInterface[], host: string): Promise<void> {
    const { context } = this;
    const now = context.now();
    const floatingMoved = await withRetry(() =>
      context.transaction(async (trx) => {
        await vifs.setHost(
          trx,
          found.map((vif) => vif.id),
          host,
        );
        const multiHost = (await networks.listNetworks(trx, { ids: [...new Set(found.map((vif) => vif.networkId))] })).filter(
          (network) => network.multiHost,
        );
        for (const network of multiHost) await fixedIps.claimHostAddress(trx, network, host, now);
        const multiHostIds = new Set(multiHost.map((network) => network.id));
        const held = await fixedIps.listFixedIps(trx, {
          virtualInterfaceIds: found.filter((vif) => multiHostIds.has(vif.networkId)).map((vif) => vif.id),
        });
        return this.floating.moveToHost(
          trx,
          held.map((fixed) => fixed.id),
          host,
          now,
        );
      }),
    );
    await context.notify([
      ...[...new Set(found.map((vif) => vif.networkId))].map((networkId) => ({ kind: 'network-updated' as const, networkId })),
      ...floatingMoved.map((address) => ({ kind: 'floating-updated' as const, address })),
    ]);
  }

  /** network_info from the instance's VIFs, networks, fixed IPs, floating IPs and (multi_host) its host's addresses. */
  private describe(instanceUuid: string, parts: NetworkInfoParts, groupNames: string[]): InstanceNetworkInfo {
    const info = buildNetworkInfo(parts, this.context.policy.capabilities, this.context.config.ipv6_backend);
    const result: InstanceNetworkInfo = {
      instance_uuid: instanceUuid,
      project_id: parts.vifs[0]?.projectId ?? null,
      network_info: info,
      security_groups: groupNames.map((name) => ({ name })),
    };
    if (parts.networks.some((network) => network.injected)) result.injected_config = injectedInterfaces(info);
    return result;
  }

  private async requestedNetworks(requested: RequestedNetwork[], projectId: string): Promise<Network[]> {
    const found = await networks.listNetworks(this.context.db.knex, { uuids: requested.map((entry) => entry.networkUuid) });
    return requested.map((entry) => {
      const network = found.find((candidate) => candidate.uuid === entry.networkUuid);
      if (!network || !this.context.policy.mayUse(network, projectId)) {
        throw new NotFound(`network ${entry.networkUuid} not found for project ${projectId}`);
      }
      return network;
    });
  }
}

/** requested_networks checked: UUIDs, each network once, canonical IPv4 addresses. */
function checkRequested(requested: RequestedNetwork[] | undefined): RequestedNetwork[] | undefined {
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

/**
 * What an allocation changes on the network hosts: each new address as one DHCP host,
 * or the whole network where that is not enough (its first instance on a network
 * host, a multi_host network, a write that lost to a concurrent one).
 */
function allocationChanges(chosen: Network[], written: AllocationWritten | undefined, ipv6Backend: Ipv6Backend): HostChange[] {
  const whole = new Set(
    chosen.filter((network) => written === undefined || network.multiHost || network.host === null).map((network) => network.id),
  );
  const changes: HostChange[] = [...whole].map((networkId) => ({ kind: 'network-updated', networkId }));
  for (const [index, vif] of (written?.vifs ?? []).entries()) {
    const fixed = written!.fixed[index]!;
    if (whole.has(vif.networkId)) continue;
    changes.push({
      kind: 'dhcp-host',
      networkId: vif.networkId,
      action: 'add',
      computeHost: vif.host,
      entry: dhcpEntry(vif, fixed.address, chosen.find((network) => network.id === vif.networkId)!, ipv6Backend),
    });
  }
  return changes;
}
