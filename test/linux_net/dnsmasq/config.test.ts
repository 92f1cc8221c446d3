import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Invalid } from '../../../src/errors.js';
import { dnsmasqArgs, hostsFile, type NetworkFiles, networkFiles, optsFile } from '../../../src/linux_net/dnsmasq/config.js';
import { HOSTS, NETWORK, dnsmasqOptions as options } from '../../support/dnsmasq.js';

const FILES: NetworkFiles = {
  conf: '/var/lib/novanet/networks/nova-br100.conf',
  pid: '/var/lib/novanet/networks/nova-br100.pid',
  hosts: '/var/lib/novanet/networks/nova-br100.hosts',
  hostsdir: '/var/lib/novanet/networks/nova-br100.hostsdir',
  opts: '/var/lib/novanet/networks/nova-br100.opts',
  loaded: '/var/lib/novanet/networks/nova-br100.loaded',
};

describe('dnsmasqArgs', () => {
  it("is nova's command line, with NETWORK_ID and the config file in the environment", () => {
    expect(dnsmasqArgs(NETWORK, FILES, options('/var/lib/novanet'))).toEqual([
      'env',
      'NETWORK_ID=1',
      'NOVANET_CONFIG_FILE=/etc/novanet/novanet.conf',
      'dnsmasq',
      '--strict-order',
      '--bind-interfaces',
      '--conf-file=/var/lib/novanet/networks/nova-br100.conf',
      '--pid-file=/var/lib/novanet/networks/nova-br100.pid',
      '--dhcp-optsfile=/var/lib/novanet/networks/nova-br100.opts',
      '--listen-address=10.0.0.1',
      '--interface=br100',
      '--except-interface=lo',
      '--dhcp-range=set:net1,10.0.0.3,static,255.255.255.0,86400s',
      '--dhcp-lease-max=256',
      '--dhcp-hostsfile=/var/lib/novanet/networks/nova-br100.hosts',
      '--dhcp-hostsdir=/var/lib/novanet/networks/nova-br100.hostsdir',
      '--dhcp-script=/usr/local/bin/novanet-dhcpbridge',
      '--no-hosts',
      '--leasefile-ro',
      '--domain=novalocal',
      '--no-resolv',
      '--server=8.8.8.8',
      '--server=8.8.4.4',
    ]);
  });

  it('lets dnsmasq read resolv.conf when no DNS server is configured, and omits an unknown config file', () => {
    const argv = dnsmasqArgs(
      { ...NETWORK, id: 7, dhcpServer: '10.0.7.1', dhcpStart: '10.0.7.2', netmask: '255.255.255.240', size: 16 },
      FILES,
      options('/var/lib/novanet', { dnsServers: [], configFile: undefined, leaseTime: 120, domain: 'example.org' }),
    );
    expect(argv.slice(0, 3)).toEqual(['env', 'NETWORK_ID=7', 'dnsmasq']);
    expect(argv).toContain('--listen-address=10.0.7.1');
    expect(argv).toContain('--dhcp-range=set:net7,10.0.7.2,static,255.255.255.240,120s');
    expect(argv).toContain('--dhcp-lease-max=16');
    expect(argv.at(-1)).toBe('--domain=example.org');
    expect(argv).not.toContain('--no-resolv');
  });

  it("advertises a network's /64 for SLAAC in place of radvd, with the network's MTU or else the bridge's", () => {
    const argv = dnsmasqArgs({ ...NETWORK, ipv6: 'slaac' }, FILES, options('/var/lib/novanet'));
    const ra = ['--enable-ra', '--dhcp-range=set:net1v6,::,constructor:br100,ra-only,64,86400s', '--ra-param=br100,mtu:br100,10'];
    expect(argv.slice(argv.indexOf('--enable-ra'), argv.indexOf('--enable-ra') + 3)).toEqual(ra);
    expect(dnsmasqArgs({ ...NETWORK, ipv6: 'slaac', mtu: 1450 }, FILES, options('/var/lib/novanet'))).toContain(
      '--ra-param=br100,mtu:1450,10',
    );
    expect(
      dnsmasqArgs(NETWORK, FILES, options('/var/lib/novanet')).filter((arg) => arg === '--enable-ra' || arg.startsWith('--ra-param')),
    ).toEqual([]);
  });

  it("hands out the hosts' static IPv6 addresses by DHCPv6 (managed flag) instead, under account_identifier", () => {
    const argv = dnsmasqArgs({ ...NETWORK, ipv6: 'dhcpv6' }, FILES, options('/var/lib/novanet'));
    expect(argv).toContain('--dhcp-range=set:net1v6,::,constructor:br100,static,64,86400s');
    expect(argv.filter((arg) => arg.includes('ra-only'))).toEqual([]);
  });
});

describe('hostsFile and optsFile', () => {
  it('writes one MAC,hostname.domain,IP line per host', () => {
    expect(hostsFile(HOSTS, 'novalocal')).toBe(
      'fa:16:3e:00:00:01,web-1.novalocal,10.0.0.3\nfa:16:3e:00:00:02,host-10-0-0-4.novalocal,10.0.0.4\n',
    );
    expect(hostsFile([], 'novalocal')).toBe('');
  });

  it("adds a host's DHCPv6 address in brackets", () => {
    expect(hostsFile([{ ...HOSTS[0]!, addressV6: 'fd00::a94a:8fe5:ff00:1' }], 'novalocal')).toBe(
      'fa:16:3e:00:00:01,web-1.novalocal,10.0.0.3,[fd00::a94a:8fe5:ff00:1]\n',
    );
  });

  it('names a host without a hostname after its IPv6 address too', () => {
    expect(hostsFile([{ mac: 'fa:16:3e:00:00:03', hostname: null, address: 'fd00::5' }], 'novalocal')).toBe(
      'fa:16:3e:00:00:03,host-fd00--5.novalocal,fd00::5\n',
    );
  });

  it('gives the router (option 3) and, when set, the MTU (option 26)', () => {
    expect(optsFile(NETWORK)).toBe('tag:net1,option:router,10.0.0.1\n');
    expect(optsFile({ ...NETWORK, mtu: 1450 })).toBe('tag:net1,option:router,10.0.0.1\ntag:net1,option:mtu,1450\n');
  });

  it('sends an empty router option when the network has no gateway (no default route)', () => {
    expect(optsFile({ ...NETWORK, gateway: null })).toBe('tag:net1,option:router\n');
    expect(optsFile({ ...NETWORK, dns: ['192.0.2.53', '192.0.2.54'] })).toBe(
      'tag:net1,option:router,10.0.0.1\ntag:net1,option:dns-server,192.0.2.53,192.0.2.54\n',
    );
  });
});

describe('networkFiles', () => {
  it('keeps its files under state_path/networks, named after the bridge', () => {
    const statePath = '/var/lib/novanet';
    expect(networkFiles(statePath, 'br100')).toEqual({
      conf: join(statePath, 'networks', 'nova-br100.conf'),
      pid: join(statePath, 'networks', 'nova-br100.pid'),
      hosts: join(statePath, 'networks', 'nova-br100.hosts'),
      hostsdir: join(statePath, 'networks', 'nova-br100.hostsdir'),
      opts: join(statePath, 'networks', 'nova-br100.opts'),
      loaded: join(statePath, 'networks', 'nova-br100.loaded'),
    });
    expect(networkFiles(statePath, 'br100')).toEqual(FILES);
  });

  it.each(['br0;reboot', '../etc', 'a'.repeat(16), ''])('rejects the bridge name %j before it becomes a path', (bridge) => {
    expect(() => networkFiles('/var/lib/novanet', bridge)).toThrow(Invalid);
  });
});
