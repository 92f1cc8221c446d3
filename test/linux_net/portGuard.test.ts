/**
 * The port guard table's commands (issue 19), against a recording executor: one
 * chain per port, written whole in one transaction when the ports change, left alone
 * at a restart that finds it as wanted, rewritten when it drifted, removed when no
 * port is left. test/e2e/antiSpoofing.test.ts shows its effect on the kernel.
 */
import { describe, expect, it } from 'vitest';
import { type GuardedPort, PortGuard } from '../../src/linux_net/portGuard.js';
import { RecordingExecutor } from '../support/recordingExecutor.js';

const LIST = ['nft', 'list', 'table', 'bridge', 'novanet_ports'];
const A: GuardedPort = { tap: 'tap1a2b3c4d-5e', mac: 'fa:16:3e:00:00:01', ipv4: ['10.0.0.3'], ipv6: ['fd00::f816:3eff:fe00:1'] };
const B: GuardedPort = { tap: 'tap99999999-00', mac: 'fa:16:3e:00:00:02', ipv4: [], ipv6: [] };

/** What `nft list` shows of a table written by `guard` (counters as the kernel prints them). */
async function listingOf(ports: GuardedPort[]): Promise<string> {
  const executor = new RecordingExecutor().on(LIST, { code: 1 });
  await new PortGuard(executor).sync(ports, true);
  const written = executor.commands.at(-1)!.input!;
  return written
    .split('\n')
    .filter((line) => !line.startsWith('add table') && !line.startsWith('delete table'))
    .map((line) => line.replace(/counter drop$/, 'counter packets 0 bytes 0 drop'))
    .join('\n');
}

describe('PortGuard', () => {
  it('writes a chain per port: its MAC, its addresses, no DHCP server, no router advertisement, no VLAN tag', async () => {
    const executor = new RecordingExecutor().on(LIST, { code: 1, stderr: 'No such file or directory' });
    expect(await new PortGuard(executor).sync([B, A], true)).toEqual(['ports guarded: tap1a2b3c4d-5e, tap99999999-00']);
    const text = executor.commands.at(-1)!.input!;
    expect(text).toContain('add table bridge novanet_ports\ndelete table bridge novanet_ports\ntable bridge novanet_ports {');
    expect(text).toContain('iifname vmap { "tap1a2b3c4d-5e" : jump port_tap1a2b3c4d-5e, "tap99999999-00" : jump port_tap99999999-00 }');
    for (const line of [
      'ether saddr != fa:16:3e:00:00:01 counter drop',
      'ether type vlan counter drop',
      'arp saddr ether != fa:16:3e:00:00:01 counter drop',
      'arp saddr ip != { 0.0.0.0, 10.0.0.3 } counter drop',
      'ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept',
      'ip saddr != { 10.0.0.3 } counter drop',
      'udp sport 67 counter drop',
      'ip6 saddr != { ::, fe80::/10, fd00::f816:3eff:fe00:1 } counter drop',
      'icmpv6 type nd-router-advert counter drop',
      'udp sport 547 counter drop',
    ])
      expect(text).toContain(line);
    // A port without an IPv4 address sends no IPv4 but its DHCP request.
    expect(text).toContain('  chain port_tap99999999-00 {\n    ether saddr != fa:16:3e:00:00:02 counter drop');
    expect(text).toMatch(/udp dport 67 accept\n {4}ether type ip counter drop/);
  });

  it('writes nothing again until the ports change; removes the table when none is left', async () => {
    const executor = new RecordingExecutor().on(LIST, { code: 1 });
    const guard = new PortGuard(executor);
    await guard.sync([A], true);
    executor.clear();
    expect(await guard.sync([A], false)).toEqual([]);
    expect(executor.argvs()).toEqual([]);
    expect(await guard.sync([A, B], false)).toEqual(['ports guarded: tap1a2b3c4d-5e, tap99999999-00']);
    expect(await guard.sync([], false)).toEqual(['port guards removed']);
    expect(executor.commands.at(-1)!.input).toBe('add table bridge novanet_ports\ndelete table bridge novanet_ports\n');
  });

  it('at a full reconcile (a restart), leaves a table as wanted alone and rewrites one that drifted', async () => {
    const listing = await listingOf([A, B]);
    const same = new RecordingExecutor().on(LIST, { stdout: listing });
    expect(await new PortGuard(same).sync([B, A], true)).toEqual([]);
    expect(same.argvs()).toEqual([LIST]);
    // A rule deleted by hand: fewer drops than the ports need.
    const edited = new RecordingExecutor().on(LIST, { stdout: listing.replace(/\n\s+udp sport 547 counter packets 0 bytes 0 drop/, '') });
    expect(await new PortGuard(edited).sync([A, B], true)).toEqual(['ports guarded: tap1a2b3c4d-5e, tap99999999-00']);
    // Another set of ports than the table was written for.
    const other = new RecordingExecutor().on(LIST, { stdout: listing });
    expect(await new PortGuard(other).sync([A], true)).toEqual(['ports guarded: tap1a2b3c4d-5e']);
    // No table and no port: nothing to do.
    const none = new RecordingExecutor().on(LIST, { code: 1 });
    expect(await new PortGuard(none).sync([], true)).toEqual([]);
  });

  it('refuses a port whose tap, MAC or address is not one before writing anything', async () => {
    const executor = new RecordingExecutor();
    await expect(new PortGuard(executor).sync([{ ...A, tap: 'tap;reboot' }], true)).rejects.toThrow(/tap/);
    await expect(new PortGuard(executor).sync([{ ...A, mac: 'fa:16:3e:00:00' }], true)).rejects.toThrow(/not a MAC/);
    await expect(new PortGuard(executor).sync([{ ...A, ipv4: ['10.0.0.300'] }], true)).rejects.toThrow(/address/);
    expect(executor.argvs()).toEqual([]);
  });
});
