import type { Config } from '../config/options.js';
import type { DhcpIsolation } from '../linux_net/dhcpIsolation.js';
import type { GuardedPort, PortGuard } from '../linux_net/portGuard.js';

/**
 * The host's two bridge-family tables, kept in step with what it builds: DHCP and RA
 * isolation at multi_host uplinks, and the guards of its VMs' ports. Neither is
 * written until there is something to put in it; a failure is reported, not thrown.
 */
export class BridgeFilters {
  /** Whether this process has DHCP isolation in place (linux_net/dhcpIsolation.ts). */
  private dhcpIsolated = false;
  /** Whether this process has port guards in place (linux_net/portGuard.ts). */
  private portsGuarded = false;
  private portsLooked = false;

  constructor(
    private readonly drivers: { dhcpIsolation: DhcpIsolation; portGuard: PortGuard },
    private readonly config: Config,
  ) {}

  /** multi_host: DHCP frames kept off these uplinks (only once there are some). */
  async isolateDhcp(uplinks: string[], full: boolean, changes: string[], errors: string[]): Promise<void> {
    if (uplinks.length === 0 && !this.dhcpIsolated) return;
    try {
      changes.push(...(await this.drivers.dhcpIsolation.sync(uplinks, full)));
      this.dhcpIsolated = uplinks.length > 0;
    } catch (error) {
      errors.push(`DHCP isolation: ${(error as Error).message}`);
    }
  }

  /**
   * Anti-spoofing at this host's VM ports (once there are some). With anti_spoofing
   * off, the first full reconcile removes a table an earlier run left.
   */
  async guardPorts(ports: GuardedPort[], full: boolean, changes: string[], errors: string[]): Promise<void> {
    const turnedOff = full && !this.portsLooked && !this.config.anti_spoofing;
    if (ports.length === 0 && !this.portsGuarded && !turnedOff) return;
    try {
      changes.push(...(await this.drivers.portGuard.sync(ports, full)));
      this.portsGuarded = ports.length > 0;
      if (full) this.portsLooked = true;
    } catch (error) {
      errors.push(`port guards: ${(error as Error).message}`);
    }
  }
}
