import type { FirewallState, RuledNetwork } from './state.js';

/**
 * Which rules nova's firewall has, written once for both backends: each rule by its
 * purpose, with what its spelling needs to know. A backend spells every purpose in its
 * own dialect (a Spelling: the compiler demands each one), or declares that it has no
 * equal; the purposes test checks that a backend renders nothing else.
 */

interface Vpn {
  publicAddress: string;
  publicPort: number;
  privateAddress: string;
}

/** The purposes of the rules of the host and of each network, and what each rule needs. */
export interface Purposes {
  /** 169.254.169.254:80 to the metadata service: DNAT, or a redirect when it runs here (127.0.0.1). */
  'metadata-dnat': { host: string; port: number };
  /** The range reaches the metadata host unNATed... */
  'snat-exempt-metadata': { cidr: string; host: string };
  /** ...and each dmz_cidr, in order... */
  'snat-exempt-dmz': { cidr: string; dmz: string };
  /** ...and itself, unless the connection was DNATed (hairpin-snat's case). */
  'snat-exempt-internal': { cidr: string };
  /**
   * Hairpin: a VM reaching a floating IP of its own network is seen from the host's
   * address on the bridge. Without it the reply would go VM to VM, bypassing the DNAT it
   * must be undone by.
   */
  'hairpin-snat': { cidr: string; gateway: string };
  /** The range leaves the public interface as routing_source_ip. */
  snat: { cidr: string; publicInterface: string; source: string };
  /**
   * VLAN mode: a project's bridge forwards to no other project's. What leaves an
   * isolated bridge for another interface goes through the isolation chain...
   */
  'isolate-exit': { bridge: string };
  /** ...which lets DNATed connections by (another project's floating IP is reachable, as from outside)... */
  'isolate-dnat-pass': Record<string, never>;
  /** ...and drops what would enter any isolated bridge. */
  'isolate-entry': { bridge: string };
  /** Forwarding from and to the bridge. */
  'forward-in': { bridge: string };
  'forward-out': { bridge: string };
  /** dnsmasq's DHCP and DNS, reached from the bridge. */
  'dhcp-input': { bridge: string };
  'dns-input-udp': { bridge: string };
  'dns-input-tcp': { bridge: string };
  /** DHCP replies get their UDP checksum filled in, for clients that drop them without. */
  'dhcp-checksum': { bridge: string };
  /** cloudpipe: the VPN's public port to its instance, from outside and from the host itself. */
  'vpn-dnat': Vpn;
  'vpn-dnat-local': Vpn;
  'vpn-forward': { privateAddress: string };
}

export type Purpose = keyof Purposes;

/** IPv6's own purposes; its forwarding and isolation are IPv4's, spelled alike (they match interfaces only). */
export interface PurposesV6 {
  /** DHCPv6 from the bridge (dnsmasq). */
  'dhcpv6-input': { bridge: string };
  /** ICMPv6 from the bridge: router solicitations and neighbour discovery. */
  'icmpv6-input': { bridge: string };
}

/**
 * The purposes of each floating IP's rules, spelled from its FloatingRule: DNAT of the
 * floating address to the fixed one (from outside and from the host); a VM with a
 * floating IP reaching another one's is seen from its own (hairpin); reaching its own
 * fixed address through its floating IP (self); leaving the floating IP's interface
 * as its floating IP (snat).
 */
export const FLOATING_PURPOSES = ['floating-dnat', 'floating-hairpin', 'floating-self', 'floating-snat'] as const;

export type FloatingPurpose = (typeof FLOATING_PURPOSES)[number];

/** A purpose a backend has no rule for, with the reason. */
export interface NoEqual {
  noEqual: string;
}

/** A backend's rule for each purpose; `Gap` is NoEqual for a backend that may lack some. */
export type Spelling<Rule, Gap extends NoEqual = never> = { [P in Purpose]: ((need: Purposes[P]) => Rule) | Gap };

/** A backend's spelling of IPv6's own purposes. */
export type SpellingV6<Rule> = { [P in keyof PurposesV6]: (need: PurposesV6[P]) => Rule };

/** A backend's spelling of each floating purpose. */
export type FloatingSpelling<Rule, Gap extends NoEqual = never> = Record<FloatingPurpose, Rule | Gap>;

/** Whether a spelling entry is a declared gap. */
export function isNoEqual(entry: unknown): entry is NoEqual {
  return typeof entry === 'object' && entry !== null && 'noEqual' in entry;
}

/**
 * Every rule of the host and its networks (the floating IPs' apart: see
 * FLOATING_PURPOSES), in order, spelled by `spelling` and handed to `place` with its
 * purpose and its network (undefined: the host's own). A backend's rules in one chain
 * keep this order, which is nova's.
 */
export function spellRules<Rule>(
  state: FirewallState,
  spelling: Spelling<Rule, NoEqual>,
  place: (rule: Rule, purpose: Purpose, network: RuledNetwork | undefined) => void,
): void {
  const add = <P extends Purpose>(purpose: P, need: Purposes[P], network?: RuledNetwork): void => {
    const spell = spelling[purpose];
    if (!isNoEqual(spell)) place(spell(need), purpose, network);
  };
  add('metadata-dnat', { host: state.metadataHost, port: state.metadataPort });
  spellIsolation(state.networks, add, true);
  for (const network of state.networks) {
    const { cidr, bridge } = network;
    add('snat-exempt-metadata', { cidr, host: state.metadataHost }, network);
    for (const dmz of state.dmzCidrs) add('snat-exempt-dmz', { cidr, dmz }, network);
    add('snat-exempt-internal', { cidr }, network);
    add('hairpin-snat', { cidr, gateway: network.gateway }, network);
    add('snat', { cidr, publicInterface: state.publicInterface, source: state.routingSourceIp }, network);
    add('forward-in', { bridge }, network);
    add('forward-out', { bridge }, network);
    if (network.dhcp) {
      add('dhcp-input', { bridge }, network);
      add('dns-input-udp', { bridge }, network);
      add('dns-input-tcp', { bridge }, network);
      add('dhcp-checksum', { bridge }, network);
    }
    if (network.vpn) {
      add('vpn-dnat', network.vpn, network);
      add('vpn-dnat-local', network.vpn, network);
      add('vpn-forward', network.vpn, network);
    }
  }
}

/**
 * The IPv6 filter rules of the networks with a /64, in order: isolation first (VLAN
 * mode; no DNAT exception, IPv6 is never NATed), then per network its forwarding and
 * input. No NAT: the /64s are routed.
 */
export function spellRulesV6<Rule>(
  state: FirewallState,
  spelling: Spelling<Rule, NoEqual>,
  v6: SpellingV6<Rule>,
  place: (rule: Rule) => void,
): void {
  const add = <P extends Purpose>(purpose: P, need: Purposes[P]): void => {
    const spell = spelling[purpose];
    if (!isNoEqual(spell)) place(spell(need));
  };
  const networks = state.networks.filter((network) => network.v6);
  spellIsolation(networks, add, false);
  for (const { bridge, dhcp } of networks) {
    add('forward-in', { bridge });
    add('forward-out', { bridge });
    if (dhcp) {
      place(v6['dhcpv6-input']({ bridge }));
      add('dns-input-udp', { bridge });
      add('dns-input-tcp', { bridge });
    }
    place(v6['icmpv6-input']({ bridge }));
  }
}

/**
 * VLAN mode's isolation, before any network's forward-in (which would accept the
 * traffic first): a jump per isolated bridge, then the chain's DNAT exception (IPv4
 * only: IPv6 is never NATed) and a drop per isolated bridge.
 */
function spellIsolation(
  networks: RuledNetwork[],
  add: <P extends 'isolate-exit' | 'isolate-dnat-pass' | 'isolate-entry'>(purpose: P, need: Purposes[P], network?: RuledNetwork) => void,
  dnatPass: boolean,
): void {
  const isolated = networks.filter((network) => network.isolated);
  for (const network of isolated) add('isolate-exit', { bridge: network.bridge }, network);
  if (dnatPass && isolated.length > 0) add('isolate-dnat-pass', {});
  for (const network of isolated) add('isolate-entry', { bridge: network.bridge }, network);
}
