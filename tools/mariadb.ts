/**
 * A private, throw-away MariaDB server for tests and benchmarks.
 *
 * startMariaDb() initialises a fresh data directory under os.tmpdir(), starts
 * mariadbd on a private unix socket and a free 127.0.0.1 TCP port, creates a
 * `novanet` user with ALL privileges and returns its URL.  The server never
 * outlives the node process that started it.
 *
 * createTestDatabase() carves a uniquely named database out of such a server
 * (one per test file or benchmark case).
 *
 * Used by the vitest global setup (through test/support/mariadb.ts, which adds
 * the vitest-specific parts) and by bench/; it lives outside test/ because tsc
 * compiles bench/ to dist/ and test/ is not compiled.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, chownSync, constants as fsConstants, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';

export interface MariaDbServer {
  /** mysql://novanet:PASSWORD@127.0.0.1:PORT/novanet */
  url: string;
  port: number;
  socket: string;
  pid: number;
  dataDir: string;
  /** True once stop() was called. */
  readonly stopped: boolean;
  stop(): Promise<void>;
}

export interface StartMariaDbOptions {
  /** Used in the temp dir name, handy when several servers run at once. */
  name?: string;
  /**
   * Flush the redo log at every commit (MariaDB's default), as a production server
   * does; benchmarks want this. Tests leave it off: flushing once a second is faster.
   */
  durable?: boolean;
  /** Extra mariadbd arguments, e.g. a Galera node's wsrep settings (tools/galera.ts). */
  serverArgs?: string[];
  /** The application user's password; cluster nodes share one. Random by default. */
  password?: string;
  /**
   * Asked over the root socket until it answers true before the server counts as
   * ready (default: any query succeeds); a Galera node waits to be Synced.
   */
  isReady?: (root: mysql.Connection) => Promise<boolean>;
  /**
   * The OS user mariadbd runs as when started by root (default root). Galera nodes
   * run as `mysql`: an rsync daemon started by root drops to `nobody`, which cannot
   * write a root-owned data directory.
   */
  osUser?: string;
}

const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;
const STDERR_TAIL_BYTES = 16 * 1024;
const MAX_SOCKET_PATH = 100; // sun_path is 108 bytes on Linux; keep a margin
const APP_USER = 'novanet';
const APP_DATABASE = 'novanet';
const OWNER_FILE = 'owner.pid';

// ---------------------------------------------------------------------------
// Process-exit safety net: every live server is SIGKILLed and its directories
// removed when this node process exits, whatever the reason.
// ---------------------------------------------------------------------------

interface LiveServer {
  pid: number;
  dirs: string[];
}

const liveServers = new Set<LiveServer>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const s of liveServers) {
      try {
        process.kill(s.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      for (const d of s.dirs) {
        try {
          rmSync(d, { recursive: true, force: true });
        } catch {
          // best effort
        }
      }
    }
    liveServers.clear();
  });
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

function findExecutable(names: string[]): string | undefined {
  const dirs = [
    ...(process.env.PATH ?? '').split(path.delimiter),
    '/usr/sbin',
    '/usr/bin',
    '/sbin',
    '/bin',
    '/usr/local/sbin',
    '/usr/local/bin',
  ].filter((d) => d !== '');
  for (const name of names) {
    for (const dir of dirs) {
      const candidate = path.join(dir, name);
      try {
        accessSync(candidate, fsConstants.X_OK);
        return candidate;
      } catch {
        // keep looking
      }
    }
  }
  return undefined;
}

function requireExecutable(names: string[]): string {
  const found = findExecutable(names);
  if (!found) {
    throw new Error(`cannot find ${names.join(' or ')} in PATH, /usr/sbin or /usr/bin (is mariadb-server installed? try \`make deps\`)`);
  }
  return found;
}

/** Ask the kernel for a free TCP port on 127.0.0.1. */
export async function findFreePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('could not determine a free port'));
        return;
      }
      const { port } = addr;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** True if pid names a live (non-zombie) process. */
function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // "pid (comm) S ..." -- state is the first field after the last ')'
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

function readPid(file: string): number | undefined {
  try {
    const n = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Remove data dirs left behind by earlier runs whose node process died
 * without running its exit handler (e.g. SIGKILL).  Only touches our own
 * novanet-* dirs whose owner process and server process are both gone.
 */
function sweepStaleDirs(): void {
  const tmp = os.tmpdir();
  let entries: string[];
  try {
    entries = readdirSync(tmp);
  } catch {
    return;
  }
  for (const entry of entries) {
    if (!entry.startsWith('novanet-')) continue;
    const dir = path.join(tmp, entry);
    const owner = readPid(path.join(dir, OWNER_FILE));
    if (owner === undefined || owner === process.pid || processAlive(owner)) continue;
    const server = readPid(path.join(dir, 'mysqld.pid'));
    if (server !== undefined && processAlive(server)) {
      // A server run as another OS user (Galera nodes) lost --pdeathsig when it changed
      // user; stop it if it is really the one started on this dir, remove the dir next time.
      if (startedOn(server, dir)) killQuietly(server);
      continue;
    }
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // not ours to worry about
    }
  }
}

function startedOn(pid: number, dir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`--datadir=${path.join(dir, 'data')}`);
  } catch {
    return false;
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function tail(text: string, maxLines = 40): string {
  const lines = text.trimEnd().split('\n');
  return lines.slice(-maxLines).join('\n');
}

function sanitizeName(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9_]+/g, '_');
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

interface ConnectionParts {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string | undefined;
}

function parseMysqlUrl(url: string): ConnectionParts {
  const u = new URL(url);
  if (u.protocol !== 'mysql:' && u.protocol !== 'mariadb:') {
    throw new Error(`not a mysql:// URL: ${url}`);
  }
  const db = decodeURIComponent(u.pathname.replace(/^\//, ''));
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 3306,
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: db === '' ? undefined : db,
  };
}

/** Hands a directory to an OS user, so mariadbd running as that user can write its pid and socket files. */
function chownTo(dir: string, user: string): void {
  const id = (flag: string): number => {
    const out = spawnSync('id', [flag, user], { encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`no OS user ${user}: ${out.stderr.trim()}`);
    return Number(out.stdout.trim());
  };
  chownSync(dir, id('-u'), id('-g'));
}

function quoteIdent(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

// ---------------------------------------------------------------------------
// startMariaDb
// ---------------------------------------------------------------------------

export async function startMariaDb(options: StartMariaDbOptions = {}): Promise<MariaDbServer> {
  const installDb = requireExecutable(['mariadb-install-db', 'mysql_install_db']);
  const mariadbd = requireExecutable(['mariadbd', 'mysqld']);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const userArgs = isRoot ? [`--user=${options.osUser ?? 'root'}`] : [];
  const label = sanitizeName(options.name ?? 'mariadb').slice(0, 20);

  installExitHook();
  sweepStaleDirs();

  const baseDir = await mkdtemp(path.join(os.tmpdir(), `novanet-${label}-`));
  writeFileSync(path.join(baseDir, OWNER_FILE), `${process.pid}\n`);
  const dirs = [baseDir];
  const live: LiveServer = { pid: -1, dirs };
  const cleanupDirs = (): void => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  };

  try {
    const dataDir = path.join(baseDir, 'data');
    // unix socket paths are limited to ~108 bytes: fall back to a short dir.
    let socketDir = baseDir;
    if (path.join(socketDir, 'mysqld.sock').length > MAX_SOCKET_PATH) {
      socketDir = mkdtempSync('/tmp/nnmdb-');
      dirs.push(socketDir);
    }
    const socket = path.join(socketDir, 'mysqld.sock');
    if (isRoot && options.osUser) for (const dir of dirs) chownTo(dir, options.osUser);
    const pidFile = path.join(baseDir, 'mysqld.pid');

    // 1. initialise the data directory
    const installArgs = [
      '--no-defaults',
      `--datadir=${dataDir}`,
      ...userArgs,
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
    ];
    const inst = spawnSync(installDb, installArgs, { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
    if (inst.error || inst.status !== 0) {
      throw new Error(
        `${path.basename(installDb)} failed (${inst.error?.message ?? `exit ${inst.status ?? inst.signal}`}):\n` +
          tail(`${inst.stdout ?? ''}\n${inst.stderr ?? ''}`),
      );
    }

    // 2. start the server; retry with a new port if someone grabbed ours
    let attempt = 0;
    for (;;) {
      attempt += 1;
      const port = await findFreePort();
      const serverArgs = [
        '--no-defaults',
        ...userArgs,
        `--datadir=${dataDir}`,
        `--socket=${socket}`,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        `--pid-file=${pidFile}`,
        '--skip-name-resolve',
        `--innodb-flush-log-at-trx-commit=${options.durable ? 1 : 2}`,
        '--skip-log-bin',
        '--innodb-buffer-pool-size=256M',
        '--max-connections=500',
        '--character-set-server=utf8mb4',
        '--collation-server=utf8mb4_general_ci',
        '--skip-performance-schema',
        '--skip-external-locking',
        `--tmpdir=${os.tmpdir()}`,
        ...(options.serverArgs ?? []),
      ];
      // Where available, have the kernel SIGKILL the server if this process
      // dies without running its exit handlers (e.g. it was SIGKILLed).
      // setpriv exec()s, so the PID we get is mariadbd's own.
      const setpriv = findExecutable(['setpriv']);
      const [cmd, args]: [string, string[]] = setpriv
        ? [setpriv, ['--pdeathsig', 'KILL', '--', mariadbd, ...serverArgs]]
        : [mariadbd, serverArgs];
      const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (chunk: string) => {
        stderr += chunk;
        if (stderr.length > STDERR_TAIL_BYTES * 2) stderr = stderr.slice(-STDERR_TAIL_BYTES);
      });
      const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
      if (child.pid === undefined) {
        throw new Error(`failed to spawn ${mariadbd}: ${(await spawnError).message}`);
      }
      const pid = child.pid;
      live.pid = pid;
      liveServers.add(live);

      let exited = false;
      child.once('exit', () => {
        exited = true;
      });

      // 3. wait until it accepts connections over the socket
      const deadline = Date.now() + READY_TIMEOUT_MS;
      let lastError: unknown;
      let ready = false;
      while (!exited && Date.now() < deadline) {
        try {
          const conn = await mysql.createConnection({ socketPath: socket, user: 'root', password: '', connectTimeout: 2000 });
          try {
            await conn.query('SELECT 1');
            ready = options.isReady ? await options.isReady(conn) : true;
          } finally {
            await conn.end();
          }
          if (ready) break;
          await sleep(100);
        } catch (err) {
          lastError = err;
          await sleep(100);
        }
      }

      if (!ready) {
        if (exited) {
          liveServers.delete(live);
          const portClash = /Address already in use|Bind on TCP\/IP port/i.test(stderr);
          if (portClash && attempt < 3) continue;
          throw new Error(
            `mariadbd exited early (code ${child.exitCode ?? child.signalCode}) before accepting connections; stderr tail:\n${tail(stderr)}`,
          );
        }
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
        await waitForExit(child, 5_000);
        liveServers.delete(live);
        throw new Error(
          `mariadbd did not accept connections within ${READY_TIMEOUT_MS / 1000}s (last error: ${String(lastError)}); stderr tail:\n${tail(stderr)}`,
        );
      }

      // 4. application user + database
      const password = options.password ?? randomBytes(12).toString('hex');
      const admin = await mysql.createConnection({ socketPath: socket, user: 'root', password: '' });
      try {
        for (const host of ['127.0.0.1', 'localhost']) {
          await admin.query(`CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?`, [APP_USER, host, password]);
          await admin.query(`GRANT ALL PRIVILEGES ON *.* TO ?@? WITH GRANT OPTION`, [APP_USER, host]);
        }
        await admin.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdent(APP_DATABASE)} CHARACTER SET utf8mb4`);
        await admin.query('FLUSH PRIVILEGES');
      } finally {
        await admin.end();
      }

      let stopping: Promise<void> | undefined;
      const stop = (): Promise<void> => {
        stopping ??= (async () => {
          if (!exited) {
            try {
              process.kill(pid, 'SIGTERM');
            } catch {
              // already gone
            }
            if (!(await waitForExit(child, STOP_TIMEOUT_MS))) {
              try {
                process.kill(pid, 'SIGKILL');
              } catch {
                // already gone
              }
              await waitForExit(child, 5_000);
            }
          }
          liveServers.delete(live);
          for (const d of dirs) await rm(d, { recursive: true, force: true });
        })();
        return stopping;
      };

      return {
        url: `mysql://${APP_USER}:${password}@127.0.0.1:${port}/${APP_DATABASE}`,
        port,
        socket,
        pid,
        dataDir,
        get stopped() {
          return stopping !== undefined;
        },
        stop,
      };
    }
  } catch (err) {
    if (live.pid > 0 && liveServers.has(live)) {
      try {
        process.kill(live.pid, 'SIGKILL');
      } catch {
        // gone
      }
      liveServers.delete(live);
      await sleep(200);
    }
    cleanupDirs();
    throw err;
  }
}

// ---------------------------------------------------------------------------
// Per-test-file databases
// ---------------------------------------------------------------------------

export interface TestDatabase {
  /** URL of the new database (same server and credentials as serverUrl). */
  url: string;
  /** The database name. */
  name: string;
  drop(): Promise<void>;
}

async function adminConnection(serverUrl: string): Promise<mysql.Connection> {
  const p = parseMysqlUrl(serverUrl);
  return mysql.createConnection({ host: p.host, port: p.port, user: p.user, password: p.password });
}

/**
 * Create a uniquely named database (prefix + random suffix, [a-z0-9_] only,
 * at most 64 characters) on the server at serverUrl.
 */
export async function createTestDatabase(serverUrl: string, prefix: string): Promise<TestDatabase> {
  const suffix = `${process.pid.toString(36)}_${randomBytes(5).toString('hex')}`;
  const cleanPrefix = sanitizeName(prefix).replace(/^_+|_+$/g, '') || 'test';
  const name = `${cleanPrefix.slice(0, 64 - suffix.length - 1)}_${suffix}`;

  const conn = await adminConnection(serverUrl);
  try {
    await conn.query(`CREATE DATABASE ${quoteIdent(name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
  } finally {
    await conn.end();
  }

  const u = new URL(serverUrl);
  u.pathname = `/${name}`;

  let dropped = false;
  return {
    url: u.toString(),
    name,
    async drop(): Promise<void> {
      if (dropped) return;
      dropped = true;
      const c = await adminConnection(serverUrl);
      try {
        await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)}`);
      } finally {
        await c.end();
      }
    },
  };
}
