/**
 * novanet-manage's error contract (issue 2): every invalid input and every typo class
 * gets one `error: ...` line on stderr, exit status 2, no stack trace, nothing on
 * stdout, and leaves every row of the database as it was.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManager } from '../../src/managers/registry.js';
import { type CliDatabase, cliDatabase, expectError, run, snapshot } from '../support/cli.js';
import { BACKENDS, type Backend, testConfig } from '../support/databases.js';
import { RecordingHost } from '../support/recordingHost.js';

const UNKNOWN_UUID = randomUUID();

type Case = [string, string[], string | RegExp];

/**
 * Typing mistakes: refused while the command line is read, before any query, so the
 * backend makes no difference; they run once, on SQLite. [what, argv after
 * --config-file, the message after `error: `]
 */
const TYPO_CASES: Case[] = [
  [
    'unknown option, with the nearest one suggested',
    ['network', 'create', '--lable=x', '--fixed_range_v4=10.5.0.0/24'],
    'network create: unknown option --lable; did you mean --label?',
  ],
  ['unknown single-dash option', ['network', 'list', '-v'], 'network list: unknown option "-v" (options are spelled --name)'],
  [
    'missing value at the end',
    ['network', 'create', '--fixed_range_v4=10.5.0.0/24', '--label'],
    'network create: --label needs a value (LABEL)',
  ],
  [
    'missing value before the next option',
    ['network', 'create', '--label', '--fixed_range_v4=10.5.0.0/24'],
    'network create: --label needs a value (LABEL)',
  ],
  ['empty value', ['network', 'create', '--label=', '--fixed_range_v4=10.5.0.0/24'], 'network create: --label needs a value (LABEL)'],
  [
    'bad number',
    ['network', 'create', '--label=x', '--fixed_range_v4=10.5.0.0/24', '--num_networks=abc'],
    'network create: --num_networks must be a whole number, got "abc"',
  ],
  [
    'bad number in the positional form',
    ['network', 'create', '10.5.0.0/24', 'one', '256'],
    'network create: NUM_NETWORKS must be a whole number, got "one"',
  ],
  [
    'bad boolean',
    ['network', 'create', '--label=x', '--fixed_range_v4=10.5.0.0/24', '--multi_host=maybe'],
    'network create: --multi_host must be T or F (true/false), got "maybe"',
  ],
  [
    'repeated option',
    ['network', 'create', '--label=a', '--label=b', '--fixed_range_v4=10.5.0.0/24'],
    'network create: --label given more than once',
  ],
  [
    'repeated option in both spellings',
    ['network', 'create', '--label=a', '--fixed_range_v4=10.5.0.0/24', '--fixed-range-v4=10.6.0.0/24'],
    'network create: --fixed_range_v4 given more than once',
  ],
  [
    'value given to a flag',
    ['network', 'modify', '--fixed_range=10.0.0.0/24', '--disassociate-project=yes'],
    'network modify: --disassociate_project takes no value',
  ],
  ['unexpected positional', ['network', 'list', 'extra'], 'network list: unexpected argument "extra"'],
  [
    'unknown category',
    ['netwrk', 'list'],
    'unknown category "netwrk"; categories are network, fixed, floating, project, db, token, host, secgroup',
  ],
  ['unknown action', ['network', 'lst'], 'network: unknown action "lst"; actions are create, list, delete, modify'],
  ['missing action', ['network'], 'network: give an action (create, list, delete, modify)'],
  ['missing --label', ['network', 'create', '--fixed_range_v4=10.5.0.0/24'], 'network create: --label is required'],
  [
    'range given twice',
    ['network', 'create', '--label=x', '--fixed_range_v4=10.5.0.0/24', '10.6.0.0/24'],
    'network create: the range is given both positionally and as --fixed_range_v4',
  ],
  ['delete naming no network', ['network', 'delete'], 'network delete: name the network once, with --fixed_range=CIDR or --uuid=UUID'],
  [
    'delete naming two networks',
    ['network', 'delete', '--fixed_range=10.0.0.0/24', `--uuid=${UNKNOWN_UUID}`],
    'network delete: name the network once, with --fixed_range=CIDR or --uuid=UUID',
  ],
  ['reserve without an address', ['fixed', 'reserve'], 'fixed reserve: give the address once, as --address=IP'],
  ['scrub without a project', ['project', 'scrub'], 'project scrub: give the project once, as --project=PROJECT'],
];

/** Refusals that depend on what the database holds, or that the managers decide: on both backends. */
const DOMAIN_CASES: Case[] = [
  // network create: what nova validated
  [
    'malformed CIDR',
    ['network', 'create', '--label=x', '--fixed_range_v4=10.5.0/24x'],
    'fixed_range_v4 must be a CIDR such as 10.0.0.0/24, got "10.5.0/24x"',
  ],
  [
    'CIDR prefix too long',
    ['network', 'create', '--label=x', '--fixed_range_v4=10.5.0.0/33'],
    'fixed_range_v4 prefix /33 is longer than /32, in "10.5.0.0/33"',
  ],
  [
    'CIDR with host bits',
    ['network', 'create', '--label=x', '--fixed_range_v4=10.5.0.1/16'],
    'fixed_range_v4 "10.5.0.1/16" has host bits set; the network is 10.5.0.0/16',
  ],
  [
    'range too small for num x size',
    ['network', 'create', '--label=x', '--fixed_range_v4=10.5.0.0/24', '--num_networks=2', '--network_size=256'],
    '2 networks of 256 addresses do not fit in fixed_range_v4 10.5.0.0/24 (room for 1)',
  ],
  [
    'network_size larger than the range',
    ['network', 'create', '--label=x', '--fixed_range_v4=10.5.0.0/25'],
    'network_size 256 does not fit in fixed_range_v4 10.5.0.0/25',
  ],
  [
    'overlap: inside an existing network',
    ['network', 'create', '--label=x', '--fixed_range_v4=10.0.0.0/25', '--network_size=128'],
    '10.0.0.0/25 lies inside 10.0.0.0/24 of network taken',
  ],
  [
    'overlap: the same range again',
    ['network', 'create', '--label=x', '--fixed_range_v4=10.0.0.0/24'],
    'fixed_range_v4 10.0.0.0/24 has room for only 0 more network(s) of 256 addresses; 1 requested',
  ],
  [
    'duplicate VLAN',
    ['network', 'create', '--label=x', '--fixed_range_v4=10.5.0.0/24', '--vlan=200'],
    'VLAN 200 is already used by another network',
  ],
  [
    'VLAN ids past 4094',
    ['network', 'create', '--label=x', '--fixed_range_v4=10.5.0.0/23', '--num_networks=2', '--vlan_start=4094'],
    'vlan_start 4094 + num_networks 2 goes past VLAN 4094',
  ],
  [
    'bad DNS',
    ['network', 'create', '--label=x', '--fixed_range_v4=10.5.0.0/24', '--dns1=8.8.8'],
    'dns1 must be an IPv4 address, got "8.8.8"',
  ],
  [
    'bad second DNS',
    ['network', 'create', '--label=x', '--fixed_range_v4=10.5.0.0/24', '--dns1=8.8.8.8', '--dns2=dns.example'],
    'dns2 must be an IPv4 address, got "dns.example"',
  ],
  [
    'gateway outside the network',
    ['network', 'create', '--label=x', '--fixed_range_v4=10.5.0.0/24', '--gateway=10.6.0.1'],
    'gateway 10.6.0.1 is not a usable address of 10.5.0.0/24',
  ],
  [
    'gateway on the broadcast address',
    ['network', 'create', '--label=x', '--fixed_range_v4=10.5.0.0/24', '--gateway=10.5.0.255'],
    'gateway 10.5.0.255 is not a usable address of 10.5.0.0/24',
  ],
  [
    'malformed gateway',
    ['network', 'create', '--label=x', '--fixed_range_v4=10.5.0.0/24', '--gateway=10.5.0.x'],
    'gateway must be an IPv4 address, got "10.5.0.x"',
  ],
  // network delete / modify
  [
    'delete of a network with allocated IPs',
    ['network', 'delete', '--fixed_range=10.1.0.0/24'],
    'network 10.1.0.0/24 still has 1 fixed IP(s) held by instances (1 allocated); deallocate them first',
  ],
  [
    'delete of a network a project owns',
    ['network', 'delete', '--fixed_range=10.2.0.0/24'],
    'network 10.2.0.0/24 is associated with project p-owner; disassociate it first (network modify --disassociate-project or project scrub)',
  ],
  ['delete of an unknown uuid', ['network', 'delete', `--uuid=${UNKNOWN_UUID}`], `network ${UNKNOWN_UUID} not found`],
  ['delete of an unknown range (positional)', ['network', 'delete', '10.99.0.0/24'], 'network 10.99.0.0/24 not found'],
  [
    'modify with nothing to change',
    ['network', 'modify', '--fixed_range=10.0.0.0/24'],
    'nothing to modify: give --project, --host, --disassociate-project or --disassociate-host',
  ],
  [
    'modify with contradicting options',
    ['network', 'modify', '--fixed_range=10.0.0.0/24', '--project=p1', '--disassociate-project'],
    '--project and --disassociate-project contradict each other',
  ],
  [
    'modify giving an owned network to another project',
    ['network', 'modify', '--fixed_range=10.2.0.0/24', '--project=p-other'],
    'network 10.2.0.0/24 already belongs to project p-owner; disassociate it first',
  ],
  [
    'modify with a bad host name',
    ['network', 'modify', '--fixed_range=10.0.0.0/24', '--host=bad_host!'],
    'host must be a DNS name (letters, digits, \'-\', dots between labels), got "bad_host!"',
  ],
  // fixed / project
  ['reserve of an unknown address', ['fixed', 'reserve', '--address=10.99.0.5'], 'fixed IP 10.99.0.5 not found in any network'],
  ['reserve of something that is no address', ['fixed', 'reserve', '--address=banana'], 'address must be an IP address, got "banana"'],
  [
    'reserve of an address an instance holds',
    ['fixed', 'reserve', '--address=10.1.0.2'],
    /^fixed IP 10\.1\.0\.2 is in use by instance [0-9a-f-]{36}; deallocate it first$/,
  ],
  [
    'unreserve of the broadcast address',
    ['fixed', 'unreserve', '--address=10.0.0.255'],
    'fixed IP 10.0.0.255 is the broadcast address of network 10.0.0.0/24; it stays reserved',
  ],
  [
    'scrub of a project still holding IPs',
    ['project', 'scrub', '--project=p-busy'],
    'network 10.3.0.0/24 still has 1 fixed IP(s) held by instances (1 allocated); deallocate them first',
  ],
];

/**
 * A database with the networks the cases refer to: `taken` (VLAN 200), `busy` (an
 * instance holds one of its IPs, allocated through the manager API), `owned` (belongs
 * to project p-owner) and `vlan-busy` (p-busy's, with an instance on it).
 */
async function errorFixture(backend: Backend) {
  const cli = await cliDatabase(backend, { sync: true });
  const config = cli.config('vlan.conf', { network_manager: 'vlan', vlan_interface: 'eth1' });
  const vlan = createManager({
    db: cli.db,
    config: testConfig({ network_manager: 'vlan', vlan_interface: 'eth1' }),
    host: new RecordingHost(),
  });
  const flat = createManager({
    db: cli.db,
    config: testConfig({ network_manager: 'flatdhcp', flat_network_bridge: 'brflat' }),
    host: new RecordingHost(),
  });
  await vlan.networks.create({ label: 'taken', fixedRangeV4: '10.0.0.0/24', vlan: 200 });
  const [busy] = await flat.networks.create({ label: 'busy', fixedRangeV4: '10.1.0.0/24' });
  await flat.allocation.allocate({
    instanceUuid: randomUUID(),
    projectId: 'p-busy',
    host: 'compute1',
    hostname: 'vm1',
    requestedNetworks: [{ networkUuid: busy!.uuid }],
  });
  await vlan.networks.create({ label: 'owned', fixedRangeV4: '10.2.0.0/24', projectId: 'p-owner' });
  await vlan.networks.create({ label: 'vlan-busy', fixedRangeV4: '10.3.0.0/24', projectId: 'p-busy' });
  await vlan.allocation.allocate({ instanceUuid: randomUUID(), projectId: 'p-busy', host: 'compute1', hostname: 'vm2' });

  /** Runs a command that must be refused and checks that no row changed. */
  const refused = async (args: string[], message: string | RegExp): Promise<string> => {
    const before = await snapshot(cli.db);
    const text = expectError(await run('manage', args), message);
    expect(await snapshot(cli.db)).toEqual(before);
    return text;
  };
  return { cli, config, refused };
}

type Fixture = Awaited<ReturnType<typeof errorFixture>>;

// Refusals change nothing, so they (and the backends) can run side by side.
describe.each(BACKENDS)('novanet-manage refusals on %s', { concurrent: true }, (backend) => {
  let fixture: Fixture;

  beforeAll(async () => {
    fixture = await errorFixture(backend);
  });

  afterAll(async () => {
    await fixture?.cli.close();
  });

  it('starts from the networks the cases refer to', async () => {
    const rows = (await fixture.cli.db.knex('networks').select('label', 'cidr', 'project_id').orderBy('id')) as {
      label: string;
      cidr: string;
      project_id: string | null;
    }[];
    expect(rows).toEqual([
      { label: 'taken', cidr: '10.0.0.0/24', project_id: null },
      { label: 'busy', cidr: '10.1.0.0/24', project_id: null },
      { label: 'owned', cidr: '10.2.0.0/24', project_id: 'p-owner' },
      { label: 'vlan-busy', cidr: '10.3.0.0/24', project_id: 'p-busy' },
    ]);
  });

  it.each(DOMAIN_CASES)('%s', async (_what, args, message) => {
    await fixture.refused(['--config-file', fixture.config, ...args], message);
  });
});

describe('novanet-manage typing mistakes and config file errors (SQLite: refused before any query)', () => {
  let fixture: Fixture;
  let cli: CliDatabase;
  let config: string;
  let refused: Fixture['refused'];

  beforeAll(async () => {
    fixture = await errorFixture('sqlite');
    ({ cli, config, refused } = fixture);
  });

  afterAll(async () => {
    await fixture?.cli.close();
  });

  it.concurrent.each(TYPO_CASES)('%s', async (_what, args, message) => {
    await refused(['--config-file', config, ...args], message);
  });

  it('an unknown option in the config file warns and the command still works', async () => {
    const path = cli.config('unknown.conf', { network_manager: 'vlan', vlan_interface: 'eth1', bogus_option: '1' });
    const before = await snapshot(cli.db);
    const result = await run('manage', ['--config-file', path, 'network', 'list']);
    expect(result.status).toBe(0);
    expect(result.stderr).toBe(`warning: unknown option [DEFAULT] bogus_option in ${path} (ignored)\n`);
    expect(result.stdout).toMatch(/^id +IPv4 /);
    expect(await snapshot(cli.db)).toEqual(before);
  });

  it('a bad value fails naming the option', async () => {
    const path = cli.config('badvalue.conf', { network_manager: 'vlan', vlan_interface: 'eth1', vlan_start: 'abc' });
    await refused(
      ['--config-file', path, 'network', 'create', '--label=x', '--fixed_range_v4=10.5.0.0/24'],
      'vlan_start must be an integer, got "abc"',
    );
  });

  it('an unknown network_manager fails naming the option', async () => {
    const path = cli.config('badmanager.conf', { network_manager: 'nova.network.manager.NeutronManager' });
    await refused(
      ['--config-file', path, 'network', 'create', '--label=x', '--fixed_range_v4=10.5.0.0/24'],
      /^network_manager must be one of flat, flatdhcp, vlan or a nova class path \(.*\), got "nova\.network\.manager\.NeutronManager"$/,
    );
  });

  it('a malformed line fails naming the file and line', async () => {
    const path = join(cli.dir, 'malformed.conf');
    writeFileSync(path, `[DEFAULT]\nthis is not an option\n[database]\nconnection = ${cli.url}\n`);
    await refused(
      ['--config-file', path, 'network', 'create', '--label=x', '--fixed_range_v4=10.5.0.0/24'],
      `${path}:2: expected "[section]" or "key = value", got "this is not an option"`,
    );
  });

  it('a missing --config-file target is refused', async () => {
    const path = join(cli.dir, 'nope.conf');
    await refused(['--config-file', path, 'network', 'list'], `cannot read config file ${path}: ENOENT`);
  });

  it('--config-file without a value is refused', async () => {
    await refused(['network', 'list', '--config-file'], '--config-file needs a value (FILE)');
  });

  // Issue 16, cause 2: the driver pool's own warning ("Acquire connection error" and a stack line) went to stdout.
  it.each([
    ['novanet-manage', 'manage', ['network', 'list']],
    ['novanet-dhcpbridge', 'dhcpbridge', ['init']],
  ] as const)('%s with an unreachable MySQL says so in one line, and nothing reaches stdout', async (_name, program, args) => {
    const dir = mkdtempSync(join(tmpdir(), 'novanet-unreachable-'));
    const conf = join(dir, 'novanet.conf');
    writeFileSync(conf, '[DEFAULT]\nnetwork_manager = flatdhcp\n[database]\nconnection = mysql://nova:secret@127.0.0.1:1/nova\n');
    try {
      const result = await run(program, ['--config-file', conf, ...args], { env: { NETWORK_ID: '1' } });
      expectError(result, /^cannot reach the database: connect ECONNREFUSED 127\.0\.0\.1:1$/, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--config-file given twice is refused', async () => {
    await refused(['--config-file', config, 'network', 'list', `--config_file=${config}`], '--config-file given more than once');
  });
});
