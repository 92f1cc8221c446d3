import { describe, expect, it } from 'vitest';
import { parseCidr } from '../../src/ipam/cidr.js';
import { accountIdentifierAddress, eui64Address, vifAddressV6 } from '../../src/ipam/ipv6.js';

describe("a VIF's IPv6 address", () => {
  it('rfc2462: the modified EUI-64 SLAAC address in a /64', () => {
    const prefix = parseCidr('fd00::/64', 'cidr_v6');
    // The universal/local bit of the first byte flips: fa -> f8.
    expect(eui64Address(prefix, 'fa:16:3e:00:00:01')).toBe('fd00::f816:3eff:fe00:1');
    expect(eui64Address(parseCidr('2001:db8:1:2::/64', 'c'), '00:11:22:33:44:55')).toBe('2001:db8:1:2:211:22ff:fe33:4455');
    expect(eui64Address(prefix, '02:16:3e:33:44:55')).toBe('fd00::16:3eff:fe33:4455');
  });

  it("account_identifier: sha1(project)'s first 32 bits, 0xff, the MAC's last 24 bits", () => {
    // sha1("test") = a94a8fe5...; nova's own test expects this address.
    expect(accountIdentifierAddress(parseCidr('2001:db8::/64', 'c'), '02:16:3e:33:44:55', 'test')).toBe('2001:db8::a94a:8fe5:ff33:4455');
    // Another project, same MAC: another address; the MAC's first three bytes do not count.
    const other = accountIdentifierAddress(parseCidr('2001:db8::/64', 'c'), '02:16:3e:33:44:55', 'p2');
    expect(other).not.toBe('2001:db8::a94a:8fe5:ff33:4455');
    expect(accountIdentifierAddress(parseCidr('2001:db8::/64', 'c'), 'fa:00:00:33:44:55', 'p2')).toBe(other);
  });

  it('by the backend configured', () => {
    expect(vifAddressV6('rfc2462', 'fd00:1::/64', 'fa:16:3e:00:00:01', 'p1')).toBe('fd00:1::f816:3eff:fe00:1');
    expect(vifAddressV6('account_identifier', '2001:db8::/64', '02:16:3e:33:44:55', 'test')).toBe('2001:db8::a94a:8fe5:ff33:4455');
    // A VIF without a project hashes the empty name (sha1("") = da39a3ee...).
    expect(vifAddressV6('account_identifier', '2001:db8::/64', '02:16:3e:33:44:55', null)).toBe('2001:db8::da39:a3ee:ff33:4455');
  });
});
