import type { FixedIp } from '../db/fixedIps.js';
import type { Network } from '../db/networks.js';
import { tapName, type VirtualInterface } from '../db/virtualInterfaces.js';
import type { Capabilities } from '../host/layer.js';
import { netmaskText, parseCidr } from '../ipam/cidr.js';
import { type Ipv6Backend, vifAddressV6 } from '../ipam/ipv6.js';
import type { IpModel, SubnetModel, VifModel } from './views.js';

function ip(address: string, type: IpModel['type'], version: 4 | 6): IpModel {
  return { address, type, version, meta: {} };
}

/**
 * nova's network_info for one instance: a VIF per VIF row, IPv4 subnet first (each
 * fixed IP with its floating IPs), then IPv6 (the VIF's address by `ipv6_backend`) when
 * the network has one.
 */
export interface NetworkInfoParts {
  vifs: VirtualInterface[];
  networks: Network[];
  fixedIps: FixedIp[];
  /** Floating addresses by fixed IP id. */
  floatingOf: Map<number, string[]>;
  /** multi_host: the instance's host's own address, by network id (its gateway and DHCP server). */
  hostAddressOf: Map<number, string>;
}

export function buildNetworkInfo(parts: NetworkInfoParts, capabilities: Capabilities, ipv6Backend: Ipv6Backend): VifModel[] {
  const { fixedIps, floatingOf } = parts;
  const networks = new Map(parts.networks.map((network) => [network.id, network]));
  return parts.vifs.map((vif) => {
    const network = networks.get(vif.networkId);
    if (!network) throw new Error(`VIF ${vif.uuid} refers to missing network ${vif.networkId}`);
    const subnets: SubnetModel[] = [];
    const hostAddress = network.multiHost ? parts.hostAddressOf.get(network.id) : undefined;
    const dhcpServer = hostAddress ?? network.dhcpServer;
    const dns = [network.dns1, network.dns2].filter((entry): entry is string => entry !== null);
    if (network.cidr) {
      subnets.push({
        cidr: network.cidr,
        version: 4,
        gateway: hostAddress ? ip(hostAddress, 'gateway', 4) : network.gateway ? ip(network.gateway, 'gateway', 4) : null,
        dns: dns.filter((entry) => !entry.includes(':')).map((entry) => ip(entry, 'dns', 4)),
        ips: fixedIps
          .filter((fixed) => fixed.virtualInterfaceId === vif.id)
          .map((fixed) => ({
            ...ip(fixed.address, 'fixed', 4),
            floating_ips: (floatingOf.get(fixed.id) ?? []).map((address) => ip(address, 'floating', 4)),
          })),
        routes: [],
        meta: capabilities.dhcp && dhcpServer ? { dhcp_server: dhcpServer } : {},
      });
    }
    if (network.cidrV6) {
      subnets.push({
        cidr: network.cidrV6,
        version: 6,
        gateway: network.gatewayV6 ? ip(network.gatewayV6, 'gateway', 6) : null,
        dns: dns.filter((entry) => entry.includes(':')).map((entry) => ip(entry, 'dns', 6)),
        ips: [ip(vifAddressV6(ipv6Backend, network.cidrV6, vif.address, vif.projectId), 'fixed', 6)],
        routes: [],
        meta: {},
      });
    }
    return {
      id: vif.uuid,
      address: vif.address,
      type: 'bridge',
      devname: tapName(vif.uuid),
      network: {
        id: network.uuid,
        bridge: network.bridge,
        label: network.label,
        subnets,
        meta: {
          tenant_id: network.projectId,
          injected: network.injected,
          multi_host: network.multiHost,
          should_create_bridge: capabilities.createsBridge,
          should_create_vlan: capabilities.vlan,
          bridge_interface: network.bridgeInterface,
          vlan: network.vlan,
          mtu: network.mtu,
        },
      },
      // The host the VIF is plugged on: its service builds the bridge there and plugs devname.
      meta: { host: vif.host },
    };
  });
}

/**
 * The Debian /etc/network/interfaces text nova injected into flat_injected images:
 * one static stanza per VIF, in VIF order (eth0, eth1, ...).
 */
export function injectedInterfaces(info: VifModel[]): string {
  const lines = ['# Injected by novanet', '', 'auto lo', 'iface lo inet loopback'];
  info.forEach((vif, index) => {
    const subnet = vif.network.subnets.find((entry) => entry.version === 4);
    const fixed = subnet?.ips[0];
    if (!subnet || !fixed) return;
    const netmask = netmaskText(parseCidr(subnet.cidr, 'cidr'));
    lines.push('', `auto eth${index}`, `iface eth${index} inet static`, `    hwaddress ether ${vif.address}`);
    lines.push(`    address ${fixed.address}`, `    netmask ${netmask}`);
    if (subnet.gateway) lines.push(`    gateway ${subnet.gateway.address}`);
    if (subnet.dns.length > 0) lines.push(`    dns-nameservers ${subnet.dns.map((entry) => entry.address).join(' ')}`);
  });
  return `${lines.join('\n')}\n`;
}
