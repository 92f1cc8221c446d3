import { CommandFailed, type Executor } from '../../command.js';
import { type SpellingV6, spellRulesV6 } from '../rules.js';
import type { FirewallState } from '../state.js';
import { parseListing, type TableState } from './parse.js';
import { chainDefinition, chainState, NFT_TABLE } from './plan.js';
import { type NftChain, quoted, SPELLING } from './render.js';

const TABLE = `ip6 ${NFT_TABLE}`;

/** IPv6's own purposes in nft's syntax. */
export const SPELLING_V6: SpellingV6<{ section: 'input'; rule: string }> = {
  'dhcpv6-input': ({ bridge }) => ({ section: 'input', rule: `iifname ${quoted(bridge)} udp dport 547 accept` }),
  'icmpv6-input': ({ bridge }) => ({ section: 'input', rule: `iifname ${quoted(bridge)} meta l4proto ipv6-icmp accept` }),
};

/**
 * The IPv6 rules (firewall/rules.ts's spellRulesV6) in `table ip6 novanet`: the
 * isolation chain, forward and input. As in the IPv4 table, an accept here does not
 * override another table's drop; the drops are VLAN mode's isolation.
 */
export function renderChainsV6(state: FirewallState): NftChain[] {
  const sections = { isolate: [] as string[], forward: [] as string[], input: [] as string[] };
  spellRulesV6(state, SPELLING, SPELLING_V6, ({ section, rule }) => {
    if (section === 'isolate' || section === 'forward' || section === 'input') sections[section].push(rule);
  });
  return [
    { name: 'isolate', rules: sections.isolate },
    { name: 'forward', type: 'filter', hook: 'forward', priority: 0, rules: sections.forward },
    { name: 'input', type: 'filter', hook: 'input', priority: 0, rules: sections.input },
  ];
}

/** Chains, definitions and rule tags, one line each: what is compared, desired with installed. */
function signature(chains: { name: string; head: string; tags: string[] }[]): string {
  return chains.map((chain) => `${chain.name} ${chain.head} ${chain.tags.join(',')}`).join('\n');
}

function installedSignature(state: TableState): string {
  return signature([...state.chains].map(([name, chain]) => ({ name, ...chain })));
}

/**
 * novanet's IPv6 table, while a network has a /64 here: small (a few rules per
 * network), so it is written whole, in one transaction, whenever it differs; a full
 * sync reads the kernel's first, so drift is repaired. Without IPv6 networks the table
 * is removed.
 */
export class NftablesV6 {
  /** The signature last written by this process ('' : no table). */
  private applied: string | undefined;

  constructor(private readonly executor: Executor) {}

  async sync(state: FirewallState, full: boolean): Promise<string[]> {
    const chains = state.networks.some((network) => network.v6) ? renderChainsV6(state) : undefined;
    const wanted = chains ? signature(chains.map((chain) => ({ name: chain.name, ...chainState(chain) }))) : '';
    let current = full ? undefined : this.applied;
    // Without IPv6 networks only whether a table is left matters: `nft list tables`
    // answers that cheaply (and on a host whose nft has no ip6 family, with nothing).
    if (current === undefined) current = wanted === '' ? ((await this.exists()) ? 'left' : '') : await this.read();
    if (current === wanted) {
      this.applied = wanted;
      return [];
    }
    this.applied = undefined;
    const lines = [`add table ${TABLE}`, `delete table ${TABLE}`];
    if (chains) {
      lines.push(`table ${TABLE} {`);
      for (const chain of chains) lines.push(...chainDefinition(chain));
      lines.push('}');
    }
    await this.executor.run({ argv: ['nft', '-f', '-'], input: `${lines.join('\n')}\n` });
    this.applied = wanted;
    return [chains ? `${TABLE}` : `${TABLE} removed`];
  }

  /** Removes the table (the iptables backend has taken over); returns what went. */
  async remove(): Promise<string[]> {
    this.applied = undefined;
    if (!(await this.exists())) return [];
    await this.executor.run({ argv: ['nft', 'delete', 'table', 'ip6', NFT_TABLE] });
    return [TABLE];
  }

  private async exists(): Promise<boolean> {
    const listed = await this.executor.run({ argv: ['nft', 'list', 'tables', 'ip6'], accept: [0, 1] });
    return listed.stdout.split('\n').some((line) => line.trim() === `table ${TABLE}`);
  }

  /** The installed table's signature ('' when there is none). */
  private async read(): Promise<string> {
    const argv = ['nft', '-j', 'list', 'table', 'ip6', NFT_TABLE];
    const listed = await this.executor.run({ argv, accept: [0, 1] });
    if (listed.code === 0) return installedSignature(parseListing(listed.stdout));
    if (/No such file or directory/.test(listed.stderr)) return '';
    throw new CommandFailed(argv, listed.code, listed.stderr, `exit status ${listed.code}`);
  }
}
