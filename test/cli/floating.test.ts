/**
 * novanet-manage floating create/list/delete, run as the built program against a
 * fresh database of each backend: both forms, nova-manage's columns, and the error
 * contract (one `error: ...` line, exit 2, nothing written).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManager } from '../../src/managers/registry.js';
import { type CliDatabase, cliDatabase, expectError, expectOk, parseTable, run } from '../support/cli.js';
import { BACKENDS, testConfig } from '../support/databases.js';
import { snapshot as fullSnapshot } from '../support/dbState.js';
import { RecordingHost } from '../support/recordingHost.js';

const INSTANCE = '00000000-0000-4000-8000-000000000001';

// Within one backend the steps build on each other and run in order.
describe.each(BACKENDS)('novanet-manage floating on %s', { concurrent: true }, (backend) => {
  let cli: CliDatabase;
  let conf = '';
  const manage = (...args: string[]) => run('manage', ['--config-file', conf, ...args]);

  beforeAll(async () => {
    cli = await cliDatabase(backend, { sync: true });
    conf = cli.config('flatdhcp.conf', { flat_interface: 'eth1' });
  });

  afterAll(async () => {
    await cli.close();
  });

  it('lists nothing before any pool exists', { concurrent: false }, async () => {
    const result = await manage('floating', 'list');
    expectOk(result);
    expect(result.stdout).toBe('No floating IP addresses have been defined.\n');
  });

  it('creates ranges in both forms, lists them with nova-manage columns, and deletes them', { concurrent: false }, async () => {
    let result = await manage('floating', 'create', '--ip_range=203.0.113.0/29', '--pool=public', '--interface=eth3');
    expectOk(result);
    expect(result.stdout).toBe('created 6 floating IP(s) in pool public\n');
    result = await manage('floating', 'create', '198.51.100.9');
    expectOk(result);
    expect(result.stdout).toBe('created 1 floating IP(s) in pool nova\n');

    // An allocated, associated address shows its project and instance.
    const manager = createManager({
      db: cli.db,
      config: testConfig({ network_manager: 'flatdhcp', flat_interface: 'eth1' }),
      host: new RecordingHost(),
    });
    await manager.networks.create({ label: 'net', fixedRangeV4: '10.0.0.0/24' });
    await manager.allocation.allocate({ instanceUuid: INSTANCE, projectId: 'p1', host: 'compute1' });
    const taken = await manager.floating.allocate('p1', 'public');
    await manager.floating.associate({ address: taken.address, instanceUuid: INSTANCE, actor: { projectId: 'p1' } });

    result = await manage('floating', 'list');
    expectOk(result);
    const table = parseTable(result.stdout);
    expect(table[0]).toEqual(['project_id', 'address', 'instance_uuid', 'pool', 'interface']);
    expect(table[1]).toEqual(['p1', '203.0.113.1', INSTANCE, 'public', 'eth3']);
    expect(table[2]).toEqual(['None', '203.0.113.2', 'None', 'public', 'eth3']);
    expect(table.at(-1)).toEqual(['None', '198.51.100.9', 'None', 'nova', 'None']);
    expect(table.length).toBe(8);

    result = await manage('floating', 'list', '--host=nethost');
    expectOk(result);
    expect(parseTable(result.stdout).slice(1)).toEqual([['p1', '203.0.113.1', INSTANCE, 'public', 'eth3']]);
    result = await manage('floating', 'list', '--host=elsewhere');
    expect(result.stdout).toBe('No floating IP addresses have been defined.\n');

    // In use: refused, naming the address and project, nothing deleted.
    const before = await fullSnapshot(cli.db);
    result = await manage('floating', 'delete', '--ip_range=203.0.113.0/29');
    expectError(result, 'floating IP 203.0.113.1 is allocated to project p1; release it first (1 of 6 in 203.0.113.0/29 are allocated)');
    expect(await fullSnapshot(cli.db)).toEqual(before);

    await manager.floating.disassociate(taken.address, { projectId: 'p1' });
    await manager.floating.release(taken.address, { projectId: 'p1' });
    result = await manage('floating', 'delete', '203.0.113.0/29');
    expectOk(result);
    expect(result.stdout).toBe('deleted 6 floating IP(s)\n');
    result = await manage('floating', 'delete', '--ip_range=198.51.100.9');
    expectOk(result);
    expect((await manage('floating', 'list')).stdout).toBe('No floating IP addresses have been defined.\n');
  });

  const REFUSED: [string, string[], string | RegExp][] = [
    ['no range', ['floating', 'create'], 'floating create: give the ip_range once, as --ip_range=RANGE'],
    [
      'range given twice',
      ['floating', 'create', '--ip_range=192.0.2.0/29', '192.0.2.8/29'],
      'floating create: give the ip_range once, as --ip_range=RANGE',
    ],
    [
      'host bits',
      ['floating', 'create', '--ip_range=192.0.2.1/29'],
      'ip_range "192.0.2.1/29" has host bits set; the network is 192.0.2.0/29',
    ],
    [
      'too small',
      ['floating', 'create', '192.0.2.0/31'],
      'ip_range "192.0.2.0/31": /31 has fewer than 4 addresses; give a single address instead',
    ],
    [
      'too large',
      ['floating', 'create', '172.16.0.0/12'],
      'ip_range "172.16.0.0/12" would make 1048576 addresses; the limit is fewer than 1,000,000: use a longer prefix than /12',
    ],
    [
      'overlapping a fixed network',
      ['floating', 'create', '10.0.0.128/25'],
      'ip_range 10.0.0.128/25 overlaps fixed network 10.0.0.0/24 (net)',
    ],
    [
      'bad interface',
      ['floating', 'create', '192.0.2.0/29', '--interface=a b'],
      "interface must be an interface name of 1-15 letters, digits, '_', '.' or '-', got \"a b\"",
    ],
    ['deleting nothing', ['floating', 'delete', '192.0.2.0/29'], 'no floating IP in 192.0.2.0/29'],
    ['list with a positional', ['floating', 'list', 'x'], 'floating list: unexpected argument "x"'],
  ];

  it.each(REFUSED)('refuses %s', { concurrent: false }, async (_what, args, message) => {
    const before = await fullSnapshot(cli.db);
    expectError(await manage(...args), message);
    expect(await fullSnapshot(cli.db)).toEqual(before);
  });
});
