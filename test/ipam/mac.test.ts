import { describe, expect, it } from 'vitest';
import { isMac, MAC_PREFIX, randomMac } from '../../src/ipam/mac.js';

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
});
