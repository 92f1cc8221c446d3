import { interfaceName } from '../fields.js';
import type { Executor } from './command.js';

/** novanet's bridge-family table: with either firewall backend, nftables filters bridged frames. */
export const DHCP_TABLE = 'novanet_dhcp';

/** DHCP (67, 68) and DHCPv6 (546, 547). */
const DHCP_PORTS = '{ 67, 68, 546, 547 }';
/** Router solicitations and advertisements. */
const RA_TYPES = '{ nd-router-solicit, nd-router-advert }';

/**
 * multi_host over a shared underlay: each host's DHCP and router advertisements stay on
 * its own host. DHCP and DHCPv6 frames, router solicitations and advertisements neither
 * leave a multi_host bridge through its uplink nor enter one from it, so no host's
 * dnsmasq sees, answers or NAKs another host's VM, and no VM learns another host as
 * its router (nova did the DHCP part with ebtables, `isolate_dhcp_address`). One
 * bridge-family table, replaced whole in one transaction when the uplinks change.
 */
export class DhcpIsolation {
  /** The uplinks the table was last written with, in this process. */
  private applied: string | undefined;

  constructor(private readonly executor: Executor) {}

  /**
   * The table for exactly these uplinks (none: no table). `full`: read the kernel's
   * table first, so drift (a flushed ruleset) is repaired; else trust what this process wrote.
   */
  async sync(uplinks: string[], full: boolean): Promise<string[]> {
    for (const uplink of uplinks) interfaceName(uplink, 'uplink');
    const wanted = [...new Set(uplinks)].sort().join(',');
    const current = full ? await this.read() : this.applied;
    if (current === wanted) {
      this.applied = wanted;
      return [];
    }
    // Created empty first, so the delete in the same transaction cannot fail on a missing table.
    const lines = [`add table bridge ${DHCP_TABLE}`, `delete table bridge ${DHCP_TABLE}`];
    if (wanted !== '') {
      const set = `{ ${wanted
        .split(',')
        .map((name) => JSON.stringify(name))
        .join(', ')} }`;
      lines.push(
        `table bridge ${DHCP_TABLE} {`,
        // Before any other bridge filter: a dropped frame reaches neither the bridge nor a later chain.
        '  chain from_uplink { type filter hook prerouting priority -200; policy accept;',
        `    iifname ${set} udp dport ${DHCP_PORTS} counter drop`,
        `    iifname ${set} icmpv6 type ${RA_TYPES} counter drop`,
        '  }',
        '  chain to_uplink { type filter hook postrouting priority -200; policy accept;',
        `    oifname ${set} udp dport ${DHCP_PORTS} counter drop`,
        `    oifname ${set} icmpv6 type ${RA_TYPES} counter drop`,
        '  }',
        '}',
      );
    }
    await this.executor.run({ argv: ['nft', '-f', '-'], input: `${lines.join('\n')}\n` });
    this.applied = wanted;
    return [wanted === '' ? 'DHCP isolation removed' : `DHCP and RA isolated from uplinks ${wanted}`];
  }

  /**
   * The uplinks of the table as the kernel has it ('' when there is none; undefined
   * when its rules are not this release's, as an older release's table without the
   * IPv6 ones: rewritten).
   */
  private async read(): Promise<string | undefined> {
    const listed = await this.executor.run({ argv: ['nft', 'list', 'table', 'bridge', DHCP_TABLE], accept: [0, 1] });
    if (listed.code !== 0) return '';
    if (!listed.stdout.includes(DHCP_PORTS) || !listed.stdout.includes(RA_TYPES)) return undefined;
    const names = [...listed.stdout.matchAll(/iifname (?:\{ )?([^}\n]+?)(?: \})? udp/g)].flatMap((match) =>
      match[1]!.split(',').map((name) => name.trim().replace(/^"|"$/g, '')),
    );
    return [...new Set(names)].sort().join(',');
  }
}
