import { describe, expect, it } from 'vitest';
import { type Elements, FloatingElements, MAPS } from '../../../../src/linux_net/firewall/nftables/elements.js';
import type { FloatingRule } from '../../../../src/linux_net/firewall/state.js';
import { FLOATING } from '../../../support/nftables.js';

describe('FloatingElements', () => {
  /** The maps as the first-wins rule defines them, computed plainly from the whole list. */
  function expected(floating: FloatingRule[]): Record<string, [string, string][]> {
    const maps = {
      floating_dnat: new Map<string, string>(),
      floating_snat: new Map<string, string>(),
      floating_hairpin: new Map<string, string>(),
    };
    for (const rule of floating) {
      if (!maps.floating_dnat.has(rule.address)) maps.floating_dnat.set(rule.address, rule.fixed);
      if (!maps.floating_snat.has(`${rule.fixed} . ${rule.interface}`))
        maps.floating_snat.set(`${rule.fixed} . ${rule.interface}`, rule.address);
      if (!maps.floating_hairpin.has(rule.fixed)) maps.floating_hairpin.set(rule.fixed, rule.address);
    }
    return Object.fromEntries(Object.entries(maps).map(([name, map]) => [name, [...map].sort()]));
  }

  const sorted = (elements: Elements) => Object.fromEntries(Object.entries(elements).map(([name, map]) => [name, [...map].sort()]));

  it('kept up to date through 300 random changes, equals the maps made anew, and names every key that changed', () => {
    // A small world, so floating IPs often share a fixed address and an interface.
    // mulberry32: a small PRNG whose low bits are as random as its high ones.
    let seed = 7;
    const random = (n: number) => {
      seed = (seed + 0x6d2b79f5) >>> 0;
      let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
    };
    const elements = new FloatingElements();
    let floating: FloatingRule[] = [];
    for (let step = 0; step < 300; step++) {
      const next = floating.filter(() => random(5) !== 0);
      for (let added = random(4); added > 0; added--) {
        const address = `192.0.2.${random(40)}`;
        if (next.some((rule) => rule.address === address)) continue;
        next.splice(random(next.length + 1), 0, { address, fixed: `10.0.0.${random(6)}`, interface: random(2) === 0 ? 'eth0' : 'eth1' });
      }
      const before = sorted(elements.elements);
      const changes = elements.update(next);
      expect(sorted(elements.elements)).toEqual(expected(next));
      // The changes turn the maps before into the maps after, key by key.
      for (const name of MAPS.map((spec) => spec.name)) {
        const was = new Map(before[name]);
        for (const [key, value] of changes[name]) expect(value).toBe(was.get(key));
        const now = elements.elements[name];
        for (const key of new Set([...was.keys(), ...now.keys()])) {
          if (was.get(key) !== now.get(key)) expect(changes[name].has(key)).toBe(true);
        }
      }
      floating = next;
    }
  });

  it('an unchanged list changes nothing', () => {
    const elements = new FloatingElements();
    elements.update(FLOATING);
    const changes = elements.update([...FLOATING]);
    expect([...changes.floating_dnat, ...changes.floating_snat, ...changes.floating_hairpin]).toEqual([]);
  });
});
