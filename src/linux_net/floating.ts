import { interfaceName } from '../fields.js';
import { parseAddress } from '../ipam/address.js';
import { CommandFailed, type Executor, jsonOutput } from './command.js';

/** Exit statuses of `ip addr add/del` for an address already there / already gone. */
const IDEMPOTENT = [0, 2];
/** arpings running at once. */
const ARP_CONCURRENCY = 8;

export interface FloatingOptions {
  /** send_arp_for_ha: announce a newly bound address with gratuitous ARP. */
  sendArp: boolean;
  /** send_arp_for_ha_count. */
  arpCount: number;
  /** Where a failed background arping is reported (it never fails the bind). */
  log: (event: string, fields?: Record<string, unknown>) => void;
}

/**
 * Floating addresses on the public side: bound as /32 with `ip addr`, announced with
 * arping in the background (each call waits ~1 s per packet: never inside a request),
 * unbound, and their conntrack entries flushed.
 */
export class FloatingDriver {
  private readonly announcements: string[][] = [];
  private announcing = 0;

  constructor(
    private readonly executor: Executor,
    private readonly options: FloatingOptions,
  ) {}

  /** The /32 IPv4 addresses on `device` now. */
  async bound(device: string): Promise<Set<string>> {
    return (await this.addresses(device)).bound;
  }

  /** `device`'s IPv4 addresses: the /32s (where floating IPs go) and the interface's own (every other prefix). */
  async addresses(device: string): Promise<{ bound: Set<string>; own: Set<string> }> {
    interfaceName(device, 'interface');
    const argv = ['ip', '-j', 'addr', 'show', 'dev', device];
    const result = await this.executor.run({ argv, accept: [0, 1] });
    const found = { bound: new Set<string>(), own: new Set<string>() };
    if (result.code !== 0) return found;
    const links = jsonOutput<{ addr_info?: { family: string; local: string; prefixlen: number }[] }[]>(argv, result, []);
    for (const entry of links[0]?.addr_info ?? []) {
      if (entry.family === 'inet') (entry.prefixlen === 32 ? found.bound : found.own).add(entry.local);
    }
    return found;
  }

  async bind(address: string, device: string): Promise<void> {
    await this.bindAll([address], device);
  }

  async unbind(address: string, device: string): Promise<void> {
    await this.unbindAll([address], device);
  }

  /** Binds every address on `device`: one `ip -batch` for many (a process each would cost seconds at thousands). */
  async bindAll(addresses: string[], device: string): Promise<void> {
    await this.change('add', addresses, device);
    if (this.options.sendArp) for (const address of addresses) this.announce(address, device, addresses.length === 1);
  }

  async unbindAll(addresses: string[], device: string): Promise<void> {
    await this.change('del', addresses, device);
  }

  private async change(verb: 'add' | 'del', addresses: string[], device: string): Promise<void> {
    interfaceName(device, 'interface');
    for (const address of addresses) parseAddress(address, 'floating address', 4);
    if (addresses.length === 1) {
      await this.executor.run({ argv: ['ip', 'addr', verb, `${addresses[0]}/32`, 'dev', device], accept: IDEMPOTENT });
      return;
    }
    if (addresses.length === 0) return;
    // -force goes on past a line that fails (an address already there or already gone);
    // what the batch left undone is read back rather than guessed from its stderr.
    const input = addresses.map((address) => `addr ${verb} ${address}/32 dev ${device}\n`).join('');
    const result = await this.executor.run({ argv: ['ip', '-force', '-batch', '-'], input, accept: [0, 1] });
    if (result.code === 0) return;
    const bound = await this.bound(device);
    const undone = addresses.filter((address) => bound.has(address) !== (verb === 'add'));
    if (undone.length > 0) {
      throw new CommandFailed(
        ['ip', '-batch'],
        result.code,
        result.stderr,
        `${undone.length} of ${addresses.length} addresses not ${verb === 'add' ? 'bound' : 'unbound'} (first ${undone[0]})`,
      );
    }
  }

  /**
   * Gratuitous ARP in the background, a few arpings at a time (each waits ~1 s per
   * packet): a cold start with thousands of addresses must not start thousands of
   * processes. A single new binding goes ahead of such a backlog.
   */
  private announce(address: string, device: string, urgent: boolean): void {
    const argv = ['arping', '-U', '-A', '-I', device, '-c', String(this.options.arpCount), address];
    if (urgent) this.announcements.unshift(argv);
    else this.announcements.push(argv);
    this.drainAnnouncements();
  }

  private drainAnnouncements(): void {
    while (this.announcing < ARP_CONCURRENCY && this.announcements.length > 0) {
      const argv = this.announcements.shift()!;
      this.announcing++;
      this.executor
        .run({ argv, accept: [0, 1], timeoutMs: (this.options.arpCount + 5) * 1000 })
        .catch((error: Error) =>
          this.options.log('floating.arping_failed', { address: argv.at(-1), device: argv[4], error: error.message }),
        )
        .finally(() => {
          this.announcing--;
          this.drainAnnouncements();
        });
    }
  }

  /**
   * Flushes the address's conntrack entries, both directions: flows that came in to it
   * (DNAT) and flows SNATed out as it. Run once the rules no longer send the address
   * where it went (unbound, or moved to another fixed IP), so no established flow
   * outlives the association and none is re-created by the old rule.
   */
  async forget(address: string): Promise<void> {
    parseAddress(address, 'floating address', 4);
    // conntrack exits 1 when there was nothing to delete. The two are independent: run
    // together, a disassociation waits for one conntrack start-up, not two.
    await Promise.all([
      this.executor.run({ argv: ['conntrack', '-D', '-d', address], accept: [0, 1] }),
      this.executor.run({ argv: ['conntrack', '-D', '-q', address], accept: [0, 1] }),
    ]);
  }
}
