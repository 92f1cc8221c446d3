/**
 * The managers' test harness, shared by the manager, API and OSC tests: a migrated
 * database per describe block, a manager of each mode over a recording host layer,
 * a hand clock, predictable MACs and instance uuids, and readers of fixed_ips rows.
 */
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import type { Mode } from '../../src/config/options.js';
import type { Database } from '../../src/db/connection.js';
import type { NetworkManager } from '../../src/managers/manager.js';
import { createManager } from '../../src/managers/registry.js';
import type { InstanceNetworkInfo } from '../../src/managers/views.js';
import { type Backend, freshDatabase, testConfig } from './databases.js';
import { snapshot, wipe } from './dbState.js';
import { RecordingHost } from './recordingHost.js';

export const MODES: Mode[] = ['flat', 'flatdhcp', 'vlan'];

/** What each mode needs to create networks at all (VLAN needs an interface for its VLANs). */
const MODE_OPTIONS: Record<Mode, Record<string, string>> = {
  flat: { network_manager: 'flat' },
  flatdhcp: { network_manager: 'flatdhcp', flat_interface: 'eth1' },
  vlan: { network_manager: 'vlan', vlan_interface: 'eth1' },
};

/**
 * One migrated database per describe block (creating a MariaDB database costs far
 * more than a test), emptied before every test.
 */
export function useDatabase(backend: Backend): () => Database {
  let opened: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  beforeAll(async () => {
    opened = await freshDatabase(backend);
  });
  afterAll(async () => {
    await opened?.close();
  });
  beforeEach(async () => {
    await wipe(opened!.db);
  });
  return () => opened!.db;
}

/** A clock the test moves by hand. */
export class Clock {
  private time: number;
  constructor(start = Date.UTC(2024, 0, 1, 12, 0, 0)) {
    this.time = start;
  }
  readonly now = (): Date => new Date(this.time);
  advance(seconds: number): void {
    this.time += seconds * 1000;
  }
}

let macCounter = 0;
/** Distinct, predictable instance MACs: fa:16:3e:00:00:01, :02, ... */
export function nextMac(): string {
  macCounter += 1;
  const hex = macCounter.toString(16).padStart(6, '0');
  return `fa:16:3e:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}`;
}

export interface Harness {
  manager: NetworkManager;
  host: RecordingHost;
  clock: Clock;
  db: Database;
  logs: string[];
}

export interface HarnessOptions {
  config?: Record<string, string>;
  clock?: Clock;
  newMac?: () => string;
  newUuid?: () => string;
}

/** A manager of `mode` on `db` with a recording host layer, a hand clock and predictable MACs. */
export function harness(db: Database, mode: Mode, options: HarnessOptions = {}): Harness {
  const host = new RecordingHost();
  const clock = options.clock ?? new Clock();
  const logs: string[] = [];
  const config = testConfig({ ...MODE_OPTIONS[mode], ...options.config });
  const manager = createManager({
    db,
    config,
    host,
    now: clock.now,
    newMac: options.newMac ?? nextMac,
    log: (line) => logs.push(line),
    ...(options.newUuid ? { newUuid: options.newUuid } : {}),
  });
  return { manager, host, clock, db, logs };
}

/** Instance uuid number `n`, so tests can name instances by number. */
export function instance(n: number): string {
  return `00000000-0000-4000-8000-${n.toString().padStart(12, '0')}`;
}

/**
 * Runs `action`, which must fail with `errorClass` and a message matching `message`,
 * and checks that no row of any table changed.
 */
export async function expectRefused(
  db: Database,
  action: () => Promise<unknown>,
  errorClass: abstract new (...args: never[]) => Error,
  message: RegExp,
): Promise<Error> {
  const before = await snapshot(db);
  let failure: unknown;
  try {
    await action();
  } catch (error) {
    failure = error;
  }
  expect(failure, 'the operation should have failed').toBeInstanceOf(errorClass);
  expect((failure as Error).message).toMatch(message);
  expect(await snapshot(db)).toEqual(before);
  return failure as Error;
}

export interface FixedRow {
  address: string;
  reserved: boolean;
  allocated: boolean;
  leased: boolean;
  instanceUuid: string | null;
  virtualInterfaceId: number | null;
  host: string | null;
}

function fromRow(row: Record<string, unknown>): FixedRow {
  const flag = (value: unknown) => value === 1 || value === true || value === '1';
  return {
    address: String(row.address),
    reserved: flag(row.reserved),
    allocated: flag(row.allocated),
    leased: flag(row.leased),
    instanceUuid: (row.instance_uuid as string | null) ?? null,
    virtualInterfaceId: row.virtual_interface_id === null ? null : Number(row.virtual_interface_id),
    host: (row.host as string | null) ?? null,
  };
}

/** The fixed_ips rows of one network, lowest id (= lowest address) first. */
export async function fixedRows(db: Database, networkId: number): Promise<FixedRow[]> {
  const rows = (await db.knex('fixed_ips').where('network_id', networkId).orderBy('id')) as Record<string, unknown>[];
  return rows.map(fromRow);
}

export async function fixedRow(db: Database, address: string): Promise<FixedRow> {
  const row = (await db.knex('fixed_ips').where('address', address).first()) as Record<string, unknown> | undefined;
  if (!row) throw new Error(`no fixed_ips row for ${address}`);
  return fromRow(row);
}

export async function reservedAddresses(db: Database, networkId: number): Promise<string[]> {
  return (await fixedRows(db, networkId)).filter((row) => row.reserved).map((row) => row.address);
}

/** Addresses an instance could get now. */
export async function freeAddresses(db: Database, networkId: number): Promise<string[]> {
  return (await fixedRows(db, networkId))
    .filter((row) => !row.reserved && row.instanceUuid === null && !row.leased)
    .map((row) => row.address);
}

export async function countRows(db: Database, table: string, where: Record<string, unknown> = {}): Promise<number> {
  const row = (await db.knex(table).where(where).count({ n: '*' }).first()) as { n: number | string };
  return Number(row.n);
}

/** The IPv4 fixed addresses of an instance, VIF by VIF. */
export function addressesOf(info: InstanceNetworkInfo): string[] {
  return info.network_info.flatMap((vif) =>
    vif.network.subnets.filter((subnet) => subnet.version === 4).flatMap((subnet) => subnet.ips.map((ip) => ip.address)),
  );
}

export function firstAddress(info: InstanceNetworkInfo): string {
  const [address] = addressesOf(info);
  if (address === undefined) throw new Error(`instance ${info.instance_uuid} has no IPv4 address`);
  return address;
}

/** Gives an address back to the pool the way each mode does: deallocate, then (DHCP) the lease release. */
export async function freeInstance(h: Harness, uuid: string): Promise<void> {
  const info = await h.manager.allocation.networkInfo(uuid);
  await h.manager.allocation.deallocate(uuid);
  if (h.manager.capabilities.dhcp) {
    for (const vif of info.network_info) {
      for (const subnet of vif.network.subnets.filter((entry) => entry.version === 4)) {
        for (const ip of subnet.ips) await h.manager.leases.release(ip.address, vif.address);
      }
    }
  }
}
