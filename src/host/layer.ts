import type { Network } from '../db/networks.js';

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
      entry: { mac: string; hostname: string | null; address: string };
    }
  /** A floating IP was associated, moved or disassociated: (un)bind and (re)rule it. */
  | { kind: 'floating-updated'; address: string };

export interface HostLayer {
  apply(changes: HostChange[]): Promise<void>;
}
