import { loadConfig } from '../config/load.js';
import type { Config } from '../config/options.js';
import { type Database, openDatabase } from '../db/connection.js';
import { isDatabaseOutage, isMissingSchema } from '../db/errors.js';
import { isNovanetError } from '../errors.js';
import type { HostLayer } from '../host/layer.js';
import type { NetworkManager } from '../managers/manager.js';
import { createManager } from '../managers/registry.js';

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Whether stderr is a terminal (progress lines are shown only there). */
  interactive: boolean;
  env: NodeJS.ProcessEnv;
}

export const processIo = (): Io => ({
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  interactive: Boolean(process.stderr.isTTY),
  env: process.env,
});

/** Exit statuses: 2 for anything the caller got wrong (as nova-manage), 1 for our failures. */
export const EXIT_USAGE = 2;
export const EXIT_FAILURE = 1;

/**
 * Runs a command and maps every error to one `error: ...` line and an exit status.
 * Domain errors print their message; anything else is a bug or an outage, printed
 * without a stack unless NOVANET_DEBUG is set.
 */
export async function runCommand(io: Io, command: () => Promise<number | void>): Promise<number> {
  try {
    return (await command()) ?? 0;
  } catch (error) {
    if (isNovanetError(error)) {
      io.stderr(`error: ${oneLine(error.message)}\n`);
      return error.kind === 'unavailable' ? EXIT_FAILURE : EXIT_USAGE;
    }
    const message = error instanceof Error ? error.message : String(error);
    io.stderr(`error: ${oneLine(describeInternal(error, message))}\n`);
    if (io.env.NOVANET_DEBUG) io.stderr(`${(error as Error).stack ?? ''}\n`);
    return EXIT_FAILURE;
  }
}

function describeInternal(error: unknown, message: string): string {
  if (isDatabaseOutage(error)) return `cannot reach the database: ${message}`;
  if (isMissingSchema(error)) return 'the database has no novanet schema; run: novanet-manage db sync';
  return `unexpected failure (${message}); rerun with NOVANET_DEBUG=1 for details`;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** What most commands work with: the config, the database and the configured manager. */
export interface Context {
  config: Config;
  db: Database;
  manager: NetworkManager;
}

/**
 * The CLI writes the database only: the database holds the truth, and the service on
 * each host derives bridges, rules and dnsmasq hosts from it.
 */
const databaseOnly: HostLayer = { apply: async () => undefined };

export async function withContext<T>(configFile: string | undefined, io: Io, work: (context: Context) => Promise<T>): Promise<T> {
  const config = loadConfig({ file: configFile, env: io.env, warn: (message) => io.stderr(`warning: ${message}\n`) });
  const db = openDatabase(config.connection, { maxPoolSize: config.max_pool_size });
  try {
    const manager = createManager({ db, config, host: databaseOnly, log: (message) => io.stderr(`${message}\n`) });
    return await work({ config, db, manager });
  } finally {
    await db.close();
  }
}

/** `novanet-manage fixed list | head` closes our stdout early: that is not an error. */
export function ignoreClosedStdout(): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}
