import cron, { type ScheduledTask } from 'node-cron';
import { createApp, createMetrics, healthCheck, listen, type RunningApi } from '../../api/index.js';
import { TokenService } from '../../auth/tokens.js';
import type { Config } from '../../config/options.js';
import { type Database, openDatabase } from '../../db/connection.js';
import { heartbeat, recordBuilt, registerHost } from '../../db/hosts.js';
import { LATEST_SCHEMA_VERSION, schemaVersion } from '../../db/migrate.js';
import { Unavailable } from '../../errors.js';
import { createHostLayer, type Reconciler } from '../../host/index.js';
import { listenForWakes, WakingHostLayer } from '../../host/wake.js';
import { NetworkWatcher } from '../../host/watch.js';
import type { Executor } from '../../linux_net/command.js';
import { processExecutor } from '../../linux_net/executor.js';
import type { Logger } from '../../log.js';
import type { NetworkManager } from '../../managers/manager.js';
import { capabilitiesOf, createManager } from '../../managers/registry.js';
import { VERSION } from '../../version.js';

export interface ServiceOptions {
  config: Config;
  configFile: string | undefined;
  log: Logger;
  /** Tests may run the host layer through a recording executor. */
  executor?: Executor;
  /** Serve the REST API (default true). */
  api?: boolean;
}

/** The parts of a running service, for its entry point and for tests. */
export interface Service {
  config: Config;
  db: Database;
  manager: NetworkManager;
  reconciler: Reconciler;
  /** Where the API answers (`http://HOST:PORT`); absent with `api: false`. */
  apiUrl: string | undefined;
  /** Stops the schedules and closes the database; leaves the host's networking as it is. */
  stop(): Promise<void>;
}

/**
 * Opens the database, checks its schema, reconciles this host once (before serving,
 * so a restarted service first confirms what is already in place), schedules the
 * periodic tasks (a full reconcile every `reconcile_interval` seconds, a poll for
 * changes made by other processes every second, nova's timed disassociation of
 * released fixed IPs every minute) and serves the API.
 */
export async function startService(options: ServiceOptions): Promise<Service> {
  const { config, log } = options;
  const db = openDatabase(config.connection, { maxPoolSize: config.max_pool_size, log });
  try {
    const version = await schemaVersion(db).catch((error: Error) => {
      throw new Unavailable(`cannot read the database schema version: ${error.message}`);
    });
    if (version !== LATEST_SCHEMA_VERSION) {
      throw new Unavailable(
        `database schema is at version ${version}, this release needs ${LATEST_SCHEMA_VERSION}; run: novanet-manage db sync`,
      );
    }
  } catch (error) {
    await db.close();
    throw error;
  }
  const metrics = createMetrics();
  // The last full reconcile, for the hosts table (host list shows its time and errors).
  let lastFull: { at: Date; errors: string[] } | undefined;
  // The networks whose bridge this host has built, as last written to its hosts row (once it has one).
  let registered = false;
  let builtRecorded: string | undefined;
  const recordBuiltNetworks = async () => {
    const built = reconciler!.builtNetworks().sort();
    if (!registered || built.join(',') === builtRecorded) return;
    try {
      await recordBuilt(db.knex, config.host, built);
      builtRecorded = built.join(',');
    } catch (error) {
      log('hosts.record_failed', { error: (error as Error).message });
    }
  };
  let metered = new Set<string>();
  let usageRefresh: Promise<void> = Promise.resolve();
  // Fixed IP and lease gauges, refreshed after each full reconcile (one grouped query).
  const refreshUsage = async () => {
    try {
      const now = new Set<string>();
      let leases = 0;
      for (const { network, usage } of await manager.fixedIps.usage()) {
        const name = network.cidr ?? network.label;
        now.add(name);
        metrics.setFixedIpUsage(name, usage.total - usage.reserved - usage.associated, usage.associated);
        leases += usage.leased;
      }
      for (const gone of metered) if (!now.has(gone)) metrics.forgetNetwork(gone);
      metered = now;
      metrics.setLeases(leases);
    } catch (error) {
      log('metrics.usage_failed', { error: (error as Error).message });
    }
  };
  // Ours to close at stop: it keeps the firewall tools running (linux_net/session.ts).
  const ownExecutor = options.executor ? undefined : processExecutor({ rootHelper: config.root_helper, log });
  const reconciler = createHostLayer({
    db,
    config,
    capabilities: capabilitiesOf(config.network_manager),
    configFile: options.configFile,
    log,
    onReport: async (report) => {
      metrics.recordReconcile(report);
      if (report.kind === 'full') {
        usageRefresh = refreshUsage();
        lastFull = { at: report.finishedAt, errors: report.errors };
      }
      await recordBuiltNetworks();
    },
    executor: options.executor ?? ownExecutor!,
  });
  // The manager tells the other hosts concerned, then the reconciler, what it changed.
  const hostLayer = new WakingHostLayer(reconciler, db, config.host, log);
  const manager = createManager({ db, config, host: hostLayer, log: (message) => log('manager', { message }) });
  const watcher = new NetworkWatcher(db, reconciler, config.host, {
    everyHolder: config.network_manager === 'vlan' && config.vlan_transport === 'vxlan',
  });
  // Ticks in progress: stop() waits for them (node-cron's stop does not), so none finds
  // the database closed under it.
  const ticks = new Set<Promise<void>>();
  const tracked = (work: () => Promise<void>) => () => {
    const tick = work().finally(() => ticks.delete(tick));
    ticks.add(tick);
    return tick;
  };
  const pollNow = tracked(async () => {
    try {
      await watcher.poll();
    } catch (error) {
      log('reconcile.failed', { error: (error as Error).message });
    }
  });
  // Without wakes (the address is not this host's, the port is taken) the one-second poll still serves.
  const wakes = await listenForWakes(config.wake_address, config.wake_port, () => void pollNow()).catch((error: Error) => {
    log('wake.listen_failed', { address: `${config.wake_address}:${config.wake_port}`, error: error.message });
    return undefined;
  });
  try {
    await watcher.poll();
    await reconciler.reconcileAll();
    await registerHost(db.knex, {
      name: config.host,
      role: manager.hosts.role,
      tunnelIp: config.tunnel_ip,
      wakeAddress: wakes?.address ?? null,
      version: VERSION,
      now: new Date(),
    });
    registered = true;
    await recordBuiltNetworks();
  } catch (error) {
    await wakes?.close();
    ownExecutor?.close();
    await db.close();
    throw error;
  }

  // node-cron's own notes (a tick skipped while a long reconcile runs) as JSON lines too.
  const cronLogger = {
    info: (message: string) => log('cron.info', { message }),
    warn: (message: string) => log('cron.warning', { message }),
    error: (message: string | Error) => log('cron.error', { message: String(message) }),
    debug: () => undefined,
  };
  let lastBeat = 0;
  const tasks: ScheduledTask[] = [
    // Every second, reconcile when reconcile_interval has passed since the last full
    // one: any interval works, not only those a cron field can express.
    // Changes made elsewhere (novanet-manage) reach the host within a second.
    cron.schedule(
      '* * * * * *',
      tracked(async () => {
        const last = reconciler!.lastFullAt?.getTime() ?? 0;
        try {
          if (Date.now() - last >= config.reconcile_interval * 1000) await reconciler!.reconcileAll();
          else await watcher.poll();
          await reconciler!.plugTaps();
        } catch (error) {
          log('reconcile.failed', { error: (error as Error).message });
        }
      }),
      { name: 'reconcile-host', noOverlap: true, logger: cronLogger },
    ),
    // Every report_interval seconds: alive, and how the last full reconcile went.
    cron.schedule(
      '* * * * * *',
      tracked(async () => {
        if (Date.now() - lastBeat < config.report_interval * 1000) return;
        lastBeat = Date.now();
        try {
          await heartbeat(db.knex, config.host, { now: new Date(), ...(lastFull ? { reconcile: lastFull } : {}) });
        } catch (error) {
          log('heartbeat.failed', { error: (error as Error).message });
        }
      }),
      { name: 'heartbeat', noOverlap: true, logger: cronLogger },
    ),
    cron.schedule(
      '* * * * *',
      tracked(async () => {
        try {
          const freed = await manager.leases.disassociateStale();
          if (freed > 0) log('fixed_ips.disassociated', { count: freed });
        } catch (error) {
          log('fixed_ips.disassociate_failed', { error: (error as Error).message });
        }
      }),
      { name: 'disassociate-stale-fixed-ips', noOverlap: true, logger: cronLogger },
    ),
  ];
  let api: RunningApi | undefined;
  if (options.api ?? true) {
    const app = createApp({
      manager,
      tokens: new TokenService({ db, cacheSeconds: config.api_token_cache_seconds }),
      health: healthCheck({ db, lastReconcile: () => reconciler!.lastReport }),
      metrics,
      log,
      maxBodyBytes: config.api_max_body_bytes,
    });
    try {
      api = await listen(app, { host: config.api_host, port: config.api_port });
    } catch (error) {
      for (const task of tasks) await task.stop();
      await wakes?.close();
      hostLayer.close();
      ownExecutor?.close();
      await db.close();
      throw new Unavailable(`cannot listen on ${config.api_host}:${config.api_port}: ${(error as Error).message}`);
    }
  }
  let stopped = false;
  return {
    config,
    db,
    manager,
    reconciler,
    apiUrl: api?.url,
    async stop() {
      if (stopped) return;
      stopped = true;
      // The API first: no request may find the database closed.
      await api?.close();
      await wakes?.close();
      for (const task of tasks) await task.stop();
      // Let a tick or reconcile in progress (and its metrics refresh) finish rather than cut it halfway.
      await Promise.all(ticks);
      await reconciler!.reconcileIdle();
      hostLayer.close();
      ownExecutor?.close();
      await usageRefresh;
      await db.close();
    },
  };
}
