/**
 * The bad-input corpus against every novanet-manage verb and novanet-dhcpbridge
 * (issue 7): each option and positional of each verb gets every bad value of its kind
 * (test/support/badInputs.ts). Each run exits non-zero with exactly one `error: ...`
 * line on stderr, no stack trace, nothing on stdout, and leaves every row of the
 * database as it was. The bulk runs in-process (the programs' own `manage` and
 * `dhcpbridge` functions, with their real config loading and database connection); a
 * handful go through the built binaries to prove the same of the real process.
 *
 * No command can run: the CLI's host layer writes the database only (src/cli/run.ts),
 * and the config points root_helper at a path that does not exist, so a privileged
 * command, were one ever started, would fail instead of touching this machine.
 */
import { describe, expect, it } from 'vitest';
import { TokenService } from '../../src/auth/tokens.js';
import { dhcpbridge } from '../../src/cli/dhcpbridge/index.js';
import { CATEGORIES, manage } from '../../src/cli/manage/index.js';
import { createManager } from '../../src/managers/registry.js';
import { asArgs, badIntegers, badValues, type Kind } from '../support/badInputs.js';
import { type CliDatabase, cliDatabase, expectError, type RunResult, recordingIo, run } from '../support/cli.js';
import { testConfig } from '../support/databases.js';
import { snapshot } from '../support/dbState.js';
import { RecordingHost } from '../support/recordingHost.js';
import { useFixture, withFixture } from '../support/useFixture.js';

/** What a valid command line needs from the world. */
interface World {
  shared: string;
  spare: string;
  /** The fixed IP of instance 1 (its MAC `mac`), and a free one. */
  fixed: string;
  mac: string;
  freeFixed: string;
  tokenId: string;
}

type FieldSpec = Kind | { min: number; max: number };

interface VerbCase {
  /** `network create`, or `dhcpbridge add` for the dnsmasq script. */
  verb: string;
  what: string;
  /** A valid command line, as option name (or `$N` for positional N) to value. */
  args: (w: World) => Record<string, string>;
  /** The options (or `$N` positionals) to substitute, with their kind. */
  fields: Record<string, FieldSpec>;
}

const NETWORK_CREATE: Record<string, FieldSpec> = {
  label: 'text',
  fixed_range_v4: 'cidr4',
  fixed_range_v6: 'cidr6',
  gateway: 'ipv4',
  gateway_v6: 'ipv6',
  bridge: 'ifname',
  bridge_interface: 'ifname',
  multi_host: 'bool',
  dns1: 'ipv4',
  dns2: 'ipv4',
  uuid: 'uuid',
  fixed_cidr: 'cidr4',
  project_id: 'project',
  dhcp_server: 'ipv4',
  enable_dhcp: 'bool',
  share_address: 'bool',
  num_networks: { min: 1, max: 4094 },
  network_size: { min: 4, max: 2 ** 24 },
  vlan: { min: 1, max: 4094 },
  vlan_start: { min: 1, max: 4094 },
  vpn: { min: 1, max: 65535 },
  priority: { min: 0, max: 2 ** 31 - 1 },
  mtu: { min: 68, max: 65535 },
};

const VERBS: VerbCase[] = [
  {
    verb: 'network create',
    what: 'options',
    args: () => ({ label: 'new', fixed_range_v4: '10.9.0.0/28', network_size: '16' }),
    fields: NETWORK_CREATE,
  },
  {
    verb: 'network create',
    what: 'positional form',
    args: () => ({ $0: '10.9.0.0/28', $1: '1', $2: '16' }),
    fields: { $0: 'cidr4', $1: { min: 1, max: 4094 }, $2: { min: 4, max: 2 ** 24 } },
  },
  { verb: 'network list', what: 'all', args: () => ({}), fields: { $0: 'text' } },
  { verb: 'network delete', what: 'by range', args: () => ({ fixed_range: '10.2.0.0/28' }), fields: { fixed_range: 'cidr4' } },
  { verb: 'network delete', what: 'by uuid', args: (w) => ({ uuid: w.spare }), fields: { uuid: 'uuid' } },
  {
    verb: 'network modify',
    what: 'project and host',
    args: (w) => ({ uuid: w.spare, project: 'p9', host: 'net9' }),
    fields: { uuid: 'uuid', project: 'project', host: 'host' },
  },
  {
    verb: 'network modify',
    what: 'by range',
    args: () => ({ fixed_range: '10.0.0.0/28', host: 'net9' }),
    fields: { fixed_range: 'cidr4' },
  },
  { verb: 'fixed list', what: 'of a host', args: () => ({ host: 'compute1' }), fields: { host: 'host' } },
  { verb: 'fixed reserve', what: 'an address', args: (w) => ({ address: w.freeFixed }), fields: { address: 'ipv4' } },
  { verb: 'fixed reserve', what: 'positional', args: (w) => ({ $0: w.freeFixed }), fields: { $0: 'ipv4' } },
  { verb: 'fixed unreserve', what: 'an address', args: () => ({ address: '10.0.0.12' }), fields: { address: 'ipv4' } },
  {
    verb: 'floating create',
    what: 'a range',
    args: () => ({ ip_range: '192.0.2.64/29', pool: 'extra', interface: 'eth3' }),
    fields: { ip_range: 'range4', pool: 'text', interface: 'ifname' },
  },
  { verb: 'floating list', what: 'of a host', args: () => ({ host: 'nethost' }), fields: { host: 'host' } },
  { verb: 'floating delete', what: 'a range', args: () => ({ ip_range: '203.0.113.0/29' }), fields: { ip_range: 'range4' } },
  { verb: 'project scrub', what: 'a project', args: () => ({ project: 'p2' }), fields: { project: 'project' } },
  { verb: 'db sync', what: 'the schema', args: () => ({}), fields: { $0: 'text' } },
  { verb: 'db version', what: 'the version', args: () => ({}), fields: { $0: 'text' } },
  {
    verb: 'token create',
    what: 'a token',
    args: () => ({ project_id: 'p1', role: 'member', description: 'ci' }),
    fields: { project_id: 'project', role: 'project', description: 'text' },
  },
  { verb: 'token list', what: 'of a project', args: () => ({ project_id: 'p1' }), fields: { project_id: 'project' } },
  { verb: 'token revoke', what: 'by id', args: (w) => ({ id: w.tokenId }), fields: { id: { min: 1, max: Number.MAX_SAFE_INTEGER } } },
  { verb: 'token revoke', what: 'positional', args: (w) => ({ $0: w.tokenId }), fields: { $0: { min: 1, max: Number.MAX_SAFE_INTEGER } } },
  // HOSTNAME ($2) is what the VM asked for in its DHCP request: untrusted, and ignored
  // (the hosts file is written from the database), so it must not make a lease fail.
  { verb: 'dhcpbridge add', what: 'a lease', args: (w) => ({ $0: w.mac, $1: w.fixed, $2: 'vm1' }), fields: { $0: 'mac', $1: 'ipv4' } },
  { verb: 'dhcpbridge old', what: 'a renewal', args: (w) => ({ $0: w.mac, $1: w.fixed }), fields: { $0: 'mac', $1: 'ipv4' } },
  { verb: 'dhcpbridge del', what: 'a release', args: (w) => ({ $0: w.mac, $1: w.fixed }), fields: { $0: 'mac', $1: 'ipv4' } },
];

/** The argv (after `--config-file FILE`) of a verb with these options and positionals. */
function argvOf(verb: string, values: Record<string, string>): string[] {
  const words = verb.split(' ');
  const positionals = Object.keys(values)
    .filter((key) => key.startsWith('$'))
    .sort()
    .map((key) => values[key]!);
  const options = Object.entries(values)
    .filter(([key]) => !key.startsWith('$'))
    .map(([key, value]) => `--${key}=${value}`);
  // dnsmasq calls its script with positionals only; novanet-manage takes them after `--`.
  if (words[0] === 'dhcpbridge') return [...words.slice(1), ...positionals];
  return [...words, ...options, ...(positionals.length > 0 ? ['--', ...positionals] : [])];
}

function casesOf(row: VerbCase): { title: string; row: VerbCase; field: string; value: string }[] {
  return Object.entries(row.fields).flatMap(([field, spec]) => {
    const values = asArgs(typeof spec === 'string' ? badValues(spec) : badIntegers(spec.min, spec.max))
      // `--x=` is "needs a value" (another case); an empty positional is still a value.
      .filter((entry) => !(entry.value === '' && !field.startsWith('$')));
    return values.map((entry) => ({ title: `${row.verb} (${row.what}): ${field} = ${entry.name}`, row, field, value: entry.value }));
  });
}

interface Fixture {
  cli: CliDatabase;
  config: string;
  w: World;
  close(): Promise<void>;
}

async function fixture(): Promise<Fixture> {
  const cli = await cliDatabase('sqlite', { sync: true });
  const config = cli.config('novanet.conf', { flat_interface: 'eth1' });
  const manager = createManager({
    db: cli.db,
    config: testConfig({ network_manager: 'flatdhcp', flat_interface: 'eth1' }),
    host: new RecordingHost(),
  });
  const [shared] = await manager.networks.create({ label: 'shared', fixedRangeV4: '10.0.0.0/28', networkSize: 16, projectId: 'p1' });
  const [spare] = await manager.networks.create({ label: 'spare', fixedRangeV4: '10.2.0.0/28', networkSize: 16 });
  await manager.networks.create({ label: 'owned', fixedRangeV4: '10.3.0.0/28', networkSize: 16, projectId: 'p2' });
  await manager.fixedIps.reserve('10.0.0.12');
  const info = await manager.allocation.allocate({
    instanceUuid: '00000000-0000-4000-8000-000000000001',
    projectId: 'p1',
    host: 'compute1',
    hostname: 'vm1',
    requestedNetworks: [{ networkUuid: shared!.uuid }],
  });
  await manager.floating.createRange('203.0.113.0/29');
  const vif = info.network_info[0]!;
  const fixed = vif.network.subnets[0]!.ips[0]!.address;
  const token = await new TokenService({ db: cli.db }).create('p1', 'member');
  return {
    cli,
    config,
    w: {
      shared: shared!.uuid,
      spare: spare!.uuid,
      fixed,
      mac: vif.address,
      freeFixed: fixed === '10.0.0.9' ? '10.0.0.10' : '10.0.0.9',
      tokenId: String(token.info.id),
    },
    close: () => cli.close(),
  };
}

/** Runs a verb in-process, as its binary would, collecting what it writes. */
async function inProcess(config: string, verb: string, argv: string[]): Promise<RunResult> {
  const { io, written } = recordingIo({ interactive: false, env: { NETWORK_ID: '1' } });
  const program = verb.startsWith('dhcpbridge') ? dhcpbridge : manage;
  const status = await program(['--config-file', config, ...argv], io);
  return { status, signal: null, ...written };
}

const CASES = VERBS.flatMap(casesOf);

describe('bad input to every CLI verb (in-process)', () => {
  const current = useFixture(fixture);

  it('has a row for every novanet-manage verb', () => {
    const verbs = Object.entries(CATEGORIES).flatMap(([category, actions]) =>
      Object.keys(actions).map((action) => `${category} ${action}`),
    );
    expect(verbs.filter((verb) => !VERBS.some((row) => row.verb === verb))).toEqual([]);
  });

  it.each(CASES)('$title', async ({ row, field, value }) => {
    const f = current();
    const before = await snapshot(f.cli.db);
    const result = await inProcess(f.config, row.verb, argvOf(row.verb, { ...row.args(f.w), [field]: value }));
    expectError(result, /./, result.status ?? -1);
    expect(result.status, 'a non-zero exit status').not.toBe(0);
    expect(await snapshot(f.cli.db), 'the database unchanged').toEqual(before);
  });
});

/** Each row's command line as it stands succeeds (in a world of its own): the refusals are the bad value's doing. */
describe('the valid command line of every row', () => {
  it.each(VERBS.map((row) => ({ title: `${row.verb} (${row.what})`, row })))('$title succeeds', ({ row }) =>
    withFixture(fixture, async (f) => {
      const result = await inProcess(f.config, row.verb, argvOf(row.verb, row.args(f.w)));
      expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
    }),
  );
});

/**
 * A sample through the built programs (`npm run build`): the process exits non-zero
 * with one line on stderr and no stack trace, as in-process. NUL cannot be passed in
 * an argv and 1 MB passes the kernel's limit for one argument, so those stay in-process.
 */
const SAMPLES = [
  'network create (options): label = newline',
  'network create (options): bridge = semicolon',
  'network create (options): vlan = above the maximum (4095)',
  'network create (options): fixed_range_v4 = host bits set',
  'network delete (by uuid): uuid = uuid with SQL',
  'fixed list (of a host): host = newline',
  'fixed reserve (an address): address = shell $(reboot)',
  'floating create (a range): ip_range = IPv4-mapped IPv6',
  'floating create (a range): interface = 16 characters (over IFNAMSIZ)',
  'project scrub (a project): project = SQL drop table',
  'token create (a token): project_id = shell backticks',
  'dhcpbridge add (a lease): $0 = MAC and a command',
];
const BINARY_CASES = CASES.filter((entry) => SAMPLES.includes(entry.title));

describe('bad input through the built binaries', () => {
  const current = useFixture(fixture);

  it('finds every sample among the cases', () => {
    expect(BINARY_CASES.map((entry) => entry.title).sort()).toEqual([...SAMPLES].sort());
  });

  it.concurrent.each(BINARY_CASES)('$title', async ({ row, field, value }) => {
    const f = current();
    const before = await snapshot(f.cli.db);
    const program = row.verb.startsWith('dhcpbridge') ? 'dhcpbridge' : 'manage';
    const result = await run(program, ['--config-file', f.config, ...argvOf(row.verb, { ...row.args(f.w), [field]: value })], {
      env: { NETWORK_ID: '1' },
    });
    expectError(result, /./, result.status ?? -1);
    expect(result.status).not.toBe(0);
    expect(await snapshot(f.cli.db)).toEqual(before);
  });
});
