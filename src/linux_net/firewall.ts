import type { FirewallBackend } from '../config/options.js';
import { CommandFailed, type Executor } from './executor.js';
import { IptablesDriver } from './iptables.js';
import { NftablesDriver } from './nftables.js';
import { renderRules } from './rules.js';

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

/** nova's chains, written with iptables-restore (rules.ts, iptables.ts). */
class IptablesFirewall implements FirewallDriver {
  private readonly driver: IptablesDriver;
  private readonly other: NftablesDriver;

  constructor(executor: Executor) {
    this.driver = new IptablesDriver(executor);
    this.other = new NftablesDriver(executor);
  }

  async sync(state: FirewallState): Promise<string[]> {
    // Ours first: the nftables table keeps serving until the chains are in place.
    const changed = await this.driver.sync(renderRules(state));
    const removed = await unlessMissing(() => this.other.remove());
    return [...changed, ...removed.map((entry) => `nftables ${entry} removed`)];
  }

  apply(state: FirewallState): Promise<string[]> {
    return this.driver.apply(renderRules(state));
  }
}

/** One table of novanet's, floating IPs in maps (nftables.ts); nova's iptables chains go. */
class NftablesFirewall implements FirewallDriver {
  private readonly driver: NftablesDriver;
  private readonly other: IptablesDriver;

  constructor(executor: Executor) {
    this.driver = new NftablesDriver(executor);
    this.other = new IptablesDriver(executor);
  }

  async sync(state: FirewallState): Promise<string[]> {
    // Ours first: the iptables rules keep serving until the table is in place.
    const changed = await this.driver.sync(state);
    const removed = await unlessMissing(() => this.other.remove());
    return [...changed, ...removed.map((entry) => `iptables ${entry} removed`)];
  }

  apply(state: FirewallState): Promise<string[]> {
    return this.driver.apply(state);
  }
}

const BACKENDS: Record<FirewallBackend, (executor: Executor) => FirewallDriver> = {
  iptables: (executor) => new IptablesFirewall(executor),
  nftables: (executor) => new NftablesFirewall(executor),
};

/** The firewall of config's `firewall_backend`. */
export function createFirewall(backend: FirewallBackend, executor: Executor): FirewallDriver {
  return BACKENDS[backend](executor);
}

/** The other backend's tool is not installed: then it left nothing to remove. */
async function unlessMissing(work: () => Promise<string[]>): Promise<string[]> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof CommandFailed && error.code === null && /could not start \(ENOENT\)/.test(error.message)) return [];
    throw error;
  }
}
