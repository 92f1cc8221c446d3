import { FlatManager } from '../flat/index.js';
import type { Capabilities } from '../types.js';

/** FlatDHCP: Flat's networks, plus a bridge novanet builds and dnsmasq serving each network. */
export class FlatDhcpManager extends FlatManager {
  override readonly mode = 'flatdhcp';
  override readonly capabilities: Capabilities = { dhcp: true, createsBridge: true, vlan: false, floatingIps: true };
}
