import { fileURLToPath } from 'node:url';
import type { Config } from '../config/options.js';
import type { Database } from '../db/connection.js';
import type { Executor } from '../linux_net/command.js';
import { DhcpIsolation } from '../linux_net/dhcpIsolation.js';
import { DnsmasqDriver } from '../linux_net/dnsmasq/index.js';
import { processExecutor } from '../linux_net/executor.js';
import { createFirewall } from '../linux_net/firewall/index.js';
import { FloatingDriver } from '../linux_net/floating.js';
import { LinkDriver } from '../linux_net/links.js';
import { PortGuard } from '../linux_net/portGuard.js';
import { VxlanDriver } from '../linux_net/vxlan.js';
import type { Capabilities } from './layer.js';
import { type ReconcileReport, Reconciler } from './reconciler.js';

export { type ReconcileReport, Reconciler } from './reconciler.js';

/** novanet-dhcpbridge next to this build, unless the config names another. */
function defaultDhcpbridge(): string {
  return fileURLToPath(new URL('../cli/dhcpbridge.js', import.meta.url));
}

export interface HostLayerOptions {
  db: Database;
  config: Config;
  capabilities: Capabilities;
  configFile: string | undefined;
  log: (event: string, fields?: Record<string, unknown>) => void;
  onReport?: (report: ReconcileReport) => void;
  /** The recording fake in unit tests; the real one (with root_helper) otherwise. */
  executor?: Executor;
}

/** This host's reconciler with the real drivers, all running through one executor. */
export function createHostLayer(options: HostLayerOptions): Reconciler {
  const { config } = options;
  const executor = options.executor ?? processExecutor({ rootHelper: config.root_helper, log: options.log });
  return new Reconciler({
    db: options.db,
    config,
    capabilities: options.capabilities,
    log: options.log,
    ...(options.onReport ? { onReport: options.onReport } : {}),
    drivers: {
      links: new LinkDriver(executor),
      vxlan: new VxlanDriver(executor),
      dhcpIsolation: new DhcpIsolation(executor),
      portGuard: new PortGuard(executor),
      firewall: createFirewall(config.firewall_backend, executor),
      dnsmasq: new DnsmasqDriver(executor, {
        statePath: config.state_path,
        domain: config.dhcp_domain,
        leaseTime: config.dhcp_lease_time,
        dnsServers: config.dns_server,
        dhcpScript: config.dhcpbridge ?? defaultDhcpbridge(),
        configFile: options.configFile,
      }),
      floating: new FloatingDriver(executor, { sendArp: config.send_arp_for_ha, arpCount: config.send_arp_for_ha_count, log: options.log }),
    },
  });
}
