import { interfaceName } from '../config/options.js';
import { parseAddress } from '../ipam/address.js';
import type { Executor } from './executor.js';

/** Exit statuses of `ip addr add/del` for an address already there / already gone. */
const IDEMPOTENT = [0, 2];

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
  constructor(
    private readonly executor: Executor,
    private readonly options: FloatingOptions,
  ) {}

  /** The /32 IPv4 addresses on `device` now. */
  async bound(device: string): Promise<Set<string>> {
    interfaceName(device, 'interface');
    const result = await this.executor.run({ argv: ['ip', '-j', 'addr', 'show', 'dev', device], accept: [0, 1] });
    if (result.code !== 0) return new Set();
    const links = JSON.parse(result.stdout || '[]') as { addr_info?: { family: string; local: string; prefixlen: number }[] }[];
    return new Set((links[0]?.addr_info ?? []).filter((entry) => entry.family === 'inet' && entry.prefixlen === 32).map((entry) => entry.local));
  }

  async bind(address: string, device: string): Promise<void> {
    interfaceName(device, 'interface');
    parseAddress(address, 'floating address', 4);
    await this.executor.run({ argv: ['ip', 'addr', 'add', `${address}/32`, 'dev', device], accept: IDEMPOTENT });
    if (this.options.sendArp) {
      const argv = ['arping', '-U', '-A', '-I', device, '-c', String(this.options.arpCount), address];
      this.executor.run({ argv, accept: [0, 1], timeoutMs: (this.options.arpCount + 5) * 1000 }).catch((error: Error) => {
        this.options.log('floating.arping_failed', { address, device, error: error.message });
      });
    }
  }

  async unbind(address: string, device: string): Promise<void> {
    interfaceName(device, 'interface');
    parseAddress(address, 'floating address', 4);
    await this.executor.run({ argv: ['ip', 'addr', 'del', `${address}/32`, 'dev', device], accept: IDEMPOTENT });
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
