import type { Knex } from 'knex';
import { FixedIpAlreadyInUse, FixedIpNotFound, NoMoreFixedIps } from '../errors.js';
import { Queryable, claimOne, toBool, toDate } from './rows.js';

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

function fromRow(row: Row): FixedIp {
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

/** Rows per INSERT: larger batches gain nothing on MariaDB (measured-limits.md). */
export const INSERT_BATCH = 1000;

/**
 * Inserts a network's addresses as multi-row INSERTs of INSERT_BATCH rows, built
 * directly (knex's builder costs more than the database at this size). Call inside
 * a transaction: one commit for the whole network.
 */
export async function insertFixedIps(
  q: Queryable,
  networkId: number,
  addresses: Iterable<NewFixedIp>,
  now: Date,
  onProgress?: (inserted: number) => void,
): Promise<number> {
  const statements = new Map<number, string>();
  const sql = (rows: number) => {
    let statement = statements.get(rows);
    if (statement === undefined) {
      statement = `INSERT INTO fixed_ips (address, network_id, reserved, allocated, leased, created_at) VALUES ${Array(rows).fill('(?, ?, ?, 0, 0, ?)').join(', ')}`;
      statements.set(rows, statement);
    }
    return statement;
  };
  let bindings: Knex.RawBinding[] = [];
  let inserted = 0;
  const flush = async () => {
    const rows = bindings.length / 4;
    if (rows === 0) return;
    await q.raw(sql(rows), bindings);
    inserted += rows;
    bindings = [];
    onProgress?.(inserted);
  };
  for (const { address, reserved } of addresses) {
    bindings.push(address, networkId, reserved ? 1 : 0, now);
    if (bindings.length === INSERT_BATCH * 4) await flush();
  }
  await flush();
  return inserted;
}

const FREE = 'network_id = ? AND instance_uuid IS NULL AND reserved = 0 AND leased = 0 AND host IS NULL';

export interface AllocateRequest {
  networkId: number;
  instanceUuid: string;
  virtualInterfaceId: number;
  /** A specific address the caller asked for; otherwise the next free one. */
  address?: string | undefined;
  now: Date;
}

/**
 * Takes a free fixed IP for an instance. Never-used addresses come first, then the
 * least recently freed (nova's order: it keeps a just-freed address away from a VM
 * that may still hold its lease).
 */
export async function allocateFixedIp(q: Queryable, request: AllocateRequest): Promise<FixedIp> {
  const set = {
    instance_uuid: request.instanceUuid,
    virtual_interface_id: request.virtualInterfaceId,
    allocated: 1,
    updated_at: request.now,
  };
  let id: number | undefined;
  if (request.address !== undefined) {
    const updated = await q('fixed_ips')
      .where({ network_id: request.networkId, address: request.address, reserved: false, leased: false })
      .whereNull('instance_uuid')
      .update(set);
    if (updated !== 1) {
      const existing = await findFixedIp(q, request.address);
      if (!existing || existing.networkId !== request.networkId) {
        throw new FixedIpNotFound(`fixed IP ${request.address} is not in network ${request.networkId}`);
      }
      throw new FixedIpAlreadyInUse(`fixed IP ${request.address} is already in use`);
    }
    return getFixedIp(q, request.address);
  }
  id = await claimOne(q, { table: 'fixed_ips', set, where: FREE, bindings: [request.networkId], orderBy: 'updated_at, id' });
  if (id === undefined) throw new NoMoreFixedIps(`no more fixed IPs in network ${request.networkId}`);
  return fromRow((await q('fixed_ips').where('id', id).first()) as Row);
}

export async function findFixedIp(q: Queryable, address: string): Promise<FixedIp | undefined> {
  const row = (await q('fixed_ips').where('address', address).first()) as Row | undefined;
  return row ? fromRow(row) : undefined;
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
}

export async function networkUsage(q: Queryable, networkId: number): Promise<NetworkUsage> {
  const row = (await q('fixed_ips')
    .where('network_id', networkId)
    .first(
      q.raw('COUNT(*) AS total'),
      q.raw('SUM(CASE WHEN reserved = 1 THEN 1 ELSE 0 END) AS reserved'),
      q.raw('SUM(CASE WHEN instance_uuid IS NOT NULL THEN 1 ELSE 0 END) AS associated'),
      q.raw('SUM(CASE WHEN allocated = 1 THEN 1 ELSE 0 END) AS allocated'),
    )) as Record<string, unknown>;
  return {
    total: Number(row.total ?? 0),
    reserved: Number(row.reserved ?? 0),
    associated: Number(row.associated ?? 0),
    allocated: Number(row.allocated ?? 0),
  };
}

export async function deleteFixedIps(q: Queryable, networkId: number): Promise<number> {
  return q('fixed_ips').where('network_id', networkId).delete();
}
