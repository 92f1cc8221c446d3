import type { Queryable } from './rows.js';
import { toDate } from './rows.js';

export const HOST_ROLES = ['network', 'compute'] as const;
export type HostRole = (typeof HOST_ROLES)[number];

export interface HostRow {
  id: number;
  name: string;
  role: HostRole;
  tunnelIp: string | null;
  version: string;
  startedAt: Date;
  heartbeatAt: Date;
  lastReconcileAt: Date | null;
  /** The last full reconcile's errors (empty when it was clean, or none yet). */
  lastReconcileErrors: string[];
  /** The uuids of the networks whose bridge this host has built. */
  builtNetworks: Set<string>;
  /** Where its service takes wakes (`ADDRESS:PORT`), if it listens. */
  wakeAddress: string | null;
}

type Row = Record<string, unknown>;

function fromRow(row: Row): HostRow {
  const errors = row.last_reconcile_errors === null || row.last_reconcile_errors === undefined ? '' : String(row.last_reconcile_errors);
  return {
    id: Number(row.id),
    name: String(row.name),
    role: String(row.role) as HostRole,
    tunnelIp: row.tunnel_ip === null ? null : String(row.tunnel_ip),
    version: String(row.version),
    startedAt: toDate(row.started_at)!,
    heartbeatAt: toDate(row.heartbeat_at)!,
    lastReconcileAt: toDate(row.last_reconcile_at),
    lastReconcileErrors: errors === '' ? [] : errors.split('\n'),
    builtNetworks: new Set(typeof row.built_networks === 'string' && row.built_networks !== '' ? row.built_networks.split(',') : []),
    wakeAddress: typeof row.wake_address === 'string' && row.wake_address !== '' ? row.wake_address : null,
  };
}

export interface Registration {
  name: string;
  role: HostRole;
  tunnelIp: string | null;
  wakeAddress: string | null;
  version: string;
  now: Date;
}

/** A service starting: its row made or brought up to date (one statement, by the unique name). */
export async function registerHost(q: Queryable, host: Registration): Promise<void> {
  const values = {
    role: host.role,
    tunnel_ip: host.tunnelIp,
    wake_address: host.wakeAddress,
    version: host.version,
    started_at: host.now,
    heartbeat_at: host.now,
    updated_at: host.now,
  };
  await q('hosts')
    .insert({ name: host.name, ...values, created_at: host.now })
    .onConflict('name')
    .merge(Object.keys(values));
}

export interface Heartbeat {
  now: Date;
  /** The last full reconcile, when there has been one since the last heartbeat. */
  reconcile?: { at: Date; errors: string[] };
}

/** Errors one per line, so a message with a newline of its own stays one error. */
const oneLineEach = (errors: string[]) => errors.map((error) => error.replace(/\s*\n\s*/g, ' ')).join('\n');

/** A running service saying it is alive: one update by the unique name. */
export async function heartbeat(q: Queryable, name: string, beat: Heartbeat): Promise<void> {
  await q('hosts')
    .where('name', name)
    .update({
      heartbeat_at: beat.now,
      updated_at: beat.now,
      ...(beat.reconcile ? { last_reconcile_at: beat.reconcile.at, last_reconcile_errors: oneLineEach(beat.reconcile.errors) } : {}),
    });
}

/** The networks whose bridge `name` has built, as its service last found them (one update by the unique name). */
export async function recordBuilt(q: Queryable, name: string, networkUuids: string[]): Promise<void> {
  await q('hosts')
    .where('name', name)
    .update({ built_networks: [...networkUuids].sort().join(',') });
}

/** Every host, by name (a small table: one row per service). */
export async function listHosts(q: Queryable): Promise<HostRow[]> {
  const rows = (await q('hosts').select('*').orderBy('name')) as Row[];
  return rows.map(fromRow);
}
