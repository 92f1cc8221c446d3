import type { Network } from '../../db/networks.js';
import * as networks from '../../db/networks.js';
import { withRetry } from '../../db/retry.js';
import type { Queryable } from '../../db/rows.js';
import { DuplicateVlan, Invalid, NoMoreNetworks } from '../../errors.js';
import { BaseNetworkManager } from '../base.js';
import type { CreateRules, ModeFields } from '../plan.js';
import type { Capabilities, CreateNetworksRequest } from '../types.js';
import { integerField, interfaceName } from '../../fields.js';

/** The highest 802.1Q id usable for a network (4095 is reserved). */
export const MAX_VLAN = 4094;

/**
 * VlanManager: a VLAN, a bridge and a subnet per project; networks are created
 * unowned and handed to a project on its first allocation.
 */
export class VlanManager extends BaseNetworkManager {
  readonly mode = 'vlan';
  readonly capabilities: Capabilities = { dhcp: true, createsBridge: true, vlan: true, floatingIps: true };
  protected get createRules(): CreateRules {
    return { bottomReserved: 3, topReserved: 1 + this.config.cnt_vpn_clients, vpn: true };
  }

  protected async modeFields(request: CreateNetworksRequest, count: number, q: Queryable): Promise<ModeFields> {
    const bridgeInterface = request.bridgeInterface ?? this.config.vlan_interface ?? this.config.flat_interface;
    if (bridgeInterface === undefined) {
      throw new Invalid('VLAN networks need an interface to build VLANs on: give --bridge_interface or set vlan_interface');
    }
    interfaceName(bridgeInterface, 'bridge_interface');
    if (request.vlan !== undefined && count > 1) {
      throw new Invalid(`--vlan names one VLAN; use --vlan_start with num_networks=${count}`);
    }
    if (request.bridge !== undefined && count > 1) {
      throw new Invalid(`--bridge names one bridge; leave it out with num_networks=${count} (bridges are named brVLAN)`);
    }
    const vlanIds = await this.chooseVlans(request, count, q);
    const bridges = vlanIds.map((vlan) => (count === 1 && request.bridge !== undefined ? interfaceName(request.bridge, 'bridge') : `br${vlan}`));
    const existing = await networks.listNetworks(q);
    for (const bridge of bridges) {
      const owner = existing.find((network) => network.bridge === bridge);
      if (owner) throw new DuplicateVlan(`bridge ${bridge} is already used by network ${owner.label} (${owner.cidr})`);
    }
    const ports = await this.chooseVpnPorts(request, count, q);
    return (index) => ({
      vlan: vlanIds[index] ?? null,
      bridge: bridges[index] ?? null,
      bridgeInterface,
      vpnPublicAddress: this.config.vpn_ip,
      vpnPublicPort: ports[index] ?? null,
    });
  }

  /** An explicit --vlan must be free; otherwise the lowest free ids from vlan_start. */
  private async chooseVlans(request: CreateNetworksRequest, count: number, q: Queryable): Promise<number[]> {
    const used = await networks.usedVlans(q);
    if (request.vlan !== undefined) {
      const vlan = integerField(request.vlan, 'vlan', 1, MAX_VLAN);
      if (used.has(vlan)) throw new DuplicateVlan(`VLAN ${vlan} is already used by another network`);
      return [vlan];
    }
    const start = integerField(request.vlanStart ?? this.config.vlan_start, 'vlan_start', 1, MAX_VLAN);
    if (start + count - 1 > MAX_VLAN) {
      throw new Invalid(`vlan_start ${start} + num_networks ${count} goes past VLAN ${MAX_VLAN}`);
    }
    const chosen: number[] = [];
    for (let vlan = start; vlan <= MAX_VLAN && chosen.length < count; vlan++) if (!used.has(vlan)) chosen.push(vlan);
    if (chosen.length < count) {
      throw new DuplicateVlan(`only ${chosen.length} free VLAN id(s) from ${start} to ${MAX_VLAN}; ${count} needed`);
    }
    return chosen;
  }

  /** Cloudpipe ports are unique across the cloud (nova's rule), lowest free from vpn_start. */
  private async chooseVpnPorts(request: CreateNetworksRequest, count: number, q: Queryable): Promise<number[]> {
    const start = integerField(request.vpnStart ?? this.config.vpn_start, 'vpn', 1, 65535);
    const used = await networks.usedVpnPorts(q);
    const chosen: number[] = [];
    for (let port = start; port <= 65535 && chosen.length < count; port++) if (!used.has(port)) chosen.push(port);
    if (chosen.length < count) throw new Invalid(`only ${chosen.length} free VPN port(s) from ${start}; ${count} needed`);
    return chosen;
  }

  /** The project's networks, claiming a free one on first use (nova's network_associate). */
  protected async defaultNetworks(q: Queryable, projectId: string): Promise<Network[]> {
    const owned = await networks.listNetworks(q, { projectId });
    if (owned.length > 0) return owned;
    const claimed = await withRetry(() => this.transaction((trx) => networks.claimNetworkForProject(trx, projectId, this.now())));
    if (claimed.length === 0) throw new NoMoreNetworks(`no unassociated network is left for project ${projectId}; create more with novanet-manage network create`);
    return claimed;
  }

  protected mayUse(network: Network, projectId: string): boolean {
    return network.projectId === projectId;
  }
}
