import { beforeEach, describe, expect, it } from 'vitest';
import type { CommandSpec } from '../../../../src/linux_net/command.js';
import { IptablesDriver } from '../../../../src/linux_net/firewall/iptables/driver.js';
import { parseSave, renderRestore, TABLES, withWiring } from '../../../../src/linux_net/firewall/iptables/plan.js';
import { renderRules } from '../../../../src/linux_net/firewall/iptables/render.js';
import type { FloatingRule } from '../../../../src/linux_net/firewall/state.js';
import { firewallState } from '../../../support/firewall.js';
import { DOCKER_HOST, FakeKernel, FIRST_SYNC_SCRIPT } from '../../../support/iptables.js';
import { RecordingExecutor } from '../../../support/recordingExecutor.js';

const firewall = firewallState;

function floatingRules(count: number): FloatingRule[] {
  return Array.from({ length: count }, (_, index) => ({
    address: `198.18.${Math.floor(index / 256)}.${index % 256}`,
    fixed: `10.${1 + Math.floor(index / 65536)}.${Math.floor(index / 256) % 256}.${index % 256}`,
    interface: 'eth0',
  }));
}

/** iptables-restore as the session keeps it running (-v echoes the probe comment). */
const RESTORE = ['iptables-restore', '-w', '10', '--noflush', '-v'];
const SESSION = { probe: '# novanet', failsOnStderr: false, oneShot: ['iptables-restore', '-w', '10', '--noflush'] };

function restores(executor: RecordingExecutor): CommandSpec[] {
  return executor.commands.filter((spec) => spec.argv[0] === 'iptables-restore');
}

describe('IptablesDriver', () => {
  let executor: RecordingExecutor;
  let kernel: FakeKernel;
  let driver: IptablesDriver;

  beforeEach(() => {
    executor = new RecordingExecutor();
    kernel = new FakeKernel(DOCKER_HOST);
    kernel.attach(executor);
    driver = new IptablesDriver(executor);
  });

  it('sync reads the ruleset and applies the difference in one iptables-restore --noflush', async () => {
    const changed = await driver.sync(firewall());
    expect(changed).toHaveLength(18);
    expect(executor.commands).toEqual([
      { argv: ['iptables-save'] },
      { argv: RESTORE, session: SESSION, input: FIRST_SYNC_SCRIPT },
      // The session stays open: the first change after a start does not wait for it.
      { argv: RESTORE, session: SESSION, input: '' },
    ]);
  });

  it('a second sync of the same state reads and changes nothing', async () => {
    await driver.sync(firewall());
    executor.clear();
    expect(await driver.sync(firewall())).toEqual([]);
    expect(executor.commands).toEqual([{ argv: ['iptables-save'] }, { argv: RESTORE, session: SESSION, input: '' }]);
  });

  it('keeps every foreign chain and rule, in its order, through any number of syncs', async () => {
    const before = parseSave(DOCKER_HOST);
    for (let round = 0; round < 3; round++) await driver.sync(firewall({ routingSourceIp: `192.0.2.${10 + round}` }));
    const after = parseSave(kernel.save());
    for (const table of TABLES) {
      for (const [chain, rules] of before[table]) {
        expect(after[table].get(chain)?.filter((rule) => !rule.includes('nova-'))).toEqual(rules);
      }
    }
    expect(after.filter.get('FORWARD')).toEqual(['-j nova-filter-top', ...before.filter.get('FORWARD')!]);
    expect(after.nat.get('POSTROUTING')).toEqual([
      '-j nova-network-POSTROUTING',
      ...before.nat.get('POSTROUTING')!,
      '-j nova-postrouting-bottom',
    ]);
  });

  it('sync repairs a jump deleted by hand', async () => {
    await driver.sync(firewall());
    kernel.tables.nat.get('PREROUTING')!.shift();
    executor.clear();
    expect(await driver.sync(firewall())).toEqual(['nat/PREROUTING:-j nova-network-PREROUTING']);
    expect(executor.commands[1]).toEqual({
      argv: RESTORE,
      session: SESSION,
      input: '*nat\n-I PREROUTING 1 -j nova-network-PREROUTING\nCOMMIT\n',
    });
    expect(kernel.tables.nat.get('PREROUTING')).toEqual(['-j nova-network-PREROUTING', '-m addrtype --dst-type LOCAL -j DOCKER']);
  });

  it('sync repairs a rule deleted by hand', async () => {
    await driver.sync(firewall());
    kernel.tables.filter.get('nova-network-FORWARD')!.pop();
    executor.clear();
    expect(await driver.sync(firewall())).toEqual(['filter/nova-network-FORWARD']);
    expect(executor.commands[1]?.input).toBe('*filter\n-A nova-network-FORWARD -o br100 -j ACCEPT\nCOMMIT\n');
  });

  it('the first apply reads the kernel, like sync', async () => {
    await driver.apply(firewall());
    expect(executor.argvs()).toEqual([['iptables-save'], RESTORE, RESTORE]);
    expect(executor.commands[1]?.input).toBe(FIRST_SYNC_SCRIPT);
  });

  it('apply after sync uses the remembered state: no iptables-save, only the changed chain', async () => {
    await driver.sync(firewall());
    executor.clear();
    const changed = await driver.apply(firewall({ dmzCidrs: ['10.128.0.0/24'] }));
    expect(changed).toEqual(['nat/nova-network-POSTROUTING']);
    expect(executor.commands).toEqual([
      {
        argv: RESTORE,
        session: SESSION,
        input: ['*nat', '-I nova-network-POSTROUTING 2 -s 10.0.0.0/24 -d 10.128.0.0/24 -j ACCEPT', 'COMMIT', ''].join('\n'),
      },
    ]);
  });

  it('apply of an unchanged state runs no command', async () => {
    await driver.sync(firewall());
    executor.clear();
    expect(await driver.apply(firewall())).toEqual([]);
    expect(executor.commands).toEqual([]);
  });

  it('apply remembers its own changes: applying them again runs no command', async () => {
    await driver.sync(firewall());
    await driver.apply(firewall({ routingSourceIp: '192.0.2.99' }));
    executor.clear();
    expect(await driver.apply(firewall({ routingSourceIp: '192.0.2.99' }))).toEqual([]);
    expect(executor.commands).toEqual([]);
    // ...and what it remembers is what the kernel holds.
    expect(renderRestore(withWiring(renderRules(firewall({ routingSourceIp: '192.0.2.99' }))), parseSave(kernel.save())).script).toBe('');
  });

  it('work per change does not grow with the rules installed (5,000 floating IPs), and no chain outgrows a /24', async () => {
    const floating = floatingRules(5_000);
    await driver.sync(firewall({ floating }));
    // 5,000 addresses in 20 floating /24s and 20 fixed /24s: one chain each.
    expect(kernel.tables.nat.get('nova-network-float-snat')).toHaveLength(20);
    expect(kernel.tables.nat.get('nova-network-PREROUTING')).toHaveLength(21);
    expect(kernel.tables.nat.get('nova-float-dnat-c61200')).toHaveLength(256);
    expect(kernel.tables.nat.get('nova-float-snat-0a0100')).toHaveLength(3 * 256);
    executor.clear();
    const changed = await driver.apply(firewall({ floating, routingSourceIp: '192.0.2.11' }));
    expect(changed).toEqual(['nat/nova-network-snat']);
    const input = executor.commands[0]?.input ?? '';
    expect(executor.argvs()).toEqual([RESTORE]);
    expect(input).not.toContain('198.18.');
    expect(input.split('\n')).toHaveLength(5);
    // Adding one floating IP in a new /24: its chains, their jumps and its 4 rules.
    executor.clear();
    const more = [...floating, { address: '203.0.113.77', fixed: '10.0.0.77', interface: 'eth0' }];
    await driver.apply(firewall({ floating: more, routingSourceIp: '192.0.2.11' }));
    expect(executor.commands[0]?.input?.split('\n').filter((line) => /^[-:]/.test(line))).toEqual([
      ':nova-float-dnat-cb0071 - [0:0]',
      ':nova-float-snat-0a0000 - [0:0]',
      '-A nova-network-PREROUTING -d 203.0.113.0/24 -j nova-float-dnat-cb0071',
      '-A nova-network-OUTPUT -d 203.0.113.0/24 -j nova-float-dnat-cb0071',
      '-I nova-network-float-snat 1 -s 10.0.0.0/24 -j nova-float-snat-0a0000',
      '-A nova-float-dnat-cb0071 -d 203.0.113.77/32 -j DNAT --to-destination 10.0.0.77',
      '-A nova-float-snat-0a0000 -s 10.0.0.77/32 -m conntrack --ctstate DNAT -j SNAT --to-source 203.0.113.77',
      '-A nova-float-snat-0a0000 -s 10.0.0.77/32 -d 10.0.0.77/32 -j SNAT --to-source 203.0.113.77',
      '-A nova-float-snat-0a0000 -s 10.0.0.77/32 -o eth0 -j SNAT --to-source 203.0.113.77',
    ]);
    expect(
      renderRestore(withWiring(renderRules(firewall({ floating: more, routingSourceIp: '192.0.2.11' }))), parseSave(kernel.save())).script,
    ).toBe('');
    // One more in an existing /24: one line in each of its two chains.
    executor.clear();
    const another = [...floating, { address: '198.18.19.200', fixed: '10.1.19.200', interface: 'eth0' }, more.at(-1)!];
    await driver.apply(firewall({ floating: another, routingSourceIp: '192.0.2.11' }));
    expect(executor.commands[0]?.input?.split('\n').filter((line) => /^[-:]/.test(line))).toEqual([
      '-A nova-float-dnat-c61213 -d 198.18.19.200/32 -j DNAT --to-destination 10.1.19.200',
      '-A nova-float-snat-0a0113 -s 10.1.19.200/32 -m conntrack --ctstate DNAT -j SNAT --to-source 198.18.19.200',
      '-A nova-float-snat-0a0113 -s 10.1.19.200/32 -d 10.1.19.200/32 -j SNAT --to-source 198.18.19.200',
      '-A nova-float-snat-0a0113 -s 10.1.19.200/32 -o eth0 -j SNAT --to-source 198.18.19.200',
    ]);
    // Removing them takes the emptied chains away.
    executor.clear();
    await driver.apply(firewall({ floating, routingSourceIp: '192.0.2.11' }));
    expect(executor.commands[0]?.input).toContain('-X nova-float-dnat-cb0071');
    expect(kernel.tables.nat.has('nova-float-snat-0a0000')).toBe(false);
    expect(
      renderRestore(withWiring(renderRules(firewall({ floating, routingSourceIp: '192.0.2.11' }))), parseSave(kernel.save())).script,
    ).toBe('');
    // Any other chain likewise leaves the floating rules out.
    executor.clear();
    expect(await driver.apply(firewall({ floating, routingSourceIp: '192.0.2.11', dmzCidrs: ['10.128.0.0/24'] }))).toEqual([
      'nat/nova-network-POSTROUTING',
    ]);
    expect(executor.commands[0]?.input).not.toContain('198.18.');
  });

  it('after a failed restore, the next apply reads the kernel again', async () => {
    await driver.sync(firewall());
    executor.once(['iptables-restore'], { code: 1, stderr: 'iptables-restore: line 3 failed\n' });
    await expect(driver.apply(firewall({ routingSourceIp: '192.0.2.11' }))).rejects.toThrow(
      'iptables-restore -w 10 --noflush -v: exit status 1: iptables-restore: line 3 failed',
    );
    executor.clear();
    await driver.apply(firewall({ routingSourceIp: '192.0.2.11' }));
    expect(executor.argvs()).toEqual([['iptables-save'], RESTORE, RESTORE]);
    expect(renderRestore(withWiring(renderRules(firewall({ routingSourceIp: '192.0.2.11' }))), parseSave(kernel.save())).script).toBe('');
  });

  it('a failing iptables-save fails the sync without restoring anything', async () => {
    executor.once(['iptables-save'], { code: 4, stderr: 'iptables-save: Permission denied\n' });
    await expect(driver.sync(firewall())).rejects.toThrow('iptables-save: exit status 4: iptables-save: Permission denied');
    expect(restores(executor)).toEqual([]);
  });
});
