/**
 * The floating-IP and /servers API tests' starting point: a FlatDHCP network, two
 * pools, instances of two projects, and tokens for an admin and both projects.
 */
import { afterEach, beforeEach } from 'vitest';
import type { Database } from '../../src/db/connection.js';
import { type Api, type ApiOptions, type Reply, startApi, uuidOf } from './api.js';
import { wipe } from './dbState.js';
import { firstAddress } from './managers.js';

export interface FloatingWorld {
  api: Api;
  /** Tokens: an admin of project "ops", members of p1 and p2. */
  admin: string;
  p1: string;
  p2: string;
  /** Instances: vm1 and vm3 of p1, vm2 of p2; and their fixed IPs. */
  vm1: string;
  vm2: string;
  vm3: string;
  fixed: Record<'vm1' | 'vm2' | 'vm3', string>;
}

/** Pool "nova" is 203.0.113.1-6 (interface unset), pool "public" 198.51.100.1-2 on eth3. */
export async function floatingWorld(db: Database, options: ApiOptions = {}): Promise<FloatingWorld> {
  const api = await startApi(db, options);
  await api.manager.networks.create({ label: 'private', fixedRangeV4: '10.0.0.0/24' });
  await api.manager.floating.createRange('203.0.113.0/29');
  await api.manager.floating.createRange('198.51.100.0/30', 'public', 'eth3');
  const boot = async (n: number, projectId: string) =>
    firstAddress(await api.manager.allocation.allocate({ instanceUuid: uuidOf(n), projectId, host: 'compute1', hostname: `vm${n}` }));
  const fixed = { vm1: await boot(1, 'p1'), vm2: await boot(2, 'p2'), vm3: await boot(3, 'p1') };
  api.h.host.clear();
  return {
    api,
    admin: await api.token('ops', 'admin'),
    p1: await api.token('p1'),
    p2: await api.token('p2'),
    vm1: uuidOf(1),
    vm2: uuidOf(2),
    vm3: uuidOf(3),
    fixed,
  };
}

export interface FloatingRow {
  id: number;
  projectId: string | null;
  fixedIpId: number | null;
  host: string | null;
  autoAssigned: boolean;
}

/** The floating_ips row of `address`, as the database has it. */
export async function floatingRow(db: Database, address: string): Promise<FloatingRow> {
  const row = (await db.knex('floating_ips').where({ address }).first()) as Record<string, unknown> | undefined;
  if (!row) throw new Error(`no floating_ips row for ${address}`);
  return {
    id: Number(row.id),
    projectId: (row.project_id as string | null) ?? null,
    fixedIpId: row.fixed_ip_id === null ? null : Number(row.fixed_ip_id),
    host: (row.host as string | null) ?? null,
    autoAssigned: row.auto_assigned === 1 || row.auto_assigned === true,
  };
}

export type WorldCall = (method: string, path: string, token: string, body?: unknown) => Promise<Reply>;

/**
 * A fresh world for each test of the calling describe (handed to `use`, closed after
 * it); `call` reaches its API with a token and an optional JSON body, `rebuild` starts
 * the test over in a world with other options.
 */
export function useFloatingWorld(
  db: () => Database,
  use: (world: FloatingWorld) => void,
): { call: WorldCall; rebuild: (options: ApiOptions) => Promise<void> } {
  let current: FloatingWorld | undefined;
  const build = async (options: ApiOptions = {}) => {
    current = await floatingWorld(db(), options);
    use(current);
  };
  beforeEach(() => build());
  afterEach(async () => {
    await current?.api.close();
  });
  return {
    call: (method, path, token, body) => current!.api.call(method, path, body === undefined ? { token } : { token, body }),
    rebuild: async (options) => {
      await current?.api.close();
      await wipe(db());
      await build(options);
    },
  };
}
