import { Invalid } from '../errors.js';
import { quote } from '../fields.js';
import { type Address, addressBits, formatAddress, type IpVersion, parseAddress } from './address.js';

/** A network: its first address and prefix length. Host bits are always zero. */
export interface Cidr {
  version: IpVersion;
  network: bigint;
  prefix: number;
}

/**
 * Parses "ADDRESS/PREFIX". A CIDR with host bits set is refused with the network the
 * user probably meant, rather than silently masked.
 */
export function parseCidr(text: string, field: string, version?: IpVersion): Cidr {
  const parts = text.split('/');
  if (parts.length !== 2 || !/^\d{1,3}$/.test(parts[1] ?? '')) {
    throw new Invalid(`${field} must be a CIDR such as 10.0.0.0/24, got ${quote(text)}`);
  }
  const address = parseAddress(parts[0] ?? '', field, version);
  const prefix = Number(parts[1]);
  const bits = addressBits(address.version);
  if (prefix > bits) {
    throw new Invalid(`${field} prefix /${prefix} is longer than /${bits}, in ${quote(text)}`);
  }
  const network = address.value & maskOf(address.version, prefix);
  const cidr: Cidr = { version: address.version, network, prefix };
  if (network !== address.value) {
    throw new Invalid(`${field} ${quote(text)} has host bits set; the network is ${cidrText(cidr)}`);
  }
  return cidr;
}

export function cidrText(cidr: Cidr): string {
  return `${formatAddress({ version: cidr.version, value: cidr.network })}/${cidr.prefix}`;
}

export function cidrSize(cidr: Cidr): bigint {
  return 1n << BigInt(addressBits(cidr.version) - cidr.prefix);
}

/** The address at offset `index` (0 = the network address); negative counts from the top. */
export function addressAt(cidr: Cidr, index: bigint): Address {
  const size = cidrSize(cidr);
  const offset = index < 0n ? size + index : index;
  if (offset < 0n || offset >= size) {
    throw new Invalid(`offset ${index} is outside ${cidrText(cidr)}`);
  }
  return { version: cidr.version, value: cidr.network + offset };
}

export function addressText(cidr: Cidr, index: bigint): string {
  return formatAddress(addressAt(cidr, index));
}

export function containsAddress(cidr: Cidr, address: Address): boolean {
  return cidr.version === address.version && (address.value & maskOf(cidr.version, cidr.prefix)) === cidr.network;
}

/** True when `inner` lies wholly inside `outer` (equal counts). */
export function containsCidr(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.version === inner.version &&
    outer.prefix <= inner.prefix &&
    (inner.network & maskOf(outer.version, outer.prefix)) === outer.network
  );
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return containsCidr(a, b) || containsCidr(b, a);
}

export function netmaskText(cidr: Cidr): string {
  return formatAddress({ version: cidr.version, value: maskOf(cidr.version, cidr.prefix) });
}

export function broadcastText(cidr: Cidr): string {
  return addressText(cidr, -1n);
}

/** The subnets of `cidr` with the longer prefix `prefix`, lowest first. */
export function* subnetsOf(cidr: Cidr, prefix: number): Generator<Cidr> {
  const step = 1n << BigInt(addressBits(cidr.version) - prefix);
  const end = cidr.network + cidrSize(cidr);
  for (let network = cidr.network; network < end; network += step) {
    yield { version: cidr.version, network, prefix };
  }
}

function maskOf(version: IpVersion, prefix: number): bigint {
  const bits = BigInt(addressBits(version));
  const all = (1n << bits) - 1n;
  return (all << (bits - BigInt(prefix))) & all;
}
