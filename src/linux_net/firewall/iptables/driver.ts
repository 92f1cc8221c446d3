import type { CommandSpec, Executor } from '../../command.js';
import { Applied } from '../applied.js';
import type { FirewallDriver, FirewallState } from '../state.js';
import { type Installed, installedAfter, parseSave, type Ruleset, renderRemoval, renderRestore, withWiring } from './plan.js';
import { renderRules } from './render.js';

const RESTORE = ['iptables-restore', '-w', '10', '--noflush'];

/**
 * iptables-restore kept running (linux_net/session.ts): it commits each table at its
 * COMMIT line as it reads, and with -v echoes a comment line once it has read
 * everything before it. A refused line ends it (the next restore starts another).
 */
const RESTORE_SESSION = {
  argv: [...RESTORE, '-v'],
  session: { probe: '# novanet', failsOnStderr: false, oneShot: RESTORE },
} satisfies CommandSpec;

/**
 * Applies novanet's rules. `sync` reads the kernel's state (start-up and the periodic
 * check: repairs drift); `apply` compares with what it last applied, so the work of
 * one change grows with the rules that changed, not with the rules installed.
 */
export class IptablesDriver implements FirewallDriver {
  private readonly applied = new Applied<Installed>();

  constructor(private readonly executor: Executor) {}

  /** Reads the installed rules and repairs every difference; returns what changed. */
  async sync(state: FirewallState): Promise<string[]> {
    const saved = await this.executor.run({ argv: ['iptables-save'] });
    const changed = await this.restore(withWiring(renderRules(state)), parseSave(saved.stdout));
    // The session is started (or found alive) now: the first change after a start does
    // not wait for iptables-restore to start.
    await this.executor.run({ ...RESTORE_SESSION, input: '' });
    return changed;
  }

  /** Applies the chains that differ from the last apply; falls back to sync the first time. */
  async apply(state: FirewallState): Promise<string[]> {
    const installed = this.applied.get();
    if (!installed) return this.sync(state);
    return this.restore(withWiring(renderRules(state)), installed);
  }

  /** Removes every jump and chain of novanet's; returns the chains removed. */
  async remove(): Promise<string[]> {
    this.applied.forget();
    const saved = await this.executor.run({ argv: ['iptables-save'] });
    const { script, changed } = renderRemoval(parseSave(saved.stdout));
    if (script !== '') await this.executor.run({ argv: RESTORE, input: script });
    return changed;
  }

  private async restore(desired: Ruleset, installed: Installed): Promise<string[]> {
    const { script, changed } = renderRestore(desired, installed);
    // A failed restore may have committed some tables and not others: Applied forgets.
    await this.applied.write(
      installedAfter(desired, installed),
      script === '' ? undefined : () => this.executor.run({ ...RESTORE_SESSION, input: script }),
    );
    return changed;
  }
}
