import { FLAT } from '../flat/index.js';
import type { ModePolicy } from '../policy.js';

/** FlatDHCP: Flat's networks, plus a bridge novanet builds and dnsmasq serving each network. */
export const FLATDHCP: ModePolicy = {
  ...FLAT,
  mode: 'flatdhcp',
  capabilities: { dhcp: true, createsBridge: true, vlan: false },
};
