/**
 * The kernel side of the associate bench: the nat lines of floating IPs (novanet's own
 * renderRules text), the naive baseline that rewrites the whole nat table for each
 * change, and the check that the kernel holds exactly what it should.
 */
import type { Executor } from '../../src/linux_net/command.js';
import { renderRules } from '../../src/linux_net/firewall/iptables/render.js';
import type { FirewallState, FloatingRule } from '../../src/linux_net/firewall/state.js';
import type { FloatingDriver } from '../../src/linux_net/floating.js';

/** A firewall with nothing but these floating IPs: what renderRules adds for them alone. */
function floatingOnly(floating: FloatingRule[]): FirewallState {
  return {
    publicInterface: 'eth0',
    routingSourceIp: '192.0.2.1',
    metadataHost: '192.0.2.1',
    metadataPort: 8775,
    dmzCidrs: [],
    networks: [],
    floating,
  };
}

/**
 * The nat rules of these floating IPs as iptables-save prints them (`-A CHAIN RULE`),
 * taken from renderRules so the bench never spells a rule of its own.
 */
export function floatingNatLines(rules: FloatingRule[]): string[] {
  const bare = renderRules(floatingOnly([])).nat;
  const lines: string[] = [];
  for (const [chain, chainRules] of Object.entries(renderRules(floatingOnly(rules)).nat)) {
    const common = new Set(bare[chain] ?? []);
    for (const rule of chainRules) if (!common.has(rule)) lines.push(`-A ${chain} ${rule}`);
  }
  return lines;
}

/**
 * nova's IptablesManager way of applying one change, the baseline: `iptables-save` of
 * the nat table, the floating IP's lines added (before COMMIT: appended to their
 * chains, declaring a chain it needs that is missing) or removed in the text, and the
 * whole table restored without --noflush, so the kernel rebuilds every rule of it.
 * The jumps to a /24's chains are shared with its other addresses: added when
 * missing, never removed.
 */
export async function naiveNatChange(executor: Executor, rule: FloatingRule, change: 'add' | 'remove'): Promise<void> {
  const lines = floatingNatLines([rule]);
  const own = lines.filter((line) => line.includes(`${rule.address}/32`) || line.endsWith(` ${rule.address}`));
  const saved = (await executor.run({ argv: ['iptables-save', '-t', 'nat'] })).stdout.split('\n');
  let edited: string[];
  if (change === 'add') {
    const commit = saved.indexOf('COMMIT');
    if (commit === -1) throw new Error('iptables-save -t nat printed no COMMIT');
    const present = new Set(saved);
    const declared = new Set(saved.filter((line) => line.startsWith(':')).map((line) => line.slice(1).split(' ')[0]));
    const missing = [...new Set(lines.map((line) => line.split(' ')[1]!))]
      .filter((chain) => !declared.has(chain))
      .map((chain) => `:${chain} - [0:0]`);
    const table = saved.indexOf('*nat');
    edited = [
      ...saved.slice(0, table + 1),
      ...missing,
      ...saved.slice(table + 1, commit),
      ...lines.filter((line) => !present.has(line)),
      ...saved.slice(commit),
    ];
  } else {
    const gone = new Set(own);
    edited = saved.filter((line) => !gone.has(line));
    if (saved.length - edited.length !== own.length)
      throw new Error(`naive remove of ${rule.address}: ${saved.length - edited.length} of its ${own.length} lines found`);
  }
  await executor.run({ argv: ['iptables-restore', '-w', '10'], input: edited.join('\n') });
}

/**
 * What is wrong in the kernel, if anything: every floating IP of `wanted` must be bound
 * on its interface and have each of its nat lines exactly once; each address of `gone`
 * must be unbound and appear in no nat rule.
 */
export async function floatingProblems(
  executor: Executor,
  driver: FloatingDriver,
  device: string,
  wanted: FloatingRule[],
  gone: string[],
): Promise<string[]> {
  const problems: string[] = [];
  const saved = (await executor.run({ argv: ['iptables-save', '-t', 'nat'] })).stdout.split('\n');
  const counts = new Map<string, number>();
  for (const line of saved) counts.set(line, (counts.get(line) ?? 0) + 1);
  for (const line of floatingNatLines(wanted)) {
    const count = counts.get(line) ?? 0;
    if (count !== 1) problems.push(`${count} × ${line}`);
  }
  const bound = await driver.bound(device);
  for (const rule of wanted) if (!bound.has(rule.address)) problems.push(`${rule.address} not bound on ${device}`);
  for (const address of gone) {
    if (bound.has(address)) problems.push(`${address} still bound on ${device}`);
    const mention = new RegExp(`(-d ${address.replaceAll('.', '\\.')}/32 |--to-source ${address.replaceAll('.', '\\.')}$)`);
    const left = saved.filter((line) => mention.test(line));
    if (left.length > 0) problems.push(`${address} still in ${left.length} nat rules: ${left[0]}`);
  }
  return problems;
}
