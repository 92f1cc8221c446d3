import { sameList } from '../applied.js';

export const TABLES = ['filter', 'nat', 'mangle'] as const;
export type Table = (typeof TABLES)[number];

/**
 * novanet's chains and their rules, table by table. Rules are written the way
 * iptables-save prints them, so desired and installed rules compare as text.
 */
export type Ruleset = Record<Table, Record<string, string[]>>;

/** A rule novanet puts in a built-in chain to reach its own chains. */
interface Jump {
  table: Table;
  chain: string;
  rule: string;
  /** 'top' inserts at position 1 (so a DROP policy or a foreign rule cannot shadow it). */
  position: 'top' | 'bottom';
}

/** nova's chain names, so operators' habits and scripts keep working. */
export const CHAINS: Record<Table, string[]> = {
  filter: ['nova-filter-top', 'nova-network-FORWARD', 'nova-network-INPUT', 'nova-network-isolate'],
  nat: [
    'nova-network-PREROUTING',
    'nova-network-OUTPUT',
    'nova-network-POSTROUTING',
    'nova-postrouting-bottom',
    'nova-network-snat',
    'nova-network-float-snat',
  ],
  mangle: ['nova-network-POSTROUTING'],
};

/** Floating IPs' rules live in chains of one /24 each, made and removed as needed (render.ts). */
export const FLOATING_CHAIN_PREFIX = 'nova-float-';

/** The jumps from the built-in chains into nova's. */
const JUMPS: Jump[] = [
  { table: 'filter', chain: 'FORWARD', rule: '-j nova-filter-top', position: 'top' },
  { table: 'filter', chain: 'INPUT', rule: '-j nova-network-INPUT', position: 'top' },
  { table: 'nat', chain: 'PREROUTING', rule: '-j nova-network-PREROUTING', position: 'top' },
  { table: 'nat', chain: 'OUTPUT', rule: '-j nova-network-OUTPUT', position: 'top' },
  { table: 'nat', chain: 'POSTROUTING', rule: '-j nova-network-POSTROUTING', position: 'top' },
  { table: 'nat', chain: 'POSTROUTING', rule: '-j nova-postrouting-bottom', position: 'bottom' },
  { table: 'mangle', chain: 'POSTROUTING', rule: '-j nova-network-POSTROUTING', position: 'bottom' },
];

/**
 * One address family's chains and jumps, and its tools. IPv6 has nova's filter chains
 * only: its fixed /64s are routed, never NATed (nova wrote no v6 NAT either).
 */
export interface IptablesFamily {
  save: string;
  restore: string;
  chains: Record<Table, string[]>;
  jumps: Jump[];
  /** Before each change line (none for IPv4, as before IPv6 had rules). */
  label: string;
}

export const IPV4: IptablesFamily = { save: 'iptables-save', restore: 'iptables-restore', chains: CHAINS, jumps: JUMPS, label: '' };

export const IPV6: IptablesFamily = {
  save: 'ip6tables-save',
  restore: 'ip6tables-restore',
  chains: { filter: CHAINS.filter, nat: [], mangle: [] },
  jumps: JUMPS.filter((jump) => jump.table === 'filter'),
  label: 'ip6 ',
};

/** The fixed wiring between novanet's own chains, added to every ruleset. */
export function withWiring(ruleset: Ruleset, family = IPV4): Ruleset {
  const wired = emptyRuleset(family);
  for (const table of TABLES) Object.assign(wired[table], ruleset[table]);
  wired.filter['nova-filter-top'] = ['-j nova-network-FORWARD'];
  if (family.chains.nat.length > 0) {
    wired.nat['nova-postrouting-bottom'] = ['-j nova-network-snat'];
    wired.nat['nova-network-snat'] = ['-j nova-network-float-snat', ...(ruleset.nat['nova-network-snat'] ?? [])];
  }
  return wired;
}

export function emptyRuleset(family = IPV4): Ruleset {
  const ruleset = { filter: {}, nat: {}, mangle: {} } as Ruleset;
  for (const table of TABLES) for (const chain of family.chains[table]) ruleset[table][chain] = [];
  return ruleset;
}

/** What iptables-save shows: per table, each chain's rules in order. */
export type Installed = Record<Table, Map<string, string[]>>;

/**
 * Reads iptables-save's text (with or without -c): every chain of filter, nat and
 * mangle, ours and foreign, with its rules as printed. Other tables and comments are
 * skipped.
 */
export function parseSave(text: string): Installed {
  const installed: Installed = { filter: new Map(), nat: new Map(), mangle: new Map() };
  let table: Map<string, string[]> | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      const name = line.slice(1).trim();
      table = (TABLES as readonly string[]).includes(name) ? installed[name as Table] : undefined;
    } else if (!table) {
    } else if (line.startsWith(':')) {
      const chain = line.slice(1).split(' ')[0]!;
      if (!table.has(chain)) table.set(chain, []);
    } else {
      // `iptables-save -c` prefixes each rule with its counters: `[pkts:bytes] -A ...`.
      const rule = line.replace(/^\[\d+:\d+\] /, '');
      if (!rule.startsWith('-A ')) continue;
      const rest = rule.slice(3);
      const space = rest.indexOf(' ');
      // A rule with neither match nor target prints as a bare `-A CHAIN`.
      const chain = space === -1 ? rest : rest.slice(0, space);
      const rules = table.get(chain) ?? [];
      rules.push(space === -1 ? '' : rest.slice(space + 1));
      table.set(chain, rules);
    }
  }
  return installed;
}

/**
 * The iptables-restore --noflush input that turns `installed` into `desired` for
 * novanet's chains only: a chain is declared (which empties it) and refilled only when
 * its rules differ; missing jumps are inserted. Nothing else is touched, so foreign
 * chains and rules keep their place. Returns '' when nothing differs.
 */
export function renderRestore(desired: Ruleset, installed: Installed, family = IPV4): { script: string; changed: string[] } {
  const sections: string[] = [];
  const changed: string[] = [];
  for (const table of TABLES) {
    // Every declaration comes before any rule: iptables-restore refuses a jump to a
    // chain declared further down ("Chain '...' does not exist").
    const declarations: string[] = [];
    const rules: string[] = [];
    for (const [chain, wanted] of Object.entries(desired[table])) {
      const current = installed[table].get(chain);
      if (current && sameList(current, wanted)) continue;
      changed.push(`${family.label}${table}/${chain}`);
      const edit = current ? chainEdit(chain, current, wanted) : undefined;
      if (edit && edit.length <= wanted.length) {
        rules.push(...edit);
      } else {
        declarations.push(`:${chain} - [0:0]`);
        rules.push(...wanted.map((rule) => `-A ${chain} ${rule}`));
      }
    }
    for (const jump of family.jumps.filter((candidate) => candidate.table === table)) {
      if (installed[table].get(jump.chain)?.includes(jump.rule)) continue;
      changed.push(`${family.label}${table}/${jump.chain}:${jump.rule}`);
      rules.push(jump.position === 'top' ? `-I ${jump.chain} 1 ${jump.rule}` : `-A ${jump.chain} ${jump.rule}`);
    }
    // Floating chains no longer wanted go once their jumps have gone (above).
    for (const chain of staleChains(desired[table], installed[table])) {
      changed.push(`${family.label}${table}/${chain}`);
      rules.push(`-F ${chain}`, `-X ${chain}`);
    }
    if (declarations.length + rules.length > 0) sections.push(`*${table}`, ...declarations, ...rules, 'COMMIT');
  }
  return { script: sections.length === 0 ? '' : `${sections.join('\n')}\n`, changed };
}

/**
 * The lines that turn `current` into `wanted` in place: the rules between their common
 * head and tail are deleted by position, and the new ones inserted there. Adding or
 * removing one rule is one line, however long the chain (a floating IP among
 * thousands), instead of declaring and refilling the whole chain.
 */
export function chainEdit(chain: string, current: string[], wanted: string[]): string[] {
  let head = 0;
  while (head < current.length && head < wanted.length && current[head] === wanted[head]) head++;
  let currentEnd = current.length;
  let wantedEnd = wanted.length;
  while (currentEnd > head && wantedEnd > head && current[currentEnd - 1] === wanted[wantedEnd - 1]) {
    currentEnd--;
    wantedEnd--;
  }
  const lines: string[] = [];
  for (let index = head; index < currentEnd; index++) lines.push(`-D ${chain} ${head + 1}`);
  // At the end of the chain, append: an insert by position makes iptables-nft read the chain.
  const atEnd = currentEnd === current.length;
  for (let index = head; index < wantedEnd; index++)
    lines.push(atEnd ? `-A ${chain} ${wanted[index]}` : `-I ${chain} ${index + 1} ${wanted[index]}`);
  return lines;
}

/** novanet's floating chains that are installed but no longer wanted. */
function staleChains(desired: Record<string, string[]>, installed: Map<string, string[]>): string[] {
  return [...installed.keys()].filter((chain) => chain.startsWith(FLOATING_CHAIN_PREFIX) && !(chain in desired));
}

/**
 * The iptables-restore --noflush input that removes every jump and chain of novanet's
 * from `installed` (the nftables backend has taken over). Foreign rules stay.
 */
export function renderRemoval(installed: Installed, family = IPV4): { script: string; changed: string[] } {
  const sections: string[] = [];
  const changed: string[] = [];
  for (const table of TABLES) {
    const lines: string[] = [];
    for (const jump of family.jumps.filter((candidate) => candidate.table === table)) {
      for (const rule of installed[table].get(jump.chain) ?? []) if (rule === jump.rule) lines.push(`-D ${jump.chain} ${jump.rule}`);
    }
    const ours = [...installed[table].keys()].filter(
      (chain) => family.chains[table].includes(chain) || chain.startsWith(FLOATING_CHAIN_PREFIX),
    );
    // Flushed before any is deleted: our chains jump to each other.
    lines.push(...ours.map((chain) => `-F ${chain}`), ...ours.map((chain) => `-X ${chain}`));
    changed.push(...ours.map((chain) => `${family.label}${table}/${chain}`));
    if (lines.length > 0) sections.push(`*${table}`, ...lines, 'COMMIT');
  }
  return { script: sections.length === 0 ? '' : `${sections.join('\n')}\n`, changed };
}

/** What is installed once renderRestore's script for `desired` has run on `installed`. */
export function installedAfter(desired: Ruleset, installed: Installed, family = IPV4): Installed {
  const next: Installed = { filter: new Map(installed.filter), nat: new Map(installed.nat), mangle: new Map(installed.mangle) };
  for (const table of TABLES) {
    for (const chain of staleChains(desired[table], installed[table])) next[table].delete(chain);
    // Rendered arrays are never changed afterwards: kept as they are, not copied.
    for (const [chain, rules] of Object.entries(desired[table])) next[table].set(chain, rules);
    for (const jump of family.jumps.filter((candidate) => candidate.table === table)) {
      const rules = next[table].get(jump.chain) ?? [];
      if (!rules.includes(jump.rule)) next[table].set(jump.chain, jump.position === 'top' ? [jump.rule, ...rules] : [...rules, jump.rule]);
    }
  }
  return next;
}
