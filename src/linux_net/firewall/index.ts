import { CommandFailed, type Executor } from '../command.js';
import { IptablesDriver } from './iptables/plan.js';
import { renderRules } from './iptables/render.js';
import { NftablesDriver } from './nftables/driver.js';
import type { FirewallDriver, FirewallState } from './state.js';

/**
 * The backends by name. The firewall owns these names; config keeps its own list of
 * `firewall_backend` values, and passing config's value here makes TypeScript check
 * that the two agree.
 */
export type FirewallBackend = 'iptables' | 'nftables';

/** One backend's own work, and how it removes itself when the other takes over. */
interface Backend extends FirewallDriver {
  name: FirewallBackend;
  /** Removes everything this backend ever wrote; returns what went. */
  remove(): Promise<string[]>;
}

/** nova's chains, written with iptables-restore (iptables/). */
function iptablesBackend(executor: Executor): Backend {
  const driver = new IptablesDriver(executor);
  return {
    name: 'iptables',
    sync: (state) => driver.sync(renderRules(state)),
    apply: (state) => driver.apply(renderRules(state)),
    remove: () => driver.remove(),
  };
}

/** One table of novanet's, floating IPs in maps (nftables/). */
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
