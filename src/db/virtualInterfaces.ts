import { Conflict } from '../errors.js';
import { Queryable, isDuplicateKey, toDate } from './rows.js';

export interface VirtualInterface {
  id: number;
  uuid: string;
  address: string;
  networkId: number;
  instanceUuid: string;
  projectId: string | null;
  hostname: string | null;
  host: string | null;
  createdAt: Date | null;
}

type Row = Record<string, unknown>;

function fromRow(row: Row): VirtualInterface {
  return {
    id: Number(row.id),
    uuid: String(row.uuid),
    address: String(row.address),
    networkId: Number(row.network_id),
    instanceUuid: String(row.instance_uuid),
    projectId: (row.project_id as string | null) ?? null,
    hostname: (row.hostname as string | null) ?? null,
    host: (row.host as string | null) ?? null,
    createdAt: toDate(row.created_at),
  };
}

export interface NewVirtualInterface {
  uuid: string;
  networkId: number;
  instanceUuid: string;
  projectId: string | null;
  hostname: string | null;
  host: string | null;
}

/** nova tried five MACs before giving up; with 2^24 MACs a sixth collision means a bug. */
const MAC_ATTEMPTS = 5;
const MAC_KEY = /uniq_virtual_interfaces_address|virtual_interfaces\.address\b/;
const INSTANCE_NETWORK_KEY = /uniq_virtual_interfaces_instance_network|virtual_interfaces\.instance_uuid, virtual_interfaces\.network_id/;

/** The instance already has a VIF on that network: a concurrent allocate for it won. */
export function isDuplicateInstanceVif(error: unknown): boolean {
  return isDuplicateKey(error) && INSTANCE_NETWORK_KEY.test(String((error as Error).message));
}

/** Inserts a VIF with a fresh MAC from `newMac`, trying again when the MAC is taken. */
export async function insertVirtualInterface(
  q: Queryable,
  vif: NewVirtualInterface,
  newMac: () => string,
  now: Date,
): Promise<VirtualInterface> {
  const [inserted] = await insertVirtualInterfaces(q, [{ ...vif, createdAt: now }], newMac);
  return inserted!;
}

/**
 * Inserts VIFs in one multi-row INSERT, each with a fresh MAC from `newMac`, trying
 * again with new MACs when one is taken; returns them with their ids, in order.
 * A VIF that already exists (same uuid, or same instance and network) fails the call.
 */
export async function insertVirtualInterfaces(
  q: Queryable,
  vifs: (NewVirtualInterface & { createdAt: Date })[],
  newMac: () => string,
): Promise<VirtualInterface[]> {
  if (vifs.length === 0) return [];
  for (let attempt = 1; attempt <= MAC_ATTEMPTS; attempt++) {
    const addresses = vifs.map(() => newMac());
    try {
      const [firstId] = await q('virtual_interfaces').insert(vifs.map((vif, index) => ({
        uuid: vif.uuid,
        address: addresses[index],
        network_id: vif.networkId,
        instance_uuid: vif.instanceUuid,
        project_id: vif.projectId,
        hostname: vif.hostname,
        host: vif.host,
        created_at: vif.createdAt,
        updated_at: vif.createdAt,
      })));
      // One row: the driver's insert id is its id. Several: ids need not be
      // consecutive (auto_increment_increment on Galera, interleaved auto-inc locks),
      // so read them back by uuid.
      const ids = vifs.length === 1
        ? new Map([[vifs[0]!.uuid, Number(firstId)]])
        : new Map(((await q('virtual_interfaces').select('id', 'uuid').whereIn('uuid', vifs.map((vif) => vif.uuid))) as Row[])
          .map((row) => [String(row.uuid), Number(row.id)]));
      return vifs.map((vif, index) => ({ ...vif, id: ids.get(vif.uuid)!, address: addresses[index]! }));
    } catch (error) {
      // Only a taken MAC is worth another try. knex puts the SQL (which names the uuid
      // columns) into every message, so match the MAC key itself: MySQL names the index,
      // SQLite the column.
      if (!isDuplicateKey(error) || !MAC_KEY.test(String((error as Error).message))) throw error;
    }
  }
  throw new Conflict(`could not find an unused MAC address in ${MAC_ATTEMPTS} attempts`);
}

export async function listVirtualInterfaces(
  q: Queryable,
  filter: { instanceUuid?: string; instanceUuids?: string[]; projectId?: string; networkIds?: number[]; ids?: number[] },
): Promise<VirtualInterface[]> {
  const query = q('virtual_interfaces').orderBy('id');
  if (filter.instanceUuid !== undefined) query.where('instance_uuid', filter.instanceUuid);
  if (filter.instanceUuids) query.whereIn('instance_uuid', filter.instanceUuids);
  if (filter.projectId !== undefined) query.where('project_id', filter.projectId);
  if (filter.networkIds) query.whereIn('network_id', filter.networkIds);
  if (filter.ids) query.whereIn('id', filter.ids);
  return ((await query) as Row[]).map(fromRow);
}

export async function findVirtualInterfaceByMac(q: Queryable, address: string): Promise<VirtualInterface | undefined> {
  const row = (await q('virtual_interfaces').where('address', address).first()) as Row | undefined;
  return row ? fromRow(row) : undefined;
}

export async function deleteVirtualInterfaces(q: Queryable, ids: number[]): Promise<number> {
  if (ids.length === 0) return 0;
  return q('virtual_interfaces').whereIn('id', ids).delete();
}

/** An instance moved to another compute host: its VIFs go with it. */
export async function setHost(q: Queryable, ids: number[], host: string): Promise<number> {
  if (ids.length === 0) return 0;
  return q('virtual_interfaces').whereIn('id', ids).update({ host });
}

export async function countVirtualInterfaces(q: Queryable, networkId: number): Promise<number> {
  const row = (await q('virtual_interfaces').where('network_id', networkId).count({ n: '*' }).first()) as { n: number | string };
  return Number(row.n);
}

/**
 * A host's VIFs as one comparable stamp (count, newest id, sum of ids: an added, a
 * removed or a moved VIF changes it) and the networks they are in: what the watcher
 * polls every second, so both are aggregates, not the rows.
 */
export async function hostVifStamp(q: Queryable, host: string): Promise<{ stamp: string; networkIds: number[] }> {
  const stamp = (await q('virtual_interfaces').where('host', host)
    .select(q.raw('COUNT(*) AS n'), q.raw('MAX(id) AS newest'), q.raw('SUM(id) AS total')).first()) as { n: unknown; newest: unknown; total: unknown };
  const networks = (await q('virtual_interfaces').where('host', host).distinct('network_id')) as { network_id: number }[];
  return { stamp: `${Number(stamp.n)}:${Number(stamp.newest ?? 0)}:${String(stamp.total ?? 0)}`, networkIds: networks.map((row) => Number(row.network_id)) };
}
