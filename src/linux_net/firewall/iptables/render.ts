import { perRule } from '../applied.js';
import { type FloatingSpelling, type Purposes, type Spelling, type SpellingV6, spellRules, spellRulesV6 } from '../rules.js';
import type { FirewallState, FloatingRule } from '../state.js';
import { emptyRuleset, FLOATING_CHAIN_PREFIX, IPV6, type Ruleset, type Table } from './plan.js';

/** Floating rules are kept in one chain per /24 (of the floating or of the fixed address). */
const BUCKET_PREFIX = 24;

/** A rule and the chain of novanet's it goes in. */
export interface PlacedRule {
  table: Table;
  chain: string;
  rule: string;
}

const inNat = (chain: string, rule: string): PlacedRule => ({ table: 'nat', chain, rule });
const inFilter = (chain: string, rule: string): PlacedRule => ({ table: 'filter', chain, rule });

function vpnDnat({ publicAddress, publicPort, privateAddress }: Purposes['vpn-dnat']): string {
  return `-d ${publicAddress}/32 -p udp -m udp --dport ${publicPort} -j DNAT --to-destination ${privateAddress}:1194`;
}

/**
 * nova's rules in nova's chains, in iptables-save's own spelling (so installed and
 * desired compare as text).
 */
export const SPELLING: Spelling<PlacedRule> = {
  'metadata-dnat': ({ host, port }) =>
    inNat(
      'nova-network-PREROUTING',
      host === '127.0.0.1'
        ? `-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports ${port}`
        : `-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination ${host}:${port}`,
    ),
  'snat-exempt-metadata': ({ cidr, host }) => inNat('nova-network-POSTROUTING', `-s ${cidr} -d ${host}/32 -j ACCEPT`),
  'snat-exempt-dmz': ({ cidr, dmz }) => inNat('nova-network-POSTROUTING', `-s ${cidr} -d ${dmz} -j ACCEPT`),
  'snat-exempt-internal': ({ cidr }) => inNat('nova-network-POSTROUTING', `-s ${cidr} -d ${cidr} -m conntrack ! --ctstate DNAT -j ACCEPT`),
  'hairpin-snat': ({ cidr, gateway }) =>
    inNat('nova-network-snat', `-s ${cidr} -d ${cidr} -m conntrack --ctstate DNAT -j SNAT --to-source ${gateway}`),
  snat: ({ cidr, publicInterface, source }) => inNat('nova-network-snat', `-s ${cidr} -o ${publicInterface} -j SNAT --to-source ${source}`),
  'isolate-exit': ({ bridge }) => inFilter('nova-network-FORWARD', `-i ${bridge} ! -o ${bridge} -j nova-network-isolate`),
  'isolate-dnat-pass': () => inFilter('nova-network-isolate', '-m conntrack --ctstate DNAT -j RETURN'),
  'isolate-entry': ({ bridge }) => inFilter('nova-network-isolate', `-o ${bridge} -j DROP`),
  'forward-in': ({ bridge }) => inFilter('nova-network-FORWARD', `-i ${bridge} -j ACCEPT`),
  'forward-out': ({ bridge }) => inFilter('nova-network-FORWARD', `-o ${bridge} -j ACCEPT`),
  'dhcp-input': ({ bridge }) => inFilter('nova-network-INPUT', `-i ${bridge} -p udp -m udp --dport 67 -j ACCEPT`),
  'dns-input-udp': ({ bridge }) => inFilter('nova-network-INPUT', `-i ${bridge} -p udp -m udp --dport 53 -j ACCEPT`),
  'dns-input-tcp': ({ bridge }) => inFilter('nova-network-INPUT', `-i ${bridge} -p tcp -m tcp --dport 53 -j ACCEPT`),
  'dhcp-checksum': ({ bridge }) => ({
    table: 'mangle',
    chain: 'nova-network-POSTROUTING',
    rule: `-o ${bridge} -p udp -m udp --dport 68 -j CHECKSUM --checksum-fill`,
  }),
  'vpn-dnat': (vpn) => inNat('nova-network-PREROUTING', vpnDnat(vpn)),
  'vpn-dnat-local': (vpn) => inNat('nova-network-OUTPUT', vpnDnat(vpn)),
  'vpn-forward': ({ privateAddress }) => inFilter('nova-network-FORWARD', `-d ${privateAddress}/32 -p udp -m udp --dport 1194 -j ACCEPT`),
};

/** nova's floating rules: the DNAT goes in its floating /24's chain, the SNATs in their fixed /24's. */
export const FLOATING_SPELLING: FloatingSpelling<(floating: FloatingRule) => string> = {
  'floating-dnat': (floating) => `-d ${floating.address}/32 -j DNAT --to-destination ${floating.fixed}`,
  'floating-hairpin': (floating) => `-s ${floating.fixed}/32 -m conntrack --ctstate DNAT -j SNAT --to-source ${floating.address}`,
  'floating-self': (floating) => `-s ${floating.fixed}/32 -d ${floating.fixed}/32 -j SNAT --to-source ${floating.address}`,
  'floating-snat': (floating) => `-s ${floating.fixed}/32 -o ${floating.interface} -j SNAT --to-source ${floating.address}`,
};

/**
 * nova's chains and rules (SPELLING, in firewall/rules.ts's order), and 1:1 NAT of
 * floating IPs in chains of one /24 each.
 */
export function renderRules(state: FirewallState): Ruleset {
  const ruleset = emptyRuleset();
  spellRules(state, SPELLING, ({ table, chain, rule }) => ruleset[table][chain]!.push(rule));
  addFloatingChains(ruleset, state.floating);
  return ruleset;
}

/** IPv6's own purposes in ip6tables-save's spelling. */
export const SPELLING_V6: SpellingV6<PlacedRule> = {
  'dhcpv6-input': ({ bridge }) => inFilter('nova-network-INPUT', `-i ${bridge} -p udp -m udp --dport 547 -j ACCEPT`),
  'icmpv6-input': ({ bridge }) => inFilter('nova-network-INPUT', `-i ${bridge} -p ipv6-icmp -j ACCEPT`),
};

/** The IPv6 filter rules for ip6tables (firewall/rules.ts's spellRulesV6). */
export function renderRulesV6(state: FirewallState): Ruleset {
  const ruleset = emptyRuleset(IPV6);
  spellRulesV6(state, SPELLING, SPELLING_V6, ({ chain, rule }) => ruleset.filter[chain]!.push(rule));
  return ruleset;
}

/** A floating IP's rules and the chains they go in. */
interface RenderedFloating {
  dnat: string;
  snat: string[];
  dnatChain: Bucket;
  snatChain: Bucket;
}

interface Bucket {
  name: string;
  /** The rule that sends the bucket's /24 to it. */
  jump: string;
}

/** A floating IP's rules, rendered once per rule object. */
const renderFloating = perRule(
  (floating): RenderedFloating => ({
    dnat: FLOATING_SPELLING['floating-dnat'](floating),
    snat: [
      FLOATING_SPELLING['floating-hairpin'](floating),
      FLOATING_SPELLING['floating-self'](floating),
      FLOATING_SPELLING['floating-snat'](floating),
    ],
    dnatChain: bucket(floating.address, 'dnat', '-d'),
    snatChain: bucket(floating.fixed, 'snat', '-s'),
  }),
);

/** The chain of the /24 that `address` is in (named in hex, so names sort by address). */
function bucket(address: string, kind: 'dnat' | 'snat', match: '-d' | '-s'): Bucket {
  const octets = address.split('.').slice(0, BUCKET_PREFIX / 8);
  const name = `${FLOATING_CHAIN_PREFIX}${kind}-${octets.map((octet) => Number(octet).toString(16).padStart(2, '0')).join('')}`;
  return { name, jump: `${match} ${octets.join('.')}.0/${BUCKET_PREFIX} -j ${name}` };
}

/**
 * nova's floating rules, spread over chains of one /24 each: iptables-nft inserts and
 * deletes by position at a cost that grows with the length of the chain, so thousands
 * of addresses in one chain made each change many times dearer. The
 * DNAT chain of a floating /24 is reached from PREROUTING and OUTPUT alike; the SNAT
 * chain of a fixed /24 from float-snat (nova's POSTROUTING ctstate-DNAT rule lives
 * there too: POSTROUTING's ACCEPTs still come first).
 */
function addFloatingChains(ruleset: Ruleset, floating: FloatingRule[]): void {
  const nat = ruleset.nat;
  const jumps = { dnat: new Map<string, string>(), snat: new Map<string, string>() };
  for (const entry of floating) {
    const text = renderFloating(entry);
    jumps.dnat.set(text.dnatChain.name, text.dnatChain.jump);
    jumps.snat.set(text.snatChain.name, text.snatChain.jump);
    (nat[text.dnatChain.name] ??= []).push(text.dnat);
    (nat[text.snatChain.name] ??= []).push(...text.snat);
  }
  for (const jump of sortedValues(jumps.dnat)) {
    nat['nova-network-PREROUTING']!.push(jump);
    nat['nova-network-OUTPUT']!.push(jump);
  }
  nat['nova-network-float-snat']!.push(...sortedValues(jumps.snat));
}

function sortedValues(map: Map<string, string>): string[] {
  return [...map.keys()].sort().map((key) => map.get(key)!);
}
