/**
 * `novanet-manage network create` of a /16 and a /12 on MariaDB and SQLite, against
 * the floor (the same fixed_ips rows by the plainest fast method the driver has) and,
 * for the /16, the row-at-a-time inserts old nova did. Every case gets a fresh
 * database with novanet's schema, so indexes and row shapes are identical.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import mysql from 'mysql2/promise';
import { openDatabase } from '../src/db/connection.js';
import {
  type Backend,
  type BenchEnv,
  benchManager,
  markdownTable,
  median,
  ratio,
  runIfMain,
  type Scratch,
  seconds,
} from './support/harness.js';

interface Size {
  name: string;
  cidr: string;
  addresses: number;
  /** Runs per method; the table shows the median. */
  repeat: number;
}

const SIZES: Size[] = [
  { name: '/16', cidr: '10.0.0.0/16', addresses: 2 ** 16, repeat: Number(process.env.BENCH_REPEAT ?? 3) },
  { name: '/12', cidr: '10.0.0.0/12', addresses: 2 ** 20, repeat: Number(process.env.BENCH_REPEAT_LARGE ?? 1) },
];
const BACKENDS: Backend[] = ['mariadb', 'sqlite'];
/** The compiled CLI next to this file in dist/ (dist/bench → dist/src/cli). */
const CLI = fileURLToPath(new URL('../src/cli/manage.js', import.meta.url));
const FIRST = 10 << 24; // 10.0.0.0
const BATCH = 1000;
const COLUMNS = 'address, network_id, reserved, allocated, leased, created_at';

type Method = (scratch: Scratch, size: Size) => Promise<number>;

/** The manager call `network create` makes, timed inside the process. */
const novanet: Method = async (scratch, size) => {
  const db = openDatabase(scratch.url);
  try {
    const manager = benchManager(db);
    const started = performance.now();
    await manager.networks.create({ label: 'bench', fixedRangeV4: size.cidr, networkSize: size.addresses });
    return performance.now() - started;
  } finally {
    await db.close();
  }
};

/** The real CLI process, wall time from spawn to exit. */
const cli: Method = async (scratch, size) => {
  const dir = mkdtempSync(join(tmpdir(), 'novanet-bench-cli-'));
  try {
    const config = join(dir, 'novanet.conf');
    writeFileSync(
      config,
      [
        '[DEFAULT]',
        'network_manager = flatdhcp',
        'flat_interface = eth1',
        'host = bench',
        'my_ip = 192.0.2.1',
        `state_path = ${dir}`,
        '[database]',
        `connection = ${scratch.url}`,
        '',
      ].join('\n'),
    );
    const args = [
      CLI,
      '--config-file',
      config,
      'network',
      'create',
      '--label',
      'bench',
      '--fixed_range_v4',
      size.cidr,
      '--num_networks',
      '1',
      '--network_size',
      String(size.addresses),
    ];
    const started = performance.now();
    const run = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 300_000, stdio: ['ignore', 'pipe', 'pipe'] });
    const elapsed = performance.now() - started;
    if (run.status !== 0)
      throw new Error(
        `novanet-manage network create failed (${run.error?.message ?? `exit ${run.status ?? run.signal}`}): ${run.stderr.trim().split('\n').slice(-3).join(' / ')}`,
      );
    return elapsed;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

function* rows(size: Size, networkId: number, now: Date): Generator<[string, number, number, number, number, Date]> {
  for (let offset = 0; offset < size.addresses; offset++) {
    const n = FIRST + offset;
    const reserved = offset < 2 || offset === size.addresses - 1 ? 1 : 0;
    yield [`${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`, networkId, reserved, 0, 0, now];
  }
}

async function withMysql<T>(url: string, work: (conn: mysql.Connection, networkId: number) => Promise<T>): Promise<T> {
  const conn = await mysql.createConnection({ uri: url, timezone: 'Z' });
  try {
    const [result] = await conn.query<mysql.ResultSetHeader>(
      "INSERT INTO networks (uuid, label, cidr, deleted) VALUES (UUID(), 'floor', '10.0.0.0/8', 0)",
    );
    return await work(conn, result.insertId);
  } finally {
    await conn.end();
  }
}

function withSqlite<T>(url: string, work: (db: BetterSqlite3.Database, networkId: number) => T): T {
  const db = new BetterSqlite3(url.slice('sqlite://'.length));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    const { lastInsertRowid } = db
      .prepare("INSERT INTO networks (uuid, label, cidr, deleted) VALUES ('floor', 'floor', '10.0.0.0/8', 0)")
      .run();
    return work(db, Number(lastInsertRowid));
  } finally {
    db.close();
  }
}

/** MariaDB: multi-row INSERTs of 1,000 rows through mysql2 in one transaction. SQLite: one prepared statement in one transaction. */
const floor: Method = async (scratch, size) => {
  const now = new Date();
  if (scratch.backend === 'mariadb') {
    return withMysql(scratch.url, async (conn, networkId) => {
      const started = performance.now();
      await conn.beginTransaction();
      let batch: unknown[][] = [];
      for (const row of rows(size, networkId, now)) {
        batch.push(row);
        if (batch.length === BATCH) {
          await conn.query(`INSERT INTO fixed_ips (${COLUMNS}) VALUES ?`, [batch]);
          batch = [];
        }
      }
      if (batch.length > 0) await conn.query(`INSERT INTO fixed_ips (${COLUMNS}) VALUES ?`, [batch]);
      await conn.commit();
      return performance.now() - started;
    });
  }
  return withSqlite(scratch.url, (db, networkId) => {
    const insert = db.prepare(`INSERT INTO fixed_ips (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`);
    const started = performance.now();
    db.transaction(() => {
      for (const [address, network, reserved, allocated, leased, created] of rows(size, networkId, now)) {
        insert.run(address, network, reserved, allocated, leased, created.getTime());
      }
    })();
    return performance.now() - started;
  });
};

/** Row-at-a-time runs stop after this long; the table then shows the time extrapolated to all rows. */
const ROW_AT_A_TIME_MAX_MS = Number(process.env.BENCH_ROW_AT_A_TIME_MS ?? 60_000);
/** Whether the last row-at-a-time run hit ROW_AT_A_TIME_MAX_MS. */
let rowAtATimeExtrapolated = false;

/** Old nova (until 2014): one INSERT per row, each its own transaction. */
const rowAtATime: Method = async (scratch, size) => {
  const now = new Date();
  let done = 0;
  const started = performance.now();
  const deadline = started + ROW_AT_A_TIME_MAX_MS;
  const finish = () => {
    const elapsed = performance.now() - started;
    rowAtATimeExtrapolated = done < size.addresses;
    return elapsed * (size.addresses / done);
  };
  if (scratch.backend === 'mariadb') {
    return withMysql(scratch.url, async (conn, networkId) => {
      for (const row of rows(size, networkId, now)) {
        if (performance.now() > deadline) break;
        await conn.execute(`INSERT INTO fixed_ips (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`, row);
        done++;
      }
      return finish();
    });
  }
  return withSqlite(scratch.url, (db, networkId) => {
    const insert = db.prepare(`INSERT INTO fixed_ips (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`);
    for (const [address, network, reserved, allocated, leased, created] of rows(size, networkId, now)) {
      if (performance.now() > deadline) break;
      insert.run(address, network, reserved, allocated, leased, created.getTime());
      done++;
    }
    return finish();
  });
};

async function measure(env: BenchEnv, backend: Backend, size: Size, name: string, method: Method): Promise<number> {
  const runs: number[] = [];
  for (let run = 0; run < size.repeat; run++) {
    const scratch = await env.scratch(backend, 'create');
    try {
      runs.push(await method(scratch, size));
    } finally {
      await scratch.drop();
    }
  }
  env.log(`create ${size.name} on ${backend}, ${name}: ${runs.map(seconds).join(', ')}`);
  return median(runs);
}

export async function createNetworkBench(env: BenchEnv): Promise<string> {
  const cliBuilt = existsSync(CLI);
  const tableRows: string[][] = [];
  for (const backend of BACKENDS) {
    for (const size of SIZES) {
      // Floor first and novanet right after, on the same server state.
      const floorMs = await measure(env, backend, size, 'floor', floor);
      const novanetMs = await measure(env, backend, size, 'novanet', novanet);
      let cliCell = 'not built';
      if (cliBuilt) {
        try {
          const cliMs = await measure(env, backend, size, 'CLI', cli);
          cliCell = `${seconds(cliMs)} (${ratio(cliMs, floorMs)})`;
        } catch (error) {
          cliCell = 'failed';
          env.log(String((error as Error).message));
        }
      }
      let oldCell = '—';
      if (size.addresses <= 2 ** 16) {
        const oldMs = await measure(env, backend, { ...size, repeat: 1 }, 'row at a time', rowAtATime);
        oldCell = `${rowAtATimeExtrapolated ? '~' : ''}${seconds(oldMs)} (${ratio(oldMs, floorMs)})`;
      }
      tableRows.push([
        backend,
        `${size.name} (${size.addresses.toLocaleString('en')})`,
        seconds(floorMs),
        seconds(novanetMs),
        ratio(novanetMs, floorMs),
        cliCell,
        oldCell,
      ]);
    }
  }
  const notes = [
    `Floor: MariaDB, multi-row INSERTs of ${BATCH.toLocaleString('en')} rows through mysql2 in one transaction; SQLite, one prepared statement in one transaction (WAL).`,
    'novanet: the manager call behind `novanet-manage network create` (networks.create: validation, planning, the network row and every fixed IP, one transaction).',
    cliBuilt
      ? 'CLI: wall time of the `novanet-manage network create` process (Node start-up included).'
      : `CLI: skipped, ${CLI} does not exist yet (run \`npm run build\` once src/cli/ is in).`,
    `Old nova: one INSERT per row, autocommit; run for the /16 only, for at most ${ROW_AT_A_TIME_MAX_MS / 1000} s (~: extrapolated from the rows written by then). Ratios are against the floor; goal: novanet ≤ 1.5×.`,
  ];
  if (SIZES.some((size) => size.repeat > 1))
    notes.push(`Medians of ${SIZES.map((size) => `${size.repeat} (${size.name})`).join(', ')} runs; each run on a fresh database.`);
  return [
    '### network create: fixed_ips rows written',
    '',
    markdownTable(['backend', 'network', 'floor', 'novanet', 'novanet / floor', 'CLI process', 'old nova, row at a time'], tableRows),
    '',
    ...notes.map((note) => `- ${note}`),
  ].join('\n');
}

runIfMain(import.meta.url, createNetworkBench);
