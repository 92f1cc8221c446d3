import * as floating from '../db/floatingIps.js';
import * as networks from '../db/networks.js';
import type { Queryable } from '../db/rows.js';
import * as vifs from '../db/virtualInterfaces.js';
import { type Ipv6Backend, vifAddressV6 } from '../ipam/ipv6.js';
import type { InstanceAddress, InstanceListing } from './views.js';

/**
 * Instances as their VIFs describe them, with every address they can be reached at.
 * novanet owns no servers; this is what Nova's `/servers` needs from the network side
 * (OSC looks a server up before it adds a floating IP to it). Three queries, whatever
 * the number of instances.
 */
export async function listInstances(
  q: Queryable,
  ipv6Backend: Ipv6Backend,
  filter: { projectId?: string; instanceUuid?: string } = {},
): Promise<InstanceListing[]> {
  const { vifs: found, fixed } = await vifs.listVirtualInterfacesWithFixedIps(q, filter);
  if (found.length === 0) return [];
  const floatingByFixed = groupBy(
    await floating.listFloatingIps(q, { fixedIpIds: fixed.map((entry) => entry.id) }),
    (row) => row.fixedIpId ?? -1,
  );
  const fixedByVif = groupBy(fixed, (entry) => entry.virtualInterfaceId ?? -1);
  const networkById = new Map(
    (await networks.listNetworks(q, { ids: [...new Set(found.map((vif) => vif.networkId))] })).map((network) => [network.id, network]),
  );

  const instances = new Map<string, InstanceListing>();
  for (const vif of found) {
    let instance = instances.get(vif.instanceUuid);
    if (!instance) {
      instance = { uuid: vif.instanceUuid, projectId: vif.projectId, hostname: vif.hostname, host: vif.host, addresses: [] };
      instances.set(vif.instanceUuid, instance);
    }
    const network = networkById.get(vif.networkId);
    // A VIF whose network is gone (deleted under it) has no address to show.
    if (!network) continue;
    const address = (text: string, version: 4 | 6, type: InstanceAddress['type']): InstanceAddress => ({
      networkLabel: network.label,
      address: text,
      version,
      type,
      mac: vif.address,
    });
    for (const entry of fixedByVif.get(vif.id) ?? []) {
      instance.addresses.push(address(entry.address, 4, 'fixed'));
      for (const row of floatingByFixed.get(entry.id) ?? []) instance.addresses.push(address(row.address, 4, 'floating'));
    }
    if (network.cidrV6) instance.addresses.push(address(vifAddressV6(ipv6Backend, network.cidrV6, vif.address, vif.projectId), 6, 'fixed'));
  }
  return [...instances.values()];
}

/** `values` by `key`, each group in the order given. */
export function groupBy<T, K>(values: T[], key: (value: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const value of values) {
    const group = groups.get(key(value));
    if (group) group.push(value);
    else groups.set(key(value), [value]);
  }
  return groups;
}
