import { describe, expect, it } from 'vitest';
import { Applied, perRule, sameList } from '../../../src/linux_net/firewall/applied.js';

describe('Applied', () => {
  it('believes what a write left installed only once it has succeeded', async () => {
    const applied = new Applied<string>();
    expect(applied.get()).toBeUndefined();
    await applied.write('one', async () => {
      // Mid-write nothing is believed: a failure from here on means reading the kernel again.
      expect(applied.get()).toBeUndefined();
    });
    expect(applied.get()).toBe('one');
    await expect(
      applied.write('two', async () => {
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect(applied.get()).toBeUndefined();
  });

  it('with nothing to write, takes the state as it is; forget drops it', async () => {
    const applied = new Applied<string>();
    await applied.write('same', undefined);
    expect(applied.get()).toBe('same');
    applied.forget();
    expect(applied.get()).toBeUndefined();
  });
});

describe('sameList', () => {
  it('compares items in order', () => {
    expect(sameList(['a', 'b'], ['a', 'b'])).toBe(true);
    expect(sameList(['a', 'b'], ['b', 'a'])).toBe(false);
    expect(sameList(['a'], ['a', 'a'])).toBe(false);
    expect(sameList([], [])).toBe(true);
  });
});

describe('perRule', () => {
  it('makes a value once per rule object, and again for another object with the same fields', () => {
    let made = 0;
    const text = perRule((rule) => `${rule.address} ${++made}`);
    const rule = { address: '192.0.2.50', fixed: '10.0.0.3', interface: 'eth0' };
    expect(text(rule)).toBe('192.0.2.50 1');
    expect(text(rule)).toBe('192.0.2.50 1');
    expect(text({ ...rule })).toBe('192.0.2.50 2');
  });
});
