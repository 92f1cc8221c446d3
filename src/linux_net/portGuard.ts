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

/** The sets the guard chain checks, each element `"TAP" . VALUE` (guarded: `"TAP"`). */
const SETS = {
  guarded: 'ifname',
  macs: 'ifname . ether_addr',
  ipv4: 'ifname . ipv4_addr',
  ipv6: 'ifname . ipv6_addr',
} as const;
type SetName = keyof typeof SETS;
type Elements = Record<SetName, Set<string>>;

/** The one chain every guarded port's frames pass; a frame from any other port leaves it at once. */
const GUARD_RULES = [
  'iifname != @guarded accept',
  'iifname . ether saddr != @macs counter drop',
  'ether type vlan counter drop',
  'iifname . arp saddr ether != @macs counter drop',
  // An ARP probe and a DHCP request come from 0.0.0.0; DAD from ::.
  'arp saddr ip 0.0.0.0 accept',
  'iifname . arp saddr ip != @ipv4 counter drop',
  'ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept',
  'iifname . ip saddr != @ipv4 counter drop',
  'udp sport 67 counter drop',
  // Link-local and unspecified sources pass for every port: no interval set, whose every change reads it whole.
  'iifname . ip6 saddr != @ipv6 ip6 saddr != { ::, fe80::/10 } counter drop',
  'icmpv6 type nd-router-advert counter drop',
  'udp sport 547 counter drop',
];

/**
 * Anti-spoofing at each VM's port, as libvirt's nova-base nwfilter did: a frame from a
 * tap must carry the VIF's MAC; its IPv4 (and ARP) only the VIF's fixed addresses
 * (a DHCP request from 0.0.0.0 and an ARP probe pass), its IPv6 only the VIF's address,
 * link-local or unspecified ones; no DHCP or DHCPv6 server replies, no router
 * advertisements, no VLAN tags. Stateless, so a bridge-family table serves both
 * firewall backends. One chain for all ports; what each port may send is set
 * elements keyed by its tap, so a port's change adds and deletes its own elements
 * only, whatever the number of ports.
 */
export class PortGuard {
  /** The elements this process last wrote; undefined: read the kernel's first. */
  private applied: Elements | undefined;
  /** This process removed the table (or found none) and wrote nothing since. */
  private absent = false;

  constructor(private readonly executor: Executor) {}

  /** Exactly these ports guarded (none: no table). `full`: read the kernel's table first, so drift is repaired. */
  async sync(ports: GuardedPort[], full: boolean): Promise<string[]> {
    for (const port of ports) check(port);
    const wanted = elementsOf(ports);
    const known = this.applied
      ? { exists: true, base: true, elements: this.applied }
      : { exists: false, base: false, elements: elementsOf([]) };
    const current = full || (!this.applied && !this.absent) ? await this.read() : known;
    if (ports.length === 0) {
      this.applied = undefined;
      this.absent = true;
      if (!current.exists) return [];
      await this.write([`add table bridge ${PORTS_TABLE}`, `delete table bridge ${PORTS_TABLE}`]);
      return ['port guards removed'];
    }
    this.applied = wanted;
    this.absent = false;
    // Without its sets or with its chain edited, the table is made again whole.
    const have = current.base ? current.elements : elementsOf([]);
    const lines = current.base ? [] : baseTable();
    // The taps whose elements are added (new or changed ports), and those no longer guarded.
    const changed = new Set<string>();
    let released: string[] = [];
    for (const name of Object.keys(SETS) as SetName[]) {
      const gone = [...have[name]].filter((element) => !wanted[name].has(element));
      const added = [...wanted[name]].filter((element) => !have[name].has(element));
      if (gone.length > 0) lines.push(`delete element bridge ${PORTS_TABLE} ${name} { ${gone.join(', ')} }`);
      if (added.length > 0) lines.push(`add element bridge ${PORTS_TABLE} ${name} { ${added.join(', ')} }`);
      for (const element of added) changed.add(tapOf(element));
      if (name === 'guarded') released = gone.map(tapOf);
    }
    if (lines.length === 0) return [];
    await this.write(lines);
    const told = [
      ...(changed.size > 0
        ? [
            `ports guarded: ${ports
              .filter((port) => changed.has(port.tap))
              .map((port) => port.tap)
              .join(', ')}`,
          ]
        : []),
      ...(released.length > 0 ? [`port guards removed: ${released.join(', ')}`] : []),
    ];
    // A port that only lost an address.
    return told.length > 0 ? told : ['port guards narrowed'];
  }

  private async write(lines: string[]): Promise<void> {
    await this.executor.run({ argv: ['nft', '-f', '-'], input: `${lines.join('\n')}\n` });
  }

  /** The table's elements as the kernel has them, whether it exists, and whether its sets and chain are as written (`base`). */
  private async read(): Promise<{ exists: boolean; base: boolean; elements: Elements }> {
    const listed = await this.executor.run({ argv: ['nft', '-j', 'list', 'table', 'bridge', PORTS_TABLE], accept: [0, 1] });
    const elements = elementsOf([]);
    if (listed.code !== 0) return { exists: false, base: false, elements };
    const items = (JSON.parse(listed.stdout) as { nftables: Record<string, Record<string, unknown>>[] }).nftables;
    const sets = items.flatMap((item) => (item.set ? [item.set as { name: string; elem?: unknown[] }] : []));
    for (const set of sets) {
      if (set.name in SETS) for (const entry of set.elem ?? []) elements[set.name as SetName].add(elementText(entry));
    }
    const rules = items.filter((item) => item.rule).length;
    const base = Object.keys(SETS).every((name) => sets.some((set) => set.name === name)) && rules === GUARD_RULES.length;
    return { exists: true, base, elements };
  }
}

function check(port: GuardedPort): void {
  interfaceName(port.tap, 'tap');
  if (!isMac(port.mac)) throw new Error(`port ${port.tap}: ${port.mac} is not a MAC`);
  for (const address of port.ipv4) parseAddress(address, 'port address', 4);
  for (const address of port.ipv6) parseAddress(address, 'port address', 6);
}

function elementsOf(ports: GuardedPort[]): Elements {
  const sets: Elements = { guarded: new Set(), macs: new Set(), ipv4: new Set(), ipv6: new Set() };
  for (const port of ports) {
    const tap = JSON.stringify(port.tap);
    sets.guarded.add(tap);
    sets.macs.add(`${tap} . ${port.mac}`);
    for (const address of port.ipv4) sets.ipv4.add(`${tap} . ${address}`);
    for (const address of port.ipv6) sets.ipv6.add(`${tap} . ${address}`);
  }
  return sets;
}

/** One element of `nft -j` in the form elementsOf writes. */
function elementText(entry: unknown): string {
  const part = (value: unknown): string => {
    if (typeof value === 'string') return value;
    const prefix = (value as { prefix?: { addr: string; len: number } }).prefix;
    return prefix ? `${prefix.addr}/${prefix.len}` : JSON.stringify(value);
  };
  if (typeof entry === 'string') return JSON.stringify(entry);
  const concat = (entry as { concat?: unknown[] }).concat;
  if (!Array.isArray(concat)) return JSON.stringify(entry);
  return [JSON.stringify(concat[0]), ...concat.slice(1).map(part)].join(' . ');
}

function baseTable(): string[] {
  return [
    // Created empty first, so the delete in the same transaction cannot fail on a missing table.
    `add table bridge ${PORTS_TABLE}`,
    `delete table bridge ${PORTS_TABLE}`,
    `table bridge ${PORTS_TABLE} {`,
    ...Object.entries(SETS).map(([name, type]) => `  set ${name} { type ${type}; }`),
    // Before the bridge forwards or delivers a frame, and before the DHCP isolation table.
    '  chain guard { type filter hook prerouting priority -250; policy accept;',
    ...GUARD_RULES.map((rule) => `    ${rule}`),
    '  }',
    '}',
  ];
}

/** The tap an element is keyed by (its first part, quoted). */
function tapOf(element: string): string {
  return JSON.parse(element.split(' . ')[0]!) as string;
}
