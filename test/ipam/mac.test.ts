import { describe, expect, it } from 'vitest';
import { parseCidr } from '../../src/ipam/cidr.js';
import { eui64Address, isMac, MAC_PREFIX, randomMac } from '../../src/ipam/mac.js';

describe('MAC addresses', () => {
  it('generates OpenStack MACs fa:16:3e:xx:xx:xx', () => {
    expect(MAC_PREFIX).toBe('fa:16:3e');
    for (let i = 0; i < 50; i++) expect(randomMac()).toMatch(/^fa:16:3e(:[0-9a-f]{2}){3}$/);
  });

  it('uses the random source it is given, zero-padded', () => {
    expect(randomMac(() => Uint8Array.from([0x01, 0xab, 0x00]))).toBe('fa:16:3e:01:ab:00');
  });

  it('recognises lower-case colon-separated MACs only', () => {
    expect(isMac('fa:16:3e:00:00:01')).toBe(true);
    expect(isMac('FA:16:3E:00:00:01')).toBe(false);
    expect(isMac('fa-16-3e-00-00-01')).toBe(false);
    expect(isMac('fa:16:3e:00:00')).toBe(false);
    expect(isMac('fa:16:3e:00:00:01:02')).toBe(false);
    expect(isMac('fa:16:3e:00:00:0g')).toBe(false);
  });

  it('derives the modified EUI-64 SLAAC address in a /64', () => {
    const prefix = parseCidr('fd00::/64', 'cidr_v6');
    // The universal/local bit of the first byte flips: fa -> f8.
    expect(eui64Address(prefix, 'fa:16:3e:00:00:01')).toBe('fd00::f816:3eff:fe00:1');
    expect(eui64Address(parseCidr('2001:db8:1:2::/64', 'c'), '00:11:22:33:44:55')).toBe('2001:db8:1:2:211:22ff:fe33:4455');
  });
});
