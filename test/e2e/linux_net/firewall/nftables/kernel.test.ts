/**
 * The nftables backend against the real kernel and nft, inside a network namespace
 * this file creates and always deletes: the kernel takes our table as rendered, reads
 * back as equal (or every sync would rewrite it), applies floating IPs as elements, and
 * switching backends leaves no rule of the other behind. Nothing here touches the root
 * namespace's interfaces or rules.
 */
import { describe, expect, it } from 'vitest';
import type { CommandSpec, Executor } from '../../../../../src/linux_net/command.js';
import { createFirewall } from '../../../../../src/linux_net/firewall/index.js';
import { NftablesDriver } from '../../../../../src/linux_net/firewall/nftables/driver.js';
import { twoNetworks } from '../../../../support/firewall.js';
import { kernelAvailable, useNamespace } from '../../../../support/netns.js';

const kernel = kernelAvailable(['nft', 'iptables-save', 'iptables-restore']);

const STATE = twoNetworks();

describe.runIf(kernel)('nftables backend on the real kernel (own network namespace)', () => {
  const { exec: inNs, executor: real } = useNamespace('nft');
  /** Every command run, so a test can say what a change cost. */
  const ran: CommandSpec[] = [];
  const executor: Executor = {
    run: (spec) => {
      ran.push(spec);
      return real.run(spec);
    },
  };

  it('installs the table, which reads back as desired: a second sync changes nothing', async () => {
    // A foreign table, as firewalld or an admin would keep one.
    inNs('nft', 'add table ip foreign; add chain ip foreign input { type filter hook input priority 10; }');
    expect(await new NftablesDriver(executor).sync(STATE)).toEqual(['ip novanet/table']);
    const listed = inNs('nft', 'list', 'table', 'ip', 'novanet');
    expect(listed).toContain('ip daddr 169.254.169.254 tcp dport 80 dnat to 10.0.0.1:8775 comment');
    expect(listed).toContain('snat to ip saddr . oifname map @floating_snat comment');
    expect(listed).toMatch(/elements = \{ 10\.0\.0\.3 \. "eth0" : 192\.0\.2\.50 \}/);
    ran.length = 0;
    expect(await new NftablesDriver(executor).sync(STATE)).toEqual([]);
    // And a look for an IPv6 table: no network here has one.
    expect(ran.map((spec) => spec.argv.join(' '))).toEqual([
      'nft -j list table ip novanet',
      'env HOME=/nonexistent nft -i',
      'nft list tables ip6',
    ]);
    expect(inNs('nft', 'list', 'table', 'ip', 'novanet')).toBe(listed);
    expect(inNs('nft', 'list', 'tables')).toContain('table ip foreign');
  });

  it('applies a new floating IP as elements only, and removes it again', async () => {
    const driver = new NftablesDriver(executor);
    await driver.sync(STATE);
    const more = { ...STATE, floating: [...STATE.floating, { address: '198.51.100.7', fixed: '10.0.1.9', interface: 'eth0' }] };
    ran.length = 0;
    expect(await driver.apply(more)).toEqual(['ip novanet/floating_dnat', 'ip novanet/floating_snat', 'ip novanet/floating_hairpin']);
    // One transaction on one line, through the nft -i session.
    expect(ran).toHaveLength(1);
    expect(ran[0]!.argv).toEqual(['env', 'HOME=/nonexistent', 'nft', '-i']);
    expect(
      ran[0]!
        .input!.trimEnd()
        .split('; ')
        .every((command) => command.startsWith('add element ')),
    ).toBe(true);
    expect(inNs('nft', 'list', 'map', 'ip', 'novanet', 'floating_dnat')).toMatch(/198\.51\.100\.7 : 10\.0\.1\.9/);
    // The kernel's state read afresh agrees.
    expect(await new NftablesDriver(executor).sync(more)).toEqual([]);
    expect(await driver.apply(STATE)).toEqual(['ip novanet/floating_dnat', 'ip novanet/floating_snat', 'ip novanet/floating_hairpin']);
    expect(inNs('nft', 'list', 'map', 'ip', 'novanet', 'floating_dnat')).not.toContain('198.51.100.7');
    expect(await new NftablesDriver(executor).sync(STATE)).toEqual([]);
  });

  it("an edit the kernel refuses fails whole with nft's error; the next apply reads the kernel and repairs", async () => {
    const driver = new NftablesDriver(executor);
    const more = { ...STATE, floating: [...STATE.floating, { address: '198.51.100.8', fixed: '10.0.1.10', interface: 'eth0' }] };
    await driver.sync(more);
    // Behind the driver's back: its delete of this element will find nothing to delete.
    inNs('nft', 'delete', 'element', 'ip', 'novanet', 'floating_dnat', '{ 198.51.100.8 }');
    await expect(driver.apply(STATE)).rejects.toThrow(/nft -i: input refused: Error: Could not process rule: No such file or directory/);
    // Nothing of the transaction applied: the other maps still hold the address.
    expect(inNs('nft', 'list', 'map', 'ip', 'novanet', 'floating_snat')).toContain('198.51.100.8');
    expect(await driver.apply(STATE)).toEqual(['ip novanet/floating_snat', 'ip novanet/floating_hairpin']);
    expect(inNs('nft', 'list', 'table', 'ip', 'novanet')).not.toContain('198.51.100.8');
    expect(await new NftablesDriver(executor).sync(STATE)).toEqual([]);
  });

  it('refills a chain whose rules changed, and the REDIRECT form of the metadata rule', async () => {
    const driver = new NftablesDriver(executor);
    await driver.sync(STATE);
    const local = { ...STATE, metadataHost: '127.0.0.1' };
    expect(await driver.apply(local)).toEqual(['ip novanet/prerouting', 'ip novanet/postrouting']);
    expect(inNs('nft', 'list', 'chain', 'ip', 'novanet', 'prerouting')).toContain('redirect to :8775');
    expect(await new NftablesDriver(executor).sync(local)).toEqual([]);
    expect(await driver.apply(STATE)).toEqual(['ip novanet/prerouting', 'ip novanet/postrouting']);
  });

  it('repairs a rule deleted by hand and a chain added by hand', async () => {
    const handles = inNs('nft', '-a', 'list', 'chain', 'ip', 'novanet', 'postrouting');
    const handle = /oifname "eth0" snat to 192\.0\.2\.10 comment "[0-9a-f]+" # handle (\d+)/.exec(handles)?.[1];
    expect(handle).toBeDefined();
    inNs('nft', 'delete', 'rule', 'ip', 'novanet', 'postrouting', 'handle', handle!);
    expect(await new NftablesDriver(executor).sync(STATE)).toEqual(['ip novanet/postrouting']);
    inNs('nft', 'add', 'chain', 'ip', 'novanet', 'mine');
    expect(await new NftablesDriver(executor).sync(STATE)).toEqual(['ip novanet/mine']);
    expect(inNs('nft', 'list', 'table', 'ip', 'novanet')).not.toContain('chain mine');
    expect(await new NftablesDriver(executor).sync(STATE)).toEqual([]);
  });

  it("switching to iptables removes the table; switching back removes nova's chains, foreign rules stay", async () => {
    inNs('iptables', '-t', 'nat', '-N', 'FOREIGN');
    inNs('iptables', '-t', 'nat', '-A', 'POSTROUTING', '-j', 'FOREIGN');
    const iptables = await createFirewall('iptables', executor).sync(STATE);
    expect(iptables).toContain('nftables table ip novanet removed');
    expect(inNs('nft', 'list', 'tables')).not.toContain('table ip novanet');
    expect(inNs('iptables-save', '-t', 'nat')).toContain('-A nova-network-snat');
    const nftables = await createFirewall('nftables', executor).sync(STATE);
    expect(nftables).toContain('ip novanet/table');
    expect(nftables).toContain('iptables nat/nova-network-snat removed');
    const saved = inNs('iptables-save');
    expect(saved).not.toMatch(/nova-/);
    expect(saved).toContain('-A POSTROUTING -j FOREIGN');
    expect(inNs('nft', 'list', 'tables')).toContain('table ip foreign');
    // Nothing of iptables' left to remove, nothing of ours to change.
    expect(await createFirewall('nftables', executor).sync(STATE)).toEqual([]);
  });
});
