/**
 * What every benchmark shares: a MariaDB server (started privately, or the one named
 * by NOVANET_BENCH_MYSQL_URL), scratch databases on it and in SQLite files, a manager
 * wired to a host layer that does nothing, and markdown tables.
 */
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/load.js';
import { openDatabase, type Database } from '../../src/db/connection.js';
import { syncSchema } from '../../src/db/migrate.js';
import { createManager } from '../../src/managers/registry.js';
import type { NetworkManager } from '../../src/managers/types.js';
import { createTestDatabase, startMariaDb } from '../../tools/mariadb.js';

export const MYSQL_URL_ENV = 'NOVANET_BENCH_MYSQL_URL';

export type Backend = 'mariadb' | 'sqlite';

/** A migrated, empty database that exists until drop(). */
export interface Scratch {
  backend: Backend;
  url: string;
  drop(): Promise<void>;
}

export interface BenchEnv {
  /** Server URL (any database on it); scratch databases are carved out of it. */
  mysqlUrl: string;
  /** A fresh database with novanet's schema. */
  scratch(backend: Backend, prefix: string): Promise<Scratch>;
  log(message: string): void;
}

/** A benchmark: runs against the environment and returns its markdown report. */
export type Bench = (env: BenchEnv) => Promise<string>;

/** Runs `work` with a MariaDB server that is stopped afterwards if this process started it. */
export async function withBenchEnv<T>(work: (env: BenchEnv) => Promise<T>): Promise<T> {
  const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);
  const external = process.env[MYSQL_URL_ENV];
  const server = external ? undefined : await startMariaDb({ name: 'bench', durable: true });
  const mysqlUrl = external ?? server!.url;
  log(external ? `using MariaDB at ${MYSQL_URL_ENV}` : `started MariaDB (pid ${server!.pid})`);
  try {
    return await work({ mysqlUrl, scratch: (backend, prefix) => scratch(mysqlUrl, backend, prefix), log });
  } finally {
    await server?.stop();
  }
}

async function scratch(mysqlUrl: string, backend: Backend, prefix: string): Promise<Scratch> {
  if (backend === 'mariadb') {
    const created = await createTestDatabase(mysqlUrl, `bench_${prefix}`);
    await migrate(created.url);
    return { backend, url: created.url, drop: () => created.drop() };
  }
  const dir = mkdtempSync(join(tmpdir(), 'novanet-bench-'));
  const url = `sqlite://${join(dir, 'novanet.sqlite')}`;
  await migrate(url);
  return { backend, url, drop: async () => rmSync(dir, { recursive: true, force: true }) };
}

async function migrate(url: string): Promise<void> {
  const db = openDatabase(url);
  try {
    await syncSchema(db);
  } finally {
    await db.close();
  }
}

/** A manager as the service or the CLI builds it, with a host layer that does nothing. */
export function benchManager(db: Database, mode: 'flatdhcp' | 'vlan' = 'flatdhcp'): NetworkManager {
  const env = {
    NOVANET_NETWORK_MANAGER: mode,
    NOVANET_FLAT_INTERFACE: 'eth1',
    NOVANET_HOST: 'bench',
    NOVANET_MY_IP: '192.0.2.1',
    NOVANET_STATE_PATH: tmpdir(),
  };
  const config = loadConfig({ file: '/dev/null', env, warn: () => undefined });
  return createManager({ db, config, host: { apply: async () => undefined }, log: () => undefined });
}

/** Runs a single benchmark when its file is the process's entry point. */
export function runIfMain(moduleUrl: string, bench: Bench): void {
  const entry = process.argv[1];
  if (entry === undefined || realpathSync(entry) !== realpathSync(fileURLToPath(moduleUrl))) return;
  withBenchEnv(bench).then(
    (report) => {
      if (report !== '') process.stdout.write(`${report}\n`);
    },
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}

// ---- figures -----------------------------------------------------------------

export function markdownTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`;
  return [line(headers), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}

export function seconds(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 1000).toFixed(2)} s`;
}

export function millis(ms: number): string {
  return ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`;
}

export function ratio(value: number, base: number): string {
  return `${(value / base).toFixed(2)}×`;
}

/** The p-th percentile (0..100) of values sorted ascending, nearest rank. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function median(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}
