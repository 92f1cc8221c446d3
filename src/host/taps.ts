import type { Network } from '../db/networks.js';
import type { LinkDriver } from '../linux_net/links.js';
import type { DesiredHost } from './desired.js';

/**
 * Compute hosts plug their VMs: a tap named as one of this host's VIFs (its devname)
 * that exists outside any bridge goes into its network's bridge, as Neutron's Linux
 * bridge agent plugs ports. A tap a hypervisor put into a bridge itself (libvirt's
 * type='bridge') is left alone.
 */
export class TapPlugging {
  /** The taps of this host's instances, by network, with the bridge each goes into. */
  private readonly byNetwork = new Map<number, { bridge: string; names: string[] }>();

  constructor(private readonly links: LinkDriver) {}

  /** After a reconcile: the taps of the networks it looked at (all of them when `full`). */
  update(desired: DesiredHost, deleted: Network[], full: boolean): void {
    if (full) this.byNetwork.clear();
    for (const served of desired.networks) this.byNetwork.set(served.network.id, { bridge: served.network.bridge!, names: served.taps });
    for (const network of [...deleted, ...desired.notServed]) this.byNetwork.delete(network.id);
  }

  /** Whether this host has any instance whose tap could need plugging. */
  any(): boolean {
    return [...this.byNetwork.values()].some((entry) => entry.names.length > 0);
  }

  /** The taps that exist outside any bridge, with the bridge each goes into: one `ip` listing. */
  async loose(): Promise<{ tap: string; bridge: string }[]> {
    const masters = await this.links.masters();
    return [...this.byNetwork.values()].flatMap(({ bridge, names }) =>
      names.filter((tap) => masters.has(tap) && masters.get(tap) === undefined).map((tap) => ({ tap, bridge })),
    );
  }

  async attach(loose: { tap: string; bridge: string }[], changes: string[], errors: string[]): Promise<void> {
    for (const { tap, bridge } of loose) {
      try {
        await this.links.attach(tap, bridge);
        changes.push(`plugged ${tap} into ${bridge}`);
      } catch (error) {
        errors.push(`${tap}: ${(error as Error).message}`);
      }
    }
  }

  /** After a reconcile's builds: the taps already there go in now. */
  async attachLoose(changes: string[], errors: string[]): Promise<void> {
    if (!this.any()) return;
    try {
      await this.attach(await this.loose(), changes, errors);
    } catch (error) {
      errors.push(`plugging taps: ${(error as Error).message}`);
    }
  }
}
