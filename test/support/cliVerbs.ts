/**
 * Every novanet-manage verb and novanet-dhcpbridge as a row (a valid command line,
 * the kind of each option and positional), the world a valid line needs, and the
 * whole contract of a refusal: the example corpus (test/cli/badInput.test.ts) and
 * the generated one (test/cli/generated.test.ts) both run their lines through this.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { TokenService } from '../../src/auth/tokens.js';
import { dhcpbridge } from '../../src/cli/dhcpbridge/index.js';
import { manage } from '../../src/cli/manage/index.js';
import { createManager } from '../../src/managers/registry.js';
import { filesUnder, LEAKS } from './apiRoutes.js';
import type { Kind } from './badInputs.js';
import { type CliDatabase, cliDatabase, expectError, type RunResult, recordingIo } from './cli.js';
import { type Backend, testConfig } from './databases.js';
import { snapshot } from './dbState.js';
import { RecordingHost } from './recordingHost.js';

/** What a valid command line needs from the world. */
export interface World {
  shared: string;
  spare: string;
  /** The fixed IP of instance 1 (its MAC `mac`), and a free one. */
  fixed: string;
  mac: string;
  freeFixed: string;
  tokenId: string;
  /** A security group of p1's. */
  group: string;
}

export type FieldSpec = Kind | { min: number; max: number };

export interface VerbCase {
  /** `network create`, or `dhcpbridge add` for the dnsmasq script. */
  verb: string;
  what: string;
  /** A valid command line, as option name (or `$N` for positional N) to value. */
  args: (w: World) => Record<string, string>;
  /** The options (or `$N` positionals) to substitute, with their kind. */
  fields: Record<string, FieldSpec>;
}

export const NETWORK_CREATE: Record<string, FieldSpec> = {
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
  host: 'host',
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

export const VERBS: VerbCase[] = [
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
  { verb: 'host list', what: 'of a host', args: () => ({ host: 'nethost' }), fields: { host: 'host' } },
  { verb: 'secgroup list', what: 'of a project', args: () => ({ project_id: 'p1' }), fields: { project_id: 'project' } },
  { verb: 'secgroup show', what: 'by id', args: (w) => ({ id: w.group }), fields: { id: { min: 1, max: 2 ** 31 - 1 } } },
  { verb: 'secgroup show', what: 'positional', args: (w) => ({ $0: w.group }), fields: { $0: { min: 1, max: 2 ** 31 - 1 } } },
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
export function argvOf(verb: string, values: Record<string, string>): string[] {
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

export interface Fixture {
  cli: CliDatabase;
  config: string;
  w: World;
  stateDir: string;
  close(): Promise<void>;
}

export async function fixture(backend: Backend = 'sqlite'): Promise<Fixture> {
  const cli = await cliDatabase(backend, { sync: true });
  // state_path of its own, apart from the database file: a refused line writes no file there.
  const stateDir = mkdtempSync(join(tmpdir(), 'novanet-cli-state-'));
  const config = cli.config('novanet.conf', { flat_interface: 'eth1', state_path: stateDir });
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
  const group = await manager.securityGroups.create('p1', { name: 'web', description: 'web servers' });
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
      group: String(group.group.id),
    },
    stateDir,
    async close() {
      await cli.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** Runs a verb in-process, as its binary would, collecting what it writes. */
export async function inProcess(config: string, verb: string, argv: string[]): Promise<RunResult> {
  const { io, written } = recordingIo({ interactive: false, env: { NETWORK_ID: '1' } });
  const program = verb.startsWith('dhcpbridge') ? dhcpbridge : manage;
  const status = await program(['--config-file', config, ...argv], io);
  return { status, signal: null, ...written };
}

/**
 * The CLI's whole contract of a refusal: a non-zero exit with exactly one `error:`
 * line, nothing on stdout, no stack trace or driver detail, the database and every
 * file under state_path as they were.
 */
export async function expectRefusedLine(f: Fixture, verb: string, argv: string[]): Promise<RunResult> {
  const before = await snapshot(f.cli.db);
  const files = filesUnder(f.stateDir);
  const result = await inProcess(f.config, verb, argv);
  const message = expectError(result, /./, result.status ?? -1);
  expect(result.status, 'a non-zero exit status').not.toBe(0);
  for (const leak of LEAKS) expect(message, 'no stack trace, path or driver detail').not.toMatch(leak);
  expect(await snapshot(f.cli.db), 'the database unchanged').toEqual(before);
  expect(filesUnder(f.stateDir), 'no file under state_path changed').toEqual(files);
  return result;
}
