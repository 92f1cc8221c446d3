/**
 * Fixed IP allocation under contention on MariaDB: N concurrent allocators against
 * one FlatDHCP /16, novanet's full allocation.allocate path (one manager, its own
 * connection pool, as in the service) side by side with nova's 2013 pattern (SELECT
 * ... FOR UPDATE then UPDATE, REPEATABLE READ, one connection per allocator).
 * Each cell gets a fresh database holding the same network, and is bounded by a
 * count and a time.
 */
import { performance } from 'node:perf_hooks';
import mysql from 'mysql2/promise';
import { openDatabase, parseConnectionUrl } from '../src/db/connection.js';
import type { NetworkManager } from '../src/managers/manager.js';
import { type GaleraCluster, startGaleraCluster } from '../tools/galera.js';
import { createTestDatabase } from '../tools/mariadb.js';
import { type BenchEnv, benchManager, instanceUuid, markdownTable, migrate, millis, percentile, runIfMain } from './support/harness.js';

const ALLOCATORS = [1, 4, 16, 64];
/** Split between two services, so at least two. */
const GALERA_ALLOCATORS = [2, 16, 64];
/** A cell stops starting allocations after this many, or after MAX_MS. */
const MAX_ALLOCATIONS = Number(process.env.BENCH_ALLOCATIONS ?? 3000);
const MAX_MS = Number(process.env.BENCH_CELL_MS ?? 10_000);
const WARMUP = 20;
const CIDR = '10.0.0.0/16';

interface Cell {
  completed: number;
  elapsedMs: number;
  latencies: number[];
  errors: Map<string, number>;
  retries: number;
}

/**
 * Runs `allocators` loops calling `allocate(loop, seq)` until MAX_ALLOCATIONS have
 * started or MAX_MS have passed; records the latency of every completed call.
 */
async function load(allocators: number, allocate: (loop: number, seq: number) => Promise<void>): Promise<Cell> {
  const cell: Cell = { completed: 0, elapsedMs: 0, latencies: [], errors: new Map(), retries: 0 };
  let started = 0;
  const begin = performance.now();
  const deadline = begin + MAX_MS;
  await Promise.all(
    Array.from({ length: allocators }, async (_, loop) => {
      while (started < MAX_ALLOCATIONS && performance.now() < deadline) {
        const seq = started++;
        const t0 = performance.now();
        try {
          await allocate(loop, seq);
          cell.latencies.push(performance.now() - t0);
          cell.completed++;
        } catch (error) {
          const key = `${(error as Error).name}: ${(error as Error).message.slice(0, 100)}`;
          cell.errors.set(key, (cell.errors.get(key) ?? 0) + 1);
        }
      }
    }),
  );
  cell.elapsedMs = performance.now() - begin;
  cell.latencies.sort((a, b) => a - b);
  return cell;
}

/** Gives `url`'s empty database the benchmark's network; returns its id. */
async function addNetwork(url: string): Promise<number> {
  const db = openDatabase(url);
  try {
    const [network] = await benchManager(db).networks.create({ label: 'bench', fixedRangeV4: CIDR, networkSize: 2 ** 16 });
    return network!.id;
  } finally {
    await db.close();
  }
}

/** A fresh database with the benchmark's network; returns its URL and network id. */
async function pool(env: BenchEnv) {
  const scratch = await env.scratch('mariadb', 'alloc');
  return { scratch, networkId: await addNetwork(scratch.url) };
}

/** The whole allocation.allocate call, as a compute host makes it. */
function allocateOn(manager: NetworkManager) {
  return async (seq: number) => {
    await manager.allocation.allocate({ instanceUuid: instanceUuid(seq), projectId: 'bench', host: 'compute1', hostname: `vm${seq}` });
  };
}

/**
 * One service per URL (each its own manager and pool), the allocators dealt out
 * round-robin: on one server the URLs are the same, on Galera each prefers its own node.
 */
async function novanetCell(urls: string[], allocators: number): Promise<Cell> {
  const dbs = urls.map((url) => openDatabase(url));
  try {
    const services = dbs.map((db) => allocateOn(benchManager(db)));
    for (const [index, allocate] of services.entries()) {
      for (let seq = 0; seq < WARMUP; seq++) await allocate(1_000_000 + index * WARMUP + seq);
    }
    return await load(allocators, (loop, seq) => services[loop % services.length]!(seq));
  } finally {
    for (const db of dbs) await db.close();
  }
}

async function oneServerCell(env: BenchEnv, allocators: number, services: number): Promise<Cell> {
  const { scratch } = await pool(env);
  try {
    return await novanetCell(Array<string>(services).fill(scratch.url), allocators);
  } finally {
    await scratch.drop();
  }
}

/** Two services, on node 1 and node 2 of the cluster (each with the others as fallback). */
async function galeraCell(cluster: GaleraCluster, allocators: number): Promise<Cell & { conflicts: number }> {
  const created = await createTestDatabase(cluster.nodes[0]!.url, 'bench_galera');
  try {
    await migrate(created.url);
    await addNetwork(created.url);
    await cluster.caughtUp();
    const before = await cluster.conflicts();
    const cell = await novanetCell([cluster.urlFor(0, created.name), cluster.urlFor(1, created.name)], allocators);
    return { ...cell, conflicts: (await cluster.conflicts()) - before };
  } finally {
    await created.drop();
  }
}

const DEADLOCKS = new Set(['ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT']);

/**
 * nova's fixed_ip_associate_pool as of 2013: in one transaction, lock the first free
 * row with SELECT ... FOR UPDATE, then UPDATE it; deadlocks are rolled back and retried.
 */
async function novaCell(env: BenchEnv, allocators: number): Promise<Cell> {
  const { scratch, networkId } = await pool(env);
  const connections: mysql.Connection[] = [];
  let retries = 0;
  try {
    for (let index = 0; index < allocators; index++) {
      const conn = await mysql.createConnection({ uri: scratch.url, timezone: 'Z' });
      await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      connections.push(conn);
    }
    const allocate = async (conn: mysql.Connection, seq: number) => {
      for (;;) {
        try {
          await conn.query('BEGIN');
          const [rows] = await conn.query<mysql.RowDataPacket[]>(
            'SELECT id FROM fixed_ips WHERE network_id = ? AND reserved = 0 AND instance_uuid IS NULL AND host IS NULL LIMIT 1 FOR UPDATE',
            [networkId],
          );
          const id = rows[0]?.id as number | undefined;
          if (id === undefined) throw new Error('NoMoreFixedIps');
          await conn.query('UPDATE fixed_ips SET instance_uuid = ?, allocated = 1, updated_at = ? WHERE id = ?', [
            instanceUuid(seq),
            new Date(),
            id,
          ]);
          await conn.query('COMMIT');
          return;
        } catch (error) {
          await conn.query('ROLLBACK');
          if (!DEADLOCKS.has(String((error as { code?: unknown }).code))) throw error;
          retries++;
        }
      }
    };
    for (let seq = 0; seq < WARMUP; seq++) await allocate(connections[0]!, 1_000_000 + seq);
    const cell = await load(allocators, (loop, seq) => allocate(connections[loop]!, seq));
    cell.retries = retries;
    return cell;
  } finally {
    for (const conn of connections) await conn.end();
    await scratch.drop();
  }
}

function figures(cell: Cell): string[] {
  const rate = cell.completed / (cell.elapsedMs / 1000);
  return [rate.toFixed(0), millis(percentile(cell.latencies, 50)), millis(percentile(cell.latencies, 99))];
}

export async function allocateBench(env: BenchEnv): Promise<string> {
  const rows: string[][] = [];
  const problems: string[] = [];
  for (const allocators of ALLOCATORS) {
    const ours = await oneServerCell(env, allocators, 1);
    env.log(`allocate, ${allocators} allocators, novanet: ${ours.completed} in ${(ours.elapsedMs / 1000).toFixed(1)} s`);
    const nova = await novaCell(env, allocators);
    env.log(
      `allocate, ${allocators} allocators, nova 2013: ${nova.completed} in ${(nova.elapsedMs / 1000).toFixed(1)} s, ${nova.retries} deadlock retries`,
    );
    rows.push([String(allocators), ...figures(ours), ...figures(nova), String(nova.retries)]);
    for (const [name, cell] of [
      ['novanet', ours],
      ['nova 2013', nova],
    ] as const) {
      for (const [error, count] of cell.errors) problems.push(`${name}, ${allocators} allocators: ${count} × ${error}`);
    }
  }
  const poolSize = (parseConnectionUrl('mysql://bench@127.0.0.1/bench').knexConfig.pool as { max: number }).max;
  return [
    '### allocate: one fixed IP per instance, FlatDHCP /16 on MariaDB',
    '',
    markdownTable(['allocators', 'novanet alloc/s', 'p50', 'p99', 'nova 2013 alloc/s', 'p50', 'p99', 'nova deadlock retries'], rows),
    '',
    `- novanet: the whole allocation.allocate call (existing-VIF check, network choice, VIF and fixed IP in one transaction, network_info) on one manager with its pool of ${poolSize} connections; the allocators are concurrent callers, which the service queues and batches.`,
    '- nova 2013: SELECT … FOR UPDATE then UPDATE in one REPEATABLE READ transaction, one connection per allocator; the fixed IP only (nova created the VIF and built network_info in further calls).',
    `- Each cell: a fresh database with the same /16, ${WARMUP} warm-up allocations, then up to ${MAX_ALLOCATIONS.toLocaleString('en')} allocations or ${MAX_MS / 1000} s. Goal: novanet ≥ 1,000/s with p99 < 100 ms at 64.`,
    ...(problems.length > 0 ? problems.map((problem) => `- ERRORS: ${problem}`) : []),
    '',
    await galeraBench(env),
  ].join('\n');
}

/** Two services on one MariaDB side by side with two services on a 3-node Galera cluster, writes spread over nodes 1 and 2. */
async function galeraBench(env: BenchEnv): Promise<string> {
  const title = '### allocate on Galera: two services, one MariaDB vs a 3-node cluster (one node each)';
  let cluster: GaleraCluster;
  try {
    cluster = await startGaleraCluster({ durable: true });
  } catch (error) {
    return `${title}\n\nskipped: ${(error as Error).message.split('\n')[0]}`;
  }
  const rows: string[][] = [];
  const problems: string[] = [];
  try {
    env.log(`started a Galera cluster (pids ${cluster.nodes.map((node) => node.pid).join(', ')})`);
    for (const allocators of GALERA_ALLOCATORS) {
      const single = await oneServerCell(env, allocators, 2);
      const galera = await galeraCell(cluster, allocators);
      env.log(
        `allocate, ${allocators} allocators, Galera: ${galera.completed} in ${(galera.elapsedMs / 1000).toFixed(1)} s, ${galera.conflicts} conflicts`,
      );
      rows.push([String(allocators), ...figures(single), ...figures(galera), String(galera.conflicts)]);
      for (const [name, cell] of [
        ['one MariaDB', single],
        ['Galera', galera],
      ] as const) {
        for (const [error, count] of cell.errors) problems.push(`${name}, ${allocators} allocators: ${count} × ${error}`);
      }
    }
  } finally {
    await cluster.stop();
  }
  return [
    title,
    '',
    markdownTable(['allocators', 'one MariaDB alloc/s', 'p50', 'p99', 'Galera alloc/s', 'p50', 'p99', 'Galera conflicts (retried)'], rows),
    '',
    '- Both: two managers, each with its own pool, the allocators dealt out between them; every server flushes the redo log at each commit. On Galera one manager prefers node 1, the other node 2, so conflicting claims meet only at certification.',
    '- Conflicts: certification failures and brute-force aborts the nodes counted during the cell; each came back as a deadlock and was retried, none reached a caller unless listed below.',
    ...(problems.length > 0 ? problems.map((problem) => `- ERRORS: ${problem}`) : []),
  ].join('\n');
}

runIfMain(import.meta.url, allocateBench);
