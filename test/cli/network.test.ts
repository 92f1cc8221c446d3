/**
 * novanet-network, the service, run as the built program: it refuses an unsynced
 * database, logs JSON lines on stderr, and stops cleanly on SIGTERM.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { daemonHeapFlag } from '../../src/cli/network/index.js';
import { LATEST_SCHEMA_VERSION } from '../../src/db/migrate.js';
import { type CliDatabase, cliDatabase, expectError, expectOk, parseTable, run, start } from '../support/cli.js';
import { BACKENDS } from '../support/databases.js';

/** The JSON log lines of a service's stderr. */
function events(stderr: string): Record<string, unknown>[] {
  return stderr
    .trimEnd()
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("the service's heap policy", () => {
  it("sets V8's heap growth for a daemon unless node's command line has a value", () => {
    expect(daemonHeapFlag([])).toBe('--heap-growing-percent=50');
    expect(daemonHeapFlag(['--enable-source-maps', '--heap-growing-percentage=1'])).toBe('--heap-growing-percent=50');
    expect(daemonHeapFlag(['--heap-growing-percent=80'])).toBeUndefined();
    expect(daemonHeapFlag(['--heap_growing_percent', '80'])).toBeUndefined();
  });
});

describe.each(BACKENDS)('novanet-network on %s', { concurrent: true }, (backend) => {
  let unsynced: CliDatabase;
  let synced: CliDatabase;
  let service: ReturnType<typeof start> | undefined;

  beforeAll(async () => {
    [unsynced, synced] = await Promise.all([cliDatabase(backend), cliDatabase(backend, { sync: true })]);
  });

  afterEach(() => {
    // Only ever the child this file spawned, and only if a failed test left it running.
    if (service && service.exitCode === null && service.signalCode === null) service.kill('SIGKILL');
    service = undefined;
  });

  afterAll(async () => {
    await unsynced?.close();
    await synced?.close();
  });

  it.sequential('refuses to start on a database without the schema, naming novanet-manage db sync', async () => {
    const config = unsynced.config('novanet.conf');
    const result = await run('network', ['--config-file', config]);
    expectError(result, `database schema is at version 0, this release needs ${LATEST_SCHEMA_VERSION}; run: novanet-manage db sync`, 1);
  });

  it.sequential('refuses an unknown option', async () => {
    const config = synced.config('novanet.conf');
    expectError(await run('network', ['--config-file', config, '--bogus']), 'novanet-network: unknown option --bogus');
    expectError(
      await run('network', [`--config-fil=${config}`]),
      'novanet-network: unknown option --config-fil; did you mean --config_file?',
    );
  });

  it.sequential('starts on a synced database (service.started) and exits 0 on SIGTERM (service.stopped)', async () => {
    const config = synced.config('novanet.conf', { network_manager: 'vlan', vlan_interface: 'eth1' });
    const child = start('network', ['--config-file', config]);
    service = child;
    let stderr = '';
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => resolve([code, signal]));
    });
    await new Promise<void>((resolve, reject) => {
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
        if (stderr.includes('"event":"service.started"')) resolve();
      });
      void exited.then(([code, signal]) => reject(new Error(`novanet-network exited (${code ?? signal}) before starting: ${stderr}`)));
    });

    const started = events(stderr).find((event) => event.event === 'service.started');
    expect(started).toMatchObject({ event: 'service.started', host: 'nethost', mode: 'vlan', schema: LATEST_SCHEMA_VERSION });
    expect(Number.isNaN(Date.parse(String(started!.time)))).toBe(false);

    expect(child.kill('SIGTERM')).toBe(true);
    const [code, signal] = await exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    // The start-up reconcile found nothing to serve, so it touched nothing on this host.
    // node-cron may add a note (cron.warning) when a loaded machine runs a tick late.
    expect(
      events(stderr)
        .map((event) => String(event.event))
        .filter((event) => !event.startsWith('cron.')),
      stderr,
    ).toEqual(['reconcile.done', 'service.started', 'service.stopped']);
    expect(events(stderr)[0]).toMatchObject({ kind: 'full', changes: [], errors: [] });
    expect(stdout).toBe('');
  });

  it.sequential('registers in the hosts table, heartbeats, and shows down in host list once stopped for service_down_time', async () => {
    const config = synced.config('novanet-hosts.conf', {
      host: 'compute7',
      network_host: 'false',
      tunnel_ip: '192.0.2.77',
      report_interval: '1',
      service_down_time: '2',
    });
    const child = start('network', ['--config-file', config]);
    service = child;
    const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
        if (stderr.includes('"event":"service.started"')) resolve();
      });
      void exited.then(() => reject(new Error(`novanet-network exited before starting: ${stderr}`)));
    });
    const listed = async () => {
      const result = await run('manage', ['--config-file', config, 'host', 'list']);
      expectOk(result);
      return parseTable(result.stdout);
    };
    const [header, row] = await listed();
    expect(header).toEqual(['host', 'role', 'state', 'tunnel', 'version', 'heartbeat', 'last reconcile', 'errors']);
    expect(row!.slice(0, 5)).toEqual(['compute7', 'compute', 'up', '192.0.2.77', '0.1.0']);
    // The start-up reconcile reaches the row with the first heartbeat.
    const heartbeatAt = Date.parse(row![5]!);
    // Heartbeats every report_interval (1 s): the one shown moves on (bounded: 10 s even on a loaded machine).
    let later = (await listed())[1]!;
    for (const deadline = Date.now() + 10_000; Date.parse(later[5]!) <= heartbeatAt && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      later = (await listed())[1]!;
    }
    expect(Date.parse(later[5]!)).toBeGreaterThan(heartbeatAt);
    expect(later[6]).not.toBe('None');
    expect(later[7]).toBe('0');
    expect(later[2]).toBe('up');

    child.kill('SIGTERM');
    await exited;
    const stoppedAt = Date.now();
    let shown = (await listed())[1]!;
    // Bounded: service_down_time is 2 s; 10 s is ample even on a loaded machine.
    while (shown[2] === 'up' && Date.now() - stoppedAt < 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      shown = (await listed())[1]!;
    }
    expect(shown[2]).toBe('down');
    // Not before service_down_time had passed since its last heartbeat (shown to the second, rounded down).
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(shown[5]!) + 2000);
  });
});
