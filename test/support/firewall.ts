import type { FirewallState } from '../../src/linux_net/rules.js';

/** One FlatDHCP network on br100 behind eth0: the firewall state most linux_net tests start from. */
export function firewallState(overrides: Partial<FirewallState> = {}): FirewallState {
  return {
    publicInterface: 'eth0',
    routingSourceIp: '192.0.2.10',
    metadataHost: '10.0.0.1',
    metadataPort: 8775,
    dmzCidrs: [],
    networks: [{ cidr: '10.0.0.0/24', bridge: 'br100', gateway: '10.0.0.1', dhcp: true }],
    floating: [],
    ...overrides,
  };
}
