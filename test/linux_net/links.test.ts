import { describe, expect, it } from 'vitest';
import { Conflict, Invalid, NotFound, Unavailable } from '../../src/errors.js';
import { CommandFailed } from '../../src/linux_net/command.js';
import { LinkDriver } from '../../src/linux_net/links.js';
import { RecordingExecutor } from '../support/recordingExecutor.js';

// `ip -d -j addr show` / `ip -j route show` output as iproute2 6.x prints it.
const missing = { code: 1, stderr: 'Device "br100" does not exist.\n' };

function bridgeJson(options: { up: boolean; mtu?: number; addresses?: [string, number][] } = { up: true }): string {
  return JSON.stringify([
    {
      ifindex: 4,
      ifname: 'br100',
      flags: options.up ? ['NO-CARRIER', 'BROADCAST', 'MULTICAST', 'UP'] : ['BROADCAST', 'MULTICAST'],
      mtu: options.mtu ?? 1500,
      qdisc: options.up ? 'noqueue' : 'noop',
      operstate: options.up ? 'DOWN' : 'DOWN',
      group: 'default',
      txqlen: 1000,
      link_type: 'ether',
      address: '1e:7e:43:bd:dd:ad',
      broadcast: 'ff:ff:ff:ff:ff:ff',
      linkinfo: { info_kind: 'bridge' },
      addr_info: [
        ...(options.addresses ?? []).map(([local, prefixlen], index) => ({
          family: 'inet',
          local,
          prefixlen,
          scope: 'global',
          ...(index > 0 ? { secondary: true } : {}),
          label: 'br100',
          valid_life_time: 4294967295,
          preferred_life_time: 4294967295,
        })),
        {
          family: 'inet6',
          local: 'fe80::1c7e:43ff:febd:ddad',
          prefixlen: 64,
          scope: 'link',
          valid_life_time: 4294967295,
          preferred_life_time: 4294967295,
        },
      ],
    },
  ]);
}

const eth1Unenslaved = JSON.stringify([
  {
    ifindex: 3,
    link: 'eth1p',
    ifname: 'eth1',
    flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    mtu: 1500,
    qdisc: 'noqueue',
    operstate: 'UP',
    group: 'default',
    txqlen: 1000,
    link_type: 'ether',
    address: '8a:a2:50:f9:c8:88',
    broadcast: 'ff:ff:ff:ff:ff:ff',
    addr_info: [
      {
        family: 'inet',
        local: '192.168.50.10',
        prefixlen: 24,
        broadcast: '192.168.50.255',
        scope: 'global',
        label: 'eth1',
        valid_life_time: 4294967295,
        preferred_life_time: 4294967295,
      },
      {
        family: 'inet',
        local: '192.168.50.11',
        prefixlen: 24,
        scope: 'global',
        secondary: true,
        label: 'eth1',
        valid_life_time: 4294967295,
        preferred_life_time: 4294967295,
      },
      {
        family: 'inet6',
        local: 'fe80::88a2:50ff:fef9:c888',
        prefixlen: 64,
        scope: 'link',
        valid_life_time: 4294967295,
        preferred_life_time: 4294967295,
      },
    ],
  },
]);

const eth1Enslaved = JSON.stringify([
  {
    ifindex: 3,
    link: 'eth1p',
    ifname: 'eth1',
    flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    mtu: 1500,
    qdisc: 'noqueue',
    master: 'br100',
    operstate: 'UP',
    group: 'default',
    txqlen: 1000,
    link_type: 'ether',
    address: '8a:a2:50:f9:c8:88',
    broadcast: 'ff:ff:ff:ff:ff:ff',
    addr_info: [
      {
        family: 'inet6',
        local: 'fe80::88a2:50ff:fef9:c888',
        prefixlen: 64,
        scope: 'link',
        valid_life_time: 4294967295,
        preferred_life_time: 4294967295,
      },
    ],
  },
]);

const eth1Routes = JSON.stringify([
  { dst: 'default', gateway: '192.168.50.1', metric: 100, flags: [] },
  { dst: '10.20.0.0/16', gateway: '192.168.50.254', flags: [] },
  { dst: '192.168.50.0/24', protocol: 'kernel', scope: 'link', prefsrc: '192.168.50.10', flags: [] },
]);

const showBridge = ['ip', '-d', '-j', 'addr', 'show', 'dev', 'br100'];
const showEth1 = ['ip', '-d', '-j', 'addr', 'show', 'dev', 'eth1'];
const routesEth1 = ['ip', '-j', 'route', 'show', 'dev', 'eth1'];
const routesBridge = ['ip', '-j', 'route', 'show', 'dev', 'br100'];

function setup(): { executor: RecordingExecutor; links: LinkDriver } {
  const executor = new RecordingExecutor();
  return { executor, links: new LinkDriver(executor) };
}

describe('LinkDriver.show', () => {
  it('parses ip -j addr show', async () => {
    const { executor, links } = setup();
    executor.on(showBridge, { stdout: bridgeJson({ up: true, addresses: [['10.0.0.1', 24]] }) });
    const link = await links.show('br100');
    expect(link?.flags).toContain('UP');
    expect(link?.addr_info?.[0]).toMatchObject({ family: 'inet', local: '10.0.0.1', prefixlen: 24 });
    expect(executor.commands).toEqual([{ argv: showBridge, accept: [0, 1] }]);
  });

  it('returns undefined for a missing interface', async () => {
    const { executor, links } = setup();
    executor.on(showBridge, missing);
    expect(await links.show('br100')).toBeUndefined();
  });

  it('does not mistake another failure with status 1 for a missing interface', async () => {
    const { executor, links } = setup();
    executor.on(showBridge, { code: 1, stderr: 'RTNETLINK answers: Operation not permitted\n' });
    await expect(links.show('br100')).rejects.toThrow(CommandFailed);
    await expect(links.show('br100')).rejects.toThrow('Operation not permitted');
  });
});

describe('LinkDriver.ensureBridge', () => {
  // Issue 16, cause 8: a network named after the public interface made every pass fail on it, or take it from the host.
  it.each([
    [
      'the public interface (no kind)',
      undefined,
      /^eth8 exists but is not a bridge \(it is a device of no kind, such as a physical interface or lo\); give the network a bridge name of its own$/,
    ],
    ['a veth', 'veth', /^eth8 exists but is not a bridge \(it is a veth device\)/],
    ['a VLAN interface', 'vlan', /^eth8 exists but is not a bridge \(it is a vlan device\)/],
  ])('refuses a device under the bridge name that is %s, changing nothing', async (_what, kind, message) => {
    const { executor, links } = setup();
    const show = ['ip', '-d', '-j', 'addr', 'show', 'dev', 'eth8'];
    executor.on(show, {
      stdout: JSON.stringify([{ ifname: 'eth8', flags: ['UP'], mtu: 1500, ...(kind ? { linkinfo: { info_kind: kind } } : {}) }]),
    });
    const failure = await links.ensureBridge('eth8', { interface: 'eth1' }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Conflict);
    expect((failure as Error).message).toMatch(message);
    expect(executor.argvs()).toEqual([show]);
  });

  it('creates a missing bridge with forward delay 0 and STP off, and brings it up', async () => {
    const { executor, links } = setup();
    executor.once(showBridge, missing).on(showBridge, { stdout: bridgeJson({ up: false }) });
    expect(await links.ensureBridge('br100')).toEqual(['created bridge br100', 'br100 up']);
    expect(executor.argvs()).toEqual([
      showBridge,
      ['ip', 'link', 'add', 'br100', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0'],
      showBridge,
      ['ip', 'link', 'set', 'br100', 'up'],
    ]);
  });

  it('sets the MTU when asked', async () => {
    const { executor, links } = setup();
    executor.once(showBridge, missing).on(showBridge, { stdout: bridgeJson({ up: false }) });
    expect(await links.ensureBridge('br100', { mtu: 9000 })).toEqual(['created bridge br100', 'mtu 9000 on br100', 'br100 up']);
    expect(executor.argvs()).toEqual([
      showBridge,
      ['ip', 'link', 'add', 'br100', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0'],
      showBridge,
      ['ip', 'link', 'set', 'br100', 'mtu', '9000'],
      ['ip', 'link', 'set', 'br100', 'up'],
    ]);
  });

  it('only reads when the bridge is already right (a restart is hitless)', async () => {
    const { executor, links } = setup();
    executor.on(showBridge, { stdout: bridgeJson({ up: true, mtu: 1400, addresses: [['10.0.0.1', 24]] }) });
    expect(await links.ensureBridge('br100', { mtu: 1400 })).toEqual([]);
    expect(executor.argvs()).toEqual([showBridge]);
  });

  it('only reads when the bridge and its enslaved interface are already right', async () => {
    const { executor, links } = setup();
    executor
      .on(showBridge, {
        stdout: bridgeJson({
          up: true,
          addresses: [
            ['10.0.0.1', 24],
            ['192.168.50.10', 24],
          ],
        }),
      })
      .on(showEth1, { stdout: eth1Enslaved })
      .on(routesEth1, { stdout: '[]' });
    expect(await links.ensureBridge('br100', { interface: 'eth1' })).toEqual([]);
    expect(executor.argvs()).toEqual([showBridge, showEth1, routesEth1]);
  });

  it('brings up a bridge that is down, and nothing else', async () => {
    const { executor, links } = setup();
    executor.on(showBridge, { stdout: bridgeJson({ up: false }) });
    expect(await links.ensureBridge('br100')).toEqual(['br100 up']);
    expect(executor.argvs()).toEqual([showBridge, ['ip', 'link', 'set', 'br100', 'up']]);
  });

  it('enslaves the interface, copies its MAC and moves its addresses and gateway routes', async () => {
    const { executor, links } = setup();
    executor
      .once(showBridge, missing)
      .on(showBridge, { stdout: bridgeJson({ up: false }) })
      .on(showEth1, { stdout: eth1Unenslaved })
      .on(routesEth1, { stdout: eth1Routes })
      // Deleting the primary address took the secondary with it, as the kernel does.
      .on(['ip', 'addr', 'del', '192.168.50.11/24'], { code: 2, stderr: 'Error: ipv4: Address not found.\n' });
    expect(await links.ensureBridge('br100', { interface: 'eth1' })).toEqual([
      'created bridge br100',
      'br100 up',
      'enslaved eth1 to br100',
      'moved 192.168.50.10/24 from eth1 to br100',
      'moved 192.168.50.11/24 from eth1 to br100',
      'moved route default via 192.168.50.1 to br100',
      'moved route 10.20.0.0/16 via 192.168.50.254 to br100',
    ]);
    expect(executor.argvs()).toEqual([
      showBridge,
      ['ip', 'link', 'add', 'br100', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0'],
      showBridge,
      ['ip', 'link', 'set', 'br100', 'up'],
      showEth1,
      ['ip', 'link', 'set', 'eth1', 'master', 'br100'],
      ['ip', 'link', 'set', 'br100', 'address', '8a:a2:50:f9:c8:88'],
      routesEth1,
      ['ip', 'addr', 'del', '192.168.50.10/24', 'dev', 'eth1'],
      ['ip', 'addr', 'add', '192.168.50.10/24', 'brd', '192.168.50.255', 'dev', 'br100'],
      ['ip', 'addr', 'del', '192.168.50.11/24', 'dev', 'eth1'],
      ['ip', 'addr', 'add', '192.168.50.11/24', 'dev', 'br100'],
      ['ip', 'route', 'replace', 'default', 'via', '192.168.50.1', 'dev', 'br100', 'metric', '100'],
      ['ip', 'route', 'replace', '10.20.0.0/16', 'via', '192.168.50.254', 'dev', 'br100'],
    ]);
    // addr add/del accept "exists"/"missing"; a route that cannot move is an error.
    for (const spec of executor.commands.filter((command) => command.argv[1] === 'addr' && command.argv[2] !== 'show')) {
      expect(spec.accept).toEqual([0, 2, 254]);
    }
    for (const spec of executor.commands.filter((command) => command.argv[2] === 'replace')) expect(spec.accept).toBeUndefined();
  });

  it('sets the MTU of the enslaved interface and brings it up', async () => {
    const { executor, links } = setup();
    const downEth1 = JSON.parse(eth1Enslaved) as [{ flags: string[]; mtu: number }];
    downEth1[0].flags = ['BROADCAST', 'MULTICAST'];
    executor
      .on(showBridge, { stdout: bridgeJson({ up: true, mtu: 1400 }) })
      .on(showEth1, { stdout: JSON.stringify(downEth1) })
      .on(routesEth1, { stdout: '[]' });
    expect(await links.ensureBridge('br100', { interface: 'eth1', mtu: 1400 })).toEqual([]);
    expect(executor.argvs()).toEqual([
      showBridge,
      showEth1,
      ['ip', 'link', 'set', 'eth1', 'mtu', '1400'],
      ['ip', 'link', 'set', 'eth1', 'up'],
      routesEth1,
    ]);
  });

  it('fails clearly when the interface to enslave does not exist', async () => {
    const { executor, links } = setup();
    executor.on(showBridge, { stdout: bridgeJson({ up: true }) }).on(showEth1, { code: 1, stderr: 'Device "eth1" does not exist.\n' });
    const failure = links.ensureBridge('br100', { interface: 'eth1' });
    await expect(failure).rejects.toThrow('interface eth1 does not exist; cannot add it to br100');
    await expect(failure).rejects.toThrow(NotFound);
    expect(executor.argvs()).toEqual([showBridge, showEth1]);
  });

  it('propagates a failing command', async () => {
    const { executor, links } = setup();
    executor.on(showBridge, missing).on(['ip', 'link', 'add'], { code: 2, stderr: 'RTNETLINK answers: Operation not permitted\n' });
    await expect(links.ensureBridge('br100')).rejects.toThrow(
      'ip link add br100 type bridge forward_delay 0 stp_state 0: exit status 2: RTNETLINK answers: Operation not permitted',
    );
  });
});

describe('LinkDriver.ensureAddressV6', () => {
  const withV6 = (local: string, prefixlen: number) =>
    JSON.stringify([
      { ifname: 'br100', flags: ['UP'], mtu: 1500, linkinfo: { info_kind: 'bridge' }, addr_info: [{ family: 'inet6', local, prefixlen }] },
    ]);

  it('adds the v6 gateway without duplicate address detection', async () => {
    const { executor, links } = setup();
    executor.on(showBridge, { stdout: bridgeJson({ up: true }) });
    expect(await links.ensureAddressV6('br100', 'fd00:60::1', 64)).toEqual(['gateway fd00:60::1/64 on br100']);
    expect(executor.argvs()).toEqual([showBridge, ['ip', '-6', 'addr', 'add', 'fd00:60::1/64', 'dev', 'br100', 'nodad']]);
  });

  it('recognises the address however it is written, and changes nothing', async () => {
    const { executor, links } = setup();
    executor.on(showBridge, { stdout: withV6('fd00:60:0:0::1', 64) });
    expect(await links.ensureAddressV6('br100', 'fd00:60::1', 64)).toEqual([]);
    expect(executor.argvs()).toEqual([showBridge]);
  });

  it('adds it beside the same address with another prefix', async () => {
    const { executor, links } = setup();
    executor.on(showBridge, { stdout: withV6('fd00:60::1', 48) });
    expect(await links.ensureAddressV6('br100', 'fd00:60::1', 64)).toEqual(['gateway fd00:60::1/64 on br100']);
  });
});

describe('LinkDriver.ensureFirstAddress', () => {
  it('runs no changing command when the gateway is already first', async () => {
    const { executor, links } = setup();
    executor.on(showBridge, {
      stdout: bridgeJson({
        up: true,
        addresses: [
          ['10.0.0.1', 24],
          ['192.168.50.10', 24],
        ],
      }),
    });
    expect(await links.ensureFirstAddress('br100', '10.0.0.1', 24)).toEqual([]);
    expect(executor.argvs()).toEqual([showBridge]);
  });

  it('adds a missing gateway address', async () => {
    const { executor, links } = setup();
    executor.on(showBridge, { stdout: bridgeJson({ up: true }) });
    expect(await links.ensureFirstAddress('br100', '10.0.0.1', 24)).toEqual(['gateway 10.0.0.1/24 on br100']);
    expect(executor.argvs()).toEqual([showBridge, ['ip', 'addr', 'add', '10.0.0.1/24', 'brd', '+', 'dev', 'br100']]);
    expect(executor.commands[1]?.accept).toEqual([0, 2, 254]);
  });

  it('puts the gateway first: addresses standing before it are removed and re-added after', async () => {
    const { executor, links } = setup();
    executor.on(showBridge, {
      stdout: bridgeJson({
        up: true,
        addresses: [
          ['192.168.50.10', 24],
          ['10.0.0.1', 24],
        ],
      }),
    });
    expect(await links.ensureFirstAddress('br100', '10.0.0.1', 24)).toEqual(['gateway 10.0.0.1/24 on br100']);
    expect(executor.argvs()).toEqual([
      showBridge,
      routesBridge,
      ['ip', 'addr', 'del', '192.168.50.10/24', 'dev', 'br100'],
      ['ip', 'addr', 'add', '10.0.0.1/24', 'brd', '+', 'dev', 'br100'],
      ['ip', 'addr', 'add', '192.168.50.10/24', 'dev', 'br100'],
    ]);
    expect(executor.commands.slice(2).map((spec) => spec.accept)).toEqual([
      [0, 2, 254],
      [0, 2, 254],
      [0, 2, 254],
    ]);
  });

  it("puts back the gateway routes that removing the host's addresses drops", async () => {
    const { executor, links } = setup();
    executor
      .on(showBridge, { stdout: bridgeJson({ up: true, addresses: [['192.168.50.10', 24]] }) })
      .on(routesBridge, { stdout: eth1Routes });
    expect(await links.ensureFirstAddress('br100', '10.0.0.1', 24)).toEqual(['gateway 10.0.0.1/24 on br100']);
    expect(executor.argvs()).toEqual([
      showBridge,
      routesBridge,
      ['ip', 'addr', 'del', '192.168.50.10/24', 'dev', 'br100'],
      ['ip', 'addr', 'add', '10.0.0.1/24', 'brd', '+', 'dev', 'br100'],
      ['ip', 'addr', 'add', '192.168.50.10/24', 'dev', 'br100'],
      ['ip', 'route', 'replace', 'default', 'via', '192.168.50.1', 'dev', 'br100', 'metric', '100'],
      ['ip', 'route', 'replace', '10.20.0.0/16', 'via', '192.168.50.254', 'dev', 'br100'],
    ]);
  });

  it('treats "exists" (2) and "missing" (254) as success', async () => {
    const { executor, links } = setup();
    executor
      .on(showBridge, { stdout: bridgeJson({ up: true, addresses: [['192.168.50.10', 24]] }) })
      .on(['ip', 'addr', 'del'], { code: 254 })
      .on(['ip', 'addr', 'add'], { code: 2, stderr: 'Error: ipv4: Address already assigned.\n' });
    expect(await links.ensureFirstAddress('br100', '10.0.0.1', 24)).toEqual(['gateway 10.0.0.1/24 on br100']);
    expect(executor.argvs()).toHaveLength(5);
  });

  it('replaces the gateway address when its prefix is wrong, without re-adding the stale one', async () => {
    const { executor, links } = setup();
    executor.on(showBridge, {
      stdout: bridgeJson({
        up: true,
        addresses: [
          ['10.0.0.1', 16],
          ['192.168.50.10', 24],
        ],
      }),
    });
    await links.ensureFirstAddress('br100', '10.0.0.1', 24);
    expect(executor.argvs()).toEqual([
      showBridge,
      routesBridge,
      ['ip', 'addr', 'del', '10.0.0.1/16', 'dev', 'br100'],
      ['ip', 'addr', 'del', '192.168.50.10/24', 'dev', 'br100'],
      ['ip', 'addr', 'add', '10.0.0.1/24', 'brd', '+', 'dev', 'br100'],
      ['ip', 'addr', 'add', '192.168.50.10/24', 'dev', 'br100'],
    ]);
  });

  it('fails when the bridge does not exist', async () => {
    const { executor, links } = setup();
    executor.on(showBridge, missing);
    const failure = links.ensureFirstAddress('br100', '10.0.0.1', 24);
    await expect(failure).rejects.toThrow('bridge br100 does not exist');
    await expect(failure).rejects.toThrow(NotFound);
    expect(executor.argvs()).toEqual([showBridge]);
  });
});

describe('LinkDriver reading ip -j output', () => {
  const garbled = { stdout: '[{"ifname": "br100", "flags": [' };

  it('reports output that is not JSON as the command failing, naming it', async () => {
    const { executor, links } = setup();
    executor.on(showBridge, garbled);
    await expect(links.show('br100')).rejects.toThrow(CommandFailed);
    await expect(links.show('br100')).rejects.toThrow('ip -d -j addr show dev br100: output is not JSON');
  });

  it('reports unreadable routes of an interface being enslaved the same way, before moving anything', async () => {
    const { executor, links } = setup();
    executor
      .on(showBridge, { stdout: bridgeJson({ up: true }) })
      .on(showEth1, { stdout: eth1Unenslaved })
      .on(routesEth1, { stdout: 'default via' });
    await expect(links.ensureBridge('br100', { interface: 'eth1' })).rejects.toThrow('ip -j route show dev eth1: output is not JSON');
    expect(executor.argvs().some((argv) => argv.includes('del'))).toBe(false);
  });

  it('reads empty output as no interface', async () => {
    const { executor, links } = setup();
    executor.on(showBridge, { stdout: '' });
    expect(await links.show('br100')).toBeUndefined();
  });
});

describe('LinkDriver teardown and forwarding', () => {
  it('removes an address, accepting one already gone', async () => {
    const { executor, links } = setup();
    executor.on(['ip', 'addr', 'del'], { code: 2 });
    await links.removeAddress('br100', '10.0.0.1', 24);
    expect(executor.commands).toEqual([{ argv: ['ip', 'addr', 'del', '10.0.0.1/24', 'dev', 'br100'], accept: [0, 2, 254] }]);
  });

  it('deletes an existing bridge: down, then del', async () => {
    const { executor, links } = setup();
    executor.on(showBridge, { stdout: bridgeJson({ up: true }) });
    expect(await links.deleteBridge('br100')).toBe(true);
    expect(executor.argvs()).toEqual([showBridge, ['ip', 'link', 'set', 'br100', 'down'], ['ip', 'link', 'del', 'br100']]);
  });

  it('deletes no device of another kind under the bridge name, nor under a VLAN name', async () => {
    const { executor, links } = setup();
    executor.on(['ip', '-d', '-j', 'addr', 'show'], { stdout: JSON.stringify([{ ifname: 'eth8', flags: ['UP'], mtu: 1500 }]) });
    expect(await links.deleteBridge('eth8')).toBe(false);
    expect(await links.deleteVlan(100)).toBe(false);
    expect(executor.argvs().filter((argv) => argv.includes('del'))).toEqual([]);
  });

  it('does nothing to delete a missing bridge', async () => {
    const { executor, links } = setup();
    executor.on(showBridge, missing);
    expect(await links.deleteBridge('br100')).toBe(false);
    expect(executor.argvs()).toEqual([showBridge]);
  });

  it('turns IPv4 forwarding on when it is off', async () => {
    const { executor, links } = setup();
    executor.on(['sysctl', '-n'], { stdout: '0\n' });
    expect(await links.ensureForwarding()).toBe(true);
    expect(executor.argvs()).toEqual([
      ['sysctl', '-n', 'net.ipv4.ip_forward'],
      ['sysctl', '-w', 'net.ipv4.ip_forward=1'],
    ]);
  });

  it('leaves forwarding alone when it is on', async () => {
    const { executor, links } = setup();
    executor.on(['sysctl', '-n'], { stdout: '1\n' });
    expect(await links.ensureForwarding()).toBe(false);
    expect(executor.argvs()).toEqual([['sysctl', '-n', 'net.ipv4.ip_forward']]);
  });
});

describe('LinkDriver name validation', () => {
  const bad = ['br0;reboot', 'a'.repeat(16), '', '-br0', 'br 0', 'br0/x', '$(reboot)'];

  it.each(bad)('rejects %j before any command runs', async (name) => {
    const { executor, links } = setup();
    await expect(links.show(name)).rejects.toThrow(Invalid);
    await expect(links.ensureBridge(name)).rejects.toThrow(Invalid);
    await expect(links.ensureFirstAddress(name, '10.0.0.1', 24)).rejects.toThrow(Invalid);
    await expect(links.removeAddress(name, '10.0.0.1', 24)).rejects.toThrow(Invalid);
    await expect(links.deleteBridge(name)).rejects.toThrow(Invalid);
    expect(executor.commands).toEqual([]);
  });

  it('rejects a bad interface to enslave before touching it', async () => {
    const { executor, links } = setup();
    executor.on(showBridge, { stdout: bridgeJson({ up: true }) });
    await expect(links.ensureBridge('br100', { interface: 'eth1;reboot' })).rejects.toThrow(
      "bridge_interface must be an interface name of 1-15 letters, digits, '_', '.' or '-', got",
    );
    expect(executor.argvs()).toEqual([showBridge]);
  });

  it('accepts the longest legal name', async () => {
    const { executor, links } = setup();
    executor.on(() => true, { code: 1, stderr: 'Device does not exist.\n' });
    expect(await links.show('a'.repeat(15))).toBeUndefined();
  });
});

describe('LinkDriver VLAN interfaces', () => {
  // `ip -d -j link show dev vlan100` for an 802.1Q interface on eth1, as iproute2 6.x prints it.
  const vlanJson = (options: { id?: number; parent?: string; kind?: string; up?: boolean; mtu?: number } = {}) =>
    JSON.stringify([
      {
        ifindex: 7,
        link: options.parent ?? 'eth1',
        ifname: 'vlan100',
        flags: options.up === false ? ['BROADCAST', 'MULTICAST'] : ['BROADCAST', 'MULTICAST', 'UP'],
        mtu: options.mtu ?? 1500,
        linkinfo: { info_kind: options.kind ?? 'vlan', info_data: { protocol: '802.1Q', id: options.id ?? 100, flags: ['REORDER_HDR'] } },
      },
    ]);
  const show = ['ip', '-d', '-j', 'link', 'show', 'dev', 'vlan100'];

  it('creates vlanNNN on its parent, sets the MTU and brings it up', async () => {
    const executor = new RecordingExecutor().on(show, { code: 1, stderr: 'Device "vlan100" does not exist.\n' });
    const result = await new LinkDriver(executor).ensureVlan(100, 'eth1', 9000);
    expect(result).toEqual({ name: 'vlan100', changes: ['created vlan100 on eth1', 'mtu 9000 on vlan100', 'vlan100 up'] });
    expect(executor.argvs().slice(1)).toEqual([
      ['ip', 'link', 'add', 'link', 'eth1', 'name', 'vlan100', 'type', 'vlan', 'id', '100'],
      ['ip', 'link', 'set', 'vlan100', 'mtu', '9000'],
      ['ip', 'link', 'set', 'vlan100', 'up'],
    ]);
  });

  it('leaves a matching interface alone', async () => {
    const executor = new RecordingExecutor().on(show, { stdout: vlanJson() });
    expect(await new LinkDriver(executor).ensureVlan(100, 'eth1', 1500)).toEqual({ name: 'vlan100', changes: [] });
    expect(executor.argvs()).toEqual([show]);
  });

  it.each([
    ['another VLAN id', { id: 200 }, /vlan100 exists but is not VLAN 100 on eth1 \(vlan id 200 on eth1\)/],
    ['another parent', { parent: 'eth2' }, /vlan100 exists but is not VLAN 100 on eth1 \(vlan id 100 on eth2\)/],
    ['not a VLAN at all', { kind: 'dummy' }, /vlan100 exists but is not VLAN 100 on eth1 \(dummy/],
  ])('refuses an existing vlanNNN with %s rather than reuse it', async (_what, options, message) => {
    const executor = new RecordingExecutor().on(show, { stdout: vlanJson(options) });
    const failure = new LinkDriver(executor).ensureVlan(100, 'eth1');
    await expect(failure).rejects.toThrow(message);
    expect(executor.argvs()).toEqual([show]);
    // A Conflict, never Unavailable: the reconciler would build the network without its uplink.
    await expect(failure).rejects.toThrow(Conflict);
    await expect(failure).rejects.not.toThrow(Unavailable);
  });

  it('reports unreadable ip -d -j output as the command failing', async () => {
    const executor = new RecordingExecutor().on(show, { stdout: 'vlan100@eth1: <BROADCAST>' });
    await expect(new LinkDriver(executor).ensureVlan(100, 'eth1')).rejects.toThrow(CommandFailed);
    await expect(new LinkDriver(executor).ensureVlan(100, 'eth1')).rejects.toThrow('ip -d -j link show dev vlan100: output is not JSON');
    expect(executor.argvs().some((argv) => argv.includes('add'))).toBe(false);
  });

  it('names the missing 8021q module when the kernel has no 802.1Q', async () => {
    const executor = new RecordingExecutor()
      .on(show, { code: 1, stderr: 'Device "vlan100" does not exist.\n' })
      .on(['ip', 'link', 'add'], { code: 2, stderr: 'Error: Unknown device type.\n' });
    const failure = new LinkDriver(executor).ensureVlan(100, 'eth1');
    await expect(failure).rejects.toThrow(Unavailable);
    await expect(failure).rejects.toThrow('the kernel has no 802.1Q support (load the 8021q module): cannot create vlan100 on eth1');
  });

  it('refuses a bad parent name before running anything', async () => {
    const executor = new RecordingExecutor();
    await expect(new LinkDriver(executor).ensureVlan(100, 'eth1;reboot')).rejects.toThrow(Invalid);
    expect(executor.commands).toEqual([]);
  });

  it('deletes a VLAN interface it finds, and says when there was none', async () => {
    const present = new RecordingExecutor()
      .on(['ip', '-j', 'link', 'show'], { stdout: vlanJson() })
      .on(['ip', '-d', '-j', 'addr', 'show'], { stdout: vlanJson() });
    expect(await new LinkDriver(present).deleteVlan(100)).toBe(true);
    expect(present.argvs().at(-1)).toEqual(['ip', 'link', 'del', 'vlan100']);
    const absent = new RecordingExecutor().on(['ip'], { code: 1, stderr: 'Device "vlan100" does not exist.\n' });
    expect(await new LinkDriver(absent).deleteVlan(100)).toBe(false);
    expect(absent.argvs().some((argv) => argv.includes('del'))).toBe(false);
  });
});
