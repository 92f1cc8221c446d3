/**
 * The iptables backend against the real kernel and iptables, inside a network namespace
 * this file creates and always deletes: the rule spellings must be iptables-save's own
 * (or every sync would rewrite them), foreign rules keep their place, and drift is
 * repaired. Nothing here touches the root namespace's interfaces or rules.
 */
import { describe, expect, it } from 'vitest';
import { IptablesDriver } from '../../../../../src/linux_net/firewall/iptables/driver.js';
import { parseSave, renderRestore, withWiring } from '../../../../../src/linux_net/firewall/iptables/plan.js';
import { renderRules } from '../../../../../src/linux_net/firewall/iptables/render.js';
import { twoNetworks } from '../../../../support/firewall.js';
import { kernelAvailable, useNamespace } from '../../../../support/netns.js';

const kernel = kernelAvailable(['iptables', 'iptables-save', 'iptables-restore']);

const STATE = twoNetworks();

describe.runIf(kernel)('iptables backend on the real kernel (own network namespace)', () => {
  const { exec: inNs, executor } = useNamespace('ipt');

  /** iptables-save without its timestamped comment lines. */
  const save = (): string =>
    inNs('iptables-save')
      .split('\n')
      .filter((line) => !line.startsWith('#'))
      .join('\n');

  it('writes rules in iptables-save spelling, keeps foreign rules and changes nothing the second time', async () => {
    // A Docker-like host: FORWARD policy DROP, a foreign chain, rules above and below ours.
    inNs('iptables', '-P', 'FORWARD', 'DROP');
    inNs('iptables', '-N', 'DOCKER-USER');
    inNs('iptables', '-A', 'DOCKER-USER', '-j', 'RETURN');
    inNs('iptables', '-A', 'FORWARD', '-j', 'DOCKER-USER');
    inNs('iptables', '-t', 'nat', '-A', 'POSTROUTING', '-s', '172.17.0.0/16', '!', '-o', 'docker0', '-j', 'MASQUERADE');
    const foreign = save();
    const driver = new IptablesDriver(executor);
    expect(await driver.sync(STATE)).toHaveLength(20);
    // The kernel prints our rules exactly as we render them: nothing left to change.
    expect(renderRestore(withWiring(renderRules(STATE)), parseSave(inNs('iptables-save'))).script).toBe('');
    const installed = save();
    expect(await driver.sync(STATE)).toEqual([]);
    expect(save()).toBe(installed);
    const forward = parseSave(installed).filter.get('FORWARD');
    expect(forward).toEqual(['-j nova-filter-top', '-j DOCKER-USER']);
    expect(parseSave(installed).nat.get('POSTROUTING')).toEqual([
      '-j nova-network-POSTROUTING',
      '-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE',
      '-j nova-postrouting-bottom',
    ]);
    for (const line of foreign.split('\n').filter((text) => text.startsWith('-A'))) expect(installed).toContain(line);
    expect(installed).toContain(':FORWARD DROP');
  });

  it('applies a change to one chain, and the REDIRECT form of the metadata rule', async () => {
    const driver = new IptablesDriver(executor);
    await driver.sync(STATE);
    const local = { ...STATE, metadataHost: '127.0.0.1', routingSourceIp: '192.0.2.11' };
    expect(await driver.apply(local)).toEqual(['nat/nova-network-PREROUTING', 'nat/nova-network-POSTROUTING', 'nat/nova-network-snat']);
    expect(renderRestore(withWiring(renderRules(local)), parseSave(inNs('iptables-save'))).script).toBe('');
    expect(parseSave(inNs('iptables-save')).nat.get('nova-network-PREROUTING')?.[0]).toBe(
      '-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 8775',
    );
    // Back, so the other tests start from STATE.
    await driver.apply(STATE);
    expect(renderRestore(withWiring(renderRules(STATE)), parseSave(inNs('iptables-save'))).script).toBe('');
  });

  it('makes a floating /24 chain for a new bucket and removes it with its last address', async () => {
    const driver = new IptablesDriver(executor);
    await driver.sync(STATE);
    const more = { ...STATE, floating: [...STATE.floating, { address: '198.51.100.7', fixed: '10.0.1.9', interface: 'eth0' }] };
    expect(await driver.apply(more)).toEqual([
      'nat/nova-network-PREROUTING',
      'nat/nova-network-OUTPUT',
      'nat/nova-network-float-snat',
      'nat/nova-float-dnat-c63364',
      'nat/nova-float-snat-0a0001',
    ]);
    const installed = parseSave(inNs('iptables-save'));
    expect(installed.nat.get('nova-float-dnat-c63364')).toEqual(['-d 198.51.100.7/32 -j DNAT --to-destination 10.0.1.9']);
    expect(installed.nat.get('nova-network-OUTPUT')).toContain('-d 198.51.100.0/24 -j nova-float-dnat-c63364');
    expect(renderRestore(withWiring(renderRules(more)), installed).script).toBe('');
    // The kernel's state read afresh (sync) agrees, and going back removes both chains.
    expect(await new IptablesDriver(executor).sync(STATE)).toEqual([
      'nat/nova-network-PREROUTING',
      'nat/nova-network-OUTPUT',
      'nat/nova-network-float-snat',
      'nat/nova-float-dnat-c63364',
      'nat/nova-float-snat-0a0001',
    ]);
    const after = parseSave(inNs('iptables-save'));
    expect([...after.nat.keys()].filter((chain) => chain.startsWith('nova-float-'))).toEqual([
      'nova-float-dnat-c00002',
      'nova-float-snat-0a0000',
    ]);
    expect(renderRestore(withWiring(renderRules(STATE)), after).script).toBe('');
  });

  it('repairs a jump and a rule deleted by hand', async () => {
    inNs('iptables', '-D', 'FORWARD', '-j', 'nova-filter-top');
    inNs('iptables', '-t', 'nat', '-D', 'nova-network-snat', '-s', '10.0.0.0/24', '-o', 'eth0', '-j', 'SNAT', '--to-source', '192.0.2.10');
    const driver = new IptablesDriver(executor);
    expect(await driver.sync(STATE)).toEqual(['filter/FORWARD:-j nova-filter-top', 'nat/nova-network-snat']);
    expect(parseSave(inNs('iptables-save')).filter.get('FORWARD')).toEqual(['-j nova-filter-top', '-j DOCKER-USER']);
    expect(await driver.sync(STATE)).toEqual([]);
  });
});
