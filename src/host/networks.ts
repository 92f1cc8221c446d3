import type { Config } from '../config/options.js';
import type { Network } from '../db/networks.js';
import { Conflict, Unavailable } from '../errors.js';
import { parseAddress } from '../ipam/address.js';
import { containsAddress, parseCidr } from '../ipam/cidr.js';
import type { DnsmasqDriver } from '../linux_net/dnsmasq/index.js';
import type { LinkDriver } from '../linux_net/links.js';
import type { VxlanDriver } from '../linux_net/vxlan.js';
import type { DesiredHost, ServedNetwork } from './desired.js';
import type { Capabilities } from './layer.js';

/**
 * The networks this host builds: their bridge, uplink and gateway address up, and torn
 * down again when the host no longer serves them. Remembers what this process built,
 * so a network that moved away is found without asking the kernel.
 */
export class NetworkBuilds {
  /** The networks this process built, to tear down when this host no longer serves them; plugOnly: bridge and uplink only. */
  private readonly built = new Map<number, { network: Network; plugOnly: boolean }>();
  /** Networks whose missing VLAN uplink a partial reconcile has reported already. */
  private readonly uplinkReported = new Set<number>();

  private readonly links: LinkDriver;
  private readonly dnsmasq: DnsmasqDriver;
  private readonly vxlan: VxlanDriver;

  constructor(
    private readonly config: Config,
    private readonly capabilities: Capabilities,
    drivers: { links: LinkDriver; dnsmasq: DnsmasqDriver; vxlan: VxlanDriver },
  ) {
    this.links = drivers.links;
    this.dnsmasq = drivers.dnsmasq;
    this.vxlan = drivers.vxlan;
  }

  /** The uuids of the networks whose bridge this process has built (served or plugged). */
  builtUuids(): string[] {
    return [...this.built.values()].map(({ network }) => network.uuid);
  }

  /** The network as this process built it, if it did. */
  get(networkId: number): Network | undefined {
    return this.built.get(networkId)?.network;
  }

  /**
   * Whether this host built `network`: this process did, or (at a full reconcile,
   * knowing nothing of earlier runs) a dnsmasq of ours serves its bridge. A scrub clears
   * the host column, so that alone would miss a scrubbed network.
   */
  builtHere(network: Network, full: boolean, bridges?: Set<string>): boolean {
    if (this.built.has(network.id) || network.bridge === null) return this.built.has(network.id);
    return full && (this.dnsmasq.running(network.bridge) || (this.plugged(network) && bridges?.has(network.bridge) === true));
  }

  /**
   * Whether this host plugged `network` only: as this process built it; else a
   * single-host network another host serves, unless a dnsmasq of ours serves its bridge
   * (then this host was its network host before it moved).
   */
  private plugged(network: Network): boolean {
    const known = this.built.get(network.id);
    if (known) return known.plugOnly;
    if (network.multiHost || network.host === null || network.host === this.config.host) return false;
    return network.bridge === null || !this.dnsmasq.running(network.bridge);
  }

  /** The uplink this host puts into a network's bridge: flat_interface (or its own), or its VLAN interface. */
  private uplinkOf(network: Network): string | null {
    if (this.capabilities.vlan)
      return network.vlan === null ? null : `${this.config.vlan_transport === 'vxlan' ? 'vxlan' : 'vlan'}${network.vlan}`;
    return network.bridgeInterface ?? this.config.flat_interface ?? null;
  }

  /**
   * The bridge with its uplink (flat_interface, or the 802.1Q interface) and the gateway
   * as its first address. `full`: a full reconcile, which reports a missing VLAN uplink
   * again (a partial one, once per network).
   */
  async ensure(served: ServedNetwork, changes: string[], full: boolean): Promise<void> {
    const bridge = served.network.bridge!;
    let slave = served.bridgeInterface;
    let mtu = served.network.mtu;
    // Without 802.1Q the network still works on this host (its bridge, DHCP and rules),
    // only without its uplink to other hosts; the error is reported once the rest is built.
    let uplinkMissing: Error | undefined;
    if (served.vxlan) {
      // 50 bytes of VXLAN over IPv4 below the underlay's MTU, unless the network sets its own; DHCP tells the VMs.
      mtu ??= (await this.vxlan.underlayMtu(served.vxlan.dev)) - 50;
      if (served.dhcp && served.dhcp.mtu === null) served.dhcp.mtu = mtu;
      const vxlan = await this.vxlan.ensure({ ...served.vxlan, mtu });
      changes.push(...vxlan.changes, ...(await this.vxlan.syncPeers(vxlan.name, served.vxlan.peers)));
      slave = vxlan.name;
    } else if (served.vlan) {
      try {
        const vlan = await this.links.ensureVlan(served.vlan.id, served.vlan.parent, served.network.mtu);
        changes.push(...vlan.changes);
        slave = vlan.name;
      } catch (error) {
        if (!(error instanceof Unavailable)) throw error;
        uplinkMissing = error;
      }
    }
    changes.push(...(await this.links.ensureBridge(bridge, { interface: slave, mtu })));
    if (served.gateway) changes.push(...(await this.links.ensureFirstAddress(bridge, served.gateway.address, served.gateway.prefix)));
    if (served.gatewayV6) changes.push(...(await this.links.ensureAddressV6(bridge, served.gatewayV6.address, served.gatewayV6.prefix)));
    this.built.set(served.network.id, { network: served.network, plugOnly: served.plugOnly });
    if (uplinkMissing && (full || !this.uplinkReported.has(served.network.id))) {
      this.uplinkReported.add(served.network.id);
      throw uplinkMissing;
    }
  }

  /** Undoes what a network left on this host, unless a network still served shares its bridge. */
  async teardown(network: Network, desired: DesiredHost, changes: string[]): Promise<void> {
    if (!network.bridge || desired.servedBridges.has(network.bridge)) {
      this.built.delete(network.id);
      return;
    }
    if (this.plugged(network)) {
      await this.unplug(network, network.bridge, changes);
      this.built.delete(network.id);
      return;
    }
    this.built.delete(network.id);
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
    await this.deleteUplink(network, changes);
  }

  /** The uplinks of the multi_host networks this host builds: DHCP frames stay off them (linux_net/dhcpIsolation.ts). */
  isolatedUplinks(): string[] {
    const uplinks = [...this.built.values()]
      .filter(({ network, plugOnly }) => network.multiHost && !plugOnly)
      .map(({ network }) => this.uplinkOf(network));
    return uplinks.filter((uplink): uplink is string => uplink !== null);
  }

  /**
   * A compute host's bridge of a network whose last instance here left: removed with its
   * uplink, unless a device other than the uplink is still in it (a VM's tap that is
   * still up, a port the operator added), which is reported and left alone.
   */
  private async unplug(network: Network, bridge: string, changes: string[]): Promise<void> {
    const uplink = this.uplinkOf(network);
    const others = (await this.links.ports(bridge)).filter((port) => port !== uplink);
    if (others.length > 0) {
      throw new Conflict(
        `no instance of it is on this host any more, but bridge ${bridge} still has ${others.join(', ')} in it; left in place`,
      );
    }
    if (await this.links.deleteBridge(bridge)) changes.push(`deleted bridge ${bridge}`);
    await this.deleteUplink(network, changes);
  }

  /**
   * At a full reconcile, the networks that moved away or have no instance here any more
   * and that this host built, before this process too: a compute host knows its plugged
   * bridges by name (one `ip` listing, and only when some network could be one).
   */
  async leftHere(notServed: Network[], full: boolean): Promise<Network[]> {
    const maybePlugged = full && notServed.some((network) => !this.built.has(network.id) && this.plugged(network));
    const bridges = maybePlugged ? await this.links.bridgeNames() : undefined;
    return notServed.filter((network) => this.builtHere(network, full, bridges));
  }

  /** The VLAN or VXLAN interface a VLAN-mode network was carried on. */
  private async deleteUplink(network: Network, changes: string[]): Promise<void> {
    if (!this.capabilities.vlan || network.vlan === null) return;
    if (this.config.vlan_transport === 'vxlan') {
      if (await this.vxlan.delete(network.vlan)) changes.push(`deleted vxlan${network.vlan}`);
    } else if (await this.links.deleteVlan(network.vlan)) {
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
