import type { Knex } from 'knex';
import { Conflict } from '../errors.js';
import { isDuplicateKey } from './errors.js';
import { FIXED_IP_COLUMNS, type FixedIp, fromRow as fixedIpFromRow } from './fixedIps.js';
import { type Queryable, toDate } from './rows.js';

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
      const [firstId] = await q('virtual_interfaces').insert(
        vifs.map((vif, index) => ({
          uuid: vif.uuid,
          address: addresses[index],
          network_id: vif.networkId,
          instance_uuid: vif.instanceUuid,
          project_id: vif.projectId,
          hostname: vif.hostname,
          host: vif.host,
          created_at: vif.createdAt,
          updated_at: vif.createdAt,
        })),
      );
      // One row: the driver's insert id is its id. Several: ids need not be
      // consecutive (auto_increment_increment on Galera, interleaved auto-inc locks),
      // so read them back by uuid.
      const ids =
        vifs.length === 1
          ? new Map([[vifs[0]!.uuid, Number(firstId)]])
          : new Map(
              (
                (await q('virtual_interfaces')
                  .select('id', 'uuid')
                  .whereIn(
                    'uuid',
                    vifs.map((vif) => vif.uuid),
                  )) as Row[]
              ).map((row) => [String(row.uuid), Number(row.id)]),
            );
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

export interface VirtualInterfaceFilter {
  instanceUuid?: string;
  instanceUuids?: string[];
  projectId?: string;
  networkIds?: number[];
  ids?: number[];
}

/** `table`: the name or alias the VIF columns go by in the query. */
function filtered(query: Knex.QueryBuilder, filter: VirtualInterfaceFilter, table: string): Knex.QueryBuilder {
  if (filter.instanceUuid !== undefined) query.where(`${table}.instance_uuid`, filter.instanceUuid);
  if (filter.instanceUuids) query.whereIn(`${table}.instance_uuid`, filter.instanceUuids);
  if (filter.projectId !== undefined) query.where(`${table}.project_id`, filter.projectId);
  if (filter.networkIds) query.whereIn(`${table}.network_id`, filter.networkIds);
  if (filter.ids) query.whereIn(`${table}.id`, filter.ids);
  return query;
}

export async function listVirtualInterfaces(q: Queryable, filter: VirtualInterfaceFilter): Promise<VirtualInterface[]> {
  return ((await filtered(q('virtual_interfaces').orderBy('id'), filter, 'virtual_interfaces')) as Row[]).map(fromRow);
}

/**
 * The VIFs of listVirtualInterfaces and the fixed IPs they hold, in one query (a join;
 * under load each round trip of a batch costs milliseconds). Fixed IPs in VIF order.
 */
export async function listVirtualInterfacesWithFixedIps(
  q: Queryable,
  filter: VirtualInterfaceFilter,
): Promise<{ vifs: VirtualInterface[]; fixed: FixedIp[] }> {
  const query = q('virtual_interfaces as v')
    .leftJoin('fixed_ips as f', 'f.virtual_interface_id', 'v.id')
    .select('v.*', ...FIXED_IP_COLUMNS.map((column) => `f.${column} as f_${column}`))
    .orderBy('v.id')
    .orderBy('f.id');
  const vifs = new Map<number, VirtualInterface>();
  const fixed: FixedIp[] = [];
  for (const row of (await filtered(query, filter, 'v')) as Row[]) {
    const vif = vifs.get(Number(row.id)) ?? fromRow(row);
    vifs.set(vif.id, vif);
    if (row.f_id !== null && row.f_id !== undefined) {
      fixed.push(fixedIpFromRow(Object.fromEntries(FIXED_IP_COLUMNS.map((column) => [column, row[`f_${column}`]]))));
    }
  }
  return { vifs: [...vifs.values()], fixed };
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

/**
 * The VIFs a host watches, as one stamp per network (count, newest id, sum of ids: any
 * allocation or deallocation moves it): its own instances' (by host), and every VIF of
 * the networks it serves (by network), or with `everyHolder` of every network it holds.
 * One grouped query, each side read by an index.
 */
export async function vifStamps(
  q: Queryable,
  host: string,
  servedNetworkIds: number[],
  options: { everyHolder?: boolean } = {},
): Promise<Map<number, string>> {
  // Two grouped reads, each a seek on its index (an OR of the two would scan one whole).
  const grouped = (query: Knex.QueryBuilder) =>
    query.groupBy('network_id').select('network_id', q.raw('COUNT(*) AS n'), q.raw('MAX(id) AS newest'), q.raw('SUM(id) AS total'));
  const stampOf = (row: Row) => `${Number(row.n)}:${Number(row.newest)}:${String(row.total)}`;
  const own = (await grouped(q('virtual_interfaces').where('host', host))) as Row[];
  const stamps = new Map(own.map((row) => [Number(row.network_id), `own ${stampOf(row)}`]));
  // VXLAN: every VIF of a network this host has an instance in, since a new holder is a new flood peer.
  const whole = new Set([...servedNetworkIds, ...(options.everyHolder ? stamps.keys() : [])]);
  if (whole.size > 0) {
    for (const row of (await grouped(q('virtual_interfaces').whereIn('network_id', [...whole]))) as Row[]) {
      stamps.set(Number(row.network_id), `all ${stampOf(row)}`);
    }
  }
  return stamps;
}

/** Per network, the hosts with an instance in it (VXLAN floods to each). */
export async function networkHosts(q: Queryable, networkIds: number[]): Promise<Map<number, string[]>> {
  const byNetwork = new Map<number, string[]>();
  if (networkIds.length === 0) return byNetwork;
  const rows = (await q('virtual_interfaces')
    .whereIn('network_id', networkIds)
    .whereNotNull('host')
    .distinct('network_id', 'host')) as Row[];
  for (const row of rows) {
    const list = byNetwork.get(Number(row.network_id)) ?? [];
    list.push(String(row.host));
    byNetwork.set(Number(row.network_id), list);
  }
  return byNetwork;
}

/** A VIF's tap device, as Nova and Neutron name it: `tap` and the first 11 characters of its uuid. */
export function tapName(vifUuid: string): string {
  return `tap${vifUuid.slice(0, 11)}`;
}

/** One of a host's VIFs as its port: the tap (devname), the MAC, the project, its fixed IPv4 addresses. */
export interface HostPort {
  networkId: number;
  tap: string;
  mac: string;
  projectId: string | null;
  addresses: string[];
}

/**
 * `host`'s VIFs with their fixed IPs, in one read: the networks its service plugs, the
 * taps it puts into their bridges, and what each port may send (linux_net/portGuard.ts).
 */
export async function hostPorts(q: Queryable, host: string): Promise<HostPort[]> {
  const rows = (await q('virtual_interfaces as v')
    .leftJoin('fixed_ips as f', 'f.virtual_interface_id', 'v.id')
    .where('v.host', host)
    .orderBy('v.id')
    .select('v.network_id', 'v.uuid', 'v.address as mac', 'v.project_id', 'f.address as fixed')) as Row[];
  const ports = new Map<string, HostPort>();
  for (const row of rows) {
    const uuid = String(row.uuid);
    const port = ports.get(uuid) ?? {
      networkId: Number(row.network_id),
      tap: tapName(uuid),
      mac: String(row.mac),
      projectId: (row.project_id as string | null) ?? null,
      addresses: [],
    };
    if (row.fixed !== null && row.fixed !== undefined) port.addresses.push(String(row.fixed));
    ports.set(uuid, port);
  }
  return [...ports.values()];
}
