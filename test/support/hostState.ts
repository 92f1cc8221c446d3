/**
 * Readers of a lab network host's state, for end-to-end tests that compare the kernel
 * with the database: the rows that matter (fixed IPs, VIFs, floating IPs), the
 * floating addresses bound on an interface, the floating NAT rules (one reader, so a
 * second firewall backend only adds a branch there), and dnsmasq's hosts file. Each
 * `...Violations` function returns what is wrong in words, empty when all holds.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import type { FirewallBackend } from '../../src/config/options.js';
import { openDatabase } from '../../src/db/connection.js';
import { loadedRecord } from '../../src/linux_net/dnsmasq/index.js';
import { parseSave } from '../../src/linux_net/firewall/iptables/plan.js';
import type { MapName } from '../../src/linux_net/firewall/nftables/elements.js';
import { parseListing } from '../../src/linux_net/firewall/nftables/parse.js';
import { NFT_TABLE } from '../../src/linux_net/firewall/nftables/plan.js';
import type { Lab } from '../../tools/lab.js';

export interface FixedRow {
  id: number;
  address: string;
  instanceUuid: string | null;
  virtualInterfaceId: number | null;
  allocated: boolean;
}

export interface VifRow {
  id: number;
  mac: string;
  instanceUuid: string;
}

export interface FloatingRow {
  id: number;
  address: string;
  projectId: string | null;
  fixedIpId: number | null;
  host: string | null;
}

export interface DbState {
  fixed: FixedRow[];
  vifs: VifRow[];
  floating: FloatingRow[];
}

/** The domain rows, read through the service's own database URL (SQLite or MariaDB alike). */
export async function readDbState(configFile: string): Promise<DbState> {
  const config = loadConfig({ file: configFile, env: {}, warn: () => undefined });
  const db = openDatabase(config.connection);
  try {
    const fixed = (await db
      .knex('fixed_ips')
      .select('id', 'address', 'instance_uuid', 'virtual_interface_id', 'allocated')
      .orderBy('id')) as Record<string, unknown>[];
    const vifs = (await db.knex('virtual_interfaces').select('id', 'address', 'instance_uuid').orderBy('id')) as Record<string, unknown>[];
    const floating = (await db.knex('floating_ips').select('id', 'address', 'project_id', 'fixed_ip_id', 'host').orderBy('id')) as Record<
      string,
      unknown
    >[];
    const id = (value: unknown) => (value === null || value === undefined ? null : Number(value));
    return {
      fixed: fixed.map((row) => ({
        id: Number(row.id),
        address: String(row.address),
        instanceUuid: (row.instance_uuid as string | null) ?? null,
        virtualInterfaceId: id(row.virtual_interface_id),
        allocated: Boolean(Number(row.allocated)),
      })),
      vifs: vifs.map((row) => ({ id: Number(row.id), mac: String(row.address), instanceUuid: String(row.instance_uuid) })),
      floating: floating.map((row) => ({
        id: Number(row.id),
        address: String(row.address),
        projectId: (row.project_id as string | null) ?? null,
        fixedIpId: id(row.fixed_ip_id),
        host: (row.host as string | null) ?? null,
      })),
    };
  } finally {
    await db.close();
  }
}

/** An instance's allocated fixed IPs, by the VIFs that hold them. */
export function allocatedTo(state: DbState, instanceUuid: string): FixedRow[] {
  const vifIds = new Set(state.vifs.filter((vif) => vif.instanceUuid === instanceUuid).map((vif) => vif.id));
  return state.fixed.filter((fixed) => fixed.allocated && fixed.virtualInterfaceId !== null && vifIds.has(fixed.virtualInterfaceId));
}

/** Floating address → the fixed address it is associated with (associated ones only). */
export function associations(state: DbState): Map<string, string> {
  const fixedById = new Map(state.fixed.map((fixed) => [fixed.id, fixed]));
  const result = new Map<string, string>();
  for (const floating of state.floating) {
    if (floating.fixedIpId !== null)
      result.set(floating.address, fixedById.get(floating.fixedIpId)?.address ?? `missing fixed IP id ${floating.fixedIpId}`);
  }
  return result;
}

/**
 * The database's own consistency: each VIF holds exactly one allocated fixed IP of its
 * instance; an allocated fixed IP belongs to an existing VIF of the same instance (so
 * no address is held by two); an associated floating IP points at an allocated fixed
 * IP and belongs to a project.
 */
export function dbViolations(state: DbState): string[] {
  const problems: string[] = [];
  const vifById = new Map(state.vifs.map((vif) => [vif.id, vif]));
  const fixedById = new Map(state.fixed.map((fixed) => [fixed.id, fixed]));
  const heldBy = new Map<number, FixedRow[]>();
  for (const fixed of state.fixed) {
    if (fixed.virtualInterfaceId !== null) heldBy.set(fixed.virtualInterfaceId, [...(heldBy.get(fixed.virtualInterfaceId) ?? []), fixed]);
    if (!fixed.allocated) continue;
    const vif = fixed.virtualInterfaceId === null ? undefined : vifById.get(fixed.virtualInterfaceId);
    if (!vif)
      problems.push(
        `fixed IP ${fixed.address} is allocated (to ${fixed.instanceUuid}) but its VIF ${fixed.virtualInterfaceId} does not exist`,
      );
    else if (vif.instanceUuid !== fixed.instanceUuid)
      problems.push(`fixed IP ${fixed.address} is allocated to ${fixed.instanceUuid} through VIF ${vif.id} of ${vif.instanceUuid}`);
  }
  for (const vif of state.vifs) {
    const held = (heldBy.get(vif.id) ?? []).filter((fixed) => fixed.allocated);
    if (held.length !== 1)
      problems.push(
        `VIF ${vif.id} (${vif.mac}) of ${vif.instanceUuid} holds ${held.length} allocated fixed IPs (${held.map((fixed) => fixed.address).join(', ') || 'none'})`,
      );
  }
  const macs = new Set<string>();
  for (const vif of state.vifs) {
    if (macs.has(vif.mac)) problems.push(`MAC ${vif.mac} is on two VIFs`);
    macs.add(vif.mac);
  }
  for (const floating of state.floating) {
    if (floating.fixedIpId === null) continue;
    const fixed = fixedById.get(floating.fixedIpId);
    if (!fixed?.allocated)
      problems.push(
        `floating IP ${floating.address} is associated with fixed IP ${fixed?.address ?? `id ${floating.fixedIpId}`}, which is not allocated`,
      );
    if (floating.projectId === null) problems.push(`floating IP ${floating.address} is associated but allocated to no project`);
    if (floating.host === null) problems.push(`floating IP ${floating.address} is associated but no host binds it`);
  }
  return problems;
}

/** One NAT rule of a floating IP, as any firewall backend would describe it. */
export interface FloatingNatRule {
  kind: 'dnat' | 'snat';
  floating: string;
  fixed: string;
  /** What else the rule matches on (iptables: its text), to tell a rule's variants apart. */
  variant: string;
}

export interface FloatingNat {
  /** Rules that packets reach (their chain is jumped to from a built-in hook). */
  rules: FloatingNatRule[];
  /** Floating NAT rules in chains nothing jumps to: left behind, or missing their jump. */
  unreachable: string[];
}

/**
 * The floating IPs' NAT rules of a namespace's firewall. The one place that knows the
 * backend: iptables-save's rules, or the elements of novanet's nftables maps (each
 * element a rule: the maps' rules reach them all).
 */
export async function readFloatingNat(lab: Lab, ns: string, backend: FirewallBackend = 'iptables'): Promise<FloatingNat> {
  if (backend === 'nftables') return readFloatingMaps(lab, ns);
  const saved = await lab.exec(ns, ['iptables-save', '-t', 'nat']);
  if (saved.code !== 0) throw new Error(`iptables-save in ${ns}: ${saved.stderr}`);
  const nat = parseSave(saved.stdout).nat;
  // Chains reached from the built-in hooks, following jumps.
  const reachable = new Set<string>();
  const walk = (chain: string) => {
    if (reachable.has(chain)) return;
    reachable.add(chain);
    for (const rule of nat.get(chain) ?? []) {
      const target = / -j (\S+)/.exec(` ${rule}`)?.[1];
      if (target && nat.has(target)) walk(target);
    }
  };
  for (const hook of ['PREROUTING', 'OUTPUT', 'POSTROUTING', 'INPUT']) walk(hook);
  const rules: FloatingNatRule[] = [];
  const unreachable: string[] = [];
  for (const [chain, chainRules] of nat) {
    for (const rule of chainRules) {
      const parsed = floatingRule(rule);
      if (!parsed) continue;
      if (reachable.has(chain)) rules.push(parsed);
      else unreachable.push(`${chain}: ${rule}`);
    }
  }
  return { rules, unreachable };
}

async function readFloatingMaps(lab: Lab, ns: string): Promise<FloatingNat> {
  const listed = await lab.exec(ns, ['nft', '-j', 'list', 'table', 'ip', NFT_TABLE]);
  if (listed.code !== 0) throw new Error(`nft list table ip ${NFT_TABLE} in ${ns}: ${listed.stderr}`);
  const maps = parseListing(listed.stdout).maps;
  const elements = (name: MapName) => [...(maps.get(name)?.elements ?? new Map<string, string>())];
  return {
    rules: [
      ...elements('floating_dnat').map(([floating, fixed]): FloatingNatRule => ({ kind: 'dnat', floating, fixed, variant: '' })),
      ...elements('floating_snat').map(([key, floating]): FloatingNatRule => {
        const [fixed, device] = key.split(' . ');
        return { kind: 'snat', floating, fixed: fixed!, variant: `-o ${device}` };
      }),
      ...elements('floating_hairpin').map(
        ([fixed, floating]): FloatingNatRule => ({ kind: 'snat', floating, fixed, variant: 'ct status dnat' }),
      ),
    ],
    unreachable: [],
  };
}

/** A rule that NATs one /32 to another: a floating IP's DNAT or SNAT (iptables-save spelling). */
function floatingRule(rule: string): FloatingNatRule | undefined {
  const dnat = /^-d (\d+\.\d+\.\d+\.\d+)\/32 -j DNAT --to-destination (\d+\.\d+\.\d+\.\d+)$/.exec(rule);
  if (dnat) return { kind: 'dnat', floating: dnat[1]!, fixed: dnat[2]!, variant: '' };
  const snat = /^-s (\d+\.\d+\.\d+\.\d+)\/32 (.*)-j SNAT --to-source (\d+\.\d+\.\d+\.\d+)$/.exec(rule);
  // The fixed address may appear again in the match (hairpin): the variant names it by role.
  if (snat) return { kind: 'snat', floating: snat[3]!, fixed: snat[1]!, variant: snat[2]!.trim().split(`${snat[1]!}/`).join('FIXED/') };
  return undefined;
}

/**
 * The floating NAT equals `wanted` (floating → fixed) exactly: one DNAT per
 * association, the same set of SNAT variants for each, nothing twice, nothing for an
 * address not associated, nothing left in an unreachable chain.
 */
export function natViolations(nat: FloatingNat, wanted: Map<string, string>): string[] {
  const problems = nat.unreachable.map((rule) => `unreachable floating rule ${rule}`);
  const seen = new Map<string, number>();
  const variants = new Map<string, Set<string>>();
  for (const rule of nat.rules) {
    const key = `${rule.kind} ${rule.floating}<->${rule.fixed} ${rule.variant}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
    if (wanted.get(rule.floating) !== rule.fixed) problems.push(`stale ${key}`);
    if (rule.kind === 'snat') {
      const pair = `${rule.floating}<->${rule.fixed}`;
      variants.set(pair, new Set([...(variants.get(pair) ?? []), rule.variant]));
    }
  }
  for (const [key, count] of seen) if (count > 1) problems.push(`${key} is there ${count} times`);
  const snatShapes = new Set([...variants.values()].map((set) => [...set].sort().join(' | ')));
  if (snatShapes.size > 1) problems.push(`associations have different SNAT rules: ${[...snatShapes].join(' / ')}`);
  for (const [floating, fixed] of wanted) {
    if (!seen.has(`dnat ${floating}<->${fixed} `)) problems.push(`no DNAT ${floating} -> ${fixed}`);
    if (!variants.has(`${floating}<->${fixed}`)) problems.push(`no SNAT ${fixed} -> ${floating}`);
  }
  return problems;
}

/** The /32 addresses on `device` in `ns` (where floating IPs are bound). */
export async function boundFloating(lab: Lab, ns: string, device: string): Promise<Set<string>> {
  const shown = await lab.exec(ns, ['ip', '-j', 'addr', 'show', 'dev', device]);
  if (shown.code !== 0) throw new Error(`ip addr show dev ${device} in ${ns}: ${shown.stderr}`);
  const links = JSON.parse(shown.stdout || '[]') as { addr_info?: { family: string; local: string; prefixlen: number }[] }[];
  return new Set(
    (links[0]?.addr_info ?? []).filter((entry) => entry.family === 'inet' && entry.prefixlen === 32).map((entry) => entry.local),
  );
}

export interface DnsmasqState {
  /** MAC → address, from the hosts file. */
  hosts: Map<string, string>;
  pid: number | undefined;
  running: boolean;
  /** The service recorded a load (start or SIGHUP) of exactly these hosts and opts files. */
  loadedCurrent: boolean;
}

/** The dnsmasq of `bridge` under a service's state_path: its hosts file and whether it runs. */
export function readDnsmasq(statePath: string, bridge: string): DnsmasqState {
  const base = join(statePath, 'networks', `nova-${bridge}`);
  const read = (suffix: string) => {
    try {
      return readFileSync(`${base}.${suffix}`, 'utf8');
    } catch {
      return undefined;
    }
  };
  // The hosts file, plus the hosts added one by one since it was last written (hostsdir).
  let extra: string[] = [];
  try {
    extra = readdirSync(`${base}.hostsdir`)
      .filter((name) => !name.startsWith('.'))
      .map((name) => readFileSync(join(`${base}.hostsdir`, name), 'utf8'));
  } catch {
    // no hostsdir yet
  }
  const lines = [
    ...(read('hosts') ?? '')
      .split('\n')
      .filter(Boolean)
      .map((line) => `${line}\n`),
    ...extra,
  ];
  const hosts = new Map<string, string>();
  for (const line of lines) {
    const [mac, , address] = line.trim().split(',');
    hosts.set(mac!, address!);
  }
  const pidText = read('pid')?.trim();
  const pid = pidText ? Number(pidText) : undefined;
  let running = false;
  if (pid !== undefined) {
    try {
      running = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
        .split('\0')
        .some((part) => part === 'dnsmasq' || part.endsWith('/dnsmasq'));
    } catch {
      running = false;
    }
  }
  // The record the driver keeps (linux_net/dnsmasq/state.ts): what dnsmasq was last told to load.
  const digest = loadedRecord(lines, read('opts') ?? '');
  return { hosts, pid, running, loadedCurrent: read('loaded') === digest };
}

/** dnsmasq runs, has loaded its files, and its hosts are exactly the allocated fixed IPs with their VIFs' MACs. */
export function dnsmasqViolations(dnsmasq: DnsmasqState, state: DbState): string[] {
  const problems: string[] = [];
  if (!dnsmasq.running) problems.push(`dnsmasq is not running (pid file: ${dnsmasq.pid ?? 'none'})`);
  if (!dnsmasq.loadedCurrent) problems.push('dnsmasq was not told to load the current hosts file');
  const vifById = new Map(state.vifs.map((vif) => [vif.id, vif]));
  const wanted = new Map<string, string>();
  for (const fixed of state.fixed) {
    const vif = fixed.allocated && fixed.virtualInterfaceId !== null ? vifById.get(fixed.virtualInterfaceId) : undefined;
    if (vif) wanted.set(vif.mac, fixed.address);
  }
  for (const [mac, address] of wanted)
    if (dnsmasq.hosts.get(mac) !== address)
      problems.push(`dnsmasq hosts lack ${mac} ${address} (have ${dnsmasq.hosts.get(mac) ?? 'nothing'})`);
  for (const [mac, address] of dnsmasq.hosts) if (!wanted.has(mac)) problems.push(`dnsmasq hosts have stale ${mac} ${address}`);
  return problems;
}
