import * as networks from '../../db/networks.js';
import { Invalid } from '../../errors.js';
import { interfaceName } from '../../fields.js';
import type { CreateRules, ModePolicy } from '../policy.js';

/** Flat networks reserve the network and gateway addresses below, the broadcast above. */
const FLAT_CREATE_RULES: CreateRules = { bottomReserved: 2, topReserved: 1, vpn: false };

/**
 * FlatManager: the admin's pre-built bridge, addresses injected (no DHCP, no rules).
 * Networks are shared: open to every project unless one owns them.
 */
export const FLAT: ModePolicy = {
  mode: 'flat',
  capabilities: { dhcp: false, createsBridge: false, vlan: false },
  createRules: () => FLAT_CREATE_RULES,

  async modeFields({ config }, request) {
    for (const [option, given] of [
      ['--vlan', request.vlan],
      ['--vlan_start', request.vlanStart],
      ['--vpn', request.vpnStart],
    ] as const) {
      if (given !== undefined)
        throw new Invalid(`${option} applies to VLAN mode only; this service runs network_manager=${config.network_manager}`);
    }
    const bridge = interfaceName(request.bridge ?? config.flat_network_bridge, 'bridge');
    const bridgeInterface = request.bridgeInterface ?? config.flat_interface;
    const fields = {
      bridge,
      bridgeInterface: bridgeInterface === undefined ? null : interfaceName(bridgeInterface, 'bridge_interface'),
      dns1: request.dns1 === undefined ? config.flat_network_dns : undefined,
    };
    return () => Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
  },

  defaultNetworks: (_context, q, projectId) => networks.listNetworks(q, { visibleTo: projectId }),

  mayUse: (network, projectId) => network.projectId === null || network.projectId === projectId,
};
