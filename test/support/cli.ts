/**
 * Shared by the CLI tests: they run the built programs (dist/) as child processes,
 * configured through a temporary config file, against a database of either backend.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { Io } from '../../src/cli/run.js';
import { type Database, openDatabase } from '../../src/db/connection.js';
import { syncSchema } from '../../src/db/migrate.js';
import { labEnv } from '../../tools/lab.js';
import type { Backend } from './databases.js';
import { createTestDatabase, mysqlServerUrl } from './mariadb.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export const BIN = {
  manage: join(ROOT, 'dist/src/cli/manage.js'),
  dhcpbridge: join(ROOT, 'dist/src/cli/dhcpbridge.js'),
  network: join(ROOT, 'dist/src/cli/network.js'),
} as const;

export type Program = keyof typeof BIN;

// Fail the whole file at once, with the fix, rather than every test with ENOENT noise.
const missing = Object.values(BIN).filter((path) => !existsSync(path));
if (missing.length > 0) {
  throw new Error(
    `the CLI tests run the built programs (dist/), and these are missing: ${missing.join(', ')}; run \`npm run build\` first (make test does it)`,
  );
}

/** Long enough for a /20 on a loaded machine, short enough that a hang fails the test. */
export const SPAWN_TIMEOUT_MS = 20_000;

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The environment of a child: ours without NOVANET_* nor NODE_OPTIONS (tools/lab.ts), plus `extra`. */
export const childEnv = labEnv;

export interface SpawnOptions {
  env?: Record<string, string>;
}

/** Starts a program with stdin closed; the caller owns the child. */
export function start(program: Program, args: string[], options: SpawnOptions = {}) {
  return spawn(process.execPath, [BIN[program], ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: childEnv(options.env),
    timeout: SPAWN_TIMEOUT_MS,
    killSignal: 'SIGKILL',
  });
}

/** Runs a program to completion and collects its output. */
export function run(program: Program, args: string[], options: SpawnOptions = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = start(program, args, options);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (status, signal) => resolvePromise({ status, signal, stdout, stderr }));
  });
}

/**
 * An Io for a verb run in this process (the CLI's own entry points take one), keeping
 * what it writes in `written`.
 */
export function recordingIo(options: { interactive: boolean; env: NodeJS.ProcessEnv }): {
  io: Io;
  written: { stdout: string; stderr: string };
} {
  const written = { stdout: '', stderr: '' };
  const io: Io = {
    stdout: (text) => {
      written.stdout += text;
    },
    stderr: (text) => {
      written.stderr += text;
    },
    ...options,
  };
  return { io, written };
}

/** A command that worked: status 0, nothing on stderr. */
export function expectOk(result: RunResult): void {
  expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
}

/**
 * The CLI's error contract: exactly one `error: ...` line on stderr, no stack trace,
 * nothing on stdout, the given exit status. Returns the message after `error: `.
 */
export function expectError(result: RunResult, message: RegExp | string, status = 2): string {
  expect(result.stderr, 'no stack trace').not.toMatch(/^\s+at /m);
  expect(result.stderr, 'exactly one line on stderr').toMatch(/^error: [^\n]+\n$/);
  expect(result.stdout, 'nothing on stdout').toBe('');
  expect(result.signal).toBeNull();
  expect(result.status).toBe(status);
  const text = result.stderr.slice('error: '.length, -1);
  if (typeof message === 'string') expect(text).toBe(message);
  else expect(text).toMatch(message);
  return text;
}

/** The tables a CLI command may touch, every row, in a stable order. */
export const SNAPSHOT_TABLES = ['networks', 'fixed_ips', 'virtual_interfaces'] as const;

export type Snapshot = Record<(typeof SNAPSHOT_TABLES)[number], Record<string, unknown>[]>;

export async function snapshot(db: Database): Promise<Snapshot> {
  const result = {} as Snapshot;
  for (const table of SNAPSHOT_TABLES) {
    result[table] = (await db.knex(table).select('*').orderBy('id')) as Record<string, unknown>[];
  }
  return result;
}

export interface CliDatabase {
  backend: Backend;
  url: string;
  /** The test's own connection (snapshots, in-process managers). */
  db: Database;
  /** Directory of the config files (and of the SQLite file). */
  dir: string;
  /**
   * Writes a config file pointing at this database and returns its path. `options`
   * are [DEFAULT] lines; `network_manager` defaults to flatdhcp.
   */
  config(name: string, options?: Record<string, string>): string;
  close(): Promise<void>;
}

/**
 * A new, empty database (no schema unless `sync`) with a temp directory for config
 * files. SQLite lives in that directory; MariaDB gets a database of its own on the
 * test run's server.
 */
export async function cliDatabase(backend: Backend, options: { sync?: boolean } = {}): Promise<CliDatabase> {
  const dir = mkdtempSync(join(tmpdir(), 'novanet-cli-'));
  let url: string;
  let drop: () => Promise<void> = async () => undefined;
  if (backend === 'sqlite') {
    url = `sqlite://${join(dir, 'novanet.sqlite')}`;
  } else {
    const created = await createTestDatabase(mysqlServerUrl(), 'novanet_cli');
    url = created.url;
    drop = () => created.drop();
  }
  const db = openDatabase(url);
  if (options.sync) await syncSchema(db);
  return {
    backend,
    url,
    db,
    dir,
    config(name, overrides = {}) {
      const values: Record<string, string> = {
        network_manager: 'flatdhcp',
        host: 'nethost',
        my_ip: '192.0.2.10',
        state_path: dir,
        // A service started by a CLI test must never change this machine's network:
        // any privileged command it might run fails on this helper instead.
        root_helper: '/nonexistent/novanet-test-no-root',
        // Wakes on loopback, on a free port.
        wake_address: '127.0.0.1',
        wake_port: '0',
        ...overrides,
      };
      // Port 0: a service started by a test listens on a free port, never on 8774.
      const lines = [
        '[DEFAULT]',
        ...Object.entries(values).map(([key, value]) => `${key} = ${value}`),
        '',
        '[database]',
        `connection = ${url}`,
        '',
        '[api]',
        'port = 0',
        '',
      ];
      const path = join(dir, name);
      writeFileSync(path, lines.join('\n'));
      return path;
    },
    async close() {
      await db.close();
      await drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Rows of a nova-manage table (header first), split on the two-space column gaps. */
export function parseTable(text: string): string[][] {
  return text
    .trimEnd()
    .split('\n')
    .map((line) => line.split(/ {2,}/));
}
