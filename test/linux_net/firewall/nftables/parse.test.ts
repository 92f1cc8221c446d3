import { describe, expect, it } from 'vitest';
import { parseListing } from '../../../../src/linux_net/firewall/nftables/parse.js';

describe('parseListing', () => {
  it("reads the kernel's JSON: chain definitions, rule comments in order, map types and elements (concatenated keys too)", () => {
    const json =
      '{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "ip", "name": "novanet", "handle": 2}}, ' +
      '{"map": {"family": "ip", "name": "floating_snat", "table": "novanet", "type": ["ipv4_addr", "ifname"], "handle": 7, "map": "ipv4_addr", "elem": [[{"concat": ["10.0.0.2", "eth0"]}, "192.0.2.65"]]}}, ' +
      '{"map": {"family": "ip", "name": "floating_dnat", "table": "novanet", "type": "ipv4_addr", "handle": 5, "map": "ipv4_addr"}}, ' +
      '{"chain": {"family": "ip", "table": "novanet", "name": "prerouting", "handle": 1, "type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"}}, ' +
      '{"rule": {"family": "ip", "table": "novanet", "chain": "prerouting", "handle": 8, "comment": "a1", "expr": []}}, ' +
      '{"rule": {"family": "ip", "table": "novanet", "chain": "prerouting", "handle": 9, "expr": []}}]}';
    const state = parseListing(json);
    expect(state.chains).toEqual(
      new Map([['prerouting', { head: 'type nat hook prerouting priority -100; policy accept;', tags: ['a1', 'untagged'] }]]),
    );
    expect(state.maps).toEqual(
      new Map([
        ['floating_snat', { type: 'ipv4_addr . ifname : ipv4_addr', elements: new Map([['10.0.0.2 . eth0', '192.0.2.65']]) }],
        ['floating_dnat', { type: 'ipv4_addr : ipv4_addr', elements: new Map() }],
      ]),
    );
  });
});
