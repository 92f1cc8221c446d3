import type { Config } from '../../config/options.js';
import * as networks from '../../db/networks.js';
import { withRetry } from '../../db/retry.js';
import type { Queryable } from '../../db/rows.js';
import { DuplicateVlan, Invalid, NoMoreNetworks } from '../../errors.js';
import { integerField, interfaceName } from '../../fields.js';
import type { ModePolicy } from '../policy.js';
import type { CreateNetworksRequest } from '../requests.js';

/** The highest 802.1Q id usable for a network (4095 is reserved). */
export const MAX_VLAN = 4094;

/**
 * VlanManager: a VLAN, a bridge and a subnet per project; networks are created
 * unowned and handed to a project on its first allocation.
 */
export const VLAN: ModePolicy = {
  mode: 'vlan',
  capabilities: { dhcp: true, createsBridge: true, vlan: true },
  // Below: network, gateway and the cloudpipe VPN address; above: broadcast and the VPN clients.
  createRules: (config) => ({ bottomReserved: 3, topReserved: 1 + config.cnt_vpn_clients, vpn: true }),

  async modeFields({ config }, request, count, q) {
    const bridgeInterface = request.bridgeInterface ?? config.vlan_interface ?? config.flat_interface;
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
    const vlanIds = await chooseVlans(config, request, count, q);
    const bridges = vlanIds.map((vlan) =>
      count === 1 && request.bridge !== undefined ? interfaceName(request.bridge, 'bridge') : `br${vlan}`,
    );
    const existing = await networks.listNetworks(q);
    for (const bridge of bridges) {
      const owner = existing.find((network) => network.bridge === bridge);
      if (owner) throw new DuplicateVlan(`bridge ${bridge} is already used by network ${owner.label} (${owner.cidr})`);
    }
    const ports = await chooseVpnPorts(config, request, count, q);
    return (index) => ({
      vlan: vlanIds[index] ?? null,
      bridge: bridges[index] ?? null,
      bridgeInterface,
      vpnPublicAddress: config.vpn_ip,
      vpnPublicPort: ports[index] ?? null,
    });
  },

  /** The project's networks, claiming a free one on first use (nova's network_associate). */
  async defaultNetworks(context, q, projectId) {
    const owned = await networks.listNetworks(q, { projectId });
    if (owned.length > 0) return owned;
    const claimed = await withRetry(() => context.transaction((trx) => networks.claimNetworkForProject(trx, projectId, context.now())));
    if (claimed.length === 0)
      throw new NoMoreNetworks(`no unassociated network is left for project ${projectId}; create more with novanet-manage network create`);
    return claimed;
  },

  mayUse: (network, projectId) => network.projectId === projectId,
};

/** An explicit --vlan must be free; otherwise the lowest free ids from vlan_start. */
async function chooseVlans(config: Config, request: CreateNetworksRequest, count: number, q: Queryable): Promise<number[]> {
  const used = await networks.usedVlans(q);
  if (request.vlan !== undefined) {
    const vlan = integerField(request.vlan, 'vlan', 1, MAX_VLAN);
    if (used.has(vlan)) throw new DuplicateVlan(`VLAN ${vlan} is already used by another network`);
    return [vlan];
  }
  const start = integerField(request.vlanStart ?? config.vlan_start, 'vlan_start', 1, MAX_VLAN);
  if (start + count - 1 > MAX_VLAN) {
    throw new Invalid(`vlan_start ${start} + num_networks ${count} goes past VLAN ${MAX_VLAN}`);
  }
  return lowestFree(
    used,
    start,
    MAX_VLAN,
    count,
    (found) => new DuplicateVlan(`only ${found} free VLAN id(s) from ${start} to ${MAX_VLAN}; ${count} needed`),
  );
}

/** Cloudpipe ports are unique across the cloud (nova's rule), lowest free from vpn_start. */
async function chooseVpnPorts(config: Config, request: CreateNetworksRequest, count: number, q: Queryable): Promise<number[]> {
  const start = integerField(request.vpnStart ?? config.vpn_start, 'vpn', 1, 65535);
  const used = await networks.usedVpnPorts(q);
  return lowestFree(used, start, 65535, count, (found) => new Invalid(`only ${found} free VPN port(s) from ${start}; ${count} needed`));
}

/** The `count` lowest numbers from `start` to `max` not in `used`; `short` names the error when there are fewer. */
function lowestFree(used: Set<number>, start: number, max: number, count: number, short: (found: number) => Error): number[] {
  const chosen: number[] = [];
  for (let value = start; value <= max && chosen.length < count; value++) if (!used.has(value)) chosen.push(value);
  if (chosen.length < count) throw short(chosen.length);
  return chosen;
}
