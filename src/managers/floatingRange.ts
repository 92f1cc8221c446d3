import * as floating from '../db/floatingIps.js';
import type { Queryable } from '../db/rows.js';
import { CidrConflict, Invalid } from '../errors.js';
import { quote } from '../fields.js';
import { formatAddress, parseAddress } from '../ipam/address.js';
import { addressText, type Cidr, cidrSize, cidrText, parseCidr } from '../ipam/cidr.js';

/** nova-manage's limits for one `floating create`: fewer is a typo for an address, more a typo for a prefix. */
const MIN_CIDR_SIZE = 4n;
const MAX_RANGE_SIZE = 1_000_000n;

/** A parsed `--ip_range`: the CIDR it spans and the addresses it makes. */
export interface FloatingRange {
  text: string;
  cidr: Cidr;
  addresses: () => Generator<string>;
}

/**
 * `--ip_range` as nova-manage took it: one IPv4 address, or a CIDR whose network and
 * broadcast addresses are skipped; a CIDR of fewer than 4 addresses (give single
 * addresses instead) or of 1,000,000 or more is refused.
 */
export function parseRange(text: string): FloatingRange {
  if (!text.includes('/')) {
    const address = parseAddress(text, 'ip_range', 4);
    const single = formatAddress(address);
    return {
      text: single,
      cidr: { version: 4, network: address.value, prefix: 32 },
      addresses: function* () {
        yield single;
      },
    };
  }
  const cidr = parseCidr(text, 'ip_range', 4);
  const size = cidrSize(cidr);
  if (size < MIN_CIDR_SIZE) {
    throw new Invalid(`ip_range ${quote(text)}: /${cidr.prefix} has fewer than 4 addresses; give a single address instead`);
  }
  if (size >= MAX_RANGE_SIZE) {
    throw new Invalid(
      `ip_range ${quote(text)} would make ${size} addresses; the limit is fewer than 1,000,000: use a longer prefix than /${cidr.prefix}`,
    );
  }
  return {
    text: cidrText(cidr),
    cidr,
    addresses: function* () {
      for (let offset = 1n; offset < size - 1n; offset++) yield addressText(cidr, offset);
    },
  };
}

/** For network create: a fixed range must not take in a floating IP (createRange's check the other way round). */
export async function refuseFloatingOverlap(q: Queryable, cidr: string): Promise<void> {
  const taken = await floating.firstInside(q, parseCidr(cidr, 'cidr', 4));
  if (taken) throw new CidrConflict(`network ${cidr} overlaps floating IP ${taken.address} (pool ${taken.pool})`);
}

export function* mapIterable<T, U>(values: Iterable<T>, map: (value: T) => U): Generator<U> {
  for (const value of values) yield map(value);
}
