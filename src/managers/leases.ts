import * as fixedIps from '../db/fixedIps.js';
import * as networks from '../db/networks.js';
import * as vifs from '../db/virtualInterfaces.js';
import { FixedIpNotFound, Invalid } from '../errors.js';
import { canonicalAddress } from '../ipam/address.js';
import { isMac } from '../ipam/mac.js';
import type { ManagerContext } from './context.js';
import type { Lease } from './views.js';

/** DHCP leases: what dnsmasq's script reports (the database is the lease store), and nova's timed disassociation. */
export class Leases {
  constructor(private readonly context: ManagerContext) {}

  /** dnsmasq's script reports a lease (`add`/`old`). */
  async lease(address: string, mac?: string): Promise<void> {
    const { context } = this;
    const fixed = await this.target(address, mac);
    if (!fixed) return;
    if (!fixed.allocated) context.log(`lease of ${fixed.address} reported, but it is not allocated to an instance`);
    await fixedIps.setLeased(context.db.knex, fixed.id, true, context.now());
    await context.notify([{ kind: 'network-updated', networkId: fixed.networkId }]);
  }

  /** dnsmasq's script reports a lease gone (`del`): a deallocated address is free again. */
  async release(address: string, mac?: string): Promise<void> {
    const { context } = this;
    const fixed = await this.target(address, mac);
    if (!fixed) return;
    const now = context.now();
    await context.transaction(async (trx) => {
      await fixedIps.setLeased(trx, fixed.id, false, now);
      if (!fixed.allocated) await fixedIps.disassociateFixedIp(trx, fixed.id, now);
    });
    await context.notify([{ kind: 'network-updated', networkId: fixed.networkId }]);
  }

  /** The network's current leases, for dnsmasq's `init`. */
  async list(networkId: number): Promise<Lease[]> {
    const { context } = this;
    const q = context.db.knex;
    const leased = (await fixedIps.listFixedIps(q, { networkIds: [networkId] })).filter(
      (fixed) => fixed.leased && fixed.virtualInterfaceId !== null,
    );
    const byId = new Map(
      (await vifs.listVirtualInterfaces(q, { ids: leased.map((fixed) => fixed.virtualInterfaceId!) })).map((vif) => [vif.id, vif]),
    );
    return leased.flatMap((fixed) => {
      const vif = byId.get(fixed.virtualInterfaceId!);
      if (!vif) return [];
      const renewed = fixed.updatedAt ?? context.now();
      return [
        {
          expiresAt: new Date(renewed.getTime() + context.config.dhcp_lease_time * 1000),
          mac: vif.address,
          address: fixed.address,
          hostname: vif.hostname,
        },
      ];
    });
  }

  /** Periodic: addresses whose release never came are freed after fixed_ip_disassociate_timeout. */
  async disassociateStale(): Promise<number> {
    const { context } = this;
    if (!context.policy.capabilities.dhcp) return 0;
    const now = context.now();
    const olderThan = new Date(now.getTime() - context.config.fixed_ip_disassociate_timeout * 1000);
    const all = await networks.listNetworks(context.db.knex);
    return fixedIps.disassociateStale(
      context.db.knex,
      all.map((network) => network.id),
      olderThan,
      now,
    );
  }

  /** The fixed IP a report is about, or undefined when the report is about a VIF that no longer holds it. */
  private async target(address: string, mac: string | undefined): Promise<fixedIps.FixedIp | undefined> {
    const { context } = this;
    const canonical = canonicalAddress(address, 'address');
    if (mac !== undefined && !isMac(mac.toLowerCase()))
      throw new Invalid(`MAC must look like fa:16:3e:00:00:01, got ${JSON.stringify(mac.slice(0, 40))}`);
    const fixed = await fixedIps.findFixedIp(context.db.knex, canonical);
    if (!fixed) throw new FixedIpNotFound(`fixed IP ${canonical} not found`);
    if (mac !== undefined && fixed.virtualInterfaceId !== null) {
      const [vif] = await vifs.listVirtualInterfaces(context.db.knex, { ids: [fixed.virtualInterfaceId] });
      if (vif && vif.address !== mac.toLowerCase()) {
        context.log(`lease report for ${canonical} from ${mac} ignored: the address now belongs to ${vif.address}`);
        return undefined;
      }
    }
    return fixed;
  }
}
