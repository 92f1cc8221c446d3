/**
 * What every benchmark shares: a MariaDB server (started privately on first use, or
 * the one named by NOVANET_BENCH_MYSQL_URL), scratch databases on it and in SQLite
 * files, a manager wired to a host layer (one that does nothing by default), and
 * markdown tables.
 */
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/options.js';
import { type Database, openDatabase } from '../../src/db/connection.js';
import { syncSchema } from '../../src/db/migrate.js';
import type { HostLayer } from '../../src/host/layer.js';
import type { NetworkManager } from '../../src/managers/manager.js';
import { createManager } from '../../src/managers/registry.js';
import { createTestDatabase, type MariaDbServer, startMariaDb } from '../../tools/mariadb.js';

export const MYSQL_URL_ENV = 'NOVANET_BENCH_MYSQL_URL';

export type Backend = 'mariadb' | 'sqlite';

/** A migrated, empty database that exists until drop(). */
export interface Scratch {
  backend: Backend;
  url: string;
  /** The same database over the server's unix socket, when this process started the server (reachable from any network namespace). */
  socketUrl?: string;
  /** The server's process, when this process started it (for its CPU time). */
  serverPid?: number;
  drop(): Promise<void>;
}

export interface BenchEnv {
  /** A fresh database with novanet's schema (MariaDB's server starts on the first such call). */
  scratch(backend: Backend, prefix: string): Promise<Scratch>;
  log(message: string): void;
}

/** A benchmark: runs against the environment and returns its markdown report. */
export type Bench = (env: BenchEnv) => Promise<string>;

/**
 * Runs `work` with a MariaDB server, started only when a benchmark first asks for a
 * MariaDB database (those on SQLite alone need no server), and stopped afterwards if
 * this process started it.
 */
export async function withBenchEnv<T>(work: (env: BenchEnv) => Promise<T>): Promise<T> {
  const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);
  const external = process.env[MYSQL_URL_ENV];
  let server: MariaDbServer | undefined;
  const mysqlUrl = async (): Promise<ServerAddress> => {
    if (external) return { url: external };
    if (!server) {
      server = await startMariaDb({ name: 'bench', durable: true });
      log(`started MariaDB (pid ${server.pid})`);
    }
    return { url: server.url, socket: server.socket, pid: server.pid };
  };
  if (external) log(`using MariaDB at ${MYSQL_URL_ENV}`);
  try {
    return await work({ scratch: (backend, prefix) => scratch(mysqlUrl, backend, prefix), log });
  } finally {
    await server?.stop();
  }
}

/** A MariaDB server to make databases on; socket and pid when this process started it. */
interface ServerAddress {
  url: string;
  socket?: string;
  pid?: number;
}

async function scratch(mysqlUrl: () => Promise<ServerAddress>, backend: Backend, prefix: string): Promise<Scratch> {
  if (backend === 'mariadb') {
    const server = await mysqlUrl();
    const created = await createTestDatabase(server.url, `bench_${prefix}`);
    await migrate(created.url);
    const socketUrl = server.socket === undefined ? undefined : viaSocket(created.url, server.socket);
    return {
      backend,
      url: created.url,
      ...(socketUrl ? { socketUrl } : {}),
      ...(server.pid === undefined ? {} : { serverPid: server.pid }),
      drop: () => created.drop(),
    };
  }
  const dir = mkdtempSync(join(tmpdir(), 'novanet-bench-'));
  const url = `sqlite://${join(dir, 'novanet.sqlite')}`;
  await migrate(url);
  return { backend, url, drop: async () => rmSync(dir, { recursive: true, force: true }) };
}

/** `url` with localhost and `?unix_socket=` instead of its TCP address. */
function viaSocket(url: string, socket: string): string {
  const parsed = new URL(url);
  parsed.hostname = 'localhost';
  parsed.port = '';
  parsed.searchParams.set('unix_socket', socket);
  return parsed.toString();
}

export async function migrate(url: string): Promise<void> {
  const db = openDatabase(url);
  try {
    await syncSchema(db);
  } finally {
    await db.close();
  }
}

/** The configuration of a bench service: `overrides` are NOVANET_* variables. */
export function benchConfig(mode: 'flatdhcp' | 'vlan' = 'flatdhcp', overrides: Record<string, string> = {}): Config {
  const env = {
    NOVANET_NETWORK_MANAGER: mode,
    NOVANET_FLAT_INTERFACE: 'eth1',
    NOVANET_HOST: 'bench',
    NOVANET_MY_IP: '192.0.2.1',
    NOVANET_STATE_PATH: tmpdir(),
    ...overrides,
  };
  return loadConfig({ file: '/dev/null', env, warn: () => undefined });
}

/** A host layer that does nothing: the kernel is not part of the measurement. */
const NO_HOST: HostLayer = { apply: async () => undefined };

/** A manager as the service or the CLI builds it; by default with a host layer that does nothing. */
export function benchManager(
  db: Database,
  mode: 'flatdhcp' | 'vlan' = 'flatdhcp',
  options: { config?: Config; host?: HostLayer } = {},
): NetworkManager {
  const config = options.config ?? benchConfig(mode);
  return createManager({ db, config, host: options.host ?? NO_HOST, log: () => undefined });
}

/** The bench's instance number `index` as a UUID (the API takes any, nova's compute makes them). */
export function instanceUuid(index: number): string {
  return `00000000-0000-4000-8000-${index.toString(16).padStart(12, '0')}`;
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
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
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
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}
