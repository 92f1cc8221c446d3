/** What callers ask of the managers, with values already typed by the CLI or the API. */

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
  /** The network host of a single-host network (else the first service allowed to be one that uses it). */
  host?: string | undefined;
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
  /** Security group names of the instance's project; none: `default`. */
  securityGroups?: string[] | undefined;
}

export interface ModifyNetworkRequest {
  project?: string | undefined;
  host?: string | undefined;
  disassociateProject?: boolean | undefined;
  disassociateHost?: boolean | undefined;
}

/**
 * Who acts on a floating IP or a security group: a project (sees and touches only its
 * own) or an admin. A wrapped project id, so a project that happens to be named
 * "admin" gets no admin powers.
 */
export type Actor = { projectId: string } | 'admin';
export type FloatingActor = Actor;

export interface AssociateFloatingIpRequest {
  address: string;
  instanceUuid: string;
  /** One of the instance's fixed IPs; default its first. */
  fixedAddress?: string | undefined;
  actor: FloatingActor;
  /** Move an address associated with another fixed IP (else FloatingIpAssociated). */
  allowMove?: boolean | undefined;
}
