import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { Invalid } from '../errors.js';
import { quote } from '../fields.js';
import { isConnectionLost } from './errors.js';

export type Dialect = 'sqlite' | 'mysql';

/** An open database: knex for the query modules, and which SQL dialect it speaks. */
export interface Database {
  knex: Knex;
  dialect: Dialect;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Connections per process (default 4): callers queue in the service rather than in the server (docs/decisions/allocation.md). */
  maxPoolSize?: number;
  /**
   * Where the driver's own warnings go (a connection that failed and is retried, a
   * deprecation). Nowhere by default: a library never writes to the terminal behind the
   * CLI's one error line, and the service passes its JSON log.
   */
  log?: (event: string, fields?: Record<string, unknown>) => void;
}

interface ParsedUrl {
  dialect: Dialect;
  knexConfig: Knex.Config;
  /** MySQL servers in order of preference (one unless a Galera host list was given). */
  hosts?: Endpoint[];
}

export interface Endpoint {
  host: string;
  port: number;
}

/** `HOST[:PORT],HOST[:PORT],...` from a URL's authority; WHATWG URLs take one host only. */
function parseHosts(list: string, url: string): Endpoint[] {
  return list.split(',').map((entry) => {
    const found = /^([^:]*)(?::(\d+))?$/.exec(entry);
    if (!found) throw new Invalid(`[database] connection has a bad host ${quote(entry)}: ${quote(url)}`);
    return { host: found[1] || '127.0.0.1', port: found[2] ? Number(found[2]) : 3306 };
  });
}

/** Reads run outside a transaction may simply run again elsewhere; writes and transactions are withRetry's (retry.ts). */
function isLoneRead(connection: unknown, query: unknown): boolean {
  if ((connection as { __knexTxId?: unknown }).__knexTxId !== undefined) return false;
  const sql = typeof query === 'string' ? query : (query as { sql?: unknown }).sql;
  return typeof sql === 'string' && /^\s*select\b/i.test(sql);
}

const READ_ATTEMPTS = 3;
/** A node that accepts TCP but does not greet (stopping, overloaded) is skipped after this; mysql2 waits 10 s. */
const CONNECT_TIMEOUT_MS = 3000;

// knex's own mysql2 client; knex takes a client class in place of a dialect name.
const MySql2Client = createRequire(import.meta.url)('knex/lib/dialects/mysql2/index.js') as typeof knexFactory.Client;

/**
 * How long a node that answered "not serving" (stopping, or not yet prepared: it still
 * completes handshakes) goes to the back of the list for new connections.
 */
const SHUN_MS = 5_000;

/**
 * A mysql2 client for a host list (Galera): each new pooled connection goes to the first
 * host that completes a handshake, so a pool drifts back to the preferred node once it
 * is up again. Connections already open stay where they are until they fail. A
 * connection whose node answered as not serving (1047, 1053) is not handed out again,
 * and its node is tried last for a while: a node that is leaving still greets, and
 * every retry would otherwise find it again.
 */
function failoverClient(settings: object, hosts: Endpoint[]): typeof knexFactory.Client {
  const shunnedUntil = new Map<string, number>();
  const unfit = new WeakSet<object>();
  const key = (endpoint: { host?: unknown; port?: unknown }) => `${String(endpoint.host)}:${String(endpoint.port)}`;
  return class FailoverMySql2Client extends MySql2Client {
    override async acquireRawConnection(): Promise<unknown> {
      let lastError: unknown;
      const now = Date.now();
      const shunned = (endpoint: Endpoint) => (shunnedUntil.get(key(endpoint)) ?? 0) > now;
      for (const endpoint of [...hosts.filter((one) => !shunned(one)), ...hosts.filter(shunned)]) {
        // Read synchronously by the driver's createConnection, so no other acquire interleaves.
        // From `settings`: knex hides the password of its own copy from spreading.
        this.connectionSettings = { ...settings, ...endpoint, connectTimeout: CONNECT_TIMEOUT_MS };
        try {
          return await super.acquireRawConnection();
        } catch (error) {
          if (!isConnectionLost(error)) throw error;
          lastError = error;
        }
      }
      throw lastError;
    }

    /**
     * A lone read that lost its node runs again on a connection of its own: the caller
     * still holds the dead one, so waiting for the pool could wait for ourselves.
     */
    override async query(connection: unknown, query: unknown): Promise<unknown> {
      try {
        return await super.query(connection, query);
      } catch (error) {
        if (!isConnectionLost(error)) throw error;
        this.shun(connection);
        if (!isLoneRead(connection, query)) throw error;
        return this.readElsewhere(query, READ_ATTEMPTS - 1);
      }
    }

    /** Checked by the pool (awaited) before it hands a connection out. */
    override async validateConnection(connection: unknown): Promise<boolean> {
      return (await super.validateConnection(connection)) && !unfit.has(connection as object);
    }

    /** The connection is not handed out again, and its node is tried last for SHUN_MS. */
    private shun(connection: unknown): void {
      if (typeof connection !== 'object' || connection === null) return;
      unfit.add(connection);
      const config = (connection as { config?: { host?: unknown; port?: unknown } }).config;
      if (config) shunnedUntil.set(key(config), Date.now() + SHUN_MS);
    }

    /** Without the pool's session settings (isolation, sql_mode): one autocommit SELECT does not need them. */
    private async readElsewhere(query: unknown, attemptsLeft: number): Promise<unknown> {
      const fresh: unknown = await this.acquireRawConnection();
      try {
        return await super.query(fresh, query);
      } catch (error) {
        if (attemptsLeft <= 1 || !isConnectionLost(error)) throw error;
      } finally {
        await this.destroyRawConnection(fresh);
      }
      return this.readElsewhere(query, attemptsLeft - 1);
    }
  };
}

/**
 * Accepts `sqlite:///ABSOLUTE/PATH` (nova's spelling), `sqlite://:memory:`, and
 * `mysql://`, `mysql+pymysql://` or `mariadb://` URLs with an optional
 * `?unix_socket=` parameter or, for a Galera cluster, a host list
 * (`mysql://U:P@node2:3306,node1:3306/db`, preferred node first).
 */
export function parseConnectionUrl(url: string, options: OpenOptions = {}): ParsedUrl {
  const trimmed = url.trim();
  if (trimmed.startsWith('sqlite://')) {
    const rest = trimmed.slice('sqlite://'.length);
    // `sqlite:///$state_path/x` with an absolute state_path gives `//var/...`: one slash.
    const filename = rest === ':memory:' || rest === '/:memory:' ? ':memory:' : rest.replace(/^\/+/, '/');
    if (filename !== ':memory:' && !filename.startsWith('/')) {
      throw new Invalid(`[database] connection: SQLite path must be absolute (sqlite:///path/to/file), got ${quote(url)}`);
    }
    return {
      dialect: 'sqlite',
      knexConfig: {
        client: 'better-sqlite3',
        connection: { filename },
        useNullAsDefault: true,
        // One connection: SQLite has one writer, and better-sqlite3 is synchronous anyway.
        pool: {
          min: 1,
          max: 1,
          afterCreate(raw: { pragma(sql: string): unknown }, done: (error: Error | null, connection: unknown) => void) {
            raw.pragma('journal_mode = WAL');
            raw.pragma('synchronous = NORMAL');
            raw.pragma('busy_timeout = 10000');
            raw.pragma('foreign_keys = ON');
            done(null, raw);
          },
        },
      },
    };
  }
  const match = /^(mysql|mysql\+pymysql|mysql\+mysqldb|mariadb):\/\//.exec(trimmed);
  if (!match) {
    throw new Invalid(`[database] connection must start with sqlite://, mysql:// or mysql+pymysql://, got ${quote(url)}`);
  }
  // A Galera host list `h1:p1,h2:p2` is swapped for one placeholder host before URL parsing.
  const rest = trimmed.slice(match[0].length);
  const authority = /^(?:[^@/]*@)?([^/?]*)/.exec(rest)![1]!;
  const hosts = authority.includes(',') ? parseHosts(authority, url) : undefined;
  let parsed: URL;
  try {
    parsed = new URL(`mysql://${hosts ? rest.replace(authority, 'cluster') : rest}`);
  } catch {
    throw new Invalid(`[database] connection is not a valid URL: ${quote(url)}`);
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (database === '') throw new Invalid(`[database] connection names no database: ${quote(url)}`);
  const socketPath = parsed.searchParams.get('unix_socket') ?? undefined;
  if (hosts && socketPath) throw new Invalid(`[database] connection: a host list and unix_socket exclude each other: ${quote(url)}`);
  const settings = {
    host: parsed.hostname || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : 3306,
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    database,
    ...(socketPath ? { socketPath } : {}),
    timezone: 'Z',
    supportBigNumbers: true,
    charset: 'utf8mb4',
  };
  return {
    dialect: 'mysql',
    hosts: hosts ?? [{ host: settings.host, port: settings.port }],
    knexConfig: {
      client: hosts ? failoverClient(settings, hosts) : 'mysql2',
      connection: settings,
      pool: {
        min: 0,
        max: options.maxPoolSize ?? 4,
        // READ COMMITTED: allocation's conditional UPDATE then skips rows another
        // transaction just took instead of waiting on gap locks.
        afterCreate(
          raw: { query(sql: string, cb: (error: Error | null) => void): void },
          done: (error: Error | null, connection: unknown) => void,
        ) {
          raw.query("SET SESSION tx_isolation = 'READ-COMMITTED', SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'", (error) =>
            done(error, raw),
          );
        },
      },
      acquireConnectionTimeout: 60000,
    },
  };
}

/** Opens the database named by `url`, creating the SQLite file's directory if needed. */
export function openDatabase(url: string, options: OpenOptions = {}): Database {
  const { dialect, knexConfig } = parseConnectionUrl(url, options);
  if (dialect === 'sqlite') {
    const filename = (knexConfig.connection as { filename: string }).filename;
    if (filename !== ':memory:') mkdirSync(dirname(filename), { recursive: true });
  }
  const report = (event: string) => (message: unknown) => options.log?.(event, { message: String(message) });
  const knex = knexFactory({
    ...knexConfig,
    log: { warn: report('db.warning'), error: report('db.error'), deprecate: report('db.deprecation'), debug: () => undefined },
  });
  return { knex, dialect, close: () => knex.destroy() };
}

/** A round trip to the server, for health checks; throws when it cannot be reached. */
export async function ping(db: Database): Promise<void> {
  await db.knex.raw('SELECT 1');
}
