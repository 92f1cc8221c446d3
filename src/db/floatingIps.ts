import { Conflict, NoMoreFloatingIps } from '../errors.js';
import { parseAddress } from '../ipam/address.js';
import { addressText, type Cidr, containsAddress } from '../ipam/cidr.js';
import { dialectOf, insertBatched, lockFreeRows, type Queryable, toBool, toDate } from './rows.js';

/** A floating IP, with the fixed address and instance it is associated with (if any). */
export interface FloatingIp {
  id: number;
  address: string;
  fixedIpId: number | null;
  projectId: string | null;
  host: string | null;
  autoAssigned: boolean;
  pool: string;
  interface: string | null;
  updatedAt: Date | null;
  /** From the joined fixed_ips row. */
  fixedAddress: string | null;
  instanceUuid: string | null;
}

type Row = Record<string, unknown>;

function fromRow(row: Row): FloatingIp {
  return {
    id: Number(row.id),
    address: String(row.address),
    fixedIpId: row.fixed_ip_id === null || row.fixed_ip_id === undefined ? null : Number(row.fixed_ip_id),
    projectId: (row.project_id as string | null) ?? null,
    host: (row.host as string | null) ?? null,
    autoAssigned: toBool(row.auto_assigned),
    pool: String(row.pool),
    interface: (row.interface as string | null) ?? null,
    updatedAt: toDate(row.updated_at),
    fixedAddress: (row.fixed_address as string | null) ?? null,
    instanceUuid: (row.instance_uuid as string | null) ?? null,
  };
}

/** floating_ips with its fixed IP's address and instance, one query. */
function detailed(q: Queryable) {
  return q('floating_ips as f')
    .leftJoin('fixed_ips as x', 'x.id', 'f.fixed_ip_id')
    .select('f.*', 'x.address as fixed_address', 'x.instance_uuid as instance_uuid')
    .orderBy('f.id');
}

export interface NewFloatingIp {
  address: string;
  pool: string;
  interface: string | null;
}

/** Inserts a range as multi-row INSERTs (rows.insertBatched); call inside a transaction. */
export async function insertFloatingIps(q: Queryable, addresses: Iterable<NewFloatingIp>, now: Date): Promise<number> {
  function* rows() {
    for (const entry of addresses) yield [entry.address, entry.pool, entry.interface, now];
  }
  return insertBatched(q, 'floating_ips', ['address', 'pool', 'interface', 'created_at'], rows());
}

export interface FloatingIpFilter {
  pool?: string;
  projectId?: string;
  host?: string;
  addresses?: string[];
  fixedIpIds?: number[];
}

/** `addresses` and `fixedIpIds` are looked up in chunks, so a /12's worth is fine. */
export async function listFloatingIps(q: Queryable, filter: FloatingIpFilter = {}): Promise<FloatingIp[]> {
  const base = () => {
    const query = detailed(q);
    if (filter.pool !== undefined) query.where('f.pool', filter.pool);
    if (filter.projectId !== undefined) query.where('f.project_id', filter.projectId);
    if (filter.host !== undefined) query.where('f.host', filter.host);
    if (filter.fixedIpIds) query.whereIn('f.fixed_ip_id', filter.fixedIpIds);
    return query;
  };
  if (filter.addresses === undefined) return ((await base()) as Row[]).map(fromRow);
  const found: FloatingIp[] = [];
  for (const chunk of chunks(filter.addresses)) found.push(...((await base().whereIn('f.address', chunk)) as Row[]).map(fromRow));
  return found.sort((a, b) => a.id - b.id);
}

export async function findFloatingIp(q: Queryable, address: string): Promise<FloatingIp | undefined> {
  const row = (await detailed(q).where('f.address', address).first()) as Row | undefined;
  return row ? fromRow(row) : undefined;
}

/** Distinct pool names, sorted. */
export async function listPools(q: Queryable): Promise<string[]> {
  const rows = (await q('floating_ips').distinct('pool').orderBy('pool')) as { pool: string }[];
  return rows.map((row) => String(row.pool));
}

/**
 * A floating IP inside an IPv4 CIDR (the lowest id), if any. The
 * CIDR's whole leading octets narrow the scan with an index-friendly LIKE, so a check
 * against a million-address pool reads only the rows that could match.
 */
export async function firstInside(q: Queryable, cidr: Cidr): Promise<FloatingIp | undefined> {
  const octets = Math.floor(cidr.prefix / 8);
  const leading = addressText(cidr, 0n).split('.').slice(0, octets).join('.');
  const query = detailed(q);
  if (octets > 0) query.where('f.address', 'like', `${leading}.%`);
  for (const row of (await query) as Row[]) {
    const found = fromRow(row);
    if (containsAddress(cidr, parseAddress(found.address, 'address', 4))) return found;
  }
  return undefined;
}

/** Addresses whose row changed at or after `since` (the watcher's poll), with when. */
export async function listChangedSince(q: Queryable, since: Date): Promise<{ address: string; updatedAt: number; host: string | null }[]> {
  const rows = (await q('floating_ips').select('address', 'updated_at', 'host').where('updated_at', '>=', since)) as Row[];
  return rows.map((row) => ({
    address: String(row.address),
    updatedAt: toDate(row.updated_at)?.getTime() ?? 0,
    host: row.host === null ? null : String(row.host),
  }));
}

/** Whether any floating IP exists at all (a cloud without them has no addresses to look for). */
export async function anyFloatingIps(q: Queryable): Promise<boolean> {
  return (await q('floating_ips').first('id')) !== undefined;
}

export async function poolExists(q: Queryable, pool: string): Promise<boolean> {
  return (await q('floating_ips').where('pool', pool).first('id')) !== undefined;
}

/** Deletes rows by id (chunked); the caller has checked they are unallocated. */
export async function deleteFloatingIps(q: Queryable, ids: number[]): Promise<number> {
  let deleted = 0;
  for (const chunk of chunks(ids)) deleted += await q('floating_ips').whereIn('id', chunk).whereNull('project_id').delete();
  return deleted;
}

/**
 * Takes one free address of the pool for the project, lowest id first, by the shared
 * claim pattern (rows.lockFreeRows, then a conditional UPDATE counted). Throws
 * NoMoreFloatingIps when the pool has none left.
 */
export async function claimFloatingIp(
  q: Queryable,
  pool: string,
  projectId: string,
  autoAssigned: boolean,
  now: Date,
): Promise<FloatingIp> {
  const free = () => q('floating_ips').select('id').where('pool', pool).whereNull('project_id').orderBy('id');
  const [row] = await lockFreeRows<{ id: number }>(q, free, 1, () => new NoMoreFloatingIps(`no more floating IPs in pool ${pool}`));
  const id = Number(row!.id);
  const taken = await q('floating_ips')
    .where('id', id)
    .whereNull('project_id')
    .update({ project_id: projectId, auto_assigned: autoAssigned, updated_at: now });
  if (taken !== 1) throw new Conflict(`floating IPs of pool ${pool} were taken while being claimed; try again`);
  const claimed = await findFloatingById(q, id);
  return claimed!;
}

export async function findFloatingById(q: Queryable, id: number): Promise<FloatingIp | undefined> {
  const row = (await detailed(q).where('f.id', id).first()) as Row | undefined;
  return row ? fromRow(row) : undefined;
}

/** Addresses the project holds that count against its quota (auto-assigned ones do not). */
export async function countForProject(q: Queryable, projectId: string, options: { locking?: boolean } = {}): Promise<number> {
  const query = q('floating_ips').where({ project_id: projectId, auto_assigned: false }).count({ n: '*' });
  // A locking read on MySQL sees, and waits for, rows other transactions are claiming
  // for the project right now; SQLite's single writer needs no lock.
  if (options.locking && dialectOf(q) === 'mysql') query.forUpdate();
  const row = (await query.first()) as { n: number | string } | undefined;
  return Number(row?.n ?? 0);
}

/** Binds the address to a fixed IP and the host that will carry it. */
export async function associate(q: Queryable, id: number, fixedIpId: number, host: string | null, now: Date): Promise<void> {
  await q('floating_ips').where('id', id).update({ fixed_ip_id: fixedIpId, host, updated_at: now });
}

/** The floating IPs of these fixed IPs are now bound by `host` (their instance moved); returns their addresses. */
export async function moveToHost(q: Queryable, fixedIpIds: number[], host: string, now: Date): Promise<string[]> {
  if (fixedIpIds.length === 0) return [];
  const rows = (await q('floating_ips').select('id', 'address').whereIn('fixed_ip_id', fixedIpIds)) as { id: number; address: string }[];
  if (rows.length > 0)
    await q('floating_ips')
      .whereIn(
        'id',
        rows.map((row) => Number(row.id)),
      )
      .update({ host, updated_at: now });
  return rows.map((row) => String(row.address));
}

export async function disassociate(q: Queryable, id: number, now: Date): Promise<void> {
  await q('floating_ips').where('id', id).update({ fixed_ip_id: null, host: null, updated_at: now });
}

/** Gives an unassociated address back to its pool. */
export async function release(q: Queryable, id: number, now: Date): Promise<number> {
  return q('floating_ips').where('id', id).whereNull('fixed_ip_id').update({ project_id: null, auto_assigned: false, updated_at: now });
}

const CHUNK = 1000;

function* chunks<T>(values: T[]): Generator<T[]> {
  for (let start = 0; start < values.length; start += CHUNK) yield values.slice(start, start + CHUNK);
}
