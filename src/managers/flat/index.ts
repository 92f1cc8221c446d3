import type { Network } from '../../db/networks.js';
import * as networks from '../../db/networks.js';
import type { Queryable } from '../../db/rows.js';
import { interfaceName } from '../../fields.js';
import { Invalid } from '../../errors.js';
import { BaseNetworkManager } from '../base.js';
import type { CreateRules, ModeFields } from '../plan.js';
import type { Capabilities, CreateNetworksRequest } from '../types.js';

/** Flat networks share the bridges and are open to every project that they do not exclude. */
export const FLAT_CREATE_RULES: CreateRules = { bottomReserved: 2, topReserved: 1, vpn: false };

/**
 * FlatManager: the admin's pre-built bridge, addresses injected (no DHCP, no rules).
 * Also the parent of FlatDHCP, which differs only in DHCP and in building the bridge.
 */
export class FlatManager extends BaseNetworkManager {
  readonly mode: 'flat' | 'flatdhcp' = 'flat';
  readonly capabilities: Capabilities = { dhcp: false, createsBridge: false, vlan: false, floatingIps: true };
  protected readonly createRules = FLAT_CREATE_RULES;

  protected async modeFields(request: CreateNetworksRequest): Promise<ModeFields> {
    for (const [option, given] of [['--vlan', request.vlan], ['--vlan_start', request.vlanStart], ['--vpn', request.vpnStart]] as const) {
      if (given !== undefined) throw new Invalid(`${option} applies to VLAN mode only; this service runs network_manager=${this.mode}`);
    }
    const bridge = interfaceName(request.bridge ?? this.config.flat_network_bridge, 'bridge');
    const bridgeInterface = request.bridgeInterface ?? this.config.flat_interface;
    const fields = {
      bridge,
      bridgeInterface: bridgeInterface === undefined ? null : interfaceName(bridgeInterface, 'bridge_interface'),
      dns1: request.dns1 === undefined ? this.config.flat_network_dns : undefined,
    };
    return () => Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
  }

  protected defaultNetworks(q: Queryable, projectId: string): Promise<Network[]> {
    return networks.listNetworks(q, { visibleTo: projectId });
  }

  protected mayUse(network: Network, projectId: string): boolean {
    return network.projectId === null || network.projectId === projectId;
  }
}
