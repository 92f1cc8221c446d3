import type { HostRole, HostRow } from '../db/hosts.js';
import * as hosts from '../db/hosts.js';
import { Unavailable } from '../errors.js';
import { hostnameField } from '../fields.js';
import type { ManagerContext } from './context.js';
import type { InstanceNetworkInfo } from './views.js';

/** A host as `host list` and the API show it: its row, and whether it is up now. */
export interface HostView extends HostRow {
  state: 'up' | 'down';
}

/** The services of the cluster: who they are, whether they are alive, which may serve a network. */
export class Hosts {
  constructor(private readonly context: ManagerContext) {}

  /** Every host (or one, by name), up while its last heartbeat is within service_down_time. */
  async list(filter: { name?: string } = {}): Promise<HostView[]> {
    const name = filter.name === undefined ? undefined : hostnameField(filter.name, 'host');
    const now = this.context.now().getTime();
    const downAfter = this.context.config.service_down_time * 1000;
    return (await hosts.listHosts(this.context.db.knex))
      .filter((row) => name === undefined || row.name === name)
      .map((row) => ({ ...row, state: now - row.heartbeatAt.getTime() <= downAfter ? 'up' : 'down' }));
  }

  /**
   * An instance's network_info with, on each VIF, whether the service of its host has
   * built the network's bridge there (`active`, the field Nova's VIF model has for a
   * port that is ready): what a compute host polls when another service took the call.
   */
  async withActive(info: InstanceNetworkInfo): Promise<InstanceNetworkInfo> {
    const built = new Map((await hosts.listHosts(this.context.db.knex)).map((host) => [host.name, host.builtNetworks]));
    return {
      ...info,
      network_info: info.network_info.map((vif) => {
        const host = typeof vif.meta.host === 'string' ? vif.meta.host : undefined;
        return { ...vif, active: host !== undefined && (built.get(host)?.has(vif.network.id) ?? false) };
      }),
    };
  }

  /** This service's role, by its configuration. */
  get role(): HostRole {
    return this.context.config.network_host ? 'network' : 'compute';
  }

  /**
   * The host that becomes the network host of a single-host network at its first use:
   * this one when its configuration allows it, else the longest-registered network
   * host that is up. A compute-only service never becomes one, whichever API took the
   * call.
   */
  async networkHostForFirstUse(label: string): Promise<string> {
    if (this.role === 'network') return this.context.config.host;
    const candidates = (await this.list()).filter((host) => host.role === 'network' && host.state === 'up');
    const chosen = candidates.sort((a, b) => a.id - b.id)[0];
    if (chosen === undefined) {
      throw new Unavailable(
        `network ${label} has no network host and none is up to take it: start a service with network_host = true, or name one with novanet-manage network modify --host`,
      );
    }
    return chosen.name;
  }
}
