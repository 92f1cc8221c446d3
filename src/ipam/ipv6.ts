import { createHash } from 'node:crypto';
import { formatAddress } from './address.js';
import { type Cidr, parseCidr } from './cidr.js';

/**
 * A VIF's IPv6 address in its network's /64, by nova's two `ipv6_backend`s. Neither is
 * stored: both follow from the prefix, the MAC and (account_identifier) the project.
 */

export const IPV6_BACKENDS = ['rfc2462', 'account_identifier'] as const;
export type Ipv6Backend = (typeof IPV6_BACKENDS)[number];

function macValue(mac: string): bigint {
  return BigInt(`0x${mac.replace(/:/g, '')}`);
}

/**
 * rfc2462: the SLAAC address (RFC 4862, modified EUI-64) of `mac`, what a VM forms by
 * itself from the router advertisements.
 */
export function eui64Address(prefix: Cidr, mac: string): string {
  const value = macValue(mac);
  const upper = (value >> 24n) ^ 0x020000n;
  const iid = (upper << 40n) | (0xfffen << 24n) | (value & 0xffffffn);
  return formatAddress({ version: 6, value: prefix.network | iid });
}

/**
 * account_identifier: the first 32 bits of sha1(project id), then 0xff, then the MAC's
 * last 24 bits. SLAAC cannot form it: VMs get it by DHCPv6.
 */
export function accountIdentifierAddress(prefix: Cidr, mac: string, projectId: string): string {
  const project = BigInt(`0x${createHash('sha1').update(projectId, 'utf8').digest('hex').slice(0, 8)}`);
  const iid = (project << 32n) ^ (0xffn << 24n) ^ (macValue(mac) & 0xffffffn);
  return formatAddress({ version: 6, value: prefix.network | iid });
}

/** The address a VIF with `mac`, of project `projectId` (none: the empty name), has in `cidrV6`. */
export function vifAddressV6(backend: Ipv6Backend, cidrV6: string, mac: string, projectId: string | null): string {
  const prefix = parseCidr(cidrV6, 'cidr_v6');
  return backend === 'account_identifier' ? accountIdentifierAddress(prefix, mac, projectId ?? '') : eui64Address(prefix, mac);
}

/**
 * The address DHCPv6 hands a VIF: only under account_identifier (under rfc2462 VMs form
 * theirs by SLAAC), and only in a network with a /64.
 */
export function dhcpAddressV6(backend: Ipv6Backend, cidrV6: string | null, mac: string, projectId: string | null): string | undefined {
  return backend === 'account_identifier' && cidrV6 !== null ? vifAddressV6(backend, cidrV6, mac, projectId) : undefined;
}
