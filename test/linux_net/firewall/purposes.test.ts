/**
 * The two backends held together. From one desired state, the purpose of every rule
 * (and map element) each backend renders is derived, by finding which of the
 * state's purposes, spelled in the backend's dialect, it is; then grouped by whom it
 * is for: the host, a network, a floating IP, a fixed address. Both backends must
 * render the same purposes for each, apart from the gaps nftables declares (NO_EQUAL),
 * and nothing without a purpose: a rule added to one backend and forgotten in the
 * other fails here.
 */
import { describe, expect, it } from 'vitest';
import { FLOATING_CHAIN_PREFIX, TABLES } from '../../../src/linux_net/firewall/iptables/plan.js';
import { FLOATING_SPELLING, SPELLING as IPTABLES, renderRules } from '../../../src/linux_net/firewall/iptables/render.js';
import { FLOATING_MAPS, FloatingElements } from '../../../src/linux_net/firewall/nftables/elements.js';
import {
  MAP_LOOKUPS,
  SPELLING as NFTABLES,
  NO_EQUAL,
  renderChains,
  type Section,
} from '../../../src/linux_net/firewall/nftables/render.js';
import { FLOATING_PURPOSES, type FloatingPurpose, isNoEqual, spellRules } from '../../../src/linux_net/firewall/rules.js';
import type { FirewallState, FloatingRule, RuledNetwork } from '../../../src/linux_net/firewall/state.js';
import { firewallState } from '../../support/firewall.js';

/** Several networks with and without DHCP, VPN and isolation, two dmz ranges, floating IPs sharing a fixed address. */
const RICH = firewallState({
  dmzCidrs: ['10.128.0.0/24', '172.16.0.0/12'],
  networks: [
    { cidr: '10.0.0.0/24', bridge: 'br100', gateway: '10.0.0.1', dhcp: true },
    {
      cidr: '10.0.1.0/24',
      bridge: 'br101',
      gateway: '10.0.1.1',
      dhcp: false,
      isolated: true,
      vpn: { publicAddress: '192.0.2.20', publicPort: 1000, privateAddress: '10.0.1.2' },
    },
    {
      cidr: '10.0.2.0/24',
      bridge: 'br102',
      gateway: '10.0.2.1',
      dhcp: true,
      isolated: true,
      vpn: { publicAddress: '192.0.2.20', publicPort: 1001, privateAddress: '10.0.2.2' },
    },
    { cidr: '10.0.3.0/24', bridge: 'br103', gateway: '10.0.3.1', dhcp: false },
  ],
  floating: [
    { address: '192.0.2.50', fixed: '10.0.0.3', interface: 'eth0' },
    // The same fixed address on the same interface: the first one wins (both backends).
    { address: '192.0.2.52', fixed: '10.0.0.3', interface: 'eth0' },
    // ...and on another interface.
    { address: '198.51.100.9', fixed: '10.0.0.3', interface: 'eth2' },
    { address: '192.0.2.51', fixed: '10.0.1.4', interface: 'eth0' },
  ],
});

const STATES: [string, FirewallState][] = [
  ['a rich state', RICH],
  ['the same with a local metadata service', { ...RICH, metadataHost: '127.0.0.1' }],
  ['one FlatDHCP network', firewallState()],
  ['no network, no floating IP', firewallState({ networks: [] })],
];

/** Whom a rule of the host or of a network is for. */
function ownerOf(network: RuledNetwork | undefined): string {
  return network ? `network ${network.cidr}` : 'host';
}

/**
 * Whom a floating rule is for: the address it matches on. A fixed address with several
 * floating IPs has one element per map key under nftables and a rule per floating IP
 * under iptables (the first matches); by the address matched, their purposes agree.
 */
const FLOATING_OWNER: Record<FloatingPurpose, (rule: FloatingRule) => string> = {
  'floating-dnat': (rule) => `floating ${rule.address}`,
  'floating-hairpin': (rule) => `fixed ${rule.fixed}`,
  'floating-self': (rule) => `fixed ${rule.fixed}`,
  'floating-snat': (rule) => `fixed ${rule.fixed} via ${rule.interface}`,
};

/** Each owner's purposes, sorted: what a backend renders, or what it is asked for. */
type Owners = Record<string, string[]>;

/**
 * Collects what the state asks for (`expect`, by the text the backend would render for
 * it), then attributes each thing the backend rendered (`found`) to one of those; what
 * matches none goes to 'no purpose'.
 */
class Derivation {
  private readonly expected = new Map<string, { owner: string; purpose: string }[]>();
  private readonly asked: Owners = {};
  private readonly rendered: Owners = {};

  expect(text: string, owner: string, purpose: string): void {
    this.expected.set(text, [...(this.expected.get(text) ?? []), { owner, purpose }]);
    add(this.asked, owner, purpose);
  }

  found(text: string): void {
    // Each rendered rule accounts for one of the purposes spelled that way.
    const match = this.expected.get(text)?.shift();
    if (match) add(this.rendered, match.owner, match.purpose);
    else add(this.rendered, 'no purpose', text);
  }

  /** What was rendered, and what was asked for. */
  result(): { rendered: Owners; asked: Owners } {
    return { rendered: sorted(this.rendered), asked: sorted(this.asked) };
  }
}

function add(owners: Owners, owner: string, purpose: string): void {
  const list = (owners[owner] ??= []);
  if (!list.includes(purpose)) list.push(purpose);
}

function sorted(owners: Owners): Owners {
  return Object.fromEntries(
    Object.keys(owners)
      .sort()
      .map((owner) => [owner, [...owners[owner]!].sort()]),
  );
}

/** Every rule iptables renders for `state`, by its table, chain and text. */
function iptablesPurposes(state: FirewallState): { rendered: Owners; asked: Owners } {
  const derivation = new Derivation();
  spellRules(state, IPTABLES, ({ table, chain, rule }, purpose, network) =>
    derivation.expect(`${table}/${chain} ${rule}`, ownerOf(network), purpose),
  );
  for (const floating of state.floating) {
    for (const purpose of FLOATING_PURPOSES)
      derivation.expect(`nat/floating ${FLOATING_SPELLING[purpose](floating)}`, FLOATING_OWNER[purpose](floating), purpose);
  }
  const ruleset = renderRules(state);
  for (const table of TABLES) {
    for (const [chain, rules] of Object.entries(ruleset[table])) {
      for (const rule of rules) {
        // Floating rules live in chains of one /24 each; the jumps to those chains only lay them out.
        const jump = / -j (nova-float-\S+)$/.exec(rule)?.[1];
        if (jump !== undefined && ruleset[table][jump]) continue;
        derivation.found(chain.startsWith(FLOATING_CHAIN_PREFIX) ? `${table}/floating ${rule}` : `${table}/${chain} ${rule}`);
      }
    }
  }
  return derivation.result();
}

/** The base chain each part of nftables' rules goes in. */
const CHAIN: Record<Section, string> = {
  prerouting: 'prerouting',
  output: 'output',
  exempt: 'postrouting',
  snat: 'postrouting',
  forward: 'forward',
  input: 'input',
  isolate: 'isolate',
};

/** Every rule nftables renders for `state`, by its chain and text, and every element of its maps. */
function nftablesPurposes(state: FirewallState): { rendered: Owners; asked: Owners } {
  const derivation = new Derivation();
  spellRules(state, NFTABLES, ({ section, rule }, purpose, network) =>
    derivation.expect(`${CHAIN[section]} ${rule}`, ownerOf(network), purpose),
  );
  for (const purpose of FLOATING_PURPOSES) {
    const map = FLOATING_MAPS[purpose];
    if (isNoEqual(map)) continue;
    for (const floating of state.floating)
      derivation.expect(`${map.name} ${map.keyOf(floating)} : ${map.valueFor(floating)}`, FLOATING_OWNER[purpose](floating), purpose);
  }
  const lookups: string[] = Object.values(MAP_LOOKUPS);
  for (const chain of renderChains(state)) {
    // The maps' lookups only carry the floating IPs' elements.
    for (const rule of chain.rules) if (!lookups.includes(rule)) derivation.found(`${chain.name} ${rule}`);
  }
  const elements = new FloatingElements();
  elements.update(state.floating);
  for (const [map, entries] of Object.entries(elements.elements)) {
    for (const [key, value] of entries) derivation.found(`${map} ${key} : ${value}`);
  }
  return derivation.result();
}

/** `owners` without the purposes nftables has no equal for. */
function withoutGaps(owners: Owners): Owners {
  const gaps: string[] = Object.keys(NO_EQUAL);
  const kept = Object.entries(owners).map(([owner, purposes]): [string, string[]] => [
    owner,
    purposes.filter((purpose) => !gaps.includes(purpose)),
  ]);
  return Object.fromEntries(kept.filter(([, purposes]) => purposes.length > 0));
}

describe("the purposes of both backends' rules", () => {
  it.each(STATES)('are the same per network and per floating IP: %s', (_, state) => {
    const iptables = iptablesPurposes(state);
    const nftables = nftablesPurposes(state);
    expect(nftables.rendered).toEqual(withoutGaps(iptables.rendered));
    // Each renders what the state asks for, and nothing else.
    expect(iptables.rendered).toEqual(iptables.asked);
    expect(nftables.rendered).toEqual(nftables.asked);
  });

  it('the rich state has every purpose, and both backends render it per network', () => {
    const { rendered } = iptablesPurposes(RICH);
    expect(new Set(Object.values(rendered).flat())).toEqual(new Set([...Object.keys(IPTABLES), ...FLOATING_PURPOSES]));
    expect(rendered['network 10.0.2.0/24']).toEqual([
      'dhcp-checksum',
      'dhcp-input',
      'dns-input-tcp',
      'dns-input-udp',
      'forward-in',
      'forward-out',
      'hairpin-snat',
      'isolate-entry',
      'isolate-exit',
      'snat',
      'snat-exempt-dmz',
      'snat-exempt-internal',
      'snat-exempt-metadata',
      'vpn-dnat',
      'vpn-dnat-local',
      'vpn-forward',
    ]);
    expect(rendered['fixed 10.0.0.3 via eth2']).toEqual(['floating-snat']);
    expect(nftablesPurposes(RICH).rendered['network 10.0.2.0/24']).not.toContain('dhcp-checksum');
  });

  it("nftables lacks exactly the declared purposes: no CHECKSUM target, and the hairpin map covers nova's -s FIX -d FIX", () => {
    expect(Object.keys(NO_EQUAL)).toEqual(['dhcp-checksum', 'floating-self']);
    const gaps = [...Object.entries(NFTABLES), ...Object.entries(FLOATING_MAPS)]
      .filter(([, spelling]) => isNoEqual(spelling))
      .map(([purpose]) => purpose);
    expect(gaps).toEqual(Object.keys(NO_EQUAL));
  });
});
