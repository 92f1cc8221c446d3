import type { Mode } from '../config/options.js';
import type { Capabilities } from '../host/layer.js';
import { Allocation } from './allocation.js';
import { ManagerContext, type ManagerDeps } from './context.js';
import { FixedIps } from './fixedIps.js';
import { FLAT } from './flat/index.js';
import { FLATDHCP } from './flatdhcp/index.js';
import { FloatingIps } from './floating.js';
import { Hosts } from './hosts.js';
import { Leases } from './leases.js';
import type { NetworkManager } from './manager.js';
import { Networks } from './networks.js';
import type { ModePolicy } from './policy.js';
import { SecurityGroups } from './securityGroups.js';
import { VLAN } from './vlan/index.js';

/** network_manager → the mode's policy: the one place a mode name becomes behaviour. */
export const POLICIES: Record<Mode, ModePolicy> = { flat: FLAT, flatdhcp: FLATDHCP, vlan: VLAN };

/** What a mode asks of the hosts, known before any manager is built (the host layer is built first). */
export function capabilitiesOf(mode: Mode): Capabilities {
  return POLICIES[mode].capabilities;
}

/** The manager of the configured `network_manager`: its services composed over one context. */
export function createManager(deps: ManagerDeps): NetworkManager {
  const policy = POLICIES[deps.config.network_manager];
  const context = new ManagerContext(deps, policy);
  const floating = new FloatingIps(context);
  const hosts = new Hosts(context);
  const securityGroups = new SecurityGroups(context);
  return {
    mode: policy.mode,
    capabilities: policy.capabilities,
    networks: new Networks(context),
    allocation: new Allocation(context, floating, hosts, securityGroups),
    leases: new Leases(context),
    fixedIps: new FixedIps(context),
    floating,
    hosts,
    securityGroups,
  };
}
