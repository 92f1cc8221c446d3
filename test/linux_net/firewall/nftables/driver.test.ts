import { describe, expect, it } from 'vitest';
import { createFirewall } from '../../../../src/linux_net/firewall/index.js';
import { NftablesDriver } from '../../../../src/linux_net/firewall/nftables/driver.js';
import { FloatingElements, MAPS, type Elements } from '../../../../src/linux_net/firewall/nftables/elements.js';
import { parseListing } from '../../../../src/linux_net/firewall/nftables/parse.js';
import { ruleTag, type NftRuleset } from '../../../../src/linux_net/firewall/nftables/plan.js';
import { renderChains } from '../../../../src/linux_net/firewall/nftables/render.js';
import type { FirewallState, FloatingRule } from '../../../../src/linux_net/firewall/state.js';
import type { CommandSpec } from '../../../../src/linux_net/command.js';
import { firewallState } from '../../../support/firewall.js';
import { RecordingExecutor, notInstalled } from '../../../support/recordingExecutor.js';

const FLOATING = [
  { address: '192.0.2.50', fixed: '10.0.0.3', interface: 'eth0' },
  { address: '192.0.2.51', fixed: '10.0.0.4', interface: 'eth2' },
];

/** The transaction that adds FLOATING[1] to a table holding FLOATING[0]. */
const SECOND_ADDED = [
  'add element ip novanet floating_dnat { 192.0.2.51 : 10.0.0.4 }',
  'add element ip novanet floating_snat { 10.0.0.4 . "eth2" : 192.0.2.51 }',
  'add element ip novanet floating_hairpin { 10.0.0.4 : 192.0.2.51 }',
  '',
].join('\n');

const LIST = ['nft', '-j', 'list', 'table', 'ip', 'novanet'];

/** The table the driver wants for `state`: its chains rendered, its floating IPs as the maps' elements. */
function wanted(state: FirewallState): NftRuleset {
  const elements = new FloatingElements();
  elements.update(state.floating);
  return { chains: renderChains(state), elements: elements.elements };
}
const noTable = { code: 1, stderr: 'Error: No such file or directory\nlist table ip novanet\n' };

/** What `nft -j list table ip novanet` prints for a table holding `ruleset` (as the kernel would). */
function listing(ruleset: NftRuleset, edit: (objects: object[]) => object[] = (objects) => objects): string {
  const objects: object[] = [{ metainfo: { version: '1.0.6' } }, { table: { family: 'ip', name: 'novanet', handle: 1 } }];
  for (const spec of MAPS) {
    const elem = [...ruleset.elements[spec.name]].map(([key, value]) => [key.includes(' . ') ? { concat: key.split(' . ') } : key, value]);
    objects.push({ map: { family: 'ip', name: spec.name, table: 'novanet', type: spec.key.length === 1 ? spec.key[0] : spec.key, map: 'ipv4_addr', ...(elem.length > 0 ? { elem } : {}) } });
  }
  for (const chain of ruleset.chains) {
    objects.push({ chain: { family: 'ip', table: 'novanet', name: chain.name, type: chain.type, hook: chain.hook, prio: chain.priority, policy: 'accept' } });
  }
  for (const chain of ruleset.chains) {
    for (const rule of chain.rules) objects.push({ rule: { family: 'ip', table: 'novanet', chain: chain.name, comment: ruleTag(rule), expr: [] } });
  }
  return JSON.stringify({ nftables: edit(objects) });
}

/** The session spec of nft -i, as the driver sends it. */
const NFT_I = ['env', 'HOME=/nonexistent', 'nft', '-i'];
const NFT_SESSION = { argv: NFT_I, session: { probe: 'describe ip saddr', failsOnStderr: true, oneShot: ['nft', '-f', '-'] } };
/** A transaction: an `nft -f -` script, or an input to the session (not the empty one that opens it). */
const isScript = (spec: CommandSpec) => ['nft -f -', NFT_I.join(' ')].includes(spec.argv.join(' ')) && spec.input !== '';
/** Each transaction's commands one per line: the session's input has them on one line. */
const scripts = (executor: RecordingExecutor) => executor.commands.filter(isScript).map((spec) => (spec.session ? spec.input!.replaceAll('; ', '\n') : spec.input));

describe('renderChains and FloatingElements', () => {
  it("renders nova's rules into base chains, floating IPs into maps only", () => {
    const ruleset = wanted(firewallState({ dmzCidrs: ['10.128.0.0/24'], floating: FLOATING }));
    expect(Object.fromEntries(ruleset.chains.map((chain) => [chain.name, chain.rules]))).toEqual({
      prerouting: ['ip daddr 169.254.169.254 tcp dport 80 dnat to 10.0.0.1:8775', 'dnat to ip daddr map @floating_dnat'],
      output: ['dnat to ip daddr map @floating_dnat'],
      postrouting: [
        'ip saddr 10.0.0.0/24 ip daddr 10.0.0.1 accept',
        'ip saddr 10.0.0.0/24 ip daddr 10.128.0.0/24 accept',
        'ip saddr 10.0.0.0/24 ip daddr 10.0.0.0/24 ct status ! dnat accept',
        'ct status dnat snat to ip saddr map @floating_hairpin',
        'snat to ip saddr . oifname map @floating_snat',
        'ip saddr 10.0.0.0/24 ip daddr 10.0.0.0/24 ct status dnat snat to 10.0.0.1',
        'ip saddr 10.0.0.0/24 oifname "eth0" snat to 192.0.2.10',
      ],
      forward: ['iifname "br100" accept', 'oifname "br100" accept'],
      input: ['iifname "br100" udp dport 67 accept', 'iifname "br100" udp dport 53 accept', 'iifname "br100" tcp dport 53 accept'],
    });
    expect(ruleset.chains.map((chain) => `${chain.type} ${chain.hook} ${chain.priority}`)).toEqual([
      'nat prerouting -100', 'nat output -100', 'nat postrouting 100', 'filter forward 0', 'filter input 0',
    ]);
    expect(ruleset.elements).toEqual({
      floating_dnat: new Map([['192.0.2.50', '10.0.0.3'], ['192.0.2.51', '10.0.0.4']]),
      floating_snat: new Map([['10.0.0.3 . eth0', '192.0.2.50'], ['10.0.0.4 . eth2', '192.0.2.51']]),
      floating_hairpin: new Map([['10.0.0.3', '192.0.2.50'], ['10.0.0.4', '192.0.2.51']]),
    });
    // The floating IPs are data: the chains are the same with none.
    expect(wanted(firewallState({ dmzCidrs: ['10.128.0.0/24'] })).chains).toEqual(ruleset.chains);
  });

  it('redirects metadata to a local port, adds the VPN DNAT and forward rule, and opens no DHCP without dnsmasq', () => {
    const ruleset = wanted(firewallState({
      metadataHost: '127.0.0.1',
      networks: [{ cidr: '10.0.1.0/24', bridge: 'br101', gateway: '10.0.1.1', dhcp: false, vpn: { publicAddress: '192.0.2.20', publicPort: 1000, privateAddress: '10.0.1.2' } }],
    }));
    const chains = Object.fromEntries(ruleset.chains.map((chain) => [chain.name, chain.rules]));
    expect(chains.prerouting).toEqual([
      'ip daddr 169.254.169.254 tcp dport 80 redirect to :8775',
      'ip daddr 192.0.2.20 udp dport 1000 dnat to 10.0.1.2:1194',
      'dnat to ip daddr map @floating_dnat',
    ]);
    expect(chains.output).toEqual(['ip daddr 192.0.2.20 udp dport 1000 dnat to 10.0.1.2:1194', 'dnat to ip daddr map @floating_dnat']);
    expect(chains.forward).toContain('ip daddr 10.0.1.2 udp dport 1194 accept');
    expect(chains.input).toEqual([]);
  });

  it('gives a fixed address with two floating IPs on one interface the first as its source', () => {
    const ruleset = wanted(firewallState({ floating: [FLOATING[0]!, { address: '192.0.2.52', fixed: '10.0.0.3', interface: 'eth0' }] }));
    expect(ruleset.elements.floating_dnat.size).toBe(2);
    expect([...ruleset.elements.floating_snat]).toEqual([['10.0.0.3 . eth0', '192.0.2.50']]);
    expect([...ruleset.elements.floating_hairpin]).toEqual([['10.0.0.3', '192.0.2.50']]);
  });
});

describe('FloatingElements', () => {
  /** The maps as the first-wins rule defines them, computed plainly from the whole list. */
  function expected(floating: FloatingRule[]): Record<string, [string, string][]> {
    const maps = { floating_dnat: new Map<string, string>(), floating_snat: new Map<string, string>(), floating_hairpin: new Map<string, string>() };
    for (const rule of floating) {
      if (!maps.floating_dnat.has(rule.address)) maps.floating_dnat.set(rule.address, rule.fixed);
      if (!maps.floating_snat.has(`${rule.fixed} . ${rule.interface}`)) maps.floating_snat.set(`${rule.fixed} . ${rule.interface}`, rule.address);
      if (!maps.floating_hairpin.has(rule.fixed)) maps.floating_hairpin.set(rule.fixed, rule.address);
    }
    return Object.fromEntries(Object.entries(maps).map(([name, map]) => [name, [...map].sort()]));
  }

  const sorted = (elements: Elements) => Object.fromEntries(Object.entries(elements).map(([name, map]) => [name, [...map].sort()]));

  it('kept up to date through 300 random changes, equals the maps made anew, and names every key that changed', () => {
    // A small world, so floating IPs often share a fixed address and an interface.
    // mulberry32: a small PRNG whose low bits are as random as its high ones.
    let seed = 7;
    const random = (n: number) => {
      seed = (seed + 0x6d2b79f5) >>> 0;
      let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
    };
    const elements = new FloatingElements();
    let floating: FloatingRule[] = [];
    for (let step = 0; step < 300; step++) {
      const next = floating.filter(() => random(5) !== 0);
      for (let added = random(4); added > 0; added--) {
        const address = `192.0.2.${random(40)}`;
        if (next.some((rule) => rule.address === address)) continue;
        next.splice(random(next.length + 1), 0, { address, fixed: `10.0.0.${random(6)}`, interface: random(2) === 0 ? 'eth0' : 'eth1' });
      }
      const before = sorted(elements.elements);
      const changes = elements.update(next);
      expect(sorted(elements.elements)).toEqual(expected(next));
      // The changes turn the maps before into the maps after, key by key.
      for (const name of MAPS.map((spec) => spec.name)) {
        const was = new Map(before[name]);
        for (const [key, value] of changes[name]) expect(value).toBe(was.get(key));
        const now = elements.elements[name];
        for (const key of new Set([...was.keys(), ...now.keys()])) {
          if (was.get(key) !== now.get(key)) expect(changes[name].has(key)).toBe(true);
        }
      }
      floating = next;
    }
  });

  it('an unchanged list changes nothing', () => {
    const elements = new FloatingElements();
    elements.update(FLOATING);
    const changes = elements.update([...FLOATING]);
    expect([...changes.floating_dnat, ...changes.floating_snat, ...changes.floating_hairpin]).toEqual([]);
  });
});

describe('parseListing', () => {
  it("reads the kernel's JSON: chain definitions, rule comments in order, map types and elements (concatenated keys too)", () => {
    const json = '{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "ip", "name": "novanet", "handle": 2}}, '
      + '{"map": {"family": "ip", "name": "floating_snat", "table": "novanet", "type": ["ipv4_addr", "ifname"], "handle": 7, "map": "ipv4_addr", "elem": [[{"concat": ["10.0.0.2", "eth0"]}, "192.0.2.65"]]}}, '
      + '{"map": {"family": "ip", "name": "floating_dnat", "table": "novanet", "type": "ipv4_addr", "handle": 5, "map": "ipv4_addr"}}, '
      + '{"chain": {"family": "ip", "table": "novanet", "name": "prerouting", "handle": 1, "type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"}}, '
      + '{"rule": {"family": "ip", "table": "novanet", "chain": "prerouting", "handle": 8, "comment": "a1", "expr": []}}, '
      + '{"rule": {"family": "ip", "table": "novanet", "chain": "prerouting", "handle": 9, "expr": []}}]}';
    const state = parseListing(json);
    expect(state.chains).toEqual(new Map([['prerouting', { head: 'type nat hook prerouting priority -100; policy accept;', tags: ['a1', 'untagged'] }]]));
    expect(state.maps).toEqual(new Map([
      ['floating_snat', { type: 'ipv4_addr . ifname : ipv4_addr', elements: new Map([['10.0.0.2 . eth0', '192.0.2.65']]) }],
      ['floating_dnat', { type: 'ipv4_addr : ipv4_addr', elements: new Map() }],
    ]));
  });
});

describe('NftablesDriver', () => {
  it('creates the whole table in one transaction when there is none', async () => {
    const executor = new RecordingExecutor().on(LIST, noTable);
    const driver = new NftablesDriver(executor);
    expect(await driver.sync(firewallState({ floating: [FLOATING[0]!] }))).toEqual(['ip novanet/table']);
    const [script] = scripts(executor);
    expect(script).toMatch(/^table ip novanet \{\n\tmap floating_dnat \{\n\t\ttype ipv4_addr : ipv4_addr\n\t\}\n/);
    expect(script).toContain('\tmap floating_snat {\n\t\ttype ipv4_addr . ifname : ipv4_addr\n\t}');
    expect(script).toContain('\tchain postrouting {\n\t\ttype nat hook postrouting priority 100; policy accept;\n');
    expect(script).toContain(`\t\tip saddr 10.0.0.0/24 oifname "eth0" snat to 192.0.2.10 comment "${ruleTag('ip saddr 10.0.0.0/24 oifname "eth0" snat to 192.0.2.10')}"\n`);
    expect(script).toContain('add element ip novanet floating_dnat { 192.0.2.50 : 10.0.0.3 }\n');
    expect(script).toContain('add element ip novanet floating_snat { 10.0.0.3 . "eth0" : 192.0.2.50 }\n');
    expect(script).not.toContain('delete table');
    // The session is opened after: the first change after a start does not wait for it.
    expect(executor.argvs()).toEqual([LIST, ['nft', '-f', '-'], NFT_I]);
    expect(executor.commands[2]).toEqual({ ...NFT_SESSION, input: '' });
  });

  it('changes nothing when the installed table is the desired one', async () => {
    const state = firewallState({ floating: FLOATING });
    const executor = new RecordingExecutor().on(LIST, { stdout: listing(wanted(state)) });
    expect(await new NftablesDriver(executor).sync(state)).toEqual([]);
    expect(executor.commands).toEqual([{ argv: LIST, accept: [0, 1] }, { ...NFT_SESSION, input: '' }]);
  });

  it('applies a floating IP associated after the sync as one element per map, reading nothing', async () => {
    const executor = new RecordingExecutor().on(LIST, { stdout: listing(wanted(firewallState({ floating: [FLOATING[0]!] }))) });
    const driver = new NftablesDriver(executor);
    await driver.sync(firewallState({ floating: [FLOATING[0]!] }));
    executor.clear();
    expect(await driver.apply(firewallState({ floating: FLOATING }))).toEqual(['ip novanet/floating_dnat', 'ip novanet/floating_snat', 'ip novanet/floating_hairpin']);
    expect(executor.commands).toEqual([{ ...NFT_SESSION, input: `${SECOND_ADDED.trimEnd().replaceAll('\n', '; ')}\n` }]);
  });

  it('moves a floating IP to another fixed address by deleting its elements, then adding them, in one transaction', async () => {
    const executor = new RecordingExecutor().on(LIST, noTable);
    const driver = new NftablesDriver(executor);
    await driver.sync(firewallState({ floating: [FLOATING[0]!] }));
    executor.clear();
    await driver.apply(firewallState({ floating: [{ ...FLOATING[0]!, fixed: '10.0.0.9' }] }));
    expect(scripts(executor)).toEqual([[
      'delete element ip novanet floating_dnat { 192.0.2.50 }',
      'add element ip novanet floating_dnat { 192.0.2.50 : 10.0.0.9 }',
      'delete element ip novanet floating_snat { 10.0.0.3 . "eth0" }',
      'add element ip novanet floating_snat { 10.0.0.9 . "eth0" : 192.0.2.50 }',
      'delete element ip novanet floating_hairpin { 10.0.0.3 }',
      'add element ip novanet floating_hairpin { 10.0.0.9 : 192.0.2.50 }',
      '',
    ].join('\n')]);
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
    expect(scripts(executor)).toEqual([[
      'delete element ip novanet floating_dnat { 192.0.2.50 }',
      'delete element ip novanet floating_snat { 10.0.0.3 . "eth0" }',
      'add element ip novanet floating_snat { 10.0.0.3 . "eth0" : 192.0.2.52 }',
      'delete element ip novanet floating_hairpin { 10.0.0.3 }',
      'add element ip novanet floating_hairpin { 10.0.0.3 : 192.0.2.52 }',
      '',
    ].join('\n')]);
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
    expect(present.argvs()).toEqual([['nft', 'list', 'tables', 'ip'], ['nft', 'delete', 'table', 'ip', 'novanet']]);
    const absent = new RecordingExecutor().on(['nft', 'list', 'tables', 'ip'], { stdout: 'table ip filter\n' });
    expect(await new NftablesDriver(absent).remove()).toEqual([]);
    expect(absent.argvs()).toEqual([['nft', 'list', 'tables', 'ip']]);
  });
});

describe('createFirewall', () => {
  const IPTABLES_SAVE = [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    ':nova-network-PREROUTING - [0:0]',
    ':nova-float-dnat-c00002 - [0:0]',
    ':FOREIGN - [0:0]',
    '-A PREROUTING -j nova-network-PREROUTING',
    '-A POSTROUTING -j FOREIGN',
    '-A nova-network-PREROUTING -d 192.0.2.0/24 -j nova-float-dnat-c00002',
    '-A nova-float-dnat-c00002 -d 192.0.2.50/32 -j DNAT --to-destination 10.0.0.3',
    'COMMIT',
    '',
  ].join('\n');

  it("nftables: sync installs the table, then removes nova's iptables chains and jumps, keeping foreign ones", async () => {
    const executor = new RecordingExecutor().on(LIST, noTable).on(['iptables-save'], { stdout: IPTABLES_SAVE });
    const changes = await createFirewall('nftables', executor).sync(firewallState());
    expect(changes).toEqual(['ip novanet/table', 'iptables nat/nova-network-PREROUTING removed', 'iptables nat/nova-float-dnat-c00002 removed']);
    expect(executor.argvs().map((argv) => argv[0])).toEqual(['nft', 'nft', 'env', 'iptables-save', 'iptables-restore']);
    expect(executor.commands[4]!.input).toBe([
      '*nat',
      '-D PREROUTING -j nova-network-PREROUTING',
      '-F nova-network-PREROUTING',
      '-F nova-float-dnat-c00002',
      '-X nova-network-PREROUTING',
      '-X nova-float-dnat-c00002',
      'COMMIT',
      '',
    ].join('\n'));
  });

  it('nftables: a host without iptables has nothing of it to remove', async () => {
    const executor = new RecordingExecutor().on(LIST, noTable).on(['iptables-save'], notInstalled);
    expect(await createFirewall('nftables', executor).sync(firewallState())).toEqual(['ip novanet/table']);
  });

  it("iptables: sync writes nova's chains, then deletes novanet's nftables table; apply touches nftables not at all", async () => {
    const executor = new RecordingExecutor().on(['nft', 'list', 'tables', 'ip'], { stdout: 'table ip novanet\n' });
    const firewall = createFirewall('iptables', executor);
    const changes = await firewall.sync(firewallState());
    expect(changes.at(-1)).toBe('nftables table ip novanet removed');
    expect(changes).toContain('nat/nova-network-snat');
    expect(executor.argvs().map((argv) => argv.join(' '))).toEqual([
      'iptables-save', 'iptables-restore -w 10 --noflush -v', 'iptables-restore -w 10 --noflush -v', 'nft list tables ip', 'nft delete table ip novanet',
    ]);
    executor.clear();
    await firewall.apply(firewallState({ floating: FLOATING }));
    expect(executor.argvs().map((argv) => argv[0])).toEqual(['iptables-restore']);
  });

  it('iptables: a host without nft has nothing of it to remove', async () => {
    const executor = new RecordingExecutor().on(['nft'], notInstalled);
    await expect(createFirewall('iptables', executor).sync(firewallState())).resolves.toContain('nat/nova-network-snat');
  });
});
