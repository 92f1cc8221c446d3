import { hostname, networkInterfaces } from 'node:os';
import { Invalid } from '../errors.js';
import { booleanText, hostnameField, integerText, interfaceName, labelField, quote } from '../fields.js';
import { parseAddress } from '../ipam/address.js';
import { parseCidr } from '../ipam/cidr.js';
import { IPV6_BACKENDS } from '../ipam/ipv6.js';

/** How one option's text becomes a value; throws with a message naming the option. */
type Parser<T> = (text: string, name: string) => T;

export interface OptionSpec<T = unknown> {
  section: 'DEFAULT' | 'database' | 'api';
  /** Its name in the file and the environment, when that differs from the option's name (`[api] host` is `api_host`). */
  key?: string;
  parse: Parser<T>;
  /** Text default, parsed like user input (so `$my_ip` interpolation applies). */
  default: string | undefined;
  help: string;
}

export const MODES = ['flat', 'flatdhcp', 'vlan'] as const;
export type Mode = (typeof MODES)[number];

const MANAGER_CLASSES: Record<string, Mode> = {
  'nova.network.manager.FlatManager': 'flat',
  'nova.network.manager.FlatDHCPManager': 'flatdhcp',
  'nova.network.manager.VlanManager': 'vlan',
};

const text: Parser<string> = (value) => value;

/** Names that reach dnsmasq's hosts file and --domain, or that hosts compare: DNS names only. */
const dnsName: Parser<string> = (value, name) => hostnameField(value.trim(), name);

/** Free text shown to users and stored (a pool's name): printable, one line. */
const label: Parser<string> = (value, name) => labelField(value.trim(), name);

/** Paths reach command lines and files: absolute, so they do not depend on where a program starts, and one line. */
const absolutePath: Parser<string> = (value, name) => {
  const trimmed = value.trim();
  if (!trimmed.startsWith('/')) throw new Invalid(`${name} must be an absolute path, got ${quote(value)}`);
  labelField(trimmed, name);
  return trimmed;
};

const optionalAbsolutePath: Parser<string | undefined> = (value, name) => (value.trim() === '' ? undefined : absolutePath(value, name));

function integer(min: number, max: number): Parser<number> {
  return (value, name) => {
    const parsed = integerText(value);
    if (parsed === undefined) throw new Invalid(`${name} must be an integer, got ${quote(value)}`);
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      throw new Invalid(`${name} must be between ${min} and ${max}, got ${quote(value)}`);
    }
    return parsed;
  };
}

/** oslo.config's spellings of true and false. */
const boolean: Parser<boolean> = (value, name) => {
  const parsed = booleanText(value);
  if (parsed === undefined) throw new Invalid(`${name} must be true or false, got ${quote(value)}`);
  return parsed;
};

// A configuration file's values are trimmed (as oslo.config reads them); the API's and the CLI's are not.
const ipv4: Parser<string> = (value, name) => {
  parseAddress(value.trim(), name, 4);
  return value.trim();
};

/** Empty, or an IPv4 multicast address (224.0.0.0/4). */
const multicastGroup: Parser<string | undefined> = (value, name) => {
  if (value.trim() === '') return undefined;
  const address = ipv4(value, name);
  const first = Number(address.split('.')[0]);
  if (first < 224 || first > 239) throw new Invalid(`${name} must be an IPv4 multicast address (224.0.0.0/4), got ${quote(address)}`);
  return address;
};

function list<T>(item: Parser<T>): Parser<T[]> {
  return (value, name) =>
    value
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part !== '')
      .map((part) => item(part, name));
}

const cidrText: Parser<string> = (value, name) => {
  parseCidr(value.trim(), name);
  return value.trim();
};

/** dmz_cidr reaches iptables (IPv4 only); 0.0.0.0/0 would exempt everything from SNAT. */
const dmzCidr: Parser<string> = (value, name) => {
  const cidr = parseCidr(value.trim(), name, 4);
  if (cidr.prefix === 0) throw new Invalid(`${name} 0.0.0.0/0 would exempt all traffic from SNAT; name the destinations`);
  return value.trim();
};

const optionalInterface: Parser<string | undefined> = (value, name) => (value === '' ? undefined : interfaceName(value, name));

const manager: Parser<Mode> = (value, name) => {
  const lowered = value.trim().toLowerCase();
  const mode = MODES.find((candidate) => candidate === lowered) ?? MANAGER_CLASSES[value.trim()];
  if (mode === undefined) {
    throw new Invalid(
      `${name} must be one of flat, flatdhcp, vlan or a nova class path (${Object.keys(MANAGER_CLASSES).join(', ')}), got ${quote(value)}`,
    );
  }
  return mode;
};

/** One of a fixed set of words (case and surrounding blanks ignored). */
function choice<const T extends string>(values: readonly T[]): Parser<T> {
  return (value, name) => {
    const lowered = value.trim().toLowerCase();
    const found = values.find((candidate) => candidate === lowered);
    if (found === undefined) throw new Invalid(`${name} must be one of ${values.join(', ')}, got ${quote(value)}`);
    return found;
  };
}

export const VLAN_TRANSPORTS = ['8021q', 'vxlan'] as const;

export const FIREWALL_BACKENDS = ['iptables', 'nftables'] as const;
export type FirewallBackend = (typeof FIREWALL_BACKENDS)[number];

/** Where a server listens: an IP address or a host name (resolved when it binds). */
const listenHost: Parser<string> = (value, name) => {
  const trimmed = value.trim();
  if (trimmed.includes(':') || /^[0-9.]+$/.test(trimmed)) {
    parseAddress(trimmed, name);
    return trimmed;
  }
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/.test(trimmed)) {
    throw new Invalid(`${name} must be an IP address or a host name, got ${quote(value)}`);
  }
  return trimmed;
};

/** A command prefix split on blanks; a newline or NUL in it would end or cut every command it leads. */
const rootHelper: Parser<string[]> = (value, name) => {
  if (value.trim() !== '') labelField(value.replace(/\t/g, ' '), name);
  return value.split(/[ \t]+/).filter((part) => part !== '');
};

/** The first non-internal IPv4 address, nova's guess for my_ip. */
function guessMyIp(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    const found = addresses?.find((address) => address.family === 'IPv4' && !address.internal);
    if (found) return found.address;
  }
  return '127.0.0.1';
}

/**
 * Every option novanet reads, with nova's names and defaults. The table is the
 * validation: unknown keys warn, known keys are parsed by their entry.
 */
export const OPTIONS = {
  network_manager: { section: 'DEFAULT', parse: manager, default: 'vlan', help: 'flat, flatdhcp or vlan (or nova class path)' },
  host: { section: 'DEFAULT', parse: dnsName, default: hostname(), help: 'name of this host' },
  my_ip: { section: 'DEFAULT', parse: ipv4, default: guessMyIp(), help: "this host's IPv4 address" },
  state_path: { section: 'DEFAULT', parse: absolutePath, default: '/var/lib/novanet', help: 'directory for state files' },
  root_helper: { section: 'DEFAULT', parse: rootHelper, default: '', help: 'command prefix for privileged commands' },
  flat_network_bridge: { section: 'DEFAULT', parse: interfaceName, default: 'br100', help: 'bridge of flat networks' },
  flat_interface: { section: 'DEFAULT', parse: optionalInterface, default: '', help: 'interface enslaved to flat bridges' },
  flat_injected: { section: 'DEFAULT', parse: boolean, default: 'false', help: 'inject network config into flat instances' },
  flat_network_dns: { section: 'DEFAULT', parse: ipv4, default: '8.8.4.4', help: 'DNS server of flat networks' },
  public_interface: { section: 'DEFAULT', parse: interfaceName, default: 'eth0', help: 'interface of floating IPs and SNAT' },
  vlan_interface: { section: 'DEFAULT', parse: optionalInterface, default: '', help: 'interface VLANs are created on' },
  vlan_start: { section: 'DEFAULT', parse: integer(1, 4094), default: '100', help: 'first VLAN id' },
  vpn_ip: { section: 'DEFAULT', parse: ipv4, default: '$my_ip', help: 'public address of cloudpipe VPNs' },
  vpn_start: { section: 'DEFAULT', parse: integer(1, 65535), default: '1000', help: 'first VPN public port' },
  cnt_vpn_clients: { section: 'DEFAULT', parse: integer(0, 65535), default: '0', help: 'addresses reserved for VPN clients' },
  network_size: { section: 'DEFAULT', parse: integer(4, 2 ** 24), default: '256', help: 'addresses per network' },
  num_networks: { section: 'DEFAULT', parse: integer(1, 4094), default: '1', help: 'networks per create' },
  fixed_range_v6: { section: 'DEFAULT', parse: cidrText, default: 'fd00::/48', help: 'IPv6 range of fixed networks' },
  use_ipv6: { section: 'DEFAULT', parse: boolean, default: 'false', help: 'give networks IPv6 subnets' },
  ipv6_backend: {
    section: 'DEFAULT',
    parse: choice(IPV6_BACKENDS),
    default: 'rfc2462',
    help: "VIFs' IPv6 addresses: rfc2462 (SLAAC from the MAC) or account_identifier (from project and MAC, handed out by DHCPv6)",
  },
  dhcp_lease_time: { section: 'DEFAULT', parse: integer(120, 2 ** 31 - 1), default: '86400', help: 'DHCP lease seconds' },
  fixed_ip_disassociate_timeout: {
    section: 'DEFAULT',
    parse: integer(0, 2 ** 31 - 1),
    default: '600',
    help: 'seconds before a released IP is reused',
  },
  force_dhcp_release: { section: 'DEFAULT', parse: boolean, default: 'true', help: 'dhcp_release on deallocate' },
  send_arp_for_ha: { section: 'DEFAULT', parse: boolean, default: 'false', help: 'gratuitous ARP for floating IPs' },
  send_arp_for_ha_count: { section: 'DEFAULT', parse: integer(1, 100), default: '3', help: 'gratuitous ARPs to send' },
  auto_assign_floating_ip: { section: 'DEFAULT', parse: boolean, default: 'false', help: 'give every instance a floating IP' },
  default_floating_pool: { section: 'DEFAULT', parse: label, default: 'nova', help: 'pool of auto-assigned floating IPs' },
  quota_floating_ips: {
    section: 'DEFAULT',
    parse: integer(-1, 2 ** 31 - 1),
    default: '10',
    help: 'floating IPs per project (-1 unlimited)',
  },
  quota_security_groups: {
    section: 'DEFAULT',
    parse: integer(-1, 2 ** 31 - 1),
    default: '10',
    help: 'security groups per project (-1 unlimited)',
  },
  quota_security_group_rules: {
    section: 'DEFAULT',
    parse: integer(-1, 2 ** 31 - 1),
    default: '20',
    help: 'rules per security group (-1 unlimited)',
  },
  multi_host: { section: 'DEFAULT', parse: boolean, default: 'false', help: 'default for new networks' },
  dmz_cidr: { section: 'DEFAULT', parse: list(dmzCidr), default: '', help: 'destinations exempt from SNAT' },
  routing_source_ip: { section: 'DEFAULT', parse: ipv4, default: '$my_ip', help: 'SNAT source address' },
  metadata_host: { section: 'DEFAULT', parse: ipv4, default: '$my_ip', help: 'metadata service address' },
  metadata_port: { section: 'DEFAULT', parse: integer(1, 65535), default: '8775', help: 'metadata service port' },
  dhcp_domain: { section: 'DEFAULT', parse: dnsName, default: 'novalocal', help: 'DHCP domain' },
  dns_server: { section: 'DEFAULT', parse: list(ipv4), default: '', help: 'DNS servers given to dnsmasq' },
  dhcpbridge: { section: 'DEFAULT', parse: optionalAbsolutePath, default: '', help: 'path of novanet-dhcpbridge' },
  firewall_backend: {
    section: 'DEFAULT',
    parse: choice(FIREWALL_BACKENDS),
    default: 'iptables',
    help: "iptables (nova's chains) or nftables (one table of novanet's)",
  },
  network_host: {
    section: 'DEFAULT',
    parse: boolean,
    default: 'true',
    help: 'may be the network host of single-host networks (DHCP, gateway, NAT); false on a compute-only host',
  },
  vlan_transport: {
    section: 'DEFAULT',
    parse: choice(VLAN_TRANSPORTS),
    default: '8021q',
    help: "how VLAN-mode networks cross hosts: 8021q (nova's vlanNNN on vlan_interface) or vxlan (vxlanNNN, VNI = the VLAN id)",
  },
  vxlan_port: { section: 'DEFAULT', parse: integer(1, 65535), default: '4789', help: 'UDP port of VXLAN (IANA 4789)' },
  vxlan_group: {
    section: 'DEFAULT',
    parse: multicastGroup,
    default: '',
    help: 'VXLAN floods to this multicast group (the underlay must route it) instead of to each peer (empty: head-end replication)',
  },
  tunnel_ip: { section: 'DEFAULT', parse: ipv4, default: '$my_ip', help: 'address other hosts reach this one on (VXLAN local)' },
  wake_address: {
    section: 'DEFAULT',
    parse: ipv4,
    default: '$tunnel_ip',
    help: 'address this service takes wakes on from other hosts (a UDP datagram: poll the database now)',
  },
  wake_port: { section: 'DEFAULT', parse: integer(0, 65535), default: '8781', help: 'UDP port of wakes (0: any free port)' },
  anti_spoofing: {
    section: 'DEFAULT',
    parse: boolean,
    default: 'true',
    help: "each VM's port passes only its own MAC and addresses, and no DHCP server or router advertisement",
  },
  report_interval: { section: 'DEFAULT', parse: integer(1, 3600), default: '10', help: 'seconds between heartbeats' },
  service_down_time: {
    section: 'DEFAULT',
    parse: integer(1, 86400),
    default: '60',
    help: 'seconds without a heartbeat after which a host is down',
  },
  reconcile_interval: { section: 'DEFAULT', parse: integer(1, 86400), default: '60', help: 'seconds between full reconciles of the host' },
  connection: { section: 'database', parse: text, default: 'sqlite:///$state_path/novanet.sqlite', help: 'database URL' },
  max_pool_size: { section: 'database', parse: integer(1, 256), default: '4', help: 'database connections per process' },
  // 8774 is the compute API's port: novanet answers the compute API's network extensions.
  api_host: { section: 'api', key: 'host', parse: listenHost, default: '127.0.0.1', help: 'address the REST API listens on' },
  api_port: { section: 'api', key: 'port', parse: integer(0, 65535), default: '8774', help: 'port of the REST API (0: any free port)' },
  api_max_body_bytes: {
    section: 'api',
    key: 'max_body_bytes',
    parse: integer(256, 64 * 1024 * 1024),
    default: '65536',
    help: 'largest request body the API reads',
  },
  api_token_cache_seconds: {
    section: 'api',
    key: 'token_cache_seconds',
    parse: integer(0, 3600),
    default: '5',
    help: 'seconds a verified token is believed without a database read; a revocation takes up to this long (0: read every time)',
  },
} satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;

/** The loaded configuration: one typed value per option. */
export type Config = {
  [K in OptionName]: ReturnType<(typeof OPTIONS)[K]['parse']>;
};
