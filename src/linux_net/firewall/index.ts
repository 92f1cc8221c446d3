import { CommandFailed, type Executor } from '../command.js';
import { IptablesBackend } from './iptables/driver.js';
import { NftablesDriver } from './nftables/driver.js';
import type { FirewallDriver, FirewallState } from './state.js';

/**
 * The backends by name. The firewall owns these names; config keeps its own list of
 * `firewall_backend` values, and passing config's value here makes TypeScript check
 * that the two agree.
 */
export type FirewallBackend = 'iptables' | 'nftables';

/** A backend's driver: the contract, and how it removes itself when the other takes over. */
interface BackendDriver extends FirewallDriver {
  /** Removes everything this backend ever wrote; returns what went. */
  remove(): Promise<string[]>;
}

/** nova's chains written with iptables-restore (iptables/); one table of novanet's, floating IPs in maps (nftables/). */
const BACKENDS: Record<FirewallBackend, new (executor: Executor) => BackendDriver> = {
  iptables: IptablesBackend,
  nftables: NftablesDriver,
};

/** The chosen backend; its full syncs also remove what the other one left. */
class Firewall implements FirewallDriver {
  constructor(
    private readonly own: BackendDriver,
    private readonly other: BackendDriver,
    private readonly otherName: FirewallBackend,
  ) {}

  async sync(state: FirewallState): Promise<string[]> {
    // Ours first: the other backend's rules keep serving until ours are in place.
    const changed = await this.own.sync(state);
    const removed = await unlessMissing(() => this.other.remove());
    return [...changed, ...removed.map((entry) => `${this.otherName} ${entry} removed`)];
  }

  apply(state: FirewallState): Promise<string[]> {
    return this.own.apply(state);
  }
}

/** The firewall of config's `firewall_backend`. */
export function createFirewall(backend: FirewallBackend, executor: Executor): FirewallDriver {
  const other: FirewallBackend = backend === 'iptables' ? 'nftables' : 'iptables';
  return new Firewall(new BACKENDS[backend](executor), new BACKENDS[other](executor), other);
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
