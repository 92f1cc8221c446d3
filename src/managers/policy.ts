import type { Config, Mode } from '../config/options.js';
import type { Network, NewNetwork } from '../db/networks.js';
import type { Queryable } from '../db/rows.js';
import type { Capabilities } from '../host/layer.js';
import type { CreateNetworksRequest } from './requests.js';

/** What differs between modes when a network is created. */
export interface CreateRules {
  /** Addresses kept at the bottom: network and gateway, plus the VPN address in VLAN mode. */
  bottomReserved: number;
  /** Addresses kept at the top: broadcast, plus VPN clients in VLAN mode. */
  topReserved: number;
  /** Whether the gateway-side address after dhcp_server is the cloudpipe VPN address. */
  vpn: boolean;
}

/** Mode fields (bridge, VLAN, VPN port) of the index-th new network. */
export type ModeFields = (index: number) => Partial<NewNetwork>;

/** What a policy may use of the manager it serves. */
export interface PolicyContext {
  config: Config;
  now(): Date;
  transaction<T>(work: (trx: Queryable) => Promise<T>): Promise<T>;
}

/**
 * Everything that differs between flat, flatdhcp and vlan, as one value per mode
 * (registry.ts): what the mode asks of the hosts, how its networks are created, and
 * which networks an instance of a project gets. The services hold all the rest, once.
 */
export interface ModePolicy {
  readonly mode: Mode;
  readonly capabilities: Capabilities;
  createRules(config: Config): CreateRules;
  /** Mode fields of new networks (bridge, VLAN, VPN); may read the database. */
  modeFields(context: PolicyContext, request: CreateNetworksRequest, count: number, q: Queryable): Promise<ModeFields>;
  /** The networks an instance gets when it names none. */
  defaultNetworks(context: PolicyContext, q: Queryable, projectId: string): Promise<Network[]>;
  /** Whether `projectId` may put an instance on `network`. */
  mayUse(network: Network, projectId: string): boolean;
}
