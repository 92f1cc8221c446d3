/**
 * novanet-manage's main flows, run as the built program against a fresh database of
 * each backend: db sync/version, network create in every mode and both forms, list,
 * modify, delete, fixed list/reserve/unreserve, project scrub, help.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LATEST_SCHEMA_VERSION } from '../../src/db/migrate.js';
import { createManager } from '../../src/managers/registry.js';
import { type CliDatabase, cliDatabase, expectError, expectOk, parseTable, type RunResult, run } from '../support/cli.js';
import { BACKENDS, testConfig } from '../support/databases.js';
import { RecordingHost } from '../support/recordingHost.js';

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const NETWORK_LIST_HEADER = ['id', 'IPv4', 'IPv6', 'start address', 'DNS1', 'DNS2', 'VlanID', 'project', 'uuid'];

interface NetworkRow {
  id: number;
  uuid: string;
  label: string;
  cidr: string;
  cidr_v6: string | null;
  dhcp_start: string;
  dns1: string | null;
  dns2: string | null;
  vlan: number | null;
  bridge: string | null;
  bridge_interface: string | null;
  multi_host: number | boolean;
  project_id: string | null;
  host: string | null;
  priority: number | null;
  vpn_public_port: number | null;
  vpn_private_address: string | null;
  deleted: number;
}

// The backends run side by side; within one, the steps build on each other and run in order.
describe.each(BACKENDS)('novanet-manage on %s', { concurrent: true }, (backend) => {
  let cli: CliDatabase;
  const conf = { flat: '', flatdhcp: '', vlan: '', vlanClassPath: '' };

  beforeAll(async () => {
    cli = await cliDatabase(backend);
    conf.flat = cli.config('flat.conf', { network_manager: 'flat' });
    conf.flatdhcp = cli.config('flatdhcp.conf', { network_manager: 'flatdhcp', flat_network_bridge: 'br200', flat_interface: 'eth2' });
    conf.vlan = cli.config('vlan.conf', { network_manager: 'vlan', vlan_interface: 'eth1' });
    conf.vlanClassPath = cli.config('vlan-class.conf', { network_manager: 'nova.network.manager.VlanManager', vlan_interface: 'eth1' });
  });

  afterAll(async () => {
    await cli?.close();
  });

  const manage = (config: string, ...args: string[]): Promise<RunResult> => run('manage', ['--config-file', config, ...args]);

  async function network(cidr: string): Promise<NetworkRow> {
    const row = (await cli.db.knex('networks').where({ cidr, deleted: 0 }).first()) as NetworkRow | undefined;
    if (!row) throw new Error(`no live network ${cidr}`);
    return row;
  }

  async function countFixedIps(where: Record<string, unknown>): Promise<number> {
    const [row] = (await cli.db.knex('fixed_ips').where(where).count({ n: '*' })) as { n: number | string }[];
    return Number(row!.n);
  }

  /** The `created network ...` lines, checked, as [label, cidr, vlan, uuid]. */
  function createdLines(result: RunResult): string[][] {
    expectOk(result);
    const lines = result.stdout.trimEnd().split('\n');
    for (const line of lines) expect(line).toMatch(new RegExp(`^created network \\S+ [0-9./]+( vlan \\d+)? ${UUID}$`));
    return lines.map((line) => line.split(' ').slice(2));
  }

  it.sequential('db version is 0 before db sync, other commands ask for db sync, db sync reaches the latest version', async () => {
    const before = await manage(conf.flatdhcp, 'db', 'version');
    expectOk(before);
    expect(before.stdout).toBe('0\n');

    expectError(await manage(conf.flatdhcp, 'network', 'list'), 'the database has no novanet schema; run: novanet-manage db sync', 1);

    const sync = await manage(conf.flatdhcp, 'db', 'sync');
    expectOk(sync);
    expect(sync.stdout).toBe(`${LATEST_SCHEMA_VERSION}\n`);
    const after = await manage(conf.flatdhcp, 'db', 'version');
    expectOk(after);
    expect(after.stdout).toBe(`${LATEST_SCHEMA_VERSION}\n`);
    // Running it again changes nothing.
    const again = await manage(conf.flatdhcp, 'db', 'sync');
    expectOk(again);
    expect(again.stdout).toBe(`${LATEST_SCHEMA_VERSION}\n`);
  });

  it.sequential('network list on an empty database says "No networks found"', async () => {
    const result = await manage(conf.flatdhcp, 'network', 'list');
    expectOk(result);
    expect(result.stdout).toBe('No networks found\n');
  });

  it.sequential('flat: network create with named options uses the admin bridge and flat_network_dns', async () => {
    const [line] = createdLines(
      await manage(
        conf.flat,
        'network',
        'create',
        '--label=flat1',
        '--fixed_range_v4=10.10.0.0/24',
        '--dns2=1.1.1.1',
        '--bridge_interface=eth1',
        '--priority=5',
      ),
    );
    const row = await network('10.10.0.0/24');
    expect(line).toEqual(['flat1', '10.10.0.0/24', row.uuid]);
    expect(row).toMatchObject({
      label: 'flat1',
      bridge: 'br100',
      bridge_interface: 'eth1',
      vlan: null,
      dns1: '8.8.4.4',
      dns2: '1.1.1.1',
      dhcp_start: '10.10.0.2',
      priority: 5,
    });
    expect(await countFixedIps({ network_id: row.id })).toBe(256);
    // network, gateway, broadcast
    expect(await countFixedIps({ network_id: row.id, reserved: true })).toBe(3);
  });

  it.sequential('flatdhcp: several networks with dash spellings, multi_host and IPv6', async () => {
    const lines = createdLines(
      await manage(
        conf.flatdhcp,
        'network',
        'create',
        '--label=dhcp',
        '--fixed-range-v4=10.20.0.0/23',
        '--num-networks',
        '2',
        '--network-size=256',
        '--multi_host=T',
        '--dns1=10.20.0.53',
        '--fixed_range_v6=fd00:20::/48',
      ),
    );
    const first = await network('10.20.0.0/24');
    const second = await network('10.20.1.0/24');
    expect(lines).toEqual([
      ['dhcp_0', '10.20.0.0/24', first.uuid],
      ['dhcp_1', '10.20.1.0/24', second.uuid],
    ]);
    for (const row of [first, second]) {
      expect(row).toMatchObject({ bridge: 'br200', bridge_interface: 'eth2', vlan: null, dns1: '10.20.0.53', dns2: null });
      expect(Boolean(row.multi_host)).toBe(true);
      expect(await countFixedIps({ network_id: row.id })).toBe(256);
    }
    expect([first.cidr_v6, second.cidr_v6]).toEqual(['fd00:20::/64', 'fd00:20:0:1::/64']);
  });

  it.sequential('vlan (network_manager = vlan): one VLAN, bridge and VPN port per network from --vlan_start', async () => {
    const lines = createdLines(
      await manage(
        conf.vlan,
        'network',
        'create',
        '--label=tenants',
        '--fixed_range_v4=10.30.0.0/23',
        '--num_networks=2',
        '--network_size=256',
        '--vlan_start=300',
      ),
    );
    const first = await network('10.30.0.0/24');
    const second = await network('10.30.1.0/24');
    expect(lines).toEqual([
      ['tenants_0', '10.30.0.0/24', 'vlan', '300', first.uuid],
      ['tenants_1', '10.30.1.0/24', 'vlan', '301', second.uuid],
    ]);
    expect(first).toMatchObject({
      vlan: 300,
      bridge: 'br300',
      bridge_interface: 'eth1',
      vpn_public_port: 1000,
      vpn_private_address: '10.30.0.2',
      dhcp_start: '10.30.0.3',
      project_id: null,
    });
    expect(second).toMatchObject({
      vlan: 301,
      bridge: 'br301',
      bridge_interface: 'eth1',
      vpn_public_port: 1001,
      vpn_private_address: '10.30.1.2',
    });
  });

  it.sequential("vlan by nova's class path (nova.network.manager.VlanManager): --vlan, --bridge and --project_id", async () => {
    const [line] = createdLines(
      await manage(
        conf.vlanClassPath,
        'network',
        'create',
        '--label=single',
        '--fixed_range_v4=10.31.0.0/24',
        '--vlan=310',
        '--bridge=brsingle',
        '--project_id=p-single',
      ),
    );
    const row = await network('10.31.0.0/24');
    expect(line).toEqual(['single', '10.31.0.0/24', 'vlan', '310', row.uuid]);
    expect(row).toMatchObject({ vlan: 310, bridge: 'brsingle', bridge_interface: 'eth1', project_id: 'p-single' });
  });

  it.sequential("the positional form CIDR NUM_NETWORKS NETWORK_SIZE creates label 'public'", async () => {
    const [line] = createdLines(await manage(conf.flatdhcp, 'network', 'create', '10.40.0.0/24', '1', '256'));
    const row = await network('10.40.0.0/24');
    expect(line).toEqual(['public', '10.40.0.0/24', row.uuid]);
    expect(await countFixedIps({ network_id: row.id })).toBe(256);
  });

  it.sequential('network list shows every network in nova-manage columns', async () => {
    const result = await manage(conf.flatdhcp, 'network', 'list');
    expectOk(result);
    const [header, ...rows] = parseTable(result.stdout);
    expect(header).toEqual(NETWORK_LIST_HEADER);
    const all = (await cli.db.knex('networks').where({ deleted: 0 }).orderBy('id')) as NetworkRow[];
    const none = (value: string | number | null) => (value === null ? 'None' : String(value));
    expect(rows).toEqual(
      all.map((row) => [
        String(row.id),
        row.cidr,
        none(row.cidr_v6),
        row.dhcp_start,
        none(row.dns1),
        none(row.dns2),
        none(row.vlan),
        none(row.project_id),
        row.uuid,
      ]),
    );
    const byCidr = new Map(rows.map((row) => [row[1], row]));
    expect(byCidr.get('10.10.0.0/24')!.slice(2, 8)).toEqual(['None', '10.10.0.2', '8.8.4.4', '1.1.1.1', 'None', 'None']);
    expect(byCidr.get('10.20.1.0/24')!.slice(2, 8)).toEqual(['fd00:20:0:1::/64', '10.20.1.2', '10.20.0.53', 'None', 'None', 'None']);
    expect(byCidr.get('10.30.1.0/24')!.slice(2, 8)).toEqual(['None', '10.30.1.3', 'None', 'None', '301', 'None']);
    expect(byCidr.get('10.31.0.0/24')!.slice(6, 8)).toEqual(['310', 'p-single']);
    expect(rows).toHaveLength(7);
  });

  it.sequential('network modify associates and disassociates project and host, with dash and underscore spellings', async () => {
    const target = await network('10.40.0.0/24');
    const steps: [string[], string, { project_id: string | null; host: string | null }][] = [
      [['--fixed_range=10.40.0.0/24', '--project=p1', '--host=h1'], 'project p1, host h1', { project_id: 'p1', host: 'h1' }],
      [
        ['--fixed-range=10.40.0.0/24', '--disassociate-project', '--disassociate-host'],
        'project None, host None',
        { project_id: null, host: null },
      ],
      [[`--uuid=${target.uuid}`, '--project', 'p2', '--host', 'h2'], 'project p2, host h2', { project_id: 'p2', host: 'h2' }],
      [[target.uuid, '--disassociate_project', '--disassociate_host'], 'project None, host None', { project_id: null, host: null }],
      [['10.40.0.0/24', '--host=h3'], 'project None, host h3', { project_id: null, host: 'h3' }],
    ];
    for (const [args, shown, state] of steps) {
      const result = await manage(conf.flatdhcp, 'network', 'modify', ...args);
      expectOk(result);
      expect(result.stdout).toBe(`network 10.40.0.0/24: ${shown}\n`);
      expect(await network('10.40.0.0/24')).toMatchObject(state);
    }
  });

  it.sequential("project scrub --project takes the project's networks away", async () => {
    for (const cidr of ['10.20.0.0/24', '10.20.1.0/24'])
      expectOk(await manage(conf.flatdhcp, 'network', 'modify', `--fixed_range=${cidr}`, '--project=scrubme'));
    const result = await manage(conf.flatdhcp, 'project', 'scrub', '--project=scrubme');
    expectOk(result);
    expect(result.stdout).toBe('disassociated 2 network(s) from project scrubme\n');
    expect((await network('10.20.0.0/24')).project_id).toBeNull();
    expect((await network('10.20.1.0/24')).project_id).toBeNull();
    const nothing = await manage(conf.flatdhcp, 'project', 'scrub', '--project=scrubme');
    expectOk(nothing);
    expect(nothing.stdout).toBe('disassociated 0 network(s) from project scrubme\n');
  });

  it.sequential('fixed list shows every address; --host only those of instances on that host', async () => {
    const publicNet = await network('10.40.0.0/24');
    const manager = createManager({ db: cli.db, config: testConfig({ network_manager: 'flatdhcp' }), host: new RecordingHost() });
    await manager.allocation.allocate({
      instanceUuid: randomUUID(),
      projectId: 'p-web',
      host: 'compute7',
      hostname: 'web1',
      requestedNetworks: [{ networkUuid: publicNet.uuid }],
    });

    const all = await manage(conf.flatdhcp, 'fixed', 'list');
    expectOk(all);
    const [header, ...rows] = parseTable(all.stdout);
    expect(header).toEqual(['network', 'IP address', 'hostname', 'host']);
    const live = (await cli.db.knex('networks').where({ deleted: 0 }).select('id')) as { id: number }[];
    expect(rows).toHaveLength(
      Number(
        (
          await cli.db
            .knex('fixed_ips')
            .whereIn(
              'network_id',
              live.map((row) => row.id),
            )
            .count({ n: '*' })
        )[0]!.n,
      ),
    );
    expect(rows).toContainEqual(['10.40.0.0/24', '10.40.0.2', 'web1', 'compute7']);
    expect(rows).toContainEqual(['10.40.0.0/24', '10.40.0.3', 'None', 'None']);

    const onHost = await manage(conf.flatdhcp, 'fixed', 'list', '--host=compute7');
    expectOk(onHost);
    expect(parseTable(onHost.stdout)).toEqual([
      ['network', 'IP address', 'hostname', 'host'],
      ['10.40.0.0/24', '10.40.0.2', 'web1', 'compute7'],
    ]);

    const elsewhere = await manage(conf.flatdhcp, 'fixed', 'list', '--host', 'nowhere');
    expectOk(elsewhere);
    expect(elsewhere.stdout).toBe('No fixed IP found for host nowhere.\n');
  });

  it.sequential('fixed reserve and unreserve --address flip the reserved flag', async () => {
    const reserved = async () =>
      Boolean(((await cli.db.knex('fixed_ips').where({ address: '10.40.0.10' }).first()) as { reserved: number | boolean }).reserved);
    expect(await reserved()).toBe(false);
    const reserve = await manage(conf.flatdhcp, 'fixed', 'reserve', '--address=10.40.0.10');
    expectOk(reserve);
    expect(reserve.stdout).toBe('reserved 10.40.0.10\n');
    expect(await reserved()).toBe(true);
    const unreserve = await manage(conf.flatdhcp, 'fixed', 'unreserve', '--address', '10.40.0.10');
    expectOk(unreserve);
    expect(unreserve.stdout).toBe('unreserved 10.40.0.10\n');
    expect(await reserved()).toBe(false);
  });

  it.sequential('network delete by --fixed_range, --uuid and positionally removes the network and its fixed IPs', async () => {
    const targets = [await network('10.10.0.0/24'), await network('10.30.0.0/24'), await network('10.20.1.0/24')];
    const selectors = [['--fixed_range=10.10.0.0/24'], [`--uuid=${targets[1]!.uuid}`], ['10.20.1.0/24']];
    for (const [index, selector] of selectors.entries()) {
      const target = targets[index]!;
      const result = await manage(conf.vlan, 'network', 'delete', ...selector);
      expectOk(result);
      expect(result.stdout).toBe(`deleted network ${target.label} ${target.cidr} ${target.uuid}\n`);
      expect(await cli.db.knex('networks').where({ id: target.id, deleted: 0 })).toHaveLength(0);
      expect(await countFixedIps({ network_id: target.id })).toBe(0);
    }
    const list = await manage(conf.vlan, 'network', 'list');
    expectOk(list);
    const cidrs = parseTable(list.stdout)
      .slice(1)
      .map((row) => row[1]);
    expect(cidrs).toEqual(['10.20.0.0/24', '10.30.1.0/24', '10.31.0.0/24', '10.40.0.0/24']);
  });
});

describe('novanet-manage help', () => {
  const COMMANDS = [
    'network create',
    'network list',
    'network delete',
    'network modify',
    'fixed list',
    'fixed reserve',
    'fixed unreserve',
    'floating create',
    'floating list',
    'floating delete',
    'project scrub',
    'db sync',
    'db version',
  ];

  it('a bare novanet-manage prints the overview of every command (exit 2: no command given)', async () => {
    const result = await run('manage', []);
    // Nothing asked: a usage error, so the overview goes to stderr.
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n')[0]).toBe('usage: novanet-manage [--config-file=FILE] CATEGORY ACTION [options]');
    for (const command of COMMANDS) expect(result.stderr).toMatch(new RegExp(`^  ${command} +\\S`, 'm'));
    expect(result.stderr).toContain("Run 'novanet-manage CATEGORY ACTION --help' for an action's options.");
    const asked = await run('manage', ['--help']);
    expectOk(asked);
    expect(asked.stdout).toBe(result.stderr);
  });

  it("ACTION --help lists the action's options and needs no config or database", async () => {
    const result = await run('manage', ['network', 'create', '--help']);
    expectOk(result);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe(
      'usage: novanet-manage network create --label=LABEL --fixed_range_v4=CIDR [options] | network create CIDR NUM_NETWORKS NETWORK_SIZE',
    );
    for (const option of [
      '--label=LABEL',
      '--fixed_range_v4=CIDR',
      '--num_networks=N',
      '--network_size=N',
      '--vlan=ID',
      '--vpn=PORT',
      '--fixed_range_v6=CIDR',
      '--gateway=IP',
      '--gateway_v6=IP',
      '--bridge=NAME',
      '--bridge_interface=IF',
      '--multi_host=T|F',
      '--dns1=IP',
      '--dns2=IP',
      '--uuid=UUID',
      '--fixed_cidr=CIDR',
      '--project_id=PROJECT',
      '--priority=N',
    ]) {
      expect(
        lines.some((line) => line.startsWith(`  ${option} `)),
        option,
      ).toBe(true);
    }
    const modify = await run('manage', ['network', 'modify', '-h']);
    expectOk(modify);
    for (const option of [
      '--fixed_range=CIDR',
      '--uuid=UUID',
      '--project=PROJECT',
      '--host=HOST',
      '--disassociate_project',
      '--disassociate_host',
    ]) {
      expect(modify.stdout).toMatch(new RegExp(`^  ${option.replace(/[|]/g, '\\|')} `, 'm'));
    }
  });
});
