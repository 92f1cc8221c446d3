import type { Network } from '../db/networks.js';
import type { VirtualInterface } from '../db/virtualInterfaces.js';
import { dhcpAddressV6, type Ipv6Backend } from '../ipam/ipv6.js';

/**
 * The host layer's contract with the managers: what a mode asks of the hosts, and the
 * changes the managers report after each write. The managers import only this file of
 * the host layer; the reconciler implements it.
 */

/** What a mode asks of the hosts; the API and the CLI check these too, instead of comparing mode names. */
export interface Capabilities {
  /** dnsmasq serves the network; addresses stay held until the lease is released. */
  dhcp: boolean;
  /** novanet builds the bridge (Flat uses the admin's). */
  createsBridge: boolean;
  /** Networks have a VLAN and belong to one project. */
  vlan: boolean;
}

/** What the managers tell the host layer; the reconciler turns these into kernel work. */
export type HostChange =
  | { kind: 'network-updated'; networkId: number }
  | { kind: 'network-deleted'; network: Network }
  | { kind: 'release-lease'; networkId: number; address: string; mac: string }
  /** One instance's address entering or leaving its network's DHCP hosts (`computeHost`: where the instance runs). */
  | {
      kind: 'dhcp-host';
      networkId: number;
      action: 'add' | 'remove';
      computeHost: string | null;
      entry: DhcpEntry;
    }
  /** A floating IP was associated, moved or disassociated: (un)bind and (re)rule it. */
  | { kind: 'floating-updated'; address: string };

/** A VIF's line in its network's DHCP hosts; `addressV6`: what DHCPv6 hands it (account_identifier). */
export interface DhcpEntry {
  mac: string;
  hostname: string | null;
  address: string;
  addressV6?: string;
}

/** The DHCP entry of a VIF holding fixed IP `address` in `network`. */
export function dhcpEntry(vif: VirtualInterface, address: string, network: Network, ipv6Backend: Ipv6Backend): DhcpEntry {
  const addressV6 = dhcpAddressV6(ipv6Backend, network.cidrV6, vif.address, vif.projectId);
  return { mac: vif.address, hostname: vif.hostname, address, ...(addressV6 ? { addressV6 } : {}) };
}

export interface HostLayer {
  apply(changes: HostChange[]): Promise<void>;
}
