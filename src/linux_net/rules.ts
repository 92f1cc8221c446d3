import { emptyRuleset, type Ruleset } from './iptables.js';

/** A network as the firewall sees it. */
export interface RuledNetwork {
  cidr: string;
  bridge: string;
  /** The host's address on the bridge (dhcp_server): the source of hairpin NAT. */
  gateway: string;
  /** dnsmasq serves it: open DHCP/DNS to the bridge, fix UDP checksums of replies. */
  dhcp: boolean;
  vpn?: { publicAddress: string; publicPort: number; privateAddress: string } | undefined;
}

export interface FloatingRule {
  address: string;
  fixed: string;
  interface: string;
}

/** Everything the rules of one host depend on. */
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
 * nova's rules, in iptables-save's own spelling (so installed and desired compare as
 * text): SNAT of each fixed range with its ACCEPT exceptions, the metadata DNAT,
 * bridge forwarding, DHCP/DNS input, and 1:1 NAT of floating IPs.
 */
export function renderRules(state: FirewallState): Ruleset {
  const ruleset = emptyRuleset();
  const { nat, filter, mangle } = ruleset;
  nat['nova-network-PREROUTING']!.push(
    state.metadataHost === '127.0.0.1'
      ? `-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports ${state.metadataPort}`
      : `-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination ${state.metadataHost}:${state.metadataPort}`,
  );
  for (const network of state.networks) {
    const { cidr, bridge } = network;
    nat['nova-network-POSTROUTING']!.push(
      `-s ${cidr} -d ${state.metadataHost}/32 -j ACCEPT`,
      ...state.dmzCidrs.map((dmz) => `-s ${cidr} -d ${dmz} -j ACCEPT`),
      `-s ${cidr} -d ${cidr} -m conntrack ! --ctstate DNAT -j ACCEPT`,
    );
    nat['nova-network-snat']!.push(
      // Hairpin: a VM reaching a floating IP of its own network. Without this the reply
      // would go VM to VM, bypassing the DNAT it must be undone by.
      `-s ${cidr} -d ${cidr} -m conntrack --ctstate DNAT -j SNAT --to-source ${network.gateway}`,
      `-s ${cidr} -o ${state.publicInterface} -j SNAT --to-source ${state.routingSourceIp}`,
    );
    filter['nova-network-FORWARD']!.push(`-i ${bridge} -j ACCEPT`, `-o ${bridge} -j ACCEPT`);
    if (network.dhcp) {
      filter['nova-network-INPUT']!.push(
        `-i ${bridge} -p udp -m udp --dport 67 -j ACCEPT`,
        `-i ${bridge} -p udp -m udp --dport 53 -j ACCEPT`,
        `-i ${bridge} -p tcp -m tcp --dport 53 -j ACCEPT`,
      );
      mangle['nova-network-POSTROUTING']!.push(`-o ${bridge} -p udp -m udp --dport 68 -j CHECKSUM --checksum-fill`);
    }
    if (network.vpn) {
      const { publicAddress, publicPort, privateAddress } = network.vpn;
      const dnat = `-d ${publicAddress}/32 -p udp -m udp --dport ${publicPort} -j DNAT --to-destination ${privateAddress}:1194`;
      nat['nova-network-PREROUTING']!.push(dnat);
      nat['nova-network-OUTPUT']!.push(dnat);
      filter['nova-network-FORWARD']!.push(`-d ${privateAddress}/32 -p udp -m udp --dport 1194 -j ACCEPT`);
    }
  }
  for (const floating of state.floating) {
    nat['nova-network-PREROUTING']!.push(`-d ${floating.address}/32 -j DNAT --to-destination ${floating.fixed}`);
    nat['nova-network-OUTPUT']!.push(`-d ${floating.address}/32 -j DNAT --to-destination ${floating.fixed}`);
    // A VM with a floating IP reaching another one's is seen from its own.
    nat['nova-network-POSTROUTING']!.push(`-s ${floating.fixed}/32 -m conntrack --ctstate DNAT -j SNAT --to-source ${floating.address}`);
    nat['nova-network-float-snat']!.push(
      `-s ${floating.fixed}/32 -d ${floating.fixed}/32 -j SNAT --to-source ${floating.address}`,
      `-s ${floating.fixed}/32 -o ${floating.interface} -j SNAT --to-source ${floating.address}`,
    );
  }
  return ruleset;
}
