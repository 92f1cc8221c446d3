import { CidrConflict, Invalid } from '../errors.js';
import { addressBits } from './address.js';
import { type Cidr, cidrText, containsCidr, overlaps, subnetsOf } from './cidr.js';

/** A network already in the database, as far as subnet planning cares. */
export interface ExistingSubnet {
  cidr: Cidr;
  label: string;
}

/**
 * Chooses `count` subnets of `size` addresses inside `range`, as nova did: a candidate
 * taken by an equal or smaller existing network moves on to the next free one; a
 * candidate inside a larger existing network is a conflict (the operator asked for
 * space that belongs to someone else).
 */
export function planSubnets(range: Cidr, count: number, size: number, existing: ExistingSubnet[], field = 'fixed_range_v4'): Cidr[] {
  const prefix = addressBits(range.version) - Math.ceil(Math.log2(size));
  if (prefix < range.prefix) {
    throw new Invalid(`network_size ${size} does not fit in ${field} ${cidrText(range)}`);
  }
  const available = 2 ** Math.min(40, prefix - range.prefix);
  if (count > available) {
    throw new Invalid(`${count} networks of ${size} addresses do not fit in ${field} ${cidrText(range)} (room for ${available})`);
  }
  const chosen: Cidr[] = [];
  for (const candidate of subnetsOf(range, prefix)) {
    const clash = existing.find((other) => overlaps(other.cidr, candidate));
    if (clash === undefined) {
      chosen.push(candidate);
      if (chosen.length === count) return chosen;
      continue;
    }
    if (!containsCidr(candidate, clash.cidr)) {
      throw new CidrConflict(`${cidrText(candidate)} lies inside ${cidrText(clash.cidr)} of network ${clash.label}`);
    }
  }
  throw new CidrConflict(
    `${field} ${cidrText(range)} has room for only ${chosen.length} more network(s) of ${size} addresses; ${count} requested`,
  );
}

/** IPv6 subnets are /64 (SLAAC needs it), one per IPv4 network, as nova capped them. */
export function planSubnetsV6(range: Cidr, count: number, existing: ExistingSubnet[]): Cidr[] {
  if (range.prefix > 64) {
    throw new Invalid(`fixed_range_v6 ${cidrText(range)} must be /64 or larger (SLAAC needs a /64 per network)`);
  }
  const room = 2 ** Math.min(40, 64 - range.prefix);
  if (count > room) {
    throw new Invalid(`fixed_range_v6 ${cidrText(range)} has room for ${room} /64 network(s); ${count} requested`);
  }
  try {
    return planSubnets(range, count, 2 ** 64, existing, 'fixed_range_v6');
  } catch (error) {
    // planSubnets counts addresses; for IPv6 the operator thinks in /64s.
    if (error instanceof CidrConflict && /has room for only/.test(error.message)) {
      throw new CidrConflict(`fixed_range_v6 ${cidrText(range)} has no room for ${count} more /64 network(s)`);
    }
    throw error;
  }
}
