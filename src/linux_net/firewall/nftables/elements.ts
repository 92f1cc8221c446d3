import { perRule } from '../applied.js';
import type { FloatingSpelling, NoEqual } from '../rules.js';
import type { FloatingRule } from '../state.js';
import { NO_EQUAL } from './render.js';

type KeyType = 'ipv4_addr' | 'ifname';

export type MapName = 'floating_dnat' | 'floating_snat' | 'floating_hairpin';

/** A map of floating IPs: its key's type, and each floating IP's key and value in it. */
export interface MapSpec {
  name: MapName;
  key: KeyType[];
  keyOf: (rule: FloatingRule) => string;
  valueFor: (rule: FloatingRule) => string;
}

/** A floating IP's key in the snat map, made once per rule object. */
const snatKey = perRule((rule) => `${rule.fixed} . ${rule.interface}`);

/**
 * nova's floating rules as maps, one element per floating IP in each: associating one
 * is elements added, whatever the number installed, and no rule changes. render.ts's
 * MAP_LOOKUPS look them up.
 */
export const FLOATING_MAPS = {
  /** floating → fixed: DNAT in prerouting and output. */
  'floating-dnat': { name: 'floating_dnat', key: ['ipv4_addr'], keyOf: (rule) => rule.address, valueFor: (rule) => rule.fixed },
  /** fixed → floating, for DNATed connections: a VM reaching another's floating IP is seen from its own. */
  'floating-hairpin': { name: 'floating_hairpin', key: ['ipv4_addr'], keyOf: (rule) => rule.fixed, valueFor: (rule) => rule.address },
  'floating-self': NO_EQUAL['floating-self'],
  /** fixed . outgoing interface → floating: a VM's own traffic leaves as its floating IP. */
  'floating-snat': { name: 'floating_snat', key: ['ipv4_addr', 'ifname'], keyOf: snatKey, valueFor: (rule) => rule.address },
} satisfies FloatingSpelling<MapSpec, NoEqual>;

/** The maps, in the order they are defined and edited. */
export const MAPS: MapSpec[] = [FLOATING_MAPS['floating-dnat'], FLOATING_MAPS['floating-snat'], FLOATING_MAPS['floating-hairpin']];

/**
 * Element keys as their parts joined by ' . ' (unquoted), values as addresses, in the
 * order they were added.
 */
export type Elements = Record<MapName, Map<string, string>>;

/** Each map's keys that changed, with their value before (undefined: absent). */
export type ElementChanges = Record<MapName, Map<string, string | undefined>>;

/** The rules that have a key of a map: one, or several when floating IPs share a fixed address. */
type Owners = Map<string, FloatingRule | FloatingRule[]>;

function own(owners: Owners, key: string, rule: FloatingRule): void {
  const held = owners.get(key);
  if (held === undefined) owners.set(key, rule);
  else if (Array.isArray(held)) held.push(rule);
  else owners.set(key, [held, rule]);
}

function disown(owners: Owners, key: string, rule: FloatingRule): void {
  const held = owners.get(key);
  if (held === rule) owners.delete(key);
  else if (Array.isArray(held)) {
    const rest = held.filter((other) => other !== rule);
    owners.set(key, rest.length === 1 ? rest[0]! : rest);
  }
}

/**
 * The maps' elements for a floating list, one per floating IP and map, kept up to date
 * as the list changes: associating one among thousands touches its own keys only,
 * where rebuilding the maps for every apply cost time and garbage that grew with the
 * list. A fixed address with two floating IPs on one interface goes out as the first
 * in the list, as the first of nova's rules would win.
 */
export class FloatingElements {
  readonly elements: Elements = { floating_dnat: new Map(), floating_snat: new Map(), floating_hairpin: new Map() };
  /** The rules the maps hold now. */
  private rules = new Set<FloatingRule>();
  private readonly owners: Record<MapName, Owners> = { floating_dnat: new Map(), floating_snat: new Map(), floating_hairpin: new Map() };

  /** Brings the maps to `floating` (each rule in it once) and returns the keys that changed. */
  update(floating: FloatingRule[]): ElementChanges {
    const changes: ElementChanges = { floating_dnat: new Map(), floating_snat: new Map(), floating_hairpin: new Map() };
    if (floating.length === this.rules.size && floating.every((rule) => this.rules.has(rule))) return changes;
    const next = new Set(floating);
    const removed = [...this.rules].filter((rule) => !next.has(rule));
    const added = floating.filter((rule) => !this.rules.has(rule));
    this.rules = next;
    // Where a key is shared, the list's order decides (built only then: it is rare).
    let position: Map<FloatingRule, number> | undefined;
    const first = (rules: FloatingRule[]) => {
      position ??= new Map(floating.map((rule, index) => [rule, index]));
      return rules.reduce((a, b) => (position!.get(a)! <= position!.get(b)! ? a : b));
    };
    for (const { name: map, keyOf, valueFor } of MAPS) {
      const owners = this.owners[map];
      const touched = new Set<string>();
      for (const rule of removed) {
        touched.add(keyOf(rule));
        disown(owners, keyOf(rule), rule);
      }
      for (const rule of added) {
        touched.add(keyOf(rule));
        own(owners, keyOf(rule), rule);
      }
      const elements = this.elements[map];
      for (const key of touched) {
        const held = owners.get(key);
        const winner = held === undefined ? undefined : Array.isArray(held) ? first(held) : held;
        const before = elements.get(key);
        const after = winner && valueFor(winner);
        if (before === after) continue;
        changes[map].set(key, before);
        if (after === undefined) elements.delete(key);
        else elements.set(key, after);
      }
    }
    return changes;
  }
}

/** A map's type as nft writes it: its key's parts, and the floating address it maps to. */
export function mapType(spec: MapSpec): string {
  return `${spec.key.join(' . ')} : ipv4_addr`;
}
