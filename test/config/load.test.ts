import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { envName, loadConfig, parseIni } from '../../src/config/load.js';
import type { Config, OptionName } from '../../src/config/options.js';
import { Invalid } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'novanet-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function confFile(text: string): string {
  const path = join(dir, `novanet-${++fileCount}.conf`);
  writeFileSync(path, text);
  return path;
}

/** Fixed host facts, so tests do not depend on the machine they run on. */
const BASE_ENV = { NOVANET_HOST: 'nethost', NOVANET_MY_IP: '192.0.2.10' };

/** Loads `text` as a config file; `env` replaces BASE_ENV when a test needs the file to win. */
function load(text: string, env: Record<string, string> = BASE_ENV): { config: Config; warnings: string[] } {
  const warnings: string[] = [];
  const config = loadConfig({ file: confFile(text), env, warn: (message) => warnings.push(message) });
  return { config, warnings };
}

function loadError(text: string, env: Record<string, string> = BASE_ENV): Error {
  try {
    load(text, env);
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected loading to fail');
}

describe('parseIni', () => {
  it('reads sections, comments, blank lines and key = value pairs', () => {
    const sections = parseIni(
      ['# a comment', '; another', 'early = 1', '', '[DEFAULT]', 'a = x', 'b:y', '  ', '[database]', 'connection = sqlite:///tmp/x'].join(
        '\n',
      ),
      'test.conf',
    );
    expect(Object.fromEntries(sections.get('DEFAULT')!)).toEqual({ early: '1', a: 'x', b: 'y' });
    expect(sections.get('database')!.get('connection')).toBe('sqlite:///tmp/x');
  });

  it('joins indented continuation lines with newlines', () => {
    const sections = parseIni('[DEFAULT]\ndmz_cidr = 10.0.0.0/8,\n    172.16.0.0/12,\n\t192.168.0.0/16\nnext = 1\n', 'test.conf');
    expect(sections.get('DEFAULT')!.get('dmz_cidr')).toBe('10.0.0.0/8,\n172.16.0.0/12,\n192.168.0.0/16');
    expect(sections.get('DEFAULT')!.get('next')).toBe('1');
  });

  it('strips one pair of matching quotes', () => {
    const sections = parseIni(`a = "quoted value"\nb = 'single'\nc = "unbalanced'\nd = ""\n`, 'f');
    const values = Object.fromEntries(sections.get('DEFAULT')!);
    expect(values).toEqual({ a: 'quoted value', b: 'single', c: `"unbalanced'`, d: '' });
  });

  it('accepts CRLF line ends and merges repeated sections', () => {
    const sections = parseIni('[database]\r\na = 1\r\n[DEFAULT]\r\nb = 2\r\n[database]\r\nc = 3\r\n', 'f');
    expect(Object.fromEntries(sections.get('database')!)).toEqual({ a: '1', c: '3' });
  });

  it('refuses a line that is neither a section nor a pair, naming file and line', () => {
    expect(() => parseIni('[DEFAULT]\nvlan_start 100\n', '/etc/novanet/novanet.conf')).toThrow(Invalid);
    expect(() => parseIni('[DEFAULT]\nvlan_start 100\n', '/etc/novanet/novanet.conf')).toThrow(
      /\/etc\/novanet\/novanet\.conf:2: expected "\[section\]" or "key = value", got "vlan_start 100"/,
    );
  });
});

describe('loadConfig', () => {
  it("gives nova's defaults", () => {
    const { config, warnings } = load('');
    expect(warnings).toEqual([]);
    expect(config).toMatchObject({
      network_manager: 'vlan',
      flat_network_bridge: 'br100',
      flat_network_dns: '8.8.4.4',
      flat_injected: false,
      vlan_start: 100,
      num_networks: 1,
      network_size: 256,
      vpn_start: 1000,
      fixed_range_v6: 'fd00::/48',
      force_dhcp_release: true,
      dhcp_lease_time: 86400,
      public_interface: 'eth0',
      dhcp_domain: 'novalocal',
      send_arp_for_ha: false,
      send_arp_for_ha_count: 3,
      metadata_port: 8775,
      auto_assign_floating_ip: false,
      default_floating_pool: 'nova',
      quota_floating_ips: 10,
      fixed_ip_disassociate_timeout: 600,
      cnt_vpn_clients: 0,
      multi_host: false,
      use_ipv6: false,
      max_pool_size: 4,
      firewall_backend: 'iptables',
    });
    expect(config.flat_interface).toBeUndefined();
    expect(config.vlan_interface).toBeUndefined();
    expect(config.dmz_cidr).toEqual([]);
    expect(config.root_helper).toEqual([]);
  });

  it('reads [DEFAULT] and [database] options with their types', () => {
    const { config, warnings } = load(
      [
        '# novanet.conf',
        '[DEFAULT]',
        'network_manager = flatdhcp',
        'flat_interface = eth1',
        'flat_injected = True',
        'vlan_start = 200',
        'multi_host = yes',
        'root_helper = sudo novanet-rootwrap /etc/novanet/rootwrap.conf',
        'dmz_cidr = 10.128.0.0/24,',
        '    10.129.0.0/24',
        'dns_server = "192.0.2.53, 192.0.2.54"',
        '',
        '[database]',
        "connection = 'mysql+pymysql://nova:secret@db/nova'",
        'max_pool_size = 8',
      ].join('\n'),
    );
    expect(warnings).toEqual([]);
    expect(config.network_manager).toBe('flatdhcp');
    expect(config.flat_interface).toBe('eth1');
    expect(config.flat_injected).toBe(true);
    expect(config.vlan_start).toBe(200);
    expect(config.multi_host).toBe(true);
    expect(config.root_helper).toEqual(['sudo', 'novanet-rootwrap', '/etc/novanet/rootwrap.conf']);
    expect(config.dmz_cidr).toEqual(['10.128.0.0/24', '10.129.0.0/24']);
    expect(config.dns_server).toEqual(['192.0.2.53', '192.0.2.54']);
    expect(config.connection).toBe('mysql+pymysql://nova:secret@db/nova');
    expect(config.max_pool_size).toBe(8);
  });

  it.each([
    ['nova.network.manager.FlatManager', 'flat'],
    ['nova.network.manager.FlatDHCPManager', 'flatdhcp'],
    ['nova.network.manager.VlanManager', 'vlan'],
    ['flat', 'flat'],
    ['FlatDHCP', 'flatdhcp'],
    [' vlan ', 'vlan'],
  ])('maps network_manager %j to %s', (value, mode) => {
    expect(load(`network_manager = ${value}\n`).config.network_manager).toBe(mode);
  });

  it.each([
    ['vlan_start = ten', /^vlan_start must be an integer, got "ten"$/],
    ['vlan_start = 4095', /^vlan_start must be between 1 and 4094, got "4095"$/],
    ['network_size = 1.5', /^network_size must be an integer, got "1\.5"$/],
    ['metadata_port = 0', /^metadata_port must be between 1 and 65535/],
    ['flat_injected = maybe', /^flat_injected must be true or false, got "maybe"$/],
    ['force_dhcp_release = 2', /^force_dhcp_release must be true or false/],
    ['my_ip = 10.0.0', /^my_ip must be an IPv4 address, got "10\.0\.0"$/],
    ['flat_network_dns = 8.8.8.08', /^flat_network_dns must be an IPv4 address/],
    ['routing_source_ip = fd00::1', /^routing_source_ip must be an IPv4 address/],
    ['dns_server = 192.0.2.1, bogus', /^dns_server must be an IPv4 address, got "bogus"$/],
    ['fixed_range_v6 = fd00::1/48', /^fixed_range_v6 "fd00::1\/48" has host bits set; the network is fd00::\/48$/],
    ['dmz_cidr = 10.0.0.0/40', /^dmz_cidr prefix \/40 is longer than \/32/],
    ['flat_interface = eth 1', /^flat_interface must be an interface name of 1-15 letters/],
    ['public_interface = averyveryverylongname', /^public_interface must be an interface name/],
    ['vlan_interface = -eth0', /^vlan_interface must be an interface name/],
    ['flat_network_bridge = br;rm', /^flat_network_bridge must be an interface name/],
    [
      'network_manager = nova.network.neutronv2.api.API',
      /^network_manager must be one of flat, flatdhcp, vlan or a nova class path .*got "nova\.network\.neutronv2\.api\.API"$/,
    ],
    ['firewall_backend = pf', /^firewall_backend must be one of iptables, nftables, got "pf"$/],
    ['vxlan_group = 10.0.0.1', /^vxlan_group must be an IPv4 multicast address \(224\.0\.0\.0\/4\), got "10\.0\.0\.1"$/],
    ['vxlan_group = 240.0.0.1', /^vxlan_group must be an IPv4 multicast address/],
    ['vxlan_group = 239.1', /^vxlan_group must be an IPv4 address, got "239\.1"$/],
    ['wake_port = 65536', /^wake_port must be between 0 and 65535/],
    ['[database]\nmax_pool_size = lots', /^\[database\] max_pool_size must be an integer, got "lots"$/],
  ])('refuses %j with a message naming the option', (text, message) => {
    const error = loadError(`${text}\n`, {});
    expect(error).toBeInstanceOf(Invalid);
    expect(error.message).toMatch(message);
  });

  it('reads vxlan_group: empty (head-end replication) by default, else the group', () => {
    expect(load('').config.vxlan_group).toBeUndefined();
    expect(load('vxlan_group = 239.1.1.1\n').config.vxlan_group).toBe('239.1.1.1');
  });

  it.each([
    ['nftables', 'nftables'],
    [' NFTables ', 'nftables'],
    ['iptables', 'iptables'],
  ])('reads firewall_backend %j as %s', (value, backend) => {
    expect(load(`firewall_backend = ${value}\n`).config.firewall_backend).toBe(backend);
  });

  it('warns about unknown options and ignores them', () => {
    const { config, warnings } = load('[DEFAULT]\nvlan_strat = 300\n[database]\nidle_timeout = 3600\n[keystone]\nauth_url = http://x\n');
    expect(config.vlan_start).toBe(100);
    expect(warnings).toHaveLength(3);
    expect(warnings[0]).toMatch(/^unknown option \[DEFAULT\] vlan_strat in .*novanet-\d+\.conf \(ignored\)$/);
    expect(warnings[1]).toMatch(/unknown option \[database\] idle_timeout/);
    expect(warnings[2]).toMatch(/^section \[keystone\] of .* is not novanet's \(ignored\)$/);
  });

  it("says once that another service's section is ignored, however many keys it has", () => {
    const { warnings } = load('[keystone_authtoken]\nauth_url = http://x\nusername = nova\npassword = secret\n');
    expect(warnings).toEqual([expect.stringMatching(/^section \[keystone_authtoken\] of .* is not novanet's \(ignored\)$/)]);
  });

  it('warns about a known option in the wrong section and does not use it', () => {
    const { config, warnings } = load('[DEFAULT]\nconnection = mysql://u:p@h/db\n[database]\nvlan_start = 7\n');
    expect(config.connection).not.toBe('mysql://u:p@h/db');
    expect(config.vlan_start).toBe(100);
    expect(warnings).toEqual([
      expect.stringMatching(/unknown option \[DEFAULT\] connection/),
      expect.stringMatching(/unknown option \[database\] vlan_start/),
    ]);
  });

  it('names environment variables after the section and option', () => {
    expect(envName('vlan_start')).toBe('NOVANET_VLAN_START');
    expect(envName('connection')).toBe('NOVANET_DATABASE_CONNECTION');
    expect(envName('max_pool_size')).toBe('NOVANET_DATABASE_MAX_POOL_SIZE');
  });

  it('takes options from the environment, over the file', () => {
    const { config } = load('[DEFAULT]\nvlan_start = 200\nflat_interface = eth1\n[database]\nconnection = sqlite:///from/file\n', {
      ...BASE_ENV,
      NOVANET_VLAN_START: '300',
      NOVANET_NETWORK_MANAGER: 'nova.network.manager.FlatManager',
      NOVANET_DATABASE_CONNECTION: 'mysql://nova:pw@db.example/nova',
    });
    expect(config.vlan_start).toBe(300);
    expect(config.network_manager).toBe('flat');
    expect(config.connection).toBe('mysql://nova:pw@db.example/nova');
    // Not overridden: the file's value stays.
    expect(config.flat_interface).toBe('eth1');
  });

  it('validates environment values like file values', () => {
    expect(loadError('', { ...BASE_ENV, NOVANET_VLAN_START: 'x' }).message).toMatch(/^vlan_start must be an integer/);
  });

  it('interpolates $my_ip: routing_source_ip, metadata_host and vpn_ip follow my_ip', () => {
    const { config } = load('my_ip = 198.51.100.7\n', {});
    expect(config.my_ip).toBe('198.51.100.7');
    expect(config.routing_source_ip).toBe('198.51.100.7');
    expect(config.metadata_host).toBe('198.51.100.7');
    expect(config.vpn_ip).toBe('198.51.100.7');
  });

  it('follows my_ip set in the environment, and keeps an explicit routing_source_ip', () => {
    expect(load('').config.routing_source_ip).toBe('192.0.2.10');
    expect(load('my_ip = 198.51.100.7\n').config.routing_source_ip).toBe('192.0.2.10');
    expect(load('routing_source_ip = 203.0.113.1\n').config.routing_source_ip).toBe('203.0.113.1');
  });

  // biome-ignore lint/suspicious/noTemplateCurlyInString: oslo.config's own ${option} syntax, in plain strings on purpose
  it('interpolates ${option} and nested references', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the config file's text, not a template
    const { config } = load('state_path = /srv/novanet\n[database]\nconnection = sqlite:///${state_path}/db/novanet.sqlite\n');
    expect(config.connection).toBe('sqlite:////srv/novanet/db/novanet.sqlite');
    expect(load('state_path = /srv/nn\n').config.connection).toBe('sqlite:////srv/nn/novanet.sqlite');
  });

  it('reads $$ as a literal dollar sign', () => {
    const { config } = load('[database]\nconnection = mysql://nova:pa$$word@db/nova\n');
    expect(config.connection).toBe('mysql://nova:pa$word@db/nova');
    expect(loadError('[database]\nconnection = mysql://nova:pa$word@db/nova\n').message).toBe(
      '[database] connection refers to unknown option $word',
    );
  });

  it('refuses a reference to an unknown option, naming both', () => {
    expect(loadError('routing_source_ip = $my_address\n').message).toBe('routing_source_ip refers to unknown option $my_address');
  });

  it('refuses a reference loop', () => {
    expect(loadError('host = $dhcp_domain\ndhcp_domain = $host\n', {}).message).toMatch(/nest too deeply/);
  });

  it('fails clearly when an explicit config file is missing', () => {
    const missing = join(dir, 'does-not-exist.conf');
    expect(() => loadConfig({ file: missing, env: BASE_ENV, warn: () => undefined })).toThrow(Invalid);
    expect(() => loadConfig({ file: missing, env: BASE_ENV, warn: () => undefined })).toThrow(`cannot read config file ${missing}: ENOENT`);
    expect(() => loadConfig({ env: { ...BASE_ENV, NOVANET_CONFIG_FILE: missing }, warn: () => undefined })).toThrow(
      /cannot read config file .*does-not-exist\.conf: ENOENT/,
    );
  });

  it('reads the file named by NOVANET_CONFIG_FILE', () => {
    const file = confFile('vlan_start = 42\n');
    expect(loadConfig({ env: { ...BASE_ENV, NOVANET_CONFIG_FILE: file }, warn: () => undefined }).vlan_start).toBe(42);
  });

  it('reports parse errors with the file and line', () => {
    expect(loadError('[DEFAULT]\n\nthis is not ini\n').message).toMatch(/novanet-\d+\.conf:3: expected/);
  });
});

/**
 * The README's promise holds for every option whose value reaches a file, a command
 * line or a name the hosts compare (issue 16, cause 7): a value that could break one
 * stops the program, naming the option.
 */
describe('options that reach files and commands', () => {
  const CONTROL = ['a\nb', 'a\rb', 'a\u0000b', 'a\tb'];
  const REACHING: Record<string, string[]> = {
    // dnsmasq's hosts file and --domain: a newline was an extra host line, and dnsmasq refused to start.
    dhcp_domain: [...CONTROL, 'novalocal\nbad,host', 'a b', 'a;reboot', '-rf', '.novalocal', 'x'.repeat(254)],
    host: [...CONTROL, 'bad_host', 'a b', 'host;reboot', '-host'],
    state_path: [...CONTROL, 'relative/path', './state', ''],
    dhcpbridge: [...CONTROL, 'relative/novanet-dhcpbridge'],
    default_floating_pool: [...CONTROL, '', 'a\u202eb'],
    root_helper: ['sudo\n-u', 'sudo\u0000', 'ip netns exec lab\rx'],
    flat_network_bridge: [...CONTROL, 'br 100', 'br100;reboot', 'x'.repeat(16)],
    flat_interface: [...CONTROL, 'eth 1', '$(reboot)'],
    public_interface: [...CONTROL, 'eth 0', '../eth0'],
    vlan_interface: [...CONTROL, 'eth 2', '-eth2'],
    dns_server: [...CONTROL, '8.8.8.8;reboot', 'dns.example.org'],
    my_ip: [...CONTROL, '192.0.2'],
    metadata_host: ['10.0.0.1;reboot', 'metadata'],
    dmz_cidr: ['10.0.0.0/8;x', '10.0.0.0/8 x'],
  };

  /** Where a value from the environment goes: NOVANET_<OPTION> or NOVANET_<SECTION>_<OPTION>. */
  const envOf = (option: string, value: string) => ({ ...BASE_ENV, [envName(option as OptionName)]: value });

  for (const [option, values] of Object.entries(REACHING)) {
    it.each(values.map((value) => [JSON.stringify(value).slice(0, 40), value]))(`refuses ${option} = %s, naming it`, (_shown, value) => {
      const error = loadError('', envOf(option, value));
      expect(error).toBeInstanceOf(Invalid);
      expect(error.message).toMatch(new RegExp(`^${option}\\b`));
    });
  }

  it('takes the ordinary values of the same options', () => {
    const { config } = load(
      [
        'dhcp_domain = cloud.example.org',
        'host = compute-1.example.org',
        'state_path = /srv/novanet state',
        'dhcpbridge = /opt/novanet/bin/novanet-dhcpbridge',
        'default_floating_pool = public pool',
        'root_helper = sudo -n',
      ].join('\n'),
      { NOVANET_MY_IP: '192.0.2.10' },
    );
    expect(config).toMatchObject({
      dhcp_domain: 'cloud.example.org',
      host: 'compute-1.example.org',
      state_path: '/srv/novanet state',
      dhcpbridge: '/opt/novanet/bin/novanet-dhcpbridge',
      default_floating_pool: 'public pool',
      root_helper: ['sudo', '-n'],
    });
  });

  it('leaves no option as unchecked text but the database URL, which is parsed when it is opened', async () => {
    const { OPTIONS } = await import('../../src/config/options.js');
    const takes = (parse: (text: string, name: string) => unknown) => {
      try {
        return parse('a\nb', 'x') !== undefined;
      } catch {
        return false;
      }
    };
    const unchecked = Object.entries(OPTIONS)
      .filter(([, spec]) => takes(spec.parse))
      .map(([name]) => name);
    expect(unchecked).toEqual(['connection']);
  });
});
