import { describe, expect, it } from 'vitest';
import { CHAINS, TABLES } from '../../../../src/linux_net/firewall/iptables/plan.js';
import { renderRules, renderRulesV6 } from '../../../../src/linux_net/firewall/iptables/render.js';
import { firewallState } from '../../../support/firewall.js';

const state = firewallState;

describe('renderRules', () => {
  it("renders nova's rules for one FlatDHCP network, in iptables-save spelling", () => {
    expect(renderRules(state({ dmzCidrs: ['10.128.0.0/24'] }))).toEqual({
      filter: {
        'nova-filter-top': [],
        'nova-network-FORWARD': ['-i br100 -j ACCEPT', '-o br100 -j ACCEPT'],
        'nova-network-INPUT': [
          '-i br100 -p udp -m udp --dport 67 -j ACCEPT',
          '-i br100 -p udp -m udp --dport 53 -j ACCEPT',
          '-i br100 -p tcp -m tcp --dport 53 -j ACCEPT',
        ],
        'nova-network-isolate': [],
      },
      nat: {
        'nova-network-PREROUTING': ['-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.1:8775'],
        'nova-network-OUTPUT': [],
        'nova-network-POSTROUTING': [
          '-s 10.0.0.0/24 -d 10.0.0.1/32 -j ACCEPT',
          '-s 10.0.0.0/24 -d 10.128.0.0/24 -j ACCEPT',
          '-s 10.0.0.0/24 -d 10.0.0.0/24 -m conntrack ! --ctstate DNAT -j ACCEPT',
        ],
        'nova-postrouting-bottom': [],
        'nova-network-snat': [
          '-s 10.0.0.0/24 -d 10.0.0.0/24 -m conntrack --ctstate DNAT -j SNAT --to-source 10.0.0.1',
          '-s 10.0.0.0/24 -o eth0 -j SNAT --to-source 192.0.2.10',
        ],
        'nova-network-float-snat': [],
      },
      mangle: {
        'nova-network-POSTROUTING': ['-o br100 -p udp -m udp --dport 68 -j CHECKSUM --checksum-fill'],
      },
    });
  });

  it('uses REDIRECT for a metadata service on 127.0.0.1', () => {
    const rules = renderRules(state({ metadataHost: '127.0.0.1' }));
    expect(rules.nat['nova-network-PREROUTING']).toEqual(['-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 8775']);
    expect(rules.nat['nova-network-POSTROUTING']?.[0]).toBe('-s 10.0.0.0/24 -d 127.0.0.1/32 -j ACCEPT');
  });

  it('has an ACCEPT exception per dmz_cidr, in order, before the intra-range one', () => {
    const rules = renderRules(state({ dmzCidrs: ['10.128.0.0/24', '172.16.0.0/12'] }));
    expect(rules.nat['nova-network-POSTROUTING']).toEqual([
      '-s 10.0.0.0/24 -d 10.0.0.1/32 -j ACCEPT',
      '-s 10.0.0.0/24 -d 10.128.0.0/24 -j ACCEPT',
      '-s 10.0.0.0/24 -d 172.16.0.0/12 -j ACCEPT',
      '-s 10.0.0.0/24 -d 10.0.0.0/24 -m conntrack ! --ctstate DNAT -j ACCEPT',
    ]);
  });

  it('opens no DHCP/DNS and fills no checksums for a network without DHCP', () => {
    const rules = renderRules(state({ networks: [{ cidr: '10.0.0.0/24', bridge: 'br100', gateway: '10.0.0.1', dhcp: false }] }));
    expect(rules.filter['nova-network-INPUT']).toEqual([]);
    expect(rules.mangle['nova-network-POSTROUTING']).toEqual([]);
    expect(rules.filter['nova-network-FORWARD']).toEqual(['-i br100 -j ACCEPT', '-o br100 -j ACCEPT']);
    expect(rules.nat['nova-network-snat']).toEqual([
      '-s 10.0.0.0/24 -d 10.0.0.0/24 -m conntrack --ctstate DNAT -j SNAT --to-source 10.0.0.1',
      '-s 10.0.0.0/24 -o eth0 -j SNAT --to-source 192.0.2.10',
    ]);
  });

  it("isolates VLAN mode's networks from each other before any forward accept, DNATed connections apart", () => {
    const rules = renderRules(
      state({
        networks: [
          { cidr: '10.0.0.0/24', bridge: 'br100', gateway: '10.0.0.1', dhcp: true, isolated: true },
          { cidr: '10.0.1.0/24', bridge: 'br101', gateway: '10.0.1.1', dhcp: true, isolated: true },
        ],
      }),
    );
    expect(rules.filter['nova-network-FORWARD']).toEqual([
      '-i br100 ! -o br100 -j nova-network-isolate',
      '-i br101 ! -o br101 -j nova-network-isolate',
      '-i br100 -j ACCEPT',
      '-o br100 -j ACCEPT',
      '-i br101 -j ACCEPT',
      '-o br101 -j ACCEPT',
    ]);
    expect(rules.filter['nova-network-isolate']).toEqual(['-m conntrack --ctstate DNAT -j RETURN', '-o br100 -j DROP', '-o br101 -j DROP']);
  });

  it('renders the IPv6 filter rules of the networks with a /64 only, isolation first, and no NAT', () => {
    const rules = renderRulesV6(
      state({
        networks: [
          { cidr: '10.0.0.0/24', bridge: 'br100', gateway: '10.0.0.1', dhcp: true, isolated: true, v6: true },
          { cidr: '10.0.1.0/24', bridge: 'br101', gateway: '10.0.1.1', dhcp: true, isolated: true },
          { cidr: '10.0.2.0/24', bridge: 'br102', gateway: '10.0.2.1', dhcp: false, isolated: true, v6: true },
        ],
      }),
    );
    expect(rules).toEqual({
      filter: {
        'nova-filter-top': [],
        'nova-network-FORWARD': [
          '-i br100 ! -o br100 -j nova-network-isolate',
          '-i br102 ! -o br102 -j nova-network-isolate',
          '-i br100 -j ACCEPT',
          '-o br100 -j ACCEPT',
          '-i br102 -j ACCEPT',
          '-o br102 -j ACCEPT',
        ],
        'nova-network-INPUT': [
          '-i br100 -p udp -m udp --dport 547 -j ACCEPT',
          '-i br100 -p udp -m udp --dport 53 -j ACCEPT',
          '-i br100 -p tcp -m tcp --dport 53 -j ACCEPT',
          '-i br100 -p ipv6-icmp -j ACCEPT',
          '-i br102 -p ipv6-icmp -j ACCEPT',
        ],
        // No DNAT exception: IPv6 is never NATed.
        'nova-network-isolate': ['-o br100 -j DROP', '-o br102 -j DROP'],
      },
      nat: {},
      mangle: {},
    });
  });

  it('renders each network in order', () => {
    const rules = renderRules(
      state({
        networks: [
          { cidr: '10.0.0.0/24', bridge: 'br100', gateway: '10.0.0.1', dhcp: true },
          { cidr: '10.0.1.0/24', bridge: 'br101', gateway: '10.0.1.1', dhcp: true },
        ],
      }),
    );
    expect(rules.nat['nova-network-snat']).toEqual([
      '-s 10.0.0.0/24 -d 10.0.0.0/24 -m conntrack --ctstate DNAT -j SNAT --to-source 10.0.0.1',
      '-s 10.0.0.0/24 -o eth0 -j SNAT --to-source 192.0.2.10',
      '-s 10.0.1.0/24 -d 10.0.1.0/24 -m conntrack --ctstate DNAT -j SNAT --to-source 10.0.1.1',
      '-s 10.0.1.0/24 -o eth0 -j SNAT --to-source 192.0.2.10',
    ]);
    expect(rules.filter['nova-network-FORWARD']).toEqual([
      '-i br100 -j ACCEPT',
      '-o br100 -j ACCEPT',
      '-i br101 -j ACCEPT',
      '-o br101 -j ACCEPT',
    ]);
    expect(rules.mangle['nova-network-POSTROUTING']).toEqual([
      '-o br100 -p udp -m udp --dport 68 -j CHECKSUM --checksum-fill',
      '-o br101 -p udp -m udp --dport 68 -j CHECKSUM --checksum-fill',
    ]);
  });

  it('renders the cloudpipe VPN DNAT (PREROUTING and OUTPUT) and its FORWARD accept', () => {
    const rules = renderRules(
      state({
        networks: [
          {
            cidr: '10.0.0.0/24',
            bridge: 'br100',
            gateway: '10.0.0.1',
            dhcp: true,
            vpn: { publicAddress: '192.0.2.20', publicPort: 1000, privateAddress: '10.0.0.2' },
          },
        ],
      }),
    );
    expect(rules.nat['nova-network-PREROUTING']).toEqual([
      '-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.1:8775',
      '-d 192.0.2.20/32 -p udp -m udp --dport 1000 -j DNAT --to-destination 10.0.0.2:1194',
    ]);
    expect(rules.nat['nova-network-OUTPUT']).toEqual([
      '-d 192.0.2.20/32 -p udp -m udp --dport 1000 -j DNAT --to-destination 10.0.0.2:1194',
    ]);
    expect(rules.filter['nova-network-FORWARD']).toEqual([
      '-i br100 -j ACCEPT',
      '-o br100 -j ACCEPT',
      '-d 10.0.0.2/32 -p udp -m udp --dport 1194 -j ACCEPT',
    ]);
  });

  it('renders 1:1 NAT for each floating IP in chains of one /24 each', () => {
    const rules = renderRules(
      state({
        floating: [
          { address: '192.0.2.50', fixed: '10.0.0.3', interface: 'eth0' },
          { address: '192.0.2.51', fixed: '10.0.1.4', interface: 'eth2' },
          { address: '198.51.100.9', fixed: '10.0.0.5', interface: 'eth0' },
        ],
      }),
    );
    // DNAT by floating /24, reached from PREROUTING and OUTPUT alike.
    expect(rules.nat['nova-network-PREROUTING']).toEqual([
      '-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.1:8775',
      '-d 192.0.2.0/24 -j nova-float-dnat-c00002',
      '-d 198.51.100.0/24 -j nova-float-dnat-c63364',
    ]);
    expect(rules.nat['nova-network-OUTPUT']).toEqual([
      '-d 192.0.2.0/24 -j nova-float-dnat-c00002',
      '-d 198.51.100.0/24 -j nova-float-dnat-c63364',
    ]);
    expect(rules.nat['nova-float-dnat-c00002']).toEqual([
      '-d 192.0.2.50/32 -j DNAT --to-destination 10.0.0.3',
      '-d 192.0.2.51/32 -j DNAT --to-destination 10.0.1.4',
    ]);
    expect(rules.nat['nova-float-dnat-c63364']).toEqual(['-d 198.51.100.9/32 -j DNAT --to-destination 10.0.0.5']);
    // SNAT by fixed /24, from float-snat: nova's ctstate-DNAT rule (a VM with a floating
    // IP reaching another's is seen from its own), then nova's two float-snat rules.
    expect(rules.nat['nova-network-float-snat']).toEqual([
      '-s 10.0.0.0/24 -j nova-float-snat-0a0000',
      '-s 10.0.1.0/24 -j nova-float-snat-0a0001',
    ]);
    expect(rules.nat['nova-float-snat-0a0000']).toEqual([
      '-s 10.0.0.3/32 -m conntrack --ctstate DNAT -j SNAT --to-source 192.0.2.50',
      '-s 10.0.0.3/32 -d 10.0.0.3/32 -j SNAT --to-source 192.0.2.50',
      '-s 10.0.0.3/32 -o eth0 -j SNAT --to-source 192.0.2.50',
      '-s 10.0.0.5/32 -m conntrack --ctstate DNAT -j SNAT --to-source 198.51.100.9',
      '-s 10.0.0.5/32 -d 10.0.0.5/32 -j SNAT --to-source 198.51.100.9',
      '-s 10.0.0.5/32 -o eth0 -j SNAT --to-source 198.51.100.9',
    ]);
    expect(rules.nat['nova-float-snat-0a0001']).toEqual([
      '-s 10.0.1.4/32 -m conntrack --ctstate DNAT -j SNAT --to-source 192.0.2.51',
      '-s 10.0.1.4/32 -d 10.0.1.4/32 -j SNAT --to-source 192.0.2.51',
      '-s 10.0.1.4/32 -o eth2 -j SNAT --to-source 192.0.2.51',
    ]);
  });

  it('declares every novanet chain even with no network', () => {
    const rules = renderRules(state({ networks: [] }));
    for (const table of TABLES) expect(Object.keys(rules[table])).toEqual(CHAINS[table]);
    expect(rules.nat['nova-network-PREROUTING']).toHaveLength(1);
    expect(rules.nat['nova-network-snat']).toEqual([]);
  });
});
