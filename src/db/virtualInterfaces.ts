import { Conflict } from '../errors.js';
import { Queryable, isDuplicateKey, toDate } from './rows.js';

export interface VirtualInterface {
  id: number;
  uuid: string;
  address: string;
  networkId: number;
  instanceUuid: string;
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
    hostname: (row.hostname as string | null) ?? null,
    host: (row.host as string | null) ?? null,
    createdAt: toDate(row.created_at),
  };
}

export interface NewVirtualInterface {
  uuid: string;
  networkId: number;
  instanceUuid: string;
  hostname: string | null;
  host: string | null;
}

/** nova tried five MACs before giving up; with 2^24 MACs a sixth collision means a bug. */
const MAC_ATTEMPTS = 5;

/** Inserts a VIF with a fresh MAC from `newMac`, trying again when the MAC is taken. */
export async function insertVirtualInterface(
  q: Queryable,
  vif: NewVirtualInterface,
  newMac: () => string,
  now: Date,
): Promise<VirtualInterface> {
  for (let attempt = 1; attempt <= MAC_ATTEMPTS; attempt++) {
    const address = newMac();
    try {
      const [id] = await q('virtual_interfaces').insert({
        uuid: vif.uuid,
        address,
        network_id: vif.networkId,
        instance_uuid: vif.instanceUuid,
        hostname: vif.hostname,
        host: vif.host,
        created_at: now,
        updated_at: now,
      });
      return { id: Number(id), address, ...vif, createdAt: now };
    } catch (error) {
      if (!isDuplicateKey(error) || String((error as Error).message).includes('uuid')) throw error;
    }
  }
  throw new Conflict(`could not find an unused MAC address in ${MAC_ATTEMPTS} attempts`);
}

export async function listVirtualInterfaces(
  q: Queryable,
  filter: { instanceUuid?: string; networkIds?: number[]; ids?: number[] },
): Promise<VirtualInterface[]> {
  const query = q('virtual_interfaces').orderBy('id');
  if (filter.instanceUuid !== undefined) query.where('instance_uuid', filter.instanceUuid);
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

export async function countVirtualInterfaces(q: Queryable, networkId: number): Promise<number> {
  const row = (await q('virtual_interfaces').where('network_id', networkId).count({ n: '*' }).first()) as { n: number | string };
  return Number(row.n);
}
