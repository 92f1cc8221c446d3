import { perRule } from '../applied.js';
import type { FirewallState, FloatingRule } from '../state.js';
import { FLOATING_CHAIN_PREFIX, emptyRuleset, type Ruleset } from './plan.js';

/** Floating rules are kept in one chain per /24 (of the floating or of the fixed address). */
const BUCKET_PREFIX = 24;

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
  addFloatingChains(ruleset, state.floating);
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
const renderFloating = perRule((floating): RenderedFloating => ({
  dnat: `-d ${floating.address}/32 -j DNAT --to-destination ${floating.fixed}`,
  snat: [
    // A VM with a floating IP reaching another one's is seen from its own.
    `-s ${floating.fixed}/32 -m conntrack --ctstate DNAT -j SNAT --to-source ${floating.address}`,
    `-s ${floating.fixed}/32 -d ${floating.fixed}/32 -j SNAT --to-source ${floating.address}`,
    `-s ${floating.fixed}/32 -o ${floating.interface} -j SNAT --to-source ${floating.address}`,
  ],
  dnatChain: bucket(floating.address, 'dnat', '-d'),
  snatChain: bucket(floating.fixed, 'snat', '-s'),
}));

/** The chain of the /24 that `address` is in (named in hex, so names sort by address). */
function bucket(address: string, kind: 'dnat' | 'snat', match: '-d' | '-s'): Bucket {
  const octets = address.split('.').slice(0, BUCKET_PREFIX / 8);
  const name = `${FLOATING_CHAIN_PREFIX}${kind}-${octets.map((octet) => Number(octet).toString(16).padStart(2, '0')).join('')}`;
  return { name, jump: `${match} ${octets.join('.')}.0/${BUCKET_PREFIX} -j ${name}` };
}

/**
 * nova's floating rules, spread over chains of one /24 each: iptables-nft inserts and
 * deletes by position at a cost that grows with the length of the chain, so 10,000
 * addresses in one chain made each change ~40x dearer than in a chain of 256. The
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
