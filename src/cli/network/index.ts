import cron from 'node-cron';
import { loadConfig } from '../../config/load.js';
import { openDatabase } from '../../db/connection.js';
import { LATEST_SCHEMA_VERSION, schemaVersion } from '../../db/migrate.js';
import { Unavailable } from '../../errors.js';
import { createManager } from '../../managers/registry.js';
import type { HostChange, HostLayer } from '../../managers/types.js';
import { UsageError, parseArgs, stringOption } from '../args.js';
import { runCommand, type Io } from '../run.js';

/** Structured log lines: one JSON object per event, easy to grep and to ship. */
export function logger(io: Io): (event: string, fields?: Record<string, unknown>) => void {
  return (event, fields = {}) => io.stderr(`${JSON.stringify({ time: new Date().toISOString(), event, ...fields })}\n`);
}

export interface ServiceHandle {
  /** Resolves when the service has stopped (SIGTERM/SIGINT or stop()). */
  stopped: Promise<void>;
  stop(): Promise<void>;
}

/**
 * `novanet-network --config-file FILE`: the long-running service. It checks the
 * schema, then runs the periodic tasks (nova's timed disassociation of released
 * fixed IPs). Shutting down leaves every host change in place.
 */
export async function startService(argv: string[], io: Io, signals: NodeJS.Process | undefined = process): Promise<ServiceHandle> {
  const parsed = parseArgs(argv, { config_file: { type: 'string', meta: 'FILE', help: 'nova.conf-style configuration' } }, 'novanet-network');
  if (parsed.positionals.length > 0) throw new UsageError(`novanet-network: unexpected argument ${JSON.stringify(parsed.positionals[0])}`);
  const log = logger(io);
  const config = loadConfig({ file: stringOption(parsed, 'config_file'), env: io.env, warn: (message) => log('config.warning', { message }) });
  const db = openDatabase(config.connection, { maxPoolSize: config.max_pool_size });
  const version = await schemaVersion(db).catch(async (error: Error) => {
    await db.close();
    throw new Unavailable(`cannot read the database schema version: ${error.message}`);
  });
  if (version !== LATEST_SCHEMA_VERSION) {
    await db.close();
    throw new Unavailable(`database schema is at version ${version}, this release needs ${LATEST_SCHEMA_VERSION}; run: novanet-manage db sync`);
  }
  const host: HostLayer = { apply: async (changes: HostChange[]) => log('host.changes', { count: changes.length }) };
  const manager = createManager({ db, config, host, log: (message) => log('manager', { message }) });
  const disassociate = cron.schedule('* * * * *', async () => {
    try {
      const freed = await manager.disassociateStaleFixedIps();
      if (freed > 0) log('fixed_ips.disassociated', { count: freed });
    } catch (error) {
      log('fixed_ips.disassociate_failed', { error: (error as Error).message });
    }
  }, { name: 'disassociate-stale-fixed-ips', noOverlap: true });

  let finish: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => { finish = resolve; });
  let stopping = false;
  const stop = async () => {
    if (stopping) return stopped;
    stopping = true;
    await disassociate.stop();
    await db.close();
    log('service.stopped', {});
    finish();
    return stopped;
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) signals?.once(signal, () => void stop());
  // Only now: whoever waits for this line may send SIGTERM at once, and before the
  // handlers exist that signal kills the process instead of stopping it.
  log('service.started', { host: config.host, mode: config.network_manager, schema: version });
  return { stopped, stop };
}

export async function runService(argv: string[], io: Io): Promise<number> {
  let handle: ServiceHandle | undefined;
  const status = await runCommand(io, async () => {
    handle = await startService(argv, io);
  });
  if (status !== 0 || !handle) return status;
  await handle.stopped;
  return 0;
}
