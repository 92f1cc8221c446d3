/**
 * The multi_host DHCP isolation table's commands (issue 17), against a recording
 * executor: written whole in one transaction when the uplinks change, read back at a
 * full reconcile so drift is repaired, removed when no uplink is left.
 * test/e2e/multiHostUnderlay.test.ts shows its effect on the kernel.
 */
import { describe, expect, it } from 'vitest';
import { DhcpIsolation } from '../../src/linux_net/dhcpIsolation.js';
import { RecordingExecutor } from '../support/recordingExecutor.js';

const LIST = ['nft', 'list', 'table', 'bridge', 'novanet_dhcp'];
const listed = (from: string, to: string) => ({
  stdout: [
    'table bridge novanet_dhcp {',
    '\tchain from_uplink {',
    '\t\ttype filter hook prerouting priority filter; policy accept;',
    `\t\tiifname ${from} udp dport { 67, 68, 546, 547 } counter packets 0 bytes 0 drop`,
    `\t\tiifname ${from} icmpv6 type { nd-router-solicit, nd-router-advert } counter packets 0 bytes 0 drop`,
    '\t}',
    '\tchain to_uplink {',
    '\t\ttype filter hook postrouting priority filter; policy accept;',
    `\t\toifname ${to} udp dport { 67, 68, 546, 547 } counter packets 0 bytes 0 drop`,
    `\t\toifname ${to} icmpv6 type { nd-router-solicit, nd-router-advert } counter packets 0 bytes 0 drop`,
    '\t}',
    '}',
    '',
  ].join('\n'),
});

describe('DhcpIsolation', () => {
  it('writes the table for the uplinks in one transaction, then nothing until they change', async () => {
    const executor = new RecordingExecutor().on(LIST, { code: 1, stderr: 'No such file or directory' });
    const isolation = new DhcpIsolation(executor);
    expect(await isolation.sync(['eth1', 'vxlan100', 'eth1'], true)).toEqual(['DHCP and RA isolated from uplinks eth1,vxlan100']);
    const written = executor.commands.at(-1)!;
    expect(written.argv).toEqual(['nft', '-f', '-']);
    expect(written.input).toContain('add table bridge novanet_dhcp\ndelete table bridge novanet_dhcp\ntable bridge novanet_dhcp {');
    for (const way of ['iifname', 'oifname']) {
      expect(written.input).toContain(`${way} { "eth1", "vxlan100" } udp dport { 67, 68, 546, 547 } counter drop`);
      expect(written.input).toContain(`${way} { "eth1", "vxlan100" } icmpv6 type { nd-router-solicit, nd-router-advert } counter drop`);
    }
    executor.clear();
    expect(await isolation.sync(['vxlan100', 'eth1'], false)).toEqual([]);
    expect(executor.argvs()).toEqual([]);
  });

  it('at a full reconcile, leaves a table as wanted alone and rewrites one that drifted', async () => {
    const same = new RecordingExecutor().on(LIST, listed('"eth1"', '"eth1"'));
    expect(await new DhcpIsolation(same).sync(['eth1'], true)).toEqual([]);
    expect(same.argvs()).toEqual([LIST]);
    const drifted = new RecordingExecutor().on(LIST, listed('{ "eth1", "eth9" }', '"eth1"'));
    expect(await new DhcpIsolation(drifted).sync(['eth1'], true)).toEqual(['DHCP and RA isolated from uplinks eth1']);
  });

  it("rewrites an older release's table, which dropped IPv4 DHCP only", async () => {
    const old = {
      stdout: listed('"eth1"', '"eth1"')
        .stdout.replaceAll(', 546, 547', '')
        .split('\n')
        .filter((line) => !line.includes('icmpv6'))
        .join('\n'),
    };
    const executor = new RecordingExecutor().on(LIST, old);
    expect(await new DhcpIsolation(executor).sync(['eth1'], true)).toEqual(['DHCP and RA isolated from uplinks eth1']);
  });

  it('removes the table when no multi_host uplink is left', async () => {
    const executor = new RecordingExecutor().on(LIST, listed('"eth1"', '"eth1"'));
    expect(await new DhcpIsolation(executor).sync([], true)).toEqual(['DHCP isolation removed']);
    expect(executor.commands.at(-1)!.input).toBe('add table bridge novanet_dhcp\ndelete table bridge novanet_dhcp\n');
  });

  it('refuses an uplink name no interface could have', async () => {
    await expect(new DhcpIsolation(new RecordingExecutor()).sync(['eth1"; flush ruleset'], true)).rejects.toThrow(
      /uplink must be an interface name/,
    );
  });
});
