import { Invalid } from '../errors.js';
import { type Address, addressBits, formatAddress } from './address.js';
import { type Cidr, cidrText, containsAddress, overlaps, parseCidr } from './cidr.js';

/**
 * The address blocks that can be neither a fixed network nor a floating IP: a VM or a
 * NAT rule there would take the host's own loopback, its multicast, the metadata
 * address or the broadcast address. One list, used by every edge (networks and
 * floating ranges from the CLI and the API, and the host layer before it binds).
 */
const SPECIAL: { block: Cidr; name: string }[] = [
  ['0.0.0.0/8', '"this network" (0.0.0.0/8)'],
  ['127.0.0.0/8', 'loopback (127.0.0.0/8)'],
  ['169.254.0.0/16', 'link-local (169.254.0.0/16, the metadata address among them)'],
  ['224.0.0.0/4', 'multicast (224.0.0.0/4)'],
  ['255.255.255.255/32', 'the limited broadcast address (255.255.255.255)'],
  ['::/128', 'the unspecified address (::)'],
  ['::1/128', 'loopback (::1)'],
  ['fe80::/10', 'link-local (fe80::/10)'],
  ['ff00::/8', 'multicast (ff00::/8)'],
].map(([text, name]) => ({ block: parseCidr(text!, 'special block'), name: name! }));

/** The special-purpose block `cidr` overlaps, by name; undefined when it overlaps none. */
export function specialPurpose(cidr: Cidr): string | undefined {
  return SPECIAL.find(({ block }) => overlaps(block, cidr))?.name;
}

/** Addresses the host itself uses, each with the option that names it (my_ip, routing_source_ip, ...). */
export type HostAddresses = { option: string; address: Address }[];

/**
 * Refuses a range that can hold no VM or floating IP: one that overlaps a special
 * block, or holds an address of the host's own. `field` names the range in the
 * message, and the message names the rule.
 */
export function refuseReserved(cidr: Cidr, field: string, host: HostAddresses): void {
  const single = cidr.prefix === addressBits(cidr.version);
  const named = single ? formatAddress({ version: cidr.version, value: cidr.network }) : cidrText(cidr);
  const special = specialPurpose(cidr);
  if (special !== undefined) {
    throw new Invalid(`${field} ${named} ${single ? 'is in' : 'overlaps'} ${special}, which no VM or floating IP may use`);
  }
  const own = host.find(({ address }) => containsAddress(cidr, address));
  if (own) {
    const what = single ? 'is' : `holds ${formatAddress(own.address)},`;
    throw new Invalid(`${field} ${named} ${what} this host's ${own.option}; the host's own addresses are not for VMs or floating IPs`);
  }
}
