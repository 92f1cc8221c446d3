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
}

interface VxlanLink {
  ifname: string;
  flags: string[];
  mtu: number;
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string; port?: number } };
}

/**
 * VXLAN interfaces for VLAN-mode networks where 802.1Q cannot carry them (Neutron's
 * Linux bridge agent's model): `vxlan<VNI>` on the underlay, flooding by head-end
 * replication, one all-zero FDB entry per peer; unicast MACs are learned.
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
    if (link) {
      const data = link.linkinfo?.info_data;
      if (link.linkinfo?.info_kind !== 'vxlan' || data?.id !== spec.id || data.local !== spec.local || data.port !== spec.port) {
        throw new Conflict(
          `${name} exists but is not VXLAN ${spec.id} from ${spec.local} port ${spec.port} (${link.linkinfo?.info_kind ?? 'no kind'} id ${data?.id ?? '-'} from ${data?.local ?? '-'} port ${data?.port ?? '-'}); remove it or fix tunnel_ip`,
        );
      }
    } else {
      await this.run([
        'ip',
        'link',
        'add',
        name,
        'type',
        'vxlan',
        'id',
        String(spec.id),
        'local',
        spec.local,
        'dev',
        spec.dev,
        'dstport',
        String(spec.port),
      ]);
      changes.push(`created ${name} (VNI ${spec.id}) on ${spec.dev}`);
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

  /** Makes the flood entries of `name` exactly one per peer: added, and removed when a peer left. */
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
