import { createHash } from 'node:crypto';
import { sameList } from '../applied.js';
import { type ElementChanges, type Elements, MAPS, type MapSpec, mapType } from './elements.js';
import { chainHead, REGULAR_CHAIN, type TableState } from './parse.js';
import { type NftChain, quoted } from './render.js';

/** novanet's table (`table ip novanet`): everything in it is ours, nothing outside it is. */
export const NFT_TABLE = 'novanet';
const TABLE = `ip ${NFT_TABLE}`;

/** The whole table novanet wants. */
export interface NftRuleset {
  chains: NftChain[];
  elements: Elements;
}

/**
 * Each rule carries a short hash of its text as its comment: the kernel prints rules
 * in its own spelling, so installed rules are recognised by their comment instead.
 */
export function ruleTag(rule: string): string {
  return createHash('sha256').update(rule).digest('hex').slice(0, 16);
}

/** The desired table in the form installed tables are read into. */
export function desiredState(ruleset: NftRuleset): TableState {
  return {
    chains: new Map(ruleset.chains.map((chain) => [chain.name, chainState(chain)])),
    maps: new Map(MAPS.map((spec) => [spec.name, { type: mapType(spec), elements: ruleset.elements[spec.name] }])),
  };
}

/** What a transaction must do to turn `installed` into `desired`, and its `nft -f -` script. */
export interface NftPlan {
  script: string;
  changed: string[];
  /** The script is commands one per line (no table definition): the session can take it. */
  edit: boolean;
  /** What is installed once the script has run. */
  desired: TableState;
}

/**
 * The one `nft -f -` transaction that turns `installed` (undefined: no table) into
 * `desired`. A table whose chains or maps are not the ones wanted (missing, extra,
 * another hook or key type) is made anew in the same transaction (`add` + `delete` +
 * definition: never a moment without rules); chains whose rules differ are flushed and
 * refilled; map elements are added and deleted one by one. Returns '' when nothing differs.
 * `changes`: the only elements that can differ from `installed` (an apply, after
 * FloatingElements.update); without them every element is compared.
 */
export function planNftables(ruleset: NftRuleset, installed: TableState | undefined, changes?: ElementChanges): NftPlan {
  const desired = desiredState(ruleset);
  if (!installed || !sameStructure(desired, installed)) {
    const changed = installed
      ? [
          ...differingNames(desired.chains, installed.chains, (a, b) => a.head === b.head && sameList(a.tags, b.tags)),
          ...differingNames(desired.maps, installed.maps, (a, b) => a.type === b.type && sameElements(a.elements, b.elements)),
        ]
      : ['table'];
    return {
      script: renderTable(ruleset, installed !== undefined),
      changed: changed.map((name) => `${TABLE}/${name}`),
      edit: false,
      desired,
    };
  }
  const lines: string[] = [];
  const changed: string[] = [];
  for (const chain of ruleset.chains) {
    if (sameList(desired.chains.get(chain.name)!.tags, installed.chains.get(chain.name)!.tags)) continue;
    changed.push(`${TABLE}/${chain.name}`);
    lines.push(`flush chain ${TABLE} ${chain.name}`, ...chain.rules.map((rule) => `add rule ${TABLE} ${chain.name} ${tagged(rule)}`));
  }
  for (const spec of MAPS) {
    const wanted = ruleset.elements[spec.name];
    const differing = changes
      ? [...changes[spec.name]].map(([key, before]): ElementChange => [key, before, wanted.get(key)])
      : differences(installed.maps.get(spec.name)!.elements, wanted);
    const edit = elementEdit(spec, differing);
    if (edit.length === 0) continue;
    changed.push(`${TABLE}/${spec.name}`);
    lines.push(...edit);
  }
  return { script: lines.length === 0 ? '' : `${lines.join('\n')}\n`, changed, edit: true, desired };
}

/** Same chains with the same definitions, same maps with the same types: rules and elements may differ. */
function sameStructure(desired: TableState, installed: TableState): boolean {
  const sameKeys = <V>(a: Map<string, V>, b: Map<string, V>) => a.size === b.size && [...a.keys()].every((key) => b.has(key));
  return (
    sameKeys(desired.chains, installed.chains) &&
    sameKeys(desired.maps, installed.maps) &&
    [...desired.chains].every(([name, chain]) => installed.chains.get(name)!.head === chain.head) &&
    [...desired.maps].every(([name, map]) => installed.maps.get(name)!.type === map.type)
  );
}

/** Names present on one side only, or on both and not alike. */
function differingNames<V>(desired: Map<string, V>, installed: Map<string, V>, alike: (a: V, b: V) => boolean): string[] {
  const names = new Set([...desired.keys(), ...installed.keys()]);
  return [...names].filter((name) => {
    const a = desired.get(name);
    const b = installed.get(name);
    return a === undefined || b === undefined || !alike(a, b);
  });
}

/** The whole table, replacing any table of that name in the same transaction. */
function renderTable(ruleset: NftRuleset, replace: boolean): string {
  const lines = replace ? [`add table ${TABLE}`, `delete table ${TABLE}`] : [];
  lines.push(`table ${TABLE} {`);
  for (const spec of MAPS) lines.push(`\tmap ${spec.name} {`, `\t\ttype ${mapType(spec)}`, '\t}');
  for (const chain of ruleset.chains) lines.push(...chainDefinition(chain));
  lines.push('}');
  for (const spec of MAPS) lines.push(...elementEdit(spec, differences(new Map(), ruleset.elements[spec.name])));
  return `${lines.join('\n')}\n`;
}

/** A chain as an installed one is read back: its definition and its rules' tags. */
export function chainState(chain: NftChain): { head: string; tags: string[] } {
  return { head: headOf(chain), tags: chain.rules.map(ruleTag) };
}

/** A chain's lines inside a `table { }` definition. */
export function chainDefinition(chain: NftChain): string[] {
  const lines = [`\tchain ${chain.name} {`];
  if (chain.type !== undefined) lines.push(`\t\t${headOf(chain)}`);
  lines.push(...chain.rules.map((rule) => `\t\t${tagged(rule)}`), '\t}');
  return lines;
}

function headOf(chain: NftChain): string {
  return chain.type === undefined ? REGULAR_CHAIN : chainHead(chain.type, chain.hook, chain.priority, 'accept');
}

function tagged(rule: string): string {
  return `${rule} comment "${ruleTag(rule)}"`;
}

/** One element's key and its value before and after (undefined: absent). */
type ElementChange = [key: string, before: string | undefined, after: string | undefined];

/** Every element that differs between `current` and `wanted`. */
function differences(current: Map<string, string>, wanted: Map<string, string>): ElementChange[] {
  const differing: ElementChange[] = [];
  for (const [key, before] of current) if (wanted.get(key) !== before) differing.push([key, before, wanted.get(key)]);
  for (const [key, after] of wanted) if (!current.has(key)) differing.push([key, undefined, after]);
  return differing;
}

/**
 * `delete element` for keys gone or pointing elsewhere, then `add element` for keys new
 * or changed (a map takes a key once: a moved floating IP is deleted, then added).
 */
function elementEdit(spec: MapSpec, differing: ElementChange[]): string[] {
  const deletes: string[] = [];
  const adds: string[] = [];
  for (const [key, before, after] of differing) {
    if (before === after) continue;
    if (before !== undefined) deletes.push(keyText(spec, key));
    if (after !== undefined) adds.push(`${keyText(spec, key)} : ${after}`);
  }
  const lines: string[] = [];
  if (deletes.length > 0) lines.push(`delete element ${TABLE} ${spec.name} { ${deletes.join(', ')} }`);
  if (adds.length > 0) lines.push(`add element ${TABLE} ${spec.name} { ${adds.join(', ')} }`);
  return lines;
}

/** A stored key in nft's syntax: interface names quoted. */
function keyText(spec: MapSpec, key: string): string {
  return key
    .split(' . ')
    .map((part, index) => (spec.key[index] === 'ifname' ? quoted(part) : part))
    .join(' . ');
}

function sameElements(a: Map<string, string>, b: Map<string, string>): boolean {
  return a.size === b.size && [...a].every(([key, value]) => b.get(key) === value);
}
