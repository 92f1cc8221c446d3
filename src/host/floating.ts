import { hostAddresses } from '../config/hostAddresses.js';
import type { Config } from '../config/options.js';
import * as floatingIps from '../db/floatingIps.js';
import type { Queryable } from '../db/rows.js';
import { parseAddress } from '../ipam/address.js';
import { type HostAddresses, specialPurpose } from '../ipam/special.js';
import type { FloatingRule } from '../linux_net/firewall/state.js';
import type { FloatingDriver } from '../linux_net/floating.js';

/**
 * The floating IPs this host carries: bound on their interface and NATed to their
 * fixed IP. Remembers what it bound, so a change costs one row read and one bind,
 * whatever the number of addresses; a full sync reads the kernel and repairs.
 * Rules are kept sorted by address, so a restart renders the chains in the same
 * order and leaves them untouched.
 */
export class FloatingBindings {
  private readonly rules = new Map<string, FloatingRule>();
  private sorted: FloatingRule[] = [];
  /**
   * Addresses whose conntrack entries go once the rules are applied: unbound or moved,
   * and newly associated (a flow tried before the DNAT existed, such as a ping, would
   * otherwise keep missing it until its entry times out).
   */
  private readonly stale = new Set<string>();
  /** Each interface's own addresses (every prefix but /32), as the last full sync read them. */
  private readonly own = new Map<string, Set<string>>();
  private readonly hostAddresses: HostAddresses;

  constructor(
    private readonly config: Config,
    private readonly driver: FloatingDriver,
  ) {
    this.hostAddresses = hostAddresses(config);
  }

  /** Every rule, in address order: FirewallState.floating. */
  list(): FloatingRule[] {
    return this.sorted;
  }

  /** Whether this host carries `address` now (its rule is in place). */
  holds(address: string): boolean {
    return this.rules.has(address);
  }

  /** Start and schedule: this host's associations from the DB, bound; stray floating addresses unbound. */
  async syncAll(q: Queryable, changes: string[], errors: string[]): Promise<void> {
    const rows = await floatingIps.listFloatingIps(q, { host: this.config.host });
    // A cloud without floating IPs leaves the public interface alone.
    if (rows.length === 0 && this.rules.size === 0 && !(await floatingIps.anyFloatingIps(q))) return;
    const devices = new Set([
      this.config.public_interface,
      ...rows.map((row) => row.interface ?? this.config.public_interface),
      ...[...this.rules.values()].map((rule) => rule.interface),
    ]);
    const addresses = new Map<string, Set<string>>();
    for (const device of devices) {
      await this.guard(errors, `floating IPs on ${device}`, async () => {
        const found = await this.driver.addresses(device);
        addresses.set(device, found.bound);
        this.own.set(device, found.own);
      });
    }
    const wanted = new Map<string, FloatingRule>();
    for (const row of rows) {
      const rule = this.ruleOf(row, errors);
      const known = rule && this.rules.get(rule.address);
      // An unchanged rule keeps its object: the firewall renders it once (firewall/applied.ts, perRule).
      if (rule) wanted.set(rule.address, known && known.fixed === rule.fixed && known.interface === rule.interface ? known : rule);
    }
    for (const [device, bound] of addresses) {
      await this.guard(errors, `floating IPs on ${device}`, async () => {
        // Only addresses that are floating IPs are ours to remove: a /32 the operator
        // put there for something else stays.
        const extra = [...bound].filter((address) => wanted.get(address)?.interface !== device);
        const known = extra.length === 0 ? [] : await floatingIps.listFloatingIps(q, { addresses: extra });
        const unbinding = known.map((row) => row.address);
        await this.driver.unbindAll(unbinding, device);
        for (const address of unbinding) this.stale.add(address);
        changes.push(...summarise('unbound floating', unbinding, `from ${device}`));
        const binding = [...wanted.values()]
          .filter((rule) => rule.interface === device && !bound.has(rule.address))
          .map((rule) => rule.address);
        await this.driver.bindAll(binding, device);
        changes.push(...summarise('bound floating', binding, `on ${device}`));
      });
    }
    for (const [address, rule] of this.rules) {
      if (wanted.get(address)?.fixed !== rule.fixed) this.stale.add(address);
    }
    this.rules.clear();
    for (const [address, rule] of wanted) this.rules.set(address, rule);
    this.sorted = sortRules([...wanted.values()]);
  }

  /**
   * After a change: the named addresses read again, and unbound or moved at once. New
   * addresses go into the rules now, but are bound only by `bind`, which the caller
   * runs once the rules are written: an address bound before its DNAT rule exists is
   * answered by this host itself, and a flow it answered keeps missing the rule until
   * its conntrack entry is flushed. `bind` resolves true when a bind failed: that
   * address is out of the rules again, which need a rewrite.
   */
  async update(q: Queryable, addresses: string[], changes: string[], errors: string[]): Promise<{ bind: () => Promise<boolean> }> {
    const rows = new Map((await floatingIps.listFloatingIps(q, { addresses })).map((row) => [row.address, row]));
    const binds: (() => Promise<boolean>)[] = [];
    for (const address of new Set(addresses)) {
      const row = rows.get(address);
      const wanted = row && row.host === this.config.host ? this.ruleOf(row, errors) : undefined;
      const current = this.rules.get(address);
      await this.guard(errors, `floating ${address}`, async () => {
        if (current && (!wanted || wanted.interface !== current.interface)) {
          await this.driver.unbind(address, current.interface);
          this.remove(address);
          this.stale.add(address);
          changes.push(`unbound floating ${address} from ${current.interface}`);
        }
        if (!wanted) return;
        if (current?.interface === wanted.interface) {
          if (current.fixed === wanted.fixed) return;
          changes.push(`floating ${address} moved to ${wanted.fixed}`);
        } else {
          binds.push(() =>
            this.driver.bind(address, wanted.interface).then(
              () => {
                changes.push(`bound floating ${address} on ${wanted.interface}`);
                return false;
              },
              (error: unknown) => {
                if (this.rules.get(address) === wanted) this.remove(address);
                errors.push(`floating ${address}: ${error instanceof Error ? error.message : String(error)}`);
                return true;
              },
            ),
          );
        }
        this.stale.add(address);
        this.put(wanted);
      });
    }
    return { bind: async () => (await Promise.all(binds.map((start) => start()))).includes(true) };
  }

  /** After the rules are applied: the conntrack entries of the addresses changed are flushed. */
  async flushStale(errors: string[]): Promise<void> {
    for (const address of this.stale) await this.guard(errors, `conntrack flush of ${address}`, () => this.driver.forget(address));
    this.stale.clear();
  }

  /** The rule of an associated row, unless its address is one no host may bind (reported in `errors`). */
  private ruleOf(row: floatingIps.FloatingIp, errors: string[]): FloatingRule | undefined {
    if (row.fixedAddress === null) return undefined;
    const device = row.interface ?? this.config.public_interface;
    const refusal = this.refusal(row.address, device);
    if (refusal !== undefined) {
      errors.push(`floating ${row.address} is not bound: ${refusal}`);
      return undefined;
    }
    return { address: row.address, fixed: row.fixedAddress, interface: device };
  }

  /**
   * Why `address` must not be bound and NATed on `device`: a special-purpose address,
   * one of the host's configured own, or one the interface already has (its DNAT would
   * take the host's own traffic). Rows made before the managers refused these, or by
   * hand, end here.
   */
  private refusal(address: string, device: string): string | undefined {
    const parsed = parseAddress(address, 'floating address', 4);
    const special = specialPurpose({ version: 4, network: parsed.value, prefix: 32 });
    if (special !== undefined) return `it is in ${special}`;
    const option = this.hostAddresses.find((entry) => entry.address.value === parsed.value)?.option;
    if (option !== undefined) return `it is this host's ${option}`;
    if (this.own.get(device)?.has(address)) return `it is an address of ${device} itself`;
    return undefined;
  }

  private put(rule: FloatingRule): void {
    if (this.rules.has(rule.address)) this.remove(rule.address);
    this.rules.set(rule.address, rule);
    const key = addressKey(rule.address);
    this.sorted.splice(lowerBound(this.sorted, key), 0, rule);
  }

  private remove(address: string): void {
    this.rules.delete(address);
    const index = lowerBound(this.sorted, addressKey(address));
    if (this.sorted[index]?.address === address) this.sorted.splice(index, 1);
  }

  private async guard(errors: string[], what: string, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      errors.push(`${what}: ${(error as Error).message}`);
    }
  }
}

/** One change line per address, or one for them all when there are many (a cold start binds thousands). */
function summarise(what: string, addresses: string[], where: string): string[] {
  if (addresses.length <= 10) return addresses.map((address) => `${what} ${address} ${where}`);
  return [`${what} ${addresses.length} addresses ${where} (${addresses[0]} … ${addresses.at(-1)})`];
}

function addressKey(address: string): bigint {
  return parseAddress(address, 'floating address', 4).value;
}

function sortRules(rules: FloatingRule[]): FloatingRule[] {
  const keyed = rules.map((rule) => ({ rule, key: addressKey(rule.address) }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return keyed.map((entry) => entry.rule);
}

/** The first index whose address is not below `key` (binary search: a change costs no sort). */
function lowerBound(rules: FloatingRule[], key: bigint): number {
  let low = 0;
  let high = rules.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (addressKey(rules[middle]!.address) < key) low = middle + 1;
    else high = middle;
  }
  return low;
}
