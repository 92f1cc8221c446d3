import { describe, expect, it } from 'vitest';
import { firewallState } from '../../../support/firewall.js';
import { FLOATING, wanted } from '../../../support/nftables.js';

describe('renderChains and FloatingElements', () => {
  it("renders nova's rules into base chains, floating IPs into maps only", () => {
    const ruleset = wanted(firewallState({ dmzCidrs: ['10.128.0.0/24'], floating: FLOATING }));
    expect(Object.fromEntries(ruleset.chains.map((chain) => [chain.name, chain.rules]))).toEqual({
      isolate: [],
      prerouting: ['ip daddr 169.254.169.254 tcp dport 80 dnat to 10.0.0.1:8775', 'dnat to ip daddr map @floating_dnat'],
      output: ['dnat to ip daddr map @floating_dnat'],
      postrouting: [
        'ip saddr 10.0.0.0/24 ip daddr 10.0.0.1 accept',
        'ip saddr 10.0.0.0/24 ip daddr 10.128.0.0/24 accept',
        'ip saddr 10.0.0.0/24 ip daddr 10.0.0.0/24 ct status ! dnat accept',
        'ct status dnat snat to ip saddr map @floating_hairpin',
        'snat to ip saddr . oifname map @floating_snat',
        'ip saddr 10.0.0.0/24 ip daddr 10.0.0.0/24 ct status dnat snat to 10.0.0.1',
        'ip saddr 10.0.0.0/24 oifname "eth0" snat to 192.0.2.10',
      ],
      forward: ['iifname "br100" accept', 'oifname "br100" accept'],
      input: ['iifname "br100" udp dport 67 accept', 'iifname "br100" udp dport 53 accept', 'iifname "br100" tcp dport 53 accept'],
    });
    expect(ruleset.chains.map((chain) => (chain.type ? `${chain.type} ${chain.hook} ${chain.priority}` : 'regular'))).toEqual([
      'regular',
      'nat prerouting -100',
      'nat output -100',
      'nat postrouting 100',
      'filter forward 0',
      'filter input 0',
    ]);
    expect(ruleset.elements).toEqual({
      floating_dnat: new Map([
        ['192.0.2.50', '10.0.0.3'],
        ['192.0.2.51', '10.0.0.4'],
      ]),
      floating_snat: new Map([
        ['10.0.0.3 . eth0', '192.0.2.50'],
        ['10.0.0.4 . eth2', '192.0.2.51'],
      ]),
      floating_hairpin: new Map([
        ['10.0.0.3', '192.0.2.50'],
        ['10.0.0.4', '192.0.2.51'],
      ]),
    });
    // The floating IPs are data: the chains are the same with none.
    expect(wanted(firewallState({ dmzCidrs: ['10.128.0.0/24'] })).chains).toEqual(ruleset.chains);
  });

  it("isolates VLAN mode's networks from each other before any forward accept, DNATed connections apart", () => {
    const ruleset = wanted(
      firewallState({
        networks: [
          { cidr: '10.0.0.0/24', bridge: 'br100', gateway: '10.0.0.1', dhcp: true, isolated: true },
          { cidr: '10.0.1.0/24', bridge: 'br101', gateway: '10.0.1.1', dhcp: true, isolated: true },
        ],
      }),
    );
    const chains = Object.fromEntries(ruleset.chains.map((chain) => [chain.name, chain.rules]));
    expect(chains.forward).toEqual([
      'iifname "br100" oifname != "br100" jump isolate',
      'iifname "br101" oifname != "br101" jump isolate',
      'iifname "br100" accept',
      'oifname "br100" accept',
      'iifname "br101" accept',
      'oifname "br101" accept',
    ]);
    expect(chains.isolate).toEqual(['ct status dnat return', 'oifname "br100" drop', 'oifname "br101" drop']);
  });

  it('redirects metadata to a local port, adds the VPN DNAT and forward rule, and opens no DHCP without dnsmasq', () => {
    const ruleset = wanted(
      firewallState({
        metadataHost: '127.0.0.1',
        networks: [
          {
            cidr: '10.0.1.0/24',
            bridge: 'br101',
            gateway: '10.0.1.1',
            dhcp: false,
            vpn: { publicAddress: '192.0.2.20', publicPort: 1000, privateAddress: '10.0.1.2' },
          },
        ],
      }),
    );
    const chains = Object.fromEntries(ruleset.chains.map((chain) => [chain.name, chain.rules]));
    expect(chains.prerouting).toEqual([
      'ip daddr 169.254.169.254 tcp dport 80 redirect to :8775',
      'ip daddr 192.0.2.20 udp dport 1000 dnat to 10.0.1.2:1194',
      'dnat to ip daddr map @floating_dnat',
    ]);
    expect(chains.output).toEqual(['ip daddr 192.0.2.20 udp dport 1000 dnat to 10.0.1.2:1194', 'dnat to ip daddr map @floating_dnat']);
    expect(chains.forward).toContain('ip daddr 10.0.1.2 udp dport 1194 accept');
    expect(chains.input).toEqual([]);
  });

  it('gives a fixed address with two floating IPs on one interface the first as its source', () => {
    const ruleset = wanted(firewallState({ floating: [FLOATING[0]!, { address: '192.0.2.52', fixed: '10.0.0.3', interface: 'eth0' }] }));
    expect(ruleset.elements.floating_dnat.size).toBe(2);
    expect([...ruleset.elements.floating_snat]).toEqual([['10.0.0.3 . eth0', '192.0.2.50']]);
    expect([...ruleset.elements.floating_hairpin]).toEqual([['10.0.0.3', '192.0.2.50']]);
  });
});
