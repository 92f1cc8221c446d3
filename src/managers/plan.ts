import { randomUUID } from 'node:crypto';
import { hostAddresses } from '../config/hostAddresses.js';
import type { Config } from '../config/options.js';
import type { NewFixedIp } from '../db/fixedIps.js';
import type { Network, NewNetwork } from '../db/networks.js';
import { Conflict, Invalid } from '../errors.js';
import { hostnameField, integerField, labelField, projectIdField, uuidField } from '../fields.js';
import { type Address, formatAddress, parseAddress } from '../ipam/address.js';
import { broadcastText, type Cidr, cidrSize, cidrText, containsAddress, containsCidr, netmaskText, parseCidr } from '../ipam/cidr.js';
import { planSubnets, planSubnetsV6 } from '../ipam/plan.js';
import { refuseReserved } from '../ipam/special.js';
import type { CreateRules, ModeFields } from './policy.js';
import type { CreateNetworksRequest } from './requests.js';

export interface PlannedNetwork {
  network: NewNetwork;
  subnet: Cidr;
  /** Every address of the subnet with its reserved flag, lowest first. */
  addresses(): Iterable<NewFixedIp>;
  size: number;
}

export interface PlanContext {
  config: Config;
  /** Network uuids; injectable so tests can predict them. */
  newUuid?: () => string;
  existing: Network[];
  rules: CreateRules;
}

function existingSubnets(existing: Network[], field: 'cidr' | 'cidrV6') {
  return existing.flatMap((network) => {
    const text = network[field];
    return text ? [{ cidr: parseCidr(text, field), label: network.label }] : [];
  });
}

function optionalAddress(value: string | undefined, field: string, version: 4 | 6): Address | undefined {
  return value === undefined ? undefined : parseAddress(value, field, version);
}

/**
 * Validates a create request and lays out each network: subnets, gateway, DHCP
 * server, DHCP start, reserved addresses. Pure: the caller writes the result.
 */
export function planNetworks(request: CreateNetworksRequest, context: PlanContext, modeFields: ModeFields): PlannedNetwork[] {
  const { config, existing, rules } = context;
  const label = labelField(request.label);
  const count = integerField(request.numNetworks ?? config.num_networks, 'num_networks', 1, 4094);
  const size = integerField(request.networkSize ?? config.network_size, 'network_size', 4, 2 ** 24);
  if (request.fixedRangeV4 === undefined) throw new Invalid('fixed_range_v4 is required (for example --fixed_range_v4=10.0.0.0/16)');
  const range = parseCidr(request.fixedRangeV4, 'fixed_range_v4', 4);
  refuseReserved(range, 'fixed_range_v4', hostAddresses(config));
  const single = (option: string, given: unknown) => {
    if (given !== undefined && count > 1)
      throw new Invalid(`${option} applies to one network; it cannot be used with num_networks=${count}`);
  };
  single('--gateway', request.gateway);
  single('--gateway_v6', request.gatewayV6);
  single('--uuid', request.uuid);
  single('--dhcp_server', request.dhcpServer);
  const uuid = request.uuid === undefined ? undefined : uuidField(request.uuid, 'uuid');
  if (uuid !== undefined && existing.some((network) => network.uuid === uuid)) {
    // A clash with the current state, not a malformed request (errors.ts): Conflict.
    throw new Conflict(`uuid ${uuid} is already used by network ${JSON.stringify(existing.find((n) => n.uuid === uuid)?.label)}`);
  }
  const projectId = request.projectId === undefined ? null : projectIdField(request.projectId);
  // The network host, named up front (issue 17); a multi_host network has none: every host serves its own.
  const networkHost = request.host === undefined ? null : hostnameField(request.host, 'host');
  if (networkHost !== null && (request.multiHost ?? config.multi_host)) {
    throw new Invalid('host names the network host of a single-host network; a multi_host network has none');
  }
  const priority = request.priority === undefined ? null : integerField(request.priority, 'priority', 0, 2 ** 31 - 1);
  const mtu = request.mtu === undefined ? null : integerField(request.mtu, 'mtu', 68, 65535);
  const dns1 = optionalAddress(request.dns1, 'dns1', 4);
  const dns2 = optionalAddress(request.dns2, 'dns2', 4);
  const gateway = optionalAddress(request.gateway, 'gateway', 4);
  const dhcpServer = optionalAddress(request.dhcpServer, 'dhcp_server', 4);
  const fixedCidr = request.fixedCidr === undefined ? undefined : parseCidr(request.fixedCidr, 'fixed_cidr', 4);
  if (fixedCidr && !containsCidr(range, fixedCidr)) {
    throw new Invalid(`fixed_cidr ${cidrText(fixedCidr)} is outside fixed_range_v4 ${cidrText(range)}`);
  }

  const subnets = planSubnets(range, count, size, existingSubnets(existing, 'cidr'));
  const wantV6 = request.fixedRangeV6 !== undefined || config.use_ipv6;
  const rangeV6 = wantV6 ? parseCidr(request.fixedRangeV6 ?? config.fixed_range_v6, 'fixed_range_v6', 6) : undefined;
  if (rangeV6) refuseReserved(rangeV6, 'fixed_range_v6', []);
  const subnetsV6 = rangeV6 ? planSubnetsV6(rangeV6, count, existingSubnets(existing, 'cidrV6')) : [];
  if (request.gatewayV6 !== undefined && !rangeV6) {
    throw new Invalid('gateway_v6 needs an IPv6 range: give fixed_range_v6 (cidr_v6 in the API) as well, or set use_ipv6');
  }
  const gatewayV6 = optionalAddress(request.gatewayV6, 'gateway_v6', 6);
  if (gatewayV6 && subnetsV6[0] && !containsAddress(subnetsV6[0], gatewayV6)) {
    throw new Invalid(`gateway_v6 ${formatAddress(gatewayV6)} is outside ${cidrText(subnetsV6[0])}`);
  }

  return subnets.map((subnet, index) => {
    const subnetSize = Number(cidrSize(subnet));
    const reservedCount = rules.bottomReserved + rules.topReserved;
    if (subnetSize <= reservedCount) {
      throw new Invalid(
        `network_size ${size} is too small: a /${subnet.prefix} has ${subnetSize} addresses and ${reservedCount} are reserved in this mode`,
      );
    }
    const at = (offset: number) => subnet.network + BigInt(offset);
    const inside = (address: Address | undefined, field: string) => {
      if (!address) return;
      const offset = Number(address.value - subnet.network);
      if (!containsAddress(subnet, address) || offset === 0 || offset === subnetSize - 1) {
        throw new Invalid(`${field} ${formatAddress(address)} is not a usable address of ${cidrText(subnet)}`);
      }
    };
    inside(gateway, 'gateway');
    inside(dhcpServer, 'dhcp_server');
    const gatewayValue = gateway?.value ?? at(1);
    const dhcpServerValue = dhcpServer?.value ?? gatewayValue;
    // dhcp_start: the first address after the fixed bottom block that is neither
    // the gateway nor the DHCP server (nova's rule).
    const taken = new Set([gatewayValue, dhcpServerValue]);
    let next = rules.bottomReserved - (rules.vpn ? 1 : 0);
    while (taken.has(at(next))) next++;
    let vpnPrivate: bigint | undefined;
    if (rules.vpn) {
      vpnPrivate = at(next);
      next++;
      while (taken.has(at(next))) next++;
    }
    // With --fixed_cidr, instances (and so dnsmasq's range) start inside it.
    while (
      fixedCidr !== undefined &&
      next < subnetSize - rules.topReserved &&
      (!containsAddress(fixedCidr, { version: 4, value: at(next) }) || taken.has(at(next)))
    )
      next++;
    const dhcpStartOffset = next;
    if (fixedCidr !== undefined && dhcpStartOffset >= subnetSize - rules.topReserved) {
      throw new Invalid(`fixed_cidr ${cidrText(fixedCidr)} leaves no address for instances in ${cidrText(subnet)}`);
    }
    if (dhcpStartOffset >= subnetSize - rules.topReserved) {
      throw new Invalid(`network_size ${size} is too small: no address is left for instances in ${cidrText(subnet)}`);
    }
    const text = (value: bigint) => formatAddress({ version: 4, value });
    const topStart = subnetSize - rules.topReserved;
    const network: NewNetwork = {
      uuid: uuid ?? (context.newUuid ?? randomUUID)(),
      label: count > 1 ? `${label}_${index}` : label,
      injected: config.flat_injected,
      cidr: cidrText(subnet),
      cidrV6: subnetsV6[index] ? cidrText(subnetsV6[index]) : null,
      multiHost: request.multiHost ?? config.multi_host,
      netmask: netmaskText(subnet),
      netmaskV6: subnetsV6[index] ? String(subnetsV6[index].prefix) : null,
      gateway: text(gatewayValue),
      gatewayV6: gatewayV6
        ? formatAddress(gatewayV6)
        : subnetsV6[index]
          ? formatAddress({ version: 6, value: subnetsV6[index].network + 1n })
          : null,
      broadcast: broadcastText(subnet),
      dns1: dns1 ? formatAddress(dns1) : null,
      dns2: dns2 ? formatAddress(dns2) : null,
      bridge: null,
      bridgeInterface: null,
      vlan: null,
      vpnPublicAddress: null,
      vpnPublicPort: null,
      vpnPrivateAddress: vpnPrivate === undefined ? null : text(vpnPrivate),
      dhcpStart: text(at(dhcpStartOffset)),
      rxtxBase: null,
      projectId,
      priority,
      host: networkHost,
      mtu,
      dhcpServer: text(dhcpServerValue),
      enableDhcp: request.enableDhcp ?? true,
      shareAddress: request.shareAddress ?? false,
      ...modeFields(index),
    };
    refuseNonBridge(network, config);
    const pinned = new Set([gatewayValue, dhcpServerValue, ...(vpnPrivate === undefined ? [] : [vpnPrivate])]);
    return {
      network,
      subnet,
      size: subnetSize,
      *addresses() {
        for (let offset = 0; offset < subnetSize; offset++) {
          const value = at(offset);
          const reserved =
            offset < dhcpStartOffset ||
            offset >= topStart ||
            pinned.has(value) ||
            (fixedCidr !== undefined && !containsAddress(fixedCidr, { version: 4, value }));
          yield { address: ipv4Text(value), reserved };
        }
      },
    };
  });
}

/**
 * A bridge's name may not be one of the host's other interfaces: novanet would try to
 * build on (or the compute hosts plug VMs into) the public interface, an uplink or lo.
 */
function refuseNonBridge(network: NewNetwork, config: Config): void {
  const bridge = network.bridge;
  if (bridge === null) return;
  const taken: [string, string | undefined | null][] = [
    ['the loopback interface', 'lo'],
    ['public_interface', config.public_interface],
    ['flat_interface', config.flat_interface],
    ['vlan_interface', config.vlan_interface],
    ["this network's bridge_interface", network.bridgeInterface],
  ];
  const clash = taken.find(([, name]) => name === bridge);
  if (clash) throw new Invalid(`bridge ${bridge} is ${clash[0]}, not a bridge; give the network a bridge name of its own (such as br100)`);
}

/** Fast IPv4 formatting for bulk row generation (a /12 is a million calls). */
function ipv4Text(value: bigint): string {
  const n = Number(value);
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}
