import { NetworkNotFound } from '../errors.js';
import { dialectOf, type Queryable, toBool, toDate } from './rows.js';

/** A network as the domain sees it (nova's columns, camelCased). */
export interface Network {
  id: number;
  uuid: string;
  label: string;
  injected: boolean;
  cidr: string | null;
  cidrV6: string | null;
  multiHost: boolean;
  netmask: string | null;
  netmaskV6: string | null;
  gateway: string | null;
  gatewayV6: string | null;
  broadcast: string | null;
  dns1: string | null;
  dns2: string | null;
  bridge: string | null;
  bridgeInterface: string | null;
  vlan: number | null;
  vpnPublicAddress: string | null;
  vpnPublicPort: number | null;
  vpnPrivateAddress: string | null;
  dhcpStart: string | null;
  rxtxBase: number | null;
  projectId: string | null;
  priority: number | null;
  host: string | null;
  mtu: number | null;
  dhcpServer: string | null;
  enableDhcp: boolean;
  shareAddress: boolean;
  createdAt: Date | null;
  updatedAt: Date | null;
}

export type NewNetwork = Omit<Network, 'id' | 'createdAt' | 'updatedAt'>;

type Row = Record<string, unknown>;

const COLUMNS: Record<keyof NewNetwork, string> = {
  uuid: 'uuid',
  label: 'label',
  injected: 'injected',
  cidr: 'cidr',
  cidrV6: 'cidr_v6',
  multiHost: 'multi_host',
  netmask: 'netmask',
  netmaskV6: 'netmask_v6',
  gateway: 'gateway',
  gatewayV6: 'gateway_v6',
  broadcast: 'broadcast',
  dns1: 'dns1',
  dns2: 'dns2',
  bridge: 'bridge',
  bridgeInterface: 'bridge_interface',
  vlan: 'vlan',
  vpnPublicAddress: 'vpn_public_address',
  vpnPublicPort: 'vpn_public_port',
  vpnPrivateAddress: 'vpn_private_address',
  dhcpStart: 'dhcp_start',
  rxtxBase: 'rxtx_base',
  projectId: 'project_id',
  priority: 'priority',
  host: 'host',
  mtu: 'mtu',
  dhcpServer: 'dhcp_server',
  enableDhcp: 'enable_dhcp',
  shareAddress: 'share_address',
};
const BOOLEANS = new Set(['injected', 'multiHost', 'enableDhcp', 'shareAddress']);

function fromRow(row: Row): Network {
  const network: Record<string, unknown> = { id: Number(row.id), createdAt: toDate(row.created_at), updatedAt: toDate(row.updated_at) };
  for (const [field, column] of Object.entries(COLUMNS)) {
    const value = row[column] ?? null;
    network[field] = BOOLEANS.has(field) ? toBool(value) : value;
  }
  return network as unknown as Network;
}

function toRow(network: Partial<NewNetwork>): Row {
  const row: Row = {};
  for (const [field, value] of Object.entries(network)) {
    const column = COLUMNS[field as keyof NewNetwork];
    if (column !== undefined && value !== undefined) row[column] = value;
  }
  return row;
}

const live = (q: Queryable) => q('networks').where('deleted', 0);

export async function insertNetwork(q: Queryable, network: NewNetwork, now: Date): Promise<number> {
  const [id] = await q('networks').insert({ ...toRow(network), created_at: now, updated_at: now, deleted: 0 });
  return Number(id);
}

export interface NetworkFilter {
  projectId?: string | null;
  /** Networks a project may use: its own and the unowned ones (Flat modes). */
  visibleTo?: string;
  ids?: number[];
  uuids?: string[];
}

export async function listNetworks(q: Queryable, filter: NetworkFilter = {}): Promise<Network[]> {
  const query = live(q).orderBy('id');
  if (filter.projectId === null) query.whereNull('project_id');
  else if (filter.projectId !== undefined) query.where('project_id', filter.projectId);
  if (filter.visibleTo !== undefined) {
    const project = filter.visibleTo;
    query.where((inner) => inner.whereNull('project_id').orWhere('project_id', project));
  }
  if (filter.ids) query.whereIn('id', filter.ids);
  if (filter.uuids) query.whereIn('uuid', filter.uuids);
  return (await query).map(fromRow);
}

export async function findNetwork(q: Queryable, by: { id: number } | { uuid: string } | { cidr: string }): Promise<Network | undefined> {
  const row = (await live(q).where(by).first()) as Row | undefined;
  return row ? fromRow(row) : undefined;
}

export async function getNetwork(q: Queryable, by: { id: number } | { uuid: string } | { cidr: string }): Promise<Network> {
  const network = await findNetwork(q, by);
  if (!network) throw new NetworkNotFound(`network ${Object.values(by)[0]} not found`);
  return network;
}

export async function usedVlans(q: Queryable): Promise<Set<number>> {
  const rows = (await live(q).whereNotNull('vlan').select('vlan')) as { vlan: number }[];
  return new Set(rows.map((row) => Number(row.vlan)));
}

export async function usedVpnPorts(q: Queryable): Promise<Set<number>> {
  const rows = (await live(q).whereNotNull('vpn_public_port').select('vpn_public_port')) as { vpn_public_port: number }[];
  return new Set(rows.map((row) => Number(row.vpn_public_port)));
}

export async function updateNetwork(q: Queryable, id: number, patch: Partial<NewNetwork>, now: Date): Promise<void> {
  await live(q)
    .where('id', id)
    .update({ ...toRow(patch), updated_at: now });
}

/**
 * VLAN mode's first use (nova's network_associate): the project's networks, handing it
 * the first unowned one if it has none; empty when none is left. Call inside a
 * transaction. Every claimer first locks the lowest unowned network, so two claims
 * for the same project run one after the other and the second finds the first one's
 * network instead of taking a second (a plain conditional UPDATE cannot see an
 * uncommitted claim under READ COMMITTED). On SQLite the transaction itself serialises.
 */
export async function claimNetworkForProject(trx: Queryable, projectId: string, now: Date): Promise<Network[]> {
  const free = live(trx).whereNull('project_id').orderBy('id').first('id');
  if (dialectOf(trx) === 'mysql') free.forUpdate();
  const candidate = (await free) as { id: number } | undefined;
  const owned = await listNetworks(trx, { projectId });
  if (owned.length > 0 || candidate === undefined) return owned;
  await live(trx).where('id', candidate.id).update({ project_id: projectId, updated_at: now });
  return listNetworks(trx, { ids: [candidate.id] });
}

/** Sets the network host only if none is set yet; returns the host now in charge. */
export async function claimNetworkHost(q: Queryable, id: number, host: string, now: Date): Promise<string> {
  await live(q).where('id', id).whereNull('host').update({ host, updated_at: now });
  const row = (await live(q).where('id', id).first('host')) as { host: string | null } | undefined;
  return row?.host ?? host;
}

export async function softDeleteNetwork(q: Queryable, id: number, now: Date): Promise<void> {
  await live(q).where('id', id).update({ deleted: id, deleted_at: now, updated_at: now });
}

/** Deleted networks, newest first: the host layer tears down what they left behind. */
export async function listDeletedNetworks(q: Queryable): Promise<Network[]> {
  const rows = (await q('networks').whereNot('deleted', 0).orderBy('deleted_at', 'desc')) as Row[];
  return rows.map(fromRow);
}

/** What changed when: id, updated_at and whether deleted, for every network ever made. */
export interface NetworkStamp {
  id: number;
  updatedAt: number;
  deleted: boolean;
  /** Its network host (single-host networks), and whether it is multi_host: who serves it. */
  host: string | null;
  multiHost: boolean;
}

export async function listNetworkStamps(q: Queryable): Promise<NetworkStamp[]> {
  const rows = (await q('networks').select('id', 'updated_at', 'deleted', 'host', 'multi_host')) as Row[];
  return rows.map((row) => ({
    id: Number(row.id),
    updatedAt: toDate(row.updated_at)?.getTime() ?? 0,
    deleted: Number(row.deleted) !== 0,
    host: row.host === null ? null : String(row.host),
    multiHost: toBool(row.multi_host),
  }));
}

/** Each network's uuid and network host, deleted ones too (by primary key). */
export async function networkHostsOf(q: Queryable, ids: number[]): Promise<{ id: number; uuid: string; host: string | null }[]> {
  if (ids.length === 0) return [];
  const rows = (await q('networks').whereIn('id', ids).select('id', 'uuid', 'host')) as Row[];
  return rows.map((row) => ({ id: Number(row.id), uuid: String(row.uuid), host: row.host === null ? null : String(row.host) }));
}

export async function getDeletedNetwork(q: Queryable, id: number): Promise<Network> {
  const row = (await q('networks').where('id', id).whereNot('deleted', 0).first()) as Row | undefined;
  if (!row) throw new NetworkNotFound(`deleted network ${id} not found`);
  return fromRow(row);
}
