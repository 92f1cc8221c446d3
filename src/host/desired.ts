import type { Config } from '../config/options.js';
import * as fixedIps from '../db/fixedIps.js';
import * as hosts from '../db/hosts.js';
import type { Network } from '../db/networks.js';
import * as networks from '../db/networks.js';
import type { Queryable } from '../db/rows.js';
import type { HostPort } from '../db/virtualInterfaces.js';
import * as vifs from '../db/virtualInterfaces.js';
import { cidrSize, parseCidr } from '../ipam/cidr.js';
import { type Ipv6Backend, vifAddressV6 } from '../ipam/ipv6.js';
import type { DhcpHost, DhcpNetwork } from '../linux_net/dnsmasq/index.js';
import type { FirewallState, RuledNetwork } from '../linux_net/firewall/state.js';
import type { GuardedPort } from '../linux_net/portGuard.js';
import { type Capabilities, dhcpEntry } from './layer.js';

/**
 * One network this host builds: bridge, gateway address, dnsmasq and its hosts; or, on
 * a compute host of a single-host network served elsewhere, the bridge and its uplink
 * only (`plugOnly`), for the host's VMs to be plugged into.
 */
export interface ServedNetwork {
  network: Network;
  plugOnly: boolean;
  /** VLAN mode: the 802.1Q interface to build on its parent and put into the bridge. */
  vlan: { id: number; parent: string } | undefined;
  /** VLAN mode over VXLAN (vlan_transport): the VXLAN interface instead, flooding to every other host that holds the network. */
  vxlan: { id: number; local: string; dev: string; port: number; group: string | undefined; peers: string[] } | undefined;
  /** The interface to enslave to the bridge (flat_interface; none in VLAN mode). */
  bridgeInterface: string | null;
  /** The host's address on the bridge (none when plugOnly). */
  gateway: { address: string; prefix: number } | undefined;
  /** The network's IPv6 gateway on the bridge, when it has a /64 (none when plugOnly). */
  gatewayV6: { address: string; prefix: number } | undefined;
  dhcp: DhcpNetwork | undefined;
  hosts: DhcpHost[];
  /** The taps of this host's instances in the network, put into its bridge when they appear. */
  taps: string[];
}

export interface DesiredHost {
  /** The networks to build now (all, or those asked for). */
  networks: ServedNetwork[];
  /** Every network this host serves or plugs: its bridges must not be torn down. */
  servedBridges: Set<string>;
  /** Live networks with a bridge that this host does not serve (another's, or no one's yet). */
  notServed: Network[];
  /** Networks this host cannot serve as asked, with the reason. */
  refused: { network: Network; reason: string }[];
  /** Networks built without their uplink (its interface is another bridge's), with the reason. */
  withoutUplink: { network: Network; reason: string }[];
  firewall: FirewallState;
  /** Every port of this host's instances in the networks it builds, with what it may send (anti_spoofing). */
  guardedPorts: GuardedPort[];
}

/**
 * Whether this host builds `network`: the network host of a single-host network. A
 * network nobody has used yet has no host and is not built anywhere.
 */
export function servedHere(network: Network, config: Config): boolean {
  return !network.multiHost && network.host === config.host;
}

/**
 * Whether this host plugs `network` only: a single-host network served by another
 * host, with an instance of this host in it (nova-compute's plug_bridge).
 */
function plugsHere(network: Network, config: Config, local: Set<number>): boolean {
  return !network.multiHost && !servedHere(network, config) && local.has(network.id);
}

/** This host's share of the database, as the kernel should reflect it. */
export async function loadDesired(q: Queryable, config: Config, capabilities: Capabilities, only?: number[]): Promise<DesiredHost> {
  const all = capabilities.createsBridge ? await networks.listNetworks(q) : [];
  // multi_host: every compute host with instances in the network builds it, with its
  // own address there (taken at its first allocation) as gateway and DHCP server.
  const hostAddresses = await fixedIps.listHostAddresses(
    q,
    all.filter((network) => network.multiHost).map((network) => network.id),
  );
  const ownAddress = (network: Network) => (network.multiHost ? hostAddresses.get(network.id)?.get(config.host) : undefined);
  // This host's instances: the networks it plugs, and their taps (one read by host).
  const ports = capabilities.createsBridge ? await vifs.hostPorts(q, config.host) : [];
  const tapsOf = new Map<number, string[]>();
  for (const port of ports) tapsOf.set(port.networkId, [...(tapsOf.get(port.networkId) ?? []), port.tap]);
  const local = new Set(tapsOf.keys());
  const plugged = new Set(all.filter((network) => plugsHere(network, config, local)).map((network) => network.id));
  const candidates = all.filter(
    (network) =>
      (servedHere(network, config) || ownAddress(network) !== undefined || plugged.has(network.id)) && network.cidr && network.bridge,
  );
  // One dnsmasq and one first address per bridge: a second network on the same bridge
  // would make them flap between the two, so only the oldest is built.
  const refused: DesiredHost['refused'] = [];
  const owners = new Map<string, Network>();
  const served = candidates.filter((network) => {
    const owner = owners.get(network.bridge!);
    if (!owner) {
      owners.set(network.bridge!, network);
      return true;
    }
    refused.push({
      network,
      reason: `shares bridge ${network.bridge} with network ${owner.label} (${owner.cidr}); give each network its own --bridge (and, in the flat modes, its own --bridge_interface)`,
    });
    return false;
  });
  // An interface is the uplink of one bridge: the oldest network's. Handing it to a
  // second bridge would move it back and forth at every reconcile.
  const withoutUplink: DesiredHost['withoutUplink'] = [];
  const uplinkOwners = new Map<string, Network>();
  for (const network of served) {
    const uplink = flatUplink(network, config, capabilities);
    if (uplink === null) continue;
    const owner = uplinkOwners.get(uplink);
    if (!owner) uplinkOwners.set(uplink, network);
    else {
      withoutUplink.push({
        network,
        reason: `${uplink} is already the uplink of bridge ${owner.bridge} (network ${owner.label}, ${owner.cidr}); give this network its own --bridge_interface`,
      });
    }
  }
  const uplinkless = new Set(withoutUplink.map((entry) => entry.network.id));
  const wanted = only === undefined ? served : served.filter((network) => only.includes(network.id));
  // DHCP hosts only where this host runs the network's dnsmasq.
  const ids = wanted.filter((network) => !plugged.has(network.id)).map((network) => network.id);
  const interfaces = ids.length === 0 ? [] : await vifs.listVirtualInterfaces(q, { networkIds: ids });
  const addresses = ids.length === 0 ? [] : await fixedIps.listFixedIps(q, { networkIds: ids, associated: true });
  const vifById = new Map(interfaces.map((vif) => [vif.id, vif]));
  const multiHostIds = new Set(wanted.filter((network) => network.multiHost).map((network) => network.id));
  const networkById = new Map(wanted.map((network) => [network.id, network]));
  const hostsOf = new Map<number, DhcpHost[]>();
  for (const fixed of addresses) {
    const vif = fixed.virtualInterfaceId === null ? undefined : vifById.get(fixed.virtualInterfaceId);
    // multi_host: this host's dnsmasq serves this host's instances only.
    if (!vif || !fixed.allocated || (multiHostIds.has(fixed.networkId) && vif.host !== config.host)) continue;
    const list = hostsOf.get(fixed.networkId) ?? [];
    list.push(dhcpEntry(vif, fixed.address, networkById.get(fixed.networkId)!, config.ipv6_backend));
    hostsOf.set(fixed.networkId, list);
  }
  const peersOf = await vxlanPeers(q, config, capabilities, wanted);
  return {
    networks: wanted.map((network) => {
      const peers = peersOf.get(network.id) ?? [];
      const built = plugged.has(network.id)
        ? plugOnly(network, config, capabilities, peers)
        : describe(network, config, capabilities, hostsOf.get(network.id) ?? [], ownAddress(network), peers);
      const withTaps = { ...built, taps: tapsOf.get(network.id) ?? [] };
      return uplinkless.has(network.id) ? { ...withTaps, bridgeInterface: null } : withTaps;
    }),
    servedBridges: new Set(served.map((network) => network.bridge!)),
    notServed: all.filter((network) => network.bridge !== null && !served.includes(network)),
    refused: only === undefined ? refused : refused.filter((entry) => only.includes(entry.network.id)),
    withoutUplink: only === undefined ? withoutUplink : withoutUplink.filter((entry) => only.includes(entry.network.id)),
    // A plugged bridge carries no address of the host's: nothing to route or NAT here.
    firewall: firewallState(
      served.filter((network) => !plugged.has(network.id)),
      config,
      capabilities,
      ownAddress,
    ),
    guardedPorts: config.anti_spoofing ? guarded(ports, served, config.ipv6_backend) : [],
  };
}

/** The ports in networks this host builds, each with its MAC and addresses (IPv6: the VIF's, by ipv6_backend). */
function guarded(ports: HostPort[], served: Network[], backend: Ipv6Backend): GuardedPort[] {
  const byId = new Map(served.map((network) => [network.id, network]));
  return ports.flatMap((port) => {
    const network = byId.get(port.networkId);
    if (!network) return [];
    const ipv6 = hasV6(network) ? [vifAddressV6(backend, network.cidrV6!, port.mac, port.projectId)] : [];
    return [{ tap: port.tap, mac: port.mac, ipv4: port.addresses, ipv6 }];
  });
}

/** The interface enslaved to the bridge in the flat modes (VLAN mode builds a vlanNNN instead). */
function flatUplink(network: Network, config: Config, capabilities: Capabilities): string | null {
  return capabilities.vlan ? null : (network.bridgeInterface ?? config.flat_interface ?? null);
}

/** The host's address on the bridge: its own in a multi_host network, else the network's DHCP server. */
function bridgeAddress(network: Network, ownAddress: string | undefined): string {
  return ownAddress ?? network.dhcpServer ?? network.gateway!;
}

/** The interface a VLAN-mode network is carried on: an 802.1Q one, or a VXLAN one to `peers`. */
function uplinkOf(network: Network, config: Config, capabilities: Capabilities, peers: string[]): Pick<ServedNetwork, 'vlan' | 'vxlan'> {
  const parent = network.bridgeInterface ?? config.vlan_interface ?? config.flat_interface ?? null;
  if (!capabilities.vlan || network.vlan === null || parent === null) return { vlan: undefined, vxlan: undefined };
  if (config.vlan_transport === 'vxlan') {
    const group = config.vxlan_group;
    // With a multicast group, the group is the one flood entry (the kernel's own).
    const vxlan = {
      id: network.vlan,
      local: config.tunnel_ip,
      dev: parent,
      port: config.vxlan_port,
      group,
      peers: group ? [group] : peers,
    };
    return { vlan: undefined, vxlan };
  }
  return { vlan: { id: network.vlan, parent }, vxlan: undefined };
}

/**
 * VXLAN only: per network, the tunnel addresses of the other hosts that hold it (its
 * network host, and every host with an instance in it), from the hosts table.
 */
async function vxlanPeers(q: Queryable, config: Config, capabilities: Capabilities, wanted: Network[]): Promise<Map<number, string[]>> {
  const peers = new Map<number, string[]>();
  if (!capabilities.vlan || config.vlan_transport !== 'vxlan' || config.vxlan_group || wanted.length === 0) return peers;
  const tunnels = new Map((await hosts.listHosts(q)).map((host) => [host.name, host.tunnelIp]));
  const holders = await vifs.networkHosts(
    q,
    wanted.map((network) => network.id),
  );
  for (const network of wanted) {
    const names = new Set([...(holders.get(network.id) ?? []), ...(network.multiHost || network.host === null ? [] : [network.host])]);
    names.delete(config.host);
    const addresses = [...names].flatMap((name) => {
      const address = tunnels.get(name);
      return address ? [address] : [];
    });
    peers.set(network.id, [...new Set(addresses)].sort());
  }
  return peers;
}

/** A compute host's share of a network served elsewhere: bridge and uplink, nothing else. */
function plugOnly(network: Network, config: Config, capabilities: Capabilities, peers: string[]): ServedNetwork {
  return {
    network,
    plugOnly: true,
    ...uplinkOf(network, config, capabilities, peers),
    bridgeInterface: flatUplink(network, config, capabilities),
    gateway: undefined,
    gatewayV6: undefined,
    dhcp: undefined,
    hosts: [],
    taps: [],
  };
}

function describe(
  network: Network,
  config: Config,
  capabilities: Capabilities,
  hosts: DhcpHost[],
  ownAddress: string | undefined,
  peers: string[],
): ServedNetwork {
  const cidr = parseCidr(network.cidr!, 'cidr');
  const dhcpServer = bridgeAddress(network, ownAddress);
  return {
    network,
    plugOnly: false,
    ...uplinkOf(network, config, capabilities, peers),
    bridgeInterface: flatUplink(network, config, capabilities),
    gateway: { address: dhcpServer, prefix: cidr.prefix },
    gatewayV6: hasV6(network) ? { address: network.gatewayV6!, prefix: parseCidr(network.cidrV6!, 'cidr_v6').prefix } : undefined,
    dhcp:
      capabilities.dhcp && network.enableDhcp
        ? {
            id: network.id,
            bridge: network.bridge!,
            dhcpServer,
            dhcpStart: network.dhcpStart!,
            netmask: network.netmask!,
            // multi_host: each host routes its own instances.
            gateway: ownAddress ?? network.gateway,
            size: Number(cidrSize(cidr)),
            mtu: network.mtu,
            dns: [network.dns1, network.dns2].filter((entry): entry is string => entry !== null),
            ipv6: hasV6(network) ? (config.ipv6_backend === 'account_identifier' ? 'dhcpv6' : 'slaac') : undefined,
          }
        : undefined,
    hosts,
    taps: [],
  };
}

/** The network has an IPv6 /64 and a gateway in it: served on IPv6 here too. */
function hasV6(network: Network): boolean {
  return network.cidrV6 !== null && network.gatewayV6 !== null;
}

/** The rules cover every network this host serves, whichever subset is being applied. */
function firewallState(
  served: Network[],
  config: Config,
  capabilities: Capabilities,
  ownAddress: (network: Network) => string | undefined,
): FirewallState {
  const ruled: RuledNetwork[] = served.map((network) => ({
    cidr: network.cidr!,
    bridge: network.bridge!,
    gateway: bridgeAddress(network, ownAddress(network)),
    dhcp: capabilities.dhcp && network.enableDhcp,
    isolated: capabilities.vlan,
    v6: hasV6(network),
    vpn:
      capabilities.vlan && network.vpnPublicAddress && network.vpnPublicPort && network.vpnPrivateAddress
        ? { publicAddress: network.vpnPublicAddress, publicPort: network.vpnPublicPort, privateAddress: network.vpnPrivateAddress }
        : undefined,
  }));
  return {
    publicInterface: config.public_interface,
    routingSourceIp: config.routing_source_ip,
    metadataHost: config.metadata_host,
    metadataPort: config.metadata_port,
    dmzCidrs: config.dmz_cidr,
    networks: ruled,
    floating: [],
  };
}
