import { describe, expect, it } from 'vitest';
import { Invalid } from '../../src/errors.js';
import { parseAddress } from '../../src/ipam/address.js';
import {
  addressText,
  broadcastText,
  cidrSize,
  cidrText,
  containsAddress,
  containsCidr,
  netmaskText,
  overlaps,
  parseCidr,
  subnetsOf,
} from '../../src/ipam/cidr.js';

describe('parseCidr', () => {
  it('parses IPv4 and IPv6 networks', () => {
    expect(parseCidr('10.0.0.0/24', 'fixed_range_v4')).toEqual({ version: 4, network: 0x0a000000n, prefix: 24 });
    expect(cidrText(parseCidr('fd00::/48', 'fixed_range_v6', 6))).toBe('fd00::/48');
    expect(cidrText(parseCidr('0.0.0.0/0', 'dmz_cidr'))).toBe('0.0.0.0/0');
    expect(cidrText(parseCidr('10.0.0.7/32', 'x'))).toBe('10.0.0.7/32');
  });

  it('refuses host bits and names the network that was probably meant', () => {
    expect(() => parseCidr('10.0.0.1/24', 'fixed_range_v4')).toThrow(Invalid);
    expect(() => parseCidr('10.0.0.1/24', 'fixed_range_v4')).toThrow(
      'fixed_range_v4 "10.0.0.1/24" has host bits set; the network is 10.0.0.0/24',
    );
    expect(() => parseCidr('fd00::1/64', 'fixed_range_v6')).toThrow(/host bits set; the network is fd00::\/64/);
    expect(() => parseCidr('192.168.5.0/16', 'cidr')).toThrow(/the network is 192\.168\.0\.0\/16/);
  });

  it('refuses a prefix longer than the address', () => {
    expect(() => parseCidr('10.0.0.0/33', 'fixed_range_v4')).toThrow(/fixed_range_v4 prefix \/33 is longer than \/32/);
    expect(() => parseCidr('fd00::/129', 'fixed_range_v6')).toThrow(/prefix \/129 is longer than \/128/);
  });

  it.each(['10.0.0.0', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/24/1', '10.0.0.0/x', 'nonsense', ''])('refuses malformed %j', (text) => {
    expect(() => parseCidr(text, 'fixed_range_v4')).toThrow(/fixed_range_v4 must be a CIDR such as 10\.0\.0\.0\/24/);
  });

  it('refuses the strict-address failures inside a CIDR', () => {
    expect(() => parseCidr('010.0.0.0/24', 'fixed_range_v4')).toThrow(/fixed_range_v4 must be an IP address/);
    expect(() => parseCidr('10.0/16', 'fixed_range_v4')).toThrow(/must be an IP address/);
    expect(() => parseCidr('::ffff:10.0.0.0/120', 'fixed_range_v4')).toThrow(/IPv4-mapped/);
  });

  it('enforces the requested version', () => {
    expect(() => parseCidr('fd00::/64', 'fixed_range_v4', 4)).toThrow(/must be an IPv4 address/);
    expect(() => parseCidr('10.0.0.0/24', 'fixed_range_v6', 6)).toThrow(/must be an IPv6 address/);
  });
});

describe('address math', () => {
  const net = parseCidr('10.0.0.0/24', 'c');

  it('computes netmask, broadcast and size', () => {
    expect(netmaskText(net)).toBe('255.255.255.0');
    expect(broadcastText(net)).toBe('10.0.0.255');
    expect(cidrSize(net)).toBe(256n);
    const small = parseCidr('192.168.10.16/28', 'c');
    expect(netmaskText(small)).toBe('255.255.255.240');
    expect(broadcastText(small)).toBe('192.168.10.31');
    expect(netmaskText(parseCidr('0.0.0.0/0', 'c'))).toBe('0.0.0.0');
    expect(netmaskText(parseCidr('fd00::/64', 'c'))).toBe('ffff:ffff:ffff:ffff::');
  });

  it('indexes addresses from the bottom and the top', () => {
    expect(addressText(net, 0n)).toBe('10.0.0.0');
    expect(addressText(net, 1n)).toBe('10.0.0.1');
    expect(addressText(net, -1n)).toBe('10.0.0.255');
    expect(addressText(net, -2n)).toBe('10.0.0.254');
    expect(() => addressText(net, 256n)).toThrow(/outside 10\.0\.0\.0\/24/);
    expect(() => addressText(net, -257n)).toThrow(Invalid);
  });

  it('answers containment and overlap', () => {
    expect(containsAddress(net, parseAddress('10.0.0.200', 'a'))).toBe(true);
    expect(containsAddress(net, parseAddress('10.0.1.0', 'a'))).toBe(false);
    expect(containsAddress(net, parseAddress('fd00::1', 'a'))).toBe(false);
    const big = parseCidr('10.0.0.0/16', 'c');
    const other = parseCidr('10.1.0.0/24', 'c');
    expect(containsCidr(big, net)).toBe(true);
    expect(containsCidr(net, big)).toBe(false);
    expect(containsCidr(net, net)).toBe(true);
    expect(overlaps(net, big)).toBe(true);
    expect(overlaps(big, net)).toBe(true);
    expect(overlaps(net, other)).toBe(false);
  });

  it('splits a network into subnets, lowest first', () => {
    const parts = [...subnetsOf(parseCidr('10.0.0.0/22', 'c'), 24)].map(cidrText);
    expect(parts).toEqual(['10.0.0.0/24', '10.0.1.0/24', '10.0.2.0/24', '10.0.3.0/24']);
  });
});
