import type { FirewallBackend } from '../config/options.js';
import { CommandFailed, type Executor } from './command.js';
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

/** One backend's own work, and how it removes itself when the other takes over. */
interface Backend extends FirewallDriver {
  name: FirewallBackend;
  /** Removes everything this backend ever wrote; returns what went. */
  remove(): Promise<string[]>;
}

/** nova's chains, written with iptables-restore (rules.ts, iptables.ts). */
function iptablesBackend(executor: Executor): Backend {
  const driver = new IptablesDriver(executor);
  return {
    name: 'iptables',
    sync: (state) => driver.sync(renderRules(state)),
    apply: (state) => driver.apply(renderRules(state)),
    remove: () => driver.remove(),
  };
}

/** One table of novanet's, floating IPs in maps (nftables.ts). */
function nftablesBackend(executor: Executor): Backend {
  const driver = new NftablesDriver(executor);
  return { name: 'nftables', sync: (state) => driver.sync(state), apply: (state) => driver.apply(state), remove: () => driver.remove() };
}

/** The chosen backend; its full syncs also remove what the other one left. */
class Firewall implements FirewallDriver {
  constructor(private readonly own: Backend, private readonly other: Backend) {}

  async sync(state: FirewallState): Promise<string[]> {
    // Ours first: the other backend's rules keep serving until ours are in place.
    const changed = await this.own.sync(state);
    const removed = await unlessMissing(() => this.other.remove());
    return [...changed, ...removed.map((entry) => `${this.other.name} ${entry} removed`)];
  }

  apply(state: FirewallState): Promise<string[]> {
    return this.own.apply(state);
  }
}

const BACKENDS: Record<FirewallBackend, (executor: Executor) => Backend> = {
  iptables: iptablesBackend,
  nftables: nftablesBackend,
};

/** The firewall of config's `firewall_backend`. */
export function createFirewall(backend: FirewallBackend, executor: Executor): FirewallDriver {
  const other: FirewallBackend = backend === 'iptables' ? 'nftables' : 'iptables';
  return new Firewall(BACKENDS[backend](executor), BACKENDS[other](executor));
}

/** The other backend's tool is not installed: then it left nothing to remove. */
async function unlessMissing(work: () => Promise<string[]>): Promise<string[]> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof CommandFailed && error.notInstalled) return [];
    throw error;
  }
}
