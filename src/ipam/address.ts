import ipaddr from 'ipaddr.js';
import { Invalid } from '../errors.js';
import { quote } from '../fields.js';

export type IpVersion = 4 | 6;

/** An address as a number, so that ranges and offsets are plain arithmetic. */
export interface Address {
  version: IpVersion;
  value: bigint;
}

const BITS: Record<IpVersion, number> = { 4: 32, 6: 128 };

export function addressBits(version: IpVersion): number {
  return BITS[version];
}

/**
 * Parses one address. Strict: IPv4 must be four decimal octets ("10.1" and octal
 * forms are refused), and an IPv4-mapped IPv6 address is refused where IPv4 is
 * expected, so one address never has two spellings in the database. Never trimmed:
 * ' 10.0.0.1' is not an address, whatever carried it (the config loader trims its own).
 */
export function parseAddress(text: string, field: string, version?: IpVersion): Address {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) {
    if (version === 6) throw new Invalid(`${field} must be an IPv6 address, got ${quote(text)}`);
    const bytes = ipaddr.IPv4.parse(text).toByteArray();
    return { version: 4, value: bytesToBigint(bytes) };
  }
  if (!text.includes('%') && ipaddr.IPv6.isValid(text)) {
    const parsed = ipaddr.IPv6.parse(text);
    if (version === 4) throw new Invalid(`${field} must be an IPv4 address, got ${quote(text)}`);
    if (parsed.isIPv4MappedAddress()) {
      throw new Invalid(`${field} must not be an IPv4-mapped IPv6 address, got ${quote(text)}`);
    }
    return { version: 6, value: bytesToBigint(parsed.toByteArray()) };
  }
  const kind = version === 4 ? 'an IPv4 address' : version === 6 ? 'an IPv6 address' : 'an IP address';
  throw new Invalid(`${field} must be ${kind}, got ${quote(text)}`);
}

/** The canonical text of an address (IPv6 in its shortest RFC 5952 form). */
export function formatAddress(address: Address): string {
  const { version, value } = address;
  if (version === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
  }
  const bytes: number[] = [];
  for (let shift = 120n; shift >= 0n; shift -= 8n) bytes.push(Number((value >> shift) & 0xffn));
  return ipaddr.fromByteArray(bytes).toString();
}

/** An address in canonical form, so lookups by text always match what was stored. */
export function canonicalAddress(text: string, field: string, version?: IpVersion): string {
  return formatAddress(parseAddress(text, field, version));
}

function bytesToBigint(bytes: number[]): bigint {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return value;
}
