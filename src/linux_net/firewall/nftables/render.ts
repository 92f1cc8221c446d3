import type { FirewallState } from '../state.js';

/** A base chain: its hook and the rules in it, in order. */
export interface NftChain {
  name: string;
  type: 'nat' | 'filter';
  hook: 'prerouting' | 'output' | 'postrouting' | 'forward' | 'input';
  priority: number;
  rules: string[];
}

const PRIORITY = { dstnat: -100, filter: 0, srcnat: 100 } as const;

/**
 * nova's rules in one table of base chains: SNAT of each fixed range with its ACCEPT
 * exceptions, the metadata and VPN DNATs, bridge forwarding, DHCP/DNS input, and the
 * rules that look floating IPs up in their maps (the floating IPs themselves are the
 * maps' elements, elements.ts). nftables has no CHECKSUM target: the mangle rule that
 * fills DHCP replies' checksums has no equal.
 */
export function renderChains(state: FirewallState): NftChain[] {
  const prerouting: string[] = [
    state.metadataHost === '127.0.0.1'
      ? `ip daddr 169.254.169.254 tcp dport 80 redirect to :${state.metadataPort}`
      : `ip daddr 169.254.169.254 tcp dport 80 dnat to ${state.metadataHost}:${state.metadataPort}`,
  ];
  const output: string[] = [];
  const exceptions: string[] = [];
  const snat: string[] = [];
  const forward: string[] = [];
  const input: string[] = [];
  for (const network of state.networks) {
    const { cidr, bridge } = network;
    exceptions.push(
      `ip saddr ${cidr} ip daddr ${state.metadataHost} accept`,
      ...state.dmzCidrs.map((dmz) => `ip saddr ${cidr} ip daddr ${dmz} accept`),
      // `! dnat`: the bit is clear. (`!= dnat` would compare the whole status word.)
      `ip saddr ${cidr} ip daddr ${cidr} ct status ! dnat accept`,
    );
    snat.push(
      // Hairpin: a VM reaching a floating IP of its own network (iptables/render.ts says why).
      `ip saddr ${cidr} ip daddr ${cidr} ct status dnat snat to ${network.gateway}`,
      `ip saddr ${cidr} oifname ${quoted(state.publicInterface)} snat to ${state.routingSourceIp}`,
    );
    forward.push(`iifname ${quoted(bridge)} accept`, `oifname ${quoted(bridge)} accept`);
    if (network.dhcp) {
      input.push(
        `iifname ${quoted(bridge)} udp dport 67 accept`,
        `iifname ${quoted(bridge)} udp dport 53 accept`,
        `iifname ${quoted(bridge)} tcp dport 53 accept`,
      );
    }
    if (network.vpn) {
      const { publicAddress, publicPort, privateAddress } = network.vpn;
      const dnat = `ip daddr ${publicAddress} udp dport ${publicPort} dnat to ${privateAddress}:1194`;
      prerouting.push(dnat);
      output.push(dnat);
      forward.push(`ip daddr ${privateAddress} udp dport 1194 accept`);
    }
  }
  const floatingDnat = 'dnat to ip daddr map @floating_dnat';
  return [
    { name: 'prerouting', type: 'nat', hook: 'prerouting', priority: PRIORITY.dstnat, rules: [...prerouting, floatingDnat] },
    { name: 'output', type: 'nat', hook: 'output', priority: PRIORITY.dstnat, rules: [...output, floatingDnat] },
    {
      name: 'postrouting',
      type: 'nat',
      hook: 'postrouting',
      priority: PRIORITY.srcnat,
      // nova's third floating rule (`-s FIX -d FIX`) is the hairpin map's case: a VM
      // reaches its own fixed address through the host only by DNAT.
      rules: [...exceptions, 'ct status dnat snat to ip saddr map @floating_hairpin', 'snat to ip saddr . oifname map @floating_snat', ...snat],
    },
    { name: 'forward', type: 'filter', hook: 'forward', priority: PRIORITY.filter, rules: forward },
    { name: 'input', type: 'filter', hook: 'input', priority: PRIORITY.filter, rules: input },
  ];
}

/** Interface names are validated before they get here; quoted as nft prints them. */
export function quoted(name: string): string {
  return `"${name}"`;
}
