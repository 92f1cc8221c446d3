import { Conflict, NotFound, Unavailable } from '../errors.js';
import { interfaceName } from '../fields.js';
import { parseAddress } from '../ipam/address.js';
import { CommandFailed, type Executor, jsonOutput } from './command.js';

/** What `ip -j addr show` reports about one interface. */
export interface LinkInfo {
  ifname: string;
  flags: string[];
  mtu: number;
  master?: string;
  address?: string;
  addr_info?: { family: string; local: string; prefixlen: number; broadcast?: string; scope?: string; dynamic?: boolean }[];
  /** With -d: the kind of device (bridge, vlan, veth, ...); absent for a physical interface or lo. */
  linkinfo?: { info_kind?: string };
}

/** A device's kind as `ip -d` reports it, in words for a message. */
function kindOf(link: LinkInfo): string {
  const kind = link.linkinfo?.info_kind;
  return kind === undefined ? 'a device of no kind, such as a physical interface or lo' : `a ${kind} device`;
}

/** `ip -d -j link show` adds the link's kind and, for VLANs, the id and parent. */
interface VlanLinkInfo {
  ifname: string;
  flags: string[];
  mtu: number;
  link?: string;
  linkinfo?: { info_kind?: string; info_data?: { id?: number } };
}

interface RouteInfo {
  dst: string;
  gateway?: string;
  metric?: number;
}

/** `ip addr add` arguments that recreate an address as it was (broadcast included). */
function addressArgs(entry: { local: string; prefixlen: number; broadcast?: string }): string[] {
  return [`${entry.local}/${entry.prefixlen}`, ...(entry.broadcast ? ['brd', entry.broadcast] : [])];
}

/** Exit statuses nova accepted for `ip addr add/del` of an existing/missing address. */
const IDEMPOTENT = [0, 2, 254];

/**
 * Bridges, addresses and forwarding, as nova's linux_net did them, but each step
 * checks first, so running it again on a correct host runs no changing command.
 */
export class LinkDriver {
  constructor(private readonly executor: Executor) {}

  /** The interface and its addresses, or undefined when it does not exist. */
  async show(name: string): Promise<LinkInfo | undefined> {
    interfaceName(name, 'interface');
    const argv = ['ip', '-d', '-j', 'addr', 'show', 'dev', name];
    const result = await this.executor.run({ argv, accept: [0, 1] });
    if (result.code === 0) return jsonOutput<LinkInfo[]>(argv, result, [])[0];
    // Status 1 is also how ip reports a refused netlink request: only "does not exist" means missing.
    if (/does not exist/.test(result.stderr)) return undefined;
    throw new CommandFailed(argv, result.code, result.stderr, `exit status ${result.code}`);
  }

  /**
   * Creates the bridge if missing (forward delay 0, STP off) and brings it up. With an
   * interface: enslaves it, gives the bridge its MAC, and moves its IPv4 addresses and
   * routes via a gateway onto the bridge, so the host keeps its connectivity.
   */
  async ensureBridge(bridge: string, options: { interface?: string | null; mtu?: number | null } = {}): Promise<string[]> {
    interfaceName(bridge, 'bridge');
    const done: string[] = [];
    let current = await this.show(bridge);
    // Another device under that name (the public interface, lo, a veth) is no bridge to
    // build on: enslaving and addressing it would fail, or take it from the host.
    if (current && current.linkinfo?.info_kind !== 'bridge') {
      throw new Conflict(`${bridge} exists but is not a bridge (it is ${kindOf(current)}); give the network a bridge name of its own`);
    }
    if (!current) {
      await this.ip(['link', 'add', bridge, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
      done.push(`created bridge ${bridge}`);
      current = await this.show(bridge);
    }
    if (options.mtu && current?.mtu !== options.mtu) {
      await this.ip(['link', 'set', bridge, 'mtu', String(options.mtu)]);
      done.push(`mtu ${options.mtu} on ${bridge}`);
    }
    if (!current?.flags.includes('UP')) {
      await this.ip(['link', 'set', bridge, 'up']);
      done.push(`${bridge} up`);
    }
    const slave = options.interface ?? undefined;
    if (slave) done.push(...(await this.enslave(bridge, slave, options.mtu ?? undefined)));
    return done;
  }

  private async enslave(bridge: string, slave: string, mtu: number | undefined): Promise<string[]> {
    interfaceName(slave, 'bridge_interface');
    const done: string[] = [];
    const link = await this.show(slave);
    if (!link) throw new NotFound(`interface ${slave} does not exist; cannot add it to ${bridge}`);
    if (mtu && link.mtu !== mtu) await this.ip(['link', 'set', slave, 'mtu', String(mtu)]);
    if (link.master !== bridge) {
      await this.ip(['link', 'set', slave, 'master', bridge]);
      if (link.address) await this.ip(['link', 'set', bridge, 'address', link.address]);
      done.push(`enslaved ${slave} to ${bridge}`);
    }
    if (!link.flags.includes('UP')) await this.ip(['link', 'set', slave, 'up']);
    // Addresses and gateway routes on the enslaved interface stop working: move them.
    // Routes are read first: deleting the addresses makes the kernel drop them.
    const routes = await this.routes(slave);
    for (const address of (link.addr_info ?? []).filter((entry) => entry.family === 'inet' && entry.scope === 'global')) {
      // Deleting a primary address also deletes its secondaries: 2 then means "already gone".
      await this.ip(['addr', 'del', `${address.local}/${address.prefixlen}`, 'dev', slave], IDEMPOTENT);
      await this.ip(['addr', 'add', ...addressArgs(address), 'dev', bridge], IDEMPOTENT);
      done.push(`moved ${address.local}/${address.prefixlen} from ${slave} to ${bridge}`);
    }
    for (const route of await this.putRoutes(routes, bridge)) done.push(`moved route ${route.dst} via ${route.gateway} to ${bridge}`);
    return done;
  }

  /** The routes via a gateway that leave through `name`. */
  private async routes(name: string): Promise<RouteInfo[]> {
    const argv = ['ip', '-j', 'route', 'show', 'dev', name];
    const result = await this.executor.run({ argv, accept: [0, 1] });
    return result.code === 0 ? jsonOutput<RouteInfo[]>(argv, result, []).filter((route) => route.gateway) : [];
  }

  /** (Re)creates routes via a gateway on `device`, with their metric; returns them. */
  private async putRoutes(routes: RouteInfo[], device: string): Promise<RouteInfo[]> {
    for (const route of routes) {
      // No accepted failures here: a route that cannot be put back would cut the host off silently.
      const metric = route.metric === undefined ? [] : ['metric', String(route.metric)];
      await this.ip(['route', 'replace', route.dst, 'via', route.gateway!, 'dev', device, ...metric]);
    }
    return routes;
  }

  /**
   * Makes `address/prefix` the bridge's FIRST IPv4 address: dnsmasq binds the first
   * one. The other addresses are removed and re-added after it, as nova did.
   */
  async ensureFirstAddress(bridge: string, address: string, prefix: number): Promise<string[]> {
    const link = await this.show(bridge);
    if (!link) throw new NotFound(`bridge ${bridge} does not exist`);
    const ipv4 = (link.addr_info ?? []).filter((entry) => entry.family === 'inet');
    const first = ipv4[0];
    if (first && first.local === address && first.prefixlen === prefix) return [];
    const others = ipv4.filter((entry) => !(entry.local === address && entry.prefixlen === prefix));
    // Removing the host's addresses drops the routes through them (its default route,
    // when flat_interface's were moved here): read them first, put them back after.
    const routes = others.length > 0 ? await this.routes(bridge) : [];
    for (const entry of others) await this.ip(['addr', 'del', `${entry.local}/${entry.prefixlen}`, 'dev', bridge], IDEMPOTENT);
    await this.ip(['addr', 'add', `${address}/${prefix}`, 'brd', '+', 'dev', bridge], IDEMPOTENT);
    // The gateway address with a stale prefix stays removed; the host's own addresses come back.
    for (const entry of others.filter((other) => other.local !== address)) {
      await this.ip(['addr', 'add', ...addressArgs(entry), 'dev', bridge], IDEMPOTENT);
    }
    await this.putRoutes(routes, bridge);
    return [`gateway ${address}/${prefix} on ${bridge}`];
  }

  /**
   * The network's IPv6 gateway on the bridge, beside its IPv4 addresses. No duplicate
   * address detection: the address is the network's own, never a VM's, and a bridge
   * that is down would otherwise hold it tentative.
   */
  async ensureAddressV6(bridge: string, address: string, prefix: number): Promise<string[]> {
    const link = await this.show(bridge);
    if (!link) throw new NotFound(`bridge ${bridge} does not exist`);
    const wanted = parseAddress(address, 'gateway_v6', 6).value;
    const present = (link.addr_info ?? []).some(
      (entry) => entry.family === 'inet6' && entry.prefixlen === prefix && parseAddress(entry.local, 'address', 6).value === wanted,
    );
    if (present) return [];
    await this.ip(['-6', 'addr', 'add', `${address}/${prefix}`, 'dev', bridge, 'nodad'], IDEMPOTENT);
    return [`gateway ${address}/${prefix} on ${bridge}`];
  }

  /** Removes one address; an address already gone is fine (status 2). */
  async removeAddress(device: string, address: string, prefix: number): Promise<void> {
    interfaceName(device, 'interface');
    await this.ip(['addr', 'del', `${address}/${prefix}`, 'dev', device], IDEMPOTENT);
  }

  /**
   * The 802.1Q interface `vlanID` on `parent` (nova's naming), created if missing and
   * brought up. An existing one with another VLAN id or parent is an error, not reused.
   */
  async ensureVlan(id: number, parent: string, mtu?: number | null): Promise<{ name: string; changes: string[] }> {
    interfaceName(parent, 'vlan_interface');
    const name = `vlan${id}`;
    const changes: string[] = [];
    const show = ['ip', '-d', '-j', 'link', 'show', 'dev', name];
    const details = await this.executor.run({ argv: show, accept: [0, 1] });
    let link = details.code === 0 ? jsonOutput<VlanLinkInfo[]>(show, details, [])[0] : undefined;
    if (link) {
      const kind = link.linkinfo?.info_kind;
      const existingId = link.linkinfo?.info_data?.id;
      // A Conflict, not Unavailable: the reconciler builds a network without an
      // unavailable uplink, but must not build one on somebody else's interface.
      if (kind !== 'vlan' || existingId !== id || (link.link !== undefined && link.link !== parent)) {
        throw new Conflict(
          `${name} exists but is not VLAN ${id} on ${parent} (${kind ?? 'no kind'} id ${existingId ?? '-'} on ${link.link ?? '-'}); remove it or fix the network`,
        );
      }
    } else {
      try {
        await this.ip(['link', 'add', 'link', parent, 'name', name, 'type', 'vlan', 'id', String(id)]);
      } catch (error) {
        if (/Unknown device type/i.test((error as Error).message)) {
          throw new Unavailable(`the kernel has no 802.1Q support (load the 8021q module): cannot create ${name} on ${parent}`);
        }
        throw error;
      }
      changes.push(`created ${name} on ${parent}`);
      link = { ifname: name, flags: [], mtu: 0 };
    }
    if (mtu && link.mtu !== mtu) {
      await this.ip(['link', 'set', name, 'mtu', String(mtu)]);
      changes.push(`mtu ${mtu} on ${name}`);
    }
    if (!link.flags.includes('UP')) {
      await this.ip(['link', 'set', name, 'up']);
      changes.push(`${name} up`);
    }
    return { name, changes };
  }

  /** Removes a VLAN interface novanet built; false when there was none. */
  async deleteVlan(id: number): Promise<boolean> {
    const name = `vlan${id}`;
    // Only novanet's own: a device of another kind under that name is not ours to remove.
    if ((await this.show(name))?.linkinfo?.info_kind !== 'vlan') return false;
    await this.ip(['link', 'del', name], IDEMPOTENT);
    return true;
  }

  /** Every link on the host with the bridge it is in, if any: one listing for the tap watch. */
  async masters(): Promise<Map<string, string | undefined>> {
    const argv = ['ip', '-j', 'link', 'show'];
    const links = jsonOutput<{ ifname: string; master?: string }[]>(argv, await this.executor.run({ argv }), []);
    return new Map(links.map((link) => [link.ifname, link.master]));
  }

  /** Puts a VM's tap into its network's bridge and brings it up (what libvirt does for type='bridge'). */
  async attach(device: string, bridge: string): Promise<void> {
    interfaceName(device, 'tap');
    interfaceName(bridge, 'bridge');
    await this.ip(['link', 'set', 'dev', device, 'master', bridge]);
    await this.ip(['link', 'set', 'dev', device, 'up']);
  }

  /** The names of every bridge on the host. */
  async bridgeNames(): Promise<Set<string>> {
    const argv = ['ip', '-j', 'link', 'show', 'type', 'bridge'];
    const result = await this.executor.run({ argv });
    return new Set(jsonOutput<{ ifname: string }[]>(argv, result, []).map((link) => link.ifname));
  }

  /** The devices enslaved to `bridge` (none when it does not exist). */
  async ports(bridge: string): Promise<string[]> {
    interfaceName(bridge, 'bridge');
    const argv = ['ip', '-j', 'link', 'show', 'master', bridge];
    const result = await this.executor.run({ argv, accept: [0, 1] });
    if (result.code !== 0) {
      if (/does not exist/.test(result.stderr)) return [];
      throw new CommandFailed(argv, result.code, result.stderr, `exit status ${result.code}`);
    }
    return jsonOutput<{ ifname: string }[]>(argv, result, []).map((link) => link.ifname);
  }

  /** Removes a bridge novanet built (its enslaved interface is released by the kernel). */
  async deleteBridge(bridge: string): Promise<boolean> {
    if ((await this.show(bridge))?.linkinfo?.info_kind !== 'bridge') return false;
    await this.ip(['link', 'set', bridge, 'down'], IDEMPOTENT);
    await this.ip(['link', 'del', bridge], IDEMPOTENT);
    return true;
  }

  /** IPv4 forwarding on (per network namespace). */
  async ensureForwarding(): Promise<boolean> {
    return this.ensureSysctl('net.ipv4.ip_forward');
  }

  /**
   * IPv6 forwarding on (per network namespace). The host then ignores router
   * advertisements on interfaces whose accept_ra is 1 (README: IPv6).
   */
  async ensureForwardingV6(): Promise<boolean> {
    return this.ensureSysctl('net.ipv6.conf.all.forwarding');
  }

  private async ensureSysctl(key: string): Promise<boolean> {
    const current = await this.executor.run({ argv: ['sysctl', '-n', key] });
    if (current.stdout.trim() === '1') return false;
    await this.executor.run({ argv: ['sysctl', '-w', `${key}=1`] });
    return true;
  }

  private async ip(args: string[], accept?: number[]): Promise<void> {
    await this.executor.run({ argv: ['ip', ...args], ...(accept ? { accept } : {}) });
  }
}
