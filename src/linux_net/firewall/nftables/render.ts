import { type FloatingPurpose, type NoEqual, type Purpose, type Purposes, type Spelling, spellRules } from '../rules.js';
import type { FirewallState } from '../state.js';

/** A chain and the rules in it, in order: a base chain has its hook; a regular one is reached by jumps. */
export type NftChain = { name: string; rules: string[] } & (
  | {
      type: 'nat' | 'filter';
      hook: 'prerouting' | 'output' | 'postrouting' | 'forward' | 'input';
      priority: number;
    }
  | { type?: undefined }
);

const PRIORITY = { dstnat: -100, filter: 0, srcnat: 100 } as const;

/**
 * Where a rule goes: a base chain, or a part of postrouting: the SNAT exemptions come
 * before the floating maps' rules, the networks' SNATs after them.
 */
export type Section = 'prerouting' | 'output' | 'exempt' | 'snat' | 'forward' | 'input' | 'isolate';

/** A rule and where it goes. */
export interface PlacedRule {
  section: Section;
  rule: string;
}

/**
 * nova's rules that nftables has no rule of its own for, and why: the one list of
 * them, which the purposes test holds.
 */
export const NO_EQUAL = {
  'dhcp-checksum': {
    noEqual: 'nftables has no CHECKSUM target (only xtables has): DHCP replies go out with the checksum the host left them',
  },
  'floating-self': {
    noEqual: 'the hairpin map covers it: a VM reaches its own fixed address through the host only by DNAT',
  },
} as const satisfies Partial<Record<Purpose | FloatingPurpose, NoEqual>>;

function vpnDnat({ publicAddress, publicPort, privateAddress }: Purposes['vpn-dnat']): string {
  return `ip daddr ${publicAddress} udp dport ${publicPort} dnat to ${privateAddress}:1194`;
}

/** nova's rules in nft's syntax (firewall/rules.ts says what each is for). */
export const SPELLING: Spelling<PlacedRule, NoEqual> = {
  'metadata-dnat': ({ host, port }) =>
    at(
      'prerouting',
      host === '127.0.0.1'
        ? `ip daddr 169.254.169.254 tcp dport 80 redirect to :${port}`
        : `ip daddr 169.254.169.254 tcp dport 80 dnat to ${host}:${port}`,
    ),
  'snat-exempt-metadata': ({ cidr, host }) => at('exempt', `ip saddr ${cidr} ip daddr ${host} accept`),
  'snat-exempt-dmz': ({ cidr, dmz }) => at('exempt', `ip saddr ${cidr} ip daddr ${dmz} accept`),
  // `! dnat`: the bit is clear. (`!= dnat` would compare the whole status word.)
  'snat-exempt-internal': ({ cidr }) => at('exempt', `ip saddr ${cidr} ip daddr ${cidr} ct status ! dnat accept`),
  'hairpin-snat': ({ cidr, gateway }) => at('snat', `ip saddr ${cidr} ip daddr ${cidr} ct status dnat snat to ${gateway}`),
  snat: ({ cidr, publicInterface, source }) => at('snat', `ip saddr ${cidr} oifname ${quoted(publicInterface)} snat to ${source}`),
  'isolate-exit': ({ bridge }) => at('forward', `iifname ${quoted(bridge)} oifname != ${quoted(bridge)} jump isolate`),
  'isolate-dnat-pass': () => at('isolate', 'ct status dnat return'),
  'isolate-entry': ({ bridge }) => at('isolate', `oifname ${quoted(bridge)} drop`),
  'forward-in': ({ bridge }) => at('forward', `iifname ${quoted(bridge)} accept`),
  'forward-out': ({ bridge }) => at('forward', `oifname ${quoted(bridge)} accept`),
  'dhcp-input': ({ bridge }) => at('input', `iifname ${quoted(bridge)} udp dport 67 accept`),
  'dns-input-udp': ({ bridge }) => at('input', `iifname ${quoted(bridge)} udp dport 53 accept`),
  'dns-input-tcp': ({ bridge }) => at('input', `iifname ${quoted(bridge)} tcp dport 53 accept`),
  'dhcp-checksum': NO_EQUAL['dhcp-checksum'],
  'vpn-dnat': (vpn) => at('prerouting', vpnDnat(vpn)),
  'vpn-dnat-local': (vpn) => at('output', vpnDnat(vpn)),
  'vpn-forward': ({ privateAddress }) => at('forward', `ip daddr ${privateAddress} udp dport 1194 accept`),
};

function at(section: Section, rule: string): PlacedRule {
  return { section, rule };
}

/**
 * The rules that look floating IPs up in their maps; the floating IPs themselves are
 * the maps' elements (elements.ts), so these rules never change. nova's third floating
 * rule (`-s FIX -d FIX`) is the hairpin map's case (NO_EQUAL).
 */
export const MAP_LOOKUPS = {
  dnat: 'dnat to ip daddr map @floating_dnat',
  hairpin: 'ct status dnat snat to ip saddr map @floating_hairpin',
  snat: 'snat to ip saddr . oifname map @floating_snat',
} as const;

/**
 * nova's rules (SPELLING, in firewall/rules.ts's order) in one table of base chains,
 * with the floating maps' lookups after nova's own DNATs, and in postrouting between
 * the SNAT exemptions and the networks' own SNATs.
 */
export function renderChains(state: FirewallState): NftChain[] {
  const sections: Record<Section, string[]> = { prerouting: [], output: [], exempt: [], snat: [], forward: [], input: [], isolate: [] };
  spellRules(state, SPELLING, ({ section, rule }) => sections[section].push(rule));
  return [
    // A regular chain, defined before the forward rules that jump to it.
    { name: 'isolate', rules: sections.isolate },
    { name: 'prerouting', type: 'nat', hook: 'prerouting', priority: PRIORITY.dstnat, rules: [...sections.prerouting, MAP_LOOKUPS.dnat] },
    { name: 'output', type: 'nat', hook: 'output', priority: PRIORITY.dstnat, rules: [...sections.output, MAP_LOOKUPS.dnat] },
    {
      name: 'postrouting',
      type: 'nat',
      hook: 'postrouting',
      priority: PRIORITY.srcnat,
      rules: [...sections.exempt, MAP_LOOKUPS.hairpin, MAP_LOOKUPS.snat, ...sections.snat],
    },
    { name: 'forward', type: 'filter', hook: 'forward', priority: PRIORITY.filter, rules: sections.forward },
    { name: 'input', type: 'filter', hook: 'input', priority: PRIORITY.filter, rules: sections.input },
  ];
}

/** Interface names are validated before they get here; quoted as nft prints them. */
export function quoted(name: string): string {
  return `"${name}"`;
}
