import { Conflict } from '../errors.js';
import { interfaceName } from '../fields.js';
import { parseAddress } from '../ipam/address.js';
import { type Executor, jsonOutput } from './command.js';

/** The all-zero MAC: a flood entry, where broadcast and unknown unicast go. */
const FLOOD = '00:00:00:00:00:00';

/** What a VXLAN interface is built with. */
export interface VxlanSpec {
  /** The VNI, and the interface's name: `vxlan<ID>`. */
  id: number;
  /** This host's tunnel address. */
  local: string;
  /** The underlay interface. */
  dev: string;
  port: number;
  mtu: number;
  /** A multicast group to flood to (the underlay routes it), instead of one entry per peer. */
  group?: string | undefined;
}

interface VxlanLink {
  ifname: string;
  flags: string[];
  mtu: number;
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string; port?: number; group?: string } };
}

/** How a spec floods, as change lines say it. */
const flooding = (group: string | undefined) => (group ? `group ${group}` : 'head-end');

/**
 * VXLAN interfaces for VLAN-mode networks where 802.1Q cannot carry them (Neutron's
 * Linux bridge agent's model): `vxlan<VNI>` on the underlay, flooding by head-end
 * replication, one all-zero FDB entry per peer, or to a multicast group (the kernel's
 * one entry, to the group); unicast MACs are learned.
 */
export class VxlanDriver {
  constructor(private readonly executor: Executor) {}

  /** The interface as `spec` says, created or checked; the MTU and up state kept. */
  async ensure(spec: VxlanSpec): Promise<{ name: string; changes: string[] }> {
    interfaceName(spec.dev, 'vlan_interface');
    parseAddress(spec.local, 'tunnel_ip', 4);
    const name = `vxlan${spec.id}`;
    const changes: string[] = [];
    let link = await this.show(name);
    const data = link?.linkinfo?.info_data;
    if (link && (link.linkinfo?.info_kind !== 'vxlan' || data?.id !== spec.id)) {
      throw new Conflict(
        `${name} exists but is not VXLAN ${spec.id} (${link.linkinfo?.info_kind ?? 'no kind'} id ${data?.id ?? '-'}); remove it`,
      );
    }
    // Ours by name and VNI, built for another tunnel address, port or flooding (the
    // configuration changed): rebuilt, and the bridge takes it back.
    if (link && (data?.local !== spec.local || data.port !== spec.port || data.group !== spec.group)) {
      await this.run(['ip', 'link', 'del', name], [0, 1]);
      changes.push(
        `rebuilt ${name}: from ${spec.local} port ${spec.port}, ${flooding(spec.group)} (was ${data?.local ?? '-'} port ${data?.port ?? '-'}, ${flooding(data?.group)})`,
      );
      link = undefined;
    }
    if (!link) {
      await this.run([
        'ip',
        'link',
        'add',
        name,
        'type',
        'vxlan',
        'id',
        String(spec.id),
        ...(spec.group ? ['group', spec.group] : []),
        'local',
        spec.local,
        'dev',
        spec.dev,
        'dstport',
        String(spec.port),
      ]);
      if (changes.length === 0) changes.push(`created ${name} (VNI ${spec.id}) on ${spec.dev}`);
      link = { ifname: name, flags: [], mtu: 0 };
    }
    if (link.mtu !== spec.mtu) {
      await this.run(['ip', 'link', 'set', name, 'mtu', String(spec.mtu)]);
      changes.push(`mtu ${spec.mtu} on ${name}`);
    }
    if (!link.flags.includes('UP')) {
      await this.run(['ip', 'link', 'set', name, 'up']);
      changes.push(`${name} up`);
    }
    return { name, changes };
  }

  /** The MTU of the underlay interface, which a VXLAN interface on it must stay 50 below. */
  async underlayMtu(dev: string): Promise<number> {
    interfaceName(dev, 'vlan_interface');
    const argv = ['ip', '-j', 'link', 'show', 'dev', dev];
    const links = jsonOutput<{ mtu: number }[]>(argv, await this.executor.run({ argv }), []);
    return links[0]?.mtu ?? 1500;
  }

  /**
   * Makes the flood entries of `name` exactly one per peer: added, and removed when a
   * peer left. With a multicast group, the group is the one peer.
   */
  async syncPeers(name: string, peers: string[]): Promise<string[]> {
    interfaceName(name, 'vxlan');
    for (const peer of peers) parseAddress(peer, 'tunnel_ip', 4);
    const argv = ['bridge', '-j', 'fdb', 'show', 'dev', name];
    const entries = jsonOutput<{ mac: string; dst?: string }[]>(argv, await this.executor.run({ argv }), []);
    const present = new Set(entries.filter((entry) => entry.mac === FLOOD && entry.dst !== undefined).map((entry) => entry.dst!));
    const wanted = new Set(peers);
    const changes: string[] = [];
    for (const peer of wanted) {
      if (present.has(peer)) continue;
      await this.run(['bridge', 'fdb', 'append', FLOOD, 'dev', name, 'dst', peer]);
      changes.push(`flood ${name} to ${peer}`);
    }
    for (const peer of present) {
      if (wanted.has(peer)) continue;
      await this.run(['bridge', 'fdb', 'del', FLOOD, 'dev', name, 'dst', peer]);
      changes.push(`no flood ${name} to ${peer}`);
    }
    return changes;
  }

  /** Removes a VXLAN interface novanet built; false when there was none. */
  async delete(id: number): Promise<boolean> {
    const name = `vxlan${id}`;
    if ((await this.show(name))?.linkinfo?.info_kind !== 'vxlan') return false;
    await this.run(['ip', 'link', 'del', name], [0, 1]);
    return true;
  }

  private async show(name: string): Promise<VxlanLink | undefined> {
    const argv = ['ip', '-d', '-j', 'link', 'show', 'dev', name];
    const result = await this.executor.run({ argv, accept: [0, 1] });
    return result.code === 0 ? jsonOutput<VxlanLink[]>(argv, result, [])[0] : undefined;
  }

  private async run(argv: string[], accept?: number[]): Promise<void> {
    await this.executor.run({ argv, ...(accept ? { accept } : {}) });
  }
}
