/**
 * How novanet-manage writes its output: the progress line of a long `network create`
 * (only on a terminal), and a reader that goes away early (`fixed list | head`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manage } from '../../src/cli/manage/index.js';
import { createManager } from '../../src/managers/registry.js';
import { type CliDatabase, cliDatabase, expectOk, recordingIo, run, snapshot, start } from '../support/cli.js';
import { BACKENDS, testConfig } from '../support/databases.js';
import { RecordingHost } from '../support/recordingHost.js';

describe.each(BACKENDS)('novanet-manage output on %s', { concurrent: true }, (backend) => {
  let cli: CliDatabase;
  let config: string;

  beforeAll(async () => {
    cli = await cliDatabase(backend, { sync: true });
    config = cli.config('novanet.conf', { network_manager: 'flatdhcp' });
    // What `fixed list` prints below: 16,384 rows, far more than a pipe holds.
    const manager = createManager({ db: cli.db, config: testConfig({ network_manager: 'flatdhcp' }), host: new RecordingHost() });
    await manager.networks.create({ label: 'listed', fixedRangeV4: '10.96.0.0/18', networkSize: 16384 });
  });

  afterAll(async () => {
    await cli?.close();
  });

  /** manage() in this process, with stderr taken for a terminal. */
  async function onTerminal(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
    const { io, written } = recordingIo({ interactive: true, env: {} });
    const status = await manage(['--config-file', config, ...args], io);
    return { status, ...written };
  }

  it.sequential('network create on a terminal shows "writing fixed IPs: N/4096" progress up to 4096/4096', async () => {
    const { status, stdout, stderr } = await onTerminal([
      'network',
      'create',
      '--label=big',
      '--fixed_range_v4=10.64.0.0/20',
      '--network_size=4096',
    ]);
    expect(status).toBe(0);
    expect(stdout).toMatch(/^created network big 10\.64\.0\.0\/20 \S+\n$/);
    // Each update rewrites the line (\r); the last one ends it.
    expect(stderr.startsWith('\r')).toBe(true);
    expect(stderr.endsWith('\rwriting fixed IPs: 4096/4096 (100%)\n')).toBe(true);
    const updates = stderr.slice(1).replace(/\n$/, '').split('\r');
    const written: number[] = [];
    for (const update of updates) {
      const match = /^writing fixed IPs: (\d+)\/4096 \((\d+)%\)$/.exec(update);
      expect(match, update).not.toBeNull();
      written.push(Number(match![1]));
      expect(Number(match![2])).toBe(Math.floor((100 * Number(match![1])) / 4096));
    }
    expect(written).toEqual([...written].sort((a, b) => a - b));
    expect(written.at(-1)).toBe(4096);
  });

  it.sequential('a create that fails after progress was shown prints its error on a line of its own and writes nothing', async () => {
    // A row already holding an address of the 4th batch of 1,000: the insert fails midway,
    // as when another create takes part of the range at the same moment.
    const [listed] = (await cli.db.knex('networks').where({ label: 'listed' }).select('id')) as { id: number }[];
    await cli.db.knex('fixed_ips').insert({ address: '10.72.14.0', network_id: listed!.id, reserved: true, created_at: new Date() });
    try {
      const before = await snapshot(cli.db);
      const { status, stdout, stderr } = await onTerminal([
        'network',
        'create',
        '--label=clash',
        '--fixed_range_v4=10.72.0.0/20',
        '--network_size=4096',
      ]);
      expect(status).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toMatch(
        /^\rwriting fixed IPs: 1000\/4096 \(24%\)(\rwriting fixed IPs: [23]000\/4096 \(\d+%\))*\nerror: another network took part of this range or VLAN meanwhile; nothing was created \([^\n]*\)\n$/,
      );
      expect(await snapshot(cli.db)).toEqual(before);
    } finally {
      await cli.db.knex('fixed_ips').where({ address: '10.72.14.0' }).delete();
    }
  });

  it.sequential('network create with stderr not a terminal prints no progress at all', async () => {
    const result = await run('manage', [
      '--config-file',
      config,
      'network',
      'create',
      '--label=quiet',
      '--fixed_range_v4=10.80.0.0/20',
      '--network_size=4096',
    ]);
    expectOk(result);
    expect(result.stderr).not.toContain('\r');
    expect(result.stdout).not.toContain('\r');
    expect(result.stdout).toMatch(/^created network quiet 10\.80\.0\.0\/20 \S+\n$/);
  });

  it.sequential('fixed list whose reader closes early (| head) ends with status 0 and no stack trace', async () => {
    const child = start('manage', ['--config-file', config, 'fixed', 'list']);
    let stderr = '';
    let first = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.stdout.setEncoding('utf8').once('data', (chunk: string) => {
      first = chunk;
      child.stdout.destroy();
    });
    const [status, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, sig) => resolve([code, sig]));
    });
    expect(first).toMatch(/^network +IP address +hostname +host\n/);
    expect(stderr).not.toMatch(/^\s+at /m);
    expect({ status, signal, stderr }).toEqual({ status: 0, signal: null, stderr: '' });
  });
});
