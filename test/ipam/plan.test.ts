import { describe, expect, it } from 'vitest';
import { CidrConflict, Invalid } from '../../src/errors.js';
import { cidrText, parseCidr } from '../../src/ipam/cidr.js';
import { type ExistingSubnet, planSubnets, planSubnetsV6 } from '../../src/ipam/plan.js';

const cidr = (text: string) => parseCidr(text, 'test');
const existing = (...texts: string[]): ExistingSubnet[] => texts.map((text, index) => ({ cidr: cidr(text), label: `net${index}` }));
const plan = (range: string, count: number, size: number, taken: ExistingSubnet[] = []) =>
  planSubnets(cidr(range), count, size, taken).map(cidrText);

describe('planSubnets', () => {
  it('splits a range into count subnets of size addresses, lowest first', () => {
    expect(plan('10.0.0.0/16', 3, 256)).toEqual(['10.0.0.0/24', '10.0.1.0/24', '10.0.2.0/24']);
    expect(plan('10.0.0.0/24', 4, 64)).toEqual(['10.0.0.0/26', '10.0.0.64/26', '10.0.0.128/26', '10.0.0.192/26']);
    expect(plan('10.0.0.0/24', 1, 256)).toEqual(['10.0.0.0/24']);
  });

  it('rounds a size that is not a power of two up', () => {
    expect(plan('10.0.0.0/24', 2, 100)).toEqual(['10.0.0.0/25', '10.0.0.128/25']);
  });

  it('refuses count x size larger than the range', () => {
    expect(() => plan('10.0.0.0/24', 2, 256)).toThrow(Invalid);
    expect(() => plan('10.0.0.0/24', 2, 256)).toThrow('2 networks of 256 addresses do not fit in fixed_range_v4 10.0.0.0/24 (room for 1)');
    expect(() => plan('10.0.0.0/24', 5, 64)).toThrow(/room for 4/);
  });

  it('refuses a network_size larger than the range', () => {
    expect(() => plan('10.0.0.0/24', 1, 512)).toThrow(/network_size 512 does not fit in fixed_range_v4 10\.0\.0\.0\/24/);
  });

  it('moves past an equal existing network to the next free subnet', () => {
    expect(plan('10.0.0.0/16', 2, 256, existing('10.0.0.0/24', '10.0.2.0/24'))).toEqual(['10.0.1.0/24', '10.0.3.0/24']);
  });

  it('moves past a candidate that contains a smaller existing network', () => {
    expect(plan('10.0.0.0/16', 1, 256, existing('10.0.0.128/25'))).toEqual(['10.0.1.0/24']);
  });

  it('ignores existing networks outside the range', () => {
    expect(plan('10.0.0.0/24', 1, 256, existing('10.1.0.0/16', '192.168.0.0/24'))).toEqual(['10.0.0.0/24']);
  });

  it('refuses a candidate inside a larger existing network (CidrConflict naming it)', () => {
    const taken = [{ cidr: cidr('10.0.0.0/16'), label: 'public' }];
    expect(() => plan('10.0.0.0/24', 1, 256, taken)).toThrow(CidrConflict);
    expect(() => plan('10.0.0.0/24', 1, 256, taken)).toThrow('10.0.0.0/24 lies inside 10.0.0.0/16 of network public');
  });

  it('refuses when the free subnets left are fewer than requested', () => {
    const run = () => plan('10.0.0.0/23', 2, 256, existing('10.0.0.0/24'));
    expect(run).toThrow(CidrConflict);
    expect(run).toThrow('fixed_range_v4 10.0.0.0/23 has room for only 1 more network(s) of 256 addresses; 2 requested');
    expect(() => plan('10.0.0.0/24', 1, 256, existing('10.0.0.0/24'))).toThrow(/room for only 0 more network/);
  });
});

describe('planSubnetsV6', () => {
  it('gives one /64 per network', () => {
    expect(planSubnetsV6(cidr('fd00::/48'), 3, []).map(cidrText)).toEqual(['fd00::/64', 'fd00:0:0:1::/64', 'fd00:0:0:2::/64']);
    expect(planSubnetsV6(cidr('2001:db8:0:5::/64'), 1, []).map(cidrText)).toEqual(['2001:db8:0:5::/64']);
  });

  it('skips /64s already used', () => {
    expect(planSubnetsV6(cidr('fd00::/48'), 1, existing('fd00::/64')).map(cidrText)).toEqual(['fd00:0:0:1::/64']);
  });

  it('refuses a range smaller than a /64', () => {
    expect(() => planSubnetsV6(cidr('fd00::/80'), 1, [])).toThrow(Invalid);
    expect(() => planSubnetsV6(cidr('fd00::/80'), 1, [])).toThrow(/fixed_range_v6 fd00::\/80 must be \/64 or larger/);
  });

  it('refuses more networks than /64s in the range, naming fixed_range_v6', () => {
    expect(() => planSubnetsV6(cidr('fd00::/64'), 2, [])).toThrow(
      /^fixed_range_v6 fd00::\/64 has room for 1 \/64 network\(s\); 2 requested$/,
    );
    expect(() => planSubnetsV6(cidr('fd00::/63'), 2, existing('fd00::/64'))).toThrow(
      /^fixed_range_v6 fd00::\/63 has no room for 2 more \/64 network\(s\)$/,
    );
  });
});
