import type { Config } from '../config/options.js';
import type { Network } from '../db/networks.js';
import { Unavailable } from '../errors.js';
import { parseAddress } from '../ipam/address.js';
import { containsAddress, parseCidr } from '../ipam/cidr.js';
import type { DnsmasqDriver } from '../linux_net/dnsmasq/index.js';
import type { LinkDriver } from '../linux_net/links.js';
import type { DesiredHost, ServedNetwork } from './desired.js';
import type { Capabilities } from './layer.js';

/**
 * The networks this host builds: their bridge, uplink and gateway address up, and torn
 * down again when the host no longer serves them. Remembers what this process built,
 * so a network that moved away is found without asking the kernel.
 */
export class NetworkBuilds {
  /** The networks this process built, to tear down when this host no longer serves them. */
  private readonly built = new Map<number, Network>();
  /** Networks whose missing VLAN uplink a partial reconcile has reported already. */
  private readonly uplinkReported = new Set<number>();

  constructor(
    private readonly config: Config,
    private readonly capabilities: Capabilities,
    private readonly links: LinkDriver,
    private readonly dnsmasq: DnsmasqDriver,
  ) {}

  /** The network as this process built it, if it did. */
  get(networkId: number): Network | undefined {
    return this.built.get(networkId);
  }

  /**
   * Whether this host built `network`: this process did, or (at a full reconcile,
   * knowing nothing of earlier runs) a dnsmasq of ours serves its bridge. A scrub clears
   * the host column, so that alone would miss a scrubbed network.
   */
  builtHere(network: Network, full: boolean): boolean {
    return this.built.has(network.id) || (full && network.bridge !== null && this.dnsmasq.running(network.bridge));
  }

  /**
   * The bridge with its uplink (flat_interface, or the 802.1Q interface) and the gateway
   * as its first address. `full`: a full reconcile, which reports a missing VLAN uplink
   * again (a partial one, once per network).
   */
  async ensure(served: ServedNetwork, changes: string[], full: boolean): Promise<void> {
    const bridge = served.network.bridge!;
    let slave = served.bridgeInterface;
    // Without 802.1Q the network still works on this host (its bridge, DHCP and rules),
    // only without its uplink to other hosts; the error is reported once the rest is built.
    let uplinkMissing: Error | undefined;
    if (served.vlan) {
      try {
        const vlan = await this.links.ensureVlan(served.vlan.id, served.vlan.parent, served.network.mtu);
        changes.push(...vlan.changes);
        slave = vlan.name;
      } catch (error) {
        if (!(error instanceof Unavailable)) throw error;
        uplinkMissing = error;
      }
    }
    changes.push(...(await this.links.ensureBridge(bridge, { interface: slave, mtu: served.network.mtu })));
    changes.push(...(await this.links.ensureFirstAddress(bridge, served.gateway.address, served.gateway.prefix)));
    this.built.set(served.network.id, served.network);
    if (uplinkMissing && (full || !this.uplinkReported.has(served.network.id))) {
      this.uplinkReported.add(served.network.id);
      throw uplinkMissing;
    }
  }

  /** Undoes what a network left on this host, unless a network still served shares its bridge. */
  async teardown(network: Network, desired: DesiredHost, changes: string[]): Promise<void> {
    this.built.delete(network.id);
    if (!network.bridge || desired.servedBridges.has(network.bridge)) return;
    if (await this.dnsmasq.stop(network.bridge)) changes.push(`dnsmasq stopped on ${network.bridge}`);
    const link = await this.links.show(network.bridge);
    if (link && network.cidr) {
      // Ours are the addresses inside the network: its gateway, or this host's own
      // address in a multi_host network.
      const cidr = parseCidr(network.cidr, 'cidr');
      const addresses = (link.addr_info ?? []).filter((entry) => entry.family === 'inet');
      const ours = addresses.filter((entry) => containsAddress(cidr, parseAddress(entry.local, 'address', 4)));
      for (const entry of ours) {
        await this.links.removeAddress(network.bridge, entry.local, cidr.prefix);
        changes.push(`removed ${entry.local}/${cidr.prefix} from ${network.bridge}`);
      }
      // A bridge that carries the host's own addresses (moved from flat_interface) stays.
      if (ours.length === addresses.length && (await this.links.deleteBridge(network.bridge))) {
        changes.push(`deleted bridge ${network.bridge}`);
      }
    }
    if (this.capabilities.vlan && network.vlan !== null && (await this.links.deleteVlan(network.vlan))) {
      changes.push(`deleted vlan${network.vlan}`);
    }
  }

  /** Of the deleted networks, those this host built: one per bridge, to tear down. */
  deletedHere(deleted: Network[]): Network[] {
    const seen = new Set<string>();
    return deleted.filter((network) => {
      if (!network.bridge || seen.has(network.bridge) || (network.host !== this.config.host && !this.builtHere(network, true)))
        return false;
      seen.add(network.bridge);
      return true;
    });
  }
}
