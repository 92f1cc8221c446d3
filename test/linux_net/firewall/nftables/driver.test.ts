import { describe, expect, it } from 'vitest';
import type { CommandSpec } from '../../../../src/linux_net/command.js';
import { NftablesDriver } from '../../../../src/linux_net/firewall/nftables/driver.js';
import { ruleTag } from '../../../../src/linux_net/firewall/nftables/plan.js';
import { firewallState } from '../../../support/firewall.js';
import { FLOATING, LIST, listing, noTable, wanted } from '../../../support/nftables.js';
import { RecordingExecutor } from '../../../support/recordingExecutor.js';

/** The transaction that adds FLOATING[1] to a table holding FLOATING[0]. */
const SECOND_ADDED = [
  'add element ip novanet floating_dnat { 192.0.2.51 : 10.0.0.4 }',
  'add element ip novanet floating_snat { 10.0.0.4 . "eth2" : 192.0.2.51 }',
  'add element ip novanet floating_hairpin { 10.0.0.4 : 192.0.2.51 }',
  '',
].join('\n');

/** The session spec of nft -i, as the driver sends it. */
const NFT_I = ['env', 'HOME=/nonexistent', 'nft', '-i'];
const NFT_SESSION = { argv: NFT_I, session: { probe: 'describe ip saddr', failsOnStderr: true, oneShot: ['nft', '-f', '-'] } };
/** The look for an IPv6 table left by an earlier run, which a sync without IPv6 networks makes. */
const LIST_V6_TABLES = ['nft', 'list', 'tables', 'ip6'];
/** A transaction: an `nft -f -` script, or an input to the session (not the empty one that opens it). */
const isScript = (spec: CommandSpec) => ['nft -f -', NFT_I.join(' ')].includes(spec.argv.join(' ')) && spec.input !== '';
/** Each transaction's commands one per line: the session's input has them on one line. */
const scripts = (executor: RecordingExecutor) =>
  executor.commands.filter(isScript).map((spec) => (spec.session ? spec.input!.replaceAll('; ', '\n') : spec.input));

describe('NftablesDriver', () => {
  it('creates the whole table in one transaction when there is none', async () => {
    const executor = new RecordingExecutor().on(LIST, noTable);
    const driver = new NftablesDriver(executor);
    expect(await driver.sync(firewallState({ floating: [FLOATING[0]!] }))).toEqual(['ip novanet/table']);
    const [script] = scripts(executor);
    expect(script).toMatch(/^table ip novanet \{\n\tmap floating_dnat \{\n\t\ttype ipv4_addr : ipv4_addr\n\t\}\n/);
    expect(script).toContain('\tmap floating_snat {\n\t\ttype ipv4_addr . ifname : ipv4_addr\n\t}');
    expect(script).toContain('\tchain postrouting {\n\t\ttype nat hook postrouting priority 100; policy accept;\n');
    expect(script).toContain(
      `\t\tip saddr 10.0.0.0/24 oifname "eth0" snat to 192.0.2.10 comment "${ruleTag('ip saddr 10.0.0.0/24 oifname "eth0" snat to 192.0.2.10')}"\n`,
    );
    expect(script).toContain('add element ip novanet floating_dnat { 192.0.2.50 : 10.0.0.3 }\n');
    expect(script).toContain('add element ip novanet floating_snat { 10.0.0.3 . "eth0" : 192.0.2.50 }\n');
    expect(script).not.toContain('delete table');
    // The session is opened after: the first change after a start does not wait for it.
    expect(executor.argvs()).toEqual([LIST, ['nft', '-f', '-'], NFT_I, LIST_V6_TABLES]);
    expect(executor.commands[2]).toEqual({ ...NFT_SESSION, input: '' });
  });

  it('changes nothing when the installed table is the desired one', async () => {
    const state = firewallState({ floating: FLOATING });
    const executor = new RecordingExecutor().on(LIST, { stdout: listing(wanted(state)) });
    expect(await new NftablesDriver(executor).sync(state)).toEqual([]);
    expect(executor.commands).toEqual([
      { argv: LIST, accept: [0, 1] },
      { ...NFT_SESSION, input: '' },
      { argv: LIST_V6_TABLES, accept: [0, 1] },
    ]);
  });

  it('applies a floating IP associated after the sync as one element per map, reading nothing', async () => {
    const executor = new RecordingExecutor().on(LIST, { stdout: listing(wanted(firewallState({ floating: [FLOATING[0]!] }))) });
    const driver = new NftablesDriver(executor);
    await driver.sync(firewallState({ floating: [FLOATING[0]!] }));
    executor.clear();
    expect(await driver.apply(firewallState({ floating: FLOATING }))).toEqual([
      'ip novanet/floating_dnat',
      'ip novanet/floating_snat',
      'ip novanet/floating_hairpin',
    ]);
    expect(executor.commands).toEqual([{ ...NFT_SESSION, input: `${SECOND_ADDED.trimEnd().replaceAll('\n', '; ')}\n` }]);
  });

  it('moves a floating IP to another fixed address by deleting its elements, then adding them, in one transaction', async () => {
    const executor = new RecordingExecutor().on(LIST, noTable);
    const driver = new NftablesDriver(executor);
    await driver.sync(firewallState({ floating: [FLOATING[0]!] }));
    executor.clear();
    await driver.apply(firewallState({ floating: [{ ...FLOATING[0]!, fixed: '10.0.0.9' }] }));
    expect(scripts(executor)).toEqual([
      [
        'delete element ip novanet floating_dnat { 192.0.2.50 }',
        'add element ip novanet floating_dnat { 192.0.2.50 : 10.0.0.9 }',
        'delete element ip novanet floating_snat { 10.0.0.3 . "eth0" }',
        'add element ip novanet floating_snat { 10.0.0.9 . "eth0" : 192.0.2.50 }',
        'delete element ip novanet floating_hairpin { 10.0.0.3 }',
        'add element ip novanet floating_hairpin { 10.0.0.9 : 192.0.2.50 }',
        '',
      ].join('\n'),
    ]);
    executor.clear();
    expect(await driver.apply(firewallState({ floating: [{ ...FLOATING[0]!, fixed: '10.0.0.9' }] }))).toEqual([]);
    expect(executor.commands).toEqual([]);
  });

  it('hands a shared fixed address to the next floating IP when the first goes, editing only its keys', async () => {
    const executor = new RecordingExecutor().on(LIST, noTable);
    const driver = new NftablesDriver(executor);
    const second = { address: '192.0.2.52', fixed: '10.0.0.3', interface: 'eth0' };
    await driver.sync(firewallState({ floating: [FLOATING[0]!, second, FLOATING[1]!] }));
    executor.clear();
    await driver.apply(firewallState({ floating: [second, FLOATING[1]!] }));
    expect(scripts(executor)).toEqual([
      [
        'delete element ip novanet floating_dnat { 192.0.2.50 }',
        'delete element ip novanet floating_snat { 10.0.0.3 . "eth0" }',
        'add element ip novanet floating_snat { 10.0.0.3 . "eth0" : 192.0.2.52 }',
        'delete element ip novanet floating_hairpin { 10.0.0.3 }',
        'add element ip novanet floating_hairpin { 10.0.0.3 : 192.0.2.52 }',
        '',
      ].join('\n'),
    ]);
  });

  it('refills only the chain whose rules changed, keeping the maps', async () => {
    const executor = new RecordingExecutor().on(LIST, noTable);
    const driver = new NftablesDriver(executor);
    await driver.sync(firewallState({ floating: FLOATING }));
    executor.clear();
    expect(await driver.apply(firewallState({ floating: FLOATING, routingSourceIp: '192.0.2.11' }))).toEqual(['ip novanet/postrouting']);
    const [script] = scripts(executor);
    const lines = script!.split('\n');
    expect(lines[0]).toBe('flush chain ip novanet postrouting');
    expect(lines.slice(1, -1).every((line) => line.startsWith('add rule ip novanet postrouting '))).toBe(true);
    expect(lines).toHaveLength(wanted(firewallState()).chains.find((chain) => chain.name === 'postrouting')!.rules.length + 2);
    expect(script).toContain('oifname "eth0" snat to 192.0.2.11 comment');
  });

  it('repairs a rule deleted by hand (sync) by refilling its chain', async () => {
    const state = firewallState({ floating: FLOATING });
    const ruleset = wanted(state);
    const snat = ruleTag('ip saddr 10.0.0.0/24 oifname "eth0" snat to 192.0.2.10');
    const executor = new RecordingExecutor().on(LIST, {
      stdout: listing(ruleset, (objects) => objects.filter((object) => (object as { rule?: { comment: string } }).rule?.comment !== snat)),
    });
    expect(await new NftablesDriver(executor).sync(state)).toEqual(['ip novanet/postrouting']);
    expect(scripts(executor)[0]).toMatch(/^flush chain ip novanet postrouting\n/);
  });

  it('repairs a lost element without touching the others', async () => {
    const state = firewallState({ floating: FLOATING });
    const partial = wanted(firewallState({ floating: [FLOATING[0]!] }));
    const executor = new RecordingExecutor().on(LIST, { stdout: listing({ ...partial, chains: wanted(state).chains }) });
    await new NftablesDriver(executor).sync(state);
    expect(scripts(executor)[0]).toBe(SECOND_ADDED);
  });

  it('remakes the table atomically when a chain or map is not the one wanted', async () => {
    const state = firewallState({ floating: FLOATING });
    const ruleset = wanted(state);
    const executor = new RecordingExecutor().on(LIST, {
      stdout: listing(ruleset, (objects) => [
        ...objects.map((object) => {
          const chain = (object as { chain?: { name: string } }).chain;
          return chain?.name === 'forward' ? { chain: { ...chain, prio: 10 } } : object;
        }),
        { chain: { family: 'ip', table: 'novanet', name: 'extra' } },
      ]),
    });
    expect(await new NftablesDriver(executor).sync(state)).toEqual(['ip novanet/forward', 'ip novanet/extra']);
    const [script] = scripts(executor);
    expect(script).toMatch(/^add table ip novanet\ndelete table ip novanet\ntable ip novanet \{\n/);
    // The elements go back in with the new table.
    expect(script).toContain('add element ip novanet floating_dnat { 192.0.2.50 : 10.0.0.3, 192.0.2.51 : 10.0.0.4 }');
    expect(executor.commands.filter(isScript)).toHaveLength(1);
  });

  it('reads the kernel again after a failed transaction', async () => {
    const executor = new RecordingExecutor().on(LIST, noTable);
    const driver = new NftablesDriver(executor);
    await driver.sync(firewallState());
    executor.once(NFT_I, { code: 1, stderr: 'Error: Could not process rule: No such file or directory' });
    await expect(driver.apply(firewallState({ floating: FLOATING }))).rejects.toThrow(/nft -i: exit status 1/);
    executor.clear();
    await driver.apply(firewallState({ floating: FLOATING }));
    expect(executor.argvs()[0]).toEqual(LIST);
  });

  it('after a sync whose listing failed, the next apply reads the kernel again', async () => {
    const executor = new RecordingExecutor().on(LIST, noTable);
    const driver = new NftablesDriver(executor);
    await driver.sync(firewallState({ floating: [FLOATING[0]!] }));
    executor.once(LIST, { code: 1, stderr: 'Error: Operation not permitted' });
    await expect(driver.sync(firewallState({ floating: FLOATING }))).rejects.toThrow(/Operation not permitted/);
    executor.clear();
    await driver.apply(firewallState({ floating: FLOATING }));
    expect(executor.argvs()[0]).toEqual(LIST);
    expect(scripts(executor)[0]).toContain('192.0.2.51 : 10.0.0.4');
  });

  it('refuses to guess when the listing fails for another reason', async () => {
    const executor = new RecordingExecutor().on(LIST, { code: 1, stderr: 'Error: Operation not permitted' });
    await expect(new NftablesDriver(executor).sync(firewallState())).rejects.toThrow(/Operation not permitted/);
    expect(executor.commands.filter(isScript)).toEqual([]);
  });

  it('removes its table only when there is one', async () => {
    const present = new RecordingExecutor().on(['nft', 'list', 'tables', 'ip'], { stdout: 'table ip filter\ntable ip novanet\n' });
    expect(await new NftablesDriver(present).remove()).toEqual(['table ip novanet']);
    expect(present.argvs()).toEqual([LIST_V6_TABLES, ['nft', 'list', 'tables', 'ip'], ['nft', 'delete', 'table', 'ip', 'novanet']]);
    const absent = new RecordingExecutor().on(['nft', 'list', 'tables', 'ip'], { stdout: 'table ip filter\n' });
    expect(await new NftablesDriver(absent).remove()).toEqual([]);
    expect(absent.argvs()).toEqual([LIST_V6_TABLES, ['nft', 'list', 'tables', 'ip']]);
  });

  it('keeps an IPv6 table while a network has a /64: written whole, unchanged when the same, removed when none has', async () => {
    const executor = new RecordingExecutor().on(LIST, noTable).on(['nft', '-j', 'list', 'table', 'ip6'], {
      code: 1,
      stderr: 'Error: No such file or directory',
    });
    const driver = new NftablesDriver(executor);
    const v6 = firewallState({
      networks: [{ cidr: '10.0.0.0/24', bridge: 'br100', gateway: '10.0.0.1', dhcp: true, isolated: true, v6: true }],
    });
    expect(await driver.sync(v6)).toEqual(['ip novanet/table', 'ip6 novanet']);
    const table = scripts(executor).at(-1)!;
    expect(table).toMatch(/^add table ip6 novanet\ndelete table ip6 novanet\ntable ip6 novanet \{\n\tchain isolate \{\n/);
    expect(table).toContain(`\t\toifname "br100" drop comment "${ruleTag('oifname "br100" drop')}"`);
    expect(table).toContain('iifname "br100" oifname != "br100" jump isolate');
    expect(table).toContain('iifname "br100" udp dport 547 accept');
    expect(table).toContain('iifname "br100" meta l4proto ipv6-icmp accept');
    executor.clear();
    expect(await driver.apply(v6)).toEqual([]);
    expect(executor.argvs()).toEqual([]);
    expect(await driver.apply(firewallState())).toContain('ip6 novanet removed');
    expect(scripts(executor).at(-1)).toBe('add table ip6 novanet\ndelete table ip6 novanet\n');
  });
});
