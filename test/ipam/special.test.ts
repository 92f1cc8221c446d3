import { describe, expect, it } from 'vitest';
import { Invalid } from '../../src/errors.js';
import { parseAddress } from '../../src/ipam/address.js';
import { parseCidr } from '../../src/ipam/cidr.js';
import { refuseReserved, specialPurpose } from '../../src/ipam/special.js';

const cidr = (text: string) => parseCidr(text, 'range');

describe('specialPurpose', () => {
  it.each([
    ['0.0.0.0/32', '"this network"'],
    ['0.255.0.0/16', '"this network"'],
    ['127.0.0.1/32', 'loopback (127.0.0.0/8)'],
    ['126.0.0.0/7', 'loopback (127.0.0.0/8)'],
    ['169.254.169.254/32', 'link-local (169.254.0.0/16'],
    ['224.0.0.1/32', 'multicast (224.0.0.0/4)'],
    ['239.255.255.255/32', 'multicast (224.0.0.0/4)'],
    ['255.255.255.255/32', 'the limited broadcast address'],
    ['0.0.0.0/0', '"this network"'],
    ['::/128', 'the unspecified address'],
    ['::1/128', 'loopback (::1)'],
    ['fe80::/64', 'link-local (fe80::/10)'],
    ['ff02::1/128', 'multicast (ff00::/8)'],
    ['::/0', 'the unspecified address'],
  ])('names the block %s overlaps', (text, name) => {
    expect(specialPurpose(cidr(text))).toContain(name);
  });

  it.each([
    '10.0.0.0/8',
    '192.0.2.0/24',
    '198.51.100.7/32',
    '223.255.255.0/24',
    '240.0.0.0/8',
    '255.255.255.254/32',
    'fd00::/48',
    '2001:db8::/64',
  ])('leaves the ordinary range %s alone', (text) => {
    expect(specialPurpose(cidr(text))).toBeUndefined();
  });
});

describe('refuseReserved', () => {
  const host = [{ option: 'my_ip', address: parseAddress('192.0.2.10', 'my_ip', 4) }];

  it('names the field, the range and the rule', () => {
    expect(() => refuseReserved(cidr('127.0.0.0/24'), 'cidr', host)).toThrow(
      new Invalid('cidr 127.0.0.0/24 overlaps loopback (127.0.0.0/8), which no VM or floating IP may use'),
    );
    expect(() => refuseReserved(cidr('127.0.0.1/32'), 'ip_range', host)).toThrow(/^ip_range 127\.0\.0\.1 is in loopback/);
    expect(() => refuseReserved(cidr('192.0.2.0/28'), 'cidr', host)).toThrow(
      /^cidr 192\.0\.2\.0\/28 holds 192\.0\.2\.10, this host's my_ip;/,
    );
    expect(() => refuseReserved(cidr('192.0.2.10/32'), 'ip_range', host)).toThrow(/^ip_range 192\.0\.2\.10 is this host's my_ip;/);
  });

  it('lets every other range through', () => {
    expect(() => refuseReserved(cidr('192.0.2.16/28'), 'cidr', host)).not.toThrow();
    expect(() => refuseReserved(cidr('fd00::/64'), 'cidr_v6', [])).not.toThrow();
  });
});
