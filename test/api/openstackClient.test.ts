/**
 * The stock `openstack` CLI (Debian 12's python3-openstackclient 6.0.0) against a real
 * novanet API on SQLite, authenticated by a minimal Keystone whose catalog has only a
 * `compute` service: OSC then takes its nova-network code paths, the ones existing
 * tooling uses. Each command's output and its effect on the database are checked.
 *
 * The binary is required, not optional: `make deps` installs it, and a machine
 * without it fails here with the package to install.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Api, startApi, uuidOf } from '../support/api.js';
import { freshDatabase, type TestDatabase } from '../support/databases.js';
import { floatingRow } from '../support/floatingWorld.js';
import { type Keystone, type KeystoneUser, startKeystone } from '../support/keystone.js';
import { countRows, firstAddress } from '../support/managers.js';

const OPENSTACK = '/usr/bin/openstack';
/** One command starts in about a second; a hung one must not hang the suite. */
const COMMAND_TIMEOUT_MS = 30_000;

const USERS: KeystoneUser[] = [
  { name: 'demo', password: 'demo-secret', project: 'p1', role: 'member' },
  { name: 'other', password: 'other-secret', project: 'p2', role: 'member' },
  { name: 'admin', password: 'admin-secret', project: 'ops', role: 'admin' },
];
type UserName = 'demo' | 'other' | 'admin';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

type Row = Record<string, unknown>;

describe('the openstack CLI against novanet (compute API paths)', () => {
  let database: TestDatabase;
  let api: Api;
  let keystone: Keystone;
  let home: string;
  let vm1Fixed: string;

  beforeAll(async () => {
    database = await freshDatabase('sqlite');
    api = await startApi(database.db);
    await api.manager.networks.create({ label: 'private', fixedRangeV4: '10.0.0.0/24' });
    await api.manager.floating.createRange('203.0.113.0/29');
    await api.manager.floating.createRange('198.51.100.0/30', 'public');
    vm1Fixed = firstAddress(
      await api.manager.allocation.allocate({ instanceUuid: uuidOf(1), projectId: 'p1', host: 'compute1', hostname: 'vm1' }),
    );
    keystone = await startKeystone({ tokens: api.tokens, computeUrl: `${api.url}/v2.1`, users: USERS });
    // A HOME of its own: no clouds.yaml or cache of the machine's user gets in the way.
    home = mkdtempSync(join(tmpdir(), 'novanet-osc-'));
  });

  afterAll(async () => {
    await keystone?.close();
    await api?.close();
    await database?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  beforeEach(() => {
    api?.h.host.clear();
  });

  /**
   * Runs `openstack ARGS` as `user`, never through a shell; never throws on a non-zero
   * exit. A missing binary fails every test that needs it (counted as failed, not skipped).
   */
  function openstack(user: UserName, args: string[]): Promise<Run> {
    if (!existsSync(OPENSTACK)) throw new Error(`${OPENSTACK} is missing: install python3-openstackclient=6.0.0-4 (make deps does)`);
    const account = USERS.find((candidate) => candidate.name === user)!;
    // Only what OSC needs: no OS_* or proxy settings of the caller's environment leak in.
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      LANG: 'C.UTF-8',
      no_proxy: '127.0.0.1',
      OS_AUTH_URL: keystone.authUrl,
      OS_IDENTITY_API_VERSION: '3',
      OS_USERNAME: account.name,
      OS_PASSWORD: account.password,
      OS_PROJECT_NAME: account.project,
      OS_USER_DOMAIN_NAME: 'Default',
      OS_PROJECT_DOMAIN_NAME: 'Default',
    };
    return new Promise((resolve) => {
      execFile(OPENSTACK, args, { env, timeout: COMMAND_TIMEOUT_MS }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      });
    });
  }

  /** `openstack ARGS -f json`, which must succeed; its output parsed. */
  async function json<T = Row>(user: UserName, args: string[]): Promise<T> {
    const result = await openstack(user, [...args, '-f', 'json']);
    expect(result.code, `openstack ${args.join(' ')}: ${result.stderr}`).toBe(0);
    return JSON.parse(result.stdout) as T;
  }

  /** A command that must succeed and print nothing (delete, add, remove). */
  async function quiet(user: UserName, args: string[]): Promise<void> {
    const result = await openstack(user, args);
    expect(result, `openstack ${args.join(' ')}`).toMatchObject({ code: 0, stdout: '' });
  }

  async function refused(user: UserName, args: string[], stderr: RegExp): Promise<void> {
    const result = await openstack(user, args);
    expect(result.code, result.stdout).not.toBe(0);
    expect(result.stderr).toMatch(stderr);
  }

  it('network list, create, show and delete; members may only look', async () => {
    expect(await json<Row[]>('demo', ['network', 'list'])).toEqual([{ ID: expect.any(String), Name: 'private', Subnet: '10.0.0.0/24' }]);
    const created = await json('admin', ['network', 'create', '--subnet', '10.9.0.0/24', 'net9']);
    expect(created).toMatchObject({ label: 'net9', cidr: '10.9.0.0/24', gateway: '10.9.0.1', project_id: null });
    expect(await countRows(database.db, 'networks', { label: 'net9', deleted: 0 })).toBe(1);
    // By name: OSC asks GET /os-networks/net9, gets 404, then finds the label in the list.
    expect(await json('demo', ['network', 'show', 'net9'])).toMatchObject({ id: created.id, label: 'net9', cidr: '10.9.0.0/24' });
    await refused('demo', ['network', 'create', '--subnet', '10.10.0.0/24', 'mine'], /HTTP 403/);
    await refused('demo', ['network', 'delete', 'net9'], /HTTP 403/);
    expect(await countRows(database.db, 'networks', { deleted: 0 })).toBe(2);
    await quiet('admin', ['network', 'delete', 'net9']);
    expect(await countRows(database.db, 'networks', { label: 'net9', deleted: 0 })).toBe(0);
    expect((await json<Row[]>('admin', ['network', 'list'])).map((row) => row.Name)).toEqual(['private']);
  });

  it('floating ip pool list', async () => {
    expect(await json('demo', ['floating', 'ip', 'pool', 'list'])).toEqual([{ Name: 'nova' }, { Name: 'public' }]);
  });

  it("floating ip create, list, show and delete, by address and by id; other projects' addresses stay hidden", async () => {
    const first = await json('demo', ['floating', 'ip', 'create', 'nova']);
    const row = await floatingRow(database.db, '203.0.113.1');
    expect(first).toEqual({ id: row.id, ip: '203.0.113.1', pool: 'nova', fixed_ip: null, instance_id: null });
    expect(row.projectId).toBe('p1');
    const second = await json('demo', ['floating', 'ip', 'create', 'public']);
    expect(second).toMatchObject({ ip: '198.51.100.1', pool: 'public' });
    const theirs = await json('other', ['floating', 'ip', 'create', 'nova']);

    expect(await json('demo', ['floating', 'ip', 'list'])).toEqual([
      { ID: row.id, 'Floating IP Address': '203.0.113.1', 'Fixed IP Address': null, Server: null, Pool: 'nova' },
      { ID: second.id, 'Floating IP Address': '198.51.100.1', 'Fixed IP Address': null, Server: null, Pool: 'public' },
    ]);
    expect((await json<Row[]>('other', ['floating', 'ip', 'list'])).map((entry) => entry['Floating IP Address'])).toEqual(['203.0.113.2']);
    // The admin's own project holds none; os-floating-ips lists a project's addresses.
    expect(await json('admin', ['floating', 'ip', 'list'])).toEqual([]);

    expect(await json('demo', ['floating', 'ip', 'show', '203.0.113.1'])).toEqual(first);
    expect(await json('demo', ['floating', 'ip', 'show', String(second.id)])).toEqual(second);
    // 404 for the id, then no match in the project's list: OSC's "none found".
    await refused('demo', ['floating', 'ip', 'show', String(theirs.id)], /none found \(HTTP 404\)/);
    await refused('demo', ['floating', 'ip', 'create', 'nope'], /nope not found/);
    await refused(
      'demo',
      ['floating', 'ip', 'delete', '203.0.113.2'],
      /'203\.0\.113\.2'.*\(HTTP 404\)\n1 of 1 floating_ips failed to delete/,
    );
    expect(await floatingRow(database.db, '203.0.113.2')).toMatchObject({ projectId: 'p2' });

    await quiet('demo', ['floating', 'ip', 'delete', '203.0.113.1', String(second.id)]);
    expect(await floatingRow(database.db, '203.0.113.1')).toMatchObject({ projectId: null });
    expect(await floatingRow(database.db, '198.51.100.1')).toMatchObject({ projectId: null });
    await quiet('admin', ['floating', 'ip', 'delete', String(theirs.id)]);
    expect(await countRows(database.db, 'floating_ips', { project_id: 'p2' })).toBe(0);
  });

  it('server add floating ip (by server name) and server remove floating ip (by id)', async () => {
    const { ip } = await json<{ ip: string }>('demo', ['floating', 'ip', 'create', 'nova']);
    await quiet('demo', ['server', 'add', 'floating', 'ip', 'vm1', ip]);
    expect((await floatingRow(database.db, ip)).fixedIpId).not.toBeNull();
    expect(api.h.host.changes).toEqual([{ kind: 'floating-updated', address: ip }]);
    expect(await json('demo', ['floating', 'ip', 'show', ip])).toMatchObject({ fixed_ip: vm1Fixed, instance_id: uuidOf(1) });

    // Another project sees neither the server nor the address.
    await refused('other', ['server', 'add', 'floating', 'ip', 'vm1', ip], /none found \(HTTP 404\)/);

    await quiet('demo', ['server', 'remove', 'floating', 'ip', uuidOf(1), ip]);
    expect(await floatingRow(database.db, ip)).toMatchObject({ projectId: 'p1', fixedIpId: null, host: null });
    await refused('demo', ['server', 'remove', 'floating', 'ip', 'vm1', ip], /HTTP 409/);

    // Deleting an associated address disassociates it first, as Nova did.
    await quiet('demo', ['server', 'add', 'floating', 'ip', '--fixed-ip-address', vm1Fixed, 'vm1', ip]);
    api.h.host.clear();
    await quiet('demo', ['floating', 'ip', 'delete', ip]);
    expect(await floatingRow(database.db, ip)).toMatchObject({ projectId: null, fixedIpId: null });
    expect(api.h.host.changes).toEqual([{ kind: 'floating-updated', address: ip }]);
  });

  it('server show and network show carry the IPv6 /64 and address', async () => {
    // OSC's nova-network create takes no v6 range: made as novanet-manage network create --fixed_range_v6 makes it.
    const [network] = await api.manager.networks.create({ label: 'dual', fixedRangeV4: '10.20.0.0/24', fixedRangeV6: 'fd00:20::/48' });
    const info = await api.manager.allocation.allocate({ instanceUuid: uuidOf(7), projectId: 'p1', host: 'compute1', hostname: 'vm7' });
    const v6 = info.network_info
      .flatMap((vif) => vif.network.subnets)
      .filter((subnet) => subnet.version === 6)
      .flatMap((subnet) => subnet.ips.map((ip) => ip.address));
    expect(v6).toHaveLength(1);
    expect(v6[0]).toMatch(/^fd00:20::/);
    const shown = await json('demo', ['server', 'show', uuidOf(7)]);
    expect(JSON.stringify(shown.addresses)).toContain(v6[0]!);
    expect(await json('demo', ['network', 'show', 'dual'])).toMatchObject({
      id: network!.uuid,
      cidr_v6: 'fd00:20::/64',
      gateway_v6: 'fd00:20::1',
    });
  });

  it('security group create, list, show, set and delete; rule create, list and delete; server add and remove security group', async () => {
    const created = await json('demo', ['security', 'group', 'create', '--description', 'web servers', 'web']);
    expect(created).toMatchObject({ name: 'web', description: 'web servers', project_id: 'p1', rules: [] });
    // The project's default group exists from its first look on.
    expect((await json<Row[]>('demo', ['security', 'group', 'list'])).map((row) => row.Name)).toEqual(['default', 'web']);
    expect((await json<Row[]>('other', ['security', 'group', 'list'])).map((row) => row.Name)).toEqual(['default']);
    await refused('other', ['security', 'group', 'show', 'web'], /HTTP 404|No SecurityGroup found/i);

    const ssh = await json('demo', ['security', 'group', 'rule', 'create', '--protocol', 'tcp', '--dst-port', '22', 'web']);
    expect(ssh).toMatchObject({ ip_protocol: 'tcp', ip_range: '0.0.0.0/0', port_range: '22:22', parent_group_id: created.id });
    const icmp = await json('demo', ['security', 'group', 'rule', 'create', '--protocol', 'icmp', '--remote-ip', '10.0.0.0/8', 'web']);
    expect(icmp).toMatchObject({ ip_protocol: 'icmp', ip_range: '10.0.0.0/8' });
    // OSC sends 0.0.0.0/0 along with a remote group: the group is the source.
    const fromDefault = await json('demo', [
      'security',
      'group',
      'rule',
      'create',
      '--protocol',
      'tcp',
      '--dst-port',
      '5432',
      '--remote-group',
      'default',
      'web',
    ]);
    expect(fromDefault).toMatchObject({ ip_range: '', port_range: '5432:5432', remote_security_group: 'default' });
    expect((await json<Row[]>('demo', ['security', 'group', 'rule', 'list', 'web'])).map((row) => row.ID)).toEqual([
      ssh.id,
      icmp.id,
      fromDefault.id,
    ]);
    const shown = await json<{ rules: Row[] }>('demo', ['security', 'group', 'show', 'web']);
    expect(shown.rules).toContainEqual({
      id: fromDefault.id,
      parent_group_id: created.id,
      ip_protocol: 'tcp',
      from_port: 5432,
      to_port: 5432,
      group: { name: 'default', tenant_id: 'p1' },
      ip_range: {},
    });
    // OSC without --dst-port sends ports 0:0, which Nova refused too.
    await refused('demo', ['security', 'group', 'rule', 'create', '--protocol', 'tcp', 'web'], /HTTP 400/);
    await refused('demo', ['security', 'group', 'delete', 'default'], /HTTP 400|failed to delete/);

    // OSC 6.0's compute path of `set` fails in the client, before any request; the API's PUT works (test/api).
    const before = await countRows(database.db, 'security_groups', { name: 'web' });
    await refused(
      'demo',
      ['security', 'group', 'set', '--name', 'www', 'web'],
      /security_group_set\(\) takes from 1 to 2 positional arguments/,
    );
    expect(await countRows(database.db, 'security_groups', { name: 'web' })).toBe(before);

    // OSC sends the group's id as the action's `name`.
    await quiet('demo', ['server', 'add', 'security', 'group', 'vm1', 'web']);
    const groupsShown = (await json<{ security_groups: { name: string }[] }>('demo', ['server', 'show', 'vm1'])).security_groups;
    expect(groupsShown.map((entry) => entry.name).sort()).toEqual(['default', 'web']);
    await refused('demo', ['security', 'group', 'delete', 'web'], /HTTP 400|failed to delete/);
    await quiet('demo', ['server', 'remove', 'security', 'group', 'vm1', 'web']);
    await quiet('demo', ['security', 'group', 'rule', 'delete', String(ssh.id)]);
    expect((await json<Row[]>('demo', ['security', 'group', 'rule', 'list', 'web'])).map((row) => row.ID)).toEqual([
      icmp.id,
      fromDefault.id,
    ]);
    await quiet('demo', ['security', 'group', 'delete', 'web']);
    expect(await countRows(database.db, 'security_groups', { name: 'web' })).toBe(0);
    expect(await countRows(database.db, 'security_group_rules')).toBe(0);
  });
});
