/**
 * novanet-dhcpbridge, dnsmasq's --dhcp-script, run as the built program: add/old/del
 * keep `leased` in the database, init prints the leases back, and every bad call is
 * refused with one line and no change.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NetworkManager } from '../../src/managers/manager.js';
import { createManager } from '../../src/managers/registry.js';
import { type CliDatabase, cliDatabase, expectError, expectOk, type RunResult, run, snapshot } from '../support/cli.js';
import { BACKENDS, testConfig } from '../support/databases.js';
import { RecordingHost } from '../support/recordingHost.js';

const USAGE = 'usage: novanet-dhcpbridge [--config-file=FILE] add|old|del MAC IP [HOSTNAME] | init';

interface Instance {
  uuid: string;
  hostname: string;
  mac: string;
  address: string;
}

interface FixedRow {
  instance_uuid: string | null;
  virtual_interface_id: number | null;
  allocated: number | boolean;
  leased: number | boolean;
}

/** [what, argv after --config-file, environment, the message after `error: `] */
type Case = [string, (a: Instance) => string[], Record<string, string>, string];

/** Refused by the manager (address and MAC checks, lookups): on both backends. */
const REFUSED_CASES: Case[] = [
  ['bad MAC', (a) => ['add', 'zz:zz:zz', a.address], {}, 'MAC must look like fa:16:3e:00:00:01, got "zz:zz:zz"'],
  ['bad MAC on del', (a) => ['del', 'fa16.3e00.0001', a.address], {}, 'MAC must look like fa:16:3e:00:00:01, got "fa16.3e00.0001"'],
  ['bad IP', (a) => ['add', a.mac, '10.50.0'], {}, 'address must be an IP address, got "10.50.0"'],
  ['unknown address on add', (a) => ['add', a.mac, '10.99.0.9'], {}, 'fixed IP 10.99.0.9 not found'],
  ['unknown address on del', (a) => ['del', a.mac, '10.99.0.9'], {}, 'fixed IP 10.99.0.9 not found'],
];

/** Usage mistakes, refused before the database is opened: once, on SQLite. */
const USAGE_CASES: Case[] = [
  ['no arguments', () => [], {}, USAGE],
  ['unknown action', (a) => ['renew', a.mac, a.address], {}, USAGE],
  ['add without an IP', (a) => ['add', a.mac], {}, USAGE],
  ['add with too many arguments', (a) => ['add', a.mac, a.address, a.hostname, 'extra'], {}, USAGE],
  ['init with arguments', () => ['init', 'extra'], { NETWORK_ID: '1' }, USAGE],
  [
    '--config-file given twice',
    (a) => ['add', a.mac, a.address, '--config-file', '/nonexistent.conf'],
    {},
    `--config-file given more than once ${USAGE}`,
  ],
  ['an option that only starts like --config-file', (a) => ['--config-filename=/nonexistent.conf', 'add', a.mac, a.address], {}, USAGE],
  [
    'a DHCPv6 lease of a bad address',
    () => ['add', '00:01:00:01:32:aa:04:b7:fa:16:3e:01:02:03', 'fd00::zz'],
    { DNSMASQ_IAID: '1040253443' },
    'address must be an IPv6 address, got "fd00::zz"',
  ],
  [
    'a DHCPv6 lease from no DUID',
    () => ['old', 'fa16-3e', 'fd00::a94a:8fe5:ff01:203'],
    { DNSMASQ_IAID: '1040253443' },
    'DUID must be hex bytes separated by colons, got "fa16-3e"',
  ],
  ['init without NETWORK_ID', () => ['init'], {}, 'init needs NETWORK_ID in the environment (set by the service when it starts dnsmasq)'],
  [
    'init with a NETWORK_ID that is no id',
    () => ['init'],
    { NETWORK_ID: 'abc' },
    'init needs NETWORK_ID in the environment (set by the service when it starts dnsmasq)',
  ],
];

async function allocate(manager: NetworkManager, hostname: string): Promise<Instance> {
  const uuid = randomUUID();
  const info = await manager.allocation.allocate({ instanceUuid: uuid, projectId: 'p1', host: 'compute1', hostname });
  const vif = info.network_info[0]!;
  return { uuid, hostname, mac: vif.address, address: vif.network.subnets[0]!.ips[0]!.address };
}

// The backends run side by side; the lease steps in order, then the refusals together.
describe.each(BACKENDS)('novanet-dhcpbridge on %s', { concurrent: true }, (backend) => {
  let cli: CliDatabase;
  let config: string;
  let manager: NetworkManager;
  let networkId: number;
  let a: Instance;
  let b: Instance;

  async function fixed(address: string): Promise<FixedRow> {
    return (await cli.db.knex('fixed_ips').where({ address }).first()) as FixedRow;
  }

  async function leased(address: string): Promise<boolean> {
    return Boolean((await fixed(address)).leased);
  }

  const bridge = (args: string[], env: Record<string, string> = {}): Promise<RunResult> =>
    run('dhcpbridge', ['--config-file', config, ...args], { env });

  beforeAll(async () => {
    cli = await cliDatabase(backend, { sync: true });
    config = cli.config('novanet.conf', { network_manager: 'flatdhcp' });
    manager = createManager({ db: cli.db, config: testConfig({ network_manager: 'flatdhcp' }), host: new RecordingHost() });
    const [network] = await manager.networks.create({ label: 'leases', fixedRangeV4: '10.50.0.0/24' });
    networkId = network!.id;
    a = await allocate(manager, 'vm-a');
    b = await allocate(manager, 'vm-b');
  });

  afterAll(async () => {
    await cli?.close();
  });

  it.sequential('add and old mark the address leased; del of an allocated address only ends the lease', async () => {
    expect(await leased(a.address)).toBe(false);
    const add = await bridge(['add', a.mac, a.address, a.hostname]);
    expectOk(add);
    expect(add.stdout).toBe('');
    expect(await leased(a.address)).toBe(true);

    // `old` (a renewal, or dnsmasq restarting) counts as a live lease too.
    await cli.db.knex('fixed_ips').where({ address: a.address }).update({ leased: false });
    expectOk(await bridge(['old', a.mac, a.address]));
    expect(await leased(a.address)).toBe(true);

    expectOk(await bridge(['del', a.mac, a.address, a.hostname]));
    expect(await fixed(a.address)).toMatchObject({ instance_uuid: a.uuid });
    expect(Boolean((await fixed(a.address)).allocated)).toBe(true);
    expect(await leased(a.address)).toBe(false);

    // MACs come from dnsmasq as it saw them; case does not matter.
    expectOk(await bridge(['add', a.mac.toUpperCase(), a.address]));
    expect(await leased(a.address)).toBe(true);
  });

  it.sequential("init prints NETWORK_ID's leased addresses as EXPIRY MAC IP HOSTNAME * lines", async () => {
    expectOk(await bridge(['add', b.mac, b.address, b.hostname]));
    const started = Math.floor(Date.now() / 1000);
    // dnsmasq runs the script with the service's environment: the config file from there.
    const result = await run('dhcpbridge', ['init'], { env: { NOVANET_CONFIG_FILE: config, NETWORK_ID: String(networkId) } });
    expectOk(result);
    const lines = result.stdout
      .trimEnd()
      .split('\n')
      .sort((x, y) => x.split(' ')[2]!.localeCompare(y.split(' ')[2]!, 'en', { numeric: true }));
    expect(lines).toHaveLength(2);
    for (const [line, instance] of [
      [lines[0]!, a],
      [lines[1]!, b],
    ] as const) {
      const [expiry, ...rest] = line.split(' ');
      expect(rest).toEqual([instance.mac, instance.address, instance.hostname, '*']);
      // renewed just now, plus dhcp_lease_time (86400 s)
      expect(Number(expiry)).toBeGreaterThanOrEqual(started + 86400 - 120);
      expect(Number(expiry)).toBeLessThanOrEqual(started + 86400 + 120);
    }

    const other = await bridge(['init'], { NETWORK_ID: String(networkId + 100) });
    expectOk(other);
    expect(other.stdout).toBe('');
  });

  it.sequential('del of a deallocated address ends the lease and frees the address', async () => {
    await manager.allocation.deallocate(b.uuid);
    // DHCP modes hold the address until dnsmasq says the lease is gone.
    expect(await fixed(b.address)).toMatchObject({ instance_uuid: b.uuid, virtual_interface_id: null });
    expect(await leased(b.address)).toBe(true);

    expectOk(await bridge(['del', b.mac, b.address]));
    expect(await fixed(b.address)).toMatchObject({ instance_uuid: null, virtual_interface_id: null });
    expect(Boolean((await fixed(b.address)).allocated)).toBe(false);
    expect(await leased(b.address)).toBe(false);

    const init = await bridge(['init'], { NETWORK_ID: String(networkId) });
    expectOk(init);
    expect(init.stdout).toMatch(new RegExp(`^\\d+ ${a.mac} ${a.address.replace(/\./g, '\\.')} vm-a \\*\\n$`));
  });

  it.sequential('a report from a MAC that no longer holds the address is ignored (it is about the previous holder)', async () => {
    const before = await snapshot(cli.db);
    const result = await bridge(['del', 'fa:16:3e:ff:ff:fe', a.address]);
    expect(result.status).toBe(0);
    expect(result.stderr).toBe(`lease report for ${a.address} from fa:16:3e:ff:ff:fe ignored: the address now belongs to ${a.mac}\n`);
    expect(await snapshot(cli.db)).toEqual(before);
  });

  it.sequential('a DHCPv6 lease (account_identifier: DNSMASQ_IAID set, a DUID and the static address) is taken and changes nothing', async () => {
    const before = await snapshot(cli.db);
    for (const action of ['add', 'old', 'del']) {
      const result = await bridge([action, '00:01:00:01:32:aa:04:b7:fa:16:3e:01:02:03', 'fd00::a94a:8fe5:ff01:203', a.hostname], {
        DNSMASQ_IAID: '1040253443',
      });
      expectOk(result);
      expect(result.stdout + result.stderr).toBe('');
    }
    expect(await snapshot(cli.db)).toEqual(before);
  });

  it.each(REFUSED_CASES)('refuses: %s', async (_what, args, env, message) => {
    const before = await snapshot(cli.db);
    expectError(await bridge(args(a), env), message);
    expect(await snapshot(cli.db)).toEqual(before);
  });
});

describe('novanet-dhcpbridge usage mistakes (SQLite: refused before the database is opened)', () => {
  let cli: CliDatabase;
  let config: string;
  let a: Instance;

  beforeAll(async () => {
    cli = await cliDatabase('sqlite', { sync: true });
    config = cli.config('novanet.conf', { network_manager: 'flatdhcp' });
    const manager = createManager({ db: cli.db, config: testConfig({ network_manager: 'flatdhcp' }), host: new RecordingHost() });
    await manager.networks.create({ label: 'leases', fixedRangeV4: '10.50.0.0/24' });
    a = await allocate(manager, 'vm-a');
  });

  afterAll(async () => {
    await cli?.close();
  });

  it.concurrent.each(USAGE_CASES)('refuses: %s', async (_what, args, env, message) => {
    const before = await snapshot(cli.db);
    expectError(await run('dhcpbridge', ['--config-file', config, ...args(a)], { env }), message);
    expect(await snapshot(cli.db)).toEqual(before);
  });

  it('refuses: --config-file without a value', async () => {
    const before = await snapshot(cli.db);
    expectError(await run('dhcpbridge', ['add', a.mac, a.address, '--config-file']), `--config-file needs a value ${USAGE}`);
    expect(await snapshot(cli.db)).toEqual(before);
  });
});
