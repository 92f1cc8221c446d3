import { join } from 'node:path';
import { interfaceName } from '../../fields.js';

/**
 * What one network's dnsmasq is given, as values: its command line, its hosts and
 * options files, and where its files live. Pure: nothing here reads or writes.
 */

/** One network as dnsmasq serves it. */
export interface DhcpNetwork {
  id: number;
  bridge: string;
  dhcpServer: string;
  dhcpStart: string;
  netmask: string;
  gateway: string | null;
  /** Number of addresses of the subnet (dnsmasq's lease limit). */
  size: number;
  mtu: number | null;
  dns: string[];
  /**
   * The network has an IPv6 /64 on the bridge, advertised by dnsmasq: for SLAAC, or
   * (dhcpv6) as on-link with the managed flag, each VIF's address handed out by DHCPv6.
   */
  ipv6: 'slaac' | 'dhcpv6' | undefined;
}

/** nova's radvd sent an advertisement every 3 to 10 s; dnsmasq's interval is the longest. */
const RA_INTERVAL_S = 10;

export interface DhcpHost {
  mac: string;
  hostname: string | null;
  address: string;
  /** Its static DHCPv6 address, when the network hands them out. */
  addressV6?: string;
}

export interface DnsmasqOptions {
  statePath: string;
  domain: string;
  leaseTime: number;
  /** dns_server: upstream servers; none means dnsmasq reads resolv.conf. */
  dnsServers: string[];
  /** argv that runs novanet-dhcpbridge (dnsmasq's --dhcp-script). */
  dhcpScript: string;
  /** Passed to the script so it finds the same database. */
  configFile: string | undefined;
}

export interface NetworkFiles {
  conf: string;
  pid: string;
  hosts: string;
  /** --dhcp-hostsdir: one file per addHosts call since the hosts file was last loaded. */
  hostsdir: string;
  opts: string;
  /** The fingerprint of the hosts and opts dnsmasq holds (started, SIGHUPed or told through hostsdir). */
  loaded: string;
}

/**
 * A bridge's files, under state_path/networks and named after the bridge (nova's
 * `nova-BRIDGE.*`). The name is checked first: it becomes part of paths and argv.
 */
export function networkFiles(statePath: string, bridge: string): NetworkFiles {
  interfaceName(bridge, 'bridge');
  const base = join(statePath, 'networks', `nova-${bridge}`);
  return {
    conf: `${base}.conf`,
    pid: `${base}.pid`,
    hosts: `${base}.hosts`,
    hostsdir: `${base}.hostsdir`,
    opts: `${base}.opts`,
    loaded: `${base}.loaded`,
  };
}

/** dnsmasq's static host line: `MAC,hostname.domain,IP` (nova's format), then `,[IPv6]` for DHCPv6. */
export function hostLine(host: DhcpHost, domain: string): string {
  const name = host.hostname ? `${host.hostname}.${domain}` : `host-${host.address.replace(/[.:]/g, '-')}.${domain}`;
  return `${host.mac},${name},${host.address}${host.addressV6 ? `,[${host.addressV6}]` : ''}\n`;
}

/** The IPv4 address of a line hostLine wrote. */
export function lineAddress(line: string): string {
  return line.trimEnd().split(',')[2]!;
}

export function hostsFile(hosts: DhcpHost[], domain: string): string {
  return hosts.map((host) => hostLine(host, domain)).join('');
}

/** DHCP options: the router (3) and, when set, the MTU (26) and DNS servers (6). */
export function optsFile(network: DhcpNetwork): string {
  const lines: string[] = [];
  if (network.gateway) lines.push(`tag:net${network.id},option:router,${network.gateway}`);
  else lines.push(`tag:net${network.id},option:router`);
  if (network.mtu) lines.push(`tag:net${network.id},option:mtu,${network.mtu}`);
  // The network's dns1/dns2; without them VMs use dnsmasq itself (the DHCP server).
  if (network.dns.length > 0) lines.push(`tag:net${network.id},option:dns-server,${network.dns.join(',')}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Router advertisements in place of nova's radvd: the bridge's /64 (dnsmasq builds the
 * prefix from the bridge's own address, `constructor:`), with the network's MTU;
 * dnsmasq names itself as the DNS server (RDNSS), as it serves DNS on the bridge.
 * SLAAC: on-link and autonomous, no DHCPv6 (`ra-only`). DHCPv6: the managed flag, and
 * addresses for the hosts file's entries only (`static`).
 */
function routerAdvertisements(network: DhcpNetwork, mode: 'slaac' | 'dhcpv6', options: DnsmasqOptions): string[] {
  return [
    '--enable-ra',
    `--dhcp-range=set:net${network.id}v6,::,constructor:${network.bridge},${mode === 'slaac' ? 'ra-only' : 'static'},64,${options.leaseTime}s`,
    // The MTU the network sets, else the bridge's own (dnsmasq reads it when it advertises).
    `--ra-param=${network.bridge},mtu:${network.mtu ?? network.bridge},${RA_INTERVAL_S}`,
  ];
}

/** nova's dnsmasq command line, with the tag named after the network id. */
export function dnsmasqArgs(network: DhcpNetwork, files: NetworkFiles, options: DnsmasqOptions): string[] {
  const env = ['env', `NETWORK_ID=${network.id}`, ...(options.configFile ? [`NOVANET_CONFIG_FILE=${options.configFile}`] : [])];
  return [
    ...env,
    'dnsmasq',
    '--strict-order',
    '--bind-interfaces',
    `--conf-file=${files.conf}`,
    `--pid-file=${files.pid}`,
    `--dhcp-optsfile=${files.opts}`,
    `--listen-address=${network.dhcpServer}`,
    // One interface: dnsmasq binds its DHCP socket to the bridge (SO_BINDTODEVICE).
    // Without it every dnsmasq of the host shares 0.0.0.0:67, and a unicast packet (a
    // dhcp_release) reaches only one of them, often another bridge's: lost.
    `--interface=${network.bridge}`,
    '--except-interface=lo',
    `--dhcp-range=set:net${network.id},${network.dhcpStart},static,${network.netmask},${options.leaseTime}s`,
    `--dhcp-lease-max=${network.size}`,
    `--dhcp-hostsfile=${files.hosts}`,
    `--dhcp-hostsdir=${files.hostsdir}`,
    `--dhcp-script=${options.dhcpScript}`,
    ...(network.ipv6 ? routerAdvertisements(network, network.ipv6, options) : []),
    '--no-hosts',
    '--leasefile-ro',
    `--domain=${options.domain}`,
    ...(options.dnsServers.length > 0 ? ['--no-resolv', ...options.dnsServers.map((server) => `--server=${server}`)] : []),
  ];
}
