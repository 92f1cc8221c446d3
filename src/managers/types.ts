import type { Mode } from '../config/options.js';
import type { FixedIp, NetworkUsage } from '../db/fixedIps.js';
import type { Network } from '../db/networks.js';

/** What a mode can do; the API and CLI check these instead of comparing mode names. */
export interface Capabilities {
  /** dnsmasq serves the network; addresses stay held until the lease is released. */
  dhcp: boolean;
  /** novanet builds the bridge (Flat uses the admin's). */
  createsBridge: boolean;
  /** Networks have a VLAN and belong to one project. */
  vlan: boolean;
  floatingIps: boolean;
}

/** `network create`, as nova-manage took it; values are already typed by the caller. */
export interface CreateNetworksRequest {
  label: string;
  fixedRangeV4?: string | undefined;
  numNetworks?: number | undefined;
  networkSize?: number | undefined;
  vlan?: number | undefined;
  vlanStart?: number | undefined;
  vpnStart?: number | undefined;
  fixedRangeV6?: string | undefined;
  gateway?: string | undefined;
  gatewayV6?: string | undefined;
  bridge?: string | undefined;
  bridgeInterface?: string | undefined;
  multiHost?: boolean | undefined;
  dns1?: string | undefined;
  dns2?: string | undefined;
  uuid?: string | undefined;
  fixedCidr?: string | undefined;
  projectId?: string | undefined;
  priority?: number | undefined;
  mtu?: number | undefined;
  dhcpServer?: string | undefined;
  enableDhcp?: boolean | undefined;
  shareAddress?: boolean | undefined;
  /** Called as rows are written (bulk insert of fixed IPs), for progress on a terminal. */
  onProgress?: ((written: number, total: number) => void) | undefined;
}

export type NetworkSelector = { uuid: string } | { cidr: string } | { id: number };

export interface RequestedNetwork {
  networkUuid: string;
  /** A specific fixed IP in that network. */
  address?: string | undefined;
}

export interface AllocateRequest {
  instanceUuid: string;
  projectId: string;
  /** The compute host of the instance. */
  host: string;
  hostname?: string | undefined;
  requestedNetworks?: RequestedNetwork[] | undefined;
}

export interface ModifyNetworkRequest {
  project?: string | undefined;
  host?: string | undefined;
  disassociateProject?: boolean | undefined;
  disassociateHost?: boolean | undefined;
}

/** nova's network_info model: a list of VIFs, each with its network, subnets and IPs. */
export interface VifModel {
  id: string;
  address: string;
  type: 'bridge';
  devname: string;
  network: {
    id: string;
    bridge: string | null;
    label: string;
    subnets: SubnetModel[];
    meta: {
      tenant_id: string | null;
      injected: boolean;
      multi_host: boolean;
      should_create_bridge: boolean;
      should_create_vlan: boolean;
      bridge_interface: string | null;
      vlan: number | null;
      mtu: number | null;
    };
  };
  meta: Record<string, unknown>;
}

export interface IpModel {
  address: string;
  type: 'fixed' | 'floating' | 'gateway' | 'dns';
  version: 4 | 6;
  meta: Record<string, unknown>;
  floating_ips?: IpModel[];
}

export interface SubnetModel {
  cidr: string;
  version: 4 | 6;
  gateway: IpModel | null;
  dns: IpModel[];
  ips: IpModel[];
  routes: unknown[];
  meta: { dhcp_server?: string };
}

export interface InstanceNetworkInfo {
  instance_uuid: string;
  /** The project the instance was allocated for (null when it has no VIF). */
  project_id: string | null;
  network_info: VifModel[];
  /** With flat_injected: the Debian /etc/network/interfaces the image should get. */
  injected_config?: string;
}

/** A DHCP lease as dnsmasq's lease file has it. */
export interface Lease {
  expiresAt: Date;
  mac: string;
  address: string;
  hostname: string | null;
}

/** One row of `fixed list`. */
export interface FixedIpListing {
  network: string;
  address: string;
  hostname: string | null;
  host: string | null;
  instanceUuid: string | null;
  reserved: boolean;
  allocated: boolean;
  leased: boolean;
}

/** One floating IP as `floating list` and the API show it. */
export interface FloatingIpListing {
  /** The database id: Nova's API names floating IPs by it. */
  id: number;
  address: string;
  projectId: string | null;
  pool: string;
  interface: string | null;
  instanceUuid: string | null;
  fixedAddress: string | null;
  /** Where the address is bound (null while unassociated). */
  host: string | null;
  autoAssigned: boolean;
}

/**
 * Who acts on a floating IP: a project (sees and touches only its own addresses) or an
 * admin. A wrapped project id, so a project that happens to be named "admin" gets no
 * admin powers.
 */
export type FloatingActor = { projectId: string } | 'admin';

/** What one `floating create` made: the pool and interface are the defaults' results when not given. */
export interface FloatingRangeCreated {
  count: number;
  pool: string;
  /** null: bound on `public_interface`, whatever it is when the address is bound. */
  interface: string | null;
}

export interface AssociateFloatingIpRequest {
  address: string;
  instanceUuid: string;
  /** One of the instance's fixed IPs; default its first. */
  fixedAddress?: string | undefined;
  actor: FloatingActor;
  /** Move an address associated with another fixed IP (else FloatingIpAssociated). */
  allowMove?: boolean | undefined;
}

/** An instance as its VIFs describe it (novanet keeps no instances table). */
export interface InstanceListing {
  uuid: string;
  projectId: string | null;
  /** The hostname given at allocation, if any. */
  hostname: string | null;
  /** The compute host it was allocated on. */
  host: string | null;
  /** Fixed addresses VIF by VIF (IPv4, then the IPv6 SLAAC address), each followed by its floating IPs. */
  addresses: InstanceAddress[];
}

export interface InstanceAddress {
  networkLabel: string;
  address: string;
  version: 4 | 6;
  type: 'fixed' | 'floating';
  /** The MAC of the VIF the address reaches the instance through. */
  mac: string;
}

/** The operations every mode offers; each mode differs only in a few hooks of the base. */
export interface NetworkManager {
  readonly mode: Mode;
  readonly capabilities: Capabilities;

  createNetworks(request: CreateNetworksRequest): Promise<Network[]>;
  /** `projectId`: owned by that project; `visibleTo`: owned by it or by none (what a project may see). */
  listNetworks(filter?: { projectId?: string; visibleTo?: string }): Promise<Network[]>;
  getNetwork(selector: NetworkSelector): Promise<Network>;
  deleteNetwork(selector: NetworkSelector): Promise<Network>;
  modifyNetwork(selector: NetworkSelector, request: ModifyNetworkRequest): Promise<Network>;
  scrubProject(projectId: string): Promise<Network[]>;

  allocateForInstance(request: AllocateRequest): Promise<InstanceNetworkInfo>;
  /**
   * Frees the instance's networking and returns its project (undefined: it had none).
   * With `onlyProject`, another project's instance is left as it is (its project is
   * still returned, for the caller's refusal).
   */
  deallocateForInstance(instanceUuid: string, options?: { onlyProject?: string }): Promise<{ projectId: string | null } | undefined>;
  getInstanceNwInfo(instanceUuid: string): Promise<InstanceNetworkInfo>;
  /** Instances that have networking, oldest first; `projectId` or `instanceUuid` narrow it. */
  listInstances(filter?: { projectId?: string; instanceUuid?: string }): Promise<InstanceListing[]>;

  /** dnsmasq's script reports a lease (`add`/`old`). */
  leaseFixedIp(address: string, mac?: string): Promise<void>;
  /** dnsmasq's script reports a lease gone (`del`). */
  releaseFixedIp(address: string, mac?: string): Promise<void>;
  /** The network's current leases, for dnsmasq's `init` (the DB is the lease store). */
  listLeases(networkId: number): Promise<Lease[]>;
  /** Periodic: addresses whose release never came are freed after the timeout. */
  disassociateStaleFixedIps(): Promise<number>;

  listFixedIps(filter?: { host?: string }): Promise<FixedIpListing[]>;
  /** Per live network: addresses in all, reserved, held by instances, leased. */
  usage(): Promise<{ network: Network; usage: NetworkUsage }[]>;
  /** One fixed IP as `fixed list` shows it; FixedIpNotFound when no network has it. */
  getFixedIp(address: string): Promise<FixedIpListing>;
  reserveFixedIp(address: string): Promise<FixedIp>;
  unreserveFixedIp(address: string): Promise<FixedIp>;

  /** `floating create`: a CIDR (network and broadcast skipped) or one address. */
  createFloatingRange(ipRange: string, pool?: string, iface?: string): Promise<FloatingRangeCreated>;
  /** `floating delete`: refused while any address of the range is allocated; returns the count. */
  deleteFloatingRange(ipRange: string): Promise<number>;
  listFloatingIps(filter?: { host?: string; projectId?: string }): Promise<FloatingIpListing[]>;
  listFloatingPools(): Promise<string[]>;
  /** One address the actor may see, by database id (digits) or by address; else FloatingIpNotFound. */
  getFloatingIp(idOrAddress: string, actor: FloatingActor): Promise<FloatingIpListing>;
  allocateFloatingIp(projectId: string, pool?: string): Promise<FloatingIpListing>;
  /** `disassociate`: an associated address is disassociated first, in the same transaction (Nova's DELETE). */
  releaseFloatingIp(address: string, actor: FloatingActor, options?: { disassociate?: boolean }): Promise<void>;
  associateFloatingIp(request: AssociateFloatingIpRequest): Promise<FloatingIpListing>;
  /** `instanceUuid`: only if associated with that instance, else Conflict (Nova's removeFloatingIp). */
  disassociateFloatingIp(address: string, actor: FloatingActor, options?: { instanceUuid?: string }): Promise<FloatingIpListing>;
}

/** What the managers tell the host layer; the reconciler turns these into kernel work. */
export type HostChange =
  | { kind: 'network-updated'; networkId: number }
  | { kind: 'network-deleted'; network: Network }
  | { kind: 'release-lease'; networkId: number; address: string; mac: string }
  /** One instance's address entering or leaving its network's DHCP hosts (`computeHost`: where the instance runs). */
  | { kind: 'dhcp-host'; networkId: number; action: 'add' | 'remove'; computeHost: string | null; entry: { mac: string; hostname: string | null; address: string } }
  /** A floating IP was associated, moved or disassociated: (un)bind and (re)rule it. */
  | { kind: 'floating-updated'; address: string };

export interface HostLayer {
  apply(changes: HostChange[]): Promise<void>;
}
