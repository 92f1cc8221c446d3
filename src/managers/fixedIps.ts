import type { FixedIp, NetworkUsage } from '../db/fixedIps.js';
import * as fixedIps from '../db/fixedIps.js';
import type { Network } from '../db/networks.js';
import * as networks from '../db/networks.js';
import * as vifs from '../db/virtualInterfaces.js';
import { Conflict, FixedIpNotFound } from '../errors.js';
import { hostnameField } from '../fields.js';
import { canonicalAddress } from '../ipam/address.js';
import { addressText, parseCidr } from '../ipam/cidr.js';
import type { ManagerContext } from './context.js';
import type { FixedIpListing } from './views.js';

/** Fixed IPs as operators see them: `fixed list`, utilisation, `fixed reserve` and `unreserve`. */
export class FixedIps {
  constructor(private readonly context: ManagerContext) {}

  async list(filter: { host?: string } = {}): Promise<FixedIpListing[]> {
    // A filter is input too: a host no host could be named is refused, not "none found".
    if (filter.host !== undefined) hostnameField(filter.host, 'host');
    const q = this.context.db.knex;
    const all = await networks.listNetworks(q);
    const byId = new Map(all.map((network) => [network.id, network]));
    const rows = await fixedIps.listFixedIps(q, { networkIds: all.map((network) => network.id) });
    const vifIds = rows.flatMap((row) => (row.virtualInterfaceId === null ? [] : [row.virtualInterfaceId]));
    const vifById = new Map((await vifs.listVirtualInterfaces(q, { ids: vifIds })).map((vif) => [vif.id, vif]));
    const listing = rows.map((row) =>
      fixedListing(row, byId.get(row.networkId), row.virtualInterfaceId === null ? undefined : vifById.get(row.virtualInterfaceId)),
    );
    return filter.host === undefined ? listing : listing.filter((row) => row.host === filter.host);
  }

  /** One fixed IP as `fixed list` shows it; FixedIpNotFound when no network has it. */
  async get(address: string): Promise<FixedIpListing> {
    const canonical = canonicalAddress(address, 'address');
    const q = this.context.db.knex;
    const fixed = await fixedIps.findFixedIp(q, canonical);
    if (!fixed) throw new FixedIpNotFound(`fixed IP ${canonical} not found in any network`);
    const network = await networks.findNetwork(q, { id: fixed.networkId });
    const [vif] = fixed.virtualInterfaceId === null ? [] : await vifs.listVirtualInterfaces(q, { ids: [fixed.virtualInterfaceId] });
    return fixedListing(fixed, network, vif);
  }

  /** Per live network: addresses in all, reserved, held by instances, leased. */
  async usage(): Promise<{ network: Network; usage: NetworkUsage }[]> {
    const q = this.context.db.knex;
    const all = await networks.listNetworks(q);
    const counts = await fixedIps.usageByNetwork(q);
    return all.map((network) => ({
      network,
      usage: counts.get(network.id) ?? { total: 0, reserved: 0, associated: 0, allocated: 0, leased: 0 },
    }));
  }

  reserve(address: string): Promise<FixedIp> {
    return this.setReserved(address, true);
  }

  unreserve(address: string): Promise<FixedIp> {
    return this.setReserved(address, false);
  }

  private async setReserved(address: string, reserved: boolean): Promise<FixedIp> {
    const { context } = this;
    const canonical = canonicalAddress(address, 'address');
    const result = await context.transaction(async (trx) => {
      const fixed = await fixedIps.findFixedIp(trx, canonical);
      if (!fixed) throw new FixedIpNotFound(`fixed IP ${canonical} not found in any network`);
      if (reserved && fixed.instanceUuid !== null) {
        throw new Conflict(`fixed IP ${canonical} is in use by instance ${fixed.instanceUuid}; deallocate it first`);
      }
      if (!reserved) {
        const network = await networks.getNetwork(trx, { id: fixed.networkId });
        const structural = structuralAddresses(network);
        if (structural.has(canonical)) {
          throw new Conflict(`fixed IP ${canonical} is the ${structural.get(canonical)} of network ${network.cidr}; it stays reserved`);
        }
      }
      await fixedIps.setReserved(trx, fixed.id, reserved, context.now());
      return { ...fixed, reserved };
    });
    await context.notify([{ kind: 'network-updated', networkId: result.networkId }]);
    return result;
  }
}

/** A fixed IP with the hostname and host of the instance holding it. */
function fixedListing(row: FixedIp, network: Network | undefined, vif: vifs.VirtualInterface | undefined): FixedIpListing {
  return {
    network: network?.cidr ?? String(row.networkId),
    address: row.address,
    hostname: vif?.hostname ?? null,
    host: vif?.host ?? row.host ?? (row.instanceUuid ? (network?.host ?? null) : null),
    instanceUuid: row.instanceUuid,
    reserved: row.reserved,
    allocated: row.allocated,
    leased: row.leased,
  };
}

/** Addresses instances must never get, whatever an operator unreserves. */
function structuralAddresses(network: Network): Map<string, string> {
  const found = new Map<string, string>();
  if (network.cidr) {
    const cidr = parseCidr(network.cidr, 'cidr');
    found.set(addressText(cidr, 0n), 'network address');
    found.set(addressText(cidr, -1n), 'broadcast address');
  }
  const add = (address: string | null, role: string) => {
    if (address && !found.has(address)) found.set(address, role);
  };
  add(network.gateway, 'gateway');
  add(network.dhcpServer, 'DHCP server');
  add(network.vpnPrivateAddress, 'VPN address');
  return found;
}
