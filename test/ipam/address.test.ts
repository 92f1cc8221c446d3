import { describe, expect, it } from 'vitest';
import { Invalid } from '../../src/errors.js';
import { canonicalAddress, formatAddress, parseAddress } from '../../src/ipam/address.js';

function failure(action: () => unknown): Error {
  try {
    action();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the call to throw');
}

describe('parseAddress', () => {
  it('reads a dotted-quad IPv4 address as a number', () => {
    expect(parseAddress('10.0.0.1', 'address')).toEqual({ version: 4, value: 0x0a000001n });
    expect(parseAddress('192.168.1.254', 'address', 4)).toEqual({ version: 4, value: 0xc0a801fen });
  });

  // Issue 16: a value with blanks around it was trimmed into an address; whatever carried it, it is not one.
  it.each([' 10.0.0.1', '10.0.0.1 ', '\u300010.0.0.1', '10.0.0.1\n', ' fd00::1'])('refuses %j, never trimming it', (text) => {
    expect(failure(() => parseAddress(text, 'address'))).toBeInstanceOf(Invalid);
  });

  it('reads IPv6 addresses', () => {
    expect(parseAddress('fd00::1', 'address')).toEqual({ version: 6, value: (0xfd00n << 112n) | 1n });
    expect(parseAddress('FD00:0:0:0:0:0:0:1', 'address', 6).value).toBe((0xfd00n << 112n) | 1n);
  });

  it.each([
    ['010.0.0.1', 'octal octet'],
    ['10.1', 'short form'],
    ['10', 'single number'],
    ['0x0a.0.0.1', 'hex octet'],
    ['10.0.0.256', 'octet out of range'],
    ['1.2.3.4.5', 'five parts'],
    ['', 'empty'],
  ])('refuses %j (%s) with a message naming the field', (text) => {
    const error = failure(() => parseAddress(text, 'dns1', 4));
    expect(error).toBeInstanceOf(Invalid);
    expect(error.message).toBe(`dns1 must be an IPv4 address, got ${JSON.stringify(text)}`);
  });

  it('refuses IPv4-mapped IPv6 addresses', () => {
    const error = failure(() => parseAddress('::ffff:10.0.0.1', 'gateway'));
    expect(error).toBeInstanceOf(Invalid);
    expect(error.message).toMatch(/gateway must not be an IPv4-mapped IPv6 address/);
    expect(() => parseAddress('::ffff:10.0.0.1', 'gateway', 4)).toThrow(/gateway must be an IPv4 address/);
  });

  it('refuses IPv6 zone ids', () => {
    expect(() => parseAddress('fe80::1%eth0', 'address')).toThrow(/address must be an IP address/);
  });

  it('enforces the requested version', () => {
    expect(() => parseAddress('fd00::1', 'my_ip', 4)).toThrow(/my_ip must be an IPv4 address, got "fd00::1"/);
    expect(() => parseAddress('10.0.0.1', 'gateway_v6', 6)).toThrow(/gateway_v6 must be an IPv6 address, got "10.0.0.1"/);
  });
});

describe('formatAddress', () => {
  it('writes IPv4 as a dotted quad', () => {
    expect(formatAddress({ version: 4, value: 0x0a000001n })).toBe('10.0.0.1');
  });

  it('writes IPv6 in the shortest form', () => {
    expect(formatAddress(parseAddress('fd00:0000:0000:0000:0000:0000:0000:0001', 'a'))).toBe('fd00::1');
    expect(formatAddress(parseAddress('2001:db8:0:0:1:0:0:1', 'a'))).toBe('2001:db8::1:0:0:1');
  });
});

describe('canonicalAddress', () => {
  it('stores one spelling of each address', () => {
    expect(canonicalAddress('10.0.0.1', 'a', 4)).toBe('10.0.0.1');
    expect(canonicalAddress('FD00:0:0:0:0:0:0:1', 'a')).toBe('fd00::1');
    expect(() => canonicalAddress('fd00::1', 'fixed_ip', 4)).toThrow(/fixed_ip must be an IPv4 address/);
  });
});
