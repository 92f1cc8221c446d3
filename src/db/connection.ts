import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import knexFactory, { Knex } from 'knex';
import { Invalid } from '../errors.js';
import { quote } from '../ipam/address.js';

export type Dialect = 'sqlite' | 'mysql';

/** An open database: knex for the query modules, and which SQL dialect it speaks. */
export interface Database {
  knex: Knex;
  dialect: Dialect;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Connections per process (default 4): callers queue in the service rather than in the server (docs/decisions.md, Allocation). */
  maxPoolSize?: number;
}

interface ParsedUrl {
  dialect: Dialect;
  knexConfig: Knex.Config;
}

/**
 * Accepts `sqlite:///ABSOLUTE/PATH` (nova's spelling), `sqlite://:memory:`, and
 * `mysql://`, `mysql+pymysql://` or `mariadb://` URLs with an optional
 * `?unix_socket=` parameter.
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
  let parsed: URL;
  try {
    parsed = new URL(`mysql://${trimmed.slice(match[0].length)}`);
  } catch {
    throw new Invalid(`[database] connection is not a valid URL: ${quote(url)}`);
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (database === '') throw new Invalid(`[database] connection names no database: ${quote(url)}`);
  const socketPath = parsed.searchParams.get('unix_socket') ?? undefined;
  return {
    dialect: 'mysql',
    knexConfig: {
      client: 'mysql2',
      connection: {
        host: parsed.hostname || '127.0.0.1',
        port: parsed.port ? Number(parsed.port) : 3306,
        user: decodeURIComponent(parsed.username),
        password: decodeURIComponent(parsed.password),
        database,
        ...(socketPath ? { socketPath } : {}),
        timezone: 'Z',
        supportBigNumbers: true,
        charset: 'utf8mb4',
      },
      pool: {
        min: 0,
        max: options.maxPoolSize ?? 4,
        // READ COMMITTED: allocation's conditional UPDATE then skips rows another
        // transaction just took instead of waiting on gap locks (measured-limits.md).
        afterCreate(raw: { query(sql: string, cb: (error: Error | null) => void): void }, done: (error: Error | null, connection: unknown) => void) {
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
  const knex = knexFactory(knexConfig);
  return { knex, dialect, close: () => knex.destroy() };
}

/** A round trip to the server, for health checks; throws when it cannot be reached. */
export async function ping(db: Database): Promise<void> {
  await db.knex.raw('SELECT 1');
}
