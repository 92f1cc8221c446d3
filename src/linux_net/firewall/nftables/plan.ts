import { createHash } from 'node:crypto';
import { CommandFailed, type CommandSpec, type Executor } from '../../command.js';
import type { FirewallDriver, FirewallState, FloatingRule } from '../state.js';

/** novanet's table (`table ip novanet`): everything in it is ours, nothing outside it is. */
export const NFT_TABLE = 'novanet';
const TABLE = `ip ${NFT_TABLE}`;

/** A base chain: its hook and the rules in it, in order. */
export interface NftChain {
  name: string;
  type: 'nat' | 'filter';
  hook: 'prerouting' | 'output' | 'postrouting' | 'forward' | 'input';
  priority: number;
  rules: string[];
}

type KeyType = 'ipv4_addr' | 'ifname';

interface MapSpec {
  name: MapName;
  key: KeyType[];
}

/**
 * The floating IPs, one element each per map, so associating one is an element added
 * in ~3 ms whatever the number installed (docs/decisions.md, Firewall backends).
 */
export const MAPS = [
  /** floating → fixed: DNAT in prerouting and output. */
  { name: 'floating_dnat', key: ['ipv4_addr'] },
  /** fixed . outgoing interface → floating: a VM's own traffic leaves as its floating IP. */
  { name: 'floating_snat', key: ['ipv4_addr', 'ifname'] },
  /** fixed → floating, for DNATed connections: a VM reaching another's floating IP is seen from its own. */
  { name: 'floating_hairpin', key: ['ipv4_addr'] },
] as const satisfies readonly MapSpec[];

export type MapName = 'floating_dnat' | 'floating_snat' | 'floating_hairpin';

/**
 * Element keys as their parts joined by ' . ' (unquoted), values as addresses, in the
 * order they were added.
 */
export type Elements = Record<MapName, Map<string, string>>;

/** The whole table novanet wants. */
export interface NftRuleset {
  chains: NftChain[];
  elements: Elements;
}

const PRIORITY = { dstnat: -100, filter: 0, srcnat: 100 } as const;

/**
 * nova's rules (rules.ts renders the same for iptables) in one table of base chains:
 * SNAT of each fixed range with its ACCEPT exceptions, the metadata and VPN DNATs,
 * bridge forwarding, DHCP/DNS input, and floating IPs through maps. nftables has no
 * CHECKSUM target: the mangle rule that fills DHCP replies' checksums has no equal.
 */
export function renderNftables(state: FirewallState): NftRuleset {
  const elements = new FloatingElements();
  elements.update(state.floating);
  return { chains: renderChains(state), elements: elements.elements };
}

/** The base chains of renderNftables: everything but the floating IPs' elements. */
function renderChains(state: FirewallState): NftChain[] {
  const prerouting: string[] = [
    state.metadataHost === '127.0.0.1'
      ? `ip daddr 169.254.169.254 tcp dport 80 redirect to :${state.metadataPort}`
      : `ip daddr 169.254.169.254 tcp dport 80 dnat to ${state.metadataHost}:${state.metadataPort}`,
  ];
  const output: string[] = [];
  const exceptions: string[] = [];
  const snat: string[] = [];
  const forward: string[] = [];
  const input: string[] = [];
  for (const network of state.networks) {
    const { cidr, bridge } = network;
    exceptions.push(
      `ip saddr ${cidr} ip daddr ${state.metadataHost} accept`,
      ...state.dmzCidrs.map((dmz) => `ip saddr ${cidr} ip daddr ${dmz} accept`),
      // `! dnat`: the bit is clear. (`!= dnat` would compare the whole status word.)
      `ip saddr ${cidr} ip daddr ${cidr} ct status ! dnat accept`,
    );
    snat.push(
      // Hairpin: a VM reaching a floating IP of its own network (rules.ts says why).
      `ip saddr ${cidr} ip daddr ${cidr} ct status dnat snat to ${network.gateway}`,
      `ip saddr ${cidr} oifname ${quoted(state.publicInterface)} snat to ${state.routingSourceIp}`,
    );
    forward.push(`iifname ${quoted(bridge)} accept`, `oifname ${quoted(bridge)} accept`);
    if (network.dhcp) {
      input.push(
        `iifname ${quoted(bridge)} udp dport 67 accept`,
        `iifname ${quoted(bridge)} udp dport 53 accept`,
        `iifname ${quoted(bridge)} tcp dport 53 accept`,
      );
    }
    if (network.vpn) {
      const { publicAddress, publicPort, privateAddress } = network.vpn;
      const dnat = `ip daddr ${publicAddress} udp dport ${publicPort} dnat to ${privateAddress}:1194`;
      prerouting.push(dnat);
      output.push(dnat);
      forward.push(`ip daddr ${privateAddress} udp dport 1194 accept`);
    }
  }
  const floatingDnat = 'dnat to ip daddr map @floating_dnat';
  return [
    { name: 'prerouting', type: 'nat', hook: 'prerouting', priority: PRIORITY.dstnat, rules: [...prerouting, floatingDnat] },
    { name: 'output', type: 'nat', hook: 'output', priority: PRIORITY.dstnat, rules: [...output, floatingDnat] },
    {
      name: 'postrouting',
      type: 'nat',
      hook: 'postrouting',
      priority: PRIORITY.srcnat,
      // nova's third floating rule (`-s FIX -d FIX`) is the hairpin map's case: a VM
      // reaches its own fixed address through the host only by DNAT.
      rules: [...exceptions, 'ct status dnat snat to ip saddr map @floating_hairpin', 'snat to ip saddr . oifname map @floating_snat', ...snat],
    },
    { name: 'forward', type: 'filter', hook: 'forward', priority: PRIORITY.filter, rules: forward },
    { name: 'input', type: 'filter', hook: 'input', priority: PRIORITY.filter, rules: input },
  ];
}

/** Each map's keys that changed, with their value before (undefined: absent). */
type ElementChanges = Record<MapName, Map<string, string | undefined>>;

/** A floating IP's key in the snat map, made once per rule object (FloatingBindings keeps an unchanged rule's object). */
const snatKeys = new WeakMap<FloatingRule, string>();

function snatKey(rule: FloatingRule): string {
  let key = snatKeys.get(rule);
  if (key === undefined) snatKeys.set(rule, (key = `${rule.fixed} . ${rule.interface}`));
  return key;
}

/** Each map's key and value for a floating IP. */
const ELEMENT: Record<MapName, { key: (rule: FloatingRule) => string; value: (rule: FloatingRule) => string }> = {
  floating_dnat: { key: (rule) => rule.address, value: (rule) => rule.fixed },
  floating_snat: { key: snatKey, value: (rule) => rule.address },
  floating_hairpin: { key: (rule) => rule.fixed, value: (rule) => rule.address },
};

const MAP_NAMES = MAPS.map((spec) => spec.name);

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
 * as the list changes: associating one among thousands touches its own keys only.
 * Rebuilding the maps for every apply took ~5 ms and ~4 MB of garbage at 5,000
 * (docs/decisions.md, Firewall backends). A fixed address with two floating IPs on one
 * interface goes out as the first in the list, as the first of nova's rules would win.
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
    for (const map of MAP_NAMES) {
      const { key: keyOf, value } = ELEMENT[map];
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
        const after = winner && value(winner);
        if (before === after) continue;
        changes[map].set(key, before);
        if (after === undefined) elements.delete(key);
        else elements.set(key, after);
      }
    }
    return changes;
  }
}

/** Interface names are validated before they get here; quoted as nft prints them. */
function quoted(name: string): string {
  return `"${name}"`;
}

/**
 * Each rule carries a short hash of its text as its comment: the kernel prints rules
 * in its own spelling, so installed rules are recognised by their comment instead.
 */
export function ruleTag(rule: string): string {
  return createHash('sha256').update(rule).digest('hex').slice(0, 16);
}

/** What can be compared of a table: each chain's definition and rule tags, each map's type and elements. */
export interface TableState {
  chains: Map<string, { head: string; tags: string[] }>;
  maps: Map<string, { type: string; elements: Map<string, string> }>;
}

function chainHead(type: string, hook: string, priority: number, policy: string): string {
  return `type ${type} hook ${hook} priority ${priority}; policy ${policy};`;
}

function mapType(spec: MapSpec): string {
  return `${spec.key.join(' . ')} : ipv4_addr`;
}

/** The desired table in the form installed tables are read into. */
export function desiredState(ruleset: NftRuleset): TableState {
  return {
    chains: new Map(ruleset.chains.map((chain) => [chain.name, { head: chainHead(chain.type, chain.hook, chain.priority, 'accept'), tags: chain.rules.map(ruleTag) }])),
    maps: new Map(MAPS.map((spec) => [spec.name, { type: mapType(spec), elements: ruleset.elements[spec.name] }])),
  };
}

/** One object of `nft -j list table`'s array (only what we read of it). */
interface JsonObject {
  chain?: { name: string; type?: string; hook?: string; prio?: number; policy?: string };
  rule?: { chain: string; comment?: string };
  map?: { name: string; type: string | string[]; map: string; elem?: unknown[] };
  set?: { name: string };
}

/** Reads `nft -j list table ip novanet`; other objects of the table (a set made by hand) count as a differing structure. */
export function parseListing(json: string): TableState {
  const objects = (JSON.parse(json) as { nftables: JsonObject[] }).nftables;
  const state: TableState = { chains: new Map(), maps: new Map() };
  for (const object of objects) {
    if (object.chain) {
      const { name, type, hook, prio, policy } = object.chain;
      state.chains.set(name, { head: type ? chainHead(type, hook ?? '', prio ?? 0, policy ?? 'accept') : 'regular', tags: [] });
    } else if (object.rule) {
      state.chains.get(object.rule.chain)?.tags.push(object.rule.comment ?? 'untagged');
    } else if (object.map) {
      const { name, type, map, elem } = object.map;
      const key = Array.isArray(type) ? type : [type];
      state.maps.set(name, { type: `${key.join(' . ')} : ${map}`, elements: new Map((elem ?? []).map(elementPair)) });
    } else if (object.set) {
      state.maps.set(object.set.name, { type: 'set', elements: new Map() });
    }
  }
  return state;
}

/** `["10.0.0.2", "10.0.0.3"]` or `[{"concat": ["10.0.0.2", "eth0"]}, "192.0.2.65"]`; an element with options wraps its key in `{"elem": {"val": ...}}`. */
function elementPair(entry: unknown): [string, string] {
  const [key, value] = entry as [unknown, unknown];
  const plain = (part: unknown): string => {
    if (typeof part === 'string' || typeof part === 'number') return String(part);
    const object = part as { concat?: unknown[]; elem?: { val: unknown } };
    if (object.concat) return object.concat.map(plain).join(' . ');
    if (object.elem) return plain(object.elem.val);
    return JSON.stringify(part);
  };
  return [plain(key), plain(value)];
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
      ? [...differingNames(desired.chains, installed.chains, (a, b) => a.head === b.head && sameList(a.tags, b.tags)),
        ...differingNames(desired.maps, installed.maps, (a, b) => a.type === b.type && sameElements(a.elements, b.elements))]
      : ['table'];
    return { script: renderTable(ruleset, installed !== undefined), changed: changed.map((name) => `${TABLE}/${name}`), edit: false, desired };
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
  return sameKeys(desired.chains, installed.chains)
    && sameKeys(desired.maps, installed.maps)
    && [...desired.chains].every(([name, chain]) => installed.chains.get(name)!.head === chain.head)
    && [...desired.maps].every(([name, map]) => installed.maps.get(name)!.type === map.type);
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
  for (const chain of ruleset.chains) {
    lines.push(`\tchain ${chain.name} {`, `\t\t${chainHead(chain.type, chain.hook, chain.priority, 'accept')}`);
    lines.push(...chain.rules.map((rule) => `\t\t${tagged(rule)}`), '\t}');
  }
  lines.push('}');
  for (const spec of MAPS) lines.push(...elementEdit(spec, differences(new Map(), ruleset.elements[spec.name])));
  return `${lines.join('\n')}\n`;
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
  return key.split(' . ').map((part, index) => (spec.key[index] === 'ifname' ? quoted(part) : part)).join(' . ');
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((item, index) => item === b[index]);
}

function sameElements(a: Map<string, string>, b: Map<string, string>): boolean {
  return a.size === b.size && [...a].every(([key, value]) => b.get(key) === value);
}

/**
 * `nft -i`, kept running for edits (session.ts). `describe` is answered by nft itself,
 * without the kernel. nft -i keeps a history file in HOME, which novanet has no use for:
 * HOME is set on the command line, as a root_helper such as sudo resets the environment.
 */
const NFT_SESSION = {
  argv: ['env', 'HOME=/nonexistent', 'nft', '-i'],
  session: { probe: 'describe ip saddr', failsOnStderr: true, oneShot: ['nft', '-f', '-'] },
} satisfies CommandSpec;

/**
 * novanet's nftables table. `sync` reads the kernel (`nft -j list table`) and repairs
 * any drift; `apply` compares with what it last applied, so a floating IP associated
 * among thousands is one `add element` (plus its `delete element` when it moved).
 * Every change is one transaction, which applies whole or not at all: an edit through
 * the `nft -i` session, a new table through `nft -f -`.
 */
export class NftablesDriver implements FirewallDriver {
  private applied: TableState | undefined;
  /** The floating IPs' elements, kept from one apply to the next. */
  private readonly floating = new FloatingElements();

  constructor(private readonly executor: Executor) {}

  async sync(state: FirewallState): Promise<string[]> {
    this.applied = undefined;
    const installed = await this.read();
    this.floating.update(state.floating);
    const changed = await this.write(this.ruleset(state), installed);
    // The session is started (or found alive) now: the first change after a start does
    // not wait for nft -i to start.
    await this.executor.run({ ...NFT_SESSION, input: '' });
    return changed;
  }

  async apply(state: FirewallState): Promise<string[]> {
    const installed = this.applied;
    if (!installed) return this.sync(state);
    const changes = this.floating.update(state.floating);
    return this.write(this.ruleset(state), installed, changes);
  }

  /** renderNftables, with the elements kept up to date instead of made anew. */
  private ruleset(state: FirewallState): NftRuleset {
    return { chains: renderChains(state), elements: this.floating.elements };
  }

  /** The installed table, or undefined when there is none. */
  async read(): Promise<TableState | undefined> {
    const argv = ['nft', '-j', 'list', 'table', 'ip', NFT_TABLE];
    const listed = await this.executor.run({ argv, accept: [0, 1] });
    if (listed.code === 0) return parseListing(listed.stdout);
    if (/No such file or directory/.test(listed.stderr)) return undefined;
    throw new CommandFailed(argv, listed.code, listed.stderr, `exit status ${listed.code}`);
  }

  /** Deletes novanet's table (the iptables backend has taken over); returns what went. */
  async remove(): Promise<string[]> {
    this.applied = undefined;
    const listed = await this.executor.run({ argv: ['nft', 'list', 'tables', 'ip'] });
    if (!listed.stdout.split('\n').some((line) => line.trim() === `table ${TABLE}`)) return [];
    await this.executor.run({ argv: ['nft', 'delete', 'table', 'ip', NFT_TABLE] });
    return [`table ${TABLE}`];
  }

  /**
   * Until it has written, nothing is believed installed: after any failure (a refused
   * transaction changes nothing, but what we believed may be why it failed; the elements
   * have moved on already) the next apply reads the kernel again.
   */
  private async write(ruleset: NftRuleset, installed: TableState | undefined, changes?: ElementChanges): Promise<string[]> {
    this.applied = undefined;
    const { script, changed, edit, desired } = planNftables(ruleset, installed, changes);
    if (script !== '') {
      // nft -i applies a line as one transaction: the edit's commands go on one line.
      if (edit) await this.executor.run({ ...NFT_SESSION, input: `${script.trimEnd().split('\n').join('; ')}\n` });
      else await this.executor.run({ argv: ['nft', '-f', '-'], input: script });
    }
    this.applied = desired;
    return changed;
  }
}
