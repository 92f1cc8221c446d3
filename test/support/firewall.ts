import type { FirewallBackend } from '../../src/linux_net/firewall/index.js';
import { parseListing } from '../../src/linux_net/firewall/nftables/parse.js';
import { NFT_TABLE } from '../../src/linux_net/firewall/nftables/plan.js';
import type { FirewallState } from '../../src/linux_net/firewall/state.js';
import type { Lab } from '../../tools/lab.js';

/** One FlatDHCP network on br100 behind eth0: the firewall state most linux_net tests start from. */
export function firewallState(overrides: Partial<FirewallState> = {}): FirewallState {
  return {
    publicInterface: 'eth0',
    routingSourceIp: '192.0.2.10',
    metadataHost: '10.0.0.1',
    metadataPort: 8775,
    dmzCidrs: [],
    networks: [{ cidr: '10.0.0.0/24', bridge: 'br100', gateway: '10.0.0.1', dhcp: true }],
    floating: [],
    ...overrides,
  };
}

/** Two networks (one with DHCP, one with a VPN), a dmz and a floating IP: the real-kernel tests' state. */
export function twoNetworks(): FirewallState {
  return firewallState({
    dmzCidrs: ['10.128.0.0/24'],
    networks: [
      { cidr: '10.0.0.0/24', bridge: 'br100', gateway: '10.0.0.1', dhcp: true },
      {
        cidr: '10.0.1.0/24',
        bridge: 'br101',
        gateway: '10.0.1.1',
        dhcp: false,
        vpn: { publicAddress: '192.0.2.20', publicPort: 1000, privateAddress: '10.0.1.2' },
      },
    ],
    floating: [{ address: '192.0.2.50', fixed: '10.0.0.3', interface: 'eth0' }],
  });
}

/**
 * What the end-to-end tests read of a host's firewall, whichever backend wrote it, so
 * the same assertions run on both.
 */
export interface FirewallReader {
  backend: FirewallBackend;
  /** The network host's firewall as text (foreign rules included), for before/after comparisons. */
  ruleset(lab: Lab): Promise<string>;
  /** The rules or map elements that mention `address`, with how often each appears. */
  floatingEntries(lab: Lab, address: string): Promise<Map<string, number>>;
  /** How many of those one associated floating IP has. */
  entriesPerFloating: number;
  /** The metadata DNAT to `host:port`, as `ruleset` shows it. */
  metadataRule(host: string, port: number): string;
  /** Deletes by hand the SNAT of `cidr` out of eth0 to `source`: drift for a reconcile to repair. */
  deleteSnat(lab: Lab, cidr: string, source: string): Promise<void>;
  /** The reconcile's change line for that repair. */
  snatRepair: string;
}

async function must(lab: Lab, argv: string[]): Promise<string> {
  const result = await lab.exec(lab.netNs, argv);
  if (result.code !== 0) throw new Error(`${argv.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

const iptablesReader: FirewallReader = {
  backend: 'iptables',
  ruleset: (lab) => lab.ruleset(),
  async floatingEntries(lab, address) {
    const counts = new Map<string, number>();
    for (const line of (await lab.ruleset()).split('\n'))
      if (line.includes(`${address}/32`) || line.endsWith(` ${address}`)) counts.set(line, (counts.get(line) ?? 0) + 1);
    return counts;
  },
  // The DNAT (in its /24's chain, reached from PREROUTING and OUTPUT) and three SNATs.
  entriesPerFloating: 4,
  metadataRule: (host, port) =>
    `-A nova-network-PREROUTING -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination ${host}:${port}`,
  async deleteSnat(lab, cidr, source) {
    await must(lab, ['iptables', '-t', 'nat', '-D', 'nova-network-snat', '-s', cidr, '-o', 'eth0', '-j', 'SNAT', '--to-source', source]);
  },
  snatRepair: 'rules nat/nova-network-snat',
};

const nftablesReader: FirewallReader = {
  backend: 'nftables',
  // iptables-save too: foreign iptables rules must survive, and none of nova's may remain.
  ruleset: async (lab) => `${await lab.ruleset()}\n${await must(lab, ['nft', 'list', 'table', 'ip', NFT_TABLE])}`,
  async floatingEntries(lab, address) {
    const counts = new Map<string, number>();
    const { maps } = parseListing(await must(lab, ['nft', '-j', 'list', 'table', 'ip', NFT_TABLE]));
    for (const [name, map] of maps) {
      for (const [key, value] of map.elements) {
        if (key.split(' . ').includes(address) || value === address) counts.set(`${name} ${key} : ${value}`, 1);
      }
    }
    return counts;
  },
  // One element in each of floating_dnat, floating_snat and floating_hairpin.
  entriesPerFloating: 3,
  metadataRule: (host, port) => `ip daddr 169.254.169.254 tcp dport 80 dnat to ${host}:${port} comment`,
  async deleteSnat(lab, cidr, source) {
    const listed = await must(lab, ['nft', '-a', 'list', 'chain', 'ip', NFT_TABLE, 'postrouting']);
    const rule = `ip saddr ${cidr} oifname "eth0" snat to ${source} comment`;
    const handle = listed
      .split('\n')
      .find((line) => line.trim().startsWith(rule))
      ?.match(/# handle (\d+)$/)?.[1];
    if (!handle) throw new Error(`no "${rule}" in\n${listed}`);
    await must(lab, ['nft', 'delete', 'rule', 'ip', NFT_TABLE, 'postrouting', 'handle', handle]);
  },
  snatRepair: `rules ip ${NFT_TABLE}/postrouting`,
};

/** One reader per backend, for `describe.each`. */
export const FIREWALL_READERS: FirewallReader[] = [iptablesReader, nftablesReader];
