import type { SecurityGroup, SecurityGroupRule } from '../db/securityGroups.js';

/** What the managers answer: nova's network_info model and the listings the CLI and the API show. */

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
  /** GET os-novanet/instances/{uuid} only: whether the VIF's host has built its network's bridge. */
  active?: boolean;
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
  /** The instance's security groups, as Nova's server view names them. */
  security_groups: { name: string }[];
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

/** What one `floating create` made: the pool and interface are the defaults' results when not given. */
export interface FloatingRangeCreated {
  count: number;
  pool: string;
  /** null: bound on `public_interface`, whatever it is when the address is bound. */
  interface: string | null;
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

/** A security group with its rules. */
export interface SecurityGroupView {
  group: SecurityGroup;
  rules: SecurityGroupRuleView[];
}

/** A rule, with the name and project of its source group when it has one. */
export interface SecurityGroupRuleView {
  rule: SecurityGroupRule;
  source: { name: string; projectId: string } | null;
}

/** A group with its member instances and the hosts their ports are on. */
export interface SecurityGroupMembers extends SecurityGroupView {
  members: { instanceUuid: string; hosts: string[] }[];
}
