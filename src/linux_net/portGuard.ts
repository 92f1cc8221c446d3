import { createHash } from 'node:crypto';
import { interfaceName } from '../fields.js';
import { parseAddress } from '../ipam/address.js';
import { isMac } from '../ipam/mac.js';
import type { Executor } from './command.js';

/** novanet's bridge-family table of port guards (with either firewall backend). */
export const PORTS_TABLE = 'novanet_ports';

/** What one VM's port may send: its MAC, and its own addresses. */
export interface GuardedPort {
  tap: string;
  mac: string;
  ipv4: string[];
  ipv6: string[];
}

/**
 * Anti-spoofing at each VM's port, as libvirt's nova-base nwfilter did: a frame from a
 * tap must carry the VIF's MAC; its IPv4 (and ARP) only the VIF's fixed addresses
 * (a DHCP request from 0.0.0.0 and an ARP probe pass), its IPv6 only the VIF's address,
 * link-local or unspecified ones; no DHCP or DHCPv6 server replies, no router
 * advertisements, no VLAN tags. Stateless, so a bridge-family table serves both
 * firewall backends; written whole, in one transaction, when the ports change.
 */
export class PortGuard {
  /** The fingerprint of the table this process last wrote or found. */
  private applied: string | undefined;

  constructor(private readonly executor: Executor) {}

  /** The table for exactly these ports (none: no table). `full`: read the kernel's first, so drift is repaired. */
  async sync(ports: GuardedPort[], full: boolean): Promise<string[]> {
    const sorted = [...ports].sort((a, b) => a.tap.localeCompare(b.tap));
    for (const port of sorted) check(port);
    const wanted = fingerprint(sorted);
    const current = full ? await this.read(sorted.length) : this.applied;
    if (current === wanted) {
      this.applied = wanted;
      return [];
    }
    // Created empty first, so the delete in the same transaction cannot fail on a missing table.
    const lines = [`add table bridge ${PORTS_TABLE}`, `delete table bridge ${PORTS_TABLE}`];
    if (sorted.length > 0) lines.push(...tableText(sorted, wanted));
    await this.executor.run({ argv: ['nft', '-f', '-'], input: `${lines.join('\n')}\n` });
    this.applied = wanted;
    return [sorted.length === 0 ? 'port guards removed' : `ports guarded: ${sorted.map((port) => port.tap).join(', ')}`];
  }

  /**
   * The fingerprint the kernel's table was written with, if it is whole: every port's
   * chain still holds its rules (a flushed or edited table reads as undefined: rewritten).
   */
  private async read(ports: number): Promise<string | undefined> {
    const listed = await this.executor.run({ argv: ['nft', 'list', 'table', 'bridge', PORTS_TABLE], accept: [0, 1] });
    if (listed.code !== 0) return ports === 0 ? fingerprint([]) : undefined;
    const comment = /comment "novanet ([0-9a-f]+)"/.exec(listed.stdout)?.[1];
    const drops = listed.stdout.match(/ drop$/gm)?.length ?? 0;
    return drops === ports * RULES_PER_PORT ? comment : undefined;
  }
}

/** The drops each port's chain has (tableText): a listing with fewer was flushed or edited. */
const RULES_PER_PORT = 9;

function check(port: GuardedPort): void {
  interfaceName(port.tap, 'tap');
  if (!isMac(port.mac)) throw new Error(`port ${port.tap}: ${port.mac} is not a MAC`);
  for (const address of port.ipv4) parseAddress(address, 'port address', 4);
  for (const address of port.ipv6) parseAddress(address, 'port address', 6);
}

function fingerprint(ports: GuardedPort[]): string {
  return createHash('sha256').update(JSON.stringify(ports)).digest('hex').slice(0, 32);
}

function tableText(ports: GuardedPort[], wanted: string): string[] {
  const jumps = ports.map((port) => `${JSON.stringify(port.tap)} : jump port_${port.tap}`).join(', ');
  const lines = [
    `table bridge ${PORTS_TABLE} {`,
    `  comment "novanet ${wanted}"`,
    // Before the bridge forwards or delivers it, and before the DHCP isolation table.
    '  chain guard { type filter hook prerouting priority -250; policy accept;',
    `    iifname vmap { ${jumps} }`,
    '  }',
  ];
  for (const port of ports) {
    // An ARP probe and a DHCP request come from 0.0.0.0; DAD from ::.
    const arpSources = ['0.0.0.0', ...port.ipv4].join(', ');
    lines.push(
      `  chain port_${port.tap} {`,
      `    ether saddr != ${port.mac} counter drop`,
      '    ether type vlan counter drop',
      `    arp saddr ether != ${port.mac} counter drop`,
      `    arp saddr ip != { ${arpSources} } counter drop`,
      '    ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept',
      port.ipv4.length > 0 ? `    ip saddr != { ${port.ipv4.join(', ')} } counter drop` : '    ether type ip counter drop',
      '    udp sport 67 counter drop',
      `    ip6 saddr != { ${['::', 'fe80::/10', ...port.ipv6].join(', ')} } counter drop`,
      '    icmpv6 type nd-router-advert counter drop',
      '    udp sport 547 counter drop',
      '  }',
    );
  }
  lines.push('}');
  return lines;
}
