import type { Knex } from 'knex';
import { Conflict, FixedIpAlreadyInUse, FixedIpNotFound, NoMoreFixedIps } from '../errors.js';
import { dialectOf, insertBatched, lockFreeRows, type Queryable, toBool, toDate } from './rows.js';

export interface FixedIp {
  id: number;
  address: string;
  networkId: number;
  virtualInterfaceId: number | null;
  instanceUuid: string | null;
  allocated: boolean;
  leased: boolean;
  reserved: boolean;
  host: string | null;
  updatedAt: Date | null;
}

type Row = Record<string, unknown>;

/** The network a claim is in: its id for the query, its label and CIDR for messages (users never see ids). */
export interface ClaimNetwork {
  id: number;
  label: string;
  cidr: string | null;
  uuid: string;
}

const named = (network: ClaimNetwork) => `${network.label} (${network.cidr ?? network.uuid})`;

/** The columns fromRow reads, for a query that selects them under other names (a join). */
export const FIXED_IP_COLUMNS = [
  'id',
  'address',
  'network_id',
  'virtual_interface_id',
  'instance_uuid',
  'allocated',
  'leased',
  'reserved',
  'host',
  'updated_at',
] as const;

export function fromRow(row: Row): FixedIp {
  return {
    id: Number(row.id),
    address: String(row.address),
    networkId: Number(row.network_id),
    virtualInterfaceId: row.virtual_interface_id === null ? null : Number(row.virtual_interface_id),
    instanceUuid: (row.instance_uuid as string | null) ?? null,
    allocated: toBool(row.allocated),
    leased: toBool(row.leased),
    reserved: toBool(row.reserved),
    host: (row.host as string | null) ?? null,
    updatedAt: toDate(row.updated_at),
  };
}

export interface NewFixedIp {
  address: string;
  reserved: boolean;
}

/**
 * Inserts a network's addresses as multi-row INSERTs (rows.insertBatched). Call
 * inside a transaction: one commit for the whole network.
 */
export async function insertFixedIps(
  q: Queryable,
  networkId: number,
  addresses: Iterable<NewFixedIp>,
  now: Date,
  onProgress?: (inserted: number) => void,
): Promise<number> {
  function* rows() {
    for (const { address, reserved } of addresses) yield [address, networkId, reserved ? 1 : 0, now];
  }
  return insertBatched(q, 'fixed_ips', ['address', 'network_id', 'reserved', 'created_at'], rows(), onProgress);
}

const FREE = 'network_id = ? AND instance_uuid IS NULL AND reserved = 0 AND leased = 0 AND host IS NULL';

/** One address wanted for a VIF: who gets it, and when (the row's updated_at). */
export interface FixedIpClaim {
  instanceUuid: string;
  virtualInterfaceId: number;
  now: Date;
}

/**
 * Takes one free fixed IP of the network for each claim, in reuse order: never-used
 * addresses first, then the least recently freed (nova's order: it keeps a just-freed
 * address away from a VM that may still hold its lease). One SELECT finds the rows and
 * one UPDATE takes them, however many claims there are. Throws NoMoreFixedIps when
 * fewer addresses are free than claims.
 *
 * MySQL/MariaDB: the SELECT is FOR UPDATE SKIP LOCKED (MariaDB 10.6+, MySQL 8.0+), so
 * concurrent claimers each lock different rows instead of queueing on the same first
 * one, and the rows stay theirs until they commit. (A single `UPDATE ... ORDER BY ...
 * LIMIT 1` would save the SELECT, but MariaDB plans it as a filesort of every free row,
 * which EXPLAIN shows.) Across Galera nodes, where row locks do not reach,
 * the loser of a conflict gets a deadlock error at commit and is retried (retry.ts).
 * SQLite has one writer at a time: the transaction alone keeps claims apart.
 */
export async function claimFixedIps(
  q: Queryable,
  network: ClaimNetwork,
  claims: FixedIpClaim[],
  options: { skip?: number } = {},
): Promise<FixedIp[]> {
  if (claims.length === 0) return [];
  const networkId = network.id;
  const free = () => q('fixed_ips').select('id', 'address').whereRaw(FREE, [networkId]).orderBy('updated_at').orderBy('id');
  const rows = await lockFreeRows<{ id: number; address: string }>(
    q,
    free,
    claims.length,
    () => new NoMoreFixedIps(`no more fixed IPs in network ${named(network)}`),
    options,
  );
  const ids = rows.map((row) => Number(row.id));
  const byId = (value: (claim: FixedIpClaim) => Knex.RawBinding) =>
    q.raw(
      `CASE id ${ids.map(() => 'WHEN ? THEN ?').join(' ')} END`,
      ids.flatMap((id, index) => [id, value(claims[index]!)]),
    );
  // Still conditional, and counted: the rows are locked, so this cannot miss, but if it
  // ever did, an error beats two instances on one address.
  const taken = await q('fixed_ips')
    .whereIn('id', ids)
    .whereNull('instance_uuid')
    .update({
      instance_uuid: byId((claim) => claim.instanceUuid),
      virtual_interface_id: byId((claim) => claim.virtualInterfaceId),
      updated_at: byId((claim) => claim.now),
      allocated: 1,
    });
  if (taken !== ids.length)
    throw new Conflict(`fixed IPs of network ${named(network)} were taken while being claimed (${taken} of ${ids.length}); try again`);
  return rows.map((row, index) => {
    const claim = claims[index]!;
    return {
      id: Number(row.id),
      address: String(row.address),
      networkId,
      virtualInterfaceId: claim.virtualInterfaceId,
      instanceUuid: claim.instanceUuid,
      allocated: true,
      leased: false,
      reserved: false,
      host: null,
      updatedAt: claim.now,
    };
  });
}

/**
 * multi_host: the address a compute host takes in the network as its own gateway and
 * DHCP server (nova's per-host dhcp address), taken from the free ones on first use
 * and kept: reserved, with `host` naming its owner. Idempotent per (network, host).
 */
export async function claimHostAddress(q: Queryable, network: ClaimNetwork, host: string, now: Date): Promise<string> {
  const networkId = network.id;
  const held = (await q('fixed_ips')
    .select('address')
    .where({ network_id: networkId, host, reserved: true })
    .whereNull('instance_uuid')
    .first()) as { address: string } | undefined;
  if (held) return String(held.address);
  const free = () => q('fixed_ips').select('id', 'address').whereRaw(FREE, [networkId]).orderBy('updated_at').orderBy('id');
  const [row] = await lockFreeRows<{ id: number; address: string }>(
    q,
    free,
    1,
    () => new NoMoreFixedIps(`no fixed IP left in network ${named(network)} for host ${host}'s own address`),
  );
  const taken = await q('fixed_ips')
    .where('id', row!.id)
    .whereNull('instance_uuid')
    .whereNull('host')
    .update({ host, reserved: true, updated_at: now });
  if (taken !== 1) throw new Conflict(`fixed IP ${row!.address} was taken while being claimed for host ${host}; try again`);
  return String(row!.address);
}

/** multi_host: each host's own address in these networks, by network id and host. */
export async function listHostAddresses(q: Queryable, networkIds: number[]): Promise<Map<number, Map<string, string>>> {
  const byNetwork = new Map<number, Map<string, string>>();
  if (networkIds.length === 0) return byNetwork;
  const rows = (await q('fixed_ips')
    .select('network_id', 'host', 'address')
    .whereIn('network_id', networkIds)
    .where('reserved', true)
    .whereNotNull('host')
    .whereNull('instance_uuid')) as { network_id: number; host: string; address: string }[];
  for (const row of rows) {
    const hosts = byNetwork.get(Number(row.network_id)) ?? new Map<string, string>();
    hosts.set(String(row.host), String(row.address));
    byNetwork.set(Number(row.network_id), hosts);
  }
  return byNetwork;
}

/** Takes the address a caller asked for, if it is in the network and free. */
export async function claimFixedIpAddress(q: Queryable, network: ClaimNetwork, address: string, claim: FixedIpClaim): Promise<FixedIp> {
  const networkId = network.id;
  const updated = await q('fixed_ips')
    .where({ network_id: networkId, address, reserved: false, leased: false })
    .whereNull('instance_uuid')
    .update({ instance_uuid: claim.instanceUuid, virtual_interface_id: claim.virtualInterfaceId, allocated: 1, updated_at: claim.now });
  if (updated !== 1) {
    const existing = await findFixedIp(q, address);
    if (!existing || existing.networkId !== networkId) {
      throw new FixedIpNotFound(`fixed IP ${address} is not in network ${named(network)}`);
    }
    throw new FixedIpAlreadyInUse(`fixed IP ${address} is already in use`);
  }
  return getFixedIp(q, address);
}

export async function findFixedIp(q: Queryable, address: string): Promise<FixedIp | undefined> {
  const row = (await q('fixed_ips').where('address', address).first()) as Row | undefined;
  return row ? fromRow(row) : undefined;
}

/**
 * Whether the fixed IP is still allocated to the instance, with its row locked for the
 * rest of the transaction (MySQL/MariaDB: FOR UPDATE, which also reads the latest
 * committed row). A deallocation updates the same row first, so the two serialise:
 * whoever comes second sees what the first did. SQLite's single writer needs no lock.
 */
export async function lockAllocated(q: Queryable, id: number, instanceUuid: string): Promise<boolean> {
  const query = q('fixed_ips').select('id').where({ id, instance_uuid: instanceUuid, allocated: true });
  if (dialectOf(q) === 'mysql') query.forUpdate();
  return (await query.first()) !== undefined;
}

export async function getFixedIp(q: Queryable, address: string): Promise<FixedIp> {
  const fixed = await findFixedIp(q, address);
  if (!fixed) throw new FixedIpNotFound(`fixed IP ${address} not found`);
  return fixed;
}

export interface FixedIpFilter {
  networkIds?: number[];
  instanceUuids?: string[];
  virtualInterfaceIds?: number[];
  /** Only addresses held by an instance. */
  associated?: boolean;
}

export async function listFixedIps(q: Queryable, filter: FixedIpFilter = {}): Promise<FixedIp[]> {
  const query = q('fixed_ips').orderBy('id');
  if (filter.networkIds) query.whereIn('network_id', filter.networkIds);
  if (filter.instanceUuids) query.whereIn('instance_uuid', filter.instanceUuids);
  if (filter.virtualInterfaceIds) query.whereIn('virtual_interface_id', filter.virtualInterfaceIds);
  if (filter.associated) query.whereNotNull('instance_uuid');
  return ((await query) as Row[]).map(fromRow);
}

/**
 * Detaches the addresses of these VIFs. In DHCP modes the instance keeps holding the
 * address until dnsmasq reports the lease released or the timeout passes; Flat mode
 * (no DHCP) lets it go at once.
 */
export async function deallocateFixedIps(
  q: Queryable,
  virtualInterfaceIds: number[],
  options: { disassociate: boolean; now: Date },
): Promise<number> {
  if (virtualInterfaceIds.length === 0) return 0;
  return q('fixed_ips')
    .whereIn('virtual_interface_id', virtualInterfaceIds)
    .update({
      allocated: false,
      virtual_interface_id: null,
      updated_at: options.now,
      ...(options.disassociate ? { instance_uuid: null, leased: false } : {}),
    });
}

export async function setLeased(q: Queryable, id: number, leased: boolean, now: Date): Promise<void> {
  await q('fixed_ips').where('id', id).update({ leased, updated_at: now });
}

/** Ends an instance's hold on an address that is no longer allocated. */
export async function disassociateFixedIp(q: Queryable, id: number, now: Date): Promise<void> {
  await q('fixed_ips')
    .where({ id, allocated: false })
    .update({ instance_uuid: null, virtual_interface_id: null, leased: false, updated_at: now });
}

/**
 * nova's _disassociate_stale_fixed_ips: addresses deallocated before `olderThan`
 * whose lease release never arrived are returned to the pool.
 */
export async function disassociateStale(q: Queryable, networkIds: number[], olderThan: Date, now: Date): Promise<number> {
  if (networkIds.length === 0) return 0;
  return q('fixed_ips')
    .whereIn('network_id', networkIds)
    .where('allocated', false)
    .whereNotNull('instance_uuid')
    .where('updated_at', '<', olderThan)
    .update({ instance_uuid: null, leased: false, updated_at: now });
}

export async function setReserved(q: Queryable, id: number, reserved: boolean, now: Date): Promise<void> {
  await q('fixed_ips').where('id', id).update({ reserved, updated_at: now });
}

export interface NetworkUsage {
  total: number;
  reserved: number;
  associated: number;
  allocated: number;
  leased: number;
}

const USAGE_COLUMNS = (q: Queryable) => [
  q.raw('COUNT(*) AS total'),
  q.raw('SUM(CASE WHEN reserved = 1 THEN 1 ELSE 0 END) AS reserved'),
  q.raw('SUM(CASE WHEN instance_uuid IS NOT NULL THEN 1 ELSE 0 END) AS associated'),
  q.raw('SUM(CASE WHEN allocated = 1 THEN 1 ELSE 0 END) AS allocated'),
  q.raw('SUM(CASE WHEN leased = 1 THEN 1 ELSE 0 END) AS leased'),
];

function usageOf(row: Record<string, unknown> | undefined): NetworkUsage {
  return {
    total: Number(row?.total ?? 0),
    reserved: Number(row?.reserved ?? 0),
    associated: Number(row?.associated ?? 0),
    allocated: Number(row?.allocated ?? 0),
    leased: Number(row?.leased ?? 0),
  };
}

export async function networkUsage(q: Queryable, networkId: number): Promise<NetworkUsage> {
  return usageOf(
    (await q('fixed_ips')
      .where('network_id', networkId)
      .first(...USAGE_COLUMNS(q))) as Record<string, unknown> | undefined,
  );
}

/** Every network's usage in one grouped query (for metrics). */
export async function usageByNetwork(q: Queryable): Promise<Map<number, NetworkUsage>> {
  const rows = (await q('fixed_ips')
    .select('network_id', ...USAGE_COLUMNS(q))
    .groupBy('network_id')) as Record<string, unknown>[];
  return new Map(rows.map((row) => [Number(row.network_id), usageOf(row)]));
}

export async function deleteFixedIps(q: Queryable, networkId: number): Promise<number> {
  return q('fixed_ips').where('network_id', networkId).delete();
}
