import type { Mode } from '../config/options.js';
import type { ManagerDeps } from './base.js';
import { FlatManager } from './flat/index.js';
import { FlatDhcpManager } from './flatdhcp/index.js';
import type { NetworkManager } from './types.js';
import { VlanManager } from './vlan/index.js';

/** network_manager → manager: the one place a mode name becomes behaviour. */
export const MANAGERS: Record<Mode, (deps: ManagerDeps) => NetworkManager> = {
  flat: (deps) => new FlatManager(deps),
  flatdhcp: (deps) => new FlatDhcpManager(deps),
  vlan: (deps) => new VlanManager(deps),
};

/** The manager of the configured `network_manager`. */
export function createManager(deps: ManagerDeps): NetworkManager {
  return MANAGERS[deps.config.network_manager](deps);
}
