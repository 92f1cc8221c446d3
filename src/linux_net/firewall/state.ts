/**
 * What the firewall is asked to hold, whichever backend writes it, and what the
 * reconciler needs of a backend. Types only: both backends import this, it imports
 * neither.
 */

/** A network as the firewall sees it. */
export interface RuledNetwork {
  cidr: string;
  bridge: string;
  /** The host's address on the bridge (dhcp_server): the source of hairpin NAT. */
  gateway: string;
  /** dnsmasq serves it: open DHCP/DNS to the bridge, fix UDP checksums of replies. */
  dhcp: boolean;
  /** A project's network (VLAN mode): nothing is routed to it from another isolated network, bar DNAT. */
  isolated?: boolean;
  /** It has an IPv6 /64 here: the same forwarding (and isolation) for IPv6, and DHCPv6, DNS and ICMPv6 from the bridge. */
  v6?: boolean;
  vpn?: { publicAddress: string; publicPort: number; privateAddress: string } | undefined;
}

/** A floating IP bound on `interface`, NATed 1:1 to `fixed`. */
export interface FloatingRule {
  address: string;
  fixed: string;
  interface: string;
}

/** Everything the rules of one host depend on, whichever backend writes them. */
export interface FirewallState {
  publicInterface: string;
  routingSourceIp: string;
  metadataHost: string;
  metadataPort: number;
  dmzCidrs: string[];
  networks: RuledNetwork[];
  floating: FloatingRule[];
}

/**
 * What the reconciler needs of a firewall backend. Both return one line per thing
 * changed (a chain, a map), empty when the kernel already matched.
 */
export interface FirewallDriver {
  /** Reads the kernel, repairs every difference and removes the other backend's rules (start-up, periodic check). */
  sync(state: FirewallState): Promise<string[]>;
  /** Applies what differs from the last apply (after a change); reads the kernel the first time. */
  apply(state: FirewallState): Promise<string[]>;
}
