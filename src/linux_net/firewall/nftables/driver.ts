import { CommandFailed, type CommandResult, type CommandSpec, type Executor } from '../../command.js';
import { Applied } from '../applied.js';
import type { FirewallDriver, FirewallState } from '../state.js';
import { type ElementChanges, FloatingElements } from './elements.js';
import { NftablesV6 } from './ipv6.js';
import { parseListing, type TableState } from './parse.js';
import { NFT_TABLE, type NftRuleset, planNftables } from './plan.js';
import { renderChains } from './render.js';

/**
 * `nft -i`, kept running for edits (linux_net/session.ts). `describe` is answered by
 * nft itself, without the kernel. nft -i keeps a history file in HOME, which novanet
 * has no use for: HOME is set on the command line, as a root_helper such as sudo
 * resets the environment.
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
  private readonly applied = new Applied<TableState>();
  /** The floating IPs' elements, kept from one apply to the next. */
  private readonly floating = new FloatingElements();
  /** The IPv6 table, while a network has a /64 here. */
  private readonly v6: NftablesV6;

  constructor(private readonly executor: Executor) {
    this.v6 = new NftablesV6(executor);
  }

  async sync(state: FirewallState): Promise<string[]> {
    this.applied.forget();
    const installed = await this.read();
    this.floating.update(state.floating);
    const changed = await this.write(this.ruleset(state), installed);
    // The session is started (or found alive) now: the first change after a start does
    // not wait for nft -i to start.
    await this.executor.run({ ...NFT_SESSION, input: '' });
    return [...changed, ...(await this.v6.sync(state, true))];
  }

  async apply(state: FirewallState): Promise<string[]> {
    const installed = this.applied.get();
    if (!installed) return this.sync(state);
    const changes = this.floating.update(state.floating);
    const changed = await this.write(this.ruleset(state), installed, changes);
    return [...changed, ...(await this.v6.sync(state, false))];
  }

  /** The table wanted: the chains rendered, the elements kept up to date instead of made anew. */
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
    this.applied.forget();
    const removed = await this.v6.remove();
    const listed = await this.executor.run({ argv: ['nft', 'list', 'tables', 'ip'] });
    if (!listed.stdout.split('\n').some((line) => line.trim() === `table ip ${NFT_TABLE}`)) return removed;
    await this.executor.run({ argv: ['nft', 'delete', 'table', 'ip', NFT_TABLE] });
    return [`table ip ${NFT_TABLE}`, ...removed];
  }

  /**
   * A refused transaction changes nothing, but what we believed may be why it was
   * refused, and the elements have moved on already: after a failure, the next apply
   * reads the kernel again.
   */
  private async write(ruleset: NftRuleset, installed: TableState | undefined, changes?: ElementChanges): Promise<string[]> {
    const { script, changed, edit, desired } = planNftables(ruleset, installed, changes);
    await this.applied.write(desired, script === '' ? undefined : () => this.transaction(script, edit));
    return changed;
  }

  /** An edit goes to the session, its commands on one line (nft -i applies a line as one transaction); a new table to nft -f -. */
  private transaction(script: string, edit: boolean): Promise<CommandResult> {
    if (edit) return this.executor.run({ ...NFT_SESSION, input: `${script.trimEnd().split('\n').join('; ')}\n` });
    return this.executor.run({ argv: ['nft', '-f', '-'], input: script });
  }
}
