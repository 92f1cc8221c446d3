import { hostAddresses } from '../config/hostAddresses.js';
import { isDuplicateKey } from '../db/errors.js';
import * as fixedIps from '../db/fixedIps.js';
import * as floating from '../db/floatingIps.js';
import * as networks from '../db/networks.js';
import { findQuota } from '../db/quotas.js';
import { withRetry } from '../db/retry.js';
import type { Queryable } from '../db/rows.js';
import * as vifs from '../db/virtualInterfaces.js';
import {
  CidrConflict,
  Conflict,
  FloatingIpAssociated,
  FloatingIpNotAssociated,
  FloatingIpNotFound,
  FloatingIpPoolNotFound,
  Forbidden,
  Invalid,
  NoMoreFloatingIps,
  NotFound,
  QuotaExceeded,
} from '../errors.js';
import { hostnameField, interfaceName, labelField, projectIdField, quote, uuidField } from '../fields.js';
import { canonicalAddress } from '../ipam/address.js';
import { overlaps, parseCidr } from '../ipam/cidr.js';
import { refuseReserved } from '../ipam/special.js';
import type { ManagerContext } from './context.js';
import { mapIterable, parseRange } from './floatingRange.js';
import type { AssociateFloatingIpRequest, FloatingActor } from './requests.js';
import type { FloatingIpListing, FloatingRangeCreated } from './views.js';

const QUOTA_RESOURCE = 'floating_ips';

/** A floating IP as a caller names it: Nova's URLs carry the id, OSC passes the address too. */
type FloatingRef = { id: number } | { address: string };

/**
 * Floating IPs: pools, allocation to projects, association with fixed IPs, the same
 * in every mode. The host layer learns of every change of binding through a
 * `floating-updated` change.
 *
 * Another project's address is reported as not found, never as forbidden, so which
 * addresses other projects hold does not leak (as for instances: docs/decisions/api.md).
 */
export class FloatingIps {
  constructor(private readonly context: ManagerContext) {}

  // ---- pools (operators) ----------------------------------------------------

  async createRange(
    ipRange: string,
    pool: string = this.context.config.default_floating_pool,
    iface?: string,
  ): Promise<FloatingRangeCreated> {
    const range = parseRange(ipRange);
    refuseReserved(range.cidr, 'ip_range', hostAddresses(this.context.config));
    const poolName = labelField(pool, 'pool');
    const ifaceName = iface === undefined ? null : interfaceName(iface, 'interface');
    const now = this.context.now();
    const count = await this.context.transaction(
      async (trx) => {
        for (const network of await networks.listNetworks(trx)) {
          if (network.cidr !== null && overlaps(parseCidr(network.cidr, 'cidr'), range.cidr)) {
            throw new CidrConflict(`ip_range ${range.text} overlaps fixed network ${network.cidr} (${network.label})`);
          }
        }
        const [taken] = await floating.listFloatingIps(trx, { addresses: [...range.addresses()] });
        if (taken) throw new CidrConflict(`ip_range ${range.text} overlaps existing floating IP ${taken.address} (pool ${taken.pool})`);
        return floating.insertFloatingIps(
          trx,
          mapIterable(range.addresses(), (address) => ({ address, pool: poolName, interface: ifaceName })),
          now,
        );
      },
      (error) =>
        isDuplicateKey(error)
          ? new CidrConflict(`another floating range took part of ${range.text} meanwhile; nothing was created`)
          : undefined,
    );
    return { count, pool: poolName, interface: ifaceName };
  }

  async deleteRange(ipRange: string): Promise<number> {
    const range = parseRange(ipRange);
    return this.context.transaction(async (trx) => {
      const rows = await floating.listFloatingIps(trx, { addresses: [...range.addresses()] });
      if (rows.length === 0) throw new FloatingIpNotFound(`no floating IP in ${range.text}`);
      const held = rows.find((row) => row.projectId !== null);
      if (held) {
        throw new Conflict(
          `floating IP ${held.address} is allocated to project ${held.projectId}; release it first (${rows.filter((row) => row.projectId !== null).length} of ${rows.length} in ${range.text} are allocated)`,
        );
      }
      return floating.deleteFloatingIps(
        trx,
        rows.map((row) => row.id),
      );
    });
  }

  async list(filter: { host?: string; projectId?: string } = {}): Promise<FloatingIpListing[]> {
    // Filters are input too: a name no host or project could have is refused, not "none found".
    if (filter.host !== undefined) hostnameField(filter.host, 'host');
    if (filter.projectId !== undefined) projectIdField(filter.projectId, 'project_id');
    const rows = await floating.listFloatingIps(this.context.db.knex, {
      ...(filter.host === undefined ? {} : { host: filter.host }),
      ...(filter.projectId === undefined ? {} : { projectId: filter.projectId }),
    });
    return rows.map(listing);
  }

  listPools(): Promise<string[]> {
    return floating.listPools(this.context.db.knex);
  }

  /** By id (digits) or address; anything else, or an address the actor may not see, is not found. */
  async get(idOrAddress: string, actor: FloatingActor): Promise<FloatingIpListing> {
    const ref = parseRef(idOrAddress);
    if (ref === undefined) throw new FloatingIpNotFound(`floating IP ${quote(idOrAddress)} not found: give its id or its IPv4 address`);
    return listing(await this.owned(this.context.db.knex, ref, actor));
  }

  // ---- projects -------------------------------------------------------------

  async allocate(projectId: string, pool: string = this.context.config.default_floating_pool): Promise<FloatingIpListing> {
    const project = projectIdField(projectId);
    const poolName = labelField(pool, 'pool');
    const now = this.context.now();
    return withRetry(() =>
      this.context.transaction(async (trx) => {
        if (!(await floating.poolExists(trx, poolName))) throw new FloatingIpPoolNotFound(`floating IP pool ${poolName} not found`);
        const limit = (await findQuota(trx, project, QUOTA_RESOURCE)) ?? this.context.config.quota_floating_ips;
        const overQuota = (used: number) =>
          new QuotaExceeded(
            `Quota exceeded for floating_ips: Requested 1, but already used ${used} of ${limit} floating_ips (project ${project})`,
          );
        if (limit >= 0) {
          const used = await floating.countForProject(trx, project);
          if (used + 1 > limit) throw overQuota(used);
        }
        const claimed = await floating.claimFloatingIp(trx, poolName, project, false, now);
        // Counted again, locking, now that our claim is in: two allocations racing at the
        // limit see each other (one waits, or is chosen as a deadlock victim and retried).
        if (limit >= 0) {
          const used = await floating.countForProject(trx, project, { locking: true });
          if (used > limit) throw overQuota(used - 1);
        }
        return listing(claimed);
      }),
    );
  }

  /**
   * Gives the address back to its pool. An associated address is refused unless
   * `disassociate` says to disassociate it first, in the same transaction (Nova's
   * DELETE /os-floating-ips/{id} does both).
   */
  async release(address: string, actor: FloatingActor, options: { disassociate?: boolean } = {}): Promise<void> {
    const canonical = canonicalAddress(address, 'address', 4);
    const now = this.context.now();
    const disassociated = await this.context.transaction(async (trx) => {
      const found = await this.owned(trx, { address: canonical }, actor);
      if (found.projectId === null) throw new FloatingIpNotFound(`floating IP ${canonical} is not allocated to any project`);
      const associated = found.fixedIpId !== null;
      if (associated && !options.disassociate) {
        throw new FloatingIpAssociated(`floating IP ${canonical} is associated with fixed IP ${found.fixedAddress}; disassociate it first`);
      }
      if (found.autoAssigned) throw new Forbidden(`floating IP ${canonical} was auto-assigned; it is released with its instance`);
      if (associated) await floating.disassociate(trx, found.id, now);
      await floating.release(trx, found.id, now);
      return associated;
    });
    if (disassociated) await this.context.notify([{ kind: 'floating-updated', address: canonical }]);
  }

  async associate(request: AssociateFloatingIpRequest): Promise<FloatingIpListing> {
    const canonical = canonicalAddress(request.address, 'address', 4);
    const instanceUuid = uuidField(request.instanceUuid, 'instance_uuid');
    const wanted = request.fixedAddress === undefined ? undefined : canonicalAddress(request.fixedAddress, 'fixed_address', 4);
    const now = this.context.now();
    const result = await withRetry(() =>
      this.context.transaction(async (trx) => {
        const found = await this.owned(trx, { address: canonical }, request.actor);
        if (found.projectId === null)
          throw new FloatingIpNotFound(`floating IP ${canonical} is not allocated to any project; allocate it first`);
        const { vifs: instanceVifs, fixed: held } = await vifs.listVirtualInterfacesWithFixedIps(trx, { instanceUuid });
        const instanceProject = instanceVifs[0]?.projectId ?? null;
        if (instanceVifs.length === 0 || (request.actor !== 'admin' && instanceProject !== request.actor.projectId)) {
          throw new NotFound(`instance ${instanceUuid} not found or has no network`);
        }
        if (instanceProject !== found.projectId) {
          throw new Conflict(
            `floating IP ${canonical} belongs to project ${found.projectId}, instance ${instanceUuid} to project ${instanceProject}`,
          );
        }
        const fixed = fixedOf(instanceUuid, held, wanted);
        // The instance may be deallocated meanwhile (its VIFs were read without a lock): an
        // association with a freed address would outlive it.
        if (!(await fixedIps.lockAllocated(trx, fixed.id, instanceUuid)))
          throw new NotFound(`instance ${instanceUuid} not found or has no network`);
        if (found.fixedIpId === fixed.id) return { row: found, changed: false };
        if (found.fixedIpId !== null && !request.allowMove) {
          throw new FloatingIpAssociated(
            `floating IP ${canonical} is already associated with fixed IP ${found.fixedAddress} of instance ${found.instanceUuid}; disassociate it first or allow the move`,
          );
        }
        const host = await this.bindingHost(trx, fixed, instanceVifs, now);
        await floating.associate(trx, found.id, fixed.id, host, now);
        return { row: { ...found, fixedIpId: fixed.id, fixedAddress: fixed.address, instanceUuid, host }, changed: true };
      }),
    );
    if (result.changed) await this.context.notify([{ kind: 'floating-updated', address: canonical }]);
    return listing(result.row);
  }

  /**
   * Unbinds the address from its fixed IP. With `instanceUuid`, only from that
   * instance: otherwise (associated elsewhere or not at all) a Conflict, checked in the
   * same transaction, so a concurrent move is never undone by mistake.
   */
  async disassociate(address: string, actor: FloatingActor, options: { instanceUuid?: string } = {}): Promise<FloatingIpListing> {
    const canonical = canonicalAddress(address, 'address', 4);
    const expected = options.instanceUuid === undefined ? undefined : uuidField(options.instanceUuid, 'instance_uuid');
    const row = await this.context.transaction(async (trx) => {
      const found = await this.owned(trx, { address: canonical }, actor);
      if (expected !== undefined && found.instanceUuid !== expected) {
        throw new Conflict(`Floating IP ${canonical} is not associated with instance ${expected}.`);
      }
      if (found.fixedIpId === null) throw new FloatingIpNotAssociated(`floating IP ${canonical} is not associated`);
      if (found.autoAssigned) throw new Forbidden(`floating IP ${canonical} was auto-assigned; it is disassociated with its instance`);
      await floating.disassociate(trx, found.id, this.context.now());
      return { ...found, fixedIpId: null, fixedAddress: null, instanceUuid: null, host: null };
    });
    await this.context.notify([{ kind: 'floating-updated', address: canonical }]);
    return listing(row);
  }

  // ---- instance hooks (auto_assign_floating_ip) -----------------------------

  /**
   * After allocation.allocate: with auto_assign_floating_ip, one address of
   * default_floating_pool (auto-assigned, outside the quota) on the instance's first
   * fixed IP. An empty or missing pool is logged, not fatal: the instance still has
   * its fixed networking, as before the option was set.
   */
  async afterAllocate(instanceUuid: string, projectId: string, first: fixedIps.FixedIp | undefined): Promise<string | undefined> {
    if (!this.context.config.auto_assign_floating_ip || first === undefined) return undefined;
    const pool = this.context.config.default_floating_pool;
    const now = this.context.now();
    let address: string | undefined;
    try {
      address = await withRetry(() =>
        this.context.transaction(async (trx) => {
          // Locked before the claim (the order deallocation takes them in); deallocated meanwhile: nothing to assign.
          if (!(await fixedIps.lockAllocated(trx, first.id, instanceUuid))) return undefined;
          const existing = await floating.listFloatingIps(trx, { fixedIpIds: [first.id] });
          if (existing.some((row) => row.autoAssigned)) return undefined;
          const claimed = await floating.claimFloatingIp(trx, pool, projectId, true, now);
          const instanceVifs = await vifs.listVirtualInterfaces(trx, { instanceUuid });
          await floating.associate(trx, claimed.id, first.id, await this.bindingHost(trx, first, instanceVifs, now), now);
          return claimed.address;
        }),
      );
    } catch (error) {
      if (!(error instanceof NoMoreFloatingIps)) throw error;
      this.context.log(`auto_assign_floating_ip: no floating IP left in pool ${pool} for instance ${instanceUuid}`);
    }
    if (address !== undefined) await this.context.notify([{ kind: 'floating-updated', address }]);
    return address;
  }

  /** Their instance moved to `host`: the floating IPs of these (multi_host) fixed IPs are bound there now. */
  moveToHost(q: Queryable, fixedIpIds: number[], host: string, now: Date): Promise<string[]> {
    return floating.moveToHost(q, fixedIpIds, host, now);
  }

  /** The floating addresses of each of these fixed IPs (network_info's floating_ips). */
  async byFixedIp(fixedIpIds: number[]): Promise<Map<number, string[]>> {
    const byFixed = new Map<number, string[]>();
    if (fixedIpIds.length === 0) return byFixed;
    for (const row of await floating.listFloatingIps(this.context.db.knex, { fixedIpIds })) {
      byFixed.set(row.fixedIpId!, [...(byFixed.get(row.fixedIpId!) ?? []), row.address]);
    }
    return byFixed;
  }

  /**
   * Part of allocation.deallocate's transaction, after the fixed IPs were deallocated
   * (their rows locked): every floating IP of theirs disassociated, the auto-assigned
   * ones released. In the same transaction, so no association made meanwhile survives
   * on a freed address; returns the addresses, each with its fixed IP, for the host layer.
   */
  async detachFromFixedIps(q: Queryable, fixedIpIds: number[], now: Date): Promise<{ address: string; fixedIpId: number }[]> {
    if (fixedIpIds.length === 0) return [];
    const rows = await floating.listFloatingIps(q, { fixedIpIds });
    for (const row of rows) {
      await floating.disassociate(q, row.id, now);
      if (row.autoAssigned) await floating.release(q, row.id, now);
    }
    return rows.map((row) => ({ address: row.address, fixedIpId: row.fixedIpId! }));
  }

  // ---- helpers --------------------------------------------------------------

  /**
   * The address, if the actor may see it: an admin sees all, a project its own. The
   * message names what the caller gave, never what another project holds.
   */
  private async owned(q: Queryable, ref: FloatingRef, actor: FloatingActor): Promise<floating.FloatingIp> {
    const found = 'id' in ref ? await floating.findFloatingById(q, ref.id) : await floating.findFloatingIp(q, ref.address);
    const named = 'id' in ref ? `floating IP with id ${ref.id}` : `floating IP ${ref.address}`;
    if (actor === 'admin') {
      if (!found) throw new FloatingIpNotFound(`${named} not found`);
      return found;
    }
    const project = projectIdField(actor.projectId);
    if (!found || found.projectId !== project) throw new FloatingIpNotFound(`${named} not found for project ${project}`);
    return found;
  }

  /** Who binds the address: the network host, or the instance's host in a multi_host network. */
  private async bindingHost(
    q: Queryable,
    fixed: fixedIps.FixedIp,
    instanceVifs: vifs.VirtualInterface[],
    now: Date,
  ): Promise<string | null> {
    const network = await networks.getNetwork(q, { id: fixed.networkId });
    if (network.multiHost) return instanceVifs.find((vif) => vif.id === fixed.virtualInterfaceId)?.host ?? null;
    return network.host ?? networks.claimNetworkHost(q, network.id, this.context.config.host, now);
  }
}

function listing(row: floating.FloatingIp): FloatingIpListing {
  return {
    id: row.id,
    address: row.address,
    projectId: row.projectId,
    pool: row.pool,
    interface: row.interface,
    instanceUuid: row.instanceUuid,
    fixedAddress: row.fixedAddress,
    host: row.host,
    autoAssigned: row.autoAssigned,
  };
}

/**
 * A floating IP's id (digits) or IPv4 address, as a URL carries it; undefined when it
 * is neither (a name, a typo), which callers treat as not found.
 */
function parseRef(text: string): FloatingRef | undefined {
  if (/^\d{1,15}$/.test(text)) return { id: Number(text) };
  try {
    return { address: canonicalAddress(text, 'address', 4) };
  } catch (error) {
    if (error instanceof Invalid) return undefined;
    throw error;
  }
}

/** The instance's fixed IP to associate with: the one asked for, or the first VIF's (`held` is in VIF order). */
function fixedOf(instanceUuid: string, held: fixedIps.FixedIp[], wanted: string | undefined): fixedIps.FixedIp {
  if (held.length === 0) throw new Invalid(`instance ${instanceUuid} has no fixed IP to associate a floating IP with`);
  if (wanted === undefined) return held[0]!;
  const match = held.find((fixed) => fixed.address === wanted);
  if (!match) throw new Invalid(`fixed IP ${wanted} does not belong to instance ${instanceUuid}`);
  return match;
}
