/**
 * The port guard table's commands (issue 19), against a recording executor: one chain
 * for every port, what each port may send as set elements keyed by its tap; a change
 * adds and deletes only the elements of the ports that changed, a restart that finds
 * the table as wanted writes nothing, drift is repaired, no port left removes it.
 * test/e2e/antiSpoofing.test.ts shows its effect on the kernel.
 */
import { describe, expect, it } from 'vitest';
import { type GuardedPort, PortGuard } from '../../src/linux_net/portGuard.js';
import { RecordingExecutor } from '../support/recordingExecutor.js';

const LIST = ['nft', '-j', 'list', 'table', 'bridge', 'novanet_ports'];
const A: GuardedPort = { tap: 'tap1a2b3c4d-5e', mac: 'fa:16:3e:00:00:01', ipv4: ['10.0.0.3'], ipv6: ['fd00::f816:3eff:fe00:1'] };
const B: GuardedPort = { tap: 'tap99999999-00', mac: 'fa:16:3e:00:00:02', ipv4: [], ipv6: [] };

/** `nft -j` of a table holding these ports, with `rules` rules in its chain. */
function listing(ports: GuardedPort[], rules = 12): { stdout: string } {
  const set = (name: string, elem: unknown[]) => ({ set: { family: 'bridge', name, table: 'novanet_ports', elem } });
  const nftables = [
    { table: { family: 'bridge', name: 'novanet_ports' } },
    set(
      'guarded',
      ports.map((port) => port.tap),
    ),
    set(
      'macs',
      ports.map((port) => ({ concat: [port.tap, port.mac] })),
    ),
    set(
      'ipv4',
      ports.flatMap((port) => port.ipv4.map((address) => ({ concat: [port.tap, address] }))),
    ),
    set(
      'ipv6',
      ports.flatMap((port) => port.ipv6.map((address) => ({ concat: [port.tap, address] }))),
    ),
    ...Array.from({ length: rules }, () => ({ rule: { family: 'bridge', chain: 'guard' } })),
  ];
  return { stdout: JSON.stringify({ nftables }) };
}

describe('PortGuard', () => {
  it('makes the table with its one chain, then the ports as elements, in one transaction', async () => {
    const executor = new RecordingExecutor().on(LIST, { code: 1, stderr: 'No such file or directory' });
    expect(await new PortGuard(executor).sync([A, B], true)).toEqual(['ports guarded: tap1a2b3c4d-5e, tap99999999-00']);
    const text = executor.commands.at(-1)!.input!;
    expect(text).toContain('add table bridge novanet_ports\ndelete table bridge novanet_ports\ntable bridge novanet_ports {');
    for (const rule of [
      'iifname != @guarded accept',
      'iifname . ether saddr != @macs counter drop',
      'ether type vlan counter drop',
      'iifname . arp saddr ether != @macs counter drop',
      'arp saddr ip 0.0.0.0 accept',
      'iifname . arp saddr ip != @ipv4 counter drop',
      'ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept',
      'iifname . ip saddr != @ipv4 counter drop',
      'udp sport 67 counter drop',
      'iifname . ip6 saddr != @ipv6 ip6 saddr != { ::, fe80::/10 } counter drop',
      'icmpv6 type nd-router-advert counter drop',
      'udp sport 547 counter drop',
    ])
      expect(text).toContain(`    ${rule}\n`);
    expect(text).toContain('add element bridge novanet_ports guarded { "tap1a2b3c4d-5e", "tap99999999-00" }');
    expect(text).toContain(
      'add element bridge novanet_ports macs { "tap1a2b3c4d-5e" . fa:16:3e:00:00:01, "tap99999999-00" . fa:16:3e:00:00:02 }',
    );
    // B has no IPv4 address: none of its IPv4 passes but its DHCP request.
    expect(text).toContain('add element bridge novanet_ports ipv4 { "tap1a2b3c4d-5e" . 10.0.0.3 }');
    // IPv6: its own address; link-local and unspecified sources pass for every port.
    expect(text).toContain('add element bridge novanet_ports ipv6 { "tap1a2b3c4d-5e" . fd00::f816:3eff:fe00:1 }');
  });

  it('changes only the elements of the ports that changed; removes the table when none is left', async () => {
    const executor = new RecordingExecutor().on(LIST, listing([A]));
    const guard = new PortGuard(executor);
    expect(await guard.sync([A], true)).toEqual([]);
    executor.clear();
    expect(await guard.sync([A], false)).toEqual([]);
    expect(executor.argvs()).toEqual([]);
    expect(await guard.sync([A, B], false)).toEqual(['ports guarded: tap99999999-00']);
    expect(executor.commands.at(-1)!.input).toBe(
      [
        'add element bridge novanet_ports guarded { "tap99999999-00" }',
        'add element bridge novanet_ports macs { "tap99999999-00" . fa:16:3e:00:00:02 }',
        '',
      ].join('\n'),
    );
    const moved = { ...A, ipv4: ['10.0.0.9'] };
    expect(await guard.sync([moved, B], false)).toEqual(['ports guarded: tap1a2b3c4d-5e']);
    expect(executor.commands.at(-1)!.input).toBe(
      [
        'delete element bridge novanet_ports ipv4 { "tap1a2b3c4d-5e" . 10.0.0.3 }',
        'add element bridge novanet_ports ipv4 { "tap1a2b3c4d-5e" . 10.0.0.9 }',
        '',
      ].join('\n'),
    );
    expect(await guard.sync([moved], false)).toEqual(['port guards removed: tap99999999-00']);
    expect(await guard.sync([], false)).toEqual(['port guards removed']);
    expect(executor.commands.at(-1)!.input).toBe('add table bridge novanet_ports\ndelete table bridge novanet_ports\n');
    // Gone, and known to be: nothing read or written until a port comes, then the table whole.
    executor.clear();
    expect(await guard.sync([], false)).toEqual([]);
    expect(executor.argvs()).toEqual([]);
    expect(await guard.sync([A], false)).toEqual(['ports guarded: tap1a2b3c4d-5e']);
    expect(executor.argvs()).toEqual([['nft', '-f', '-']]);
    expect(executor.commands.at(-1)!.input).toContain('table bridge novanet_ports {');
  });

  it('at a full reconcile (a restart), leaves a table as wanted alone and repairs one that drifted', async () => {
    const same = new RecordingExecutor().on(LIST, listing([A, B]));
    expect(await new PortGuard(same).sync([B, A], true)).toEqual([]);
    expect(same.argvs()).toEqual([LIST]);
    // An element deleted by hand comes back, alone.
    const missing = new RecordingExecutor().on(LIST, listing([{ ...A, ipv4: [] }, B]));
    expect(await new PortGuard(missing).sync([A, B], true)).toEqual(['ports guarded: tap1a2b3c4d-5e']);
    expect(missing.commands.at(-1)!.input).toBe('add element bridge novanet_ports ipv4 { "tap1a2b3c4d-5e" . 10.0.0.3 }\n');
    // A rule deleted by hand: the table is made again whole.
    const edited = new RecordingExecutor().on(LIST, listing([A, B], 11));
    expect(await new PortGuard(edited).sync([A, B], true)).toEqual(['ports guarded: tap1a2b3c4d-5e, tap99999999-00']);
    expect(edited.commands.at(-1)!.input).toContain('delete table bridge novanet_ports\ntable bridge novanet_ports {');
    // No table and no port: nothing to do.
    const none = new RecordingExecutor().on(LIST, { code: 1 });
    expect(await new PortGuard(none).sync([], true)).toEqual([]);
    expect(none.argvs()).toEqual([LIST]);
  });

  it('refuses a port whose tap, MAC or address is not one before writing anything', async () => {
    const executor = new RecordingExecutor();
    await expect(new PortGuard(executor).sync([{ ...A, tap: 'tap;reboot' }], true)).rejects.toThrow(/tap/);
    await expect(new PortGuard(executor).sync([{ ...A, mac: 'fa:16:3e:00:00' }], true)).rejects.toThrow(/not a MAC/);
    await expect(new PortGuard(executor).sync([{ ...A, ipv4: ['10.0.0.300'] }], true)).rejects.toThrow(/address/);
    expect(executor.argvs()).toEqual([]);
  });
});
