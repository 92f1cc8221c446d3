import { setFlagsFromString } from 'node:v8';
import { loadConfig } from '../../config/load.js';
import { LATEST_SCHEMA_VERSION } from '../../db/migrate.js';
import { coalesced, jsonLogger, type Logger } from '../../log.js';
import { parseArgs, stringOption, UsageError } from '../args.js';
import { type Io, runCommand } from '../run.js';
import { type Service, startService } from './service.js';

/** Structured log lines on stderr. */
export function logger(io: Io): Logger {
  return jsonLogger((line) => io.stderr(line));
}

export interface ServiceHandle {
  service: Service;
  /** Resolves when the service has stopped (SIGTERM/SIGINT or stop()). */
  stopped: Promise<void>;
  stop(): Promise<void>;
}

/**
 * `novanet-network --config-file FILE`: starts the service and stops it on SIGTERM or
 * SIGINT, leaving the host's networking in place so VMs keep their traffic while it
 * is down or restarting.
 */
export async function startFromArgs(argv: string[], io: Io, signals: NodeJS.Process | undefined = process): Promise<ServiceHandle> {
  const parsed = parseArgs(
    argv,
    { config_file: { type: 'string', meta: 'FILE', help: 'nova.conf-style configuration' } },
    'novanet-network',
  );
  if (parsed.positionals.length > 0) throw new UsageError(`novanet-network: unexpected argument ${JSON.stringify(parsed.positionals[0])}`);
  const log = logger(io);
  const configFile = stringOption(parsed, 'config_file') ?? io.env.NOVANET_CONFIG_FILE;
  const config = loadConfig({ file: configFile, env: io.env, warn: (message) => log('config.warning', { message }) });
  const service = await startService({ config, configFile, log });

  let finish: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => {
    finish = resolve;
  });
  let stopping = false;
  const stop = async () => {
    if (stopping) return stopped;
    stopping = true;
    try {
      await service.stop();
      log('service.stopped', {});
    } catch (error) {
      log('service.stop_failed', { error: (error as Error).message });
    }
    finish();
    return stopped;
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) signals?.once(signal, () => void stop());
  // Only now: whoever waits for this line may send SIGTERM at once, and before the
  // handlers exist that signal kills the process instead of stopping it.
  log('service.started', { host: config.host, mode: config.network_manager, schema: LATEST_SCHEMA_VERSION, api: service.apiUrl });
  return { service, stopped, stop };
}

/** How far V8 lets the old generation grow past what a major GC found live. */
export const HEAP_GROWING_PERCENT = 50;

/**
 * V8's default lets garbage reach up to four times the live heap before a major GC;
 * under API load that headroom was most of the service's RSS (the scale benchmark
 * measures it). Growing by half costs a few more short major GCs. The flag to set,
 * unless node's command line has one (node refuses it in NODE_OPTIONS).
 */
export function daemonHeapFlag(execArgv: string[]): string | undefined {
  return execArgv.some((flag) => /^--heap[-_]growing[-_]percent(=|$)/.test(flag))
    ? undefined
    : `--heap-growing-percent=${HEAP_GROWING_PERCENT}`;
}

export function useDaemonHeap(execArgv: string[]): void {
  const flag = daemonHeapFlag(execArgv);
  if (flag !== undefined) setFlagsFromString(flag);
}

export async function runService(argv: string[], io: Io): Promise<number> {
  // Everything the service writes to stderr (log lines, a fatal error) goes out once
  // per event-loop turn, in order.
  const buffered: Io = { ...io, stderr: coalesced((text) => io.stderr(text)) };
  let handle: ServiceHandle | undefined;
  const status = await runCommand(buffered, async () => {
    handle = await startFromArgs(argv, buffered);
  });
  if (status !== 0 || !handle) return status;
  await handle.stopped;
  return 0;
}
