import type { Mode } from '../config/options.js';
import type { Capabilities } from '../host/layer.js';
import type { Allocation } from './allocation.js';
import type { FixedIps } from './fixedIps.js';
import type { FloatingIps } from './floating.js';
import type { Hosts } from './hosts.js';
import type { Leases } from './leases.js';
import type { Networks } from './networks.js';
import type { SecurityGroups } from './securityGroups.js';

/**
 * The network manager of the configured mode: one service per concern, the same in
 * every mode; what differs per mode is the policy they were built with (registry.ts).
 */
export interface NetworkManager {
  readonly mode: Mode;
  readonly capabilities: Capabilities;
  /** create, list, get, modify, delete, scrub. */
  readonly networks: Networks;
  /** allocate, deallocate, network_info, instances. */
  readonly allocation: Allocation;
  /** dnsmasq's lease reports and the timed disassociation. */
  readonly leases: Leases;
  /** list, usage, reserve, unreserve. */
  readonly fixedIps: FixedIps;
  /** pools, allocation to projects, association. */
  readonly floating: FloatingIps;
  /** the cluster's services: roles, heartbeats, the network host of a network's first use. */
  readonly hosts: Hosts;
  /** groups, rules, membership of instances, default rules. */
  readonly securityGroups: SecurityGroups;
}
