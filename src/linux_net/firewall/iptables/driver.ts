import { CommandFailed, type CommandSpec, type Executor } from '../../command.js';
import { Applied } from '../applied.js';
import type { FirewallDriver, FirewallState } from '../state.js';
import {
  type Installed,
  IPV4,
  IPV6,
  type IptablesFamily,
  installedAfter,
  parseSave,
  type Ruleset,
  renderRemoval,
  renderRestore,
  withWiring,
} from './plan.js';
import { renderRules, renderRulesV6 } from './render.js';

/** Each family's tools, its chains and how its rules are rendered. */
const FAMILIES = {
  ipv4: { family: IPV4, render: renderRules },
  ipv6: { family: IPV6, render: renderRulesV6 },
} satisfies Record<string, { family: IptablesFamily; render: (state: FirewallState) => Ruleset }>;

/**
 * iptables-restore kept running (linux_net/session.ts): it commits each table at its
 * COMMIT line as it reads, and with -v echoes a comment line once it has read
 * everything before it. A refused line ends it (the next restore starts another).
 */
function restoreCommands(family: IptablesFamily): { once: string[]; session: CommandSpec } {
  const once = [family.restore, '-w', '10', '--noflush'];
  return { once, session: { argv: [...once, '-v'], session: { probe: '# novanet', failsOnStderr: false, oneShot: once } } };
}

/**
 * Applies novanet's rules. `sync` reads the kernel's state (start-up and the periodic
 * check: repairs drift); `apply` compares with what it last applied, so the work of
 * one change grows with the rules that changed, not with the rules installed.
 */
export class IptablesDriver implements FirewallDriver {
  private readonly applied = new Applied<Installed>();
  private readonly family: IptablesFamily;
  private readonly render: (state: FirewallState) => Ruleset;
  private readonly restoreOnce: string[];
  private readonly restoreSession: CommandSpec;

  constructor(
    private readonly executor: Executor,
    which: keyof typeof FAMILIES = 'ipv4',
  ) {
    ({ family: this.family, render: this.render } = FAMILIES[which]);
    ({ once: this.restoreOnce, session: this.restoreSession } = restoreCommands(this.family));
  }

  /** Reads the installed rules and repairs every difference; returns what changed. */
  async sync(state: FirewallState): Promise<string[]> {
    const saved = await this.executor.run({ argv: [this.family.save] });
    const changed = await this.restore(this.desired(state), parseSave(saved.stdout));
    // The session is started (or found alive) now: the first change after a start does
    // not wait for iptables-restore to start.
    await this.executor.run({ ...this.restoreSession, input: '' });
    return changed;
  }

  /** Applies the chains that differ from the last apply; falls back to sync the first time. */
  async apply(state: FirewallState): Promise<string[]> {
    const installed = this.applied.get();
    if (!installed) return this.sync(state);
    return this.restore(this.desired(state), installed);
  }

  /** Removes every jump and chain of novanet's; returns the chains removed. */
  async remove(): Promise<string[]> {
    this.applied.forget();
    const saved = await this.executor.run({ argv: [this.family.save] });
    const { script, changed } = renderRemoval(parseSave(saved.stdout), this.family);
    if (script !== '') await this.executor.run({ argv: this.restoreOnce, input: script });
    return changed;
  }

  private desired(state: FirewallState): Ruleset {
    return withWiring(this.render(state), this.family);
  }

  private async restore(desired: Ruleset, installed: Installed): Promise<string[]> {
    const { script, changed } = renderRestore(desired, installed, this.family);
    // A failed restore may have committed some tables and not others: Applied forgets.
    await this.applied.write(
      installedAfter(desired, installed, this.family),
      script === '' ? undefined : () => this.executor.run({ ...this.restoreSession, input: script }),
    );
    return changed;
  }
}

/**
 * The iptables backend: nova's chains for IPv4 (iptables) and their filter part for
 * IPv6 (ip6tables), the latter only while a network has an IPv6 /64 here, so a host
 * without IPv6 (no ip6tables, or a kernel booted without it) runs as before.
 */
export class IptablesBackend implements FirewallDriver {
  private readonly v4: IptablesDriver;
  private readonly v6: IptablesDriver;
  /** Whether IPv6 rules may be installed (this process wrote some, or has not looked yet). */
  private v6Installed = true;

  constructor(executor: Executor) {
    this.v4 = new IptablesDriver(executor);
    this.v6 = new IptablesDriver(executor, 'ipv6');
  }

  async sync(state: FirewallState): Promise<string[]> {
    const changed = await this.v4.sync(state);
    if (hasV6(state)) {
      this.v6Installed = true;
      return [...changed, ...(await this.v6.sync(state))];
    }
    return [...changed, ...(await this.removeV6())];
  }

  async apply(state: FirewallState): Promise<string[]> {
    const changed = await this.v4.apply(state);
    if (hasV6(state)) {
      this.v6Installed = true;
      return [...changed, ...(await this.v6.apply(state))];
    }
    return this.v6Installed ? [...changed, ...(await this.removeV6())] : changed;
  }

  async remove(): Promise<string[]> {
    return [...(await this.v4.remove()), ...(await this.removeV6())];
  }

  /** The IPv6 rules of an earlier run removed; a host where ip6tables cannot run has none. */
  private async removeV6(): Promise<string[]> {
    try {
      return await this.v6.remove();
    } catch (error) {
      if (!(error instanceof CommandFailed)) throw error;
      return [];
    } finally {
      this.v6Installed = false;
    }
  }
}

function hasV6(state: FirewallState): boolean {
  return state.networks.some((network) => network.v6);
}
